"""``scrapy export`` (SQLite, Parquet) and ``scrapy report``, on the dataset tree of real crawls
against the local replicas (PTM_CLONE=0: a Hugging Face hub crawled twice, ModelZoo once).

Every answer of the database is checked against the same answer computed from the JSON Lines
files. The report test needs Splash (tests/services.py: skipped without it, failed under CI=true).
"""

from __future__ import annotations

import copy
import hashlib
import io
import json
import re
import shutil
import sqlite3
import subprocess
import sys
import threading
from collections import Counter
from functools import partial
from http.server import SimpleHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from urllib.parse import urlencode
from urllib.request import urlopen

import pytest

from ptmscrape.export import registry
from ptmscrape.export.registry import jsonl_table
from ptmscrape.export.sqlite import SCHEMA_VERSION, ExportError, export_sqlite, exported_tables, schema_sql
from tests.crawl import ROOT, read_jsonl, run_crawl
from tests.replicas import modelzoo
from tests.replicas.huggingface import HuggingFaceReplica, fixture_models, synthetic_models
from tests.services import require_service

POPULAR = "google-bert/bert-base-uncased"
DERIVED = "org9/bert-finetuned-demo"   # names POPULAR as its base model
SPLASH_URL = "http://127.0.0.1:8050"


def scrapy(*args: str, cwd: Path = ROOT, check: bool = True) -> subprocess.CompletedProcess:
    proc = subprocess.run([sys.executable, "-m", "scrapy.cmdline", *args], cwd=cwd, capture_output=True,
                          text=True, timeout=300)
    if check:
        assert proc.returncode == 0, proc.stdout + proc.stderr
        assert "Traceback" not in proc.stderr, proc.stderr
    return proc


def full_name(r: dict) -> str:
    return f"{r['ModelOwner']}/{r['ModelName']}" if r["ModelOwner"] else r["ModelName"]


def hub_of(r: dict) -> str:
    return r["ModelHub"]["ModelHubName"]


@pytest.fixture(scope="module")
def tree(tmp_path_factory):
    """work/data: ModelZoo crawled once, Hugging Face twice (POPULAR's downloads changed in
    between); work/data-1: the tree after the first Hugging Face crawl."""
    work = tmp_path_factory.mktemp("export")
    data = work / "data"
    zoo, zoo_settings, zoo_env = modelzoo.start_demo_replica(work / "zoo")
    with zoo:
        run_crawl("modelzoo", work, settings={**zoo_settings, "PTM_CLONE": 0}, env=zoo_env,
                  data_dir=data, out_name="mz.jsonl")
    derived = copy.deepcopy(synthetic_models(1, seed=7)[0])
    derived.update(id=DERIVED, modelId=DERIVED, author="org9", _id="6500000000000000000abcde",
                   tags=[*derived["tags"], f"base_model:finetune:{POPULAR}"])
    with HuggingFaceReplica(fixture_models() + synthetic_models(8) + [derived], repos=False,
                            renames={"bert-base-uncased": POPULAR}) as hub:
        settings = {"PTM_HUGGINGFACE_URL": hub.url, "PTM_HUGGINGFACE_PAGE_SIZE": 5, "PTM_CLONE": 0}
        run_crawl("huggingface", work, settings=settings, data_dir=data, out_name="hf1.jsonl")
        shutil.copytree(data, work / "data-1")
        hub.set_field(POPULAR, "downloads", hub.models[POPULAR]["downloads"] + 1000)
        run_crawl("huggingface", work, settings=settings, data_dir=data, out_name="hf2.jsonl")
    return work


@pytest.fixture(scope="module")
def db(tree):
    """dataset.sqlite exported by the real command."""
    out = scrapy("export", "-s", f"PTM_DATA_DIR={tree / 'data'}", "-o", str(tree / "dataset.sqlite"))
    assert "5 file(s) read, 0 unchanged" in out.stdout, out.stdout  # 2 x <hub>.jsonl, 3 snapshots
    return tree / "dataset.sqlite"


def latest(tree: Path) -> list[dict]:
    return [r for hub in ("huggingface", "modelzoo") for r in read_jsonl(tree / "data" / hub / f"{hub}.jsonl")]


def snapshots(tree: Path, hub: str) -> list[Path]:
    return sorted((tree / "data" / hub / "snapshots").glob("*.jsonl"))


def query(db: Path, sql: str, *params) -> list[tuple]:
    con = sqlite3.connect(db)
    try:
        return con.execute(sql, params).fetchall()
    finally:
        con.close()


def normalised(db: Path) -> dict[str, list]:
    """The database's content without its surrogate ids (they depend on the order of export)."""
    con = sqlite3.connect(db)
    try:
        out = {"model": sorted(con.execute("SELECT * FROM model").fetchall(), key=repr),
               "observation": sorted(con.execute(
                   "SELECT o.model_id, o.crawled_at, o.downloads, o.downloads_all_time, o.likes, o.sha, "
                   "o.clone_status, o.last_modified, o.used_storage, o.parameter_count, c.hub, c.snapshot "
                   "FROM observation o JOIN crawl c USING (crawl_id)").fetchall(), key=repr),
               "lineage": sorted(con.execute("SELECT * FROM lineage").fetchall())}
        for junction, lookup, key, value in [("model_tag", "tag", "tag_id", "name"),
                                             ("model_license", "license", "license_id", "name"),
                                             ("model_library", "library", "library_id", "name"),
                                             ("model_language", "language", "language_id", "code"),
                                             ("model_paper", "paper", "paper_id", "doi"),
                                             ("model_dataset", "dataset", "dataset_id", "url")]:
            out[junction] = sorted(con.execute(
                f"SELECT j.model_id, l.{value} FROM {junction} j JOIN {lookup} l USING ({key})").fetchall())
            out[lookup] = sorted(con.execute(f"SELECT {value} FROM {lookup}").fetchall())
        out["model_base"] = sorted(con.execute("SELECT * FROM model_base").fetchall())
        return out
    finally:
        con.close()


def test_tree_has_two_hubs_and_two_crawls_of_one(tree):
    assert len(snapshots(tree, "huggingface")) == 2 and len(snapshots(tree, "modelzoo")) == 1


def test_sql_answers_equal_the_jsonl(tree, db):
    records = latest(tree)
    assert query(db, "PRAGMA user_version") == [(SCHEMA_VERSION,)]
    # models per hub
    assert dict(query(db, "SELECT hub, count(*) FROM model GROUP BY hub")) == Counter(map(hub_of, records))
    # per hub and license
    assert dict(((h, lic), n) for h, lic, n in query(
        db, "SELECT m.hub, l.name, count(*) FROM model m JOIN model_license USING (model_id) "
            "JOIN license l USING (license_id) GROUP BY 1, 2")) == Counter(
        (hub_of(r), r["License"]) for r in records if r.get("License"))
    # per tag, language, library, paper, dataset
    expect_tags = Counter(t for r in records for t in set(r.get("Tags") or []))
    assert dict(query(db, "SELECT t.name, count(*) FROM model_tag JOIN tag t USING (tag_id) GROUP BY 1")) == expect_tags
    assert len(expect_tags) > 20
    assert dict(query(db, "SELECT l.code, count(*) FROM model_language JOIN language l USING (language_id) "
                          "GROUP BY 1")) == Counter(x for r in records for x in set(r.get("Languages") or []))
    assert dict(query(db, "SELECT l.name, count(*) FROM model_library JOIN library l USING (library_id) "
                          "GROUP BY 1")) == Counter(r["Library"] for r in records if r.get("Library"))
    assert set(query(db, "SELECT m.full_name, p.doi FROM model m JOIN model_paper USING (model_id) "
                         "JOIN paper p USING (paper_id)")) == {
        (full_name(r), doi) for r in records for doi in r["ModelPaperDOIs"]}
    assert set(query(db, "SELECT m.model_id, d.name, d.url FROM model m JOIN model_dataset USING (model_id) "
                         "JOIN dataset d USING (dataset_id)")) == {
        (r["id"], d["DatasetName"], d["DatasetURL"]) for r in records for d in r["Datasets"]}
    # every column of every model
    rows = {row[0]: row for row in query(db, "SELECT model_id, hub, owner, name, full_name, task, architecture, "
                                             "license, library, downloads, likes, sha, clone_status, crawled_at, "
                                             "repo_url, parameter_count, created_at FROM model")}
    assert rows == {r["id"]: (r["id"], hub_of(r), r["ModelOwner"], r["ModelName"], full_name(r),
                              r.get("ModelTask"), r.get("ModelArchitecture"), r.get("License"),
                              r.get("Library"), r.get("Downloads"), r.get("Likes"), r["LatestGitCommitSHA"],
                              r["CloneStatus"], r["CrawledAt"], r["RepoURL"], r.get("ParameterCount"),
                              r.get("CreatedAt")) for r in records}
    # lineage: edges between models both in the database
    known = {(hub_of(r), full_name(r)): r["id"] for r in records}
    edges = {(r["id"], known[(hub_of(r), b)]) for r in records for b in r.get("BaseModels") or []
             if (hub_of(r), b) in known}
    assert set(query(db, "SELECT model_id, base_model_id FROM lineage")) == edges
    assert (known[("huggingface", DERIVED)], known[("huggingface", POPULAR)]) in edges
    assert query(db, "SELECT count(*) FROM model_base")[0][0] > len(edges)  # unknown bases are kept, not linked


def test_observations_of_one_model_across_two_crawls(tree, db):
    expected = [(r["CrawledAt"], r["Downloads"], path.relative_to(tree / "data").as_posix())
                for path in snapshots(tree, "huggingface") for r in read_jsonl(path) if full_name(r) == POPULAR]
    got = query(db, "SELECT o.crawled_at, o.downloads, c.snapshot FROM observation o JOIN model m USING (model_id) "
                    "JOIN crawl c USING (crawl_id) WHERE m.full_name = ? ORDER BY c.snapshot", POPULAR)
    assert got == expected and len(got) == 2
    assert got[1][1] == got[0][1] + 1000
    total = sum(1 for hub in ("huggingface", "modelzoo") for p in snapshots(tree, hub) for _ in read_jsonl(p))
    assert query(db, "SELECT count(*) FROM observation")[0][0] == total
    assert query(db, "SELECT count(*) FROM crawl")[0][0] == 3


def test_exporting_twice_changes_nothing(tree, db):
    before = hashlib.sha256(db.read_bytes()).hexdigest()
    out = scrapy("export", "-s", f"PTM_DATA_DIR={tree / 'data'}", "-o", str(db))
    assert "0 file(s) read, 5 unchanged, 0 lines" in out.stdout
    assert hashlib.sha256(db.read_bytes()).hexdigest() == before


def test_export_after_a_new_crawl_reads_only_what_is_new(tree, db, tmp_path):
    inc = tmp_path / "inc.sqlite"
    first = export_sqlite(tree / "data-1", inc)
    assert first["files_read"] == 4  # 2 x <hub>.jsonl, 2 snapshots
    second = export_sqlite(tree / "data", inc)
    # the new snapshot and the rewritten huggingface.jsonl; ModelZoo's files and the first snapshot unchanged
    assert (second["files_read"], second["files_unchanged"]) == (2, 3)
    new_snapshot = snapshots(tree, "huggingface")[1]
    assert second["lines"] == len(read_jsonl(new_snapshot)) + len(read_jsonl(
        tree / "data" / "huggingface" / "huggingface.jsonl"))
    assert normalised(inc) == normalised(db)


def test_a_growing_snapshot_is_read_from_where_the_last_export_stopped(tree, tmp_path):
    data = tmp_path / "data"
    snap = data / "huggingface" / "snapshots" / "huggingface-20250101T000000Z-1.jsonl"
    snap.parent.mkdir(parents=True)
    lines = (tree / "data" / "huggingface" / "huggingface.jsonl").read_bytes().splitlines(keepends=True)
    snap.write_bytes(lines[0] + b"not json\n" + lines[1] + lines[2][:20])  # + a torn line
    target = tmp_path / "d.sqlite"
    counts = export_sqlite(data, target)
    assert (counts["lines"], counts["bad_lines"]) == (2, 1)
    assert query(target, "SELECT count(*) FROM observation") == [(2,)]
    with open(snap, "ab") as f:  # the crawl goes on: the torn line completed, one more
        f.write(lines[2][20:] + lines[3])
    counts = export_sqlite(data, target)
    assert counts["lines"] == 2  # only the new ones
    assert query(target, "SELECT count(*) FROM observation") == [(4,)]
    snap.write_bytes(lines[5])  # rewritten (not a snapshot's life, but a source's): read again
    assert export_sqlite(data, target)["lines"] == 1
    assert query(target, "SELECT count(*) FROM observation") == [(5,)]  # observations are kept
    # a model record without an id is skipped and counted, the rest goes on
    (data / "huggingface" / "huggingface.jsonl").write_bytes(b'{"ModelName": "x"}\n' + lines[0])
    counts = export_sqlite(data, target)
    assert counts["skipped"] == 1 and query(target, "SELECT count(*) FROM model") == [(1,)]


def test_only_a_snapshot_with_a_model_record_is_a_crawl(tree, tmp_path):
    snapshots_dir = tmp_path / "data" / "huggingface" / "snapshots"
    snapshots_dir.mkdir(parents=True)
    empty = snapshots_dir / "huggingface-20250101T000000Z-1.jsonl"
    empty.write_bytes(b"")  # a crawl that stored nothing
    unusable = snapshots_dir / "huggingface-20250102T000000Z-1.jsonl"
    unusable.write_bytes(b'{"no": "id"}\nnot json\n')
    target = tmp_path / "d.sqlite"
    assert export_sqlite(tmp_path / "data", target)["skipped"] == 1
    assert query(target, "SELECT count(*) FROM crawl") == [(0,)]
    line = (tree / "data" / "huggingface" / "huggingface.jsonl").read_bytes().splitlines(keepends=True)[0]
    with open(unusable, "ab") as f:
        f.write(line)
    export_sqlite(tmp_path / "data", target)
    assert query(target, "SELECT c.snapshot, count(*) FROM crawl c JOIN observation USING (crawl_id) GROUP BY 1") == [
        (unusable.relative_to(tmp_path / "data").as_posix(), 1)]
    assert query(target, "SELECT count(*) FROM crawl") == [(1,)]


def test_a_changed_model_replaces_its_tags(tree, tmp_path):
    data = tmp_path / "data"
    (data / "huggingface").mkdir(parents=True)
    record = read_jsonl(tree / "data" / "huggingface" / "huggingface.jsonl")[0]
    path = data / "huggingface" / "huggingface.jsonl"
    path.write_text(json.dumps({**record, "Tags": ["a", "b"], "License": "mit"}) + "\n")
    target = tmp_path / "d.sqlite"
    export_sqlite(data, target)
    path.write_text(json.dumps({**record, "Tags": ["b", "c"], "License": "apache-2.0", "Downloads": 7}) + "\n")
    export_sqlite(data, target)
    assert query(target, "SELECT t.name FROM model_tag JOIN tag t USING (tag_id) ORDER BY 1") == [("b",), ("c",)]
    assert query(target, "SELECT l.name FROM model_license JOIN license l USING (license_id)") == [("apache-2.0",)]
    assert query(target, "SELECT downloads, license FROM model") == [(7, "apache-2.0")]


def model_record(n: int, crawled_at: str, **values) -> dict:
    return {"id": n, "ModelHub": {"ModelHubName": "huggingface"}, "ModelName": f"m{n}", "ModelOwner": "o",
            "CrawledAt": crawled_at, **values}


def write_records(path: Path, records: list[dict]) -> None:
    path.write_text("".join(json.dumps(r) + "\n" for r in records))


def test_records_of_a_crawl_not_merged_yet_are_the_models_latest(tmp_path):
    """A crawl's snapshot is merged into <hub>.jsonl when it ends (a killed crawl's: when the next
    crawl starts). Until then its records are the models' latest, and the only ones of the models
    it found first: the model table has them, and the newest record wins whatever file is read last."""
    t1, t2, t3 = "2025-01-01T00:00:00Z", "2025-02-01T00:00:00Z", "2025-03-01T00:00:00Z"
    data = tmp_path / "data"
    hub = data / "huggingface"
    (hub / "snapshots").mkdir(parents=True)
    records = hub / "huggingface.jsonl"
    write_records(records, [model_record(1, t1, Downloads=1, Tags=["old"]), model_record(2, t1, Downloads=2)])
    snapshot = hub / "snapshots" / "huggingface-20250201T000000Z-7-abc123.jsonl"
    killed = [model_record(1, t2, Downloads=10, Tags=["new"]), model_record(3, t2, Downloads=30)]
    write_records(snapshot, killed)
    marker = snapshot.with_name(snapshot.name + ".pending")
    marker.touch()
    inc = tmp_path / "inc.sqlite"
    export_sqlite(data, inc)
    assert query(inc, "SELECT model_id, downloads, crawled_at FROM model ORDER BY 1") == [
        (1, 10, t2), (2, 2, t1), (3, 30, t2)]
    assert query(inc, "SELECT count(*) FROM observation JOIN model USING (model_id)") == [(2,)]
    assert query(inc, "SELECT model_id, name FROM model_tag JOIN tag USING (tag_id)") == [(1, "new")]

    # another worker's crawl merged meanwhile: <hub>.jsonl rewritten without the snapshot's records
    write_records(records, [model_record(4, t3, Downloads=4), model_record(1, t1, Downloads=1, Tags=["old"]),
                            model_record(2, t1, Downloads=2)])
    export_sqlite(data, inc)
    assert query(inc, "SELECT model_id, downloads FROM model ORDER BY 1") == [(1, 10), (2, 2), (3, 30), (4, 4)]
    fresh = tmp_path / "fresh.sqlite"
    export_sqlite(data, fresh)
    assert normalised(inc) == normalised(fresh)

    # the next crawl merges the snapshot: <hub>.jsonl has its records, the marker goes
    write_records(records, [model_record(4, t3, Downloads=4), *killed, model_record(2, t1, Downloads=2)])
    marker.unlink()
    export_sqlite(data, inc)
    fresh.unlink()
    export_sqlite(data, fresh)
    assert normalised(inc) == normalised(fresh)
    assert query(inc, "SELECT model_id, downloads FROM model ORDER BY 1") == [(1, 10), (2, 2), (3, 30), (4, 4)]
    assert query(inc, "SELECT name FROM tag") == [("new",)]


def test_a_killed_crawls_snapshot_is_counted_once(tmp_path):
    """A killed crawl's snapshot (``.pending``) is read twice by one export, for the model table and
    for the observations: its file, its lines and each line left out count once, so the figures the
    command prints (``N skipped``) are the tree's, not twice a snapshot's."""
    t1, t2 = "2025-01-01T00:00:00Z", "2025-02-01T00:00:00Z"
    data = tmp_path / "data"
    hub = data / "huggingface"
    (hub / "snapshots").mkdir(parents=True)
    write_records(hub / "huggingface.jsonl", [model_record(1, t1)])
    snapshot = hub / "snapshots" / "huggingface-20250201T000000Z-7-abc123.jsonl"
    torn = json.dumps(model_record(4, t2)) + "\n"
    snapshot.write_text(json.dumps(model_record(2, t2)) + "\nnot json\n" + json.dumps({"no": "id"}) + "\n"
                        + json.dumps(model_record(3, t2)) + "\n" + torn[:15])
    snapshot.with_name(snapshot.name + ".pending").touch()
    db = tmp_path / "d.sqlite"
    counts = export_sqlite(data, db)
    assert (counts["files_read"], counts["lines"], counts["bad_lines"], counts["skipped"]) == (2, 4, 1, 1)
    assert query(db, "SELECT model_id FROM model ORDER BY 1") == [(1,), (2,), (3,)]
    assert query(db, "SELECT count(*) FROM observation") == [(2,)]
    with open(snapshot, "a") as f:  # the torn line completed: a resumed run of the crawl went on
        f.write(torn[15:] + "not json either\n")
    counts = export_sqlite(data, db)
    assert (counts["files_read"], counts["files_unchanged"], counts["lines"], counts["bad_lines"]) == (1, 1, 1, 1)
    assert query(db, "SELECT count(*) FROM observation") == [(3,)]
    out = scrapy("export", "-s", f"PTM_DATA_DIR={data}", "-o", str(tmp_path / "c.sqlite"))
    assert out.stdout == f"{tmp_path / 'c.sqlite'}: 2 file(s) read, 0 unchanged, 5 lines, 3 skipped\n"
    out = scrapy("export", "-s", f"PTM_DATA_DIR={data}", "-o", str(tmp_path / "c.sqlite"))
    assert out.stdout == f"{tmp_path / 'c.sqlite'}: 0 file(s) read, 2 unchanged, 0 lines, 0 skipped\n"


def test_a_base_model_name_two_models_share_is_one_edge_to_the_one_crawled_last(tmp_path):
    """Two models of one hub with one owner/name (a Civitai creator's two models of one name, a
    Hugging Face model deleted and made again): a model naming it as its base is one edge, to the
    one crawled last, not one edge to each (which doubled the report's lineage figures). A database
    of the schema before (its view gave both edges) gets the view made again."""
    t1, t2 = "2025-01-01T00:00:00Z", "2025-02-01T00:00:00Z"
    data = tmp_path / "data"
    (data / "huggingface").mkdir(parents=True)
    write_records(data / "huggingface" / "huggingface.jsonl", [
        model_record(7, t2, ModelName="base"), model_record(1, t1, ModelName="base"),
        model_record(3, t2, BaseModels=["o/base", "o/elsewhere"]), model_record(4, t2, BaseModels=["o/m3"])])
    db = tmp_path / "db.sqlite"
    export_sqlite(data, db)
    assert query(db, "SELECT model_id, base_model_id FROM lineage ORDER BY 1") == [(3, 7), (4, 3)]

    con = sqlite3.connect(db)  # as version 3 made it
    con.executescript("""DROP VIEW lineage;
        CREATE VIEW lineage AS SELECT b.model_id AS model_id, base.model_id AS base_model_id
        FROM model_base AS b JOIN model AS m ON m.model_id = b.model_id
        JOIN model AS base ON base.hub = m.hub AND base.full_name = b.base_model;
        PRAGMA user_version = 3;""")
    con.close()
    assert len(query(db, "SELECT * FROM lineage")) == 3
    export_sqlite(data, db)
    assert query(db, "SELECT model_id, base_model_id FROM lineage ORDER BY 1") == [(3, 7), (4, 3)]
    assert query(db, "PRAGMA user_version") == [(SCHEMA_VERSION,)]


def test_values_no_model_uses_any_more_leave_the_lookup_tables(tree, tmp_path):
    """After a re-crawl changed every model's values, the database updated incrementally holds
    what a fresh export of the same tree holds, and the report counts the papers models name."""
    from ptmscrape.export.report import write_report

    data = tmp_path / "data"
    (data / "huggingface").mkdir(parents=True)
    path = data / "huggingface" / "huggingface.jsonl"
    records = read_jsonl(tree / "data" / "huggingface" / "huggingface.jsonl")[:3]

    def values(n: str, tags: list[str]) -> dict:
        return {"Tags": tags, "License": f"lic-{n}", "Library": f"lib-{n}", "Languages": [f"l{n}"],
                "ModelPaperDOIs": [f"10.1/{n}"], "Datasets": [{"DatasetOwner": "o", "DatasetName": f"d{n}",
                                                                "DatasetURL": f"u{n}", "DatasetOwnerURL": "ou"}]}

    path.write_text("".join(json.dumps({**r, **values("old", ["kept", f"old{i}"])}) + "\n"
                            for i, r in enumerate(records)))
    inc = tmp_path / "inc.sqlite"
    export_sqlite(data, inc)
    assert query(inc, "SELECT count(*) FROM tag") == [(4,)]
    path.write_text(json.dumps({**records[0], **values("new", ["kept"])}) + "\n"
                    + "".join(json.dumps({**r, **values("old", ["kept"])}) + "\n" for r in records[1:]))
    export_sqlite(data, inc)
    fresh = tmp_path / "fresh.sqlite"
    export_sqlite(data, fresh)
    assert normalised(inc) == normalised(fresh)
    assert normalised(inc)["tag"] == [("kept",)]
    assert normalised(inc)["paper"] == [("10.1/new",), ("10.1/old",)]
    con = sqlite3.connect(inc)  # a paper and a dataset no model names (as an older export left them)
    con.execute("INSERT INTO paper (doi) VALUES ('10.1/orphan')")
    con.execute("INSERT INTO dataset (owner, name, url, owner_url) VALUES ('o', 'x', 'x', 'x')")
    con.commit()
    con.close()
    page = write_report(inc, tmp_path / "r.html").read_text()
    assert "2 distinct papers, 2 distinct datasets" in page


def test_schema_file_is_current_and_other_versions_are_refused(tmp_path):
    assert (ROOT / "ptmscrape" / "export" / "schema.sql").read_text() == schema_sql()
    con = sqlite3.connect(":memory:")
    con.executescript(schema_sql())  # the published file is valid SQL on its own
    old = tmp_path / "old.sqlite"
    sqlite3.connect(old).execute(f"PRAGMA user_version = {SCHEMA_VERSION + 1}").connection.close()
    with pytest.raises(ExportError, match="schema version"):
        export_sqlite(tmp_path, old)
    one_record_tree(tmp_path / "data")
    proc = scrapy("export", "-s", f"PTM_DATA_DIR={tmp_path / 'data'}", "-o", str(old), check=False)
    assert proc.returncode == 1 and "schema version" in proc.stderr
    (tmp_path / "notes.txt").write_text("not a database\n" * 100)
    proc = scrapy("export", "-s", f"PTM_DATA_DIR={tmp_path / 'data'}", "-o", str(tmp_path / "notes.txt"), check=False)
    assert proc.returncode == 1 and "is not an SQLite database" in proc.stderr and "Traceback" not in proc.stderr
    assert (tmp_path / "notes.txt").read_text() == "not a database\n" * 100  # left alone


def test_a_deeply_nested_line_with_a_lone_surrogate_is_stored_and_a_deeper_one_skipped(tmp_path):
    """Replacing lone surrogates must not recurse (a hub object 500 deep is valid and stored by the
    crawl; it stopped every export with RecursionError), and a line nested deeper than json.loads
    reads is a bad line, not the end of the export."""
    history = tmp_path / "data" / "huggingface" / "history"
    history.mkdir(parents=True)
    deep = json.loads("".join(['{"a":'] * 500) + '"x"' + "}" * 500)
    line = {"model": 1, "model_id": "a/b", "crawled_at": "2024-01-01T00:00:00Z",
            "raw": {"id": "c" * 40, "title": "C:\\ud800 dir \ud800", "deep": deep}}
    deeper = b'{"model": 3, "raw": ' + b"[" * 100_000 + b"]" * 100_000 + b"}"
    ok = {"model": 2, "model_id": "a/c", "crawled_at": "2024-01-01T00:00:00Z", "raw": {"id": "d" * 40, "title": "t"}}
    (history / "commits.jsonl").write_bytes(json.dumps(line).encode() + b"\n" + deeper + b"\n"
                                           + json.dumps(ok).encode() + b"\n")
    counts = export_sqlite(tmp_path / "data", tmp_path / "d.sqlite")
    assert (counts["lines"], counts["bad_lines"]) == (2, 1)
    assert sorted(query(tmp_path / "d.sqlite", 'SELECT commit_id, title FROM "commit"')) == [
        ("c" * 40, "C:\\ud800 dir \ufffd"), ("d" * 40, "t")]


def test_values_sqlite_cannot_hold_are_made_storable(tree, tmp_path):
    """Lone surrogates (valid JSON, not UTF-8: escaped, or raw bytes json.loads lets through)
    become U+FFFD, integers beyond 64 bits NULL; SQLite, Parquet, the report and the command go on."""
    from ptmscrape.export.parquet import export_parquet
    from ptmscrape.export.report import write_report

    data = tmp_path / "data"
    (data / "huggingface" / "snapshots").mkdir(parents=True)
    record = read_jsonl(tree / "data" / "huggingface" / "huggingface.jsonl")[0]
    odd = {**record, "ModelTask": "p\udfffq", "License": "lic\ud83dz", "Tags": ["lone\ud800x", "ok"],
           "Downloads": 10**30, "Likes": -(2**63) - 1, "ParameterCount": 2**63 - 1}
    raw = json.dumps({**record, "id": record["id"] + 1, "ModelName": "RAW"}).encode().replace(
        b'"RAW"', b'"raw\xed\xa0\x80"')
    lines = json.dumps(odd).encode() + b"\n" + raw + b"\n"
    (data / "huggingface" / "huggingface.jsonl").write_bytes(lines)
    (data / "huggingface" / "snapshots" / "huggingface-20250101T000000Z-1.jsonl").write_bytes(lines)
    target = tmp_path / "d.sqlite"
    counts = export_sqlite(data, target)
    assert (counts["lines"], counts["bad_lines"], counts["skipped"]) == (4, 0, 0)
    assert query(target, "SELECT name, task, license, downloads, likes, parameter_count FROM model ORDER BY 1") == [
        (record["ModelName"], "p\ufffdq", "lic\ufffdz", None, None, 2**63 - 1),
        ("raw\ufffd", record.get("ModelTask"), record.get("License"), record.get("Downloads"),
         record.get("Likes"), record.get("ParameterCount"))]
    assert ("lone\ufffdx",) in query(target, "SELECT name FROM tag")
    assert query(target, "SELECT downloads, likes FROM observation WHERE model_id = ?", record["id"]) == [(None, None)]
    assert export_parquet(target, tmp_path / "pq")["model"] == 2
    assert "<h2>Top licenses</h2>" in write_report(target, tmp_path / "r.html").read_text()
    out = scrapy("export", "-s", f"PTM_DATA_DIR={data}", "-o", str(tmp_path / "c.sqlite"))
    assert "2 file(s) read, 0 unchanged, 4 lines, 0 skipped" in out.stdout


def usage_error(*args: str) -> str:
    """The command's error: exit status 2, one line on stderr, no usage block, nothing on stdout."""
    proc = scrapy(*args, check=False)
    assert proc.returncode == 2, proc.stdout + proc.stderr
    assert proc.stderr.count("\n") == 1 and not proc.stdout, proc.stderr
    return proc.stderr.strip()


def test_bad_usage_is_one_line_and_exit_status_2(tmp_path):
    missing = tmp_path / "nonexistent"
    for command in ("export", "report"):
        assert usage_error(command, "-s", f"PTM_DATA_DIR={missing}", "-o", str(tmp_path / "x")) == (
            f"scrapy {command}: error: no dataset tree at {missing} (PTM_DATA_DIR)")
    assert usage_error("export", "-s", f"PTM_DATA_DIR={tmp_path}", "-o", str(tmp_path / "x"), "extra") == (
        "scrapy export: error: unexpected arguments: extra")
    assert not list(tmp_path.iterdir())


def one_record_tree(data: Path) -> Path:
    """A dataset tree holding one model record: an empty one is refused before any database is opened."""
    (data / "huggingface").mkdir(parents=True)
    write_records(data / "huggingface" / "huggingface.jsonl", [model_record(1, "2025-01-01T00:00:00Z")])
    return data


def test_a_tree_with_nothing_to_export_is_one_line_and_exit_status_2(tmp_path):
    """An empty data dir, or hub folders holding no records (a crawl that stored nothing), was
    exported as an empty database (exit status 0, "0 file(s) read"): a script could not tell a
    mistyped PTM_DATA_DIR from a dataset. Now the dir and what it lacks are named, nothing written."""
    data = tmp_path / "data"
    data.mkdir()
    out = tmp_path / "out"
    out.mkdir()
    missing = "no records (<hub>/<hub>.jsonl or <hub>/snapshots/) nor history files: crawl into it first"
    for command, args in (("export", ("-o", f"{out}/d.sqlite")), ("export", ("--format", "parquet", "-o", f"{out}/pq")),
                          ("report", ("-o", f"{out}/r.html"))):
        assert usage_error(command, "-s", f"PTM_DATA_DIR={data}", *args) == (
            f"scrapy {command}: error: nothing to export in {data} (PTM_DATA_DIR): {missing}")
    (data / "huggingface" / "repos").mkdir(parents=True)  # a hub folder, but no records in it
    (data / "civitai" / "snapshots").mkdir(parents=True)  # what a crawl that stored nothing leaves
    (data / "civitai" / "civitai.jsonl").write_text("")
    (data / "civitai" / "snapshots" / "civitai-20250101T000000Z-1-abcdef.jsonl").write_text("")
    assert usage_error("export", "-s", f"PTM_DATA_DIR={data}", "-o", f"{out}/d.sqlite") == (
        f"scrapy export: error: nothing to export in {data} (PTM_DATA_DIR): {missing} "
        "(hub folders without records: civitai, huggingface)")
    afile = tmp_path / "afile"
    afile.write_text("")
    assert usage_error("report", "-s", f"PTM_DATA_DIR={afile}", "-o", f"{out}/r.html") == (
        f"scrapy report: error: no dataset tree at {afile} (PTM_DATA_DIR): it is a file")
    standalone = subprocess.run([sys.executable, "-m", "ptmscrape.export.sqlite", str(data), f"{out}/d.sqlite"],
                                cwd=ROOT, capture_output=True, text=True, timeout=120)
    assert standalone.returncode == 2 and f"nothing to export in {data}: {missing}" in standalone.stderr
    assert not list(out.iterdir())


def test_output_paths_are_checked_before_anything_is_written(tmp_path):
    data = tmp_path / "data"
    data.mkdir()
    (tmp_path / "file").write_text("kept\n")
    (tmp_path / "folder").mkdir()
    missing = tmp_path / "nonexistent" / "dir"
    tree = "-s", f"PTM_DATA_DIR={data}"
    for command, args, error in [
        ("export", ("--format", "parquet", "-o", f"{tmp_path}/file"), f"-o {tmp_path}/file is not a directory"),
        ("export", ("--format", "parquet", "-o", f"{tmp_path}/file/pq"),
         f"-o {tmp_path}/file/pq cannot be created: {tmp_path}/file is not a directory"),
        ("export", ("--format", "parquet", "-o", f"{tmp_path}/pq", "--sqlite", f"{missing}/d.sqlite"),
         f"--sqlite {missing}/d.sqlite: there is no directory {missing}"),
        ("export", ("-o", f"{tmp_path}/folder"), f"-o {tmp_path}/folder is a directory: give a file"),
        ("export", ("-o", f"{missing}/d.sqlite"), f"-o {missing}/d.sqlite: there is no directory {missing}"),
        ("report", ("-o", f"{tmp_path}/folder"), f"-o {tmp_path}/folder is a directory: give a file"),
        ("report", ("-o", f"{missing}/r.html"), f"-o {missing}/r.html: there is no directory {missing}"),
        ("report", ("-o", f"{tmp_path}/r.html", "--sqlite", f"{tmp_path}/folder"),
         f"--sqlite {tmp_path}/folder is a directory: give a file"),
    ]:
        assert usage_error(command, *tree, *args) == f"scrapy {command}: error: {error}"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["data", "file", "folder"]  # nothing written
    assert (tmp_path / "file").read_text() == "kept\n" and not list((tmp_path / "folder").iterdir())


def test_parquet_options_without_format_parquet_are_refused(tmp_path):
    """``scrapy export -o parquet/ --sqlite dataset.sqlite`` (``--format parquet`` forgotten) wrote
    an SQLite file named ``parquet``, left dataset.sqlite as it was and exited 0: the analyst had
    neither the Parquet files nor the updated database. ``--sqlite`` without ``--format parquet``,
    and a file path ending in a slash, are usage errors."""
    data = one_record_tree(tmp_path / "data")
    tree = "-s", f"PTM_DATA_DIR={data}"
    assert usage_error("export", *tree, "-o", f"{tmp_path}/pq/", "--sqlite", f"{tmp_path}/d.sqlite") == (
        "scrapy export: error: --sqlite goes with --format parquet (without it, -o is the SQLite database)")
    assert usage_error("export", *tree, "-o", f"{tmp_path}/pq/") == (
        f"scrapy export: error: -o {tmp_path}/pq/ names a folder: give a file (--format parquet for Parquet files)")
    assert usage_error("report", *tree, "-o", f"{tmp_path}/r/") == (
        f"scrapy report: error: -o {tmp_path}/r/ names a folder: give a file")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["data"]  # nothing written
    scrapy("export", *tree, "--format", "parquet", "-o", f"{tmp_path}/pq/", "--sqlite", f"{tmp_path}/d.sqlite")
    assert (tmp_path / "pq" / "model.parquet").is_file() and (tmp_path / "d.sqlite").is_file()


def test_a_report_never_replaces_a_database(tmp_path):
    """``scrapy report -o dataset.sqlite`` (the export's command with its verb changed) replaced
    the exported database with the HTML page, as did ``-o`` and ``--sqlite`` naming one file."""
    data = tmp_path / "data"
    (data / "huggingface").mkdir(parents=True)
    write_records(data / "huggingface" / "huggingface.jsonl", [model_record(1, "2025-01-01T00:00:00Z")])
    db = tmp_path / "dataset.sqlite"
    export_sqlite(data, db)
    before = db.read_bytes()
    tree = "-s", f"PTM_DATA_DIR={data}"
    assert usage_error("report", *tree, "-o", str(db)) == (
        f"scrapy report: error: -o {db} is an SQLite database: give the report another file "
        "(--sqlite names the database to summarise)")
    assert usage_error("report", *tree, "-o", str(db), "--sqlite", str(db)) == (
        f"scrapy report: error: -o {db} is an SQLite database: give the report another file "
        "(--sqlite names the database to summarise)")
    new = tmp_path / "new.sqlite"
    assert usage_error("report", *tree, "-o", str(new), "--sqlite", f"{tmp_path}/./new.sqlite") == (
        f"scrapy report: error: -o {new} and --sqlite {tmp_path}/./new.sqlite are one file: give the report another")
    assert db.read_bytes() == before and not new.exists()
    scrapy("report", *tree, "-o", str(tmp_path / "r.html"), "--sqlite", str(db))
    assert (tmp_path / "r.html").read_text().startswith("<!DOCTYPE html>")


def test_a_report_that_cannot_be_written_leaves_no_temporary_file(tmp_path):
    from ptmscrape.export.report import write_report

    export_sqlite(tmp_path, tmp_path / "d.sqlite")
    (tmp_path / "r.html").mkdir()
    with pytest.raises(IsADirectoryError):
        write_report(tmp_path / "d.sqlite", tmp_path / "r.html")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["d.sqlite", "r.html"]


def test_another_programs_database_and_a_locked_one_are_one_line_errors(tmp_path, monkeypatch):
    from ptmscrape.export import sqlite as export_module
    from ptmscrape.export.parquet import export_parquet
    from ptmscrape.export.report import write_report

    one_record_tree(tmp_path / "data")
    other = tmp_path / "other.db"
    con = sqlite3.connect(other)
    con.execute("CREATE TABLE model (x)")
    con.commit()
    con.close()
    before = other.read_bytes()
    proc = scrapy("export", "-s", f"PTM_DATA_DIR={tmp_path / 'data'}", "-o", str(other), check=False)
    assert proc.returncode == 1 and "Traceback" not in proc.stderr and not proc.stdout
    assert proc.stderr == f"export failed: {other} is an SQLite database of something else (its tables are not " \
                          "an export's): export into a new file\n"
    con = sqlite3.connect(other)
    con.execute("PRAGMA user_version = 2")  # a version of its own, still no export's tables
    con.close()
    with pytest.raises(ExportError, match="of something else"):
        export_sqlite(tmp_path / "data", other)
    assert other.read_bytes()[100:] == before[100:]  # left alone (past the header's user_version)

    db = tmp_path / "d.sqlite"
    export_sqlite(tmp_path / "data", db)
    monkeypatch.setattr(export_module, "BUSY_TIMEOUT", 0.05)
    writer = sqlite3.connect(db, isolation_level=None)
    writer.execute("BEGIN EXCLUSIVE")  # another export writing (and committing) it
    try:
        with pytest.raises(ExportError, match=f"^{re.escape(str(db))}: database is locked$"):
            export_sqlite(tmp_path / "data", db)
        with pytest.raises(ExportError, match=f"^{re.escape(str(db))}: database is locked$"):
            write_report(db, tmp_path / "r.html")
        with pytest.raises(ExportError, match=f"^{re.escape(str(db))}: database is locked$"):
            export_parquet(db, tmp_path / "pq")
    finally:
        writer.execute("ROLLBACK")
        writer.close()
    assert not (tmp_path / "r.html").exists()


# A plug-in source, registered the way a module in SOURCE_MODULES would be (see registry.py).
SOURCES = [jsonl_table(
    "hf_commit",
    "CREATE TABLE IF NOT EXISTS hf_commit (model_id INTEGER NOT NULL, sha TEXT NOT NULL, title TEXT, "
    "PRIMARY KEY (model_id, sha)) WITHOUT ROWID;",
    files=lambda data: sorted(data.glob("huggingface/plugin/commits*.jsonl")),
    rows=lambda r: [(r["model_id"], r["sha"], r.get("title"))],
)]


def test_a_plugged_in_table_is_exported_incrementally(tmp_path, monkeypatch):
    monkeypatch.setattr(registry, "SOURCE_MODULES", (*registry.SOURCE_MODULES, __name__))
    history = tmp_path / "data" / "huggingface" / "plugin" / "commits.jsonl"
    history.parent.mkdir(parents=True)
    history.write_text("".join(json.dumps({"model_id": 1, "sha": f"{i:040x}", "title": f"c{i}"}) + "\n"
                               for i in range(3)))
    target = tmp_path / "d.sqlite"
    assert export_sqlite(tmp_path / "data", target)["lines"] == 3
    before = target.read_bytes()
    assert export_sqlite(tmp_path / "data", target)["files_read"] == 0
    assert target.read_bytes() == before
    assert query(target, "SELECT count(*) FROM hf_commit") == [(3,)]
    assert "hf_commit" in exported_tables()
    from ptmscrape.export.parquet import export_parquet
    assert export_parquet(target, tmp_path / "pq")["hf_commit"] == 3


def test_a_line_that_cannot_be_stored_is_skipped_and_named(tmp_path, monkeypatch, caplog):
    """A source's row SQLite refuses (an integer beyond 64 bits, NULL in a NOT NULL column): the
    file is loaded again line by line, that line skipped and counted, the rest and later lines kept."""
    monkeypatch.setattr(registry, "SOURCE_MODULES", (*registry.SOURCE_MODULES, __name__))
    history = tmp_path / "data" / "huggingface" / "plugin" / "commits.jsonl"
    history.parent.mkdir(parents=True)
    history.write_text(json.dumps({"model_id": 1, "sha": "a"}) + "\nnot json\n"
                       + json.dumps({"model_id": 10**30, "sha": "b"}) + "\n")
    target = tmp_path / "d.sqlite"
    assert export_sqlite(tmp_path / "data", target)["skipped"] == 1
    with open(history, "a") as f:
        f.write(json.dumps({"model_id": 2, "sha": None}) + "\n" + json.dumps({"model_id": 3, "sha": "d"}) + "\n")
    counts = export_sqlite(tmp_path / "data", target)
    assert (counts["lines"], counts["skipped"]) == (2, 1)
    assert query(target, "SELECT model_id, sha FROM hf_commit ORDER BY 1") == [(1, "a"), (3, "d")]
    skips = [r.getMessage() for r in caplog.records if r.getMessage().startswith("Skipped a line")]
    assert skips == [
        "Skipped a line of huggingface/plugin/commits.jsonl: line 3 cannot be stored "
        "(Python int too large to convert to SQLite INTEGER)",
        "Skipped a line of huggingface/plugin/commits.jsonl: line 4 cannot be stored "
        "(NOT NULL constraint failed: hf_commit.sha)"]


def test_parquet_files_round_trip(tree, db):
    import pandas as pd
    import pyarrow.parquet as pq

    out = tree / "parquet"
    scrapy("export", "--format", "parquet", "-s", f"PTM_DATA_DIR={tree / 'data'}", "-o", str(out),
           "--sqlite", str(tree / "pq.sqlite"))
    assert sorted(p.stem for p in out.glob("*.parquet")) == sorted(exported_tables())
    assert not list(out.glob(".*"))  # no temporary file left
    for table in exported_tables():
        count = query(db, f'SELECT count(*) FROM "{table}"')[0][0]
        assert pq.read_table(out / f"{table}.parquet").num_rows == count, table
    model = pd.read_parquet(out / "model.parquet")
    assert str(model["model_id"].dtype) == "int64"
    assert dict(model.groupby("hub").size()) == dict(query(db, "SELECT hub, count(*) FROM model GROUP BY hub"))
    by_id = model.set_index("model_id")
    for model_id, downloads, sha in query(db, "SELECT model_id, downloads, sha FROM model"):
        got = by_id.loc[model_id]
        assert (None if pd.isna(got["downloads"]) else int(got["downloads"])) == downloads
        assert (None if pd.isna(got["sha"]) else got["sha"]) == sha
    # without --sqlite: a temporary database, removed afterwards
    scrapy("export", "--format", "parquet", "-s", f"PTM_DATA_DIR={tree / 'data'}", "-o", str(tree / "pq2"))
    assert sorted(p.name for p in (tree / "pq2").iterdir()) == sorted(f"{t}.parquet" for t in exported_tables())
    assert pq.read_table(tree / "pq2" / "observation.parquet").num_rows == pq.read_table(
        out / "observation.parquet").num_rows


# --- the README's snippets -------------------------------------------------------------------------


def readme_blocks(language: str) -> list[str]:
    text = (ROOT / "docs/analyse.md").read_text()  # the README's "Analyse the dataset", moved to docs/
    assert text.startswith("# Analyse the dataset\n")
    return re.findall(rf"```{language}\n(.*?)```", text, re.DOTALL)


@pytest.fixture(scope="module")
def analysed(tree, db):
    """A folder as the README's snippets expect it: dataset.sqlite and parquet/."""
    folder = tree / "analyse"
    folder.mkdir()
    shutil.copy(db, folder / "dataset.sqlite")
    scrapy("export", "--format", "parquet", "-s", f"PTM_DATA_DIR={tree / 'data'}", "-o", str(folder / "parquet"))
    return folder


def expected_answers(tree):
    records = latest(tree)
    licenses = Counter((hub_of(r), r["License"]) for r in records if r.get("License"))
    papers = sorted((hub_of(r), full_name(r), doi) for r in records for doi in r["ModelPaperDOIs"])
    downloads = [(r["CrawledAt"], r["Downloads"]) for p in snapshots(tree, "huggingface")
                 for r in read_jsonl(p) if full_name(r) == POPULAR]
    return licenses, papers, downloads


def test_readme_sql_snippet_answers_the_three_questions(tree, analysed):
    (sql,) = readme_blocks("sql")
    statements = [s for s in sql.split(";") if s.strip()]
    assert len(statements) == 3
    con = sqlite3.connect(analysed / "dataset.sqlite")
    licenses, papers, downloads = (con.execute(s).fetchall() for s in statements)
    want_licenses, want_papers, want_downloads = expected_answers(tree)
    assert {(h, lic): n for h, lic, n in licenses} == want_licenses
    assert [(h, lic) for h, lic, _ in licenses] == sorted(want_licenses, key=lambda k: (k[0], -want_licenses[k], k[1]))
    assert licenses and papers == want_papers and len(papers) > 10
    assert downloads == want_downloads and len(downloads) == 2


def run_python(code: str, cwd: Path) -> str:
    proc = subprocess.run([sys.executable, "-c", code], cwd=cwd, capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stderr
    return proc.stdout


def test_readme_pandas_and_duckdb_snippets_run(tree, analysed):
    want_licenses, want_papers, want_downloads = expected_answers(tree)
    blocks = [b for b in readme_blocks("python")]
    pandas_snippet = next(b for b in blocks if "pandas" in b)
    duckdb_snippet = next(b for b in blocks if "duckdb" in b)
    for snippet in (pandas_snippet, duckdb_snippet):
        out = run_python(snippet, analysed)
        for (_, lic), n in want_licenses.items():
            assert re.search(rf"{re.escape(lic)}\s*[│|]?\s*{n}\b", out), (lic, n, out)
        doi = want_papers[0][2]
        assert doi in out
        for crawled_at, count in want_downloads:
            assert crawled_at[:10] in out and (str(count) in out or f"{count:,}" in out), out


# --- the report -------------------------------------------------------------------------------------


def test_readme_time_series_snippets_keep_to_one_hub(tmp_path):
    """ModelScope models carry Hugging Face's owner/name (``Qwen/…``): a model of that name on
    both hubs is two models, and each snippet's "downloads over time" is the Hugging Face one's."""
    from ptmscrape.export.parquet import export_parquet

    data = tmp_path / "data"
    for hub, model_id, downloads in (("huggingface", 1, [111111, 222222]), ("modelscope", 2, [999999])):
        (data / hub / "snapshots").mkdir(parents=True)
        records = [model_record(model_id, f"2025-0{i + 1}-01T00:00:00Z", ModelHub={"ModelHubName": hub},
                                ModelOwner=POPULAR.split("/")[0], ModelName=POPULAR.split("/")[1], Downloads=n)
                   for i, n in enumerate(downloads)]
        for i, record in enumerate(records):
            write_records(data / hub / "snapshots" / f"{hub}-2025010{i + 1}T000000Z-1-abc123.jsonl", [record])
        write_records(data / hub / f"{hub}.jsonl", records[-1:])
    export_sqlite(data, tmp_path / "dataset.sqlite")
    export_parquet(tmp_path / "dataset.sqlite", tmp_path / "parquet")
    con = sqlite3.connect(tmp_path / "dataset.sqlite")
    (sql,) = readme_blocks("sql")
    assert [r[1] for r in con.execute([s for s in sql.split(";") if s.strip()][2])] == [111111, 222222]
    con.close()
    for snippet in readme_blocks("python"):
        out = run_python(snippet, tmp_path)
        assert "222222" in out and "999999" not in out, out


def test_report_is_self_contained_and_renders_in_splash(tree):
    report = tree / "report" / "report.html"
    report.parent.mkdir()
    scrapy("report", "-s", f"PTM_DATA_DIR={tree / 'data'}", "-o", str(report))
    assert sorted(p.name for p in report.parent.iterdir()) == ["report.html"]  # the temp database is gone
    page = report.read_text()
    assert "<title>ptmscrape dataset report</title>" in page
    images = re.findall(r'<img alt="([^"]+)" src="([^"]+)"', page)
    assert len(images) >= 9 and all(src.startswith("data:image/png;base64,") for _, src in images)
    assert not re.search(r'(src|href)="(https?:)?//', page)  # nothing fetched from elsewhere
    for heading in ("Models per hub", "Growth across snapshots", "Top licenses", "Top tasks", "Top libraries",
                    "Top architectures", "Downloads distribution", "Clone status", "Papers and datasets",
                    "Lineage"):
        assert f"<h2>{heading}</h2>" in page

    splash = require_service("Splash", SPLASH_URL, start_hint="bash .ci/splash.sh")
    handler = partial(SimpleHTTPRequestHandler, directory=str(report.parent))
    server = ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        url = f"http://127.0.0.1:{server.server_address[1]}/report.html"
        params = urlencode({"url": url, "png": 1, "html": 0, "width": 1000, "render_all": 1, "wait": 0.5})
        with urlopen(f"{splash}/render.json?{params}", timeout=120) as resp:
            rendered = json.load(resp)
    finally:
        server.shutdown()
        server.server_close()
    assert rendered["title"] == "ptmscrape dataset report"
    import base64

    from PIL import Image

    image = Image.open(io.BytesIO(base64.b64decode(rendered["png"]))).convert("RGB")
    assert image.width == 1000 and image.height > 2000  # every section laid out
    colours = image.getcolors(maxcolors=1 << 20)
    assert colours is not None and len(colours) > 50  # text, bars, axes: not a blank page
    blue = sum(n for n, (r, g, b) in colours if b > 150 and r < 100)
    assert blue > 5000  # the bars of the plots were drawn (decoded PNGs, not broken images)


def test_counts_summing_past_64_bits_are_reported(tmp_path):
    """A hub's counts may each be up to 2**63 - 1 (``mappers.common.count``): their sum per hub,
    past SQLite's integers, stopped the whole report (``report failed: …: integer overflow``)."""
    from ptmscrape.export.report import write_report

    data = tmp_path / "data"
    (data / "civitai").mkdir(parents=True)
    big, biggest = 2**62 + 5, 2**63 - 1
    write_records(data / "civitai" / "civitai.jsonl", [
        model_record(n, "2025-01-01T00:00:00Z", ModelHub={"ModelHubName": "civitai"}, Downloads=big, Likes=biggest)
        for n in (1, 2, 3)] + [model_record(4, "2025-01-01T00:00:00Z", ModelHub={"ModelHubName": "civitai"})])
    (data / "modelzoo").mkdir()
    write_records(data / "modelzoo" / "modelzoo.jsonl", [
        model_record(5, "2025-01-01T00:00:00Z", ModelHub={"ModelHubName": "modelzoo"}, Likes=-3)])
    export_sqlite(data, tmp_path / "d.sqlite")
    page = write_report(tmp_path / "d.sqlite", tmp_path / "r.html").read_text()
    assert f"<td>civitai</td><td>4</td><td>{3 * big:,}</td><td>{3 * biggest:,}</td>" in page
    assert "<td>modelzoo</td><td>1</td><td>—</td><td>-3</td>" in page  # no downloads: none summed


def test_the_growth_plot_has_every_hubs_crawls_on_one_time_axis(tmp_path, monkeypatch):
    """The x axis of "Models per crawl snapshot" was one category per minute, in the order the hubs
    were drawn: a hub crawled in between another's crawls came after all of them, and two crawls
    of one minute were one point. It is time now."""
    from ptmscrape.export import report

    data = tmp_path / "data"
    for hub, stamps in (("huggingface", ["2025-01-01T00:00:10Z", "2025-01-01T00:00:40Z", "2025-01-15T00:00:00Z"]),
                        ("modelzoo", ["2025-01-08T00:00:00Z"])):
        (data / hub / "snapshots").mkdir(parents=True)
        for i, stamp in enumerate(stamps):
            write_records(data / hub / "snapshots" / f"{hub}-{i}.jsonl",  # i + 1 models
                          [model_record(n, stamp, ModelHub={"ModelHubName": hub}) for n in range(10 * i, 11 * i + 1)])
    export_sqlite(data, tmp_path / "d.sqlite")
    plotted: dict[str, dict[str, list]] = {}
    png = report._png

    def capture(fig):
        ax = fig.axes[0]
        plotted[ax.get_title()] = {line.get_label(): line.get_xydata().tolist() for line in ax.lines}
        return png(fig)

    monkeypatch.setattr(report, "_png", capture)
    report.write_report(tmp_path / "d.sqlite", tmp_path / "r.html")
    lines = plotted["Models per crawl snapshot"]
    (hf1, hf2, hf3), ((mz, _),) = [x for x, _ in lines["huggingface"]], lines["modelzoo"]
    assert hf1 < hf2 < mz < hf3
    assert [n for _, n in lines["huggingface"]] == [1, 2, 3]


def test_hostile_values_are_escaped_in_the_report_and_links_out_of_the_tree_are_skipped(tree, tmp_path):
    from ptmscrape.export.report import write_report

    data = tmp_path / "data"
    (data / "huggingface").mkdir(parents=True)
    record = read_jsonl(tree / "data" / "huggingface" / "huggingface.jsonl")[0]
    hostile = "<script>alert(1)</script> $\\frac{$"  # HTML, and malformed mathtext for matplotlib
    (data / "huggingface" / "huggingface.jsonl").write_text(json.dumps(
        {**record, "License": hostile, "ModelTask": hostile, "BaseModels": [hostile], "Tags": [hostile]}) + "\n")
    outside = tmp_path / "elsewhere" / "modelzoo"
    outside.mkdir(parents=True)
    (outside / "modelzoo.jsonl").write_text(json.dumps({**record, "id": 2}) + "\n")
    (data / "modelzoo").symlink_to(outside)
    target = tmp_path / "d.sqlite"
    counts = export_sqlite(data, target)
    assert counts["files_outside"] == 1 and query(target, "SELECT count(*) FROM model") == [(1,)]
    page = write_report(target, tmp_path / "r.html").read_text()
    assert "<script>" not in page and "&lt;script&gt;alert(1)&lt;/script&gt; $\\frac{$" in page
