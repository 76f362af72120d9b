"""Shared spider machinery: hub base URL from settings, arguments, JSON pages, Link paging,
failure reporting. Hub spiders in ``spiders/`` only describe their hub's URLs and fields."""

from __future__ import annotations

import json
import logging
import re
from typing import Any
from urllib.parse import urlsplit

import scrapy
from scrapy.http import Response
from twisted.python.failure import Failure

from ptmscrape.items import RawModelItem

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


class HubSpider(scrapy.Spider):
    """A spider for one model hub.

    Subclasses set ``name`` (also the hub name in the dataset tree) and ``base_url_setting``
    (the ``PTM_*_URL`` setting with the hub's base URL), and yield items via :meth:`raw_item`.
    Any extra ``-a`` argument (e.g. Scrapyd's ``_job``) is accepted and ignored.
    """

    base_url_setting: str = ""
    custom_settings: dict[str, Any] = {}

    def __init__(self, *args: Any, limit: str | int | None = None, **kwargs: Any):
        super().__init__(*args, **kwargs)
        self.limit = _positive_int(limit, "limit")
        self.items_yielded = 0

    @classmethod
    def from_crawler(cls, crawler, *args, **kwargs):
        spider = super().from_crawler(crawler, *args, **kwargs)
        spider.base_url = crawler.settings.get(cls.base_url_setting, "").rstrip("/")
        if not spider.base_url:
            raise ValueError(f"{cls.base_url_setting} is not set")
        return spider

    # -- items ---------------------------------------------------------------------------
    @property
    def limit_reached(self) -> bool:
        return self.limit is not None and self.items_yielded >= self.limit

    def raw_item(self, model_id: Any, response: Response, payload: Any, **context: Any) -> RawModelItem:
        self.items_yielded += 1
        context.setdefault("base_url", self.base_url)
        return RawModelItem(hub=self.name, model_id=str(model_id)[:300], url=response.url,
                            payload=payload, context=context)

    # -- pages ---------------------------------------------------------------------------
    def request(self, url: str, callback, **kwargs: Any) -> scrapy.Request:
        """A request whose failure (after retries) is reported by URL and reason."""
        return scrapy.Request(url, callback=callback, errback=self.page_failed, **kwargs)

    def json_page(self, response: Response, expect: type | tuple[type, ...] = (list, dict)) -> Any:
        """The decoded JSON body, or None after reporting a malformed page."""
        try:
            data = json.loads(response.body)
        except ValueError as exc:
            return self.report_bad_page(response, f"malformed JSON ({exc.__class__.__name__}: {exc})")
        if not isinstance(data, expect):
            return self.report_bad_page(response, f"unexpected JSON {type(data).__name__}")
        return data

    def report_bad_page(self, response: Response, reason: str) -> None:
        self.logger.error("Bad page %s: %s", response.url, reason)
        self.crawler.stats.inc_value("ptm/pages/bad")
        self.crawler.stats.inc_value(f"ptm/pages/bad/{reason.split(' (')[0]}")
        return None

    def page_failed(self, failure: Failure) -> None:
        request = failure.request
        reason = failure.getErrorMessage() or failure.type.__name__
        status = getattr(getattr(failure.value, "response", None), "status", None)
        kind = f"HTTP {status}" if status else failure.type.__name__
        self.logger.error("Page failed after retries: %s (%s: %s)", request.url, kind, reason)
        self.crawler.stats.inc_value("ptm/pages/failed")
        self.crawler.stats.inc_value(f"ptm/pages/failed/{kind}")

    @property
    def base_host(self) -> str:
        return urlsplit(self.base_url).netloc


def _positive_int(value: str | int | None, name: str) -> int | None:
    if value in (None, ""):
        return None
    try:
        number = int(value)
    except (TypeError, ValueError):
        raise ValueError(f"-a {name}= must be a whole number, got {value!r}") from None
    if number < 0:
        raise ValueError(f"-a {name}= must not be negative, got {value!r}")
    return number
