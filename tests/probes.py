"""Extensions and a scheduler that tests add to a real crawl to watch it from inside, or to make it
fail (``-s EXTENSIONS=…``, ``-s SCHEDULER=…``)."""

from __future__ import annotations

import os

from scrapy import signals

from ptmscrape.dataset.processes import _stat_fields
from ptmscrape.jobdir_writes import JobScheduler
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


class OpenedProbe:
    """A probe whose ``opened(spider)`` runs when the spider opens."""

    def __init__(self, crawler):
        self.crawler = crawler

    @classmethod
    def from_crawler(cls, crawler):
        probe = cls(crawler)
        crawler.signals.connect(probe.opened, signal=signals.spider_opened)
        return probe

    def opened(self, spider):
        raise NotImplementedError


class NextPageAtCallbackOnly(OpenedProbe):
    """Hugging Face asks for a listing's next page when the page's headers arrive, before its
    callback runs (``HuggingfaceSpider.listing_headers_received``). This probe turns that off, so a
    test sees what the callback's next-page request alone does (``tests/test_next_page_first.py``)."""

    def opened(self, spider):
        self.crawler.signals.disconnect(spider.listing_headers_received, signal=signals.headers_received)


class SchedulerFailingOnce(JobScheduler):
    """Raises once, for the first next page of a listing, after its dupefilter noted the request:
    what a Redis error between the shared dupefilter and queue, or a scheduler bug, does."""

    failed = False

    def enqueue_request(self, request):
        if not self.failed and request.meta.get(NEXT_PAGE_META):
            self.failed = True
            self.df.request_seen(request)
            raise ConnectionError("probe: the scheduler failed once")
        return super().enqueue_request(request)


class ProcessProbe:
    """Stats ``test/pid`` (the crawl's process id) and ``test/zombies`` (the zombie processes its
    pid namespace holds as the crawl closes: ``/proc``, as ``unshare --mount-proc`` mounts it)."""

    def __init__(self, crawler):
        self.stats = crawler.stats

    @classmethod
    def from_crawler(cls, crawler):
        probe = cls(crawler)
        crawler.signals.connect(probe.closed, signal=signals.spider_closed)
        return probe

    def closed(self, spider, reason):
        states = [_stat_fields(pid) for pid in os.listdir("/proc") if pid.isdigit()]
        zombies = sum(1 for fields in states if fields and fields[0] == b"Z")
        self.stats.set_value("test/pid", os.getpid())
        self.stats.set_value("test/zombies", zombies)


class FailingStage:
    """An item stage that raises for the model named by ``TEST_FAIL_MODEL`` (its ``ModelName``), as
    a stage's unforeseen error would (``-s ITEM_PIPELINES=`` with it added after the clone stage)."""

    def __init__(self, crawler):
        self.name = crawler.settings.get("TEST_FAIL_MODEL")

    @classmethod
    def from_crawler(cls, crawler):
        return cls(crawler)

    def process_item(self, item):
        if item.get("ModelName") == self.name:
            raise ValueError(f"test stage failed on {self.name}")
        return item


class KillAtRename(OpenedProbe):
    """SIGKILLs the crawl at the moment an atomic write (``DatasetTree.write_atomic``) would
    rename its temp file onto a file whose name ends with ``TEST_KILL_AT_RENAME`` (``.txt``:
    the removed-models report): the temp file is written whole, the rename never happens — what a
    kill, an OOM or a power cut between the two leaves."""

    def __init__(self, crawler):
        super().__init__(crawler)
        self.suffix = crawler.settings.get("TEST_KILL_AT_RENAME")

    def opened(self, spider):
        import signal

        real_replace, suffix = os.replace, self.suffix

        def replace(src, dst, *args, **kwargs):
            if os.path.basename(os.fspath(src)).startswith(".tmp-") and os.fspath(dst).endswith(suffix):
                os.kill(os.getpid(), signal.SIGKILL)
            return real_replace(src, dst, *args, **kwargs)

        os.replace = replace
