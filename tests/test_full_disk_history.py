"""A disk that fills while ``-a history`` writes the history files (``tests/full_disk.py``): the
history stage stops the crawl as the store stage does (finish reason ``store_failed``, exit status
1), leaves no torn line, counts each call it could not store as lost and writes no state line for
it, so the next crawl (or the resumed JOBDIR job) asks for it again."""

from __future__ import annotations

import errno
import logging
import os

import pytest
import scrapy

from pipelines.history import HistoryNotStored, HistoryPipeline, HistoryStored
from ptmscrape import signals as ptm_signals
from ptmscrape.dataset.jsonl import read_jsonl
from ptmscrape.dataset.tree import append_shared
from ptmscrape.history.store import HistoryItem
from ptmscrape.stats import HISTORY_LOST, HISTORY_LOST_BY_REASON
from ptmscrape.verdict import STORE_FAILED_REASON, verdict
from tests.crawl import run_crawl
from tests.full_disk import FullDisk
from tests.replicas.huggingface import HuggingFaceReplica
from tests.replicas.huggingface_history import HubHistory
from tests.test_full_disk import Engine, full_disk_crawl, run, whole_lines

ENOSPC_TEXT = os.strerror(errno.ENOSPC)
BUDGET = 10_000  # the history of some 12 models takes about 38 kB: full after a third of it


def settings_of(replica, **more):
    return {"PTM_HUGGINGFACE_URL": replica.url, "PTM_HUGGINGFACE_PAGE_SIZE": 5, "PTM_CLONE": 0,
            "PTM_HUGGINGFACE_COMMITS_PAGE_SIZE": 5, **more}


def stored_commits(data):
    return [(c["model_id"], c["raw"]["id"]) for c in read_jsonl(data / "huggingface/history/commits.jsonl")]


def assert_stopped_by_the_full_disk(result, hub):
    log, stats = result.log, result.stats
    assert result.returncode == 1, log[-5000:]
    assert "full disk: cut a write short" in log  # a line was torn on disk...
    history = result.data_dir / "huggingface/history"
    for path in history.glob("*.jsonl"):
        whole_lines(path)  # ...and none is left torn
    assert "Traceback" not in log and "Error processing" not in log, log[-5000:]
    assert stats["finish_reason"] == STORE_FAILED_REASON
    lost = stats[HISTORY_LOST]
    assert lost >= 1 and stats[HISTORY_LOST_BY_REASON + ENOSPC_TEXT] == lost
    assert log.count("Stopping the crawl: the dataset tree") == 1
    assert log.count(f"(commits) not stored: {ENOSPC_TEXT}") == lost  # each call's model named, with the reason
    assert f"history call{'s' if lost > 1 else ''} lost ({ENOSPC_TEXT}: {lost})" in log.rstrip().splitlines()[-1]
    # A state line vouches only for commits that are all stored: the next crawl asks the others again.
    stored = set(stored_commits(result.data_dir))
    complete = {line["model_id"] for line in read_jsonl(history / "state.jsonl") if line["kind"] == "commits"}
    assert len(complete) < len(hub.histories), "the crawl went on after the disk was full"
    for model_id in complete:
        assert {c["id"] for c in hub.histories[model_id].commits} <= {c for m, c in stored if m == model_id}


def test_a_full_disk_while_history_is_written_stops_the_crawl_and_the_next_crawl_stores_the_rest(
        tmp_path, hf_models):
    with HuggingFaceReplica(hf_models, repos=False) as replica:
        hub = HubHistory(replica)
        settings = settings_of(replica)
        first = full_disk_crawl(tmp_path, settings, BUDGET, args={"history": "commits"}, folder="history")
        assert_stopped_by_the_full_disk(first, hub)
        failures = list(read_jsonl(first.data_dir / "huggingface/history/failures.jsonl"))
        assert {f["reason"] for f in failures} <= {ENOSPC_TEXT}  # recorded while the file could still take it
        again = run_crawl("huggingface", tmp_path, args={"history": "commits"}, settings=settings,
                          out_name="again.jsonl", check=False)
    assert again.returncode == 0, again.log[-5000:]
    assert set(stored_commits(again.data_dir)) == hub.all_commits()


def test_a_jobdir_job_the_disk_stopped_stores_the_lost_history_when_it_resumes(tmp_path, hf_models):
    with HuggingFaceReplica(hf_models, repos=False) as replica:
        hub = HubHistory(replica)
        settings = settings_of(replica, JOBDIR=tmp_path / "job")
        first = full_disk_crawl(tmp_path, settings, BUDGET, args={"history": "commits"}, folder="history")
        assert_stopped_by_the_full_disk(first, hub)
        resumed = run_crawl("huggingface", tmp_path, args={"history": "commits"}, settings=settings,
                            out_name="resumed.jsonl", check=False)
    assert resumed.returncode == 0, resumed.log[-5000:]
    assert resumed.stats["ptm/job/history_calls_fetched_again"] >= 1
    assert set(stored_commits(resumed.data_dir)) == hub.all_commits()
    assert "Traceback" not in resumed.log


# -- the history stage itself --------------------------------------------------------------------

def commits_item(model_id: str, n: int, *, complete: bool) -> HistoryItem:
    url = f"http://127.0.0.1/api/models/{model_id}/commits/main?limit={n}"
    rows = [{"raw": {"id": f"{model_id}-{i}", "title": "x" * 40}} for i in range(n)]
    states = [{"kind": "commits", "head": f"{model_id}-0", "total": n, "recent": []}] if complete else []
    return HistoryItem("huggingface", 7, model_id, "commits", {"commits": rows}, states,
                       request=scrapy.Request(url))


@pytest.fixture
def stage(crawler):
    crawler.engine = Engine(crawler.spider)
    lost = []
    crawler.signals.connect(lambda reason, request: lost.append((reason, request.url)),
                            signal=ptm_signals.history_call_lost, weak=False)
    stage = HistoryPipeline.from_crawler(crawler)
    stage.lost = lost
    return stage


def test_a_call_the_disk_refused_is_lost_recorded_and_stops_the_crawl_once(stage, crawler, tmp_path, monkeypatch,
                                                                           caplog):
    """The commits write is cut short (the disk then has room again for a short line): no torn line,
    no state line, the call counted lost, signalled (a JOBDIR job fetches it again) and recorded in
    failures.jsonl; later items write no lines (a state line would vouch for the lost ones)."""
    import ptmscrape.history.store as history_store

    history = tmp_path / "data/huggingface/history"
    real_append = history_store.append_shared

    def full_for_commits(path, data):
        if not str(path).endswith("commits.jsonl"):
            return real_append(path, data)
        disk = FullDisk(history, 50).install()
        try:
            return real_append(path, data)
        finally:
            FullDisk.uninstall()
            assert disk.cut == 1  # a torn line, cut back

    with pytest.raises(HistoryStored):
        run(stage.process_item(commits_item("org/a", 2, complete=False)))
    monkeypatch.setattr(history_store, "append_shared", full_for_commits)
    second = commits_item("org/b", 3, complete=True)
    with caplog.at_level(logging.ERROR), pytest.raises(HistoryNotStored, match=ENOSPC_TEXT):
        run(stage.process_item(second))
    monkeypatch.undo()
    refs = HistoryItem("huggingface", 8, "org/c", "refs", {"refs": [{"raw": {}}]}, [{"kind": "refs", "digest": "d"}],
                       request=scrapy.Request("http://127.0.0.1/api/models/org/c/refs"))
    with pytest.raises(HistoryNotStored):  # the disk has room, but the crawl is stopping
        run(stage.process_item(refs))
    refused = HistoryItem("huggingface", 9, "org/d", "refs", failure={"reason": "gated", "url": "u"})
    with pytest.raises(HistoryStored):  # failure lines are still written: they vouch for nothing
        run(stage.process_item(refused))

    assert [(c["model_id"], c["raw"]["id"]) for c in whole_lines(history / "commits.jsonl")] == [
        ("org/a", "org/a-0"), ("org/a", "org/a-1")]
    assert not (history / "state.jsonl").exists() and not (history / "refs.jsonl").exists()
    failures = whole_lines(history / "failures.jsonl")
    assert [(f["model_id"], f["kind"], f["reason"], f["url"]) for f in failures] == [
        ("org/b", "commits", ENOSPC_TEXT, second.request.url), ("org/c", "refs", ENOSPC_TEXT, refs.request.url),
        ("org/d", "refs", "gated", "u")]
    assert stage.lost == [(ENOSPC_TEXT, second.request.url), (ENOSPC_TEXT, refs.request.url)]
    stats = crawler.stats.get_stats()
    assert stats[HISTORY_LOST] == 2 and stats[HISTORY_LOST_BY_REASON + ENOSPC_TEXT] == 2
    assert stats["ptm/history/stored/failures"] == 3 and stats["ptm/history/stored/commits"] == 2
    assert crawler.engine.closed == [STORE_FAILED_REASON]
    assert caplog.text.count("Stopping the crawl: the dataset tree") == 1
    assert f"History of huggingface:org/b (commits) not stored: {ENOSPC_TEXT}" in caplog.text
    assert verdict({**stats, "finish_reason": STORE_FAILED_REASON}).status == 1


def test_a_failure_line_the_disk_refused_stops_the_crawl_without_counting_the_call_twice(stage, crawler, tmp_path,
                                                                                      caplog):
    disk = FullDisk(tmp_path / "data/huggingface/history", 0).install()
    refused = HistoryItem("huggingface", 9, "org/d", "refs", failure={"reason": "gated", "url": "u"})
    try:
        with caplog.at_level(logging.ERROR), pytest.raises(HistoryNotStored, match=ENOSPC_TEXT):
            run(stage.process_item(refused))
    finally:
        FullDisk.uninstall()
    assert disk.refused == 1 and crawler.engine.closed == [STORE_FAILED_REASON]
    assert HISTORY_LOST not in crawler.stats.get_stats() and stage.lost == []
    assert f"History of huggingface:org/d (refs): its failure (gated) not recorded in huggingface/history/" \
           f"failures.jsonl: {ENOSPC_TEXT}" in caplog.text


def test_shared_appends_cut_back_a_torn_write_and_go_on_without_locks(tmp_path, monkeypatch):
    import fcntl

    def append_to_a_full_disk(path, room: int, data: bytes) -> FullDisk:
        disk = FullDisk(tmp_path, room).install()
        try:
            with pytest.raises(OSError):
                append_shared(path, data)
        finally:
            FullDisk.uninstall()
        return disk

    path = tmp_path / "commits.jsonl"
    append_shared(path, b'{"n":1}\n')
    disk = append_to_a_full_disk(path, 5, b'{"n":2,"long":"' + b"x" * 100 + b'"}\n')
    assert disk.cut == 1 and path.read_bytes() == b'{"n":1}\n'  # what fitted was taken back

    def no_locks(fd, operation):  # some network file systems: ENOLCK
        raise OSError(errno.ENOLCK, os.strerror(errno.ENOLCK))

    monkeypatch.setattr(fcntl, "flock", no_locks)
    append_shared(path, b'{"n":3}\n')  # appends as before; a torn write is then not cut back...
    append_to_a_full_disk(path, 4, b'{"n":4,"long":"' + b"x" * 100 + b'"}\n')
    append_shared(path, b'{"n":5}\n')  # ...but ended before the next line, which readers skip
    assert [r["n"] for r in read_jsonl(path)] == [1, 3, 5]
