"""The core tables: models (from each hub's ``<hub>.jsonl``, the latest record of every model, and
the snapshots of crawls not merged into it yet) and their observations (from
``<hub>/snapshots/*.jsonl``, one file per crawl).

A crawl merges its snapshot into ``<hub>.jsonl`` when it ends (a killed one: when the next crawl of
the hub starts); until then the snapshot (marked ``.pending``) holds the newest records, and the
only ones of the models it found first. The model source reads those snapshots too, and a record
replaces a model's row unless the row's ``crawled_at`` is newer: the newest record wins whichever
file was read last."""

from __future__ import annotations

import hashlib
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from ptmscrape.export.registry import INT64_MAX, INT64_MIN, Line, Source

MODEL_DDL = """\
-- One row per model: its latest record (<hub>/<hub>.jsonl, or the snapshot of a crawl not merged into
-- it yet: a running or killed crawl's). model_id is the record's stable id.
CREATE TABLE IF NOT EXISTS model (
    model_id            INTEGER PRIMARY KEY,
    hub                 TEXT NOT NULL,      -- ModelHub.ModelHubName (huggingface, modelzoo, ...)
    hub_url             TEXT,
    owner               TEXT,
    name                TEXT NOT NULL,
    full_name           TEXT NOT NULL,      -- owner/name (name alone when there is no owner)
    model_url           TEXT,
    owner_url           TEXT,
    metadata_path       TEXT,               -- raw payload: <file relative to the data dir>#<byte offset>
    metadata_object_id  TEXT,               -- the hub's own id of the model
    task                TEXT,
    architecture        TEXT,
    license             TEXT,
    library             TEXT,
    downloads           INTEGER,
    downloads_all_time  INTEGER,
    likes               INTEGER,
    gated               TEXT,               -- 'false', 'auto', 'manual' or NULL
    created_at          TEXT,
    last_modified       TEXT,
    parameter_count     INTEGER,
    used_storage        INTEGER,
    repo_url            TEXT,
    repo_branch         TEXT,
    repo_subpath        TEXT,
    repo_path           TEXT,               -- the clone, relative to the data dir
    sha                 TEXT,               -- LatestGitCommitSHA
    clone_status        TEXT,
    crawled_at          TEXT NOT NULL,
    schema_version      TEXT,
    record_hash         INTEGER NOT NULL    -- of the stored line: an unchanged model is not rewritten
);
CREATE INDEX IF NOT EXISTS model_by_hub_full_name ON model (hub, full_name);
CREATE INDEX IF NOT EXISTS model_by_license ON model (license);

CREATE TABLE IF NOT EXISTS tag (tag_id INTEGER PRIMARY KEY, name TEXT NOT NULL UNIQUE);
CREATE TABLE IF NOT EXISTS model_tag (
    model_id INTEGER NOT NULL, tag_id INTEGER NOT NULL, PRIMARY KEY (model_id, tag_id)) WITHOUT ROWID;
CREATE INDEX IF NOT EXISTS model_tag_tag ON model_tag (tag_id);

CREATE TABLE IF NOT EXISTS license (license_id INTEGER PRIMARY KEY, name TEXT NOT NULL UNIQUE);
CREATE TABLE IF NOT EXISTS model_license (
    model_id INTEGER NOT NULL, license_id INTEGER NOT NULL, PRIMARY KEY (model_id, license_id)) WITHOUT ROWID;
CREATE INDEX IF NOT EXISTS model_license_license ON model_license (license_id);

CREATE TABLE IF NOT EXISTS library (library_id INTEGER PRIMARY KEY, name TEXT NOT NULL UNIQUE);
CREATE TABLE IF NOT EXISTS model_library (
    model_id INTEGER NOT NULL, library_id INTEGER NOT NULL, PRIMARY KEY (model_id, library_id)) WITHOUT ROWID;
CREATE INDEX IF NOT EXISTS model_library_library ON model_library (library_id);

CREATE TABLE IF NOT EXISTS language (language_id INTEGER PRIMARY KEY, code TEXT NOT NULL UNIQUE);
CREATE TABLE IF NOT EXISTS model_language (
    model_id INTEGER NOT NULL, language_id INTEGER NOT NULL, PRIMARY KEY (model_id, language_id)) WITHOUT ROWID;
CREATE INDEX IF NOT EXISTS model_language_language ON model_language (language_id);

-- Papers by DOI (arXiv ids as 10.48550/arXiv.<id>).
CREATE TABLE IF NOT EXISTS paper (paper_id INTEGER PRIMARY KEY, doi TEXT NOT NULL UNIQUE);
CREATE TABLE IF NOT EXISTS model_paper (
    model_id INTEGER NOT NULL, paper_id INTEGER NOT NULL, PRIMARY KEY (model_id, paper_id)) WITHOUT ROWID;
CREATE INDEX IF NOT EXISTS model_paper_paper ON model_paper (paper_id);

CREATE TABLE IF NOT EXISTS dataset (
    dataset_id INTEGER PRIMARY KEY, owner TEXT NOT NULL, name TEXT NOT NULL, url TEXT NOT NULL,
    owner_url TEXT NOT NULL, UNIQUE (owner, name, url, owner_url));
CREATE TABLE IF NOT EXISTS model_dataset (
    model_id INTEGER NOT NULL, dataset_id INTEGER NOT NULL, PRIMARY KEY (model_id, dataset_id)) WITHOUT ROWID;
CREATE INDEX IF NOT EXISTS model_dataset_dataset ON model_dataset (dataset_id);

-- Base models as the record names them (BaseModels: owner/name on the same hub).
CREATE TABLE IF NOT EXISTS model_base (
    model_id INTEGER NOT NULL, base_model TEXT NOT NULL, PRIMARY KEY (model_id, base_model)) WITHOUT ROWID;
CREATE INDEX IF NOT EXISTS model_base_base ON model_base (base_model);
-- Lineage edges where both models are in the database: model_id was derived from base_model_id.
-- A name several models of a hub share (a Civitai creator's two models of one name, a Hugging Face
-- model deleted and made again) is the one crawled last: one edge per base model named.
CREATE VIEW IF NOT EXISTS lineage AS
    SELECT model_id, base_model_id FROM (
        SELECT b.model_id AS model_id,
               (SELECT base.model_id FROM model AS base
                WHERE base.hub = m.hub AND base.full_name = b.base_model
                ORDER BY base.crawled_at DESC, base.model_id DESC LIMIT 1) AS base_model_id
        FROM model_base AS b
        JOIN model AS m ON m.model_id = b.model_id)
    WHERE base_model_id IS NOT NULL;
"""

OBSERVATION_DDL = """\
-- One row per snapshot file (<hub>/snapshots/<hub>-<UTC stamp>-<pid>-<random>.jsonl) holding a model record:
-- one crawl (or one run of it). A crawl that stored no record has none.
CREATE TABLE IF NOT EXISTS crawl (
    crawl_id INTEGER PRIMARY KEY, hub TEXT NOT NULL, snapshot TEXT NOT NULL UNIQUE);
-- One row per model per crawl: the time series.
CREATE TABLE IF NOT EXISTS observation (
    model_id            INTEGER NOT NULL,
    crawl_id            INTEGER NOT NULL,
    crawled_at          TEXT NOT NULL,
    downloads           INTEGER,
    downloads_all_time  INTEGER,
    likes               INTEGER,
    sha                 TEXT,
    clone_status        TEXT,
    last_modified       TEXT,
    used_storage        INTEGER,
    parameter_count     INTEGER,
    PRIMARY KEY (model_id, crawl_id)
) WITHOUT ROWID;
CREATE INDEX IF NOT EXISTS observation_crawl ON observation (crawl_id);
"""

MODEL_TABLES = ("model", "tag", "model_tag", "license", "model_license", "library", "model_library",
                "language", "model_language", "paper", "model_paper", "dataset", "model_dataset",
                "model_base", "lineage")
JUNCTIONS = ("model_tag", "model_license", "model_library", "model_language", "model_paper",
             "model_dataset", "model_base")

_MODEL_COLUMNS = (
    "model_id", "hub", "hub_url", "owner", "name", "full_name", "model_url", "owner_url",
    "metadata_path", "metadata_object_id", "task", "architecture", "license", "library",
    "downloads", "downloads_all_time", "likes", "gated", "created_at", "last_modified",
    "parameter_count", "used_storage", "repo_url", "repo_branch", "repo_subpath", "repo_path",
    "sha", "clone_status", "crawled_at", "schema_version", "record_hash")
_CRAWLED_AT = _MODEL_COLUMNS.index("crawled_at")
UPSERT_MODEL = (
    f"INSERT INTO model ({', '.join(_MODEL_COLUMNS)}) VALUES ({', '.join('?' * len(_MODEL_COLUMNS))}) "
    f"ON CONFLICT (model_id) DO UPDATE SET "
    + ", ".join(f"{c} = excluded.{c}" for c in _MODEL_COLUMNS[1:]))
INSERT_OBSERVATION = "INSERT OR IGNORE INTO observation VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)"


def hubs(data_dir: Path) -> list[Path]:
    """Hub folders of the tree: those with a ``<hub>.jsonl`` or a ``snapshots/`` folder."""
    if not data_dir.is_dir():
        return []
    return sorted(d for d in data_dir.iterdir()
                  if d.is_dir() and not d.name.startswith(".")
                  and ((d / f"{d.name}.jsonl").is_file() or (d / "snapshots").is_dir()))


def _model_files(data_dir: Path) -> list[Path]:
    """Each hub's ``<hub>.jsonl``, then its snapshots not merged into it yet, oldest first."""
    files = []
    for d in hubs(data_dir):
        if (d / f"{d.name}.jsonl").is_file():
            files.append(d / f"{d.name}.jsonl")
        files.extend(_pending_snapshots(d))
    return files


def _pending_snapshots(hub_dir: Path) -> list[Path]:
    """Snapshots a ``.pending`` marker says are not merged into ``<hub>.jsonl`` yet (their crawl is
    running, or was killed: ``ptmscrape.dataset.snapshots.pending_snapshots``), oldest first."""
    suffix = ".pending"
    snapshots = (m.with_name(m.name[: -len(suffix)]) for m in (hub_dir / "snapshots").glob(f"*.jsonl{suffix}"))
    return sorted(p for p in snapshots if p.is_file())


def _snapshot_files(data_dir: Path) -> list[Path]:
    return [p for d in hubs(data_dir) for p in sorted((d / "snapshots").glob("*.jsonl"))]


def line_hash(raw: bytes) -> int:
    return int.from_bytes(hashlib.blake2b(raw, digest_size=8).digest(), "big", signed=True)


def _int(value: Any) -> int | None:
    """An integer SQLite can store, else None (a count of 10**30 is no count)."""
    return value if isinstance(value, int) and not isinstance(value, bool) and INT64_MIN <= value <= INT64_MAX \
        else None


def _str(value: Any) -> str | None:
    return value if isinstance(value, str) else None


def _strings(value: Any) -> list[str]:
    return list(dict.fromkeys(v for v in value if isinstance(v, str) and v)) if isinstance(value, list) else []


def _gated(value: Any) -> str | None:
    if isinstance(value, bool):
        return "true" if value else "false"
    return _str(value)


def model_row(r: dict[str, Any], record_hash: int) -> tuple | None:
    hub = r.get("ModelHub")
    if not isinstance(hub, dict):
        hub = {}
    model_id, name = _int(r.get("id")), _str(r.get("ModelName"))
    hub_name = _str(hub.get("ModelHubName"))
    if model_id is None or not name or not hub_name:
        return None
    owner = _str(r.get("ModelOwner")) or ""
    return (
        model_id, hub_name, _str(hub.get("ModelHubURL")), owner, name,
        f"{owner}/{name}" if owner else name, _str(r.get("ModelURL")), _str(r.get("ModelOwnerURL")),
        _str(hub.get("MetadataFilePath")), _str(hub.get("MetadataObjectID")),
        _str(r.get("ModelTask")), _str(r.get("ModelArchitecture")), _str(r.get("License")),
        _str(r.get("Library")), _int(r.get("Downloads")), _int(r.get("DownloadsAllTime")),
        _int(r.get("Likes")), _gated(r.get("Gated")), _str(r.get("CreatedAt")),
        _str(r.get("LastModified")), _int(r.get("ParameterCount")), _int(r.get("UsedStorage")),
        _str(r.get("RepoURL")), _str(r.get("RepoBranch")), _str(r.get("RepoSubPath")),
        _str(r.get("RepoPath")), _str(r.get("LatestGitCommitSHA")), _str(r.get("CloneStatus")),
        _str(r.get("CrawledAt")) or "", _str(r.get("SchemaVersion")), record_hash)


def load_models(loader, relative: str, lines: Iterator[Line]) -> None:
    for line in lines:
        r = line.record
        record_hash = line_hash(line.raw)
        row = model_row(r, record_hash)
        if row is None:
            loader.skip(relative, "not a model record (no id, ModelName or ModelHubName)")
            continue
        model_id = row[0]
        known = loader.query_one("SELECT record_hash, crawled_at FROM model WHERE model_id = ?", (model_id,))
        if known is not None:
            # unchanged, or older than the row (<hub>.jsonl read again while a newer record of the
            # model waits in a snapshot not merged yet, read before)
            if known[0] == record_hash or known[1] > row[_CRAWLED_AT]:
                continue
            for junction in JUNCTIONS:
                loader.delete(f"DELETE FROM {junction} WHERE model_id = ?", (model_id,))
        loader.add(UPSERT_MODEL, row)
        for tag in _strings(r.get("Tags")):
            loader.add("INSERT OR IGNORE INTO model_tag VALUES (?, ?)",
                       (model_id, loader.lookup("tag", "tag_id", ("name",), (tag,))))
        if license := _str(r.get("License")):
            loader.add("INSERT OR IGNORE INTO model_license VALUES (?, ?)",
                       (model_id, loader.lookup("license", "license_id", ("name",), (license,))))
        if library := _str(r.get("Library")):
            loader.add("INSERT OR IGNORE INTO model_library VALUES (?, ?)",
                       (model_id, loader.lookup("library", "library_id", ("name",), (library,))))
        for code in _strings(r.get("Languages")):
            loader.add("INSERT OR IGNORE INTO model_language VALUES (?, ?)",
                       (model_id, loader.lookup("language", "language_id", ("code",), (code,))))
        for doi in _strings(r.get("ModelPaperDOIs")):
            loader.add("INSERT OR IGNORE INTO model_paper VALUES (?, ?)",
                       (model_id, loader.lookup("paper", "paper_id", ("doi",), (doi,))))
        datasets = r.get("Datasets")
        for d in datasets if isinstance(datasets, list) else ():
            if not isinstance(d, dict) or not _str(d.get("DatasetName")):
                continue
            key = tuple(_str(d.get(k)) or "" for k in ("DatasetOwner", "DatasetName", "DatasetURL",
                                                        "DatasetOwnerURL"))
            loader.add("INSERT OR IGNORE INTO model_dataset VALUES (?, ?)",
                       (model_id, loader.lookup("dataset", "dataset_id",
                                                ("owner", "name", "url", "owner_url"), key)))
        for base in _strings(r.get("BaseModels")):
            loader.add("INSERT OR IGNORE INTO model_base VALUES (?, ?)", (model_id, base))


def observation_row(r: dict[str, Any], crawl_id: int | None) -> tuple | None:
    model_id, crawled_at = _int(r.get("id")), _str(r.get("CrawledAt"))
    if model_id is None or not crawled_at:
        return None
    return (model_id, crawl_id, crawled_at, _int(r.get("Downloads")), _int(r.get("DownloadsAllTime")),
            _int(r.get("Likes")), _str(r.get("LatestGitCommitSHA")), _str(r.get("CloneStatus")),
            _str(r.get("LastModified")), _int(r.get("UsedStorage")), _int(r.get("ParameterCount")))


def load_observations(loader, relative: str, lines: Iterator[Line]) -> None:
    hub = relative.split("/", 1)[0]
    crawl_id = None
    for line in lines:
        row = observation_row(line.record, crawl_id)
        if row is None:
            loader.skip(relative, "not a model record (no id or CrawledAt)")
            continue
        if crawl_id is None:  # only a snapshot with a record becomes a crawl
            crawl_id = loader.lookup("crawl", "crawl_id", ("hub", "snapshot"), (hub, relative),
                                     unique=("snapshot",))
            row = (row[0], crawl_id, *row[2:])
        loader.add(INSERT_OBSERVATION, row)


# A changed model replaces its junction rows: the values no model uses any more go, so the lookup
# tables hold what a fresh export of the same tree would hold.
PRUNE_LOOKUPS = "".join(
    f"DELETE FROM {table} WHERE NOT EXISTS (SELECT 1 FROM model_{table} AS j WHERE j.{table}_id = {table}.{table}_id);"
    for table in ("tag", "license", "library", "language", "paper", "dataset"))

SOURCES = [
    Source("model", MODEL_DDL, MODEL_TABLES, _model_files, load_models, PRUNE_LOOKUPS),
    Source("observation", OBSERVATION_DDL, ("crawl", "observation"), _snapshot_files, load_observations),
]
