"""Real ``scrapy crawl modelscope`` runs (subprocess) against the local ModelScope replica, served
under a path prefix (a mirror): catalogue and per-owner listings, clones, limit, re-crawls and
removed models, faults, hostile models, two distributed workers."""

import json
import os
import signal
import subprocess

import pytest
from jsonschema import Draft202012Validator

from ptmscrape.dataset.payloads import read_payload
from ptmscrape.dataset.tree import DatasetTree
from ptmscrape.items import load_schema
from tests.crawl import ROOT, crawl_command, read_jsonl, run_crawl
from tests.crawl_control import BackgroundCrawl, hold
from tests.replicas.faults import FaultPlan, inject
from tests.replicas.modelscope import ModelScopeReplica, fixture_models, synthetic_models
from tests.replicas.server import Reply

VALIDATOR = Draft202012Validator(load_schema())
PREFIX = "/mirror/modelscope"


@pytest.fixture
def ms(tmp_path):
    """6 fixture models and 7 synthetic ones (13), each with its git repository."""
    with ModelScopeReplica(fixture_models() + synthetic_models(7), tmp_path / "hub-git", prefix=PREFIX) as hub:
        yield hub


def settings(hub, **extra):
    return {"PTM_MODELSCOPE_URL": hub.url, "PTM_MODELSCOPE_PAGE_SIZE": 5, **extra}


def head(repo_dir):
    return subprocess.run(["git", "-C", str(repo_dir), "rev-parse", "HEAD"], capture_output=True,
                          text=True, check=True).stdout.strip()


def key(item):
    return f"{item['ModelOwner']}/{item['ModelName']}"


def test_crawl_pages_the_catalogue_maps_stores_and_clones_every_model(tmp_path, ms):
    result = run_crawl("modelscope", tmp_path, settings=settings(ms))
    items = result.items
    assert sorted(map(key, items)) == sorted(ms.models) and len({i["id"] for i in items}) == 13
    # PUT pages of 5 under the prefix: 5 + 5 + 3, stopped at TotalCount (no empty 4th page)
    assert [b["PageNumber"] for b in ms.listing_puts("catalogue")] == [1, 2, 3]
    assert ms.replica.count("PUT", f"^{PREFIX}/api/v1/dolphin/models$") == 3
    for item in items:
        assert list(VALIDATOR.iter_errors(item)) == []
        assert item["CloneStatus"] == "cloned"
        # the clone's folder comes from the hub's ids, not from the (prefixed) URL path
        assert item["RepoPath"] == f"modelscope/repos/{item['ModelOwner']}/{item['ModelName']}"
        assert item["RepoURL"] == f"{ms.url}/{key(item)}.git"
        repo = result.data_dir / item["RepoPath"]
        assert head(repo) == item["LatestGitCommitSHA"] == ms.heads[key(item)]
        assert (repo / "pytorch_model.bin").read_text().startswith("version https://git-lfs.github.com/spec/v1")
        payload = read_payload(DatasetTree(result.data_dir), item["ModelHub"]["MetadataFilePath"])
        assert payload == ms.models[key(item)]
        assert item["ModelHub"]["ModelHubURL"] == ms.url
    assert sorted(r["id"] for r in result.records("modelscope")) == sorted(i["id"] for i in items)
    assert list((result.data_dir / "modelscope/repos/.incoming").iterdir()) == []
    assert not (result.data_dir / "modelscope/repos/mirror").exists()
    stats = result.stats
    assert stats["finish_reason"] == "finished"
    assert stats["ptm/clone/cloned"] == stats["ptm/store/records"] == stats["item_scraped_count"] == 13


def test_limit_stops_listing_and_items(tmp_path, ms):
    result = run_crawl("modelscope", tmp_path, args={"limit": 7}, settings=settings(ms, PTM_CLONE=0))
    assert len(result.items) == 7
    assert [(b["PageNumber"], b["PageSize"]) for b in ms.listing_puts("catalogue")] == [(1, 5), (2, 5)]
    assert {i["CloneStatus"] for i in result.items} == {"skipped"}
    assert "narrowed by -a limit" in result.log


def test_owners_use_the_per_owner_listing(tmp_path, ms):
    result = run_crawl("modelscope", tmp_path, args={"owners": "iic,Qwen"},
                       settings=settings(ms, PTM_MODELSCOPE_PAGE_SIZE=1))
    assert sorted(map(key, result.items)) == sorted(k for k in ms.models if k.split("/")[0] in ("iic", "Qwen"))
    assert len(result.items) == 4
    assert ms.listing_puts("catalogue") == []
    assert sorted((b["Path"], b["PageNumber"]) for b in ms.listing_puts("owner")) == [
        ("Qwen", 1), ("Qwen", 2), ("iic", 1), ("iic", 2)]
    for item in result.items:
        assert list(VALIDATOR.iter_errors(item)) == []
        assert head(result.data_dir / item["RepoPath"]) == item["LatestGitCommitSHA"] == ms.heads[key(item)]
    assert "narrowed by -a owners" in result.log


def test_recrawl_fetches_changes_and_reports_removed_models(tmp_path, ms):
    data = tmp_path / "data"
    first = run_crawl("modelscope", tmp_path, settings=settings(ms), data_dir=data, out_name="1.jsonl")
    assert len(first.items) == 13
    changed, gone = "Qwen/Qwen2.5-0.5B-Instruct", "zhang-wei/sd-lora-inkwash"
    new_sha = ms.update_repo(changed, {"README.md": "# v2\n"})
    ms.remove_model(gone)
    second = run_crawl("modelscope", tmp_path, settings=settings(ms), data_dir=data, out_name="2.jsonl")
    status = {key(i): i for i in second.items}
    assert gone not in status and len(status) == 12
    assert status[changed]["CloneStatus"] == "updated" and status[changed]["LatestGitCommitSHA"] == new_sha
    assert head(data / status[changed]["RepoPath"]) == new_sha
    assert {i["CloneStatus"] for k, i in status.items() if k != changed} == {"unchanged"}
    assert second.stats["ptm/store/removed"] == 1
    (report,) = (data / "modelscope").glob("removed-*.txt")
    assert gone in report.read_text()
    records = second.records("modelscope")
    assert len(records) == len({r["id"] for r in records}) == 13  # nothing deleted, nothing twice


FAULTS = {"5xx": .2, "429": .1, "truncate": .15, "malformed": .15, "reset": .1, "cut": .1, "slow": .1}
FAST = {"PTM_CLONE": 0, "PTM_RETRY_BACKOFF": 0.02, "PTM_RETRY_BACKOFF_MAX": 0.2,
        "PTM_RATELIMIT_MAX_WAIT": 1, "DOWNLOAD_TIMEOUT": 20}


def test_faulty_network_gives_every_model_exactly_once(tmp_path, ms):
    faults = inject(ms.replica, FaultPlan(seed=5, rates=FAULTS, healthy_after=6))
    result = run_crawl("modelscope", tmp_path, settings=settings(ms, PTM_MODELSCOPE_PAGE_SIZE=2, **FAST))
    assert faults.injected, "the plan injected no fault: pick another seed"
    assert sorted(map(key, result.items)) == sorted(ms.models)
    assert sorted(i["id"] for i in result.items) == sorted(r["id"] for r in result.records("modelscope"))
    stats = result.stats
    assert stats["finish_reason"] == "finished" and "ptm/pages/failed" not in stats
    assert {b["PageNumber"] for b in ms.listing_puts("catalogue")} == set(range(1, 8))


def test_a_page_that_never_recovers_is_reported_and_nothing_is_called_removed(tmp_path, ms):
    data = tmp_path / "data"
    run_crawl("modelscope", tmp_path, settings=settings(ms, PTM_CLONE=0), data_dir=data, out_name="1.jsonl")
    original = ms._catalogue

    def broken(req, m):
        if json.loads(req.body).get("PageNumber") == 2:
            return Reply.json({"Code": 500, "Message": "internal error", "Success": False})
        return original(req, m)

    routes = ms.replica.routes
    i = next(n for n, r in enumerate(routes) if r[0] == "PUT" and "dolphin" in r[1].pattern)
    routes[i] = ("PUT", routes[i][1], broken)
    result = run_crawl("modelscope", tmp_path, settings=settings(ms, PTM_CLONE=0, PTM_RETRY_BACKOFF=0.01),
                       data_dir=data, out_name="2.jsonl", check=False)
    assert result.returncode == 1 and "Traceback" not in result.log  # README "Exit status"
    assert "Crawl verdict: exit status 1: 1 page failed (hub error: 1)" in result.log
    assert result.stats["finish_reason"] == "failed_pages" and result.stats["ptm/verdict/exit_status"] == 1
    assert len(result.items) == 5  # page 1; page 2 failed, so page 3 was never asked for
    assert result.stats["ptm/pages/failed/hub error"] == 1
    assert "Page failed after retries" in result.log and "Code 500: internal error" in result.log
    assert "ptm/store/removed" not in result.stats or result.stats["ptm/store/removed"] == 0
    assert not list((data / "modelscope").glob("removed-*.txt"))


def test_hostile_models_keep_what_they_can_and_write_only_inside_the_data_dir(tmp_path):
    hostile = [
        {"Id": 1, "Path": "..", "Name": "..", "Downloads": 5},
        {"Id": 2, "Path": "evil", "Name": "../../../../tmp/pwned"},
        {"Id": 3, "Path": "evil", "Name": "a\x00b\x1b[31m", "License": ["x"] * 3},
        {"Id": 4, "Path": "evil", "Name": "名字", "Downloads": "lots"},
        {"Id": 5, "Path": "evil", "Name": "x" * 5000},
        {"Id": 6, "Path": "-c", "Name": "--upload-pack=touch pwned"},
        {"Id": 7, "Name": "no-owner"},
    ]
    with ModelScopeReplica(hostile, prefix=PREFIX, repos=False) as hub:
        hub.models["junk"] = "not an object"
        work = tmp_path / "work"
        work.mkdir()
        result = run_crawl("modelscope", work, settings=settings(hub, PTM_MODELSCOPE_PAGE_SIZE=3))
    names = sorted(i["ModelName"] for i in result.items)
    assert names == sorted(["..", "a\x00b\x1b[31m", "名字", "x" * 5000, "--upload-pack=touch pwned"])
    for item in result.items:
        assert list(VALIDATOR.iter_errors(item)) == []
        assert item["CloneStatus"].startswith("failed: ")
    stats = result.stats
    assert stats["item_dropped_reasons_count/UnmappableModel"] == 3
    assert "Dropped: modelscope:evil/../../../../tmp/pwned" in result.log
    # everything written is under the data dir
    outside = {p.name for p in tmp_path.iterdir()}
    assert outside == {"work"}
    assert not (ROOT / "pwned").exists()
    written = [p for p in result.data_dir.rglob("*") if p.is_file()]
    assert all(p.resolve().is_relative_to(result.data_dir.resolve()) for p in written)


def test_a_resumed_jobdir_crawl_ends_with_every_model_once(tmp_path, ms):
    """A paused crawl (SIGTERM) resumes from its saved PUT requests, bodies and page numbers intact."""

    data, jobdir = tmp_path / "data", tmp_path / "job"
    listing = hold(ms.replica, "PUT", ms._catalogue, lambda req, m, n: n == 2)
    cmd = crawl_command("modelscope", tmp_path / "1.jsonl", data, tmp_path / "1.stats.json",
                        settings=settings(ms, PTM_CLONE=0, JOBDIR=jobdir))
    crawl = BackgroundCrawl(cmd, tmp_path / "1.log")
    crawl.wait_until(lambda: listing.reached.is_set(), "page 2 asked for")
    crawl.proc.send_signal(signal.SIGTERM)
    crawl.wait_until(lambda: "shutting down gracefully" in crawl.log, "the graceful stop")
    listing.open()
    assert crawl.wait() == 1  # paused, not finished (README "Exit status")
    assert "exit status 1: the crawl stopped before the end (finish reason shutdown)" in crawl.log
    assert json.loads((tmp_path / "1.stats.json").read_text())["finish_reason"] == "shutdown"
    resumed = run_crawl("modelscope", tmp_path, settings=settings(ms, PTM_CLONE=0, JOBDIR=jobdir),
                        data_dir=data, out_name="2.jsonl")
    assert "Resuming crawl" in resumed.log and resumed.stats["finish_reason"] == "finished"
    records = read_jsonl(data / "modelscope/modelscope.jsonl")
    assert sorted(map(key, records)) == sorted(ms.models)
    assert [b["PageNumber"] for b in ms.listing_puts("catalogue")] == [1, 2, 3]  # no page twice


def test_a_job_paused_with_the_clones_of_two_pages_unstarted_resumes_to_exit_status_0(tmp_path, ms):
    """A pause while the first clone is held: the models of pages 1 and 2 wait for the clone stage,
    so both pages are saved and the resumed run fetches both again. Page 1's next page is page 2
    (dropped by the dupefilter: the paused run read it), which was taken for a listing loop: exit
    status 1 and a lost page that failed every later run of the job (found by bench/crash_soak.py)."""
    data, jobdir = tmp_path / "data", tmp_path / "job"
    clone = hold(ms.replica, "POST", ms.git._smart_http, lambda req, m, n: True)
    run_settings = settings(ms, JOBDIR=jobdir, PTM_CLONE_CONCURRENCY=1)
    cmd = crawl_command("modelscope", tmp_path / "1.jsonl", data, tmp_path / "1.stats.json", settings=run_settings)
    crawl = BackgroundCrawl(cmd, tmp_path / "1.log")
    # Page 3 is asked for by page 2's callback, before page 2's models: they reach the clone stage.
    crawl.wait_until(lambda: clone.reached.is_set() and len(ms.listing_puts()) >= 3, "a clone held, page 3 asked for")
    crawl.proc.send_signal(signal.SIGTERM)
    crawl.wait_until(lambda: "shutting down gracefully" in crawl.log, "the graceful stop")
    clone.open()
    assert crawl.wait() == 1
    resumed = run_crawl("modelscope", tmp_path, settings=run_settings, data_dir=data, out_name="2.jsonl", check=False)
    assert "page(s) of unstored models the job lost" in resumed.log
    assert int(resumed.log.split("fetching again the ")[1].split(" ")[0]) >= 2, resumed.log[-3000:]
    assert "Listing loops" not in resumed.log
    assert resumed.returncode == 0, resumed.log[-3000:]
    records = read_jsonl(data / "modelscope/modelscope.jsonl")
    assert sorted(map(key, records)) == sorted(ms.models)
    again = run_crawl("modelscope", tmp_path, settings=run_settings, data_dir=data, out_name="3.jsonl")
    assert "has finished" in again.log  # the job is done: a resume loop ends


def test_two_distributed_workers_share_the_crawl_each_model_once(tmp_path):
    """Listing pages (PUTs told apart only by their body) fetched once, each model handed off
    (raw_item) to one worker, which maps and clones it."""
    import uuid

    from tests.services import require_service

    REDIS_URL = os.environ.get("PTM_TEST_REDIS_URL", "redis://127.0.0.1:6379/0")
    require_service("Redis", REDIS_URL, start_hint="bash .ci/start-redis.sh")
    import redis

    client = redis.Redis.from_url(REDIS_URL, socket_connect_timeout=2)
    prefix = f"ptmtest-{uuid.uuid4().hex[:12]}"
    data = tmp_path / "data"
    try:
        with ModelScopeReplica(fixture_models() + synthetic_models(24), tmp_path / "hub-git", prefix=PREFIX) as hub:
            extra = {"PTM_REDIS_URL": REDIS_URL, "PTM_REDIS_PREFIX": prefix, "PTM_CLONE_CONCURRENCY": 2}
            procs = []
            for w in range(2):
                cmd = crawl_command("modelscope", tmp_path / f"w{w}.jsonl", data, tmp_path / f"w{w}.stats.json",
                                    settings={**settings(hub), **extra})
                log = open(tmp_path / f"w{w}.log", "w")
                procs.append((subprocess.Popen(cmd, cwd=ROOT, stdout=log, stderr=subprocess.STDOUT), log))
            for w, (proc, log) in enumerate(procs):
                assert proc.wait(timeout=600) == 0, (tmp_path / f"w{w}.log").read_text()[-4000:]
                log.close()
                assert "Traceback" not in (tmp_path / f"w{w}.log").read_text()
            pages = sorted(b["PageNumber"] for b in hub.listing_puts("catalogue"))
            heads = dict(hub.heads)
            models = set(hub.models)
    finally:
        keys = list(client.scan_iter(match=f"{prefix}:*"))
        if keys:
            client.delete(*keys)
    workers = [read_jsonl(tmp_path / f"w{w}.jsonl") for w in range(2)]
    ids = [{i["id"] for i in items} for items in workers]
    assert not ids[0] & ids[1] and len(ids[0]) + len(ids[1]) == len(models) == 30
    assert pages == [1, 2, 3, 4, 5, 6]  # each page once, whichever worker fetched it
    records = read_jsonl(data / "modelscope/modelscope.jsonl")
    assert sorted(map(key, records)) == sorted(models)
    for record in records:
        assert head(data / record["RepoPath"]) == record["LatestGitCommitSHA"] == heads[key(record)]


def test_lfs_weights_are_fetched_when_asked(tmp_path, ms):
    result = run_crawl("modelscope", tmp_path, args={"owners": "AI-ModelScope"},
                       settings=settings(ms, PTM_CLONE_LFS=1))
    (item,) = result.items
    weights = (result.data_dir / item["RepoPath"] / "pytorch_model.bin").read_bytes()
    assert weights.startswith(b"weights of AI-ModelScope/bert-base-uncased") and item["CloneStatus"] == "cloned"
