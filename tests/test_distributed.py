"""Distributed crawls on scrapy-redis: settings switch, hand-off requests, and two real
``scrapy crawl huggingface`` workers sharing one Redis (``.ci/start-redis.sh``) and one data dir."""

from __future__ import annotations

import hashlib
import json
import logging
import os
import re
import socket
import subprocess
import sys
import uuid
from pathlib import Path
from urllib.parse import urlsplit, urlunsplit

import pytest
from scrapy.exceptions import CloseSpider
from scrapy.http import Request, TextResponse

from ptmscrape.dataset.payloads import read_payload
from ptmscrape.dataset.tree import DatasetTree
from ptmscrape.items import RawModelItem
from spiders.huggingface import HuggingfaceSpider
from tests.crawl import ROOT, crawl_command, project_crawler, read_jsonl, run_crawl
from tests.crawl_control import BackgroundCrawl, RedisGate, hold
from tests.helpers import json_response, make_spider, start_requests
from tests.replicas.faults import FaultPlan, inject
from tests.replicas.huggingface import HuggingFaceReplica, _cursor, fixture_models, synthetic_models
from tests.services import require_service

REDIS_URL = os.environ.get("PTM_TEST_REDIS_URL", "redis://127.0.0.1:6379/0")


def _redis_or_skip():
    """Skip (locally) or fail (CI=true) when Redis is not running; the client otherwise."""
    import redis

    require_service("Redis", REDIS_URL, start_hint="bash .ci/start-redis.sh")
    return redis.Redis.from_url(REDIS_URL, socket_connect_timeout=2)


@pytest.fixture
def redis_client():
    return _redis_or_skip()


@pytest.fixture
def prefix(redis_client):
    """A Redis key prefix of this test alone; its keys are removed afterwards."""
    name = f"ptmtest-{uuid.uuid4().hex[:12]}"
    yield name
    keys = list(redis_client.scan_iter(match=f"{name}:*"))
    if keys:
        redis_client.delete(*keys)


def left_in_redis(redis_client, prefix: str) -> list[bytes]:
    """The keys a finished crawl left under ``prefix``, but its ``:crawl`` mark: ``finished:<id>``,
    for an hour, for its workers still waiting (they end too)."""
    mark = f"{prefix}:huggingface:crawl"
    value = redis_client.get(mark)
    assert value is None or (value.startswith(b"finished:") and 0 < redis_client.ttl(mark) <= 3600), value
    return [key for key in redis_client.scan_iter(match=f"{prefix}:*") if key != mark.encode()]


def redis_settings(prefix: str, **extra) -> dict:
    return {"PTM_REDIS_URL": REDIS_URL, "PTM_REDIS_PREFIX": prefix, **extra}


# -- the switch -------------------------------------------------------------------------------

def test_without_redis_url_the_crawl_is_single_process_and_never_imports_scrapy_redis():
    code = (
        "import sys\n"
        "from tests.crawl import project_crawler\n"
        "from spiders.huggingface import HuggingfaceSpider\n"
        "c = project_crawler(HuggingfaceSpider, {'PTM_HUGGINGFACE_URL': 'https://hub.example'})\n"
        "s = HuggingfaceSpider.from_crawler(c)\n"
        "print(c.settings['SCHEDULER'], s.handoff, any(m.startswith(('scrapy_redis', 'redis')) for m in sys.modules))\n"
    )
    out = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, check=True)
    assert out.stdout.split() == ["ptmscrape.jobdir_writes.JobScheduler", "None", "False"]


def test_redis_url_switches_to_the_shared_scheduler_under_the_prefix():
    crawler = project_crawler(HuggingfaceSpider, {**redis_settings("crawl7"), "PTM_CLONE_CONCURRENCY": 3})
    s = crawler.settings
    assert s["SCHEDULER"] == "ptmscrape.redis_scheduler.SharedScheduler"
    assert s["DUPEFILTER_CLASS"] == "scrapy_redis.dupefilter.RFPDupeFilter"
    assert s["REDIS_URL"] == REDIS_URL
    assert s["SCHEDULER_QUEUE_KEY"] % {"spider": "huggingface"} == "crawl7:huggingface:requests"
    assert s["SCHEDULER_DUPEFILTER_KEY"] % {"spider": "huggingface"} == "crawl7:huggingface:dupefilter"
    assert s.getint("SCRAPER_SLOT_MAX_ACTIVE_SIZE") == 6 * 1024  # ~2 x clone threads of models
    # The add-on sets defaults only: a user's -s still wins.
    persisted = project_crawler(HuggingfaceSpider, {**redis_settings("p"), "SCHEDULER_PERSIST": True})
    assert persisted.settings.getbool("SCHEDULER_PERSIST") is True


def test_shared_scheduler_class_subclasses_scrapy_redis():
    from scrapy.core.scheduler import BaseScheduler
    from scrapy_redis.scheduler import Scheduler

    from ptmscrape.redis_scheduler import SharedScheduler as cls
    assert issubclass(cls, Scheduler) and issubclass(cls, BaseScheduler)


# -- hand-offs (spider callbacks against a real Redis) ------------------------------------------

def listing_page(url: str, models: list[dict]) -> TextResponse:
    return json_response(url, models)


def redis_spider(prefix: str, **kwargs) -> HuggingfaceSpider:
    return make_spider(HuggingfaceSpider, {"PTM_HUGGINGFACE_URL": "https://hub.example", **redis_settings(prefix)},
                       **kwargs)


def test_listing_hands_each_model_off_as_a_request_that_delivers_the_same_item(prefix):
    models = fixture_models()[:3]
    url = "https://hub.example/api/models?limit=3"
    local = make_spider(HuggingfaceSpider, {"PTM_HUGGINGFACE_URL": "https://hub.example"})
    expected = list(local.parse_listing(listing_page(url, models)))

    spider = redis_spider(prefix)
    handoffs = list(spider.parse_listing(listing_page(url, models)))
    assert all(isinstance(r, Request) for r in handoffs) and len(handoffs) == 3
    assert len({r.url for r in handoffs}) == 3  # one fingerprint per model: the dupefilter drops repeats
    assert all(r.url.startswith("data:") and r.priority > 0 for r in handoffs)  # before listing pages
    # What travels through Redis: the request as scrapy-redis serialises it.
    from scrapy.utils.request import request_from_dict

    delivered = []
    for request in handoffs:
        copy = request_from_dict(request.to_dict(spider=spider), spider=spider)
        response = TextResponse(copy.url, body=b"", request=copy)
        delivered += list(copy.callback(response))
    assert delivered == expected
    assert all(isinstance(i, RawModelItem) for i in delivered)


def redis_worker(prefix: str, **kwargs):
    """A spider and its worker's shared scheduler, open, as in a crawl (without an engine or a
    reactor: no busy marks, no taken requests)."""
    from ptmscrape.compat.scrapy_redis import Scheduler
    from ptmscrape.redis_scheduler import SharedScheduler

    spider = redis_spider(prefix, **kwargs)
    scheduler = SharedScheduler.from_crawler(spider.crawler)
    Scheduler.open(scheduler, spider)
    scheduler.serve_handoffs(spider)
    return spider, scheduler


def queued(scheduler, requests) -> list:
    """What of ``requests`` the scheduler queued (given it as the engine does)."""
    return [r for r in requests if scheduler.enqueue_request(r)]


def test_limit_counts_the_distinct_models_queued_by_all_workers(prefix):
    models = fixture_models()[:5]
    (first, first_queue), (second, second_queue) = redis_worker(prefix, limit="3"), redis_worker(prefix, limit="3")
    page_1 = list(first.parse_listing(listing_page("https://hub.example/api/models?p=1", models[:2])))
    assert len(page_1) == 2 and first.handoff.listed() == 2  # on their way to the queue: counted here
    assert second.handoff.listed() == 0
    assert len(queued(first_queue, page_1)) == 2
    assert first.handoff.listed() == second.handoff.listed() == 2
    # The second worker lists page 1 again (its first worker died before it was done with it): the
    # models queued already do not count again, and are not queued again.
    again = list(second.parse_listing(listing_page("https://hub.example/api/models?p=1", models[:2])))
    assert len(again) == 2 and second.handoff.listed() == 2
    assert queued(second_queue, again) == []
    # The next page: one model is left under the shared limit.
    out = list(second.parse_listing(listing_page("https://hub.example/api/models?p=2", models[2:])))
    assert len(out) == 1 and second.limit_reached and not first.limit_reached
    assert len(queued(second_queue, out)) == 1
    assert second.limit_reached and first.limit_reached


@pytest.mark.parametrize("failing", [1, 2], ids=["first Redis call fails", "second Redis call fails"])
def test_a_listing_page_is_never_left_seen_but_not_queued(prefix, failing):
    """Whichever Redis call of queueing a listing page fails (the worker killed, the connection
    lost), the page is queued, once, when it is given again: scrapy-redis noted its fingerprint in one
    call and queued it in the next, so a failure between them left the page seen by every worker and
    queued by none, and the listing ended there."""
    import redis

    spider, scheduler = redis_worker(prefix)
    (page,) = start_requests(spider)
    real, calls = scheduler.server.execute_command, []

    def failing_call(*args, **kwargs):
        calls.append(args[0])
        if len(calls) == failing:
            raise redis.ConnectionError("the worker was killed here")
        return real(*args, **kwargs)

    scheduler.server.execute_command = failing_call
    try:
        scheduler.enqueue_request(page)
    except redis.ConnectionError:
        pass
    scheduler.server.execute_command = real
    scheduler.enqueue_request(page.copy())  # the page given again (its worker's listing re-read)
    assert len(scheduler.queue) == 1, f"Redis calls of the first attempt: {calls}"
    assert scheduler.enqueue_request(page.copy()) is False  # and only once


def test_dedupe_stage_shares_its_seen_set_across_workers(prefix):
    from pipelines.dedupe import DedupePipeline

    crawlers = [project_crawler(HuggingfaceSpider, {"PTM_HUGGINGFACE_URL": "https://hub.example",
                                                    **redis_settings(prefix)}) for _ in range(2)]
    for crawler in crawlers:
        crawler.spider = HuggingfaceSpider.from_crawler(crawler)
    one, two = (DedupePipeline.from_crawler(c) for c in crawlers)
    assert one.shared.add(42) is True
    assert two.shared.add(42) is False and two.shared.add(43) is True


def test_a_redis_error_in_the_dedupe_or_store_stage_neither_drops_nor_fails_the_model(
        prefix, tmp_path, monkeypatch, caplog):
    """Redis out of reach as a model passed the dedupe stage (its seen-set) or the store stage (the
    stored set): the error failed the item there, a model dropped by dedupe was lost (its request
    done, the crawl ending with exit status 0), and one stored was left out of the -O feed."""
    from pipelines.dedupe import DedupePipeline
    from pipelines.store import StorePipeline
    from tests.test_pipelines import mapped, run

    crawler = project_crawler(HuggingfaceSpider, {"PTM_HUGGINGFACE_URL": "https://hub.example",
                                                  "PTM_DATA_DIR": str(tmp_path / "data"), **redis_settings(prefix)})
    crawler.spider = HuggingfaceSpider.from_crawler(crawler)
    dedupe, store = DedupePipeline.from_crawler(crawler), StorePipeline.from_crawler(crawler)
    store.open_spider()
    record = mapped(crawler, fixture_models()[0])
    with monkeypatch.context() as m, caplog.at_level(logging.WARNING):
        m.setattr(dedupe.shared.server, "sadd", connection_reset)
        m.setattr(store.stored_by_workers.server, "sadd", connection_reset)
        assert run(dedupe.process_item(record)) is record
        assert run(store.process_item(record)) is record
    store.close_spider()
    assert f"Redis error while {record.label} was noted in {dedupe.shared.key} (processed as not seen)" in caplog.text
    assert f"was noted in {store.stored_by_workers.key} (stored, not noted)" in caplog.text
    assert crawler.stats.get_value("ptm/store/records") == 1


# -- real workers --------------------------------------------------------------------------------

@pytest.fixture(scope="module")
def replica(tmp_path_factory):
    models = fixture_models() + synthetic_models(60)
    with HuggingFaceReplica(models, tmp_path_factory.mktemp("hf-git")) as hub:
        yield hub


def worker_crawl(tmp_path: Path, w: int, settings: dict, *, data: Path | None = None,
                 args: dict | None = None) -> BackgroundCrawl:
    """Worker ``w`` of a distributed crawl in the background: its feed, stats file and log
    ``w<w>.*`` under ``tmp_path``, its data dir ``data`` (default: one shared, ``tmp_path/data``)."""
    return BackgroundCrawl(crawl_command("huggingface", tmp_path / f"w{w}.jsonl", data or tmp_path / "data",
                                         tmp_path / f"w{w}.stats.json", args=args, settings=settings),
                           tmp_path / f"w{w}.log")


def hub_settings(hub, **extra) -> dict:
    return {"PTM_HUGGINGFACE_URL": hub.url, "PTM_HUGGINGFACE_PAGE_SIZE": 10,
            "PTM_CLONE_CONCURRENCY": 2, **extra}


def run_workers(hub, workdir: Path, data_dir: Path, prefix: str, n: int = 2, **extra) -> list[dict]:
    """Start ``n`` crawls at once against one Redis and one data dir; their items and stats."""
    procs = []
    for w in range(n):
        cmd = crawl_command("huggingface", workdir / f"w{w}.jsonl", data_dir, workdir / f"w{w}.stats.json",
                            settings={**hub_settings(hub), **redis_settings(prefix), **extra})
        log = open(workdir / f"w{w}.log", "w")
        procs.append((subprocess.Popen(cmd, cwd=ROOT, stdout=log, stderr=subprocess.STDOUT), log))
    results = []
    for w, (proc, log) in enumerate(procs):
        rc = proc.wait(timeout=600)
        log.close()
        text = (workdir / f"w{w}.log").read_text()
        assert rc == 0 and "Traceback" not in text, text[-5000:]
        assert "DeprecationWarning" not in text, text[-5000:]  # scrapy-redis on Scrapy 2.19, patched
        results.append({"items": read_jsonl(workdir / f"w{w}.jsonl"),
                        "stats": json.loads((workdir / f"w{w}.stats.json").read_text())})
    return results


def head(repo: Path) -> str:
    return subprocess.run(["git", "-C", str(repo), "rev-parse", "HEAD"], capture_output=True, text=True,
                          check=True).stdout.strip()


def comparable(record: dict, data: Path) -> dict:
    """The record, its payload read through its locator (which names the crawl's payload file)."""
    locator = record["ModelHub"]["MetadataFilePath"]
    hub = dict(record["ModelHub"], MetadataFilePath=read_payload(DatasetTree(data), locator))
    return {k: v for k, v in {**record, "ModelHub": hub}.items() if k != "CrawledAt"}


def test_two_workers_split_the_crawl_and_together_equal_a_single_process_crawl(
        tmp_path, replica, prefix, redis_client):
    def hub_traffic():
        return replica.replica.count("GET", r"^/api/models\?"), replica.replica.count("POST", r"/git-upload-pack")

    start = hub_traffic()
    single = run_crawl("huggingface", tmp_path / "single", settings=hub_settings(replica))
    expected = {r["id"]: comparable(r, single.data_dir) for r in single.items}
    assert len(expected) == len(replica.models) == 64
    after_single = hub_traffic()
    (tmp_path / "dist").mkdir()
    data = tmp_path / "dist" / "data"
    workers = run_workers(replica, tmp_path / "dist", data, prefix)

    ids = [{i["id"] for i in w["items"]} for w in workers]
    assert not ids[0] & ids[1], "a model was processed by both workers"
    assert sum(len(w["items"]) for w in workers) == 64
    union = {i["id"]: comparable(i, data) for w in workers for i in w["items"]}
    assert union == expected

    # Both did part of the work, cloning included; nothing was dropped as a duplicate.
    for w in workers:
        stats = w["stats"]
        assert stats["finish_reason"] == "finished"
        assert stats["ptm/store/records"] > 0 and stats["ptm/clone/cloned"] > 0, stats
        assert "ptm/dedupe/duplicate" not in stats
    assert sum(w["stats"]["ptm/clone/cloned"] for w in workers) == 64

    # Listing pages were fetched once (7 pages of 10) and every repository cloned once: the two
    # workers together talked to the hub exactly as much as the single process did.
    after_workers = hub_traffic()
    assert after_single[0] - start[0] == 7
    assert ([b - a for a, b in zip(after_single, after_workers, strict=True)]
            == [b - a for a, b in zip(start, after_single, strict=True)])

    # One dataset tree: every model once in huggingface.jsonl, one clone each at the hub's HEAD.
    records = read_jsonl(data / "huggingface" / "huggingface.jsonl")
    assert sorted(r["id"] for r in records) == sorted(expected)
    owners = (data / "huggingface" / "repos").iterdir()
    clones = [repo for owner in owners if owner.name != ".incoming" for repo in owner.iterdir()]
    assert len(clones) == 64
    for record in records:
        model = replica.models[f"{record['ModelOwner']}/{record['ModelName']}"]
        assert head(data / record["RepoPath"]) == record["LatestGitCommitSHA"] == model["sha"]
    assert list((data / "huggingface" / "repos" / ".incoming").iterdir()) == []

    # A finished crawl leaves nothing behind in Redis (but its finished mark): the next one starts afresh.
    assert left_in_redis(redis_client, prefix) == []


def test_persisted_crawl_keeps_its_keys_and_a_rerun_skips_what_was_seen(tmp_path, replica, prefix, redis_client):
    keep = {"SCHEDULER_PERSIST": "True", "PTM_CLONE": "0"}
    args = {"limit": 5}
    first = run_crawl("huggingface", tmp_path, args=args, out_name="1.jsonl",
                      settings={**hub_settings(replica), **redis_settings(prefix), **keep})
    assert len(first.items) == 5
    assert redis_client.scard(f"{prefix}:huggingface:models") == 5
    assert redis_client.exists(f"{prefix}:huggingface:dupefilter")

    again = run_crawl("huggingface", tmp_path, args=args, out_name="2.jsonl",
                      settings={**hub_settings(replica), **redis_settings(prefix), **keep})
    assert again.items == []  # the listing request was already seen: nothing is crawled twice

    fresh = run_crawl("huggingface", tmp_path, args=args, out_name="3.jsonl",
                      settings={**hub_settings(replica), **redis_settings(prefix),
                                "PTM_CLONE": "0", "SCHEDULER_FLUSH_ON_START": "True"})
    assert sorted(i["id"] for i in fresh.items) == sorted(i["id"] for i in first.items)
    assert left_in_redis(redis_client, prefix) == []


def test_a_crawl_started_after_a_crawl_lost_its_state_in_redis_does_not_inherit_its_leftovers(
        tmp_path, replica, prefix, redis_client):
    """Redis restarted without its data mid-crawl: the workers still running wrote keys again (a
    dupefilter, a seen-set, a queue) for a few seconds, without the crawl's id, then stopped with
    redis_error ("Crawl again"). The crawl started again with that prefix joined those leftovers:
    listing pages and models they held as seen were never fetched or were dropped as duplicates,
    and it ended with exit status 0, the hub's models missing (found operating it on Scrapyd)."""
    args = {"limit": 5}
    settings = {**hub_settings(replica), **redis_settings(prefix), "PTM_CLONE": "0"}
    first = run_crawl("huggingface", tmp_path, args=args, out_name="1.jsonl",
                      settings={**settings, "SCHEDULER_PERSIST": "True"})
    assert len(first.items) == 5
    redis_client.delete(f"{prefix}:huggingface:crawl")  # what a crawl that lost its state leaves
    assert redis_client.exists(f"{prefix}:huggingface:dupefilter", f"{prefix}:huggingface:models") == 2

    again = run_crawl("huggingface", tmp_path, args=args, out_name="2.jsonl", settings=settings)
    assert again.returncode == 0, again.log[-3000:]
    assert sorted(i["id"] for i in again.items) == sorted(i["id"] for i in first.items)
    assert (f"Redis holds keys {prefix}:huggingface:* that no running crawl owns (left by workers of a crawl "
            f"whose state Redis lost): deleted them, starting a new crawl") in again.log
    assert left_in_redis(redis_client, prefix) == []


def test_a_limited_crawl_counts_its_models_in_the_database_of_its_redis_url(tmp_path, replica, prefix, redis_client):
    """The hand-off client (the shared ``-a limit`` counter) is made with the spider, before Scrapy
    applies the add-on that sets ``REDIS_URL``: it connected to localhost's database 0, whatever
    ``PTM_REDIS_URL`` said, and a flushed re-run then found the old count there and listed nothing."""
    import redis

    parts = urlsplit(REDIS_URL)
    other_url = urlunsplit(parts._replace(path="/1" if parts.path != "/1" else "/2"))
    other = redis.Redis.from_url(other_url, socket_connect_timeout=2)
    listed = f"{prefix}:huggingface:listed"
    try:
        result = run_crawl("huggingface", tmp_path, args={"limit": 3},
                           settings={**hub_settings(replica), "PTM_REDIS_URL": other_url, "PTM_REDIS_PREFIX": prefix,
                                     "PTM_CLONE": "0", "SCHEDULER_PERSIST": "True"})
        assert len(result.items) == 3
        assert other.get(listed) == b"3"
        assert not redis_client.exists(listed)
    finally:
        keys = list(other.scan_iter(match=f"{prefix}:*"))
        if keys:
            other.delete(*keys)


def test_a_lost_page_fails_only_the_worker_that_lost_it_and_keeps_its_finish_reason(tmp_path, prefix):
    """docs/failures.md "Exit status": a worker's finish reason stays ``finished`` (the shared queue
    is cleared only by a finished worker); its exit status says what it lost, the others' do not."""
    with HuggingFaceReplica(synthetic_models(40, seed=6), repos=False) as hub:
        order = hub._order("downloads")
        last_of_page_2 = hub.models[order[9][2]]
        cursor = _cursor("downloads", last_of_page_2.get("downloads") or 0, last_of_page_2["_id"])
        inject(hub.replica, FaultPlan(broken={re.escape(cursor): "5xx"}))
        # Page 1 waits until both workers are up: a worker that finished alone would clear the
        # shared keys, and the other would crawl the hub again by itself.
        first_page = hold(hub.replica, "GET", hub._listing, lambda req, m, n: n == 1)
        settings = {"PTM_HUGGINGFACE_URL": hub.url, "PTM_HUGGINGFACE_PAGE_SIZE": 5, "PTM_CLONE": 0,
                    "RETRY_TIMES": 1, "PTM_RETRY_BACKOFF": 0.05, **redis_settings(prefix)}
        workers = [worker_crawl(tmp_path, w, settings) for w in range(2)]
        for worker in workers:
            worker.wait_until(lambda w=worker: first_page.reached.is_set() and "Spider opened" in w.log,
                              "both workers up")
        first_page.open()
        runs = [(worker.wait(), worker.log) for worker in workers]
    lost = [(rc, log) for rc, log in runs if "Page failed after retries" in log]
    others = [(rc, log) for rc, log in runs if "Page failed after retries" not in log]
    assert len(lost) == 1, [log[-2000:] for _, log in runs]
    rc, log = lost[0]
    assert rc == 1 and "Spider closed (finished)" in log
    assert log.rstrip().splitlines()[-1].split("] ", 1)[1].startswith(
        "ERROR: Crawl verdict: exit status 1: 1 page failed (HTTP 50")
    assert [rc for rc, _ in others] == [0]
    assert "Crawl verdict: exit status 0: every listed page was read" in others[0][1]
    assert not list((tmp_path / "data/huggingface").glob("removed-*.txt"))


def test_unreachable_redis_stops_the_crawl_with_a_clear_error_and_no_password(tmp_path):
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]  # nothing listens here once the socket is closed
    result = run_crawl("huggingface", tmp_path, check=False, settings={
        "PTM_HUGGINGFACE_URL": "http://127.0.0.1:9", "PTM_REDIS_URL": f"redis://:s3cret-pw@127.0.0.1:{port}/0"})
    assert result.returncode != 0
    assert f"PTM_REDIS_URL=redis://***@127.0.0.1:{port}/0: Redis not reachable" in result.log
    assert "s3cret-pw" not in result.log


@pytest.mark.parametrize("url", ["redis://:s3cret-pw@127.0.0.1:6379/0", "redis://user:s3cret@pw@127.0.0.1:6379",
                                 "rediss://:s3cret/pw@host:6380/1", "unix://:s3cret@pw@/run/redis.sock?db=0"])
def test_no_part_of_a_redis_password_is_shown(url):
    from ptmscrape.distributed import redacted
    shown = redacted(url)
    assert "s3cret" not in shown and "pw" not in shown and "***@" in shown, shown


def test_hand_offs_of_hostile_ids_stay_apart_and_within_url_limits(prefix):
    """A lone surrogate, ids that differ only past the 300 characters an item keeps, and an id
    whose percent-encoding would pass Scrapy's URL length limit: one hand-off each, all deliverable."""
    from scrapy.utils.request import RequestFingerprinter

    base = fixture_models()[0]
    ids = ["org/lone\ud800x", "org/lone\udc00x", "org/" + "a" * 400 + "1", "org/" + "a" * 400 + "2",
           "org/" + "\u6a21" * 250]
    models = [{**base, "id": i, "modelId": i, "_id": f"{n:024x}"} for n, i in enumerate(ids)]
    spider = redis_spider(prefix)
    handoffs = list(spider.parse_listing(listing_page("https://hub.example/api/models?limit=5", models)))
    assert len(handoffs) == 5 and all(isinstance(r, Request) for r in handoffs)
    assert all(len(r.url) < spider.settings.getint("URLLENGTH_LIMIT") for r in handoffs)
    fingerprints = {RequestFingerprinter().fingerprint(r) for r in handoffs}
    assert len(fingerprints) == 5  # the shared dupefilter drops none of them
    assert [unpack_item(r).payload["id"] for r in handoffs] == ids


def unpack_item(request):
    from ptmscrape.distributed import unpack

    return unpack(TextResponse(request.url, body=b"", request=request))


def test_a_killed_worker_loses_neither_its_listing_page_nor_its_models(tmp_path, prefix, redis_client):
    """A worker killed (SIGKILL, out of memory) had requests it took from the shared queue: a
    listing page it was fetching (the rest of the hub's listing hangs on it) and a model it was
    cloning (already in the shared seen-set). Another worker puts them back in the queue and does
    them, so the crawl still gets every model once; it did not lose them silently with exit status 0."""
    with HuggingFaceReplica(synthetic_models(30, seed=8), tmp_path / "git") as hub:
        held_model = hub._order("downloads")[0][2]  # the first model of page 1
        page_2 = hold(hub.replica, "GET", hub._listing, lambda req, m, n: n == 2)
        clone = hold(hub.replica, "GET", hub.git._smart_http, lambda req, m, n: m.group("repo") == held_model)
        settings = {**hub_settings(hub), "PTM_CLONE_CONCURRENCY": 2, **redis_settings(prefix)}
        data = tmp_path / "data"

        first = worker_crawl(tmp_path, 0, settings)
        first.wait_until(lambda: page_2.reached.is_set() and clone.reached.is_set(),
                         "page 2 and a clone in flight")
        first.kill()
        page_2.open()
        clone.open()
        second = worker_crawl(tmp_path, 1, settings)
        rc = second.wait()
        log = second.log
        assert rc == 0 and "Traceback" not in log, log[-4000:]
        records = read_jsonl(data / "huggingface" / "huggingface.jsonl")
        assert sorted(f"{r['ModelOwner']}/{r['ModelName']}" for r in records) == sorted(hub.models)
        # Said, naming the dead worker (its pid) and what it had: page 2 and hand-offs of page 1.
        said = re.search(r"Put back in the shared queue (\d+) request\(s\) taken by worker [^:]+:(\d+):", log)
        assert said and int(said.group(2)) == first.proc.pid, log[-4000:]
        stats = json.loads((tmp_path / "w1.stats.json").read_text())
        assert stats["ptm/distributed/requeued"] == int(said.group(1)) >= 2
        assert stats["ptm/dedupe/redelivered"] >= 1  # the held model: the dead worker had marked it seen
        record = next(r for r in records if f"{r['ModelOwner']}/{r['ModelName']}" == held_model)
        assert record["CloneStatus"] == "cloned" and head(data / record["RepoPath"]) == hub.models[held_model]["sha"]
    assert left_in_redis(redis_client, prefix) == []


def handoff_digest(model_id: str) -> bytes:
    """What names a model's hand-off in Redis whatever carries it: its URL's digest."""
    return hashlib.sha256(f"huggingface/{model_id}".encode()).hexdigest().encode()


def test_a_limited_crawl_with_a_killed_worker_still_gets_its_limit_of_models(tmp_path, prefix, redis_client):
    """``-a limit`` was counted as models were listed: a listing page its killed worker had taken
    is listed again by another worker, and its models counted a second time, so the crawl ended
    (exit status 0) short of the limit. The first worker is stopped in page 2 while it queues that
    page's models (its Redis held at the third model's hand-off, page 3 in flight), then killed."""
    with HuggingFaceReplica(synthetic_models(30, seed=11), repos=False) as hub:
        order = [row[2] for row in hub._order("downloads")]
        page_3 = hold(hub.replica, "GET", hub._listing, lambda req, m, n: n == 3)
        settings = {"PTM_HUGGINGFACE_URL": hub.url, "PTM_HUGGINGFACE_PAGE_SIZE": 10, "PTM_CLONE": 0,
                    **redis_settings(prefix)}
        data = tmp_path / "data"

        def worker(w: int, redis_url: str = REDIS_URL) -> BackgroundCrawl:
            return worker_crawl(tmp_path, w, {**settings, "PTM_REDIS_URL": redis_url}, args={"limit": 25})

        with RedisGate(REDIS_URL, re.compile(re.escape(handoff_digest(order[12])))) as gate:
            first = worker(0, gate.url)
            first.wait_until(gate.reached.is_set, "the first worker queueing page 2's third model")
            first.kill()
        page_3.open()
        second = worker(1)
        rc = second.wait()
        log = second.log
        assert rc == 0 and "Traceback" not in log, log[-4000:]
        said = rf"Put back in the shared queue \d+ request\(s\) taken by worker [^:]+:{first.proc.pid}:"
        assert re.search(said, log), log[-4000:]
        records = read_jsonl(data / "huggingface" / "huggingface.jsonl")
        # 25 models (pages 1 and 2 and half of page 3, or, the second worker reading page 3 before
        # page 2 again, the other way round), none twice.
        names = [f"{r['ModelOwner']}/{r['ModelName']}" for r in records]
        assert len(names) == len(set(names)) == 25 and set(order[:10]) < set(names), names
    assert left_in_redis(redis_client, prefix) == []


def test_a_model_a_killed_worker_stored_is_not_stored_again_by_another(tmp_path, prefix, redis_client):
    """Workers with a data dir each, as on two machines: a model whose worker was killed after
    storing it, before it was done with it, is put back in the queue, and the worker that got it
    stored it again, so the two data dirs both had it. The first worker is stopped (its Redis held)
    as it marks a model done, then killed."""
    with HuggingFaceReplica(synthetic_models(6, seed=12), repos=False) as hub:
        settings = {"PTM_HUGGINGFACE_URL": hub.url, "PTM_HUGGINGFACE_PAGE_SIZE": 10, "PTM_CLONE": 0,
                    **redis_settings(prefix)}

        def worker(w: int, redis_url: str = REDIS_URL) -> BackgroundCrawl:
            return worker_crawl(tmp_path, w, {**settings, "PTM_REDIS_URL": redis_url}, data=tmp_path / f"data{w}")

        # A request taken from the queue is noted in the worker's taken hash under a running
        # number: 0 is the listing page, the others are models.
        done_with_a_model = re.compile(rb"HDEL\r\n\$\d+\r\n" + re.escape(f"{prefix}:huggingface:taken:".encode())
                                       + rb"[^\r]+\r\n\$\d+\r\n(?!0\r\n)")
        with RedisGate(REDIS_URL, done_with_a_model) as gate:
            first = worker(0, gate.url)
            first.wait_until(gate.reached.is_set, "the first worker done with a model")
            first.kill()
        second = worker(1)
        rc = second.wait()
        log = second.log
        assert rc == 0 and "Traceback" not in log, log[-4000:]

        def models(records) -> set[str]:
            return {f"{r['ModelOwner']}/{r['ModelName']}" for r in records}

        # The killed worker's snapshot (never merged: it was killed) and the second worker's dataset.
        stored_first = models(r for path in (tmp_path / "data0/huggingface/snapshots").glob("*.jsonl")
                              for r in read_jsonl(path))
        stored_second = models(read_jsonl(tmp_path / "data1/huggingface/huggingface.jsonl"))
        assert stored_first and not stored_first & stored_second
        assert stored_first | stored_second == set(hub.models)
        stats = json.loads((tmp_path / "w1.stats.json").read_text())
        assert stats["ptm/dedupe/stored_by_dead_worker"] >= 1, stats  # at least the model held
        assert stats["item_dropped_reasons_count/StoredByDeadWorker"] == stats["ptm/dedupe/stored_by_dead_worker"]
    assert left_in_redis(redis_client, prefix) == []


def test_a_worker_is_judged_gone_by_its_pid_only_where_its_pid_is_ours_to_see():
    """Workers in containers sharing the host's name (``--network host``) have pids of other pid
    namespaces: only a worker of this machine and pid namespace whose process is gone is gone at
    once; any other waits for its busy mark to expire."""
    from ptmscrape.redis_scheduler import gone_here, pid_namespace, pid_space, worker_name

    dead = subprocess.Popen([sys.executable, "-c", "pass"])
    dead.wait()
    here = worker_name()
    host, namespace, space = socket.gethostname(), pid_namespace(), pid_space()
    assert here.startswith(f"{host}:{os.getpid()}:{space}-") and space.startswith(f"{namespace}.")
    assert not gone_here(here)  # alive
    assert gone_here(f"{host}:{dead.pid}:{space}-0badc0de")
    other_container = "4026532999" + space.removeprefix(namespace)  # its pid namespace, this boot
    assert not gone_here(f"{host}:{dead.pid}:{other_container}-0badc0de")
    assert not gone_here(f"{host}:{dead.pid}:0badc0de")  # no namespace said: a worker of an older version
    assert not gone_here(f"{host}:{dead.pid}:{namespace}-0badc0de")  # no boot said: a worker of an older version
    assert not gone_here(f"elsewhere:{dead.pid}:{space}-0badc0de")


def test_a_live_worker_of_another_machine_of_the_same_name_is_not_judged_gone_by_its_pid(monkeypatch):
    """Machines may share a host name (made from one image; ``hostname: worker`` in a compose file),
    and every machine's first pid namespace has the same number (``pid:[4026531836]``): a live
    worker there whose pid is not alive here was judged gone at once, its busy mark ignored and
    deleted, and the requests it was working on given back. The boot id in its name tells it apart."""
    import ptmscrape.redis_scheduler as redis_scheduler

    dead = subprocess.Popen([sys.executable, "-c", "pass"])
    dead.wait()

    def named(pid: int) -> str:  # worker_name(), as a worker of that pid would have it
        host, _, rest = redis_scheduler.worker_name().partition(":")
        return f"{host}:{pid}:{rest.partition(':')[2]}"

    assert redis_scheduler.gone_here(named(dead.pid))  # of this machine: gone
    with monkeypatch.context() as m:  # the same name and pid namespace, another machine's kernel
        m.setattr(redis_scheduler, "boot_id", lambda: "0f" * 16, raising=False)
        there = named(dead.pid)
    assert not redis_scheduler.gone_here(there)


def shared_scheduler(prefix: str):
    """A worker's scheduler on Redis, its queue open and taken requests tracked, as ``open()``
    leaves it, without an engine or a looping call (the tests call what those would)."""
    from scrapy.utils.misc import load_object

    from ptmscrape.redis_scheduler import SharedScheduler

    spider = redis_spider(prefix)
    scheduler = SharedScheduler.from_crawler(spider.crawler)
    scheduler.spider = spider
    scheduler.queue = load_object(scheduler.queue_cls)(server=scheduler.server, spider=spider,
                                                       serializer=scheduler.serializer,
                                                       key=scheduler.queue_key % {"spider": spider.name})
    scheduler.df = load_object(scheduler.dupefilter_cls).from_spider(spider)
    scheduler.tracking = True
    return scheduler


def connection_reset(*args, **kwargs):
    import redis

    raise redis.exceptions.ConnectionError("Connection reset by peer")


def test_a_redis_error_does_not_end_the_busy_mark_refresh(prefix, redis_client, monkeypatch, caplog):
    """The busy mark is refreshed by a looping call, which ends for good at its first exception: a
    Redis hiccup must not end it, else the mark lapses while the worker works (a 20-minute clone),
    and the other workers give back the requests it is working on and may close the crawl."""
    from types import SimpleNamespace

    scheduler = shared_scheduler(prefix)
    scheduler.crawler.engine = SimpleNamespace(spider_is_idle=lambda: False)  # a worker at work
    with monkeypatch.context() as m, caplog.at_level(logging.WARNING):
        m.setattr(scheduler.server, "set", connection_reset)
        scheduler.refresh()  # what the looping call runs every BUSY_REFRESH s
    assert f"Redis error while worker {scheduler.worker} refreshed its busy mark" in caplog.text
    assert "Connection reset by peer" in caplog.text
    scheduler.refresh()  # the next tick, Redis back
    assert redis_client.ttl(scheduler.busy_key) > 0


def test_a_redis_error_while_the_refresh_asks_whether_the_worker_is_idle_does_not_end_it(
        prefix, redis_client, monkeypatch, caplog):
    """The engine's spider_is_idle() asks Redis the length of the shared queue: Redis unreachable at
    that moment ended the looping call (an ERROR traceback), and the busy mark was never refreshed again."""
    from types import SimpleNamespace

    scheduler = shared_scheduler(prefix)
    scheduler.crawler.engine = SimpleNamespace(spider_is_idle=lambda: not scheduler.has_pending_requests())
    with monkeypatch.context() as m, caplog.at_level(logging.WARNING):
        m.setattr(scheduler.server, "zcard", connection_reset)
        scheduler.refresh()  # raised: the looping call logged it and stopped for good
    # Said by the refresh, or by has_pending_requests() (which waits for Redis a while: REDIS_WAIT).
    assert (f"Redis error while worker {scheduler.worker} refreshed its busy mark" in caplog.text
            or f"Redis does not answer worker {scheduler.worker}" in caplog.text)
    redis_client.zadd(scheduler.queue.key, {b"x": 0})  # queued work: the worker is not idle
    scheduler.refresh()  # the next tick, Redis back
    assert redis_client.ttl(scheduler.busy_key) > 0


def test_a_request_redis_does_not_take_is_kept_and_queued_once_redis_answers(prefix, redis_client, monkeypatch, caplog):
    """A Redis error while a callback's requests were queued was raised out of enqueue_request: the
    request (the next listing page: the rest of the listing) was lost, and every worker, finding the
    queue empty, ended with exit status 0. It is kept and queued once Redis answers; the worker is
    not idle meanwhile."""
    scheduler = shared_scheduler(prefix)
    pages = [Request(f"https://hub.example/api/models?page={n}") for n in range(2)]
    with monkeypatch.context() as m, caplog.at_level(logging.WARNING):
        m.setattr(scheduler, "enqueue_script", connection_reset)
        assert all(scheduler.enqueue_request(page) for page in pages)
        assert scheduler.has_pending_requests()  # not idle: the worker does not finish
    assert f"Redis error while worker {scheduler.worker} queued {pages[0].url}" in caplog.text
    assert redis_client.zcard(scheduler.queue.key) == 0
    taken = scheduler.next_request()  # Redis answers again: queued first, in order, then taken
    assert taken is not None and taken.url == pages[0].url
    assert redis_client.zcard(scheduler.queue.key) == 1
    assert not scheduler.unqueued


def test_a_worker_that_stops_with_requests_redis_never_took_counts_them_lost(prefix, monkeypatch, caplog):
    scheduler = shared_scheduler(prefix)
    page = Request("https://hub.example/api/models?page=1")
    with monkeypatch.context() as m, caplog.at_level(logging.ERROR):
        m.setattr(scheduler, "enqueue_script", connection_reset)
        scheduler.enqueue_request(page)
        scheduler.close("shutdown")
    assert "stops with 1 request(s) that Redis did not take" in caplog.text and page.url in caplog.text
    assert scheduler.crawler.stats.get_value("ptm/pages/failed/not queued in Redis") == 1


def test_a_worker_at_work_whose_crawl_is_gone_from_redis_stops_with_redis_error(prefix, redis_client, caplog):
    """Redis restarted without its data (or the keys deleted) mid-crawl: what was queued is gone, and
    the workers found the queue empty and ended with exit status 0, the rest of the hub missing."""
    from types import SimpleNamespace

    one, two = shared_scheduler(prefix), shared_scheduler(prefix)
    one.join_crawl()
    two.join_crawl()
    assert one.crawl_id and one.crawl_id == two.crawl_id  # one crawl, whoever came first
    closed: list[str] = []
    one.crawler.engine = SimpleNamespace(spider_is_idle=lambda: False, spider=one.spider,
                                         close_spider_async=lambda reason: closed.append(reason))
    one.refresh()
    assert closed == []
    redis_client.delete(*redis_client.scan_iter(match=f"{prefix}:*"))  # Redis restarted empty
    with caplog.at_level(logging.ERROR):
        one.refresh()
    assert closed == ["redis_error"]
    assert f"The crawl's keys {one.key('')}* are gone from Redis while worker {one.worker} works" in caplog.text

    # The same at the end of the crawl: a worker with nothing left to do, no other worker busy, ends
    # the crawl only if no other ended it (marked finished) or the keys are there.
    three = shared_scheduler(prefix)
    three.join_crawl()  # Redis came back empty: a new crawl
    assert three.crawl_id != two.crawl_id
    with pytest.raises(CloseSpider) as stopped:
        two._wait_for_others()
    assert stopped.value.reason == "redis_error"
    three._wait_for_others()  # the first of its crawl to end: ends it
    three.flush()
    assert redis_client.get(three.key("crawl")) == b"finished:" + three.crawl_id
    four = shared_scheduler(prefix)
    four.crawl_id = three.crawl_id
    four._wait_for_others()  # another worker of that crawl, waiting: ends too
    four.join_crawl()  # a worker started after the crawl ended starts afresh
    assert four.crawl_id not in (three.crawl_id, b"finished:" + three.crawl_id)


def test_the_first_worker_of_a_new_crawl_deletes_what_workers_of_a_lost_crawl_left(prefix, redis_client, caplog):
    """Keys written under the prefix without a crawl's id (a worker of a crawl whose state Redis lost,
    before it noticed) are no crawl's: the first worker of the next crawl deletes them, the workers
    joining it after keep what it queued."""
    one = shared_scheduler(prefix)
    one.join_crawl()
    redis_client.delete(*redis_client.scan_iter(match=f"{prefix}:*"))  # Redis restarted empty
    page = Request("https://hub.example/api/models?page=2")
    assert one._enqueue(page, count=False)  # the lost worker, before it noticed
    redis_client.sadd(one.key("models"), "m1")
    redis_client.hset(one.key(f"taken:{one.worker}"), "0", "x")

    two = shared_scheduler(prefix)
    with caplog.at_level(logging.WARNING):
        two.join_crawl()
    assert "that no running crawl owns" in caplog.text
    assert len(two.queue) == 0 and not redis_client.exists(one.key("models"), one.key(f"taken:{one.worker}"))
    assert two._enqueue(page, count=False)  # not held for seen
    three = shared_scheduler(prefix)
    three.join_crawl()  # joins the running crawl: nothing of it is deleted
    assert three.crawl_id == two.crawl_id and len(three.queue) == 1


def test_the_joining_line_counts_no_request_the_new_crawl_deleted(prefix, redis_client, caplog, monkeypatch):
    """open() logged "Joining a crawl with N request(s) queued in Redis" before join_crawl() deleted
    those N requests, left by workers of a crawl whose state Redis lost: the log read as if the new
    crawl had joined them. The line comes after that decision now, counting what is joined."""
    from types import SimpleNamespace

    from ptmscrape.redis_scheduler import SharedScheduler

    # Neither an engine nor a reactor here: no tracking hook, no busy-mark refresh.
    monkeypatch.setattr(SharedScheduler, "_track_done_requests", lambda self: True)
    monkeypatch.setattr("ptmscrape.redis_scheduler.create_looping_call",
                        lambda function: SimpleNamespace(start=lambda *args, **kwargs: None, running=False))

    def opened():
        spider = redis_spider(prefix)
        scheduler = SharedScheduler.from_crawler(spider.crawler)
        with caplog.at_level(logging.INFO):
            scheduler.open(spider)
        scheduler.server.delete(scheduler.busy_key)
        return scheduler

    one = shared_scheduler(prefix)
    one.join_crawl()
    redis_client.delete(*redis_client.scan_iter(match=f"{prefix}:*"))  # Redis restarted empty
    pages = [Request(f"https://hub.example/api/models?page={n}") for n in (2, 3)]
    assert all(one._enqueue(page, count=False) for page in pages)  # the lost worker, before it noticed

    two = opened()
    assert "that no running crawl owns" in caplog.text and len(two.queue) == 0
    assert "Joining a crawl" not in caplog.text  # the 2 requests were deleted, not joined
    caplog.clear()
    assert two._enqueue(pages[0], count=False)
    three = opened()  # joins the running crawl, and its one request
    assert three.crawl_id == two.crawl_id and "that no running crawl owns" not in caplog.text
    assert "Joining a crawl with 1 request(s) queued in Redis" in caplog.text


def test_requests_a_redis_error_left_half_given_back_go_back_at_the_next_look(prefix, redis_client, monkeypatch):
    """A gone worker's requests are claimed in one step, then put back in the queue one by one: a
    Redis error half-way left the rest in this worker's taken hash, where no look went again and
    the crawl's end deleted them with its keys (lost). The next look puts them back."""
    scheduler = shared_scheduler(prefix)
    gone = "elsewhere:4242:4026531836-0badc0de"  # another machine's worker, its busy mark expired
    urls = [f"https://hub.example/api/models?page={n}" for n in range(3)]
    redis_client.hset(scheduler.key(f"taken:{gone}"),
                      mapping={str(n): b"0 " + scheduler.queue._encode_request(Request(url))
                               for n, url in enumerate(urls)})
    pipeline, pipes = scheduler.server.pipeline, []

    def second_fails(*args, **kwargs):
        pipe = pipeline(*args, **kwargs)
        pipes.append(pipe)
        if len(pipes) == 2:
            pipe.execute = connection_reset
        return pipe

    with monkeypatch.context() as m:
        m.setattr(scheduler.server, "pipeline", second_fails)
        with pytest.raises(Exception, match="Connection reset by peer"):
            scheduler.requeue_taken()
    assert len(scheduler.queue) == 1
    assert scheduler.requeue_taken() == 2
    queued = [scheduler.queue._decode_request(data).url for data in redis_client.zrange(scheduler.queue.key, 0, -1)]
    assert sorted(queued) == urls
    assert redis_client.hlen(scheduler.taken_key) == 0


def test_a_redis_error_while_a_worker_looks_for_work_left_keeps_the_crawls_keys(prefix, monkeypatch, caplog):
    """Scrapy closes a spider whose spider_idle handler failed as "finished", and a finished worker
    deletes the crawl's keys: a Redis hiccup while one worker waited for the others wiped the queue,
    dupefilter and seen-set they still worked from (what they had queued, lost). That worker stops
    with a reason of its own instead, and the keys stay."""
    from scrapy.exceptions import CloseSpider

    scheduler = shared_scheduler(prefix)
    scheduler.queue.push(Request("https://hub.example/api/models?page=2"))  # queued by a busy worker
    with monkeypatch.context() as m, caplog.at_level(logging.ERROR):
        m.setattr(scheduler.server, "delete", connection_reset)
        try:
            scheduler.spider_idle(scheduler.spider)
            reason = None
        except CloseSpider as exc:
            reason = exc.reason
        except Exception:
            reason = "finished"  # what Scrapy's engine makes of a spider_idle handler that failed
    assert reason == "redis_error"
    assert f"Redis error while worker {scheduler.worker} looked for work left" in caplog.text
    scheduler.close(reason)  # as the engine closes it, Redis back
    assert len(scheduler.queue) == 1


def test_a_dead_workers_request_that_cannot_be_rebuilt_is_said_and_counted_not_passed_on(prefix, redis_client, caplog):
    """A worker of another version of the spider (a callback renamed since) took a request and
    died: rebuilding it failed the claiming worker's look (its start, when it looked then) and left
    the request in that worker's taken hash, to fail the next worker that claimed it in turn. It is
    dropped with an ERROR naming it and counted as a page lost; the dead worker's others go back."""
    scheduler = shared_scheduler(prefix)
    gone = "elsewhere:4242:4026531836.0f0f-0badc0de"
    good, renamed = (scheduler.queue._encode_request(Request(f"https://hub.example/api/models?page={n}"))
                     for n in (1, 2))
    data = scheduler.queue.serializer.loads(renamed)
    data["callback"] = "parse_old_listing"  # no method of this spider
    redis_client.hset(scheduler.key(f"taken:{gone}"),
                      mapping={"1": b"0 " + good, "2": b"0 " + scheduler.queue.serializer.dumps(data)})
    with caplog.at_level(logging.ERROR):
        assert scheduler.requeue_taken() == 1
    assert [scheduler.queue._decode_request(d).url for d in redis_client.zrange(scheduler.queue.key, 0, -1)] \
        == ["https://hub.example/api/models?page=1"]
    assert redis_client.hlen(scheduler.taken_key) == 0
    assert f"worker {gone} took before it died cannot be put back in the queue " \
           "(https://hub.example/api/models?page=2)" in caplog.text
    stats = scheduler.crawler.stats
    assert stats.get_value("ptm/pages/failed") == 1
    assert stats.get_value("ptm/pages/failed/lost by a dead worker") == 1


def test_a_worker_whose_redis_stays_away_stops_with_redis_error_instead_of_waiting_for_ever(
        prefix, monkeypatch, caplog):
    """Redis gone mid-crawl (stopped, its host down): the engine's next look at the shared queue
    raised out of next_request() and has_pending_requests() (an asyncio ERROR traceback every 5 s),
    the worker never became idle, and so never stopped: it waited for ever, its verdict never
    written. It now waits for Redis while it has nothing else to do, up to REDIS_WAIT s (one
    WARNING), then goes idle and stops (finish reason redis_error, exit status 1, the keys kept)."""
    from scrapy.exceptions import CloseSpider

    from ptmscrape import redis_scheduler

    scheduler = shared_scheduler(prefix)
    now = [1000.0]
    scheduler.clock = lambda: now[0]
    with monkeypatch.context() as m, caplog.at_level(logging.WARNING):
        m.setattr(scheduler, "take_script", connection_reset)
        for name in ("zcard", "delete", "set", "eval", "evalsha", "get", "scan_iter", "sismember"):
            m.setattr(scheduler.server, name, connection_reset)
        assert scheduler.next_request() is None  # raised: a traceback, the engine's loop tried again
        assert scheduler.has_pending_requests()  # waits for Redis a while: not idle yet
        now[0] += redis_scheduler.REDIS_WAIT / 2
        assert scheduler.next_request() is None and scheduler.has_pending_requests()
        now[0] += redis_scheduler.REDIS_WAIT
        assert not scheduler.has_pending_requests()  # idle: the engine asks the spider_idle handler
        with pytest.raises(CloseSpider) as stopped:
            scheduler.spider_idle(scheduler.spider)
        scheduler.close(stopped.value.reason)  # Redis still away: said, not raised
    assert stopped.value.reason == "redis_error"
    said = [r.getMessage() for r in caplog.records if "does not answer" in r.getMessage()]
    assert len(said) == 1 and scheduler.worker in said[0] and "Connection reset by peer" in said[0], said
    assert f"Redis error while worker {scheduler.worker} looked for work left" in caplog.text
    ended = shared_scheduler(prefix)  # the last worker ends the crawl as Redis goes: the keys stay, said
    with monkeypatch.context() as m, caplog.at_level(logging.ERROR):
        m.setattr(ended.server, "delete", connection_reset)
        ended.close("finished")
    assert f"Redis error while worker {ended.worker} ended the crawl" in caplog.text


def test_a_request_done_while_redis_did_not_answer_is_not_given_back_once_its_worker_goes_idle(
        prefix, redis_client, monkeypatch):
    """A worker done with a request while Redis did not answer (WARNING 'Could not mark … done') left
    its note in its taken hash; idle, it removes its busy mark, and another worker took the note
    for a dead worker's and put the request back: a listing page read again ('Listing loops', a
    failed page, exit status 1 for a crawl that lost nothing), a model handed off twice. The note
    is removed once Redis answers, before the worker goes idle."""
    one, two = shared_scheduler(prefix), shared_scheduler(prefix)
    one.join_crawl()
    two.join_crawl()
    one.mark_busy()
    two.mark_busy()
    one.enqueue_request(Request("https://hub.example/api/models?page=3"))
    page = one.next_request()
    assert page is not None and redis_client.hlen(one.taken_key) == 1
    with monkeypatch.context() as m:
        m.setattr(one.server, "hdel", connection_reset)
        one.done(page)  # Redis away a moment
    from scrapy.exceptions import DontCloseSpider

    with pytest.raises(DontCloseSpider):  # Redis back; nothing left to do, but the other is busy
        one.spider_idle(one.spider)
    assert redis_client.hlen(one.taken_key) == 0
    assert two.requeue_taken() == 0
    assert redis_client.zcard(two.queue.key) == 0


def test_the_join_script_scans_nothing_and_touches_only_the_keys_it_is_given(prefix, redis_client):
    """A Lua script runs alone on Redis: ``_JOIN`` walked the whole keyspace with SCAN (to find the
    taken hashes a lost crawl's workers left), so on a shared Redis of millions of keys the first worker
    of every crawl held every other client for seconds, and past ``lua-time-limit`` they got BUSY
    errors; a key a script reaches without being given in KEYS breaks on a Redis Cluster too. The
    taken hashes are found by the worker (an incremental SCAN, others served between its calls) and
    given to the script, which still deletes them only when no crawl runs."""
    one = shared_scheduler(prefix)
    one.join_crawl()
    redis_client.delete(one.key("crawl"))  # Redis restarted empty (and the lost worker wrote again)
    redis_client.hset(one.key(f"taken:{one.worker}"), "0", "x")
    redis_client.sadd(one.key("models"), "m1")
    sentinel = f"{prefix}:sentinel"
    two = shared_scheduler(prefix)
    commands = []
    with redis_client.monitor() as monitor:
        two.join_crawl()
        redis_client.get(sentinel)
        while not commands or sentinel not in commands[-1]["command"]:
            commands.append(monitor.next_command())
    in_script = [c["command"] for c in commands if c["client_type"] == "lua" and prefix in c["command"]]
    assert in_script and not [c for c in in_script if c.split()[0].upper() == "SCAN"], in_script
    assert not redis_client.exists(one.key(f"taken:{one.worker}"), one.key("models"))
    redis_client.hset(one.key(f"taken:{one.worker}"), "0", "x")  # a worker of the running crawl
    three = shared_scheduler(prefix)
    three.join_crawl()  # joins it: nothing deleted
    assert three.crawl_id == two.crawl_id and redis_client.exists(one.key(f"taken:{one.worker}"))
