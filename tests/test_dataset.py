import json
import os

import pytest

from ptmscrape.dataset import paths
from ptmscrape.dataset.jsonl import read_jsonl
from ptmscrape.dataset.paths import UnsafePath, segment
from ptmscrape.dataset.snapshots import SnapshotWriter, merge_records, pending_snapshots
from ptmscrape.dataset.tree import DatasetTree


@pytest.mark.parametrize("name, expected", [
    ("bert-base-uncased", "bert-base-uncased"),
    ("v1.0_final", "v1.0_final"),
    ("..", "%2E."),
    (".hidden", "%2Ehidden"),
    ("a/b", "a%2Fb"),
    ("/etc/passwd", "%2Fetc%2Fpasswd"),
    ("nul\x00byte", "nul%00byte"),
    ("modèle", "mod%C3%A8le"),
    ("-rf", "-rf"),
])
def test_segment_encodes_everything_unsafe(name, expected):
    assert segment(name) == expected


def test_segment_is_injective_and_bounded():
    long_a, long_b = "x" * 500 + "a", "x" * 500 + "b"
    assert segment(long_a) != segment(long_b)
    assert len(segment(long_a)) <= 120
    assert segment("a%2Fb") == "a%252Fb"


@pytest.mark.parametrize("bad", ["", None, 3])
def test_segment_refuses_empty_or_non_text(bad):
    with pytest.raises(UnsafePath):
        segment(bad)


def test_tree_paths_never_leave_the_root(tmp_path):
    tree = DatasetTree(tmp_path / "data")
    assert tree.path("hub/x.json") == (tmp_path / "data/hub/x.json").resolve()
    for escape in ("../x", "hub/../../x", "/etc/passwd"):
        with pytest.raises(UnsafePath):
            tree.path(escape)
    hostile = paths.metadata_file("huggingface", "..", "../../etc/passwd")
    assert tree.root in tree.path(hostile).parents


def test_a_data_dir_given_with_a_tilde_is_the_one_the_crawl_checked(tmp_path, monkeypatch):
    """``check_data_dir`` expands "~" (``-s "PTM_DATA_DIR=~/d"`` quoted, or a Scrapyd ``setting=``):
    the tree was written to ./~/d all the same, and export and report looked there too."""
    from ptmscrape.checks import check_data_dir
    from ptmscrape.commands import dataset_dir

    monkeypatch.setenv("HOME", str(tmp_path / "home"))
    monkeypatch.chdir(tmp_path)
    check_data_dir("~/d")
    tree = DatasetTree("~/d")
    tree.write_atomic("hub/x.json", b"{}")
    assert tree.root == tmp_path / "home" / "d" and (tmp_path / "home/d/hub/x.json").exists()
    assert not (tmp_path / "~").exists()
    assert dataset_dir("export", [], {"PTM_DATA_DIR": "~/d"}) == tmp_path / "home" / "d"


def test_write_atomic_replaces_whole_file_and_leaves_no_temp(tmp_path):
    tree = DatasetTree(tmp_path)
    tree.write_atomic("hub/json/a.json", b'{"v": 1}')
    tree.write_atomic("hub/json/a.json", b'{"v": 2}')
    assert json.loads((tmp_path / "hub/json/a.json").read_bytes()) == {"v": 2}
    assert os.listdir(tmp_path / "hub/json") == ["a.json"]


def test_read_jsonl_skips_a_torn_last_line(tmp_path):
    path = tmp_path / "x.jsonl"
    path.write_bytes(b'{"id": 1}\n{"id": 2}\n{"id": 3, "Mod')
    assert [r["id"] for r in read_jsonl(path)] == [1, 2]


def _snapshot(tree, hub, stamp, records):
    writer = SnapshotWriter(tree, hub, stamp)
    for record in records:
        writer.write(record)
    writer.close()
    return writer.path


def test_merge_keeps_newest_record_per_id_and_counts_unseen(tmp_path):
    tree = DatasetTree(tmp_path)
    first = _snapshot(tree, "hub", "1", [{"id": 1, "v": "a"}, {"id": 2, "v": "a"}])
    merge_records(tree, "hub", [first])
    second = _snapshot(tree, "hub", "2", [{"id": 2, "v": "b"}, {"id": 3, "v": "b"}])
    counts = merge_records(tree, "hub", [second])
    records = {r["id"]: r["v"] for r in read_jsonl(tmp_path / "hub/hub.jsonl")}
    assert records == {1: "a", 2: "b", 3: "b"}
    assert counts == {"records": 3, "carried": 1}
    assert pending_snapshots(tree, "hub") == []
    assert first.exists() and second.exists()  # snapshots stay: they are the time series


def test_snapshot_of_a_killed_crawl_is_pending_until_merged(tmp_path):
    tree = DatasetTree(tmp_path)
    writer = SnapshotWriter(tree, "hub", "killed")
    writer.write({"id": 7, "v": "x"})
    writer.close()  # no merge: as if the process died here (the kernel closes its files)
    assert pending_snapshots(tree, "hub") == [writer.path]
    merge_records(tree, "hub", pending_snapshots(tree, "hub"))
    assert [r["id"] for r in read_jsonl(tmp_path / "hub/hub.jsonl")] == [7]
    assert pending_snapshots(tree, "hub") == []


def test_a_merge_by_another_worker_leaves_a_live_crawls_snapshot_pending_for_after_it_is_killed(tmp_path):
    # Workers sharing a data dir: one starts (merge_interrupted) or ends (merge of every pending
    # snapshot) while another writes. The live one's records so far are merged, its marker stays,
    # and what it writes afterwards is merged by the next merge even when it is killed before its own.
    from ptmscrape.dataset.snapshots import merge_interrupted

    tree = DatasetTree(tmp_path)
    live = SnapshotWriter(tree, "hub", "live")
    live.write({"id": 1, "v": "x"})
    assert merge_interrupted(tree, "hub")[:2] == (1, 1)  # another worker's start
    assert pending_snapshots(tree, "hub") == [live.path]
    live.write({"id": 2, "v": "x"})
    merge_records(tree, "hub", pending_snapshots(tree, "hub"))  # another worker's end
    assert pending_snapshots(tree, "hub") == [live.path]
    live.write({"id": 3, "v": "x"})
    live.close()  # killed: the kernel closes its file, no merge of its own
    assert merge_interrupted(tree, "hub")[:2] == (1, 3)
    assert [r["id"] for r in read_jsonl(tmp_path / "hub/hub.jsonl")] == [1, 2, 3]
    assert pending_snapshots(tree, "hub") == []


def test_snapshot_line_is_whole_on_disk_when_write_returns(tmp_path):
    tree = DatasetTree(tmp_path)
    writer = SnapshotWriter(tree, "hub", "live")
    record = {"id": 5, "ModelName": "modèle", "Tags": ["a"] * 3000}  # longer than one buffer
    writer.write(record)
    # Read by another file object while the writer is still open: nothing may wait in a buffer.
    assert writer.path.read_bytes() == (json.dumps(record, ensure_ascii=False, separators=(",", ":"))
                                        + "\n").encode()
    writer.close()


def test_merge_reencodes_foreign_lines_compactly_and_drops_lines_without_id(tmp_path):
    tree = DatasetTree(tmp_path)
    (tmp_path / "hub").mkdir()
    (tmp_path / "hub/hub.jsonl").write_text('{"v": "old", "id": 9}\n{"no": "id"}\n')
    merge_records(tree, "hub", [])
    assert (tmp_path / "hub/hub.jsonl").read_text() == '{"v":"old","id":9}\n'
