"""A disk that fills while the store stage writes a crawl's payloads and records
(``tests/full_disk.py`` cuts ``os.write`` short, then fails it with ENOSPC, as a full disk does):
no half-written line is left for a reader, the model is named with the reason and counted, and the
crawl stops (finish reason ``store_failed``, exit status 1) instead of dropping every following
model one by one; what was stored is merged, and the next crawl stores the rest."""

from __future__ import annotations

import errno
import json
import logging
import os
import subprocess
from pathlib import Path

import pytest

from pipelines.store import NAMED_NOT_STORED, NotStored, StorePipeline
from ptmscrape.dataset.jsonl import read_jsonl
from ptmscrape.dataset.payloads import PayloadWriter, read_payload
from ptmscrape.dataset.snapshots import SnapshotWriter, merge_interrupted, pending_snapshots
from ptmscrape.dataset.tree import DatasetTree, LineAppender
from ptmscrape.items import PTMRecord, RawModelItem
from ptmscrape.stats import STORE_FAILED, STORE_FAILED_BY_REASON, STORE_MERGE_FAILED
from ptmscrape.verdict import STORE_FAILED_REASON, verdict
from tests.crawl import ROOT, CrawlResult, crawl_command, run_crawl
from tests.full_disk import FullDisk
from tests.replicas.huggingface import HuggingFaceReplica, synthetic_models

ENOSPC_TEXT = os.strerror(errno.ENOSPC)  # "No space left on device"


@pytest.fixture
def full_disk():
    disks = []

    def install(folder, budget):
        disks.append(FullDisk(folder, budget).install())
        return disks[-1]

    yield install
    FullDisk.uninstall()


def whole_lines(path: Path) -> list[dict]:
    """Every line of ``path`` is whole JSON, the last one ending in a newline: no torn line anywhere."""
    raw = path.read_bytes()
    assert raw == b"" or raw.endswith(b"\n"), f"torn last line in {path}: {raw[-80:]!r}"
    return [json.loads(line) for line in raw.splitlines()]


def test_a_line_the_disk_cut_short_is_cut_off_and_the_next_one_lands_whole(tmp_path, full_disk):
    path = tmp_path / "lines.jsonl"
    file = LineAppender(path)
    assert file.append(b'{"n":1}\n') == 0
    disk = full_disk(tmp_path, 5)
    with pytest.raises(OSError) as raised:
        file.append(b'{"n":2,"long":"' + b"x" * 100 + b'"}\n')
    assert raised.value.errno == errno.ENOSPC and disk.cut == 1
    assert path.read_bytes() == b'{"n":1}\n'  # the 5 bytes that fitted were taken back
    disk.budget = 10**6  # space freed
    assert file.append(b'{"n":3}\n') == 8
    file.close()
    assert whole_lines(path) == [{"n": 1}, {"n": 3}]


def test_when_even_the_cut_fails_no_later_line_is_glued_to_the_torn_one(tmp_path, full_disk, monkeypatch):
    path = tmp_path / "lines.jsonl"
    file = LineAppender(path)
    file.append(b'{"n":1}\n')
    disk = full_disk(tmp_path, 3)
    real_ftruncate = os.ftruncate

    def failing(fd, size):
        raise OSError(errno.EIO, "cannot truncate")

    monkeypatch.setattr(os, "ftruncate", failing)
    with pytest.raises(OSError):
        file.append(b'{"n":2}\n')
    disk.budget = 10**6
    with pytest.raises(OSError, match="cannot truncate"):  # refused rather than glued to the torn bytes
        file.append(b'{"n":3}\n')
    assert path.read_bytes() == b'{"n":1}\n{"n'  # a torn tail, which readers skip
    assert [r["n"] for r in read_jsonl(path)] == [1]
    monkeypatch.setattr(os, "ftruncate", real_ftruncate)
    assert file.append(b'{"n":4}\n') == 8
    file.close()
    assert whole_lines(path) == [{"n": 1}, {"n": 4}]


def test_payload_locators_and_snapshot_lines_stay_right_around_a_full_disk(tmp_path, full_disk):
    tree = DatasetTree(tmp_path / "data")
    payloads, snapshot = PayloadWriter(tree, "hub", "s"), SnapshotWriter(tree, "hub", "s")
    first = payloads.write(b'{"id":"a"}')
    snapshot.write({"id": 1, "ModelName": "a"})
    disk = full_disk(tmp_path / "data", 4)
    with pytest.raises(OSError):
        payloads.write(b'{"id":"b","text":"' + b"y" * 50 + b'"}')
    with pytest.raises(OSError):
        snapshot.write({"id": 2, "ModelName": "b" * 50})
    disk.budget = 10**6
    third = payloads.write(b'{"id":"c"}')
    snapshot.write({"id": 3, "ModelName": "c"})
    payloads.close()
    snapshot.close()
    assert [read_payload(tree, loc) for loc in (first, third)] == [{"id": "a"}, {"id": "c"}]
    assert whole_lines(tmp_path / "data/hub/json/payloads/hub-s.jsonl") == [{"id": "a"}, {"id": "c"}]
    assert whole_lines(snapshot.path) == [{"id": 1, "ModelName": "a"}, {"id": 3, "ModelName": "c"}]
    assert snapshot.ids is None  # after a failed write the merge reads the file line by line


class Engine:
    """What the store stage asks of Scrapy's engine: to close the spider."""

    def __init__(self, spider):
        self.spider = spider
        self.closed: list[str] = []

    async def close_spider_async(self, *, reason: str) -> None:
        self.closed.append(reason)


def record_of(model: dict) -> PTMRecord:
    from ptmscrape.mappers.huggingface import map_raw

    raw = RawModelItem("huggingface", model["id"], "http://127.0.0.1/api/models", model,
                       {"base_url": "http://127.0.0.1"})
    record = PTMRecord(map_raw(raw))
    record.raw = raw
    return record


def run(coro):
    import asyncio

    return asyncio.run(coro)


def test_the_store_stage_names_the_model_counts_it_and_stops_the_crawl_once(crawler, tmp_path, full_disk, caplog):
    crawler.engine = Engine(crawler.spider)
    stage = StorePipeline.from_crawler(crawler)
    stage.open_spider()
    records = [record_of(m) for m in synthetic_models(6)]
    for record in records[:3]:
        run(stage.process_item(record))
    disk = full_disk(tmp_path / "data/huggingface", 100)
    failed = []
    with caplog.at_level(logging.ERROR, logger="pipelines"):
        for record in records[3:]:
            with pytest.raises(NotStored) as raised:
                run(stage.process_item(record))
            failed.append(raised.value)
    FullDisk.uninstall()
    assert disk.cut == 1  # the 100 bytes that fitted tore a line, which was cut off again
    assert [str(e) for e in failed] == [f"{r.label}: not stored: {ENOSPC_TEXT}" for r in records[3:]]
    assert {e.log_level for e in failed} == {"ERROR"}
    assert crawler.engine.closed == [STORE_FAILED_REASON]  # once, not once per model
    assert caplog.text.count("Stopping the crawl: the dataset tree") == 1
    assert ENOSPC_TEXT in caplog.text and str(tmp_path / "data") in caplog.text
    stats = crawler.stats.get_stats()
    assert stats[STORE_FAILED] == 3 and stats[STORE_FAILED_BY_REASON + ENOSPC_TEXT] == 3
    assert stats["ptm/store/records"] == 3

    stage.close_spider()  # what was stored is merged, every payload where its record says
    data = tmp_path / "data"
    merged = whole_lines(data / "huggingface/huggingface.jsonl")
    assert [r["id"] for r in merged] == [r["id"] for r in records[:3]]
    served = {r["id"]: r.raw.payload for r in records}
    for record in merged:
        assert read_payload(DatasetTree(data), record["ModelHub"]["MetadataFilePath"]) == served[record["id"]]
    for path in (data / "huggingface").rglob("*.jsonl"):
        whole_lines(path)


def test_models_in_flight_after_the_stop_are_named_up_to_a_limit_then_logged_at_debug(crawler, tmp_path, full_disk,
                                                                                     caplog):
    from ptmscrape import signals as ptm_signals

    crawler.engine = Engine(crawler.spider)
    stage = StorePipeline.from_crawler(crawler)
    stage.open_spider()
    signalled = []
    crawler.signals.connect(lambda reason, request: signalled.append(reason), signal=ptm_signals.model_not_stored,
                            weak=False)
    records = [record_of(m) for m in synthetic_models(NAMED_NOT_STORED + 5)]
    full_disk(tmp_path / "data/huggingface", 0)
    failed = []
    with caplog.at_level(logging.DEBUG, logger="pipelines"):
        for record in records:
            with pytest.raises(NotStored) as raised:
                run(stage.process_item(record))
            failed.append(raised.value)
    FullDisk.uninstall()
    assert [str(e) for e in failed] == [f"{r.label}: not stored: {ENOSPC_TEXT}" for r in records]  # each named
    assert [e.log_level for e in failed] == ["ERROR"] * NAMED_NOT_STORED + ["DEBUG"] * 5
    more = [r for r in caplog.records if r.getMessage().startswith("More models in flight are not stored")]
    assert len(more) == 1 and more[0].levelname == "ERROR" and ENOSPC_TEXT in more[0].getMessage()
    assert crawler.stats.get_value(STORE_FAILED) == len(records)  # every one counted...
    assert signalled == [ENOSPC_TEXT] * len(records)  # ...and signalled (a JOBDIR job fetches each again)
    assert crawler.engine.closed == [STORE_FAILED_REASON]
    stage.close_spider()


def test_a_merge_the_disk_refuses_leaves_the_snapshot_pending_for_the_next_crawl(crawler, tmp_path, monkeypatch,
                                                                                 caplog):
    import pipelines.store as store

    stage = StorePipeline.from_crawler(crawler)
    stage.open_spider()
    records = [record_of(m) for m in synthetic_models(3)]
    for record in records:
        run(stage.process_item(record))

    def no_space(*args, **kwargs):
        raise OSError(errno.ENOSPC, ENOSPC_TEXT)

    monkeypatch.setattr(store, "merge_records", no_space)
    with caplog.at_level(logging.ERROR, logger="pipelines"):
        stage.close_spider()
    assert "Could not merge this crawl's snapshot" in caplog.text and "the next crawl of huggingface merges it" \
        in caplog.text
    assert crawler.stats.get_value(STORE_MERGE_FAILED) == 1
    result = verdict({**crawler.stats.get_stats(), "finish_reason": "finished"})
    assert result.status == 1 and "snapshot was not merged" in result.reason
    tree = DatasetTree(tmp_path / "data")
    assert pending_snapshots(tree, "huggingface") == [stage.writer.path]
    monkeypatch.undo()
    assert merge_interrupted(tree, "huggingface")[:2] == (1, 3)  # what the next crawl's start does
    assert [r["id"] for r in read_jsonl(tmp_path / "data/huggingface/huggingface.jsonl")] == [
        r["id"] for r in records]


def test_the_verdict_of_a_crawl_the_disk_stopped():
    stats = {"finish_reason": STORE_FAILED_REASON, "ptm/store/records": 12, STORE_FAILED: 4,
             STORE_FAILED_BY_REASON + ENOSPC_TEXT: 4}
    result = verdict(stats)
    assert result.status == 1 and result.finish_reason == STORE_FAILED_REASON
    assert result.reason == f"4 records not stored ({ENOSPC_TEXT}: 4): the crawl was stopped"


def full_disk_crawl(tmp_path, settings, budget, spider="huggingface", args=None, env=None,
                    folder="") -> CrawlResult:
    """``scrapy crawl <spider>`` (``tests/full_disk.py``) whose data dir's hub folder (or its
    ``folder``, or an absolute ``folder``: a JOBDIR) fills after ``budget`` bytes."""
    data, out, stats = tmp_path / "data", tmp_path / "full.jsonl", tmp_path / "full.stats.json"
    (data / spider).mkdir(parents=True, exist_ok=True)
    cmd = crawl_command(spider, out, data, stats, args=args, settings=settings)
    assert cmd[1:3] == ["-m", "scrapy.cmdline"]
    cmd[2] = "tests.full_disk"
    env = {**os.environ, **(env or {}), "TEST_FULL_DISK_DIR": str(data / spider / folder),
           "TEST_FULL_DISK_BYTES": str(budget)}
    proc = subprocess.run(cmd, cwd=ROOT, env=env, capture_output=True, text=True, timeout=600)
    return CrawlResult(proc.returncode, proc.stderr + proc.stdout, out, stats, data)


def test_a_crawl_whose_disk_fills_stops_with_whole_files_and_the_next_crawl_stores_the_rest(tmp_path):
    models = synthetic_models(100)
    with HuggingFaceReplica(models, None, repos=False) as hub:
        settings = {"PTM_HUGGINGFACE_URL": hub.url, "PTM_HUGGINGFACE_PAGE_SIZE": 10, "PTM_CLONE": 0}
        result = full_disk_crawl(tmp_path, settings, budget=25_000)
        assert result.returncode == 1, result.log[-5000:]
        stored = whole_lines(result.data_dir / "huggingface/huggingface.jsonl")  # merged at the end
        files = list((result.data_dir / "huggingface").rglob("*.jsonl"))
        again = run_crawl("huggingface", tmp_path, settings=settings, out_name="again.jsonl")

    log, stats = result.log, result.stats
    assert "full disk: cut a write short" in log  # a line was torn on disk...
    for path in files:
        whole_lines(path)  # ...and none is left torn
    assert "Traceback" not in log
    assert stats["finish_reason"] == STORE_FAILED_REASON
    failed = stats[STORE_FAILED]
    assert failed >= 1 and stats[STORE_FAILED_BY_REASON + ENOSPC_TEXT] == failed
    assert log.count("Stopping the crawl: the dataset tree") == 1
    # each model named, with the reason, up to NAMED_NOT_STORED (INFO log: the rest are at DEBUG)
    assert log.count(f": not stored: {ENOSPC_TEXT}") == min(failed, NAMED_NOT_STORED)
    assert ("More models in flight are not stored" in log) == (failed > NAMED_NOT_STORED)
    assert "ERROR: Dropped: huggingface:" in log
    assert len(stored) == stats["ptm/store/records"] == len(result.items) > 0
    assert len(stored) + failed < 60, "the crawl went on after the disk was full"
    tree = DatasetTree(result.data_dir)
    for record in stored:  # every record's payload is where its locator says
        assert read_payload(tree, record["ModelHub"]["MetadataFilePath"])["id"] == \
            f"{record['ModelOwner']}/{record['ModelName']}"
    assert log.rstrip().splitlines()[-1].endswith(
        f"Crawl verdict: exit status 1: {failed} record{'s' if failed > 1 else ''} not stored "
        f"({ENOSPC_TEXT}: {failed}): the crawl was stopped")

    # Space freed: the next crawl stores every model, once.
    assert again.returncode == 0
    assert sorted(r["id"] for r in again.records("huggingface")) == sorted(
        r["id"] for r in again.items) and len(again.items) == 100
    assert len(again.records("huggingface")) == 100


# -- a JOBDIR job the disk stopped: the resumed job fetches again the pages of the models dropped --

def stored_bytes(tmp_path, spider, settings, env=None) -> int:
    """What a metadata crawl that fits on the disk writes into its payload file and snapshot."""
    (tmp_path / "measure").mkdir()
    result = run_crawl(spider, tmp_path / "measure", settings={**settings, "PTM_CLONE": 0}, env=env)
    hub = result.data_dir / spider
    return sum(path.stat().st_size for folder in ("json/payloads", "snapshots")
               for path in (hub / folder).glob("*.jsonl"))


def resume_after_a_full_disk(tmp_path, spider, settings, budget, args=None, env=None):
    """A JOBDIR job (``tmp_path/job``) stopped by a full disk, then resumed with room: both runs."""
    settings = {**settings, "JOBDIR": tmp_path / "job"}
    first = full_disk_crawl(tmp_path, settings, budget, spider=spider, args=args, env=env)
    assert first.returncode == 1, first.log[-5000:]
    assert first.stats["finish_reason"] == STORE_FAILED_REASON and first.stats[STORE_FAILED] >= 1
    resumed = run_crawl(spider, tmp_path, args=args, settings=settings, env=env, out_name="resumed.jsonl",
                        check=False)
    return first, resumed


def assert_resumed_with_every_model_once(first, resumed, spider, names):
    """The resumed job stored every model the first run dropped: ``<hub>.jsonl`` holds each of
    ``names`` once; the resumed run fetched their pages again and exits 0."""
    records = resumed.records(spider)
    assert len({r["id"] for r in records}) == len(records)
    missing = sorted(set(names) - {f"{r['ModelOwner']}/{r['ModelName']}" for r in records})
    assert missing == [] and len(records) == len(names), \
        f"lost by the job (its resumed run's exit status {resumed.returncode}): {missing}"
    assert resumed.returncode == 0, resumed.log[-5000:]
    assert "Traceback" not in first.log + resumed.log
    assert "the previous run was stopped: the dataset tree could not be written" in resumed.log
    pages = resumed.stats["ptm/job/pages_of_unstored_models_fetched_again"]
    assert f"fetching again the {pages} page(s) of unstored models the job lost" in resumed.log
    assert f"Saved in {first.stats_file.parent / 'job'} the {pages} page(s) of unstored models" in first.log
    assert resumed.stats["ptm/store/records"] + first.stats["ptm/store/records"] == len(names)


@pytest.mark.parametrize("limit", [None, 45])
def test_a_jobdir_job_the_disk_stopped_stores_the_dropped_models_when_it_resumes(tmp_path, limit):
    """The models in flight when the disk filled were dropped; their listing pages are in the job's
    requests.seen. The resumed job fetches those pages again, skips their models stored before,
    stores the others, and reads the rest of the listing: every model (of -a limit) once."""
    models = synthetic_models(100)
    args = {"limit": limit} if limit else None
    with HuggingFaceReplica(models, None, repos=False) as hub:
        settings = {"PTM_HUGGINGFACE_URL": hub.url, "PTM_HUGGINGFACE_PAGE_SIZE": 10, "PTM_CLONE": 0}
        budget = stored_bytes(tmp_path, "huggingface", settings) // 5  # full after some 20 models
        first, resumed = resume_after_a_full_disk(tmp_path, "huggingface", settings, budget, args)
        listed = [row[2] for row in hub._order("downloads")][:limit]
    assert first.stats["ptm/store/records"] < len(listed)
    assert_resumed_with_every_model_once(first, resumed, "huggingface", listed)


def test_models_the_clone_stage_had_when_the_disk_stopped_the_job_are_stored_when_it_resumes(tmp_path):
    """With clones, the models the clone stage had in hand reach the store stage after the disk
    filled: dropped too, and their pages fetched again; their clones landed and are reused."""
    models = synthetic_models(30)
    with HuggingFaceReplica(models, tmp_path / "hub-git") as hub:
        settings = {"PTM_HUGGINGFACE_URL": hub.url, "PTM_HUGGINGFACE_PAGE_SIZE": 5}
        budget = stored_bytes(tmp_path, "huggingface", settings) // 3
        first, resumed = resume_after_a_full_disk(tmp_path, "huggingface", settings, budget)
        shas = {name: model["sha"] for name, model in hub.models.items()}
    assert_resumed_with_every_model_once(first, resumed, "huggingface", list(shas))
    for record in resumed.records("huggingface"):
        assert record["CloneStatus"] in ("cloned", "unchanged"), record["CloneStatus"]
        assert record["LatestGitCommitSHA"] == shas[f"{record['ModelOwner']}/{record['ModelName']}"]
        assert (resumed.data_dir / record["RepoPath"]).is_dir()


def test_a_hub_with_a_page_per_model_fetches_again_the_pages_of_the_models_the_disk_dropped(tmp_path):
    from tests.replicas.pytorchhub import MODEL_REPOS, PytorchHubReplica

    with PytorchHubReplica(tmp_path / "hub-git") as hub:
        settings = {**hub.settings(), "PTM_CLONE": 0}
        budget = stored_bytes(tmp_path, "pytorchhub", settings, hub.env()) // 3
        first, resumed = resume_after_a_full_disk(tmp_path, "pytorchhub", settings, budget, env=hub.env())
    stored = {r["ModelHub"]["MetadataObjectID"] for r in resumed.records("pytorchhub")}
    assert stored == set(MODEL_REPOS), f"lost by the job: {sorted(set(MODEL_REPOS) - stored)}"
    assert resumed.returncode == 0, resumed.log[-5000:]
    assert len(resumed.records("pytorchhub")) == len(MODEL_REPOS)
    assert resumed.stats["ptm/job/pages_of_unstored_models_fetched_again"] == first.stats[STORE_FAILED]


def test_a_stored_payload_that_cannot_be_read_is_written_again_and_the_crawl_goes_on(crawler, tmp_path, caplog):
    # Reading a model's stored payload (to leave an unchanged one alone) is only a saving: a stored
    # locator whose file is now a directory (EISDIR), or unreadable, concerns that model's old
    # payload, not this machine. The payload is written again, the record points to it, no model is
    # dropped and the crawl is not stopped (it was: every crawl after would stop at that model).
    records = [record_of(m) for m in synthetic_models(4)]
    first = StorePipeline.from_crawler(crawler)
    first.open_spider()
    for record in records:
        run(first.process_item(record))
    first.close_spider()
    merged_file = tmp_path / "data/huggingface/huggingface.jsonl"
    folder = "huggingface/json/payloads/huggingface-old.jsonl"
    (tmp_path / "data" / folder).mkdir()  # the stored locators now name a directory
    merged_file.write_text(merged_file.read_text().replace(first.payloads.relative + "#", folder + "#"))

    crawler.engine = Engine(crawler.spider)
    again = StorePipeline.from_crawler(crawler)
    again.open_spider()
    with caplog.at_level(logging.ERROR):
        stored = [run(again.process_item(record_of(m))) for m in synthetic_models(4)]
    again.close_spider()
    assert crawler.engine.closed == []
    assert STORE_FAILED not in crawler.stats.get_stats()
    assert not [r for r in caplog.records if r.levelno >= logging.ERROR]
    tree = DatasetTree(tmp_path / "data")
    for record in stored:
        assert record["ModelHub"]["MetadataFilePath"].startswith(again.payloads.relative + "#")
    merged = whole_lines(tmp_path / "data/huggingface/huggingface.jsonl")
    assert [read_payload(tree, r["ModelHub"]["MetadataFilePath"])["id"] for r in merged] == [
        r.raw.payload["id"] for r in records]


def test_stored_payloads_read_with_an_io_error_count_as_changed(tmp_path, monkeypatch):
    import ptmscrape.dataset.payloads as payloads_module
    from ptmscrape.dataset.payloads import StoredPayloads

    tree = DatasetTree(tmp_path / "data")
    writer = PayloadWriter(tree, "hub", "s")
    locator = writer.write(b'{"id":"a"}')
    writer.close()
    (tmp_path / "data/hub").mkdir(exist_ok=True)
    (tmp_path / "data/hub/hub.jsonl").write_text(
        json.dumps({"id": 7, "ModelHub": {"MetadataFilePath": locator}}, separators=(",", ":")) + "\n")
    stored = StoredPayloads(tree, "hub")
    assert stored.unchanged(7, b'{"id":"a"}') == locator

    def failing(fd, n, offset):
        raise OSError(errno.EIO, os.strerror(errno.EIO))

    monkeypatch.setattr(payloads_module.os, "pread", failing)
    assert stored.unchanged(7, b'{"id":"a"}') is None
    stored.close()


@pytest.mark.parametrize(("code", "advice"), [(errno.ENOSPC, "free disk space"), (errno.EDQUOT, "free disk space"),
                                              (errno.EROFS, "make it writable again"),
                                              (errno.EIO, "make it writable again")])
def test_a_crawl_stopped_by_its_own_files_says_what_to_do(crawler, monkeypatch, caplog, code, advice):
    # This crawl's payload file and snapshot take every model's lines: an error writing them will
    # meet every following model, whatever it is, so it stops the crawl; the advice fits the error.
    crawler.engine = Engine(crawler.spider)
    stage = StorePipeline.from_crawler(crawler)
    stage.open_spider()

    def failing(data):
        raise OSError(code, os.strerror(code))

    monkeypatch.setattr(stage.writer._file, "append", failing)
    record = record_of(synthetic_models(1)[0])
    with caplog.at_level(logging.ERROR), pytest.raises(NotStored, match=os.strerror(code)):
        run(stage.process_item(record))
    assert crawler.engine.closed == [STORE_FAILED_REASON]
    line = next(r.getMessage() for r in caplog.records if "Stopping the crawl" in r.getMessage())
    assert f"{advice}, then crawl again" in line, line
    assert ("free disk space" in line) == (advice == "free disk space")
    monkeypatch.undo()
    stage.close_spider()


def test_an_exception_right_after_a_write_went_out_still_cuts_the_line_back(tmp_path, monkeypatch):
    # A signal handler's exception (SystemExit from a SIGTERM handler, KeyboardInterrupt) is raised
    # as soon as os.write returns, before its count is added up: the bytes it wrote are on disk all
    # the same. They are cut back, so the next line neither continues them nor gets a wrong offset.
    import ptmscrape.dataset.tree as tree_module

    path = tmp_path / "lines.jsonl"
    file = LineAppender(path)
    file.append(b'{"n":1}\n')
    real_write = os.write

    def interrupted(fd, data):
        real_write(fd, bytes(data[:4]))
        raise KeyboardInterrupt

    monkeypatch.setattr(tree_module.os, "write", interrupted)
    with pytest.raises(KeyboardInterrupt):
        file.append(b'{"n":2}\n')
    monkeypatch.undo()
    assert file.append(b'{"n":3}\n') == 8
    file.close()
    assert whole_lines(path) == [{"n": 1}, {"n": 3}]
