"""ModelScope: the site-wide catalogue, or the SDK's per-owner listing for ``-a owners=…``.

Catalogue: ``PUT <base>/api/v1/dolphin/models`` with a JSON body ``{PageSize, PageNumber, SortBy,
…}`` (the site's own listing; must be PUT) answers ``{Code, Success, Message, Data: {Model:
{Models: [...], TotalCount}}}``. Per owner: ``PUT <base>/api/v1/models/`` with ``{Path: <owner>,
PageNumber, PageSize}`` (``HubApi.list_models``) answers ``{Code, Success, Data: {Models: [...],
TotalCount}}``. Page numbers start at 1; paging stops at an empty page or once ``PageNumber ×
PageSize`` reaches ``TotalCount`` (without one: at a page shorter than ``PageSize``). Shapes are
the SDK's: no real response was ever recorded.
"""

from __future__ import annotations

import hashlib
import json

from ptmscrape.mappers.common import MappingError
from ptmscrape.mappers.modelscope import model_id
from ptmscrape.spiders_base import HubSpider

CATALOGUE_PATH = "/api/v1/dolphin/models"
OWNER_LISTING_PATH = "/api/v1/models/"


class ModelscopeSpider(HubSpider):
    name = "modelscope"
    base_url_setting = "PTM_MODELSCOPE_URL"
    full_crawl_arguments = frozenset({"sort"})

    def __init__(self, *args, sort="Default", owners=None, **kwargs):
        super().__init__(*args, **kwargs)
        self.sort = sort
        self.owners = list(dict.fromkeys(o.strip() for o in (owners or "").split(",") if o.strip()))

    async def start(self):
        if self.limit == 0:
            return
        if self.owners:
            for owner in self.owners:
                yield self.page_request(1, owner)
        else:
            yield self.page_request(1)

    def page_size(self) -> int:
        size = max(1, self.settings.getint("PTM_MODELSCOPE_PAGE_SIZE"))
        return min(size, self.limit) if self.limit else size

    def page_request(self, number: int, owner: str | None = None, size: int | None = None,
                     next_page: bool = False, previous: list[str] | None = None):
        """The PUT for page ``number`` (JSON body, so it is saved whole in a JOBDIR and retried as is)."""
        size = size or self.page_size()
        if owner is None:
            url = self.base_url + CATALOGUE_PATH
            body = {"PageSize": size, "PageNumber": number, "SortBy": self.sort, "Target": "",
                    "Criterion": [], "SingleCriterion": [], "Name": ""}
        else:
            url = self.base_url + OWNER_LISTING_PATH
            body = {"Path": owner, "PageNumber": number, "PageSize": size}
        return (self.next_page if next_page else self.request)(
            url, self.parse_listing, method="PUT", body=json.dumps(body),
                            headers={"Content-Type": "application/json"},
                            cb_kwargs={"number": number, "owner": owner, "size": size, "previous": previous})

    def page_label(self, request) -> str:
        """Every page of a listing has one URL (the page number is in the PUT body): the log names
        the listing and the page."""
        kwargs = getattr(request, "cb_kwargs", None) or {}
        number, owner = kwargs.get("number"), kwargs.get("owner")
        if number is None:
            return ""
        return f" [owner {owner!r}, page {number}]" if owner is not None else f" [catalogue page {number}]"

    def parse_listing(self, response, number: int, owner: str | None = None, size: int = 1,
                      previous: list[str] | None = None):
        """``previous``: the models of page ``number - 1``, by :func:`_key` (page numbers always
        advance, so a hub that ignores them would be paged for ever: it is caught here)."""
        page = self.json_page(response, expect=dict)
        if page is None:
            return
        if page.get("Success") is not True or page.get("Code") not in (200, "200"):
            message = str(page.get("Message") or "")[:100]
            self.page_malformed(response, "hub error", f"Code {str(page.get('Code'))[:20]}: {message}")
            return
        data = page.get("Data")
        listing = data.get("Model" if owner is None else "Models") if isinstance(data, dict) else None
        if owner is None:  # the catalogue nests one level deeper: Data.Model.Models
            listing = listing.get("Models") if isinstance(listing, dict) else None
            total = data["Model"].get("TotalCount") if isinstance(listing, list) else None
        else:
            total = data.get("TotalCount") if isinstance(listing, list) else None
        if not isinstance(listing, list):
            self.page_malformed(response, "unexpected JSON", "no Models list in Data")
            return
        keys = [_key(model, owner) for model in listing]
        if listing and previous and set(keys) <= set(previous):
            # The hub serves the page read last again (it ignores PageNumber, or its paging does
            # not advance), while TotalCount or a full page says there is more.
            self.report_bad_page(response, f"listing does not advance (page {number} lists only "
                                           f"models of page {number - 1})")
            return
        if number == 1 and not listing:
            # The catalogue answers an unknown SortBy (e.g. "Downloads") with an empty page.
            self.logger.warning("ModelScope listed no models for %s", f"owner {owner!r}" if owner
                                else f"the catalogue with SortBy {self.sort!r}")
        if (number > 1 and not listing and isinstance(total, int) and not isinstance(total, bool)
                and total > (number - 1) * size):
            # Ends the listing all the same (a hub's count may include models it does not list),
            # but the models past this page, if the count is right, were never read: say so.
            self.logger.warning("ModelScope listing page is empty though its TotalCount %d says more than "
                                "the %d listed before it: the listing ends here, any models past it unread%s", total,
                                (number - 1) * size, self.page_label(response.request))
            # Unread, not gone: the removed-models report would list them as removed from the hub.
            self.listing_ended_short = (f"the listing ended at an empty page{self.page_label(response.request)} "
                                        f"though its TotalCount {total} says more than the {(number - 1) * size} "
                                        f"listed before it")
        if number == 1 and 0 < len(listing) < size and isinstance(total, int) and total > len(listing):
            size = len(listing)  # the hub capped the page size: page on with its size, not ours
        if isinstance(total, int) and not isinstance(total, bool):
            more = number * size < total
        else:  # no TotalCount: a short page is the last one
            more = len(listing) >= size
        # The next page first: it downloads while this page's models are processed.
        if listing and more and self.more_wanted(len(listing)):
            yield self.page_request(number + 1, owner, size, next_page=True, previous=keys)
        for model in listing:
            if self.limit_reached_for(response):
                return
            yield self.raw_item(_label(model, owner), response, model, listed_owner=owner)


def _key(model, owner: str | None) -> str:
    """A model of a listing page in 16 hex digits (the label, or the entry as served)."""
    label = _label(model, owner) if isinstance(model, dict) else json.dumps(model, sort_keys=True, default=str)
    return hashlib.blake2b(label.encode("utf-8", "surrogatepass"), digest_size=8).hexdigest()


def _label(model, owner: str | None) -> str:
    try:
        return "/".join(model_id(model, owner))
    except MappingError:
        if isinstance(model, dict):
            return f"{model.get('Path', owner)}/{model.get('Name', '<no name>')}"
        return "<not an object>"
