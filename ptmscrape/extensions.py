"""Scrapy extensions: the end-of-run report and clone progress on long crawls."""

from __future__ import annotations

import datetime as dt
import json
import logging
from pathlib import Path

from scrapy import signals
from scrapy.exceptions import NotConfigured
from scrapy.utils.asyncio import create_looping_call

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
        if self.reason is not None:
            self.write()
            logger.info("Run report written to %s", self.path)

    def write(self):
        stats = dict(self.crawler.stats.get_stats())
        stats.setdefault("finish_reason", self.reason)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        tmp = self.path.with_name(self.path.name + ".tmp")
        tmp.write_text(json.dumps(stats, indent=1, sort_keys=True, default=_jsonable) + "\n")
        tmp.replace(self.path)


def _jsonable(value):
    if isinstance(value, (dt.datetime, dt.date)):
        return value.isoformat()
    return str(value)


class CloneProgress:
    """Logs the clone stage's progress every ``PTM_PROGRESS_INTERVAL`` seconds, and once at the end.

    Scrapy's LogStats (``LOGSTATS_INTERVAL``) reports pages and items per minute; git work runs in
    threads it does not see. This reads the ``ptm/clone/*`` counters of the clone stage: queued
    and running count git jobs (one per repository), done/failed/skipped count models (several
    models may share one repository).
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
        get = self.stats.get_value
        done = {kind: get(f"ptm/clone/{kind}", 0) for kind in ("cloned", "updated", "unchanged")}
        finished = sum(done.values())
        text = (f"{get('ptm/clone/queued', 0)} queued, {get('ptm/clone/running', 0)} running, "
                f"{finished} done ({', '.join(f'{n} {kind}' for kind, n in done.items())}), "
                f"{get('ptm/clone/failed', 0)} failed, {get('ptm/clone/skipped', 0)} skipped; "
                f"{human_bytes(get('ptm/clone/bytes', 0))} landed")
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
