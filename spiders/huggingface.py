"""Hugging Face Hub: the paginated ``/api/models`` listing, or ``/api/models/<id>`` for given ids.

Listing: ``GET <base>/api/models?sort=<sort>&direction=-1&limit=<page>&expand[]=…`` returns a JSON
array; the next page is the ``Link: <…>; rel="next"`` header (absent on the last page). Legacy ids
(``bert-base-uncased``) answer ``/api/models/<id>`` with a 307 to the canonical id, which Scrapy
follows; the record uses the ``id`` in the final body. Some answer in place instead: ``/api/models/gpt2``
is a 200 with ``"id": "gpt2"``, ``"author": "openai-community"`` and the ``_id`` of
``openai-community/gpt2``. Such a body is not yielded: ``/api/models/<author>/<id>`` is asked, and
when it is the same model (same ``_id``) its body is, so a model given under both names gets the
namespaced id whatever answer comes first (the dedupe stage keeps one). If the namespaced id is
not that model, the legacy body is yielded as it is.

``-a history=commits,refs,discussions,files`` adds each listed model's history calls
(``ptmscrape/history/spider.py``).
"""

from __future__ import annotations

from urllib.parse import quote, urlencode

import scrapy
from scrapy import signals
from scrapy.spidermiddlewares.httperror import HttpError

from ptmscrape.history.spider import HistoryMixin
from ptmscrape.items import printable
from ptmscrape.spiders_base import HubSpider, next_link

# Set on a listing page's request once its next page was asked for (at the page's headers).
NEXT_PAGE_ASKED = "ptm_next_page_asked"
# Scheduling the next page at the headers raised: the callback asks for it, unfiltered (its fingerprint
# may have been noted before the failure).
NEXT_PAGE_ASK_FAILED = "ptm_next_page_ask_failed"


class HuggingfaceSpider(HistoryMixin, HubSpider):
    name = "huggingface"
    base_url_setting = "PTM_HUGGINGFACE_URL"
    root_relative_redirects = True  # a renamed model: 307 Location: /api/models/<new id>
    auth_token_env = "HF_TOKEN"
    full_crawl_arguments = frozenset({"sort", "history"})

    @classmethod
    def from_crawler(cls, crawler, *args, **kwargs):
        spider = super().from_crawler(crawler, *args, **kwargs)
        crawler.signals.connect(spider.listing_headers_received, signal=signals.headers_received)
        return spider

    def __init__(self, *args, sort="downloads", search=None, author=None, models=None, **kwargs):
        super().__init__(*args, **kwargs)
        self.sort = sort
        self.search = search
        self.author = author
        self.models = [m.strip() for m in (models or "").split(",") if m.strip()]
        self.last_page_listed_models = True

    @property
    def auth_host(self) -> str:
        return self.base_host

    async def start(self):
        if self.models:
            for model_id in self.models[: self.limit]:
                yield self.request(f"{self.base_url}/api/models/{quote(model_id, safe='/')}",
                                   self.parse_model)
        elif self.limit != 0:
            yield self.request(self.listing_url(), self.parse_listing)

    def listing_url(self) -> str:
        page = self.settings.getint("PTM_HUGGINGFACE_PAGE_SIZE")
        params: list[tuple[str, str]] = [("sort", self.sort), ("direction", "-1"),
                                         ("limit", str(min(page, self.limit or page)))]
        params += [(k, v) for k, v in (("search", self.search), ("author", self.author)) if v]
        expand = self.settings.getlist("PTM_HUGGINGFACE_EXPAND")
        if expand:
            params += [("expand[]", field) for field in expand]
        else:
            params += [("full", "true"), ("config", "true"), ("cardData", "true")]
        return f"{self.base_url}/api/models?{urlencode(params)}"

    def early_next_page(self, next_url: str | None) -> scrapy.Request | None:
        """The next page, asked for before this page is decoded: its URL is in the Link header, so
        with no limit to count against it downloads while this page's models are processed; unless
        the last page was empty (a hub sending empty pages with next links is then followed one
        page at a time, and stops at the first empty page)."""
        if next_url is None or self.limit is not None or not self.last_page_listed_models:
            return None
        return self.next_page(next_url, self.parse_listing, **self.listing_priority)

    def next_listing_url(self, page_url: str, link: str | None) -> str | None:
        return self.hub_link(page_url, link) if link else None

    @property
    def listing_priority(self) -> dict:
        # With history calls queued, the listing must not run ahead of them (they would pile up in
        # the scheduler): the next page keeps the ordinary priority then.
        return {"priority": 0} if self.history_kinds else {}

    def listing_headers_received(self, headers, request):
        """A listing page's next page is asked for as soon as the page's headers arrive, while its
        body (~2 MB for 1,000 models) still downloads."""
        if request.callback != self.parse_listing or request.meta.get(NEXT_PAGE_ASKED):
            return
        following = self.early_next_page(self.next_listing_url(request.url, next_link(headers.get("Link"))))
        if following is None:
            return
        self.mark_listing_link(following, request)
        try:
            self.crawler.engine.crawl(following)
        except Exception as exc:  # a signal handler's error is only logged: the listing would end here
            self.logger.warning("Could not schedule the next listing page %s as the headers of %s arrived "
                                "(%r); the page's callback asks for it again", following.url, request.url, exc)
            request.meta[NEXT_PAGE_ASK_FAILED] = True
            return
        request.meta[NEXT_PAGE_ASKED] = True  # also on a retry of this page (a copy)

    def parse_listing(self, response):
        link = next_link(response.headers.get("Link"))
        url = self.next_listing_url(response.url, link)
        asked = response.meta.get(NEXT_PAGE_ASKED)  # when its headers arrived
        if not asked:
            early = self.early_next_page(url)
            if early is not None:
                asked = True
                yield early.replace(dont_filter=True) if response.meta.get(NEXT_PAGE_ASK_FAILED) else early
        page = self.json_array_page(response)
        if page is None:
            return
        if link and url is None:
            # The rest of the listing is not read: the crawl says so (and reports no model removed).
            self.report_bad_page(response, f"next page link leaves the hub ({printable(link, 200)})")
        self.last_page_listed_models = bool(page)
        if url and page and not asked and self.more_wanted(len(page)):
            yield self.next_page(url, self.parse_listing, **self.listing_priority)
        elif url and not page and not asked:
            self.logger.warning("Listing page %s lists no model but links a next page (%s): the listing ends here",
                                response.url, url)
        for model, served in page:
            if self.limit_reached_for(response):
                return
            yield self.raw_item(_model_id(model), response, model, payload_json=served)
            yield from self.history_requests(model)

    def parse_model(self, response):
        model = self.json_page(response, expect=dict)
        if model is None:
            return
        model_id, author = model.get("id"), model.get("author")
        if (isinstance(model_id, str) and model_id and "/" not in model_id
                and isinstance(author, str) and author and "/" not in author):
            # A legacy id answered in place: ask for the namespaced one (dont_filter: it may also
            # be among the given ids, and the dedupe stage keeps one of the two namespaced bodies).
            url = f"{self.base_url}/api/models/{quote(author, safe='')}/{quote(model_id, safe='')}"
            yield scrapy.Request(url, callback=self.parse_namespaced, errback=self.namespaced_failed,
                                 dont_filter=True, cb_kwargs={"legacy": model, "legacy_url": response.url})
            return
        yield self.raw_item(_model_id(model), response, model)
        yield from self.history_requests(model)

    def parse_namespaced(self, response, legacy, legacy_url):
        model = self.json_page(response, expect=dict)
        if model is None:
            return
        if model.get("_id") == legacy.get("_id") and "/" in str(model.get("id", "")):
            yield self.raw_item(_model_id(model), response, model)
            yield from self.history_requests(model)
        else:  # another model took the name: the legacy id is its own model
            yield self.raw_item(_model_id(legacy), response.replace(url=legacy_url), legacy)
            yield from self.history_requests(legacy)

    def namespaced_failed(self, failure):
        """The namespaced id of a legacy id does not answer (404): the legacy body is the record."""
        request = failure.request
        if failure.check(HttpError) and failure.value.response.status == 404:
            legacy = request.cb_kwargs["legacy"]
            yield self.raw_item(_model_id(legacy), failure.value.response.replace(
                url=request.cb_kwargs["legacy_url"]), legacy)
            yield from self.history_requests(legacy)
            return
        self.page_failed(failure)


def _model_id(model) -> str:
    return str(model.get("id", "<no id>")) if isinstance(model, dict) else "<not an object>"
