"""Ollama: listing, tags page and manifest callbacks on fixture pages (the tag chain, failures
recorded on their tag, hostile names, limit, JOBDIR-safe requests)."""

import hashlib
import pickle

import pytest
from scrapy.http import Request, TextResponse
from scrapy.spidermiddlewares.httperror import HttpError
from scrapy.utils.request import request_from_dict
from twisted.python.failure import Failure

from ptmscrape.items import RawModelItem
from spiders.ollama import MANIFEST_ACCEPT, OllamaSpider
from tests.helpers import fixture_response, html_response, spider_maker, start_requests
from tests.replicas.ollama import FIXTURES, fixture_models, manifest_bytes

SITE = "https://mirror.example/ollama"
REGISTRY = "https://mirror.example/registry"
LISTING_NAMES = ["llama3.2", "gemma2", "nomic-embed-text", "llava", "magistral"]


make_spider = spider_maker(OllamaSpider, {"PTM_OLLAMA_URL": SITE, "PTM_OLLAMA_REGISTRY_URL": REGISTRY})


def listing(spider, body=None):
    url = f"{SITE}/library"
    response = fixture_response(FIXTURES / "library.html", url) if body is None else html_response(url, body)
    return list(spider.parse_listing(response))


def tags(spider, request, body=None):
    name = request.cb_kwargs["model"]["Name"]
    response = (fixture_response(FIXTURES / "library" / name / "tags.html", request.url, request) if body is None
                else html_response(request.url, body, request))
    return list(spider.parse_tags(response, **request.cb_kwargs))


def manifest_response(request, body=None):
    model, index = request.cb_kwargs["model"], request.cb_kwargs["index"]
    body = body if body is not None else manifest_bytes(model["Name"], model["Tags"][index]["Tag"])
    return TextResponse(request.url, body=body, request=request, headers={
        "Content-Type": "application/vnd.docker.distribution.manifest.v2+json",
        "Docker-Content-Digest": "sha256:" + hashlib.sha256(body).hexdigest()})


def run_chain(spider, request, answer=manifest_response):
    """Follow one model's manifest requests to its raw item."""
    out = [request]
    while out and isinstance(out[0], Request):
        (request,) = out
        out = list(request.callback(answer(request), **request.cb_kwargs))
    return out


def stat(spider, key):
    return spider.crawler.stats.get_value(key)


def test_start_is_the_library_listing():
    (request,) = start_requests(make_spider())
    assert request.url == f"{SITE}/library" and request.callback.__name__ == "parse_listing"
    assert start_requests(make_spider(limit="0")) == []


def test_listing_requests_each_models_tags_page_with_what_the_listing_shows():
    requests = listing(make_spider())
    assert [r.url for r in requests] == [f"{SITE}/library/{n}/tags" for n in LISTING_NAMES]
    assert requests[0].cb_kwargs["model"] == {
        "Namespace": "library", "Name": "llama3.2",
        "Description": "Meta's Llama 3.2 goes small with 1B and 3B models.",
        "Capabilities": ["tools"], "Sizes": ["1b", "3b"], "PullCount": "31.5M", "TagCount": "3",
        "Updated": "10 months ago", "UpdatedAt": "Sep 25, 2024 5:01 PM UTC"}
    assert requests[2].cb_kwargs["model"]["Capabilities"] == ["embedding"]
    assert requests[2].cb_kwargs["model"]["Sizes"] == []


def test_limit_bounds_the_models_started():
    assert [r.cb_kwargs["model"]["Name"] for r in listing(make_spider(limit="2"))] == LISTING_NAMES[:2]


def test_hostile_names_in_the_listing_are_skipped_and_counted():
    body = (FIXTURES / "library.html").read_text()
    body = body.replace('title="gemma2"', 'title="../../etc/passwd"').replace('title="llava"', 'title=""')
    spider = make_spider()
    assert [r.cb_kwargs["model"]["Name"] for r in listing(spider, body)] == ["llama3.2", "nomic-embed-text",
                                                                           "magistral"]
    assert stat(spider, "ptm/pages/entries_without_name") == 2


@pytest.mark.parametrize("cut", ["</ul>", "x-test-model "])
def test_a_truncated_or_empty_listing_is_reported(cut):
    body = (FIXTURES / "library.html").read_text()
    body = body[:body.index(cut)] if cut == "</ul>" else body.replace("x-test-model ", "data-x ")
    spider = make_spider()
    assert listing(spider, body) == []
    assert stat(spider, "ptm/pages/failed") == 1


def test_tags_page_starts_the_manifest_chain_on_the_registry():
    spider = make_spider()
    (request,) = tags(spider, listing(spider)[0])
    assert request.url == f"{REGISTRY}/v2/library/llama3.2/manifests/latest"
    assert request.headers["Accept"] == MANIFEST_ACCEPT.encode()
    assert (request.callback.__name__, request.errback.__name__) == ("parse_manifest", "manifest_failed")
    model = request.cb_kwargs["model"]
    assert [t["Tag"] for t in model["Tags"]] == ["latest", "1b", "3b"]
    assert model["Tags"][1] == {"Tag": "1b", "ShortDigest": hashlib.sha256(
        manifest_bytes("llama3.2", "1b")).hexdigest()[:12], "Size": "1.3GB", "Context": "128K", "Input": "Text",
        "Manifest": None, "ManifestDigest": None, "Error": None}
    assert model["URL"] == f"{SITE}/library/llama3.2"
    restored = request_from_dict(pickle.loads(pickle.dumps(request.to_dict(spider=spider))), spider=spider)
    assert (restored.callback, restored.errback, restored.cb_kwargs) == (
        request.callback, request.errback, request.cb_kwargs)


def test_each_model_is_one_item_with_every_tags_manifest():
    spider = make_spider()
    items = {}
    for request in listing(spider):
        (first,) = tags(spider, request)
        (item,) = run_chain(spider, first)
        items[item.model_id] = item
    assert sorted(items) == sorted(f"library/{n}" for n in fixture_models())
    magistral = items["library/magistral"]
    assert isinstance(magistral, RawModelItem) and magistral.context == {"base_url": SITE}
    assert [t["Tag"] for t in magistral.payload["Tags"]] == ["latest", "24b", "24b-small-2506-q8_0"]
    for tag in magistral.payload["Tags"]:
        served = manifest_bytes("magistral", tag["Tag"])
        assert tag["ManifestDigest"] == "sha256:" + hashlib.sha256(served).hexdigest()
        assert tag["ShortDigest"] == tag["ManifestDigest"][7:19] and tag["Error"] is None
        assert tag["Manifest"]["layers"][0]["mediaType"] == "application/vnd.ollama.image.model"


def test_a_failed_manifest_is_recorded_on_its_tag_and_the_chain_goes_on():
    spider = make_spider()
    (first,) = tags(spider, listing(spider)[1])  # gemma2: latest, 2b, 9b

    def answer(request):
        if request.cb_kwargs["index"] == 1:
            failure = Failure(HttpError(TextResponse(request.url, status=404, body=b"{}", request=request)))
            failure.request = request
            return failure
        return manifest_response(request)

    out = [first]
    while out and isinstance(out[0], Request):
        (request,) = out
        response = answer(request)
        out = list(request.errback(response) if isinstance(response, Failure)
                   else request.callback(response, **request.cb_kwargs))
    (item,) = out
    latest, two_b, nine_b = item.payload["Tags"]
    assert two_b["Error"] == "HTTP 404" and two_b["Manifest"] is None
    assert latest["Manifest"] and nine_b["Manifest"] and not latest["Error"]
    assert stat(spider, "ptm/pages/failed/HTTP 404") == 1


def test_a_malformed_manifest_outside_a_crawl_is_reported_and_recorded():
    spider = make_spider()
    (first,) = tags(spider, listing(spider)[2])  # nomic-embed-text: latest, v1.5
    (second,) = list(first.callback(manifest_response(first, b'{"schemaVersion": 2, "lay'), **first.cb_kwargs))
    (item,) = list(second.callback(manifest_response(second, b'{"errors": []}'), **second.cb_kwargs))
    assert [t["Error"] for t in item.payload["Tags"]] == ["malformed manifest", "manifest without layers"]
    assert stat(spider, "ptm/pages/failed") == 2


def test_tags_that_are_not_valid_tags_are_skipped():
    body = (FIXTURES / "library/llama3.2/tags.html").read_text().replace("llama3.2:1b", "llama3.2:..%2F..%2Fx")
    spider = make_spider()
    (request,) = tags(spider, listing(spider)[0], body)
    assert [t["Tag"] for t in request.cb_kwargs["model"]["Tags"]] == ["latest", "3b"]
    assert stat(spider, "ptm/pages/invalid_tags") == 1


def test_a_tags_page_without_its_model_name_is_reported():
    body = (FIXTURES / "library/llama3.2/tags.html").read_text().replace("x-test-model-name", "data-name")
    spider = make_spider()
    assert tags(spider, listing(spider)[0], body) == []
    assert stat(spider, "ptm/pages/failed") == 1


def test_distributed_the_finished_model_is_handed_off_and_delivers_the_same_item():
    import os
    import uuid

    from tests.services import require_service
    redis_url = require_service("Redis", os.environ.get("PTM_TEST_REDIS_URL", "redis://127.0.0.1:6379/0"),
                                start_hint="bash .ci/start-redis.sh")
    prefix = f"ollama-test-{uuid.uuid4().hex[:8]}"
    local = make_spider()
    (expected,) = run_chain(local, tags(local, listing(local)[4])[0])
    spider = make_spider({"PTM_REDIS_URL": redis_url, "PTM_REDIS_PREFIX": prefix})
    try:
        request = tags(spider, listing(spider)[4])[0]
        out = [request]
        while out and not out[0].url.startswith("data:"):
            (request,) = out
            out = list(request.callback(manifest_response(request), **request.cb_kwargs))
        (handoff,) = out
        copy = request_from_dict(handoff.to_dict(spider=spider), spider=spider)
        (delivered,) = list(copy.callback(TextResponse(copy.url, body=b"", request=copy)))
        assert delivered == expected
    finally:
        import redis
        client = redis.Redis.from_url(redis_url)
        keys = list(client.scan_iter(match=f"{prefix}:*"))
        if keys:
            client.delete(*keys)


def test_a_tags_page_that_lists_no_tags_is_reported_not_stored_without_versions():
    """Every library model has at least one tag: a tags page where none is found (the site's tag
    links changed shape, or the rows were cut) was stored as a model without versions, exit 0."""
    body = (FIXTURES / "library/llama3.2/tags.html").read_text().replace("/library/llama3.2:", "/library/llama3.2/")
    spider = make_spider()
    assert tags(spider, listing(spider)[0], body) == []
    assert stat(spider, "ptm/pages/failed") == 1
    assert stat(spider, "ptm/pages/failed/no tags") == 1
