"""Disk space: the clone stage starts no git job while the data dir's file system is short of free
space (``PTM_CLONE_MIN_FREE_GB``), stops those in flight once it falls below, and the crawl says so
(one ERROR, the verdict, exit status 1); a later crawl clones what was skipped. Nothing here fills
a disk: the reading is injected (``FreeSpace(usage=…)``) in the unit tests, and the CLI crawls set an
absurd threshold, so the real code path, ``shutil.disk_usage`` included, runs."""

from __future__ import annotations

import asyncio
import logging
import os
import shutil
import threading
from pathlib import Path
from types import SimpleNamespace

import pytest

from ptmscrape.cloning import NO_DISK_SPACE, Cloner, FreeSpace, NotEnoughSpace
from ptmscrape.dataset.tree import DatasetTree
from ptmscrape.gitrepo import Git, GitPolicy
from ptmscrape.stats import CLONE_FAILED_BY_REASON, CLONE_FAILED_NO_DISK_SPACE
from ptmscrape.verdict import verdict
from tests.crawl import run_crawl
from tests.replicas.huggingface import HuggingFaceReplica, synthetic_models
from tests.replicas.server import GitHost, Replica
from tests.test_clone_kill import HalfPack, wait_for
from tests.test_clone_size import MB, assert_usable, git_state

GB = 10**9
GOOD = {"finish_reason": "finished", "ptm/store/records": 12}


class Disk:
    """A file system whose free space the test sets; counts the readings."""

    def __init__(self, free: int):
        self.free = free
        self.readings = 0

    def usage(self, path: str):
        self.readings += 1
        return SimpleNamespace(total=100 * GB, used=100 * GB - self.free, free=self.free)


class Clock:
    def __init__(self):
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def test_the_reason_is_one_stats_name_without_numbers():
    assert CLONE_FAILED_BY_REASON + NO_DISK_SPACE.split(" (")[0] == CLONE_FAILED_NO_DISK_SPACE
    assert not any(c.isdigit() for c in NO_DISK_SPACE)


def test_free_space_is_read_at_most_every_few_seconds_and_too_little_is_logged_once(tmp_path, caplog):
    disk, clock = Disk(3 * GB), Clock()
    guard = FreeSpace(10 * GB, ttl=5, usage=disk.usage, clock=clock)
    folder = tmp_path / "data/huggingface/repos/.incoming"  # not made yet: its parent's file system
    with caplog.at_level(logging.INFO, logger="ptmscrape"):
        for _ in range(1000):
            with pytest.raises(NotEnoughSpace) as raised:
                guard.check(folder)
        assert str(raised.value) == NO_DISK_SPACE
        assert disk.readings == 1  # one statvfs for a thousand models
        errors = [r for r in caplog.records if r.levelno == logging.ERROR]
        assert len(errors) == 1
        line = errors[0].getMessage()
        for said in ("3.0 GB free", str(folder), "PTM_CLONE_MIN_FREE_GB=10", "Free disk space",
                     "crawl again", NO_DISK_SPACE):
            assert said in line, said

        disk.free = 50 * GB  # space freed: seen once the reading is older than ttl
        with pytest.raises(NotEnoughSpace):
            guard.check(folder)
        clock.now += 5
        guard.check(folder)
        assert disk.readings == 2
        assert "50.0 GB free on the file system" in caplog.text and "clones and updates go on" in caplog.text

        disk.free = 1 * GB  # short again: logged again, once
        clock.now += 5
        for _ in range(10):
            with pytest.raises(NotEnoughSpace):
                guard.check(folder)
    assert len([r for r in caplog.records if r.levelno == logging.ERROR]) == 2


def test_a_threshold_of_0_never_reads_the_disk():
    disk = Disk(0)
    FreeSpace(0, usage=disk.usage).check(Path("/nonexistent"))
    assert disk.readings == 0


def clone(data, url, disk, **kwargs):
    cloner = Cloner(DatasetTree(data), Git(GitPolicy(allow_protocols=("http",))), concurrency=2,
                    free_space=FreeSpace(10 * GB, usage=disk.usage))
    cloner.open("huggingface")
    try:
        return asyncio.run(cloner.clone("huggingface", url, **kwargs))
    finally:
        cloner.close()


def test_no_clone_or_update_starts_without_the_free_space_and_a_later_crawl_makes_it(tmp_path, served):
    host, server = served
    data, url = tmp_path / "data", f"{server.url}/owner/repo"
    low, plenty = Disk(1 * GB), Disk(500 * GB)

    refused = clone(data, url, low)
    assert refused.status == f"failed: {NO_DISK_SPACE}" and refused.path is None
    assert server.count("GET", "/info/refs") == 0  # no git started
    assert not (data / "huggingface/repos/owner").exists()
    assert low.readings == 1

    made = clone(data, url, plenty)  # the next crawl, space freed
    assert made.status == "cloned"
    new_sha = host.commit("owner/repo", {"README.md": "y\n"})
    assert clone(data, url, low, hub_sha=made.sha).status == "unchanged"  # no git needed: no reading
    assert low.readings == 1
    refused = clone(data, url, low, hub_sha=new_sha)  # an update is a git job too
    assert refused.status == f"failed: {NO_DISK_SPACE}"
    # The clone is still there, at its commit: the record points at it, not at nothing.
    assert (refused.path, refused.sha) == ("huggingface/repos/owner/repo", made.sha)
    assert server.count("GET", "/info/refs") == 1
    updated = clone(data, url, plenty, hub_sha=new_sha)
    assert (updated.status, updated.sha) == ("updated", new_sha)


def test_a_short_disk_fails_the_crawl_only_for_its_own_reason():
    assert verdict({**GOOD, "ptm/clone/failed": 3, "ptm/clone/failed/repository not found": 2,
                    "ptm/clone/failed/larger than PTM_CLONE_MAX_GB": 1}).status == 0
    result = verdict({**GOOD, "ptm/clone/failed": 5, CLONE_FAILED_NO_DISK_SPACE: 5})
    assert result.status == 1
    assert result.reason == ("5 models not cloned: less free disk space than PTM_CLONE_MIN_FREE_GB "
                             "(free space, then crawl again)")
    assert result.finish_reason == "finished"  # the listing was read whole: removed models are reported


def test_a_crawl_short_of_disk_space_stores_every_record_exits_1_and_the_next_crawl_clones(tmp_path):
    models = synthetic_models(5)
    with HuggingFaceReplica(models, tmp_path / "hub-git") as hub:
        settings = {"PTM_HUGGINGFACE_URL": hub.url}
        short = run_crawl("huggingface", tmp_path, settings={**settings, "PTM_CLONE_MIN_FREE_GB": 1_000_000},
                          out_name="short.jsonl", check=False)
        assert hub.replica.count("GET", "/info/refs") == 0
        records = short.records("huggingface")
        repos = short.data_dir / "huggingface/repos"
        assert not repos.exists() or [p.name for p in repos.iterdir()] in ([], [".incoming"])
        freed = run_crawl("huggingface", tmp_path, settings=settings, out_name="freed.jsonl")

    assert short.returncode == 1, short.log[-3000:]
    assert "Traceback" not in short.log
    assert len(records) == 5 and len(short.items) == 5  # the metadata crawl went on
    assert {r["CloneStatus"] for r in records} == {f"failed: {NO_DISK_SPACE}"}
    assert short.stats[CLONE_FAILED_NO_DISK_SPACE] == 5 and short.stats["finish_reason"] == "finished"
    assert short.log.count("Not starting clones or updates") == 1  # once, not once per model
    assert "less than PTM_CLONE_MIN_FREE_GB=1000000." in short.log
    assert "Clone failed for" not in short.log
    assert "5 models (5 failed, 5 of them for lack of disk space, 0 skipped)" in short.log  # the summary
    assert short.log.rstrip().splitlines()[-1].endswith(
        "Crawl verdict: exit status 1: 5 models not cloned: less free disk space than PTM_CLONE_MIN_FREE_GB "
        "(free space, then crawl again)")

    # Space freed (the harness's threshold is 0): a new crawl clones every model the first skipped.
    assert {r["CloneStatus"] for r in freed.records("huggingface")} == {"cloned"}
    assert freed.stats["ptm/clone/cloned"] == 5
    assert CLONE_FAILED_NO_DISK_SPACE not in freed.stats


def test_the_default_threshold_reaches_the_clone_stage(crawler):
    from pipelines.clone import ClonePipeline

    assert crawler.settings.getfloat("PTM_CLONE_MIN_FREE_GB") == 10
    stage = ClonePipeline.from_crawler(crawler)
    assert stage.cloner.free_space.minimum == 10 * GB and stage.cloner.free_space.usage is shutil.disk_usage


def test_updates_of_many_clones_read_the_disk_once_and_keep_one_reading(tmp_path):
    # Every git job asks about one folder, the hub's scratch folder (clones are renamed from it into
    # place, so it is on their file system): not one reading, nor one cache entry, per repository
    # (a week of updates would fill the cache with millions of entries and read the disk each time).
    host = GitHost(tmp_path / "git")
    names = [f"owner/repo{i}" for i in range(3)]
    for name in names:
        host.add_repo(name, {"README.md": "x\n"})
    data, plenty, clock = tmp_path / "data", Disk(500 * GB), Clock()
    guard = FreeSpace(10 * GB, usage=plenty.usage, clock=clock)
    with Replica() as server:
        host.mount(server)
        cloner = Cloner(DatasetTree(data), Git(GitPolicy(allow_protocols=("http",))), concurrency=2,
                        free_space=guard)
        cloner.open("huggingface")
        try:
            for name in names:
                assert asyncio.run(cloner.clone("huggingface", f"{server.url}/{name}")).status == "cloned"
            for name in names:
                sha = host.commit(name, {"README.md": "y\n"})
                cloner.finished.clear()  # a later crawl: the repositories are looked at again
                result = asyncio.run(cloner.clone("huggingface", f"{server.url}/{name}", hub_sha=sha))
                assert result.status == "updated", result
        finally:
            cloner.close()
    assert plenty.readings == 1
    assert list(guard.readings) == [str(data / "huggingface/repos/.incoming")]


def test_a_file_system_that_reports_no_size_does_not_stop_every_clone(tmp_path, caplog):
    # Some file systems (FUSE and network mounts) answer statvfs with zeros: no size known, which
    # is not "full". The guard cannot work there: it says so once and lets the clones start.
    unknown = Disk(0)
    unknown.usage = lambda path: SimpleNamespace(total=0, used=0, free=0)
    guard = FreeSpace(10 * GB, usage=unknown.usage)
    with caplog.at_level(logging.INFO, logger="ptmscrape"):
        for _ in range(3):
            guard.check(tmp_path)
    warnings = [r.getMessage() for r in caplog.records if r.levelno == logging.WARNING]
    assert len(warnings) == 1 and "reports no size" in warnings[0] and str(tmp_path) in warnings[0]
    assert "PTM_CLONE_MIN_FREE_GB" in warnings[0]
    assert not [r for r in caplog.records if r.levelno >= logging.ERROR]


def test_a_clone_in_flight_is_stopped_once_free_space_falls_below_the_threshold(tmp_path, caplog):
    # Sixteen clones in flight may each grow up to PTM_CLONE_MAX_GB: a check before each starts
    # cannot keep them from filling the disk. The watcher looking at each every second stops it,
    # from the same reading (here with no size cap at all, so only the free space can).
    host = GitHost(tmp_path / "git")
    host.add_repo("owner/big", {"weights.bin": os.urandom(2 * MB)})
    data = tmp_path / "data"
    incoming = data / "huggingface/repos/.incoming"
    disk, half = Disk(500 * GB), HalfPack()  # half of the pack, then silence: the clone stays in flight
    # A stalled transfer is given up after 20 s; the watcher looks every second.
    cloner = Cloner(DatasetTree(data), Git(GitPolicy(allow_protocols=("http",), stall_timeout=20)), concurrency=1,
                    free_space=FreeSpace(10 * GB, ttl=0, usage=disk.usage))
    results = []
    with Replica() as server, caplog.at_level(logging.INFO, logger="ptmscrape"):
        host.mount(server)
        server.interceptors.append(half)
        cloner.open("huggingface")
        url = f"{server.url}/owner/big"
        loop = threading.Thread(target=lambda: results.append(asyncio.run(cloner.clone("huggingface", url))))
        loop.start()
        try:
            wait_for(lambda: list(incoming.glob("*/.git/objects/pack/tmp_pack_*")), "the pack arriving")
            disk.free = 1 * GB  # the other clones filled the disk
            loop.join(60)
        finally:
            cloner.close()
    assert results and results[0].status == f"failed: {NO_DISK_SPACE}", results
    assert list(incoming.iterdir()) == [] and not (data / "huggingface/repos/owner").exists()
    errors = [r.getMessage() for r in caplog.records if r.levelno == logging.ERROR]
    assert len(errors) == 1 and "stopping those running: 1.0 GB free" in errors[0]


def test_an_update_in_flight_is_stopped_too_and_leaves_its_clone_as_it_was(tmp_path, served):
    host, server = served
    data, url = tmp_path / "data", f"{server.url}/owner/repo"
    clone_dir = data / "huggingface/repos/owner/repo"
    disk, half = Disk(500 * GB), HalfPack()
    half.on = False
    server.interceptors.append(half)
    made = clone(data, url, disk)
    grown = host.commit("owner/repo", {"weights.bin": os.urandom(2 * MB)})
    before = git_state(clone_dir)
    half.on = True
    cloner = Cloner(DatasetTree(data), Git(GitPolicy(allow_protocols=("http",), stall_timeout=20)), concurrency=1,
                    free_space=FreeSpace(10 * GB, ttl=0, usage=disk.usage))
    results = []
    cloner.open("huggingface")
    loop = threading.Thread(target=lambda: results.append(asyncio.run(cloner.clone("huggingface", url,
                                                                                   hub_sha=grown))))
    loop.start()
    try:
        wait_for(lambda: list(clone_dir.glob(".git/objects/pack/tmp_pack_*")), "the pack arriving")
        disk.free = 1 * GB
        loop.join(60)
    finally:
        cloner.close()
    assert results and results[0].status == f"failed: {NO_DISK_SPACE}", results
    assert (results[0].path, results[0].sha) == ("huggingface/repos/owner/repo", made.sha)
    assert git_state(clone_dir) == before
    assert_usable(clone_dir, made.sha)
    half.on, disk.free = False, 500 * GB  # space freed: the next crawl updates it
    updated = clone(data, url, disk, hub_sha=grown)
    assert (updated.status, updated.sha) == ("updated", grown)


def test_an_update_whose_checkout_fills_the_disk_is_stopped_and_rolled_back(tmp_path, served, monkeypatch):
    # A small pack may check out into a huge working tree (one blob of zeros under a thousand
    # names: kilobytes of pack, terabytes of files), so what an update fetches says nothing of what
    # its checkout writes. The checkout (reset --hard) is watched as the fetch is: stopped once free
    # space falls below the threshold, and the clone put back at the commit it was at.
    host, server = served
    data, url = tmp_path / "data", f"{server.url}/owner/repo"
    clone_dir = data / "huggingface/repos/owner/repo"
    disk = Disk(500 * GB)
    host.commit("owner/repo", {".gitattributes": "*.bin filter=slow\n"})
    made = clone(data, url, disk)
    grown = host.commit("owner/repo", {"zeros.bin": b"\0" * MB, "README.md": "y\n"})
    # The checkout of zeros.bin goes through a smudge filter that says so (the disk fills from
    # then on) and takes a few seconds, the time for the watcher's look.
    checking_out = tmp_path / "checking-out"
    monkeypatch.setenv("GIT_CONFIG_COUNT", "2")
    monkeypatch.setenv("GIT_CONFIG_KEY_0", "filter.slow.smudge")
    monkeypatch.setenv("GIT_CONFIG_VALUE_0", f"touch {checking_out}; sleep 4; cat")
    monkeypatch.setenv("GIT_CONFIG_KEY_1", "filter.slow.required")
    monkeypatch.setenv("GIT_CONFIG_VALUE_1", "true")
    disk.usage = lambda path: SimpleNamespace(total=100 * GB, used=0,
                                              free=1 * GB if checking_out.exists() else 500 * GB)
    cloner = Cloner(DatasetTree(data), Git(GitPolicy(allow_protocols=("http",))), concurrency=1,
                    free_space=FreeSpace(10 * GB, ttl=0, usage=disk.usage))
    cloner.open("huggingface")
    try:
        result = asyncio.run(cloner.clone("huggingface", url, hub_sha=grown))
    finally:
        cloner.close()
    assert checking_out.exists()  # the checkout did start
    assert result.status == f"failed: {NO_DISK_SPACE}", result
    assert (result.path, result.sha) == ("huggingface/repos/owner/repo", made.sha)
    monkeypatch.delenv("GIT_CONFIG_COUNT")
    assert_usable(clone_dir, made.sha)  # at its commit, nothing of the new one left in its working tree
    assert not (clone_dir / "zeros.bin").exists() and (clone_dir / "README.md").read_text() == "x\n"
    checking_out.unlink()
    updated = clone(data, url, Disk(500 * GB), hub_sha=grown)  # space freed: the next crawl updates it
    assert (updated.status, updated.sha) == ("updated", grown)
    assert_usable(clone_dir, grown)
