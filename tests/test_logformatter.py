"""The log formatter: Scrapy's per-item DEBUG line only when DEBUG is logged."""

import logging

import pytest

from ptmscrape.items import PTMRecord
from ptmscrape.logformatter import ConciseLogFormatter
from tests.crawl import run_crawl


@pytest.mark.parametrize(("level", "built"), [("DEBUG", True), (logging.DEBUG, True), ("INFO", False),
                                               ("WARNING", False), (logging.ERROR, False)])
def test_scraped_line_is_built_only_when_debug_is_logged(crawler, level, built):
    crawler.settings.frozen = False
    crawler.settings.set("LOG_LEVEL", level)
    fmt = ConciseLogFormatter.from_crawler(crawler)
    out = fmt.scraped(PTMRecord(id=1), None, crawler.spider)
    if built:
        assert out["level"] == logging.DEBUG and out["args"]["item"] == {"id": 1}
    else:
        assert out is None
    # Dropped items are logged whatever the level (their reason is the point).
    crawler.spider.crawler = crawler
    dropped = fmt.dropped(PTMRecord(id=2), Exception("why"), None, crawler.spider)
    assert dropped["args"]["item"] == "{'id': 2}"


def test_project_formatter_is_the_concise_one(crawler):
    assert crawler.settings.get("LOG_FORMATTER") == "ptmscrape.logformatter.ConciseLogFormatter"


def test_crawl_at_debug_still_logs_each_scraped_model(tmp_path, hf_replica):
    result = run_crawl("huggingface", tmp_path, settings={
        "PTM_HUGGINGFACE_URL": hf_replica.url, "PTM_CLONE": 0, "LOG_LEVEL": "DEBUG"})
    assert result.log.count("DEBUG: Scraped from <200 ") == 12
    assert result.stats["item_scraped_count"] == 12
