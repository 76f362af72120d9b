"""Output integrity across a SIGKILL: the data tree a killed crawl leaves holds only whole lines and
whole payload files, and repeating the crawl (no JOBDIR) gives each model exactly once in
``<hub>.jsonl``. (Pausing and resuming a JOBDIR job: tests/test_resume.py.)"""

from __future__ import annotations

import json
import os
import stat

import pytest

from ptmscrape.dataset.jsonl import read_jsonl
from ptmscrape.dataset.tree import DatasetTree
from tests.crawl import crawl_command, run_crawl
from tests.crawl_control import BackgroundCrawl, count_lines, hold
from tests.reliability_support import assert_only_complete_clones
from tests.replicas.huggingface import HuggingFaceReplica, synthetic_models

PAGE = 10
DEAD_PID = 4_000_000  # above Linux's pid_max: no process has it


def jsonl_files(data):
    return [p for p in data.rglob("*.jsonl") if not p.name.startswith(".")]


def assert_whole_lines(path) -> list[dict]:
    raw = path.read_bytes()
    assert raw == b"" or raw.endswith(b"\n"), f"torn last line in {path}: {raw[-80:]!r}"
    return [json.loads(line) for line in raw.splitlines()]


def assert_whole_payloads(data) -> int:
    """Every line of the payload files is a whole payload, except at most a torn tail (a kill
    between two writes); returns how many models have one."""
    models = set()
    for p in (data / "huggingface/json/payloads").glob("*.jsonl"):
        lines = p.read_bytes().split(b"\n")
        for line in lines[:-1]:
            models.add(json.loads(line)["id"])
    return len(models)


def test_killed_crawl_leaves_whole_files_and_a_repeat_crawl_stores_each_model_once(tmp_path):
    data = tmp_path / "data"
    with HuggingFaceReplica(synthetic_models(6 * PAGE, seed=9), tmp_path / "hub-git") as hub:
        settings = {"PTM_HUGGINGFACE_URL": hub.url, "PTM_HUGGINGFACE_PAGE_SIZE": PAGE,
                    "PTM_CLONE_CONCURRENCY": 4}
        order = [row[2] for row in hub._order("downloads")]
        held_clone = order[2 * PAGE + 3]  # listed on page 3; its clone is held half-way
        listing = hold(hub.replica, "GET", hub._listing, lambda req, m, n: n == 4)
        clone = hold(hub.replica, "POST", hub.git._smart_http, lambda req, m, n: m.group("repo") == held_clone)
        cmd = crawl_command("huggingface", tmp_path / "1.jsonl", data, tmp_path / "1.stats.json",
                            settings=settings)
        crawl = BackgroundCrawl(cmd, tmp_path / "1.log")
        snapshots = lambda: list((data / "huggingface/snapshots").glob("*.jsonl"))  # noqa: E731
        crawl.wait_until(lambda: listing.reached.is_set() and clone.reached.is_set()
                         and count_lines(snapshots()) == 3 * PAGE - 1, "29 models stored")
        crawl.kill()  # SIGKILL, crawl and git children
        listing.open()
        clone.open()

        # What the kill left: whole lines, whole payloads, a pending (unmerged) snapshot.
        killed_snapshot, = snapshots()
        stored = assert_whole_lines(killed_snapshot)
        assert len(stored) == 3 * PAGE - 1 and len({r["id"] for r in stored}) == len(stored)
        assert assert_whole_payloads(data) >= len(stored)
        assert (killed_snapshot.parent / (killed_snapshot.name + ".pending")).exists()
        assert not (data / "huggingface/huggingface.jsonl").exists()
        assert list((data / "huggingface/repos/.incoming").iterdir())  # the held clone, half-way

        # What a power cut could add: a torn record, temp files of unfinished atomic writes.
        with open(killed_snapshot, "ab") as f:
            f.write(b'{"id":1234567,"ModelName":"torn')
        stale_tmp = data / "huggingface/json/payloads" / f".tmp-{DEAD_PID}-7.json"
        stale_tmp.write_bytes(b'{"half": ')
        stale_merge = data / "huggingface/.merge-abc123.jsonl"
        stale_merge.write_bytes(b'{"id": 1}\n{"id"')

        for n in (2, 3):  # a repeat crawl, and another one
            result = run_crawl("huggingface", tmp_path, settings=settings, data_dir=data,
                               out_name=f"{n}.jsonl")
            assert result.stats["finish_reason"] == "finished"
            records = assert_whole_lines(data / "huggingface/huggingface.jsonl")
            assert len(records) == len({r["id"] for r in records}) == 6 * PAGE  # each model once
            assert sorted(f"{r['ModelOwner']}/{r['ModelName']}" for r in records) == sorted(order)
            assert 1234567 not in {r["id"] for r in records}
            if n == 2:
                assert "Merged 1 snapshot(s) of interrupted crawls" in result.log
    assert {r["CloneStatus"] for r in records} == {"unchanged"}  # third crawl: every clone landed
    assert not stale_tmp.exists() and not stale_merge.exists()
    assert not list((data / "huggingface/snapshots").glob("*.pending"))
    for path in jsonl_files(data):
        if path != killed_snapshot:
            assert_whole_lines(path)
    assert len(list(read_jsonl(killed_snapshot))) == 3 * PAGE - 1  # its torn tail is skipped
    assert assert_whole_payloads(data) == 6 * PAGE
    assert len(assert_only_complete_clones(data / "huggingface/repos")) == 6 * PAGE


def test_an_append_after_a_torn_line_starts_on_a_line_of_its_own(tmp_path):
    tree = DatasetTree(tmp_path)
    tree.append_line("repo-index.jsonl", {"url": "https://a", "path": "x/a"})
    with open(tmp_path / "repo-index.jsonl", "ab") as f:
        f.write(b'{"url": "https://b", "pa')  # a crash mid-append
    tree.append_line("repo-index.jsonl", {"url": "https://c", "path": "x/c"})
    assert [r["url"] for r in read_jsonl(tmp_path / "repo-index.jsonl")] == ["https://a", "https://c"]
    assert (tmp_path / "repo-index.jsonl").read_bytes().endswith(b"\n")
    assert os.path.getsize(tmp_path / "repo-index.jsonl") > 0


def test_temp_files_of_other_machines_sharing_the_data_dir_stay(tmp_path, monkeypatch):
    """A data dir on a network file system, shared by workers on several machines: another
    machine's unfinished atomic write has a pid this machine does not run; removing it made that
    worker's rename fail. Temp files name their host, and only this host's dead writers' go."""
    from ptmscrape.dataset.processes import HOST_TAG
    from ptmscrape.dataset.tree import remove_stale_temp_files

    tree = DatasetTree(tmp_path)
    names = []
    real_replace = os.replace
    monkeypatch.setattr(os, "replace", lambda src, dst: names.append(os.path.basename(src)) or real_replace(src, dst))
    tree.write_atomic("hub/json/a.json", b"{}")  # the careful way (a new folder), then the fast one
    tree.write_atomic("hub/json/b.json", b"{}")
    assert len(names) == 2 and all(n.startswith(f".tmp-{os.getpid()}-{HOST_TAG}-") for n in names)

    folder = tmp_path / "hub/json"
    theirs = folder / f".tmp-{DEAD_PID}-0123456789ab-3.json"
    mine_dead = folder / f".tmp-{DEAD_PID}-{HOST_TAG}-4.json"
    mine_live = folder / f".tmp-{os.getpid()}-{HOST_TAG}-5.json"
    before_tags = folder / f".tmp-{DEAD_PID}-6.json"  # named before temp files named their host
    for path in (theirs, mine_dead, mine_live, before_tags):
        path.write_bytes(b'{"half": ')
    assert HOST_TAG != "0123456789ab"
    assert remove_stale_temp_files(tree, "hub") == 2
    assert sorted(p.name for p in folder.glob(".tmp-*")) == sorted([theirs.name, mine_live.name])


def test_a_repository_index_line_the_disk_cuts_short_is_taken_back(tmp_path):
    # A full disk in the middle of the line: the part written would stay, torn, in the middle of the
    # index once later lines follow it.
    from tests.full_disk import FullDisk

    tree = DatasetTree(tmp_path)
    tree.append_line("repo-index.jsonl", {"url": "https://a", "path": "x/a"})
    disk = FullDisk(tmp_path, 10).install()
    try:
        with pytest.raises(OSError):
            tree.append_line("repo-index.jsonl", {"url": "https://b", "path": "x/b"})
    finally:
        FullDisk.uninstall()
    assert disk.cut == 1
    assert (tmp_path / "repo-index.jsonl").read_bytes() == b'{"url":"https://a","path":"x/a"}\n'


def test_shared_appended_files_follow_the_umask(tmp_path):
    # The history files and the repository index, as any file of the user (docs/output.md): they
    # were 0o644 whatever the umask allowed (a group-shared dataset under umask 002).
    from ptmscrape.dataset.tree import append_shared

    old = os.umask(0o002)
    try:
        append_shared(tmp_path / "commits.jsonl", b'{"n":1}\n')
        DatasetTree(tmp_path).append_line("repo-index.jsonl", {"url": "https://a", "path": "x/a"})
    finally:
        os.umask(old)
    for name in ("commits.jsonl", "repo-index.jsonl"):
        assert stat.S_IMODE((tmp_path / name).stat().st_mode) == 0o664, name


def test_a_crawl_killed_writing_the_removed_models_report_leaves_no_temp_file_for_good(tmp_path):
    """The removed-models report is written after the merge (no snapshot is pending any more): a
    kill between writing its temp file and the rename left ``<hub>/.tmp-<pid>-….txt``, and since
    stale temp files were removed only when a killed crawl's snapshot was pending, no later crawl
    that finished removed it."""
    import json as json_

    import ptmscrape.settings as project

    data = tmp_path / "data"
    with HuggingFaceReplica(synthetic_models(12, seed=4), repos=False) as hub:
        settings = {"PTM_HUGGINGFACE_URL": hub.url, "PTM_HUGGINGFACE_PAGE_SIZE": 5, "PTM_CLONE": 0}
        run_crawl("huggingface", tmp_path, settings=settings, data_dir=data, out_name="1.jsonl")
        hub.remove_model(sorted(hub.models)[0])  # the next complete crawl writes a removed-models report
        killed = run_crawl("huggingface", tmp_path, data_dir=data, out_name="2.jsonl", check=False, settings={
            **settings, "TEST_KILL_AT_RENAME": ".txt",
            "EXTENSIONS": json_.dumps({**project.EXTENSIONS, "tests.probes.KillAtRename": 0})})
        assert killed.returncode == -9, killed.log[-3000:]
        hub_dir = data / "huggingface"
        assert [p.suffix for p in hub_dir.glob(".tmp-*")] == [".txt"]  # killed between write and rename
        assert not list(hub_dir.glob("snapshots/*.pending"))  # merged before the report

        result = run_crawl("huggingface", tmp_path, settings=settings, data_dir=data, out_name="3.jsonl")
    assert "Removed 1 temp file(s) of a killed crawl's unfinished writes" in result.log
    assert not list(hub_dir.glob(".tmp-*"))
    assert len(list(hub_dir.glob("removed-*.txt"))) == 1  # the third crawl's
