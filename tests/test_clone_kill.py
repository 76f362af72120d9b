"""A crawl killed mid-clone takes its git processes with it (``gitrepo._Lifeline``), and the next
crawl's cleanup (``gitrepo.clean_scratch``) leaves ``repos/.incoming`` empty, never racing a git
still writing there. The "crawl" is the clone stage (``Cloner``) in a child process, cloning from a
replica that sends half of the pack and then nothing for 10 minutes."""

from __future__ import annotations

import asyncio
import fcntl
import logging
import os
import signal
import subprocess
import sys
import threading
import time
from functools import partial

import pytest

from ptmscrape.cloning import Cloner
from ptmscrape.dataset.processes import group_running
from ptmscrape.dataset.tree import DatasetTree
from ptmscrape.gitrepo import Git, GitPolicy, RepoError, clean_scratch, head_sha
from tests.crawl import ROOT
from tests.replicas.server import GitHost, Incoming, Replica, Reply
from tests.services import missing

GRACE = 60  # seconds; a guard for a loaded machine, never a wait when things work (milliseconds)
NO_PID = 4_194_305  # above the largest pid_max Linux allows (2**22): no process or group has it
STALL = 600

CHILD = """
import asyncio, sys
from ptmscrape.cloning import Cloner
from ptmscrape.dataset.tree import DatasetTree
from ptmscrape.gitrepo import Git, GitPolicy

async def main():
    cloner = Cloner(DatasetTree(sys.argv[1]), Git(GitPolicy(allow_protocols=("http",), stall_timeout=600)),
                    concurrency=2)
    cloner.open("huggingface")
    print(await cloner.clone("huggingface", sys.argv[2]), flush=True)

asyncio.run(main())
"""


def processes() -> dict[int, tuple[int, bytes, bytes, str]]:
    """pid -> (parent pid, state, start time, command line) of every process we can see."""
    found = {}
    for name in os.listdir("/proc"):
        if not name.isdigit():
            continue
        try:
            with open(f"/proc/{name}/stat", "rb") as f:
                fields = f.read().rsplit(b")", 1)[1].split()
            with open(f"/proc/{name}/cmdline", "rb") as f:
                cmdline = f.read().replace(b"\0", b" ").decode(errors="replace")
        except OSError:
            continue
        found[int(name)] = (int(fields[1]), fields[0], fields[19], cmdline)
    return found


def descendants(pid: int) -> dict[int, tuple[bytes, str]]:
    """The processes below ``pid`` that run (zombies left out): pid -> (start time, command line)."""
    table = processes()
    below, todo = {}, [pid]
    while todo:
        parent = todo.pop()
        for child, (ppid, state, start, cmdline) in table.items():
            if ppid == parent and child not in below:
                todo.append(child)
                if state not in (b"Z", b"X"):
                    below[child] = (start, cmdline)
    return below


def writing_pack(pid: int) -> dict[int, tuple[bytes, str]] | None:
    """The processes below ``pid`` once one of them writes a pack (git's index-pack), else None."""
    below = descendants(pid)
    return below if any("index-pack" in cmdline for _, cmdline in below.values()) else None


def still_running(snapshot: dict[int, tuple[bytes, str]]) -> list[str]:
    """The processes of ``snapshot`` that still run (same pid and start time, not a zombie)."""
    table = processes()
    return [cmdline for pid, (start, cmdline) in snapshot.items()
            if pid in table and table[pid][2] == start and table[pid][1] not in (b"Z", b"X")]


def wait_for(condition, what: str):
    deadline = time.monotonic() + GRACE
    while not (found := condition()):
        assert time.monotonic() < deadline, f"gave up waiting for {what}"
        time.sleep(0.05)
    return found


class HalfPack:
    """Replica interceptor: a fetch gets half of its pack, then the connection is held, silent."""

    def __init__(self):
        self.on = True
        self.reached = threading.Event()

    def __call__(self, req: Incoming, call_next) -> Reply:
        reply = call_next()
        if self.on and req.path.endswith("/git-upload-pack") and b"want " in req.body:
            self.reached.set()
            return Reply(reply.status, reply.body, reply.headers, cut=len(reply.body) // 2, stall=STALL)
        return reply


def slow_hub(tmp_path):
    host = GitHost(tmp_path / "git")
    # Incompressible, so that half of the pack is a real part of the transfer.
    host.add_repo("owner/big", {"weights.bin": os.urandom(2_000_000), "README.md": "x\n"})
    server = Replica()
    host.mount(server)
    half = HalfPack()
    server.interceptors.append(half)
    return server, half


def test_a_crawl_killed_mid_clone_leaves_no_git_running_and_nothing_in_incoming(tmp_path, caplog):
    data = tmp_path / "data"
    incoming = data / "huggingface/repos/.incoming"
    server, half = slow_hub(tmp_path)
    with server:
        url = f"{server.url}/owner/big"
        crawl = subprocess.Popen([sys.executable, "-c", CHILD, str(data), url], cwd=ROOT,
                                 stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
        try:
            # Mid-clone: half of the pack in, git and the process writing the pack running.
            assert half.reached.wait(GRACE), "the clone never asked for its pack"
            gits = wait_for(lambda: writing_pack(crawl.pid), "a pack being written")
            assert any(" clone " in c for _, c in gits.values()), gits
            scratch, = wait_for(lambda: list(incoming.iterdir()), "the scratch folder")
            crawl_pid, group, _ = scratch.name.split("-")
            assert int(crawl_pid) == crawl.pid and group_running(int(group))

            crawl.send_signal(signal.SIGKILL)  # the crawl alone, as `kill -9 <pid>` does
            crawl.wait(GRACE)
            assert crawl.returncode == -signal.SIGKILL, crawl.stdout.read() if crawl.stdout else ""
            wait_for(lambda: not still_running(gits), "the killed crawl's git processes to end")
            assert not group_running(int(group))
        finally:
            if crawl.poll() is None:
                crawl.kill()
                crawl.wait()
            if crawl.stdout:
                crawl.stdout.close()

        # The next crawl: the killed one's half clone is removed; the clone is made again, whole.
        assert list(incoming.iterdir()) == [scratch]
        half.on = False
        cloner = Cloner(DatasetTree(data), Git(GitPolicy(allow_protocols=("http",))), concurrency=1)
        with caplog.at_level(logging.INFO, logger="ptmscrape"):
            cloner.open("huggingface")
        try:
            assert "Removed 1 unfinished clone(s) left by a killed crawl" in caplog.text
            assert list(incoming.iterdir()) == []
            result = asyncio.run(cloner.clone("huggingface", url))
        finally:
            cloner.close()
    assert result.status == "cloned", result
    assert (data / result.path / "weights.bin").stat().st_size == 2_000_000
    assert list(incoming.iterdir()) == []


def test_scratch_folders_whose_git_still_runs_are_left_for_a_later_crawl(tmp_path, caplog):
    root = tmp_path / ".incoming"
    running = subprocess.Popen(["sleep", str(STALL)], process_group=0)  # a git of a killed crawl
    try:
        busy = root / f"{NO_PID}-{running.pid}-aaaaaaaaaaaa"
        gone = root / f"{NO_PID}-{NO_PID}-bbbbbbbbbbbb"  # its crawl and git groups both gone
        older = root / f"{NO_PID}-cccccccccccc"  # named before process groups were recorded
        ours = root / f"{os.getpid()}-{os.getpgrp()}-dddddddddddd"  # a live crawl's
        for folder in (busy, gone, older, ours):
            (folder / ".git").mkdir(parents=True)
        with caplog.at_level(logging.WARNING, logger="ptmscrape"):
            assert clean_scratch(root) == 2
        assert sorted(p.name for p in root.iterdir()) == sorted([busy.name, ours.name])
        assert f"git processes of the killed crawl that built it still run (process group {running.pid})" \
            in caplog.text
    finally:
        running.kill()
        running.wait()
    assert clean_scratch(root) == 1
    assert [p.name for p in root.iterdir()] == [ours.name]


def test_scratch_folders_of_other_machines_sharing_the_data_dir_are_left_alone(tmp_path):
    """A data dir on a network file system, shared by workers on several machines: another
    machine's clone in flight has a pid this machine does not run. Removing it broke that clone."""
    from ptmscrape.gitrepo import HOST_TAG

    root = tmp_path / ".incoming"
    theirs = root / f"{NO_PID}-{NO_PID}-aaaaaaaaaaaa.0123456789ab"
    mine = root / f"{NO_PID}-{NO_PID}-bbbbbbbbbbbb.{HOST_TAG}"
    for folder in (theirs, mine):
        (folder / ".git").mkdir(parents=True)
    assert HOST_TAG != "0123456789ab"
    assert clean_scratch(root) == 1
    assert [p.name for p in root.iterdir()] == [theirs.name]


def test_a_clone_is_built_in_a_folder_named_for_this_machine(tmp_path):
    from ptmscrape.gitrepo import HOST_TAG

    seen = []

    class Watching(Git):
        def _run(self, cwd, *args, scratch=None, **watched):
            seen.append(scratch)
            raise RepoError("stop here")

    with pytest.raises(RepoError):
        Watching(GitPolicy(allow_protocols=("https",))).clone("https://example.org/a/b", tmp_path / "t",
                                                             tmp_path / ".incoming")
    assert seen[0].name.endswith(f".{HOST_TAG}") and seen[0].parent == tmp_path / ".incoming"
    assert seen[0].name.split(".")[0].split("-")[0] == str(os.getpid())


def test_scratch_folder_names_that_name_no_process_do_not_stop_the_cleanup(tmp_path):
    """A pid or group beyond any pid_max made os.kill overflow (the clone stage did not open), and
    group 0 (the kernel's threads) always looked running: such a folder was kept for ever."""
    root = tmp_path / ".incoming"
    folders = [root / f"{NO_PID}-99999999999999999999999-aaaaaaaaaaaa", root / f"{NO_PID}-0-bbbbbbbbbbbb",
               root / "99999999999999999999999-1-cccccccccccc"]
    for folder in folders:
        (folder / ".git").mkdir(parents=True)
    assert clean_scratch(root) == 3
    assert list(root.iterdir()) == []


def test_a_group_of_zombies_does_not_run(tmp_path):
    zombie = subprocess.Popen(["true"], process_group=0)
    try:
        wait_for(lambda: processes().get(zombie.pid, (0, b"Z"))[1] == b"Z", "the process to end")
        assert not group_running(zombie.pid)  # not reaped: still in the process table
    finally:
        zombie.wait()
    assert not group_running(zombie.pid)
    assert group_running(os.getpgrp())


END_CHILD = """
import sys, threading
from pathlib import Path
from ptmscrape.gitrepo import Git, GitPolicy, RepoError, end_git_commands

git = Git(GitPolicy(allow_protocols=("http",), stall_timeout=600))
data = Path(sys.argv[1])
failed = []

def clone():
    try:
        git.clone(sys.argv[2], data / "repos/owner/big", data / "repos/.incoming")
    except RepoError as exc:
        failed.append(str(exc))

worker = threading.Thread(target=clone)
worker.start()
sys.stdin.readline()  # the test saw the clone half-way
end_git_commands()
worker.join(60)
print("clone failed:", bool(failed) and not worker.is_alive(), flush=True)
try:
    git.clone(sys.argv[2], data / "repos/owner/again", data / "repos/.incoming")
except RepoError as exc:
    print("then:", exc, flush=True)
"""


def test_a_forced_stop_kills_the_clones_in_flight(tmp_path):
    """``scrapy crawl`` calls ``end_git_commands()`` once its crawl is over: after Ctrl-C twice, the
    clones still running are killed rather than waited for (the process would hang in its exit)."""
    data = tmp_path / "data"
    server, half = slow_hub(tmp_path)
    with server:
        crawl = subprocess.Popen([sys.executable, "-c", END_CHILD, str(data), f"{server.url}/owner/big"],
                                 cwd=ROOT, stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                                 stderr=subprocess.STDOUT, text=True)
        try:
            assert half.reached.wait(GRACE), "the clone never asked for its pack"
            gits = wait_for(lambda: writing_pack(crawl.pid), "a pack being written")
            out, _ = crawl.communicate("go\n", timeout=GRACE)
        finally:
            if crawl.poll() is None:
                crawl.kill()
                crawl.communicate()
    assert crawl.returncode == 0, out
    assert out.splitlines() == ["clone failed: True", "then: not started: this process is ending"], out
    wait_for(lambda: not still_running(gits), "the clone's git processes to end")
    assert list((data / "repos/.incoming").iterdir()) == []


def test_the_host_tag_names_the_pid_namespace_too():
    """Containers on one host sharing a data dir (with --network host they share the host's name):
    their pids are not ours, so their leftovers must not look like this host's."""
    import shutil

    from ptmscrape.dataset.processes import HOST_TAG

    code = "from ptmscrape.dataset.processes import HOST_TAG; print(HOST_TAG)"
    unshare = shutil.which("unshare")
    if unshare is None:
        missing("no unshare(1) to start a process in another pid namespace")
    inside = subprocess.run([unshare, "--pid", "--fork", "--mount-proc", sys.executable, "-c", code],
                            capture_output=True, text=True, cwd=ROOT, timeout=60)
    if inside.returncode != 0:
        missing(f"cannot make a pid namespace here: {inside.stderr.strip()[:200]}")
    same = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=ROOT, timeout=60)
    assert same.stdout.strip() == HOST_TAG
    assert len(inside.stdout.strip()) == 12 and inside.stdout.strip() != HOST_TAG


UPDATE_KILLED_MID_CHECKOUT = """
import asyncio, os, signal, sys
from ptmscrape.cloning import Cloner
from ptmscrape.dataset.tree import DatasetTree
from ptmscrape.gitrepo import Git, GitPolicy

class KilledMidCheckout(Git):
    def _run(self, cwd, *args, **kwargs):
        if "reset" in args:  # as SIGKILL leaves a git checking out: its index.lock, then nothing
            open(os.path.join(cwd, ".git", "index.lock"), "w").close()
            os.kill(os.getpid(), signal.SIGKILL)
        return super()._run(cwd, *args, **kwargs)

cloner = Cloner(DatasetTree(sys.argv[1]), KilledMidCheckout(GitPolicy(allow_protocols=("http",))), concurrency=1)
cloner.open("huggingface")
asyncio.run(cloner.clone("huggingface", sys.argv[2], hub_sha=sys.argv[3]))
"""


def clone_in_a_crawl(data_dir, url: str, policy: GitPolicy, hub_sha: str | None = None):
    """What one crawl's clone stage makes of ``url`` (a Hugging Face model's repository)."""
    cloner = Cloner(DatasetTree(data_dir), Git(policy), concurrency=1)
    cloner.open("huggingface")
    try:
        return asyncio.run(cloner.clone("huggingface", url, hub_sha=hub_sha))
    finally:
        cloner.close()


def test_the_next_update_of_a_clone_whose_update_was_killed_removes_the_locks_its_git_left(tmp_path):
    """SIGKILL leaves git's lock files (``index.lock`` of a checkout, ``config.lock``...): the clone's
    next update removes them, rather than failing on them in every crawl from then on."""
    host = GitHost(tmp_path / "git")
    host.add_repo("owner/repo", {"README.md": "x\n"})
    policy = GitPolicy(allow_protocols=("http",))
    with Replica() as server:
        host.mount(server)
        url = f"{server.url}/owner/repo"

        crawl = partial(clone_in_a_crawl, tmp_path / "data", url, policy)

        first = crawl()
        assert first.status == "cloned"
        clone = tmp_path / "data" / first.path
        new = host.commit("owner/repo", {"README.md": "y\n"})
        killed = subprocess.run([sys.executable, "-c", UPDATE_KILLED_MID_CHECKOUT, str(tmp_path / "data"), url, new],
                                cwd=ROOT, capture_output=True, text=True, timeout=GRACE)
        assert killed.returncode == -signal.SIGKILL, killed.stderr[-3000:]
        assert (clone / ".git/index.lock").exists()

        again = crawl(new)
        assert (again.status, again.sha) == ("updated", new)
        assert not (clone / ".git/index.lock").exists()
        assert (clone / "README.md").read_text() == "y\n"
        # A lock of a git that still runs (another worker's) is left to it: the update waits for that
        # worker's. Its lock still there once that worker's update is over, the checkout fails on it,
        # and the update, holding the clone now, puts the clone back at its commit (the stale lock
        # removed, so the next update is not stopped by it).
        newer = host.commit("owner/repo", {"README.md": "z\n"})
        out = update_while_another_updates(clone, partial(crawl, newer), git_done=False)
        assert (out["waited"], out["lock_kept"]) == (True, True)
        assert out["result"].status.startswith("failed: ")
        assert head_sha(clone) == new and (clone / "README.md").read_text() == "y\n"
        assert not (clone / ".git/index.lock").exists()


UPDATE_KILLED_BEFORE_LFS_CHECKOUT = """
import asyncio, os, signal, sys
from ptmscrape.cloning import Cloner
from ptmscrape.dataset.tree import DatasetTree
from ptmscrape.gitrepo import Git, GitPolicy

class KilledBeforeLfsCheckout(Git):
    def _run(self, cwd, *args, **kwargs):
        if args[-2:] == ("lfs", "checkout"):  # HEAD moved, LFS pointers where the files go
            os.kill(os.getpid(), signal.SIGKILL)
        return super()._run(cwd, *args, **kwargs)

policy = GitPolicy(allow_protocols=("http",), lfs=True)
cloner = Cloner(DatasetTree(sys.argv[1]), KilledBeforeLfsCheckout(policy), concurrency=1)
cloner.open("huggingface")
asyncio.run(cloner.clone("huggingface", sys.argv[2], hub_sha=sys.argv[3]))
"""


def test_a_clone_whose_update_was_killed_before_its_lfs_files_is_not_unchanged_at_the_hubs_commit(tmp_path):
    """With PTM_CLONE_LFS, an update checks the fetched commit out (LFS pointers), then its LFS files:
    killed in between, the clone is at the hub's commit with pointers for weights. The next crawl
    updates it (the files are checked out), rather than calling it unchanged for as long as that
    commit is the hub's."""
    host = GitHost(tmp_path / "git")
    host.add_repo("owner/repo", {"README.md": "x\n"}, lfs={"model.bin": b"one" * 50})
    policy = GitPolicy(allow_protocols=("http",), lfs=True)
    with Replica() as server:
        host.mount(server)
        url = f"{server.url}/owner/repo"

        crawl = partial(clone_in_a_crawl, tmp_path / "data", url, policy)

        clone = tmp_path / "data" / crawl().path
        assert (clone / "model.bin").read_bytes() == b"one" * 50
        new = host.commit("owner/repo", {"README.md": "y\n"}, lfs={"model.bin": b"two" * 50})
        killed = subprocess.run([sys.executable, "-c", UPDATE_KILLED_BEFORE_LFS_CHECKOUT, str(tmp_path / "data"),
                                 url, new], cwd=ROOT, capture_output=True, text=True, timeout=GRACE)
        assert killed.returncode == -signal.SIGKILL, killed.stderr[-3000:]
        assert (clone / "model.bin").read_bytes().startswith(b"version https://git-lfs")

        for _ in range(2):  # updated, then unchanged
            again = crawl(new)
            assert again.sha == new and again.status in ("unchanged", "updated")
            assert (clone / "model.bin").read_bytes() == b"two" * 50


def test_no_git_gc_is_left_running_after_updates(tmp_path, monkeypatch):
    """After a fetch git starts ``git gc --auto`` (from the 50th pack: one an update) in a session of
    its own, out of the crawl's git process group: a repack of the whole clone that no kill of the
    crawl, PTM_GIT_TIMEOUT or PTM_CLONE_MIN_FREE_GB stops. Our git does no automatic maintenance."""
    for n, (key, value) in enumerate((("gc.autoPackLimit", "2"), ("gc.auto", "1"))):  # due at once
        monkeypatch.setenv(f"GIT_CONFIG_KEY_{n}", key)
        monkeypatch.setenv(f"GIT_CONFIG_VALUE_{n}", value)
    monkeypatch.setenv("GIT_CONFIG_COUNT", "2")
    host = GitHost(tmp_path / "git")
    host.add_repo("owner/repo", {"README.md": "x\n"})
    with Replica() as server:
        host.mount(server)
        url = f"{server.url}/owner/repo"

        crawl = partial(clone_in_a_crawl, tmp_path / "data", url, GitPolicy(allow_protocols=("http",)))

        clone = tmp_path / "data" / crawl().path
        for n in range(3):
            new = host.commit("owner/repo", {f"file{n}.txt": f"{n}\n" * 1000})
            assert crawl(new).status == "updated"
    deadline = time.monotonic() + GRACE  # a detached gc still at work: its gc.pid, its temp packs
    while (clone / ".git/gc.pid").exists() and time.monotonic() < deadline:
        time.sleep(0.05)
    assert not (clone / ".git/gc.pid").exists() and not (clone / ".git/gc.log").exists()
    assert len(list((clone / ".git/objects/pack").glob("*.pack"))) == 4  # the clone's and one an update


class _Said(logging.Handler):
    """Sets ``event`` once a record whose message holds ``text`` is logged."""

    def __init__(self, text: str, event: threading.Event):
        super().__init__()
        self.text, self.event = text, event

    def emit(self, record):
        if self.text in record.getMessage():
            self.event.set()


def update_while_another_updates(clone, update, *, git_done: bool) -> dict:
    """Run ``update()`` in a thread while "another worker" (this test) holds ``clone``'s update mark
    and its git's ``index.lock``; let go once the update waits (or is over), removing that lock
    first when ``git_done``. What ``update()`` returned (``result``) or raised (``error``), and
    whether it waited (``waited``) and the lock was still there meanwhile (``lock_kept``)."""
    out: dict = {}

    def run():
        try:
            out["result"] = update()
        except RepoError as exc:
            out["error"] = str(exc)

    waiting = threading.Event()
    said = _Said("updating it too", waiting)
    logger = logging.getLogger("ptmscrape.gitrepo")
    level = logger.level
    logger.setLevel(logging.INFO)  # the wait is said at INFO: without it, only the 120 s guard ended the wait here
    logger.addHandler(said)
    try:
        with open(clone / ".git/ptmscrape-update", "a+b") as mark:
            fcntl.flock(mark, fcntl.LOCK_EX)  # another worker's update runs...
            (clone / ".git/index.lock").touch()  # ...and its git holds the index
            thread = threading.Thread(target=run)
            thread.start()
            deadline = time.monotonic() + 120  # a guard against a hang, not a timing assertion
            while not waiting.is_set() and thread.is_alive() and time.monotonic() < deadline:
                waiting.wait(0.05)
            out["waited"] = thread.is_alive()
            out["lock_kept"] = (clone / ".git/index.lock").exists()
            if git_done:
                (clone / ".git/index.lock").unlink()
        thread.join(120)
    finally:
        logger.removeHandler(said)
        logger.setLevel(level)
    return out


def test_an_update_waits_for_another_workers_update_of_the_same_clone(tmp_path):
    """Workers sharing a data dir update a shared clone (onnx/models, tfhub.dev, open_model_zoo, a
    PyTorch Hub repository) at once on every re-crawl. Both ran git in it together: one failed on
    the other's locks ("could not lock config file", "Unable to create index.lock … remove the file
    manually to continue"), its models recorded ``CloneStatus: failed: …`` though the clone was
    updated, and a failed fetch's clean-up removed the other's pack in the making. The second
    now waits for the first, then updates (a fetch with nothing new)."""
    host = GitHost(tmp_path / "git")
    host.add_repo("owner/repo", {"README.md": "x\n"})
    git = Git(GitPolicy(allow_protocols=("http",)))
    with Replica() as server:
        host.mount(server)
        url = f"{server.url}/owner/repo"
        clone = tmp_path / "clone"
        git.clone(url, clone, tmp_path / "scratch")
        new = host.commit("owner/repo", {"README.md": "y\n"})
        out = update_while_another_updates(clone, partial(git.update, url, clone), git_done=True)
    assert out == {"waited": True, "lock_kept": True, "result": new}
    assert (clone / "README.md").read_text() == "y\n"


def test_an_update_whose_crawl_is_gone_is_unfinished_while_its_git_group_is_still_ending(tmp_path):
    """SIGKILL ends the crawl at once, its git's group a moment later (the lifeline shell sees the
    pipe close, then kills it): a crawl started in between took the clone for unchanged at the hub's
    commit, LFS pointers where the files go, for as long as that commit was the hub's (seen in CI
    under load). A mark naming a crawl process that is gone is an unfinished update, whatever its
    group does; one naming a live crawl (another worker's update in progress) is not."""
    from ptmscrape.dataset.processes import HOST_TAG
    from ptmscrape.gitrepo import UPDATE_MARK, update_unfinished

    gone = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"], capture_output=True,
                          text=True, check=True)
    dead_pid = int(gone.stdout)
    (tmp_path / ".git").mkdir()
    mark = tmp_path / ".git" / UPDATE_MARK
    live_group = os.getpgrp()  # a group that runs: the dying crawl's git, still being killed
    mark.write_text(f"{dead_pid}-{live_group}.{HOST_TAG}")
    assert update_unfinished(tmp_path)
    mark.write_text(f"{os.getpid()}-{live_group}.{HOST_TAG}")
    assert not update_unfinished(tmp_path)
    mark.write_text(f"{dead_pid}-{live_group}.000000000000")  # another machine's: not ours to judge
    assert not update_unfinished(tmp_path)
    mark.write_text("")
    assert not update_unfinished(tmp_path)
