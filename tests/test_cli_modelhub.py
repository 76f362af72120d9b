"""Real ``scrapy crawl modelhub`` runs (subprocess) against the local Modelhub replica; git fetches
https://github.com/... from the replica through ``url.<replica>.insteadOf``."""

import subprocess

import pytest
from jsonschema import Draft202012Validator

from ptmscrape.dataset.payloads import read_payload
from ptmscrape.dataset.tree import DatasetTree
from ptmscrape.items import load_schema
from tests.crawl import run_crawl
from tests.replicas.modelhub import ModelhubReplica, fixture_models, repo_path

VALIDATOR = Draft202012Validator(load_schema())
MOVED_HEAD = "modelhub-ai/brats-cascade"  # its remote HEAD is 'develop'; the index says 'master'


@pytest.fixture
def hub(tmp_path):
    with ModelhubReplica(tmp_path / "hub-git", head_elsewhere=(MOVED_HEAD,)) as hub:
        yield hub


def head(repo_dir):
    return subprocess.run(["git", "-C", str(repo_dir), "rev-parse", "HEAD"], capture_output=True,
                          text=True, check=True).stdout.strip()


def test_crawl_maps_every_entry_and_clones_each_repo_at_its_branch(tmp_path, hub):
    result = run_crawl("modelhub", tmp_path, settings=hub.settings(), env=hub.env())
    items = result.items
    models = {m["id"]: m for m in fixture_models()}

    assert sorted(i["ModelHub"]["MetadataObjectID"] for i in items) == sorted(models)
    assert len({i["id"] for i in items}) == len(items) == 6
    assert hub.replica.count("GET", r"/models\.json$") == 1
    for item in items:
        assert list(VALIDATOR.iter_errors(item)) == []
        model = models[item["ModelHub"]["MetadataObjectID"]]
        repo = repo_path(model)
        assert item["CloneStatus"] == "cloned"
        assert item["RepoPath"] == f"modelhub/repos/{repo}"
        assert item["RepoURL"] == model["github"] and item["RepoBranch"] == "master"
        assert head(result.data_dir / item["RepoPath"]) == item["LatestGitCommitSHA"] == hub.branch_heads[repo]
        assert hub.git_sessions(repo) == 1
        payload = read_payload(DatasetTree(result.data_dir), item["ModelHub"]["MetadataFilePath"])
        assert payload == model  # the index entry, untouched

    # The branch is honoured: the remote HEAD of this repository is another commit.
    moved = next(i for i in items if i["ModelName"] == "brats-cascade")
    assert hub.git.head(MOVED_HEAD, "develop") != moved["LatestGitCommitSHA"] == hub.git.head(MOVED_HEAD, "master")
    assert (result.data_dir / moved["RepoPath"] / "contrib_src/model/config.json").is_file()

    other = next(i for i in items if i["ModelOwner"] == "radlab-replica")
    assert (result.data_dir / "modelhub/repos/radlab-replica/ToothMetalArtifact/README.md").is_file()
    assert other["ModelOwnerURL"] == "https://github.com/radlab-replica"

    assert len(result.records("modelhub")) == 6
    stats = result.stats
    assert stats["finish_reason"] == "finished"
    assert stats["ptm/clone/cloned"] == stats["ptm/store/records"] == stats["item_scraped_count"] == 6


def test_limit_gives_that_many_records(tmp_path, hub):
    result = run_crawl("modelhub", tmp_path, args={"limit": 2}, settings=hub.settings(), env=hub.env())
    assert sorted(i["ModelName"] for i in result.items) == ["colab_kidney", "tiny-squeeze"]  # the first two
    assert sum(hub.git_sessions(repo_path(m)) for m in fixture_models()) == 2


def test_bad_entries_are_reported_and_the_crawl_goes_on(tmp_path):
    models = fixture_models()[:2] + [{"id": "0009", "name": "broken", "github": "not a url"},
                                     {"name": "no-id", "github": "https://github.com/modelhub-ai/x"}]
    with ModelhubReplica(tmp_path / "hub-git", models) as hub:
        result = run_crawl("modelhub", tmp_path, settings=hub.settings(), env=hub.env())
    assert sorted(i["ModelName"] for i in result.items) == ["colab_kidney", "tiny-squeeze"]
    assert result.stats["ptm/map/failed"] == 2
    assert "modelhub:0009: 'github' is not a repository URL" in result.log
    assert "modelhub:no-id: missing or malformed 'id'" in result.log
