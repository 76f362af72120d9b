"""Pause and resume with ``-s JOBDIR=<dir>``, safe against hard kills.

Scrapy keeps a paused crawl in JOBDIR (pending requests, fingerprints of seen requests,
``spider.state``) but writes them completely only when the crawl stops gracefully (Ctrl-C once,
SIGTERM). After a hard kill (SIGKILL, the OOM killer, a power cut) they are stale or torn: the
pending listing pages can be lost while their fingerprints are remembered, and the resumed crawl
would "finish" early with part of the hub.

:class:`JobGuard` (an extension) lets one crawl at a time use a JOBDIR and marks it while in use.
Finding the mark of a crawl that never closed, it discards Scrapy's state before the scheduler
reads it, so the job restarts from its start requests. Nothing is lost and no model is done
twice: the store stage lists the job's snapshots in ``ptm-snapshots.txt``, and the dedupe stage
skips every model already stored in them. A model listed but not stored when the crawl died is
done again: its landed clone is reused, an unfinished one was removed by the clone stage.

Each run that closes (finished, paused, or ended with failed pages or nothing stored) records its
finish reason, and the next run says truthfully how the job was left: finished (a new crawl in that
JOBDIR does nothing new, and is warned), paused, or ended with failed pages.

Pages lost for good (``ptmscrape.signals.page_failed``) are the job's, not one run's: their
fingerprints are in Scrapy's ``requests.seen``, so a resumed run would never fetch them again and
would finish "complete". A run that closes saves their requests in the JOBDIR, and the next run
schedules them again first (``dont_filter``, their retries afresh). One that fails again is
reported as usual; one whose request cannot be saved (a callback that is no spider method,
unpicklable meta) counts as failed in every later run of the job (``ptm/pages/failed/lost by an
earlier run``): exit status 1, no removed-models report. After a hard kill the job restarts from
its start requests, which list the lost pages again, so the saved ones are discarded.

Files of ours in a JOBDIR: ``ptm-job.lock`` (flock), ``ptm-running.json`` (the mark),
``ptm-snapshots.txt``, ``ptm-ended.json`` (how the last run that closed ended) and
``ptm-failed-pages.pickle`` (the pages the job lost, while it has any).
"""

from __future__ import annotations

import fcntl
import json
import logging
import os
import pickle
import shutil
import time
from pathlib import Path

from scrapy import signals
from scrapy.exceptions import NotConfigured
from scrapy.utils.job import job_dir
from scrapy.utils.request import request_from_dict

from ptmscrape import signals as ptm_signals
from ptmscrape.checks import BadInput
from ptmscrape.dataset.jsonl import read_jsonl
from ptmscrape.stats import JOB_PAGES_FETCHED_AGAIN, JOB_RESTARTED_AFTER_KILL
from ptmscrape.verdict import FAILED_PAGES, NOTHING_STORED, STORE_FAILED_REASON

logger = logging.getLogger(__name__)

LOCK_FILE = "ptm-job.lock"
RUNNING_MARK = "ptm-running.json"
ENDED_FILE = "ptm-ended.json"
FINISHED_MARK = "ptm-finished.json"  # written before ptm-ended.json was: a finished job
SNAPSHOTS_FILE = "ptm-snapshots.txt"
FAILED_PAGES_FILE = "ptm-failed-pages.pickle"
# The kind (ptm/pages/failed/<kind>) of a page an earlier run lost that cannot be fetched again.
LOST_EARLIER = "lost by an earlier run"
# A lost page fetched again gets its retries afresh.
RETRY_META = ("retry_times", "ptm_page_retries", "ptm_ratelimit_retries", "ptm_retry_delay")
# What Scrapy keeps in a JOBDIR (scheduler queue, dupefilter, SpiderState extension).
SCRAPY_STATE = ("requests.queue", "requests.seen", "spider.state")
# How the next run describes the job, by the finish reason of its last run that closed.
ENDED_HOW = {
    "shutdown": "the previous run was paused gracefully",
    FAILED_PAGES: "the previous run ended with failed pages",
    NOTHING_STORED: "the previous run stored nothing",
    STORE_FAILED_REASON: "the previous run was stopped: the dataset tree could not be written (a full disk?)",
}


class JobDirBusy(BadInput):
    """Another running crawl uses this JOBDIR: exit status 2, nothing started (README "Exit status")."""


def busy(jobdir: Path) -> JobDirBusy:
    return JobDirBusy(f"-s JOBDIR={jobdir} is in use by another running crawl (one crawl at a time per JOBDIR)")


def check_free(settings) -> None:
    """Raise :class:`JobDirBusy` if a running crawl holds the JOBDIR's lock; creates nothing. Run
    before the crawl starts, so the refusal is one line; :class:`JobGuard` takes the lock itself."""
    path = settings.get("JOBDIR")  # not folder(): Scrapy's job_dir() creates the directory
    if not path:
        return
    jobdir = Path(path)
    try:
        lock = open(jobdir / LOCK_FILE, "rb")
    except OSError:  # no JOBDIR or no lock yet: nobody holds it (JobGuard reports what else is wrong)
        return
    with lock:
        try:
            fcntl.flock(lock, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            raise busy(jobdir) from None


def folder(settings) -> Path | None:
    path = job_dir(settings)
    return Path(path) if path else None


def remember_snapshot(settings, snapshot: Path) -> None:
    """Note that this job wrote ``snapshot`` (one line, appended in one write)."""
    jobdir = folder(settings)
    if jobdir is None:
        return
    jobdir.mkdir(parents=True, exist_ok=True)
    fd = os.open(jobdir / SNAPSHOTS_FILE, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)
    try:
        os.write(fd, (os.fspath(snapshot.resolve()) + "\n").encode())
    finally:
        os.close(fd)


def snapshots(settings) -> list[Path]:
    """The snapshots written by earlier runs of this job (oldest first); [] without JOBDIR."""
    jobdir = folder(settings)
    if jobdir is None:
        return []
    try:
        lines = (jobdir / SNAPSHOTS_FILE).read_text().splitlines()
    except FileNotFoundError:
        return []
    return [Path(line) for line in dict.fromkeys(lines) if line.strip()]


def stored_ids(paths: list[Path]) -> set[int]:
    """Record ids stored in these snapshots (a torn last line, from a kill, is not stored)."""
    return {r["id"] for path in paths for r in read_jsonl(path) if isinstance(r.get("id"), int)}


class JobGuard:
    def __init__(self, crawler, jobdir: Path):
        self.crawler = crawler
        self.jobdir = jobdir
        jobdir.mkdir(parents=True, exist_ok=True)
        self._lock = open(jobdir / LOCK_FILE, "a")
        try:
            fcntl.flock(self._lock, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            self._lock.close()
            raise busy(jobdir) from None
        self.restarted = False
        self.lost: list[bytes] = []  # pages this run lost, pickled request dicts (Scrapy's queue format)
        self.lost_unsaved = 0  # pages this run lost that cannot be fetched again
        self.to_fetch_again: list[bytes] = []  # pages earlier runs lost
        self.lost_earlier = 0  # of which no request could be saved
        mark = jobdir / RUNNING_MARK
        if mark.exists():
            self.restarted = True
            self._discard_scrapy_state(_read_json(mark))
        else:
            saved = _read_pickle(jobdir / FAILED_PAGES_FILE)
            self.to_fetch_again, self.lost_earlier = saved.get("requests", []), saved.get("unsaved", 0)
            self._say_how_the_job_was_left()
        mark.write_text(json.dumps({"pid": os.getpid(), "started": time.time()}))

    @classmethod
    def from_crawler(cls, crawler):
        jobdir = folder(crawler.settings)
        if jobdir is None:
            raise NotConfigured
        guard = cls(crawler, jobdir)
        crawler.signals.connect(guard.spider_opened, signal=signals.spider_opened)
        crawler.signals.connect(guard.spider_closed, signal=signals.spider_closed)
        crawler.signals.connect(guard.page_failed, signal=ptm_signals.page_failed)
        return guard

    def _discard_scrapy_state(self, previous: dict) -> None:
        # The lost pages too: the restarted job lists them again.
        found = [name for name in (*SCRAPY_STATE, FAILED_PAGES_FILE) if (self.jobdir / name).exists()]
        logger.warning(
            "The last run of the job in %s (pid %s) was killed before it could save its request "
            "queue; restarting the job from its first pages. Models it stored are not done again.",
            self.jobdir, previous.get("pid", "?"))
        for name in found:
            path = self.jobdir / name
            if path.is_dir():
                shutil.rmtree(path)
            else:
                path.unlink()

    def _say_how_the_job_was_left(self) -> None:
        ended = self.previous_end()
        if ended == "finished" and not self.to_fetch_again:
            logger.warning("The job in %s has finished: Scrapy skips every request it made, so this "
                           "crawl does nothing new. Give each new crawl a new JOBDIR.", self.jobdir)
        elif ended is not None or (self.jobdir / "requests.seen").exists():
            how = (ENDED_HOW.get(ended, f"the previous run ended with finish reason {ended!r}") if ended
                   else "how the previous run ended was not recorded")
            lost = len(self.to_fetch_again)
            again = f"; fetching again the {lost} page(s) the job lost" if lost else ""
            logger.info("Resuming the job in %s: %s%s", self.jobdir, how, again)
        if self.lost_earlier:
            logger.error("%d page(s) lost by earlier runs of the job in %s could not be saved to be fetched "
                         "again: they count as failed in every run of this job. A new crawl (a new "
                         "JOBDIR) reads them.", self.lost_earlier, self.jobdir)

    def previous_end(self) -> str | None:
        """The finish reason of the job's last run that closed (None: no run closed yet)."""
        reason = _read_json(self.jobdir / ENDED_FILE).get("reason")
        if isinstance(reason, str):
            return reason
        return "finished" if (self.jobdir / FINISHED_MARK).exists() else None

    def spider_opened(self, spider):
        if self.restarted:
            self.crawler.stats.set_value(JOB_RESTARTED_AFTER_KILL, 1)
        unfetchable = self.lost_earlier
        for saved in self.to_fetch_again:
            try:
                request = request_from_dict(pickle.loads(saved), spider=spider)
            except Exception as exc:  # e.g. its callback was renamed since
                logger.error("A page the job lost cannot be fetched again: %s", exc)
                unfetchable += 1
                continue
            meta = {k: v for k, v in request.meta.items() if k not in RETRY_META}
            self.crawler.engine.crawl(request.replace(dont_filter=True, meta=meta))
            self.crawler.stats.inc_value(JOB_PAGES_FETCHED_AGAIN)
        for _ in range(unfetchable):  # failed in this run too, and saved again as such (page_failed)
            spider.count_failed_page(LOST_EARLIER)

    def page_failed(self, kind: str, request=None) -> None:
        if request is not None:
            try:
                self.lost.append(pickle.dumps(request.to_dict(spider=self.crawler.spider), protocol=4))
                return
            except (ValueError, TypeError, AttributeError, pickle.PicklingError) as exc:
                # what Scrapy's disk queue refuses too (scheduler/unserializable)
                logger.error("The lost page %s cannot be saved in JOBDIR to be fetched again on "
                             "resume: %s", request.url, exc)
        self.lost_unsaved += 1

    def spider_closed(self, spider, reason):
        # Extensions connect in priority order, so Scrapy's SpiderState (priority 0) has pickled
        # spider.state by now, and the scheduler saved its queue before spider_closed was sent.
        unsaved = self.crawler.stats.get_value("scheduler/unserializable", 0)
        if unsaved:
            logger.error("%d request(s) could not be saved in JOBDIR and are lost on resume: their "
                         "callbacks must be spider methods and their meta picklable", unsaved)
        failed = self.jobdir / FAILED_PAGES_FILE
        if self.lost or self.lost_unsaved:
            _write_atomic(failed, pickle.dumps({"requests": self.lost, "unsaved": self.lost_unsaved}, protocol=4))
        else:
            failed.unlink(missing_ok=True)
        _write_atomic(self.jobdir / ENDED_FILE, json.dumps({"reason": reason, "ended": time.time()}).encode())
        (self.jobdir / RUNNING_MARK).unlink(missing_ok=True)
        self._lock.close()


def _write_atomic(path: Path, data: bytes) -> None:
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_bytes(data)
    tmp.replace(path)


def _read_pickle(path: Path) -> dict:
    try:
        data = pickle.loads(path.read_bytes())
    except FileNotFoundError:
        return {}
    except Exception as exc:  # damaged: at least one page is lost, and the job says so
        logger.error("%s cannot be read (%s): the pages it lists cannot be fetched again", path, exc)
        return {"unsaved": 1}
    return data if isinstance(data, dict) else {"unsaved": 1}


def _read_json(path: Path) -> dict:
    try:
        data = json.loads(path.read_text())
    except (OSError, ValueError):
        return {}
    return data if isinstance(data, dict) else {}
