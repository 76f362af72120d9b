"""Real ``scrapy crawl onnxmodelzoo`` runs (subprocess) against the local ONNX Model Zoo, in both
layouts; git fetches https://github.com/onnx/models from the replica through ``insteadOf``."""

import json
import subprocess
import urllib.request

import pytest
from jsonschema import Draft202012Validator

from ptmscrape.dataset.payloads import read_payload
from ptmscrape.dataset.tree import DatasetTree
from ptmscrape.items import load_schema
from tests.crawl import run_crawl
from tests.replicas.onnx import (
    GENERATED_DIRS,
    LATER_COMMITS,
    PLACEHOLDER_ROWS,
    REPO,
    OnnxZooReplica,
    generated_dirs,
    model_dirs,
    prefix,
    unlisted_dirs,
)

VALIDATOR = Draft202012Validator(load_schema())
CLONE = "onnxmodelzoo/repos/onnx/models"
# Model rows (download-table rows with a link) of the READMEs the index links; 2025 added two.
ROWS = {"2023": 29, "2025": 31}
# Model rows of the README no index table links (qa-bert-beam, like gpt2-bs), found through the tree.
UNLISTED_ROWS = 1


def git_out(clone, *args):
    return subprocess.run(["git", "-C", str(clone), *args], capture_output=True, text=True,
                          check=True).stdout.strip()


@pytest.mark.parametrize("layout", ["2023", "2025"])
def test_crawl_makes_one_record_per_model_row_and_generated_model_from_one_shared_clone(tmp_path, layout):
    with OnnxZooReplica(tmp_path / "zoo-git", layout=layout) as zoo:
        result = run_crawl("onnxmodelzoo", tmp_path, settings=zoo.settings(), env=zoo.env())
        git_sessions = zoo.git_sessions()
        tree_fetches = zoo.replica.count("GET", r"^/ghapi/repos/onnx/models/git/trees/main\?recursive=1$")
        readme_fetches = {d: zoo.raw_requests(f"{d}/README.md") for d in model_dirs(layout)}
        stats_fetches = {d: zoo.raw_requests(f"{d}/turnkey_stats.yaml") for d in generated_dirs(layout)}
        unlisted = zoo.raw_requests(f"{prefix(layout)}text/machine_comprehension/qa-bert-beam/README.md")
        index_fetches = zoo.raw_requests("README.md")
        unverified = zoo.raw_requests("Computer_Vision/skip/wobblynet_Opset16_timm/turnkey_stats.yaml")
        folders = model_dirs(layout) + generated_dirs(layout) + unlisted_dirs(layout)
        expected_sha = {d: zoo.last_commit(d) for d in folders}
        commits = zoo.commits

    generated = generated_dirs(layout)
    assert len(result.items) == ROWS[layout] + UNLISTED_ROWS + len(generated)
    assert len({i["id"] for i in result.items}) == len(result.items)
    by_folder: dict[str, list] = {}
    for item in result.items:
        by_folder.setdefault(item["RepoSubPath"], []).append(item)
    assert sorted(by_folder) == sorted(folders)
    assert sum(len(by_folder[d]) for d in model_dirs(layout)) == ROWS[layout]
    assert all(len(by_folder[d]) == 1 for d in generated)
    assert len(by_folder[prefix(layout) + "vision/classification/pebblenet"]) == (9 if layout == "2025" else 8)
    assert tree_fetches == 1 and all(n == 1 for n in readme_fetches.values())
    # The folder no index table links: found in the tree, the index read once more to tell.
    assert unlisted == 1 and index_fetches == 2
    assert all(n == 1 for n in stats_fetches.values()) and unverified == 0

    # The repository is cloned once, and every record points at that clone.
    assert result.stats["ptm/clone/queued"] == 1 and git_sessions == 1
    assert result.stats["ptm/clone/shared"] == len(result.items) - 1
    clone = result.data_dir / CLONE
    for item in result.items:
        model_dir = item["RepoSubPath"]
        assert list(VALIDATOR.iter_errors(item)) == [], item["ModelName"]
        assert (item["RepoURL"], item["RepoPath"]) == (f"https://github.com/{REPO}", CLONE)
        assert item["CloneStatus"] == "cloned"
        # The last commit under the model's folder, in the served repository and in the clone.
        assert item["LatestGitCommitSHA"] == expected_sha[model_dir], model_dir
        assert item["LatestGitCommitSHA"] == git_out(clone, "log", "-1", "--format=%H", "--", model_dir)
        for model_file in item["ModelFiles"]:  # model files are paths in the repository
            assert (clone / model_file["Path"]).is_file(), model_file
    assert git_out(clone, "rev-parse", "HEAD") == commits[-1]
    touched = {prefix(layout) + folder: commits[n] for n, (_, _, folder, _) in enumerate(LATER_COMMITS, 1)}
    for item in result.items:
        assert item["LatestGitCommitSHA"] == touched.get(item["RepoSubPath"], commits[0]), item["ModelName"]
    assert len({i["LatestGitCommitSHA"] for i in result.items}) == 3

    # LFS pointers, not weights, in the clone.
    weight = clone / prefix(layout) / "vision/classification/pebblenet/model/pebblenet18-v1-7.onnx"
    assert weight.read_text().startswith("version https://git-lfs.github.com/spec/v1\noid sha256:")
    assert not [p for p in (clone / ".git").rglob("lfs/objects/*/*/*") if p.is_file()]

    records = {i["ModelName"]: i for i in result.items}
    qdq = records["pebblenet50-v1-12-qdq"]
    assert (qdq["ModelTask"], qdq["ModelArchitecture"], qdq["Opset"], qdq["OnnxVersion"]) == (
        "image_classification", "PebbleNet", 12, "1.10.0")
    assert qdq["Metrics"] == {"Top-1 accuracy (%)": "73.70"}
    payload = read_payload(DatasetTree(result.data_dir), qdq["ModelHub"]["MetadataFilePath"])
    assert payload["model_dir"] == qdq["RepoSubPath"] and payload["anchor"] == "image_classification"
    assert payload["readme_url"] == f"{zoo.raw_url}/{qdq['RepoSubPath']}/README.md"
    assert payload["row"]["name"] == "PebbleNet50-qdq" and payload["cells"]["Model"] == "PebbleNet50-qdq"

    stats = result.stats
    assert stats["finish_reason"] == "finished"
    assert stats["ptm/store/records"] == stats["item_scraped_count"] == len(result.items)
    assert stats["ptm/pages/rows_without_link"] == PLACEHOLDER_ROWS + 1  # + the "(coming soon)" row
    assert stats.get("ptm/pages/malformed_table_rows", 0) == 0
    assert stats.get("ptm/pages/generated_models_listed", 0) == len(generated)
    assert stats.get("ptm/pages/unverified_models_skipped", 0) == (1 if layout == "2025" else 0)
    assert stats["ptm/pages/unlisted_model_folders"] == 1
    (beam,) = by_folder[unlisted_dirs(layout)[0]]
    assert (beam["ModelName"], beam["ModelTask"], beam["Opset"]) == ("qa-bert-beam-12", "machine_comprehension", 12)
    assert "Model folder " + unlisted_dirs(layout)[0] + " has a README and .onnx files" in result.log
    assert "ptm/pages/tree_truncated" not in stats and "ptm/pages/failed" not in stats
    assert len(result.records("onnxmodelzoo")) == len(result.items)
    if layout == "2025":  # the generated models: found in the tree, read from turnkey_stats.yaml
        tiny = records["tinyvit_Opset17_timm"]
        assert (tiny["ParameterCount"], tiny["Opset"], tiny["SourceLibrary"], tiny["ModelClass"]) == (
            5428040, 17, "timm", "TinyViT")
        assert tiny["ModelHub"]["MetadataObjectID"] == "Computer_Vision/tinyvit_Opset17_timm"
        assert {records[d.rsplit("/", 1)[-1]]["SourceLibrary"] for d in GENERATED_DIRS} == {
            "timm", "torchvision", "transformers", "graph_convolutions"}


def test_ids_survive_the_move_under_validated(tmp_path):
    ids = {}
    for layout in ("2023", "2025"):
        (tmp_path / layout).mkdir()
        with OnnxZooReplica(tmp_path / f"zoo-git-{layout}", layout=layout) as zoo:
            result = run_crawl("onnxmodelzoo", tmp_path / layout, settings={**zoo.settings(), "PTM_CLONE": 0},
                               env=zoo.env())
        ids[layout] = {i["id"]: i["ModelName"] for i in result.items if not i["SourceLibrary"]}
    assert len(ids["2023"]) == ROWS["2023"] + UNLISTED_ROWS and len(ids["2025"]) == ROWS["2025"] + UNLISTED_ROWS
    assert ids["2023"].items() <= ids["2025"].items()  # every 2023 model, same id, same name


def test_a_truncated_tree_listing_is_crawled_as_far_as_it_goes_and_said(tmp_path):
    with OnnxZooReplica(tmp_path / "zoo-git", layout="2025") as zoo:
        listing = json.loads(urllib.request.urlopen(zoo.tree_url).read())
        first_stats = next(n for n, e in enumerate(listing["tree"]) if e["path"].endswith("turnkey_stats.yaml"))
        full = run_crawl("onnxmodelzoo", tmp_path, settings={**zoo.settings(), "PTM_CLONE": 0}, env=zoo.env(),
                         out_name="full.jsonl")
        zoo.truncate_tree = first_stats + 1  # GitHub cuts huge trees; here after the first generated model
        result = run_crawl("onnxmodelzoo", tmp_path, settings={**zoo.settings(), "PTM_CLONE": 0}, env=zoo.env(),
                           check=False)
    # The listing was not read whole: a failed page, so exit status 1 (README "Exit status").
    assert result.returncode == 1 and "Traceback" not in result.log
    assert "Crawl verdict: exit status 1: 1 page failed (truncated tree: 1)" in result.log
    assert len(full.items) == ROWS["2025"] + UNLISTED_ROWS + len(GENERATED_DIRS)
    # The generated models the cut listing lost are not reported as removed from the hub.
    assert not list((result.data_dir / "onnxmodelzoo").glob("removed-*.txt"))
    assert len(result.records("onnxmodelzoo")) == len(full.items)
    generated = [i for i in result.items if i["SourceLibrary"]]
    assert [i["RepoSubPath"] for i in generated] == [listing["tree"][first_stats]["path"].rsplit("/", 1)[0]]
    assert len(result.items) == ROWS["2025"] + 1
    assert result.stats["ptm/pages/tree_truncated"] == 1
    assert result.stats["ptm/pages/failed/truncated tree"] == 1
    assert "is truncated" in result.log and "generated models beyond it are missing" in result.log
    assert result.stats["finish_reason"] == "failed_pages" and result.stats["ptm/verdict/exit_status"] == 1


def test_recrawl_fetches_the_clone_and_moves_only_the_touched_folder(tmp_path):
    with OnnxZooReplica(tmp_path / "zoo-git") as zoo:
        first = run_crawl("onnxmodelzoo", tmp_path, settings=zoo.settings(), env=zoo.env(),
                          out_name="first.jsonl")
        before = {i["RepoSubPath"]: i["LatestGitCommitSHA"] for i in first.items}
        assert len(first.items) == ROWS["2023"] + UNLISTED_ROWS
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
    assert len(second.records("onnxmodelzoo")) == ROWS["2023"] + UNLISTED_ROWS


def test_limit_and_a_missing_model_readme(tmp_path):
    with OnnxZooReplica(tmp_path / "zoo-git", layout="2025") as zoo:
        metadata_only = {**zoo.settings(), "PTM_CLONE": 0}
        limited = run_crawl("onnxmodelzoo", tmp_path, args={"limit": 2}, settings=metadata_only, env=zoo.env(),
                            out_name="limited.jsonl")
        readmes_fetched = sum(zoo.raw_requests(f"{d}/README.md") for d in model_dirs("2025"))
        stats_fetched = sum(zoo.raw_requests(f"{d}/turnkey_stats.yaml") for d in generated_dirs("2025"))
        gone = "validated/vision/classification/shardnet/README.md"
        zoo.gone.add(gone)
        result = run_crawl("onnxmodelzoo", tmp_path, settings=metadata_only, env=zoo.env(), check=False)
        assert zoo.git_sessions() == 0
    # The limit counts models (rows and generated models), not folders.
    assert len(limited.items) == 2 and readmes_fetched <= 2 and stats_fetched <= 2
    assert {i["RepoSubPath"] for i in limited.items} <= set(
        model_dirs("2025")[:2] + generated_dirs("2025")[:2] + unlisted_dirs("2025"))
    assert sorted({i["RepoSubPath"] for i in result.items}) == sorted(
        d for d in model_dirs("2025") + generated_dirs("2025") + unlisted_dirs("2025")
        if d != "validated/vision/classification/shardnet")
    assert result.stats["ptm/pages/failed/HTTP 404"] == 1
    assert f"Page not found: {zoo.raw_url}/{gone} (HTTP 404)" in result.log
    assert result.returncode == 1 and "exit status 1: 1 page not found (HTTP 404)" in result.log
    assert {i["CloneStatus"] for i in result.items} == {"skipped"}


def test_a_generated_models_stats_file_cut_short_fails_the_page(tmp_path):
    """A ``turnkey_stats.yaml`` served whole per HTTP but cut short (a 200 answer of half the file)
    is still a YAML mapping: the generated model was stored without what the cut lost (its ONNX
    information, its task), exit status 0. The tree lists the file's size: a shorter file is
    fetched again, then reported (exit status 1), as TF Hub's and OpenVINO's files are."""
    from tests.replicas.server import Reply

    cut = f"{generated_dirs('2025')[0]}/turnkey_stats.yaml"

    def cut_short(incoming, call_next):
        reply = call_next()
        if incoming.path.endswith(cut) and reply.status == 200:
            return Reply(200, reply.body[: len(reply.body) // 2], reply.headers)
        return reply

    with OnnxZooReplica(tmp_path / "zoo-git", layout="2025") as zoo:
        zoo.replica.interceptors.append(cut_short)
        result = run_crawl("onnxmodelzoo", tmp_path, settings={**zoo.settings(), "PTM_CLONE": 0,
                                                               "PTM_RETRY_BACKOFF": 0.02}, env=zoo.env(), check=False)
        fetched = zoo.raw_requests(cut)
    assert result.returncode == 1 and fetched == 4  # once, and PTM_PAGE_RETRIES (3) times again
    assert generated_dirs("2025")[0] not in {i["RepoSubPath"] for i in result.items}
    assert len(result.items) == ROWS["2025"] + UNLISTED_ROWS + len(GENERATED_DIRS) - 1
    assert result.stats["ptm/pages/failed/file cut short"] == 1
    assert result.log.rstrip().endswith("Crawl verdict: exit status 1: 1 page failed (file cut short: 1)")
