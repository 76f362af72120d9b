"""Stage 5: write the raw payload and the record into the dataset tree.

* raw payload -> one line of this crawl's ``<data>/<hub>/json/payloads/<hub>-<stamp>.jsonl``,
  written before the record; the record's ``MetadataFilePath`` becomes its locator
  ``<file>#<byte offset>`` (``python -m ptmscrape.payload`` reads it back). One file per crawl
  (per worker): a crawl writes O(1) payload files, not one per model. A payload equal to the
  stored one (``StoredPayloads``) is not written again: the record keeps its earlier locator;
* record -> this crawl's snapshot ``<data>/<hub>/snapshots/<hub>-<stamp>.jsonl`` (one flushed line
  each, so a kill loses nothing already stored);
* distributed crawl: the model's id is then noted in Redis as stored
  (``ptmscrape.distributed.shared_stored_set``), so when this worker dies before it is done with
  the model, the worker it is put back to does not store it again;
* at close (and at the next start, for a crawl that was killed) the snapshots are merged into
  ``<data>/<hub>/<hub>.jsonl``, which keeps the newest record of every model: a re-crawl updates it
  and never duplicates.

A full disk (or any other error writing this crawl's payload file or snapshot, which every model's
lines go to: a read-only or failing file system, a quota) while storing a model: the model is
dropped (:class:`NotStored`, an ERROR naming it and the reason; ``ptm/store/failed/<reason>``), no
line is left half-written (``LineAppender``), and the crawl is stopped (finish reason
``store_failed``, exit status 1) instead of failing every following model one by one. The models
already in flight (up to the listing pages fetched ahead: thousands) are counted the same way and
signalled (``ptmscrape.signals.model_not_stored``: with a JOBDIR the request that gave the model is
fetched again when the job resumes); the first :data:`NAMED_NOT_STORED` are named at ERROR, the rest
at DEBUG after one ERROR line saying so, so the stop stays readable in the log. Nothing else
this stage does per model can fail on the file system: a stored payload that cannot be read is
written again (``StoredPayloads``).
What was stored is merged as usual; if the merge itself fails, the snapshot stays pending and the
next crawl merges it.

Models of ``<hub>.jsonl`` this crawl did not see are reported by an extension
(``ptmscrape/removed.py``), to which this stage signals the snapshot it writes
(``ptmscrape.signals.snapshot_opened``) and what the merge found (``records_merged``).
"""

from __future__ import annotations

import errno
import logging
import os
import secrets
import time

from scrapy.exceptions import DropItem
from scrapy.utils.defer import deferred_from_coro

from ptmscrape import distributed, jobdir, signals as ptm_signals
from ptmscrape.dataset.jsonl import compact_json
from ptmscrape.dataset.payloads import PayloadWriter, StoredPayloads
from ptmscrape.dataset.snapshots import SnapshotWriter, merge_interrupted, merge_records, pending_snapshots
from ptmscrape.dataset.tree import DatasetTree
from ptmscrape.items import RawModelItem
from ptmscrape.stats import (
    STORE_DATASET_RECORDS,
    STORE_FAILED,
    STORE_FAILED_BY_REASON,
    STORE_MERGE_FAILED,
    STORE_NOT_SEEN_THIS_CRAWL,
    STORE_RAW_PAYLOADS,
    STORE_RAW_PAYLOADS_UNCHANGED,
    STORE_RECORDS,
    STORE_SNAPSHOT,
)
from ptmscrape.verdict import STORE_FAILED_REASON

logger = logging.getLogger(__name__)

_NO_SPACE = frozenset({errno.ENOSPC, errno.EDQUOT})  # what freeing disk space mends

# Models not stored that get an ERROR line of their own; the rest of the models in flight (a
# crawl stopped with six listing pages fetched ahead logged 5,085 such lines) are logged at DEBUG.
NAMED_NOT_STORED = 10


def payload_line(raw: RawModelItem) -> bytes:
    """The payload's line: the text the hub served when the spider has it and it fits on one
    line, else the payload compact (indenting would need json's pure-Python encoder, which costs
    more than everything else this stage does)."""
    served = raw.payload_json
    if served is not None and "\n" not in served and "\r" not in served:
        try:
            return served.encode()
        except UnicodeEncodeError:  # a lone surrogate, raw in a malformed body json accepts
            pass
    return compact_json(raw.payload).encode()


class NotStored(DropItem):
    """The dataset tree did not take the model's record (a full disk, …): logged at ERROR."""

    def __init__(self, message: str, log_level: str = "ERROR"):
        super().__init__(message, log_level=log_level)


class StorePipeline:
    def __init__(self, crawler):
        self.crawler = crawler
        self.stats = crawler.stats
        self._count = crawler.stats.inc_value  # bound once (Scrapy's own STATS_CLASS wraps each read)
        self.tree = DatasetTree.from_crawler(crawler)
        self.writer: SnapshotWriter | None = None
        self.payloads: PayloadWriter | None = None
        self.stored: StoredPayloads | None = None
        self.stamp = ""
        self.not_stored = 0  # models the tree did not take: from the first, the crawl is being stopped
        self.stored_by_workers = distributed.shared_stored_set(crawler)

    @classmethod
    def from_crawler(cls, crawler):
        return cls(crawler)

    @property
    def hub(self) -> str:
        return self.crawler.spider.name

    def open_spider(self):
        merged, records, stale = merge_interrupted(self.tree, self.hub)
        if stale:
            logger.info("Removed %d temp file(s) of a killed crawl's unfinished writes", stale)
        if merged:
            logger.info("Merged %d snapshot(s) of interrupted crawls into %s (%d records)", merged, self.hub, records)
        self.stamp = stamp = crawl_stamp()
        self.writer = SnapshotWriter(self.tree, self.hub, stamp)
        self.payloads = PayloadWriter(self.tree, self.hub, stamp)
        self.stored = StoredPayloads(self.tree, self.hub)
        jobdir.remember_snapshot(self.crawler.settings, self.writer.path)
        self.stats.set_value(STORE_SNAPSHOT, self.writer.relative)
        logger.info("Dataset tree: %s (snapshot %s)", self.tree.root, self.writer.relative)
        self.crawler.signals.send_catch_log(ptm_signals.snapshot_opened, tree=self.tree, hub=self.hub, stamp=stamp,
                                            snapshot=self.writer.path)

    async def process_item(self, record):
        # Only this crawl's own two files are written here, the same for every model: an OSError
        # from them is the machine's (StoredPayloads.unchanged reads stored payloads and never raises).
        try:
            raw = record.raw
            if raw is not None:
                line = payload_line(raw)
                locator = self.stored.unchanged(record["id"], line) if self.stored else None
                if locator is None:
                    locator = self.payloads.write(line)
                else:
                    self._count(STORE_RAW_PAYLOADS_UNCHANGED)
                record["ModelHub"]["MetadataFilePath"] = locator
                self._count(STORE_RAW_PAYLOADS)
            self.writer.write(record)
        except OSError as exc:
            raise self._not_stored(record, exc) from None
        if self.stored_by_workers is not None:
            # Once its line is written: should this worker die before it is done with the model, the
            # worker it is put back to does not store it again (dying in between, it stores it twice).
            self.stored_by_workers.add_or(record["id"], False, record.label, "stored, not noted")
        self._count(STORE_RECORDS)
        return record

    def _not_stored(self, record, exc: OSError) -> NotStored:
        """Count a record the tree did not take and stop the crawl (once): every later model would
        fail the same way. Returns the exception that drops the item."""
        reason = exc.strerror or type(exc).__name__  # "No space left on device": no numbers, no path
        self._count(STORE_FAILED)
        self._count(STORE_FAILED_BY_REASON + reason)
        raw = record.raw
        self.crawler.signals.send_catch_log(ptm_signals.model_not_stored, reason=reason,
                                            request=raw.request if raw is not None else None)
        self.not_stored += 1
        if self.not_stored == 1:
            stop_the_crawl(self.crawler, self.tree, exc, f"what was stored is merged into {self.hub}/{self.hub}.jsonl")
        message = f"{record.label}: not stored: {reason}"
        if self.not_stored <= NAMED_NOT_STORED:
            return NotStored(message)
        if self.not_stored == NAMED_NOT_STORED + 1:
            logger.error("More models in flight are not stored (%s): they are logged at DEBUG from here on; "
                         "the crawl verdict gives how many (ptm/store/failed)", reason)
        return NotStored(message, log_level="DEBUG")

    def close_spider(self):
        if self.writer is None:
            return
        self.writer.close()
        self.payloads.close()
        self.stored.close()
        snapshots = pending_snapshots(self.tree, self.hub)
        if self.writer.path not in snapshots:
            # Another worker sharing this data dir (distributed crawl) started meanwhile and merged
            # our snapshot so far as "interrupted"; merge it again for the records written since.
            snapshots.append(self.writer.path)
        try:
            counts = merge_records(self.tree, self.hub, snapshots, written=self.writer)
        except OSError as exc:
            # The merge writes a new <hub>.jsonl beside the old one, then renames it: the old one is
            # whole, and the snapshot stays pending (its .pending marker), so nothing is lost.
            self.stats.set_value(STORE_MERGE_FAILED, 1)
            logger.error("Could not merge this crawl's snapshot %s into %s: %s. Nothing is lost: %s "
                         "is unchanged and the snapshot stays pending; the next crawl of %s merges it "
                         "(free disk space first).", self.writer.relative,
                         self.tree.path(f"{self.hub}/{self.hub}.jsonl"), exc,
                         f"{self.hub}/{self.hub}.jsonl", self.hub)
            return
        self.crawler.signals.send_catch_log(ptm_signals.records_merged, snapshots=snapshots, carried=counts["carried"])
        self.stats.set_value(STORE_DATASET_RECORDS, counts["records"])
        self.stats.set_value(STORE_NOT_SEEN_THIS_CRAWL, counts["carried"])
        logger.info("%s now holds %d models (%d not seen in this crawl)",
                    self.tree.path(f"{self.hub}/{self.hub}.jsonl"), counts["records"], counts["carried"])


def stop_the_crawl(crawler, tree: DatasetTree, exc: OSError, kept: str) -> None:
    """Close the spider (finish reason ``store_failed``): the dataset tree refused a write every
    later item would meet too (a full disk, a read-only file system). ``kept`` says, for the
    ERROR line, what becomes of what was stored. Called once per stage."""
    advice = "free disk space" if exc.errno in _NO_SPACE else "make it writable again"
    logger.error("Stopping the crawl: the dataset tree %s cannot be written (%s). Nothing stored is lost "
                 "(no half-written line is left; %s); %s, then crawl again.", tree.root, exc, kept, advice)
    engine = crawler.engine
    if engine is not None and engine.spider is not None:
        deferred_from_coro(engine.close_spider_async(reason=STORE_FAILED_REASON))


def crawl_stamp() -> str:
    """The part of this crawl's file names (snapshot, payload file, removed report) that is its
    own: UTC time, pid and a random part, since workers on other machines sharing the data dir (a
    network file system) can start in the same second with the same pid, as crawls in containers do."""
    return time.strftime("%Y%m%dT%H%M%SZ", time.gmtime()) + f"-{os.getpid()}-{secrets.token_hex(3)}"
