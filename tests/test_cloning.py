"""The clone stage's work (``ptmscrape.cloning.Cloner``) on its own, without Scrapy: real git over
HTTP from a local replica (``tests/replicas/server.py``), asyncio instead of the reactor."""

from __future__ import annotations

import asyncio
import dataclasses
import errno
import json
import logging
import os
import re
import subprocess
import sys
import threading

import pytest

from ptmscrape.cloning import NAMED_RETRIES, Cloner, CloneResult, Counters
from ptmscrape.dataset.tree import DatasetTree
from ptmscrape.gitrepo import Git, GitPolicy, RepoError
from tests.crawl import ROOT
from tests.replicas.faults import FaultInjector, FaultPlan, inject
from tests.replicas.server import GIT_ENV, GitHost, Replica, Reply

POLICY = GitPolicy(allow_protocols=("https", "http"))


def cloner(data_dir, concurrency: int = 4) -> Cloner:
    return Cloner(DatasetTree(data_dir), Git(POLICY), concurrency=concurrency)


def test_cloner_imports_and_clones_with_scrapy_and_twisted_blocked(tmp_path, served):
    host, server = served
    probe = f"""
import asyncio, sys
sys.modules["scrapy"] = None  # any "import scrapy…" now raises ImportError
sys.modules["twisted"] = None
from ptmscrape.cloning import Cloner
from ptmscrape.dataset.tree import DatasetTree
from ptmscrape.gitrepo import Git, GitPolicy, RepoError

async def run(hub_sha=None):
    c = Cloner(DatasetTree({str(tmp_path / "data")!r}), Git(GitPolicy(allow_protocols=("http",))), concurrency=2)
    c.open("modelzoo")
    try:
        result = await c.clone("modelzoo", {server.url + "/owner/repo"!r}, hub_sha=hub_sha)
    finally:
        c.close()
    return result, c.stats

first, stats = asyncio.run(run())
again, _ = asyncio.run(run(first.sha))
print(first.status, first.path, again.status, again.sha == first.sha, stats["ptm/clone/repos/cloned"],
      stats["ptm/clone/bytes"] > 0,
      sorted(m for m, mod in sys.modules.items() if mod and m.split(".")[0] in ("scrapy", "twisted")))
"""
    out = subprocess.run([sys.executable, "-c", probe], cwd=ROOT, capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, out.stderr[-3000:]
    assert out.stdout.split() == ["cloned", "modelzoo/repos/owner/repo", "unchanged", "True", "1", "True",
                                  "[]"], out.stderr[-3000:]
    assert '"path":"modelzoo/repos/owner/repo"' in (tmp_path / "data/repo-index.jsonl").read_text()


def test_one_url_asked_by_many_at_once_is_cloned_once(tmp_path, served):
    host, server = served
    c = cloner(tmp_path / "data")
    c.open("huggingface")

    async def many():
        urls = [f"{server.url}/owner/repo", f"{server.url}/owner/repo.git", f"{server.url}/owner/repo/"] * 3
        return await asyncio.gather(*(c.clone("huggingface", u) for u in urls))

    try:
        results = asyncio.run(many())
    finally:
        c.close()
    assert {(r.status, r.path) for r in results} == {("cloned", "huggingface/repos/owner/repo")}
    assert server.count("GET", "/info/refs") == 1
    assert isinstance(c.stats, Counters)
    assert (c.stats["ptm/clone/queued"], c.stats["ptm/clone/shared"], c.stats["ptm/clone/repos/cloned"]) == (1, 8, 1)
    assert (c.stats["ptm/clone/waiting"], c.stats["ptm/clone/running"]) == (0, 0)


def test_git_jobs_not_started_when_the_crawl_closes_are_deferred_and_not_remembered(tmp_path, served):
    """A pause waited for every model of the pages fetched (a thousand clones a Hugging Face page):
    a job whose turn comes once the crawl is closing is not started, and nothing of it is kept, so
    the resumed job clones it."""
    host, server = served
    stopping = threading.Event()
    c = Cloner(DatasetTree(tmp_path / "data"), Git(POLICY), concurrency=1, stopping=stopping.is_set)
    c.open("huggingface")
    url = f"{server.url}/owner/repo"
    try:
        stopping.set()
        deferred = asyncio.run(c.clone("huggingface", url))
        stopping.clear()
        cloned = asyncio.run(c.clone("huggingface", url))
    finally:
        c.close()
    assert (deferred.status, deferred.path) == ("deferred", None)
    assert (cloned.status, cloned.path) == ("cloned", "huggingface/repos/owner/repo")
    assert server.count("GET", "/info/refs") == 1
    assert "ptm/clone/repos/deferred" not in c.stats and c.stats["ptm/clone/repos/cloned"] == 1
    assert (c.stats["ptm/clone/waiting"], c.stats["ptm/clone/running"]) == (0, 0)


def test_a_refused_url_fails_without_git_or_the_pool(tmp_path):
    c = cloner(tmp_path / "data")  # never opened: no pool at all
    result = asyncio.run(c.clone("huggingface", "https://user:pw@github.com/a/b", hub_sha="f" * 40))
    assert (result.path, result.sha) == (None, "f" * 40)
    assert result.status == "failed: credentials in the URL are not accepted"
    assert dict(c.stats) == {}


def test_each_lock_guards_one_thing(tmp_path):
    """Index, claims and counters have locks of their own: a worker holding one never stalls the
    others (one lock for all of them was the clone pipeline's old ``index_lock``)."""
    c = cloner(tmp_path / "data")
    c.index["https://h/a"] = "hub/repos/a"
    held, release = threading.Event(), threading.Event()

    def hold(lock):
        with lock:
            held.set()
            release.wait(10)

    def claim_and_release():
        c.claims["hub/repos/x"] = "https://h/x"
        c._release("hub/repos/x")

    def index_op():
        assert c._indexed("https://h/a") == "hub/repos/a"

    claims_op, counters_op = claim_and_release, (lambda: c._count_bytes(5))
    for lock, others in ((c.index_lock, (claims_op, counters_op)), (c.claims_lock, (index_op, counters_op)),
                         (c.counters_lock, (index_op, claims_op))):
        held.clear()
        release.clear()
        holder = threading.Thread(target=hold, args=(lock,))
        holder.start()
        held.wait(10)
        done = threading.Thread(target=lambda ops: [op() for op in ops], args=(others,))
        done.start()
        done.join(5)
        finished = not done.is_alive()
        release.set()
        holder.join()
        done.join()
        assert finished, lock
    assert c.stats["ptm/clone/bytes"] == 10 and c.claims == {}


def test_a_repositorys_lfsconfig_cannot_send_git_lfs_elsewhere(tmp_path):
    """``.lfsconfig`` naming a ``file://`` LFS store on this machine: with LFS on, the objects come
    from the repository's own endpoint only, so a local file never lands in the dataset."""
    import hashlib

    from tests.replicas.server import LFS_ATTRIBUTES, lfs_pointer

    secret = b"a file of the crawling machine\n"
    oid = hashlib.sha256(secret).hexdigest()
    local = tmp_path / "local-store"
    subprocess.run(["git", "init", "-q", str(local)], check=True)
    stored = local / ".git/lfs/objects" / oid[:2] / oid[2:4] / oid
    stored.parent.mkdir(parents=True)
    stored.write_bytes(secret)
    weights = b"the hub's own weights\n"
    host = GitHost(tmp_path / "git")
    files = {".lfsconfig": f"[lfs]\n\turl = file://{local}\n", ".gitattributes": LFS_ATTRIBUTES}
    host.add_repo("evil/lfs", {**files, "stolen.bin": lfs_pointer(secret)})
    host.add_repo("good/lfs", files, lfs={"model.bin": weights})
    git = Git(GitPolicy(allow_protocols=("http",), lfs=True))
    data = tmp_path / "data"
    with Replica() as server:
        host.mount(server)
        with pytest.raises(RepoError):  # the hub's endpoint has no such object
            git.clone(f"{server.url}/evil/lfs", data / "hf/repos/evil/lfs", data / ".incoming")
        git.clone(f"{server.url}/good/lfs", data / "hf/repos/good/lfs", data / ".incoming")
    assert not (data / "hf/repos/evil").exists()
    assert (data / "hf/repos/good/lfs/model.bin").read_bytes() == weights  # LFS itself still works
    assert not any(secret in p.read_bytes() for p in data.rglob("*") if p.is_file())


@pytest.fixture
def two_branches(tmp_path):
    """(host, url): ``acme/garden`` on 127.0.0.1 with a ``main`` (its HEAD) and an ``r2`` branch."""
    host = GitHost(tmp_path / "git")
    host.add_repo("acme/garden", {"README.md": "main\n"})
    host.commit("acme/garden", {"official/bert/model.py": "r2\n"}, branch="r2")
    host.commit("acme/garden", {"README.md": "main, later\n"}, branch="main")
    with Replica() as server:
        host.mount(server)
        yield host, f"{server.url}/acme/garden"


def clone_all(data_dir, requests: list[tuple[str, str | None]]):
    """Clone each ``(url, branch)`` in turn with one cloner, as one crawl's models would."""
    c = cloner(data_dir)
    c.open("modelzoo")

    async def each():
        return [await c.clone("modelzoo", url, branch=branch) for url, branch in requests]

    try:
        return asyncio.run(each())
    finally:
        c.close()


@pytest.mark.parametrize("r2_first", [True, False])
def test_models_on_two_branches_of_one_repository_get_a_clone_of_each(tmp_path, two_branches, r2_first):
    """ModelZoo links ``…/garden/tree/r2/official/bert`` and ``…/garden``: the model on ``r2`` was
    recorded with main's commit in main's clone (whichever came first checked out its branch)."""
    host, url = two_branches
    heads = {"r2": host.head("acme/garden", "r2"), None: host.head("acme/garden", "main")}
    requests = [(url, "r2"), (url, None)] if r2_first else [(url, None), (url, "r2")]
    for run in ("cloned", "unchanged"):  # a re-crawl finds each clone where the index says
        results = dict(zip((b for _, b in requests), clone_all(tmp_path / "data", requests), strict=True))
        assert {b: (r.status, r.sha) for b, r in results.items()} == {b: (run, heads[b]) for b in heads}
        first = requests[0][1]
        assert results[first].path == "modelzoo/repos/acme/garden"  # the first to come keeps the plain folder
        assert results["r2"].path != results[None].path
        for branch, result in results.items():
            assert head(tmp_path / "data" / result.path) == heads[branch]
    assert (tmp_path / "data" / results["r2"].path / "official/bert/model.py").is_file()
    if r2_first:
        assert results[None].path.startswith("modelzoo/repos/acme/garden%7E")
    else:
        assert results["r2"].path == "modelzoo/repos/acme/garden%40r2"


def test_a_clone_indexed_before_clones_had_branches_is_taken_over_by_the_first_model(tmp_path, two_branches):
    """An index line without ``branch`` (written by earlier versions, whatever branch the model
    named): the first model of that URL takes the clone over (no new clone of every repository a
    hub names with a branch, such as Modelhub's ``master``); another branch gets its own."""
    host, url = two_branches
    [made] = clone_all(tmp_path / "data", [(url, None)])
    index = tmp_path / "data/repo-index.jsonl"
    index.write_text(json.dumps({"url": url, "path": made.path}) + "\n")
    results = clone_all(tmp_path / "data", [(url, "main"), (url, "r2"), (url, None)])
    assert [(r.status, r.path) for r in results] == [
        ("unchanged", "modelzoo/repos/acme/garden"), ("cloned", "modelzoo/repos/acme/garden%40r2"),
        ("cloned", results[2].path)]
    assert results[2].path not in (results[0].path, results[1].path)
    assert [r.sha for r in results] == [host.head("acme/garden", "main"), host.head("acme/garden", "r2"),
                                        host.head("acme/garden", "main")]
    lines = [json.loads(line) for line in index.read_text().splitlines()]
    assert [(e["branch"], e["path"]) for e in lines[1:]] == [(r_branch, r.path) for r_branch, r in
                                                            zip(("main", "r2", None), results, strict=True)]


def head(path) -> str:
    return subprocess.run(["git", "-C", str(path), "rev-parse", "HEAD"], capture_output=True, text=True,
                          check=True).stdout.strip()


@pytest.mark.parametrize("hub_sha", [True, False])
def test_a_clone_that_landed_without_its_index_line_is_indexed_by_the_next_crawl(tmp_path, served, hub_sha):
    """A crawl killed between a clone's landing (its rename) and its line in repo-index.jsonl, or a
    full disk at that append, leaves a clone the index does not name: another hub's crawl would
    clone it again. The next crawl that meets the clone indexes it."""
    host, server = served
    url = f"{server.url}/owner/repo"

    def crawl(hub, sha=None):
        c = cloner(tmp_path / "data")
        c.open(hub)
        try:
            return asyncio.run(c.clone(hub, url, hub_sha=sha))
        finally:
            c.close()

    first = crawl("modelzoo")
    index = tmp_path / "data/repo-index.jsonl"
    index.unlink()  # as the killed crawl left it
    again = crawl("modelzoo", first.sha if hub_sha else None)
    assert (again.path, again.status) == (first.path, "unchanged")
    assert [json.loads(line) for line in index.read_text().splitlines()] == [
        {"url": f"{server.url}/owner/repo", "branch": None, "path": "modelzoo/repos/owner/repo"}]
    other = crawl("huggingface", first.sha)  # another hub's crawl uses that clone
    assert (other.path, other.status) == (first.path, "unchanged")
    assert not (tmp_path / "data/huggingface/repos/owner").exists()


def test_a_folder_git_cannot_be_asked_about_keeps_the_clones_head(tmp_path, served):
    # A hub link may carry a NUL (JSON "\u0000", a link's %00): git cannot take it as an argument,
    # and the ValueError that raised failed the model in the clone stage (traceback, no record).
    host, server = served
    c = cloner(tmp_path / "data")
    c.open("modelzoo")
    try:
        result = asyncio.run(c.clone("modelzoo", f"{server.url}/owner/repo", subpath="models/a\x00b"))
        folder = asyncio.run(c.clone("modelzoo", f"{server.url}/owner/repo", subpath="README.md"))
    finally:
        c.close()
    assert (result.status, result.path) == ("cloned", "modelzoo/repos/owner/repo")
    assert result.sha == folder.sha and len(result.sha) == 40


def test_a_failed_clones_reason_is_read_from_git_not_from_the_names_in_its_message(tmp_path):
    """git's message quotes the URL and the branch, and a server's own words (``remote: …``): a
    missing branch was "repository not found (HTTP 404)", a repository or branch named
    ``…timeout…`` "transfer stalled or timed out", and a 500 or 429 whose body said "Not Found" a
    404; a status git names is the reason, and names are no reason at all."""
    host = GitHost(tmp_path / "git")
    host.add_repo("o/model", {"README.md": "x\n"})
    with Replica() as server:
        for status in (500, 503, 429):
            server.route("GET", f"/o/e{status}/info/refs", lambda r, m, s=status: Reply.text("Not Found", s))
        host.mount(server)
        c = cloner(tmp_path / "data")
        c.open("modelzoo")
        requests = {
            ("o/model", "no-such-branch"): "branch not found",
            ("o/model", "timeout-fix"): "branch not found",
            ("o/gone-Timeout-v2", None): "repository not found (HTTP 404)",
            ("o/e500", None): "server error (HTTP 5xx)",
            ("o/e503", None): "server error (HTTP 5xx)",
            ("o/e429", None): "rate limited (HTTP 429)",
        }

        async def each():
            return [await c.clone("modelzoo", f"{server.url}/{repo}", branch=branch) for repo, branch in requests]

        try:
            results = asyncio.run(each())
        finally:
            c.close()
    assert {k: r.status for k, r in zip(requests, results, strict=True)} == {
        k: f"failed: {reason}" for k, reason in requests.items()}


def test_a_clone_that_landed_is_recorded_cloned_even_if_its_index_line_cannot_be_written(tmp_path, served):
    """The clone is renamed into place, then its line appended to repo-index.jsonl: a full disk (or
    a read-only data dir root) at that append failed the model ("filesystem error", no RepoPath)
    although its complete clone was in the tree, pointed at by no record. An update already
    shrugged that off (the next crawl indexes the clone)."""
    host, server = served
    c = cloner(tmp_path / "data")

    def full(*args, **kwargs):
        raise OSError(errno.ENOSPC, "No space left on device")

    c.tree.append_line = full
    c.open("modelzoo")
    try:
        result = asyncio.run(c.clone("modelzoo", f"{server.url}/owner/repo"))
    finally:
        c.close()
    assert (result.status, result.path) == ("cloned", "modelzoo/repos/owner/repo")
    assert result.sha == head(tmp_path / "data/modelzoo/repos/owner/repo")
    assert c.stats["ptm/clone/repos/cloned"] == 1
    again = cloner(tmp_path / "data")  # the next crawl finds it, and indexes it
    again.open("modelzoo")
    try:
        found = asyncio.run(again.clone("modelzoo", f"{server.url}/owner/repo", hub_sha=result.sha))
    finally:
        again.close()
    assert (found.status, found.path) == ("unchanged", result.path)
    assert '"path":"modelzoo/repos/owner/repo"' in (tmp_path / "data/repo-index.jsonl").read_text()


@pytest.mark.parametrize("lfs_server, reason", [
    ("lost the object", "LFS object not found (HTTP 404)"),
    ("asks for credentials", "authentication required (HTTP 401/403)"),
])
def test_an_lfs_failure_is_not_a_missing_repository(tmp_path, lfs_server, reason):
    # With PTM_CLONE_LFS, git-lfs's "[<oid>] Object does not exist: [404] …" and its "Git credentials
    # for <url> not found" (a 401 from the LFS server) made the clone of a repository that is there
    # "repository not found (HTTP 404)".
    host = GitHost(tmp_path / "git")
    host.add_repo("o/model", {"README.md": "x\n"}, lfs={"model.bin": b"weights\n" * 64})
    with Replica() as server:
        if lfs_server == "lost the object":
            host.lfs_objects.clear()
        else:
            server.route("POST", "/o/model.git/info/lfs/objects/batch", lambda r, m: Reply.text(
                "Unauthorized", 401, headers={"WWW-Authenticate": 'Basic realm="lfs"'}))
        host.mount(server)
        c = Cloner(DatasetTree(tmp_path / "data"), Git(dataclasses.replace(POLICY, lfs=True)), concurrency=1)
        result = clone_once(c, f"{server.url}/o/model")
    assert (result.status, result.path) == (f"failed: {reason}", None)


def test_ptm_clone_depth_does_not_cut_the_history_of_a_full_clone_it_updates(tmp_path):
    """PTM_CLONE_DEPTH is the depth of new clones: a crawl run with -s PTM_CLONE_DEPTH=1 over a data
    dir cloned in full fetched each update with --depth 1, which made the clone shallow at the new
    commit: its history was gone from git log (and no later full-depth crawl brought it back)."""
    host = GitHost(tmp_path / "git")
    host.add_repo("o/full", {"a": "0\n"})
    host.add_repo("o/shallow", {"a": "0\n"})
    for i in range(1, 4):
        host.commit("o/full", {"a": f"{i}\n"})
        host.commit("o/shallow", {"a": f"{i}\n"})
    with Replica() as server:
        host.mount(server)

        def crawl(repo, depth, sha=None):
            c = Cloner(DatasetTree(tmp_path / "data"), Git(dataclasses.replace(POLICY, depth=depth)), concurrency=1)
            c.open("modelzoo")
            try:
                return asyncio.run(c.clone("modelzoo", f"{server.url}/{repo}", hub_sha=sha))
            finally:
                c.close()

        assert crawl("o/full", 0).status == crawl("o/shallow", 1).status == "cloned"
        new = {repo: host.commit(repo, {"a": "new\n"}) for repo in ("o/full", "o/shallow")}
        assert [crawl(repo, 1, new[repo]).status for repo in new] == ["updated", "updated"]

    def commits(repo):
        return subprocess.run(["git", "rev-list", "--count", "HEAD"], cwd=tmp_path / "data/modelzoo/repos" / repo,
                              capture_output=True, text=True, check=True).stdout.strip()

    assert commits("o/full") == "5" and not (tmp_path / "data/modelzoo/repos/o/full/.git/shallow").exists()
    assert commits("o/shallow") == "1"  # a shallow clone stays as deep as PTM_CLONE_DEPTH says
    assert head(tmp_path / "data/modelzoo/repos/o/full") == new["o/full"]


def test_a_repository_emptied_since_its_clone_is_not_a_missing_branch(tmp_path, served):
    # Its update asks for the remote's HEAD ("couldn't find remote ref HEAD"): a model that names no
    # branch was recorded "branch not found".
    host, server = served
    url = f"{server.url}/owner/repo"

    def crawl(sha=None):
        c = cloner(tmp_path / "data")
        c.open("modelzoo")
        try:
            return asyncio.run(c.clone("modelzoo", url, hub_sha=sha))
        finally:
            c.close()

    first = crawl()
    bare = host.bare_path("owner/repo")
    subprocess.run(["git", "update-ref", "-d", "refs/heads/main"], env={"GIT_DIR": str(bare)}, check=True)
    again = crawl("f" * 40)
    assert (again.status, again.path, again.sha) == ("failed: no commit on the default branch (empty repository?)",
                                                     first.path, first.sha)


def test_a_folder_too_long_for_an_argument_keeps_the_clones_head(tmp_path, served):
    # A hub link's path over Linux's 128 KiB for one argument: git could not be started for it
    # (OSError: Argument list too long), which left the clone stage: the model was lost with a
    # traceback, in every crawl.
    host, server = served
    c = cloner(tmp_path / "data")
    c.open("modelzoo")
    try:
        result = asyncio.run(c.clone("modelzoo", f"{server.url}/owner/repo", subpath="models/" * 20_000))
    finally:
        c.close()
    assert (result.status, result.path) == ("cloned", "modelzoo/repos/owner/repo")
    assert result.sha == head(tmp_path / "data/modelzoo/repos/owner/repo")


@pytest.mark.parametrize(("stderr", "reason"), [
    # Two gits at once in one clone: the reason is the "fatal:" line, not the advice after it.
    (b"fatal: Unable to create '/d/.git/index.lock': File exists.\n\nAnother git process seems to be running "
     b"in this repository, e.g.\nan editor opened by 'git commit'. Please make sure all processes\nare "
     b"terminated then try again. If it still fails, a git process\nmay have crashed in this repository "
     b"earlier:\nremove the file manually to continue.",
     "fatal: Unable to create '/d/.git/index.lock': File exists."),
    (b"error: could not lock config file .git/config: File exists",
     "error: could not lock config file .git/config: File exists"),
    (b"warning: redirecting to http://x/\nfatal: bad object HEAD", "fatal: bad object HEAD"),
    (b"fatal: unable to access 'https://h/o/r/': The requested URL returned error: 418",  # 5xx has a reason
     "fatal: unable to access '<url>': The requested URL returned error: 418"),
    (b"something odd", "something odd"),
    (b"", "git exited with status 128"),
    # A connection dropped before any answer: a reason of the moment (tried again), not git's line.
    (b"fatal: unable to access 'https://h/o/r/': Empty reply from server", "connection broken during transfer"),
    (b"fatal: unable to access 'https://h/o/r/': Recv failure: Connection reset by peer",
     "connection broken during transfer"),
])
def test_a_git_failure_s_reason_is_gits_own_message_without_the_wrapper_around_it(stderr, reason):
    """CloneStatus ``failed: <reason>`` of a failure no pattern knows is git's message line: it was the
    last line of GitPython's quoting of stderr ("stderr: 'error: …'", "…continue.'"), which for a
    lock held by another git is advice ("remove the file manually to continue.'"), not the reason."""
    from git.exc import GitCommandError

    from ptmscrape.gitrepo import describe_failure

    assert describe_failure(GitCommandError(["git", "fetch"], 128, stderr, b"")) == reason


# -- transient failures are tried again within the crawl (PTM_CLONE_RETRIES) ---------------------
def flaky(server, repo: str, kind: str, failing: int | None) -> FaultInjector:
    """The first ``failing`` requests for ``repo``'s refs (every one: None) answered with ``kind``."""
    return inject(server, FaultPlan(rates={kind: 1.0}, paths=rf"^/{re.escape(repo)}(\.git)?/info/refs",
                                    healthy_after=None if failing is None else failing + 1))


def retrying(data_dir, retries: int, delay: float = 0.0, stopping=lambda: False) -> Cloner:
    return Cloner(DatasetTree(data_dir), Git(POLICY), concurrency=2, retries=retries, retry_delay=delay,
                  stopping=stopping)


def clone_once(c: Cloner, url: str, **kwargs):
    """``c``'s clone of ``url`` for Hugging Face, its pool opened for it and closed after."""
    c.open("huggingface")
    try:
        return asyncio.run(c.clone("huggingface", url, **kwargs))
    finally:
        c.close()


def test_a_clone_the_server_answered_5xx_once_is_tried_again_and_lands_clean(tmp_path, served, caplog):
    """A 503 from a hub's git server failed the model's clone for the whole crawl (a week, for a
    big one): only the next crawl tried again. Tried again now, in this crawl, from a clean start."""
    host, server = served
    faults = flaky(server, "owner/repo", "5xx", 1)
    c = retrying(tmp_path / "data", retries=2)
    c.open("huggingface")

    async def two_models():  # two models of one repository share its clone, and its retry
        return await asyncio.gather(c.clone("huggingface", f"{server.url}/owner/repo", label="huggingface:a/one"),
                                    c.clone("huggingface", f"{server.url}/owner/repo.git", label="huggingface:a/two"))

    try:
        with caplog.at_level(logging.DEBUG, logger="ptmscrape.cloning"):
            results = asyncio.run(two_models())
    finally:
        c.close()
    assert [k for *_, k in faults.injected] == ["5xx"]
    assert {(r.status, r.path) for r in results} == {("cloned", "huggingface/repos/owner/repo")}
    assert server.count("GET", "/info/refs") == 2
    assert (c.stats["ptm/clone/retried"], c.stats["ptm/clone/retried/server error"]) == (1, 1)
    assert c.stats["ptm/clone/repos/cloned"] == 1 and "ptm/clone/repos/failed" not in c.stats
    [said] = [r for r in caplog.records if "again" in r.getMessage()]
    assert said.levelno == logging.INFO
    assert said.getMessage().startswith(
        f"Clone of huggingface:a/one ({server.url}/owner/repo) failed: server error (HTTP 5xx); trying again")
    assert list((tmp_path / "data/huggingface/repos/.incoming").iterdir()) == []  # no half clone left


@pytest.mark.parametrize("kind, failing, retries, status, tries", [
    ("429", 1, 2, "cloned", 2),
    ("reset", 1, 2, "cloned", 2),  # the connection dropped before any answer
    ("5xx", 2, 2, "cloned", 3),
    ("5xx", None, 2, "failed: server error (HTTP 5xx)", 3),  # for good: the 5xx reason, after 1 + 2 tries
    ("5xx", None, 0, "failed: server error (HTTP 5xx)", 1),  # PTM_CLONE_RETRIES=0: no retry
])
def test_transient_failures_are_tried_again_up_to_ptm_clone_retries(tmp_path, served, kind, failing, retries,
                                                                    status, tries):
    host, server = served
    flaky(server, "owner/repo", kind, failing)
    c = retrying(tmp_path / "data", retries=retries)
    result = clone_once(c, f"{server.url}/owner/repo")
    assert result.status == status
    assert server.count("GET", "/info/refs") == tries
    assert c.stats.get("ptm/clone/retried", 0) == tries - 1
    assert list((tmp_path / "data/huggingface/repos/.incoming").iterdir()) == []


def test_failures_that_are_facts_about_the_repository_are_not_tried_again(tmp_path, served):
    host, server = served
    host.add_repo("o/gated", {"README.md": "x\n"})
    host.denied["o/gated"] = 401
    c = retrying(tmp_path / "data", retries=3)
    c.open("huggingface")
    requests = {
        (f"{server.url}/o/gone", None): "failed: repository not found (HTTP 404)",
        (f"{server.url}/o/gated", None): "failed: authentication required (HTTP 401/403)",
        (f"{server.url}/owner/repo", "no-such-branch"): "failed: branch not found",
        ("ext::sh -c touch% /tmp/x", None): "failed: remote-helper URL not allowed: 'ext::sh -c touch% /tmp/x'",
    }

    async def each():
        return [(await c.clone("huggingface", url, branch=branch)).status for url, branch in requests]

    try:
        statuses = asyncio.run(each())
    finally:
        c.close()
    assert statuses == list(requests.values())
    assert server.count("GET", "/info/refs") == 3  # one try each
    assert "ptm/clone/retried" not in c.stats


def test_an_update_the_server_answered_5xx_once_is_tried_again_from_the_clone_as_it_was(tmp_path, served):
    host, server = served
    c = retrying(tmp_path / "data", retries=1)
    first = clone_once(c, f"{server.url}/owner/repo")
    new = host.commit("owner/repo", {"README.md": "y\n"})
    flaky(server, "owner/repo", "5xx", 1)
    c = retrying(tmp_path / "data", retries=1)
    again = clone_once(c, f"{server.url}/owner/repo", hub_sha=new)
    assert (first.status, again.status, again.sha, again.path) == ("cloned", "updated", new, first.path)
    assert c.stats["ptm/clone/retried"] == 1
    clone = tmp_path / "data" / first.path
    assert not list((clone / ".git").glob("*.lock")) and not list((clone / ".git/objects/pack").glob("tmp_*"))


def test_a_retry_waiting_when_the_crawl_closes_is_not_started(tmp_path, served):
    """A pause (Ctrl-C once) must not wait out a retry's delay: the model is deferred, as a git job
    not started is (stored for the next crawl, or its page fetched again by a resumed JOBDIR job)."""
    host, server = served
    closing = threading.Event()
    faults = flaky(server, "owner/repo", "5xx", None)

    def stop_after_the_first_try(req, call_next):
        reply = call_next()
        closing.set()  # the crawl closes while the retry waits its hour
        return reply

    server.interceptors.append(stop_after_the_first_try)  # outermost: sees the injected 5xx
    c = retrying(tmp_path / "data", retries=3, delay=3600, stopping=closing.is_set)
    c.open("huggingface")
    try:  # wait_for: a guard against a hung test, not a timing assertion
        result = asyncio.run(asyncio.wait_for(c.clone("huggingface", f"{server.url}/owner/repo"), 120))
    finally:
        c.close()
    assert (result.status, result.path) == ("deferred", None)
    assert len(faults.injected) == 1 and "ptm/clone/retried" not in c.stats
    assert "ptm/clone/repos/deferred" not in c.stats and "ptm/clone/repos/failed" not in c.stats


def test_the_first_retries_of_each_reason_are_logged_at_info_the_rest_at_debug(tmp_path, caplog):
    # A rate-limited git host: a line a model would bury the log (the counters have them all).
    c = retrying(tmp_path / "data", retries=2)
    with caplog.at_level(logging.DEBUG, logger="ptmscrape.cloning"):
        for i in range(NAMED_RETRIES + 5):
            c._say_retry(f"huggingface:o/m{i}", f"https://h/o/m{i}", "rate limited (HTTP 429)", 30, 1)
        c._say_retry("huggingface:o/x", "https://h/o/x", "server error (HTTP 5xx)", 30, 1)
    info = [r.getMessage() for r in caplog.records if r.levelno == logging.INFO]
    assert len([m for m in info if m.startswith("Clone of ") and "429" in m]) == NAMED_RETRIES
    assert [m for m in info if m.startswith("More clones")] == [
        "More clones failing with rate limited (HTTP 429) will be tried again: logged at DEBUG from here on "
        "(ptm/clone/retried/<reason> counts them)"]
    assert info[-1].startswith("Clone of huggingface:o/x (https://h/o/x) failed: server error (HTTP 5xx)")
    assert len([r for r in caplog.records if r.levelno == logging.DEBUG]) == 5


def test_a_retry_past_the_thousandth_waits_the_longest_delay_and_does_not_crash(tmp_path, monkeypatch):
    """The delay was ``retry_delay * 2 ** (retry - 1)``: past the 1024th retry the int no longer
    converts to a float, and the OverflowError reached every model sharing the clone (an item error
    each: models lost, the crawl failed) instead of its failure. A large PTM_CLONE_RETRIES waits
    at most RETRY_DELAY_MAX between tries however many came before."""
    c = retrying(tmp_path / "data", retries=1030)
    tries = []

    def fails_of_the_moment(url, key, hub, planned, branch, hub_sha):
        tries.append(1)
        return CloneResult(None, hub_sha, "failed: server error (HTTP 5xx)")

    monkeypatch.setattr(c, "_clone_or_update", fails_of_the_moment)
    result = clone_once(c, "https://example.org/owner/repo")
    assert (result.status, len(tries), c.stats["ptm/clone/retried"]) == ("failed: server error (HTTP 5xx)", 1031, 1030)


@pytest.mark.parametrize("closing", [False, True])
def test_a_git_job_waiting_for_its_retry_is_counted_until_it_is_tried_or_deferred(tmp_path, monkeypatch, closing):
    """A job waiting (up to 600 s) to be tried again was neither waiting nor running: a crawl whose
    clones all waited on a rate-limited git host showed ``0 waiting, 0 running … (0 done/min)``, as a
    hung one would. ``ptm/clone/retrying`` counts them (the progress line names them), back to 0
    once they are tried again, or deferred by a pause."""
    c = retrying(tmp_path / "data", retries=1)
    statuses = iter(["failed: rate limited (HTTP 429)", "cloned"])
    seen = []

    def clone_or_update(url, key, hub, planned, branch, hub_sha):
        return CloneResult(None, hub_sha, next(statuses))

    async def wait(seconds):
        seen.append((c.stats.get("ptm/clone/retrying"), c.stats.get("ptm/clone/waiting")))
        return not closing

    monkeypatch.setattr(c, "_clone_or_update", clone_or_update)
    monkeypatch.setattr(c, "_wait_unless_stopping", wait)
    result = clone_once(c, "https://example.org/owner/repo")
    assert result.status == ("deferred" if closing else "cloned")
    assert seen == [(1, 0)] and c.stats["ptm/clone/retrying"] == 0


@pytest.mark.parametrize("delay, said", [(30, "30 s"), (3000, "3000 s"), (86400, "86400 s"), (0.2, "0.2 s"),
                                         (0.15, "0.15 s")])
def test_a_retry_delay_is_said_in_plain_seconds(tmp_path, caplog, delay, said):
    # "%.3g" said a PTM_CLONE_RETRY_DELAY of 3000 s as "trying again in 3e+03 s".
    c = retrying(tmp_path / "data", retries=2)
    with caplog.at_level(logging.INFO, logger="ptmscrape.cloning"):
        c._say_retry("huggingface:o/m", "https://h/o/m", "rate limited (HTTP 429)", delay, 1)
    assert f"; trying again in {said} (retry 1 of 2, PTM_CLONE_RETRIES)" in caplog.records[0].getMessage()


def test_a_retry_the_crawls_close_comes_before_it_starts_is_not_counted_as_tried_again(tmp_path, monkeypatch):
    """``ptm/clone/retried`` counts retries started: a retry whose wait ended, but whose turn for a
    git thread came after the crawl began to close (a pause, behind a page's other clones), is
    deferred, never run; it was counted all the same."""
    calls = iter([False, False, True])  # the first try starts, its wait ends, the retry's turn: closing
    c = retrying(tmp_path / "data", retries=2, stopping=lambda: next(calls))
    tries = []

    def fails(url, key, hub, planned, branch, hub_sha):
        tries.append(url)
        return CloneResult(None, hub_sha, "failed: server error (HTTP 5xx)")

    monkeypatch.setattr(c, "_clone_or_update", fails)
    result = clone_once(c, "https://example.org/owner/repo")
    assert (result.status, len(tries)) == ("deferred", 1)
    assert "ptm/clone/retried" not in c.stats and "ptm/clone/retried/server error" not in c.stats
    assert (c.stats["ptm/clone/waiting"], c.stats["ptm/clone/running"], c.stats["ptm/clone/retrying"]) == (0, 0, 0)


def test_a_retry_line_shows_the_hubs_url_escaped_as_every_other_line_does(tmp_path, caplog):
    # A RepoURL is the hub's text: a right-to-left override (which check_url lets through) reached the
    # INFO line as it was, where the clone-failure WARNING escapes it (printable).
    c = retrying(tmp_path / "data", retries=2)
    url = "https://h/o/\u202egpj.m"
    with caplog.at_level(logging.INFO, logger="ptmscrape.cloning"):
        c._say_retry(None, url, "rate limited (HTTP 429)", 30, 1)  # no label: the URL names the model
    [said] = [r.getMessage() for r in caplog.records]
    shown = "https://h/o/\\u202egpj.m"
    assert "\u202e" not in said and said.startswith(f"Clone of {shown} ({shown}) failed")


# -- failures of this machine (they fail the crawl) and of the repository (they are data) --------
@pytest.mark.parametrize(("stderr", "local"), [
    (b"fatal: could not create work tree dir '/d/repos/.incoming/1-2-x.h': Read-only file system", True),
    (b"error: unable to write file objects/pack/tmp_pack_x: No space left on device\nfatal: index-pack failed", True),
    (b"fatal: unable to create temporary file: Disk quota exceeded", True),
    (b"error: unable to write sha1 file\nfatal: cannot store pack file: Input/output error", True),
    (b"fatal: could not create leading directories of '/d/x': Permission denied", True),
    (b"git: 'remote-https' is not a git command. See 'git --help'.\n"
     b"fatal: unable to find remote helper for 'https'", True),
    (b"git: 'lfs' is not a git command. See 'git --help'.", True),
    (b"remote: Repository not found.\nfatal: repository 'https://h/o/r/' not found", False),
    (b"fatal: unable to access 'https://h/o/r/': The requested URL returned error: 401", False),
    (b"fatal: Remote branch nope not found in upstream origin", False),
    # Words of the server's, or of a path the hub named, are not this machine's.
    (b"remote: Read-only file system\nfatal: the remote end hung up unexpectedly", False),
    (b"fatal: Unable to create '/d/Permission denied/.git/index.lock': File exists.", False),
    # A repository's file names too long for the file system: the repository's.
    (b"error: unable to create file a/b: File name too long\nfatal: unable to checkout working tree", False),
    # ... even where git names it unquoted, and the name is a local error's words.
    (b"error: unable to create file dir/Permission denied aaa: File name too long\n"
     b"fatal: unable to checkout working tree", False),
    # What an LFS server said, as git-lfs shows it (no "remote: "): its batch response, an object's
    # error, a download's error message (JSON "message"), a 5xx's.
    (b"batch response: Read-only file system\nFailed to fetch some objects from '<url>'", False),
    (b"batch response: Fatal error: No space left on device\nFailed to fetch some objects from '<url>'", False),
    (b"[54b74fa3b75131703c57f171843dc58b7ec633810c1d414697a7b314d5fc6d5d] Permission denied: [404] Permission "
     b"denied\nFailed to fetch some objects from '<url>'", False),
    (b"LFS: Permission denied\nFailed to fetch some objects from '<url>'", False),
    (b"Fatal error: Disk quota exceeded\nFailed to fetch some objects from '<url>'", False),
    # git-lfs's own words for this machine's file system (Go's, lower case) are.
    (b"[54b74fa3b75131703c57f171843dc58b7ec633810c1d414697a7b314d5fc6d5d] write /d/.git/lfs/tmp/x: no space "
     b"left on device\nFailed to fetch some objects from '<url>'", True),
    (b"Could not check out \"a.bin\": open /d/r/a.bin: read-only file system", True),
])
def test_a_git_failure_of_this_machine_is_told_from_one_of_the_repository(stderr, local):
    from git.exc import GitCommandError

    from ptmscrape.gitrepo import git_failure

    assert git_failure(GitCommandError(["git", "clone"], 128, stderr, b"")).local is local


def _lfs_says(words: str, status: int, where: str):
    """An LFS server whose answer carries ``words`` (JSON "message", or an object's error)."""
    def answer(req, m):
        if where == "object":
            objects = [{"oid": o["oid"], "size": o["size"], "error": {"code": 404, "message": words}}
                       for o in json.loads(req.body)["objects"]]
            return Reply.json({"transfer": "basic", "objects": objects},
                              headers={"Content-Type": "application/vnd.git-lfs+json"})
        return Reply(status, json.dumps({"message": words}).encode(), {"Content-Type": "application/vnd.git-lfs+json"})
    return answer


@pytest.mark.parametrize(("where", "status", "words"), [
    ("batch", 403, "Read-only file system"),
    ("batch", 500, "No space left on device"),
    ("object", 404, "Permission denied"),
    ("download", 403, "Permission denied"),
    ("download", 500, "Too many open files"),
])
def test_an_lfs_server_cannot_make_its_failure_look_like_this_machines(tmp_path, where, status, words):
    # git-lfs prints what an LFS server says ("batch response: <message>", "LFS: <message>", "[<oid>]
    # <message>: [404] <message>") with no "remote: " before it: a hostile hub's "Read-only file
    # system" marked the clone local, which fails the whole crawl (exit status 1).
    host = GitHost(tmp_path / "git")
    host.add_repo("o/model", {"README.md": "x\n"}, lfs={"model.bin": b"weights\n" * 64})
    with Replica() as server:
        if where == "download":
            server.route("GET", "/lfs-objects/(?P<oid>[0-9a-f]{64})", _lfs_says(words, status, where))
        else:
            server.route("POST", "/o/model.git/info/lfs/objects/batch", _lfs_says(words, status, where))
        host.mount(server)
        c = Cloner(DatasetTree(tmp_path / "data"), Git(dataclasses.replace(POLICY, lfs=True)), concurrency=1)
        result = clone_once(c, f"{server.url}/o/model")
    assert result.status.startswith("failed: ") and result.path is None
    assert result.local is False


def test_a_repositorys_file_named_like_a_local_error_does_not_make_its_failure_local(tmp_path):
    # git names a file it cannot create unquoted ("unable to create file <path>: File name too long"):
    # a file "Permission denied aaa…" (too long a name, the repository's doing) marked the clone local.
    host = GitHost(tmp_path / "git")
    host.add_repo("o/model", {"README.md": "x\n"})
    env = {**GIT_ENV, "GIT_DIR": str(host.bare_path("o/model"))}

    def plumbing(*args, stdin: bytes) -> str:
        return subprocess.run(["git", *args], input=stdin, env={**os.environ, **env}, capture_output=True,
                              check=True).stdout.decode().strip()

    blob = plumbing("hash-object", "-w", "--stdin", stdin=b"x\n")
    sub = plumbing("mktree", stdin=f"100644 blob {blob}\tPermission denied {'a' * 300}\n".encode())
    base = plumbing("ls-tree", "main", stdin=b"")
    tree = plumbing("mktree", stdin=f"{base}\n040000 tree {sub}\tdir\n".encode())
    sha = plumbing("commit-tree", tree, "-p", "main", "-m", "long name", stdin=b"")
    plumbing("update-ref", "refs/heads/main", sha, stdin=b"")
    with Replica() as server:
        host.mount(server)
        c = cloner(tmp_path / "data")
        c.open("modelzoo")
        try:
            result = asyncio.run(c.clone("modelzoo", f"{server.url}/o/model"))
        finally:
            c.close()
    assert result.status.startswith("failed: ") and "File name too long" in (result.detail or "")
    assert result.local is False


@pytest.mark.parametrize(("error", "local"), [
    (OSError(errno.EROFS, "Read-only file system"), True),
    (PermissionError(errno.EACCES, "Permission denied"), True),
    (OSError(errno.EIO, "Input/output error"), True),
    (OSError(errno.ENOSPC, "No space left on device"), True),
    (OSError(errno.ENAMETOOLONG, "File name too long"), False),
    (RepoError("repository not found (HTTP 404)"), False),
    (RuntimeError("a bug"), True),
])
def test_a_clone_that_failed_for_a_reason_of_this_machine_says_so(tmp_path, error, local):
    """The result of a clone the data dir's file system (or git, or a bug) failed is marked local, so
    the clone stage counts it (ptm/clone/failed_locally) and the crawl exits 1; its CloneStatus is
    what it was."""
    c = cloner(tmp_path / "data")

    def failing(*args, **kwargs):
        raise error

    c.git.clone = failing
    c.open("modelzoo")
    try:
        result = asyncio.run(c.clone("modelzoo", "https://git.example/owner/repo"))
    finally:
        c.close()
    assert result.status.startswith("failed: ") and result.path is None
    assert result.local is local
