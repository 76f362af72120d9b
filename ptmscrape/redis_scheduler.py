"""The distributed crawl's scheduler (``SCHEDULER`` when ``PTM_REDIS_URL`` is set; see
``ptmscrape/distributed.py``): scrapy-redis's, plus worker bookkeeping — busy marks, closing
together, flushing the crawl's own keys.

Importing this module imports scrapy-redis and redis, so only the Redis add-on names it: a
single-process crawl never loads it.
"""

from __future__ import annotations

import logging
import os
import socket
import uuid

from redis.exceptions import RedisError
from scrapy import signals
from scrapy.exceptions import DontCloseSpider
from scrapy.utils.asyncio import create_looping_call

from ptmscrape.compat.scrapy_redis import Scheduler
from ptmscrape.distributed import BUSY_REFRESH, BUSY_TTL, IDLE_POLL, RedisUnavailable, redacted, redis_key

logger = logging.getLogger("ptmscrape.distributed")


class SharedScheduler(Scheduler):
    """scrapy-redis's ``Scheduler`` (as fixed in ``ptmscrape.compat.scrapy_redis``) plus worker
    bookkeeping (busy marks, joint close, flushing)."""

    wake_pending: bool  # a wake() is scheduled (set by from_crawler)

    @classmethod
    def from_crawler(cls, crawler):
        try:
            scheduler = super().from_crawler(crawler)  # pings Redis
        except RedisError as exc:
            url = redacted(crawler.settings.get("PTM_REDIS_URL"))
            raise RedisUnavailable(f"PTM_REDIS_URL={url}: Redis not reachable ({exc})") from None
        scheduler.wake_pending = False
        scheduler.worker = f"{socket.gethostname()}:{os.getpid()}:{uuid.uuid4().hex[:8]}"
        scheduler.looping = None
        crawler.signals.connect(scheduler.spider_idle, signal=signals.spider_idle)
        return scheduler

    # -- keys --------------------------------------------------------------------------
    def key(self, what: str) -> str:
        return redis_key(self.crawler.settings, self.spider.name, what)

    @property
    def busy_key(self) -> str:
        return self.key(f"busy:{self.worker}")

    # -- lifecycle ---------------------------------------------------------------------
    def open(self, spider):
        super().open(spider)
        # Busy from the start: a worker whose start request was just deduplicated must not
        # see an idle peer that has not popped the listing yet and close the crawl.
        self.mark_busy()
        self.looping = create_looping_call(self.refresh)
        self.looping.start(BUSY_REFRESH, now=False)
        logger.info("Distributed crawl: worker %s on Redis keys %s*", self.worker, self.key(""))

    def close(self, reason):
        if self.looping is not None and self.looping.running:
            self.looping.stop()
        self.server.delete(self.busy_key)
        if reason == "finished" and not self.persist:
            self.flush()

    def flush(self):
        super().flush()
        self.server.delete(self.key("models"), self.key("listed"))

    def enqueue_request(self, request):
        added = super().enqueue_request(request)
        if not added:
            self.crawler.stats.inc_value("scheduler/filtered/redis")
        return added

    def next_request(self):
        request = super().next_request()
        if request is not None:
            self.mark_busy()
        return request

    # -- busy marks --------------------------------------------------------------------
    def mark_busy(self) -> None:
        self.server.set(self.busy_key, b"1", ex=BUSY_TTL)

    def refresh(self) -> None:
        try:
            working = not self.crawler.engine.spider_is_idle()
        except (AttributeError, RuntimeError):  # engine not started or already closed
            return
        if working:
            self.mark_busy()

    def others_busy(self) -> list[str]:
        pattern = self.key("busy:*")
        own = self.busy_key.encode()
        return [k.decode() for k in self.server.scan_iter(match=pattern, count=1000) if k != own]

    def spider_idle(self, spider):
        self.server.delete(self.busy_key)
        if len(self.queue):  # another worker pushed since the engine looked
            self.wake_soon()
            raise DontCloseSpider
        busy = self.others_busy()
        if busy:
            logger.debug("Queue empty; waiting for %d busy worker(s)", len(busy))
            self.wake_soon()
            raise DontCloseSpider

    def wake_soon(self) -> None:
        """Look at the shared queue again in IDLE_POLL s, not at Scrapy's 5 s heartbeat."""
        if self.wake_pending:
            return
        from twisted.internet import reactor

        self.wake_pending = True
        # zope interface methods have no `self`: without the mypy-zope plugin mypy shifts the arguments
        reactor.callLater(IDLE_POLL, self.wake)  # type: ignore[arg-type]

    def wake(self) -> None:
        self.wake_pending = False
        # The engine's own "try the scheduler now" call (no public API for it).
        slot = getattr(self.crawler.engine, "_slot", None)
        if slot is not None and not slot.closing:
            slot.nextcall.schedule()
