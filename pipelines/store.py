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

After a complete crawl, models of ``<hub>.jsonl`` the hub no longer lists are reported in
``<hub>/removed-<stamp>.txt`` (see ``ptmscrape/removed.py``); nothing is deleted. With a JOBDIR,
the crawl is the whole job: the snapshots of all its runs (listed in the JOBDIR) count as seen.
"""

from __future__ import annotations

import logging
import os
import time

from scrapy import signals

from ptmscrape import jobdir, removed
from ptmscrape.dataset import (
    DatasetTree,
    PayloadWriter,
    SnapshotWriter,
    StoredPayloads,
    compact_json,
    merge_records,
    pending_snapshots,
    remove_stale_temp_files,
)

logger = logging.getLogger(__name__)


class StorePipeline:
    def __init__(self, crawler):
        self.crawler = crawler
        self.stats = crawler.stats
        self._count = crawler.stats.inc_value  # bound once: Scrapy's stats wrap every attribute read
        self.tree = DatasetTree.from_crawler(crawler)
        self.writer: SnapshotWriter | None = None
        self.payloads: PayloadWriter | None = None
        self.stored: StoredPayloads | None = None
        self.stamp = ""
        self.dropped_ids: set[int] = set()  # listed, but dropped before this stage (e.g. invalid)

    @classmethod
    def from_crawler(cls, crawler):
        stage = cls(crawler)
        # After close_spider (the merge): only spider_closed knows why the crawl ended.
        crawler.signals.connect(stage.report_removed, signal=signals.spider_closed)
        crawler.signals.connect(stage.item_dropped, signal=signals.item_dropped)
        return stage

    @property
    def hub(self) -> str:
        return self.crawler.spider.name

    def open_spider(self):
        interrupted = pending_snapshots(self.tree, self.hub)
        if interrupted:
            stale = remove_stale_temp_files(self.tree, self.hub)
            if stale:
                logger.info("Removed %d temp file(s) of a killed crawl's unfinished writes", stale)
            counts = merge_records(self.tree, self.hub, interrupted)
            logger.info("Merged %d snapshot(s) of interrupted crawls into %s (%d records)",
                        len(interrupted), self.hub, counts["records"])
        self.stamp = stamp = time.strftime("%Y%m%dT%H%M%SZ", time.gmtime()) + f"-{os.getpid()}"
        self.writer = SnapshotWriter(self.tree, self.hub, stamp)
        self.payloads = PayloadWriter(self.tree, self.hub, stamp)
        self.stored = StoredPayloads(self.tree, self.hub)
        jobdir.remember_snapshot(self.crawler.settings, self.writer.path)
        self.stats.set_value("ptm/store/snapshot", self.writer.relative)
        logger.info("Dataset tree: %s (snapshot %s)", self.tree.root, self.writer.relative)

    async def process_item(self, record):
        raw = record.raw
        if raw is not None:
            # Compact, like the hub serves it: indenting would need json's pure-Python encoder,
            # which costs more than everything else this stage does.
            line = compact_json(raw.payload).encode()
            locator = self.stored.unchanged(record["id"], line) if self.stored else None
            if locator is None:
                locator = self.payloads.write(line)
            else:
                self._count("ptm/store/raw_payloads_unchanged")
            record["ModelHub"]["MetadataFilePath"] = locator
            self._count("ptm/store/raw_payloads")
        self.writer.write(record)
        self._count("ptm/store/records")
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
        counts = merge_records(self.tree, self.hub, snapshots)
        self.stats.set_value("ptm/store/dataset_records", counts["records"])
        self.stats.set_value("ptm/store/not_seen_this_crawl", counts["carried"])
        logger.info("%s now holds %d models (%d not seen in this crawl)",
                    self.tree.path(f"{self.hub}/{self.hub}.jsonl"), counts["records"], counts["carried"])

    def item_dropped(self, item):
        if isinstance(item, dict) and isinstance(item.get("id"), int):
            self.dropped_ids.add(item["id"])

    def report_removed(self, spider, reason):
        if self.writer is None:
            return
        incomplete = removed.why_incomplete(reason, spider, self.stats, self.crawler.settings)
        if incomplete:
            logger.info("Models not seen in this crawl are not reported as removed: %s", incomplete)
            return
        crawl_snapshots = jobdir.snapshots(self.crawler.settings) or [self.writer.path]
        gone = removed.not_seen(self.tree, self.hub, crawl_snapshots, also_seen=self.dropped_ids)
        self.stats.set_value("ptm/store/removed", len(gone))
        if not gone:
            return
        unmapped = self.stats.get_value("ptm/map/failed") or 0
        note = (f"{unmapped} model(s) listed by this crawl could not be mapped; they may be among these"
                if unmapped else "")
        report = removed.write_report(self.tree, self.hub, self.stamp, gone, note)
        logger.warning("%d model(s) of %s are no longer listed by the hub (records and clones kept); "
                       "list: %s", len(gone), self.hub, self.tree.path(report))
