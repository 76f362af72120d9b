"""A feed (``-O out.jsonl``) whose disk fills, or whose reader goes away (``-O - | head``;
``ptmscrape/feeds.py``): one ERROR instead of a traceback per item, the items it misses counted, no
torn last line, and the crawl exits 1 — where Scrapy's exporter left a crawl "finished", exit status
0, with most models missing from its feed."""

from __future__ import annotations

import asyncio
import errno
import io
import json
import logging
import os
import shlex
import subprocess
import sys
import types

from ptmscrape.feeds import GuardedFeedExporter
from ptmscrape.stats import FEED_NOT_WRITTEN, FEED_NOT_WRITTEN_BY_REASON
from ptmscrape.verdict import verdict
from tests.crawl import ROOT, CrawlResult, crawl_command, project_crawler
from tests.full_disk import in_a_small_disk, small_disk
from tests.replicas.huggingface import HuggingFaceReplica, synthetic_models

ENOSPC_TEXT = os.strerror(errno.ENOSPC)  # "No space left on device"


def whole_lines(path) -> list[dict]:
    raw = path.read_bytes()
    assert raw == b"" or raw.endswith(b"\n"), f"torn last line in {path}: {raw[-80:]!r}"
    return [json.loads(line) for line in raw.splitlines()]


def test_a_crawl_whose_feed_disk_fills_says_so_once_and_exits_1_with_every_model_in_the_dataset(tmp_path):
    disk, saved = small_disk(tmp_path)
    with HuggingFaceReplica(synthetic_models(400), None, repos=False) as hub:
        settings = {"PTM_HUGGINGFACE_URL": hub.url, "PTM_HUGGINGFACE_PAGE_SIZE": 50, "PTM_CLONE": 0}
        out, stats = disk / "out.jsonl", tmp_path / "stats.json"  # the feed on a 100 KB disk, the dataset not
        cmd = [sys.executable, *crawl_command("huggingface", out, tmp_path / "data", stats, settings=settings)[1:]]
        proc = in_a_small_disk(disk, "100k", saved, cmd)
    result = CrawlResult(proc.returncode, proc.stderr + proc.stdout, saved / "out.jsonl", stats, tmp_path / "data")
    log = result.log
    assert result.returncode == 1, log[-5000:]
    assert "Traceback" not in log, log[-5000:]
    assert log.count("Could not write the feed") == 1
    held = whole_lines(result.out)  # cut back to its last whole line
    missed = result.stats[FEED_NOT_WRITTEN]
    assert 0 < len(held) < 400 and len(held) + missed == 400
    assert result.stats[FEED_NOT_WRITTEN_BY_REASON + ENOSPC_TEXT] == missed
    assert f"is incomplete: {len(held)} items in it, {missed} not written ({ENOSPC_TEXT})" in log
    assert len(result.records("huggingface")) == 400  # the crawl went on: the dataset has every model
    assert result.stats["finish_reason"] == "finished"
    assert log.rstrip().splitlines()[-1].endswith(
        f"Crawl verdict: exit status 1: {missed} items not written to the feed ({ENOSPC_TEXT}: {missed}): "
        "the dataset tree has them")


def opened_feeds(feeds: dict) -> tuple:
    """A Hugging Face crawler with these ``FEEDS`` and its feed exporter, opened."""
    from spiders.huggingface import HuggingfaceSpider

    crawler = project_crawler(HuggingfaceSpider, {"FEEDS": feeds})
    crawler.spider = HuggingfaceSpider.from_crawler(crawler)
    feed = GuardedFeedExporter(crawler)
    feed.open_spider(crawler.spider)
    return crawler, feed

class FillingFile:
    """A feed file on a disk that takes ``budget`` more bytes: the write that crosses it lands in
    part (a torn line), later ones fail whole, as a buffered file's writes do on a full disk."""

    def __init__(self, file, budget: int):
        self.file, self.budget = file, budget

    def write(self, data: bytes) -> int:
        if self.budget <= 0:
            raise OSError(errno.ENOSPC, ENOSPC_TEXT)
        self.file.write(data[: self.budget])
        self.file.flush()
        if len(data) > self.budget:
            self.budget = 0
            raise OSError(errno.ENOSPC, ENOSPC_TEXT)
        self.budget -= len(data)
        return len(data)

    def __getattr__(self, name):
        return getattr(self.file, name)


def test_a_feed_that_fails_stops_alone_and_is_cut_to_its_whole_lines(tmp_path, caplog):
    full, other = tmp_path / "full.jsonl", tmp_path / "other.jsonl"
    feeds = {str(path): {"format": "jsonlines", "overwrite": True} for path in (full, other)}
    crawler, feed = opened_feeds(feeds)
    items = [{"id": n, "text": "x" * 50} for n in range(20)]
    with caplog.at_level(logging.ERROR, logger="ptmscrape.feeds"):
        feed.item_scraped(items[0], crawler.spider)  # opens both files
        slot = next(s for s in feed.slots if s.uri == str(full))
        slot.exporter.file = FillingFile(slot.exporter.file, 3 * (len(json.dumps(items[0])) + 1) + 7)
        for item in items[1:]:
            feed.item_scraped(item, crawler.spider)
        asyncio.run(feed.close_spider(crawler.spider))

    assert [r["id"] for r in whole_lines(other)] == list(range(20))  # the other feed took every item
    held = whole_lines(full)  # the torn fifth line was cut off
    assert [r["id"] for r in held] == list(range(4))
    stats = crawler.stats.get_stats()
    assert stats[FEED_NOT_WRITTEN] == 16 and stats[FEED_NOT_WRITTEN_BY_REASON + ENOSPC_TEXT] == 16
    assert stats["feedexport/failed_count/FileFeedStorage"] == 1
    assert stats["feedexport/success_count/FileFeedStorage"] == 1
    errors = [r.getMessage() for r in caplog.records]
    assert len(errors) == 2 and errors[0].startswith(f"Could not write the feed {full} ({ENOSPC_TEXT})")
    assert errors[1] == f"The feed {full} is incomplete: 4 items in it, 16 not written ({ENOSPC_TEXT})"
    result = verdict({**stats, "finish_reason": "finished", "ptm/store/records": 20})
    assert result.status == 1 and result.reason == \
        f"16 items not written to the feed ({ENOSPC_TEXT}: 16): the dataset tree has them"


def test_a_feed_scrapy_could_not_store_at_its_close_fails_the_crawl():
    stats = {"finish_reason": "finished", "ptm/store/records": 3, "feedexport/failed_count/FileFeedStorage": 1}
    result = verdict(stats)
    assert result.status == 1 and result.reason == "a feed was not stored (see the ERROR above)"
    assert verdict({**stats, "feedexport/failed_count/FileFeedStorage": 0}).status == 0


def test_a_feed_that_cannot_be_opened_is_one_error_and_every_item_counted(tmp_path, caplog):
    """Local feeds are checked before a crawl (``checks.check_feeds``); a feed named by the crawl
    (``%(time)s``) or a folder changed meanwhile is found at the first item."""
    (tmp_path / "afile").write_text("kept")
    uri = str(tmp_path / "afile" / "out.jsonl")
    crawler, feed = opened_feeds({uri: {"format": "jsonlines", "overwrite": True}})
    with caplog.at_level(logging.ERROR, logger="ptmscrape.feeds"):
        for n in range(3):
            feed.item_scraped({"id": n}, crawler.spider)
        asyncio.run(feed.close_spider(crawler.spider))
    reason = os.strerror(errno.ENOTDIR)
    assert [r.getMessage().split(":")[0] for r in caplog.records] == [
        f"Could not write the feed {uri} ({reason})", f"The feed {uri} is incomplete"]
    assert caplog.records[1].getMessage().endswith(f"at most 0 items in it, 3 not written ({reason})")
    assert crawler.stats.get_value(FEED_NOT_WRITTEN) == 3
    assert (tmp_path / "afile").read_text() == "kept"


def test_a_feed_on_standard_output_whose_reader_goes_away_is_one_error_and_stdout_stays_open(tmp_path):
    with HuggingFaceReplica(synthetic_models(200), None, repos=False) as hub:
        settings = {"PTM_HUGGINGFACE_URL": hub.url, "PTM_HUGGINGFACE_PAGE_SIZE": 50, "PTM_CLONE": 0}
        cmd = crawl_command("huggingface", tmp_path / "unused.jsonl", tmp_path / "data", tmp_path / "stats.json",
                            settings=settings)
        cmd[cmd.index("-O") + 1] = "-:jsonl"  # standard output, read by `head`, which stops after 300 bytes
        log = tmp_path / "crawl.log"
        piped = f"{shlex.join(cmd)} 2>{shlex.quote(str(log))} | head -c 300 >/dev/null; exit ${{PIPESTATUS[0]}}"
        proc = subprocess.run(["bash", "-c", piped], cwd=ROOT, timeout=300)
    result = CrawlResult(proc.returncode, log.read_text(), tmp_path / "unused.jsonl", tmp_path / "stats.json",
                         tmp_path / "data")
    text = result.log
    reason = os.strerror(errno.EPIPE)  # "Broken pipe"
    assert result.returncode == 1, text[-5000:]
    assert "Traceback" not in text and "Exception ignored" not in text, text[-5000:]  # stdout not closed under Python
    assert text.count(f"Could not write the feed stdout: ({reason})") == 1
    missed = result.stats[FEED_NOT_WRITTEN]
    assert 0 < missed < 200 and f", {missed} not written ({reason})" in text
    assert len(result.records("huggingface")) == 200  # the crawl went on: the dataset has every model


class GonePipe(io.BytesIO):
    """Standard output whose reader went away."""

    def write(self, data) -> int:
        raise BrokenPipeError(errno.EPIPE, os.strerror(errno.EPIPE))


def test_a_stopped_feed_on_standard_output_leaves_it_open(monkeypatch):
    pipe = GonePipe()
    monkeypatch.setattr(sys, "stdout", types.SimpleNamespace(buffer=pipe))
    crawler, feed = opened_feeds({"stdout:": {"format": "jsonlines"}})
    for n in range(3):
        feed.item_scraped({"id": n}, crawler.spider)
    asyncio.run(feed.close_spider(crawler.spider))
    assert not pipe.closed  # Scrapy's storage leaves standard output open; so does a stopped feed
    assert crawler.stats.get_value(FEED_NOT_WRITTEN_BY_REASON + os.strerror(errno.EPIPE)) == 3


def test_a_feed_appended_to_with_o_is_not_cut_into_what_was_there(tmp_path):
    path = tmp_path / "kept.jsonl"
    path.write_bytes(b'{"earlier": 1}\n{"somebody": "else, no newline"}')
    crawler, feed = opened_feeds({str(path): {"format": "jsonlines"}})  # -o
    feed.item_scraped({"id": 0}, crawler.spider)
    (slot,) = feed.slots
    slot.exporter.file = FillingFile(slot.exporter.file, 3)
    feed.item_scraped({"id": 1}, crawler.spider)
    asyncio.run(feed.close_spider(crawler.spider))
    assert path.read_bytes().startswith(b'{"earlier": 1}\n{"somebody": "else, no newline"}{"id": 0}\n{"i')
    assert crawler.stats.get_value(FEED_NOT_WRITTEN) == 1


def test_a_stopped_feed_on_a_pipe_is_neither_cut_nor_read_back(tmp_path, caplog):
    """``-O /dev/stdout`` piped to a reader that went away: the feed's path is a pipe, which the close
    must not open to cut or count lines (reading it took the reader's lines, or waited for ever)."""
    read_end, write_end = os.pipe()
    uri = f"/proc/self/fd/{read_end}"  # what /dev/stdout is when standard output is a pipe
    try:
        crawler, feed = opened_feeds({uri: {"format": "jsonlines", "overwrite": True}})
        feed.item_scraped({"id": 0}, crawler.spider)
        (slot,) = feed.slots
        slot.exporter.file = FillingFile(slot.exporter.file, 3)
        os.close(write_end)  # the feed's own file is the pipe's last writer
        write_end = -1
        with caplog.at_level(logging.ERROR, logger="ptmscrape.feeds"):
            feed.item_scraped({"id": 1}, crawler.spider)
            asyncio.run(feed.close_spider(crawler.spider))
        assert os.read(read_end, 1000) == b'{"id": 0}\n{"i'  # still the reader's
    finally:
        os.close(read_end)
        if write_end >= 0:
            os.close(write_end)
    reason = ENOSPC_TEXT
    assert [r.getMessage().split(":")[0] for r in caplog.records] == [
        f"Could not write the feed {uri} ({reason})", f"The feed {uri} is incomplete"]
    assert caplog.records[1].getMessage().endswith(f"at most 1 item in it, 1 not written ({reason})")


def test_a_feed_whose_end_cannot_be_written_at_its_close_fails_the_crawl(tmp_path, caplog):
    """Scrapy's close lets an error out of what it does before its guard: a CSV or XML exporter's end
    flushes the file (here /dev/full, a disk always full: the items were all in the write buffer),
    an empty feed (FEED_STORE_EMPTY) is opened there. It was an unretrieved task exception, and the
    crawl exited 0."""
    from spiders.huggingface import HuggingfaceSpider

    (tmp_path / "afile").write_text("kept")
    unopenable = str(tmp_path / "afile" / "out.jsonl")
    feeds = {"/dev/full": {"format": "csv", "overwrite": True},
             unopenable: {"format": "jsonlines", "overwrite": True, "item_classes": [HuggingfaceSpider]}}
    crawler, feed = opened_feeds(feeds)
    with caplog.at_level(logging.ERROR):
        for n in range(3):
            feed.item_scraped({"id": n}, crawler.spider)  # none is a spider: the second feed stays empty
        asyncio.run(feed.close_spider(crawler.spider))
    errors = sorted(r.getMessage() for r in caplog.records)
    assert errors == sorted([
        f"Could not write the feed /dev/full at its close ({ENOSPC_TEXT})",
        f"The feed /dev/full is incomplete: at most 3 items in it, 0 not written ({ENOSPC_TEXT})",
        f"Could not write the feed {unopenable} at its close ({os.strerror(errno.ENOTDIR)})",
        f"The feed {unopenable} is incomplete: at most 0 items in it, 0 not written ({os.strerror(errno.ENOTDIR)})",
    ])
    stats = crawler.stats.get_stats()
    assert stats["feedexport/failed_count/FileFeedStorage"] == 2
    result = verdict({**stats, "finish_reason": "finished", "ptm/store/records": 3})
    assert result.status == 1 and result.reason == "a feed was not stored (see the ERROR above)"
