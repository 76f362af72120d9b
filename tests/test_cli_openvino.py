"""Real ``scrapy crawl openvino`` runs (subprocess) against the local Open Model Zoo repository
(git-trees API and raw files under a path prefix); git fetches
https://github.com/openvinotoolkit/open_model_zoo from the replica through ``insteadOf``."""

import subprocess

from jsonschema import Draft202012Validator

from ptmscrape.dataset.payloads import read_payload
from ptmscrape.dataset.tree import DatasetTree
from ptmscrape.items import load_schema
from tests.crawl import run_crawl
from tests.replicas.faults import FaultPlan, inject
from tests.replicas.openvino import MODELS, REPO, UPDATED, OpenvinoReplica

VALIDATOR = Draft202012Validator(load_schema())
CLONE = "openvino/repos/openvinotoolkit/open_model_zoo"
PREFIX = "/proxy/github"
FAST = {"PTM_RETRY_BACKOFF": 0.02, "PTM_RETRY_BACKOFF_MAX": 0.2, "PTM_RATELIMIT_MAX_WAIT": 1}


def git_out(clone, *args):
    return subprocess.run(["git", "-C", str(clone), *args], capture_output=True, text=True,
                          check=True).stdout.strip()


def test_crawl_and_recrawl_one_record_per_model_yml_from_one_shared_clone(tmp_path):
    with OpenvinoReplica(tmp_path / "zoo-git", prefix=PREFIX) as zoo:
        first = run_crawl("openvino", tmp_path, settings=zoo.settings(), env=zoo.env(), out_name="first.jsonl")
        expected_sha = {d: zoo.last_commit(d) for d in MODELS}
        commits = list(zoo.commits)
        sessions = zoo.git_sessions()
        new = zoo.commit({"models/public/googlenet-v1-tf/README.md": "# googlenet-v1-tf\n\nNotes.\n"},
                         message="googlenet-v1-tf: README", date="2023-04-01T10:00:00Z")
        second = run_crawl("openvino", tmp_path, settings=zoo.settings(), env=zoo.env(), out_name="second.jsonl")
        assert zoo.git_sessions() == 2  # one clone, one fetch
        assert zoo.tree_requests() == 2 and zoo.raw_requests() == 2 * len(MODELS)

    items = {i["ModelHub"]["MetadataObjectID"]: i for i in first.items}
    assert sorted(items) == sorted(MODELS.values())
    assert first.stats["ptm/clone/queued"] == 1 and sessions == 1
    assert first.stats["ptm/clone/shared"] == len(MODELS) - 1
    clone = first.data_dir / CLONE
    for item in items.values():
        model_dir = item["RepoSubPath"]
        assert list(VALIDATOR.iter_errors(item)) == [], model_dir
        assert (item["RepoURL"], item["RepoPath"], item["CloneStatus"]) == (
            f"https://github.com/{REPO}", CLONE, "cloned")
        assert item["LatestGitCommitSHA"] == expected_sha[model_dir]
        assert item["LatestGitCommitSHA"] == (commits[1] if model_dir == UPDATED else commits[0])
        assert (clone / model_dir / "model.yml").is_file()
        payload = read_payload(DatasetTree(first.data_dir), item["ModelHub"]["MetadataFilePath"])
        assert payload["model_dir"] == model_dir and isinstance(payload["model"]["files"], list)
    face = items["intel/face-detection-0200"]
    assert [f["Name"] for f in face["Files"]][-1] == "FP16-INT8/face-detection-0200.xml"  # the later commit
    assert face["UsedStorage"] == sum(f["Size"] for f in face["Files"])
    assert first.stats["finish_reason"] == "finished"
    assert len(first.records("openvino")) == len(MODELS)

    after = {i["RepoSubPath"]: i["LatestGitCommitSHA"] for i in second.items}
    before = {i["RepoSubPath"]: i["LatestGitCommitSHA"] for i in first.items}
    assert after.pop("models/public/googlenet-v1-tf") == new != before.pop("models/public/googlenet-v1-tf")
    assert after == before
    assert {i["CloneStatus"] for i in second.items} == {"updated"}
    assert len(second.records("openvino")) == len(MODELS)


def test_limit_and_a_broken_model_yml(tmp_path):
    with OpenvinoReplica(tmp_path / "zoo-git", prefix=PREFIX) as zoo:
        settings = {**zoo.settings(), "PTM_CLONE": 0, **FAST}
        limited = run_crawl("openvino", tmp_path, args={"limit": 3}, settings=settings, out_name="limited.jsonl")
        fetched = zoo.raw_requests()
        broken = "models/public/resnet-50-pytorch/model.yml"
        zoo.commit({broken: "description: [never closed\n"}, message="break", date="2023-05-01T10:00:00Z")
        result = run_crawl("openvino", tmp_path, settings=settings, check=False)
    assert sorted(i["RepoSubPath"] for i in limited.items) == sorted(MODELS)[:3] and fetched == 3
    assert sorted(i["RepoSubPath"] for i in result.items) == sorted(set(MODELS) - {broken.rsplit("/", 1)[0]})
    assert f"Page failed after retries: {zoo.raw_url}/{broken} (malformed YAML" in result.log
    assert result.stats["ptm/pages/failed/malformed YAML"] == 1
    assert result.stats["ptm/pages/retried/malformed YAML"] == 3
    assert "ptm/store/removed" not in result.stats
    assert result.returncode == 1 and "Traceback" not in result.log  # README "Exit status"
    assert result.log.rstrip().endswith("Crawl verdict: exit status 1: 1 page failed (malformed YAML: 1)")
    assert result.stats["finish_reason"] == "failed_pages" and result.stats["ptm/verdict/exit_status"] == 1


def test_under_faults_every_model_arrives_exactly_once(tmp_path):
    with OpenvinoReplica(tmp_path / "zoo-git") as zoo:
        faults = inject(zoo.replica, FaultPlan(seed=5, rates={"5xx": .25, "429": .15, "reset": .15, "cut": .15,
                                                              "slow": .1}, healthy_after=4))
        result = run_crawl("openvino", tmp_path, settings={**zoo.settings(), **FAST, "PTM_CLONE": 0})
    assert faults.injected
    assert sorted(i["ModelHub"]["MetadataObjectID"] for i in result.items) == sorted(MODELS.values())
    assert result.stats["finish_reason"] == "finished" and "ptm/pages/failed" not in result.stats
