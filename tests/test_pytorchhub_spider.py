"""PyTorch Hub: listing and model-page callbacks on fixture HTML, and the mapper."""

import asyncio
import pickle

import pytest
from jsonschema import Draft202012Validator
from scrapy.http import HtmlResponse, Request
from scrapy.utils.request import request_from_dict

from ptmscrape.items import RawModelItem, load_schema
from ptmscrape.mappers.common import MappingError, paper_doi, stable_id
from ptmscrape.mappers.pytorchhub import entrypoints, map_raw, repository
from spiders.pytorchhub import PytorchhubSpider
from tests.crawl import project_crawler
from tests.replicas.pytorchhub import FIXTURES, LISTING, slugs

VALIDATOR = Draft202012Validator(load_schema())
BASE = "https://pytorch.org/hub"
LISTING_URL = f"{BASE}/research-models/compact"


def make_spider(**kwargs):
    crawler = project_crawler(PytorchhubSpider, {"PTM_PYTORCHHUB_URL": BASE})
    return PytorchhubSpider.from_crawler(crawler, **kwargs)


def html(url, body, request=None):
    body = body.encode() if isinstance(body, str) else body
    return HtmlResponse(url, body=body, encoding="utf-8", request=request or Request(url))


def listing(spider, body=None):
    body = body if body is not None else (FIXTURES / LISTING).read_bytes()
    return list(spider.parse_listing(html(LISTING_URL, body)))


def model_item(spider, request, body=None):
    slug = request.cb_kwargs["card"]["slug"]
    body = body if body is not None else (FIXTURES / f"{slug}.html").read_bytes()
    return list(spider.parse_model(html(request.url, body, request), **request.cb_kwargs))


def crawl_fixtures(spider):
    """Listing, then every model page: the raw items by slug."""
    items = [i for r in listing(spider) for i in model_item(spider, r)]
    return {i.model_id: i for i in items}


def stat(spider, key):
    return spider.crawler.stats.get_value(key)


# -- listing -------------------------------------------------------------------------------------

def test_start_is_the_compact_listing():
    async def collect(spider):
        return [r async for r in spider.start()]
    (request,) = asyncio.run(collect(make_spider()))
    assert request.url == LISTING_URL and request.callback.__name__ == "parse_listing"
    assert asyncio.run(collect(make_spider(limit="0"))) == []


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
    assert stat(spider, "ptm/pages/bad/card without a model link") == 1


def test_a_listing_without_cards_is_reported():
    spider = make_spider()
    assert listing(spider, "<html><body><h1>Maintenance</h1></body></html>") == []
    assert stat(spider, "ptm/pages/bad/no model cards") == 1


def test_a_truncated_page_is_reported_not_parsed():
    spider = make_spider()
    body = (FIXTURES / LISTING).read_text()
    cut = body[: body.index('data-item-count="4"')]  # the connection dropped after three cards
    assert listing(spider, cut) == []
    assert stat(spider, "ptm/pages/bad/incomplete HTML") == 1


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
    crawler = project_crawler(PytorchhubSpider, {"PTM_PYTORCHHUB_URL": base + "/"})
    spider = PytorchhubSpider.from_crawler(crawler)
    requests = list(spider.parse_listing(html(f"{base}/research-models/compact", (FIXTURES / LISTING).read_bytes())))
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
    assert stat(spider, "ptm/pages/bad/model page without a name") == 1


def test_a_page_without_buttons_still_gives_the_model():
    spider = make_spider()
    request = listing(spider)[4]
    (item,) = model_item(spider, request, "<html><body><h1>\n  Bare\n</h1></body></html>")
    assert item.payload["ModelName"] == "Bare"
    assert (item.payload["ModelAuthor"], item.payload["GitHubURL"], item.payload["ColabURL"]) == (None, None, None)
    assert item.payload["ModelDescription"] == "Pre-trained voice activity detector for noisy rooms"  # from the card


# -- mapper --------------------------------------------------------------------------------------

def test_every_fixture_model_maps_to_a_valid_record():
    for slug, item in crawl_fixtures(make_spider()).items():
        record = map_raw(item)
        assert [e.message for e in VALIDATOR.iter_errors(record)] == [], slug


def test_record_fields_of_a_deep_blob_link():
    r = map_raw(crawl_fixtures(make_spider())["pytorch_vision_tinyresnet"])
    assert r["id"] == stable_id("pytorchhub", "pytorch_vision_tinyresnet")
    assert r["ModelHub"] == {
        "ModelHubName": "pytorchhub", "ModelHubURL": BASE,
        "MetadataFilePath": "pytorchhub/json/metadata/_/pytorch_vision_tinyresnet.json",
        "MetadataObjectID": "pytorch_vision_tinyresnet",
    }
    assert (r["ModelName"], r["ModelOwner"]) == ("TinyResNet", "Pytorch Team")
    assert r["ModelURL"] == f"{BASE}/pytorch_vision_tinyresnet/"
    assert r["ModelOwnerURL"] == "https://github.com/pytorch"
    assert (r["RepoURL"], r["RepoSubPath"], r["RepoBranch"]) == ("https://github.com/pytorch/vision", None, None)
    assert (r["Tags"], r["ModelTask"], r["Library"]) == (["vision", "scriptable"], "vision", "pytorch")


def test_tree_links_give_the_models_folder_and_git_suffixes_are_dropped():
    items = crawl_fixtures(make_spider())
    speak = map_raw(items["nvidia_deeplearningexamples_speakfast"])
    assert speak["RepoURL"] == "https://github.com/NVIDIA/DeepLearningExamples"
    assert speak["RepoSubPath"] == "PyTorch/SpeechSynthesis/SpeakFast"
    assert (speak["ModelTask"], speak["ModelOwner"]) == ("audio", "NVIDIA")
    forge = map_raw(items["textforge_transformers"])
    assert forge["RepoURL"] == "https://github.com/textforge/textforge-transformers"
    assert forge["RepoSubPath"] is None and forge["ModelTask"] == "nlp"


@pytest.mark.parametrize("link, github_id, expected", [
    ("https://github.com/pytorch/fairseq/", None, ("https://github.com/pytorch/fairseq", None)),
    ("https://www.github.com/a/b/blob/master/x/y.py", None, ("https://github.com/a/b", None)),
    ("https://github.com/a/b/tree/master", None, ("https://github.com/a/b", None)),
    (None, "owner/repo", ("https://github.com/owner/repo", None)),
    ("https://gitlab.com/a/b", "owner/repo", ("https://github.com/owner/repo", None)),
    ("https://github.com/lonely", "not an id", (None, None)),
])
def test_repository_from_link_or_card_id(link, github_id, expected):
    assert repository(link, github_id) == expected


def test_paper_links_become_dois_and_code_samples_entrypoints():
    items = crawl_fixtures(make_spider())
    tiny = map_raw(items["pytorch_vision_tinyresnet"])
    assert tiny["ModelPaperDOIs"] == ["10.48550/arXiv.1512.03385"]
    assert tiny["Entrypoints"] == [  # the commented-out variant too
        {"Repo": "pytorch/vision", "Ref": "v0.10.0", "Name": "tinyresnet18"},
        {"Repo": "pytorch/vision", "Ref": "v0.10.0", "Name": "tinyresnet34"}]
    forge = map_raw(items["textforge_transformers"])
    assert forge["ModelName"] == "TextForge Transformers"
    # arXiv abs with a version, pdf over http, and a URL written out in the text.
    assert forge["ModelPaperDOIs"] == ["10.48550/arXiv.1810.04805", "10.48550/arXiv.1907.11692",
                                       "10.48550/arXiv.1906.08237"]
    assert forge["Entrypoints"] == [  # each once; the call with a variable entrypoint is left out
        {"Repo": "textforge/textforge-transformers", "Ref": None, "Name": "tokenizer"},
        {"Repo": "textforge/textforge-transformers", "Ref": None, "Name": "model"},
        {"Repo": "textforge/textforge-transformers", "Ref": "v2", "Name": "modelForMaskedLM"}]
    hush = map_raw(items["quietlab_hush-vad_vad"])  # keyword arguments over several lines
    assert hush["Entrypoints"] == [{"Repo": "quietlab/hush-vad", "Ref": None, "Name": "hush_vad"}]
    assert hush["ModelPaperDOIs"] == ["10.21105/joss.01667", "10.48550/arXiv.hep-th/9901001"]
    wsl = map_raw(items["facebookresearch_WSL-Mini_resnext"])  # 2020 layout, no papers
    assert wsl["ModelPaperDOIs"] == [] and wsl["Entrypoints"] == [
        {"Repo": "facebookresearch/WSL-Mini", "Ref": None, "Name": "resnext101_8x8d_wslmini"}]
    for record in (tiny, forge, hush, wsl):
        assert list(VALIDATOR.iter_errors(record)) == []


@pytest.mark.parametrize("code, expected", [
    ("m = torch.hub.load('a/b', 'x')", [("a/b", None, "x")]),
    ('m = torch.hub.load("a/b:main", "x", pretrained=True)', [("a/b", "main", "x")]),
    ("m = torch.hub.load('a/b',\n#     'pgan', model_name='celebAHQ-512')", [("a/b", None, "pgan")]),
    ("m, u = torch.hub.load(repo_or_dir='a/b',\n    model='vad')", [("a/b", None, "vad")]),
    ("m = torch.hub.load('a/b', model_name, pretrained=True)", []),
    ("m = torch.hub.load(repo, 'x')", []),
    ("print('torch.hub.load is great')", []),
])
def test_entrypoints_of_code(code, expected):
    assert [(e["Repo"], e["Ref"], e["Name"]) for e in entrypoints([code])] == expected


def test_entrypoints_tolerate_junk():
    assert entrypoints(None) == entrypoints("torch.hub.load('a/b', 'x')") == entrypoints([3, None]) == []
    long_block = "x = 1\n" * 200 + "m = torch.hub.load('a/b', 'late')"  # past 500 characters
    assert entrypoints([long_block]) == [{"Repo": "a/b", "Ref": None, "Name": "late"}]


@pytest.mark.parametrize("url, doi", [
    ("https://arxiv.org/abs/1512.03385", "10.48550/arXiv.1512.03385"),
    ("https://arxiv.org/pdf/1812.03982.pdf", "10.48550/arXiv.1812.03982"),
    ("https://arxiv.org/pdf/2205.00841v3", "10.48550/arXiv.2205.00841"),
    ("http://www.arxiv.org/abs/1810.04805v2#section", "10.48550/arXiv.1810.04805"),
    ("https://arxiv.org/abs/cs/0112017", "10.48550/arXiv.cs/0112017"),
    ("https://doi.org/10.21105/joss.01667", "10.21105/joss.01667"),
    ("https://dx.doi.org/10.1109%2FCVPR.2016.90", "10.1109/CVPR.2016.90"),
    ("https://arxiv.org/list/cs.CV/recent", None),
    ("https://github.com/pytorch/vision", None),
    ("https://zenodo.org/badge/latestdoi/264818686", None),
    (None, None),
])
def test_paper_doi_of_a_link(url, doi):
    assert paper_doi(url) == doi


def test_a_model_without_any_repository_maps_with_no_repo():
    item = crawl_fixtures(make_spider())["quietlab_hush-vad_vad"]
    item.payload.update(GitHubURL=None, GitHubID=None, ModelAuthor=None, Tags=["scriptable"])
    r = map_raw(item)
    assert (r["RepoURL"], r["ModelOwner"], r["ModelOwnerURL"], r["ModelTask"]) == (None, "", "", None)
    assert r["ModelHub"]["MetadataFilePath"] == "pytorchhub/json/metadata/_/quietlab_hush-vad_vad.json"
    assert list(VALIDATOR.iter_errors(r)) == []


@pytest.mark.parametrize("payload, reason", [
    ("<html>", "payload is str"),
    ({"ModelName": "X"}, "no slug"),
    ({"Slug": "x", "ModelName": " "}, "model page has no name"),
])
def test_unmappable_payloads_say_why(payload, reason):
    with pytest.raises(MappingError, match=reason):
        map_raw(RawModelItem(hub="pytorchhub", model_id="x", url=BASE, payload=payload))
