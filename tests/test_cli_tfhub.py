"""Real ``scrapy crawl tfhub`` runs (subprocess) against the local TensorFlow Hub repository
(git-trees API and raw files under a path prefix, as behind a mirror); git fetches
https://github.com/tensorflow/tfhub.dev from the replica through ``insteadOf``."""

import json
import os
import subprocess

from jsonschema import Draft202012Validator

from ptmscrape.dataset.payloads import read_payload
from ptmscrape.dataset.tree import DatasetTree
from ptmscrape.items import load_schema
from tests.crawl import ROOT, crawl_command, read_jsonl, run_crawl
from tests.replicas.faults import FaultPlan, inject
from tests.replicas.tfhub import MODELS, REPO, UPDATED, TfhubReplica

VALIDATOR = Draft202012Validator(load_schema())
CLONE = "tfhub/repos/tensorflow/tfhub.dev"
PREFIX = "/mirror/gh"
FAST = {"PTM_RETRY_BACKOFF": 0.02, "PTM_RETRY_BACKOFF_MAX": 0.2, "PTM_RATELIMIT_MAX_WAIT": 1}


def git_out(clone, *args):
    return subprocess.run(["git", "-C", str(clone), *args], capture_output=True, text=True,
                          check=True).stdout.strip()


def test_crawl_makes_one_record_per_model_version_from_one_shared_clone(tmp_path):
    with TfhubReplica(tmp_path / "hub-git", prefix=PREFIX) as hub:
        result = run_crawl("tfhub", tmp_path, settings=hub.settings(), env=hub.env())
        expected_sha = {path: hub.last_commit(path) for path in MODELS}
        sessions, tree_requests, raw_requests = hub.git_sessions(), hub.tree_requests(), hub.raw_requests()
        not_models = [hub.raw_requests(p) for p in ("assets/docs/google/google.md",
                                                    "assets/docs/google/collections/albert/1.md")]
        commits = hub.commits
    assert hub.raw_url.endswith(f"{PREFIX}/raw/{REPO}/master")

    items = {i["ModelHub"]["MetadataObjectID"]: i for i in result.items}
    assert sorted(items) == sorted(MODELS.values())
    assert tree_requests == 1 and raw_requests == len(MODELS) and not_models == [0, 0]
    # One clone, shared by every model; each record's SHA is the last commit of its own file.
    assert result.stats["ptm/clone/queued"] == 1 and sessions == 1
    assert result.stats["ptm/clone/shared"] == len(MODELS) - 1
    clone = result.data_dir / CLONE
    assert git_out(clone, "rev-parse", "HEAD") == commits[-1]
    by_path = {i["RepoSubPath"]: i for i in items.values()}
    for path, item in by_path.items():
        assert list(VALIDATOR.iter_errors(item)) == [], path
        assert (item["RepoURL"], item["RepoPath"], item["CloneStatus"]) == (
            f"https://github.com/{REPO}", CLONE, "cloned")
        assert item["LatestGitCommitSHA"] == expected_sha[path] == git_out(
            clone, "log", "-1", "--format=%H", "--", path)
        assert (clone / path).is_file()
        assert item["LatestGitCommitSHA"] == (commits[1] if path == UPDATED else commits[0])
        payload = read_payload(DatasetTree(result.data_dir), item["ModelHub"]["MetadataFilePath"])
        assert payload["path"] == path and payload["raw_url"] == f"{hub.raw_url}/{path}"
        assert payload["tree_url"] == hub.tree_url and len(payload["tree_sha"]) == 40

    albert = items["google/albert_base/3"]
    assert (albert["ModelOwner"], albert["ModelName"], albert["ModelURL"]) == (
        "google", "albert_base/3", "https://tfhub.dev/google/albert_base/3")
    stats = result.stats
    assert stats["finish_reason"] == "finished"
    assert stats["ptm/store/records"] == stats["item_scraped_count"] == len(MODELS)
    assert len(result.records("tfhub")) == len(MODELS)
    assert not list((result.data_dir / "tfhub").glob("removed-*.txt"))


def test_limit_a_missing_file_and_the_removed_model_report(tmp_path):
    metadata_only = {"PTM_CLONE": 0, **FAST}
    with TfhubReplica(tmp_path / "hub-git", prefix=PREFIX) as hub:
        settings = {**hub.settings(), **metadata_only}
        limited = run_crawl("tfhub", tmp_path, args={"limit": 2}, settings=settings, out_name="limited.jsonl")
        fetched = hub.raw_requests()
        full = run_crawl("tfhub", tmp_path, settings=settings, out_name="full.jsonl")
        gone = sorted(MODELS)[4]
        hub.gone.add(gone)
        lost = run_crawl("tfhub", tmp_path, settings=settings, out_name="lost.jsonl", check=False)
        hub.gone.clear()
        removed = sorted(MODELS)[0]
        hub.hidden.add(removed)
        after = run_crawl("tfhub", tmp_path, settings=settings, out_name="after.jsonl")
        assert hub.git_sessions() == 0

    assert sorted(i["RepoSubPath"] for i in limited.items) == sorted(MODELS)[:2] and fetched == 2
    assert {i["CloneStatus"] for i in full.items} == {"skipped"}
    assert all(i["LatestGitCommitSHA"] is None for i in full.items)  # a tree SHA is no commit SHA
    # A file that fails is reported, and the crawl then reports nothing as removed.
    assert sorted(i["RepoSubPath"] for i in lost.items) == sorted(set(MODELS) - {gone})
    assert lost.stats["ptm/pages/failed/HTTP 404"] == 1
    assert lost.returncode == 1 and "Traceback" not in lost.log  # README "Exit status"
    assert lost.log.rstrip().endswith("Crawl verdict: exit status 1: 1 page not found (HTTP 404)")
    assert lost.stats["finish_reason"] == "failed_pages" and lost.stats["ptm/verdict/exit_status"] == 1
    assert f"Page not found: {hub.raw_url}/{gone} (HTTP 404)" in lost.log
    # A model no longer in the tree, after a complete crawl: reported, its record kept.
    reports = list((after.data_dir / "tfhub").glob("removed-*.txt"))
    assert len(reports) == 1 and MODELS[removed].split("/", 1)[1] in reports[0].read_text()
    assert after.stats["ptm/store/removed"] == 1
    assert len(after.records("tfhub")) == len(MODELS)


def test_hostile_tree_entries_and_a_truncated_tree(tmp_path):
    with TfhubReplica(tmp_path / "hub-git") as hub:
        hub.extra_entries = [{"path": p, "type": "blob", "sha": "1" * 40, "size": 3} for p in (
            "assets/docs/../../../../escape/models/x/1.md", "assets/docs/google/models/..%2F..%2Fx/1.md",
            "/etc/models/x/1.md", "assets/docs/g\x00/models/x/1.md")]
        hub.truncated = 25  # GitHub's cut: the fixture tree (with the 4 above first) has about 45
        result = run_crawl("tfhub", tmp_path, settings={**hub.settings(), **FAST}, env=hub.env(), check=False)
        requested = [p for m, p in hub.replica.requests if m == "GET" and "/raw/" in p]
    assert not any(".." in p.split("/") or "%00" in p or "/etc/" in p for p in requested)
    assert 0 < len(result.items) < len(MODELS)  # only what the cut tree listed
    assert "Tree listing truncated by GitHub" in result.log
    stats = result.stats
    assert stats["ptm/pages/tree_truncated"] == 1 and stats["ptm/pages/failed/truncated tree"] == 1
    # The models the cut tree hid were not read, and the escaped "..%2F" entry is no file on the
    # hub (asked for quoted, so a 404): the crawl fails (README "Exit status").
    assert result.returncode == 1 and "Traceback" not in result.log
    assert stats["ptm/pages/failed/HTTP 404"] == 1 and "models/..%252F..%252Fx/1.md (HTTP 404)" in result.log
    assert result.log.rstrip().endswith(
        "Crawl verdict: exit status 1: 1 page not found (HTTP 404); 1 page failed (truncated tree: 1)")
    assert stats["finish_reason"] == "failed_pages" and stats["ptm/verdict/exit_status"] == 1
    assert "ptm/store/removed" not in stats
    assert all(not list(VALIDATOR.iter_errors(i)) for i in result.items)
    outside = [p for p in tmp_path.rglob("*") if "escape" in p.name or p.name == "etc"]
    assert outside == []


def test_under_faults_every_model_arrives_exactly_once(tmp_path):
    with TfhubReplica(tmp_path / "hub-git", prefix=PREFIX) as hub:
        faults = inject(hub.replica, FaultPlan(seed=15, rates={"5xx": .25, "429": .15, "reset": .15, "cut": .15,
                                                               "slow": .1}, healthy_after=4))
        result = run_crawl("tfhub", tmp_path, settings={**hub.settings(), **FAST, "PTM_CLONE": 0})
    assert faults.injected
    assert sorted(i["ModelHub"]["MetadataObjectID"] for i in result.items) == sorted(MODELS.values())
    assert result.stats["finish_reason"] == "finished" and "ptm/pages/failed" not in result.stats


def test_githubs_rate_limit_on_the_tree_is_waited_out_or_given_up_by_name(tmp_path):
    """GitHub answers a spent hourly budget with 403 and the reset time: the tree (the whole hub) was
    failed as an ordinary 403. Now the crawl waits until the reset and lists every model; a reset
    later than PTM_RATELIMIT_MAX_RESET_WAIT gives the tree up at once, named and counted (exit 1)."""
    settings = {"PTM_CLONE": 0, **FAST}
    with TfhubReplica(tmp_path / "hub-git", prefix=PREFIX) as hub:
        hub.tree_rate_limited, hub.tree_limit_reset = 1, 1
        waited = run_crawl("tfhub", tmp_path, settings={**hub.settings(), **settings}, out_name="waited.jsonl")
        tree_requests = hub.tree_requests()
        hub.tree_rate_limited, hub.tree_limit_reset = 1, 3600
        late = run_crawl("tfhub", tmp_path, settings={**hub.settings(), **settings, "PTM_RATELIMIT_MAX_RESET_WAIT": 60},
                         out_name="late.jsonl", check=False)
    assert tree_requests == 2 and waited.stats["ptm/ratelimit/waits"] == 1
    assert 1 <= waited.stats["ptm/ratelimit/wait_seconds"] <= 3  # until the reset, by GitHub's clock (Date)
    assert sorted(i["ModelHub"]["MetadataObjectID"] for i in waited.items) == sorted(MODELS.values())
    assert "ptm/pages/failed" not in waited.stats and waited.stats["ptm/verdict/exit_status"] == 0
    assert late.returncode == 1 and late.items == [] and late.stats["ptm/ratelimit/gave_up"] == 1
    assert late.stats["ptm/pages/failed/RateLimited"] == 1 and "ptm/ratelimit/waits" not in late.stats
    assert "the hub's rate limit resets in 360" in late.log and "later than PTM_RATELIMIT_MAX_RESET_WAIT=60" in late.log
    assert "ptm/store/removed" not in late.stats  # the models stored before are not reported removed


def test_a_pause_while_the_tree_waits_out_githubs_rate_limit_stops_at_once_and_resumes(tmp_path):
    """Ctrl-C once during an hour's wait for GitHub's reset: Scrapy's graceful stop waited for the
    request, so the pause hung for the hour (a supervisor's stop timeout then killed the crawl, and
    its JOBDIR restarted from the first page). The wait ends, the tree request stays in the JOBDIR,
    and the resumed run lists every model."""
    import signal
    import time

    with TfhubReplica(tmp_path / "hub-git", prefix=PREFIX) as hub:
        hub.tree_rate_limited, hub.tree_limit_reset = 1, 3600
        settings = {**hub.settings(), "PTM_CLONE": 0, "JOBDIR": str(tmp_path / "job")}
        log = tmp_path / "paused.log"
        with log.open("wb") as out:
            proc = subprocess.Popen(crawl_command("tfhub", tmp_path / "paused.jsonl", tmp_path / "data",
                                                  tmp_path / "paused.stats.json", settings=settings),
                                    cwd=ROOT, stdout=out, stderr=subprocess.STDOUT)
            try:
                deadline = time.monotonic() + 120
                while b"as the hub asks" not in log.read_bytes() and time.monotonic() < deadline:
                    time.sleep(0.1)
                assert b"waiting 36" in log.read_bytes()  # ~3601 s, until the reset
                proc.send_signal(signal.SIGINT)
                paused = proc.wait(timeout=120)
            finally:
                if proc.poll() is None:
                    proc.kill()
        resumed = run_crawl("tfhub", tmp_path, settings=settings, out_name="resumed.jsonl")
        tree_requests = hub.tree_requests()
    text = log.read_text()
    assert paused == 1 and "Spider closed (shutdown)" in text and "handed back to the queue unfetched" in text
    assert tree_requests == 2 and "paused gracefully" in resumed.log
    assert sorted(i["ModelHub"]["MetadataObjectID"] for i in resumed.items) == sorted(MODELS.values())


def crawled_before_and_with(tmp_path, interceptor):
    """A crawl of the replica, then one with ``interceptor`` changing its answers; both results and how
    often the second asked for ``UPDATED``'s raw file (with the first's request)."""
    settings = {"PTM_CLONE": 0, **FAST}
    with TfhubReplica(tmp_path / "hub-git", prefix=PREFIX) as hub:
        before = run_crawl("tfhub", tmp_path, settings={**hub.settings(), **settings}, out_name="before.jsonl")
        hub.replica.interceptors.append(interceptor)
        after = run_crawl("tfhub", tmp_path, settings={**hub.settings(), **settings}, out_name="after.jsonl",
                          check=False)
        return before, after, hub.raw_requests(UPDATED)


def test_a_captive_portals_html_page_in_place_of_a_model_file_keeps_the_record_and_fails_the_page(tmp_path):
    """A proxy or captive portal answering raw files with its 200 HTML page: read as the model's
    markdown, it replaced the stored record with an empty one (no task, datasets, papers) and its
    payload with the portal's page, exit status 0. Now the page is fetched again, then reported."""
    from tests.replicas.server import Reply

    portal = "<!DOCTYPE html>\n<html><head><title>Network login</title></head><body>Sign in</body></html>\n"

    def captive(incoming, call_next):
        if incoming.path.endswith(UPDATED):
            return Reply.text(portal, 200, "text/html; charset=utf-8")
        return call_next()

    before, after, fetched = crawled_before_and_with(tmp_path, captive)
    albert = "google/albert_base/3"
    stored = {r["ModelHub"]["MetadataObjectID"]: r for r in after.records("tfhub")}
    was = next(i for i in before.items if i["ModelHub"]["MetadataObjectID"] == albert)
    assert was["ModelTask"] and was["Datasets"]
    assert (stored[albert]["ModelTask"], stored[albert]["Datasets"]) == (was["ModelTask"], was["Datasets"])
    listed = {i["ModelHub"]["MetadataObjectID"] for i in after.items}
    assert listed == set(MODELS.values()) - {albert}
    assert after.returncode == 1 and fetched == 5  # once before; once now, and PTM_PAGE_RETRIES (3) times again
    assert after.stats["ptm/pages/failed/HTML page instead of the file"] == 1
    assert ("(HTML page instead of the file (an HTML document, served as text/html: a proxy's or captive "
            "portal's page?))") in after.log
    assert "ptm/store/removed" not in after.stats


def test_a_model_file_cut_short_is_fetched_again_then_fails_the_page(tmp_path):
    """A raw file that arrives whole per HTTP but cut short (a 200 answer with a Content-Length
    of half the file: a proxy's cache, a mirror's partial copy): its first half is still markdown,
    so the record was stored from it with what the cut lost, and exit status 0. The tree lists
    every file's size: a file shorter than that is fetched again, then reported (exit status 1)."""
    from tests.replicas.server import Reply

    def cut_short(incoming, call_next):
        reply = call_next()
        if incoming.path.endswith(UPDATED) and reply.status == 200:
            return Reply(200, reply.body[: len(reply.body) // 2], reply.headers)
        return reply

    before, after, fetched = crawled_before_and_with(tmp_path, cut_short)
    albert = "google/albert_base/3"
    was = next(i for i in before.items if i["ModelHub"]["MetadataObjectID"] == albert)
    stored = {r["ModelHub"]["MetadataObjectID"]: r for r in after.records("tfhub")}
    assert stored[albert] == was  # the record stored before is kept as it was
    assert {i["ModelHub"]["MetadataObjectID"] for i in after.items} == set(MODELS.values()) - {albert}
    assert after.returncode == 1 and fetched == 5  # once before; once now, and PTM_PAGE_RETRIES (3) times again
    assert after.stats["ptm/pages/failed/file cut short"] == 1
    assert f"/{UPDATED} (file cut short (" in after.log and "bytes of the" in after.log
    assert after.log.rstrip().endswith("Crawl verdict: exit status 1: 1 page failed (file cut short: 1)")
    assert "ptm/store/removed" not in after.stats


def test_two_distributed_workers_share_the_crawl(tmp_path):
    import time

    from tests.crawl_control import hold
    from tests.test_distributed import REDIS_URL, _redis_or_skip

    client = _redis_or_skip()
    prefix = f"ptmtest-tfhub-{os.getpid()}"
    data_dir = tmp_path / "data"
    procs = []
    try:
        with TfhubReplica(tmp_path / "hub-git") as hub:
            settings = {**hub.settings(), "PTM_CLONE": 0, "PTM_REDIS_URL": REDIS_URL, "PTM_REDIS_PREFIX": prefix}
            # The tree is held until the second worker's start request met the first's in the
            # shared dupefilter: a crawl this small could otherwise end, and clear its Redis keys,
            # before the second worker joins, which would then crawl everything again.
            gate = hold(hub.replica, "GET", hub._tree, lambda req, m, n: True)
            logs = [tmp_path / f"w{n}.log" for n in range(2)]
            procs += [subprocess.Popen(crawl_command("tfhub", tmp_path / f"w{n}.jsonl", data_dir,
                                                     tmp_path / f"w{n}.stats.json",
                                                     settings={**settings, "LOG_LEVEL": "DEBUG"}),
                                       cwd=ROOT, stdout=logs[n].open("wb"), stderr=subprocess.STDOUT)
                      for n in range(2)]
            deadline = time.monotonic() + 120
            while time.monotonic() < deadline and not any(
                    "Filtered duplicate request" in log.read_text(errors="replace") for log in logs if log.exists()):
                time.sleep(0.05)
            joined = any("Filtered duplicate request" in log.read_text(errors="replace") for log in logs)
            gate.open()
            assert [p.wait(timeout=300) for p in procs] == [0, 0]
            tree_requests = hub.tree_requests()
    finally:
        for proc in procs:
            if proc.poll() is None:
                proc.kill()
        keys = list(client.scan_iter(match=f"{prefix}:*"))
        if keys:
            client.delete(*keys)
    items = read_jsonl(tmp_path / "w0.jsonl") + read_jsonl(tmp_path / "w1.jsonl")
    assert sorted(i["ModelHub"]["MetadataObjectID"] for i in items) == sorted(MODELS.values())
    assert joined and tree_requests == 1
    assert len(read_jsonl(data_dir / "tfhub/tfhub.jsonl")) == len(MODELS)


def test_a_paused_crawl_resumes_from_its_jobdir_without_fetching_anything_twice(tmp_path):
    import signal

    from tests.crawl_control import BackgroundCrawl, count_lines, hold

    data, jobdir = tmp_path / "data", tmp_path / "job"
    with TfhubReplica(tmp_path / "hub-git", prefix=PREFIX) as hub:
        settings = {**hub.settings(), "PTM_CLONE": 0, "JOBDIR": jobdir, "CONCURRENT_REQUESTS": 1}
        gate = hold(hub.replica, "GET", hub._raw, lambda req, m, n: n == 5)
        crawl = BackgroundCrawl(crawl_command("tfhub", tmp_path / "1.jsonl", data, tmp_path / "1.stats.json",
                                              settings=settings), tmp_path / "1.log")
        snapshots = lambda: list((data / "tfhub/snapshots").glob("*.jsonl"))  # noqa: E731
        crawl.wait_until(lambda: gate.reached.is_set() and count_lines(snapshots()) == 4, "4 models stored")
        crawl.proc.send_signal(signal.SIGTERM)
        crawl.wait_until(lambda: "shutting down gracefully" in crawl.log, "the graceful stop")
        gate.open()
        assert crawl.wait() == 1  # paused is not complete (README "Exit status")
        assert "Crawl verdict: exit status 1: the crawl stopped before the end (finish reason shutdown)" in crawl.log
        paused = json.loads((tmp_path / "1.stats.json").read_text())
        resumed = run_crawl("tfhub", tmp_path, settings=settings, data_dir=data, out_name="2.jsonl")
        raw_fetches, tree_fetches = hub.raw_requests(), hub.tree_requests()
    assert paused["finish_reason"] == "shutdown" and paused["ptm/store/records"] == 5
    assert paused["ptm/verdict/exit_status"] == 1
    assert "Resuming crawl (5 requests scheduled)" in resumed.log
    assert resumed.stats["finish_reason"] == "finished" and resumed.stats["ptm/store/records"] == 5
    assert (raw_fetches, tree_fetches) == (len(MODELS), 1)
    records = read_jsonl(data / "tfhub/tfhub.jsonl")
    assert sorted(r["ModelHub"]["MetadataObjectID"] for r in records) == sorted(MODELS.values())


def test_hostile_names_and_contents_stay_inside_the_data_dir(tmp_path):
    odd = {
        "assets/docs/.hidden/models/a b/1.md": "# Module .hidden/a b/1\n<!-- license: \x00evil -->\n",
        "assets/docs/-rf/models/x\u202ey/2.md": "# Module -rf/x/2\n" + "<!-- dataset: " + "d" * 5000 + " -->\n",
        "assets/docs/%2e%2e/models/%2F..%2F/3.md": "# Lite ../../../etc/passwd/3\n\x00\xff binary\n",
        "assets/docs/p/models/" + "n" * 200 + "/4.md": "#" * 100_000 + "\n",
    }
    with TfhubReplica(tmp_path / "hub-git") as hub:
        hub.commit(odd, message="odd names", date="2023-06-01T10:00:00Z")
        result = run_crawl("tfhub", tmp_path, settings=hub.settings(), env=hub.env())
    by_path = {i["RepoSubPath"]: i for i in result.items}
    assert set(odd) | set(MODELS) == set(by_path)
    data = result.data_dir.resolve()
    for path in odd:
        item = by_path[path]
        assert list(VALIDATOR.iter_errors(item)) == [], path
        assert item["CloneStatus"] == "cloned" and item["LatestGitCommitSHA"] == hub.commits[-1]
        payload = (data / item["ModelHub"]["MetadataFilePath"].partition("#")[0]).resolve()
        assert payload.is_file() and data in payload.parents
        assert read_payload(DatasetTree(data), item["ModelHub"]["MetadataFilePath"])
    assert by_path["assets/docs/%2e%2e/models/%2F..%2F/3.md"]["ModelOwner"] == "%2e%2e"
    everything = [p.resolve() for p in tmp_path.rglob("*")]
    assert all(tmp_path.resolve() in p.parents for p in everything)
    assert not [p for p in (data / "tfhub/json/payloads").iterdir() if p.name in (".", "..", ".hidden")]
