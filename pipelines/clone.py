"""Stage 4: put each model's git repository in the dataset tree, off the reactor thread.

The work (thread pool, shared in-flight clones, the repository index, folder claims, the
"unchanged" shortcut, byte counting) is :class:`ptmscrape.cloning.Cloner`'s, which knows nothing of
Scrapy; this stage reads the settings, hands it each record's repository and writes the result back.

The record gets ``RepoPath``, ``LatestGitCommitSHA`` (the clone's HEAD, or the last commit under
``RepoSubPath``) and ``CloneStatus``: cloned / updated / unchanged / skipped[: <reason>] / failed: <reason>.
A failure of this machine, not of the repository (a read-only, full or failing file system, git
missing or broken: ``CloneResult.local``) is counted in ``ptm/clone/failed_locally[/<reason>]`` too,
which fails the crawl (``ptmscrape/verdict.py``); the record is the same.

Once the crawl is closing (a pause: Ctrl-C once, SIGTERM, Scrapyd's cancel), git jobs not started
yet are not started: Scrapy's graceful stop waits for every model of the pages it has fetched, up to
a thousand clones a Hugging Face page. With a JOBDIR such a model is dropped (``Deferred``) and the
page that gave it is saved in the JOBDIR to be fetched again when the job resumes (the
``model_not_stored`` path of ``ptmscrape/jobdir.py``: its models stored already are skipped);
without one it is stored with ``skipped: the crawl stopped before its clone``, for the next crawl to
clone. Both count in ``ptm/clone/deferred``.
A git job that failed for a reason of the moment (a 429, a 5xx, a connection dropped or stalled)
is tried again up to ``PTM_CLONE_RETRIES`` times, ``PTM_CLONE_RETRY_DELAY`` seconds later (doubled
each time), waited on the loop (``ptm/clone/retried``); a retry the crawl's close comes before is
deferred as above. A failed clone is a WARNING ``Clone failed for …`` for the first ``NAMED_FAILURES``
of its reason, DEBUG after (``ptm/clone/failed/<reason>`` and the records have them all).
``ptm/clone/<status>`` counts models, ``ptm/clone/repos/<status>`` repositories (one each,
however many models share it); ``ptm/clone/waiting`` and ``ptm/clone/running`` are git jobs
waiting for a thread and running now, ``ptm/clone/retrying`` those waiting to be tried again.
``ptm/clone/bytes`` adds up what landed: the object store of each new clone, the growth of each
updated one (the progress extension logs it).
"""

from __future__ import annotations

import logging
from urllib.parse import urlsplit

from itemadapter import ItemAdapter
from scrapy.exceptions import DropItem

from ptmscrape import signals as ptm_signals
from ptmscrape.cloning import DEFERRED, GB, NO_DISK_SPACE, Cloner, CloneResult, FreeSpace
from ptmscrape.dataset.paths import records_file
from ptmscrape.dataset.tree import DatasetTree
from ptmscrape.gitrepo import Git, GitPolicy
from ptmscrape.items import printable
from ptmscrape.middlewares import crawl_closing, hub_token
from ptmscrape.stats import (
    CLONE_BY_STATUS,
    CLONE_CLONED,
    CLONE_DEFERRED,
    CLONE_FAILED,
    CLONE_FAILED_BY_REASON,
    CLONE_FAILED_LOCALLY,
    CLONE_FAILED_LOCALLY_BY_REASON,
    CLONE_NO_REPO_URL,
    CLONE_SKIPPED,
    CLONE_UNCHANGED,
    CLONE_UPDATED,
)

logger = logging.getLogger(__name__)

# ptm/clone/<status> of each CloneStatus kind (another kind: CLONE_BY_STATUS + kind).
_STAT_KEYS = {"cloned": CLONE_CLONED, "updated": CLONE_UPDATED, "unchanged": CLONE_UNCHANGED,
              "skipped": CLONE_SKIPPED, "failed": CLONE_FAILED}
STOPPED_BEFORE_CLONE = "skipped: the crawl stopped before its clone"
# Said after the reason of a clone failed for a reason of this machine (CloneResult.local).
LOCAL_WORDS = " (a reason of this machine, not of the hub)"
# Failed clones of each reason logged at WARNING; the rest at DEBUG (a tokenless Hugging Face crawl
# meets thousands of gated models: a WARNING each buried the log). Counted and in the records all the same.
NAMED_FAILURES = 10


class Deferred(DropItem):
    """A model whose clone the crawl's close came before, in a JOBDIR job: its page is fetched again
    when the job resumes (logged at DEBUG: a pause may defer a whole page of them)."""

    def __init__(self, message: str):
        super().__init__(message, log_level="DEBUG")


class ClonePipeline:
    def __init__(self, crawler):
        settings = crawler.settings
        self.crawler = crawler
        self.stats = crawler.stats
        self._count = crawler.stats.inc_value  # bound once (Scrapy's own STATS_CLASS wraps each read)
        self.enabled = settings.getbool("PTM_CLONE")
        self.cloner = Cloner(DatasetTree.from_crawler(crawler), Git(GitPolicy.from_settings(settings)),
                             concurrency=settings.getint("PTM_CLONE_CONCURRENCY"), stats=crawler.stats,
                             free_space=FreeSpace(int(settings.getfloat("PTM_CLONE_MIN_FREE_GB") * GB)),
                             stopping=lambda: crawl_closing(crawler),
                             retries=settings.getint("PTM_CLONE_RETRIES"),
                             retry_delay=settings.getfloat("PTM_CLONE_RETRY_DELAY"))
        self.in_job = bool(settings.get("JOBDIR"))
        self.failures_said: dict[str, int] = {}  # ptm/clone/failed/<reason> key -> failures logged

    @classmethod
    def from_crawler(cls, crawler):
        return cls(crawler)

    def open_spider(self):
        if self.enabled:
            spider = self.crawler.spider
            self.cloner.open(spider.name, _hub_auth_header(spider, self.crawler.settings))

    def close_spider(self):
        self.cloner.close()

    async def process_item(self, item):
        record = ItemAdapter(item)
        # A mapper may say why a model has nothing to clone ("skipped: the hub has no git
        # repository"); that reason is kept whether or not cloning is on.
        given = record.get("CloneStatus")
        skipped = given if isinstance(given, str) and given.startswith("skipped: ") else "skipped"
        hub_sha = record.get("LatestGitCommitSHA")
        url = record.get("RepoURL")
        if not self.enabled:
            result = CloneResult(None, hub_sha, skipped)
        elif not url:
            self.stats.inc_value(CLONE_NO_REPO_URL)
            result = CloneResult(None, hub_sha, skipped)
        else:
            result = await self.cloner.clone(
                record["ModelHub"]["ModelHubName"], url, named=record.get("RepoPath"),
                branch=record.get("RepoBranch"), hub_sha=hub_sha, subpath=record.get("RepoSubPath"),
                label=printable(item.label),
            )
        return self._finish(item, record, result)

    def _finish(self, item, record, result: CloneResult):
        if result.status == DEFERRED:
            return self._deferred(item, record, result)
        record["RepoPath"] = result.path
        record["LatestGitCommitSHA"] = result.sha
        record["CloneStatus"] = result.status
        kind = result.status.split(":", 1)[0]
        self._count(_STAT_KEYS.get(kind) or CLONE_BY_STATUS + kind)
        if kind == "failed":
            reason = result.status.split(": ", 1)[1]
            key = reason_key(reason)
            self.stats.inc_value(CLONE_FAILED_BY_REASON + key)
            if result.local:  # this machine's fault, not the repository's: it fails the crawl
                self.stats.inc_value(CLONE_FAILED_LOCALLY)
                self.stats.inc_value(CLONE_FAILED_LOCALLY_BY_REASON + key)
            # What git said, unless the reason is git's own last line already.
            said = f"; git: {printable(result.detail, 400)}" if result.detail and reason not in result.detail else ""
            # The verdict sends the operator to these WARNINGs for the failures of this machine: they
            # say so, and are counted apart from the repositories' own of the same reason (which may
            # be many, and came first).
            mine = LOCAL_WORDS if result.local else ""
            logger.log(self._failure_level(reason, key, result.local), "Clone failed for %s (%s): %s%s%s",
                       item.label, printable(record.get("RepoURL")), printable(reason, 300), mine, said)
        return item

    def _failure_level(self, reason: str, key: str, local: bool = False) -> int:
        """WARNING for the first NAMED_FAILURES failures of a reason (this machine's and the
        repositories' each), then one WARNING saying the rest are at DEBUG. Lack of disk space was
        logged once for all (FreeSpace): DEBUG always."""
        if reason == NO_DISK_SPACE:
            return logging.DEBUG
        said_key = ("local:" if local else "") + key
        said = self.failures_said[said_key] = self.failures_said.get(said_key, 0) + 1
        if said == NAMED_FAILURES + 1:
            data_dir = str(self.crawler.settings.get("PTM_DATA_DIR") or "").rstrip("/")
            where = records_file(self.crawler.spider.name)
            logger.warning("More clones failed for %s%s: logged at DEBUG from here on; each model's CloneStatus is "
                           "in %s (%s counts them)", printable(reason, 300), LOCAL_WORDS if local else "",
                           f"{data_dir}/{where}" if data_dir else where,
                           (CLONE_FAILED_LOCALLY_BY_REASON if local else CLONE_FAILED_BY_REASON) + key)
        return logging.WARNING if said <= NAMED_FAILURES else logging.DEBUG

    def _deferred(self, item, record, result: CloneResult):
        self.stats.inc_value(CLONE_DEFERRED)
        if not self.in_job:
            return self._finish(item, record, CloneResult(None, result.sha, STOPPED_BEFORE_CLONE))
        raw = getattr(item, "raw", None)
        self.crawler.signals.send_catch_log(ptm_signals.model_not_stored, reason="the crawl stopped before its clone",
                                            request=raw.request if raw is not None else None)
        raise Deferred(f"{item.label}: the crawl stopped before its clone; the page that gave it is fetched "
                       f"again when the job resumes")


def reason_key(reason: str) -> str:
    """The ``ptm/clone/failed/<reason>`` name of a failure's reason: its words before any
    ``(detail)`` or ``: detail``, without git's ``fatal:``/``error:`` (which every failure git
    itself words begins with)."""
    for severity in ("fatal: ", "error: "):
        reason = reason.removeprefix(severity)
    return reason.split(" (")[0].split(":")[0][:60]


def _hub_auth_header(spider, settings) -> tuple[str, str] | None:
    """(``<scheme>://<hub host>/``, ``Authorization: Bearer <token>``) for git, if the spider's hub
    token is set and ``PTM_GIT_SEND_TOKEN`` is on."""
    token, host = hub_token(spider)
    base = getattr(spider, "base_url", "")
    if not (token and host and base and settings.getbool("PTM_GIT_SEND_TOKEN")):
        return None
    return f"{urlsplit(base).scheme}://{host}/", f"Authorization: Bearer {token}"
