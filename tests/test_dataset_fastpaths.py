"""The dataset tree's fast paths (benchmarks: bench/) behave exactly like the careful ones."""

from __future__ import annotations

import json
import os
import stat

import pytest

from ptmscrape.dataset.jsonl import read_jsonl
from ptmscrape.dataset.paths import UnsafePath
from ptmscrape.dataset.snapshots import SnapshotWriter, merge_records, pending_snapshots
from ptmscrape.dataset.tree import DatasetTree


def test_write_atomic_fast_path_gives_the_same_file_as_the_first_write(tmp_path):
    tree = DatasetTree(tmp_path)
    tree.write_atomic("hub/json/o/a.json", "{\"é\": 1}".encode())  # first: checked path, folder made
    tree.write_atomic("hub/json/o/b.json", b"[2]")  # same folder: fast path
    tree.write_atomic("hub/json/o/a.json", b"[3]")  # replace through the fast path
    folder = tmp_path / "hub/json/o"
    assert sorted(os.listdir(folder)) == ["a.json", "b.json"]  # no temp files left
    assert (folder / "a.json").read_bytes() == b"[3]" and (folder / "b.json").read_bytes() == b"[2]"
    modes = {stat.S_IMODE((folder / n).stat().st_mode) for n in ("a.json", "b.json")}
    assert len(modes) == 1


def test_write_atomic_fast_path_still_refuses_a_symlink_out_of_the_tree(tmp_path):
    tree = DatasetTree(tmp_path / "data")
    tree.write_atomic("hub/json/o/a.json", b"1")
    outside = tmp_path / "outside.json"
    outside.write_bytes(b"keep")
    os.symlink(outside, tmp_path / "data/hub/json/o/evil.json")
    with pytest.raises(UnsafePath):
        tree.write_atomic("hub/json/o/evil.json", b"overwritten")
    assert outside.read_bytes() == b"keep"


def test_write_atomic_recreates_a_folder_removed_during_the_crawl(tmp_path):
    tree = DatasetTree(tmp_path)
    tree.write_atomic("hub/json/o/a.json", b"1")
    (tmp_path / "hub/json/o/a.json").unlink()
    (tmp_path / "hub/json/o").rmdir()
    tree.write_atomic("hub/json/o/b.json", b"2")
    assert (tmp_path / "hub/json/o/b.json").read_bytes() == b"2"


def test_merge_output_is_the_compact_re_encoding_of_every_kept_line(tmp_path):
    tree = DatasetTree(tmp_path)
    records = [{"id": i, "ModelName": f"modèle \u2028 {i}", "Tags": ["a", "\"q\""], "Likes": None}
               for i in range(1, 6)]
    writer = SnapshotWriter(tree, "hub", "s1")
    for record in records:
        writer.write(record)
    writer.close()
    old = tmp_path / "hub/hub.jsonl"
    # Lines not written by this module: spaced JSON, id not first, junk, a duplicate, a torn tail.
    old.write_bytes(b'{"id": 9, "ModelName": "spaced"}\n{"ModelName":"late id","id":10}\n'
                    b'not json\n{"id":3,"ModelName":"older copy"}\n{"id": 11, "Mod')
    counts = merge_records(tree, "hub", pending_snapshots(tree, "hub"))
    lines = old.read_bytes().splitlines(keepends=True)
    expected = [json.dumps(r, ensure_ascii=False, separators=(",", ":")).encode() + b"\n"
                for r in [*records, {"id": 9, "ModelName": "spaced"}, {"ModelName": "late id", "id": 10}]]
    assert lines == expected
    assert counts == {"records": 7, "carried": 2}
    assert pending_snapshots(tree, "hub") == []


def test_write_if_changed_leaves_an_identical_file_alone(tmp_path):
    tree = DatasetTree(tmp_path)
    assert tree.write_if_changed("hub/json/o/a.json", b"[1]") is True
    before = (tmp_path / "hub/json/o/a.json").stat().st_ino
    assert DatasetTree(tmp_path).write_if_changed("hub/json/o/a.json", b"[1]") is False  # a new crawl
    assert (tmp_path / "hub/json/o/a.json").stat().st_ino == before
    assert tree.write_if_changed("hub/json/o/a.json", b"[12]") is True
    assert tree.write_if_changed("hub/json/o/a.json", b"[21]") is True  # same size, other bytes
    assert (tmp_path / "hub/json/o/a.json").read_bytes() == b"[21]"


def test_write_if_changed_never_reads_through_a_symlink(tmp_path):
    tree = DatasetTree(tmp_path / "data")
    tree.write_atomic("hub/json/o/a.json", b"1")
    outside = tmp_path / "outside.json"
    outside.write_bytes(b"same")
    os.symlink(outside, tmp_path / "data/hub/json/o/evil.json")
    with pytest.raises(UnsafePath):
        tree.write_if_changed("hub/json/o/evil.json", b"same")


def test_record_ids_are_the_ids_read_jsonl_gives(tmp_path):
    from ptmscrape.dataset.jsonl import read_jsonl, record_ids

    tree = DatasetTree(tmp_path)
    writer = SnapshotWriter(tree, "hub", "s1")
    for i in (5, 3, 2**53 - 1):
        writer.write({"id": i, "ModelName": f"m{i}"})
    writer.close()
    with open(writer.path, "ab") as f:
        f.write(b'{"ModelName": "spaced", "id": 7}\n{"no": "id"}\n[1]\nnot json\n{"id": "text"}\n{"id":8,"Mo')
    assert list(record_ids(writer.path)) == [r["id"] for r in read_jsonl(writer.path) if "id" in r]
    assert list(record_ids(writer.path)) == [5, 3, 2**53 - 1, 7, "text"]


def test_records_except_gives_read_jsonl_less_the_ids_and_decodes_only_what_it_gives(tmp_path, monkeypatch):
    from ptmscrape.dataset import jsonl

    tree = DatasetTree(tmp_path)
    writer = SnapshotWriter(tree, "hub", "s1")
    for i in range(1, 7):
        writer.write({"id": i, "ModelName": f"m{i}"})
    writer.close()
    with open(writer.path, "ab") as f:
        f.write(b'{"ModelName": "spaced", "id": 2}\n{"ModelName": "spaced", "id": 9}\n{"no": "id"}\n'
                b'not json\n{"id":8,"Mo')
    seen = {1, 2, 3, 4}
    expected = [r for r in jsonl.read_jsonl(writer.path) if r.get("id") not in seen]
    decoded = []
    real = jsonl.json_object
    monkeypatch.setattr(jsonl, "json_object", lambda raw: decoded.append(raw) or real(raw))
    assert list(jsonl.records_except(writer.path, seen)) == expected
    assert [r.get("id") for r in expected] == [5, 6, 9, None]
    # Own lines of seen models are skipped undecoded; foreign lines must be decoded to know their id.
    assert not any(raw.startswith((b'{"id":1,', b'{"id":2,', b'{"id":3,', b'{"id":4,')) for raw in decoded)
    assert len(decoded) == 6  # 5, 6, the two spaced lines, the id-less line, the non-JSON line


def _records(ids, tag):
    return [{"id": i, "ModelName": f"m{i}-{tag}", "Tags": ["a,b:c", "é", "\\\"q"]} for i in ids]


SNAPSHOT_CASES = {
    "first crawl": ([], _records(range(1, 40), "new"), None),
    "re-crawl, some models carried": (_records(range(20, 80), "old"), _records(range(1, 40), "new"), None),
    "an older snapshot pending too": (_records(range(50, 60), "old"), _records(range(1, 40), "new"),
                                      _records(range(30, 70), "older")),
    "a duplicate id": ([], _records([1, 2, 3, 2, 4], "new"), None),
    "id not first": ([], _records([1, 2], "new") + [{"ModelName": "x", "id": 3}], None),
    "an id that is no integer": ([], _records([1, 2], "new") + [{"id": "3"}, {"id": True}, {"id": 2.0}], None),
    "an id beyond 20 digits": ([], _records([1, 10**21], "new"), None),
    "a record without id": ([], _records([1], "new") + [{"ModelName": "x"}], None),
    "a one-key record": ([], [{"id": 5}, *_records([6], "new")], None),
}


def _merged(tmp_path, name, old, new, older, *, fast, monkeypatch):
    from ptmscrape.dataset import snapshots as module

    root = tmp_path / f"{name}-{fast}".replace(" ", "_")
    tree = DatasetTree(root)
    if old:
        (root / "hub").mkdir(parents=True)
        (root / "hub/hub.jsonl").write_bytes(b"".join(json.dumps(r, separators=(",", ":")).encode() + b"\n"
                                                     for r in old))
    paths = []
    if older is not None:
        writer = SnapshotWriter(tree, "hub", "1")
        for record in older:
            writer.write(record)
        writer.close()
        paths.append(writer.path)
    writer = SnapshotWriter(tree, "hub", "2")
    for record in new:
        writer.write(record)
    writer.close()
    paths.append(writer.path)
    read = []
    real = module.complete_lines
    monkeypatch.setattr(module, "complete_lines", lambda path: read.append(path) or real(path))
    counts = merge_records(tree, "hub", paths, written=writer if fast else None)
    monkeypatch.setattr(module, "complete_lines", real)
    return counts, (root / "hub/hub.jsonl").read_bytes(), writer.path in read, writer.ids is not None


@pytest.mark.parametrize("name", list(SNAPSHOT_CASES))
def test_merge_copying_the_writers_snapshot_gives_the_merge_of_reading_it(tmp_path, monkeypatch, name):
    old, new, older = SNAPSHOT_CASES[name]
    careful = _merged(tmp_path, name, old, new, older, fast=False, monkeypatch=monkeypatch)
    fast = _merged(tmp_path, name, old, new, older, fast=True, monkeypatch=monkeypatch)
    assert fast[:2] == careful[:2]
    assert careful[2]  # without the writer, its snapshot is read line by line
    vouched = name in {"first crawl", "re-crawl, some models carried", "an older snapshot pending too",
                       "a one-key record"}
    assert fast[3] is vouched and fast[2] is not vouched


def test_a_snapshot_file_with_earlier_lines_or_a_failed_write_is_read_line_by_line(tmp_path, monkeypatch):
    tree = DatasetTree(tmp_path)
    writer = SnapshotWriter(tree, "hub", "s")
    writer.write({"id": 1, "v": "first run"})
    writer.close()
    again = SnapshotWriter(tree, "hub", "s")  # the same file, appended to
    assert again.ids is None
    again.write({"id": 2, "v": "second run"})
    again.close()
    counts = merge_records(tree, "hub", [again.path], written=again)
    assert counts == {"records": 2, "carried": 0}
    assert [r["id"] for r in read_jsonl(tmp_path / "hub/hub.jsonl")] == [1, 2]

    failing = SnapshotWriter(tree, "hub", "t")
    failing.write({"id": 3})
    with pytest.raises(TypeError):
        failing.write({"id": 4, "v": object()})
    assert failing.ids is None
    failing.close()
