"""Crawls through a faulty network (tests/replicas/faults.py): 5xx, 429 with a wait, truncated and
malformed bodies, resets, answers cut off mid-body, slow answers. Every model arrives exactly once;
a page that never recovers is reported by URL and reason, never silently skipped."""

from __future__ import annotations

import re

import pytest
from scrapy.http import Request, TextResponse

from ptmscrape.middlewares import BackoffRetryMiddleware, backoff_delay
from spiders.huggingface import HuggingfaceSpider
from tests.crawl import project_crawler, run_crawl
from tests.replicas.faults import KINDS, FaultPlan, inject
from tests.replicas.huggingface import HuggingFaceReplica, _cursor, synthetic_models

ALL_FAULTS = {"5xx": .1, "429": .06, "truncate": .08, "malformed": .06, "reset": .06, "cut": .06,
              "slow": .08}
# Short waits: the back-off and the hub's t= are honoured, but tests should not idle.
FAST = {"PTM_CLONE": 0, "PTM_RETRY_BACKOFF": 0.02, "PTM_RETRY_BACKOFF_MAX": 0.2,
        "PTM_RATELIMIT_MAX_WAIT": 1, "DOWNLOAD_TIMEOUT": 20, "LOG_LEVEL": "INFO"}


def ids(records) -> list[str]:
    return sorted(f"{r['ModelOwner']}/{r['ModelName']}" for r in records)


# -- the fault plan itself -------------------------------------------------------------------
def test_fault_plan_is_deterministic_per_seed_and_respects_healthy_after():
    plan = FaultPlan(seed=3, rates=ALL_FAULTS, healthy_after=4)
    decisions = [plan.decide("GET", f"/api/models?p={i}", a)[0] for i in range(400) for a in (1, 2, 3)]
    again = [FaultPlan(seed=3, rates=ALL_FAULTS).decide("GET", f"/api/models?p={i}", a)[0]
             for i in range(400) for a in (1, 2, 3)]
    other = [FaultPlan(seed=4, rates=ALL_FAULTS).decide("GET", f"/api/models?p={i}", a)[0]
             for i in range(400) for a in (1, 2, 3)]
    assert decisions == again != other
    assert set(decisions) == {None, *KINDS}  # every kind drawn at these rates
    assert all(plan.decide("GET", f"/x{i}", 4)[0] is None for i in range(200))
    broken = FaultPlan(rates={}, broken={r"/api/models/gone": "5xx"}, healthy_after=1)
    assert broken.decide("GET", "/api/models/gone", 99)[0] == "5xx"
    with pytest.raises(ValueError):
        FaultPlan(rates={"meteor": .1})


# -- the spider side, cheaply --------------------------------------------------------------------
def test_backoff_doubles_is_jittered_and_capped():
    assert backoff_delay(1, 0, 10) == 0
    for attempt in range(1, 5):
        d = backoff_delay(attempt, 1.0, 100.0)
        assert 0.75 * 2 ** (attempt - 1) <= d <= 1.25 * 2 ** (attempt - 1)
    assert backoff_delay(30, 1.0, 10.0) == 10.0


def test_retry_middleware_puts_the_backoff_on_the_retry():
    crawler = project_crawler(HuggingfaceSpider, {"PTM_HUGGINGFACE_URL": "http://hub.invalid",
                                                  "PTM_RETRY_BACKOFF": 2.0, "RETRY_TIMES": 2})
    crawler.spider = HuggingfaceSpider.from_crawler(crawler)
    mw = BackoffRetryMiddleware.from_crawler(crawler)
    request = Request("http://hub.invalid/api/models")
    response = TextResponse(request.url, status=503, body=b"", request=request)
    first = mw.process_response(request, response)
    assert first.meta["retry_times"] == 1 and 1.5 <= first.meta["ptm_retry_delay"] <= 2.5
    second = mw.process_response(first, response)
    assert 3.0 <= second.meta["ptm_retry_delay"] <= 5.0
    assert mw.process_response(second, response) is response  # RETRY_TIMES spent: given up


def test_a_malformed_page_outside_a_crawl_is_reported_by_url_and_reason():
    crawler = project_crawler(HuggingfaceSpider, {"PTM_HUGGINGFACE_URL": "http://hub.invalid"})
    spider = HuggingfaceSpider.from_crawler(crawler)
    url = "http://hub.invalid/api/models?p=2"
    for body, kind in ((b'[{"id": "a/b", "downl', "malformed JSON"), (b'{"error": "x"}', "unexpected JSON")):
        assert list(spider.parse_listing(TextResponse(url, body=body, request=Request(url)))) == []
        assert crawler.stats.get_value(f"ptm/pages/failed/{kind}") == 1
    assert spider.html_page(TextResponse(url, body=b"<html><table><tr><td>cut", request=Request(url))) is None
    assert crawler.stats.get_value("ptm/pages/failed/incomplete HTML") == 1
    whole = TextResponse(url, body=b"<html><body>x</body></html>\n", request=Request(url))
    assert spider.html_page(whole) is whole


# -- real crawls -------------------------------------------------------------------------------
def test_crawl_of_3000_models_under_every_fault_loses_and_duplicates_nothing(tmp_path):
    models = synthetic_models(3000, seed=11)
    with HuggingFaceReplica(models, repos=False) as hub:
        faults = inject(hub.replica, FaultPlan(seed=11, rates=ALL_FAULTS, healthy_after=4))
        result = run_crawl("huggingface", tmp_path, settings={
            "PTM_HUGGINGFACE_URL": hub.url, "PTM_HUGGINGFACE_PAGE_SIZE": 100, **FAST})
        requests = hub.replica.count("GET", r"^/api/models\?")

    injected = faults.counts()
    assert set(injected) == set(KINDS), injected  # the crawl met every kind of fault
    items, records = result.items, result.records("huggingface")
    assert ids(items) == ids(records) == sorted(m["id"] for m in models)  # nothing lost...
    assert len(items) == len({i["id"] for i in items}) == 3000  # ...nothing twice
    snapshot = next((result.data_dir / "huggingface/snapshots").glob("*.jsonl"))
    assert snapshot.read_bytes().count(b"\n") == 3000
    stats = result.stats
    assert stats["finish_reason"] == "finished"
    assert "ptm/pages/failed" not in stats
    assert stats["ptm/pages/retried"] == injected["truncate"] + injected["malformed"]
    # A reset before any answer may be retried by Twisted's connection pool itself (GET is idempotent).
    assert injected["5xx"] + injected["cut"] <= stats["retry/count"] <= (
        injected["5xx"] + injected["cut"] + injected["reset"])
    # Each spoiled answer was fetched once more: 30 pages + one request per fault.
    assert requests == 30 + sum(n for kind, n in injected.items() if kind != "slow")
    assert stats["ptm/ratelimit/waits"] == injected["429"]
    assert "Page failed" not in result.log


def test_a_listing_page_that_never_recovers_is_reported_not_skipped(tmp_path):
    models = synthetic_models(500, seed=5)
    with HuggingFaceReplica(models, repos=False) as hub:
        order = hub._order("downloads")
        last_of_page_2 = hub.models[order[199][2]]
        cursor = _cursor("downloads", last_of_page_2.get("downloads") or 0, last_of_page_2["_id"])
        faults = inject(hub.replica, FaultPlan(seed=2, rates={"5xx": .1, "slow": .1}, healthy_after=3,
                                               broken={re.escape(cursor): "5xx"}))
        result = run_crawl("huggingface", tmp_path, check=False, settings={
            "PTM_HUGGINGFACE_URL": hub.url, "PTM_HUGGINGFACE_PAGE_SIZE": 100, "RETRY_TIMES": 2, **FAST})

    page_3 = [t for _, t, _, k in faults.injected if cursor in t]
    assert len(page_3) == 3  # first try + RETRY_TIMES retries, all answered 5xx
    failed = re.findall(r"Page failed after retries: (\S+) \((HTTP 50\d)", result.log)
    assert len(failed) == 1 and cursor.replace("=", "%3D")[:40] in failed[0][0].replace("+", "%2B")
    stats = result.stats
    assert stats["ptm/pages/failed"] == 1 and stats[f"ptm/pages/failed/{failed[0][1]}"] == 1
    # The two pages before it are complete, exactly once; nothing is claimed removed.
    expected = sorted(hub.models[row[2]]["id"] for row in order[:200])
    assert ids(result.records("huggingface")) == ids(result.items) == expected
    assert "not reported as removed: 1 page(s) failed" in result.log
    # A lost page fails the crawl (README "Exit status"), in the finish reason and the last line too.
    assert result.returncode == 1 and "Traceback" not in result.log
    assert stats["finish_reason"] == "failed_pages" and stats["ptm/verdict/exit_status"] == 1
    assert result.log.rstrip().splitlines()[-1].endswith(
        f"Crawl verdict: exit status 1: 1 page failed ({failed[0][1]}: 1); the listing ended at a failed page: "
        "the pages after it were not read")
    assert stats["ptm/pages/listing_cut_short"] == 1
    assert f"The listing ends at {failed[0][0]}: the pages after it were not read" in result.log


def test_detail_pages_under_faults_and_broken_ones_reported_by_url(tmp_path):
    models = synthetic_models(150, seed=8)
    wanted = [m["id"] for m in models]
    gone, garbled = wanted[10], wanted[20]
    with HuggingFaceReplica(models, repos=False) as hub:
        inject(hub.replica, FaultPlan(seed=8, rates=ALL_FAULTS, healthy_after=4,
                                      broken={f"/api/models/{re.escape(gone)}$": "5xx",
                                              f"/api/models/{re.escape(garbled)}$": "truncate"}))
        result = run_crawl("huggingface", tmp_path, check=False, args={"models": ",".join(wanted)}, settings={
            "PTM_HUGGINGFACE_URL": hub.url, "RETRY_TIMES": 3, "PTM_PAGE_RETRIES": 3, **FAST})

    assert ids(result.records("huggingface")) == ids(result.items) == sorted(set(wanted) - {gone, garbled})
    assert re.search(rf"Page failed after retries: \S+/api/models/{re.escape(gone)} \(HTTP 50\d", result.log)
    assert re.search(rf"Page failed after retries: \S+/api/models/{re.escape(garbled)} \(malformed JSON",
                     result.log)
    stats = result.stats
    assert stats["ptm/pages/failed"] == 2 and stats["ptm/pages/failed/malformed JSON"] == 1
    assert result.returncode == 1 and stats["finish_reason"] == "failed_pages"
    assert "exit status 1: 2 pages failed (" in result.log
    assert stats["ptm/pages/retried/malformed JSON"] >= 3  # the garbled one, before giving up


# -- the other hubs: listing and detail pages through the same faults ------------------------------
def _modelhub(tmp_path):
    from tests.replicas.modelhub import ModelhubReplica
    hub = ModelhubReplica(tmp_path / "hub-git")
    return hub, hub.settings(), hub.env()


def _modelzoo(tmp_path):
    from tests.replicas.modelzoo import ModelZooReplica, fixture_models
    hub = ModelZooReplica(fixture_models(), tmp_path / "github", page_size=5)
    return hub, {"PTM_MODELZOO_URL": hub.url}, hub.git_env()


def _pytorchhub(tmp_path):
    from tests.replicas.pytorchhub import PytorchHubReplica
    hub = PytorchHubReplica(tmp_path / "hub-git")
    return hub, hub.settings(), hub.env()


def _onnxmodelzoo(tmp_path):
    from tests.replicas.onnx import OnnxZooReplica
    hub = OnnxZooReplica(tmp_path / "hub-git")
    return hub, hub.settings(), hub.env()


HEAVY_FAULTS = {"5xx": .2, "429": .1, "truncate": .15, "malformed": .15, "reset": .1, "cut": .1, "slow": .1}
# Markdown has no end marker: a complete 200 answer with half a README cannot be told from a short
# one, so the ONNX zoo is tested with the faults a client can see (see docs/failures.md, Failure behaviour).
VISIBLE_FAULTS = {"5xx": .25, "429": .15, "reset": .15, "cut": .15, "slow": .1}


@pytest.mark.parametrize("spider, make_hub, rates", [
    ("modelhub", _modelhub, HEAVY_FAULTS), ("modelzoo", _modelzoo, HEAVY_FAULTS),
    ("pytorchhub", _pytorchhub, HEAVY_FAULTS), ("onnxmodelzoo", _onnxmodelzoo, VISIBLE_FAULTS),
])
def test_other_hubs_under_faults_give_the_same_models_exactly_once(tmp_path, spider, make_hub, rates):
    hub, settings, env = make_hub(tmp_path)
    with hub:
        (tmp_path / "clean").mkdir()
        clean = run_crawl(spider, tmp_path / "clean", settings={**settings, **FAST}, env=env,
                          data_dir=tmp_path / "clean-data", out_name="clean.jsonl")
        faults = inject(hub.replica, FaultPlan(seed=21, rates=rates, healthy_after=4,
                                               paths=r"^(?!.*(/info/refs|/git-upload-pack))"))
        faulty = run_crawl(spider, tmp_path, settings={**settings, **FAST}, env=env)

    expected = sorted(r["id"] for r in clean.records(spider))
    assert len(expected) >= 3
    assert faults.injected, "the plan injected no fault: pick another seed"
    assert sorted(i["id"] for i in faulty.items) == sorted(r["id"] for r in faulty.records(spider)) == expected
    stats = faulty.stats
    assert stats["finish_reason"] == "finished" and "ptm/pages/failed" not in stats
    assert "Page failed" not in faulty.log
