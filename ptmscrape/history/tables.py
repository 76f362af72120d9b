"""Rows of the history tables, read from the history files of a data dir (no Scrapy here).

For exporters (``scrapy export``): :data:`TABLES` names each table with its columns, its SQLite DDL
and its key; :func:`rows` yields its rows as tuples in column order, each row once (by key).

* ``commit``           — one row per (model, commit id), ``dropped_at`` once a force-push dropped it;
* ``ref``              — the model's refs (branches, tags, converts, pull requests) as last stored;
* ``discussion``       — one row per (model, discussion number), as last stored;
* ``discussion_event`` — one row per (model, discussion number, event id), as last stored;
* ``file``             — the files at the model's last completely stored revision.

``model`` is the record ``id`` of ``<hub>.jsonl``; ``model_id`` the hub's id of the model.
List and object values (authors, event data) are JSON text. The history files may hold a row more
than once (a crawl killed mid-way, a history force-pushed deeper than the commits a re-crawl stops
at, a discussion that changed): the newest line wins. Commits a force-push dropped keep their rows,
with ``dropped_at`` set (``dropped_commits.jsonl``, see :func:`dropped_commit`).
Rows come newest first; memory grows by 8 bytes per key (a 64-bit hash of the key: two keys sharing
one would lose a row, odds about n²/2⁶⁵, one in a million at six million rows).
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any, NamedTuple

from ptmscrape.dataset.jsonl import read_jsonl
from ptmscrape.history.store import STATE_FILE, history_file
from ptmscrape.idset import IdSet

HUB = "huggingface"


@dataclass(frozen=True)
class Table:
    name: str
    columns: tuple[str, ...]
    types: tuple[str, ...]  # SQLite column types, in column order
    key: tuple[str, ...]
    source: Callable[[Path, str], Iterator[dict[str, Any]]]

    @property
    def ddl(self) -> str:
        cols = ",\n  ".join(f'"{c}" {t}' for c, t in zip(self.columns, self.types, strict=True))
        key = ", ".join(f'"{c}"' for c in self.key)
        return f'CREATE TABLE IF NOT EXISTS "{self.name}" (\n  {cols},\n  PRIMARY KEY ({key})\n)'

    def rows(self, data_dir: str | Path, hub: str = HUB) -> Iterator[tuple]:
        """Each row once (the newest line of a key), as a tuple in column order, newest first.

        Sources are read from their end, so the first line of a key is its newest; memory holds
        a 64-bit hash per key (:class:`~ptmscrape.idset.IdSet`), not the rows."""
        seen = IdSet()
        for row in self.source(Path(data_dir), hub):
            k = _key_hash(tuple(row.get(c) for c in self.key))
            if k in seen:
                continue
            seen.add(k)
            yield tuple(row.get(c) for c in self.columns)


def _key_hash(key: tuple) -> int:
    text = json.dumps(key, ensure_ascii=False, separators=(",", ":"))
    return int.from_bytes(hashlib.blake2b(text.encode("utf-8", "surrogatepass"), digest_size=8).digest(),
                          "big", signed=True)


def _newest_first(path: Path, block: int = 1 << 16) -> Iterator[dict[str, Any]]:
    """The JSON objects of a JSON Lines file, last line first; a torn last line is skipped."""
    try:
        f = open(path, "rb")
    except FileNotFoundError:
        return
    with f:
        pos = f.seek(0, 2)
        rest, last = b"", True
        while pos > 0:
            step = min(block, pos)
            pos -= step
            f.seek(pos)
            parts = (f.read(step) + rest).split(b"\n")
            rest = parts[0]
            for raw in reversed(parts[1:]):
                if last:  # what follows the file's last newline: b"" or a torn line
                    last = False
                    continue
                obj = _object(raw)
                if obj is not None:
                    yield obj
        if rest and not last:
            obj = _object(rest)
            if obj is not None:
                yield obj


def _object(raw: bytes) -> dict[str, Any] | None:
    try:
        obj = json.loads(raw)
    except ValueError:
        return None
    return obj if isinstance(obj, dict) else None


def valid_line(line: dict[str, Any]) -> bool:
    """A history line the tables can use: a record id and the hub's object."""
    return isinstance(line.get("model"), int) and not isinstance(line.get("model"), bool) \
        and isinstance(line.get("raw"), dict)


def _lines(data_dir: Path, hub: str, name: str) -> Iterator[dict[str, Any]]:
    for line in _newest_first(data_dir / history_file(hub, name)):
        if valid_line(line):
            yield line


def _json(value: Any) -> str | None:
    return None if value is None else json.dumps(value, ensure_ascii=False, separators=(",", ":"))


def _get(obj: Any, *path: str) -> Any:
    for key in path:
        obj = obj.get(key) if isinstance(obj, dict) else None
    return obj


def _name(author: Any) -> str | None:
    """A user's name; None for a deleted user (the Hub then sends no author)."""
    return author.get("name") if isinstance(author, dict) and isinstance(author.get("name"), str) else None


def _bool(value: Any) -> int | None:
    return int(value) if isinstance(value, bool) else None


def commit_rows(line: dict[str, Any]) -> Iterator[dict[str, Any]]:
    """The rows of one (valid) line of ``commits.jsonl``; the same for each ``*_rows`` below."""
    c = line["raw"]
    authors = c.get("authors") if isinstance(c.get("authors"), list) else []
    yield {"model": line["model"], "model_id": line.get("model_id"), "commit_id": c.get("id"),
           "title": c.get("title"), "message": c.get("message"), "date": c.get("date"),
           "authors": _json([a.get("user") for a in authors if isinstance(a, dict)]),
           "crawled_at": line.get("crawled_at"), "paging": _paging(line)}


def _paging(line: dict[str, Any]) -> int | None:
    """The number of the model's commit paging that wrote a line (1, 2, …), None for a line of a
    version that did not number them (every such line is older than every numbered one)."""
    n = line.get("paging")
    return n if isinstance(n, int) and not isinstance(n, bool) and 0 < n < 1 << 62 else None


def _commits(data_dir: Path, hub: str) -> Iterator[dict[str, Any]]:
    drops = _Drops(data_dir, hub)
    for line in _lines(data_dir, hub, "commits"):
        for row in commit_rows(line):
            row["dropped_at"] = drops.dropped_at(row)
            yield row


class Drop(NamedTuple):
    """One line of ``dropped_commits.jsonl`` (:func:`dropped_commit`): exactly one of ``commit``,
    ``before`` and ``after`` is given."""

    model: int
    commit: str | None  # the stored commit the new head no longer reaches
    before: str | None  # stored_before: every commit last stored by an earlier paging
    at: str  # when the crawl found it (crawled_at)
    paging: int | None  # the number of the paging that wrote the line (None: of an older version)
    after: int | None = None  # unfinished_after: every commit last stored by a paging after that one


def dropped_commit(line: dict[str, Any]) -> Drop | None:
    """The :class:`Drop` of a line of ``dropped_commits.jsonl``, None for any other line.

    A line names a stored commit the model's new head no longer reaches; or (``stored_before``)
    says every commit of the model stored last before the paging that wrote the line is no longer
    reached: that paging listed the whole new history, storing each of its commits again; or
    (``unfinished_after``, with ``paging``) says the same of every commit stored last by a paging
    numbered above that and below the line's: pagings cut short, whose new commits the paging that
    finished did not list again. A commit stored again after the line was written is live again.
    ``paging`` tells which commit lines came before the line (:func:`dropped_before`)."""
    model, commit, before, at = (line.get(k) for k in ("model", "commit_id", "stored_before", "crawled_at"))
    after = line.get("unfinished_after")
    after = after if isinstance(after, int) and not isinstance(after, bool) and after >= 0 else None
    paging = _paging(line)
    if (not isinstance(model, int) or isinstance(model, bool) or not isinstance(at, str)
            or isinstance(commit, str) + isinstance(before, str) + (after is not None) != 1
            or after is not None and (paging is None or after >= paging)):
        return None
    return Drop(model, commit if isinstance(commit, str) else None, before if isinstance(before, str) else None,
                at, paging, after)


def dropped_before(row: dict[str, Any], drop: Drop) -> bool:
    """Whether a commit row was stored last before a dropped-commit line, so that the line drops it
    (if it names the row's commit, or is a ``stored_before`` or ``unfinished_after`` line of the
    row's model). Lines numbered by their paging go by the numbers (crawled_at has whole seconds:
    back-to-back crawls share one); a numbered commit line is newer than any line that is not; two
    lines without numbers (of older versions) go by their times."""
    row_paging = row.get("paging")
    if drop.paging is not None:
        return (drop.after if drop.after is not None else -1) < (row_paging or 0) < drop.paging
    stored = row.get("crawled_at")
    if row_paging is not None or not isinstance(stored, str):
        return False
    return stored < drop.before if drop.before is not None else stored <= drop.at


class _Drops:
    """The lines of ``dropped_commits.jsonl`` (a force-push is rare: they are few), asked per row."""

    def __init__(self, data_dir: Path, hub: str):
        self.commits: dict[int, list[Drop]] = {}  # key hash of (model, commit id) -> its drops
        self.models: dict[int, list[Drop]] = {}  # model -> its stored_before and unfinished_after lines
        for line in read_jsonl(data_dir / history_file(hub, "dropped_commits")):
            if drop := dropped_commit(line):
                if drop.commit is not None:
                    self.commits.setdefault(_key_hash((drop.model, drop.commit)), []).append(drop)
                else:
                    self.models.setdefault(drop.model, []).append(drop)

    def dropped_at(self, row: dict[str, Any]) -> str | None:
        """When a crawl first found the row's commit dropped since it was last stored; None: live."""
        drops = [*self.commits.get(_key_hash((row["model"], row["commit_id"])), ()),
                 *self.models.get(row["model"], ())]
        return min((d.at for d in drops if dropped_before(row, d)), default=None)


_REF_TYPES = {"branches": "branch", "tags": "tag", "converts": "convert", "pullRequests": "pull_request"}


def ref_rows(line: dict[str, Any]) -> Iterator[dict[str, Any]]:
    """All refs of the model: a refs line is the whole body, replacing the model's earlier ones."""
    for group, ref_type in _REF_TYPES.items():
        refs = line["raw"].get(group)
        for ref in refs if isinstance(refs, list) else ():
            if isinstance(ref, dict):
                yield {"model": line["model"], "model_id": line.get("model_id"), "ref_type": ref_type,
                       "name": ref.get("name"), "ref": ref.get("ref") or ref.get("name"),
                       "target_commit": ref.get("targetCommit"), "crawled_at": line.get("crawled_at")}


def _refs(data_dir: Path, hub: str) -> Iterator[dict[str, Any]]:
    models = IdSet()  # a refs line is the whole body: only each model's newest counts
    for line in _lines(data_dir, hub, "refs"):
        if line["model"] in models:
            continue
        models.add(line["model"])
        yield from ref_rows(line)


def discussion_rows(line: dict[str, Any]) -> Iterator[dict[str, Any]]:
    d = line["raw"]
    yield {"model": line["model"], "model_id": line.get("model_id"), "num": line.get("num", d.get("num")),
           "title": d.get("title"), "status": d.get("status"), "is_pull_request": _bool(d.get("isPullRequest")),
           "author": _name(d.get("author")), "created_at": d.get("createdAt"),
           "num_comments": d.get("numComments"), "num_reaction_users": d.get("numReactionUsers"),
           "pinned": _bool(d.get("pinned")), "locked": _bool(d.get("locked")),
           "base_ref": _get(d, "changes", "base"), "merge_commit_id": _get(d, "changes", "mergeCommitId"),
           "crawled_at": line.get("crawled_at")}


def _discussions(data_dir: Path, hub: str) -> Iterator[dict[str, Any]]:
    for line in _lines(data_dir, hub, "discussions"):
        yield from discussion_rows(line)


def event_rows(line: dict[str, Any]) -> Iterator[dict[str, Any]]:
    e = line["raw"]
    yield {"model": line["model"], "model_id": line.get("model_id"), "num": line.get("num"),
           "event_id": e.get("id"), "type": e.get("type"), "author": _name(e.get("author")),
           "created_at": e.get("createdAt"), "hidden": _bool(_get(e, "data", "hidden")),
           "text": _get(e, "data", "latest", "raw"), "data": _json(e.get("data")),
           "crawled_at": line.get("crawled_at")}


def _events(data_dir: Path, hub: str) -> Iterator[dict[str, Any]]:
    for line in _lines(data_dir, hub, "discussion_events"):
        yield from event_rows(line)


def _files(data_dir: Path, hub: str) -> Iterator[dict[str, Any]]:
    complete: dict[int, str] = {}  # model -> revision whose every page was stored (last wins)
    for line in read_jsonl(data_dir / history_file(hub, STATE_FILE)):
        if found := complete_files_revision(line):
            complete[found[0]] = found[1]
    for line in _lines(data_dir, hub, "files"):
        if complete.get(line["model"]) != line.get("revision"):
            continue  # an older revision, or one a killed crawl did not finish
        yield from file_rows(line)


def file_rows(line: dict[str, Any]) -> Iterator[dict[str, Any]]:
    """One file at one revision (whether that revision was stored completely is in ``state.jsonl``:
    lines of kind ``files``, see :func:`complete_files_revision`)."""
    f = line["raw"]
    yield {"model": line["model"], "model_id": line.get("model_id"), "revision": line.get("revision"),
           "path": f.get("path"), "type": f.get("type"), "size": f.get("size"), "oid": f.get("oid"),
           "lfs_oid": _get(f, "lfs", "oid"), "lfs_size": _get(f, "lfs", "size"), "xet_hash": f.get("xetHash"),
           "last_commit_id": _get(f, "lastCommit", "id"), "last_commit_date": _get(f, "lastCommit", "date"),
           "security_status": _get(f, "securityFileStatus", "status"), "crawled_at": line.get("crawled_at")}


def complete_files_revision(state_line: dict[str, Any]) -> tuple[int, Any] | None:
    """(model, revision) when a line of ``state.jsonl`` says the model's files at that revision
    were stored completely (the model's last such line wins); None for any other line."""
    model = state_line.get("model")
    if state_line.get("kind") == "files" and isinstance(model, int) and not isinstance(model, bool):
        return model, state_line.get("revision")
    return None


def _table(name, spec: list[tuple[str, str]], key, source) -> Table:
    return Table(name, tuple(c for c, _ in spec), tuple(t for _, t in spec), key, source)


_MODEL = [("model", "INTEGER NOT NULL"), ("model_id", "TEXT NOT NULL")]
TABLES: dict[str, Table] = {t.name: t for t in (
    _table("commit", _MODEL + [("commit_id", "TEXT NOT NULL"), ("title", "TEXT"), ("message", "TEXT"),
                               ("date", "TEXT"), ("authors", "TEXT"), ("crawled_at", "TEXT"),
                               ("dropped_at", "TEXT"), ("paging", "INTEGER")],
           ("model", "commit_id"), _commits),
    _table("ref", _MODEL + [("ref_type", "TEXT"), ("name", "TEXT"), ("ref", "TEXT NOT NULL"),
                            ("target_commit", "TEXT"), ("crawled_at", "TEXT")],
           ("model", "ref"), _refs),
    _table("discussion", _MODEL + [("num", "INTEGER NOT NULL"), ("title", "TEXT"), ("status", "TEXT"),
                                   ("is_pull_request", "INTEGER"), ("author", "TEXT"), ("created_at", "TEXT"),
                                   ("num_comments", "INTEGER"), ("num_reaction_users", "INTEGER"),
                                   ("pinned", "INTEGER"), ("locked", "INTEGER"), ("base_ref", "TEXT"),
                                   ("merge_commit_id", "TEXT"), ("crawled_at", "TEXT")],
           ("model", "num"), _discussions),
    _table("discussion_event", _MODEL + [("num", "INTEGER NOT NULL"), ("event_id", "TEXT NOT NULL"),
                                         ("type", "TEXT"), ("author", "TEXT"), ("created_at", "TEXT"),
                                         ("hidden", "INTEGER"), ("text", "TEXT"), ("data", "TEXT"),
                                         ("crawled_at", "TEXT")],
           ("model", "num", "event_id"), _events),
    _table("file", _MODEL + [("revision", "TEXT"), ("path", "TEXT NOT NULL"), ("type", "TEXT"),
                             ("size", "INTEGER"), ("oid", "TEXT"), ("lfs_oid", "TEXT"), ("lfs_size", "INTEGER"),
                             ("xet_hash", "TEXT"), ("last_commit_id", "TEXT"), ("last_commit_date", "TEXT"),
                             ("security_status", "TEXT"), ("crawled_at", "TEXT")],
           ("model", "path"), _files),
)}


# Per table: the history file its rows come from, and the rows of one valid line of that file
# (for readers that go line by line, in file order, such as the incremental export).
LINE_ROWS: dict[str, tuple[str, Callable[[dict[str, Any]], Iterator[dict[str, Any]]]]] = {
    "commit": ("commits", commit_rows),
    "ref": ("refs", ref_rows),
    "discussion": ("discussions", discussion_rows),
    "discussion_event": ("discussion_events", event_rows),
    "file": ("files", file_rows),
}


def rows(data_dir: str | Path, table: str, hub: str = HUB) -> Iterator[tuple]:
    """Rows of one table (``TABLES[table].columns`` order), each key once."""
    return TABLES[table].rows(data_dir, hub)
