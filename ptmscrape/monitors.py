"""Optional end-of-crawl checks with spidermon: ``-s PTM_MONITORS=1``.

The add-on :class:`Monitors` (in ``ADDONS``) does nothing unless ``PTM_MONITORS`` is on; then it
enables spidermon's extension with ``monitor_suite.CrawlMonitors``, spidermon's own monitors:

* at least ``SPIDERMON_MIN_ITEMS`` items stored (default 1),
* at most ``SPIDERMON_MAX_ERRORS`` error log lines (default 0),
* a finish reason in ``SPIDERMON_EXPECTED_FINISH_REASONS`` (default ``finished``).

Thresholds are spidermon's settings (``-s SPIDERMON_MIN_ITEMS=1000``); the defaults here have
add-on priority, so ``settings.py`` and the command line win. Results are logged by spidermon
(``[Spidermon]`` lines, a failed monitor at ERROR with its reason) and counted in the stats —
``ptm/monitors/passed``, ``ptm/monitors/failed``, ``ptm/monitors/failed/<monitor>`` — so they are
in ``PTM_STATS_FILE``. Spidermon's actions (Slack, e-mail, …) can be added to the suite the
spidermon way (``SPIDERMON_*`` settings).

Checked with spidermon 1.27.0 on Scrapy 2.19: the monitors work; the one gap is that spidermon
logs through ``Spider.log()``, deprecated in Scrapy 2.19 (a ScrapyDeprecationWarning on every
run, an error once it is removed). ``ptmscrape.compat.spidermon.Spidermon`` is spidermon's
extension logging through ``spider.logger`` instead; drop it when spidermon does that itself
(``tests/test_compat_upstream.py`` says when). Spidermon is imported only when the monitors are on.
"""

from __future__ import annotations

DEFAULTS = {
    "SPIDERMON_MIN_ITEMS": 1,
    "SPIDERMON_MAX_ERRORS": 0,
    "SPIDERMON_EXPECTED_FINISH_REASONS": ["finished"],
}


class Monitors:
    """Add-on: with ``PTM_MONITORS`` on, run ``monitor_suite.CrawlMonitors`` when the spider closes."""

    def update_settings(self, settings) -> None:
        if not settings.getbool("PTM_MONITORS"):
            return
        settings.set("SPIDERMON_ENABLED", True, priority="addon")
        settings["EXTENSIONS"]["ptmscrape.compat.spidermon.Spidermon"] = 510
        settings.set("SPIDERMON_SPIDER_CLOSE_MONITORS", ["ptmscrape.monitor_suite.CrawlMonitors"],
                     priority="addon")
        for name, value in DEFAULTS.items():
            settings.set(name, value, priority="addon")
