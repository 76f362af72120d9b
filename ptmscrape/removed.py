"""Models a hub no longer lists: reported after a complete crawl, never deleted.

A model in ``<hub>.jsonl`` that a crawl did not list may be gone from the hub (deleted, made
private) — or the crawl simply did not get that far. So it is reported only when "not seen" can
mean "removed": the crawl finished normally, was not narrowed by spider arguments (``-a limit``,
``-a search``, …), lost no listing page nor any model to an item stage's error, and was not one
worker of a distributed crawl. Then the
models are listed in ``<hub>/removed-<stamp>.txt``, counted in ``ptm/store/removed`` and logged;
their records stay in ``<hub>.jsonl`` and their clones stay in ``repos/``.

:class:`RemovedModelsReport` is the Scrapy extension that does it. It is fed explicitly, by
signals (``ptmscrape/signals.py``): the store stage says which snapshot this crawl writes, the
spiders which pages were lost, the map stage which models it could not map, and Scrapy which items
were dropped or failed in a stage; it reads no other stage's stats. With a JOBDIR the crawl is the whole job: the
snapshots of all its runs (listed in the JOBDIR) count as seen.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from scrapy import signals

from ptmscrape import distributed, jobdir, signals as ptm_signals
from ptmscrape.dataset.jsonl import record_ids, records_except
from ptmscrape.dataset.paths import records_file, segment
from ptmscrape.dataset.tree import DatasetTree
from ptmscrape.idset import IdSet
from ptmscrape.stats import STORE_REMOVED

if TYPE_CHECKING:
    from scrapy.crawler import Crawler
    from scrapy.settings import BaseSettings

logger = logging.getLogger(__name__)

HEADER = "model\tid\tlast_crawled_at\turl\n"


def removed_file(hub: str, stamp: str) -> str:
    return f"{segment(hub)}/removed-{segment(stamp)}.txt"


def why_incomplete(reason: str, spider: Any, failed: int, settings: BaseSettings,
                   failed_items: int = 0) -> str | None:
    """Why this crawl cannot tell removed models from models it did not reach (None: it can).
    ``failed``: pages lost for good (downloads and malformed pages alike); ``failed_items``:
    models an item stage raised on (lost, and which ones is not known by id)."""
    if failed:  # (before the finish reason, which then is failed_pages: ptmscrape/verdict.py)
        return f"{failed} page(s) failed or were malformed"
    if failed_items:
        return f"{failed_items} model(s) were lost to an error in an item stage"
    if reason != "finished":
        return f"the crawl did not finish normally (finish reason {reason!r})"
    short = getattr(spider, "listing_ended_short", None)
    if short:
        return short
    narrowed = getattr(spider, "narrowed_by", [])
    if narrowed:
        return "the crawl was narrowed by " + ", ".join(f"-a {name}" for name in narrowed)
    if distributed.enabled(settings):
        return "each worker of a distributed crawl lists only part of the hub"
    return None


def not_seen(tree: DatasetTree, hub: str, crawl_snapshots: list[Path],
             also_seen: Iterable[int] = frozenset()) -> list[dict]:
    """Records of ``<hub>.jsonl`` whose model is in none of the crawl's snapshots (nor in
    ``also_seen``: listed, but dropped before the store stage, e.g. invalid now)."""
    seen = IdSet(rid for path in crawl_snapshots for rid in record_ids(path))  # 9 bytes an id
    for rid in also_seen:
        seen.add(rid)
    return list(records_except(tree.path(records_file(hub)), seen))


def write_report(tree: DatasetTree, hub: str, stamp: str, records: list[dict], note: str = "") -> str:
    """Write the list of removed models; returns its path relative to the data dir."""
    relative = removed_file(hub, stamp)
    lines = [f"# {note}\n"] if note else []
    lines.append(HEADER)
    for r in sorted(records, key=lambda r: (str(r.get("ModelOwner")), str(r.get("ModelName")))):
        name = f"{r.get('ModelOwner') or '_'}/{r.get('ModelName')}"
        fields = (name, str(r.get("id")), str(r.get("CrawledAt") or ""), str(r.get("ModelURL") or ""))
        lines.append("\t".join(f.replace("\t", " ").replace("\n", " ") for f in fields) + "\n")
    tree.write_atomic(relative, "".join(lines).encode())
    return relative


@dataclass(frozen=True)
class OpenedSnapshot:
    """What the store stage said when it opened this crawl's snapshot (``snapshot_opened``)."""

    tree: DatasetTree
    hub: str
    stamp: str
    snapshot: Path


class RemovedModelsReport:
    """Extension: after a complete crawl, lists the models of ``<hub>.jsonl`` it did not see."""

    def __init__(self, crawler: Crawler):
        self.crawler = crawler
        self.opened: OpenedSnapshot | None = None  # None: no store stage ran, nothing to report
        self.failed_pages = 0
        self.unmapped = 0
        self.failed_items = 0  # models an item stage raised on (item_error): lost, ids unknown
        self.dropped_ids: set[int] = set()  # listed, but dropped before the store (e.g. invalid)
        self.merged: tuple[frozenset[Path], int] | None = None  # (snapshots, carried): records_merged

    @classmethod
    def from_crawler(cls, crawler: Crawler) -> RemovedModelsReport:
        ext = cls(crawler)
        crawler.signals.connect(ext.snapshot_opened, signal=ptm_signals.snapshot_opened)
        crawler.signals.connect(ext.records_merged, signal=ptm_signals.records_merged)
        crawler.signals.connect(ext.page_failed, signal=ptm_signals.page_failed)
        crawler.signals.connect(ext.model_unmapped, signal=ptm_signals.model_unmapped)
        crawler.signals.connect(ext.item_dropped, signal=signals.item_dropped)
        crawler.signals.connect(ext.item_failed, signal=signals.item_error)
        # After the store's close_spider (the merge): only spider_closed knows why the crawl ended.
        crawler.signals.connect(ext.spider_closed, signal=signals.spider_closed)
        return ext

    def snapshot_opened(self, tree: DatasetTree, hub: str, stamp: str, snapshot: Path) -> None:
        self.opened = OpenedSnapshot(tree, hub, stamp, snapshot)

    def records_merged(self, snapshots: list[Path], carried: int) -> None:
        self.merged = (frozenset(snapshots), carried)

    def page_failed(self, kind: str) -> None:
        self.failed_pages += 1

    def model_unmapped(self, item: Any) -> None:
        self.unmapped += 1

    def item_dropped(self, item: Any) -> None:
        if isinstance(item, dict) and isinstance(item.get("id"), int):
            self.dropped_ids.add(item["id"])

    def item_failed(self, item: Any) -> None:
        # A stage raised on the model (item_error). Scrapy gives the item the chain started with,
        # the raw payload, whatever stage failed: the record's id, which would mark it seen, is
        # not known here.
        self.failed_items += 1

    def spider_closed(self, spider: Any, reason: str) -> None:
        opened = self.opened
        if opened is None:
            return
        settings = self.crawler.settings
        incomplete = why_incomplete(reason, spider, self.failed_pages, settings, self.failed_items)
        if incomplete:
            logger.info("Models not seen in this crawl are not reported as removed: %s", incomplete)
            return
        crawl_snapshots = jobdir.snapshots(settings) or [opened.snapshot]
        if self.merged and self.merged[1] == 0 and self.merged[0] <= set(crawl_snapshots):
            # The merge kept no model outside this crawl's snapshots: <hub>.jsonl holds only models
            # this crawl saw (a first crawl, a re-crawl of an unchanged hub), and need not be read.
            gone = []
        else:
            gone = not_seen(opened.tree, opened.hub, crawl_snapshots, also_seen=self.dropped_ids)
        self.crawler.stats.set_value(STORE_REMOVED, len(gone))
        if not gone:
            return
        note = (f"{self.unmapped} model(s) listed by this crawl could not be mapped; they may be among these"
                if self.unmapped else "")
        try:
            report = write_report(opened.tree, opened.hub, opened.stamp, gone, note)
        except OSError as exc:  # a full disk: the records stay in <hub>.jsonl, so the next crawl finds them
            logger.error("%d model(s) of %s are no longer listed by the hub (records and clones kept), but their "
                         "list could not be written (%s); the next complete crawl lists them again",
                         len(gone), opened.hub, exc)
            return
        logger.warning("%d model(s) of %s are no longer listed by the hub (records and clones kept); "
                       "list: %s", len(gone), opened.hub, opened.tree.path(report))
