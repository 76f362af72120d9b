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
from scrapy.spidermiddlewares.httperror import HttpError

from ptmscrape.history.spider import HistoryMixin
from ptmscrape.spiders_base import HubSpider, next_link


class HuggingfaceSpider(HistoryMixin, HubSpider):
    name = "huggingface"
    base_url_setting = "PTM_HUGGINGFACE_URL"
    auth_token_env = "HF_TOKEN"
    full_crawl_arguments = frozenset({"sort", "history"})

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

    def parse_listing(self, response):
        # The next page first: it downloads while this page's models are processed. Its URL is in
        # the Link header, so with no limit to count against it is asked for before this page is
        # even decoded; unless the last page was empty (a hub sending empty pages with next links
        # is then followed one page at a time, and stops at the first empty page).
        url = next_link(response.headers.get("Link"))
        # With history calls queued, the listing must not run ahead of them (they would pile up in
        # the scheduler): the next page keeps the ordinary priority then.
        priority = {"priority": 0} if self.history_kinds else {}
        early = url is not None and self.limit is None and self.last_page_listed_models
        if early:
            yield self.next_page(response.urljoin(url), self.parse_listing, **priority)
        page = self.json_array_page(response)
        if page is None:
            return
        self.last_page_listed_models = bool(page)
        if url and page and not early and self.more_wanted(len(page)):
            yield self.next_page(response.urljoin(url), self.parse_listing, **priority)
        for model, served in page:
            if self.limit_reached:
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
