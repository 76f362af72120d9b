"""Real ``scrapy crawl onnxmodelzoo`` runs (subprocess) against the local ONNX Model Zoo, in both
layouts; git fetches https://github.com/onnx/models from the replica through ``insteadOf``."""

import json
import subprocess

import pytest
from jsonschema import Draft202012Validator

from ptmscrape.items import load_schema
from tests.crawl import run_crawl
from tests.replicas.onnx import (
    LATER_COMMITS, MODEL_DIRS, PLACEHOLDER_ROWS, REPO, OnnxZooReplica, model_dirs, prefix,
)

VALIDATOR = Draft202012Validator(load_schema())
CLONE = "onnxmodelzoo/repos/onnx/models"


def git_out(clone, *args):
    return subprocess.run(["git", "-C", str(clone), *args], capture_output=True, text=True,
                          check=True).stdout.strip()


@pytest.mark.parametrize("layout", ["2023", "2025"])
def test_crawl_makes_one_record_per_model_folder_from_one_shared_clone(tmp_path, layout):
    with OnnxZooReplica(tmp_path / "zoo-git", layout=layout) as zoo:
        result = run_crawl("onnxmodelzoo", tmp_path, settings=zoo.settings(), env=zoo.env())
        git_sessions = zoo.git_sessions()
        readme_fetches = {d: zoo.raw_requests(f"{d}/README.md") for d in model_dirs(layout)}
        unlisted = zoo.raw_requests(f"{prefix(layout)}text/machine_comprehension/qa-bert-beam/README.md")
        expected_sha = {d: zoo.last_commit(d) for d in model_dirs(layout)}
        commits = zoo.commits

    items = {i["ModelHub"]["MetadataObjectID"]: i for i in result.items}
    assert sorted(items) == sorted(model_dirs(layout))
    assert len({i["id"] for i in items.values()}) == len(MODEL_DIRS)
    assert all(n == 1 for n in readme_fetches.values()) and unlisted == 0

    # The repository is cloned once, and every record points at that clone.
    assert result.stats["ptm/clone/queued"] == 1 and git_sessions == 1
    assert result.stats["ptm/clone/shared"] == len(MODEL_DIRS) - 1
    clone = result.data_dir / CLONE
    for model_dir, item in items.items():
        assert list(VALIDATOR.iter_errors(item)) == [], model_dir
        assert (item["RepoURL"], item["RepoSubPath"], item["RepoPath"]) == (
            f"https://github.com/{REPO}", model_dir, CLONE)
        assert item["CloneStatus"] == "cloned"
        # The last commit under the model's folder, in the served repository and in the clone.
        assert item["LatestGitCommitSHA"] == expected_sha[model_dir], model_dir
        assert item["LatestGitCommitSHA"] == git_out(clone, "log", "-1", "--format=%H", "--", model_dir)
    assert git_out(clone, "rev-parse", "HEAD") == commits[-1]
    touched = {prefix(layout) + folder: commits[n] for n, (_, _, folder, _) in enumerate(LATER_COMMITS, 1)}
    for model_dir, item in items.items():
        assert item["LatestGitCommitSHA"] == touched.get(model_dir, commits[0]), model_dir
    assert len({i["LatestGitCommitSHA"] for i in items.values()}) == 3

    # LFS pointers, not weights, in the clone.
    weight = clone / prefix(layout) / "vision/classification/pebblenet/model/pebblenet18-v1-7.onnx"
    assert weight.read_text().startswith("version https://git-lfs.github.com/spec/v1\noid sha256:")
    assert not [p for p in (clone / ".git").rglob("lfs/objects/*/*/*") if p.is_file()]

    pebble = items[prefix(layout) + "vision/classification/pebblenet"]
    assert (pebble["ModelName"], pebble["ModelTask"]) == ("PebbleNet", "image_classification")
    payload = json.loads((result.data_dir / pebble["ModelHub"]["MetadataFilePath"]).read_text())
    assert payload["model_dir"] == pebble["RepoSubPath"] and payload["anchor"] == "image_classification"
    assert payload["readme_url"] == f"{zoo.raw_url}/{pebble['RepoSubPath']}/README.md"
    download = payload["variants"][0]["downloads"][0]["path"]
    assert (clone / download).is_file()  # download paths are paths in the repository

    stats = result.stats
    assert stats["finish_reason"] == "finished"
    assert stats["ptm/store/records"] == stats["item_scraped_count"] == len(MODEL_DIRS)
    assert stats["ptm/pages/rows_without_link"] == PLACEHOLDER_ROWS + 1  # + the "(coming soon)" row
    assert stats.get("ptm/pages/malformed_table_rows", 0) == 0
    assert len(result.records("onnxmodelzoo")) == len(MODEL_DIRS)
    if layout == "2025":  # the TurnkeyML folders are in the clone but not in the index
        assert (clone / "Computer_Vision/tinyvit_Opset17_timm/turnkey_stats.yaml").is_file()


def test_recrawl_fetches_the_clone_and_moves_only_the_touched_folder(tmp_path):
    with OnnxZooReplica(tmp_path / "zoo-git") as zoo:
        first = run_crawl("onnxmodelzoo", tmp_path, settings=zoo.settings(), env=zoo.env(),
                          out_name="first.jsonl")
        before = {i["RepoSubPath"]: i["LatestGitCommitSHA"] for i in first.items}
        new = zoo.git.commit(REPO, {"vision/classification/glyphdigits/model/notes.txt": "retrained\n"},
                             message="GlyphDigits: notes", date="2023-03-01T10:00:00Z")
        second = run_crawl("onnxmodelzoo", tmp_path, settings=zoo.settings(), env=zoo.env(),
                           out_name="second.jsonl")
        assert zoo.git_sessions() == 2  # one clone, one fetch
    after = {i["RepoSubPath"]: i["LatestGitCommitSHA"] for i in second.items}
    assert after.pop("vision/classification/glyphdigits") == new
    assert before.pop("vision/classification/glyphdigits") != new
    assert after == before
    assert {i["CloneStatus"] for i in second.items} == {"updated"}
    assert second.stats["ptm/clone/queued"] == 1
    assert len(second.records("onnxmodelzoo")) == len(MODEL_DIRS)


def test_limit_and_a_missing_model_readme(tmp_path):
    with OnnxZooReplica(tmp_path / "zoo-git", layout="2025") as zoo:
        metadata_only = {**zoo.settings(), "PTM_CLONE": 0}
        limited = run_crawl("onnxmodelzoo", tmp_path, args={"limit": 2}, settings=metadata_only, env=zoo.env(),
                            out_name="limited.jsonl")
        readmes_fetched = sum(zoo.raw_requests(f"{d}/README.md") for d in model_dirs("2025"))
        gone = "validated/vision/classification/shardnet/README.md"
        zoo.gone.add(gone)
        result = run_crawl("onnxmodelzoo", tmp_path, settings=metadata_only, env=zoo.env(), check=False)
        assert zoo.git_sessions() == 0
    assert sorted(i["RepoSubPath"] for i in limited.items) == sorted(model_dirs("2025")[:2])
    assert readmes_fetched == 2
    assert sorted(i["RepoSubPath"] for i in result.items) == sorted(
        d for d in model_dirs("2025") if d != "validated/vision/classification/shardnet")
    assert result.stats["ptm/pages/failed/HTTP 404"] == 1
    assert f"Page not found: {zoo.raw_url}/{gone} (HTTP 404)" in result.log
    assert result.returncode == 1 and "exit status 1: 1 page not found (HTTP 404)" in result.log
    assert {i["CloneStatus"] for i in result.items} == {"skipped"}
