"""Log lines about items stay short: a dropped or failed item is shown cut to a few hundred
characters (its exception already names the model and the reason), so one hostile payload with a
megabyte-long field cannot flood the log.

Scrapy's per-item DEBUG line ("Scraped from …") is not even built when ``LOG_LEVEL`` is above
DEBUG: the INFO handler would drop it, after ~10 µs of work per model (bench/RESULTS.md).
With ``LOG_LEVEL = "DEBUG"`` the line is logged as Scrapy logs it."""

from __future__ import annotations

import logging

from scrapy import logformatter

MAX_ITEM_CHARS = 500


def short_repr(item) -> str:
    text = repr(item)
    if len(text) <= MAX_ITEM_CHARS:
        return text
    return f"{text[:MAX_ITEM_CHARS]}… ({len(text)} characters)"


class ConciseLogFormatter(logformatter.LogFormatter):
    def __init__(self, log_scraped: bool = True):
        self.log_scraped = log_scraped

    @classmethod
    def from_crawler(cls, crawler):
        level = crawler.settings.get("LOG_LEVEL", "DEBUG")
        level = logging.getLevelName(level) if isinstance(level, str) else level
        return cls(log_scraped=not isinstance(level, int) or level <= logging.DEBUG)

    def scraped(self, item, response, spider):
        return super().scraped(item, response, spider) if self.log_scraped else None

    def dropped(self, item, exception, response, spider):
        result = super().dropped(item, exception, response, spider)
        result["args"] = {**result["args"], "item": short_repr(item)}
        return result

    def item_error(self, item, exception, response, spider):
        result = super().item_error(item, exception, response, spider)
        result["args"] = {**result["args"], "item": short_repr(item)}
        return result
