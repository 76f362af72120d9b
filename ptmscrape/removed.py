"""Models a hub no longer lists: reported after a complete crawl, never deleted.

A model in ``<hub>.jsonl`` that a crawl did not list may be gone from the hub (deleted, made
private) — or the crawl simply did not get that far. So it is reported only when "not seen" can
mean "removed": the crawl finished normally, was not narrowed by spider arguments (``-a limit``,
``-a search``, …), lost no listing page, and was not one worker of a distributed crawl. Then the
models are listed in ``<hub>/removed-<stamp>.txt``, counted in ``ptm/store/removed`` and logged;
their records stay in ``<hub>.jsonl`` and their clones stay in ``repos/``.
"""

from __future__ import annotations

from collections.abc import Iterable
from pathlib import Path

from ptmscrape import distributed
from ptmscrape.dataset import DatasetTree, read_jsonl, record_ids, records_file, segment
from ptmscrape.idset import IdSet

HEADER = "model\tid\tlast_crawled_at\turl\n"


def removed_file(hub: str, stamp: str) -> str:
    return f"{segment(hub)}/removed-{segment(stamp)}.txt"


def why_incomplete(reason: str, spider, stats, settings) -> str | None:
    """Why this crawl cannot tell removed models from models it did not reach (None: it can)."""
    failed = stats.get_value("ptm/pages/failed") or 0  # downloads and malformed pages alike
    if failed:  # (before the finish reason, which then is failed_pages: ptmscrape/verdict.py)
        return f"{failed} page(s) failed or were malformed"
    if reason != "finished":
        return f"the crawl did not finish normally (finish reason {reason!r})"
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
    return [r for r in read_jsonl(tree.path(records_file(hub))) if r.get("id") not in seen]


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
