"""Distributed crawls: several ``scrapy crawl <hub>`` workers share one Redis-backed scheduler.

Off unless ``PTM_REDIS_URL`` is set; then :class:`RedisDistribution` (an add-on listed in
``ADDONS``) switches the crawl to scrapy-redis's scheduler and dupefilter, under keys
``<PTM_REDIS_PREFIX>:<spider>:…``. Unset, a crawl imports nothing of it but this module (no
scrapy-redis, no redis): the scheduler is ``ptmscrape.redis_scheduler.SharedScheduler``, on
scrapy-redis's ``Scheduler`` as fixed in ``ptmscrape.compat.scrapy_redis``, named by the add-on only.

What the project adds to scrapy-redis (its ``RedisSpider`` relies on the removed
``start_requests()``, so we use only its ``Scheduler`` and ``RFPDupeFilter``):

* **Per-model work goes through Redis.** A listing page yields all its models in the worker that
  fetched it. In distributed mode :meth:`Handoff.request` turns each model into a request for a
  ``data:`` URL that carries the hub's payload in ``meta``: it costs the hub nothing, any worker
  may pop it, and the worker that does runs the model's pipelines (mapping, clone, store). Hand-offs
  outrank listing pages, so the queue holds about one page of models, not the whole hub.
* **Each worker takes only what it can work on.** ``SCRAPER_SLOT_MAX_ACTIVE_SIZE`` (Scrapy's own
  back-pressure) is set so that a worker holds about ``2 × PTM_CLONE_CONCURRENCY`` models at once
  and leaves the rest in Redis for the others.
* **Workers stop together.** Scrapy closes a spider as soon as its own scheduler is empty, but a
  shared queue can be empty while another worker is still fetching a page that will fill it. Each
  worker keeps a short-lived ``busy`` key in Redis while it works; an idle worker stays open while
  any other worker is busy, and closes when the queue is empty and nobody is busy.
* **Start requests are seeded once.** Every worker yields the hub's start requests; the shared
  dupefilter drops the copies, so listing pages are fetched once.
* **No model twice, one limit for all.** The dedupe stage uses a Redis set of record ids
  (:func:`shared_seen_set`), and ``-a limit=`` counts the distinct models listed by all workers
  together (:class:`Handoff`).
* **A dead worker's models, once.** The store stage notes each model it stored in a Redis set
  (:func:`shared_stored_set`); a model whose worker died while it had it is put back in the queue
  (``ptmscrape/redis_scheduler.py``), and the worker that gets it stores it only if it is not noted.
* **Flushing.** A crawl that *finishes* deletes its keys (queue, dupefilter, seen and stored sets,
  counter) so the next crawl starts afresh; with ``SCHEDULER_PERSIST=True`` they are kept. A worker
  that is stopped (Ctrl-C, ``CLOSESPIDER_*``) never deletes them: the others carry on.
"""

from __future__ import annotations

import dataclasses
import hashlib
import logging
import re
from typing import TYPE_CHECKING, Any
from urllib.parse import quote

import scrapy

from ptmscrape.items import RawModelItem

if TYPE_CHECKING:
    from ptmscrape.spiders_base import HubSpider

# Seconds a worker's busy mark lives unless refreshed (a crashed worker stops counting after this).
BUSY_TTL = 60
BUSY_REFRESH = 5
# Seconds between looks at the shared queue while this worker waits for busy peers.
IDLE_POLL = 0.5
# Hand-offs go before listing pages (priority 0): finish the listed models, then list more.
HANDOFF_PRIORITY = 10
HANDOFF_META = "ptm_handoff"
# A hand-off counted in Handoff.pending until the scheduler has it (never sent to Redis).
HANDOFF_PENDING = "ptm_handoff_pending"


class RedisUnavailable(RuntimeError):
    """The distributed crawl's Redis does not answer (the message never shows its password)."""


def redacted(url: str | None) -> str:
    """``url`` with everything between ``//`` and its last ``@`` replaced by ``***``: a password may
    hold ``@`` or ``/`` (Redis's client takes ``redis://:p@ss@host`` as password ``p@ss``)."""
    return re.sub(r"//.*@", "//***@", url or "", flags=re.DOTALL)


def enabled(settings) -> bool:
    return bool(settings.get("PTM_REDIS_URL"))


def redis_key(settings, spider_name: str, what: str) -> str:
    return f"{settings.get('PTM_REDIS_PREFIX')}:{spider_name}:{what}"


def connect(settings):
    """A Redis client for these settings (``REDIS_URL``/``REDIS_PARAMS``, as scrapy-redis uses), on
    ``PTM_REDIS_URL``: Scrapy builds the spider, and with it the hand-off client, before it applies
    the add-on that sets ``REDIS_URL``; without the URL scrapy-redis would connect to localhost,
    database 0."""
    from scrapy_redis.connection import get_redis_from_settings

    url = settings.get("PTM_REDIS_URL")
    if url and settings.get("REDIS_URL") != url:
        settings = settings.copy()
        settings.set("REDIS_URL", url, priority="addon")
    return get_redis_from_settings(settings)


class RedisDistribution:
    """Add-on: with ``PTM_REDIS_URL`` set, crawl through the shared Redis scheduler.

    Everything is set at add-on priority, so ``-s`` on the command line still wins (e.g.
    ``-s SCHEDULER_PERSIST=True``).
    """

    def update_settings(self, settings) -> None:
        url = settings.get("PTM_REDIS_URL")
        if not url:
            return
        prefix = settings.get("PTM_REDIS_PREFIX")
        per_worker = 2 * max(1, settings.getint("PTM_CLONE_CONCURRENCY"))
        for name, value in {
            "REDIS_URL": url,
            "SCHEDULER": "ptmscrape.redis_scheduler.SharedScheduler",
            "DUPEFILTER_CLASS": "scrapy_redis.dupefilter.RFPDupeFilter",
            "SCHEDULER_QUEUE_CLASS": "scrapy_redis.queue.PriorityQueue",
            "SCHEDULER_QUEUE_KEY": f"{prefix}:%(spider)s:requests",
            "SCHEDULER_DUPEFILTER_KEY": f"{prefix}:%(spider)s:dupefilter",
            "SCHEDULER_PERSIST": False,
            # A hand-off response counts as 1 KiB in Scrapy's scraper slot (its minimum size).
            "SCRAPER_SLOT_MAX_ACTIVE_SIZE": per_worker * 1024,
        }.items():
            settings.set(name, value, priority="addon")


class Handoff:
    """Distributed mode's per-model requests, and the listing count shared by all workers.

    With ``-a limit=`` the count is of distinct models, taken as their hand-offs are queued in
    Redis: the shared scheduler queues a hand-off, drops it when the shared dupefilter has it, and
    counts it, in one step (``SharedScheduler.enqueue_request``). A listing page listed again — its
    worker died before it was done with it, and another worker got it back — thus counts only the
    models the dead worker had not queued: counted as they were listed, they counted twice, and a
    crawl with a killed worker ended short of its limit. Between listing and queueing (a callback's
    output is consumed ahead of the engine by up to ``2 × CONCURRENT_ITEMS``), this worker's own
    hand-offs are counted here (``pending``), so the limit stays exact; a hand-off the shared
    dupefilter already has (queued by the dead worker) is not."""

    def __init__(self, spider: HubSpider, server):
        self.spider = spider
        self.server = server
        self.listed_key = redis_key(spider.settings, spider.name, "listed")
        self.pending = 0  # hand-offs listed here, not yet queued (and counted) by the scheduler
        # The shared dupefilter (``key``, ``request_fingerprint()``), given by the scheduler when it opens.
        self.dupefilter: Any = None

    @classmethod
    def from_spider(cls, spider: HubSpider) -> Handoff | None:
        if not enabled(spider.settings):
            return None
        return cls(spider, connect(spider.settings))

    def listed(self) -> int:
        return int(self.server.get(self.listed_key) or 0) + self.pending

    def request(self, item: RawModelItem, model_id: str | None = None) -> scrapy.Request:
        """A request any worker may pop; its response delivers ``item`` (see :func:`unpack`).
        ``model_id``: the hub's whole id of the model (``item.model_id`` may be cut short)."""
        # Unique per model, so the shared dupefilter also drops a model listed twice: a digest of
        # the whole id (two long ids alike in their first 300 characters stay apart), after a
        # readable start; bounded, so no id is too long for UrlLengthMiddleware, and a lone
        # surrogate (hub JSON can carry one) neither raises nor merges with another id.
        key = f"{item.hub}/{item.model_id if model_id is None else model_id}"
        digest = hashlib.sha256(key.encode("utf-8", "surrogatepass")).hexdigest()
        url = f"data:text/plain,{quote(key[:60], safe='', errors='surrogatepass')}/{digest}"
        request = scrapy.Request(url, callback=self.spider.deliver_handoff, errback=self.spider.page_failed,
                                 priority=HANDOFF_PRIORITY, meta={HANDOFF_META: dataclasses.asdict(item)})
        # The count only serves -a limit=; see the class docstring.
        if getattr(self.spider, "limit", None) is not None and not self.queued_before(request):
            request.meta[HANDOFF_PENDING] = True
            self.pending += 1
        return request

    def queued_before(self, request: scrapy.Request) -> bool:
        """Whether the shared dupefilter has this hand-off: a worker queued (and counted) it."""
        dupefilter = self.dupefilter
        return dupefilter is not None and bool(
            self.server.sismember(dupefilter.key, dupefilter.request_fingerprint(request)))

    def reached_scheduler(self, request: scrapy.Request) -> None:
        """The scheduler has ``request`` (queued and counted, or dropped as a duplicate): no
        longer this worker's to count."""
        if request.meta.pop(HANDOFF_PENDING, False):
            self.pending -= 1


def unpack(response) -> RawModelItem:
    return RawModelItem(**{**response.meta[HANDOFF_META], "request": response.request})


def shared_seen_set(crawler) -> SharedIds | None:
    """The dedupe stage's seen-set: ``None`` for a single-process crawl, else a Redis set."""
    return SharedIds(crawler, "models") if enabled(crawler.settings) else None


def shared_stored_set(crawler) -> SharedIds | None:
    """The ids of the models whose record a worker stored: ``None`` for a single-process crawl.
    A model put back in the queue after its worker died may be one; the worker that gets it does
    not store it again (the dedupe stage), so with a data dir per machine no model is in two."""
    return SharedIds(crawler, "stored") if enabled(crawler.settings) else None


class SharedIds:
    """A Redis set of record ids, ``<prefix>:<spider>:<what>``, shared by all workers."""

    def __init__(self, crawler, what: str):
        self.crawler = crawler
        self.what = what
        self.server = connect(crawler.settings)

    @property
    def key(self) -> str:
        return redis_key(self.crawler.settings, self.crawler.spider.name, self.what)

    def add(self, value: Any) -> bool:
        """Add ``value``; True if no worker had added it before."""
        return self.server.sadd(self.key, str(value)) == 1

    def add_or(self, value: Any, unreachable: bool, label: str, then: str) -> bool:
        """:meth:`add`, but a Redis error (Redis restarted, out of reach a moment) is a WARNING naming
        ``label`` and what is done (``then``), and returns ``unreachable``. Raised, it failed the
        item in its pipeline stage: a model dropped there (not stored) was lost, the crawl ending
        with exit status 0; one the store stage had written was left out of the feed."""
        from redis.exceptions import RedisError

        try:
            return self.add(value)
        except RedisError as exc:
            logging.getLogger(__name__).warning("Redis error while %s was noted in %s (%s): %s",
                                                label, self.key, then, exc)
            return unreachable

    def __contains__(self, value: Any) -> bool:
        return bool(self.server.sismember(self.key, str(value)))
