"""Scrapy's scheduler, dupefilter, disk queue and SpiderState when a ``JOBDIR`` cannot be written
(a full disk).

Scrapy keeps a paused job's pending requests in ``<JOBDIR>/requests.queue`` and the fingerprints of
the requests it made in ``requests.seen``. When a write there fails (ENOSPC, EIO), Scrapy 2.19 lets
the error out of ``enqueue_request``: the request is dropped with a traceback while its fingerprint
is remembered, so neither this run nor a resumed one fetches it. queuelib's disk queue writes through
a buffered file, so a write the disk refuses fails later, in a pop or in the close of an emptied
queue, and a queue file whose creation was cut short makes every later push of its priority raise
``struct.error``: a listing's next page lost that way ended a crawl "complete" with 6,000 of 20,000
models (on a small tmpfs). The close's writes (the queue's count and ``active.json``,
``spider.state``) fail with tracebacks, and the next run may trust what they left.

Here a failed write loses nothing in this run: the request that could not be queued on disk is
queued in memory, a fingerprint that could not be written is still remembered in memory, and a
record is written to the queue whole or not at all (one ``write()``, cut back on failure, in
queuelib's file format, so earlier jobs resume). What the ``JOBDIR`` holds is then not the job's
state: each failure is sent as ``ptmscrape.signals.jobdir_write_failed``, and ``JobGuard``
(``ptmscrape/jobdir.py``) makes the next run of the job restart from its first pages, as after a
hard kill (the models stored are not done again).
"""

from __future__ import annotations

import logging
import os
import struct

from queuelib.queue import LifoDiskQueue
from scrapy.core.scheduler import Scheduler
from scrapy.dupefilters import RFPDupeFilter
from scrapy.extensions.spiderstate import SpiderState
from scrapy.squeues import PickleLifoDiskQueue

from ptmscrape import signals as ptm_signals

logger = logging.getLogger(__name__)


class JobdirWrites:
    """Add-on: this module's scheduler, dupefilter and disk queue, at add-on priority (a distributed
    crawl's add-on, after this one, puts its shared scheduler and dupefilter in their place; ``-s``
    still wins). Its SpiderState is in ``EXTENSIONS``."""

    SETTINGS = {"SCHEDULER": "ptmscrape.jobdir_writes.JobScheduler",
                "DUPEFILTER_CLASS": "ptmscrape.jobdir_writes.JobDupeFilter",
                "SCHEDULER_DISK_QUEUE": "ptmscrape.jobdir_writes.JobRequestQueue"}

    def update_settings(self, settings) -> None:
        for name, value in self.SETTINGS.items():
            settings.set(name, value, priority="addon")


def _report(crawler, where: str, exc: Exception) -> None:
    if crawler is not None:
        crawler.signals.send_catch_log(ptm_signals.jobdir_write_failed, where=where, error=exc)
    else:
        logger.error("Could not write %s in the JOBDIR: %s", where, exc)


class WholeRecordLifoDiskQueue(LifoDiskQueue):
    """queuelib's LIFO disk queue, in its file format (a count, then records each followed by its
    length), that writes whole or not at all: a record in one ``os.write`` at the file's end, cut
    back if the write fails; the count at creation before the file is used, and at the close in
    place. queuelib writes both through a buffered file, whose failed writes surface later (in the
    close of an emptied queue, after its last request was popped) and leave a file too short to
    be opened again."""

    def __init__(self, path: str | os.PathLike[str]) -> None:
        self.path = os.fspath(path)
        try:
            if os.stat(self.path).st_size < self.SIZE_SIZE:  # its creation was cut short: empty
                os.unlink(self.path)
        except FileNotFoundError:
            pass
        if os.path.exists(self.path):
            super().__init__(path)  # reads the count
            return
        self.f = open(self.path, "wb+")  # noqa: SIM115 (kept open, as queuelib does)
        self.size = 0
        try:
            self._write_at(0, struct.pack(self.SIZE_FORMAT, 0))
        except OSError:
            self.f.close()
            os.unlink(self.path)
            raise

    def _write_at(self, offset: int, data: bytes) -> None:
        self.f.seek(offset)  # writes out anything the buffered file still holds
        fd = self.f.fileno()
        view = memoryview(data)
        written = 0
        try:
            while written < len(view):
                written += os.write(fd, view[written:])
        finally:
            self.f.seek(0, os.SEEK_END)  # the buffered file's position, after os.write

    def push(self, string: bytes) -> None:
        if not isinstance(string, bytes):
            raise TypeError(f"Unsupported type: {type(string).__name__}")
        end = self.f.seek(0, os.SEEK_END)
        try:
            self._write_at(end, string + struct.pack(self.SIZE_FORMAT, len(string)))
        except OSError:
            os.ftruncate(self.f.fileno(), end)
            raise
        self.size += 1

    def close(self) -> None:
        try:
            if self.size:
                self._write_at(0, struct.pack(self.SIZE_FORMAT, self.size))
        finally:
            self.f.close()
        if not self.size:
            os.unlink(self.path)


class JobRequestQueue(PickleLifoDiskQueue, WholeRecordLifoDiskQueue):  # type: ignore[misc,valid-type]
    """Scrapy's default disk queue (``PickleLifoDiskQueue``) over :class:`WholeRecordLifoDiskQueue`."""


class JobDupeFilter(RFPDupeFilter):
    """Scrapy's dupefilter; a fingerprint it cannot write to ``requests.seen`` is still seen in
    this run, and the request goes on to be scheduled."""

    crawler = None

    @classmethod
    def from_crawler(cls, crawler):
        dupefilter = super().from_crawler(crawler)
        dupefilter.crawler = crawler
        return dupefilter

    def request_seen(self, request) -> bool:
        try:
            return super().request_seen(request)
        except OSError as exc:  # the fingerprint is in memory (added before the write)
            _report(self.crawler, "requests.seen", exc)
            return False

    def close(self, reason: str) -> None:
        try:
            super().close(reason)
        except OSError as exc:
            _report(self.crawler, "requests.seen", exc)


class JobScheduler(Scheduler):
    """Scrapy's scheduler; a request it cannot write to the disk queue is kept in memory (and
    fetched in this run), a queue it cannot save at the close is reported, not raised."""

    def _dqpush(self, request) -> bool:
        try:
            return super()._dqpush(request)  # False for a request it cannot pickle, as upstream
        except Exception as exc:  # OSError; and whatever else the disk queue raises loses no request
            _report(self.crawler, "requests.queue", exc)
            return False  # Scrapy then queues it in memory (scheduler/enqueued/memory)

    def close(self, reason: str):
        try:
            return super().close(reason)
        except OSError as exc:
            _report(self.crawler, "requests.queue", exc)
            return self.df.close(reason)  # the failed queue close skipped it


class JobSpiderState(SpiderState):
    """Scrapy's SpiderState; a ``spider.state`` it cannot write is reported, not raised."""

    def spider_closed(self, spider) -> None:
        try:
            super().spider_closed(spider)
        except OSError as exc:
            _report(getattr(spider, "crawler", None), "spider.state", exc)
