"""The table registry of ``scrapy export``: which tables exist and where their rows come from.

A **source** fills one or more tables from JSON Lines files of the dataset tree:

* ``name``: unique; the key under which its files are tracked in ``import_file``;
* ``ddl``: its ``CREATE TABLE / INDEX / VIEW IF NOT EXISTS`` statements;
* ``tables``: the tables and views it exports (SQLite and Parquet);
* ``files(data_dir)``: the JSON Lines files it reads (absolute paths, inside ``data_dir``);
* ``load(loader, relative, lines)``: turns the new lines of one file into rows through the
  :class:`~ptmscrape.export.sqlite.Loader` (batched inserts, cached lookups);
* ``prune`` (optional): SQL run after each of its files is loaded, in the same transaction (the
  model source deletes the tags, papers, ... no model uses any more).

The engine (``ptmscrape/export/sqlite.py``) streams each file, line by line, from where the last
export stopped (files that only grow are read from the recorded byte offset; a file rewritten since,
such as ``<hub>.jsonl`` after a crawl, is read again whole), in one transaction per file, so a
source must be idempotent: loading the same line twice leaves the same rows (upserts, or
``INSERT OR REPLACE`` on a primary key). Values must be storable: an integer column gets an integer
between :data:`INT64_MIN` and :data:`INT64_MAX` (SQLite's range) or NULL; the engine has already
replaced lone surrogates in the strings of a line (SQLite text is UTF-8). A line whose rows still
cannot be stored is skipped and counted: the engine loads the file again one line at a time.

Adding tables takes one small module (``ptmscrape/export/history.py``, the Hugging Face history,
is a full example: several tables, a view, rows that replace earlier ones)::

    # ptmscrape/export/stars.py (a hypothetical <hub>/stars.jsonl: who starred which model)
    from ptmscrape.export.registry import jsonl_table

    SOURCES = [jsonl_table(
        "star",
        '''CREATE TABLE IF NOT EXISTS star (
             model_id INTEGER NOT NULL, user TEXT NOT NULL, starred_at TEXT,
             PRIMARY KEY (model_id, user)) WITHOUT ROWID;''',
        files=lambda data: sorted(data.glob("*/stars.jsonl")),
        rows=lambda r: [(r["model"], r["user"], r.get("date"))],
    )]

plus its module name in :data:`SOURCE_MODULES` below, and ``python -m ptmscrape.export.sqlite
--schema > ptmscrape/export/schema.sql`` (``tests/test_export.py`` checks that file is current).
"""

from __future__ import annotations

import importlib
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any, NamedTuple

# Modules defining a list ``SOURCES``; their order is the order of loading and of the schema.
SOURCE_MODULES = ("ptmscrape.export.models", "ptmscrape.export.history")

# What an SQLite INTEGER holds (the crawl caps counts at the top: mappers/common.py MAX_COUNT).
INT64_MIN, INT64_MAX = -(2**63), 2**63 - 1


class Line(NamedTuple):
    raw: bytes             # the line as stored (with its newline)
    record: dict[str, Any]


@dataclass(frozen=True)
class Source:
    name: str
    ddl: str
    tables: tuple[str, ...]
    files: Callable[[Path], Iterable[Path]]
    load: Callable[[Any, str, Iterator[Line]], None]
    prune: str = ""


def jsonl_table(name: str, ddl: str, *, files: Callable[[Path], Iterable[Path]],
                rows: Callable[[dict[str, Any]], Iterable[tuple]]) -> Source:
    """A source filling one table: every record gives zero or more rows, stored with
    ``INSERT OR REPLACE`` (so the table needs a primary key for re-exports to change nothing)."""

    def load(loader, relative: str, lines: Iterator[Line]) -> None:
        sql = None
        for line in lines:
            for row in rows(line.record):
                if sql is None:
                    sql = f"INSERT OR REPLACE INTO {name} VALUES ({', '.join('?' * len(row))})"
                loader.add(sql, row)

    return Source(name, ddl, (name,), files, load)


def sources() -> list[Source]:
    found: list[Source] = []
    for module in SOURCE_MODULES:
        found.extend(importlib.import_module(module).SOURCES)
    names = [s.name for s in found]
    if len(set(names)) != len(names):
        raise ValueError(f"two export sources share a name: {names}")
    return found
