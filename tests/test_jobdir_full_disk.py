"""A ``JOBDIR`` that cannot be written (a full disk; ``ptmscrape/jobdir_writes.py``): the disk queue
writes a request whole or not at all, a request it cannot take is fetched from memory in this run,
and the next run of the job restarts from its first pages (as after a hard kill) instead of trusting
a state that lacks those requests. ``tests/full_disk.py`` fills the disk for the project's own
``os.write`` calls; the last test fills a real (tmpfs) disk, where Scrapy's buffered files fail too."""

from __future__ import annotations

import errno
import json
import os
import pickle
import struct
import sys

import pytest
import scrapy
from queuelib.queue import LifoDiskQueue

from ptmscrape.jobdir import RUNNING_MARK
from ptmscrape.jobdir_writes import WholeRecordLifoDiskQueue
from ptmscrape.stats import JOB_RESTARTED_AFTER_UNSAVED_STATE, JOB_STATE_NOT_SAVED
from tests.crawl import CrawlResult, crawl_command, run_crawl
from tests.full_disk import FullDisk, in_a_small_disk, small_disk
from tests.replicas.huggingface import HuggingFaceReplica, synthetic_models
from tests.test_full_disk import full_disk_crawl

ENOSPC_TEXT = os.strerror(errno.ENOSPC)


@pytest.fixture
def full_disk():
    yield lambda folder, budget: FullDisk(folder, budget).install()
    FullDisk.uninstall()


def test_a_record_the_disk_cannot_take_leaves_the_queue_as_it_was(tmp_path, full_disk):
    path = tmp_path / "q"
    queue = WholeRecordLifoDiskQueue(path)
    queue.push(b"first")
    queue.push(b"second")
    before = path.read_bytes()
    disk = full_disk(tmp_path, 7)  # the next record is cut short after 7 bytes, then refused
    with pytest.raises(OSError) as raised:
        queue.push(b"a request too long for the disk")
    assert raised.value.errno == errno.ENOSPC and disk.cut == 1
    assert path.read_bytes() == before and len(queue) == 2
    disk.budget = 10**6  # space freed
    queue.push(b"third")
    assert [queue.pop(), queue.pop()] == [b"third", b"second"]
    queue.close()
    reopened = LifoDiskQueue(path)  # queuelib's own queue reads the file: the format is queuelib's
    assert len(reopened) == 1 and reopened.pop() == b"first"
    reopened.close()


def test_a_queue_the_disk_cannot_create_leaves_no_file_and_a_cut_short_one_is_empty(tmp_path, full_disk):
    disk = full_disk(tmp_path, 0)
    with pytest.raises(OSError):
        WholeRecordLifoDiskQueue(tmp_path / "q")
    assert not (tmp_path / "q").exists()
    disk.budget = 10**6
    (tmp_path / "q").write_bytes(b"\0\0")  # queuelib's buffered creation, cut short by a full disk
    queue = WholeRecordLifoDiskQueue(tmp_path / "q")  # queuelib: struct.error, at every later push
    assert len(queue) == 0
    queue.push(b"x")
    assert queue.pop() == b"x"
    queue.close()
    assert not (tmp_path / "q").exists()  # an emptied queue removes its file, as queuelib's does


def test_the_count_is_written_at_the_close_in_place(tmp_path):
    queue = WholeRecordLifoDiskQueue(tmp_path / "q")
    for n in range(3):
        queue.push(b"r%d" % n)
    queue.close()
    raw = (tmp_path / "q").read_bytes()
    assert struct.unpack(">L", raw[:4]) == (3,)
    assert raw[4:] == b"".join(b"r%d" % n + struct.pack(">L", 2) for n in range(3))


class ListingSpider(scrapy.Spider):
    name = "listing"

    def parse_listing(self, response):
        yield from ()


def open_scheduler(cls, tmp_path):
    """``cls`` (a Scrapy scheduler) open on a spider, with a JOBDIR under ``tmp_path``."""
    from scrapy.utils.test import get_crawler

    crawler = get_crawler(ListingSpider, {"JOBDIR": str(tmp_path / "job"),
                                              "SCHEDULER_DISK_QUEUE": "ptmscrape.jobdir_writes.JobRequestQueue",
                                              # Scrapy's default asks the engine's downloader (no engine here)
                                              "SCHEDULER_PRIORITY_QUEUE": "scrapy.pqueues.ScrapyPriorityQueue"})
    crawler.spider = spider = crawler._create_spider()
    scheduler = cls.from_crawler(crawler)
    scheduler.open(spider)
    return spider, scheduler


def page_through_a_full_disk_queue(cls, tmp_path, monkeypatch):
    """``cls`` (a Scrapy scheduler) open, its disk queue refusing every push (ENOSPC), given a
    listing page: the scheduler, and whether the page came out of it again."""
    spider, scheduler = open_scheduler(cls, tmp_path)

    def refuse(request):
        raise OSError(errno.ENOSPC, ENOSPC_TEXT)

    monkeypatch.setattr(scheduler.dqs, "push", refuse)
    page = scrapy.Request("https://hub.example/api/models?p=2", callback=spider.parse_listing)
    came_back = scheduler.enqueue_request(page) and scheduler.next_request().url == page.url
    return scheduler, came_back


def test_a_request_the_disk_queue_refuses_is_fetched_from_memory(tmp_path, monkeypatch):
    from ptmscrape.jobdir_writes import JobScheduler

    scheduler, came_back = page_through_a_full_disk_queue(JobScheduler, tmp_path, monkeypatch)
    assert came_back
    assert scheduler.crawler.stats.get_value("scheduler/enqueued/memory") == 1


@pytest.mark.xfail(raises=OSError, strict=True,
                   reason="Scrapy's scheduler lets a disk queue's OSError out of enqueue_request; when this "
                          "passes, JobScheduler._dqpush (ptmscrape/jobdir_writes.py) can go")
def test_upstream_scheduler_keeps_a_request_its_disk_queue_refuses(tmp_path, monkeypatch):
    from scrapy.core.scheduler import Scheduler

    _, came_back = page_through_a_full_disk_queue(Scheduler, tmp_path, monkeypatch)
    assert came_back


@pytest.mark.xfail(raises=struct.error, strict=True,
                   reason="queuelib cannot open a LIFO queue file whose creation a full disk cut short; when "
                          "this passes, WholeRecordLifoDiskQueue (ptmscrape/jobdir_writes.py) can be reconsidered")
def test_upstream_queue_opens_a_file_cut_short_at_creation(tmp_path):
    (tmp_path / "q").write_bytes(b"\0\0")
    assert len(LifoDiskQueue(tmp_path / "q")) == 0


def closed_job(tmp_path, *, spider_state: bytes | None = None) -> dict:
    """A JOBDIR job's run closed by JobGuard (``spider_state``: the bytes SpiderState left); the
    running mark it leaves (``{}``: none, the job resumes where it stopped)."""
    from tests.test_resume import listing_job

    spider, guard = listing_job(tmp_path)
    if spider_state is not None:
        (tmp_path / "job/spider.state").write_bytes(spider_state)
    guard.spider_closed(spider, "shutdown")
    mark = tmp_path / "job" / RUNNING_MARK
    return json.loads(mark.read_text()) if mark.exists() else {}


def test_a_spider_state_left_torn_makes_the_next_run_restart_the_job(tmp_path):
    # Scrapy's own SpiderState, put back by a project, raises and leaves the file cut short.
    torn = pickle.dumps({"listed": 40})[:-3]
    assert closed_job(tmp_path, spider_state=torn)["state_not_saved"] == "spider.state: not written whole"
    assert closed_job(tmp_path / "whole", spider_state=pickle.dumps({"listed": 40})) == {}


def test_a_run_whose_own_job_files_cannot_be_written_makes_the_next_run_restart_the_job(tmp_path, monkeypatch):
    from ptmscrape import jobdir

    def full(path, data):
        raise OSError(errno.ENOSPC, ENOSPC_TEXT, str(path))

    monkeypatch.setattr(jobdir, "_write_atomic", full)
    mark = closed_job(tmp_path)
    assert mark["state_not_saved"] == f"{tmp_path / 'job' / 'ptm-ended.json'}: {ENOSPC_TEXT}"


def listed_ids(hub) -> list[str]:
    return [row[2] for row in hub._order("downloads")]


def stored_ids(result) -> list[str]:
    return [f"{r['ModelOwner']}/{r['ModelName']}" for r in result.records("huggingface")]


@pytest.mark.parametrize("stopped", [False, True], ids=["finished", "stopped before the end"])
def test_requests_the_jobdir_cannot_take_are_fetched_and_the_next_run_restarts_the_job(tmp_path, stopped):
    """The job's first run is left with its later listing pages in memory only (their fingerprints
    are in requests.seen): trusted, the JOBDIR would resume without them. It runs them, and the next
    run restarts from the first page and stores the models the first did not."""
    with HuggingFaceReplica(synthetic_models(100), None, repos=False) as hub:
        settings = {"PTM_HUGGINGFACE_URL": hub.url, "PTM_HUGGINGFACE_PAGE_SIZE": 10, "PTM_CLONE": 0,
                    # stopped: Scrapy's own stop after 35 models, pages served slowly enough for it
                    **({"CLOSESPIDER_ITEMCOUNT": 35} if stopped else {})}
        hub.replica.delay = 0.2 if stopped else 0.0
        first = full_disk_crawl(tmp_path, {**settings, "JOBDIR": tmp_path / "job"}, 1_000, folder=tmp_path / "job")
        mark = json.loads((tmp_path / "job" / RUNNING_MARK).read_text())
        stored_first = stored_ids(first)
        settings.pop("CLOSESPIDER_ITEMCOUNT", None)
        second = run_crawl("huggingface", tmp_path, settings={**settings, "JOBDIR": tmp_path / "job"},
                           out_name="second.jsonl")
        listed = listed_ids(hub)

    log, stats = first.log, first.stats
    assert "Traceback" not in log, log[-5000:]
    assert stats[JOB_STATE_NOT_SAVED] >= 1 and stats["scheduler/enqueued/memory"] >= 1
    assert log.count(f"Could not write requests.queue in the JOBDIR {tmp_path / 'job'} ({ENOSPC_TEXT})") == 1
    assert (f"The JOBDIR {tmp_path / 'job'} does not hold this run's state (requests.queue: {ENOSPC_TEXT}): "
            "the next run of the job restarts from its first pages") in log
    assert mark["state_not_saved"] == f"requests.queue: {ENOSPC_TEXT}"
    if stopped:
        assert stats["finish_reason"] == "closespider_itemcount" and len(stored_first) < len(listed)
    else:
        assert first.returncode == 0, log[-5000:]
        assert stats["scheduler/dequeued/memory"] == stats["scheduler/enqueued/memory"]  # fetched, not lost
        assert sorted(stored_first) == sorted(listed)

    assert second.stats[JOB_RESTARTED_AFTER_UNSAVED_STATE] == 1
    assert (f"could not save its state in the JOBDIR (requests.queue: {ENOSPC_TEXT}); restarting the job "
            "from its first pages") in second.log
    assert sorted(stored_ids(second)) == sorted(listed)  # every model, each once
    assert second.stats.get("ptm/store/records", 0) == len(listed) - first.stats["ptm/store/records"]
    assert not (tmp_path / "job" / RUNNING_MARK).exists()


def test_a_job_whose_data_dir_and_jobdir_fill_one_disk_resumes_with_every_model(tmp_path):
    """The usual case: the dataset and the JOBDIR on one disk, which fills. The store stage stops the
    crawl; Scrapy's own JOBDIR files (its buffered queue close, requests.seen, spider.state) cannot
    be written either. The next run, on a disk with room, restarts the job and stores the rest."""
    disk, saved = small_disk(tmp_path)
    with HuggingFaceReplica(synthetic_models(400), None, repos=False) as hub:
        settings = {"PTM_HUGGINGFACE_URL": hub.url, "PTM_HUGGINGFACE_PAGE_SIZE": 50, "PTM_CLONE": 0,
                    "JOBDIR": disk / "job"}
        results = []
        for size in ("400k", "100m"):  # full after some 60 models; then room for all
            out, stats = tmp_path / f"{size}.jsonl", tmp_path / f"{size}.stats.json"
            cmd = [sys.executable, *crawl_command("huggingface", out, disk / "data", stats, settings=settings)[1:]]
            proc = in_a_small_disk(disk, size, saved, cmd)
            results.append(CrawlResult(proc.returncode, proc.stderr + proc.stdout, out, stats, saved / "data"))
        listed = listed_ids(hub)
    first, second = results
    assert first.returncode == 1 and first.stats["finish_reason"] == "store_failed", first.log[-5000:]
    assert "does not hold this run's state" in first.log, first.log[-5000:]
    assert "Traceback" not in first.log, first.log[-5000:]  # each JOBDIR file that failed: one line
    assert second.returncode == 0, second.log[-5000:]
    assert "Traceback" not in second.log
    assert second.stats.get(JOB_RESTARTED_AFTER_UNSAVED_STATE) == 1
    assert sorted(stored_ids(second)) == sorted(listed)


def test_a_job_file_half_written_when_the_run_was_killed_is_removed_by_the_next_run(tmp_path):
    # A kill between writing ptm-failed-pages.pickle.tmp (or ptm-ended.json.tmp) and renaming it
    # leaves the temp file; nothing reads it, and the next run of the job removes it.
    from ptmscrape.jobdir import ENDED_FILE, FAILED_PAGES_FILE

    job = tmp_path / "job"
    job.mkdir()
    left = [job / (FAILED_PAGES_FILE + ".tmp"), job / (ENDED_FILE + ".tmp")]
    for path in left:
        path.write_bytes(b"\x80\x04cut")
    closed_job(tmp_path)
    assert [path.name for path in left if path.exists()] == []
