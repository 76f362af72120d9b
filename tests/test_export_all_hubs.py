"""``scrapy export`` and ``scrapy report`` on one tree holding the records of every hub: each
replica of the offline demo (tests/replicas/demo.py) crawled for real with ``PTM_CLONE=0``
(Hugging Face with its history too). Every hub's records (their own extension keys, ``skipped:
<reason>`` clone statuses, null fields) must export without a skipped line, the counts per hub
must equal the JSON Lines, and the report must show every hub."""

from __future__ import annotations

import re
import sqlite3
import subprocess
import sys
from collections import Counter
from pathlib import Path

import pytest

from ptmscrape.export.parquet import export_parquet
from ptmscrape.export.sqlite import export_sqlite, exported_tables
from tests.crawl import ROOT, read_jsonl, run_crawl
from tests.replicas.demo import REPLICAS, available
from tests.replicas.huggingface_history import HubHistory


@pytest.fixture(scope="module")
def tree(tmp_path_factory) -> Path:
    work = tmp_path_factory.mktemp("allhubs")
    starters = available()
    assert sorted(starters) == sorted(REPLICAS) and len(starters) == 10
    for hub, start in starters.items():
        replica, settings, env = start(work / "replicas" / hub)
        with replica:
            args = {}
            if hub == "huggingface":
                HubHistory(replica, discussions_page=3, tree_page=4)
                args = {"history": "all"}
            result = run_crawl(hub, work, args=args, env=env, data_dir=work / "data", out_name=f"{hub}.jsonl",
                               settings={**settings, "PTM_CLONE": 0, "PTM_GIT_ALLOW_PROTOCOL": "https:http"})
            assert result.stats["ptm/verdict/exit_status"] == 0
            assert read_jsonl(work / "data" / hub / f"{hub}.jsonl"), f"{hub}: nothing stored\n{result.log[-3000:]}"
    return work


def query(db: Path, sql: str, *params) -> list[tuple]:
    con = sqlite3.connect(db)
    try:
        return con.execute(sql, params).fetchall()
    finally:
        con.close()


def test_every_hubs_records_export_with_counts_equal_to_the_jsonl(tree):
    data = tree / "data"
    db = tree / "dataset.sqlite"
    proc = subprocess.run([sys.executable, "-m", "scrapy.cmdline", "export", "-s", f"PTM_DATA_DIR={data}",
                           "-o", str(db)], cwd=ROOT, capture_output=True, text=True, timeout=600)
    assert proc.returncode == 0 and "Traceback" not in proc.stderr, proc.stdout + proc.stderr
    records = {hub: read_jsonl(data / hub / f"{hub}.jsonl") for hub in REPLICAS}
    every = [r for rs in records.values() for r in rs]
    # each hub's records, once: the record ids do not collide across hubs
    assert dict(query(db, "SELECT hub, count(*) FROM model GROUP BY hub")) == Counter(
        r["ModelHub"]["ModelHubName"] for r in every)
    assert len({r["ModelHub"]["ModelHubName"] for r in every}) == 10
    assert query(db, "SELECT count(*) FROM model")[0][0] == len(every) == len({r["id"] for r in every})
    observed = sum(len(read_jsonl(p)) for hub in REPLICAS for p in (data / hub / "snapshots").glob("*.jsonl"))
    assert query(db, "SELECT count(*) FROM observation")[0][0] == observed
    # nothing skipped, every clone status as the record has it (skipped: <reason>, null, ...)
    assert query(db, "SELECT count(*) FROM import_file")[0][0] >= 20
    again = export_sqlite(data, tree / "again.sqlite")
    assert again["skipped"] == again["bad_lines"] == again["files_outside"] == 0
    statuses = dict(query(db, "SELECT model_id, clone_status FROM model"))
    assert statuses == {r["id"]: r.get("CloneStatus") for r in every}
    assert any(s and s.startswith("skipped: ") for s in statuses.values())
    for hub, rs in records.items():  # every hub's own fields land in the columns they map to
        got = {row[0]: row[1:] for row in query(
            db, "SELECT model_id, name, owner, license, downloads, likes, task, library FROM model")}
        for r in rs:
            downloads = r.get("Downloads") if isinstance(r.get("Downloads"), int) else None
            assert got[r["id"]] == (r["ModelName"], r.get("ModelOwner") or "", r.get("License"), downloads,
                                    r.get("Likes") if isinstance(r.get("Likes"), int) else None,
                                    r.get("ModelTask"), r.get("Library")), (hub, r["id"])
    # the tags of every hub
    tags = Counter()
    for r in every:
        tags[r["ModelHub"]["ModelHubName"]] += len({t for t in r.get("Tags") or [] if isinstance(t, str) and t})
    assert dict(query(db, "SELECT m.hub, count(*) FROM model_tag JOIN model m USING (model_id) GROUP BY 1")) == {
        h: n for h, n in tags.items() if n}
    # the Hugging Face history beside them, joined to the Hugging Face models only
    assert query(db, 'SELECT DISTINCT m.hub FROM "commit" JOIN model m USING (model_id)') == [("huggingface",)]
    # Parquet: every table, the same row counts
    counts = export_parquet(db, tree / "parquet")
    assert sorted(counts) == sorted(exported_tables())
    for table, n in counts.items():
        assert n == query(db, f'SELECT count(*) FROM "{table}"')[0][0], table


def test_report_covers_every_hub_and_the_history(tree):
    report = tree / "report.html"
    proc = subprocess.run([sys.executable, "-m", "scrapy.cmdline", "report", "-s", f"PTM_DATA_DIR={tree / 'data'}",
                           "-o", str(report)], cwd=ROOT, capture_output=True, text=True, timeout=600)
    assert proc.returncode == 0 and "Traceback" not in proc.stderr, proc.stdout + proc.stderr
    page = report.read_text()
    summary = page.split("<h2>Models per hub</h2>", 1)[1].split("</table>", 1)[0]
    for hub in REPLICAS:
        assert f"<td>{hub}</td>" in summary, hub
    history = page.split("<h2>History and community (Hugging Face)</h2>", 1)[1].split("</section>", 1)[0]
    commits = sum(1 for _ in read_jsonl(tree / "data" / "huggingface" / "history" / "commits.jsonl"))
    assert re.search(rf"<td>{commits:,}</td>", history), history
    assert '<img alt="discussions per status"' in history
