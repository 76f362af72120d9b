"""scrapy-splash 0.11.1 made to work on Scrapy 2.19: the fixed components; loaded only when ``SPLASH_URL``
is set (``ptmscrape.rendering`` names these classes in the settings and imports this module then).

scrapy-splash 0.11.1 (the newest release) is broken on current Scrapy, and each class here fixes
one thing (all verified against Scrapy 2.19.0):

1. **It cannot be imported.** ``scrapy_splash.dupefilter`` and ``scrapy_splash.request`` do
   ``from scrapy.utils.url import canonicalize_url``; Scrapy dropped that re-export of
   ``w3lib.url.canonicalize_url`` (scrapy-plugins/scrapy-splash#332). Importing this module puts the
   w3lib function back under that name (only if it is missing) *before* importing scrapy_splash.
2. **Every Splash request fails** with ``AttributeError: 'Downloader' object has no attribute
   '_get_slot_key'``: ``SplashMiddleware`` (default ``SPLASH_SLOT_POLICY`` per_domain) calls the
   private ``Downloader._get_slot_key(request, spider)``, which Scrapy replaced with the public
   ``Downloader.get_slot_key(request)``. :class:`SplashMiddleware` calls the public one.
3. **The crawl does not start** with ``SplashDeduplicateArgsMiddleware`` enabled: Scrapy 2.19
   requires a spider middleware's ``process_spider_output`` to be an async generator (or to come
   with ``process_spider_output_async``) and raises ``TypeError`` for the synchronous upstream one.
   :class:`SplashDeduplicateArgsMiddleware` has async ``process_spider_output`` and ``process_start``.
4. **``cache_args`` raised KeyError**: upstream creates ``spider.state['_splash_local_values']`` in
   ``process_start_requests()``, which Scrapy no longer calls (``process_start()`` replaced it). The
   fixed middlewares create the state they need on first use.
5. **ScrapyDeprecationWarning at every crawl start**, four of them: Scrapy 2.19 deprecates middleware
   methods that *require* a ``spider`` argument (``process_request(request, spider)``,
   ``process_response(request, response, spider)``), and the upstream ones all do. Here ``spider`` is
   optional (Scrapy no longer passes it) and the spider comes from ``crawler.spider``.
6. **``SafeRobotsTxtMiddleware``** (swapped in for ``RobotsTxtMiddleware`` when the spider has
   ``http_user``/``http_pass``) passes ``spider`` to ``RobotsTxtMiddleware.process_request``, now
   an async method that warns when given one. :class:`SafeRobotsTxtMiddleware` awaits it without.
7. **Deduplication and the HTTP cache.** Upstream's ``SplashAwareDupeFilter``,
   ``splash_request_fingerprint`` and ``SplashAwareFSCacheStorage`` emit ``DeprecationWarning`` on
   every use (they point at ``scrapy_splash.SplashRequestFingerprinter``), and the dupefilter also
   overrides ``RFPDupeFilter.request_fingerprint()``, which Scrapy 2.19 deprecates with a
   ``ScrapyDeprecationWarning``. Here the fingerprinter is the one mechanism:
   :class:`SplashRequestFingerprinter` (upstream's, plus wrapping a project's own
   ``REQUEST_FINGERPRINTER_CLASS`` instead of silently replacing it) makes the fingerprint depend on
   the Splash options, so a rendered and a plain request for one URL are both kept. Scrapy's own
   dupefilter and cache storage use the crawler's fingerprinter, so :class:`SplashAwareDupeFilter`
   and :class:`SplashAwareFSCacheStorage` are those, made Splash-aware even under another
   fingerprinter, without warnings.
8. **Splash requests are dropped as offsite** when the spider has ``allowed_domains``: Scrapy's
   OffsiteMiddleware is a downloader middleware now and also checks the request that
   SplashMiddleware rewrites to the Splash server's URL ("Filtered offsite request to
   '127.0.0.1'"). :class:`SplashMiddleware` marks that request ``allow_offsite`` (the page's own URL
   was checked before the rewrite).

Each fix has a strict-xfail test in ``tests/test_compat_upstream.py`` (``test_splash_fix_<n>_…``)
asserting that scrapy-splash alone works: when one XPASSes after an upgrade, delete that fix.

Not fixed here: with the distributed crawl (``PTM_REDIS_URL``) scrapy-redis's dupefilter computes its
own fingerprint (method, URL, body) and ignores Splash options; ``ptmscrape.rendering`` leaves its
``DUPEFILTER_CLASS`` alone.

The Splash server itself (3.5, without Docker) is installed and started by ``.ci/splash.sh``.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

import scrapy.utils.url
import w3lib.url

# Fix 1: must run before the first ``import scrapy_splash`` anywhere in the process.
if not hasattr(scrapy.utils.url, "canonicalize_url"):
    scrapy.utils.url.canonicalize_url = w3lib.url.canonicalize_url  # type: ignore[attr-defined]  # the fix itself

import scrapy  # noqa: E402
import scrapy_splash  # noqa: E402
from scrapy.downloadermiddlewares.robotstxt import RobotsTxtMiddleware  # noqa: E402
from scrapy.dupefilters import RFPDupeFilter  # noqa: E402
from scrapy.extensions.httpcache import FilesystemCacheStorage  # noqa: E402
from scrapy_splash import (  # noqa: E402,F401  (re-exported)
    SlotPolicy,
    SplashRequest,
    middleware as _upstream,  # noqa: E402
)

__all__ = [
    "SafeRobotsTxtMiddleware",
    "SplashAwareDupeFilter",
    "SplashAwareFSCacheStorage",
    "SplashCookiesMiddleware",
    "SplashDeduplicateArgsMiddleware",
    "SplashMiddleware",
    "SplashRequest",
    "SplashRequestFingerprinter",
]

# --- the fixed components ------------------------------------------------------------------


def _spider_state(spider, key: str) -> dict:
    """``spider.state[key]``, created if missing (fix 4)."""
    state = getattr(spider, "state", None)
    if state is None:
        spider.state = state = {}
    return state.setdefault(key, {})


class SplashCookiesMiddleware(_upstream.SplashCookiesMiddleware):
    """Upstream's cookie jar per Splash session; ``spider`` argument optional (fix 5)."""

    crawler = None

    @classmethod
    def from_crawler(cls, crawler):
        mw = super().from_crawler(crawler)
        mw.crawler = crawler
        return mw

    def process_request(self, request, spider=None):
        return super().process_request(request, spider or self.crawler.spider)

    def process_response(self, request, response, spider=None):
        return super().process_response(request, response, spider or self.crawler.spider)


class SplashMiddleware(_upstream.SplashMiddleware):
    """Upstream's request rewriting; public slot key (fix 2), optional ``spider`` (fix 5), the
    rewritten request allowed past OffsiteMiddleware (fix 8)."""

    def process_request(self, request, spider=None):
        rewritten = super().process_request(request, spider or self.crawler.spider)
        if rewritten is not None:
            # Fix 8: the page's URL passed OffsiteMiddleware already; the rewritten request to
            # the Splash server must not be dropped for the Splash host (allowed_domains).
            rewritten.meta["allow_offsite"] = True
        return rewritten

    def process_response(self, request, response, spider=None):
        return super().process_response(request, response, spider or self.crawler.spider)

    def _get_slot_key(self, request_or_response):
        request = getattr(request_or_response, "request", None) or request_or_response
        return self.crawler.engine.downloader.get_slot_key(request)

    def spider_opened(self, spider):
        if _upstream._http_auth_enabled(spider):
            _upstream.replace_downloader_middleware(
                self.crawler, RobotsTxtMiddleware, SafeRobotsTxtMiddleware
            )
        _spider_state(spider, self.remote_keys_key)

    @property
    def _argument_values(self):
        return _spider_state(
            self.crawler.spider, SplashDeduplicateArgsMiddleware.local_values_key
        )

    @property
    def _remote_keys(self):
        return _spider_state(self.crawler.spider, self.remote_keys_key)


class SplashDeduplicateArgsMiddleware(_upstream.SplashDeduplicateArgsMiddleware):
    """Upstream's ``cache_args`` handling as async spider output (fix 3), state on use (fix 4)."""

    crawler = None

    @classmethod
    def from_crawler(cls, crawler):
        mw = cls()
        mw.crawler = crawler
        return mw

    async def process_start(self, start: AsyncIterator[Any]) -> AsyncIterator[Any]:
        async for el in start:
            yield self._process(el)

    async def process_spider_output(self, response, result: AsyncIterator[Any]):
        async for el in result:
            yield self._process(el)

    def _process(self, el):
        if isinstance(el, scrapy.Request):
            return self._process_request(el, self.crawler.spider)
        return el

    def _process_request(self, request, spider):
        _spider_state(spider, self.local_values_key)
        return super()._process_request(request, spider)


class SafeRobotsTxtMiddleware(RobotsTxtMiddleware):
    """robots.txt is not checked for Splash requests of spiders with HTTP auth (fix 6)."""

    async def process_request(self, request, spider=None):
        if _upstream._http_auth_enabled(self.crawler.spider) and "splash" in request.meta:
            return None
        return await super().process_request(request)


class SplashRequestFingerprinter(scrapy_splash.SplashRequestFingerprinter):
    """Upstream's fingerprinter: base fingerprint + the request's Splash options (fix 7).

    The base is ``SCRAPY_SPLASH_REQUEST_FINGERPRINTER_BASE_CLASS`` (Scrapy's default fingerprinter
    unless set; ``ptmscrape.rendering.splash_settings`` sets it to the project's own
    ``REQUEST_FINGERPRINTER_CLASS``), or the ``base`` fingerprinter given.
    """

    def __init__(self, crawler=None, *, base=None):
        if base is not None:
            self._base_request_fingerprinter = base
        else:
            super().__init__(crawler)


def _splash_aware(fingerprinter):
    if isinstance(fingerprinter, scrapy_splash.SplashRequestFingerprinter):
        return fingerprinter
    return SplashRequestFingerprinter(base=fingerprinter)


class SplashAwareDupeFilter(RFPDupeFilter):
    """Scrapy's dupefilter with a Splash-aware fingerprinter; no deprecated override (fix 7)."""

    @classmethod
    def from_crawler(cls, crawler):
        dupefilter = super().from_crawler(crawler)
        dupefilter.fingerprinter = _splash_aware(dupefilter.fingerprinter)
        return dupefilter


class SplashAwareFSCacheStorage(FilesystemCacheStorage):
    """Scrapy's filesystem HTTP cache keyed by a Splash-aware fingerprint (fix 7)."""

    def open_spider(self, spider):
        super().open_spider(spider)
        self._fingerprinter = _splash_aware(self._fingerprinter)
