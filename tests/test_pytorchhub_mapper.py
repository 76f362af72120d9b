"""PyTorch Hub mapper: model-page payloads (parsed by the spider from our fixture HTML) -> records."""

import pytest
from jsonschema import Draft202012Validator

from ptmscrape.items import RawModelItem, load_schema
from ptmscrape.mappers.common import MappingError, paper_doi, stable_id
from ptmscrape.mappers.pytorchhub import entrypoint_kind, entrypoints, map_raw, repository
from tests.helpers import returns_in_reason
from tests.test_pytorchhub_spider import BASE, crawl_fixtures, make_spider

VALIDATOR = Draft202012Validator(load_schema())


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
    # The owner is the repository's GitHub owner; the page's free-text "By Pytorch Team" is ModelAuthor.
    assert (r["ModelName"], r["ModelOwner"], r["ModelAuthor"]) == ("TinyResNet", "pytorch", "Pytorch Team")
    assert r["ModelURL"] == f"{BASE}/pytorch_vision_tinyresnet/"
    assert r["ModelOwnerURL"] == "https://github.com/pytorch"
    assert (r["RepoURL"], r["RepoSubPath"], r["RepoBranch"]) == ("https://github.com/pytorch/vision", None, None)
    assert (r["Tags"], r["ModelTask"], r["Library"]) == (["vision", "scriptable"], "vision", "pytorch")


def test_tree_links_give_the_models_folder_and_git_suffixes_are_dropped():
    items = crawl_fixtures(make_spider())
    speak = map_raw(items["nvidia_deeplearningexamples_speakfast"])
    assert speak["RepoURL"] == "https://github.com/NVIDIA/DeepLearningExamples"
    assert speak["RepoSubPath"] == "PyTorch/SpeechSynthesis/SpeakFast"
    assert (speak["ModelTask"], speak["ModelOwner"], speak["ModelAuthor"]) == ("audio", "NVIDIA", "NVIDIA")
    forge = map_raw(items["textforge_transformers"])
    assert forge["RepoURL"] == "https://github.com/textforge/transformers"
    assert forge["RepoSubPath"] is None and forge["ModelTask"] == "nlp"


def test_a_renamed_repository_is_the_cards_data_id_not_the_pages_old_link():
    item = crawl_fixtures(make_spider())["textforge_transformers"]
    assert item.payload["GitHubURL"] == "https://github.com/textforge/textforge-transformers.git"  # old name
    assert item.payload["GitHubID"] == "textforge/transformers"
    r = map_raw(item)
    assert (r["RepoURL"], r["RepoSubPath"]) == ("https://github.com/textforge/transformers", None)
    assert (r["ModelOwner"], r["ModelOwnerURL"]) == ("textforge", "https://github.com/textforge")
    assert r["ModelAuthor"] == "TextForge"


def test_the_owner_is_the_repositorys_github_owner_and_the_pages_credit_is_model_author():
    # ModelOwner joins with the other hubs' GitHub owners; "By <author>" is free text, no account.
    items = crawl_fixtures(make_spider())
    for slug, item in items.items():
        r = map_raw(item)
        owner = r["RepoURL"].split("/")[3]
        assert (r["ModelOwner"], r["ModelOwnerURL"]) == (owner, f"https://github.com/{owner}"), slug
        assert r["ModelAuthor"] == item.payload["ModelAuthor"] and r["ModelAuthor"], slug
    hush = map_raw(items["quietlab_hush-vad_vad"])
    assert (hush["ModelOwner"], hush["ModelAuthor"]) == ("quietlab", "Quiet Lab Team")
    wsl = map_raw(items["facebookresearch_WSL-Mini_resnext"])  # 2020 layout
    assert (wsl["ModelOwner"], wsl["ModelAuthor"]) == ("facebookresearch", "Facebook AI")


def test_a_credit_without_a_repository_stays_the_author_and_names_no_owner():
    item = crawl_fixtures(make_spider())["quietlab_hush-vad_vad"]
    item.payload.update(GitHubURL=None, GitHubID=None, ModelAuthor="  Quiet Lab\n  Team ")
    r = map_raw(item)
    assert (r["RepoURL"], r["ModelOwner"], r["ModelOwnerURL"]) == (None, "", "")
    assert r["ModelAuthor"] == "Quiet Lab Team"
    assert list(VALIDATOR.iter_errors(r)) == []


@pytest.mark.parametrize("link, github_id, expected", [
    ("https://github.com/pytorch/fairseq/", None, ("https://github.com/pytorch/fairseq", None)),
    ("https://www.github.com/a/b/blob/master/x/y.py", None, ("https://github.com/a/b", None)),
    ("https://github.com/a/b/tree/master", None, ("https://github.com/a/b", None)),
    (None, "owner/repo", ("https://github.com/owner/repo", None)),
    ("https://gitlab.com/a/b", "owner/repo", ("https://github.com/owner/repo", None)),
    ("https://github.com/lonely", "not an id", (None, None)),
    # data-id first: the link may carry a renamed repository's old name, or other casing
    ("https://github.com/huggingface/pytorch-transformers.git", "huggingface/transformers",
     ("https://github.com/huggingface/transformers", None)),
    ("https://github.com/Coderx7/SimpleNet_Pytorch/blob/master/imagenet/simplenet.py", "coderx7/simplenet_pytorch",
     ("https://github.com/coderx7/simplenet_pytorch", None)),
    # the link's folder only when it is in the data-id's repository (ignoring case)
    ("https://github.com/nvidia/deeplearningexamples/tree/master/PyTorch/X", "NVIDIA/DeepLearningExamples",
     ("https://github.com/NVIDIA/DeepLearningExamples", "PyTorch/X")),
    ("https://github.com/other/examples/tree/master/PyTorch/X", "NVIDIA/DeepLearningExamples",
     ("https://github.com/NVIDIA/DeepLearningExamples", None)),
    # an invalid data-id: the link is the repository
    ("https://github.com/a/b/tree/dev/x", "../..", ("https://github.com/a/b", "x")),
    (None, "owner/..", (None, None)),
])
def test_repository_from_link_or_card_id(link, github_id, expected):
    assert repository(link, github_id) == expected


def test_paper_links_become_dois_and_code_samples_entrypoints():
    items = crawl_fixtures(make_spider())
    tiny = map_raw(items["pytorch_vision_tinyresnet"])
    assert tiny["ModelPaperDOIs"] == ["10.48550/arXiv.1512.03385"]
    assert tiny["Entrypoints"] == [  # the commented-out variant too
        {"Repo": "pytorch/vision", "Ref": "v0.10.0", "Name": "tinyresnet18", "Kind": "model"},
        {"Repo": "pytorch/vision", "Ref": "v0.10.0", "Name": "tinyresnet34", "Kind": "model"}]
    forge = map_raw(items["textforge_transformers"])
    assert forge["ModelName"] == "TextForge Transformers"
    # arXiv abs with a version, pdf over http, and a URL written out in the text.
    assert forge["ModelPaperDOIs"] == ["10.48550/arXiv.1810.04805", "10.48550/arXiv.1907.11692",
                                       "10.48550/arXiv.1906.08237"]
    assert forge["Entrypoints"] == [  # each once; the call with a variable entrypoint is left out
        {"Repo": "textforge/textforge-transformers", "Ref": None, "Name": "tokenizer", "Kind": "helper"},
        {"Repo": "textforge/textforge-transformers", "Ref": None, "Name": "model", "Kind": "model"},
        {"Repo": "textforge/textforge-transformers", "Ref": "v2", "Name": "modelForMaskedLM", "Kind": "model"}]
    hush = map_raw(items["quietlab_hush-vad_vad"])  # keyword arguments over several lines
    assert hush["Entrypoints"] == [{"Repo": "quietlab/hush-vad", "Ref": None, "Name": "hush_vad", "Kind": "model"}]
    assert hush["ModelPaperDOIs"] == ["10.21105/joss.01667", "10.48550/arXiv.hep-th/9901001"]
    wsl = map_raw(items["facebookresearch_WSL-Mini_resnext"])  # 2020 layout, no papers
    assert wsl["ModelPaperDOIs"] == [] and wsl["Entrypoints"] == [
        {"Repo": "facebookresearch/WSL-Mini", "Ref": None, "Name": "resnext101_8x8d_wslmini", "Kind": "model"}]
    for record in (tiny, forge, hush, wsl):
        assert list(VALIDATOR.iter_errors(record)) == []


@pytest.mark.parametrize("code, expected", [
    ("m = torch.hub.load('a/b', 'x')", [("a/b", None, "x")]),
    ('m = torch.hub.load("a/b:main", "x", pretrained=True)', [("a/b", "main", "x")]),
    ("m = torch.hub.load('a/b',\n#     'pgan', model_name='celebAHQ-512')", [("a/b", None, "pgan")]),
    ("m, u = torch.hub.load(repo_or_dir='a/b',\n    model='vad')", [("a/b", None, "vad")]),
    ("m = torch.hub.load('a/b', model_name, pretrained=True)", []),  # a name never assigned
    ("m = torch.hub.load(repo, 'x')", []),
    # a variable entrypoint assigned a literal before the call (x3d's and ProxylessNAS's pages)
    ("import torch\n# Choose the `tiny_s` model\nmodel_name = 'tiny_s'\n"
     "model = torch.hub.load('a/b', model_name, pretrained=True)", [("a/b", None, "tiny_s")]),
    # commented-out alternatives are variants too (MiDaS's page), each once, in code order
    ('kind = "Big"     # slowest\n#kind = "Mid"    # medium\n#kind = \'Small\'\n\n'
     'net = torch.hub.load("a/b:v1", kind)\nnet2 = torch.hub.load("a/b:v1", kind)',
     [("a/b", "v1", "Big"), ("a/b", "v1", "Mid"), ("a/b", "v1", "Small")]),
    ("net_config = 'cfg_1'\nnet, size = torch.hub.load('a/b', model=net_config, pretrained=True)",
     [("a/b", None, "cfg_1")]),
    # only assignments before the call, only of that name, only of literals
    ("m = torch.hub.load('a/b', name)\nname = 'late'", []),
    ("other = 'x'\nname = pick()\nname == 'y'\nm = torch.hub.load('a/b', name)", []),
    ("m = torch.hub.load('a/b', source='github', model='x')", []),
    ("print('torch.hub.load is great')", []),
])
def test_entrypoints_of_code(code, expected):
    assert [(e["Repo"], e["Ref"], e["Name"]) for e in entrypoints([code])] == expected


def test_helper_entrypoints_are_kept_and_marked():
    # torch.hub: an entrypoint may return "auxiliary tools" instead of a model; the page loads one.
    speak = map_raw(crawl_fixtures(make_spider())["nvidia_deeplearningexamples_speakfast"])
    assert speak["Entrypoints"] == [
        {"Repo": "NVIDIA/DeepLearningExamples", "Ref": "torchhub", "Name": "nvidia_speakfast", "Kind": "model"},
        {"Repo": "NVIDIA/DeepLearningExamples", "Ref": "torchhub", "Name": "nvidia_speakfast_utils",
         "Kind": "helper"}]
    assert list(VALIDATOR.iter_errors(speak)) == []


@pytest.mark.parametrize("name, kind", [
    # the helpers real pages load
    ("nvidia_ssd_processing_utils", "helper"), ("nvidia_tts_utils", "helper"), ("transforms", "helper"),
    ("tokenizer", "helper"), ("config", "helper"), ("ofa_specialized_get", "helper"),
    ("nvidia_textprocessing_utils", "helper"), ("getUtils", "helper"), ("HTTPUtil", "helper"),
    # models, also where a helper word is only part of a word
    ("nvidia_ssd", "model"), ("modelForCausalLM", "model"), ("roberta.large.mnli", "model"),
    ("resnext101_32x8d_wsl", "model"), ("nvidia_resneXt", "model"), ("transformer.wmt14.en-fr", "model"),
    ("configurable_net", "model"), ("budget_net", "model"), ("DCGAN", "model"), ("model", "model"),
])
def test_entrypoint_kind_from_the_words_of_its_name(name, kind):
    assert entrypoint_kind(name) == kind


def test_entrypoints_tolerate_junk():
    assert entrypoints(None) == entrypoints("torch.hub.load('a/b', 'x')") == entrypoints([3, None]) == []
    long_block = "x = 1\n" * 200 + "m = torch.hub.load('a/b', 'late')"  # past 500 characters
    assert entrypoints([long_block]) == [{"Repo": "a/b", "Ref": None, "Name": "late", "Kind": "model"}]


def test_a_hostile_code_sample_is_read_in_linear_time():
    """A code sample line of a million spaces before a call with a variable entrypoint kept the
    assignment's regular expression (spaces, an optional #, spaces) busy for hours: the crawl's
    one thread stopped."""
    code = " " * 1000000 + "\n  #  kind = 'Big'\nm = torch.hub.load('a/b', kind)"
    with returns_in_reason():
        found = entrypoints([code])
    assert [e["Name"] for e in found] == ["Big"]


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
