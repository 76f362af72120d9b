from urllib.parse import parse_qs, urlsplit

import pytest
from scrapy.http import Request, TextResponse

from ptmscrape.items import RawModelItem
from ptmscrape.spiders_base import LISTING_PRIORITY, next_link
from spiders.huggingface import HuggingfaceSpider
from tests.helpers import json_response, spider_maker, start_requests, text_response
from tests.replicas.huggingface import fixture_models

BASE = "https://hub.example"


make_spider = spider_maker(HuggingfaceSpider, {"PTM_HUGGINGFACE_URL": BASE})


def page(url, models, link=None):
    return json_response(url, models, headers={"Link": f'<{link}>; rel="next"'} if link else None)


def test_next_link_reads_github_style_headers():
    nxt = "https://huggingface.co/api/models?limit=10&cursor=eyIkb3IiOltdfQ%3D%3D"
    assert next_link(f'<{nxt}>; rel="next"') == nxt
    assert next_link(f'<https://x/prev>; rel="prev", <{nxt}>; rel="next"'.encode()) == nxt
    assert next_link('<https://x/last>; rel="last"') is None
    assert next_link(None) is None


def test_listing_url_asks_for_the_fields_and_filters():
    spider = make_spider(limit="5", sort="likes", search="bert", author="google")
    (request,) = start_requests(spider)
    parts = urlsplit(request.url)
    query = parse_qs(parts.query)
    assert f"{parts.scheme}://{parts.netloc}{parts.path}" == f"{BASE}/api/models"
    assert query["sort"] == ["likes"] and query["direction"] == ["-1"]
    assert query["limit"] == ["5"]  # no bigger page than the limit
    assert query["search"] == ["bert"] and query["author"] == ["google"]
    assert {"cardData", "config", "sha", "downloadsAllTime", "safetensors", "usedStorage"} <= set(query["expand[]"])


def test_listing_without_expand_uses_full_config_carddata():
    spider = make_spider({"PTM_HUGGINGFACE_EXPAND": []})
    (request,) = start_requests(spider)
    query = parse_qs(urlsplit(request.url).query)
    assert (query["full"], query["config"], query["cardData"]) == (["true"], ["true"], ["true"])


def test_listing_page_yields_raw_items_then_the_next_page():
    spider = make_spider()
    models = fixture_models()
    url = f"{BASE}/api/models?limit=4"
    out = list(spider.parse_listing(page(url, models, link=f"{BASE}/api/models?cursor=abc")))
    items = [o for o in out if isinstance(o, RawModelItem)]
    requests = [o for o in out if isinstance(o, Request)]
    assert [i.model_id for i in items] == [m["id"] for m in models]
    assert items[0].payload == models[0]  # untouched
    assert items[0].context["base_url"] == BASE and items[0].url == url
    assert [r.url for r in requests] == [f"{BASE}/api/models?cursor=abc"]


def test_each_listed_model_carries_its_text_as_the_hub_served_it():
    spider = make_spider()
    body = ('[ {"id": "o/a", "_id": "1", "cardData": {"language": ["fr"]}, "x" : 1.50},\n'
            '  {"id":"o/b","_id":"2","description":"caf\u00e9 \u6a21\u578b"} ]')
    url = f"{BASE}/api/models?limit=2"
    items = [o for o in spider.parse_listing(text_response(url, body)) if isinstance(o, RawModelItem)]
    assert [i.payload_json for i in items] == [
        '{"id": "o/a", "_id": "1", "cardData": {"language": ["fr"]}, "x" : 1.50}',
        '{"id":"o/b","_id":"2","description":"caf\u00e9 \u6a21\u578b"}']
    assert items[1].payload["description"] == "caf\u00e9 \u6a21\u578b"


@pytest.mark.parametrize("body, kind", [('[{"id": "o/a"}, {"id": ', "malformed JSON"),
                                        ('{"error": "rate limited"}', "unexpected JSON")])
def test_a_malformed_or_unexpected_listing_page_yields_nothing_and_is_reported(body, kind):
    spider = make_spider()
    out = list(spider.parse_listing(text_response(f"{BASE}/api/models?limit=2", body)))
    assert out == []
    assert spider.crawler.stats.get_value(f"ptm/pages/failed/{kind}") == 1


def test_last_page_has_no_next_request():
    out = list(make_spider().parse_listing(page(f"{BASE}/api/models", fixture_models())))
    assert not any(isinstance(o, Request) for o in out)


def test_limit_stops_items_and_paging():
    spider = make_spider(limit="3")
    out = list(spider.parse_listing(page(f"{BASE}/api/models", fixture_models(), link=f"{BASE}/next")))
    assert len(out) == 3 and all(isinstance(o, RawModelItem) for o in out)


def test_malformed_page_is_reported_with_url_not_raised():
    spider = make_spider()
    bad = TextResponse(f"{BASE}/api/models?p=2", body=b'[{"id": "a/b", "downl', request=Request(f"{BASE}/x"))
    assert list(spider.parse_listing(bad)) == []
    assert spider.crawler.stats.get_value("ptm/pages/failed") == 1


def test_models_argument_fetches_each_model_by_id():
    spider = make_spider(models="bert-base-uncased, google/vit-base-patch16-224")
    urls = [r.url for r in start_requests(spider)]
    assert urls == [f"{BASE}/api/models/bert-base-uncased", f"{BASE}/api/models/google/vit-base-patch16-224"]


def test_scrapyd_job_argument_is_accepted_and_bad_limit_refused():
    assert make_spider(_job="abc123").limit is None
    with pytest.raises(ValueError, match="limit"):
        make_spider(limit="lots")


def test_a_legacy_id_answered_in_place_is_asked_under_its_namespace():
    spider = make_spider(models="gpt2")
    legacy = {"_id": "621ffdc036468d709f17434d", "id": "gpt2", "author": "openai-community"}
    (request,) = spider.parse_model(page(f"{BASE}/api/models/gpt2", legacy))
    assert request.url == f"{BASE}/api/models/openai-community/gpt2" and request.dont_filter
    canonical = {**legacy, "id": "openai-community/gpt2"}
    (item,) = spider.parse_namespaced(page(request.url, canonical), **request.cb_kwargs)
    assert item.model_id == "openai-community/gpt2" and item.payload == canonical
    # The name now belongs to another model: the legacy body is its own record.
    other = {**canonical, "_id": "650000000000000000000001"}
    (item,) = spider.parse_namespaced(page(request.url, other), **request.cb_kwargs)
    assert (item.model_id, item.payload, item.url) == ("gpt2", legacy, f"{BASE}/api/models/gpt2")


def test_the_next_page_is_asked_for_before_the_pages_models_and_ahead_of_queued_requests():
    spider = make_spider()
    out = list(spider.parse_listing(page(f"{BASE}/api/models", fixture_models(), link=f"{BASE}/next")))
    assert isinstance(out[0], Request) and out[0].url == f"{BASE}/next"
    assert out[0].priority == LISTING_PRIORITY > 0
    assert all(isinstance(o, RawModelItem) for o in out[1:])


def test_a_page_that_reaches_the_limit_asks_for_no_next_page():
    n = len(fixture_models())
    for limit, asks in ((n, False), (n + 1, True)):
        spider = make_spider(limit=str(limit))
        out = list(spider.parse_listing(page(f"{BASE}/api/models", fixture_models(), link=f"{BASE}/next")))
        assert any(isinstance(o, Request) for o in out) is asks, limit


def test_with_history_the_next_page_keeps_the_ordinary_priority():
    spider = make_spider(history="refs")
    out = list(spider.parse_listing(page(f"{BASE}/api/models", fixture_models(), link=f"{BASE}/next")))
    assert out[0].url == f"{BASE}/next" and out[0].priority == 0


def test_without_a_limit_the_next_page_is_asked_for_before_the_page_is_decoded():
    spider = make_spider()
    url, nxt = f"{BASE}/api/models?limit=2", f"{BASE}/api/models?cursor=abc"
    cut_short = text_response(url, '[{"id": "o/a", "_id": "1"}, {"id": ', headers={"Link": f'<{nxt}>; rel="next"'})
    out = list(spider.parse_listing(cut_short))
    assert [o.url for o in out] == [nxt]  # the page itself is fetched again or reported
    assert out[0].priority == LISTING_PRIORITY


@pytest.mark.parametrize("link", ["file:///tmp/secret.json", "http://hub.example/api/models?cursor=abc",
                                  "https://evil.example/api/models?cursor=abc"])
def test_a_next_link_off_the_hub_is_not_followed_and_the_page_is_reported(link):
    spider = make_spider()
    out = list(spider.parse_listing(page(f"{BASE}/api/models", fixture_models()[:2], link=link)))
    assert [o for o in out if isinstance(o, Request)] == []
    assert len([o for o in out if isinstance(o, RawModelItem)]) == 2  # this page's models are kept
    assert spider.crawler.stats.get_value("ptm/pages/failed/next page link leaves the hub") == 1


def test_a_root_relative_next_link_stays_under_a_mirrors_path():
    spider = spider_maker(HuggingfaceSpider, {"PTM_HUGGINGFACE_URL": f"{BASE}/mirror/hf"})()
    out = list(spider.parse_listing(page(f"{BASE}/mirror/hf/api/models", fixture_models()[:2],
                                         link="/api/models?cursor=abc")))
    assert [o.url for o in out if isinstance(o, Request)] == [f"{BASE}/mirror/hf/api/models?cursor=abc"]


@pytest.mark.parametrize("link", [f"{BASE}/api/models?cursor=abc", "//hub.example/api/models?cursor=abc"])
def test_an_absolute_next_link_to_the_hosts_root_stays_under_a_mirrors_path(link):
    """A proxy at a path that passes its Host header on gets the Hub's Link built from that host,
    at the root (``https://proxy/api/models?cursor=…``): it was followed out of the mirror's path."""
    spider = spider_maker(HuggingfaceSpider, {"PTM_HUGGINGFACE_URL": f"{BASE}/mirror/hf"})()
    out = list(spider.parse_listing(page(f"{BASE}/mirror/hf/api/models", fixture_models()[:2], link=link)))
    assert [o.url for o in out if isinstance(o, Request)] == [f"{BASE}/mirror/hf/api/models?cursor=abc"]
    # A link already under the path is kept as it is.
    kept = f"{BASE}/mirror/hf/api/models?cursor=def"
    out = list(spider.parse_listing(page(f"{BASE}/mirror/hf/api/models", fixture_models()[:2], link=kept)))
    assert [o.url for o in out if isinstance(o, Request)] == [kept]


def test_a_rename_redirect_to_the_hosts_root_gets_a_mirrors_path_back():
    spider = spider_maker(HuggingfaceSpider, {"PTM_HUGGINGFACE_URL": f"{BASE}/mirror/hf"})()
    asked = f"{BASE}/mirror/hf/api/models/bert-base-uncased"
    assert spider.rooted_location(asked, "/api/models/google-bert/bert-base-uncased") == \
        "/mirror/hf/api/models/google-bert/bert-base-uncased"
    assert spider.rooted_location(asked, "/mirror/hf/api/models/a/b") is None  # the mirror put it back
    assert spider.rooted_location(asked, "a/b") is None and spider.rooted_location(asked, "//x/a") is None
    assert spider.rooted_location(f"{BASE}/elsewhere/x", "/api/models/a/b") is None  # not under the base
    assert make_spider().rooted_location(f"{BASE}/api/models/x", "/api/models/a/b") is None  # no path


def test_empty_pages_with_next_links_end_the_listing():
    spider = make_spider()
    links = [f"{BASE}/api/models?cursor={c}" for c in "abc"]
    listed = page(f"{BASE}/api/models", fixture_models()[:2], link=links[0])
    empty = [page(links[0], [], link=links[1]), page(links[1], [], link=links[2])]
    assert [o.url for o in spider.parse_listing(listed) if isinstance(o, Request)] == [links[0]]
    # Asked for before the first empty page was decoded; after it, no page is asked for early.
    assert [o.url for o in spider.parse_listing(empty[0])] == [links[1]]
    assert list(spider.parse_listing(empty[1])) == []


def test_with_a_limit_the_next_page_waits_for_the_count():
    spider = make_spider(limit="3")
    models = fixture_models()[:2]
    out = list(spider.parse_listing(page(f"{BASE}/api/models?limit=3", models, link=f"{BASE}/api/models?cursor=x")))
    assert isinstance(out[0], Request)  # still first: 2 listed, 1 more wanted
    out = list(make_spider(limit="2").parse_listing(
        page(f"{BASE}/api/models?limit=2", models, link=f"{BASE}/api/models?cursor=x")))
    assert [o for o in out if isinstance(o, Request)] == []  # the page reaches the limit: no next page


def test_a_page_nested_deeper_than_the_decoder_reads_is_reported_not_a_crash():
    spider = make_spider()
    deep = "[" * 1100 + "]" * 1100
    body = f'[{{"id": "o/a", "_id": "1"}}, {{"id": "o/b", "_id": "2", "cardData": {deep}}}]'
    out = list(spider.parse_listing(text_response(f"{BASE}/api/models", body)))
    assert [o for o in out if isinstance(o, RawModelItem)] == []
    assert spider.crawler.stats.get_value("ptm/pages/failed/malformed JSON") == 1


def test_a_next_page_that_cannot_be_scheduled_at_the_headers_is_asked_for_by_the_callback(caplog):
    """An error scheduling the next page in ``headers_received`` (a Redis or disk error in the
    scheduler) is only logged by Scrapy's signal dispatch: the listing ended there and the crawl
    finished with exit status 0. The page's callback now asks for it, unfiltered (the dupefilter may
    have noted it before the error)."""
    from spiders.huggingface import NEXT_PAGE_ASKED

    spider = make_spider()
    scheduled = []

    class Engine:
        def crawl(self, request):
            scheduled.append(request)
            raise ConnectionError("Redis is restarting")

    spider.crawler.engine = Engine()
    (first,) = start_requests(spider)
    nxt = f"{BASE}/api/models?cursor=abc"
    with caplog.at_level("WARNING"):
        spider.listing_headers_received({"Link": f'<{nxt}>; rel="next"'}, first)
    assert [r.url for r in scheduled] == [nxt] and not first.meta.get(NEXT_PAGE_ASKED)
    assert (f"Could not schedule the next listing page {nxt} as the headers of {first.url} arrived "
            "(ConnectionError('Redis is restarting'))") in caplog.text
    models = fixture_models()[:2]
    out = list(spider.parse_listing(page(first.url, models, link=nxt).replace(request=first)))
    (again,) = [r for r in out if isinstance(r, Request)]
    assert again.url == nxt and again.dont_filter and again.callback == spider.parse_listing
    assert len([i for i in out if isinstance(i, RawModelItem)]) == 2


def test_a_next_page_scheduled_at_the_headers_is_not_asked_for_again():
    from spiders.huggingface import NEXT_PAGE_ASKED

    spider = make_spider()
    scheduled = []
    spider.crawler.engine = type("Engine", (), {"crawl": lambda self, request: scheduled.append(request)})()
    (first,) = start_requests(spider)
    nxt = f"{BASE}/api/models?cursor=abc"
    spider.listing_headers_received({"Link": f'<{nxt}>; rel="next"'}, first)
    assert [r.url for r in scheduled] == [nxt] and first.meta[NEXT_PAGE_ASKED]
    out = list(spider.parse_listing(page(first.url, fixture_models()[:2], link=nxt).replace(request=first)))
    assert not [r for r in out if isinstance(r, Request)]


def test_an_empty_page_that_ends_the_listing_says_so(caplog):
    """An empty page with a next link ends the listing (the Hub sends none; following them could
    go on for ever), but it ended without a word: the crawl looked complete."""
    spider = make_spider()
    links = [f"{BASE}/api/models?cursor={c}" for c in "ab"]
    list(spider.parse_listing(page(f"{BASE}/api/models", fixture_models()[:2], link=links[0])))
    list(spider.parse_listing(page(links[0], [], link=links[1])))  # its next page was asked already
    assert "lists no model" not in caplog.text
    with caplog.at_level("WARNING", logger="huggingface"):
        assert list(spider.parse_listing(page(links[1], [], link=f"{BASE}/api/models?cursor=c"))) == []
    assert (f"Listing page {links[1]} lists no model but links a next page ({BASE}/api/models?cursor=c): "
            "the listing ends here") in caplog.text
