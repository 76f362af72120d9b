"""``scrapy export`` of the Hugging Face history tables (commit, ref, discussion, discussion_event,
file), on the trees of real ``scrapy crawl huggingface -a history=…`` runs against the local
replica: every served row is in the database exactly once, joined to ``model``; a re-crawl with
changes is exported incrementally with the newest line winning; exporting twice is a no-op;
Parquet round-trips the tables."""

from __future__ import annotations

import hashlib
import json
import sqlite3
from pathlib import Path

import pytest

from ptmscrape.export import registry, sqlite as export_module
from ptmscrape.export.history import RENAMED
from ptmscrape.export.parquet import export_parquet
from ptmscrape.export.sqlite import SCHEMA_VERSION, export_sqlite
from ptmscrape.history.tables import TABLES, rows
from tests.crawl import read_jsonl, run_crawl
from tests.replicas.huggingface import HuggingFaceReplica
from tests.replicas.huggingface_history import HubHistory

PREFIX = "/hf"
HISTORY_TABLES = ("commit", "ref", "discussion", "discussion_event", "file")


@pytest.fixture
def hub(hf_models):
    with HuggingFaceReplica(hf_models, repos=False) as replica:
        yield HubHistory(replica, commits_page=50, discussions_page=3, tree_page=4, prefix=PREFIX)


def crawl(hub, tmp_path, name):
    return run_crawl("huggingface", tmp_path, data_dir=tmp_path / "data", out_name=f"{name}.jsonl",
                     args={"history": "all"},
                     settings={"PTM_HUGGINGFACE_URL": hub.hub.url + PREFIX, "PTM_HUGGINGFACE_PAGE_SIZE": 5,
                               "PTM_CLONE": 0, "PTM_HUGGINGFACE_COMMITS_PAGE_SIZE": 5})


def query(db: Path, sql: str, *params) -> list[tuple]:
    con = sqlite3.connect(db)
    try:
        return con.execute(sql, params).fetchall()
    finally:
        con.close()


def db_keys(db: Path, table: str) -> set[tuple]:
    """The table's keys as the replica names them (hub id first); asserts none is there twice."""
    key = ["hub_model_id", *TABLES[table].key[1:]]
    got = query(db, f'SELECT {", ".join(key)} FROM "{table}"')
    assert len(got) == len(set(got)), f"{table}: a row twice"
    return set(got)


def assert_tables_hold_what_was_served(hub, data: Path, db: Path) -> None:
    assert db_keys(db, "commit") == hub.all_commits()
    assert db_keys(db, "ref") == hub.all_refs()
    assert db_keys(db, "discussion") == hub.all_discussions()
    assert db_keys(db, "discussion_event") == hub.all_events()
    assert db_keys(db, "file") == hub.all_files()
    for table in HISTORY_TABLES:
        # the same rows as the history module's reader (newest line wins), column for column
        columns = [RENAMED.get(c, c) for c in TABLES[table].columns]
        assert sorted(query(db, f'SELECT {", ".join(columns)} FROM "{table}"'), key=repr) == sorted(
            rows(data, table), key=repr), table
        # joined to model by the record id: the model's name is the id the hub listed
        assert query(db, f'SELECT count(*) FROM "{table}" t JOIN model m USING (model_id) '
                         f'WHERE m.hub = ? AND m.full_name = t.hub_model_id', "huggingface") == query(
            db, f'SELECT count(*) FROM "{table}"'), table


def file_digest(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def test_history_is_exported_once_incrementally_and_newest_wins(tmp_path, hub):
    data = tmp_path / "data"
    crawl(hub, tmp_path, "1")
    db = tmp_path / "dataset.sqlite"
    first = export_sqlite(data, db)
    assert first["skipped"] == 0 and first["bad_lines"] == 0
    assert query(db, "PRAGMA user_version") == [(SCHEMA_VERSION,)]
    assert_tables_hold_what_was_served(hub, data, db)
    assert query(db, "SELECT count(*) FROM discussion_event WHERE author IS NULL")[0][0] > 0  # deleted users
    assert query(db, "SELECT count(*) FROM ref WHERE ref_type = 'pull_request'")[0][0] > 0

    # exporting twice changes nothing, not a byte
    before = file_digest(db)
    again = export_sqlite(data, db)
    assert again["files_read"] == 0 and again["lines"] == 0
    assert file_digest(db) == before

    # a re-crawl with changes: a commit pushed (new files, main moves), a comment, a new
    # discussion, a tag deleted
    history_dir = data / "huggingface" / "history"
    sizes = {p.name: p.stat().st_size for p in history_dir.iterdir()}
    pushed, talked, opened = sorted(hub.histories)[:3]
    tagged = next(m for m in sorted(hub.histories) if hub.histories[m].tags and m != pushed)
    new_sha = hub.push_commit(pushed)
    num = hub.histories[talked].discussions[0]["num"] if hub.histories[talked].discussions else None
    if num is None:
        talked = next(m for m in sorted(hub.histories) if hub.histories[m].discussions)
        num = hub.histories[talked].discussions[0]["num"]
    event = hub.comment(talked, num, "newest comment")
    hub.open_discussion(opened)
    hub.histories[tagged].tags.clear()
    crawl(hub, tmp_path, "2")

    second = export_sqlite(data, db)
    # only what the crawl appended is read from the history files (plus the rewritten
    # huggingface.jsonl and the crawl's new snapshot)
    appended = sum(p.read_bytes()[sizes.get(p.name, 0):].count(b"\n") for p in history_dir.iterdir()
                   if p.name != "failures.jsonl")
    snapshots = sorted((data / "huggingface" / "snapshots").glob("*.jsonl"))
    assert second["lines"] == appended + len(read_jsonl(data / "huggingface" / "huggingface.jsonl")) + len(
        read_jsonl(snapshots[-1]))
    assert second["skipped"] == 0
    assert_tables_hold_what_was_served(hub, data, db)
    assert query(db, "SELECT commit_id FROM \"commit\" c JOIN model m USING (model_id) "
                     "WHERE m.full_name = ? AND c.title = 'Add NEW.md'", pushed) == [(new_sha,)]
    assert {r[0] for r in query(db, "SELECT revision FROM file WHERE hub_model_id = ?", pushed)} == {new_sha}
    assert query(db, "SELECT count(*) FROM file_at_revision WHERE hub_model_id = ?", pushed)[0][0] > len(
        hub.histories[pushed].files)  # the older revision's listing is kept beside the new one
    assert query(db, "SELECT target_commit FROM ref WHERE hub_model_id = ? AND ref = 'refs/heads/main'",
                 pushed) == [(new_sha,)]
    assert query(db, "SELECT count(*) FROM ref WHERE hub_model_id = ? AND ref_type = 'tag'", tagged) == [(0,)]
    assert query(db, "SELECT text FROM discussion_event WHERE hub_model_id = ? AND event_id = ?",
                 talked, event["id"]) == [("newest comment",)]

    # the incremental database equals a fresh export of the same tree
    fresh = tmp_path / "fresh.sqlite"
    export_sqlite(data, fresh)
    for table in HISTORY_TABLES:
        assert sorted(query(db, f'SELECT * FROM "{table}"'), key=repr) == sorted(
            query(fresh, f'SELECT * FROM "{table}"'), key=repr), table

    before = file_digest(db)
    assert export_sqlite(data, db)["files_read"] == 0
    assert file_digest(db) == before

    # Parquet round-trips the history tables
    out = export_parquet(db, tmp_path / "parquet")
    import pyarrow.parquet as pq

    for table in HISTORY_TABLES:
        got = pq.read_table(tmp_path / "parquet" / f"{table}.parquet")
        columns = [c for c, *_ in query(db, f"SELECT name FROM pragma_table_info('{table}')")]
        assert got.column_names == columns
        assert out[table] == got.num_rows == query(db, f'SELECT count(*) FROM "{table}"')[0][0] > 0
        assert sorted(tuple(r.values()) for r in got.to_pylist()) == sorted(
            query(db, f'SELECT * FROM "{table}"')), table
    assert str(pq.read_table(tmp_path / "parquet" / "file.parquet").schema.field("size").type) == "int64"


def write_lines(path: Path, lines: list[dict]) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path, "a") as f:
        f.writelines(json.dumps(line) + "\n" for line in lines)


def test_repeated_lines_newest_wins_within_one_batch_and_bad_lines_are_skipped(tmp_path):
    """Hand-written history lines: a model's refs twice in one file (the second has fewer refs),
    a discussion changed, a file listing that never completed, lines the tables cannot use."""
    history = tmp_path / "data" / "huggingface" / "history"
    head = {"model": 7, "model_id": "o/m", "crawled_at": "2025-01-01T00:00:00Z"}
    write_lines(history / "refs.jsonl", [
        {**head, "raw": {"branches": [{"name": "main", "ref": "refs/heads/main", "targetCommit": "a"}],
                         "tags": [{"name": "v1", "ref": "refs/tags/v1", "targetCommit": "a"}]}},
        {**head, "raw": {"branches": [{"name": "main", "ref": "refs/heads/main", "targetCommit": "b"}]}},
        {"model": "x", "raw": {}},
    ])
    write_lines(history / "discussions.jsonl", [
        {**head, "num": 1, "raw": {"num": 1, "title": "old", "status": "open", "numComments": 1}},
        {**head, "num": 1, "raw": {"num": 1, "title": "new", "status": "closed", "numComments": "2"}},
        {**head, "raw": {"title": "no number"}},
    ])
    write_lines(history / "files.jsonl", [
        {**head, "revision": "a", "raw": {"path": "w.bin", "size": 10, "type": "file"}},
        {**head, "revision": "b", "raw": {"path": "w.bin", "size": 11.5, "type": "file"}},  # never completed
    ])
    write_lines(history / "state.jsonl", [{**head, "kind": "files", "revision": "a"},
                                          {**head, "kind": "commits", "head": "b"}])
    db = tmp_path / "d.sqlite"
    counts = export_sqlite(tmp_path / "data", db)
    assert counts["skipped"] == 2  # the refs line without a record id, the discussion without a number
    assert query(db, "SELECT ref, target_commit FROM ref") == [("refs/heads/main", "b")]
    assert query(db, "SELECT title, status, num_comments FROM discussion") == [("new", "closed", None)]
    assert query(db, "SELECT revision, path, size FROM file") == [("a", "w.bin", 10)]
    assert query(db, "SELECT revision, size FROM file_at_revision ORDER BY 1") == [("a", 10), ("b", None)]
    for table in ("ref", "file"):
        columns = [RENAMED.get(c, c) for c in TABLES[table].columns]
        assert query(db, f'SELECT {", ".join(columns)} FROM "{table}"') == list(rows(tmp_path / "data", table))
    # the revision completes later: the file table moves to it, with nothing read twice
    write_lines(history / "state.jsonl", [{**head, "kind": "files", "revision": "b"}])
    assert export_sqlite(tmp_path / "data", db)["lines"] == 1
    assert query(db, "SELECT revision, path FROM file") == [("b", "w.bin")]


def test_commits_a_force_push_dropped_are_marked_as_the_tables_module_marks_them(tmp_path):
    """dropped_commits.jsonl sets commit.dropped_at: a commit it names, or every commit stored
    before a whole history was listed again; a commit stored again later is live again, whether
    the export reads the lines together or one crawl at a time."""
    history = tmp_path / "data" / "huggingface" / "history"
    m = {"model": 7, "model_id": "o/m"}
    at = "2025-01-0{}T00:00:00Z".format
    crawls = [
        ([{**m, "crawled_at": at(1), "raw": {"id": c}} for c in ("c1", "c2", "c3")]
         + [{**m, "model": 8, "crawled_at": at(1), "raw": {"id": "x1"}}], []),
        ([{**m, "crawled_at": at(2), "raw": {"id": "n1"}}], [{**m, "crawled_at": at(2), "commit_id": "c1"}]),
        ([{**m, "crawled_at": at(3), "raw": {"id": c}} for c in ("s1", "c3")],
         [{**m, "crawled_at": at(3), "stored_before": at(3)}, {"model": 7, "commit_id": "no time"}]),
        ([{**m, "crawled_at": at(4), "raw": {"id": "c1"}}], []),  # pushed back: c1 live again
    ]
    db, together = tmp_path / "d.sqlite", tmp_path / "together.sqlite"
    for commits, dropped in crawls:
        write_lines(history / "commits.jsonl", commits)
        write_lines(history / "dropped_commits.jsonl", dropped)
        export_sqlite(tmp_path / "data", db)
        columns = [RENAMED.get(c, c) for c in TABLES["commit"].columns]
        assert sorted(query(db, f'SELECT {", ".join(columns)} FROM "commit"')) == sorted(
            rows(tmp_path / "data", "commit"))
    assert export_sqlite(tmp_path / "data", together)["skipped"] == 1  # the line without a time
    expected = [("c1", None), ("c2", at(3)), ("c3", None), ("n1", at(3)), ("s1", None), ("x1", None)]
    for database in (db, together):
        assert query(database, 'SELECT commit_id, dropped_at FROM "commit" ORDER BY 1') == expected



def test_commits_dropped_and_stored_again_within_one_second_are_told_apart_by_their_paging(tmp_path):
    """Back-to-back crawls store their lines in one second (crawled_at has whole seconds): what a
    drop line drops is told by the numbers of the pagings, as the tables module tells it."""
    history = tmp_path / "data" / "huggingface" / "history"
    m = {"model": 7, "model_id": "o/m", "crawled_at": "2025-01-01T00:00:00Z"}
    now = m["crawled_at"]
    crawls = [
        ([{**m, "paging": 1, "raw": {"id": c}} for c in ("c1", "c2", "c3")], []),
        # squashed: the whole history listed again, every commit stored before it dropped
        ([{**m, "paging": 2, "raw": {"id": "s1"}}], [{**m, "paging": 2, "stored_before": now, "head": "s1"}]),
        # pushed back: listed again (live), the squashed one dropped
        ([{**m, "paging": 3, "raw": {"id": c}} for c in ("c1", "c2", "c3")],
         [{**m, "paging": 3, "stored_before": now, "head": "c1"}]),
        # amended head: met c2, c1 above it dropped; then pushed back: c1 live, a1 dropped
        ([{**m, "paging": 4, "raw": {"id": "a1"}}], [{**m, "paging": 4, "commit_id": "c1", "head": "a1"}]),
        ([{**m, "paging": 5, "raw": {"id": "c1"}}], [{**m, "paging": 5, "commit_id": "a1", "head": "c1"}]),
    ]
    expected = [[("c1", None), ("c2", None), ("c3", None)],
                [("c1", now), ("c2", now), ("c3", now), ("s1", None)],
                [("c1", None), ("c2", None), ("c3", None), ("s1", now)],
                [("a1", None), ("c1", now), ("c2", None), ("c3", None), ("s1", now)],
                [("a1", now), ("c1", None), ("c2", None), ("c3", None), ("s1", now)]]
    db, together = tmp_path / "d.sqlite", tmp_path / "together.sqlite"
    dropped_at = [TABLES["commit"].columns.index(c) for c in ("commit_id", "dropped_at")]
    for (commits, dropped), want in zip(crawls, expected, strict=True):
        write_lines(history / "commits.jsonl", commits)
        write_lines(history / "dropped_commits.jsonl", dropped)
        export_sqlite(tmp_path / "data", db)
        assert query(db, 'SELECT commit_id, dropped_at FROM "commit" ORDER BY 1') == want
        assert sorted((r[dropped_at[0]], r[dropped_at[1]]) for r in rows(tmp_path / "data", "commit")) == want
    export_sqlite(tmp_path / "data", together)
    assert query(together, 'SELECT commit_id, dropped_at FROM "commit" ORDER BY 1') == expected[-1]

def test_a_version_2_database_gets_the_dropped_at_column(tmp_path):
    history = tmp_path / "data" / "huggingface" / "history"
    write_lines(history / "commits.jsonl", [{"model": 1, "model_id": "o/m", "crawled_at": "2025-01-01T00:00:00Z",
                                             "raw": {"id": "c1"}}])
    db = tmp_path / "d.sqlite"
    export_sqlite(tmp_path / "data", db)
    con = sqlite3.connect(db)  # what the export of schema version 2 wrote: no dropped_at
    con.execute('ALTER TABLE "commit" DROP COLUMN dropped_at')
    con.execute("PRAGMA user_version = 2")
    con.commit()
    con.close()
    later = "2025-01-02T00:00:00Z"
    write_lines(history / "dropped_commits.jsonl", [{"model": 1, "model_id": "o/m", "crawled_at": later,
                                                     "stored_before": later, "head": "c2"}])
    assert export_sqlite(tmp_path / "data", db)["lines"] == 1
    assert query(db, "PRAGMA user_version") == [(SCHEMA_VERSION,)]
    assert query(db, 'SELECT commit_id, dropped_at FROM "commit"') == [("c1", later)]


def test_a_version_1_database_is_brought_up_to_date(tmp_path, monkeypatch):
    history = tmp_path / "data" / "huggingface" / "history"
    write_lines(history / "commits.jsonl", [{"model": 1, "model_id": "o/m", "raw": {"id": "c1", "title": "t"}}])
    db = tmp_path / "d.sqlite"
    with monkeypatch.context() as m:  # what the export of schema version 1 wrote: no history tables
        m.setattr(registry, "SOURCE_MODULES", ("ptmscrape.export.models",))
        m.setattr(export_module, "SCHEMA_VERSION", 1)
        export_sqlite(tmp_path / "data", db)
    assert query(db, "PRAGMA user_version") == [(1,)]
    assert not query(db, "SELECT name FROM sqlite_master WHERE name = 'commit'")
    assert export_sqlite(tmp_path / "data", db)["lines"] == 1
    assert query(db, "PRAGMA user_version") == [(SCHEMA_VERSION,)]
    assert query(db, 'SELECT model_id, hub_model_id, commit_id FROM "commit"') == [(1, "o/m", "c1")]


def test_values_sqlite_cannot_hold_are_made_storable(tmp_path):
    """A lone surrogate (valid JSON, not UTF-8) becomes U+FFFD, an integer beyond 64 bits NULL,
    a line whose record id is beyond 64 bits is skipped: the export goes on and stays incremental."""
    history = tmp_path / "data" / "huggingface" / "history"
    head = {"model": 7, "model_id": "o/m", "crawled_at": "2025-01-01T00:00:00Z"}
    write_lines(history / "commits.jsonl", [
        {**head, "raw": {"id": "c1", "title": "bad \ud800 title", "authors": [{"user": "\udfff"}]}},
        {**head, "model": 10**30, "raw": {"id": "c2", "title": "no storable id"}},
    ])
    with open(history / "commits.jsonl", "ab") as f:  # a raw surrogate json.loads lets through
        f.write(json.dumps({**head, "raw": {"id": "c3", "title": "TITLE"}}).encode().replace(
            b"TITLE", b"\xed\xa0\x80") + b"\n")
    write_lines(history / "files.jsonl", [
        {**head, "revision": "a", "raw": {"path": "w.bin", "size": 10**30, "type": "file",
                                          "lfs": {"oid": "x", "size": -(2**63) - 1}}},
        {**head, "revision": "a", "raw": {"path": "small.bin", "size": 2**63 - 1, "type": "file"}},
    ])
    write_lines(history / "state.jsonl", [{**head, "kind": "files", "revision": "a"},
                                          {**head, "model": 10**30, "kind": "files", "revision": "a"}])
    db = tmp_path / "d.sqlite"
    counts = export_sqlite(tmp_path / "data", db)
    assert counts["skipped"] == 1  # the commit whose record id SQLite cannot hold
    assert query(db, 'SELECT commit_id, title, authors FROM "commit" ORDER BY 1') == [
        ("c1", "bad \ufffd title", '["\ufffd"]'), ("c3", "\ufffd", "[]")]
    assert query(db, "SELECT path, size, lfs_size FROM file ORDER BY 1") == [
        ("small.bin", 2**63 - 1, None), ("w.bin", None, None)]
    assert query(db, "SELECT model_id FROM file_tree") == [(7,)]
    assert export_parquet(db, tmp_path / "pq")["commit"] == 2
    write_lines(history / "commits.jsonl", [{**head, "raw": {"id": "c4", "title": "later"}}])
    assert export_sqlite(tmp_path / "data", db)["lines"] == 1
