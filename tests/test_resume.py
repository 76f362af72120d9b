"""Pause and resume (``-s JOBDIR=…``): a hard-killed crawl and a paused one, resumed, give the
dataset a complete crawl gives; and every spider's requests can be saved in a JOBDIR."""

from __future__ import annotations

import asyncio
import importlib
import json
import pickle
import pkgutil
import re
import signal
import subprocess
import urllib.parse
from collections import Counter
from pathlib import Path

import pytest
import scrapy
from scrapy.utils.request import request_from_dict

import spiders
from ptmscrape.spiders_base import HubSpider
from spiders.huggingface import HuggingfaceSpider
from tests.crawl import crawl_command, project_crawler, read_jsonl, run_crawl
from tests.crawl_control import BackgroundCrawl, count_lines, hold
from tests.helpers import make_spider
from tests.replicas.faults import FaultPlan, inject
from tests.replicas.huggingface import HuggingFaceReplica, _cursor, fixture_models, synthetic_models

PAGE = 10


@pytest.fixture
def hub(tmp_path):
    with HuggingFaceReplica(fixture_models() + synthetic_models(80), tmp_path / "hub-git") as hub:
        yield hub


def crawl_settings(hub, jobdir):
    return {"PTM_HUGGINGFACE_URL": hub.url, "PTM_HUGGINGFACE_PAGE_SIZE": PAGE, "JOBDIR": jobdir}


def head(repo):
    out = subprocess.run(["git", "-C", str(repo), "rev-parse", "HEAD"], capture_output=True, text=True)
    return out.stdout.strip() if out.returncode == 0 else None


def listing_order(hub) -> list[str]:
    return [row[2] for row in hub._order("downloads")]


def info_refs_per_repo(hub) -> Counter:
    return Counter(path.split("/info/refs")[0].lstrip("/") for method, path in hub.replica.requests
                   if method == "GET" and "/info/refs" in path)


def listing_requests(hub) -> int:
    return hub.replica.count("GET", r"^/api/models\?")


def assert_dataset_is_whole(data, hub):
    """Every model once; every clone complete, at its record's HEAD; nothing half-built."""
    records = read_jsonl(data / "huggingface/huggingface.jsonl")
    names = [f"{r['ModelOwner']}/{r['ModelName']}" for r in records]
    assert sorted(names) == sorted(hub.models)
    assert len({r["id"] for r in records}) == len(records)
    by_path = {r["RepoPath"]: r for r in records}
    for r in records:
        assert r["LatestGitCommitSHA"] == hub.models[f"{r['ModelOwner']}/{r['ModelName']}"]["sha"]
    repos = data / "huggingface/repos"
    clones = [d for owner in repos.iterdir() if owner.name != ".incoming" for d in owner.iterdir()]
    assert len(clones) == len(records)
    for clone in clones:
        record = by_path[str(clone.relative_to(data))]
        assert head(clone) == record["LatestGitCommitSHA"]
    assert list((repos / ".incoming").iterdir()) == []
    return records


def test_a_hard_killed_crawl_resumes_into_a_complete_dataset(tmp_path, hub):
    data, jobdir = tmp_path / "data", tmp_path / "job"
    order = listing_order(hub)
    half_cloned = order[14]  # listed on page 2; its clone is held half-way
    listing = hold(hub.replica, "GET", hub._listing, lambda req, m, n: n >= 6)
    clone = hold(hub.replica, "POST", hub.git._smart_http,
                 lambda req, m, n: m.group("repo") == half_cloned)
    cmd = crawl_command("huggingface", tmp_path / "1.jsonl", data, tmp_path / "1.stats.json",
                        settings=crawl_settings(hub, jobdir))
    crawl = BackgroundCrawl(cmd, tmp_path / "1.log")
    snapshots = lambda: list((data / "huggingface/snapshots").glob("*.jsonl"))  # noqa: E731
    # Pages 1-5 answered, page 6 held; all their models but the held clone stored.
    crawl.wait_until(lambda: listing.reached.is_set() and clone.reached.is_set()
                     and count_lines(snapshots()) == 5 * PAGE - 1, "49 models stored")
    crawl.kill()
    listing.open()
    clone.open()

    stored_before_kill = count_lines(snapshots())
    assert not (data / "huggingface/huggingface.jsonl").exists()  # the kill skipped the merge
    assert list((data / "huggingface/repos/.incoming").iterdir())  # a clone was cut off half-way
    assert (jobdir / "requests.seen").exists()

    resumed = run_crawl("huggingface", tmp_path, settings=crawl_settings(hub, jobdir), data_dir=data,
                        out_name="2.jsonl")
    assert "was killed before it could save its request queue" in resumed.log
    stats = resumed.stats
    assert stats["finish_reason"] == "finished"
    assert stats["ptm/job/restarted_after_kill"] == 1
    # The job re-listed the hub from page 1 and skipped every model the killed run had stored.
    assert stats["ptm/dedupe/stored_before_resume"] == stored_before_kill
    assert stats["ptm/store/records"] == len(hub.models) - stored_before_kill
    assert "scheduler/unserializable" not in stats

    records = assert_dataset_is_whole(data, hub)
    assert next(r for r in records if r["ModelName"] == half_cloned.split("/")[1])["CloneStatus"] == "cloned"
    # Each model is stored once in the job's snapshots, and each repository cloned once —
    # except the one cut off, cloned again.
    assert count_lines(snapshots()) == len(hub.models)
    fetched = info_refs_per_repo(hub)
    assert fetched.pop(half_cloned) == 2
    assert fetched == Counter({name: 1 for name in hub.models if name != half_cloned})
    assert stats["ptm/store/removed"] == 0


def test_a_paused_crawl_resumes_where_it_stopped_and_keeps_its_limit(tmp_path, hub):
    data, jobdir = tmp_path / "data", tmp_path / "job"
    limit = 6 * PAGE + 5
    listing = hold(hub.replica, "GET", hub._listing, lambda req, m, n: n == 6)
    cmd = crawl_command("huggingface", tmp_path / "1.jsonl", data, tmp_path / "1.stats.json",
                        args={"limit": limit}, settings=crawl_settings(hub, jobdir))
    crawl = BackgroundCrawl(cmd, tmp_path / "1.log")
    snapshot = lambda: list((data / "huggingface/snapshots").glob("*.jsonl"))  # noqa: E731
    crawl.wait_until(lambda: listing.reached.is_set() and count_lines(snapshot()) == 5 * PAGE,
                     "pages 1-5 stored")
    crawl.proc.send_signal(signal.SIGTERM)  # what Ctrl-C does: stop gracefully
    crawl.wait_until(lambda: "shutting down gracefully" in crawl.log, "the graceful stop")
    listing.open()  # page 6 (in flight) is read, its models' clones not started; page 7 goes into the queue
    assert crawl.wait() == 1  # paused, not finished (README "Exit status")
    assert "exit status 1: the crawl stopped before the end (finish reason shutdown)" in crawl.log
    paused = json.loads((tmp_path / "1.stats.json").read_text())
    assert paused["finish_reason"] == "shutdown"
    assert (paused["ptm/store/records"], paused["ptm/clone/deferred"]) == (5 * PAGE, PAGE)
    assert listing_requests(hub) == 6

    resumed = run_crawl("huggingface", tmp_path, args={"limit": limit},
                        settings=crawl_settings(hub, jobdir), data_dir=data, out_name="2.jsonl")
    assert "Resuming crawl (1 requests scheduled)" in resumed.log
    assert "fetching again the 1 page(s) of unstored models" in resumed.log
    assert resumed.stats["finish_reason"] == "finished"
    assert resumed.stats["ptm/store/records"] == limit - 5 * PAGE  # the limit counts both runs
    assert listing_requests(hub) == 8  # page 6 again (its models were not stored), then page 7
    records = read_jsonl(data / "huggingface/huggingface.jsonl")
    assert sorted(f"{r['ModelOwner']}/{r['ModelName']}" for r in records) == sorted(listing_order(hub)[:limit])
    assert set(info_refs_per_repo(hub).values()) == {1}
    assert "narrowed by -a limit" in resumed.log  # a limited crawl reports nothing as removed


def test_a_pause_starts_no_more_clones_and_the_resumed_job_clones_the_rest(tmp_path, hub):
    """Scrapy's graceful stop waits for every model of the pages it has fetched: a pause (Ctrl-C once,
    Scrapyd's cancel) cloned all of them first, a thousand repositories a Hugging Face page. The clone
    in flight finishes; the others are not started, their pages are saved in the JOBDIR, and the
    resumed job fetches those pages again and clones each repository once."""
    data, jobdir = tmp_path / "data", tmp_path / "job"
    first = listing_order(hub)[0]
    clone = hold(hub.replica, "POST", hub.git._smart_http, lambda req, m, n: m.group("repo") == first)
    settings = {**crawl_settings(hub, jobdir), "PTM_CLONE_CONCURRENCY": 1}
    cmd = crawl_command("huggingface", tmp_path / "1.jsonl", data, tmp_path / "1.stats.json", settings=settings)
    crawl = BackgroundCrawl(cmd, tmp_path / "1.log")
    crawl.wait_until(lambda: clone.reached.is_set() and listing_requests(hub) >= 2, "the first clone, page 2 listed")
    crawl.proc.send_signal(signal.SIGTERM)
    crawl.wait_until(lambda: "shutting down gracefully" in crawl.log, "the graceful stop")
    clone.open()
    assert crawl.wait() == 1
    paused = json.loads((tmp_path / "1.stats.json").read_text())
    assert (paused["finish_reason"], paused["ptm/store/records"]) == ("shutdown", 1)
    assert paused["ptm/clone/cloned"] == 1 and paused["ptm/clone/deferred"] >= PAGE - 1
    assert set(info_refs_per_repo(hub)) == {first}

    resumed = run_crawl("huggingface", tmp_path, settings=settings, data_dir=data, out_name="2.jsonl")
    assert "fetching again the " in resumed.log and "page(s) of unstored models" in resumed.log
    assert resumed.stats["ptm/dedupe/stored_by_earlier_runs"] == 1
    assert resumed.stats["ptm/store/records"] == len(hub.models) - 1
    assert_dataset_is_whole(data, hub)
    assert set(info_refs_per_repo(hub).values()) == {1}


def test_resuming_a_job_with_nothing_left_to_do_exits_0_so_a_resume_loop_ends(tmp_path, hub):
    """A job paused after its last page was listed (only a clone in flight) has nothing left: the
    resumed run stores nothing new, and the models its earlier run stored count (it was "nothing
    was stored", exit 1, on every resume)."""
    data, jobdir = tmp_path / "data", tmp_path / "job"
    last = listing_order(hub)[-1]
    clone = hold(hub.replica, "POST", hub.git._smart_http, lambda req, m, n: m.group("repo") == last)
    cmd = crawl_command("huggingface", tmp_path / "1.jsonl", data, tmp_path / "1.stats.json",
                        settings=crawl_settings(hub, jobdir))
    crawl = BackgroundCrawl(cmd, tmp_path / "1.log")
    snapshot = lambda: list((data / "huggingface/snapshots").glob("*.jsonl"))  # noqa: E731
    # Paused once every other model is stored: clones still waiting for a thread would not be started.
    crawl.wait_until(lambda: clone.reached.is_set() and count_lines(snapshot()) == len(hub.models) - 1,
                     "the last model's clone, every other model stored")
    crawl.proc.send_signal(signal.SIGTERM)
    crawl.wait_until(lambda: "shutting down gracefully" in crawl.log, "the graceful stop")
    clone.open()
    assert crawl.wait() == 1
    paused = json.loads((tmp_path / "1.stats.json").read_text())
    assert (paused["finish_reason"], paused["ptm/store/records"]) == ("shutdown", len(hub.models))

    runs = []
    for n in (2, 3):  # a resume loop: "resume until exit status 0"
        runs.append(run_crawl("huggingface", tmp_path, settings=crawl_settings(hub, jobdir), data_dir=data,
                              out_name=f"{n}.jsonl", check=False))
        if runs[-1].returncode == 0:
            break
    resumed = runs[0]
    assert resumed.returncode == 0, resumed.log[-3000:]
    assert f"Resuming the job in {jobdir}: the previous run was paused gracefully" in resumed.log
    assert "Crawl verdict: exit status 0: every listed page was read" in resumed.log
    stats = resumed.stats
    assert stats["finish_reason"] == "finished" and stats.get("ptm/store/records", 0) == 0
    assert stats["ptm/dedupe/stored_by_earlier_runs"] == len(hub.models)
    assert stats["ptm/store/removed"] == 0
    assert_dataset_is_whole(data, hub)

    again = run_crawl("huggingface", tmp_path, settings=crawl_settings(hub, jobdir), data_dir=data,
                      out_name="4.jsonl")  # check=True: exit status 0
    assert f"The job in {jobdir} has finished" in again.log and "Resuming" not in again.log


@pytest.mark.parametrize("reason, said", [
    ("shutdown", "the previous run was paused gracefully"),
    ("failed_pages", "the previous run ended with failed pages"),
    ("nothing_stored", "the previous run stored nothing"),
    ("closespider_timeout", "the previous run ended with finish reason 'closespider_timeout'"),
])
def test_a_resumed_job_says_how_its_previous_run_ended(tmp_path, caplog, reason, said):
    from ptmscrape.jobdir import JobGuard

    settings = {"JOBDIR": str(tmp_path / "job")}
    first = project_crawler(HuggingfaceSpider, settings).get_extension(JobGuard)
    first.spider_closed(None, reason)
    with caplog.at_level("INFO", logger="ptmscrape.jobdir"):
        project_crawler(HuggingfaceSpider, settings)
    assert f"Resuming the job in {tmp_path / 'job'}: {said}" in caplog.text
    assert "has finished" not in caplog.text


# -- pages a job lost -----------------------------------------------------------------------------

LOSSY = {"PTM_CLONE": 0, "RETRY_TIMES": 1, "PTM_PAGE_RETRIES": 1, "PTM_RETRY_BACKOFF": 0.05}


@pytest.fixture
def small_hub():
    with HuggingFaceReplica(synthetic_models(60, seed=4), repos=False) as hub:
        yield hub


def page_3(hub) -> str:
    """The cursor of listing page 3 (pages of 5)."""
    order = hub._order("downloads")
    last_of_page_2 = hub.models[order[9][2]]
    return _cursor("downloads", last_of_page_2.get("downloads") or 0, last_of_page_2["_id"])


def fetches(hub, cursor) -> int:
    return sum(1 for method, path in hub.replica.requests if method == "GET" and "/api/models?" in path
               and f"cursor={cursor}" in urllib.parse.unquote_plus(path))


def lossy_settings(hub, jobdir=None):
    return {"PTM_HUGGINGFACE_URL": hub.url, "PTM_HUGGINGFACE_PAGE_SIZE": 5, **LOSSY,
            **({"JOBDIR": jobdir} if jobdir else {})}


def removed_reports(data):
    return list((data / "huggingface").glob("removed-*.txt"))


def test_a_page_lost_before_a_pause_is_fetched_again_when_the_job_resumes(tmp_path, small_hub):
    """The operator's case: a listing page malformed for good, then a pause. The resumed run must
    not call the job complete (exit 0, models of the lost page "removed"): it fetches the page
    again; still broken, the run fails; mended, the job completes."""
    hub, data, jobdir = small_hub, tmp_path / "data", tmp_path / "job"
    run_crawl("huggingface", tmp_path, settings=lossy_settings(hub), data_dir=data, out_name="0.jsonl")
    cursor = page_3(hub)
    faults = inject(hub.replica, FaultPlan(broken={re.escape(cursor): "malformed"}))
    listing = hold(hub.replica, "GET", hub._listing, lambda req, m, n: n >= 8 and req.arg("cursor") != cursor)
    cmd = crawl_command("huggingface", tmp_path / "1.jsonl", data, tmp_path / "1.stats.json",
                        settings=lossy_settings(hub, jobdir))
    crawl = BackgroundCrawl(cmd, tmp_path / "1.log")
    crawl.wait_until(lambda: listing.reached.is_set() and "Page failed after retries" in crawl.log,
                     "page 3 lost, a later page held")
    crawl.proc.send_signal(signal.SIGTERM)
    crawl.wait_until(lambda: "shutting down gracefully" in crawl.log, "the graceful stop")
    listing.open()
    assert crawl.wait() == 1
    lost_at = fetches(hub, cursor)

    still_broken = run_crawl("huggingface", tmp_path, settings=lossy_settings(hub, jobdir), data_dir=data,
                             out_name="2.jsonl", check=False)
    stats = still_broken.stats
    assert still_broken.returncode == 1 and stats["finish_reason"] == "failed_pages"
    assert "not reported as removed: 1 page(s) failed" in still_broken.log
    assert "ptm/store/removed" not in stats and removed_reports(data) == []
    assert fetches(hub, cursor) > lost_at  # fetched again (its fingerprint is in requests.seen)
    assert stats["ptm/job/pages_fetched_again"] == 1 and stats["ptm/pages/failed"] == 1
    assert (f"Resuming the job in {jobdir}: the previous run was paused gracefully; fetching again "
            "the 1 page(s) the job lost") in still_broken.log

    faults.plan.broken.clear()  # the hub mends the page
    mended = run_crawl("huggingface", tmp_path, settings=lossy_settings(hub, jobdir), data_dir=data,
                       out_name="3.jsonl")
    assert (f"Resuming the job in {jobdir}: the previous run ended with failed pages; fetching again "
            "the 1 page(s) the job lost") in mended.log
    stats = mended.stats
    assert stats["finish_reason"] == "finished" and "ptm/pages/failed" not in stats
    assert stats["ptm/job/pages_fetched_again"] == 1 and stats["ptm/store/records"] == 5
    assert stats["ptm/store/removed"] == 0 and removed_reports(data) == []
    stored = [r["id"] for path in jobdir_snapshots(jobdir) for r in read_jsonl(path)]
    assert sorted(stored) == sorted(r["id"] for r in mended.records("huggingface"))  # every model once
    assert not (jobdir / "ptm-failed-pages.pickle").exists()


def jobdir_snapshots(jobdir):
    return [Path(line) for line in (jobdir / "ptm-snapshots.txt").read_text().splitlines()]


def test_a_job_that_ended_with_a_lost_page_reads_the_rest_of_the_listing_when_resumed(tmp_path, small_hub):
    """A listing page lost to 5xx cuts the listing there; the resumed job fetches it again and
    follows the listing to its end."""
    hub, data, jobdir = small_hub, tmp_path / "data", tmp_path / "job"
    faults = inject(hub.replica, FaultPlan(broken={re.escape(page_3(hub)): "5xx"}))
    first = run_crawl("huggingface", tmp_path, settings=lossy_settings(hub, jobdir), data_dir=data,
                      out_name="1.jsonl", check=False)
    assert first.returncode == 1 and first.stats["finish_reason"] == "failed_pages"
    assert first.stats["ptm/store/records"] == 10  # pages 1 and 2

    faults.plan.broken.clear()
    resumed = run_crawl("huggingface", tmp_path, settings=lossy_settings(hub, jobdir), data_dir=data,
                        out_name="2.jsonl")
    assert "the previous run ended with failed pages; fetching again the 1 page(s)" in resumed.log
    assert resumed.stats["ptm/store/records"] == len(hub.models) - 10
    assert sorted(r["id"] for r in resumed.records("huggingface")) == sorted(
        r["id"] for r in first.items + resumed.items)
    assert len(resumed.records("huggingface")) == len(hub.models)


def test_after_a_hard_kill_the_restarted_job_lists_the_lost_page_once(tmp_path, small_hub):
    """Killed while fetching a lost page again: the restarted job lists the hub from the start
    (the lost page among the others), and does not schedule the saved copy too."""
    hub, data, jobdir = small_hub, tmp_path / "data", tmp_path / "job"
    cursor = page_3(hub)
    faults = inject(hub.replica, FaultPlan(broken={re.escape(cursor): "5xx"}))
    first = run_crawl("huggingface", tmp_path, settings=lossy_settings(hub, jobdir), data_dir=data,
                      out_name="1.jsonl", check=False)
    assert first.returncode == 1 and (jobdir / "ptm-failed-pages.pickle").exists()

    faults.plan.broken.clear()
    again = hold(hub.replica, "GET", hub._listing, lambda req, m, n: req.arg("cursor") == cursor)
    cmd = crawl_command("huggingface", tmp_path / "2.jsonl", data, tmp_path / "2.stats.json",
                        settings=lossy_settings(hub, jobdir))
    crawl = BackgroundCrawl(cmd, tmp_path / "2.log")
    crawl.wait_until(again.reached.is_set, "the lost page fetched again")
    crawl.kill()
    again.open()

    before = fetches(hub, cursor)
    restarted = run_crawl("huggingface", tmp_path, settings=lossy_settings(hub, jobdir), data_dir=data,
                          out_name="3.jsonl")
    assert "was killed before it could save its request queue" in restarted.log
    assert "fetching again" not in restarted.log and "ptm/job/pages_fetched_again" not in restarted.stats
    assert fetches(hub, cursor) == before + 1
    assert sorted(r["id"] for r in restarted.records("huggingface")) == sorted(
        r["id"] for r in first.items + restarted.items)
    assert len(restarted.records("huggingface")) == len(hub.models)


def test_a_lost_page_that_cannot_be_fetched_again_fails_every_later_run_of_the_job(tmp_path, small_hub):
    """A lost page whose request could not be saved: the resumed run cannot fetch it, so it fails
    (exit status 1) and reports no model removed, and so does the next."""
    from ptmscrape.jobdir import JobGuard

    hub, data, jobdir = small_hub, tmp_path / "data", tmp_path / "job"
    run_crawl("huggingface", tmp_path, settings=lossy_settings(hub), data_dir=data, out_name="0.jsonl")
    hub.remove_model(next(iter(hub.models)))  # a complete crawl would report it removed

    crawler = project_crawler(HuggingfaceSpider, {"JOBDIR": str(jobdir)})
    crawler.spider = HuggingfaceSpider.from_crawler(crawler)
    guard = crawler.get_extension(JobGuard)
    guard.page_failed("HTTP 503", request=scrapy.Request(hub.url + "/api/models", callback=lambda r: None))
    guard.spider_closed(crawler.spider, "shutdown")

    for n in (1, 2):
        result = run_crawl("huggingface", tmp_path, settings=lossy_settings(hub, jobdir), data_dir=data,
                           out_name=f"{n}.jsonl", check=False)
        assert result.returncode == 1, result.log[-3000:]
        assert "1 page(s) lost by earlier runs of the job" in result.log
        assert result.log.rstrip().splitlines()[-1].endswith(
            "Crawl verdict: exit status 1: 1 page failed (lost by an earlier run: 1)")
        assert "not reported as removed: 1 page(s) failed" in result.log
        assert removed_reports(data) == []


# -- history calls a job lost (the same mechanism; end to end: tests/test_cli_huggingface_history.py) --

LISTED = {"_id": "621ffdc036468d709f174338", "id": "google-bert/bert-base-uncased", "sha": "a" * 40}


def history_job(tmp_path):
    """A Hugging Face spider with ``-a history=refs`` in the JOBDIR ``tmp_path/job``, and its JobGuard."""
    from ptmscrape.jobdir import JobGuard

    spider = make_spider(HuggingfaceSpider, {"JOBDIR": str(tmp_path / "job"), "PTM_DATA_DIR": str(tmp_path / "data"),
                                             "PTM_HUGGINGFACE_URL": "http://127.0.0.1:9"}, history="refs")
    return spider, spider.crawler.get_extension(JobGuard)


class Engine:
    """What JobGuard uses of Scrapy's engine: ``crawl``."""

    def __init__(self):
        self.crawled = []

    def crawl(self, request):
        self.crawled.append(request)


def test_a_lost_history_call_is_saved_with_the_job_and_scheduled_again_with_its_retries_afresh(tmp_path, caplog):
    spider, guard = history_job(tmp_path)
    (call,) = spider.history_requests(LISTED)
    call.meta.update(retry_times=2, ptm_ratelimit_retries=1)
    spider.count_lost_history_call("failed after retries (HTTP 503)", call)
    guard.page_failed("HTTP 503", request=spider.request(spider.base_url + "/api/models?p=3", spider.parse_listing))
    guard.spider_closed(spider, "failed_pages")

    with caplog.at_level("INFO", logger="ptmscrape.jobdir"):
        resumed, guard = history_job(tmp_path)
    assert (f"Resuming the job in {tmp_path / 'job'}: the previous run ended with failed pages; fetching again "
            "the 1 page(s) and 1 history call(s) the job lost") in caplog.text
    resumed.crawler.engine = engine = Engine()
    guard.spider_opened(resumed)
    page, again = engine.crawled
    assert page.url.endswith("?p=3") and again.url == call.url and again.dont_filter
    assert (again.callback, again.errback) == (resumed.parse_history_refs, resumed.history_failed)
    assert again.meta["ptm_history"] == call.meta["ptm_history"]
    assert "retry_times" not in again.meta and "ptm_ratelimit_retries" not in again.meta
    stats = resumed.crawler.stats
    assert stats.get_value("ptm/job/history_calls_fetched_again") == 1
    assert stats.get_value("ptm/job/pages_fetched_again") == 1  # pages counted as before, apart


def test_a_lost_history_call_that_cannot_be_saved_is_lost_in_every_later_run_of_the_job(tmp_path, caplog):
    from ptmscrape.verdict import verdict

    spider, guard = history_job(tmp_path)
    spider.count_lost_history_call("failed after retries (HTTP 503)")  # its request unknown
    guard.spider_closed(spider, "finished")
    for _ in (1, 2):
        caplog.clear()
        with caplog.at_level("INFO", logger="ptmscrape.jobdir"):
            resumed, guard = history_job(tmp_path)
        assert "has finished" not in caplog.text and "Resuming the job in" in caplog.text
        assert ("1 history call(s) lost by earlier runs of the job in " in caplog.text
                and "they count as lost in every run of this job" in caplog.text)
        resumed.crawler.engine = Engine()
        guard.spider_opened(resumed)
        stats = resumed.crawler.stats.get_stats()
        assert stats["ptm/history/lost/lost by an earlier run"] == 1 and "ptm/pages/failed" not in stats
        assert verdict({**stats, "finish_reason": "finished", "ptm/store/records": 1}).reason == (
            "1 history call lost (lost by an earlier run: 1)")
        guard.spider_closed(resumed, "finished")  # and saved again as such


def test_a_saved_history_call_whose_callback_is_gone_is_named_and_counted_lost(tmp_path, caplog):
    """E.g. a callback renamed between the runs: the call cannot be scheduled; the error names it
    (its URL names the model) and the run fails."""
    spider, guard = history_job(tmp_path)
    (call,) = spider.history_requests(LISTED)
    spider.count_lost_history_call("failed after retries (HTTP 503)", call)
    guard.spider_closed(spider, "finished")
    saved = pickle.loads((tmp_path / "job/ptm-failed-pages.pickle").read_bytes())
    (entry,) = saved["history_calls"]
    saved["history_calls"] = [pickle.dumps({**pickle.loads(entry), "callback": "parse_history_gone"})]
    (tmp_path / "job/ptm-failed-pages.pickle").write_bytes(pickle.dumps(saved))

    resumed, guard = history_job(tmp_path)
    resumed.crawler.engine = engine = Engine()
    with caplog.at_level("ERROR", logger="ptmscrape.jobdir"):
        guard.spider_opened(resumed)
    assert engine.crawled == [] and f"A history call the job lost cannot be fetched again ({call.url})" in caplog.text
    assert resumed.crawler.stats.get_value("ptm/history/lost/lost by an earlier run") == 1
    assert resumed.crawler.stats.get_value("ptm/job/history_calls_fetched_again") is None


# -- pages whose models the store stage could not store (end to end: tests/test_full_disk.py) --

def listing_job(tmp_path, **arguments):
    """A Hugging Face spider in the JOBDIR ``tmp_path/job`` (its ``state`` loaded, as Scrapy's
    SpiderState does), and its JobGuard."""
    from ptmscrape.jobdir import JobGuard

    spider = make_spider(HuggingfaceSpider, {"JOBDIR": str(tmp_path / "job"), "PTM_DATA_DIR": str(tmp_path / "data"),
                                             "PTM_HUGGINGFACE_URL": "http://127.0.0.1:9"}, **arguments)
    state = tmp_path / "job/spider.state"
    spider.state = pickle.loads(state.read_bytes()) if state.exists() else {}
    return spider, spider.crawler.get_extension(JobGuard)


def listed_models(spider, url, n, request=None, first=0):
    """The raw items ``parse_listing`` gives for a page of ``n`` models (``first``: the number of
    the first), and the page's request (``request``: the one given)."""
    from ptmscrape.items import RawModelItem
    from tests.helpers import json_response

    request = request or spider.request(url, spider.parse_listing)
    page = json_response(url, [{"id": f"owner/model-{i}", "_id": f"{i:024x}"} for i in range(first, first + n)],
                         request)
    return [out for out in spider.parse_listing(page) if isinstance(out, RawModelItem)], request


def test_a_page_whose_models_were_not_stored_is_saved_once_and_fetched_again_with_its_models_uncounted(
        tmp_path, caplog):
    """A full disk drops the models in flight (several of one listing page): the page is saved once,
    and the resumed job fetches it again; with -a limit it lists its models again without counting
    them (they were counted), whatever pages the resumed job reads before it."""
    from ptmscrape import signals as ptm_signals
    from ptmscrape.spiders_base import LISTED_META, RELISTED_META

    spider, guard = listing_job(tmp_path, limit="25")
    first, first_page = listed_models(spider, spider.base_url + "/api/models?p=1", 10)
    items, page = listed_models(spider, spider.base_url + "/api/models?p=2", 10, first=10)
    assert all(item.request is page for item in items) and first[0].request is first_page
    assert spider.items_yielded == 20
    for item in items[6:]:  # what the store stage says of each model it drops
        spider.crawler.signals.send_catch_log(ptm_signals.model_not_stored, reason="No space left on device",
                                              request=item.request)
    with caplog.at_level("WARNING", logger="ptmscrape.jobdir"):
        guard.spider_closed(spider, "store_failed")
    assert f"Saved in {tmp_path / 'job'} the 1 page(s) of unstored models" in caplog.text
    (tmp_path / "job/spider.state").write_bytes(pickle.dumps(spider.state))  # as SpiderState saves it

    caplog.clear()
    with caplog.at_level("INFO", logger="ptmscrape.jobdir"):
        resumed, guard = listing_job(tmp_path, limit="25")
    assert (f"Resuming the job in {tmp_path / 'job'}: the previous run was stopped: the dataset tree could not be "
            "written (a full disk?); fetching again the 1 page(s) of unstored models the job lost") in caplog.text
    resumed.crawler.engine = engine = Engine()
    guard.spider_opened(resumed)
    (again,) = engine.crawled
    assert again.url == page.url and again.dont_filter and again.callback == resumed.parse_listing
    assert LISTED_META not in again.meta and again.meta[RELISTED_META] == 10
    assert resumed.items_yielded == 20
    assert resumed.crawler.stats.get_value("ptm/job/pages_of_unstored_models_fetched_again") == 1
    # Page 3 (queued by the first run) may be read first: it gives only what the limit leaves (taking
    # page 2's models off the count instead let it give 10, and page 2 then 5 of its 10).
    third, _ = listed_models(resumed, spider.base_url + "/api/models?p=3", 10, first=20)
    assert len(third) == 5 and resumed.items_yielded == 25
    relisted, _ = listed_models(resumed, again.url, 10, request=again, first=10)
    assert [item.model_id for item in relisted] == [item.model_id for item in items]
    assert resumed.items_yielded == 25
    guard.spider_closed(resumed, "finished")
    assert not (tmp_path / "job/ptm-failed-pages.pickle").exists()  # nothing left to fetch again


def test_two_pages_the_job_fetches_again_that_follow_each_other_are_no_listing_loop(tmp_path, caplog):
    """A pause (the clone stage had not started the clones of two listing pages' models) saves both
    pages; the resumed run fetches both again, and the first one's next page is the second, which
    Scrapy's dupefilter drops (the earlier run read it). That was taken for a loop: an ERROR
    'Listing loops', a failed page no JOBDIR could save, so every later run of the job exited 1
    ('lost by an earlier run') though the job had every model (found by a kill/pause soak)."""
    from ptmscrape import signals as ptm_signals

    spider, guard = listing_job(tmp_path)
    base = spider.base_url + "/api/models"
    first, _ = listed_models(spider, base + "?p=1", 10)
    second, page2 = listed_models(spider, base + "?p=2", 10, first=10)
    for item in (first[4], second[0]):  # what the clone stage says of each model a pause leaves unstarted
        spider.crawler.signals.send_catch_log(ptm_signals.model_not_stored, reason="the crawl stopped before its clone",
                                              request=item.request)
    guard.spider_closed(spider, "shutdown")

    resumed, guard = listing_job(tmp_path)
    resumed.crawler.engine = engine = Engine()
    guard.spider_opened(resumed)
    assert sorted(r.url for r in engine.crawled) == [base + "?p=1", base + "?p=2"]
    signals = resumed.crawler.signals
    for request in engine.crawled:  # the scheduler takes them (dont_filter: past the dupefilter)
        signals.send_catch_log(scrapy.signals.request_scheduled, request=request, spider=resumed)
    # Page 1, read again, asks for page 2: the engine signals it scheduled, then the dupefilter drops it.
    next_page = resumed.next_page(page2.url, resumed.parse_listing)
    resumed.mark_listing_link(next_page, next(r for r in engine.crawled if r.url.endswith("?p=1")))
    with caplog.at_level("ERROR"):
        signals.send_catch_log(scrapy.signals.request_scheduled, request=next_page, spider=resumed)
        signals.send_catch_log(scrapy.signals.request_dropped, request=next_page, spider=resumed)
    assert "Listing loops" not in caplog.text
    assert resumed.crawler.stats.get_value("ptm/pages/failed") is None
    # A next page that repeats one this run asked for by a link is still a loop.
    again = resumed.next_page(base + "?p=3", resumed.parse_listing)
    for _ in range(2):
        repeat = again.copy()
        signals.send_catch_log(scrapy.signals.request_scheduled, request=repeat, spider=resumed)
    signals.send_catch_log(scrapy.signals.request_dropped, request=repeat, spider=resumed)
    assert resumed.crawler.stats.get_value("ptm/pages/failed/listing loops") == 1


def test_without_a_limit_a_listing_request_carries_nothing_per_model(tmp_path):
    spider, _ = listing_job(tmp_path)
    items, page = listed_models(spider, spider.base_url + "/api/models?p=1", 3)
    assert all(item.request is page for item in items)
    from ptmscrape.spiders_base import LISTED_META

    assert LISTED_META not in page.meta


def test_a_model_not_stored_whose_request_is_unknown_fails_every_later_run_of_the_job(tmp_path, caplog):
    from ptmscrape import signals as ptm_signals

    spider, guard = listing_job(tmp_path)
    spider.crawler.signals.send_catch_log(ptm_signals.model_not_stored, reason="No space left on device",
                                          request=None)
    guard.spider_closed(spider, "store_failed")
    for lost in ("1 page(s) of unstored models", "1 page(s)"):  # counted as a lost page from then on
        caplog.clear()
        with caplog.at_level("ERROR", logger="ptmscrape.jobdir"):
            resumed, guard = listing_job(tmp_path)
        assert f"{lost} lost by earlier runs of the job" in caplog.text
        resumed.crawler.engine = Engine()
        guard.spider_opened(resumed)
        assert resumed.crawler.stats.get_value("ptm/pages/failed/lost by an earlier run") == 1
        guard.spider_closed(resumed, "failed_pages")


def test_a_torn_jobdir_left_by_a_kill_does_not_end_the_job_early(tmp_path, hf_replica):
    """After a kill, Scrapy's requests.seen may hold the start page (its buffer was flushed) while
    the queue holding the next pages was never saved: trusting it, the job would "finish" at once."""
    settings = {"PTM_HUGGINGFACE_URL": hf_replica.url, "PTM_HUGGINGFACE_PAGE_SIZE": 5, "PTM_CLONE": 0,
                "JOBDIR": tmp_path / "job"}
    crawler = project_crawler(HuggingfaceSpider, {**settings, "JOBDIR": ""})
    (start,) = asyncio.run(first_requests(HuggingfaceSpider.from_crawler(crawler)))
    fingerprint = crawler.request_fingerprinter.fingerprint(start)
    (tmp_path / "job").mkdir()
    (tmp_path / "job/requests.seen").write_bytes(len(fingerprint).to_bytes(2, "big") + fingerprint)
    (tmp_path / "job/ptm-running.json").write_text('{"pid": 4194304}')  # the killed run's mark

    result = run_crawl("huggingface", tmp_path, settings=settings)
    assert "was killed before it could save its request queue" in result.log
    assert len(result.items) == len(hf_replica.models) == 12
    assert not (tmp_path / "job/ptm-running.json").exists()  # closed cleanly this time


def test_a_jobdir_is_used_by_one_crawl_at_a_time(tmp_path):
    from ptmscrape.jobdir import JobDirBusy, JobGuard

    settings = {"JOBDIR": str(tmp_path / "job")}
    first = project_crawler(HuggingfaceSpider, settings).get_extension(JobGuard)
    with pytest.raises(JobDirBusy, match="in use by another running crawl"):
        project_crawler(HuggingfaceSpider, settings)
    first.spider_closed(None, "finished")
    project_crawler(HuggingfaceSpider, settings)  # free again


# -- every spider ------------------------------------------------------------------------------

def spider_classes():
    for info in pkgutil.iter_modules(spiders.__path__):
        if info.name.startswith("_"):
            continue
        module = importlib.import_module(f"spiders.{info.name}")
        for obj in vars(module).values():
            if isinstance(obj, type) and issubclass(obj, HubSpider) and obj.__module__ == module.__name__:
                yield obj


async def first_requests(spider, n=50):
    out = []
    async for request in spider.start():
        if isinstance(request, scrapy.Request):
            out.append(request)
        if len(out) >= n:
            break
    return out


@pytest.mark.parametrize("spidercls", list(spider_classes()), ids=lambda c: c.name)
def test_every_spiders_start_requests_can_be_saved_in_a_jobdir(spidercls):
    spider = make_spider(spidercls, {spidercls.base_url_setting: "http://127.0.0.1:9"})
    requests = asyncio.run(first_requests(spider))
    assert requests, f"{spidercls.name} yields no start request"
    for request in requests:
        # What Scrapy's disk queue does (scrapy.squeues): callbacks by name, so they must be
        # spider methods; then pickle, so meta and cb_kwargs must be picklable.
        saved = pickle.dumps(request.to_dict(spider=spider), protocol=4)
        restored = request_from_dict(pickle.loads(saved), spider=spider)
        assert (restored.url, restored.callback, restored.errback) == (request.url, request.callback,
                                                                        request.errback)


def test_a_job_resumed_into_another_data_dir_is_refused_before_it_starts(tmp_path, hub):
    """Each Scrapyd schedule call repeats the settings: a job resumed with another PTM_DATA_DIR (a
    typo, a relative path, none) skipped the models its earlier runs stored, stored the rest in the
    other tree, and exited 0: the job's dataset was split in two, neither whole."""
    data, jobdir = tmp_path / "data", tmp_path / "job"
    settings = {**crawl_settings(hub, jobdir), "PTM_CLONE": "0"}
    run_crawl("huggingface", tmp_path, args={"limit": 5}, settings=settings, data_dir=data, out_name="1.jsonl")
    other = tmp_path / "other-data"
    again = run_crawl("huggingface", tmp_path, args={"limit": 5}, settings=settings, data_dir=other,
                      out_name="2.jsonl", check=False)
    assert again.returncode == 2, again.log[-3000:]
    assert (f"-s JOBDIR={jobdir} is a job of the data dir {data} (its earlier runs stored there): resume it "
            f"with -s PTM_DATA_DIR={data}, or give this crawl a new JOBDIR") in again.log
    assert not other.exists()
    run_crawl("huggingface", tmp_path, args={"limit": 5}, settings=settings, data_dir=data / "huggingface" / "..",
              out_name="3.jsonl")  # the job's own data dir, however written: not refused (exit status 0)


@pytest.mark.parametrize("written", ["~/data", "~/data/", "~/link"])
def test_a_job_resumed_with_its_own_data_dir_however_written_is_not_refused(tmp_path, monkeypatch, written):
    """``PTM_DATA_DIR=~/data`` (the tree, check_data_dir and every command expand ``~``): the job's
    snapshots are noted under the expanded path, and the check compared them with ``~/data`` taken
    as a folder named ``~`` in the working directory, so every resume of such a job was refused
    (exit status 2) though it names the job's own data dir."""
    from scrapy.settings import Settings

    from ptmscrape import jobdir as jobdir_module
    from ptmscrape.checks import BadInput

    home = tmp_path / "home"
    snapshots = home / "data" / "huggingface" / "snapshots"
    snapshots.mkdir(parents=True)
    (home / "link").symlink_to(home / "data")
    monkeypatch.setenv("HOME", str(home))
    monkeypatch.chdir(tmp_path)
    job = tmp_path / "job"
    settings = Settings({"JOBDIR": str(job), "PTM_DATA_DIR": written})
    snapshot = snapshots / "huggingface-20260101T000000.jsonl"
    snapshot.write_text('{"id": 1}\n')
    jobdir_module.remember_snapshot(settings, snapshot)
    jobdir_module.check_data_dir(settings)  # its own data dir: not refused
    with pytest.raises(BadInput, match=f"is a job of the data dir {home / 'data'} "):
        jobdir_module.check_data_dir(Settings({"JOBDIR": str(job), "PTM_DATA_DIR": "~/other"}))


def test_a_next_page_back_to_a_page_the_job_fetches_again_after_it_is_a_listing_loop(tmp_path, caplog):
    """A hostile hub whose page 2 links back to page 1, while page 1 is a page the resumed job
    fetches again: page 1 read again asks for page 2, whose next page is page 1, which the
    dupefilter drops (the earlier run read it). A fresh crawl reports that loop (exit status 1); the
    resumed job ended the listing in silence (exit status 0, the models past the loop reported as
    removed), as pages fetched again were not remembered at all."""
    from ptmscrape import signals as ptm_signals

    spider, guard = listing_job(tmp_path)
    base = spider.base_url + "/api/models"
    first, page1 = listed_models(spider, base + "?p=1", 10)
    spider.crawler.signals.send_catch_log(ptm_signals.model_not_stored, reason="the crawl stopped before its clone",
                                          request=first[0].request)
    guard.spider_closed(spider, "shutdown")

    resumed, guard = listing_job(tmp_path)
    resumed.crawler.engine = engine = Engine()
    guard.spider_opened(resumed)
    (again,) = engine.crawled
    signals = resumed.crawler.signals
    signals.send_catch_log(scrapy.signals.request_scheduled, request=again, spider=resumed)
    page2 = resumed.next_page(base + "?p=2", resumed.parse_listing)  # page 1's next page, read by this run
    resumed.mark_listing_link(page2, again)
    signals.send_catch_log(scrapy.signals.request_scheduled, request=page2, spider=resumed)
    back = resumed.next_page(base + "?p=1", resumed.parse_listing)  # page 2's next page: page 1
    resumed.mark_listing_link(back, page2)
    with caplog.at_level("ERROR"):
        signals.send_catch_log(scrapy.signals.request_scheduled, request=back, spider=resumed)
        signals.send_catch_log(scrapy.signals.request_dropped, request=back, spider=resumed)
    assert "Listing loops: its next page " + base + "?p=1" in caplog.text
    assert resumed.crawler.stats.get_value("ptm/pages/failed/listing loops") == 1
