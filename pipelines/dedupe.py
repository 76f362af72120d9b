"""Stage 3: drop a model already processed in this crawl.

Records are keyed by their stable ``id`` (hub + the hub's id of the model), so a model listed twice
— or re-delivered after a resume — is processed once. Across crawls, ``<hub>.jsonl`` keeps one line
per id (see the store stage); the same repository reached from two hubs is cloned once by the clone
stage's repository index.
"""

from __future__ import annotations

from scrapy.exceptions import DropItem


class DuplicateModel(DropItem):
    """The model was already processed in this crawl."""


class DedupePipeline:
    def __init__(self, crawler):
        self.stats = crawler.stats
        self.seen: set[int] = set()

    @classmethod
    def from_crawler(cls, crawler):
        return cls(crawler)

    async def process_item(self, record):
        if record["id"] in self.seen:
            self.stats.inc_value("ptm/dedupe/duplicate")
            raise DuplicateModel(f"{record.label}: already processed in this crawl (id {record['id']})")
        self.seen.add(record["id"])
        self.stats.inc_value("ptm/dedupe/unique")
        return record
