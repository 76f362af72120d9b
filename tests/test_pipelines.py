"""The pipeline stages, built through ``from_crawler`` with the project's settings."""

import asyncio
import copy
import errno
import logging
import shutil

import pytest
from scrapy import signals

from pipelines.clone import ClonePipeline
from pipelines.dedupe import DedupePipeline, DuplicateModel
from pipelines.map import MapPipeline, UnmappableModel
from pipelines.store import StorePipeline
from pipelines.validate import InvalidRecord, ValidatePipeline
from ptmscrape.cloning import CloneResult
from ptmscrape.dataset.jsonl import read_jsonl
from ptmscrape.dataset.payloads import read_payload
from ptmscrape.dataset.tree import DatasetTree
from ptmscrape.gitrepo import RepoError, check_branch
from ptmscrape.items import PTMRecord, RawModelItem
from ptmscrape.removed import RemovedModelsReport
from spiders.huggingface import HuggingfaceSpider
from tests.crawl import project_crawler
from tests.replicas.huggingface import fixture_models
from tests.replicas.server import GitHost, Replica, Reply

BASE = "https://huggingface.co"


def raw(model):
    return RawModelItem("huggingface", model["id"], f"{BASE}/api/models", model, {"base_url": BASE})


def run(coro):
    return asyncio.run(coro)


def mapped(crawler, model):
    return run(MapPipeline.from_crawler(crawler).process_item(raw(model)))


def test_map_turns_a_raw_item_into_a_record_carrying_its_raw_payload(crawler):
    model = fixture_models()[0]
    record = mapped(crawler, model)
    assert isinstance(record, PTMRecord) and record.raw.payload is model
    assert "raw" not in record  # never exported
    assert crawler.stats.get_value("ptm/map/mapped") == 1


def test_map_drops_an_unmappable_model_naming_it(crawler):
    with pytest.raises(UnmappableModel, match=r"huggingface:broken/x: missing or malformed 'id'"):
        run(MapPipeline.from_crawler(crawler).process_item(
            RawModelItem("huggingface", "broken/x", "u", {"id": 42}, {"base_url": BASE})))
    assert crawler.stats.get_value("ptm/map/failed") == 1


def test_a_mapper_that_crashes_loses_the_model_and_fails_the_crawl(crawler):
    # README "Exit status": a model lost to an error in an item stage exits 1. A mapper's bug (not bad
    # hub data) was dropped as UnmappableModel and the crawl ended "exit status 0".
    from ptmscrape.verdict import verdict

    pipeline = MapPipeline.from_crawler(crawler)

    def crashing(item):
        raise TypeError("unsupported operand type(s) for +: 'int' and 'str'")

    pipeline.mappers["huggingface"] = crashing
    with pytest.raises(UnmappableModel, match=r"huggingface:o/a: mapper error TypeError"):
        run(pipeline.process_item(raw({"id": "o/a", "_id": "1"})))
    stats = crawler.stats.get_stats()
    assert stats["ptm/items/failed"] == 1 and stats["ptm/items/failed/TypeError"] == 1
    assert "ptm/map/failed" not in stats  # counted once: not also as bad hub data
    result = verdict({**stats, "finish_reason": "finished", "ptm/store/records": 5})
    assert result.status == 1 and "1 model lost to an error in an item stage (TypeError: 1)" in result.reason


def test_map_scrubs_credentials_from_the_repo_url_before_validate_and_dedupe(crawler):
    model = fixture_models()[0]
    item = RawModelItem("huggingface", model["id"], "u", model, {"base_url": "https://user:pw@127.0.0.1/x"})
    record = run(MapPipeline.from_crawler(crawler).process_item(item))
    assert record["RepoURL"] == f"https://***@127.0.0.1/x/{model['id']}"
    seen = []
    validate, dedupe = ValidatePipeline.from_crawler(crawler), DedupePipeline.from_crawler(crawler)
    for stage in (validate, dedupe):
        record = run(stage.process_item(record))
        seen.append(record["RepoURL"])
    assert seen == [f"https://***@127.0.0.1/x/{model['id']}"] * 2


def test_validate_drops_an_invalid_record_naming_model_and_field(crawler):
    record = mapped(crawler, fixture_models()[0])
    record["Downloads"] = "lots"
    with pytest.raises(InvalidRecord, match=r"huggingface:acme-research/vit-tiny-demo: Downloads: 'lots'"):
        run(ValidatePipeline.from_crawler(crawler).process_item(record))
    assert crawler.stats.get_value("ptm/validate/invalid") == 1


@pytest.mark.parametrize("where, value", [
    ("CreatedAt", "2022-03-02T23:29:04.000Z"),  # milliseconds
    ("LastModified", "2024-09-18T16:00:00+08:00"),  # not UTC
    ("LastModified", "Jun 16, 2025 8:46 PM UTC"),  # as a page shows it
    ("CrawledAt", "2025-06-01 12:00:00"),
])
def test_validate_drops_a_time_not_written_as_the_dataset_writes_times(crawler, where, value):
    # Every time in the dataset is UTC to the second (YYYY-MM-DDTHH:MM:SSZ), whatever the hub: the
    # schema catches a mapper that writes one as the hub served it.
    record = mapped(crawler, fixture_models()[0])
    record[where] = value
    with pytest.raises(InvalidRecord, match=rf"huggingface:acme-research/vit-tiny-demo: {where}: "):
        run(ValidatePipeline.from_crawler(crawler).process_item(record))


def test_validate_drops_a_civitai_version_time_not_written_as_the_dataset_writes_times(crawler):
    from tests.replicas.civitai import fixture_models as civitai_models

    item = civitai_models()[0]
    record = run(MapPipeline.from_crawler(crawler).process_item(
        RawModelItem("civitai", str(item["id"]), "u", item, {})))
    run(ValidatePipeline.from_crawler(crawler).process_item(record))
    record["ModelVersions"][0]["CreatedAt"] = "2023-10-05T13:31:16.745"
    with pytest.raises(InvalidRecord, match=r"ModelVersions/0/CreatedAt: "):
        run(ValidatePipeline.from_crawler(crawler).process_item(record))


@pytest.mark.parametrize("key", ["ModelVersions", "ModelTasks", "Entrypoints", "ModelFiles", "Files"])
def test_validate_drops_a_list_key_set_to_null(crawler, key):
    # A list key a hub has no value for is [] in every record (docs/record.md), so a table of all
    # hubs has no null in a list column: a mapper writing null there is a bug the schema catches.
    record = mapped(crawler, fixture_models()[0])
    assert record[key] == []
    record[key] = None
    with pytest.raises(InvalidRecord, match=rf"huggingface:acme-research/vit-tiny-demo: {key}: None"):
        run(ValidatePipeline.from_crawler(crawler).process_item(record))


def test_dedupe_drops_the_second_sighting_of_a_model(crawler):
    stage = DedupePipeline.from_crawler(crawler)
    model = fixture_models()[0]
    run(stage.process_item(mapped(crawler, model)))
    renamed = copy.deepcopy(model)
    renamed["id"] = "acme-research/renamed"  # same Mongo _id: the same model
    with pytest.raises(DuplicateModel, match="already processed"):
        run(stage.process_item(mapped(crawler, renamed)))
    assert crawler.stats.get_value("ptm/dedupe/duplicate") == 1


def test_models_listed_twice_are_dropped_at_warning_up_to_a_limit_then_at_debug(crawler, caplog):
    # A week-long crawl's listing shifts (docs/operations.md): thousands of models listed twice, each a
    # two-line WARNING with the record, buried the log's real problems. ptm/dedupe/duplicate counts them.
    import logging

    from scrapy.utils.log import logformatter_adapter

    from ptmscrape.logformatter import ConciseLogFormatter

    stage = DedupePipeline.from_crawler(crawler)
    record = mapped(crawler, fixture_models()[0])
    run(stage.process_item(record))
    levels = []
    with caplog.at_level(logging.DEBUG):
        for _ in range(14):
            with pytest.raises(DuplicateModel) as dropped:
                run(stage.process_item(record))
            level, *_ = logformatter_adapter(ConciseLogFormatter().dropped(record, dropped.value, None, crawler.spider))
            levels.append(level)
    assert levels == [logging.WARNING] * 10 + [logging.DEBUG] * 4
    (more,) = [r for r in caplog.records if r.getMessage().startswith("More models listed twice")]
    assert more.levelno == logging.WARNING and "ptm/dedupe/duplicate" in more.getMessage()
    assert crawler.stats.get_value("ptm/dedupe/duplicate") == 14


@pytest.mark.parametrize("url, reason", [
    ("ext::sh -c touch% /tmp/pwned", "remote-helper URL not allowed"),
    ("file:///etc", "transport 'file' not allowed"),
    ("ssh://git@github.com/a/b", "transport 'ssh' not allowed"),
    ("https://user:secret@github.com/a/b", "credentials in the URL"),
    ("--upload-pack=touch /tmp/pwned", "starts with '-'"),
])
def test_clone_refuses_unsafe_urls_without_running_git(crawler, url, reason):
    stage = ClonePipeline.from_crawler(crawler)
    stage.open_spider()
    record = mapped(crawler, fixture_models()[0])
    record["RepoURL"] = url
    out = run(stage.process_item(record))
    stage.close_spider()
    assert out["CloneStatus"].startswith("failed: ") and reason in out["CloneStatus"]
    assert "secret" not in out["CloneStatus"]
    assert out["RepoPath"] is None
    assert crawler.stats.get_value("ptm/clone/failed") == 1


def test_one_repository_reached_from_two_hubs_is_cloned_once(tmp_path, crawler):
    git_host = GitHost(tmp_path / "git")
    sha = git_host.add_repo("pytorch/vision", {"hubconf.py": "dependencies = []\n"})
    with Replica() as server:
        git_host.mount(server)
        url = f"{server.url}/pytorch/vision"
        first_hub = mapped(crawler, fixture_models()[0])
        first_hub["RepoURL"] = url
        first_hub["RepoPath"] = None  # not the hub's own repository: placed by its URL's path
        stage = ClonePipeline.from_crawler(crawler)
        stage.open_spider()
        first = run(stage.process_item(first_hub))
        stage.close_spider()

        other = project_crawler(HuggingfaceSpider, dict(crawler.settings))
        other.spider = HuggingfaceSpider.from_crawler(other)
        second_hub = mapped(other, fixture_models()[1])
        second_hub["ModelHub"]["ModelHubName"] = "pytorchhub"
        second_hub["RepoURL"] = url + ".git"  # another spelling of the same repository
        stage = ClonePipeline.from_crawler(other)
        stage.open_spider()
        second = run(stage.process_item(second_hub))
        stage.close_spider()
        assert server.count("GET", "/info/refs") == 2  # one clone, then one fetch of that clone

    assert (first["CloneStatus"], second["CloneStatus"]) == ("cloned", "unchanged")
    assert first["RepoPath"] == second["RepoPath"] == "huggingface/repos/pytorch/vision"
    assert first["LatestGitCommitSHA"] == second["LatestGitCommitSHA"] == sha
    assert not (tmp_path / "data/pytorchhub/repos").exists()


def test_store_writes_payload_snapshot_and_merged_file(crawler, tmp_path):
    stage = StorePipeline.from_crawler(crawler)
    stage.open_spider()
    records = [mapped(crawler, m) for m in fixture_models()]
    for record in records:
        run(stage.process_item(record))
    stage.close_spider()
    data = tmp_path / "data"
    assert [r["id"] for r in read_jsonl(data / "huggingface/huggingface.jsonl")] == [r["id"] for r in records]
    for record in records:
        assert read_payload(DatasetTree(data), record["ModelHub"]["MetadataFilePath"]) == record.raw.payload
    assert crawler.stats.get_value("ptm/store/records") == len(records)


def store_crawl(tmp_path, models, *, lost_page=False, stats=None):
    """One crawl through the store stage with the removed-models report listening."""
    crawler = project_crawler(HuggingfaceSpider, {"PTM_DATA_DIR": str(tmp_path / "data")})
    crawler.spider = HuggingfaceSpider.from_crawler(crawler)
    RemovedModelsReport.from_crawler(crawler)
    for name, value in (stats or {}).items():
        crawler.stats.set_value(name, value)
    stage = StorePipeline.from_crawler(crawler)
    stage.open_spider()
    for model in models:
        run(stage.process_item(mapped(crawler, model)))
    if lost_page:
        crawler.spider.count_failed_page("HTTP 503")
    stage.close_spider()
    crawler.signals.send_catch_log(signals.spider_closed, spider=crawler.spider, reason="finished")
    shutil.rmtree(tmp_path / "data/huggingface/snapshots")  # merged; the next crawl may get the same stamp
    return crawler


def test_removed_models_report_is_fed_by_signals_not_by_other_stages_stats(tmp_path):
    models = fixture_models()[:3]
    assert store_crawl(tmp_path, models).stats.get_value("ptm/store/removed") == 0
    # A lost page, signalled by the spider: the models not seen may only not have been reached.
    assert store_crawl(tmp_path, models[:2], lost_page=True).stats.get_value("ptm/store/removed") is None
    # Other stages' counters are not read: only what they signal counts.
    crawler = store_crawl(tmp_path, models[:2], stats={"ptm/pages/failed": 5, "ptm/map/failed": 2})
    assert crawler.stats.get_value("ptm/store/removed") == 1
    (report,) = (tmp_path / "data/huggingface").glob("removed-*.txt")
    lines = report.read_text().splitlines()
    assert lines[0].startswith("model\t") and len(lines) == 2  # no "could not be mapped" note
    assert lines[1].split("\t")[1] == str(mapped(crawler, models[2])["id"])


def test_a_removed_models_report_the_disk_refuses_is_one_error_and_the_next_crawl_lists_them(tmp_path, monkeypatch,
                                                                                            caplog):
    models = fixture_models()[:3]
    store_crawl(tmp_path, models)

    def no_space(self, relative, data):
        raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr(DatasetTree, "write_atomic", no_space)
    with caplog.at_level(logging.ERROR, logger="ptmscrape.removed"):
        crawler = store_crawl(tmp_path, models[:2])  # no exception out of the spider_closed handler
    assert crawler.stats.get_value("ptm/store/removed") == 1
    (error,) = [r.getMessage() for r in caplog.records if r.name == "ptmscrape.removed"]
    assert error.startswith("1 model(s) of huggingface are no longer listed by the hub") and \
        "could not be written" in error and "No space left on device" in error
    assert not list((tmp_path / "data/huggingface").glob("removed-*.txt"))
    monkeypatch.undo()
    store_crawl(tmp_path, models[:2])  # room again: the next complete crawl lists the model
    (report,) = (tmp_path / "data/huggingface").glob("removed-*.txt")
    assert report.read_text().splitlines()[1].split("\t")[1] == str(mapped(crawler, models[2])["id"])

def test_removed_models_report_reads_the_records_file_only_when_the_merge_kept_unseen_models(
        tmp_path, monkeypatch):
    import ptmscrape.removed as removed

    reads = []
    real = removed.not_seen
    monkeypatch.setattr(removed, "not_seen", lambda *a, **k: reads.append(a[1]) or real(*a, **k))
    models = fixture_models()[:3]
    assert store_crawl(tmp_path, models).stats.get_value("ptm/store/removed") == 0  # first crawl
    assert store_crawl(tmp_path, models).stats.get_value("ptm/store/removed") == 0  # same models again
    assert reads == []
    crawler = store_crawl(tmp_path, models[1:])  # one model no longer listed: the merge carried it
    assert reads == ["huggingface"]
    assert crawler.stats.get_value("ptm/store/removed") == 1


def test_crawls_started_in_the_same_second_with_the_same_pid_write_apart(monkeypatch):
    """Workers on two machines sharing a data dir (a network file system): containers' crawls
    often have the same pid, and may start in the same second."""
    import time

    from pipelines.store import crawl_stamp

    moment = time.gmtime(1_750_000_000)
    monkeypatch.setattr(time, "gmtime", lambda *_: moment)
    monkeypatch.setattr("os.getpid", lambda: 7)
    stamps = {crawl_stamp() for _ in range(50)}
    assert len(stamps) == 50
    assert all(s.startswith("20250615T150640Z-7-") for s in stamps)


@pytest.mark.parametrize("reason, key", [
    # git's last line, as gitrepo.describe_failure hands over a failure it has no name for
    ("fatal: unable to access '<url>': The requested URL returned error: 418", "unable to access '<url>'"),
    ("error: object file <path> is empty", "object file <path> is empty"),
    ("fatal: protocol error: bad pack header", "protocol error"),
    (None, "invalid branch name"),  # a hub's branch, refused (check_branch): one counter, whatever the name
    ("disk full", "disk full"),
])
def test_the_failure_counter_of_a_clone_names_the_reason_not_gits_severity(crawler, reason, key):
    # Every failure git's words named ended in ptm/clone/failed/fatal (or /error): one counter for
    # them all, that says nothing of what failed.
    if reason is None:
        with pytest.raises(RepoError) as refused:
            check_branch("feature~1")
        reason = str(refused.value)
    stage = ClonePipeline.from_crawler(crawler)
    record = mapped(crawler, fixture_models()[0])
    stage._finish(record, record, CloneResult(None, None, f"failed: {reason}"))
    failed = {k: v for k, v in crawler.stats.get_stats().items() if k.startswith("ptm/clone/failed/")}
    assert failed == {f"ptm/clone/failed/{key}": 1}


def test_the_first_clone_failures_of_each_reason_are_warnings_the_rest_debug(crawler, caplog):
    """A tokenless Hugging Face crawl logged a WARNING for every gated model (401), thousands of lines
    burying the log's real problems; each one is still counted, in its record and in the summary."""
    from pipelines.clone import NAMED_FAILURES
    from ptmscrape.verdict import left_out

    stage = ClonePipeline.from_crawler(crawler)
    gated, busy = "failed: authentication required (HTTP 401/403)", "failed: server error (HTTP 5xx)"
    with caplog.at_level(logging.DEBUG, logger="pipelines.clone"):
        for status in [gated] * (NAMED_FAILURES + 3) + [busy] * 2:
            record = mapped(crawler, fixture_models()[0])
            out = stage._finish(record, record, CloneResult(None, None, status))
            assert out["CloneStatus"] == status
    warned = [r.getMessage() for r in caplog.records if r.levelno == logging.WARNING]
    assert len([m for m in warned if m.startswith("Clone failed") and "authentication" in m]) == NAMED_FAILURES
    assert len([m for m in warned if m.startswith("Clone failed") and "server error" in m]) == 2
    assert [m for m in warned if not m.startswith("Clone failed")] == [
        "More clones failed for authentication required (HTTP 401/403): logged at DEBUG from here on; each "
        f"model's CloneStatus is in {crawler.settings['PTM_DATA_DIR']}/huggingface/huggingface.jsonl "
        "(ptm/clone/failed/authentication required counts them)"]
    debug = [r.getMessage() for r in caplog.records if r.levelno == logging.DEBUG]
    assert len([m for m in debug if m.startswith("Clone failed") and "authentication" in m]) == 3
    stats = crawler.stats.get_stats()
    assert (stats["ptm/clone/failed"], stats["ptm/clone/failed/authentication required"]) == (NAMED_FAILURES + 5,
                                                                                            NAMED_FAILURES + 3)
    assert left_out(stats, "huggingface").startswith(
        f"{NAMED_FAILURES + 5} models not cloned (authentication required: {NAMED_FAILURES + 3}, server error: 2): "
        "their CloneStatus in huggingface/huggingface.jsonl")


def test_a_failed_clones_warning_names_the_model_and_quotes_git(tmp_path, crawler, caplog):
    # The reason is a few fixed words (one counter each); what git itself said was in no log line,
    # so "connection broken during transfer" on 300 models left nothing to tell curl's errors apart.
    git_host = GitHost(tmp_path / "git")
    with Replica() as server:
        server.route("GET", "/o/busy/info/refs", lambda r, m: Reply.text("Backend pool exhausted", 503))
        git_host.mount(server)
        record = mapped(crawler, fixture_models()[0])
        record["RepoURL"] = f"{server.url}/o/busy"
        stage = ClonePipeline.from_crawler(crawler)
        stage.cloner.retries = 0  # the failure's warning, not PTM_CLONE_RETRIES (tests/test_cloning.py)
        stage.open_spider()
        with caplog.at_level(logging.WARNING, logger="pipelines.clone"):
            out = run(stage.process_item(record))
        stage.close_spider()
    assert out["CloneStatus"] == "failed: server error (HTTP 5xx)"
    [line] = [r.getMessage() for r in caplog.records if "Clone failed" in r.getMessage()]
    assert line.startswith(f"Clone failed for huggingface:acme-research/vit-tiny-demo ({server.url}/o/busy): "
                           "server error (HTTP 5xx); git: ")
    assert "remote: Backend pool exhausted" in line and "returned error: 503" in line
    assert server.url not in line.split("; git: ", 1)[1]  # URLs in git's words are <url>


def test_a_clone_failed_for_a_reason_of_this_machine_is_a_warning_after_many_of_the_hubs_own(crawler, caplog):
    """The verdict on a clone failed for a reason of this machine points at the WARNINGs 'Clone failed
    for …' to say which: one that came after NAMED_FAILURES of the repositories' own with the same
    reason key ('filesystem error (File name too long)', then '… (Read-only file system)') was at
    DEBUG, and no WARNING said it was this machine's, so no line named the model to fix."""
    from pipelines.clone import NAMED_FAILURES

    stage = ClonePipeline.from_crawler(crawler)
    hubs = CloneResult(None, None, "failed: filesystem error (File name too long)")
    ours = CloneResult(None, None, "failed: filesystem error (Read-only file system)", local=True)
    with caplog.at_level(logging.DEBUG, logger="pipelines.clone"):
        for result in [hubs] * (NAMED_FAILURES + 1) + [ours]:
            record = mapped(crawler, fixture_models()[0])
            stage._finish(record, record, result)
    warnings = [r.getMessage() for r in caplog.records if r.levelno == logging.WARNING]
    warned = [m for m in warnings if "Read-only" in m]
    assert len(warned) == 1 and "this machine" in warned[0]
    hub_warned = [m for m in warnings if "File name" in m]
    assert hub_warned and not any("this machine" in m for m in hub_warned)
