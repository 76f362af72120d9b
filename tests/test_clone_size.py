"""``PTM_CLONE_MAX_GB``: a new clone that downloads more than the cap (its pack, its LFS objects) is
killed, with the processes it started and no other git of the crawl (they all share one process
group), its scratch folder removed, and its model recorded as ``failed: larger than
PTM_CLONE_MAX_GB``; nothing lands in the tree. An update is capped on what it adds to its clone's
objects, and a killed one leaves the clone as it was: the next crawl tries it again."""

from __future__ import annotations

import asyncio
import os
import re
import shlex
import signal
import subprocess
import threading
from pathlib import Path

import pytest

from ptmscrape.cloning import Cloner, CloneResult
from ptmscrape.dataset.processes import kill_tree
from ptmscrape.dataset.tree import DatasetTree
from ptmscrape.gitrepo import TIMED_OUT, TOO_LARGE, UPDATE_MARK, Git, GitPolicy
from tests.crawl import run_crawl
from tests.reliability_support import assert_only_complete_clones
from tests.replicas.huggingface import HuggingFaceReplica, synthetic_models
from tests.replicas.server import GIT_ENV, GitHost, Replica
from tests.test_clone_kill import STALL, HalfPack, descendants, still_running, wait_for

MB = 10**6


def processes_below(pid: int, n: int) -> dict | None:
    below = descendants(pid)
    return below if len(below) == n else None


def test_kill_tree_kills_a_command_and_what_it_started_and_nothing_else_of_its_group():
    # Two "clones" in one process group, as every git of a crawl is (gitrepo._Lifeline).
    leader = subprocess.Popen(["sleep", "600"], process_group=0)
    other = subprocess.Popen(["sh", "-c", "sleep 600 & sleep 600 & wait"], process_group=leader.pid)
    target = subprocess.Popen(["sh", "-c", "sleep 600 & (sleep 600 & wait) & wait"], process_group=leader.pid)
    try:
        below = wait_for(lambda: processes_below(target.pid, 3), "the target's processes")
        spared = wait_for(lambda: processes_below(other.pid, 2), "the other's processes")
        killed = kill_tree(target.pid)
        assert sorted(killed) == sorted([target.pid, *below])
        target.wait(10)
        wait_for(lambda: not still_running(below), "the target's children to end")
        assert len(still_running(spared)) == 2 and other.poll() is None and leader.poll() is None
    finally:
        for proc in (target, other, leader):
            if proc.poll() is None:
                kill_tree(proc.pid)
                proc.wait()


def test_kill_tree_leaves_alone_a_process_listed_as_a_child_that_no_longer_is_one(monkeypatch):
    # Between reading /proc and signalling, a listed child may have ended and its pid gone to an
    # unrelated process (or it may have been re-parented): what kill_tree signals is checked to be
    # below the command it was given, and signalled through a pidfd (no reused pid is ever hit).
    import ptmscrape.dataset.processes as processes

    target = subprocess.Popen(["sh", "-c", "sleep 600 & wait"])
    bystander = subprocess.Popen(["sleep", "600"])  # not below the target: a child of this process
    real = processes._parent_pids
    monkeypatch.setattr(processes, "_parent_pids", lambda: {**real(), bystander.pid: target.pid})
    try:
        below = wait_for(lambda: processes_below(target.pid, 1), "the target's child")
        killed = kill_tree(target.pid)
        assert sorted(killed) == sorted([target.pid, *below])
        target.wait(10)
        assert bystander.poll() is None
        assert open(f"/proc/{bystander.pid}/stat").read().rsplit(")", 1)[1].split()[0] != "T"  # nor stopped
    finally:
        monkeypatch.undo()
        for proc in (target, bystander):
            if proc.poll() is None:
                kill_tree(proc.pid)
                proc.wait()


def test_kill_tree_kills_children_before_their_parents(monkeypatch):
    # A parent killed first hands its children to init, which reaps one that has already ended:
    # its pid is free again before kill_tree's SIGKILL for it. Children first, none is reaped early.
    import ptmscrape.dataset.processes as processes

    target = subprocess.Popen(["sh", "-c", "(sleep 600 & wait) & wait"])
    below = wait_for(lambda: processes_below(target.pid, 2), "the target's processes")
    parents = {pid: pid_parent for pid, pid_parent in processes._parent_pids().items() if pid in below}
    sent: list[tuple[int, int]] = []
    real_kill = os.kill

    def kill(pid, sig):
        sent.append((pid, sig))
        real_kill(pid, sig)

    def no_pidfd(pid):
        raise OSError(38, "pidfd_open not available")  # ENOSYS: kernels before 5.3, signalled by pid

    monkeypatch.setattr(os, "pidfd_open", no_pidfd, raising=False)
    monkeypatch.setattr(os, "kill", kill)
    try:
        kill_tree(target.pid)
    finally:
        monkeypatch.undo()
        target.wait(10)
    order = [pid for pid, sig in sent if sig == signal.SIGKILL]
    assert sorted(order) == sorted([target.pid, *below])
    for child, parent in parents.items():
        assert order.index(child) < order.index(parent), (order, parents)


def test_kill_tree_kills_what_it_stopped_when_it_cannot_list_processes(monkeypatch):
    import ptmscrape.dataset.processes as processes

    target = subprocess.Popen(["sleep", "600"])

    def fails():
        raise OSError(5, "cannot list processes")

    monkeypatch.setattr(processes, "_parent_pids", fails)
    try:
        with pytest.raises(OSError, match="cannot list processes"):
            kill_tree(target.pid)
        assert target.wait(10) == -signal.SIGKILL  # not left stopped for the rest of the crawl
    finally:
        if target.poll() is None:
            os.kill(target.pid, signal.SIGKILL)
            target.wait()


def clone_trees(urls: list[str]) -> dict[str, dict] | None:
    """url -> the processes of this process's ``git clone`` of it (the clone and all below it), once
    each of them writes its pack (an ``index-pack`` below it); else None."""
    mine = descendants(os.getpid())
    trees = {}
    for url in urls:
        clones = [pid for pid, (_start, cmdline) in mine.items() if " clone " in cmdline and url in cmdline]
        if len(clones) != 1:
            return None
        tree = {clones[0]: mine[clones[0]], **descendants(clones[0])}
        if not any("index-pack" in cmdline for _start, cmdline in tree.values()):
            return None
        trees[url] = tree
    return trees


def test_a_clone_past_the_cap_is_killed_alone_and_its_scratch_removed(tmp_path):
    host = GitHost(tmp_path / "git")
    host.add_repo("owner/big", {"weights.bin": os.urandom(2 * MB)})  # incompressible
    host.add_repo("owner/small", {"weights.bin": os.urandom(MB // 10)})  # half of it is under the cap
    data = tmp_path / "data"
    incoming = data / "huggingface/repos/.incoming"
    half = HalfPack()  # each clone gets half of its pack, then silence: both stay running
    policy = GitPolicy(allow_protocols=("http",), stall_timeout=600, timeout=600, max_bytes=MB // 2)
    cloner = Cloner(DatasetTree(data), Git(policy), concurrency=2)
    results: dict[str, CloneResult] = {}
    done = {"big": threading.Event(), "small": threading.Event()}

    async def clone(name: str, url: str) -> None:
        results[name] = await cloner.clone("huggingface", url)
        done[name].set()

    with Replica() as server:
        host.mount(server)
        server.interceptors.append(half)
        big, small = f"{server.url}/owner/big", f"{server.url}/owner/small"
        cloner.open("huggingface")

        async def both() -> None:
            await asyncio.gather(clone("big", big), clone("small", small))

        loop = threading.Thread(target=asyncio.run, args=(both(),))
        loop.start()
        try:
            trees = wait_for(lambda: clone_trees([big, small]), "both clones writing their packs")
            assert done["big"].wait(60), "the clone past the cap was not stopped"
            # Not PTM_GIT_TIMEOUT (600 s): the cap. The other clone, in the same process group, runs on.
            assert results["big"].status == f"failed: {TOO_LARGE}", results["big"]
            assert still_running(trees[big]) == []
            assert sorted(still_running(trees[small])) == sorted(c for _s, c in trees[small].values())
            assert not done["small"].is_set()
            assert len(list(incoming.iterdir())) == 1  # the small clone's scratch; the big one's is gone
        finally:
            if "trees" in locals() and not done["small"].is_set():  # end the stalled clone
                for pid, (_start, cmdline) in trees[small].items():
                    if " clone " in cmdline:
                        kill_tree(pid)
            loop.join(60)
            cloner.close()
    assert results["small"].status.startswith("failed: "), results["small"]
    assert list(incoming.iterdir()) == []
    assert not (data / "huggingface/repos/owner").exists()


def test_a_clone_over_the_cap_that_finished_between_two_looks_does_not_land_either(tmp_path):
    host = GitHost(tmp_path / "git")
    host.add_repo("owner/big", {"weights.bin": os.urandom(2 * MB)})
    host.add_repo("owner/small", {"README.md": "x\n"}, lfs={"model.bin": os.urandom(2 * MB)})
    data = tmp_path / "data"
    with Replica() as server:
        host.mount(server)
        policy = GitPolicy(allow_protocols=("http",), max_bytes=MB)
        cloner = Cloner(DatasetTree(data), Git(policy), concurrency=2)
        cloner.open("huggingface")
        try:
            big = asyncio.run(cloner.clone("huggingface", f"{server.url}/owner/big"))
            small = asyncio.run(cloner.clone("huggingface", f"{server.url}/owner/small"))
        finally:
            cloner.close()
        # LFS objects count when they are fetched (PTM_CLONE_LFS): 2 MB of them is over the cap.
        lfs = Cloner(DatasetTree(tmp_path / "lfs"), Git(GitPolicy(allow_protocols=("http",), max_bytes=MB, lfs=True)),
                     concurrency=1)
        lfs.open("huggingface")
        try:
            with_lfs = asyncio.run(lfs.clone("huggingface", f"{server.url}/owner/small"))
        finally:
            lfs.close()
    assert big.status == f"failed: {TOO_LARGE}" and big.path is None
    assert small.status == "cloned"  # its LFS pointers only, under the cap
    assert [c.name for c in assert_only_complete_clones(data / "huggingface/repos")] == ["small"]
    assert list((data / "huggingface/repos/.incoming").iterdir()) == []
    assert with_lfs.status == f"failed: {TOO_LARGE}"
    assert not (tmp_path / "lfs/huggingface/repos/owner").exists()


def test_a_clone_over_dumb_http_counts_its_loose_objects(tmp_path):
    # A server that is no git's (static files: git's "dumb" HTTP) sends every object loose, into
    # .git/objects/<2 hex>/: not a pack. Those count too, or any static host would pass the cap.
    from tests.replicas.server import Reply

    host = GitHost(tmp_path / "git")
    host.add_repo("owner/big", {"weights.bin": os.urandom(2 * MB)})  # stored loose, as add_repo does
    bare = host.bare_path("owner/big")
    subprocess.run(["git", "--git-dir", str(bare), "update-server-info"], check=True)

    def static(req, m):
        file = bare / m.group("path")
        return Reply(200, file.read_bytes(), {"Content-Type": "application/octet-stream"}) if file.is_file() \
            else Reply.text("no such file", 404)

    data = tmp_path / "data"
    with Replica() as server:
        server.route("GET", r"^/static/big/(?P<path>.+)$", static)
        cloner = Cloner(DatasetTree(data), Git(GitPolicy(allow_protocols=("http",), max_bytes=MB)), concurrency=1)
        cloner.open("huggingface")
        try:
            result = asyncio.run(cloner.clone("huggingface", f"{server.url}/static/big"))
        finally:
            cloner.close()
        assert server.count("GET", "/static/big/objects/") >= 1  # fetched loose, the dumb way
    assert result.status == f"failed: {TOO_LARGE}", result
    assert list((data / "huggingface/repos/.incoming").iterdir()) == []


def test_a_crawl_records_the_repository_over_the_cap_and_clones_the_rest(tmp_path):
    with HuggingFaceReplica(synthetic_models(3), tmp_path / "hub-git") as hub:
        big = {"_id": f"{0x670000000000000000000009:024x}", "id": "big/repo", "downloads": 1, "tags": []}
        hub.add_model(big, repo=False)
        hub.models["big/repo"]["sha"] = hub.git.add_repo("big/repo", {"weights.bin": os.urandom(3 * MB)})
        result = run_crawl("huggingface", tmp_path, settings={"PTM_HUGGINGFACE_URL": hub.url,
                                                              "PTM_CLONE_MAX_GB": 0.001})
    records = {f"{r['ModelOwner']}/{r['ModelName']}": r for r in result.records("huggingface")}
    assert records.pop("big/repo")["CloneStatus"] == f"failed: {TOO_LARGE}"
    assert {r["CloneStatus"] for r in records.values()} == {"cloned"}
    assert result.stats[f"ptm/clone/failed/{TOO_LARGE}"] == 1  # a repository's size: exit status 0
    assert f"Clone failed for huggingface:big/repo ({hub.url}/big/repo): {TOO_LARGE}" in result.log
    clones = assert_only_complete_clones(result.data_dir / "huggingface/repos")
    assert "big" not in {c.parent.name for c in clones} and len(clones) == 3
    assert list((result.data_dir / "huggingface/repos/.incoming").iterdir()) == []


@pytest.mark.parametrize("status", [None, 404, 401])
def test_a_watched_clone_fails_with_the_same_reason_as_an_unwatched_one(tmp_path, status):
    # PTM_CLONE_MAX_GB runs a new clone through Git._run_watched instead of GitPython's execute:
    # the CloneStatus reasons must not change, the catch-all (git's last line, URL hidden) included:
    # here a server that fails with an HTTP status no reason names, 418 (status None).
    from tests.replicas.server import Reply

    host = GitHost(tmp_path / "git")
    host.add_repo("owner/repo", {"README.md": "x\n"})
    if status:
        host.denied["owner/repo"] = status
    reasons = []
    with Replica() as server:
        host.mount(server)
        server.routes.insert(0, ("GET", re.compile(r"^/junk/repo(\.git)?/info/refs"),
                                 lambda req, m: Reply.text("oops", 418)))
        url = f"{server.url}/owner/repo" if status else f"{server.url}/junk/repo"
        for max_bytes in (0, 10**9):
            cloner = Cloner(DatasetTree(tmp_path / f"data{max_bytes}"),
                            Git(GitPolicy(allow_protocols=("http",), max_bytes=max_bytes)), concurrency=1)
            cloner.open("huggingface")
            try:
                reasons.append(asyncio.run(cloner.clone("huggingface", url)).status)
            finally:
                cloner.close()
    assert reasons[0] == reasons[1], reasons
    if status is None:  # git's own last line, the URL hidden
        assert reasons[0] == "failed: fatal: unable to access '<url>': The requested URL returned error: 418"


def crawl_clone(data, url: str, *, hub_sha: str | None = None, branch: str | None = None, **policy) -> CloneResult:
    """What one crawl's clone stage (a Cloner of its own) makes of ``url``: a clone, or an update."""
    cloner = Cloner(DatasetTree(data), Git(GitPolicy(allow_protocols=("http",), **policy)), concurrency=1)
    cloner.open("huggingface")
    try:
        return asyncio.run(cloner.clone("huggingface", url, hub_sha=hub_sha, branch=branch))
    finally:
        cloner.close()


def git_state(clone: Path, under: str = "") -> dict[str, int]:
    """Path -> size of each file in the clone's ``.git`` (or below ``under`` there); not FETCH_HEAD,
    which every fetch rewrites, nor the update's mark (``gitrepo.UPDATE_MARK``: it names the crawl
    of an update that did not succeed)."""
    root = clone / ".git" / under
    return {os.fspath(p.relative_to(root)): p.stat().st_size for p in root.rglob("*")
            if p.is_file() and p.name not in ("FETCH_HEAD", UPDATE_MARK)}


def assert_usable(clone: Path, sha: str) -> None:
    """The clone is at ``sha``, its working tree clean and every object its refs name there."""
    def run(*args: str) -> str:
        done = subprocess.run(["git", "-C", os.fspath(clone), *args], capture_output=True, text=True,
                              env={**os.environ, **GIT_ENV})
        assert done.returncode == 0, (args, done.stderr)
        return done.stdout.strip()

    assert run("rev-parse", "HEAD") == sha
    # LFS files compare by their pointers (the system's git config, which says so, is not read here).
    assert run("-c", "filter.lfs.process=git-lfs filter-process", "status", "--porcelain") == ""
    run("fsck", "--no-progress", "--connectivity-only")


def test_an_update_past_the_cap_is_killed_and_leaves_the_clone_as_it_was(tmp_path):
    # A repository that grew past the cap between two crawls: its update is capped as a new clone is,
    # on what the fetch adds to the clone's objects (measured against their size before it), and
    # what the killed fetch left (its pack, tmp_pack_*) goes: the clone is as it was, and the next
    # crawl (the cap raised here) tries the update again.
    host = GitHost(tmp_path / "git")
    host.add_repo("owner/repo", {"README.md": "x\n"})
    data = tmp_path / "data"
    clone = data / "huggingface/repos/owner/repo"
    half = HalfPack()  # half of the new pack, then silence: only the cap ends the fetch
    half.on = False
    with Replica() as server:
        host.mount(server)
        server.interceptors.append(half)
        url = f"{server.url}/owner/repo"
        first = crawl_clone(data, url, max_bytes=MB // 2)
        assert first.status == "cloned", first
        grown = host.commit("owner/repo", {"weights.bin": os.urandom(2 * MB)})  # incompressible
        before = git_state(clone)
        half.on = True
        # A stalled transfer is given up after 20 s; the cap looks every second.
        killed = crawl_clone(data, url, hub_sha=grown, max_bytes=MB // 2, stall_timeout=20)
        assert half.reached.is_set()
        assert killed.status == f"failed: {TOO_LARGE}", killed
        assert (killed.path, killed.sha) == ("huggingface/repos/owner/repo", first.sha)  # still there
        assert git_state(clone) == before  # no tmp_pack_*: the objects as they were
        assert_usable(clone, first.sha)
        half.on = False
        again = crawl_clone(data, url, hub_sha=grown, max_bytes=10 * MB)
    assert (again.status, again.sha) == ("updated", grown)
    assert (clone / "weights.bin").stat().st_size == 2 * MB


def test_an_update_killed_while_it_holds_its_ref_locks_leaves_none(tmp_path, served, monkeypatch):
    # git takes a lock file for each ref it moves (refs/remotes/origin/main.lock) once the objects
    # are in; a killed git cannot remove it, and left there it would fail every later fetch into the
    # clone ("Unable to create '….lock': File exists"). Here the fetch is held while it holds its
    # locks (git runs a reference-transaction hook with them taken: the test's, given after the
    # policy's core.hooksPath=/dev/null, since a clone's own hooks never run) until PTM_GIT_TIMEOUT kills it.
    host, server = served
    data, url = tmp_path / "data", f"{server.url}/owner/repo"
    clone = data / "huggingface/repos/owner/repo"
    first = crawl_clone(data, url, branch="main", max_bytes=MB)
    held = tmp_path / "held"
    hooks = tmp_path / "hooks"
    hooks.mkdir()
    options = GitPolicy.config_options
    monkeypatch.setattr(GitPolicy, "config_options", lambda self: [*options(self), "-c", f"core.hooksPath={hooks}"])
    hook = hooks / "reference-transaction"
    hook.write_text(f'#!/bin/sh\n[ "$1" = prepared ] && touch {shlex.quote(str(held))} && exec sleep 600\nexit 0\n')
    hook.chmod(0o755)
    grown = host.commit("owner/repo", {"README.md": "y\n"})
    killed = crawl_clone(data, url, hub_sha=grown, branch="main", max_bytes=MB, timeout=15)
    assert held.exists(), "the fetch never held its locks"
    assert killed.status == f"failed: {TIMED_OUT}", killed
    assert list((clone / ".git").rglob("*.lock")) == []
    assert_usable(clone, first.sha)
    hook.unlink()
    again = crawl_clone(data, url, hub_sha=grown, branch="main", max_bytes=MB)
    assert (again.status, again.sha) == ("updated", grown)


def test_an_update_whose_lfs_objects_pass_the_cap_is_killed_before_its_checkout_moves(tmp_path, monkeypatch):
    # With PTM_CLONE_LFS the LFS objects of the fetched commit count too, and are fetched before the
    # checkout moves: a killed LFS download leaves the clone at its commit (else the next crawl would
    # find it at the hub's commit, "unchanged", its weights never fetched), without the LFS files
    # it wrote (a partial .part would be resumed, whole objects counted as there: the cap passed piece
    # by piece, crawl after crawl).
    from tests.replicas.server import Reply

    # git-lfs gives a stalled download up after lfs.activitytimeout, and retries: short here.
    for n, (key, value) in enumerate({"lfs.activitytimeout": "10", "lfs.transfer.maxretries": "1"}.items()):
        monkeypatch.setenv(f"GIT_CONFIG_KEY_{n}", key)
        monkeypatch.setenv(f"GIT_CONFIG_VALUE_{n}", value)
    monkeypatch.setenv("GIT_CONFIG_COUNT", "2")
    host = GitHost(tmp_path / "git")
    host.add_repo("owner/repo", {"README.md": "x\n"}, lfs={"small.bin": b"small\n"})
    weights = os.urandom(3 * MB)
    data = tmp_path / "data"
    clone = data / "huggingface/repos/owner/repo"
    stalled = threading.Event()

    def half_of_big_lfs_objects(req, call_next):
        reply = call_next()
        if req.path.startswith("/lfs-objects/") and len(reply.body) > MB:
            stalled.set()
            return Reply(reply.status, reply.body, reply.headers, cut=len(reply.body) // 2, stall=STALL)
        return reply

    with Replica() as server:
        host.mount(server)
        url = f"{server.url}/owner/repo"
        first = crawl_clone(data, url, lfs=True, max_bytes=MB)
        assert first.status == "cloned" and (clone / "small.bin").read_bytes() == b"small\n", first
        grown = host.commit("owner/repo", {"README.md": "y\n"}, lfs={"model.bin": weights})
        lfs_before = git_state(clone, "lfs")
        server.interceptors.append(half_of_big_lfs_objects)
        killed = crawl_clone(data, url, hub_sha=grown, lfs=True, max_bytes=MB)
        assert stalled.is_set()
        assert killed.status == f"failed: {TOO_LARGE}", killed
        assert git_state(clone, "lfs") == lfs_before
        assert (clone / "README.md").read_text() == "x\n" and not (clone / "model.bin").exists()
        assert_usable(clone, first.sha)
        server.interceptors.clear()
        again = crawl_clone(data, url, hub_sha=grown, lfs=True, max_bytes=10 * MB)
    assert (again.status, again.sha) == ("updated", grown)
    assert (clone / "model.bin").read_bytes() == weights and (clone / "small.bin").read_bytes() == b"small\n"


def test_a_negative_cap_is_no_cap_as_0_is(tmp_path, served):
    # -s PTM_CLONE_MAX_GB=-1 (as a negative PTM_CLONE_MIN_FREE_GB, off like 0): the clone ran
    # unwatched, then its size was held against the negative cap and every new clone failed.
    from scrapy.settings import Settings

    _host, server = served
    settings = Settings()
    settings.setmodule("ptmscrape.settings")
    settings.set("PTM_GIT_ALLOW_PROTOCOL", "http")
    settings.set("PTM_CLONE_MAX_GB", "-1")
    cloner = Cloner(DatasetTree(tmp_path / "data"), Git(GitPolicy.from_settings(settings)), concurrency=1)
    cloner.open("huggingface")
    try:
        result = asyncio.run(cloner.clone("huggingface", f"{server.url}/owner/repo"))
    finally:
        cloner.close()
    assert result.status == "cloned", result.status
