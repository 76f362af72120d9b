"""Fixes for upstream libraries that do not work as released on the Scrapy we use, in one place.

One module per library, imported only when its feature is on, so a plain crawl never loads it
(except the three for Scrapy itself, which every crawl uses; each cost tens of µs a model in a
metadata crawl, bench/RESULTS.md):

* ``stats.py``: Scrapy 2.19's own ``StatsCollector``, whose per-attribute deprecation check cost
  ~60 µs a model; named by ``STATS_CLASS`` in ``settings.py``.
* ``signals.py``: Scrapy 2.19's signal dispatch, an asyncio task per receiver (``item_scraped``: two
  a model); the ``InlineSignalDispatch`` extension in ``EXTENSIONS``.
* ``itemproc.py``: Scrapy 2.19's item pipeline chain, which names every stage for every item;
  ``ITEM_PROCESSOR``.

* ``splash.py``: scrapy-splash 0.11.1 (fixes 1–8 in its docstring); loaded when ``SPLASH_URL`` is
  set (``ptmscrape.rendering`` decides).
* ``spidermon.py``: spidermon 1.27's extension logging through ``Spider.log()``; loaded when
  ``PTM_MONITORS`` is on (``ptmscrape.monitors`` decides).
* ``scrapy_redis.py``: scrapy-redis 0.9.1's ``Scheduler`` (``spider.log()``, stats with
  ``spider=``); loaded when ``PTM_REDIS_URL`` is set (``ptmscrape.distributed`` decides).

Each fix has a strict-xfail test in ``tests/test_compat_upstream.py`` asserting that the upstream
library alone works: it fails today, so the test xfails. Once an upgrade fixes the library, that
test XPASSes, which strict mode reports as a failure naming the fix to delete.
"""
