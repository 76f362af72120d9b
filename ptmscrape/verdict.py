"""What a crawl's exit status says, decided from its stats alone (no Scrapy here).

* ``0`` — the crawl finished and every page it listed was read;
* ``1`` — pages failed (after their retries) or were not found, ``-a history`` calls were lost
  (failed after retries, rate limited, malformed, not written: not the hub's refusals of gated,
  private or deleted repositories), a callback raised, an item stage raised on a model (not a
  DropItem: the model is lost), nothing was stored (with a JOBDIR: by any
  run of the job), records or history could not be written (a full disk: the crawl stops) or merged, clones were
  not started or were stopped for lack of disk space (``PTM_CLONE_MIN_FREE_GB``) or failed for another
  reason of this machine (a read-only, full or failing file system, git missing or broken), a feed (``-O``)
  missed items or was not stored, the crawl was stopped before the end, or a spidermon monitor failed;
* ``2`` — bad arguments or settings (decided before the crawl starts: ``ptmscrape/checks.py``).

``ptmscrape.extensions.CrawlVerdict`` applies it twice: when the spider goes idle (so the finish
reason says ``failed_pages`` / ``nothing_stored`` instead of ``finished``) and when the engine has
stopped (monitors included), logging it as the crawl's last line; ``ptmscrape/commands/crawl.py``
exits with it.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from ptmscrape.dataset.paths import records_file
from ptmscrape.history.store import FAILURES_FILE, history_file
from ptmscrape.stats import (
    CLONE_FAILED,
    CLONE_FAILED_BY_REASON,
    CLONE_FAILED_LOCALLY,
    CLONE_FAILED_LOCALLY_BY_REASON,
    CLONE_FAILED_NO_DISK_SPACE,
    DEDUPE_STORED_BEFORE_RESUME,
    DEDUPE_STORED_BY_DEAD_WORKER,
    DEDUPE_STORED_BY_EARLIER_RUNS,
    FEED_NOT_WRITTEN,
    FEED_NOT_WRITTEN_BY_REASON,
    HISTORY_FAILED,
    HISTORY_LOST,
    HISTORY_LOST_BY_REASON,
    ITEMS_FAILED,
    ITEMS_FAILED_BY_ERROR,
    MAP_FAILED,
    MONITORS_FAILED,
    MONITORS_FAILED_BY_MONITOR,
    PAGES_FAILED,
    PAGES_FAILED_BY_KIND,
    PAGES_LISTING_CUT_SHORT,
    PAGES_NOT_FOUND,
    STORE_FAILED,
    STORE_FAILED_BY_REASON,
    STORE_MERGE_FAILED,
    STORE_RECORDS,
    VALIDATE_INVALID,
)

OK, FAILED, BAD_INPUT = 0, 1, 2

# Finish reasons of a crawl that ended as asked: the whole listing, or a limit the user set.
COMPLETE_REASONS = frozenset({"finished", "closespider_itemcount", "closespider_pagecount",
                              "closespider_timeout"})
FAILED_PAGES, NOTHING_STORED = "failed_pages", "nothing_stored"
# Scrapy's count of feeds it could not store at their close, by storage (FileFeedStorage, …).
FEED_NOT_STORED_PREFIX = "feedexport/failed_count/"
# The store stage could not write the dataset tree (a full disk): it closed the spider.
STORE_FAILED_REASON = "store_failed"


@dataclass(frozen=True)
class Verdict:
    status: int
    reason: str  # one line: why (or "every listed page was read")
    finish_reason: str | None = None  # what the finish reason should be, when the crawl closes

    @property
    def line(self) -> str:
        return f"Crawl verdict: exit status {self.status}: {self.reason}"

    def log_level(self, settings) -> int:
        """The level of the verdict's line: INFO for exit status 0, else ERROR, raised to the
        crawl's ``LOG_LEVEL`` when that is higher. The line is the crawl's last word (Scrapyd shows
        no exit status); ``-s LOG_LEVEL=WARNING`` on a long crawl filtered an exit status 0 out."""
        level = logging.ERROR if self.status else logging.INFO
        configured = settings.get("LOG_LEVEL") if settings is not None else None
        if isinstance(configured, str):
            configured = logging.getLevelName(configured.upper())
        return max(level, configured) if isinstance(configured, int) else level


def _by_reason(stats: Mapping[str, Any], prefix: str) -> str:
    """`` (reason: n, …)`` from the counters of a family (``ptm/store/failed/<reason>``), or ''."""
    reasons = sorted((k.removeprefix(prefix), int(v)) for k, v in stats.items() if k.startswith(prefix))
    return " (" + ", ".join(f"{reason}: {n}" for reason, n in reasons) + ")" if reasons else ""


def _plural(n: int, word: str) -> str:
    return f"{n} {word}" if n == 1 else f"{n} {word}s"


def verdict(stats: Mapping[str, Any], *, expect_records: bool = True, jobdir: bool = False) -> Verdict:
    """The verdict on a crawl from its stats (``finish_reason`` absent while it runs).

    ``expect_records``: whether storing nothing is a failure (not for ``-a limit=0``, nor for a
    worker of a distributed crawl, whose peers may have taken every model).
    """
    problems: list[str] = []
    finish = stats.get("finish_reason")
    if finish is not None and finish not in COMPLETE_REASONS | {FAILED_PAGES, NOTHING_STORED, STORE_FAILED_REASON}:
        problems.append(f"the crawl stopped before the end (finish reason {finish})")
    failed = int(stats.get(PAGES_FAILED) or 0)
    not_found = int(stats.get(PAGES_NOT_FOUND) or 0)
    if not_found:
        problems.append(_plural(not_found, "page") + " not found (HTTP 404)")
    if failed - not_found > 0:
        kinds = sorted((k.removeprefix(PAGES_FAILED_BY_KIND), int(v)) for k, v in stats.items()
                       if k.startswith(PAGES_FAILED_BY_KIND) and k != PAGES_FAILED_BY_KIND + "HTTP 404")
        detail = ", ".join(f"{kind}: {n}" for kind, n in kinds)
        problems.append(_plural(failed - not_found, "page") + " failed"
                        + (f" ({detail})" if detail else ""))
    if int(stats.get(PAGES_LISTING_CUT_SHORT) or 0):
        problems.append("the listing ended at a failed page: the pages after it were not read")
    # The finish reason stays: the listing is whole, so the removed-models report still runs.
    lost = int(stats.get(HISTORY_LOST) or 0)
    if lost:
        problems.append(_plural(lost, "history call") + " lost" + _by_reason(stats, HISTORY_LOST_BY_REASON))
    # Models an item stage raised on (not a DropItem: an error it did not foresee) are lost; the
    # listing is whole, so the finish reason stays.
    item_errors = int(stats.get(ITEMS_FAILED) or 0)
    if item_errors:
        problems.append(_plural(item_errors, "model") + " lost to an error in an item stage"
                        + _by_reason(stats, ITEMS_FAILED_BY_ERROR))
    # Records the dataset tree could not take (a full disk): the store stage stopped the crawl.
    not_stored = int(stats.get(STORE_FAILED) or 0)
    if not_stored:
        problems.append(_plural(not_stored, "record") + " not stored" + _by_reason(stats, STORE_FAILED_BY_REASON)
                        + ": the crawl was stopped")
    if stats.get(STORE_MERGE_FAILED):
        problems.append("this crawl's snapshot was not merged into the hub's records file "
                        "(the next crawl merges it)")
    # A feed (-O out.jsonl) whose file stopped taking items (ptmscrape/feeds.py), or that Scrapy could
    # not store at its close: the crawl went on, the dataset tree has the items.
    missed = int(stats.get(FEED_NOT_WRITTEN) or 0)
    if missed:
        problems.append(_plural(missed, "item") + " not written to the feed"
                        + _by_reason(stats, FEED_NOT_WRITTEN_BY_REASON) + ": the dataset tree has them")
    elif any(int(v or 0) for k, v in stats.items() if k.startswith(FEED_NOT_STORED_PREFIX)):
        problems.append("a feed was not stored (see the ERROR above)")
    # Clones the crawl did not even start for lack of disk space: a run that skipped them is not
    # complete (a clone that failed for its repository's sake, 404 or too large, is in the record).
    # A run of a JOBDIR job does not clone again the models the job stored (and in the JOBDIR of a
    # finished job a run does nothing, exit status 0): crawling again means a new JOBDIR.
    again = "then crawl again" + (" with a new JOBDIR (this job's runs do not clone them again)" if jobdir else "")
    no_space = int(stats.get(CLONE_FAILED_NO_DISK_SPACE) or 0)
    if no_space:
        problems.append(_plural(no_space, "model") + " not cloned: less free disk space than "
                        f"PTM_CLONE_MIN_FREE_GB (free space, {again})")
    # So are clones that failed for another reason of this machine (a read-only, full or failing
    # file system, git missing or broken): the operator's to fix, not facts about the hub.
    local = int(stats.get(CLONE_FAILED_LOCALLY) or 0)
    if local:
        problems.append(_plural(local, "model") + " not cloned for a reason of this machine, not of the hub"
                        + _by_reason(stats, CLONE_FAILED_LOCALLY_BY_REASON)
                        + f": fix it (the WARNINGs 'Clone failed for …' say what), {again}")
    errors = int(stats.get("spider_exceptions_count") or 0)
    if errors:
        problems.append(_plural(errors, "callback error") + " (pages only partly read)")
    # With a JOBDIR, the models the job's earlier runs stored count: a resumed run may have none left;
    # so do those a dead worker of a distributed crawl stored, which were put back to this one.
    stored = sum(int(stats.get(name) or 0) for name in (
        STORE_RECORDS, DEDUPE_STORED_BEFORE_RESUME, DEDUPE_STORED_BY_EARLIER_RUNS, DEDUPE_STORED_BY_DEAD_WORKER))
    if expect_records and not stored:
        problems.append("nothing was stored" + ("" if problems else _why_nothing(stats)))
    monitors = int(stats.get(MONITORS_FAILED) or 0)
    if monitors:
        names = sorted(k.removeprefix(MONITORS_FAILED_BY_MONITOR) for k in stats
                       if k.startswith(MONITORS_FAILED_BY_MONITOR))
        problems.append(_plural(monitors, "monitor") + " failed" + (f" ({', '.join(names)})" if names else ""))
    if not problems:
        return Verdict(OK, "every listed page was read", finish or "finished")
    new_finish: str | None
    if failed or errors:
        new_finish = FAILED_PAGES
    elif expect_records and not stored:
        new_finish = NOTHING_STORED
    else:
        new_finish = finish
    if finish is not None and finish not in ("finished", FAILED_PAGES, NOTHING_STORED):
        new_finish = finish  # a stop (Ctrl-C, CLOSESPIDER_*) keeps its own reason
    return Verdict(FAILED, "; ".join(problems), new_finish)


def _why_nothing(stats: Mapping[str, Any]) -> str:
    """Why a crawl that lost nothing stored nothing, when the stats tell: its hub listed no model
    (an empty first page; not said of a crawl a ``CLOSESPIDER_*`` limit stopped, which may have
    listed many still in flight), or it dropped every one as bad hub data; '' otherwise."""
    if int(stats.get("item_scraped_count") or 0):
        return ""
    listed_dropped = int(stats.get("item_dropped_count") or 0)
    bad_data = int(stats.get(MAP_FAILED) or 0) + int(stats.get(VALIDATE_INVALID) or 0)
    if not listed_dropped:
        finish = stats.get("finish_reason")
        if finish in COMPLETE_REASONS - {"finished"}:  # CLOSESPIDER_*: the listing may be in flight, not empty
            return f": the crawl's limit stopped it first (finish reason {finish})"
        return ": the hub listed no model"
    if bad_data == listed_dropped:
        return f": all {_plural(bad_data, 'model')} listed were dropped as bad hub data"
    return ""


def left_out(stats: Mapping[str, Any], hub: str, tree: str = "") -> str:
    """What the crawl did not bring in, and where each is named, or '' (logged just before the
    verdict). Models dropped as bad hub data and clones failed for their repository's sake (404,
    gated) do not fail the crawl (exit status 0), so the verdict alone does not show them; lost pages
    and clones failed for a reason of this machine do, and this says where each is named.
    ``tree``: the dataset tree's folder (``PTM_DATA_DIR``), to prefix the files named."""
    def where(relative: str) -> str:
        return f"{tree.rstrip('/')}/{relative}" if tree else relative

    parts: list[str] = []
    unmappable, invalid = int(stats.get(MAP_FAILED) or 0), int(stats.get(VALIDATE_INVALID) or 0)
    if unmappable or invalid:
        parts.append(f"{_plural(unmappable + invalid, 'model')} dropped ({unmappable} unmappable, {invalid} "
                     f"invalid): each named in a WARNING 'Dropped: {hub}:<id>: <reason>'")
    clones = int(stats.get(CLONE_FAILED) or 0)
    if clones:
        local = int(stats.get(CLONE_FAILED_LOCALLY) or 0)
        parts.append(f"{_plural(clones, 'model')} not cloned{_by_reason(stats, CLONE_FAILED_BY_REASON)}"
                     + (f", {local} of them for a reason of this machine" if local else "")
                     + f": their CloneStatus in {where(records_file(hub))}")
    # A call an earlier run of a JOBDIR job lost counts as lost, not in ptm/history/failed.
    failed_calls, lost = int(stats.get(HISTORY_FAILED) or 0), int(stats.get(HISTORY_LOST) or 0)
    if failed_calls or lost:
        parts.append(f"{_plural(max(failed_calls, lost), 'history call')} not stored ({lost} lost, "
                     f"{max(failed_calls - lost, 0)} refused by the hub): {where(history_file(hub, FAILURES_FILE))}")
    pages = int(stats.get(PAGES_FAILED) or 0)
    if pages:
        parts.append(f"{_plural(pages, 'page')} failed: each named by URL in an ERROR above")
    return "; ".join(parts)
