"""Hugging Face Hub: the paginated ``/api/models`` listing, or ``/api/models/<id>`` for given ids.

Listing: ``GET <base>/api/models?sort=<sort>&direction=-1&limit=<page>&expand[]=…`` returns a JSON
array; the next page is the ``Link: <…>; rel="next"`` header (absent on the last page). Legacy ids
(``bert-base-uncased``) answer ``/api/models/<id>`` with a 307 to the canonical id, which Scrapy
follows; the record uses the ``id`` in the final body.
"""

from __future__ import annotations

from urllib.parse import quote, urlencode

from ptmscrape.spiders_base import HubSpider, next_link


class HuggingfaceSpider(HubSpider):
    name = "huggingface"
    base_url_setting = "PTM_HUGGINGFACE_URL"
    auth_token_env = "HF_TOKEN"
    full_crawl_arguments = frozenset({"sort"})

    def __init__(self, *args, sort="downloads", search=None, author=None, models=None, **kwargs):
        super().__init__(*args, **kwargs)
        self.sort = sort
        self.search = search
        self.author = author
        self.models = [m.strip() for m in (models or "").split(",") if m.strip()]

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
        page = self.json_page(response, expect=list)
        for model in page or []:
            if self.limit_reached:
                return
            yield self.raw_item(_model_id(model), response, model)
        url = next_link(response.headers.get("Link"))
        if url and not self.limit_reached:
            yield self.request(response.urljoin(url), self.parse_listing)

    def parse_model(self, response):
        model = self.json_page(response, expect=dict)
        if model is not None:
            yield self.raw_item(_model_id(model), response, model)


def _model_id(model) -> str:
    return str(model.get("id", "<no id>")) if isinstance(model, dict) else "<not an object>"
