"""The distributed crawl's scheduler (``SCHEDULER`` when ``PTM_REDIS_URL`` is set; see
``ptmscrape/distributed.py``): scrapy-redis's, plus worker bookkeeping — busy marks, closing
together, flushing the crawl's own keys, giving back the requests of a worker that died, and
counting a model against ``-a limit`` as its hand-off is queued (``Handoff``).

**Taken requests.** scrapy-redis pops a request from the shared queue and forgets it: a worker
killed with requests in hand (``kill -9``, out of memory, a power cut) lost them for good — the
models it was processing, and, if it was fetching a listing page, the rest of the hub's listing,
while every other worker went on to finish with exit status 0. Here a request is popped and noted
in the worker's ``<prefix>:<spider>:taken:<worker>`` hash in one step (a Lua script), and the note
is removed only when Scrapy is done with the request: its response's callback and items processed
(the engine slot's ``remove_request``). A worker that is gone leaves its notes behind; any other
worker puts those requests back in the queue (:meth:`SharedScheduler.requeue_taken`) once the dead
worker's busy mark is gone: at once for a worker of the same machine whose process is gone, else
after the mark expires (``BUSY_TTL``). A model the dead worker may already have marked seen is
processed again (``RawModelItem.redelivered``), unless it had stored it (the dedupe stage).

Importing this module imports scrapy-redis and redis, so only the Redis add-on names it: a
single-process crawl never loads it.
"""

from __future__ import annotations

import collections
import itertools
import logging
import os
import socket
import time
import uuid

from redis.exceptions import RedisError
from scrapy import Request, signals
from scrapy.exceptions import CloseSpider, DontCloseSpider
from scrapy.utils.asyncio import create_looping_call
from scrapy.utils.defer import deferred_from_coro
from scrapy_redis.queue import PriorityQueue

from ptmscrape.compat.scrapy_redis import Scheduler
from ptmscrape.dataset.processes import boot_id, pid_alive, pid_namespace
from ptmscrape.distributed import (
    BUSY_REFRESH,
    BUSY_TTL,
    HANDOFF_META,
    IDLE_POLL,
    Handoff,
    RedisUnavailable,
    redacted,
    redis_key,
)
from ptmscrape.stats import DISTRIBUTED_REQUEUED

logger = logging.getLogger("ptmscrape.distributed")

# Finish reason of a worker stopped by a Redis error while it looked for work left (not "finished":
# a finished worker deletes the crawl's keys).
REDIS_ERROR_REASON = "redis_error"
# ptm/pages/failed/<kind> of a gone worker's request that cannot be rebuilt to be put back in the queue.
LOST_BY_GONE_WORKER = "lost by a dead worker"
# ptm/pages/failed/<kind> of a request a Redis error kept from the shared queue until the worker stopped.
NOT_QUEUED = "not queued in Redis"

# Pop the first request of the shared queue (a sorted set), note it in this worker's taken hash
# (field ARGV[1], value "<score> <request>") and mark the worker busy, in one step.
_TAKE = """
local first = redis.call('zrange', KEYS[1], 0, 0, 'WITHSCORES')
if #first == 0 then return false end
redis.call('zremrangebyrank', KEYS[1], 0, 0)
redis.call('hset', KEYS[2], ARGV[1], first[2] .. ' ' .. first[1])
redis.call('set', KEYS[3], '1', 'EX', ARGV[2])
return first[1]
"""
# Move a gone worker's taken requests (KEYS[1], its busy mark KEYS[2]) into this worker's taken
# hash (KEYS[3]), unless its busy mark says it still works (ARGV[1] = '1': it is known to be gone).
_CLAIM = """
if ARGV[1] ~= '1' and redis.call('exists', KEYS[2]) == 1 then return 0 end
local taken = redis.call('hgetall', KEYS[1])
for i = 1, #taken, 2 do
  redis.call('hset', KEYS[3], 'x' .. ARGV[2] .. '/' .. taken[i], taken[i + 1])
end
redis.call('del', KEYS[1], KEYS[2])
return #taken / 2
"""
# Queue a request (KEYS[2], score ARGV[2], request ARGV[3]) unless the shared dupefilter (KEYS[1])
# has its fingerprint (ARGV[1]), and with ARGV[4] = '1' (a hand-off under -a limit) count its model
# as listed (KEYS[3]), in one step: never seen without being queued, counted once.
_ENQUEUE = """
if redis.call('sadd', KEYS[1], ARGV[1]) == 0 then return 0 end
redis.call('zadd', KEYS[2], ARGV[2], ARGV[3])
if ARGV[4] == '1' then redis.call('incr', KEYS[3]) end
return 1
"""


# Join the crawl (KEYS[1]: its id): a crawl that runs keeps its id; none, or one that finished
# ("finished:<id>"), gets ARGV[1], and the crawl's state keys found then (KEYS[2..]: the queue,
# dupefilter, seen-sets, and the workers' taken hashes the joining worker found) are deleted first:
# no running crawl owns them. A crawl that ends deletes them; what is left was written by workers
# of a crawl whose state Redis lost (restarted without its data) before they noticed and stopped
# (state_lost), and a new crawl that joined them skipped, as seen, listing pages and models no one
# had stored. No SCAN here: a script runs alone, and a walk of a shared Redis's whole keyspace held
# every other client (BUSY past lua-time-limit); every key it touches is given in KEYS. Returns the
# crawl's id and how many keys were deleted.
_JOIN = """
local id = redis.call('get', KEYS[1])
if id and string.sub(id, 1, 9) ~= 'finished:' then return {id, 0} end
local left = 0
for i = 2, #KEYS do left = left + redis.call('del', KEYS[i]) end
redis.call('set', KEYS[1], ARGV[1])
return {ARGV[1], left}
"""
# Seconds a worker with nothing in hand waits for a Redis that does not answer before it goes idle
# and stops (finish reason redis_error): by then the other workers take it for gone anyway.
REDIS_WAIT = BUSY_TTL
FINISHED_MARK_TTL = 3600  # s the "finished:<id>" mark of a crawl that ended stays (for its late workers)


class SharedScheduler(Scheduler):
    """scrapy-redis's ``Scheduler`` (as fixed in ``ptmscrape.compat.scrapy_redis``) plus worker
    bookkeeping (busy marks, joint close, flushing)."""

    wake_pending: bool  # a wake() is scheduled (set by from_crawler)
    worker: str  # this worker's name in Redis keys: <host>:<pid>:<pid space>-<random> (worker_name())
    taken: dict[int, tuple[Request, str]]  # requests taken from the queue, not yet done: their fields
    tracking: bool  # whether taken requests are noted in Redis (open())
    handoff: Handoff | None  # the spider's hand-offs, whose -a limit count this scheduler keeps (open())
    # The gone worker whose claimed requests are not all back in the queue yet (a Redis error cut
    # the move short): the next look finishes it; they would else be flushed with this worker's keys.
    unqueued_claim: str | None
    # Requests (and whether each counts for -a limit) a Redis error kept from the shared queue, in
    # order: queued once Redis answers again (the worker does not go idle meanwhile). Raised out of
    # enqueue_request, the error lost them (the next listing page: the rest of the listing), and the
    # crawl ended with exit status 0.
    unqueued: collections.deque[tuple[Request, bool]]
    # open() logs "Joining a crawl with N request(s) queued" after join_crawl(), not before (the
    # compat scheduler's place): N counted requests join_crawl() then deleted as a lost crawl's.
    log_queued_on_open = False
    # The crawl's id in Redis (<prefix>:<spider>:crawl), set by its first worker and deleted with
    # its keys: gone, or another, while this worker works, the crawl's state in Redis is lost.
    crawl_id: bytes | None
    # When Redis stopped answering this worker's looks at the shared queue (None: it answers), and
    # the clock that says (time.monotonic).
    redis_down_since: float | None
    # Fields of this worker's taken hash whose requests are done, but a Redis error kept their notes
    # there: removed once Redis answers, before the worker goes idle (and drops its busy mark, after
    # which another worker takes the notes for a dead worker's and puts the requests back).
    undone: list[str]

    @classmethod
    def from_crawler(cls, crawler):
        try:
            scheduler = super().from_crawler(crawler)  # pings Redis
        except RedisError as exc:
            url = redacted(crawler.settings.get("PTM_REDIS_URL"))
            raise RedisUnavailable(f"PTM_REDIS_URL={url}: Redis not reachable ({exc})") from None
        scheduler.wake_pending = False
        scheduler.worker = worker_name()
        scheduler.looping = None
        scheduler.taken = {}  # id(request) -> (request, field in the taken hash)
        scheduler.handoff = None
        scheduler.tokens = itertools.count()
        scheduler.claims = itertools.count()
        scheduler.unqueued_claim = None
        scheduler.unqueued = collections.deque()
        scheduler.crawl_id = None
        scheduler.redis_down_since = None
        scheduler.undone = []
        scheduler.clock = time.monotonic
        scheduler.take_script = scheduler.server.register_script(_TAKE)
        scheduler.claim_script = scheduler.server.register_script(_CLAIM)
        scheduler.enqueue_script = scheduler.server.register_script(_ENQUEUE)
        scheduler.join_script = scheduler.server.register_script(_JOIN)
        crawler.signals.connect(scheduler.spider_idle, signal=signals.spider_idle)
        return scheduler

    # -- keys --------------------------------------------------------------------------
    def key(self, what: str) -> str:
        return redis_key(self.crawler.settings, self.spider.name, what)

    @property
    def busy_key(self) -> str:
        return self.key(f"busy:{self.worker}")

    @property
    def taken_key(self) -> str:
        return self.key(f"taken:{self.worker}")

    # -- lifecycle ---------------------------------------------------------------------
    def open(self, spider):
        super().open(spider)
        self.serve_handoffs(spider)
        self.join_crawl()
        self.log_queued()  # after join_crawl(): never counting the leftovers it deleted
        # Busy from the start: a worker whose start request was just deduplicated must not
        # see an idle peer that has not popped the listing yet and close the crawl.
        self.mark_busy()
        self.tracking = self._track_done_requests()
        self.looping = create_looping_call(self.refresh)
        self.looping.start(BUSY_REFRESH, now=False)
        logger.info("Distributed crawl: worker %s on Redis keys %s*", self.worker, self.key(""))
        self.requeue_taken()

    def join_crawl(self) -> None:
        """Take the crawl's id (:meth:`state_lost`), the first worker setting it (and deleting what
        workers of a crawl whose state Redis lost left under the prefix: see ``_JOIN``)."""
        state = [self.queue.key, self.df.key, self.key("models"), self.key("stored"), self.key("listed")]
        running = self.server.get(self.key("crawl"))
        if running is None or running.startswith(b"finished:"):
            # Likely the first worker: the taken hashes left, found a batch per call (other clients
            # served between them); the script deletes them only if no crawl runs by then. A worker
            # of a new crawl writes its taken hash only after it joined, so none is a running crawl's.
            state += self.server.scan_iter(match=self.key("taken:*"), count=1000)
        self.crawl_id, left = self.join_script(keys=[self.key("crawl"), *state], args=[uuid.uuid4().hex])
        if left:
            logger.warning("Redis holds keys %s* that no running crawl owns (left by workers of a crawl whose "
                           "state Redis lost): deleted them, starting a new crawl", self.key(""))

    def serve_handoffs(self, spider) -> None:
        """Queue ``spider``'s hand-offs, counting them for ``-a limit`` (see :meth:`enqueue_request`)."""
        self.handoff = getattr(spider, "handoff", None)
        if self.handoff is not None:
            self.handoff.dupefilter = self.df

    def _track_done_requests(self) -> bool:
        """Have the engine tell us when it is done with a request (its callback and items
        processed): its slot's ``remove_request``. Without a sorted-set queue (another
        ``SCHEDULER_QUEUE_CLASS``) or that hook, requests are popped untracked, as upstream does."""
        slot = getattr(self.crawler.engine, "_slot", None)
        remove = getattr(slot, "remove_request", None)
        if not isinstance(self.queue, PriorityQueue) or remove is None:
            logger.warning("Requests taken from the shared queue are not tracked (queue %s): those of a "
                           "worker that is killed are lost", type(self.queue).__name__)
            return False

        def remove_request(request):
            self.done(request)
            remove(request)

        setattr(slot, "remove_request", remove_request)  # noqa: B010  (an instance's method, replaced)
        return True

    def close(self, reason):
        if self.looping is not None and self.looping.running:
            self.looping.stop()
        if self.unqueued and not self.queue_unqueued():
            self._unqueued_lost()
        try:
            self.mark_undone_done()
            self.server.delete(self.busy_key)
        except RedisError as exc:  # it expires (BUSY_TTL)
            if reason == "finished" and not self.persist:  # flushing needs Redis too: kept
                logger.error("Redis error while worker %s ended the crawl (%s): its keys %s* are kept; delete "
                             "them before crawling again with this prefix", self.worker, exc, self.key(""))
            else:
                logger.warning("Redis error while worker %s removed its busy mark (it expires in %s s): %s",
                               self.worker, BUSY_TTL, exc)
            return
        if reason == "finished" and not self.persist:
            self.flush()

    def flush(self):
        super().flush()
        self.server.delete(self.key("models"), self.key("stored"), self.key("listed"),
                           *self.server.scan_iter(match=self.key("taken:*"), count=1000))
        if self.crawl_id is None:  # SCHEDULER_FLUSH_ON_START: a new crawl (workers of the old one stop)
            self.server.delete(self.key("crawl"))
        else:  # the crawl ended: its workers still waiting see it did (crawl_lost), the next crawl starts afresh
            self.server.set(self.key("crawl"), b"finished:" + self.crawl_id, ex=FINISHED_MARK_TTL)

    def enqueue_request(self, request):
        count = False
        if self.handoff is not None and HANDOFF_META in request.meta:
            self.handoff.reached_scheduler(request)  # before it is encoded: the mark stays here
            count = getattr(self.spider, "limit", None) is not None
        if self.unqueued and not self.queue_unqueued():
            self.unqueued.append((request, count))  # after those kept before it
            return True
        try:
            added = self._enqueue(request, count=count)
        except RedisError as exc:
            self._keep(request, count, exc)
            return True
        if not added:
            self.crawler.stats.inc_value("scheduler/filtered/redis")
        return added

    def _keep(self, request, count: bool, exc: RedisError) -> None:
        """Keep a request Redis did not take, to queue it once Redis answers (:meth:`queue_unqueued`)."""
        logger.warning("Redis error while worker %s queued %s (kept here, and queued once Redis answers; "
                       "the worker does not finish before): %s", self.worker, request.url[:200], exc)
        self.unqueued.append((request, count))
        self.wake_soon()

    def queue_unqueued(self) -> bool:
        """Queue the requests a Redis error kept here, in order; False while Redis still fails."""
        queued = 0
        while self.unqueued:
            request, count = self.unqueued[0]
            try:
                added = self._enqueue(request, count=count)
            except RedisError:
                self.wake_soon()
                return False
            self.unqueued.popleft()
            queued += 1
            if not added:
                self.crawler.stats.inc_value("scheduler/filtered/redis")
        if queued:
            logger.info("Redis answers again: queued the %d request(s) kept here meanwhile", queued)
        return True

    def _unqueued_lost(self) -> None:
        """The worker stops with requests Redis never took: lost, said and counted (exit status 1)."""
        urls = [request.url for request, _ in self.unqueued]
        logger.error("Worker %s stops with %d request(s) that Redis did not take (unreachable): lost, "
                     "crawl again: %s", self.worker, len(urls),
                     ", ".join(u[:100] for u in urls[:3]) + (", …" if len(urls) > 3 else ""))
        count = getattr(self.spider, "count_failed_page", None)
        for request, _ in self.unqueued:
            if count is not None:
                count(NOT_QUEUED, request)
        self.unqueued.clear()

    def has_pending_requests(self) -> bool:
        if self.unqueued:
            return True
        try:
            pending = super().has_pending_requests()
        except RedisError as exc:
            # Raised, it failed the engine's look (a traceback) and the worker never went idle:
            # it waited for ever. Not idle for REDIS_WAIT s, then idle: spider_idle stops it.
            return self._redis_away(exc) < REDIS_WAIT
        self._redis_back()
        return pending

    def _redis_away(self, exc: RedisError) -> float:
        """Redis did not answer a look at the shared queue: said once an outage; seconds since the
        first such look."""
        now = self.clock()
        if self.redis_down_since is None:
            self.redis_down_since = now
            logger.warning("Redis does not answer worker %s (%s): it takes no request meanwhile, and stops "
                           "(finish reason %s) if Redis is still away in %s s and it has nothing else to do",
                           self.worker, exc, REDIS_ERROR_REASON, REDIS_WAIT)
        self.wake_soon()
        return now - self.redis_down_since

    def _redis_back(self) -> None:
        if self.redis_down_since is not None:
            logger.info("Redis answers worker %s again, after %.0f s", self.worker,
                        self.clock() - self.redis_down_since)
            self.redis_down_since = None

    def _enqueue(self, request, count: bool) -> bool:
        """Note the request's fingerprint and queue it in one step (scrapy-redis takes two calls: a
        worker killed between them left a listing page seen and never queued, lost to every worker);
        with ``count``, also count the model as listed: a hand-off under ``-a limit``, counted once,
        when it is queued (see ``ptmscrape.distributed.Handoff``)."""
        if request.dont_filter or not isinstance(self.queue, PriorityQueue):
            added = super().enqueue_request(request)
            if added and count:
                self.server.incr(self.key("listed"))
            return added
        added = self.enqueue_script(
            keys=[self.df.key, self.queue.key, self.key("listed")],
            args=[self.df.request_fingerprint(request), -request.priority, self.queue._encode_request(request),
                  "1" if count else "0"]) == 1
        if added:
            self.crawler.stats.inc_value("scheduler/enqueued/redis")
        else:
            self.df.log(request, self.spider)
        return added

    def next_request(self):
        if self.unqueued:
            self.queue_unqueued()
        if not self.tracking:
            try:
                request = super().next_request()
                if request is not None:
                    self.mark_busy()
            except RedisError as exc:  # a request popped before the error is lost, as upstream's
                self._redis_away(exc)
                return None
            self._redis_back()
            return request
        field = str(next(self.tokens))
        try:
            data = self.take_script(keys=[self.queue.key, self.taken_key, self.busy_key], args=[field, BUSY_TTL])
        except RedisError as exc:  # raised: a traceback at every look of the engine's
            self._redis_away(exc)
            return None
        self._redis_back()
        if data is None:
            return None
        request = self.queue._decode_request(data)
        self.taken[id(request)] = (request, field)
        self.crawler.stats.inc_value("scheduler/dequeued/redis")
        return request

    def done(self, request) -> None:
        """The engine is done with ``request``: no longer ours to give back if we die."""
        entry = self.taken.pop(id(request), None)
        if entry is None or entry[0] is not request:
            return
        try:
            self.server.hdel(self.taken_key, entry[1])
        except RedisError as exc:
            logger.warning("Could not mark %s done in Redis (tried again once Redis answers): %s", request.url, exc)
            self.undone.append(entry[1])

    def mark_undone_done(self) -> None:
        """Remove the notes of the requests :meth:`done` could not mark done (raises RedisError)."""
        if self.undone:
            self.server.hdel(self.taken_key, *self.undone)
            self.undone.clear()

    # -- requests of gone workers ----------------------------------------------------------
    def requeue_taken(self) -> int:
        """Put back in the queue the requests taken by workers that are gone (their busy mark
        expired, or, on this machine, their process is gone). Returns how many."""
        if not getattr(self, "tracking", False):
            return 0
        prefix = self.key("taken:")
        requeued = 0
        if self.unqueued_claim is not None:
            worker, self.unqueued_claim = self.unqueued_claim, None
            requeued += self._requeue_claimed(worker)
        for key in self.server.scan_iter(match=prefix + "*", count=1000):
            worker = key.decode()[len(prefix):]
            if worker == self.worker:
                continue
            claimed = self.claim_script(keys=[key, self.key(f"busy:{worker}"), self.taken_key],
                                        args=["1" if gone_here(worker) else "0", next(self.claims)])
            if claimed:
                requeued += self._requeue_claimed(worker)
        return requeued

    def _requeue_claimed(self, worker: str) -> int:
        urls = []
        try:
            for field, value in self.server.hgetall(self.taken_key).items():
                if not field.startswith(b"x"):
                    continue  # one of ours, in flight
                score, _, data = value.partition(b" ")
                try:
                    request = self.queue._decode_request(data)
                except Exception as exc:  # e.g. its callback renamed since: a worker of another version took it
                    self._lost(field, data, worker, exc)
                    continue
                handoff = request.meta.get(HANDOFF_META)
                if isinstance(handoff, dict):
                    handoff["redelivered"] = True  # its dead worker may have marked the model seen
                pipe = self.server.pipeline()
                pipe.zadd(self.queue.key, {self.queue._encode_request(request): float(score)})
                pipe.hdel(self.taken_key, field)
                pipe.execute()
                urls.append(request.url)
        except RedisError:
            self.unqueued_claim = worker  # the rest at the next look
            raise
        if urls:
            self.crawler.stats.inc_value(DISTRIBUTED_REQUEUED, len(urls))
            logger.warning("Put back in the shared queue %d request(s) taken by worker %s, which is gone "
                           "(killed?) without finishing them: %s", len(urls), worker,
                           ", ".join(u[:100] for u in urls[:3]) + (", …" if len(urls) > 3 else ""))
        return len(urls)

    def _lost(self, field: bytes, data: bytes, worker: str, exc: Exception) -> None:
        """A gone worker's request this worker cannot rebuild: dropped from the taken hash (left
        there, it would fail every look again, and the start of every worker that claimed it
        after this one), said, and counted as a page lost for good."""
        self.server.hdel(self.taken_key, field)
        try:
            url = self.queue.serializer.loads(data).get("url")
        except Exception:
            url = None
        logger.error("A request worker %s took before it died cannot be put back in the queue (%s): %s",
                     worker, url if isinstance(url, str) else "unreadable", exc)
        count = getattr(self.spider, "count_failed_page", None)
        if count is not None:
            count(LOST_BY_GONE_WORKER)

    # -- busy marks --------------------------------------------------------------------
    def mark_busy(self) -> None:
        self.server.set(self.busy_key, b"1", ex=BUSY_TTL)

    def refresh(self) -> None:
        try:
            # spider_is_idle asks Redis too (the length of the shared queue): inside the try below.
            working = not self.crawler.engine.spider_is_idle()
        except (AttributeError, RuntimeError):  # engine not started or already closed
            return
        except RedisError as exc:
            self._refresh_failed(exc)
            return
        try:
            self.mark_undone_done()
            if working:
                if self.state_lost():
                    return
                self.mark_busy()
            if self.unqueued:
                self.queue_unqueued()
            if self.requeue_taken():
                self.wake_soon()
        except RedisError as exc:
            self._refresh_failed(exc)

    def state_lost(self) -> bool:
        """Whether the crawl's keys are gone from Redis while this worker works (no other worker
        ends the crawl while this one is busy): Redis restarted without its data, or the keys were
        deleted. What was queued is lost, and the crawl cannot end complete: the worker stops
        (finish reason ``redis_error``, exit status 1). Without this, every worker found the queue
        empty and ended with exit status 0, the rest of the listing missing."""
        if self.crawl_id is None or self.server.get(self.key("crawl")) == self.crawl_id:
            return False
        self._say_state_lost()
        engine = self.crawler.engine
        if engine is not None and getattr(engine, "spider", None) is not None:
            deferred_from_coro(engine.close_spider_async(reason=REDIS_ERROR_REASON))
        return True

    def _say_state_lost(self) -> None:
        logger.error("The crawl's keys %s* are gone from Redis while worker %s works (Redis restarted without "
                     "its data, or they were deleted, or the other workers ended the crawl while this one "
                     "stalled for over %s s): what was queued there is lost; stopping this worker. Crawl "
                     "again (models stored are kept)", self.key(""), self.worker, BUSY_TTL)
        self.crawl_id = None  # said once

    def _refresh_failed(self, exc: RedisError) -> None:
        # An error raised from refresh() would end the looping call for good: the busy mark would
        # lapse while this worker works, and the others would give back its requests and close.
        logger.warning("Redis error while worker %s refreshed its busy mark (tried again in %s s): %s",
                       self.worker, BUSY_REFRESH, exc)

    def others_busy(self) -> list[str]:
        prefix = self.key("busy:")
        busy = []
        for key in self.server.scan_iter(match=prefix + "*", count=1000):
            worker = key.decode()[len(prefix):]
            if worker == self.worker:
                continue
            if gone_here(worker):  # killed on this machine: its mark would keep us waiting BUSY_TTL s
                self.requeue_taken()  # (its taken requests first: the claim removes the mark too)
                self.server.delete(key)
                continue
            busy.append(key.decode())
        return busy

    def spider_idle(self, spider):
        try:
            self._wait_for_others()
        except RedisError as exc:
            # Scrapy closes a spider whose idle handler failed as "finished", and a finished worker
            # flushes the crawl's keys: the queue and dupefilter the other workers still work from.
            logger.error("Redis error while worker %s looked for work left (%s): stopping it without deleting "
                         "the crawl's keys; the other workers go on", self.worker, exc)
            raise CloseSpider(REDIS_ERROR_REASON) from None

    def _wait_for_others(self) -> None:
        """Raise DontCloseSpider while there is work left: in the queue, or with a busy worker."""
        self.mark_undone_done()  # before the busy mark goes: else the others would put them back
        self.server.delete(self.busy_key)
        if self.requeue_taken() or len(self.queue):  # another worker pushed since the engine looked
            self.wake_soon()
            raise DontCloseSpider
        busy = self.others_busy()
        if busy:
            logger.debug("Queue empty; waiting for %d busy worker(s)", len(busy))
            self.wake_soon()
            raise DontCloseSpider
        if self.crawl_id is not None and self.server.get(self.key("crawl")) not in (
                self.crawl_id, b"finished:" + self.crawl_id):
            # Not ended by another worker (it marks the crawl finished): the queue is empty because
            # Redis lost it, and the crawl is not complete.
            self._say_state_lost()
            raise CloseSpider(REDIS_ERROR_REASON)

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


def pid_space() -> str:
    """Where this process's pid means something: ``<pid namespace>.<boot id>``, its pid namespace
    (a container has its own, and may share the host's name with ``--network host``) on this boot
    of this machine (machines may share a name, and all their first pid namespaces one number);
    ``""`` where ``/proc`` cannot tell."""
    namespace, boot = pid_namespace(), boot_id()
    return f"{namespace}.{boot.replace('-', '')}" if namespace and boot else ""


def worker_name() -> str:
    """``<host>:<pid>:<pid space>-<random>``: the pid space (:func:`pid_space`) tells which
    workers' pids this one can see."""
    space = pid_space()
    return f"{socket.gethostname()}:{os.getpid()}:{space + '-' if space else ''}{uuid.uuid4().hex[:8]}"


def gone_here(worker: str) -> bool:
    """Whether ``worker`` (:func:`worker_name`) ran on this machine, in this pid namespace, and
    its process is gone. Any other worker is judged by its busy mark alone (it expires)."""
    head, _, tail = worker.rpartition(":")
    host, _, pid = head.rpartition(":")
    space = tail.rpartition("-")[0]
    return (host == socket.gethostname() and pid.isdigit() and space != ""
            and space == pid_space() and not pid_alive(int(pid)))
