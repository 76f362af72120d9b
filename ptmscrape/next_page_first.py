"""Spider middleware: a listing's next page is on its way before the page's models are processed.

A paged listing yields its next page's request before the page's models
(``HubSpider.next_page``), but yielding is not sending. Scrapy hands a callback's output to up to
``CONCURRENT_ITEMS`` tasks, and the event loop runs every ready task before it turns to the
engine's scheduling and the socket: the request went out only after the first hundred or more
models had been through the pipelines (~0.1 s a page, measured with a replica serving each page in
0.5 s: 10 pages took 6.6 s where 5.6 s were possible). Here the callback's output pauses for a few
loop turns right after a next-page request, while nothing else is ready to run, so the request
goes from the scheduler through the downloader to the socket first; then the models follow.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

from scrapy import Request

from ptmscrape.loop_turns import loop_turns

# Marks a listing's next-page request (set by ``HubSpider.next_page``).
NEXT_PAGE_META = "ptm_next_page"
# Loop turns from "yielded" to "written to the socket": scheduler, downloader middlewares, download
# handler, connection, write (a turn with nothing else ready costs some 20 µs).
TURNS = 12


class NextPageFirstMiddleware:
    """Also records in each next page which page asked for it (``HubSpider.mark_listing_link``)."""

    def __init__(self, crawler: Any = None):
        self.crawler = crawler

    @classmethod
    def from_crawler(cls, crawler: Any) -> NextPageFirstMiddleware:
        return cls(crawler)

    async def process_spider_output(self, response: Any, result: AsyncIterator[Any]) -> AsyncIterator[Any]:
        async for output in result:
            next_page = isinstance(output, Request) and output.meta.get(NEXT_PAGE_META)
            if next_page and response is not None:
                mark = getattr(getattr(self.crawler, "spider", None), "mark_listing_link", None)
                if mark is not None:
                    mark(output, response.request)
            yield output
            if next_page:
                await loop_turns(TURNS)
