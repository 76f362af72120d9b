"""Re-crawl speed: a clone already at the hub's commit is recognised on the reactor thread, from
its files, without the thread pool and without any git process; anything else still goes to the
pool (fetch, clone) as before."""

from __future__ import annotations

import asyncio
import copy
import subprocess
from contextlib import contextmanager

from pipelines.clone import ClonePipeline
from pipelines.map import MapPipeline
from ptmscrape.items import RawModelItem
from tests.replicas.huggingface import fixture_models
from tests.replicas.server import GitHost, Replica

BASE = "https://huggingface.co"


class NoPool:
    def submit(self, *args, **kwargs):
        raise AssertionError("the thread pool was used")

    def shutdown(self, *args, **kwargs):
        pass


def record_for(crawler, url: str, sha: str):
    model = fixture_models()[0]
    item = RawModelItem("huggingface", model["id"], f"{BASE}/api/models", model, {"base_url": BASE})
    record = asyncio.run(MapPipeline.from_crawler(crawler).process_item(item))
    record["RepoURL"], record["LatestGitCommitSHA"] = url, sha
    return record


def crawl_one(crawler, record, no_pool: bool = False):
    stage = ClonePipeline.from_crawler(crawler)
    stage.open_spider()
    if no_pool:
        stage.cloner.executor.shutdown()
        stage.cloner.executor = NoPool()
    try:
        return asyncio.run(stage.process_item(copy.deepcopy(record)))
    finally:
        stage.close_spider()


@contextmanager
def cloned_once(tmp_path, crawler):
    """A repository served over HTTP and a first crawl that cloned it:
    (host, server, record, sha, first result)."""
    host = GitHost(tmp_path / "git")
    sha = host.add_repo("owner/repo", {"README.md": "x\n"})
    with Replica() as server:
        host.mount(server)
        record = record_for(crawler, f"{server.url}/owner/repo", sha)
        first = crawl_one(crawler, record)
        assert first["CloneStatus"] == "cloned"
        yield host, server, record, sha, first


def test_an_unchanged_clone_needs_neither_the_pool_nor_git(tmp_path, crawler, monkeypatch):
    with cloned_once(tmp_path, crawler) as (host, server, record, sha, first):
        def no_process(*args, **kwargs):
            raise AssertionError("a process was started")

        with monkeypatch.context() as m:
            m.setattr(subprocess, "Popen", no_process)
            again = crawl_one(crawler, record, no_pool=True)
        assert (again["CloneStatus"], again["RepoPath"], again["LatestGitCommitSHA"]) == (
            "unchanged", first["RepoPath"], sha)
        assert crawler.stats.get_value("ptm/clone/unchanged") == 1
        assert server.count("GET", "/info/refs") == 1  # the first clone only

        # The hub names another commit: the pool fetches, as before.
        newer = host.commit("owner/repo", {"README.md": "y\n"})
        updated = crawl_one(crawler, record_for(crawler, f"{server.url}/owner/repo", newer))
        assert (updated["CloneStatus"], updated["LatestGitCommitSHA"]) == ("updated", newer)
        assert server.count("GET", "/info/refs") == 2


def test_a_clone_of_another_repository_at_the_same_place_is_not_taken_as_unchanged(tmp_path, crawler):
    """Same owner/name on another host: the origin check still keeps the two apart."""
    host = GitHost(tmp_path / "git")
    sha = host.add_repo("owner/repo", {"README.md": "x\n"})
    with Replica() as first_server, Replica() as second_server:
        host.mount(first_server)
        host.mount(second_server)
        first = crawl_one(crawler, record_for(crawler, f"{first_server.url}/owner/repo", sha))
        second = crawl_one(crawler, record_for(crawler, f"{second_server.url}/owner/repo", sha))
    assert (first["CloneStatus"], second["CloneStatus"]) == ("cloned", "cloned")
    assert second["RepoPath"].startswith(first["RepoPath"] + "%7E")  # "<name>~<suffix>", escaped


def test_an_indexed_clone_whose_origin_is_another_repository_is_not_taken_as_unchanged(tmp_path, crawler):
    """The index names the folder and its HEAD is the hub's commit, but its origin is no longer the
    model's repository (another process landed another repository there, a hand edit): the
    origin check, which the test above never reaches (its second clone is not indexed), refuses it."""
    with cloned_once(tmp_path, crawler) as (_, _, record, sha, first):
        clone = tmp_path / "data" / first["RepoPath"]
        subprocess.run(["git", "-C", str(clone), "remote", "set-url", "origin", "https://elsewhere.invalid/owner/repo"],
                       check=True)
        again = crawl_one(crawler, record)
        got = tmp_path / "data" / again["RepoPath"]
        origin = subprocess.run(["git", "-C", str(got), "remote", "get-url", "origin"], capture_output=True,
                                text=True, check=True).stdout.strip()
    assert again["CloneStatus"] != "unchanged" and again["LatestGitCommitSHA"] == sha
    assert origin == record["RepoURL"]


def test_a_broken_clone_at_the_hub_commit_is_replaced_not_kept(tmp_path, crawler):
    with cloned_once(tmp_path, crawler) as (_, _, record, sha, first):
        clone = tmp_path / "data" / first["RepoPath"]
        for pack in (clone / ".git/objects/pack").iterdir():  # the commit is gone
            pack.unlink()
        again = crawl_one(crawler, record)
    assert again["CloneStatus"] == "cloned" and again["LatestGitCommitSHA"] == sha
