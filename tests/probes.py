"""Extensions that tests add to a real crawl to watch it from inside (``-s EXTENSIONS=…``)."""

from __future__ import annotations

from scrapy import signals

from ptmscrape.next_page_first import NEXT_PAGE_META


class NextPageProbe:
    """Records, for each next-page request of a listing, how many models had left the pipelines
    when it reached the downloader (stats ``test/next_page_reached_after``)."""

    def __init__(self, crawler):
        self.stats = crawler.stats
        self.seen: list[int] = []

    @classmethod
    def from_crawler(cls, crawler):
        probe = cls(crawler)
        crawler.signals.connect(probe.reached, signal=signals.request_reached_downloader)
        crawler.signals.connect(probe.closed, signal=signals.spider_closed)
        return probe

    def reached(self, request, spider):
        if request.meta.get(NEXT_PAGE_META):
            self.seen.append(self.stats.get_value("item_scraped_count", 0))

    def closed(self, spider, reason):
        self.stats.set_value("test/next_page_reached_after", self.seen)
