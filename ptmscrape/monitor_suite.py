"""The spidermon side of ``PTM_MONITORS`` (see ``ptmscrape/monitors.py``): the monitor suite and an
action putting its verdicts into the stats. (spidermon's extension, fixed to log the Scrapy 2.19
way, is ``ptmscrape.compat.spidermon.Spidermon``.)"""

from __future__ import annotations

from spidermon import MonitorSuite
from spidermon.contrib.scrapy.monitors import ErrorCountMonitor, FinishReasonMonitor, ItemCountMonitor
from spidermon.core.actions import Action

from ptmscrape.stats import MONITORS_FAILED, MONITORS_FAILED_BY_MONITOR, MONITORS_PASSED


class CountResults(Action):
    """Puts the monitors' verdicts into the crawl's stats."""

    def run_action(self):
        stats = self.data.crawler.stats
        passed = self.result.monitors_passed_results
        failed = self.result.monitors_failed_results
        stats.set_value(MONITORS_PASSED, len(passed))  # skipped ones included
        stats.set_value(MONITORS_FAILED, len(failed))
        for outcome in failed:
            stats.inc_value(f"{MONITORS_FAILED_BY_MONITOR}{outcome.item.monitor_name}")


class CrawlMonitors(MonitorSuite):
    monitors = [ItemCountMonitor, ErrorCountMonitor, FinishReasonMonitor]
    monitors_finished_actions = [CountResults]
