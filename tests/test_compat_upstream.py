"""Still broken upstream? One strict-xfail test per fix in ``ptmscrape/compat/``.

Each test uses the upstream library *alone* (no ptmscrape fix) and asserts that it works on the
Scrapy we run. Today it does not, so the test xfails (``raises=`` names how it breaks, so breaking
in another way is a failure). When an upgrade fixes the library, the test passes, which strict
mode reports as a failure: "[XPASS(strict)] <reason>" names the fix to delete.

The scrapy-splash tests import ``ptmscrape.compat.splash`` only for its fix 1 (without it
``scrapy_splash`` cannot be imported at all); fix 1 itself is checked in a fresh interpreter.
"""

from __future__ import annotations

import asyncio
import inspect
import os
import subprocess
import sys
import uuid
import warnings
from types import SimpleNamespace

import pytest
import scrapy
from scrapy.core.downloader import Downloader
from scrapy.core.downloader.middleware import DownloaderMiddlewareManager
from scrapy.core.spidermw import SpiderMiddlewareManager
from scrapy.downloadermiddlewares.offsite import OffsiteMiddleware
from scrapy.utils.test import get_crawler

import ptmscrape.compat.splash  # noqa: F401  (fix 1, so that scrapy_splash imports at all)
from tests.crawl import ROOT
from tests.services import require_service

import scrapy_splash  # noqa: E402  (isort: skip)

SPLASH = "http://127.0.0.1:8050"  # never contacted: these tests only build requests
REDIS_URL = os.environ.get("PTM_TEST_REDIS_URL", "redis://127.0.0.1:6379/0")


def warnings_of(fn) -> list[str]:
    """The warnings ``fn()`` emits, as "<category>: <message>"."""
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        fn()
    return [f"{w.category.__name__}: {w.message}" for w in caught]


class _Spider(scrapy.Spider):
    name = "t"
    allowed_domains = ["site.test"]


def upstream_call(method, *args, spider):
    """``method(*args)``, plus ``spider`` only while the upstream method still requires one: Scrapy
    no longer passes it, so a fixed release may drop or default it (a probe calling it with the
    spider would then fail with TypeError instead of passing)."""
    parameter = inspect.signature(method).parameters.get("spider")
    if parameter is not None and parameter.default is inspect.Parameter.empty:
        return method(*args, spider)
    return method(*args)


async def _aiter(items):
    for item in items:
        yield item


async def _collect(output):
    """What a spider middleware's output holds, be it an iterable or an async iterable."""
    if hasattr(output, "__aiter__"):
        return [el async for el in output]
    return list(output)


def _crawler_with_spider(settings=None):
    crawler = get_crawler(_Spider, {"SPLASH_URL": SPLASH, **(settings or {})})
    crawler.spider = crawler._create_spider()
    return crawler


# --- scrapy-splash 0.11.1 (ptmscrape/compat/splash.py, fixes 1-8) --------------------------------


def _xfail_splash(n: int, what: str, raises=AssertionError):
    return pytest.mark.xfail(strict=True, raises=raises,
                             reason=f"scrapy-splash still broken: {what}; when this passes, delete fix {n} "
                                    f"of ptmscrape/compat/splash.py")


@_xfail_splash(1, "'import scrapy_splash' fails (scrapy.utils.url.canonicalize_url is gone)")
def test_splash_fix_1_scrapy_splash_imports_on_its_own():
    proc = subprocess.run([sys.executable, "-c", "import scrapy_splash"], cwd=ROOT, capture_output=True, text=True)
    assert proc.returncode == 0, proc.stderr[-2000:]


@_xfail_splash(2, "SplashMiddleware calls the removed Downloader._get_slot_key()", raises=AttributeError)
def test_splash_fix_2_upstream_middleware_rewrites_a_request_with_scrapys_downloader():
    crawler = _crawler_with_spider({"DOWNLOAD_HANDLERS": {"http": None, "https": None}})
    crawler.engine = SimpleNamespace(downloader=Downloader(crawler))
    mw = scrapy_splash.SplashMiddleware.from_crawler(crawler)
    rewritten = upstream_call(mw.process_request, scrapy_splash.SplashRequest("http://site.test/page"),
                              spider=crawler.spider)
    assert rewritten.url == f"{SPLASH}/render.html"


@_xfail_splash(3, "Scrapy refuses SplashDeduplicateArgsMiddleware's synchronous process_spider_output",
               raises=TypeError)
def test_splash_fix_3_scrapy_accepts_upstream_dedupe_args_middleware():
    crawler = get_crawler(settings_dict={"SPIDER_MIDDLEWARES": {"scrapy_splash.SplashDeduplicateArgsMiddleware": 100}})
    manager = SpiderMiddlewareManager.from_crawler(crawler)
    assert any(isinstance(mw, scrapy_splash.SplashDeduplicateArgsMiddleware) for mw in manager.middlewares)


@_xfail_splash(4, "cache_args needs spider state made by process_start_requests(), which Scrapy no longer "
                  "calls", raises=KeyError)
def test_splash_fix_4_upstream_cache_args_work_without_process_start_requests():
    from scrapy.utils.misc import build_from_crawler

    crawler = _crawler_with_spider()
    spider = crawler.spider
    spider.state = {}  # what SpiderState gives a spider; process_start_requests() is never called
    request = scrapy_splash.SplashRequest("http://site.test/", args={"lua_source": "x"}, cache_args=["lua_source"])
    mw = build_from_crawler(scrapy_splash.SplashDeduplicateArgsMiddleware, crawler)

    async def crawl():
        if hasattr(mw, "process_start"):  # what Scrapy calls instead, before any callback's output
            await _collect(mw.process_start(_aiter([])))
        output = mw.process_spider_output
        given = _aiter([request]) if inspect.isasyncgenfunction(output) else [request]
        return await _collect(upstream_call(output, None, given, spider=spider))

    assert len(asyncio.run(crawl())) == 1


@_xfail_splash(5, "the downloader middlewares require a spider argument (ScrapyDeprecationWarning)")
def test_splash_fix_5_upstream_downloader_middlewares_load_without_deprecation_warnings():
    crawler = get_crawler(settings_dict={"SPLASH_URL": SPLASH, "DOWNLOADER_MIDDLEWARES": {
        "scrapy_splash.SplashCookiesMiddleware": 723, "scrapy_splash.SplashMiddleware": 725}})
    assert [w for w in warnings_of(lambda: DownloaderMiddlewareManager.from_crawler(crawler))
            if "Splash" in w] == []


@_xfail_splash(6, "SafeRobotsTxtMiddleware requires a spider argument and passes it to RobotsTxtMiddleware "
                  "(ScrapyDeprecationWarning)")
def test_splash_fix_6_upstream_safe_robots_middleware_loads_and_runs_without_deprecation_warnings():
    crawler = _crawler_with_spider({"ROBOTSTXT_OBEY": True, "DOWNLOADER_MIDDLEWARES": {
        "scrapy_splash.middleware.SafeRobotsTxtMiddleware": 100}})
    assert [w for w in warnings_of(lambda: DownloaderMiddlewareManager.from_crawler(crawler))
            if "SafeRobotsTxtMiddleware" in w] == []
    mw = scrapy_splash.middleware.SafeRobotsTxtMiddleware.from_crawler(crawler)
    # A page robots.txt is not asked for (dont_obey_robotstxt): only the call itself is probed.
    request = scrapy.Request("http://site.test/page", meta={"dont_obey_robotstxt": True})

    def call():
        result = upstream_call(mw.process_request, request, spider=crawler.spider)
        if inspect.isawaitable(result):
            asyncio.run(result)

    assert [w for w in warnings_of(call) if "spider" in w] == []


@_xfail_splash(7, "SplashAwareDupeFilter and its fingerprint function are deprecated (warnings on every use)")
def test_splash_fix_7_upstream_dupefilter_works_without_warnings():
    crawler = get_crawler()
    seen = []
    caught = warnings_of(lambda: seen.append(
        scrapy_splash.SplashAwareDupeFilter.from_crawler(crawler).request_seen(
            scrapy_splash.SplashRequest("http://site.test/"))))
    assert seen == [False] and caught == []


@_xfail_splash(8, "the request rewritten to the Splash server is dropped as offsite",
               raises=scrapy.exceptions.IgnoreRequest)
def test_splash_fix_8_upstream_rewritten_request_passes_offsite_middleware():
    crawler = _crawler_with_spider()
    mw = scrapy_splash.SplashMiddleware.from_crawler(crawler)
    # single_slot: no slot key asked of the downloader (fix 2 is tested on its own).
    request = scrapy_splash.SplashRequest("http://site.test/page", slot_policy=scrapy_splash.SlotPolicy.SINGLE_SLOT)
    rewritten = upstream_call(mw.process_request, request, spider=crawler.spider)
    offsite = OffsiteMiddleware.from_crawler(crawler)
    offsite.spider_opened(crawler.spider)
    offsite.process_request(rewritten)  # raises IgnoreRequest: "Filtered offsite request to '127.0.0.1'"


# --- spidermon 1.27 (ptmscrape/compat/spidermon.py) ----------------------------------------------


@pytest.mark.xfail(strict=True, raises=AssertionError,
                   reason="spidermon still logs through the deprecated Spider.log(); when this passes, "
                          "delete ptmscrape/compat/spidermon.py and use spidermon's own extension")
def test_spidermon_extension_logs_without_deprecation():
    from spidermon.contrib.scrapy.extensions import Spidermon

    crawler = _crawler_with_spider({
        "SPIDERMON_ENABLED": True,
        "SPIDERMON_SPIDER_CLOSE_MONITORS": ["ptmscrape.monitor_suite.CrawlMonitors"],
        "SPIDERMON_MIN_ITEMS": 1, "SPIDERMON_MAX_ERRORS": 0, "SPIDERMON_EXPECTED_FINISH_REASONS": ["finished"],
    })
    crawler.stats.open_spider()
    crawler.stats.set_value("item_scraped_count", 3)
    crawler.stats.set_value("finish_reason", "finished")
    extension = Spidermon.from_crawler(crawler)
    extension.spider_opened(crawler.spider)
    caught = warnings_of(lambda: extension.spider_closed(crawler.spider))
    assert crawler.stats.get_value("ptm/monitors/passed") == 3  # the suite ran
    assert [w for w in caught if "Spider.log" in w] == []


# --- scrapy-redis 0.9.1 (ptmscrape/compat/scrapy_redis.py, fixes 1-2) ------------------------------


@pytest.fixture
def redis_scheduler():
    """scrapy-redis's own Scheduler on a real Redis (keys of this test alone, removed afterwards)."""
    import redis
    from scrapy_redis.scheduler import Scheduler

    require_service("Redis", REDIS_URL, start_hint="bash .ci/start-redis.sh")
    prefix = f"ptmtest-compat-{uuid.uuid4().hex[:12]}"
    crawler = _crawler_with_spider({
        "REDIS_URL": REDIS_URL, "SCHEDULER_QUEUE_CLASS": "scrapy_redis.queue.PriorityQueue",
        "SCHEDULER_QUEUE_KEY": f"{prefix}:%(spider)s:requests",
        "SCHEDULER_DUPEFILTER_KEY": f"{prefix}:%(spider)s:dupefilter",
        "DUPEFILTER_CLASS": "scrapy_redis.dupefilter.RFPDupeFilter",
    })
    crawler.stats.open_spider()
    yield crawler, Scheduler.from_crawler(crawler)
    client = redis.Redis.from_url(REDIS_URL)
    keys = list(client.scan_iter(match=f"{prefix}:*"))
    if keys:
        client.delete(*keys)


@pytest.mark.xfail(strict=True, raises=AssertionError,
                   reason="scrapy-redis's Scheduler.open() still logs through the deprecated Spider.log(); "
                          "when this passes, delete open() of ptmscrape/compat/scrapy_redis.py (fix 1)")
def test_scrapy_redis_fix_1_scheduler_joins_a_queue_without_deprecation(redis_scheduler):
    crawler, scheduler = redis_scheduler
    scheduler.open(crawler.spider)
    warnings_of(lambda: scheduler.enqueue_request(scrapy.Request("http://site.test/queued")))  # fix 2's warning
    joining = type(scheduler).from_crawler(crawler)  # a second worker, the queue not empty
    assert [w for w in warnings_of(lambda: joining.open(crawler.spider)) if "Spider.log" in w] == []


@pytest.mark.xfail(strict=True, raises=AssertionError,
                   reason="scrapy-redis's Scheduler still passes spider= to the stats; when this passes, "
                          "delete the stats counting of ptmscrape/compat/scrapy_redis.py (fix 2)")
def test_scrapy_redis_fix_2_scheduler_counts_without_deprecation(redis_scheduler):
    crawler, scheduler = redis_scheduler
    scheduler.open(crawler.spider)

    def enqueue_and_pop():
        scheduler.enqueue_request(scrapy.Request("http://site.test/a"))
        assert scheduler.next_request() is not None

    caught = warnings_of(enqueue_and_pop)
    assert crawler.stats.get_value("scheduler/enqueued/redis") == 1
    assert [w for w in caught if "'spider' argument" in w] == []


# --- Scrapy's stats collector (ptmscrape/compat/stats.py) ----------------------------------------


@pytest.mark.xfail(strict=True, raises=AssertionError,
                   reason="Scrapy's StatsCollector still sends every attribute read through its Python "
                          "__getattribute__; when this passes, delete ptmscrape/compat/stats.py and STATS_CLASS")
def test_scrapy_stats_collector_reads_attributes_plainly():
    from scrapy.statscollectors import MemoryStatsCollector

    stats = MemoryStatsCollector(get_crawler(_Spider))
    stats.inc_value("a")
    assert stats.get_value("a") == 1
    assert not [name for name in vars(stats) if name.startswith("_cached_")]


@pytest.mark.xfail(strict=True, raises=AssertionError,
                   reason="Scrapy's send_catch_log_async still runs every receiver in an asyncio task of its "
                          "own; when this passes, delete ptmscrape/compat/signals.py and its EXTENSIONS entry")
def test_scrapy_signal_dispatch_calls_plain_receivers_without_a_loop_turn():
    import asyncio

    from scrapy.signalmanager import SignalManager

    manager, signal, seen = SignalManager(object()), object(), []

    def receiver(item):
        seen.append(item)

    manager.connect(receiver, signal=signal)

    async def one_step():
        dispatch = manager.send_catch_log_async(signal=signal, item="m1")
        try:
            dispatch.send(None)  # finished in one step unless it waits for the event loop
        except StopIteration:
            pass
        ran = list(seen)  # before the loop turns
        dispatch.close()
        return ran

    assert asyncio.run(one_step()) == ["m1"]


@pytest.mark.xfail(strict=True, raises=AssertionError,
                   reason="Scrapy's item pipeline chain still names every stage for every item; when this "
                          "passes, delete ptmscrape/compat/itemproc.py and ITEM_PROCESSOR")
def test_scrapy_item_pipeline_chain_names_stages_only_to_warn(monkeypatch):
    import asyncio

    import scrapy.middleware
    from scrapy.pipelines import ItemPipelineManager

    class Stage:
        async def process_item(self, item):
            return item

    named = []
    monkeypatch.setattr(scrapy.middleware, "global_object_name", lambda obj: named.append(obj) or "x")
    manager = ItemPipelineManager(Stage(), Stage(), crawler=get_crawler(_Spider))
    assert asyncio.run(manager.process_item_async({"a": 1})) == {"a": 1}
    assert named == []
