"""Civitai: listing callbacks on fixture pages (cursor paging, limit, malformed pages, JOBDIR-safe
requests, distributed hand-off)."""

import os
import pickle
from urllib.parse import parse_qsl, urlsplit

import pytest
from scrapy.http import Request, TextResponse
from scrapy.utils.request import request_from_dict

from ptmscrape.items import RawModelItem
from spiders.civitai import CivitaiSpider
from tests.helpers import json_response, spider_maker, start_requests, text_response
from tests.replicas.civitai import fixture_models

BASE = "https://mirror.example/civitai"  # a base URL with a path: the crawl must stay under it


make_spider = spider_maker(CivitaiSpider, {"PTM_CIVITAI_URL": BASE})


def page(url, items, metadata=None, body=None, request=None):
    if body is not None:
        return text_response(url, body, headers={"Content-Type": "application/json"})
    return json_response(url, {"items": items, "metadata": metadata or {}}, request)


def query(url):
    return dict(parse_qsl(urlsplit(url).query))


def stat(spider, key):
    return spider.crawler.stats.get_value(key)


def test_start_asks_for_the_newest_models_nsfw_included_under_the_base_path():
    (request,) = start_requests(make_spider())
    assert request.url.startswith(f"{BASE}/api/v1/models?")
    assert query(request.url) == {"limit": "100", "sort": "Newest", "nsfw": "true"}
    assert request.callback.__name__ == "parse_listing" and request.errback.__name__ == "page_failed"
    assert start_requests(make_spider(limit="0")) == []


def test_arguments_shape_the_listing_query():
    (request,) = start_requests(make_spider(limit="7", types="LORA, Checkpoint", query="anime",
                                            username="Lykon", nsfw="false", sort="Most Downloaded"))
    q = parse_qsl(urlsplit(request.url).query)
    assert q == [("limit", "7"), ("sort", "Most Downloaded"), ("types", "LORA"), ("types", "Checkpoint"),
                 ("query", "anime"), ("username", "Lykon")]
    (small_pages,) = start_requests(make_spider({"PTM_CIVITAI_PAGE_SIZE": 500}))
    assert query(small_pages.url)["limit"] == "100"  # the API's maximum
    with pytest.raises(ValueError, match="nsfw"):
        make_spider(nsfw="maybe")


def test_only_arguments_that_hide_models_narrow_the_crawl():
    assert make_spider(sort="Highest Rated", nsfw="true", _job="x").narrowed_by == []
    assert make_spider(nsfw="false").narrowed_by == ["nsfw"]
    assert make_spider(types="LORA", limit="3").narrowed_by == ["limit", "types"]


def test_listing_yields_each_model_as_served_and_follows_the_cursor_on_our_base():
    spider = make_spider()
    models = fixture_models()[:3]
    url = f"{BASE}/api/v1/models?limit=3&sort=Newest&nsfw=true"
    out = list(spider.parse_listing(page(url, models, {
        "nextCursor": "22138|364671|25494",
        "nextPage": "https://civitai.com/api/v1/models?limit=3&sort=Newest&nsfw=true&cursor=22138%7C364671%7C25494"})))
    # The next page is asked for first, so it downloads while the page's models are processed.
    (nxt,), items = out[:1], out[1:]
    assert all(isinstance(i, RawModelItem) for i in items)
    assert [i.payload for i in items] == models and [i.model_id for i in items] == [str(m["id"]) for m in models]
    assert items[0].context == {"base_url": BASE}
    # The API names its own host in nextPage: the crawl stays on the base URL, with the cursor.
    assert nxt.url.startswith(f"{BASE}/api/v1/models?")
    assert query(nxt.url) == {"limit": "100", "sort": "Newest", "nsfw": "true", "cursor": "22138|364671|25494"}
    assert "page" not in query(nxt.url)


def test_next_page_alone_is_followed_with_its_query_on_our_base():
    spider = make_spider()
    out = list(spider.parse_listing(page(f"{BASE}/api/v1/models", fixture_models()[:1], {
        "nextPage": "https://civitai.com/api/v1/models?limit=1&page=1&sort=Newest&cursor=9001%7C1"})))
    nxt = out[0]
    assert isinstance(nxt, Request) and nxt.url.startswith(f"{BASE}/api/v1/models?")
    assert query(nxt.url) == {"limit": "1", "page": "1", "sort": "Newest", "cursor": "9001|1"}


def test_a_next_page_without_cursor_is_reported_never_followed():
    spider = make_spider()
    out = list(spider.parse_listing(page(f"{BASE}/api/v1/models", fixture_models()[:2],
                                         {"nextPage": "https://civitai.com/api/v1/models?page=11&limit=100"})))
    assert len(out) == 2 and all(isinstance(i, RawModelItem) for i in out)
    assert stat(spider, "ptm/pages/failed") == 1  # so no model is reported as removed


@pytest.mark.parametrize("metadata, items", [({}, 2), ({"nextCursor": None}, 2), ({"nextCursor": ""}, 2),
                                             ({"nextCursor": None}, 0)])
def test_the_last_page_or_an_empty_one_ends_the_crawl(metadata, items):
    spider = make_spider()
    out = list(spider.parse_listing(page(f"{BASE}/api/v1/models", fixture_models()[:items], metadata)))
    assert len(out) == items and not any(isinstance(o, Request) for o in out)


def test_limit_stops_the_models_and_the_paging():
    spider = make_spider(limit="2")
    out = list(spider.parse_listing(page(f"{BASE}/api/v1/models", fixture_models()[:3], {"nextCursor": "1|3"})))
    assert [type(o) for o in out] == [RawModelItem, RawModelItem]


@pytest.mark.parametrize("body, kind", [(b'{"items": [', "malformed JSON"), (b"[]", "unexpected JSON"),
                                        (b'{"items": {"id": 1}}', "unexpected JSON"),
                                        (b"<html>Bad Gateway</html>", "malformed JSON")])
def test_a_malformed_listing_page_is_reported_by_kind(body, kind):
    spider = make_spider()
    assert list(spider.parse_listing(page(f"{BASE}/api/v1/models", [], body=body))) == []
    assert stat(spider, f"ptm/pages/failed/{kind}") == 1


def test_listing_requests_can_be_saved_in_a_jobdir():
    spider = make_spider()
    (first,) = start_requests(spider)
    nxt = list(spider.parse_listing(page(first.url, fixture_models()[:1], {"nextCursor": "7|1"})))[0]
    for request in (first, nxt):
        restored = request_from_dict(pickle.loads(pickle.dumps(request.to_dict(spider=spider))), spider=spider)
        assert (restored.url, restored.callback, restored.errback) == (request.url, request.callback, request.errback)


def test_distributed_listing_hands_each_model_off_and_delivers_the_same_item():
    from tests.services import require_service
    redis_url = require_service("Redis", os.environ.get("PTM_TEST_REDIS_URL", "redis://127.0.0.1:6379/0"),
                                start_hint="bash .ci/start-redis.sh")
    import uuid
    prefix = f"civitai-test-{uuid.uuid4().hex[:8]}"
    local = list(make_spider().parse_listing(page(f"{BASE}/api/v1/models", fixture_models()[:3])))
    spider = make_spider({"PTM_REDIS_URL": redis_url, "PTM_REDIS_PREFIX": prefix})
    try:
        handoffs = list(spider.parse_listing(page(f"{BASE}/api/v1/models", fixture_models()[:3])))
        assert len(handoffs) == 3 and all(r.url.startswith("data:") for r in handoffs)
        delivered = []
        for request in handoffs:
            copy = request_from_dict(request.to_dict(spider=spider), spider=spider)
            delivered += list(copy.callback(TextResponse(copy.url, body=b"", request=copy)))
        assert delivered == local
    finally:
        import redis
        client = redis.Redis.from_url(redis_url)
        keys = list(client.scan_iter(match=f"{prefix}:*"))
        if keys:
            client.delete(*keys)


def test_an_empty_page_that_still_gives_a_next_cursor_is_followed_not_taken_for_the_end(caplog):
    """A next cursor says the hub found more models; with -a query= the API pages Meilisearch's ids
    and then drops those the database leaves out, so a page mid-listing can be empty (civitai/civitai
    runModelSearch). Such a page ended the crawl without a word: the rest unread, exit status 0."""
    spider = make_spider()
    url = f"{BASE}/api/v1/models?limit=100&cursor=4%7C4"
    (follow,) = list(spider.parse_listing(page(url, [], {"nextCursor": "5|5"})))
    assert isinstance(follow, Request) and query(follow.url)["cursor"] == "5|5"
    assert follow.url.startswith(f"{BASE}/api/v1/models?") and follow.meta["ptm_civitai_empty_pages"] == 1
    # The models after it come, and the count of empty pages starts again.
    out = list(spider.parse_listing(page(follow.url, fixture_models()[:1], {"nextCursor": "6|6"}, request=follow)))
    (after,) = [o for o in out if isinstance(o, Request)]
    assert len(out) == 2 and "ptm_civitai_empty_pages" not in after.meta
    # But not for ever: a run of empty pages is reported (exit status 1, no model reported removed).
    request = follow
    for n in range(2, 20):
        out = list(spider.parse_listing(page(request.url, [], {"nextCursor": f"{n}|{n}"}, request=request)))
        if not out:
            break
        (request,) = out
    assert n == 11 and stat(spider, "ptm/pages/failed/empty pages with a next cursor") == 1
    said = [r.getMessage() for r in caplog.records if r.levelname == "ERROR"]
    assert any("empty pages with a next cursor (10 before this one" in line for line in said), said
