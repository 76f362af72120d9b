"""Re-crawls into the same data dir: unchanged models cost no git traffic, changed ones are
fetched, removed ones are reported (never deleted), and two crawls can be compared."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest

from ptmscrape import diff
from tests.crawl import ROOT, read_jsonl, run_crawl
from tests.replicas.huggingface import synthetic_models
from tests.replicas.server import Reply

CHANGED = "acme-research/vit-tiny-demo"
GONE = "speechy/sepformer-toy"
POPULAR = "google-bert/bert-base-uncased"


def settings(hub, **extra):
    return {"PTM_HUGGINGFACE_URL": hub.url, "PTM_HUGGINGFACE_PAGE_SIZE": 5, **extra}


def head(repo):
    return subprocess.run(["git", "-C", str(repo), "rev-parse", "HEAD"], capture_output=True, text=True,
                          check=True).stdout.strip()


def repos_touched_by_git(requests) -> set[str]:
    return {path.split("/info/refs")[0].split("/git-upload-pack")[0].lstrip("/")
            for method, path in requests if "/info/refs" in path or "/git-upload-pack" in path}


def by_name(items):
    return {f"{i['ModelOwner']}/{i['ModelName']}": i for i in items}


def removed_lists(data):
    return sorted((data / "huggingface").glob("removed-*.txt"))


def test_recrawl_fetches_only_what_changed_and_reports_what_is_gone(tmp_path, hf_replica):
    data = tmp_path / "data"
    first = run_crawl("huggingface", tmp_path, settings=settings(hf_replica), data_dir=data, out_name="1.jsonl")
    assert first.stats["ptm/store/removed"] == 0 and removed_lists(data) == []
    first_records = by_name(first.records("huggingface"))

    new_sha = hf_replica.update_repo(CHANGED, {"README.md": "# v2\n"})
    hf_replica.remove_model(GONE)
    downloads = hf_replica.models[POPULAR]["downloads"]
    hf_replica.set_field(POPULAR, "downloads", downloads + 1000)
    added = hf_replica.add_model(synthetic_models(9)[8])["id"]
    seen_before = len(hf_replica.replica.requests)

    second = run_crawl("huggingface", tmp_path, settings=settings(hf_replica), data_dir=data, out_name="2.jsonl")
    # Git traffic only for the changed and the new repository; none for the 10 unchanged ones.
    assert repos_touched_by_git(hf_replica.replica.requests[seen_before:]) == {CHANGED, added}
    items = by_name(second.items)
    assert items[CHANGED]["CloneStatus"] == "updated"
    assert head(data / items[CHANGED]["RepoPath"]) == items[CHANGED]["LatestGitCommitSHA"] == new_sha
    assert items[added]["CloneStatus"] == "cloned"
    assert {i["CloneStatus"] for n, i in items.items() if n not in (CHANGED, added)} == {"unchanged"}

    # The removed model is reported, and kept: its record (as last crawled) and its clone.
    records = by_name(second.records("huggingface"))
    assert len(records) == 13 and GONE not in items
    assert records[GONE] == first_records[GONE]
    assert head(data / records[GONE]["RepoPath"]) == records[GONE]["LatestGitCommitSHA"]
    assert second.stats["ptm/store/removed"] == 1
    (report,) = removed_lists(data)
    header, line = report.read_text().splitlines()
    assert header.split("\t") == ["model", "id", "last_crawled_at", "url"]
    assert line.split("\t")[:3] == [GONE, str(records[GONE]["id"]), first_records[GONE]["CrawledAt"]]
    assert "1 model(s) of huggingface are no longer listed by the hub" in second.log

    # Every crawl keeps its dated snapshot; two of them compare with one command.
    first_snapshot, second_snapshot = sorted((data / "huggingface/snapshots").glob("*.jsonl"))
    assert all(r["CrawledAt"] for r in read_jsonl(second_snapshot))
    out = subprocess.run([sys.executable, "-m", "ptmscrape.diff", str(first_snapshot), str(second_snapshot)],
                         cwd=ROOT, capture_output=True, text=True, check=True).stdout.splitlines()
    assert out[2] == "1 added, 1 removed, 2 changed, 9 unchanged"
    assert f"+ {added}" in out and f"- {GONE}" in out
    assert f"~ {POPULAR}  Downloads: {downloads} -> {downloads + 1000} (+1000)" in out
    (changed_line,) = [line for line in out if line.startswith(f"~ {CHANGED}")]
    assert f"LatestGitCommitSHA: {first_records[CHANGED]['LatestGitCommitSHA']} -> {new_sha}" in changed_line


def test_a_crawl_that_did_not_see_the_whole_hub_reports_nothing_removed(tmp_path, hf_replica):
    data = tmp_path / "data"
    no_clone = settings(hf_replica, PTM_CLONE=0, RETRY_TIMES=0)
    run_crawl("huggingface", tmp_path, settings=no_clone, data_dir=data, out_name="full.jsonl")

    limited = run_crawl("huggingface", tmp_path, args={"limit": 5}, settings=no_clone, data_dir=data,
                        out_name="limited.jsonl")
    assert "not reported as removed: the crawl was narrowed by -a limit" in limited.log
    searched = run_crawl("huggingface", tmp_path, args={"search": "bert", "sort": "likes"},
                         settings=no_clone, data_dir=data, out_name="search.jsonl")
    assert "narrowed by -a search" in searched.log and "-a sort" not in searched.log

    routes = hf_replica.replica.routes
    i = next(i for i, r in enumerate(routes) if r[1].pattern == "/api/models")
    listing = routes[i][2]
    routes[i] = ("GET", routes[i][1], lambda req, m: Reply.text("oops", 500) if req.arg("cursor")
                 else listing(req, m))
    broken = run_crawl("huggingface", tmp_path, settings=no_clone, data_dir=data, out_name="broken.jsonl",
                       check=False)
    assert len(broken.items) == 5
    assert broken.returncode == 1 and broken.stats["finish_reason"] == "failed_pages"
    assert "not reported as removed: 1 page(s) failed" in broken.log

    for result in (limited, searched, broken):
        assert "ptm/store/removed" not in result.stats
    assert removed_lists(data) == []
    assert len(read_jsonl(data / "huggingface/huggingface.jsonl")) == 12  # nothing dropped either


# -- the diff, on hand-made snapshots -------------------------------------------------------------

def record(i, name, **fields):
    return {"id": i, "ModelOwner": "o", "ModelName": name, "CrawledAt": f"2025-01-0{i}T00:00:00Z",
            "CloneStatus": "cloned", **fields}


def write(path, records):
    path.write_text("".join(json.dumps(r) + "\n" for r in records))
    return path


def test_diff_lists_added_removed_and_field_deltas(tmp_path, capsys):
    a = write(tmp_path / "a.jsonl", [record(1, "kept", Downloads=10, Tags=["x"]), record(2, "gone"),
                                     record(3, "same", Downloads=5)])
    b = write(tmp_path / "b.jsonl", [record(1, "kept", Downloads=7, Tags=["x", "y"], CloneStatus="unchanged"),
                                     record(4, "new"), record(3, "same", Downloads=5, CloneStatus="updated")])
    result = diff.compare(diff.load(a), diff.load(b))
    assert [diff.label(r) for r in result.added] == ["o/new"]
    assert [diff.label(r) for r in result.removed] == ["o/gone"]
    ((kept, changes),) = result.changed
    assert [(c.field, c.old, c.new, c.delta) for c in changes] == [("Downloads", 10, 7, -3),
                                                                    ("Tags", ["x"], ["x", "y"], None)]
    assert result.unchanged == 1  # CrawledAt and CloneStatus are not compared by default

    assert diff.main([str(a), str(b), "--fields", "Downloads", "--json"]) == 0
    out = json.loads(capsys.readouterr().out)
    assert out["changed"] == {"o/kept": {"Downloads": {"old": 10, "new": 7, "delta": -3}}}
    assert diff.main([str(a), str(b), "--fields", "CloneStatus"]) == 0
    assert "~ o/same  CloneStatus: cloned -> updated" in capsys.readouterr().out
    assert diff.main([str(a), str(tmp_path / "missing.jsonl")]) == 2
    assert "no such snapshot" in capsys.readouterr().err


def test_diff_json_keeps_each_changed_model_when_two_share_a_name(tmp_path, capsys):
    """``--json`` keyed the changed models by owner/name: of two models of one creator with one
    name (Civitai names are not unique), the second's changes replaced the first's."""
    a = write(tmp_path / "a.jsonl", [record(1, "lora", Downloads=1), record(2, "lora", Downloads=2),
                                     record(3, "other", Downloads=3)])
    b = write(tmp_path / "b.jsonl", [record(1, "lora", Downloads=10), record(2, "lora", Downloads=20),
                                     record(3, "other", Downloads=30)])
    assert diff.main([str(a), str(b), "--fields", "Downloads", "--json"]) == 0
    out = json.loads(capsys.readouterr().out)
    assert out["changed"] == {"o/lora (id 1)": {"Downloads": {"old": 1, "new": 10, "delta": 9}},
                              "o/lora (id 2)": {"Downloads": {"old": 2, "new": 20, "delta": 18}},
                              "o/other": {"Downloads": {"old": 3, "new": 30, "delta": 27}}}


def test_diff_of_big_snapshots_holds_their_ids_not_their_records(tmp_path, capsys):
    """Two snapshots of 200,000 models took 3.6 GB to diff (every record of both decoded at
    once): a full Hub's would not fit in memory. The command now holds ids and offsets, and one
    record of each file at a time."""
    import tracemalloc

    big = "x" * 20_000  # ~20 KB a record, as a record with a long card or file list
    a = write(tmp_path / "a.jsonl", [record(i, f"m{i}", Downloads=i, Card=big) for i in range(1, 401)])
    b = write(tmp_path / "b.jsonl", [record(i, f"m{i}", Downloads=i + (i % 4 == 0), Card=big)
                                     for i in range(3, 403)])
    tracemalloc.start()
    try:
        assert diff.main([str(a), str(b)]) == 0
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    out = capsys.readouterr().out.splitlines()
    assert out[2] == "2 added, 2 removed, 100 changed, 298 unchanged"
    assert "~ o/m4  Downloads: 4 -> 5 (+1)" in out and "+ o/m402" in out and "- o/m1" in out
    assert peak < 4 * 2**20, peak  # the two files are 16 MB


def test_diff_of_files_reads_them_as_load_does(tmp_path, capsys):
    """Lines as ``load`` reads them: the last line of an id wins (snapshots of a resumed job, cat'ed),
    a torn last line is skipped, lines of other writers (id not first) count, objects without an
    integer id do not; ids beyond 64 bits fall back to records in memory."""
    a = tmp_path / "a.jsonl"
    a.write_text(json.dumps(record(1, "one", Downloads=1)) + "\n"
                 + json.dumps({"ModelName": "two", "ModelOwner": "o", "Downloads": 2, "id": 2}) + "\n"
                 + json.dumps(record(1, "one", Downloads=5)) + "\n"
                 + '{"no id": true}\n[1, 2]\n'
                 + json.dumps(record(3, "three"))[:30])
    b = write(tmp_path / "b.jsonl", [record(2, "two", Downloads=3), record(1, "one", Downloads=5),
                                     record(3, "three")])
    files, loaded = diff.compare_files(a, b), diff.compare(diff.load(a), diff.load(b))
    for result in (files, loaded):
        assert [diff.label(r) for r in result.added] == ["o/three"] and result.removed == []
        assert result.unchanged == 1 and [diff.label(r) for r, _ in result.changed] == ["o/two"]
    huge = write(tmp_path / "huge.jsonl", [record(2**70, "huge")])
    assert [diff.label(r) for r in diff.compare_files(a, huge).added] == ["o/huge"]


def test_diff_of_a_crawl_with_several_snapshot_files_says_to_join_them(tmp_path, capsys):
    """A distributed crawl leaves one snapshot a worker (a resumed job one a run): the documented
    ``diff …-20250601T*.jsonl …-20250701T*.jsonl`` then gave argparse's 'unrecognized arguments'.
    The error now says what to do, and the joined files compare as one crawl."""
    june = [write(tmp_path / f"june-w{w}.jsonl", [record(w, f"m{w}", Downloads=w)]) for w in (1, 2)]
    july = [write(tmp_path / f"july-w{w}.jsonl", [record(w, f"m{w}", Downloads=w + 1)]) for w in (1, 2)]
    with pytest.raises(SystemExit) as refused:
        diff.main([*map(str, june), *map(str, july)])
    assert refused.value.code == 2
    assert "cat " in capsys.readouterr().err
    joined = []
    for name, parts in (("june", june), ("july", july)):
        joined.append(tmp_path / f"{name}.jsonl")
        joined[-1].write_bytes(b"".join(p.read_bytes() for p in parts))
    result = diff.compare_files(*joined)
    assert (result.added, result.removed, len(result.changed)) == ([], [], 2)


def test_diff_of_a_file_holding_no_record_is_refused(tmp_path, capsys):
    """An empty file (a crawl that stored nothing, a copy cut short) or one of other JSON Lines
    compared as a crawl of no model: "0 added, N removed", exit status 0, every model of the other
    side looking removed or added. Now the file is named as holding no record, exit status 2."""
    records = write(tmp_path / "b.jsonl", [record(1, "one"), record(2, "two")])
    empty = tmp_path / "empty.jsonl"
    empty.write_text("")
    other = tmp_path / "other.jsonl"
    other.write_text('{"model": "x"}\nnot json\n')
    for a, b, side, named in ((empty, records, "a", empty), (records, other, "b", other),
                              (empty, empty, "a", empty)):
        assert diff.main([str(a), str(b)]) == 2
        captured = capsys.readouterr()
        assert captured.out == ""
        assert captured.err == (f"error: {side}: {named} holds no PTM record (no JSON line with an integer id): "
                                "not a snapshot or record file, or one of a crawl that stored nothing\n")
    assert diff.main([str(tmp_path), str(records)]) == 2
    assert capsys.readouterr().err == f"error: {tmp_path} is a directory: give a snapshot file\n"
