"""A feed (``-O out.jsonl``, ``FEEDS``) the disk stops taking: said once, counted, and the crawl fails.

Scrapy's feed exporter lets a write error out of its ``item_scraped`` receiver: on a full disk each
following item was one more ERROR with a traceback (343 for 400 models), the feed was left with a
torn last line, and the crawl ended "finished", exit status 0, its feed missing most models. Here a
feed stops taking items at its first failed write (no later line after a hole): one ERROR names
the feed and the reason, each item it misses is counted (``ptm/feed/not_written``, and by reason),
and the crawl verdict fails (exit status 1), as it does for a feed Scrapy could not store at its
close (``feedexport/failed_count/…``). The crawl itself goes on: items reach the feeds after the
store stage, so the dataset tree (``<hub>/<hub>.jsonl``) holds whatever a feed missed.

A local JSON Lines feed written with ``-O`` (overwrite: the file is all this crawl's) is cut back to
its last whole line, so a reader meets no torn one, and its lines are counted, so the items lost in
its write buffer are counted too and the close names how many it holds.
"""

from __future__ import annotations

import logging
import os
import stat
from typing import Any

from scrapy import signals
from scrapy.extensions.feedexport import FeedExporter, FeedSlot, FileFeedStorage
from scrapy.extensions.postprocessing import PostProcessingManager
from scrapy.utils.defer import ensure_awaitable

from ptmscrape.stats import FEED_NOT_WRITTEN, FEED_NOT_WRITTEN_BY_REASON

logger = logging.getLogger(__name__)

# Formats whose every newline ends an item (JSON escapes the newlines inside strings).
LINE_FORMATS = frozenset({"jsonlines", "jsonl", "jl"})


class StoppedFeed:
    """Why a feed's file stopped taking items, and how many it missed since."""

    def __init__(self, reason: str):
        self.reason = reason
        self.missed = 0


class GuardedFeedExporter(FeedExporter):
    def __init__(self, crawler):
        super().__init__(crawler)
        self.stopped: dict[int, StoppedFeed] = {}  # by id(slot)

    def item_scraped(self, item: Any, spider) -> None:
        slots = self.slots
        if len(slots) == 1 and not self.stopped:  # the usual -O feed: Scrapy's receiver as it is
            try:
                super().item_scraped(item, spider)
            except OSError as exc:  # raised before Scrapy's receiver reassigns self.slots
                self._stop(slots[0], exc)
            return
        # Scrapy's receiver, one slot at a time: a slot whose write failed costs only that slot.
        kept: list[FeedSlot] = []
        try:
            for index, slot in enumerate(slots):
                stopped = self.stopped.get(id(slot))
                if stopped is not None:
                    if slot.filter.accepts(item):
                        self._not_written(stopped)
                    kept.append(slot)
                    continue
                self.slots = [slot]
                try:
                    super().item_scraped(item, spider)
                except OSError as exc:
                    self._stop(slot, exc)
                    kept.append(slot)
                except BaseException:
                    kept.extend(slots[index:])
                    raise
                else:
                    kept.extend(self.slots)  # the same slot, or the next batch's
        finally:
            self.slots = kept

    def _stop(self, slot: FeedSlot, exc: OSError) -> None:
        stopped = self.stopped[id(slot)] = StoppedFeed(exc.strerror or type(exc).__name__)
        self._not_written(stopped)
        logger.error("Could not write the feed %s (%s): it takes no more items; each one it misses is counted "
                     "(%s) and the crawl exits 1. The dataset tree has them all (<hub>/<hub>.jsonl).",
                     slot.uri, stopped.reason, FEED_NOT_WRITTEN)

    def _not_written(self, stopped: StoppedFeed, n: int = 1) -> None:
        stopped.missed += n
        self.crawler.stats.inc_value(FEED_NOT_WRITTEN, n)
        self.crawler.stats.inc_value(FEED_NOT_WRITTEN_BY_REASON + stopped.reason, n)

    async def _close_slot(self, slot: FeedSlot, spider) -> None:
        stopped = self.stopped.get(id(slot))
        if stopped is None:
            failed = f"feedexport/failed_count/{type(slot.storage).__name__}"
            before = self.crawler.stats.get_value(failed, 0)
            try:
                await super()._close_slot(slot, spider)
            except OSError as exc:
                # Raised outside Scrapy's own guard: a CSV or XML exporter's end flushes the file
                # (a full disk), an empty feed stored at the close (FEED_STORE_EMPTY) is opened there.
                # Not kept in self.stopped (by id: a closed batch's slot would stop a later one given its id).
                stopped = StoppedFeed(exc.strerror or type(exc).__name__)
                logger.error("Could not write the feed %s at its close (%s)", slot.uri, stopped.reason)
            else:
                if self.crawler.stats.get_value(failed, 0) != before:  # its last write failed at the close
                    cut_torn_line(slot)
                return
        # What is left in its write buffer cannot be written either: handed to its storage as Scrapy
        # does (a file is closed, standard output is not), without a traceback (the ERROR above said
        # why), and counted as Scrapy counts a feed it could not store.
        opened = slot.file is not None
        try:
            slot.finish_exporting()
        except (OSError, ValueError):
            pass
        file = slot.file
        if isinstance(file, PostProcessingManager):  # its close leaves the file under it open
            _close_quietly(file)
            file = file.file
        if file is not None:
            try:
                await ensure_awaitable(slot.storage.store(file))
            except Exception as exc:  # a file's close flushes its buffer to the disk that refused it
                logger.debug("Feed %s closed: %s", slot.uri, exc)
        self.crawler.stats.inc_value(f"feedexport/failed_count/{type(slot.storage).__name__}")
        held = None
        if opened:  # else the file there, if any, is not this feed's
            cut_torn_line(slot)
            held = lines_held(slot)
        if held is not None and held < slot.itemcount:
            self._not_written(stopped, slot.itemcount - held)  # taken into its buffer, never written
        logger.error("The feed %s is incomplete: %s in it, %d not written (%s)", slot.uri,
                     _items(held) if held is not None else "at most " + _items(slot.itemcount),
                     stopped.missed, stopped.reason)
        await self.crawler.signals.send_catch_log_async(signal=signals.feed_slot_closed, slot=slot)


def _items(n: int) -> str:
    return f"{n} item" if n == 1 else f"{n} items"


def _close_quietly(file: Any) -> None:
    try:
        file.close()
    except (OSError, ValueError):  # what it still buffered cannot be written either
        pass


def _own_line_feed(slot: FeedSlot) -> str | None:
    """The path of a local JSON Lines feed written as it is (no post-processing) from an empty file
    (``-O``, overwrite: with ``-o`` the file may end in somebody's line) on a disk, else None."""
    storage = slot.storage
    if (type(storage) is FileFeedStorage and slot.format in LINE_FORMATS and slot.feed_options.get("overwrite")
            and "postprocessing" not in slot.feed_options and _regular_file(storage.path)):
        return storage.path
    return None


def _regular_file(path: str) -> bool:
    """A file on a disk: not a pipe, terminal or device (``-O /dev/stdout``, ``/dev/full``), which
    cannot be cut and whose reading would take the reader's lines, or wait for ever."""
    try:
        return stat.S_ISREG(os.stat(path).st_mode)
    except OSError:
        return False


def cut_torn_line(slot: FeedSlot) -> int:
    """Cut a feed of this crawl's own lines back to its last whole line; the bytes cut (0 for other feeds)."""
    path = _own_line_feed(slot)
    if path is None:
        return 0
    try:
        with open(path, "r+b") as file:
            size = end = file.seek(0, os.SEEK_END)
            while end > 0:
                start = max(0, end - 65536)
                file.seek(start)
                newline = file.read(end - start).rfind(b"\n")
                if newline >= 0:
                    end = start + newline + 1
                    break
                end = start
            file.truncate(end)
            return size - end
    except OSError as exc:
        logger.error("Could not cut the torn last line off the feed %s: %s", slot.uri, exc)
        return 0


def lines_held(slot: FeedSlot) -> int | None:
    """How many items a feed of this crawl's own lines holds; None for another."""
    path = _own_line_feed(slot)
    if path is None:
        return None
    lines = 0
    try:
        with open(path, "rb") as file:
            while chunk := file.read(1 << 20):
                lines += chunk.count(b"\n")
    except OSError:
        return None
    return lines
