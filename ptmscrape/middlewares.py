"""Middlewares shared by all spiders: hub auth, rate-limit aware waiting, over-long URLs reported."""

from __future__ import annotations

import asyncio
import email.utils
import logging
import os
import random
import re
import time
from typing import Any, NoReturn
from urllib.parse import urljoin, urlsplit

from scrapy import Request
from scrapy.downloadermiddlewares.retry import RetryMiddleware
from scrapy.exceptions import IgnoreRequest
from scrapy.spidermiddlewares.urllength import UrlLengthMiddleware

from ptmscrape.rendering import final_url, splash_page
from ptmscrape.stats import (
    RATELIMIT_GAVE_UP,
    RATELIMIT_PACED,
    RATELIMIT_PACED_SECONDS,
    RATELIMIT_WAIT_SECONDS,
    RATELIMIT_WAITS,
)

logger = logging.getLogger(__name__)


class HubAuthMiddleware:
    """Sends a spider's token (``spider.auth_token_env``, e.g. ``HF_TOKEN``) as a bearer token.

    Only to the spider's own hub host (``spider.auth_host``) on its base URL's scheme, and only at
    download time: the header is removed again as soon as the response (or error) comes back, so
    retry and redirect copies of the request — which may be pickled into JOBDIR or Redis — never
    carry the token. So is the ``Proxy-Authorization`` header Scrapy adds for a proxy of the
    environment with a password (``https_proxy=http://user:pw@host:port``).
    """

    def __init__(self, crawler):
        self.crawler = crawler

    @classmethod
    def from_crawler(cls, crawler):
        return cls(crawler)

    def _token_and_host(self):
        return hub_token(self.crawler.spider)

    def _scheme(self) -> str:
        return urlsplit(getattr(self.crawler.spider, "base_url", "") or "https://").scheme

    def process_request(self, request: Request):
        token, host = self._token_and_host()
        target = urlsplit(request.url)
        # The hub's scheme too: an https hub's token never goes out over plain http (a Link or a
        # redirect to http://<hub host>/).
        if token and host and target.netloc == host and target.scheme == self._scheme():
            request.headers[b"Authorization"] = f"Bearer {token}".encode()
            request.meta["_ptm_auth"] = True
        return None

    def process_response(self, request: Request, response):
        self._strip(request)
        return response

    def process_exception(self, request: Request, exception):
        self._strip(request)
        return None

    @staticmethod
    def _strip(request: Request) -> None:
        if request.meta.pop("_ptm_auth", False):
            request.headers.pop(b"Authorization", None)
        if request.meta.get("_scheme_proxy") and b"Proxy-Authorization" in request.headers:
            # The password of a proxy of the environment (https_proxy=http://user:pw@host:port):
            # Scrapy's HttpProxyMiddleware (750) adds it at download time as we add the token,
            # but leaves it on the request, so every retry or redirect copy would carry it into the
            # JOBDIR or Redis. Taken off with what that middleware noted (it keeps a proxy named in
            # meta as the spider's own), it is added again from the environment at the next download.
            request.headers.pop(b"Proxy-Authorization", None)
            for key in ("proxy", "_scheme_proxy", "_auth_proxy"):
                request.meta.pop(key, None)


def hub_token(spider) -> tuple[str, str | None]:
    """The spider's hub token from its environment variable (``spider.auth_token_env``; '' if
    unset) and the one host it may be sent to (``spider.auth_host``)."""
    env_name = getattr(spider, "auth_token_env", None)
    token = os.environ.get(env_name, "").strip() if env_name else ""
    return token, getattr(spider, "auth_host", None)


_RATELIMIT_T = re.compile(r"(?:^|;)\s*t\s*=\s*(\d+)")
_RATELIMIT_R = re.compile(r"(?:^|;)\s*r\s*=\s*(\d+)")


def named_wait(headers) -> float | None:
    """The wait a ``RateLimit`` ``t=`` (or ``RateLimit-Reset``) or ``Retry-After`` header names."""
    for name in (b"RateLimit", b"RateLimit-Reset"):
        value = headers.get(name)
        if value:
            text = value.decode("latin-1")
            m = _RATELIMIT_T.search(text)
            if m:
                return float(m.group(1))
            if text.strip().isdigit():
                return float(text.strip())
    value = headers.get(b"Retry-After")
    if value:
        text = value.decode("latin-1").strip()
        if text.isdigit():
            return float(text)
        try:
            when = email.utils.parsedate_to_datetime(text)
        except (TypeError, ValueError):
            return None
        return max(0.0, when.timestamp() - time.time())
    return None


def names_a_wait_for_503(headers) -> bool:
    """Whether a 503 asks to be retried later: ``Retry-After``, or a ``RateLimit`` budget spent
    (``r=0``). The Hub sends ``RateLimit: "api";r=<left>;t=<window>`` on every answer: a 503 of an
    overloaded server with budget left is no rate limit, and waiting out the window (minutes) and
    counting it as one misled."""
    if headers.get(b"Retry-After"):
        return True
    value = headers.get(b"RateLimit")
    if not value:
        return headers.get(b"RateLimit-Reset") is not None
    m = _RATELIMIT_R.search(value.decode("latin-1"))
    return m is None or int(m.group(1)) == 0


# A reset below this is seconds left, not a Unix time (some APIs send that in X-RateLimit-Reset).
_EPOCH_2001 = 1_000_000_000


def reset_wait(headers) -> float | None:
    """Seconds until the window of an exhausted ``X-RateLimit-*`` budget resets (GitHub's primary
    limit: ``x-ratelimit-remaining: 0``, ``x-ratelimit-reset: <Unix time>``), else None. Counted
    from the answer's ``Date``, the hub's own clock, so a local clock that is off neither retries
    early nor waits too long; plus a second, as both are whole seconds."""
    remaining, reset = headers.get(b"X-RateLimit-Remaining"), headers.get(b"X-RateLimit-Reset")
    if remaining is None or reset is None or remaining.strip() != b"0":
        return None
    text = reset.decode("latin-1").strip()
    if not text.isdigit() or len(text) > 12:
        return None
    value = float(text)
    if value < _EPOCH_2001:
        return value
    now = time.time()
    date = headers.get(b"Date")
    if date:
        try:
            now = email.utils.parsedate_to_datetime(date.decode("latin-1")).timestamp()
        except (TypeError, ValueError):
            pass
    return max(0.0, value - now) + 1.0


# What GitHub's 403 (or 429) of a rate limit says when it sends no header naming the wait.
_LIMIT_MESSAGES = (b"secondary rate limit", b"rate limit exceeded")


def rate_limited_403(response) -> bool:
    """Whether a 403 is a rate limit rather than a refusal: GitHub answers its primary limit with
    403, ``x-ratelimit-remaining: 0`` and ``x-ratelimit-reset``, a secondary limit with 403 and
    ``Retry-After`` or only its message. A 403 without any of these (forbidden, gated) is not."""
    headers = response.headers
    if headers.get(b"Retry-After") or (headers.get(b"X-RateLimit-Remaining") or b"").strip() == b"0":
        return True
    head = response.body[:1024].lower()
    return any(message in head for message in _LIMIT_MESSAGES)


def crawl_closing(crawler) -> bool:
    """Whether the crawl is closing: stopped (Ctrl-C once, a pause, SIGTERM) or its spider closing."""
    try:
        engine = crawler.engine
    except RuntimeError:  # not crawling (a middleware tried on its own)
        return False
    if engine is None:
        return False
    slot = getattr(engine, "_slot", None)
    return not engine.running or (slot is not None and slot.closing is not None)


async def sleep_unless_closing(crawler, seconds: float) -> bool:
    """Sleep ``seconds`` without blocking the reactor, but wake up within a second once the crawl
    closes: False then. Scrapy's graceful stop waits for every request in the downloader, so a pause
    (Ctrl-C once) during a rate-limit wait hung for the rest of it (up to PTM_RATELIMIT_MAX_RESET_WAIT,
    an hour), and a supervisor's stop timeout killed the crawl instead: its JOBDIR restarted from the
    first page. The caller hands the request back to the scheduler (the JOBDIR's queue) instead."""
    end = time.monotonic() + seconds
    while (left := end - time.monotonic()) > 0:
        if crawl_closing(crawler):
            return False
        await asyncio.sleep(min(left, 1.0))
    return True


def requeued(request: Request, reason: str) -> Request:
    """``request`` handed back to the scheduler unfetched as the crawl closes (a JOBDIR keeps it for
    the next run): unfiltered, as its fingerprint is seen already."""
    logger.info("Crawl closing while %s waited (%s): handed back to the queue unfetched (a JOBDIR keeps "
                "it for the next run)", splash_page(request)[0], reason)
    return request.replace(dont_filter=True)


class RateLimited(IgnoreRequest):
    """A request given up while the hub still rate-limits it (``status``: 429, 503 with a wait
    header, GitHub's 403), so errbacks can say why rather than name Scrapy's IgnoreRequest."""

    def __init__(self, message: str, status: int):
        super().__init__(message)
        self.status = status


class RedirectLeavesHub(IgnoreRequest):
    """A redirect (3xx) to another host, scheme or port than the request's, not followed."""


_REDIRECTS = (301, 302, 303, 307, 308)
_DEFAULT_PORTS = {"http": 80, "https": 443}


def same_origin(url: str, target: str) -> bool:
    """Whether ``target`` is on ``url``'s host and port, on its scheme (or http upgraded to https);
    ``host`` and ``www.host`` count as one (a site moving its pages to or from ``www.``)."""
    a, b = urlsplit(url), urlsplit(target)
    try:
        ports = (a.port or _DEFAULT_PORTS.get(a.scheme), b.port or _DEFAULT_PORTS.get(b.scheme))
    except ValueError:  # a port out of range, or not a number
        return False
    return (_site(a.hostname) == _site(b.hostname) and b.scheme in (a.scheme, "https")
            and (ports[0] == ports[1] or (a.scheme, b.scheme) == ("http", "https") and b.port is None))


def _site(host: str | None) -> str:
    return (host or "").lower().removeprefix("www.")


class HubRedirectMiddleware:
    """A hub's redirect to another host is not followed (it runs before Scrapy's RedirectMiddleware
    on the response path): the request fails with :class:`RedirectLeavesHub`, which its errback
    reports like any failed page. Without it, whatever that host served (another site, a cloud
    metadata endpoint at 169.254.169.254, an internal service) was stored as the hub's data, past
    the check that keeps a listing's ``Link`` on the hub. Redirects on the same host are followed,
    unfiltered; one relative to the host's root gets the base URL's path back
    (``HubSpider.rooted_location``). A page rendered through Splash, whose browser followed the
    redirects itself, fails the same way when it came from another host (``rendering.final_url``)."""

    def __init__(self, crawler=None):
        self.crawler = crawler

    @classmethod
    def from_crawler(cls, crawler):
        return cls(crawler)

    def process_response(self, request: Request, response):
        if "splash" in request.meta:  # a page Splash rendered: its browser followed the redirects
            landed = final_url(response)
            page = splash_page(request)[0]
            if landed is not None and not same_origin(page, landed):
                raise RedirectLeavesHub(f"rendered page redirected to another host: {landed[:200]!r}")
            return response
        if response.status not in _REDIRECTS or b"Location" not in response.headers:
            return response
        if request.meta.get("dont_redirect") or response.status in request.meta.get("handle_httpstatus_list", ()):
            return response
        location = response.headers[b"Location"].decode("latin-1")
        target = urljoin(request.url, location)
        if same_origin(request.url, target):
            # Followed even to a URL this crawl fetched already (two tags redirected to one manifest
            # digest, an alias's page to its model's): Scrapy's dupefilter would drop it in silence,
            # and with it whatever waited on its callback (an Ollama model's other tags, the model).
            # A redirect loop still ends: after REDIRECT_MAX_TIMES, reported as a failed page.
            request.dont_filter = True
            rooted = getattr(getattr(self.crawler, "spider", None), "rooted_location", None)
            under = rooted(request.url, location) if rooted is not None else None
            if under is not None:
                headers = response.headers.copy()
                headers[b"Location"] = under
                return response.replace(headers=headers)
            return response
        raise RedirectLeavesHub(f"HTTP {response.status} redirect to another host: {location[:200]!r}")


class RateLimitMiddleware:
    """On a rate limit (429; 503 naming a wait; GitHub's 403 of a rate limit, see
    :func:`rate_limited_403`), wait what the hub says, then retry.

    Scrapy's RetryMiddleware retries 429 at once and ignores the headers (and fails a 403); this
    one runs first on the response path. Waiting is an ``asyncio.sleep`` — the reactor keeps
    running, other requests proceed. A wait named in seconds is cut to ``PTM_RATELIMIT_MAX_WAIT``;
    one until an ``X-RateLimit-Reset`` time is waited whole (retrying before it only meets the
    limit again), unless it is further off than ``PTM_RATELIMIT_MAX_RESET_WAIT``: then the request
    is given up at once. One still limited after ``PTM_RATELIMIT_MAX_RETRIES`` waits is given up
    too; either is reported (log + ``ptm/ratelimit/gave_up``) and fails its page (or history call).
    """

    def __init__(self, crawler):
        self.crawler = crawler
        self.stats = crawler.stats
        self.max_wait = crawler.settings.getfloat("PTM_RATELIMIT_MAX_WAIT")
        self.max_reset_wait = crawler.settings.getfloat("PTM_RATELIMIT_MAX_RESET_WAIT")
        self.max_retries = crawler.settings.getint("PTM_RATELIMIT_MAX_RETRIES")
        self.default_wait = crawler.settings.getfloat("PTM_RATELIMIT_DEFAULT_WAIT")

    @classmethod
    def from_crawler(cls, crawler):
        return cls(crawler)

    async def process_response(self, request: Request, response):
        status = response.status
        if status not in (403, 429, 503):
            return response
        named = named_wait(response.headers)
        if status == 503 and named is not None and not names_a_wait_for_503(response.headers):
            named = None
        until_reset = reset_wait(response.headers) if named is None else None
        if status == 503 and named is None and until_reset is None:
            return response
        if status == 403 and not rate_limited_403(response):
            return response
        attempts = request.meta.get("ptm_ratelimit_retries", 0)
        page = splash_page(request)[0]  # a Splash request's page, not Splash's endpoint
        if attempts >= self.max_retries:
            self._give_up(request, status, f"rate limited {attempts} times",
                          "Rate limited %d times, giving up on %s", attempts, page)
        if named is not None:
            wait = min(max(named, 0.0), self.max_wait)
        elif until_reset is not None:
            if until_reset > self.max_reset_wait:
                self._give_up(request, status, f"rate limit resets in {until_reset:.0f} s, later than "
                                               f"PTM_RATELIMIT_MAX_RESET_WAIT={self.max_reset_wait:g}",
                              "HTTP %d from %s: the hub's rate limit resets in %.0f s, later than "
                              "PTM_RATELIMIT_MAX_RESET_WAIT=%g s: giving up on it", status, page,
                              until_reset, self.max_reset_wait)
            wait = until_reset
        else:
            wait = self.default_wait * (2 ** attempts)
            if status == 403:  # GitHub: wait at least a minute after a secondary limit naming no wait
                wait = max(wait, 60.0)
            wait = min(wait, self.max_wait)
        self.stats.inc_value(RATELIMIT_WAITS)
        self.stats.inc_value(RATELIMIT_WAIT_SECONDS, round(wait, 3))
        logger.info("HTTP %d from %s: waiting %.1fs as the hub asks", status, page, wait)
        if not await sleep_unless_closing(self.crawler, wait):
            return requeued(request, f"HTTP {status}: rate limited")
        retry = request.replace(dont_filter=True)
        retry.meta["ptm_ratelimit_retries"] = attempts + 1
        return retry

    def _give_up(self, request: Request, status: int, reason: str, message: str, *args: Any) -> NoReturn:
        self.stats.inc_value(RATELIMIT_GAVE_UP)
        logger.error(message, *args)
        raise RateLimited(f"{reason}: {splash_page(request)[0]}", status)


class BackoffRetryMiddleware(RetryMiddleware):
    """Scrapy's RetryMiddleware (5xx, 408, resets, timeouts, cut-off bodies), with back-off.

    A retry waits ``PTM_RETRY_BACKOFF`` seconds, doubling with each retry of the same request (with
    jitter, capped at ``PTM_RETRY_BACKOFF_MAX``), so a struggling hub is not hammered. The wait is
    carried in ``meta["ptm_retry_delay"]`` and slept (without blocking the reactor) just before the
    request is downloaded again; spiders re-requesting a malformed page set it too
    (``HubSpider.page_malformed``). Requests the hub answers with 429 never reach this middleware:
    RateLimitMiddleware waits what the hub asks.
    """

    def __init__(self, settings):
        super().__init__(settings)
        self.backoff = settings.getfloat("PTM_RETRY_BACKOFF")
        self.backoff_max = settings.getfloat("PTM_RETRY_BACKOFF_MAX")

    async def process_request(self, request: Request):
        delay = request.meta.pop("ptm_retry_delay", 0)
        if delay and not await sleep_unless_closing(self.crawler, delay):
            return requeued(request, "back-off before a retry")
        return None

    def _retry(self, request: Request, reason):
        retry = super()._retry(request, reason)
        if retry is not None:
            retry.meta["ptm_retry_delay"] = backoff_delay(
                retry.meta.get("retry_times", 1), self.backoff, self.backoff_max)
        return retry


def backoff_delay(attempt: int, base: float, cap: float) -> float:
    """Seconds to wait before retry number ``attempt`` (1, 2, …): ``base * 2**(attempt-1)``,
    jittered by ±25 % so workers retrying together spread out, never above ``cap``."""
    if base <= 0:
        return 0.0
    return min(cap, base * 2 ** max(0, attempt - 1) * random.uniform(0.75, 1.25))


_RATELIMIT_R = re.compile(r"(?:^|;)\s*r\s*=\s*(\d+)")
_RATELIMIT_Q = re.compile(r"(?:^|;)\s*q\s*=\s*(\d+)")


def ratelimit_remaining(headers) -> tuple[int, float, int | None] | None:
    """``(remaining, seconds to reset, quota)`` from ``RateLimit: "api";r=<n>;t=<s>`` and
    ``RateLimit-Policy: "fixed window";"api";q=<n>;w=<s>`` (quota None without a policy), or
    None when the response names no remaining count."""
    value = headers.get(b"RateLimit")
    if not value:
        return None
    text = value.decode("latin-1")
    r, t = _RATELIMIT_R.search(text), _RATELIMIT_T.search(text)
    if not r or not t:
        return None
    policy = (headers.get(b"RateLimit-Policy") or b"").decode("latin-1")
    q = _RATELIMIT_Q.search(policy)
    return int(r.group(1)), float(t.group(1)), int(q.group(1)) if q else None


class RateLimitPacingMiddleware:
    """Spreads requests out when the hub says few are left in its window, so a long crawl (each
    model costs several history calls) slows down instead of running into 429s.

    Every response's ``RateLimit`` header gives the calls remaining (``r``) and the seconds until
    the window resets (``t``). Below ``PTM_RATELIMIT_PACE_BELOW`` of the quota (``q`` of
    ``RateLimit-Policy``; without one, of the most remaining seen), requests to that host are
    sent one every ``t / (r + 1)`` seconds until the window resets. 429s are still handled by
    :class:`RateLimitMiddleware`.
    """

    def __init__(self, crawler):
        self.crawler = crawler
        self.stats = crawler.stats
        self.fraction = crawler.settings.getfloat("PTM_RATELIMIT_PACE_BELOW")
        self.max_wait = crawler.settings.getfloat("PTM_RATELIMIT_MAX_WAIT")
        self.hosts: dict[str, dict[str, float]] = {}  # host -> spacing, until, next slot, most seen

    @classmethod
    def from_crawler(cls, crawler):
        return cls(crawler)

    async def process_request(self, request: Request):
        pace = self.hosts.get(urlsplit(request.url).netloc)
        if not pace or not pace["spacing"]:
            return None
        now = time.monotonic()
        if now >= pace["until"]:
            pace["spacing"] = 0.0
            return None
        slot = max(now, pace["next"])
        if slot >= pace["until"]:
            return None  # the window has reset by then: a full quota again
        pace["next"] = slot + pace["spacing"]
        wait = min(slot - now, self.max_wait)
        if wait > 0:
            self.stats.inc_value(RATELIMIT_PACED)
            self.stats.inc_value(RATELIMIT_PACED_SECONDS, round(wait, 3))
            if not await sleep_unless_closing(self.crawler, wait):
                return requeued(request, "paced to the hub's rate limit")
        return None

    def process_response(self, request: Request, response):
        seen = ratelimit_remaining(response.headers)
        if seen is None or self.fraction <= 0:
            return response
        remaining, reset, quota = seen
        pace = self.hosts.setdefault(urlsplit(request.url).netloc,
                                     {"spacing": 0.0, "until": 0.0, "next": 0.0, "most": 0.0})
        pace["most"] = max(pace["most"], remaining)
        if remaining < self.fraction * (quota or pace["most"]):
            if not pace["spacing"]:
                logger.info("%s: %d calls left for %.0fs: pacing requests", urlsplit(request.url).netloc,
                            remaining, reset)
            pace["spacing"] = min(reset / (remaining + 1), self.max_wait)
            pace["until"] = time.monotonic() + reset
        else:
            pace["spacing"] = 0.0
        return response


class ReportedUrlLengthMiddleware(UrlLengthMiddleware):
    """Scrapy's ``URLLENGTH_LIMIT`` (2083), but a request it refuses is a page lost, not an INFO
    line: a hub's huge cursor or next link (or a model id that makes one) ended the listing or a
    model's history there, and the crawl said every page was read. The spider says what was lost
    (``HubSpider.url_too_long``: a failed page; a history call: lost for that model and kind)."""

    def get_processed_request(self, request: Request, response: Any) -> Any:
        if len(request.url) <= self.maxlength:
            return request
        self.crawler.stats.inc_value("urllength/request_ignored_count")
        reason = f"URL longer than URLLENGTH_LIMIT ({self.maxlength})"
        handler = getattr(self.crawler.spider, "url_too_long", None)
        if handler is not None:
            return handler(request, reason)
        logger.error("Not requested: %s… (%s: %d characters)", request.url[:300], reason, len(request.url))
        return None
