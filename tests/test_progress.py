"""Progress on long crawls (LogStats, clone progress), the run report (PTM_STATS_FILE) and the
optional spidermon monitors (PTM_MONITORS)."""

from __future__ import annotations

import errno
import json
import logging
import re
import subprocess
from pathlib import Path

from ptmscrape.extensions import StatsFile, human_bytes
from tests.crawl import crawl_command, run_crawl
from tests.crawl_control import BackgroundCrawl, hold

HELD = "acme-research/vit-tiny-demo"
PAGES = re.compile(r"Crawled ([1-9]\d*) pages \(at \d+ pages/min\), scraped \d+ items \(at \d+ items/min\)")
PROGRESS = re.compile(r"Clones: (\d+) waiting, (\d+) running, (\d+) done \((\d+) cloned, (\d+) updated, "
                      r"(\d+) unchanged\), (\d+) failed; (\d+) models \((\d+) failed, (\d+) skipped\); "
                      r"([\d.]+ \w+) landed \((\d+) done/min\)")


def settings(hub, **extra):
    return {"PTM_HUGGINGFACE_URL": hub.url, "PTM_HUGGINGFACE_PAGE_SIZE": 5, **extra}


def stored_bytes(repo) -> int:
    out = subprocess.run(["git", "-C", str(repo), "count-objects", "-v"], capture_output=True, text=True,
                         check=True).stdout
    sizes = dict(line.split(": ") for line in out.splitlines())
    return (int(sizes["size"]) + int(sizes["size-pack"])) * 1024


def test_a_long_crawl_logs_progress_and_ends_with_a_run_report(tmp_path, hf_replica):
    clone = hold(hf_replica.replica, "POST", hf_replica.git._smart_http,
                 lambda req, m, n: m.group("repo") == HELD)
    stats_file = tmp_path / "stats.json"
    cmd = crawl_command("huggingface", tmp_path / "out.jsonl", tmp_path / "data", stats_file,
                        settings=settings(hf_replica, LOGSTATS_INTERVAL=1, PTM_PROGRESS_INTERVAL=1))
    crawl = BackgroundCrawl(cmd, tmp_path / "crawl.log")
    # While one clone is held, Scrapy's LogStats reports pages and the progress lines show it running.
    crawl.wait_until(lambda: clone.reached.is_set() and PAGES.search(crawl.log)
                     and any(int(m[1]) >= 1 for m in PROGRESS.findall(crawl.log)), "progress with a running clone")
    clone.open()
    assert crawl.wait() == 0
    log = crawl.log
    ticks = PROGRESS.findall(log)
    # Waiting + running + done never exceed the 12 repositories: waiting is what is still to start.
    assert all(int(waiting) + int(running) + int(done) <= 12 for waiting, running, done, *rest in ticks)

    stats = json.loads(stats_file.read_text())
    assert stats["finish_reason"] == "finished"
    assert stats["ptm/clone/queued"] == stats["ptm/clone/cloned"] == stats["ptm/store/records"] == 12
    assert stats["ptm/clone/running"] == stats["ptm/clone/waiting"] == 0
    assert stats["ptm/clone/repos/cloned"] == 12
    repos = [p for owner in (tmp_path / "data/huggingface/repos").iterdir() if owner.name != ".incoming"
             for p in owner.iterdir()]
    assert stats["ptm/clone/bytes"] == sum(stored_bytes(r) for r in repos) > 0
    assert stats["ptm/validate/valid"] == stats["item_scraped_count"] == 12
    assert {"start_time", "finish_time", "elapsed_time_seconds"} <= stats.keys()
    assert (f"Clones at the end: 0 waiting, 0 running, 12 done (12 cloned, 0 updated, 0 unchanged), "
            f"0 failed; 12 models (0 failed, 0 skipped); {human_bytes(stats['ptm/clone/bytes'])} landed") in log


def test_the_run_report_says_why_a_crawl_stopped(tmp_path, hf_replica):
    # The second of the three pages waits until the crawl is closing: on a loaded machine all three
    # pages could otherwise be read, and their 12 models stored, before the item count closes it.
    second_page = hold(hf_replica.replica, "GET", hf_replica._listing, lambda req, m, n: n == 2)
    stats_file = tmp_path / "stats.json"
    cmd = crawl_command("huggingface", tmp_path / "out.jsonl", tmp_path / "data", stats_file,
                        settings=settings(hf_replica, PTM_CLONE=0, CLOSESPIDER_ITEMCOUNT=3))
    crawl = BackgroundCrawl(cmd, tmp_path / "crawl.log")
    crawl.wait_until(lambda: "Closing spider (closespider_itemcount)" in crawl.log, "the item count closing it")
    second_page.open()
    assert crawl.wait() == 0  # a count the user set is reached, not a crawl cut short (verdict.py)
    stats = json.loads(stats_file.read_text())
    assert stats["finish_reason"] == "closespider_itemcount"
    assert 3 <= stats["ptm/store/records"] <= 10  # the third page is never asked for
    assert "Clones:" not in crawl.log  # no clone progress when cloning is off


def test_monitors_pass_on_a_good_crawl(tmp_path, hf_replica):
    result = run_crawl("huggingface", tmp_path, settings=settings(hf_replica, PTM_CLONE=0, PTM_MONITORS=1))
    stats = result.stats
    assert stats["ptm/monitors/failed"] == 0
    assert stats["ptm/monitors/passed"] == 3  # the error count monitor "passes" by skipping: no errors
    assert "[Spidermon] 3 monitors in" in result.log and "[Spidermon] FAILED" not in result.log
    assert "Spider.log() is deprecated" not in result.log  # the gap ptmscrape.monitors fills


def test_a_failing_monitor_is_reported_in_log_and_run_report(tmp_path, hf_replica):
    result = run_crawl("huggingface", tmp_path, check=False,
                       settings=settings(hf_replica, PTM_CLONE=0, PTM_MONITORS=1, SPIDERMON_MIN_ITEMS=1000))
    assert result.returncode == 1  # README "Exit status": a failed monitor fails the crawl
    assert "Crawl verdict: exit status 1: 1 monitor failed (Extracted Items Monitor)" in result.log
    stats = result.stats
    assert stats["ptm/monitors/failed"] == 1
    assert stats["ptm/monitors/failed/Extracted Items Monitor"] == 1
    assert stats["ptm/monitors/passed"] == 2
    assert "[Spidermon] FAILED (failures=1" in result.log
    assert "FAIL: Extracted Items Monitor" in result.log
    assert "Expecting 'item_scraped_count' to be '>=' to '1000.0'. Current value: '12.0'" in result.log


def test_human_bytes():
    assert [human_bytes(n) for n in (0, 1023, 1024, 5 * 1024**2 + 1, 3 * 1024**4)] == [
        "0 B", "1023 B", "1.0 KiB", "5.0 MiB", "3.0 TiB"]


def test_a_clone_shared_by_every_model_is_reported_once(tmp_path):
    """The ONNX zoo: every model is a folder of one repository, cloned once; the progress line
    counts that one clone (and the models it served), not one clone per model."""
    from tests.replicas.onnx import OnnxZooReplica

    with OnnxZooReplica(tmp_path / "git", layout="2025") as zoo:
        result = run_crawl("onnxmodelzoo", tmp_path, settings=zoo.settings(), env=zoo.env())
    stats, models = result.stats, len(result.items)
    assert models > 1 and stats["ptm/clone/repos/cloned"] == 1 and stats["ptm/clone/cloned"] == models
    assert (f"Clones at the end: 0 waiting, 0 running, 1 done (1 cloned, 0 updated, 0 unchanged), "
            f"0 failed; {models} models (0 failed, 0 skipped);") in result.log


def test_a_run_report_that_cannot_be_written_is_one_error_and_leaves_no_temp_file(tmp_path, crawler, caplog,
                                                                                  monkeypatch):
    blocker = tmp_path / "not-a-folder"
    blocker.write_text("")
    report = StatsFile(crawler, str(blocker / "stats.json"))  # its folder is a file
    with caplog.at_level(logging.INFO, logger="ptmscrape.extensions"):
        report.spider_closed(crawler.spider, "finished")  # no exception: the crawl's close goes on
        report.engine_stopped()
    messages = [r.getMessage() for r in caplog.records]
    assert len(messages) == 1 and messages[0].startswith(f"Could not write the run report {blocker / 'stats.json'}")
    assert not any("Run report written" in m for m in messages)

    # A disk that fills while the report is written: the report before stays whole, no .tmp is left.
    path = tmp_path / "stats.json"
    report = StatsFile(crawler, str(path))
    report.spider_closed(crawler.spider, "finished")
    before = path.read_text()
    real_write_text = Path.write_text

    def filling(self, text, *args, **kwargs):
        real_write_text(self, text[:10], *args, **kwargs)
        raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr(Path, "write_text", filling)
    crawler.stats.set_value("ptm/store/records", 5)
    report.engine_stopped()
    monkeypatch.undo()
    assert path.read_text() == before and json.loads(before)["finish_reason"] == "finished"
    assert not (tmp_path / "stats.json.tmp").exists()


def test_the_end_of_a_crawl_says_what_it_left_out_just_before_the_verdict(crawler, caplog):
    from ptmscrape.extensions import CrawlVerdict

    ext = CrawlVerdict.from_crawler(crawler)
    crawler.stats.set_value("ptm/store/records", 10)
    crawler.stats.set_value("ptm/clone/failed", 2)
    crawler.stats.set_value("ptm/clone/failed/repository not found", 2)
    with caplog.at_level(logging.INFO, logger="ptmscrape.extensions"):
        ext.decide()
        ext.log()
    lines = [r for r in caplog.records if r.name == "ptmscrape.extensions"]
    assert lines[-1].getMessage() == "Crawl verdict: exit status 0: every listed page was read"
    assert lines[-2].levelno == logging.WARNING
    assert lines[-2].getMessage().startswith("Left out by this crawl: 2 models not cloned (repository not found: 2)")


def test_the_history_progress_line_tells_lost_calls_from_the_hubs_refusals(crawler):
    # "History: … 4000 failed" could not say whether the crawl was losing data (lost calls fail it)
    # or meeting gated models (refusals: expected, exit status 0).
    from ptmscrape.history.progress import HistoryProgress

    progress = HistoryProgress(crawler, 60.0)
    for name, value in {"ptm/history/models": 10, "ptm/history/calls": 40, "ptm/history/failed": 7,
                        "ptm/history/lost": 2}.items():
        crawler.stats.set_value(name, value)
    line = progress.line(final=True)
    assert line.startswith("10 models, 40 calls (4.0 per model), 7 failed (2 lost, 5 refused by the hub); stored ")


def test_the_clone_progress_line_names_the_git_jobs_waiting_to_be_tried_again(crawler):
    # Jobs waiting out a retry's delay (a rate-limited git host) are neither waiting for a thread
    # nor running: without them the line read "0 waiting, 0 running", as a hung crawl's would.
    from ptmscrape.extensions import CloneProgress

    progress = CloneProgress(crawler, 60.0)
    crawler.stats.set_value("ptm/clone/retrying", 3)
    assert progress.line(final=True).startswith("0 waiting, 0 running, 3 waiting to retry, 0 done (")
    crawler.stats.set_value("ptm/clone/retrying", 0)
    assert progress.line(final=True).startswith("0 waiting, 0 running, 0 done (")
