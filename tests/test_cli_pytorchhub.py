"""Real ``scrapy crawl pytorchhub`` runs (subprocess) against the local PyTorch Hub replica; git
fetches https://github.com/... from the replica through ``url.<replica>.insteadOf``."""

import subprocess

import pytest
from jsonschema import Draft202012Validator

from ptmscrape.dataset.payloads import read_payload
from ptmscrape.dataset.tree import DatasetTree
from ptmscrape.items import load_schema
from tests.crawl import run_crawl
from tests.replicas.pytorchhub import MODEL_REPOS, SUBPATHS, PytorchHubReplica

VALIDATOR = Draft202012Validator(load_schema())


@pytest.fixture
def hub(tmp_path):
    with PytorchHubReplica(tmp_path / "hub-git") as hub:
        yield hub


def head(repo_dir):
    return subprocess.run(["git", "-C", str(repo_dir), "rev-parse", "HEAD"], capture_output=True,
                          text=True, check=True).stdout.strip()


def test_crawl_maps_every_model_and_clones_each_repository_once(tmp_path, hub):
    result = run_crawl("pytorchhub", tmp_path, settings=hub.settings(), env=hub.env())
    items = {i["ModelHub"]["MetadataObjectID"]: i for i in result.items}

    assert sorted(items) == sorted(MODEL_REPOS) and len(result.items) == 7
    assert len({i["id"] for i in items.values()}) == 7
    assert hub.replica.count("GET", r"^/hub/research-models/compact$") == 1
    assert all(hub.page_requests(slug) == 1 for slug in MODEL_REPOS)
    for slug, item in items.items():
        repo = MODEL_REPOS[slug]
        assert list(VALIDATOR.iter_errors(item)) == [], slug
        assert item["ModelURL"] == f"{hub.base_url}/{slug}/"
        assert item["RepoURL"] == f"https://github.com/{repo}"
        assert item["RepoPath"] == f"pytorchhub/repos/{repo}"
        assert item["CloneStatus"] == "cloned"
        clone = result.data_dir / item["RepoPath"]
        assert head(clone) == hub.head(repo)  # the default branch (main for pytorch/vision)
        if slug not in SUBPATHS:
            assert item["LatestGitCommitSHA"] == head(clone)
        payload = read_payload(DatasetTree(result.data_dir), item["ModelHub"]["MetadataFilePath"])
        assert payload["Slug"] == slug and payload["ModelURL"] == item["ModelURL"]

    # Two repositories serve two models each: one git session each, the second model reuses it.
    for repo in set(MODEL_REPOS.values()):
        assert hub.git_sessions(repo) == 1, repo
    assert result.stats["ptm/clone/shared"] == 2
    assert result.stats["ptm/clone/cloned"] == 7

    # Models in a shared repository's folder: the last commit under their folder.
    nvidia = hub.commits["NVIDIA/DeepLearningExamples"]
    speak, smooth = items["nvidia_deeplearningexamples_speakfast"], items["nvidia_deeplearningexamples_wavesmooth"]
    assert (speak["RepoSubPath"], speak["LatestGitCommitSHA"]) == ("PyTorch/SpeechSynthesis/SpeakFast", nvidia[0])
    assert (smooth["RepoSubPath"], smooth["LatestGitCommitSHA"]) == ("PyTorch/SpeechSynthesis/WaveSmooth", nvidia[1])

    hush = items["quietlab_hush-vad_vad"]
    assert (hush["ModelOwner"], hush["ModelOwnerURL"]) == ("quietlab", "https://github.com/quietlab")
    assert hush["ModelAuthor"] == "Quiet Lab Team"  # the page's "By Quiet Lab Team"
    assert items["facebookresearch_WSL-Mini_resnext"]["ModelName"] == "ResNext WSL-Mini"  # 2020 layout
    assert len(result.records("pytorchhub")) == 7
    stats = result.stats
    assert stats["finish_reason"] == "finished"
    assert stats["ptm/store/records"] == stats["item_scraped_count"] == 7


def test_limit_gives_that_many_records_and_pages(tmp_path, hub):
    result = run_crawl("pytorchhub", tmp_path, args={"limit": 2}, settings=hub.settings(), env=hub.env())
    assert sorted(i["ModelHub"]["MetadataObjectID"] for i in result.items) == [
        "pytorch_vision_pocketnet", "pytorch_vision_tinyresnet"]  # the first two cards
    assert sum(hub.page_requests(slug) for slug in MODEL_REPOS) == 2
    assert hub.git_sessions("pytorch/vision") == 1


def test_a_missing_model_page_is_reported_and_the_crawl_goes_on(tmp_path, hub):
    hub.gone.add("quietlab_hush-vad_vad")
    result = run_crawl("pytorchhub", tmp_path, settings={**hub.settings(), "PTM_CLONE": 0}, env=hub.env(),
                       check=False)
    assert sorted(i["ModelHub"]["MetadataObjectID"] for i in result.items) == sorted(
        slug for slug in MODEL_REPOS if slug != "quietlab_hush-vad_vad")
    assert result.stats["ptm/pages/failed/HTTP 404"] == 1
    assert f"Page not found: {hub.base_url}/quietlab_hush-vad_vad/ (HTTP 404)" in result.log
    assert result.returncode == 1 and "exit status 1: 1 page not found (HTTP 404)" in result.log
    assert {i["CloneStatus"] for i in result.items} == {"skipped"}


def test_crawl_under_a_prefixed_base_url_gives_names_dois_and_entrypoints(tmp_path):
    # A mirror under a path: the cards still link /hub/<slug>/, the pages live under the base URL.
    with PytorchHubReplica(tmp_path / "hub-git", prefix="/mirror/pt") as hub:
        result = run_crawl("pytorchhub", tmp_path, settings={**hub.settings(), "PTM_CLONE": 0}, env=hub.env())
        assert all(hub.page_requests(slug) == 1 for slug in MODEL_REPOS)
        base = hub.base_url
    items = {i["ModelHub"]["MetadataObjectID"]: i for i in result.items}
    assert sorted(items) == sorted(MODEL_REPOS)
    assert result.stats.get("ptm/pages/failed", 0) == 0
    for slug, item in items.items():
        assert list(VALIDATOR.iter_errors(item)) == [], slug
        assert item["ModelURL"] == f"{base}/{slug}/"
        assert item["Entrypoints"], slug  # every fixture page loads its model with torch.hub.load
    forge = items["textforge_transformers"]
    assert forge["ModelName"] == "TextForge Transformers"  # not joined with the article's <h1>s
    assert forge["ModelPaperDOIs"] == ["10.48550/arXiv.1810.04805", "10.48550/arXiv.1907.11692",
                                       "10.48550/arXiv.1906.08237"]
    assert [e["Name"] for e in forge["Entrypoints"]] == ["tokenizer", "model", "modelForMaskedLM"]
    assert items["pytorch_vision_tinyresnet"]["Entrypoints"] == [
        {"Repo": "pytorch/vision", "Ref": "v0.10.0", "Name": "tinyresnet18", "Kind": "model"},
        {"Repo": "pytorch/vision", "Ref": "v0.10.0", "Name": "tinyresnet34", "Kind": "model"}]
    assert [(e["Name"], e["Kind"]) for e in items["nvidia_deeplearningexamples_speakfast"]["Entrypoints"]] == [
        ("nvidia_speakfast", "model"), ("nvidia_speakfast_utils", "helper")]
    assert items["pytorch_vision_tinyresnet"]["ModelPaperDOIs"] == ["10.48550/arXiv.1512.03385"]
    assert items["quietlab_hush-vad_vad"]["ModelPaperDOIs"] == ["10.21105/joss.01667",
                                                                "10.48550/arXiv.hep-th/9901001"]
    # The records in the dataset carry the same fields.
    stored = {r["ModelHub"]["MetadataObjectID"]: r for r in result.records("pytorchhub")}
    assert stored["textforge_transformers"]["Entrypoints"] == forge["Entrypoints"]
