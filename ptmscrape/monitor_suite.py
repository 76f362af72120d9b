"""The spidermon side of ``PTM_MONITORS`` (see ``ptmscrape/monitors.py``): the monitor suite, an
action putting its verdicts into the stats, and spidermon's extension logging via ``spider.logger``
(spidermon 1.27 calls ``Spider.log()``, deprecated in Scrapy 2.19)."""

from __future__ import annotations

import logging

from spidermon import MonitorSuite
from spidermon.contrib.scrapy import extensions
from spidermon.contrib.scrapy.monitors import ErrorCountMonitor, FinishReasonMonitor, ItemCountMonitor
from spidermon.contrib.scrapy.runners import LOG_MESSAGE_HEADER, SpiderMonitorResult, SpiderMonitorRunner
from spidermon.core.actions import Action


class CountResults(Action):
    """Puts the monitors' verdicts into the crawl's stats."""

    def run_action(self):
        stats = self.data.crawler.stats
        passed = self.result.monitors_passed_results
        failed = self.result.monitors_failed_results
        stats.set_value("ptm/monitors/passed", len(passed))  # skipped ones included
        stats.set_value("ptm/monitors/failed", len(failed))
        for outcome in failed:
            stats.inc_value(f"ptm/monitors/failed/{outcome.item.monitor_name}")


class CrawlMonitors(MonitorSuite):
    monitors = [ItemCountMonitor, ErrorCountMonitor, FinishReasonMonitor]
    monitors_finished_actions = [CountResults]


class _LoggerResult(SpiderMonitorResult):
    def log(self, msg, level=logging.DEBUG):
        self.spider.logger.log(level, "[%s] %s", LOG_MESSAGE_HEADER, msg)


class _Runner(SpiderMonitorRunner):
    def create_result(self):
        return _LoggerResult(self.spider)


class Spidermon(extensions.Spidermon):
    """spidermon's Scrapy extension, its results logged with ``spider.logger``."""

    def _run_suites(self, spider, suites):
        data = self._generate_data_for_spider(spider)
        for suite in suites:
            _Runner(spider=spider).run(suite, **data)
