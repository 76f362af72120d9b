"""Shared spider machinery: hub base URL from settings, arguments, JSON pages, Link paging,
failure reporting. Hub spiders in ``spiders/`` only describe their hub's URLs and fields."""

from __future__ import annotations

import json
import re
from typing import Any
from urllib.parse import urljoin, urlsplit, urlunsplit

import scrapy
from scrapy.http import Response
from twisted.python.failure import Failure

from ptmscrape import distributed, signals as ptm_signals
from ptmscrape.checks import BadInput, check_arguments, positive_int
from ptmscrape.items import RawModelItem, printable
from ptmscrape.json_pages import array_elements
from ptmscrape.middlewares import backoff_delay
from ptmscrape.next_page_first import NEXT_PAGE_META
from ptmscrape.rendering import page_status, splash_error, splash_page
from ptmscrape.stats import (
    PAGES_FAILED,
    PAGES_FAILED_BY_KIND,
    PAGES_LISTING_CUT_SHORT,
    PAGES_NOT_FOUND,
    PAGES_RETRIED,
    PAGES_RETRIED_BY_KIND,
)

# Priority of a paged listing's next page. It is yielded before the page's models, as soon as its
# URL is known, and goes before requests already queued (detail pages, history calls), so it
# downloads while the page's models go through the pipelines: a listing that pages sequentially
# then runs at the hub's pace. Not in a distributed crawl, whose hand-offs go first (see
# ``distributed.HANDOFF_PRIORITY``) so that the shared queue never holds the whole hub.
LISTING_PRIORITY = 100

# Meta of a request whose response gave models, with -a limit: how many it gave (they count against
# the limit). A JOBDIR job that fetches it again (ptmscrape/jobdir.py) sets RELISTED_META to that
# number: its first so many models are listed again without counting, whatever the count is by then
# (taking them off the count instead let pages fetched first, the listing's next ones, use it up).
LISTED_META = "ptm_listed"
RELISTED_META = "ptm_relisted"
# Meta of a listing page's request whose URL this run asked for before (see
# ``HubSpider.listing_page_scheduled``): the hub's next cursor or link repeats a page.
REPEATED_PAGE_META = "ptm_repeated_page"
# Meta of a page a JOBDIR job fetches again (ptmscrape/jobdir.py: lost, or its models not stored):
# the earlier run asked for it, not a link of this run, so it is no page this run asked for before.
FETCHED_AGAIN_META = "ptm_fetched_again"
# Meta of a listing's next page: the fingerprint (hex) of the page that asked for it
# (``HubSpider.mark_listing_link``), so a link back to a page the job fetches again is told from
# the link of the page before it (``listing_page_scheduled``).
LISTING_FROM_META = "ptm_listing_from"
LISTING_LOOPS = "listing loops"

_LINK = re.compile(r'<([^>]*)>\s*((?:;\s*[^;,]+)*)')


def next_link(header: bytes | str | None) -> str | None:
    """The ``rel="next"`` URL of a GitHub-style ``Link`` header, or None on the last page."""
    if not header:
        return None
    text = header.decode("latin-1") if isinstance(header, bytes) else header
    for url, params in _LINK.findall(text):
        rels = re.findall(r'rel\s*=\s*"?([^";]+)"?', params)
        if any("next" in r.split() for r in rels):
            return url
    return None


def paths_below(url: str, base_url: str, site_path: str = "") -> list[str]:
    """The path of ``url`` below the base URL's path (a mirror's prefix), then below ``site_path``,
    where the hub's own pages link from (its root when empty): a site behind a mirror that does not
    know its prefix links that way. ``/mirror/hub/x/`` -> ``["/x/", …]``; none when below neither."""
    path = urlsplit(url).path
    prefixes = dict.fromkeys((urlsplit(base_url).path.rstrip("/"), site_path.rstrip("/")))
    return [path[len(prefix):] for prefix in prefixes if path.startswith(prefix + "/")]


# The start of an HTML page (after blanks or a byte order mark). Not its Content-Type: a mirror
# set in PTM_*_RAW_URL may serve markdown as text/html.
_HTML_START = re.compile(rb"(?:\xef\xbb\xbf)?\s*(?:<!doctype\s+html|<html[\s>]|<head[\s>])", re.I)

# JSON nested deeper than Python's recursion limit (~1,000 levels), which json reads by recursion.
_TOO_DEEP = "nested deeper than the decoder reads"


def listed_size(value: Any) -> int | None:
    """A file's size in bytes as a git tree listing gives it (``size``), or None for anything else."""
    return value if isinstance(value, int) and not isinstance(value, bool) and value >= 0 else None


class HubSpider(scrapy.Spider):
    """A spider for one model hub.

    Subclasses set ``name`` (also the hub name in the dataset tree) and ``base_url_setting``
    (the ``PTM_*_URL`` setting with the hub's base URL), and yield items via :meth:`raw_item`.
    The ``-a`` arguments a spider accepts are the keyword parameters of its ``__init__`` (and
    its bases'): any other is refused (:class:`BadInput`), except ``_``-prefixed ones such as
    Scrapyd's ``_job``, which are accepted and ignored.

    In a distributed crawl (``PTM_REDIS_URL`` set) :meth:`raw_item` returns a hand-off request
    instead of the item, so the model is processed by whichever worker pops it from Redis (see
    ``ptmscrape/distributed.py``); spiders yield its result either way.
    """

    base_url_setting: str = ""
    base_url: str  # the setting's value without a trailing "/", set by from_crawler
    # The hub's own base URL is its host's root, and it redirects relative to that root: a mirror's
    # path is put back on such a redirect (rooted_location).
    root_relative_redirects: bool = False
    custom_settings: dict[str, Any] = {}
    handoff: distributed.Handoff | None = None
    # -a arguments that only order or tune a crawl. Any other one (limit, search, …) may narrow
    # it, and then a model the crawl did not list is not reported as removed from the hub.
    full_crawl_arguments: frozenset[str] = frozenset()
    # The callbacks of a listing's pages: one of their next pages that repeats a page this crawl
    # asked for is a loop (listing_page_scheduled), reported rather than dropped in silence.
    listing_callbacks: frozenset[str] = frozenset({"parse_listing"})
    arguments: dict[str, Any] = {}
    # Why the listing may have ended before the hub's last model though no page failed (a hub's count
    # saying more than it listed): the removed-models report is then not written (ptmscrape/removed.py).
    listing_ended_short: str | None = None
    # False for a hub whose models have no git repository (Civitai, Ollama: CloneStatus 'skipped:
    # the hub has no git repository'): its crawl needs no git, git-lfs or git transport.
    has_repositories: bool = True

    def __init__(self, *args: Any, limit: str | int | None = None, **kwargs: Any):
        check_arguments(type(self), {name: None for name in kwargs if name != "name"})
        super().__init__(*args, **kwargs)
        self.limit = positive_int(limit, "limit")
        self._items_yielded = 0

    @classmethod
    def from_crawler(cls, crawler, *args, **kwargs):
        spider = super().from_crawler(crawler, *args, **kwargs)
        spider.check_settings(crawler.settings)
        spider.base_url = (crawler.settings.get(cls.base_url_setting) or "").rstrip("/")
        if not spider.base_url:
            raise ValueError(f"{cls.base_url_setting} is not set")
        spider.handoff = distributed.Handoff.from_spider(spider)
        spider.arguments = dict(kwargs)
        crawler.signals.connect(spider.listing_page_scheduled, signal=scrapy.signals.request_scheduled)
        crawler.signals.connect(spider.listing_page_dropped, signal=scrapy.signals.request_dropped)
        return spider

    @classmethod
    def check_input(cls, settings, arguments: dict[str, Any]) -> None:
        """Raise :class:`BadInput` for bad ``-a`` arguments or settings, before any crawling
        (``ptmscrape/commands/crawl.py``): the checks ``__init__`` and ``from_crawler`` make."""
        cls(**arguments).check_settings(settings)

    def check_settings(self, settings) -> None:
        """Raise :class:`BadInput` for settings this spider cannot crawl with."""
        if not str(settings.get(self.base_url_setting) or "").strip():
            raise BadInput(f"{self.base_url_setting} is not set: give the hub's base URL")

    @property
    def narrowed_by(self) -> list[str]:
        """The -a arguments that may have kept this crawl from listing the whole hub."""
        return sorted(name for name, value in self.arguments.items()
                      if value not in (None, "") and not name.startswith("_")
                      and name not in self.full_crawl_arguments)

    # -- items ---------------------------------------------------------------------------
    @property
    def items_yielded(self) -> int:
        """Models listed so far — with JOBDIR, by all runs of the job (kept in ``spider.state``,
        which Scrapy saves on a graceful pause and loads when the spider opens)."""
        state = getattr(self, "state", None)
        return state.get("ptm_items_yielded", 0) if isinstance(state, dict) else self._items_yielded

    @property
    def limit_reached(self) -> bool:
        if self.limit is None:
            return False
        # Distributed: listing pages may be fetched by different workers; the count is shared.
        listed = self.handoff.listed() if self.handoff else self.items_yielded
        return listed >= self.limit

    def limit_reached_for(self, response: Response | scrapy.Request) -> bool:
        """:attr:`limit_reached`, for the next model ``response`` gives: never while it gives again
        the models an earlier run of the job counted (``RELISTED_META``)."""
        if self.limit is None:
            return False
        request = response if isinstance(response, scrapy.Request) else response.request
        if request is not None and request.meta.get(RELISTED_META, 0) > 0:
            return False
        return self.limit_reached

    def more_wanted(self, upcoming: int) -> bool:
        """Whether to ask for the next listing page before yielding the ``upcoming`` models of
        this one: not when they already reach ``-a limit``."""
        if self.limit is None:
            return True
        listed = self.handoff.listed() if self.handoff else self.items_yielded
        return listed + upcoming < self.limit

    def raw_item(self, model_id: Any, response: Response | scrapy.Request, payload: Any, *,
                 payload_json: str | None = None, **context: Any) -> RawModelItem | scrapy.Request:
        """What to yield for one model: its raw item (or, distributed, a hand-off request).
        ``response``: what gave the model (a request that failed, when its errback yields it);
        ``payload_json``: the payload's text as served (see :meth:`json_array_page`)."""
        # Distributed, the hand-off's own request gives the model (distributed.unpack).
        request = None if self.handoff else response if isinstance(response, scrapy.Request) else response.request
        relisted = request.meta.get(RELISTED_META, 0) if self.limit is not None and request is not None else 0
        if relisted > 0 and request is not None:
            request.meta[RELISTED_META] = relisted - 1  # counted by the run of the job that listed it first
        else:
            state = getattr(self, "state", None)
            if isinstance(state, dict):
                state["ptm_items_yielded"] = state.get("ptm_items_yielded", 0) + 1
            else:
                self._items_yielded += 1
        context.setdefault("base_url", self.base_url)
        if self.limit is not None and request is not None:
            request.meta[LISTED_META] = request.meta.get(LISTED_META, 0) + 1
        item = RawModelItem(hub=self.name, model_id=str(model_id)[:300], url=response.url,
                            payload=payload, context=context, payload_json=payload_json, request=request)
        return self.handoff.request(item, str(model_id)) if self.handoff else item

    def deliver_handoff(self, response: Response):
        """Callback of a hand-off request: the model, in the worker that popped it."""
        yield distributed.unpack(response)

    # -- pages ---------------------------------------------------------------------------
    def listing_page_scheduled(self, request: scrapy.Request, spider=None) -> None:
        """Remember each listing page (``listing_callbacks``) this run asks for, by fingerprint (one
        per page, so a few KB for the largest hub), and mark one asked for again: a next cursor or
        link that repeats, or points back to an earlier page."""
        if getattr(request.callback, "__name__", None) not in self.listing_callbacks:
            return
        fingerprint = self.crawler.request_fingerprinter.fingerprint(request).hex()
        again = self.__dict__.setdefault("_listing_pages_again", set())
        if request.meta.get(FETCHED_AGAIN_META):
            # Two pages the job fetches again may follow each other (a pause leaves the models
            # of several pages unstored): the first one's next page is the second, which the
            # dupefilter drops, as any page the earlier run read (not a loop) ...
            again.add(fingerprint)
            return
        seen = self.__dict__.setdefault("_listing_pages", {})  # fingerprint: the page that asked for it
        if fingerprint in seen or (fingerprint in again and self._links_from(request, fingerprint, seen)):
            # ... but a link back to one from a page this run reached from it is a loop.
            request.meta[REPEATED_PAGE_META] = True
        else:
            seen[fingerprint] = request.meta.get(LISTING_FROM_META)

    @staticmethod
    def _links_from(request: scrapy.Request, fingerprint: str, seen: dict[str, Any]) -> bool:
        """Whether ``request`` was asked for by a page this run reached by next pages from the page
        ``fingerprint``."""
        page = request.meta.get(LISTING_FROM_META)
        for _ in range(len(seen) + 1):  # a bound, should the pages' records ever form a cycle
            if page is None:
                return False
            if page == fingerprint:
                return True
            page = seen.get(page)
        return False

    def mark_listing_link(self, request: scrapy.Request, page: scrapy.Request | None) -> None:
        """Record in a listing's next page ``request`` which page asked for it (``LISTING_FROM_META``)."""
        if page is not None and getattr(page.callback, "__name__", None) in self.listing_callbacks:
            request.meta.setdefault(LISTING_FROM_META, self.crawler.request_fingerprinter.fingerprint(page).hex())

    def listing_page_dropped(self, request: scrapy.Request, spider=None) -> None:
        """Scrapy's dupefilter dropped a listing's next page that this run read already (it only
        logs that at DEBUG): the listing loops and ends here, though the hub said there was more.
        Reported as a failed page, so the crawl exits 1 and reports no model as removed. (A page a
        resumed JOBDIR job reads again may ask for a next page the earlier run read: not marked,
        as this run did not ask for it before, nor when this run fetches it again for the job:
        ``FETCHED_AGAIN_META``.)"""
        if not request.meta.get(REPEATED_PAGE_META) or not request.meta.get(NEXT_PAGE_META):
            return
        self.logger.error("Listing loops: its next page %s was read already in this crawl (the hub's "
                          "next cursor or link repeats an earlier page); the listing ends here",
                          printable(request.url, 300))
        self.count_failed_page(LISTING_LOOPS)

    def url_too_long(self, request: scrapy.Request, reason: str) -> Any:
        """A request ``URLLENGTH_LIMIT`` refuses (``ReportedUrlLengthMiddleware``): a failed page."""
        self.logger.error("Page not requested: %s (%s: %d characters)", printable(request.url, 300), reason,
                          len(request.url))
        self.count_failed_page("URL too long")
        return None

    def request(self, url: str, callback, **kwargs: Any) -> scrapy.Request:
        """A request whose failure (after retries) is reported by URL and reason."""
        return scrapy.Request(url, callback=callback, errback=self.page_failed, **kwargs)

    def next_page(self, url: str, callback, **kwargs: Any) -> scrapy.Request:
        """:meth:`request` for a listing's next page, ahead of queued requests (``LISTING_PRIORITY``)."""
        kwargs.setdefault("priority", 0 if self.handoff else LISTING_PRIORITY)
        request = self.request(url, callback, **kwargs)
        request.meta[NEXT_PAGE_META] = True
        return request

    def rooted_location(self, request_url: str, location: str) -> str | None:
        """A same-host redirect's ``Location`` relative to the host's root (``/api/models/<new
        id>``, as the Hub answers a renamed model) with the base URL's path put back, as
        :meth:`hub_link` does for links: a mirror at a path that passes the header on unchanged
        sent the crawl outside its path. Only for a hub whose base URL is its host's root
        (``root_relative_redirects``): a default base with a path of its own (``pytorch.org/hub``,
        a raw-file folder) may redirect anywhere on its host. None: the location needs nothing."""
        if not self.root_relative_redirects or not location.startswith("/") or location.startswith("//"):
            return None
        base, request = urlsplit(self.base_url), urlsplit(request_url)
        prefix = base.path.rstrip("/")
        if (not prefix or base[:2] != request[:2]
                or not (request.path == prefix or request.path.startswith(prefix + "/"))
                or location == prefix or location.startswith(prefix + "/")):
            return None
        return prefix + location

    def hub_link(self, page_url: str, link: str) -> str | None:
        """Absolute URL of a link the hub sent (a ``Link`` rel=next), kept under the base URL: the
        Hub sends links relative to its root, or absolute at the root of the host it was asked by
        (a proxy at a path that passes its Host header on), so a base URL with a path (a mirror)
        gets its path put back either way. A link to another scheme or host (``file:``, another
        server) is refused: None."""
        base = urlsplit(self.base_url)
        url = urljoin(page_url, link)
        target = urlsplit(url)
        if (target.scheme, target.netloc) != (base.scheme, base.netloc):
            return None
        prefix = base.path.rstrip("/")
        if prefix and target.path != prefix and not target.path.startswith(prefix + "/"):
            url = urlunsplit(target._replace(path=prefix + (target.path or "/")))
        return url

    def json_page(self, response: Response, expect: type | tuple[type, ...] = (list, dict)) -> Any:
        """The decoded JSON body, or None for a malformed page (cut short, not JSON, or not of
        the ``expect``-ed type), which is fetched again or reported (see :meth:`page_malformed`)."""
        try:
            data = json.loads(response.body)
        except ValueError as exc:
            return self.page_malformed(response, "malformed JSON", f"{exc.__class__.__name__}: {exc}")
        except RecursionError:
            return self.page_malformed(response, "malformed JSON", _TOO_DEEP)
        if not isinstance(data, expect):
            return self.page_malformed(response, "unexpected JSON", f"a {type(data).__name__}")
        return data

    def json_array_page(self, response: Response) -> list[tuple[Any, str]] | None:
        """:meth:`json_page` of a JSON array page, each element with the text the hub served for it
        (``ptmscrape/json_pages.py``), or None for a malformed page."""
        try:
            return array_elements(response.body)
        except ValueError as exc:
            self.page_malformed(response, "malformed JSON", f"{exc.__class__.__name__}: {exc}")
        except TypeError as exc:
            self.page_malformed(response, "unexpected JSON", str(exc))
        except RecursionError:
            self.page_malformed(response, "malformed JSON", _TOO_DEEP)
        return None

    def html_page(self, response: Response, complete: str = "</html>") -> Response | None:
        """The response if its HTML arrived whole (``complete`` in its last 4 KB), else None after
        fetching it again or reporting it: a truncated page parses fine and silently lists fewer
        models, so listing and detail pages are checked before their rows are read. A page over
        ``PTM_MAX_HTML_MB`` is reported at once, never parsed (its parse tree would be ~40 times
        its size)."""
        limit = self.settings.getint("PTM_MAX_HTML_MB") * 1_000_000 if self.settings else 0
        if limit and len(response.body) > limit:
            self.report_bad_page(response, f"page too large ({len(response.body)} bytes, over PTM_MAX_HTML_MB="
                                           f"{self.settings.get('PTM_MAX_HTML_MB')})")
            return None
        if complete.encode().lower() in response.body[-4096:].lower():
            return response
        self.page_malformed(response, "incomplete HTML", f"no {complete} at the end")
        return None

    def raw_file(self, response: Response) -> bool:
        """Whether ``response`` can be the raw repository file asked for (markdown, YAML), else False
        after fetching it again or reporting it (:meth:`page_malformed`). A repository file does not
        open as an HTML document does: such a 200 page is a proxy's or a captive portal's, which read
        as markdown blanked a TF Hub record's metadata, or left an ONNX README without model rows
        (its models then reported removed), with exit status 0."""
        if not _HTML_START.match(response.body[:512]):
            return True
        content_type = (response.headers.get(b"Content-Type") or b"").split(b";")[0].strip()
        self.page_malformed(response, "HTML page instead of the file",
                            f"an HTML document, served as {content_type.decode('latin-1') or 'no type'}: "
                            f"a proxy's or captive portal's page?")
        return False

    def cut_short(self, response: Response, size: Any) -> bool:
        """Whether ``response``, a repository file whose size a git tree listing gave (``size``; None
        or anything but a whole number: unknown), is shorter than that; if so it is fetched again
        or reported (:meth:`page_malformed`). A 200 answer that ends early (a proxy's cache, a
        mirror's partial copy) still reads as markdown or YAML: read, it stored a record without
        what the cut lost, with exit status 0."""
        if listed_size(size) is None or len(response.body) >= size:
            return False
        # Raw files come from the branch, not the tree's commit: a file made shorter in between reads the same.
        self.page_malformed(response, "file cut short", f"{len(response.body)} bytes of the {size} the tree lists; "
                                                        "or made shorter on the hub since the tree was read")
        return True

    def page_malformed(self, response: Response, kind: str, detail: str) -> None:
        """Fetch a malformed 200 page again (Scrapy's retries only cover errors), up to
        ``PTM_PAGE_RETRIES`` times with back-off; then report it by URL and reason."""
        request = response.request
        tries = request.meta.get("ptm_page_retries", 0) if request is not None else 0
        try:
            engine = self.crawler.engine
        except RuntimeError:  # not crawling (a callback called directly): report at once
            engine = None
        limit = self.settings.getint("PTM_PAGE_RETRIES") if self.settings else 0
        if request is not None and engine is not None and tries < limit:
            retry = request.replace(dont_filter=True)
            retry.meta["ptm_page_retries"] = tries + 1
            retry.meta["ptm_retry_delay"] = backoff_delay(
                tries + 1, self.settings.getfloat("PTM_RETRY_BACKOFF"),
                self.settings.getfloat("PTM_RETRY_BACKOFF_MAX"))
            self.logger.warning("Malformed page %s (%s: %s)%s: fetching it again (%d of %d)",
                                response.url, kind, detail[:200], self.page_label(request), tries + 1, limit)
            self.crawler.stats.inc_value(PAGES_RETRIED)
            self.crawler.stats.inc_value(PAGES_RETRIED_BY_KIND + kind)
            engine.crawl(retry)
            return None
        return self.report_bad_page(response, f"{kind} ({detail[:200]})")

    def page_label(self, request: scrapy.Request | None) -> str:
        """What names a page besides its URL, for the log (`` [owner 'iic', page 3]``): nothing
        for a hub whose URLs differ page by page; a hub that pages in the request's body
        (ModelScope's PUTs) says which page it was."""
        return ""

    def report_bad_page(self, response: Response, reason: str) -> None:
        """A page still malformed after its retries: logged with URL and reason, and counted in
        ``ptm/pages/failed`` and ``ptm/pages/failed/<kind>`` (like pages that failed to download)."""
        kind = reason.split(" (")[0]
        request = response.request
        label = self.page_label(request)
        if request is not None and request.meta.get("ptm_page_retries"):
            self.logger.error("Page failed after retries: %s (%s)%s", response.url, reason, label)
        else:  # PTM_PAGE_RETRIES=0, or a fault fetching it again cannot mend
            self.logger.error("Page failed (not retried): %s (%s)%s", response.url, reason, label)
        self.count_failed_page(kind, request)
        return None

    def page_failed(self, failure: Failure) -> None:
        request = failure.request  # type: ignore[attr-defined]  # Scrapy sets it on errback failures
        reason = failure.getErrorMessage() or failure.type.__name__
        response = getattr(failure.value, "response", None)
        status = getattr(response, "status", None)
        kind = f"HTTP {status}" if status else failure.type.__name__
        label = self.page_label(request)
        url, splash = splash_page(request)
        if splash and page_status(response):  # the hub's own status, which Splash carried
            splash = None
        if splash:  # the error is the Splash server's (a render timeout, Splash down...), not the hub's
            reason = f"Splash at {splash}: {(splash_error(response) if response is not None else None) or reason}"
        if status == 404 and not splash:  # never retried: the hub says there is no such page
            self.logger.error("Page not found: %s (%s)%s", url, kind, label)
            self.crawler.stats.inc_value(PAGES_NOT_FOUND)
        elif request.meta.get("retry_times") or request.meta.get("ptm_ratelimit_retries"):
            self.logger.error("Page failed after retries: %s (%s: %s)%s", url, kind, reason, label)
        else:  # an error Scrapy does not retry (e.g. HTTP 403)
            self.logger.error("Page failed (not retried): %s (%s: %s)%s", url, kind, reason, label)
        self.count_failed_page(kind, request)

    def count_failed_page(self, kind: str, request: scrapy.Request | None = None) -> None:
        """A page lost for good: counted in ``ptm/pages/failed`` (and by ``kind``), and signalled
        (``ptmscrape.signals.page_failed``: the removed-models report then reports nothing; with a
        JOBDIR, ``request`` is fetched again when the job resumes)."""
        self.crawler.stats.inc_value(PAGES_FAILED)
        self.crawler.stats.inc_value(PAGES_FAILED_BY_KIND + kind)
        if request is not None and request.meta.get(NEXT_PAGE_META):
            # Its successor's URL was to come from it: "1 page failed" hid that the rest of the
            # hub's listing was never read.
            self.crawler.stats.inc_value(PAGES_LISTING_CUT_SHORT)
            self.logger.error("The listing ends at %s%s: the pages after it were not read (a JOBDIR job fetches "
                              "it again when resumed)", splash_page(request)[0], self.page_label(request))
        self.crawler.signals.send_catch_log(ptm_signals.page_failed, kind=kind, request=request)

    @property
    def base_host(self) -> str:
        return urlsplit(self.base_url).netloc

