"""History stage: writes the ``-a history=…`` items (commits, refs, discussions, events, files)
into ``<data>/<hub>/history/`` (see ``ptmscrape/history/store.py``).

It runs first and consumes its items: they are not models, so they never reach the record stages
or the feed. Each one is dropped once stored, with a DEBUG line, as ``HistoryStored``.
"""

from __future__ import annotations

from scrapy.exceptions import DropItem

from ptmscrape.dataset.tree import DatasetTree
from ptmscrape.history.store import HistoryItem, HistoryStore
from ptmscrape.stats import HISTORY_STORED_BY_FILE, HISTORY_STORED_FAILURES


class HistoryStored(DropItem):
    """A history item, stored in the history files (not a model: kept out of the feed)."""

    def __init__(self, message: str):
        super().__init__(message, log_level="DEBUG")


class HistoryPipeline:
    def __init__(self, crawler):
        self.stats = crawler.stats
        self.store = HistoryStore(DatasetTree.from_crawler(crawler))

    @classmethod
    def from_crawler(cls, crawler):
        return cls(crawler)

    async def process_item(self, item):
        if not isinstance(item, HistoryItem):
            return item
        for name, n in self.store.write(item).items():
            self.stats.inc_value(f"{HISTORY_STORED_BY_FILE}{name}", n)
        if item.failure:
            self.stats.inc_value(HISTORY_STORED_FAILURES)
        raise HistoryStored(f"stored {item!r}")
