"""Every exported table of the SQLite database as one Parquet file (``<table>.parquet``), read by
pandas, polars, DuckDB and Spark alike.

Rows are streamed from SQLite in batches into a ``pyarrow.parquet.ParquetWriter`` (row groups of
at most 128k rows or 32 MiB), so memory stays bounded; each file is written beside its target and
renamed over it when complete.
"""

from __future__ import annotations

import os
import sqlite3
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq

from ptmscrape.export import sqlite as export_db
from ptmscrape.export.sqlite import exported_tables

FETCH_ROWS = 4_096          # rows held as Python tuples at a time (the costly part)
ROW_GROUP_ROWS = 131_072    # rows per Parquet row group at most ...
ROW_GROUP_BYTES = 32 << 20  # ... and at most this much Arrow data held before it is written
_TYPES = {"INTEGER": pa.int64(), "REAL": pa.float64(), "BLOB": pa.binary()}


def arrow_schema(con: sqlite3.Connection, table: str) -> pa.Schema:
    """From the declared column types (a view's columns carry those of the columns they show)."""
    return pa.schema([(name, _TYPES.get((decl or "").upper(), pa.string()))
                      for _, name, decl, *_ in con.execute(f'PRAGMA table_info("{table}")')])


def export_parquet(db_path: str | os.PathLike[str], out_dir: str | os.PathLike[str]) -> dict[str, int]:
    """Write ``<out_dir>/<table>.parquet`` for every exported table; returns rows per table."""
    try:
        return _write_tables(db_path, Path(out_dir))
    except sqlite3.Error as exc:
        raise export_db.ExportError(f"{db_path}: {exc}") from None


def _write_tables(db_path: str | os.PathLike[str], out: Path) -> dict[str, int]:
    out.mkdir(parents=True, exist_ok=True)
    con = sqlite3.connect(f"file:{Path(db_path).resolve()}?mode=ro", uri=True, timeout=export_db.BUSY_TIMEOUT)
    rows: dict[str, int] = {}
    try:
        for table in exported_tables():
            schema = arrow_schema(con, table)
            target = out / f"{table}.parquet"
            tmp = out / f".{table}.parquet.tmp"
            count = 0
            try:
                with pq.ParquetWriter(tmp, schema, compression="zstd") as writer:
                    cursor = con.execute(f'SELECT * FROM "{table}"')
                    group: list[pa.RecordBatch] = []
                    while batch := cursor.fetchmany(FETCH_ROWS):
                        columns = list(zip(*batch, strict=True))
                        group.append(pa.record_batch(
                            [pa.array(col, type=field.type) for col, field in zip(columns, schema, strict=True)],
                            schema=schema))
                        count += len(batch)
                        if (sum(b.num_rows for b in group) >= ROW_GROUP_ROWS
                                or sum(b.nbytes for b in group) >= ROW_GROUP_BYTES):
                            writer.write_table(pa.Table.from_batches(group, schema))
                            group = []
                    if group or count == 0:
                        writer.write_table(pa.Table.from_batches(group, schema))
                os.replace(tmp, target)
            except BaseException:
                tmp.unlink(missing_ok=True)
                raise
            rows[table] = count
    finally:
        con.close()
    return rows
