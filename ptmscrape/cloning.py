"""The clone stage's work, without Scrapy: put repositories in the dataset tree, off the event loop.

:class:`Cloner` runs git in a pool of ``concurrency`` threads; a caller awaits :meth:`Cloner.clone`
on an asyncio loop (the crawl's), which goes on meanwhile. A clone already at the hub's commit (most
of a re-crawl) is recognised from a few small files of its ``.git`` (``gitrepo.head_and_origin``,
read by ``gitfiles``, no git process) without a trip through the pool. A repository is handled once
per run whatever number of models (or hubs) point at it: concurrent requests for one URL share one
future, finished results are remembered (bounded), and ``<data>/repo-index.jsonl`` remembers where
each URL was cloned, so another hub's crawl reuses that clone.

Where a clone goes: where the mapper says in ``RepoPath`` (passed here as ``named``): a repository
hosted by the hub itself is named by the model's id, the one repository every model of a hub
shares (tfhub, openvino, onnxmodelzoo) by its owner and name (``<hub>/repos/<owner>/<name>``
either way, whatever prefix a mirror's URL carries); any other repository by its URL's path below
the host (``<hub>/repos/group/sub/project``). Models on two branches of one repository (one
names ``RepoBranch``) get a clone each, at their own branch's commit (``clone_key``): the first to
come the folder, another branch ``…/project%40<branch>`` beside it. Two repositories
never share a folder, nor does one land inside another's: a folder claimed by a clone in flight,
holding a clone of another repository, holding other clones, or below a clone is passed over for
``<name>~<hash>`` (or, below a clone, ``<hub>/repos/<whole path>~<hash>`` in one folder).

Shared state and its locks (worker threads and the loop thread both touch it): ``index_lock``
guards the repository index (and its file), ``claims_lock`` the folders claimed by clones in
flight, ``counters_lock`` the git job counters and the byte count. No code holds two of them.

Counters go to ``stats`` (anything with ``inc_value(key, count=1)`` and ``set_value(key, value)``,
e.g. Scrapy's stats collector; :class:`Counters` by default): ``ptm/clone/queued``,
``ptm/clone/shared``, ``ptm/clone/repos/<status>`` (once per repository), ``ptm/clone/waiting``
and ``ptm/clone/running`` (git jobs waiting for a thread, running now), ``ptm/clone/bytes`` (the
object store of each new clone, the growth of each updated one) and ``ptm/clone/retried[/<reason>]``
(git jobs tried again after a failure of the moment: ``retries``, ``retry_delay``) and
``ptm/clone/retrying`` (those waiting now to be tried again).
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import errno
import functools
import logging
import os
import shutil
import threading
import time
from collections import OrderedDict
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ptmscrape.dataset import paths
from ptmscrape.dataset.jsonl import read_jsonl
from ptmscrape.dataset.paths import UnsafePath
from ptmscrape.dataset.tree import DatasetTree
from ptmscrape.gitrepo import (
    GB,
    TRANSIENT,
    DirectoryTaken,
    Git,
    RepoError,
    check_branch,
    check_url,
    clean_scratch,
    head_and_origin,
    normalize_url,
    path_segments,
    update_unfinished,
)
from ptmscrape.items import printable
from ptmscrape.stats import (
    CLONE_BYTES,
    CLONE_QUEUED,
    CLONE_REPOS_BY_STATUS,
    CLONE_RETRIED,
    CLONE_RETRIED_BY_REASON,
    CLONE_RETRYING,
    CLONE_RUNNING,
    CLONE_SHARED,
    CLONE_WAITING,
)

logger = logging.getLogger(__name__)

FINISHED_CACHE_SIZE = 10_000
# CloneStatus of a model whose clone (or update) was not started for lack of disk space: the same
# words every time (no numbers), so ptm/clone/failed/<reason> is one counter.
NO_DISK_SPACE = "not enough free disk space (PTM_CLONE_MIN_FREE_GB)"
# The errors of the data dir's file system that are this machine's, not a repository's: read-only,
# not ours to write, failing, full (of blocks or inodes), over quota, too many files open. Not a name
# too long, a file missing or in the way (a repository's names, another process's folder).
LOCAL_ERRNOS = frozenset({errno.EROFS, errno.EACCES, errno.EPERM, errno.EIO, errno.ENOSPC, errno.EDQUOT,
                          errno.EMFILE, errno.ENFILE})
# The status of a git job the crawl's close came before (Cloner.stopping): never a record's.
DEFERRED = "deferred"
# A transient failure's retry waits ``retry_delay`` seconds, doubled at each further one, up to this
# (or ``retry_delay`` itself, if longer).
RETRY_DELAY_MAX = 600.0
# How often a retry's wait looks whether the crawl is closing (a pause must not wait it out).
RETRY_POLL = 0.5
# Retries logged at INFO for each reason; the rest at DEBUG (a rate-limited host: a line a model).
NAMED_RETRIES = 10


class NotEnoughSpace(RepoError):
    """Less free disk space than the clone stage keeps free: the git job is not started, or is
    stopped."""


class FreeSpace:
    """Whether the file system a clone goes to keeps ``minimum`` bytes free (``minimum`` 0: always).

    Asked before every git job, about one folder per hub (its scratch folder: every clone of the
    hub lands from it by a rename, so it is on their file system); the reading (``usage``,
    :func:`shutil.disk_usage` by default, one ``statvfs``) is kept ``ttl`` seconds, so it costs
    nothing per model. The first "too little" is logged as one ERROR (how much is free, the
    threshold, what to do), not once per model; a reading above the threshold again is logged at
    INFO. A file system that reports no size at all (``total`` 0: some FUSE and network mounts)
    cannot be guarded: one WARNING says so and clones start. Thread-safe (the git threads ask). The
    watcher of each git job in flight asks too, every second (:meth:`watch`): the same reading."""

    def __init__(self, minimum: int, *, ttl: float = 5.0,
                 usage: Callable[[str], Any] = shutil.disk_usage, clock: Callable[[], float] = time.monotonic):
        self.minimum = max(0, int(minimum))
        self.ttl = ttl
        self.usage = usage
        self.clock = clock
        self.lock = threading.Lock()
        self.readings: dict[str, tuple[float, int | None]] = {}  # folder -> (when, free bytes or None: unknown)
        self.low = False
        self.unknown_said = False

    def check(self, folder: Path) -> None:
        """Raise :class:`NotEnoughSpace` if the file system of ``folder`` (or of its nearest
        existing parent: a first clone's folder may not exist yet) has less than ``minimum`` free."""
        if not self.minimum:
            return
        free = self.free(folder)
        if free is None:
            with self.lock:
                said, self.unknown_said = self.unknown_said, True
            if not said:
                logger.warning("The file system of %s reports no size (statvfs: 0 blocks): "
                               "PTM_CLONE_MIN_FREE_GB cannot be checked there; clones start whatever it holds.",
                               folder)
            return
        low = free < self.minimum  # this reading's answer, whatever other threads read meanwhile
        with self.lock:
            was_low, self.low = self.low, low
        if low and not was_low:
            logger.error(
                "Not starting clones or updates, stopping those running: %.1f GB free on the file system "
                "of %s, less than "
                "PTM_CLONE_MIN_FREE_GB=%.10g. The models are stored with CloneStatus 'failed: %s' and the "
                "metadata crawl goes on. Free disk space (clones start again once there is) or lower "
                "PTM_CLONE_MIN_FREE_GB (0 = off), then crawl again: a new crawl clones those models.",
                free / GB, folder, self.minimum / GB, NO_DISK_SPACE)
        elif was_low and not low:
            logger.info("%.1f GB free on the file system of %s again (PTM_CLONE_MIN_FREE_GB=%.10g): "
                        "clones and updates go on", free / GB, folder, self.minimum / GB)
        if low:
            raise NotEnoughSpace(NO_DISK_SPACE)

    def watch(self, folder: Path) -> Callable[[], None] | None:
        """:meth:`check` of ``folder``, for the watcher of a git job in flight (``gitrepo``'s
        ``guard``); None when off. Called every second by each: the reading kept ``ttl`` seconds is
        one ``statvfs`` for them all."""
        return functools.partial(self.check, folder) if self.minimum else None

    def free(self, folder: Path) -> int | None:
        """Free bytes on the file system of ``folder``; None if it reports no size."""
        key = os.fspath(folder)
        now = self.clock()
        with self.lock:
            cached = self.readings.get(key)
        if cached is not None and now - cached[0] < self.ttl:
            return cached[1]
        existing = folder
        while not existing.exists() and existing != existing.parent:
            existing = existing.parent
        usage = self.usage(os.fspath(existing))
        free = int(usage.free) if usage.total else None
        with self.lock:
            self.readings[key] = (now, free)
        return free


@dataclass(frozen=True)
class CloneResult:
    path: str | None  # relative to the data dir
    sha: str | None
    status: str  # cloned / updated / unchanged / failed: <reason>
    detail: str | None = None  # a failure's: what git said (RepoError.detail), for the log
    # A failure of this machine, not of the repository (RepoError.local, a file system error of the
    # data dir, an internal error): the clone stage counts it in ptm/clone/failed_locally, which
    # fails the crawl. Lack of disk space (NO_DISK_SPACE) has a counter of its own.
    local: bool = False


class Counters(dict):
    """The smallest stats collector :class:`Cloner` needs (a dict of counters)."""

    def inc_value(self, key: str, count: int = 1, start: int = 0) -> None:
        self[key] = self.get(key, start) + count

    def set_value(self, key: str, value: Any) -> None:
        self[key] = value


class Cloner:
    def __init__(self, tree: DatasetTree, git: Git, *, concurrency: int, stats=None,
                 free_space: FreeSpace | None = None, stopping: Callable[[], bool] = lambda: False,
                 retries: int = 0, retry_delay: float = 0.0):
        self.tree = tree
        self.git = git
        # A git job that failed for a reason of the moment (gitrepo.TRANSIENT: a 429, a 5xx, a
        # connection dropped or stalled) is tried again up to ``retries`` times, after ``retry_delay``
        # seconds (doubled each time, up to RETRY_DELAY_MAX), waited on the loop, not in a git thread.
        self.retries = max(0, int(retries))
        self.retry_delay = max(0.0, float(retry_delay))
        self.retries_said: dict[str, int] = {}  # reason -> retries logged (loop thread only)
        self.retrying = 0  # git jobs waiting to be tried again (ptm/clone/retrying; loop thread only)
        # True once the crawl is closing (a pause): git jobs not started by then are not started
        # (DEFERRED), since Scrapy's graceful stop waits for every model of the pages it has fetched,
        # a thousand clones on one Hugging Face page. Asked from the worker threads.
        self.stopping = stopping
        # No git job starts while the data dir's file system has less free than this keeps.
        self.free_space = free_space if free_space is not None else FreeSpace(0)
        self.concurrency = max(1, concurrency)
        self.stats = stats if stats is not None else Counters()
        self._count = self.stats.inc_value  # bound once (Scrapy's own STATS_CLASS wraps each read)
        self.executor: ThreadPoolExecutor | None = None
        # URL -> result: in-flight futures are shared; finished results are remembered (LRU) so a
        # repository used by many models is fetched once per run, in bounded memory. Loop thread only.
        self.in_flight: dict[str, asyncio.Future[CloneResult]] = {}
        self.finished: OrderedDict[str, CloneResult] = OrderedDict()
        # URL key -> folder of its clone (repo-index.jsonl).
        self.index: dict[str, str] = {}
        self.index_lock = threading.Lock()
        # Folders of the clones in flight (relative -> URL key), and every folder above them: a
        # clone that has not landed yet is invisible on disk, so these keep two workers apart.
        self.claims: dict[str, str] = {}
        self.claimed_above: dict[str, int] = {}
        # Folder -> the key of the clone it holds, from the index: one branch's clone of a
        # repository is not another branch's to update. Index lines written before clones were
        # keyed by branch (no "branch" field) are kept by URL in ``unbranched``; the first key of
        # that URL to come takes such a folder over.
        self.owners: dict[str, str] = {}
        self.unbranched: dict[str, str] = {}
        self.claims_lock = threading.Lock()
        # Git jobs submitted, not yet started (ptm/clone/waiting), and running (ptm/clone/running).
        self.waiting = 0
        self.running = 0
        self.counters_lock = threading.Lock()

    # -- lifecycle -----------------------------------------------------------------------
    def open(self, hub: str, auth_header: tuple[str, str] | None = None) -> None:
        """Start the pool, read the repository index and clear ``hub``'s leftovers of a killed run.
        ``auth_header`` (``(<url prefix>, <header>)``) is given to git for that prefix only."""
        self.executor = ThreadPoolExecutor(self.concurrency, thread_name_prefix="ptm-clone")
        if auth_header:  # gated repositories the token may read clone too; other hosts never see it
            self.git = Git(dataclasses.replace(self.git.policy, auth_headers=(auth_header,)))
        for entry in read_jsonl(self.tree.path(paths.REPO_INDEX_FILE)):
            url, path, branch = entry.get("url"), entry.get("path"), entry.get("branch")
            if not (isinstance(url, str) and isinstance(path, str) and (branch is None or isinstance(branch, str))):
                continue
            if "branch" in entry:
                key = clone_key(url, branch)
                self.index[key] = path
                self.owners[path] = key
            else:
                self.unbranched[url] = path
        removed = clean_scratch(self.tree.scratch_dir(hub))
        if removed:
            logger.info("Removed %d unfinished clone(s) left by a killed crawl", removed)

    def close(self) -> None:
        if self.executor:
            self.executor.shutdown(wait=True, cancel_futures=True)

    # -- the loop thread -----------------------------------------------------------------
    async def clone(self, hub: str, url: str, *, named: object = None, branch: str | None = None,
                    hub_sha: str | None = None, subpath: str | None = None, label: str | None = None) -> CloneResult:
        """Clone ``url`` for ``hub`` (or update, or recognise as unchanged at ``hub_sha``); with
        ``subpath``, the SHA is the last commit touching it. Never raises for a bad URL or a git
        failure: the result's status is ``failed: <reason>``. ``label`` names the model in the log."""
        try:
            check_url(url, self.git.policy)
            branch = check_branch(branch)
            key = clone_key(normalize_url(url), branch)
            planned = self._planned_dir(hub, url, named)
        except (RepoError, UnsafePath) as exc:
            return CloneResult(None, hub_sha, f"failed: {exc}")
        result = self.finished.get(key)
        if result is not None:
            self.finished.move_to_end(key)
            self.stats.inc_value(CLONE_SHARED)
        else:
            result = await self._materialize_once(hub, url, key, planned, branch, hub_sha, label)
        if subpath and result.path:
            assert self.executor is not None, "Cloner.open() starts the pool"
            sha = await asyncio.wrap_future(self.executor.submit(self._subpath_sha, result.path, subpath))
            result = dataclasses.replace(result, sha=sha or result.sha)
        return result

    def _planned_dir(self, hub: str, url: str, named: object) -> str:
        """The mapper's folder (``RepoPath``: a hub-hosted repository's from the model's id, a
        shared one's from its owner and name), else the URL's path below the host."""
        if isinstance(named, str) and named.startswith(f"{paths.segment(hub)}/repos/"):
            self.tree.path(named)  # inside the data dir, or UnsafePath
            return named
        return paths.repo_dir_at(hub, path_segments(url))

    async def _materialize_once(self, hub, url, key, planned, branch, hub_sha, label=None) -> CloneResult:
        future = self.in_flight.get(key)
        if future is not None:
            self.stats.inc_value(CLONE_SHARED)
            return await asyncio.shield(future)
        self.stats.inc_value(CLONE_QUEUED)
        # The usual case of a re-crawl, a clone already at the hub's commit, is told from a few
        # small files (no git process): cheaper here than a trip through the thread pool, whose
        # GIL hand-offs with the event loop cost more than the check itself.
        result = self._unchanged(key, planned, hub_sha) if hub_sha else None
        if result is None:
            # One future for the job and its retries: the models sharing it wait for the last try.
            future = asyncio.ensure_future(self._git_job(url, key, hub, planned, branch, hub_sha, label))
            self.in_flight[key] = future
            try:
                result = await asyncio.shield(future)
            finally:
                del self.in_flight[key]
        if result.status == DEFERRED:  # not started: nothing to remember or count per repository
            return result
        # Per repository (the pipeline counts models: ten models sharing a clone are ten).
        self._count(f"{CLONE_REPOS_BY_STATUS}{result.status.split(':', 1)[0]}")
        self.finished[key] = result
        if len(self.finished) > FINISHED_CACHE_SIZE:
            self.finished.popitem(last=False)
        return result

    async def _git_job(self, url, key, hub, planned, branch, hub_sha, label) -> CloneResult:
        """The git job of ``key`` in the pool, tried again after a transient failure (up to
        ``retries`` times): its wait is on the loop (no git thread held), and ends within
        ``RETRY_POLL`` once the crawl closes: the retry is not started then (DEFERRED), as a job
        whose turn comes then is not. A failed try leaves nothing to clean: a new clone's scratch
        folder is removed, an update's clone left as it was (``Git.clone``, ``Git.update``)."""
        done = 0
        retry_of = None  # the reason of the failure a retry follows (counted once the retry starts)
        while True:
            assert self.executor is not None, "Cloner.open() starts the pool"
            with self.counters_lock:
                self.waiting += 1
                self.stats.set_value(CLONE_WAITING, self.waiting)
            result = await asyncio.wrap_future(self.executor.submit(
                self._materialize, url, key, hub, planned, branch, hub_sha, retry_of,
            ))
            reason = result.status.removeprefix("failed: ")
            if reason not in TRANSIENT or done >= self.retries:
                return result
            done += 1
            # Doubled from retry_delay, up to RETRY_DELAY_MAX (or retry_delay, if longer). The
            # exponent is capped: 2 ** 1024 is no float (an OverflowError past the 1024th retry).
            delay = min(self.retry_delay * 2 ** min(done - 1, 1000), max(RETRY_DELAY_MAX, self.retry_delay))
            self._say_retry(label, url, reason, delay, done)
            # Neither waiting for a thread nor running: counted apart, else a crawl whose clones all
            # wait on a rate-limited host looks hung (0 waiting, 0 running).
            self.retrying += 1
            self.stats.set_value(CLONE_RETRYING, self.retrying)
            try:
                tried = await self._wait_unless_stopping(delay)
            finally:
                self.retrying -= 1
                self.stats.set_value(CLONE_RETRYING, self.retrying)
            if not tried:
                return CloneResult(None, hub_sha, DEFERRED)
            retry_of = reason

    def _say_retry(self, label: str | None, url: str, reason: str, delay: float, done: int) -> None:
        """``label`` (the pipeline's, printable already) names the model; without one, the URL.
        The URL is the hub's text: escaped (printable), as every line that shows it."""
        shown = printable(url)
        said = self.retries_said[reason] = self.retries_said.get(reason, 0) + 1
        level = logging.INFO if said <= NAMED_RETRIES else logging.DEBUG
        # Whole seconds from 10 on ("%.3g" said 3000 s as "3e+03 s"), else up to 3 digits (0.15 s).
        seconds = f"{delay:.0f}" if delay >= 10 else f"{delay:.3g}"
        logger.log(level, "Clone of %s (%s) failed: %s; trying again in %s s (retry %d of %d, PTM_CLONE_RETRIES)",
                   label or shown, shown, reason, seconds, done, self.retries)
        if said == NAMED_RETRIES:
            logger.info("More clones failing with %s will be tried again: logged at DEBUG from here on "
                        "(ptm/clone/retried/<reason> counts them)", reason)

    async def _wait_unless_stopping(self, seconds: float) -> bool:
        """Wait ``seconds`` without holding the loop; False (at once, or within ``RETRY_POLL``) if
        the crawl is closing."""
        end = time.monotonic() + seconds
        while not self.stopping():
            left = end - time.monotonic()
            if left <= 0:
                return True
            await asyncio.sleep(min(left, RETRY_POLL))
        return False

    def _indexed(self, key: str) -> str | None:
        with self.index_lock:
            return self.index.get(key)

    def _unchanged(self, key, planned, hub_sha) -> CloneResult | None:
        """The result for a clone of ``key`` already at ``hub_sha``, or None (the worker decides)."""
        indexed = self._indexed(key)
        try:
            with self.claims_lock:
                relative = indexed or self._unbranched(key) or planned
                if relative in self.claims or self.owners.get(relative, key) != key:
                    return None
            path = self.tree.path(relative)
            head, origin = head_and_origin(path)
        except Exception:  # the worker meets it again and reports it
            return None
        if (head and head == hub_sha and (origin is None or _normalized(origin) == url_of(key))
                and indexed == relative and not update_unfinished(path)):
            return CloneResult(relative, head, "unchanged")
        return None

    # -- worker threads ------------------------------------------------------------------
    def _materialize(self, url, key, hub, planned, branch, hub_sha, retry_of: str | None = None) -> CloneResult:
        """The git job of ``key`` (a retry after a failure for ``retry_of``), unless the crawl closes
        before its turn (DEFERRED, not counted as a retry: ``ptm/clone/retried`` counts those started)."""
        with self.counters_lock:
            self.waiting -= 1
            self.stats.set_value(CLONE_WAITING, self.waiting)
        if self.stopping():
            return CloneResult(None, hub_sha, DEFERRED)
        with self.counters_lock:
            self.running += 1
            self.stats.set_value(CLONE_RUNNING, self.running)
            if retry_of is not None:  # ptm/clone/retried/server error, as ptm/clone/failed/<reason>
                self.stats.inc_value(CLONE_RETRIED)
                self.stats.inc_value(CLONE_RETRIED_BY_REASON + retry_of.split(" (")[0])
        try:
            try:
                return self._clone_or_update(url, key, hub, planned, branch, hub_sha)
            except DirectoryTaken:  # another process landed another repository there first
                return self._clone_or_update(url, key, hub, planned, branch, hub_sha)
        except (RepoError, UnsafePath) as exc:
            return CloneResult(None, hub_sha, f"failed: {exc}", getattr(exc, "detail", None),
                               getattr(exc, "local", False))
        except OSError as exc:
            return CloneResult(None, hub_sha, f"failed: filesystem error ({exc.strerror or exc})",
                               local=exc.errno in LOCAL_ERRNOS)
        except Exception as exc:
            logger.exception("Unexpected error cloning %s", url)
            return CloneResult(None, hub_sha, f"failed: internal error ({type(exc).__name__})", local=True)
        finally:
            with self.counters_lock:
                self.running -= 1
                self.stats.set_value(CLONE_RUNNING, self.running)

    def _claim(self, key: str, planned: str, branch: str | None) -> tuple[str, Path, str | None]:
        """Claim the folder of ``key``'s clone (its indexed one, else ``planned``, else
        ``planned@<branch>``, else ``planned~<hash>``): (relative, absolute, HEAD of the valid clone
        of ``key`` there or None)."""
        suffix = paths.stable_suffix(key)
        suffixed = f"{planned}%7E{suffix}"  # "~" as segment() spells it
        # Below another clone, a sibling would be too: then one folder right under repos/.
        top, below = planned.split("/", 2)[1], planned.split("/", 2)[2]
        flat = f"{planned.split('/', 1)[0]}/{top}/{paths.segment(below + '~' + suffix)}"
        # Only this key's worker changes its index entry, and only one worker per key runs.
        indexed = self._indexed(key)
        with self.claims_lock:
            indexed = indexed or self._unbranched(key)
            branched = paths.branch_dir(planned, branch) if branch else None
            for relative in dict.fromkeys(r for r in (indexed, planned, branched, suffixed, flat) if r):
                found = self._free_for(key, relative)
                if found is not None:
                    self.claims[relative] = key
                    for above in _folders_above(relative):
                        self.claimed_above[above] = self.claimed_above.get(above, 0) + 1
                    return relative, found[0], found[1]
        raise RepoError(f"no free folder for the clone (tried {planned!r}, {suffixed!r} and {flat!r})")

    def _free_for(self, key: str, relative: str) -> tuple[Path, str | None] | None:
        """(path, HEAD of ``key``'s clone there or None) if ``relative`` may hold ``key``'s clone.
        Called with ``claims_lock`` held."""
        if (self.claims.get(relative, key) != key or relative in self.claimed_above
                or self.owners.get(relative, key) != key):
            return None  # in flight for another clone, above one, or another branch's
        path = self.tree.path(relative)
        for above in _folders_above(relative):
            if above in self.claims or os.path.lexists(self.tree.path(above) / ".git"):
                return None  # a clone's working tree is not ours to fill
        if not path.exists():
            return path, None
        head, origin = head_and_origin(path)
        if head:
            return (path, head) if origin is None or _normalized(origin) == url_of(key) else None
        if path.is_dir() and not os.path.lexists(path / ".git") and any(path.iterdir()):
            return None  # a folder of other clones (e.g. group/ of group/sub/project)
        return path, None

    def _unbranched(self, key: str) -> str | None:
        """The folder an index line without a branch gave ``key``'s URL, if no key holds it yet.
        Called with ``claims_lock`` held."""
        relative = self.unbranched.get(url_of(key))
        return relative if relative is not None and self.owners.get(relative, key) == key else None

    def _own(self, key: str, relative: str, branch: str | None) -> None:
        """``relative`` holds ``key``'s clone: say so in the index (before its claim is released)."""
        with self.claims_lock:
            self.owners[relative] = key
        with self.index_lock:
            if self.index.get(key) != relative:
                self.tree.append_line(paths.REPO_INDEX_FILE, {"url": url_of(key), "branch": branch, "path": relative})
                self.index[key] = relative

    def _release(self, relative: str) -> None:
        with self.claims_lock:
            del self.claims[relative]
            for above in _folders_above(relative):
                left = self.claimed_above[above] - 1
                if left:
                    self.claimed_above[above] = left
                else:
                    del self.claimed_above[above]

    def _clone_or_update(self, url, key, hub, planned, branch, hub_sha) -> CloneResult:
        relative, path, head = self._claim(key, planned, branch)
        try:
            if head:
                # A clone that landed without its index line (a crawl killed between the two, a
                # full disk at the append) is indexed now: other hubs' crawls find it by it.
                with contextlib.suppress(OSError):  # else the next crawl's: never fail the model for it
                    self._own(key, relative, branch)
                if hub_sha and head == hub_sha and not update_unfinished(path):
                    return CloneResult(relative, head, "unchanged")
                scratch = self.tree.scratch_dir(hub)  # one folder a hub: one cached reading
                try:
                    self.free_space.check(scratch)
                    self.git.check_clone(path)  # before any git runs there (count-objects)
                    before = self._stored_bytes(path)
                    sha = self.git.update(url, path, branch, guard=self.free_space.watch(scratch))
                except RepoError as exc:
                    # A failed update leaves the clone as it was: the record still points at it, at
                    # the commit it is at (a failed new clone has no folder to point at).
                    return CloneResult(relative, head, f"failed: {exc}", exc.detail, exc.local)
                self._count_bytes(self._stored_bytes(path) - before)
                return CloneResult(relative, sha, "updated" if sha != head else "unchanged")
            scratch = self.tree.scratch_dir(hub)
            self.free_space.check(scratch)
            if path.exists():  # not a valid repository (nor a folder of other clones): replace it
                shutil.rmtree(path)
            sha = self.git.clone(url, path, scratch, branch, guard=self.free_space.watch(scratch))
            self._count_bytes(self._stored_bytes(path))
            # The clone has landed: a full disk at its index line fails no model (the next crawl
            # that meets the clone indexes it, above).
            with contextlib.suppress(OSError):
                self._own(key, relative, branch)
            return CloneResult(relative, sha, "cloned")
        finally:
            self._release(relative)

    def _stored_bytes(self, path: Path) -> int:
        try:
            return self.git.stored_bytes(path)
        except (RepoError, OSError, ValueError):  # a statistic: never fail the clone for it
            return 0

    def _count_bytes(self, size: int) -> None:
        with self.counters_lock:  # stats are a plain dict: increments from threads need the lock
            self.stats.inc_value(CLONE_BYTES, max(0, size))

    def _subpath_sha(self, relative: str, subpath: str) -> str | None:
        try:
            return self.git.last_commit_touching(self.tree.path(relative), subpath)
        except (RepoError, OSError):  # OSError: a folder too long for one argument (E2BIG)
            return None


def clone_key(url_key: str, branch: str | None) -> str:
    """What one clone is known by: the repository's normalized URL, and ``#<branch>`` where a model
    names a branch. Two models on two branches of one repository get two clones, each at its own
    branch's commit (a normalized URL has no fragment, so the two never meet)."""
    return f"{url_key}#{branch}" if branch else url_key


def url_of(key: str) -> str:
    return key.split("#", 1)[0]


def _folders_above(relative: str) -> list[str]:
    """The folders between ``<hub>/repos`` and ``relative`` (``h/repos/a/b/c`` -> ``h/repos/a``,
    ``h/repos/a/b``)."""
    parts = relative.split("/")
    return ["/".join(parts[:i]) for i in range(3, len(parts))]


def _normalized(url: str) -> str | None:
    try:
        return normalize_url(url)
    except Exception:
        return None
