"""PyTorch Hub: listing and model-page callbacks on fixture HTML (the mapper: ``test_pytorchhub_mapper.py``)."""

import pickle

import pytest
from scrapy.utils.request import request_from_dict

from ptmscrape.items import RawModelItem
from spiders.pytorchhub import PytorchhubSpider
from tests.helpers import fixture_response, html_response, spider_maker, start_requests
from tests.replicas.pytorchhub import FIXTURES, LISTING, slugs

BASE = "https://pytorch.org/hub"
LISTING_URL = f"{BASE}/research-models/compact"


make_spider = spider_maker(PytorchhubSpider, {"PTM_PYTORCHHUB_URL": BASE})


def listing(spider, body=None):
    response = (fixture_response(FIXTURES / LISTING, LISTING_URL) if body is None
                else html_response(LISTING_URL, body))
    return list(spider.parse_listing(response))


def model_item(spider, request, body=None):
    slug = request.cb_kwargs["card"]["slug"]
    response = (fixture_response(FIXTURES / f"{slug}.html", request.url, request) if body is None
                else html_response(request.url, body, request))
    return list(spider.parse_model(response, **request.cb_kwargs))


def crawl_fixtures(spider):
    """Listing, then every model page: the raw items by slug."""
    items = [i for r in listing(spider) for i in model_item(spider, r)]
    return {i.model_id: i for i in items}


def stat(spider, key):
    return spider.crawler.stats.get_value(key)


# -- listing -------------------------------------------------------------------------------------

def test_start_is_the_compact_listing():
    (request,) = start_requests(make_spider())
    assert request.url == LISTING_URL and request.callback.__name__ == "parse_listing"
    assert start_requests(make_spider(limit="0")) == []


def test_listing_requests_every_card_page_with_its_card_data():
    requests = listing(make_spider())
    assert [r.url for r in requests] == [f"{BASE}/{slug}/" for slug in slugs()]
    assert len(requests) == 7
    assert requests[0].cb_kwargs == {"card": {
        "slug": "pytorch_vision_tinyresnet", "tags": ["vision", "scriptable"], "github_id": "pytorch/vision",
        "title": "TinyResNet", "summary": "Small residual networks pre-trained on a replica of ImageNet"}}
    assert requests[6].cb_kwargs["card"]["tags"] == ["nlp"]


def test_model_page_requests_can_be_saved_in_a_jobdir():
    spider = make_spider()
    for request in listing(spider):
        restored = request_from_dict(pickle.loads(pickle.dumps(request.to_dict(spider=spider))), spider=spider)
        assert (restored.url, restored.callback, restored.cb_kwargs) == (request.url, request.callback,
                                                                         request.cb_kwargs)


def test_listing_honours_the_limit():
    assert len(listing(make_spider(limit="2"))) == 2


def test_a_card_without_a_link_is_reported_and_the_others_go_on():
    body = (FIXTURES / LISTING).read_text().replace('<a href="/hub/pytorch_vision_pocketnet/">', "<a>", 1)
    spider = make_spider()
    requests = listing(spider, body)
    assert len(requests) == 6 and "pocketnet" not in " ".join(r.url for r in requests)
    assert stat(spider, "ptm/pages/failed/card without a model link") == 1


@pytest.mark.parametrize("href", ["/hub/../", "/hub/./", "/hub/%2E%2E/", "/hub/%2e/", "javascript:alert(1)",
                                  "/hub/a/b/", "/hub/..%2F..%2Fetc/", "/research-models/", "/other/pocketnet/",
                                  "mailto:hub@example.org", "#"])
def test_a_card_whose_link_is_no_model_page_is_reported_and_the_others_go_on(href):
    body = (FIXTURES / LISTING).read_text().replace('href="/hub/pytorch_vision_pocketnet/"', f'href="{href}"', 1)
    spider = make_spider()
    requests = listing(spider, body)
    assert [r.url for r in requests] == [f"{BASE}/{slug}/" for slug in slugs() if slug != "pytorch_vision_pocketnet"]
    assert stat(spider, "ptm/pages/failed/card without a model link") == 1


@pytest.mark.parametrize("base, href", [
    (BASE, "/hub/pytorch_vision_pocketnet"), (BASE, "https://pytorch.org/hub/pytorch_vision_pocketnet/"),
    ("http://mirror.example/pt/hub", "/pt/hub/pytorch_vision_pocketnet/"),  # a mirror that knows its prefix
    ("http://mirror.example/pt/hub", "/hub/pytorch_vision_pocketnet/"),  # one that links from the root
])
def test_model_links_are_read_below_hub_or_the_base_urls_path(base, href):
    body = (FIXTURES / LISTING).read_text().replace('href="/hub/pytorch_vision_pocketnet/"', f'href="{href}"', 1)
    spider = spider_maker(PytorchhubSpider, {"PTM_PYTORCHHUB_URL": base})()
    requests = list(spider.parse_listing(html_response(f"{base}/research-models/compact", body)))
    assert [r.url for r in requests] == [f"{base}/{slug}/" for slug in slugs()]
    assert stat(spider, "ptm/pages/failed") is None


def test_a_listing_without_cards_is_reported():
    spider = make_spider()
    assert listing(spider, "<html><body><h1>Maintenance</h1></body></html>") == []
    assert stat(spider, "ptm/pages/failed/no model cards") == 1


def test_a_truncated_page_is_reported_not_parsed():
    spider = make_spider()
    body = (FIXTURES / LISTING).read_text()
    cut = body[: body.index('data-item-count="4"')]  # the connection dropped after three cards
    assert listing(spider, cut) == []
    assert stat(spider, "ptm/pages/failed/incomplete HTML") == 1


# -- model pages ---------------------------------------------------------------------------------

def test_current_layout_fields_are_extracted_exactly():
    item = crawl_fixtures(make_spider())["pytorch_vision_tinyresnet"]
    assert isinstance(item, RawModelItem) and item.hub == "pytorchhub"
    assert item.url == f"{BASE}/pytorch_vision_tinyresnet/"
    code = item.payload.pop("CodeSamples")
    assert item.payload == {
        "Slug": "pytorch_vision_tinyresnet",
        "ModelURL": f"{BASE}/pytorch_vision_tinyresnet/",
        "ModelName": "TinyResNet",
        "ModelAuthor": "Pytorch Team",
        "ModelDescription": "Small residual networks pre-trained on a replica of ImageNet",
        "GitHubURL": "https://github.com/pytorch/vision/blob/main/torchvision/models/tinyresnet.py",
        "ColabURL": "https://colab.research.google.com/github/pytorch/pytorch.github.io/blob/master/"
                    "assets/hub/pytorch_vision_tinyresnet.ipynb",
        "DemoURL": "https://huggingface.co/spaces/pytorch/TinyResNet",
        "GitHubID": "pytorch/vision",
        "Tags": ["vision", "scriptable"],
        "CardTitle": "TinyResNet",
        # The article's links (not the Colab/GitHub buttons above it), each once, in page order.
        "ArticleLinks": ["https://arxiv.org/abs/1512.03385", "https://github.com/pytorch/vision",
                         "https://github.com/pytorch/hub/issues"],
    }
    # Code blocks as their text: the highlighter's <span>s joined back into source lines.
    assert len(code) == 1
    assert code[0].splitlines()[:4] == [
        "import torch",
        "model = torch.hub.load('pytorch/vision:v0.10.0', 'tinyresnet18', pretrained=True)",
        "# or any of these variants",
        "# model = torch.hub.load('pytorch/vision:v0.10.0', 'tinyresnet34', pretrained=True)"]


def test_the_name_is_the_page_title_not_the_articles_own_h1_headings():
    # Like huggingface_pytorch-transformers: the article has <h1>s (its own title, Model
    # Description, Usage, …); before, they were all joined into the name.
    payload = crawl_fixtures(make_spider())["textforge_transformers"].payload
    assert payload["ModelName"] == "TextForge Transformers"
    assert len(payload["CodeSamples"]) == 2
    assert payload["ArticleLinks"] == ["https://arxiv.org/abs/1810.04805v2", "http://arxiv.org/pdf/1907.11692.pdf",
                                       "https://arxiv.org/abs/1906.08237"]  # the last one written out


def test_model_pages_are_requested_under_the_base_url_even_with_a_path():
    # The cards' links are site-relative (/hub/<slug>/); a mirror under a path serves the pages
    # under its own base URL, so the page URL is built from the base URL and the slug.
    base = "http://127.0.0.1:8123/mirror/hub"
    spider = make_spider({"PTM_PYTORCHHUB_URL": base + "/"})
    requests = list(spider.parse_listing(fixture_response(FIXTURES / LISTING, f"{base}/research-models/compact")))
    assert [r.url for r in requests] == [f"{base}/{slug}/" for slug in slugs()]


def test_a_model_without_a_demo_and_a_multi_word_name():
    payload = crawl_fixtures(make_spider())["quietlab_hush-vad_vad"].payload
    assert payload["ModelName"] == "Hush Voice Activity Detector"
    assert payload["ModelAuthor"] == "Quiet Lab Team"
    assert payload["GitHubURL"] == "https://github.com/quietlab/hush-vad"
    assert payload["DemoURL"] is None and payload["ColabURL"].endswith("/quietlab_hush-vad_vad.ipynb")


def test_the_2020_layout_parses_the_same_fields():
    payload = crawl_fixtures(make_spider())["facebookresearch_WSL-Mini_resnext"].payload
    assert (payload["ModelName"], payload["ModelAuthor"]) == ("ResNext WSL-Mini", "Facebook AI")
    assert payload["ModelDescription"] == "ResNext models pre-trained on a small weakly-supervised image set"
    assert payload["GitHubURL"] == "https://github.com/facebookresearch/WSL-Mini/blob/master/hubconf.py"
    assert payload["ColabURL"].endswith("/facebookresearch_WSL-Mini_resnext.ipynb")
    assert payload["DemoURL"] is None


def test_every_fixture_page_gives_one_item():
    items = crawl_fixtures(make_spider())
    assert sorted(items) == sorted(slugs())
    assert sum(i.payload["DemoURL"] is None for i in items.values()) == 2


def test_a_page_without_a_name_is_reported_not_raised():
    spider = make_spider()
    request = listing(spider)[0]
    assert model_item(spider, request, "<html><body><h1> </h1><p class='detail-lead'>By X </p></body></html>") == []
    assert stat(spider, "ptm/pages/failed/model page without a name") == 1


def test_a_page_without_buttons_still_gives_the_model():
    spider = make_spider()
    request = listing(spider)[4]
    (item,) = model_item(spider, request, "<html><body><h1>\n  Bare\n</h1></body></html>")
    assert item.payload["ModelName"] == "Bare"
    assert (item.payload["ModelAuthor"], item.payload["GitHubURL"], item.payload["ColabURL"]) == (None, None, None)
    assert item.payload["ModelDescription"] == "Pre-trained voice activity detector for noisy rooms"  # from the card


def test_a_page_without_an_author_line_does_not_take_the_summary_for_the_author():
    """The summary is ``p.detail-lead.lead-summary``: it also has class ``detail-lead``, so on a
    page without the ``By <author>`` line the first ``p.detail-lead`` was the summary."""
    spider = make_spider()
    request = listing(spider)[0]
    body = ("<html><body><div class='jumbotron'><h1>\n  NoAuthor\n</h1>"
            "<p class='detail-lead lead-summary'>A model without a credit line</p></div></body></html>")
    (item,) = model_item(spider, request, body)
    assert item.payload["ModelAuthor"] is None
    assert item.payload["ModelDescription"] == "A model without a credit line"
