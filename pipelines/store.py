"""Stage 5: write the raw payload and the record into the dataset tree.

* raw payload -> ``<data>/<hub>/json/metadata/<owner>/<name>.json`` (atomic replace);
* record -> this crawl's snapshot ``<data>/<hub>/snapshots/<hub>-<stamp>.jsonl`` (one flushed line
  each, so a kill loses nothing already stored);
* at close (and at the next start, for a crawl that was killed) the snapshots are merged into
  ``<data>/<hub>/<hub>.jsonl``, which keeps the newest record of every model: a re-crawl updates it
  and never duplicates.
"""

from __future__ import annotations

import json
import logging
import os
import time

from ptmscrape.dataset import DatasetTree, SnapshotWriter, merge_records, pending_snapshots

logger = logging.getLogger(__name__)


class StorePipeline:
    def __init__(self, crawler):
        self.crawler = crawler
        self.stats = crawler.stats
        self.tree = DatasetTree.from_crawler(crawler)
        self.writer: SnapshotWriter | None = None

    @classmethod
    def from_crawler(cls, crawler):
        return cls(crawler)

    @property
    def hub(self) -> str:
        return self.crawler.spider.name

    def open_spider(self):
        interrupted = pending_snapshots(self.tree, self.hub)
        if interrupted:
            counts = merge_records(self.tree, self.hub, interrupted)
            logger.info("Merged %d snapshot(s) of interrupted crawls into %s (%d records)",
                        len(interrupted), self.hub, counts["records"])
        stamp = time.strftime("%Y%m%dT%H%M%SZ", time.gmtime()) + f"-{os.getpid()}"
        self.writer = SnapshotWriter(self.tree, self.hub, stamp)
        self.stats.set_value("ptm/store/snapshot", self.writer.relative)
        logger.info("Dataset tree: %s (snapshot %s)", self.tree.root, self.writer.relative)

    async def process_item(self, record):
        raw = record.raw
        if raw is not None:
            payload = json.dumps(raw.payload, ensure_ascii=False, indent=1).encode()
            self.tree.write_atomic(record["ModelHub"]["MetadataFilePath"], payload)
            self.stats.inc_value("ptm/store/raw_payloads")
        self.writer.write(record)
        self.stats.inc_value("ptm/store/records")
        return record

    def close_spider(self):
        if self.writer is None:
            return
        self.writer.close()
        counts = merge_records(self.tree, self.hub, pending_snapshots(self.tree, self.hub))
        self.stats.set_value("ptm/store/dataset_records", counts["records"])
        self.stats.set_value("ptm/store/not_seen_this_crawl", counts["carried"])
        logger.info("%s now holds %d models (%d not seen in this crawl)",
                    self.tree.path(f"{self.hub}/{self.hub}.jsonl"), counts["records"], counts["carried"])
