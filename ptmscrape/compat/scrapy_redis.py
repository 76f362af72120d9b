"""scrapy-redis 0.9.1's scheduler made to work without warnings on Scrapy 2.19; loaded only with
``PTM_REDIS_URL`` set (through ``ptmscrape.redis_scheduler``, the project's scheduler on top).

Its ``RedisSpider`` relies on the removed ``start_requests()``, so the project uses only its
``Scheduler`` and ``RFPDupeFilter``. :class:`Scheduler` is upstream's with two fixes:

1. **``open()`` logs through ``Spider.log()``** ("Resuming crawl …"), deprecated in Scrapy 2.19 (a
   ScrapyDeprecationWarning, an error once it is removed). Here ``open()`` is upstream's, copied,
   with that line logged through this module's logger ("Joining a crawl with N request(s) queued
   in Redis", by ``log_queued()``) instead; ``SharedScheduler`` logs it later, once it has deleted
   a lost crawl's leftovers (``log_queued_on_open``).
2. **Its stats calls pass ``spider=``** (``scheduler/enqueued/redis``, ``scheduler/dequeued/redis``),
   deprecated in Scrapy 2.19. Here upstream's stats are off and the same counters are counted
   without it.

Each fix has a strict-xfail test in ``tests/test_compat_upstream.py`` (``test_scrapy_redis_…``):
when one XPASSes after an upgrade, delete that fix.
"""

from __future__ import annotations

import logging

from scrapy.utils.misc import load_object
from scrapy_redis import scheduler as _upstream

logger = logging.getLogger(__name__)


class Scheduler(_upstream.Scheduler):
    """scrapy-redis's scheduler: ``open()`` without ``spider.log()`` (fix 1), stats without
    ``spider=`` (fix 2). ``crawler`` is the crawler it was built for."""

    @classmethod
    def from_crawler(cls, crawler):
        scheduler = super().from_crawler(crawler)
        scheduler.crawler = crawler
        scheduler.stats = None  # fix 2: upstream's stats calls are off; counted below instead
        return scheduler

    def open(self, spider):
        # Upstream's open(), its spider.log() call logged here instead (fix 1).
        self.spider = spider
        self.queue = load_object(self.queue_cls)(server=self.server, spider=spider, serializer=self.serializer,
                                                 key=self.queue_key % {"spider": spider.name})
        if not self.df:
            self.df = load_object(self.dupefilter_cls).from_spider(spider)
        if self.flush_on_start:
            self.flush()
        if self.log_queued_on_open:
            self.log_queued()

    # Whether open() logs what is queued. ptmscrape.redis_scheduler.SharedScheduler may yet delete it
    # (a lost crawl's leftovers, join_crawl()): it logs the line itself once that is decided.
    log_queued_on_open = True

    def log_queued(self):
        if len(self.queue):
            logger.info("Joining a crawl with %d request(s) queued in Redis", len(self.queue))

    def enqueue_request(self, request):
        added = super().enqueue_request(request)
        if added:
            self.crawler.stats.inc_value("scheduler/enqueued/redis")
        return added

    def next_request(self):
        request = super().next_request()
        if request is not None:
            self.crawler.stats.inc_value("scheduler/dequeued/redis")
        return request
