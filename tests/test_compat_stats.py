"""``ptmscrape/compat/stats.py``: Scrapy's stats collector without the per-attribute trampoline."""

from __future__ import annotations

import warnings

import scrapy
from scrapy.exceptions import ScrapyDeprecationWarning
from scrapy.statscollectors import MemoryStatsCollector
from scrapy.utils.test import get_crawler

from ptmscrape.compat.stats import StatsCollector
from spiders.huggingface import HuggingfaceSpider
from tests.crawl import project_crawler


class _Spider(scrapy.Spider):
    name = "t"


def _exercise(stats) -> dict:
    spider = _Spider()
    stats.open_spider()
    stats.inc_value("a")
    stats.inc_value("a", 2)
    stats.inc_value("b", start=10)
    stats.inc_value("c", 1, 0, spider)  # the old positional spider argument is still accepted
    stats.max_value("hi", 3)
    stats.max_value("hi", 1)
    stats.min_value("lo", 3)
    stats.min_value("lo", 5, spider=spider)
    stats.set_value("s", "x")
    seen = dict(stats.get_stats())
    stats.close_spider(spider, reason="finished")
    return {"stats": seen, "get": stats.get_value("a"), "missing": stats.get_value("zz", 7),
            "persisted": stats.spider_stats}


def test_counts_what_scrapys_memory_collector_counts():
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # ours accepts the old spider argument without a warning
        ours = _exercise(StatsCollector(get_crawler(_Spider)))
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ScrapyDeprecationWarning)  # Scrapy's warns about it
        scrapys = _exercise(MemoryStatsCollector(get_crawler(_Spider)))
    assert ours == scrapys
    assert ours["stats"]["a"] == 3 and ours["stats"]["b"] == 11 and ours["stats"]["lo"] == 3


def test_attribute_reads_are_plain():
    stats = StatsCollector(get_crawler(_Spider))
    stats.inc_value("a")
    stats.get_value("a")
    # Scrapy's trampoline caches a wrapper per method on the instance; plain reads leave none.
    assert [name for name in vars(stats) if name.startswith("_cached_")] == []
    scrapys = MemoryStatsCollector(get_crawler(_Spider))
    scrapys.inc_value("a")
    assert "_cached_inc_value" in vars(scrapys)  # what this module avoids (see test_compat_upstream)


def test_the_project_crawls_with_it():
    crawler = project_crawler(HuggingfaceSpider)
    assert type(crawler.stats) is StatsCollector
