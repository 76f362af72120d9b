"""Hub base URLs with a path (a mirror or proxy: ``http://host/modelzoo``), issue 11 item 2.

Every URL a spider builds or reads is taken relative to the base URL, never to the host's root.
"""

from __future__ import annotations

import os

from spiders.modelzoo import ModelzooSpider
from tests.crawl import run_crawl
from tests.helpers import html_response, make_spider
from tests.replicas.huggingface import HuggingFaceReplica, fixture_models as hf_fixture_models, synthetic_models
from tests.replicas.modelzoo import ModelZooReplica, fixture_models
from tests.services import require_service

SPLASH_URL = os.environ.get("SPLASH_URL", "http://127.0.0.1:8050")
MIRROR = "http://127.0.0.1:8000/mirrors/modelzoo"


def test_rendered_cards_under_a_prefixed_base_give_their_slugs():
    spider = make_spider(ModelzooSpider, {"PTM_MODELZOO_URL": MIRROR, "SPLASH_URL": SPLASH_URL}, render="splash")
    body = ('<html><body><a class="model-detail-div box-shadow w-100" href="/mirrors/modelzoo/model/tts">t</a>'
            '<a class="model-detail-div box-shadow w-100" href="model/a%20b">a</a>'
            '<a class="model-detail-div box-shadow w-100" href="/model/root-linked">r</a>'
            '<a class="next-page" href="/mirrors/modelzoo/?offset=3">more</a></body></html>')
    response = html_response(f"{MIRROR}/", body)
    requests = list(spider.parse_listing_page(response))
    assert [r.cb_kwargs.get("slug") for r in requests[1:]] == ["tts", "a b", "root-linked"]
    assert [r.url for r in requests] == [f"{MIRROR}/?offset=3", f"{MIRROR}/model/tts", f"{MIRROR}/model/a%20b",
                                         f"{MIRROR}/model/root-linked"]
    assert spider.crawler.stats.get_value("ptm/pages/entries_without_slug") is None


def comparable(items):
    return sorted(({k: v for k, v in i.items() if k not in ("CrawledAt", "ModelHub", "ModelURL", "RepoPath")}
                   for i in items), key=lambda r: r["id"])


def test_modelzoo_api_and_rendered_site_under_a_prefix_give_every_model(tmp_path):
    splash = require_service("Splash", SPLASH_URL, start_hint="bash .ci/splash.sh")
    with ModelZooReplica(fixture_models(), tmp_path / "github", page_size=5, prefix="/modelzoo") as zoo:
        assert zoo.url.endswith("/modelzoo")
        settings = {"PTM_MODELZOO_URL": zoo.url, "PTM_CLONE": 0}
        api = run_crawl("modelzoo", tmp_path / "api", settings=settings)
        rendered = run_crawl("modelzoo", tmp_path / "splash", args={"render": "splash"},
                             settings={**settings, "SPLASH_URL": splash})
    assert len(api.items) == len(rendered.items) == len(zoo.models) == 14
    assert comparable(rendered.items) == comparable(api.items)
    assert {i["ModelURL"] for i in rendered.items} == {f"{zoo.url}/model/{s}" for s in zoo.models}
    assert "entries_without_slug" not in str(rendered.stats)
    assert "Listing entry without a usable slug" not in rendered.log


def test_huggingface_under_a_prefix_follows_renames_and_pages(tmp_path):
    with HuggingFaceReplica(hf_fixture_models(), None, prefix="/api/hf", repos=False,
                            renames={"bert-base-uncased": "google-bert/bert-base-uncased"}) as hub:
        listed = run_crawl("huggingface", tmp_path / "list", settings={
            "PTM_HUGGINGFACE_URL": hub.url, "PTM_HUGGINGFACE_PAGE_SIZE": 5, "PTM_CLONE": 0})
        given = run_crawl("huggingface", tmp_path / "given", args={"models": "bert-base-uncased"},
                          settings={"PTM_HUGGINGFACE_URL": hub.url, "PTM_CLONE": 0})
    assert sorted(f"{i['ModelOwner']}/{i['ModelName']}" for i in listed.items) == sorted(hub.models)
    assert [i["ModelURL"] for i in given.items] == [f"{hub.url}/google-bert/bert-base-uncased"]


def test_huggingface_behind_a_proxy_that_passes_its_host_pages_under_the_prefix(tmp_path):
    """A proxy at a path (``location /api/hf/``) that passes its Host header on: the Hub builds its
    absolute ``Link`` from that host, at the root. The next page was fetched outside the prefix
    (404: one page not found, exit status 1, only the first page's models)."""
    from tests.replicas.server import Reply

    with HuggingFaceReplica(hf_fixture_models() + synthetic_models(8), None, prefix="/api/hf", repos=False) as hub:
        routes = hub.replica.routes
        i = next(i for i, r in enumerate(routes) if r[1].pattern.endswith("/api/models"))
        listing = routes[i][2]

        def rooted(req, m) -> Reply:
            reply = listing(req, m)
            if "Link" in reply.headers:
                reply.headers["Link"] = reply.headers["Link"].replace(hub.url, hub.replica.url, 1)
            return reply

        routes[i] = (routes[i][0], routes[i][1], rooted)
        result = run_crawl("huggingface", tmp_path, settings={
            "PTM_HUGGINGFACE_URL": hub.url, "PTM_HUGGINGFACE_PAGE_SIZE": 5, "PTM_CLONE": 0}, check=False)
        outside = [p for _, p in hub.replica.requests if not p.startswith("/api/hf/")]
    assert result.returncode == 0, result.log[-3000:]
    assert sorted(f"{i['ModelOwner']}/{i['ModelName']}" for i in result.items) == sorted(hub.models)
    assert len(hub.models) > 2 * 5 and outside == []  # three pages, all under the prefix


def test_huggingface_rename_redirect_at_the_hosts_root_stays_under_the_prefix(tmp_path):
    """The Hub answers a renamed model with ``307 Location: /api/models/<new id>``, relative to
    its root; a proxy at a path that passes it on unchanged had the crawl fetch ``/api/models/…``
    outside the prefix (404: the model not found, exit status 1)."""
    with HuggingFaceReplica(hf_fixture_models(), None, prefix="/api/hf", repos=False,
                            renames={"bert-base-uncased": "google-bert/bert-base-uncased"}) as hub:
        routes = hub.replica.routes
        i = next(i for i, r in enumerate(routes) if "(?P<id>" in r[1].pattern)
        detail = routes[i][2]

        def passed_on(req, m):
            reply = detail(req, m)
            if "Location" in reply.headers:
                reply.headers["Location"] = reply.headers["Location"].removeprefix(hub.prefix)
            return reply

        routes[i] = (routes[i][0], routes[i][1], passed_on)
        given = run_crawl("huggingface", tmp_path, args={"models": "bert-base-uncased"},
                          settings={"PTM_HUGGINGFACE_URL": hub.url, "PTM_CLONE": 0}, check=False)
        outside = [p for _, p in hub.replica.requests if not p.startswith("/api/hf/")]
    assert given.returncode == 0, given.log[-3000:]
    assert [i["ModelURL"] for i in given.items] == [f"{hub.url}/google-bert/bert-base-uncased"]
    assert outside == []


def test_pytorchhub_model_pages_stay_under_a_prefixed_base():
    from spiders.pytorchhub import PytorchhubSpider

    base = "http://127.0.0.1:8000/mirrors/pytorch/hub"
    spider = make_spider(PytorchhubSpider, {"PTM_PYTORCHHUB_URL": base})
    body = ('<html><body><div class="compact-hub-card-wrapper" data-id="pytorch/vision">'
            '<a href="/hub/pytorch_vision_resnet/"><h4 class="compact-item-title">ResNet</h4></a></div>'
            '</body></html>')
    url = f"{base}/research-models/compact"
    (request,) = spider.parse_listing(html_response(url, body))
    assert request.url == f"{base}/pytorch_vision_resnet/"
    assert request.cb_kwargs["card"]["slug"] == "pytorch_vision_resnet"
