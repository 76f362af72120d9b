"""The history files of the dataset tree, and the state a re-crawl starts from (no Scrapy here).

Layout (one JSON Lines file per kind, whatever the number of models)::

    <data>/<hub>/history/commits.jsonl            one line per commit
    <data>/<hub>/history/dropped_commits.jsonl    stored commits a force-push took out of the history
    <data>/<hub>/history/refs.jsonl               one line per model whose refs changed (the whole body)
    <data>/<hub>/history/discussions.jsonl        one line per discussion (a new line when it changed)
    <data>/<hub>/history/discussion_events.jsonl  one line per event (a new line when it changed)
    <data>/<hub>/history/files.jsonl              one line per file at a revision
    <data>/<hub>/history/state.jsonl              what is stored completely (read by the next crawl)
    <data>/<hub>/history/failures.jsonl           calls not stored: refused (401, 404 RevisionNotFound, …)
                                                  or lost (failed after retries, malformed)

Every line carries ``model`` (the record ``id`` of ``<hub>.jsonl``), ``model_id`` (the hub's id) and
``crawled_at`` (whole seconds: what drops what goes by the ``paging`` of commit and
dropped_commits lines, see ``ptmscrape.history.tables.dropped_before``); the hub's object is
under ``raw``: as served, except a discussion's, which is its list entry merged with its details,
without ``events`` (one line each in discussion_events). A
dropped_commits line has no ``raw`` (it is the crawl's finding, not the hub's object): see
``ptmscrape.history.tables.dropped_commit``. Files
are only appended to, each item's lines in one append, whole or not at all: a write a full disk cuts
short is cut back (``append_shared``; a killed crawl leaves whole lines and at most one torn one,
which readers skip). A state line is written after the lines it vouches for, so neither a crash nor
a full disk ever makes a re-crawl skip what was not stored.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
from collections.abc import Iterable, Iterator
from typing import Any

from ptmscrape.dataset.jsonl import compact_json, read_jsonl
from ptmscrape.dataset.paths import segment, utc_now
from ptmscrape.dataset.tree import DatasetTree, append_shared

ROW_FILES = ("commits", "dropped_commits", "refs", "discussions", "discussion_events", "files")
STATE_FILE = "state"
FAILURES_FILE = "failures"


def history_file(hub: str, name: str) -> str:
    """Tree-relative path of one history file (``name`` is one of ours, never from the hub)."""
    return f"{segment(hub)}/history/{segment(name)}.jsonl"


@dataclasses.dataclass
class HistoryItem:
    """What the spider yields for one history call: lines for the history files, the state they
    complete (written after them), or the reason the hub refused the call."""

    hub: str
    model: int  # record id of the model (as in <hub>.jsonl)
    model_id: str  # the hub's id of the model
    kind: str  # the call: commits, refs, discussions, discussion, files
    rows: dict[str, list[dict[str, Any]]] = dataclasses.field(default_factory=dict)
    states: list[dict[str, Any]] = dataclasses.field(default_factory=list)
    failure: dict[str, Any] | None = None
    # State lines written before the rows: they vouch for nothing, they say a commit paging began
    # (and take its number, which its lines carry).
    began: list[dict[str, Any]] = dataclasses.field(default_factory=list)
    # The call's request: when its lines cannot be written (a full disk), a JOBDIR job fetches it again.
    request: Any = dataclasses.field(default=None, repr=False, compare=False)

    def __repr__(self) -> str:  # short: the item may hold a thousand file entries
        rows = ", ".join(f"{len(v)} {k}" for k, v in self.rows.items())
        failed = f", failed: {self.failure.get('reason')}" if self.failure else ""
        return f"<history {self.hub}:{self.model_id[:200]} {self.kind}: {rows or 'no rows'}{failed}>"


def digest(obj: Any) -> str:
    """Short content hash of a JSON value (key order does not matter)."""
    text = json.dumps(obj, sort_keys=True, ensure_ascii=False, separators=(",", ":"))
    return hashlib.sha256(text.encode("utf-8", "surrogatepass")).hexdigest()[:16]


class HistoryStore:
    """Appends history items to the files of one data dir."""

    def __init__(self, tree: DatasetTree):
        self.tree = tree

    def write(self, item: HistoryItem) -> dict[str, int]:
        """Store one item: the states saying what began, its rows, then its failure, then the states
        vouching for the rows. Returns rows per file."""
        head = {"model": item.model, "model_id": item.model_id, "crawled_at": utc_now()}
        if item.began:
            self.append(history_file(item.hub, STATE_FILE), ({**head, **s} for s in item.began))
        written = {}
        for name, rows in item.rows.items():
            if name not in ROW_FILES:
                raise ValueError(f"not a history file: {name!r}")
            if rows:
                self.append(history_file(item.hub, name), ({**head, **row} for row in rows))
                written[name] = len(rows)
        if item.failure:
            self.append(history_file(item.hub, FAILURES_FILE), [{**head, "kind": item.kind, **item.failure}])
        if item.states:
            self.append(history_file(item.hub, STATE_FILE), ({**head, **s} for s in item.states))
        return written

    def append(self, relative: str, rows: Iterable[dict[str, Any]]) -> None:
        """Append JSON lines in one locked append, whole or not at all (``append_shared``)."""
        data = b"".join(compact_json(row).encode() + b"\n" for row in rows)
        if not data:
            return
        target = self.tree.path(relative)
        target.parent.mkdir(parents=True, exist_ok=True)
        append_shared(target, data)


def load_state(tree: DatasetTree, hub: str) -> dict[int, dict[str, Any]]:
    """What earlier crawls stored completely, per model record id:
    ``{"commits": {"head": …, "recent": [its newest commit ids], "paging": its number},
    "refs": {"digest": …}, "commits_paging": {"head": …, "paging": its number} (the last commit
    paging that began: its pages may be stored without a "commits" line, if it was cut short),
    "files": {"revision": …}, "discussion": {num: {"signature": …,
    "events": {event id: digest}, "pr_head": the commit refs/pr/<num> pointed at, when known}}}``
    (the last line wins)."""
    state: dict[int, dict[str, Any]] = {}
    for line in iter_lines(tree, hub, STATE_FILE):
        model, kind = line.get("model"), line.get("kind")
        if not isinstance(model, int) or not isinstance(kind, str):
            continue
        entry = state.setdefault(model, {})
        if kind == "discussion":
            if isinstance(line.get("num"), int):
                entry.setdefault("discussion", {})[line["num"]] = line
        else:
            entry[kind] = line
    return state


def iter_lines(tree: DatasetTree, hub: str, name: str) -> Iterator[dict[str, Any]]:
    return read_jsonl(tree.path(history_file(hub, name)))
