"""Scrapy extensions: the end-of-run report, clone progress on long crawls, the crawl's verdict
(exit status) and the downloads it is waiting on."""

from __future__ import annotations

import datetime as dt
import json
import logging
import time
from pathlib import Path

from scrapy import signals
from scrapy.exceptions import CloseSpider, NotConfigured
from scrapy.utils.asyncio import create_looping_call

from ptmscrape import distributed
from ptmscrape.rendering import splash_page
from ptmscrape.stats import (
    CLONE_BY_STATUS,
    CLONE_BYTES,
    CLONE_FAILED,
    CLONE_FAILED_LOCALLY,
    CLONE_FAILED_NO_DISK_SPACE,
    CLONE_REPOS_BY_STATUS,
    CLONE_RETRYING,
    CLONE_RUNNING,
    CLONE_SKIPPED,
    CLONE_WAITING,
    ITEMS_FAILED,
    ITEMS_FAILED_BY_ERROR,
    VERDICT_EXIT_STATUS,
    VERDICT_REASON,
)
from ptmscrape.verdict import FAILED_PAGES, NOTHING_STORED, Verdict, left_out, verdict

logger = logging.getLogger(__name__)


class StatsFile:
    """Writes the crawl's stats (finish reason, ``ptm/…`` counters, …) as JSON to ``PTM_STATS_FILE``.

    Written when the spider closes, and again when the engine stops: by then every other
    ``spider_closed`` handler (removed-model report, monitors) has added its counters.
    """

    def __init__(self, crawler, path: str):
        self.crawler = crawler
        self.path = Path(path)
        self.reason: str | None = None
        self.failed = False

    @classmethod
    def from_crawler(cls, crawler):
        path = crawler.settings.get("PTM_STATS_FILE")
        if not path:
            raise NotConfigured
        ext = cls(crawler, path)
        crawler.signals.connect(ext.spider_closed, signal=signals.spider_closed)
        crawler.signals.connect(ext.engine_stopped, signal=signals.engine_stopped)
        return ext

    def spider_closed(self, spider, reason):
        self.reason = reason
        self.write()

    def engine_stopped(self):
        if self.reason is not None and self.write():
            logger.info("Run report written to %s", self.path)

    def write(self) -> bool:
        """Write the report whole or not at all (a full disk leaves the one before, or none)."""
        stats = dict(self.crawler.stats.get_stats())
        stats.setdefault("finish_reason", self.reason)
        try:
            write_report(self.path, stats)
        except OSError as exc:
            if not self.failed:  # written twice (spider closed, engine stopped): said once
                logger.error("Could not write the run report %s (PTM_STATS_FILE): %s. The crawl's stats are in "
                             "its log (\"Dumping Scrapy stats\").", self.path, exc)
            self.failed = True
            return False
        return True


def write_report(path: Path, stats: dict) -> None:
    """``stats`` as JSON at ``path``, whole or not at all; raises ``OSError``."""
    tmp = path.with_name(path.name + ".tmp")
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp.write_text(json.dumps(stats, indent=1, sort_keys=True, default=_jsonable) + "\n")
        tmp.replace(path)
    except OSError:
        try:
            tmp.unlink(missing_ok=True)
        except OSError:  # its folder is not one
            pass
        raise


def forget_report(path: str | None) -> None:
    """Remove an earlier run's report as a run starts: a run that writes none (killed) must not
    leave the previous run's verdict (exit status 0, perhaps) where this run's is looked for."""
    if path:
        try:
            Path(path).unlink(missing_ok=True)
        except OSError:  # not a file (a folder, no permission): writing it will say so
            pass


def _jsonable(value):
    if isinstance(value, (dt.datetime, dt.date)):
        return value.isoformat()
    return str(value)


class CloneProgress:
    """Logs the clone stage's progress every ``PTM_PROGRESS_INTERVAL`` seconds, and once at the end.

    Scrapy's LogStats (``LOGSTATS_INTERVAL``) reports pages and items per minute; git work runs in
    threads it does not see. This reads the ``ptm/clone/*`` counters of the clone stage: waiting,
    running, done and failed count repositories (several models may share one), then the models
    handled, failed (including unsafe URLs refused before any git) and skipped.
    """

    def __init__(self, crawler, interval: float):
        self.stats = crawler.stats
        self.interval = interval
        self.task = None
        self.last_done = 0

    @classmethod
    def from_crawler(cls, crawler):
        interval = crawler.settings.getfloat("PTM_PROGRESS_INTERVAL")
        if interval <= 0 or not crawler.settings.getbool("PTM_CLONE"):
            raise NotConfigured
        ext = cls(crawler, interval)
        crawler.signals.connect(ext.spider_opened, signal=signals.spider_opened)
        crawler.signals.connect(ext.spider_closed, signal=signals.spider_closed)
        return ext

    def spider_opened(self, spider):
        self.task = create_looping_call(self.log)
        self.task.start(self.interval, now=False)

    def spider_closed(self, spider, reason):
        if self.task is not None and self.task.running:
            self.task.stop()
        logger.info("Clones at the end: %s", self.line(final=True))

    def log(self):
        logger.info("Clones: %s", self.line())

    def line(self, final: bool = False) -> str:
        """``3 waiting, 4 running, 110 done (…), 2 failed; 130 models (2 failed, 15 skipped); …``:
        waiting (submitted, no thread yet), running, done and failed count repositories, each
        once however many models share it; then the models the clone stage has handled."""
        get = self.stats.get_value
        done = {kind: get(CLONE_REPOS_BY_STATUS + kind, 0) for kind in ("cloned", "updated", "unchanged")}
        finished = sum(done.values())
        models = sum(get(CLONE_BY_STATUS + kind, 0) for kind in ("cloned", "updated", "unchanged", "failed", "skipped"))
        no_space = get(CLONE_FAILED_NO_DISK_SPACE, 0)
        local = get(CLONE_FAILED_LOCALLY, 0)
        retrying = get(CLONE_RETRYING, 0)  # named only while some are: a rate-limited git host
        text = (f"{get(CLONE_WAITING, 0)} waiting, {get(CLONE_RUNNING, 0)} running, "
                + (f"{retrying} waiting to retry, " if retrying else "") +
                f"{finished} done ({', '.join(f'{n} {kind}' for kind, n in done.items())}), "
                f"{get(CLONE_REPOS_BY_STATUS + 'failed', 0)} failed; {models} models "
                f"({get(CLONE_FAILED, 0)} failed, "
                + (f"{no_space} of them for lack of disk space, " if no_space else "")
                + (f"{local} of them for a reason of this machine, " if local else "")
                + f"{get(CLONE_SKIPPED, 0)} skipped); "
                f"{human_bytes(get(CLONE_BYTES, 0))} landed")
        if not final:
            rate = (finished - self.last_done) * 60 / self.interval
            self.last_done = finished
            text += f" ({rate:.0f} done/min)"
        return text


def human_bytes(n: int | float) -> str:
    for unit in ("B", "KiB", "MiB", "GiB"):
        if n < 1024:
            return f"{n:.0f} {unit}" if unit == "B" else f"{n:.1f} {unit}"
        n /= 1024
    return f"{n:.1f} TiB"


class CrawlVerdict:
    """The crawl's verdict (``ptmscrape/verdict.py``): exit status and reason.

    * When the spider goes idle with failed pages (or nothing stored), it closes with finish
      reason ``failed_pages`` (``nothing_stored``) instead of ``finished``, so the stats, the
      ``Spider closed (…)`` line and Scrapyd's log say so (not in a distributed crawl, whose
      shared Redis queue is only cleared by a ``finished`` worker).
    * A model an item stage raised on (``item_error``: not a DropItem) is counted as lost
      (``ptm/items/failed``), which fails the crawl.
    * When the engine has stopped (spidermon's monitors have run by then), the verdict goes into
      the stats (``ptm/verdict/exit_status``, ``ptm/verdict/reason``) before ``StatsFile`` writes
      them, and is logged as the crawl's last line; ``scrapy crawl`` exits with it. Just before it, a
      WARNING says what the crawl left out (models dropped, clones failed, history calls and pages
      not read) and where each is named (``verdict.left_out``): an exit status 0 does not mean none.
    """

    def __init__(self, crawler):
        self.crawler = crawler
        self.stats = crawler.stats
        self.result: Verdict | None = None

    @classmethod
    def from_crawler(cls, crawler):
        ext = cls(crawler)
        crawler.signals.connect(ext.spider_idle, signal=signals.spider_idle)
        crawler.signals.connect(ext.spider_opened, signal=signals.spider_opened)
        crawler.signals.connect(ext.item_error, signal=signals.item_error)
        # Connected before StatsFile's (extensions are built in priority order).
        crawler.signals.connect(ext.decide, signal=signals.engine_stopped)
        return ext

    @property
    def expect_records(self) -> bool:
        spider = self.crawler.spider
        return getattr(spider, "limit", None) != 0 and not distributed.enabled(self.crawler.settings)

    def spider_opened(self, spider):
        # Connected last of all engine_stopped handlers: the verdict is the last line of the log.
        self.crawler.signals.connect(self.log, signal=signals.engine_stopped)

    def item_error(self, item, response, spider, failure):
        # Scrapy logs the traceback ("Error processing …") and counts nothing: the model would be
        # lost without a trace in the stats or the exit status.
        self.stats.inc_value(ITEMS_FAILED)
        self.stats.inc_value(ITEMS_FAILED_BY_ERROR + failure.type.__name__)

    def spider_idle(self, spider):
        if distributed.enabled(self.crawler.settings):
            return
        result = verdict(self.stats.get_stats(), expect_records=self.expect_records)
        if result.status and result.finish_reason in (FAILED_PAGES, NOTHING_STORED):
            raise CloseSpider(result.finish_reason)

    def decide(self):
        self.result = verdict(self.stats.get_stats(), expect_records=self.expect_records,
                              jobdir=bool(self.crawler.settings.get("JOBDIR")))
        self.stats.set_value(VERDICT_EXIT_STATUS, self.result.status)
        self.stats.set_value(VERDICT_REASON, self.result.reason)

    def log(self):
        if self.result is not None:
            spider = getattr(self.crawler, "spider", None)
            text = left_out(self.stats.get_stats(), getattr(spider, "name", "<hub>"),
                            str(self.crawler.settings.get("PTM_DATA_DIR") or ""))
            if text:
                logger.warning("Left out by this crawl: %s", text)
            logger.log(self.result.log_level(self.crawler.settings), "%s", self.result.line)


class WaitReport:
    """Names the downloads a crawl is waiting on: every ``PTM_WAIT_REPORT_INTERVAL`` seconds, each
    request in the downloader for longer than that is logged with its URL, how long it has waited,
    which attempt it is and when it is given up (``DOWNLOAD_TIMEOUT``, ``RETRY_TIMES``). A hub that
    accepts connections and never answers is then visible within the interval, not only as
    "Crawled 0 pages" lines."""

    def __init__(self, crawler, interval: float):
        self.crawler = crawler
        self.interval = interval
        self.timeout = crawler.settings.getfloat("DOWNLOAD_TIMEOUT")
        self.retries = crawler.settings.getint("RETRY_TIMES")
        self.in_flight: dict[int, tuple[float, object]] = {}
        self.task = None

    @classmethod
    def from_crawler(cls, crawler):
        interval = crawler.settings.getfloat("PTM_WAIT_REPORT_INTERVAL")
        if interval <= 0:
            raise NotConfigured
        ext = cls(crawler, interval)
        crawler.signals.connect(ext.reached, signal=signals.request_reached_downloader)
        crawler.signals.connect(ext.left, signal=signals.request_left_downloader)
        crawler.signals.connect(ext.spider_opened, signal=signals.spider_opened)
        crawler.signals.connect(ext.spider_closed, signal=signals.spider_closed)
        return ext

    def reached(self, request, spider):
        self.in_flight[id(request)] = (time.monotonic(), request)

    def left(self, request, spider):
        self.in_flight.pop(id(request), None)

    def spider_opened(self, spider):
        self.task = create_looping_call(self.report)
        self.task.start(self.interval, now=False)

    def spider_closed(self, spider, reason):
        if self.task is not None and self.task.running:
            self.task.stop()

    def report(self):
        now = time.monotonic()
        waiting = sorted(((started, request) for started, request in self.in_flight.values()
                          if now - started >= self.interval), key=lambda pair: pair[0])
        for started, request in waiting[:10]:
            attempt = request.meta.get("retry_times", 0) + 1
            timeout = request.meta.get("download_timeout", self.timeout)
            url, splash = splash_page(request)
            if splash:  # the wait is on the Splash server rendering the page
                url = f"{url} through Splash at {splash}"
            logger.warning("Waiting %.0f s for %s (attempt %d of %d; each attempt is given up after "
                           "DOWNLOAD_TIMEOUT=%g s)", now - started, url, attempt,
                           self.retries + 1, timeout)
        if len(waiting) > 10:
            logger.warning("... and %d more request(s) waiting over %g s", len(waiting) - 10, self.interval)
