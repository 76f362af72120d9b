"""Log lines about items stay short: a dropped or failed item is shown cut to a few hundred
characters (its exception already names the model and the reason), so one hostile payload with a
megabyte-long field cannot flood the log."""

from __future__ import annotations

from scrapy import logformatter

MAX_ITEM_CHARS = 500


def short_repr(item) -> str:
    text = repr(item)
    if len(text) <= MAX_ITEM_CHARS:
        return text
    return f"{text[:MAX_ITEM_CHARS]}… ({len(text)} characters)"


class ConciseLogFormatter(logformatter.LogFormatter):
    def dropped(self, item, exception, response, spider):
        result = super().dropped(item, exception, response, spider)
        result["args"] = {**result["args"], "item": short_repr(item)}
        return result

    def item_error(self, item, exception, response, spider):
        result = super().item_error(item, exception, response, spider)
        result["args"] = {**result["args"], "item": short_repr(item)}
        return result
