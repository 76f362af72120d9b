"""The benchmark harness (bench/) measures what it says: every model served, crawled and counted.

No timing is asserted here (figures live in bench/RESULTS.md); these runs are small so that a
broken harness shows up in CI rather than in the next week-long benchmark session.
"""

import json

import pytest

from bench import run as bench_run
from bench.baseline import main as baseline_main, pages
from bench.models import page_bytes
from bench.replica import PageCache, listing_replica

N = 2_500  # three pages of 1,000, the last one short


@pytest.fixture
def listing(tmp_path):
    cache = PageCache(tmp_path / "cache", N)
    cache.build(workers=1)
    replica = listing_replica(cache)
    replica.start()
    yield replica
    replica.stop()


def test_synthetic_pages_are_deterministic_and_cover_the_hub(tmp_path):
    assert page_bytes(1, N) == page_bytes(1, N) != page_bytes(1, N, seed=2)
    cache = PageCache(tmp_path, N)
    cache.build(workers=1)
    models = [m for p in range(cache.pages) for m in json.loads(cache.read(p))]
    assert cache.pages == 3 and len(models) == N
    assert len({m["id"] for m in models}) == len({m["_id"] for m in models}) == N
    assert 1_000 < len(cache.read(0)) / 1_000 < 8_000  # bytes per model: like the Hub's listing


def test_replica_pages_by_link_header_and_the_baseline_maps_every_model(tmp_path, listing, capsys):
    assert [len(page) for page in pages(listing.url)] == [1_000, 1_000, 500]
    baseline_main([listing.url, str(tmp_path / "out.jsonl")])
    phases = json.loads(capsys.readouterr().out)
    lines = (tmp_path / "out.jsonl").read_text().splitlines()
    assert phases["models"] == len(lines) == N
    assert len({json.loads(line)["id"] for line in lines}) == N


def test_listing_benchmark_crawls_every_model_and_reports_it(tmp_path):
    plan = {"recrawl_models": N, "floor_models": N, "baseline_max": N}
    row = bench_run.bench_listing(N, plan, tmp_path, tmp_path / "cache")
    for part in ("crawl", "recrawl", "floor"):
        assert row[part]["items"] == N, part
        assert row[part]["max_rss_mb"] > 10, part
    for part in ("crawl", "recrawl"):
        assert row[part]["returncode"] == 0 and row[part]["verdict"] == "every listed page was read", part
    # Scrapy alone has no pipeline, so it stores nothing: exit 1 for that reason only (README "Exit status").
    assert row["floor"]["returncode"] == 1 and row["floor"]["verdict"] == "nothing was stored"
    assert row["baseline"]["models"] == N and row["replica"]["models"] == N
    report = bench_run.render("quick", {"machine": bench_run.machine(), "started": "now", "seconds": 1,
                                        "listing": [row]})
    assert "| 2,500 |" in report and "Scrapy alone at 2,500" in report and "re-crawl" in report


@pytest.mark.parametrize("stores, reason, accepted", [
    (False, "nothing was stored", True),
    (False, "1 page failed (HTTP 503: 1); nothing was stored", False),
    (True, "nothing was stored", False),
])
def test_only_the_no_pipeline_run_may_exit_1_and_only_for_storing_nothing(tmp_path, monkeypatch, stores,
                                                                            reason, accepted):
    def measure(cmd, log, env=None, stdout=None):  # the crawl's outcome, as its stats file says it
        (tmp_path / "floor.stats.json").write_text(json.dumps(
            {"item_scraped_count": 3, "ptm/verdict/exit_status": 1, "ptm/verdict/reason": reason}))
        return bench_run.Run(1.0, 1.0, 0.1, 50.0, 1, 0.0, 0.0)

    monkeypatch.setattr(bench_run, "measure", measure)
    def run():
        return bench_run.crawl("http://127.0.0.1:9", tmp_path, {}, name="floor", stores=stores)

    if accepted:
        assert run()["verdict"] == reason
    else:
        with pytest.raises(RuntimeError, match=r"crawl failed \(exit 1\)"):
            run()


def test_clone_benchmark_clones_every_repository_at_each_level(tmp_path, monkeypatch):
    monkeypatch.setattr(bench_run, "RECRAWL_RUNS", 1)
    default = bench_run.project_settings.PTM_CLONE_CONCURRENCY
    result = bench_run.bench_clones(3, [1, default], tmp_path)
    assert result["sequential"]["returncode"] == 0
    for level in (1, default):
        clone = result["crawls"][level]["clone"]
        assert (clone["queued"], clone["cloned"], clone.get("failed", 0)) == (3, 3, 0), level
    assert result["recrawl"]["clone"].get("unchanged") == 3 and "cloned" not in result["recrawl"]["clone"]
    assert result["metadata_only"]["clone"].get("skipped") == 3


def test_report_block_is_replaced_in_place(tmp_path):
    report = tmp_path / "RESULTS.md"
    report.write_text("# Results\n\nhand-written\n")
    bench_run.write_report("quick", "first\n", report)
    bench_run.write_report("quick", "second\n", report)
    text = report.read_text()
    assert text.count("<!-- bench:quick:begin -->") == 1 and "second" in text and "first" not in text
    assert text.startswith("# Results\n\nhand-written\n")


def test_churned_replica_changes_removes_and_adds_models_and_serves_the_rest_byte_for_byte(tmp_path):
    """``--churn``: the same hub later, for re-crawl rehearsals (docs/operations.md "Re-crawls")."""
    from bench.replica import Churn

    n = 3_000
    churn = Churn(n, 0.04, 0.02, 0.02)
    fates = [churn.fate(i) for i in range(n)]
    assert 80 < fates.count("changed") < 160 and 30 < fates.count("removed") < 90
    before, after = {}, {}
    for p in range(3):
        served = page_bytes(p, n)
        before.update((m["id"], m) for m in json.loads(served))
        churned = churn.page(p, served)
        after.update((m["id"], m) for m in json.loads(churned))
        for k, model in enumerate(json.loads(served)):  # kept models: the very bytes served before
            if fates[p * 1000 + k] == "kept":
                assert json.dumps(model, separators=(",", ":")).encode() in churned
    assert {i for i in before if i not in after} == {m["id"] for i, m in enumerate(before.values())
                                                     if fates[i] == "removed"}
    added = [i for i in after if i not in before]
    assert len(added) == 60 and len(set(added)) == 60
    changed = [i for i in after if i in before and after[i] != before[i]]
    assert len(changed) == fates.count("changed")
    assert all(after[i]["downloads"] == before[i]["downloads"] + 1000 and after[i]["sha"] != before[i]["sha"]
               for i in changed)
