"""Stage 5: write the raw payload and the record into the dataset tree.

* raw payload -> one line of this crawl's ``<data>/<hub>/json/payloads/<hub>-<stamp>.jsonl``,
  written before the record; the record's ``MetadataFilePath`` becomes its locator
  ``<file>#<byte offset>`` (``python -m ptmscrape.payload`` reads it back). One file per crawl
  (per worker): a crawl writes O(1) payload files, not one per model. A payload equal to the
  stored one (``StoredPayloads``) is not written again: the record keeps its earlier locator;
* record -> this crawl's snapshot ``<data>/<hub>/snapshots/<hub>-<stamp>.jsonl`` (one flushed line
  each, so a kill loses nothing already stored);
* at close (and at the next start, for a crawl that was killed) the snapshots are merged into
  ``<data>/<hub>/<hub>.jsonl``, which keeps the newest record of every model: a re-crawl updates it
  and never duplicates.

Models of ``<hub>.jsonl`` this crawl did not see are reported by an extension
(``ptmscrape/removed.py``), to which this stage signals the snapshot it writes
(``ptmscrape.signals.snapshot_opened``) and what the merge found (``records_merged``).
"""

from __future__ import annotations

import logging
import os
import time

from ptmscrape import jobdir, signals as ptm_signals
from ptmscrape.dataset.jsonl import compact_json
from ptmscrape.dataset.payloads import PayloadWriter, StoredPayloads
from ptmscrape.dataset.snapshots import SnapshotWriter, merge_interrupted, merge_records, pending_snapshots
from ptmscrape.dataset.tree import DatasetTree
from ptmscrape.items import RawModelItem
from ptmscrape.stats import (
    STORE_DATASET_RECORDS,
    STORE_NOT_SEEN_THIS_CRAWL,
    STORE_RAW_PAYLOADS,
    STORE_RAW_PAYLOADS_UNCHANGED,
    STORE_RECORDS,
    STORE_SNAPSHOT,
)

logger = logging.getLogger(__name__)


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
        self.stamp = stamp = time.strftime("%Y%m%dT%H%M%SZ", time.gmtime()) + f"-{os.getpid()}"
        self.writer = SnapshotWriter(self.tree, self.hub, stamp)
        self.payloads = PayloadWriter(self.tree, self.hub, stamp)
        self.stored = StoredPayloads(self.tree, self.hub)
        jobdir.remember_snapshot(self.crawler.settings, self.writer.path)
        self.stats.set_value(STORE_SNAPSHOT, self.writer.relative)
        logger.info("Dataset tree: %s (snapshot %s)", self.tree.root, self.writer.relative)
        self.crawler.signals.send_catch_log(ptm_signals.snapshot_opened, tree=self.tree, hub=self.hub, stamp=stamp,
                                            snapshot=self.writer.path)

    async def process_item(self, record):
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
        self._count(STORE_RECORDS)
        return record

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
        counts = merge_records(self.tree, self.hub, snapshots, written=self.writer)
        self.crawler.signals.send_catch_log(ptm_signals.records_merged, snapshots=snapshots, carried=counts["carried"])
        self.stats.set_value(STORE_DATASET_RECORDS, counts["records"])
        self.stats.set_value(STORE_NOT_SEEN_THIS_CRAWL, counts["carried"])
        logger.info("%s now holds %d models (%d not seen in this crawl)",
                    self.tree.path(f"{self.hub}/{self.hub}.jsonl"), counts["records"], counts["carried"])
