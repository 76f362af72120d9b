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

Pages lost for good (``ptmscrape.signals.page_failed``) and ``-a history`` calls lost for good
(``ptmscrape.signals.history_call_lost``) are the job's, not one run's: their fingerprints are in
Scrapy's ``requests.seen``, so a resumed run would never fetch them again and would finish
"complete". A run that closes saves their requests in the JOBDIR, and the next run schedules them
again first (``dont_filter``, their retries afresh; ``ptm/job/pages_fetched_again``,
``ptm/job/history_calls_fetched_again``). One that fails again is reported as usual; one whose
request cannot be saved (a callback that is no spider method, unpicklable meta) counts as lost in
every later run of the job (``ptm/pages/failed/lost by an earlier run``, ``ptm/history/lost/lost by
an earlier run``): exit status 1 (a page: no removed-models report either). After a hard kill the
job restarts from its start requests, which list the lost pages and ask the history calls no state
line vouches for again, so the saved ones are discarded.

Models the store stage could not store (a full disk: ``ptmscrape.signals.model_not_stored``; it
stops the crawl, ``store_failed``) are lost the same way: the page that gave them (a listing page,
or the model's own page) is in ``requests.seen``. Their requests are saved too, once each however
many of its models were dropped (``UNSTORED``), and fetched again: the dedupe stage skips the
models of the page that earlier runs stored, the others are stored
(``ptm/job/pages_of_unstored_models_fetched_again``). With ``-a limit``, the models such a page
gave (``LISTED_META``) are listed again without counting (``RELISTED_META``): they were counted.

A run whose state is not all in the JOBDIR (Scrapy's queue, ``requests.seen`` or ``spider.state``
could not be written: ``ptmscrape/jobdir_writes.py`` keeps such requests in memory; or JobGuard's own
files could not) leaves its running mark, with the reason: the next run restarts the job from its
first pages, as after a hard kill, and says why (``ptm/job/restarted_after_unsaved_state``).

Files of ours in a JOBDIR: ``ptm-job.lock`` (flock), ``ptm-running.json`` (the mark),
``ptm-snapshots.txt``, ``ptm-ended.json`` (how the last run that closed ended) and
``ptm-failed-pages.pickle`` (the pages, history calls and pages of unstored models the job lost,
while it has any).
"""

from __future__ import annotations

import fcntl
import json
import logging
import os
import pickle
import shutil
import time
from dataclasses import dataclass
from pathlib import Path

from scrapy import Request, signals
from scrapy.exceptions import NotConfigured
from scrapy.utils.job import job_dir
from scrapy.utils.request import request_from_dict

from ptmscrape import signals as ptm_signals
from ptmscrape.checks import BadInput
from ptmscrape.dataset.jsonl import read_jsonl
from ptmscrape.spiders_base import FETCHED_AGAIN_META, LISTED_META, RELISTED_META
from ptmscrape.stats import (
    JOB_HISTORY_CALLS_FETCHED_AGAIN,
    JOB_PAGES_FETCHED_AGAIN,
    JOB_RESTARTED_AFTER_KILL,
    JOB_RESTARTED_AFTER_UNSAVED_STATE,
    JOB_STATE_NOT_SAVED,
    JOB_UNSTORED_FETCHED_AGAIN,
)
from ptmscrape.verdict import FAILED_PAGES, NOTHING_STORED, STORE_FAILED_REASON

logger = logging.getLogger(__name__)

LOCK_FILE = "ptm-job.lock"
RUNNING_MARK = "ptm-running.json"
ENDED_FILE = "ptm-ended.json"
FINISHED_MARK = "ptm-finished.json"  # written before ptm-ended.json was: a finished job
SNAPSHOTS_FILE = "ptm-snapshots.txt"
FAILED_PAGES_FILE = "ptm-failed-pages.pickle"
# The kind (ptm/pages/failed/<kind>) or reason (ptm/history/lost/<reason>) of a page or history
# call an earlier run lost that cannot be fetched again.
LOST_EARLIER = "lost by an earlier run"
# A lost page fetched again gets its retries afresh, and counts the models it gives afresh.
RETRY_META = ("retry_times", "ptm_page_retries", "ptm_ratelimit_retries", "ptm_retry_delay", LISTED_META,
              RELISTED_META)
# What Scrapy keeps in a JOBDIR (scheduler queue, dupefilter, SpiderState extension).
SCRAPY_STATE = ("requests.queue", "requests.seen", "spider.state")
# How the next run describes the job, by the finish reason of its last run that closed.
ENDED_HOW = {
    "finished": "the previous run finished",  # said only when it lost history calls: else the job is done
    "shutdown": "the previous run was paused gracefully",
    FAILED_PAGES: "the previous run ended with failed pages",
    NOTHING_STORED: "the previous run stored nothing",
    STORE_FAILED_REASON: "the previous run was stopped: the dataset tree could not be written (a full disk?)",
}


# Said when a write to one of Scrapy's JOBDIR files fails during the crawl (ptmscrape/jobdir_writes.py).
IN_MEMORY = {"requests.queue": "this run keeps its requests in memory and goes on, but if it stops before the end, ",
             "requests.seen": "this run keeps its fingerprints in memory and goes on, but if it stops before the "
                              "end, "}


@dataclass(frozen=True)
class Losable:
    """A sort of request a job can lose for good, saved in ``FAILED_PAGES_FILE`` and fetched again
    when the job resumes."""

    noun: str  # in log lines: "the lost page <url>"
    nouns: str  # in log lines: "2 page(s)"
    saved_key: str  # in FAILED_PAGES_FILE: the pickled request dicts (Scrapy's queue format)
    unsaved_key: str  # in FAILED_PAGES_FILE: how many could not be saved
    fetched_again: str  # stats name, one per request scheduled again
    count_lost: str  # spider method counting one lost again in this run: (kind or reason, request=None)
    counts_as: str  # what one that cannot be fetched again counts as, in every later run


PAGES = Losable("page", "page(s)", "requests", "unsaved", JOB_PAGES_FETCHED_AGAIN, "count_failed_page", "failed")
HISTORY_CALLS = Losable("history call", "history call(s)", "history_calls", "history_calls_unsaved",
                        JOB_HISTORY_CALLS_FETCHED_AGAIN, "count_lost_history_call", "lost")
# The requests that gave models the store stage could not store (a full disk): not lost pages to
# Scrapy, whose requests.seen holds them, but their models are missing until they are fetched again.
UNSTORED = Losable("page of unstored models", "page(s) of unstored models", "unstored", "unstored_unsaved",
                   JOB_UNSTORED_FETCHED_AGAIN, "count_failed_page", "failed")
LOSABLE = (PAGES, HISTORY_CALLS, UNSTORED)


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


def check_data_dir(settings) -> None:
    """Raise :class:`BadInput` if the JOBDIR's earlier runs stored in another data dir than this
    run's ``PTM_DATA_DIR`` (their snapshots still there): resumed there, the job skipped the models
    they stored and stored the rest in this tree, both trees part of the job, and exited 0. A data
    dir that moved (its recorded snapshots gone) is not refused. Creates nothing."""
    path, data = settings.get("JOBDIR"), settings.get("PTM_DATA_DIR")
    if not path or not data:
        return
    try:
        lines = (Path(path) / SNAPSHOTS_FILE).read_text().splitlines()
    except (OSError, UnicodeDecodeError):
        return
    here = Path(str(data)).expanduser().resolve()  # as the store's DatasetTree: ~/data is the job's tree
    for line in dict.fromkeys(lines):
        snapshot = Path(line.strip())
        if not snapshot.is_absolute() or len(snapshot.parents) < 3:
            continue
        tree = snapshot.parents[2]  # <data dir>/<hub>/snapshots/<file>
        if tree != here and snapshot.is_file():
            raise BadInput(f"-s JOBDIR={path} is a job of the data dir {tree} (its earlier runs stored "
                           f"there): resume it with -s PTM_DATA_DIR={tree}, or give this crawl a new JOBDIR")


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
        _remove_temp_files(jobdir)  # a run killed inside _write_atomic; the lock says none writes now
        self.restarted: str | None = None  # the stats name saying why, when the job restarts
        self.not_saved: str | None = None  # why this run's state is not in the JOBDIR, if it is not
        # per sort (LOSABLE): what this run lost (pickled request dicts, Scrapy's queue format) and
        # how many of those cannot be fetched again; what earlier runs lost, and of those unsaved
        self.lost: dict[Losable, list[bytes]] = {sort: [] for sort in LOSABLE}
        self.lost_unsaved = dict.fromkeys(LOSABLE, 0)
        self.to_fetch_again: dict[Losable, list[bytes]] = {sort: [] for sort in LOSABLE}
        self.lost_earlier = dict.fromkeys(LOSABLE, 0)
        # UNSTORED, by fingerprint: a page gives many models, and is saved (once) when the run
        # closes, by when it has given all of them (LISTED_META counts them)
        self.unstored: dict[bytes, Request] = {}
        mark = jobdir / RUNNING_MARK
        if mark.exists():
            previous = _read_json(mark)
            self.restarted = (JOB_RESTARTED_AFTER_UNSAVED_STATE if previous.get("state_not_saved")
                              else JOB_RESTARTED_AFTER_KILL)
            self._discard_scrapy_state(previous)
        else:
            saved = _read_pickle(jobdir / FAILED_PAGES_FILE)
            for sort in LOSABLE:
                requests, unsaved = saved.get(sort.saved_key, []), saved.get(sort.unsaved_key, 0)
                self.to_fetch_again[sort] = requests if isinstance(requests, list) else []
                self.lost_earlier[sort] = unsaved if isinstance(unsaved, int) else 1
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
        crawler.signals.connect(guard.history_call_lost, signal=ptm_signals.history_call_lost)
        crawler.signals.connect(guard.model_not_stored, signal=ptm_signals.model_not_stored)
        crawler.signals.connect(guard.jobdir_write_failed, signal=ptm_signals.jobdir_write_failed)
        return guard

    def _discard_scrapy_state(self, previous: dict) -> None:
        # The lost pages and history calls too: the restarted job lists them again (and asks every
        # history call no state line vouches for).
        found = [name for name in (*SCRAPY_STATE, FAILED_PAGES_FILE) if (self.jobdir / name).exists()]
        why = previous.get("state_not_saved")
        if why:
            logger.warning(
                "The last run of the job in %s (pid %s) could not save its state in the JOBDIR (%s); "
                "restarting the job from its first pages. Models it stored are not done again.",
                self.jobdir, previous.get("pid", "?"), why)
        else:
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
        outstanding = any(self.to_fetch_again.values()) or any(self.lost_earlier.values())
        if ended == "finished" and not outstanding:
            logger.warning("The job in %s has finished: Scrapy skips every request it made, so this "
                           "crawl does nothing new. Give each new crawl a new JOBDIR.", self.jobdir)
        elif ended is not None or (self.jobdir / "requests.seen").exists():
            how = (ENDED_HOW.get(ended, f"the previous run ended with finish reason {ended!r}") if ended
                   else "how the previous run ended was not recorded")
            lost = " and ".join(f"{len(self.to_fetch_again[sort])} {sort.nouns}" for sort in LOSABLE
                                if self.to_fetch_again[sort])
            again = f"; fetching again the {lost} the job lost" if lost else ""
            logger.info("Resuming the job in %s: %s%s", self.jobdir, how, again)
        for sort in LOSABLE:
            if self.lost_earlier[sort]:
                logger.error("%d %s lost by earlier runs of the job in %s could not be saved to be fetched "
                             "again: they count as %s in every run of this job. A new crawl (a new "
                             "JOBDIR) reads them.", self.lost_earlier[sort], sort.nouns, self.jobdir,
                             sort.counts_as)

    def previous_end(self) -> str | None:
        """The finish reason of the job's last run that closed (None: no run closed yet)."""
        reason = _read_json(self.jobdir / ENDED_FILE).get("reason")
        if isinstance(reason, str):
            return reason
        return "finished" if (self.jobdir / FINISHED_MARK).exists() else None

    def spider_opened(self, spider):
        if self.restarted:
            self.crawler.stats.set_value(self.restarted, 1)
        for sort in LOSABLE:
            unfetchable = self.lost_earlier[sort]
            for saved in self.to_fetch_again[sort]:
                data = None
                try:
                    data = pickle.loads(saved)
                    request = request_from_dict(data, spider=spider)
                except Exception as exc:  # e.g. its callback was renamed since
                    url = data.get("url") if isinstance(data, dict) else None  # a history call's names the model
                    logger.error("A %s the job lost cannot be fetched again%s: %s", sort.noun,
                                 f" ({url})" if isinstance(url, str) else "", exc)
                    unfetchable += 1
                    continue
                meta = {k: v for k, v in request.meta.items() if k not in RETRY_META}
                meta[FETCHED_AGAIN_META] = True  # no loop when the next page of another one is it
                listed = request.meta.get(LISTED_META)
                if sort is UNSTORED and isinstance(listed, int) and listed > 0:
                    meta[RELISTED_META] = listed  # the same models again, already counted by -a limit
                self.crawler.engine.crawl(request.replace(dont_filter=True, meta=meta))
                self.crawler.stats.inc_value(sort.fetched_again)
            # lost in this run too, and saved again as such (the spider's method signals it);
            # a spider without the method (another spider in this JOBDIR) fails the run as a page
            count_lost = getattr(spider, sort.count_lost, None) or spider.count_failed_page
            for _ in range(unfetchable):
                count_lost(LOST_EARLIER)

    def page_failed(self, kind: str, request=None) -> None:
        self._save(PAGES, request)

    def history_call_lost(self, reason: str, request=None) -> None:
        self._save(HISTORY_CALLS, request)

    def model_not_stored(self, reason: str, request=None) -> None:
        if request is None:
            self.lost_unsaved[UNSTORED] += 1
        else:
            self.unstored.setdefault(self.crawler.request_fingerprinter.fingerprint(request), request)

    def jobdir_write_failed(self, where: str, error: Exception) -> None:
        self.crawler.stats.inc_value(JOB_STATE_NOT_SAVED)
        if self.not_saved is None:
            why = getattr(error, "strerror", None) or repr(error)
            self.not_saved = f"{where}: {why}"
            logger.error("Could not write %s in the JOBDIR %s (%s): %sthe next run of the job restarts "
                         "from its first pages", where, self.jobdir, why, IN_MEMORY.get(where, ""))

    def _save(self, sort: Losable, request) -> None:
        """Keep a request this run lost, to be saved in the JOBDIR when the run closes."""
        if request is not None:
            try:
                self.lost[sort].append(pickle.dumps(request.to_dict(spider=self.crawler.spider), protocol=4))
                return
            except (ValueError, TypeError, AttributeError, pickle.PicklingError) as exc:
                # what Scrapy's disk queue refuses too (scheduler/unserializable)
                logger.error("The lost %s %s cannot be saved in JOBDIR to be fetched again on "
                             "resume: %s", sort.noun, request.url, exc)
        self.lost_unsaved[sort] += 1

    def spider_closed(self, spider, reason):
        # Extensions connect in priority order, so Scrapy's SpiderState (priority 0) has pickled
        # spider.state by now, and the scheduler saved its queue before spider_closed was sent.
        unsaved = self.crawler.stats.get_value("scheduler/unserializable", 0)
        if unsaved:
            logger.error("%d request(s) could not be saved in JOBDIR and are lost on resume: their "
                         "callbacks must be spider methods and their meta picklable", unsaved)
        for request in self.unstored.values():
            self._save(UNSTORED, request)
        if self.not_saved is None:
            self.not_saved = _spider_state_not_saved(self.jobdir)
        if self.not_saved is None:
            try:
                self._save_how_the_run_ended(reason)
            except OSError as exc:
                self.not_saved = f"{exc.filename or 'its files'}: {exc.strerror or exc}"
        if self.not_saved is not None:
            self._leave_restart_mark()
        self._lock.close()

    def _save_how_the_run_ended(self, reason: str) -> None:
        failed = self.jobdir / FAILED_PAGES_FILE
        if any(self.lost.values()) or any(self.lost_unsaved.values()):
            saved: dict[str, object] = {}
            for sort in LOSABLE:
                saved.update({sort.saved_key: self.lost[sort], sort.unsaved_key: self.lost_unsaved[sort]})
            _write_atomic(failed, pickle.dumps(saved, protocol=4))
            if self.lost[UNSTORED]:
                logger.warning("Saved in %s the %d %s: the resumed job fetches them again, and stores "
                               "their models it did not store", self.jobdir, len(self.lost[UNSTORED]),
                               UNSTORED.nouns)
        else:
            failed.unlink(missing_ok=True)
        _write_atomic(self.jobdir / ENDED_FILE, json.dumps({"reason": reason, "ended": time.time()}).encode())
        (self.jobdir / RUNNING_MARK).unlink(missing_ok=True)

    def _leave_restart_mark(self) -> None:
        """The JOBDIR does not hold this run's state: the running mark stays, so the next run restarts
        the job from its first pages, as after a kill (the models stored are skipped); it says why
        if the mark can still be rewritten."""
        _remove_temp_files(self.jobdir)
        mark = self.jobdir / RUNNING_MARK
        try:
            previous = _read_json(mark)
            mark.write_text(json.dumps({**previous, "state_not_saved": self.not_saved}))
        except OSError:  # an empty mark still restarts the job
            pass
        logger.error("The JOBDIR %s does not hold this run's state (%s): the next run of the job "
                     "restarts from its first pages; the models stored are not done again",
                     self.jobdir, self.not_saved)


def _spider_state_not_saved(jobdir: Path) -> str | None:
    """Why ``spider.state`` cannot be read back, if it cannot. SpiderState pickles it before JobGuard
    closes, and ours reports a write that fails (``ptmscrape/jobdir_writes.py``); Scrapy's own, if a
    project puts it back, raises and leaves the file torn."""
    try:
        pickle.loads((jobdir / "spider.state").read_bytes())
    except FileNotFoundError:  # SpiderState off: nothing of ours depends on it
        return None
    except OSError as exc:
        return f"spider.state: {exc.strerror or exc}"
    except Exception:
        return "spider.state: not written whole"
    return None


def _write_atomic(path: Path, data: bytes) -> None:
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_bytes(data)
    tmp.replace(path)


def _remove_temp_files(jobdir: Path) -> None:
    for name in (FAILED_PAGES_FILE, ENDED_FILE):
        (jobdir / (name + ".tmp")).unlink(missing_ok=True)


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
