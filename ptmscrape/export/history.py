"""The history tables (``scrapy crawl huggingface -a history=…``): ``commit``, ``ref``,
``discussion``, ``discussion_event`` and ``file``, read from ``<hub>/history/*.jsonl``.

Columns and row mapping come from :mod:`ptmscrape.history.tables` (one definition for every
reader), with two names changed so the tables join like every other table of the database:
the history files' ``model`` (the record ``id``) is ``model_id`` here, joining ``model.model_id``,
and their ``model_id`` (the id the hub listed) is ``hub_model_id``.

The history files only grow, and a row may be there more than once (a discussion that changed,
a crawl killed and done again): the export reads each file from where it stopped, in file order,
and the last line of a key replaces the row, so the newest line wins, as in ``tables.rows``:

* ``commit``, ``discussion``, ``discussion_event``: one row per key, ``INSERT OR REPLACE``; then
  ``dropped_commits.jsonl`` sets ``commit.dropped_at`` of the commits a force-push dropped;
* ``ref``: a refs line is the model's whole list, replacing the model's rows;
* ``file``: a view of ``file_at_revision`` (every file at every revision stored, one row per
  model, revision and path) restricted to the revision of ``file_tree`` (the model's last
  revision whose listing ``state.jsonl`` says was stored completely).
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

from ptmscrape.export.registry import INT64_MAX, INT64_MIN, Line, Source
from ptmscrape.history import tables as history
from ptmscrape.history.store import STATE_FILE

RENAMED = {"model": "model_id", "model_id": "hub_model_id"}
REF_BATCH_MODELS = 5_000  # models whose refs are held before they are written


def _columns(table: history.Table) -> list[tuple[str, str, str]]:
    """(export column, history column, declared type), in column order."""
    out = []
    for column, sql_type in zip(table.columns, table.types, strict=True):
        if column == "model_id":
            sql_type = "TEXT"  # the hub's id: kept when the line lacks it, as NULL
        out.append((RENAMED.get(column, column), column, sql_type))
    return out


def _create_table(name: str, table: history.Table, extra_key: tuple[str, ...] = ()) -> str:
    cols = _columns(table)
    key = [RENAMED.get(c, c) for c in table.key]
    key[1:1] = extra_key
    body = ",\n    ".join(f"{c:<20} {t}" for c, _, t in cols)
    return f'CREATE TABLE IF NOT EXISTS "{name}" (\n    {body},\n    PRIMARY KEY ({", ".join(key)})\n);\n'


COMMIT, REF, DISCUSSION, EVENT, FILE = (history.TABLES[n] for n in (
    "commit", "ref", "discussion", "discussion_event", "file"))

DDL = {
    "commit": "-- One row per commit of a model (commits.jsonl); joins model on model_id. dropped_at: when\n"
              "-- a re-crawl found a force-push had dropped it (dropped_commits.jsonl); NULL while live.\n"
              + _create_table("commit", COMMIT),
    "ref": "-- The model's branches, tags, converts and pull-request refs, as last stored (refs.jsonl).\n"
           + _create_table("ref", REF)
           + "CREATE INDEX IF NOT EXISTS ref_target_commit ON ref (model_id, target_commit);\n",
    "discussion": "-- One row per discussion or pull request, as last stored (discussions.jsonl).\n"
                  + _create_table("discussion", DISCUSSION),
    "discussion_event": "-- One row per event of a discussion (comments, status and title changes, commits),\n"
                        "-- as last stored (discussion_events.jsonl); joins discussion on (model_id, num).\n"
                        + _create_table("discussion_event", EVENT),
    "file": "-- Every file (and folder) at every revision whose tree was stored (files.jsonl).\n"
            + _create_table("file_at_revision", FILE, extra_key=("revision",))
            + "-- The model's last revision whose file list was stored completely (state.jsonl).\n"
              "CREATE TABLE IF NOT EXISTS file_tree (\n"
              "    model_id             INTEGER PRIMARY KEY,\n"
              "    revision             TEXT,\n"
              "    crawled_at           TEXT\n"
              ");\n"
              "-- The files at that revision: one row per model and path.\n"
              f"CREATE VIEW IF NOT EXISTS file AS\n    SELECT {', '.join('f.' + c for c, _, _ in _columns(FILE))}\n"
              "    FROM file_at_revision AS f JOIN file_tree AS t\n"
              "         ON t.model_id = f.model_id AND t.revision = f.revision;\n",
}


def _coerce(value: Any, sql_type: str) -> Any:
    """A value as its column declares it (the hub's JSON may hold anything): an integer column
    gets an integer SQLite can store or NULL, a text column text (other JSON values as JSON text)
    or NULL."""
    if value is None:
        return None
    if sql_type.startswith("INTEGER"):
        return int(value) if isinstance(value, int) and INT64_MIN <= value <= INT64_MAX else None
    return value if isinstance(value, str) else history._json(value)


def _plan(table: history.Table) -> list[tuple[str, str, bool]]:
    """(history column, declared type, required), in column order; required: in the key (of
    ``file_at_revision`` for files) or ``NOT NULL``."""
    required = {*table.key, "revision"} if table is FILE else set(table.key)
    return [(column, sql_type, column in required or "NOT NULL" in sql_type)
            for _, column, sql_type in _columns(table)]


_PLANS = {t.name: _plan(t) for t in (COMMIT, REF, DISCUSSION, EVENT, FILE)}


def _row(table: history.Table, row: dict[str, Any]) -> tuple | None:
    """The export row, or None when a column the key or ``NOT NULL`` needs is missing."""
    out = []
    for column, sql_type, required in _PLANS[table.name]:
        value = _coerce(row.get(column), sql_type)
        if value is None and required:
            return None
        out.append(value)
    return tuple(out)


def _files(file_name: str) -> Callable[[Path], list[Path]]:
    def files(data_dir: Path) -> list[Path]:
        return sorted(data_dir.glob(f"*/history/{file_name}.jsonl"))
    return files


def _valid(loader, relative: str, lines: Iterator[Line]) -> Iterator[dict[str, Any]]:
    for line in lines:
        if history.valid_line(line.record) and INT64_MIN <= line.record["model"] <= INT64_MAX:
            yield line.record
        else:
            loader.skip(relative, "not a history line (no record id within 64 bits, or no raw object)")


def _upsert(name: str, table: history.Table) -> Callable:
    sql = f'INSERT OR REPLACE INTO "{name}" VALUES ({", ".join("?" * len(table.columns))})'
    line_rows = history.LINE_ROWS[table.name][1]
    missing = f"a {table.name} without {' or '.join(table.key[1:])}"

    def load(loader, relative: str, lines: Iterator[Line]) -> None:
        for record in _valid(loader, relative, lines):
            for row in line_rows(record):
                values = _row(table, row)
                if values is None:
                    loader.skip(relative, missing)
                else:
                    loader.add(sql, values)
    return load


def load_refs(loader, relative: str, lines: Iterator[Line]) -> None:
    """Each refs line replaces the model's refs; within a batch only a model's last line counts
    (the loader runs deletes before inserts, so two lines of one model must not share a batch)."""
    insert = f'INSERT OR IGNORE INTO ref VALUES ({", ".join("?" * len(REF.columns))})'
    pending: dict[int, list[tuple]] = {}

    def write() -> None:
        for model, rows in pending.items():
            loader.delete("DELETE FROM ref WHERE model_id = ?", (model,))
            for values in rows:
                loader.add(insert, values)
        loader.flush()
        pending.clear()

    for record in _valid(loader, relative, lines):
        rows = []
        for row in history.ref_rows(record):
            values = _row(REF, row)
            if values is None:
                loader.skip(relative, "a ref without a name")
            else:
                rows.append(values)
        pending[record["model"]] = rows
        if len(pending) >= REF_BATCH_MODELS:
            write()
    write()


# A commit keeps the earliest time a crawl found it dropped; a commit line stored since (newer than
# the drop) replaced the row with dropped_at NULL, and the test of ``tables.dropped_before`` keeps it
# live: by the pagings' numbers when the drop line has one (a row without one is older), else by
# crawled_at, for a row without a number too (lines of versions that did not number pagings).
_STORED_BEFORE_DROP = ("(CASE WHEN ? IS NOT NULL THEN COALESCE(paging, 0) < ? "
                       "ELSE paging IS NULL AND crawled_at {} ? END)")
_DROP_COMMIT = ('UPDATE "commit" SET dropped_at = ? WHERE model_id = ? AND commit_id = ? AND '
                + _STORED_BEFORE_DROP.format("<=") + ' AND (dropped_at IS NULL OR dropped_at > ?)')
_DROP_STORED_BEFORE = ('UPDATE "commit" SET dropped_at = ? WHERE model_id = ? AND '
                       + _STORED_BEFORE_DROP.format("<") + ' AND (dropped_at IS NULL OR dropped_at > ?)')
_DROP_UNFINISHED = ('UPDATE "commit" SET dropped_at = ? WHERE model_id = ? AND paging > ? AND paging < ? '
                    'AND (dropped_at IS NULL OR dropped_at > ?)')


def load_dropped_commits(loader, relative: str, lines: Iterator[Line]) -> None:
    """Marks the commit rows ``dropped_commits.jsonl`` says a force-push dropped (``dropped_at``);
    read after ``commits.jsonl``, whose lines name only commits stored before them."""
    for line in lines:
        found = history.dropped_commit(line.record)
        if found is None or not INT64_MIN <= found[0] <= INT64_MAX:
            loader.skip(relative, "not a dropped-commit line (no record id within 64 bits, commit id or time)")
            continue
        model, commit, before, at, paging, after = found
        if commit is not None:
            loader.add(_DROP_COMMIT, (at, model, commit, paging, paging, at, at))
        elif before is not None:
            loader.add(_DROP_STORED_BEFORE, (at, model, paging, paging, before, at))
        else:
            loader.add(_DROP_UNFINISHED, (at, model, after, paging, at))


def load_file_trees(loader, relative: str, lines: Iterator[Line]) -> None:
    for line in lines:
        found = history.complete_files_revision(line.record)
        if found and isinstance(found[1], str) and INT64_MIN <= found[0] <= INT64_MAX:
            crawled_at = line.record.get("crawled_at")
            loader.add("INSERT OR REPLACE INTO file_tree VALUES (?, ?, ?)",
                       (found[0], found[1], crawled_at if isinstance(crawled_at, str) else None))


SOURCES = [
    Source("history_commit", DDL["commit"], ("commit",), _files("commits"), _upsert("commit", COMMIT)),
    Source("history_dropped_commit", "-- sets commit.dropped_at (above) from dropped_commits.jsonl\n", (),
           _files("dropped_commits"), load_dropped_commits),
    Source("history_ref", DDL["ref"], ("ref",), _files("refs"), load_refs),
    Source("history_discussion", DDL["discussion"], ("discussion",), _files("discussions"),
           _upsert("discussion", DISCUSSION)),
    Source("history_discussion_event", DDL["discussion_event"], ("discussion_event",),
           _files("discussion_events"), _upsert("discussion_event", EVENT)),
    Source("history_file", DDL["file"], ("file",), _files("files"), _upsert("file_at_revision", FILE)),
    Source("history_file_tree", "-- fills file_tree (above) from state.jsonl\n", (), _files(STATE_FILE),
           load_file_trees),
]
