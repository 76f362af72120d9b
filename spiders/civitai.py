"""Civitai (civitai.com): the public REST API ``/api/v1/models``, cursor-paged.

``GET <base>/api/v1/models?limit=100&sort=Newest&nsfw=true`` returns ``{"items": [model, ...],
"metadata": {"nextCursor": "...", "nextPage": "<absolute URL>"}}``; each ``model`` carries its
versions, their files (size, format, hashes, pickle and virus scan results) and the license flags,
and is the raw payload as served. Page numbers are refused past 1,000 results ("use cursors
instead"), so the crawl never builds one: the next page is this listing's URL with
``cursor=<metadata.nextCursor>``, or, when only ``metadata.nextPage`` is given, that URL's query on
our base URL (the API writes its own host there, which a mirror or a path-prefixed base must not
leave). The crawl ends at a page without a next cursor; an empty page with one is followed (a
search's page can be empty mid-listing), up to ``MAX_EMPTY_PAGES`` in a row, then reported. Without ``nsfw=true`` the
API hides NSFW models; the crawl asks for them (``-a nsfw=false`` leaves them out) and keeps the
flags as data. No git repository and no download: the files are described, never fetched.

Arguments: ``limit``, ``sort`` (default ``Newest``, the most stable order while the hub grows),
``types`` (``Checkpoint``, ``LORA``, …, comma-separated), ``query``, ``username``, ``nsfw``.
"""

from __future__ import annotations

from urllib.parse import parse_qsl, unquote, urlencode, urlsplit

from ptmscrape.checks import BadInput
from ptmscrape.items import printable
from ptmscrape.spiders_base import HubSpider

LISTING = "/api/v1/models"
EMPTY_PAGES_META = "ptm_civitai_empty_pages"  # empty pages with a next cursor in a row, so far
MAX_EMPTY_PAGES = 10


class CivitaiSpider(HubSpider):
    name = "civitai"
    base_url_setting = "PTM_CIVITAI_URL"
    has_repositories = False  # nothing to clone: no git needed
    full_crawl_arguments = frozenset({"sort"})

    def __init__(self, *args, sort="Newest", types=None, query=None, username=None, nsfw="true",
                 **kwargs):
        super().__init__(*args, **kwargs)
        if str(nsfw).lower() not in ("true", "false", "1", "0"):
            raise BadInput(f"-a nsfw= must be true or false, got {nsfw!r}")
        self.sort = sort
        self.types = [t.strip() for t in (types or "").split(",") if t.strip()]
        self.query = query
        self.username = username
        self.nsfw = str(nsfw).lower() in ("true", "1")

    @property
    def narrowed_by(self) -> list[str]:
        # nsfw=true (the default) lists the whole hub; only nsfw=false narrows the crawl.
        return [name for name in super().narrowed_by if name != "nsfw" or not self.nsfw]

    async def start(self):
        if self.limit != 0:
            yield self.request(self.listing_url(), self.parse_listing)

    def listing_params(self) -> list[tuple[str, str]]:
        page = max(1, min(100, self.settings.getint("PTM_CIVITAI_PAGE_SIZE")))
        params = [("limit", str(min(page, self.limit or page))), ("sort", self.sort)]
        params += [("types", t) for t in self.types]
        params += [(k, v) for k, v in (("query", self.query), ("username", self.username)) if v]
        if self.nsfw:
            params.append(("nsfw", "true"))
        return params

    def listing_url(self, cursor: str | None = None) -> str:
        params = self.listing_params() + ([("cursor", cursor)] if cursor else [])
        return f"{self.base_url}{LISTING}?{urlencode(params)}"

    def parse_listing(self, response):
        page = self.json_page(response, expect=dict)
        if page is None:
            return
        items = page.get("items")
        if not isinstance(items, list):
            self.page_malformed(response, "unexpected JSON", "no 'items' list")
            return
        # The next page first: it downloads while this page's models are processed.
        url = self.next_url(response, page.get("metadata"))
        empty = 0
        if url and not items:
            # A next cursor says the hub found more models: a page without any is not the end (a
            # search's page of ids whose models the database then leaves out is empty). Followed,
            # but not for ever: a run of empty pages is reported.
            request = response.request
            empty = (request.meta.get(EMPTY_PAGES_META, 0) if request is not None else 0) + 1
            if empty > MAX_EMPTY_PAGES:
                self.report_bad_page(response, f"empty pages with a next cursor ({empty - 1} before this "
                                               f"one; next page {printable(unquote(url), 300)})")
                return
            self.logger.info("Listing page %s lists no models but gives a next page: following it (%s)",
                             response.url, printable(unquote(url), 300))
        if url and (items or empty) and self.more_wanted(len(items)):
            yield self.next_page(url, self.parse_listing, meta={EMPTY_PAGES_META: empty} if empty else None)
        for model in items:
            if self.limit_reached_for(response):
                return
            yield self.raw_item(_model_id(model), response, model)

    def next_url(self, response, metadata) -> str | None:
        """The next listing page on our base URL, from the cursor the API gave (None: last page)."""
        if metadata is None:
            return None
        if not isinstance(metadata, dict):
            # Whatever it held, the rest of the hub is not listed: say so (no model reported removed).
            self.report_bad_page(response, f"malformed next cursor (metadata is a {type(metadata).__name__})")
            return None
        cursor = metadata.get("nextCursor")
        if isinstance(cursor, (int, str)) and not isinstance(cursor, bool) and str(cursor):
            return self.listing_url(str(cursor))
        next_page = metadata.get("nextPage")
        if isinstance(next_page, str) and next_page.strip():
            query = [(k, v) for k, v in parse_qsl(urlsplit(next_page.strip()).query, keep_blank_values=True)]
            if any(k == "cursor" and v for k, v in query):
                return f"{self.base_url}{LISTING}?{urlencode(query)}"
            # Page numbers stop at 1,000 results: the rest of the hub is not listed, so say so
            # (and a crawl that stopped here reports no model as removed).
            self.report_bad_page(response, f"next page without a cursor ({next_page[:200]})")
        elif cursor is not None and not isinstance(cursor, str):  # a list, an object, a float, true
            self.report_bad_page(response, f"malformed next cursor (a {type(cursor).__name__}: "
                                           f"{printable(cursor, 100)})")
        return None


def _model_id(model) -> str:
    if not isinstance(model, dict):
        return "<not an object>"
    return str(model.get("id", "<no id>"))
