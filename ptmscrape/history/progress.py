"""The history progress line: calls, models and rows, every ``PTM_PROGRESS_INTERVAL`` seconds."""

from __future__ import annotations

import logging

from scrapy import signals
from scrapy.exceptions import NotConfigured
from scrapy.utils.asyncio import create_looping_call

from ptmscrape.stats import HISTORY_CALLS, HISTORY_FAILED, HISTORY_LOST, HISTORY_MODELS, HISTORY_STORED_BY_FILE

logger = logging.getLogger(__name__)

_ROWS = ("commits", "refs", "discussions", "discussion_events", "files")


class HistoryProgress:
    """Logs ``History: 120 models, 830 calls (6.9 per model, 40/min), 3 failed (1 lost, 2 refused by
    the hub); stored 5400 commits, …`` for crawls with ``-a history``; silent otherwise."""

    def __init__(self, crawler, interval: float):
        self.stats = crawler.stats
        self.interval = interval
        self.task = None
        self.last_calls = 0

    @classmethod
    def from_crawler(cls, crawler):
        interval = crawler.settings.getfloat("PTM_PROGRESS_INTERVAL")
        if interval <= 0:
            raise NotConfigured
        ext = cls(crawler, interval)
        crawler.signals.connect(ext.spider_opened, signal=signals.spider_opened)
        crawler.signals.connect(ext.spider_closed, signal=signals.spider_closed)
        return ext

    def spider_opened(self, spider):
        if getattr(spider, "history_kinds", ()):
            self.task = create_looping_call(self.log)
            self.task.start(self.interval, now=False)

    def spider_closed(self, spider, reason):
        if self.task is None:
            return
        if self.task.running:
            self.task.stop()
        logger.info("History at the end: %s", self.line(final=True))

    def log(self):
        logger.info("History: %s", self.line())

    def line(self, final: bool = False) -> str:
        get = self.stats.get_value
        models, calls = get(HISTORY_MODELS, 0), get(HISTORY_CALLS, 0)
        per_model = f"{calls / models:.1f} per model" if models else "no models yet"
        if not final:
            per_model += f", {(calls - self.last_calls) * 60 / self.interval:.0f}/min"
            self.last_calls = calls
        stored = ", ".join(f"{get(HISTORY_STORED_BY_FILE + k, 0)} {k}" for k in _ROWS)
        # Lost calls fail the crawl; the hub's refusals (gated, private, deleted) are expected.
        # (A call an earlier run of a JOBDIR job lost counts as lost, not in ptm/history/failed.)
        failed, lost = get(HISTORY_FAILED, 0), get(HISTORY_LOST, 0)
        return (f"{models} models, {calls} calls ({per_model}), {max(failed, lost)} failed ({lost} lost, "
                f"{max(failed - lost, 0)} refused by the hub); stored {stored}")
