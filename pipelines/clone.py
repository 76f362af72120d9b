"""Stage 4: put each model's git repository in the dataset tree, off the reactor thread.

Git runs in a pool of ``PTM_CLONE_CONCURRENCY`` threads; the item waits on an asyncio future, so
the crawl goes on. A clone already at the hub's commit (most of a re-crawl) is recognised from a
few small files of its ``.git`` (``gitrepo.head_and_origin``, read by ``gitfiles``, no git process) without a trip
through the pool. A repository is handled once per crawl whatever number of models (or hubs)
point at it: concurrent requests for one URL share one future, and ``<data>/repo-index.jsonl``
remembers where each URL was cloned, so another hub's crawl reuses that clone.

Where a clone goes: a repository hosted by the hub itself is named by the model's id, which the
mapper puts in ``RepoPath`` (``<hub>/repos/<owner>/<name>``); any other repository by its URL's
path below the host (``<hub>/repos/group/sub/project``). Two repositories never share a folder,
nor does one land inside another's: a folder claimed by a clone in flight, holding a clone of
another repository, holding other clones, or below a clone is passed over for ``<name>~<hash>``
(or, below a clone, ``<hub>/repos/<whole path>~<hash>`` in one folder).

The record gets ``RepoPath``, ``LatestGitCommitSHA`` (the clone's HEAD, or the last commit under
``RepoSubPath``) and ``CloneStatus``: cloned / updated / unchanged / skipped[: <reason>] / failed: <reason>.
``ptm/clone/<status>`` counts models, ``ptm/clone/repos/<status>`` repositories (one each,
however many models share it); ``ptm/clone/waiting`` and ``ptm/clone/running`` are git jobs
waiting for a thread and running now. ``ptm/clone/bytes`` adds up what landed: the object store of each new clone, the growth of each
updated one (the progress extension logs it).
"""

from __future__ import annotations

import asyncio
import dataclasses
import logging
import os
import shutil
import threading
from collections import OrderedDict
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import urlsplit

from ptmscrape import dataset
from ptmscrape.dataset import DatasetTree, UnsafePath, read_jsonl
from ptmscrape.gitrepo import (
    DirectoryTaken, Git, GitPolicy, RepoError, check_url, clean_scratch, head_and_origin, normalize_url,
    path_segments,
)
from ptmscrape.middlewares import hub_token
from ptmscrape.items import printable

logger = logging.getLogger(__name__)

FINISHED_CACHE_SIZE = 10_000
_STAT_KEYS = {kind: f"ptm/clone/{kind}" for kind in ("cloned", "updated", "unchanged", "skipped", "failed")}


@dataclass(frozen=True)
class CloneResult:
    path: str | None  # relative to the data dir
    sha: str | None
    status: str


class ClonePipeline:
    def __init__(self, crawler):
        settings = crawler.settings
        self.crawler = crawler
        self.stats = crawler.stats
        self._count = crawler.stats.inc_value  # bound once: Scrapy's stats wrap every attribute read
        self.enabled = settings.getbool("PTM_CLONE")
        self.tree = DatasetTree.from_crawler(crawler)
        self.git = Git(GitPolicy.from_settings(settings))
        self.concurrency = max(1, settings.getint("PTM_CLONE_CONCURRENCY"))
        self.executor: ThreadPoolExecutor | None = None
        # URL -> result: in-flight futures are shared; finished results are remembered (LRU) so a
        # repository used by many models is fetched once per crawl, in bounded memory.
        self.in_flight: dict[str, asyncio.Future[CloneResult]] = {}
        self.finished: OrderedDict[str, CloneResult] = OrderedDict()
        self.index: dict[str, str] = {}
        self.index_lock = threading.Lock()
        self.running = 0
        # Folders of the clones in flight (relative -> URL key), and every folder above them: a
        # clone that has not landed yet is invisible on disk, so these keep two workers apart.
        self.claims: dict[str, str] = {}
        self.claimed_above: dict[str, int] = {}
        self.waiting = 0  # git jobs submitted, not yet started (ptm/clone/waiting)

    @classmethod
    def from_crawler(cls, crawler):
        return cls(crawler)

    def open_spider(self):
        if not self.enabled:
            return
        self.executor = ThreadPoolExecutor(self.concurrency, thread_name_prefix="ptm-clone")
        auth = _hub_auth_header(self.crawler.spider, self.crawler.settings)
        if auth:  # gated repositories the token may read clone too; other hosts never see it
            self.git = Git(dataclasses.replace(self.git.policy, auth_headers=(auth,)))
        for entry in read_jsonl(self.tree.path(dataset.REPO_INDEX_FILE)):
            if isinstance(entry.get("url"), str) and isinstance(entry.get("path"), str):
                self.index[entry["url"]] = entry["path"]
        removed = clean_scratch(self.tree.scratch_dir(self.crawler.spider.name))
        if removed:
            logger.info("Removed %d unfinished clone(s) left by a killed crawl", removed)

    def close_spider(self):
        if self.executor:
            self.executor.shutdown(wait=True, cancel_futures=True)

    async def process_item(self, record):
        # A mapper may say why a model has nothing to clone ("skipped: the hub has no git
        # repository"); that reason is kept whether or not cloning is on.
        given = record.get("CloneStatus")
        skipped = given if isinstance(given, str) and given.startswith("skipped: ") else "skipped"
        if not self.enabled:
            return self._finish(record, CloneResult(None, record.get("LatestGitCommitSHA"), skipped))
        url = record.get("RepoURL")
        if not url:
            self.stats.inc_value("ptm/clone/no_repo_url")
            return self._finish(record, CloneResult(None, record.get("LatestGitCommitSHA"), skipped))
        hub = record["ModelHub"]["ModelHubName"]
        try:
            check_url(url, self.git.policy)
            key = normalize_url(url)
            planned = self._planned_dir(hub, url, record.get("RepoPath"))
        except (RepoError, UnsafePath) as exc:
            return self._finish(record, CloneResult(None, record.get("LatestGitCommitSHA"), f"failed: {exc}"))
        result = self.finished.get(key)
        if result is not None:
            self.finished.move_to_end(key)
            self.stats.inc_value("ptm/clone/shared")
        else:
            result = await self._materialize_once(record, url, key, planned)
        subpath = record.get("RepoSubPath")
        if subpath and result.path:
            sha = await asyncio.wrap_future(self.executor.submit(self._subpath_sha, result.path, subpath))
            result = CloneResult(result.path, sha or result.sha, result.status)
        return self._finish(record, result)

    def _planned_dir(self, hub: str, url: str, named: object) -> str:
        """The mapper's folder for a hub-hosted repository (from the model's id), else the URL's
        path below the host."""
        if isinstance(named, str) and named.startswith(f"{dataset.segment(hub)}/repos/"):
            self.tree.path(named)  # inside the data dir, or UnsafePath
            return named
        return dataset.repo_dir_at(hub, path_segments(url))

    async def _materialize_once(self, record, url, key, planned) -> CloneResult:
        future = self.in_flight.get(key)
        if future is not None:
            self.stats.inc_value("ptm/clone/shared")
            return await asyncio.shield(future)
        self.stats.inc_value("ptm/clone/queued")
        hub, hub_sha = record["ModelHub"]["ModelHubName"], record.get("LatestGitCommitSHA")
        # The usual case of a re-crawl, a clone already at the hub's commit, is told from a few
        # small files (no git process): cheaper here than a trip through the thread pool, whose
        # GIL hand-offs with the reactor cost more than the check itself.
        result = self._unchanged(key, planned, hub_sha) if hub_sha else None
        if result is None:
            with self.index_lock:
                self.waiting += 1
                self.stats.set_value("ptm/clone/waiting", self.waiting)
            future = asyncio.wrap_future(self.executor.submit(
                self._materialize, url, key, hub, planned, record.get("RepoBranch"), hub_sha,
            ))
            self.in_flight[key] = future
            try:
                result = await asyncio.shield(future)
            finally:
                del self.in_flight[key]
        # Per repository (ptm/clone/<status> counts models: ten models sharing a clone are ten).
        self._count(f"ptm/clone/repos/{result.status.split(':', 1)[0]}")
        self.finished[key] = result
        if len(self.finished) > FINISHED_CACHE_SIZE:
            self.finished.popitem(last=False)
        return result

    def _unchanged(self, key, planned, hub_sha) -> CloneResult | None:
        """The result for a clone of ``key`` already at ``hub_sha``, or None (the worker decides)."""
        relative = self.index.get(key) or planned
        try:
            with self.index_lock:
                if relative in self.claims:
                    return None
            head, origin = head_and_origin(self.tree.path(relative))
        except Exception:  # the worker meets it again and reports it
            return None
        if head and head == hub_sha and (origin is None or _normalized(origin) == key):
            return CloneResult(relative, head, "unchanged")
        return None

    def _finish(self, record, result: CloneResult):
        record["RepoPath"] = result.path
        record["LatestGitCommitSHA"] = result.sha
        record["CloneStatus"] = result.status
        kind = result.status.split(":", 1)[0]
        self._count(_STAT_KEYS.get(kind) or f"ptm/clone/{kind}")
        if kind == "failed":
            reason = result.status.split(": ", 1)[1]
            self.stats.inc_value(f"ptm/clone/failed/{reason.split(' (')[0].split(':')[0][:60]}")
            logger.warning("Clone failed for %s (%s): %s", record.label, printable(record.get("RepoURL")),
                           printable(reason, 300))
        return record

    # -- worker threads ------------------------------------------------------------------
    def _materialize(self, url, key, hub, planned, branch, hub_sha) -> CloneResult:
        with self.index_lock:
            self.waiting -= 1
            self.stats.set_value("ptm/clone/waiting", self.waiting)
            self.running += 1
            self.stats.set_value("ptm/clone/running", self.running)
        try:
            try:
                return self._clone_or_update(url, key, hub, planned, branch, hub_sha)
            except DirectoryTaken:  # another process landed another repository there first
                return self._clone_or_update(url, key, hub, planned, branch, hub_sha)
        except (RepoError, UnsafePath) as exc:
            return CloneResult(None, hub_sha, f"failed: {exc}")
        except OSError as exc:
            return CloneResult(None, hub_sha, f"failed: filesystem error ({exc.strerror or exc})")
        except Exception as exc:
            logger.exception("Unexpected error cloning %s", url)
            return CloneResult(None, hub_sha, f"failed: internal error ({type(exc).__name__})")
        finally:
            with self.index_lock:
                self.running -= 1
                self.stats.set_value("ptm/clone/running", self.running)

    def _claim(self, key: str, planned: str) -> tuple[str, Path, str | None]:
        """Claim the folder of ``key``'s clone (its indexed one, else ``planned``, else
        ``planned~<hash>``): (relative, absolute, HEAD of the valid clone of ``key`` there or None)."""
        suffix = dataset.stable_suffix(key)
        suffixed = f"{planned}%7E{suffix}"  # "~" as segment() spells it
        # Below another clone, a sibling would be too: then one folder right under repos/.
        top, below = planned.split("/", 2)[1], planned.split("/", 2)[2]
        flat = f"{planned.split('/', 1)[0]}/{top}/{dataset.segment(below + '~' + suffix)}"
        with self.index_lock:
            for relative in dict.fromkeys(r for r in (self.index.get(key), planned, suffixed, flat) if r):
                found = self._free_for(key, relative)
                if found is not None:
                    self.claims[relative] = key
                    for above in _folders_above(relative):
                        self.claimed_above[above] = self.claimed_above.get(above, 0) + 1
                    return relative, found[0], found[1]
        raise RepoError(f"no free folder for the clone (tried {planned!r}, {suffixed!r} and {flat!r})")

    def _free_for(self, key: str, relative: str) -> tuple[Path, str | None] | None:
        """(path, HEAD of ``key``'s clone there or None) if ``relative`` may hold ``key``'s clone."""
        if self.claims.get(relative, key) != key or relative in self.claimed_above:
            return None  # in flight for another repository, or above one
        path = self.tree.path(relative)
        for above in _folders_above(relative):
            if above in self.claims or os.path.lexists(self.tree.path(above) / ".git"):
                return None  # a clone's working tree is not ours to fill
        if not path.exists():
            return path, None
        head, origin = head_and_origin(path)
        if head:
            return (path, head) if origin is None or _normalized(origin) == key else None
        if path.is_dir() and not os.path.lexists(path / ".git") and any(path.iterdir()):
            return None  # a folder of other clones (e.g. group/ of group/sub/project)
        return path, None

    def _release(self, relative: str) -> None:
        with self.index_lock:
            del self.claims[relative]
            for above in _folders_above(relative):
                left = self.claimed_above[above] - 1
                if left:
                    self.claimed_above[above] = left
                else:
                    del self.claimed_above[above]

    def _clone_or_update(self, url, key, hub, planned, branch, hub_sha) -> CloneResult:
        relative, path, head = self._claim(key, planned)
        try:
            if head:
                if hub_sha and head == hub_sha:
                    return CloneResult(relative, head, "unchanged")
                before = self._stored_bytes(path)
                sha = self.git.update(url, path, branch)
                self._count_bytes(self._stored_bytes(path) - before)
                return CloneResult(relative, sha, "updated" if sha != head else "unchanged")
            if path.exists():  # not a valid repository (nor a folder of other clones): replace it
                shutil.rmtree(path)
            sha = self.git.clone(url, path, self.tree.scratch_dir(hub), branch)
            self._count_bytes(self._stored_bytes(path))
            with self.index_lock:
                if self.index.get(key) != relative:
                    self.index[key] = relative
                    self.tree.append_line(dataset.REPO_INDEX_FILE, {"url": key, "path": relative})
            return CloneResult(relative, sha, "cloned")
        finally:
            self._release(relative)

    def _stored_bytes(self, path: Path) -> int:
        try:
            return self.git.stored_bytes(path)
        except (RepoError, OSError, ValueError):  # a statistic: never fail the clone for it
            return 0

    def _count_bytes(self, size: int) -> None:
        with self.index_lock:  # stats are a plain dict: increments from threads need the lock
            self.stats.inc_value("ptm/clone/bytes", max(0, size))

    def _subpath_sha(self, relative: str, subpath: str) -> str | None:
        try:
            return self.git.last_commit_touching(self.tree.path(relative), subpath)
        except RepoError:
            return None


def _hub_auth_header(spider, settings) -> tuple[str, str] | None:
    """(``<scheme>://<hub host>/``, ``Authorization: Bearer <token>``) for git, if the spider's hub
    token is set and ``PTM_GIT_SEND_TOKEN`` is on."""
    token, host = hub_token(spider)
    base = getattr(spider, "base_url", "")
    if not (token and host and base and settings.getbool("PTM_GIT_SEND_TOKEN")):
        return None
    return f"{urlsplit(base).scheme}://{host}/", f"Authorization: Bearer {token}"


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
