"""ModelZoo spider callbacks on fixture responses: the API's JSON pages and the rendered site's HTML
(``tests/fixtures/modelzoo/rendered/``: what Splash returned for the replica's JavaScript pages)."""


import pytest
from scrapy.http import HtmlResponse, Request

from ptmscrape.items import RawModelItem
from ptmscrape.rendering import RENDER_SCRIPT
from spiders.modelzoo import ModelzooSpider
from tests.helpers import fixture_response, html_response, json_response, spider_maker, start_requests, text_response
from tests.replicas.modelzoo import DETAIL_KEYS, LISTING_KEYS, detail, fixture_models, listing_entry

BASE = "https://zoo.example"
RENDERED_BASE = "http://127.0.0.1:8000"  # the fixtures' (rewritten) replica URL
SPLASH = {"SPLASH_URL": "http://127.0.0.1:8050"}


make_spider = spider_maker(ModelzooSpider, {"PTM_MODELZOO_URL": BASE})


def rendered_spider(**kwargs):
    return make_spider({**SPLASH, "PTM_MODELZOO_URL": RENDERED_BASE}, render="splash", **kwargs)


def api_page(url, obj, body=None):
    if body is not None:
        return text_response(url, body, headers={"Content-Type": "application/json"})
    return json_response(url, obj)


def listing(offset, models):
    return api_page(f"{BASE}/api/models/{offset}/", {"models": [listing_entry(m) for m in models]})


def rendered(name, path):
    return fixture_response(f"modelzoo/rendered/{name}", f"{RENDERED_BASE}{path}")


def split(out):
    out = list(out)
    return ([o for o in out if isinstance(o, RawModelItem)], [o for o in out if isinstance(o, Request)])


def by_slug(slug):
    return next(m for m in fixture_models() if m["slug"] == slug)


# -- API -----------------------------------------------------------------------------------------

def test_fixture_payloads_have_exactly_the_hubs_keys():
    for model in fixture_models():
        assert tuple(listing_entry(model)) == LISTING_KEYS
        assert tuple(detail(model)) == DETAIL_KEYS and "slug" not in detail(model)


def test_crawl_starts_at_offset_zero_of_the_api():
    (request,) = start_requests(make_spider())
    assert request.url == f"{BASE}/api/models/0/"
    assert request.callback.__name__ == "parse_listing" and request.cb_kwargs == {"offset": 0}


def test_listing_page_requests_each_model_then_the_page_at_the_next_offset():
    spider = make_spider()
    models = fixture_models()[:5]
    items, requests = split(spider.parse_listing(listing(0, models), offset=0))
    assert items == []  # the raw payload is the detail object
    # The next page first: it downloads while the models are fetched.
    assert [r.url for r in requests] == [f"{BASE}/api/models/5/"] + \
        [f"{BASE}/api/models/{m['slug']}/" for m in models]
    assert requests[1].cb_kwargs == {"slug": models[0]["slug"]}
    assert requests[0].cb_kwargs == {"offset": 5}


def test_paging_stops_at_an_empty_page_and_at_a_page_of_known_slugs():
    spider = make_spider()
    models = fixture_models()
    list(spider.parse_listing(listing(0, models), offset=0))
    assert split(spider.parse_listing(listing(14, []), offset=14)) == ([], [])
    # An API that ignores the number and serves the whole list again: nothing new, no next page.
    assert split(spider.parse_listing(listing(14, models), offset=14)) == ([], [])


def test_detail_response_is_the_raw_payload_untouched():
    spider = make_spider()
    model = by_slug("openpose-caffe")
    url = f"{BASE}/api/models/openpose-caffe/"
    (item,) = spider.parse_model(api_page(url, detail(model)), slug="openpose-caffe")
    assert item.hub == "modelzoo" and item.model_id == "openpose-caffe" and item.url == url
    assert item.payload == detail(model) and item.context == {"base_url": BASE, "slug": "openpose-caffe"}


def test_model_with_null_link_and_papers_is_yielded():
    model = by_slug("ray")
    assert model["link"] is None and model["papers"] is None
    (item,) = make_spider().parse_model(api_page(f"{BASE}/api/models/ray/", detail(model)), slug="ray")
    assert item.payload["link"] is None


def test_bad_json_is_reported_with_the_url_and_the_crawl_goes_on():
    spider = make_spider()
    bad = api_page(f"{BASE}/api/models/detectron2/", None, body=b'{"title": "Detectron2", "sta')
    assert list(spider.parse_model(bad, slug="detectron2")) == []
    not_listing = api_page(f"{BASE}/api/models/0/", {"detail": "Not found."})
    assert list(spider.parse_listing(not_listing, offset=0)) == []
    stats = spider.crawler.stats
    assert stats.get_value("ptm/pages/failed") == 2
    assert stats.get_value("ptm/pages/failed/malformed JSON") == 1
    assert stats.get_value("ptm/pages/failed/unexpected JSON") == 1


def test_listing_entries_without_a_slug_are_counted_and_skipped():
    spider = make_spider()
    response = api_page(f"{BASE}/api/models/0/", {"models": [{"title": "no slug"}, "junk", {"slug": "ray"}]})
    _, requests = split(spider.parse_listing(response, offset=0))
    assert [r.url for r in requests] == [f"{BASE}/api/models/3/", f"{BASE}/api/models/ray/"]
    assert spider.crawler.stats.get_value("ptm/pages/entries_without_slug") == 2


def test_dot_slugs_are_counted_and_skipped_not_requested_as_the_listing_or_its_parent(caplog):
    spider = make_spider()
    response = api_page(f"{BASE}/api/models/0/", {"models": [{"slug": "."}, {"slug": ".."}, {"slug": "ray"}]})
    _, requests = split(spider.parse_listing(response, offset=0))
    assert [r.url for r in requests] == [f"{BASE}/api/models/3/", f"{BASE}/api/models/ray/"]
    assert spider.crawler.stats.get_value("ptm/pages/entries_without_slug") == 2
    assert f"Listing entry without a usable slug on {BASE}/api/models/0/: '..'" in caplog.text
    rendered_listing = ('<html><body><a class="model-detail-div box-shadow w-100" href="/model/%2E%2E">x</a>'
                        '<a class="model-detail-div box-shadow w-100" href="/model/.">x</a>'
                        '<a class="model-detail-div box-shadow w-100" href="/model/ray">x</a></body></html>')
    spider = rendered_spider()
    _, requests = split(spider.parse_listing_page(html_response(f"{RENDERED_BASE}/", rendered_listing)))
    assert [r.cb_kwargs for r in requests] == [{"slug": "ray"}]
    assert spider.crawler.stats.get_value("ptm/pages/entries_without_slug") == 2
    with pytest.raises(ValueError, match="name no model"):
        make_spider(models="ray,..")


def test_limit_caps_the_models_requested_and_stops_paging():
    spider = make_spider(limit="3")
    _, requests = split(spider.parse_listing(listing(0, fixture_models()[:5]), offset=0))
    assert [r.cb_kwargs for r in requests] == [{"slug": m["slug"]} for m in fixture_models()[:3]]


def test_models_argument_fetches_given_slugs_and_quotes_them():
    spider = make_spider(models="ray, a/b")
    assert [r.url for r in start_requests(spider)] == [f"{BASE}/api/models/ray/", f"{BASE}/api/models/a%2Fb/"]


def test_render_argument_is_checked_and_splash_needs_a_splash_url():
    with pytest.raises(ValueError, match="render"):
        make_spider(render="selenium")
    with pytest.raises(ValueError, match="SPLASH_URL"):
        make_spider(render="splash")


# -- rendered site (Splash) ----------------------------------------------------------------------

def test_splash_crawl_starts_at_the_homepage_through_splash():
    (request,) = start_requests(make_spider(SPLASH, render="splash"))
    assert request.url == f"{BASE}/"
    assert request.meta["splash"]["endpoint"] == "execute"
    assert request.meta["splash"]["args"]["wait"] == 1.0
    assert request.meta["splash"]["args"]["lua_source"] == RENDER_SCRIPT


def test_rendered_homepage_cards_lead_to_model_pages_and_the_next_page():
    spider = rendered_spider()
    items, requests = split(spider.parse_listing_page(rendered("home.html", "/")))
    slugs = [m["slug"] for m in fixture_models()[:5]]
    assert items == []
    assert [r.url for r in requests] == [f"{RENDERED_BASE}/?offset=5"] + \
        [f"{RENDERED_BASE}/model/{s}" for s in slugs]
    assert all("splash" in r.meta for r in requests)
    assert [r.cb_kwargs for r in requests[1:]] == [{"slug": s} for s in slugs]


@pytest.mark.parametrize("link", ["http://127.0.0.2:8000/?offset=5", "//127.0.0.2/?offset=5",
                                  "file:///etc/passwd", "https://127.0.0.1:8000/?offset=5"])
def test_a_rendered_next_page_off_the_hub_is_not_followed_and_the_page_is_reported(link):
    spider = rendered_spider()
    page = ('<html><body><a class="model-detail-div box-shadow w-100" href="/model/ray">x</a>'
            f'<a class="next-page" href="{link}">next</a></body></html>')
    _, requests = split(spider.parse_listing_page(html_response(f"{RENDERED_BASE}/", page)))
    assert [r.url for r in requests] == [f"{RENDERED_BASE}/model/ray"]  # this page's model is kept
    assert spider.crawler.stats.get_value("ptm/pages/failed/next page link leaves the hub") == 1


def test_rendered_empty_page_ends_the_listing():
    spider = rendered_spider()
    assert list(spider.parse_listing_page(rendered("home-offset-14.html", "/?offset=14"))) == []
    assert spider.crawler.stats.get_value("ptm/pages/failed") is None


def test_rendered_model_page_with_the_assumed_extras_gives_the_same_payload_as_the_api():
    spider = rendered_spider()
    (item,) = spider.parse_model_page(rendered("model-gluon-cv.html", "/model/gluon-cv"), slug="gluon-cv")
    assert item.model_id == "gluon-cv" and item.url == f"{RENDERED_BASE}/model/gluon-cv"
    assert item.payload == detail(by_slug("gluon-cv"))
    assert list(item.payload) == list(DETAIL_KEYS)  # same key order: same stored payload file


def documented(model):
    """The detail object as the documented markup alone gives it: no title, description,
    long_desc, papers or id; the categories without their (unknown) ids."""
    return {**detail(model), "title": None, "description": None, "long_desc": None, "papers": None,
            "id": None, "categories": [{**c, "id": None} for c in model["categories"]]}


@pytest.mark.parametrize("slug", ["stylegan", "ray", "tts"])
def test_rendered_model_page_in_the_documented_markup_gives_framework_categories_stars_and_link(slug):
    spider = rendered_spider()
    response = rendered(f"model-{slug}.html", f"/model/{slug}")
    assert not response.css(".model-page, a.model-category")  # only the markup the real site is known to have
    (item,) = spider.parse_model_page(response, slug=slug)
    assert item.payload == documented(by_slug(slug))
    assert list(item.payload) == list(DETAIL_KEYS)


def test_rendered_categories_are_matched_to_the_hubs_list_by_title():
    page = ('<html><body><div class="model-info-div box-shadow"><h5>Model Information</h5>'
            '<div><span>Framework</span><span>jax</span></div>'
            '<div><span>Category</span><span>graph, Quantum Stuff ,Self-Supervised Learning</span></div>'
            '<div><span>GitHub Stars</span><span>1,204</span></div></div></body></html>')
    (item,) = rendered_spider().parse_model_page(html_response(f"{RENDERED_BASE}/model/q", page), slug="q")
    assert item.payload["categories"] == [
        {"id": None, "slug": "graph", "title": "Graph", "short_title": "Graph"},
        {"id": None, "slug": None, "title": "Quantum Stuff", "short_title": None},  # not a known category
        {"id": None, "slug": "self-supervised-learning", "title": "Self-Supervised Learning",
         "short_title": "Self-Supervised"}]
    assert (item.payload["stars"], item.payload["framework"], item.payload["link"]) == (1204, "jax", None)


def test_rendered_model_page_reads_the_documented_info_positions():
    spider = rendered_spider()
    response = rendered("model-tts.html", "/model/tts")
    info = [s.strip() for s in response.css("div.model-info-div.box-shadow ::text").getall() if s.strip()]
    assert (info[2], info[4], info[6]) == ("pytorch", "Audio and Speech", "-")
    (item,) = spider.parse_model_page(response, slug="tts")
    assert item.payload["stars"] is None and item.payload["framework"] == "pytorch"


def test_unrendered_shell_is_reported_not_taken_for_an_empty_site():
    from tests.replicas.modelzoo import shell_html

    spider = rendered_spider()
    shell = HtmlResponse(f"{RENDERED_BASE}/", body=shell_html().encode(), encoding="utf-8")
    assert list(spider.parse_listing_page(shell)) == []
    model_shell = HtmlResponse(f"{RENDERED_BASE}/model/ray", body=shell_html().encode(), encoding="utf-8")
    assert list(spider.parse_model_page(model_shell, slug="ray")) == []
    assert spider.crawler.stats.get_value("ptm/pages/failed/page not rendered") == 2


# -- Splash failing ------------------------------------------------------------------------------

def _through_splash(spider, request):
    """``request`` as SplashMiddleware sends it to the Splash server (what an errback is given)."""
    from types import SimpleNamespace

    from ptmscrape.compat.splash import SplashMiddleware

    crawler = spider.crawler
    crawler.engine = SimpleNamespace(downloader=SimpleNamespace(get_slot_key=lambda r: "slot"))
    mw = SplashMiddleware.from_crawler(crawler)
    return mw, mw.process_request(request)


def test_a_page_splash_failed_to_render_is_reported_by_its_own_url_with_splashs_error(caplog):
    """Splash answering 504 (its render timeout) for a model page: the ERROR named the Splash
    endpoint ('Page failed after retries: http://127.0.0.1:8050/execute (HTTP 504: Ignoring
    non-200 response)'), not the model's page, and not Splash's reason."""
    import json

    from scrapy.http import Response
    from scrapy.spidermiddlewares.httperror import HttpError
    from twisted.python.failure import Failure

    spider = rendered_spider()
    mw, sent = _through_splash(spider, spider.model_request("stylegan"))
    assert sent.url == "http://127.0.0.1:8050/execute"
    sent.meta["retry_times"] = 5
    error = {"error": 504, "type": "GlobalTimeoutError", "description": "Timeout exceeded rendering page",
             "info": {"timeout": 30.0}}
    response = mw.process_response(sent, Response(sent.url, status=504, body=json.dumps(error).encode(),
                                                  headers={"Content-Type": "application/json"}, request=sent))
    failure = Failure(HttpError(response))
    failure.request = sent
    spider.page_failed(failure)
    (said,) = [r.getMessage() for r in caplog.records if r.levelname == "ERROR"]
    assert said.startswith(f"Page failed after retries: {RENDERED_BASE}/model/stylegan (HTTP 504: "), said
    assert "Splash" in said and "GlobalTimeoutError: Timeout exceeded rendering page" in said, said
    assert spider.crawler.stats.get_value("ptm/pages/failed/HTTP 504") == 1


@pytest.mark.parametrize("status, said", [
    (404, "Page not found: {page} (HTTP 404)"),
    (500, "Page failed after retries: {page} (HTTP 500: Ignoring non-200 response)"),
])
def test_the_hubs_own_error_carried_by_splash_is_reported_as_the_hubs(caplog, status, said):
    """Splash rendered the page (its answer 200) and carried the hub's status (``http_status``, the
    render script): the failure is the hub's, reported as for a page fetched without Splash (a 404
    is a page not found), not as Splash's error."""
    import json

    from scrapy.http import Response
    from scrapy.spidermiddlewares.httperror import HttpError
    from twisted.python.failure import Failure

    spider = rendered_spider()
    mw, sent = _through_splash(spider, spider.model_request("stylegan"))
    sent.meta["retry_times"] = 5
    rendered_page = {"html": "<html><body><h1>Server Error</h1></body></html>", "http_status": status,
                     "headers": {"Content-Type": "text/html"}}
    response = mw.process_response(sent, Response(sent.url, status=200, body=json.dumps(rendered_page).encode(),
                                                  headers={"Content-Type": "application/json"}, request=sent))
    assert (response.status, response.splash_response_status) == (status, 200)
    failure = Failure(HttpError(response, "Ignoring non-200 response"))  # as HttpErrorMiddleware raises it
    failure.request = sent
    spider.page_failed(failure)
    (logged,) = [r.getMessage() for r in caplog.records if r.levelname == "ERROR"]
    assert logged == said.format(page=f"{RENDERED_BASE}/model/stylegan")
    assert spider.crawler.stats.get_value(f"ptm/pages/failed/HTTP {status}") == 1
    assert spider.crawler.stats.get_value("ptm/pages/not_found") == (1 if status == 404 else None)


def test_a_page_lost_because_splash_is_down_names_the_page_and_splash(caplog):
    from scrapy.exceptions import DownloadConnectionRefusedError
    from twisted.python.failure import Failure

    spider = rendered_spider()
    _, sent = _through_splash(spider, spider.rendered(f"{RENDERED_BASE}/", spider.parse_listing_page))
    sent.meta["retry_times"] = 5
    failure = Failure(DownloadConnectionRefusedError("Connection was refused by other side: 111"))
    failure.request = sent
    spider.page_failed(failure)
    (said,) = [r.getMessage() for r in caplog.records if r.levelname == "ERROR"]
    assert said.startswith(f"Page failed after retries: {RENDERED_BASE}/ (DownloadConnectionRefusedError: "), said
    assert "Splash at http://127.0.0.1:8050" in said, said
    assert spider.crawler.stats.get_value("ptm/pages/failed/DownloadConnectionRefusedError") == 1


@pytest.mark.parametrize("wait", ["-1", "45", "nan"])
def test_a_splash_wait_splash_refuses_or_cannot_finish_is_refused_before_the_crawl(wait):
    """Splash takes a wait of 0 to 30 s: -s PTM_MODELZOO_SPLASH_WAIT=45 (or -1) failed every page with
    HTTP 400 (BadOption), and a wait of DOWNLOAD_TIMEOUT (30 s) or more had every page given up
    before Splash answered; the crawl ran to the end with exit status 1. A wait of 30 s itself was
    taken, and Splash's 30 s render timeout (the page's load and the wait) ended every page with its
    504 (GlobalTimeoutError, seen on Splash 3.5 with the render script), retried to the end."""
    with pytest.raises(ValueError, match=rf"^-s PTM_MODELZOO_SPLASH_WAIT={wait} must be from 0 to below 30 seconds"):
        make_spider({**SPLASH, "PTM_MODELZOO_SPLASH_WAIT": wait}, render="splash")
    with pytest.raises(ValueError, match=r"^-s PTM_MODELZOO_SPLASH_WAIT=20 must be below DOWNLOAD_TIMEOUT \(20 s\)"):
        make_spider({**SPLASH, "PTM_MODELZOO_SPLASH_WAIT": "20", "DOWNLOAD_TIMEOUT": "20"}, render="splash")
    with pytest.raises(ValueError, match=r"^-s PTM_MODELZOO_SPLASH_WAIT=30 must be from 0 to below 30 seconds"):
        make_spider({**SPLASH, "PTM_MODELZOO_SPLASH_WAIT": "30", "DOWNLOAD_TIMEOUT": "60"}, render="splash")
    make_spider({**SPLASH, "PTM_MODELZOO_SPLASH_WAIT": "29.5"}, render="splash")
    make_spider({"PTM_MODELZOO_SPLASH_WAIT": wait} if wait != "nan" else {})  # the API path never waits
