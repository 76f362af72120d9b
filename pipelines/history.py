"""History stage: writes the ``-a history=…`` items (commits, refs, discussions, events, files)
into ``<data>/<hub>/history/`` (see ``ptmscrape/history/store.py``).

It runs first and consumes its items: they are not models, so they never reach the record stages
or the feed. Each one is dropped once stored, with a DEBUG line, as ``HistoryStored``.

A full disk (or any other error writing the history files): no line is left half-written
(``append_shared``), the call whose lines were not written is lost as one that failed after
retries (an ERROR naming the model, ``ptm/history/lost/<reason>``, a line in ``failures.jsonl``
if that file still takes one; with a JOBDIR the call is fetched again when the job resumes), and
the crawl is stopped as the store stage stops it (finish reason ``store_failed``). From then on no
item's lines are written (failure lines are): a state line written later, once the disk has a
little room, would vouch for lines of the same call that were not, and the next crawl would never
ask for them again.
"""

from __future__ import annotations

import logging

from scrapy.exceptions import DropItem

from pipelines.store import stop_the_crawl
from ptmscrape.dataset.tree import DatasetTree
from ptmscrape.history.store import FAILURES_FILE, HistoryItem, HistoryStore, history_file
from ptmscrape.items import printable
from ptmscrape.stats import HISTORY_STORED_BY_FILE, HISTORY_STORED_FAILURES

logger = logging.getLogger(__name__)


class HistoryStored(DropItem):
    """A history item, stored in the history files (not a model: kept out of the feed)."""

    def __init__(self, message: str):
        super().__init__(message, log_level="DEBUG")


class HistoryNotStored(DropItem):
    """A history item the history files did not take: its ERROR is the spider's (the call is lost)."""

    def __init__(self, message: str):
        super().__init__(message, log_level="DEBUG")


class HistoryPipeline:
    def __init__(self, crawler):
        self.crawler = crawler
        self.stats = crawler.stats
        self.tree = DatasetTree.from_crawler(crawler)
        self.store = HistoryStore(self.tree)
        self.stopped_by: OSError | None = None  # the first failed write: the crawl is being stopped

    @classmethod
    def from_crawler(cls, crawler):
        return cls(crawler)

    async def process_item(self, item):
        if not isinstance(item, HistoryItem):
            return item
        try:
            if self.stopped_by is not None and (item.rows or item.states or item.began):
                raise self._not_stored(item, self.stopped_by)
            written = self.store.write(item)
        except OSError as exc:
            raise self._not_stored(item, exc) from None
        for name, n in written.items():
            self.stats.inc_value(f"{HISTORY_STORED_BY_FILE}{name}", n)
        if item.failure:
            self.stats.inc_value(HISTORY_STORED_FAILURES)
        raise HistoryStored(f"stored {item!r}")

    def _not_stored(self, item: HistoryItem, exc: OSError) -> HistoryNotStored:
        """Count the call of an item the tree did not take as lost, record it if the failures file
        still takes a line, and stop the crawl (once). Returns the exception that drops the item."""
        reason = exc.strerror or type(exc).__name__  # "No space left on device": no numbers, no path
        if item.rows or item.states or item.began:
            failure = self.crawler.spider.history_not_stored(item, reason)
            try:
                self.store.write(failure)
                self.stats.inc_value(HISTORY_STORED_FAILURES)
            except OSError:
                pass  # the ERROR and ptm/history/lost say it; the next crawl asks the call again anyway
        else:  # the item was the failure line of a call already counted (refused, or lost)
            logger.error("History of %s (%s): its failure (%s) not recorded in %s: %s",
                         printable(f"{item.hub}:{item.model_id}"), item.kind, (item.failure or {}).get("reason"),
                         history_file(item.hub, FAILURES_FILE), reason)
        if self.stopped_by is None:
            self.stopped_by = exc
            stop_the_crawl(self.crawler, self.tree, exc, "the history calls not stored are asked for again "
                           "by the next crawl")
        return HistoryNotStored(f"{item!r}: not stored: {reason}")
