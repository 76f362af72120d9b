"""spidermon 1.27 made to log the Scrapy 2.19 way; loaded only with ``PTM_MONITORS`` on.

The fix: spidermon's Scrapy extension logs its monitors' results through ``Spider.log()``,
deprecated in Scrapy 2.19 (a ScrapyDeprecationWarning on every run, an error once it is removed).
:class:`Spidermon` is that extension logging through ``spider.logger`` instead. Delete it (and
point ``ptmscrape.monitors`` at ``spidermon.contrib.scrapy.extensions.Spidermon``) once
``tests/test_compat_upstream.py::test_spidermon_extension_logs_without_deprecation`` XPASSes.
"""

from __future__ import annotations

import logging

from spidermon.contrib.scrapy import extensions
from spidermon.contrib.scrapy.runners import LOG_MESSAGE_HEADER, SpiderMonitorResult, SpiderMonitorRunner


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
