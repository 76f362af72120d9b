"""Stage 3: drop a model already processed in this crawl.

Records are keyed by their stable ``id`` (hub + the hub's id of the model), so a model listed twice
— or re-delivered after a resume — is processed once. Across crawls, ``<hub>.jsonl`` keeps one line
per id (see the store stage); the same repository reached from two hubs is cloned once by the clone
stage's repository index. In a distributed crawl the seen-set is a Redis set shared by all workers
(``ptmscrape.distributed.shared_seen_set``), so no model is processed by two workers — but for a
model whose worker died while it had it (killed): its hand-off is put back in the queue
(``ptmscrape/redis_scheduler.py``), and the worker that gets it processes it although the dead one
marked it seen (``ptm/dedupe/redelivered``), unless the dead one had stored it
(``ptmscrape.distributed.shared_stored_set``, noted by the store stage;
``ptm/dedupe/stored_by_dead_worker``). Only such a model is looked up there.

A job resumed from a JOBDIR (see ``ptmscrape/jobdir.py``) also skips the models its earlier runs
stored: after a hard kill the job re-lists the hub from the start, and those come again.
"""

from __future__ import annotations

import logging

from scrapy.exceptions import DropItem

from ptmscrape import distributed, jobdir
from ptmscrape.idset import IdSet
from ptmscrape.stats import (
    DEDUPE_DUPLICATE,
    DEDUPE_REDELIVERED,
    DEDUPE_STORED_BEFORE_RESUME,
    DEDUPE_STORED_BY_DEAD_WORKER,
    DEDUPE_STORED_BY_EARLIER_RUNS,
    DEDUPE_UNIQUE,
)

logger = logging.getLogger(__name__)


# Models listed twice named at WARNING ("Dropped: …"); the rest at DEBUG (ptm/dedupe/duplicate counts all).
NAMED_DUPLICATES = 10


class DuplicateModel(DropItem):
    """The model was already processed in this crawl (a long crawl's listing shifts: there may be
    thousands; the first :data:`NAMED_DUPLICATES` are logged at DEFAULT_DROPITEM_LOG_LEVEL (WARNING),
    the rest at DEBUG)."""


class StoredBeforeResume(DropItem):
    """An earlier run of this JOBDIR job stored the model (logged at DEBUG: there may be many)."""

    def __init__(self, message: str):
        super().__init__(message, log_level="DEBUG")


class StoredByDeadWorker(DropItem):
    """A distributed crawl's worker that died while it had the model had stored it (logged at INFO)."""

    def __init__(self, message: str):
        super().__init__(message, log_level="INFO")


class DedupePipeline:
    def __init__(self, crawler):
        self.stats = crawler.stats
        self._count = crawler.stats.inc_value  # bound once (Scrapy's own STATS_CLASS wraps each read)
        self.seen = IdSet()  # a million ids in 9 MB (a set: 60 MB)
        self.shared = distributed.shared_seen_set(crawler)
        self.stored_by_workers = distributed.shared_stored_set(crawler)
        self.settings = crawler.settings
        self.stored_before: set[int] = set()
        self.duplicates = 0

    @classmethod
    def from_crawler(cls, crawler):
        return cls(crawler)

    def open_spider(self):
        if self.shared is None:
            self.stored_before = jobdir.stored_ids(jobdir.snapshots(self.settings))
            if self.stored_before:
                # The job has stored them: a resumed run with nothing left to do stored something.
                self.stats.set_value(DEDUPE_STORED_BY_EARLIER_RUNS, len(self.stored_before))
                logger.info("Resumed job: %d models stored by its earlier runs are skipped",
                            len(self.stored_before))

    async def process_item(self, record):
        if record["id"] in self.stored_before:
            self.stats.inc_value(DEDUPE_STORED_BEFORE_RESUME)
            raise StoredBeforeResume(f"{record.label}: stored by an earlier run of this job")
        if not self._first_time(record["id"], record.label):
            if record.raw is not None and record.raw.redelivered:
                if self.stored_by_workers is not None and record["id"] in self.stored_by_workers:
                    self.stats.inc_value(DEDUPE_STORED_BY_DEAD_WORKER)
                    raise StoredByDeadWorker(f"{record.label}: stored by a worker that died before it was done "
                                             "with it; not stored again")
                self.stats.inc_value(DEDUPE_REDELIVERED)  # its dead worker marked it seen
                return record
            self.stats.inc_value(DEDUPE_DUPLICATE)
            self.duplicates += 1
            if self.duplicates == NAMED_DUPLICATES + 1:
                logger.warning("More models listed twice (already processed in this crawl): logged at DEBUG "
                               "from here on; ptm/dedupe/duplicate counts them (a listing that shifts as "
                               "the crawl goes may also have skipped models)")
            raise DuplicateModel(f"{record.label}: already processed in this crawl (id {record['id']})",
                                 log_level=None if self.duplicates <= NAMED_DUPLICATES else "DEBUG")
        self._count(DEDUPE_UNIQUE)
        return record

    def _first_time(self, record_id: int, label: str) -> bool:
        if self.shared is not None:
            # Redis not answering: processed (its hand-off came to this worker alone but for a redelivery).
            return self.shared.add_or(record_id, True, label, "processed as not seen")
        if record_id in self.seen:
            return False
        self.seen.add(record_id)
        return True
