"""A failed crawl says so: exit status (README "Exit status"), bounded waits on a silent hub, one-line
errors for bad input, unknown arguments refused, messages that tell the truth. Every case runs the
real ``scrapy crawl`` in a subprocess."""

from __future__ import annotations

import csv
import json
import os
import shlex
import shutil
import socket
import subprocess
import sys
import threading
from pathlib import Path

import pytest

import ptmscrape.settings as project
from ptmscrape.checks import BadInput, check_feeds
from tests.crawl import ROOT, crawl_command, run_crawl
from tests.helpers import git_without_helpers
from tests.services import missing

FAST = {"RETRY_TIMES": 1, "PTM_RETRY_BACKOFF": 0.05, "PTM_CLONE": 0}


def hf(hub, **extra):
    return {"PTM_HUGGINGFACE_URL": hub.url, "PTM_HUGGINGFACE_PAGE_SIZE": 5, **extra}


def last_line(log: str) -> str:
    return [line for line in log.splitlines() if line.strip()][-1]


# -- exit status 0 ------------------------------------------------------------------------------

def test_a_complete_crawl_exits_0_and_says_so_last(tmp_path, hf_replica):
    result = run_crawl("huggingface", tmp_path, settings=hf(hf_replica, PTM_CLONE=0))
    assert result.returncode == 0
    assert last_line(result.log).endswith("Crawl verdict: exit status 0: every listed page was read")
    stats = result.stats
    assert (stats["finish_reason"], stats["ptm/verdict/exit_status"]) == ("finished", 0)


def test_scrapyds_underscore_arguments_are_accepted(tmp_path, hf_replica):
    result = run_crawl("huggingface", tmp_path, args={"_job": "0f3c9a2e", "_version": "1", "limit": 2},
                       settings=hf(hf_replica, PTM_CLONE=0))
    assert result.returncode == 0 and len(result.items) == 2


# -- exit status 1 ------------------------------------------------------------------------------

def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def test_a_refused_connection_exits_1(tmp_path):
    url = f"http://127.0.0.1:{free_port()}"  # nothing listens there
    result = run_crawl("huggingface", tmp_path, check=False, args={"limit": 5},
                       settings={"PTM_HUGGINGFACE_URL": url, **FAST})
    assert result.returncode == 1, result.log[-3000:]
    assert f"Page failed after retries: {url}/api/models" in result.log
    assert "Traceback" not in result.log
    assert last_line(result.log).endswith(
        "Crawl verdict: exit status 1: 1 page failed (DownloadConnectionRefusedError: 1); "
        "nothing was stored")
    assert result.stats["finish_reason"] == "failed_pages"
    assert "Spider closed (failed_pages)" in result.log


class SilentHub:
    """A loopback socket that accepts connections and never answers."""

    def __init__(self):
        self.sock = socket.socket()
        self.sock.bind(("127.0.0.1", 0))
        self.sock.listen(64)
        self.sock.settimeout(0.2)
        self.accepted: list[socket.socket] = []
        self.stop = threading.Event()
        self.thread = threading.Thread(target=self._accept, daemon=True)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.sock.getsockname()[1]}"

    def _accept(self):
        while not self.stop.is_set():
            try:
                self.accepted.append(self.sock.accept()[0])
            except OSError:
                continue

    def __enter__(self):
        self.thread.start()
        return self

    def __exit__(self, *exc):
        self.stop.set()
        self.thread.join()
        for conn in self.accepted:
            conn.close()
        self.sock.close()


def test_a_hub_that_never_answers_is_named_then_given_up_with_exit_1(tmp_path):
    with SilentHub() as hub:
        url = hub.url
        result = run_crawl("huggingface", tmp_path, check=False, timeout=120, args={"limit": 5}, settings={
            "PTM_HUGGINGFACE_URL": hub.url, **FAST, "DOWNLOAD_TIMEOUT": 3, "PTM_WAIT_REPORT_INTERVAL": 1})
        assert hub.accepted  # it did accept: the wait is on an open connection
    assert result.returncode == 1, result.log[-3000:]
    assert f"s for {url}/api/models?" in result.log
    assert "(attempt 2 of 2; each attempt is given up after DOWNLOAD_TIMEOUT=3 s)" in result.log
    assert "Page failed after retries" in result.log and "DownloadTimeoutError" in result.log
    assert last_line(result.log).endswith("exit status 1: 1 page failed (DownloadTimeoutError: 1); "
                                          "nothing was stored")


def test_the_default_settings_give_up_on_a_silent_hub_within_four_minutes():
    """README "Exit status": (RETRY_TIMES + 1) attempts of DOWNLOAD_TIMEOUT, plus the back-offs."""
    backoffs = sum(min(project.PTM_RETRY_BACKOFF_MAX, project.PTM_RETRY_BACKOFF * 2 ** n * 1.25)
                   for n in range(project.RETRY_TIMES))
    worst = (project.RETRY_TIMES + 1) * project.DOWNLOAD_TIMEOUT + backoffs
    assert worst <= 240, worst
    assert project.PTM_WAIT_REPORT_INTERVAL <= 60  # the URL is named within a minute
    failures = (ROOT / "docs/failures.md").read_text()  # the README's Exit status links there
    assert "within 4 minutes" in failures and "DOWNLOAD_TIMEOUT" in failures


def test_a_model_that_does_not_exist_is_not_found_and_exits_1(tmp_path, hf_replica):
    result = run_crawl("huggingface", tmp_path, check=False, args={"models": "does/not-exist,bert-base-uncased"},
                       settings=hf(hf_replica, PTM_CLONE=0))
    assert result.returncode == 1
    assert f"Page not found: {hf_replica.url}/api/models/does/not-exist (HTTP 404)" in result.log
    assert "failed after retries" not in result.log
    assert last_line(result.log).endswith("Crawl verdict: exit status 1: 1 page not found (HTTP 404)")
    assert result.stats["ptm/pages/not_found"] == 1 and len(result.items) == 1


def test_a_failing_monitor_exits_1(tmp_path, hf_replica):
    result = run_crawl("huggingface", tmp_path, check=False,
                       settings=hf(hf_replica, PTM_CLONE=0, PTM_MONITORS=1, SPIDERMON_MIN_ITEMS=1000))
    assert result.returncode == 1
    assert "exit status 1: 1 monitor failed (" in last_line(result.log)
    assert result.stats["ptm/verdict/exit_status"] == 1


def test_a_model_an_item_stage_fails_on_is_lost_and_exits_1(tmp_path, hf_replica):
    # An unforeseen error in a stage (a git argument holding a NUL once) lost the model with a
    # traceback, and the crawl still said exit status 0.
    data = tmp_path / "data"
    run_crawl("huggingface", tmp_path, settings=hf(hf_replica, PTM_CLONE=0), data_dir=data, out_name="first.jsonl")
    stages = {**project.ITEM_PIPELINES, "tests.probes.FailingStage": 450}
    failing = next(iter(hf_replica.models)).rpartition("/")[2]
    result = run_crawl("huggingface", tmp_path, check=False, data_dir=data,
                       settings=hf(hf_replica, PTM_CLONE=0, ITEM_PIPELINES=json.dumps(stages),
                                   TEST_FAIL_MODEL=failing))
    assert result.returncode == 1, result.log[-3000:]
    assert last_line(result.log).endswith(
        "Crawl verdict: exit status 1: 1 model lost to an error in an item stage (ValueError: 1)")
    assert result.stats["ptm/items/failed"] == 1
    assert sorted(r["ModelName"] for r in result.items) == sorted(
        m.rpartition("/")[2] for m in hf_replica.models if m.rpartition("/")[2] != failing)
    # Listed, so not gone from the hub: not reported as removed (nor is any other model).
    assert "not reported as removed: 1 model(s) were lost to an error in an item stage" in result.log
    assert "ptm/store/removed" not in result.stats
    assert list((data / "huggingface").glob("removed-*.txt")) == []


@pytest.mark.parametrize("listing, reason", [
    ("empty", "nothing was stored: the hub listed no model"),
    ("unmappable", "nothing was stored: all 12 models listed were dropped as bad hub data"),
])
def test_a_crawl_that_stored_nothing_says_why_last(tmp_path, hf_replica, listing, reason):
    """A hub whose listing answers 200 but names no model (an empty first page), or whose every model
    is dropped: the last line said only "nothing was stored", the same as for a crawl whose
    pages all failed, so the log had to be read back to tell a broken hub from an empty one."""
    from tests.replicas.server import Reply

    def rewrite(incoming, call_next):
        reply = call_next()
        if incoming.path != "/api/models" or reply.status != 200:
            return reply
        models = json.loads(reply.body)
        if listing == "empty":
            return Reply(200, b"[]", {"Content-Type": "application/json"})
        return Reply(200, json.dumps([{**m, "id": 7, "modelId": 7} for m in models]).encode(), reply.headers)

    hf_replica.replica.interceptors.append(rewrite)
    result = run_crawl("huggingface", tmp_path, check=False, settings=hf(hf_replica, PTM_CLONE=0))
    assert result.returncode == 1, result.log[-3000:]
    assert last_line(result.log).endswith(f"Crawl verdict: exit status 1: {reason}")
    assert result.stats["finish_reason"] == "nothing_stored"


# -- exit status 2: one line on stderr, no traceback ----------------------------------------------

def assert_one_line_error(result, *expected: str):
    assert result.returncode == 2, result.log[-3000:]
    lines = [line for line in result.log.splitlines() if line.strip()]
    assert len(lines) == 1, result.log[-3000:]
    for text in expected:
        assert text in lines[0], lines[0]
    assert not result.out.exists()  # nothing started


@pytest.mark.parametrize("spider, args, expected", [
    ("huggingface", {"limit": "abc"}, ["-a limit=", "whole number", "'abc'"]),
    ("huggingface", {"limit": "-1"}, ["-a limit=", "negative", "'-1'"]),
    ("huggingface", {"limit": "1.5"}, ["-a limit=", "whole number", "'1.5'"]),
    ("modelzoo", {"render": "bogus"}, ["-a render=", "'api' or 'splash'", "'bogus'"]),
    ("modelzoo", {"render": "splash"}, ["-a render=splash", "SPLASH_URL"]),
    ("huggingface", {"limt": "5"}, ["unknown spider argument -a limt",
                                     "huggingface accepts author, history, limit, models, search, sort"]),
    ("modelhub", {"search": "x", "_job": "1"}, ["unknown spider argument -a search", "modelhub accepts limit"]),
    ("civitai", {"nsfw": "maybe"}, ["-a nsfw=", "true or false", "'maybe'"]),
    ("huggingface", {"history": "commits,stars"}, ["-a history=", "(or all)", "not stars"]),
])
def test_bad_arguments_are_one_line_and_exit_2(tmp_path, spider, args, expected):
    result = run_crawl(spider, tmp_path, check=False, args=args, env={"SPLASH_URL": ""})
    assert_one_line_error(result, *expected)


def test_a_missing_registry_url_is_one_line_and_exit_2(tmp_path):
    result = run_crawl("ollama", tmp_path, check=False, settings={"PTM_OLLAMA_REGISTRY_URL": ""})
    assert_one_line_error(result, "PTM_OLLAMA_REGISTRY_URL is not set")


@pytest.mark.parametrize("spider, setting", [("tfhub", "PTM_TFHUB_TREE_URL"), ("openvino", "PTM_OPENVINO_TREE_URL")])
def test_a_missing_tree_url_is_one_line_and_exit_2(tmp_path, spider, setting):
    # Was a ValueError's traceback as the spider was made, exit status 1 and no verdict line.
    result = run_crawl(spider, tmp_path, check=False, settings={setting: ""})
    assert_one_line_error(result, f"{setting} is not set")


def test_a_bad_typed_setting_is_one_line_and_exit_2(tmp_path):
    result = run_crawl("huggingface", tmp_path, check=False, settings={"PTM_CLONE_CONCURRENCY": "many"})
    assert_one_line_error(result, "-s PTM_CLONE_CONCURRENCY=", "whole number")


def test_an_unknown_ptm_setting_is_one_line_naming_the_nearest_and_exit_2(tmp_path):
    # A typo (Scrapyd: -d setting=PTM_CLONE_CONCURENCY=4) was ignored without a word: the crawl
    # ran with the default (PTM_CLONES=0 would have cloned a whole hub).
    result = run_crawl("huggingface", tmp_path, check=False, settings={"PTM_CLONE_CONCURENCY": "4",
                                                                   "PTM_HUGGINGFACE_URL": "http://127.0.0.1:9"})
    assert_one_line_error(result, "-s PTM_CLONE_CONCURENCY: no such setting", "PTM_CLONE_CONCURRENCY")


def test_a_redis_url_that_is_no_redis_url_is_one_line_and_exit_2(tmp_path):
    # Was a traceback ("The crawl could not start": redis-py's ValueError) and exit status 1, with
    # no verdict line; the password stays out of the message.
    settings = {"PTM_HUGGINGFACE_URL": "http://127.0.0.1:9", "PTM_REDIS_URL": "redis//:s3cret@host:6379"}
    result = run_crawl("huggingface", tmp_path, check=False, settings=settings)
    assert_one_line_error(result, "-s PTM_REDIS_URL=redis//***@host:6379 is not a Redis URL")
    assert "s3cret" not in result.log


def test_a_hub_url_with_credentials_is_one_line_and_exit_2(tmp_path):
    # Was crawled: the password in every logged request URL and in each record's ModelURL.
    settings = {"PTM_MODELZOO_URL": "http://user:s3cret@127.0.0.1:9/mirror"}
    result = run_crawl("modelzoo", tmp_path, check=False, settings=settings)
    assert_one_line_error(result, "-s PTM_MODELZOO_URL=http://***@127.0.0.1:9/mirror carries credentials")
    assert "s3cret" not in result.log


def test_the_redis_url_is_read_from_the_environment_too(tmp_path):
    # A password in -s shows in `ps`, and in Scrapyd's listjobs.json with setting=: the environment
    # (Scrapyd's, which its jobs inherit) keeps it out of both. The same check applies to it.
    env = {"PTM_REDIS_URL": "redis//:s3cret@host:6379"}
    result = run_crawl("huggingface", tmp_path, check=False, env=env,
                       settings={"PTM_HUGGINGFACE_URL": "http://127.0.0.1:9"})
    assert_one_line_error(result, "-s PTM_REDIS_URL=redis//***@host:6379 is not a Redis URL")
    assert "s3cret" not in result.log


def test_a_data_dir_that_is_a_file_is_one_line_and_exit_2(tmp_path):
    data = tmp_path / "data"
    data.write_text("not a directory")
    result = run_crawl("huggingface", tmp_path, check=False, data_dir=data)
    assert_one_line_error(result, f"PTM_DATA_DIR={data} is not a directory")


def test_a_feed_that_cannot_be_written_is_one_line_and_exit_2_before_the_crawl(tmp_path):
    """Scrapy opens a feed at its first item: without the check, the crawl ran to its end without it."""
    (tmp_path / "afile").write_text("not a directory")
    result = run_crawl("huggingface", tmp_path, check=False, out_name="afile/out.jsonl")
    assert_one_line_error(result, f"the folder of the feed {tmp_path / 'afile/out.jsonl'} is not a directory")
    (tmp_path / "d.jsonl").mkdir()
    result = run_crawl("huggingface", tmp_path, check=False, out_name="d.jsonl")
    assert result.returncode == 2 and result.log.strip() == \
        f"scrapy crawl huggingface: error: the feed {tmp_path / 'd.jsonl'} is a directory: give a file"
    assert not any((tmp_path / "d.jsonl").iterdir()) and not (tmp_path / "data").exists()

def test_cloning_without_git_on_the_path_is_one_line_and_exit_2(tmp_path, hf_replica):
    """Without git on PATH the crawl did not even start: GitPython's import raised ("Bad git
    executable") as Scrapy loaded the project's commands: a traceback, exit status 1, with cloning
    on or off. Cloning on, it is refused now as any bad setting; off, the crawl runs without git."""
    empty = tmp_path / "bin"
    empty.mkdir()
    result = run_crawl("huggingface", tmp_path, check=False, env={"PATH": str(empty)},
                       settings=hf(hf_replica))
    assert_one_line_error(result, "-s PTM_CLONE=1 needs git, and `git --version` failed here",
                          "or turn cloning off (-s PTM_CLONE=0)")
    result = run_crawl("huggingface", tmp_path, env={"PATH": str(empty)}, settings=hf(hf_replica, PTM_CLONE=0))
    assert last_line(result.log).endswith("Crawl verdict: exit status 0: every listed page was read")
    assert result.items


def test_a_git_without_its_https_helper_is_one_line_and_exit_2(tmp_path):
    """A git that answers `git --version` but has no git-remote-https (a minimal build, a broken
    git-core) ran the crawl, every clone failing at the end ("unable to find remote helper for
    'https'", exit status 1): it is refused before the crawl now."""
    fake, core = git_without_helpers(tmp_path)
    result = run_crawl("huggingface", tmp_path, check=False, env={"PATH": str(fake)},
                       settings={"PTM_HUGGINGFACE_URL": "http://127.0.0.1:9"})
    assert_one_line_error(result, "-s PTM_CLONE=1 needs git's https transport, and git-remote-https is neither "
                          f"in `git --exec-path` ({core}) nor on PATH", "or turn cloning off (-s PTM_CLONE=0)")


def test_an_unknown_spider_is_one_line_naming_the_spiders_and_exit_2(tmp_path):
    result = run_crawl("huggingfce", tmp_path, check=False)
    assert_one_line_error(result, "no spider named 'huggingfce'", "huggingface, modelhub")
    assert "Traceback" not in result.log


def test_a_jobdir_in_use_is_one_line_and_exit_2_and_free_again_after(tmp_path, hf_replica):
    import fcntl

    from ptmscrape.jobdir import LOCK_FILE

    job = tmp_path / "job"
    job.mkdir()
    settings = {**hf(hf_replica), **FAST, "JOBDIR": str(job)}
    with open(job / LOCK_FILE, "a") as held:  # what the running crawl's JobGuard holds
        fcntl.flock(held, fcntl.LOCK_EX | fcntl.LOCK_NB)
        result = run_crawl("huggingface", tmp_path, check=False, settings=settings)
        assert_one_line_error(result, f"-s JOBDIR={job} is in use by another running crawl")
        assert sorted(p.name for p in job.iterdir()) == [LOCK_FILE]  # nothing of a crawl left in it
    result = run_crawl("huggingface", tmp_path, settings=settings)
    assert len(result.items) == len(hf_replica.models)


def read_only_command(cmd: list[str], data: Path) -> list[str]:
    """``cmd`` with ``data`` read-only: mode 555 for a user; root writes through mode bits, so for
    root a read-only tmpfs is mounted on it in a mount namespace of the crawl's own."""
    if os.geteuid() != 0:
        data.chmod(0o555)
        return cmd
    script = f"mount -t tmpfs -o ro,size=16k tmpfs {shlex.quote(str(data))}"
    probe = subprocess.run(["unshare", "--mount", "--propagation", "private", "sh", "-c", script],
                           capture_output=True, text=True) if shutil.which("unshare") else None
    if probe is None or probe.returncode != 0:
        missing("running as root, and no mount namespace to make a read-only directory in: "
                + (probe.stderr.strip() if probe else "no unshare(1)"))
    script = f'mount -t tmpfs -o ro,size=16k tmpfs {shlex.quote(str(data))} && exec "$@"'
    return ["unshare", "--mount", "--propagation", "private", "sh", "-c", script, "sh", *cmd]


def test_a_read_only_data_dir_is_one_line_and_exit_2(tmp_path):
    data = tmp_path / "data"
    data.mkdir()
    for target, message in ((data, f"PTM_DATA_DIR={data} is read-only"),
                            (data / "sub" / "tree", f"cannot be created: {data} is read-only")):
        out = tmp_path / "out.jsonl"
        cmd = read_only_command(crawl_command("huggingface", out, target, tmp_path / "stats.json"), data)
        proc = subprocess.run(cmd, cwd=ROOT, capture_output=True, text=True, timeout=120)
        data.chmod(0o755)
        lines = [line for line in (proc.stderr + proc.stdout).splitlines() if line.strip()]
        assert proc.returncode == 2 and len(lines) == 1, proc.stderr[-3000:]
        assert message in lines[0]
        assert not out.exists() and not any(data.iterdir())


@pytest.mark.parametrize("part", ["huggingface", "huggingface/snapshots"])
def test_a_read_only_hub_folder_of_a_writable_data_dir_is_one_line_and_exit_2(tmp_path, part):
    """The data dir writable, the hub's folder in it (or its snapshots/) not, as a tree copied
    from elsewhere or a crawl run by another user leaves it: the store stage's OSError as the spider
    opened was a traceback ("The crawl could not start"), exit status 1 and no verdict line. Now it
    is refused before the crawl, as a read-only data dir is."""
    data = tmp_path / "data"
    (data / part).mkdir(parents=True)
    stats = tmp_path / "stats.json"
    cmd = read_only_command(crawl_command("huggingface", tmp_path / "out.jsonl", data, stats,
                                          settings={"PTM_HUGGINGFACE_URL": "http://127.0.0.1:9", **FAST}),
                            data / part)
    proc = subprocess.run(cmd, cwd=ROOT, capture_output=True, text=True, timeout=120)
    (data / part).chmod(0o755)
    lines = [line for line in (proc.stderr + proc.stdout).splitlines() if line.strip()]
    assert proc.returncode == 2 and len(lines) == 1, proc.stderr[-3000:]
    assert lines[0] == f"scrapy crawl huggingface: error: PTM_DATA_DIR={data}: {data / part} is read-only"
    assert json.loads(stats.read_text())["ptm/verdict/exit_status"] == 2
    assert not (tmp_path / "out.jsonl").exists() and [p.name for p in (data / part).iterdir()] == []


# -- CSV feeds ------------------------------------------------------------------------------------

def test_a_csv_feed_has_nested_keys_as_columns_and_lists_as_json(tmp_path, hf_replica):
    result = run_crawl("huggingface", tmp_path, out_name="out.csv", settings=hf(hf_replica, PTM_CLONE=0))
    text = result.out.read_text()
    assert "{'" not in text and "[{'" not in text  # no Python reprs
    with result.out.open(newline="") as f:
        rows = list(csv.DictReader(f))
    records = {str(r["id"]): r for r in result.records("huggingface")}
    assert len(rows) == len(records) == 12
    for row in rows:
        record = records[row["id"]]
        assert row["ModelHub.ModelHubName"] == record["ModelHub"]["ModelHubName"] == "huggingface"
        assert row["ModelName"] == record["ModelName"] and row["ModelOwner"] == record["ModelOwner"]
        assert row["ModelHub.MetadataFilePath"] == record["ModelHub"]["MetadataFilePath"]
        assert json.loads(row["Datasets"]) == record["Datasets"]
        assert json.loads(row["Tags"]) == record["Tags"]
    assert any(json.loads(row["Datasets"]) for row in rows)  # a non-empty nested list round-trips
    assert "ModelHub" not in rows[0]


def test_the_jobdir_check_before_the_crawl_creates_nothing(tmp_path):
    from scrapy.settings import Settings

    from ptmscrape.jobdir import check_free

    check_free(Settings({"JOBDIR": str(tmp_path / "new-job")}))
    assert not (tmp_path / "new-job").exists()


def test_only_local_feeds_named_before_the_crawl_are_checked(tmp_path):
    (tmp_path / "afile").write_text("")
    under_a_file = tmp_path / "afile" / "out.jsonl"
    for uri in (str(under_a_file), f"file://{under_a_file}"):
        with pytest.raises(BadInput, match="is not a directory"):
            check_feeds({uri: {}})
    check_feeds({"s3://bucket/out.jsonl": {}, "stdout:": {}, f"{tmp_path}/afile/%(time)s.jsonl": {},
                 str(tmp_path / "new" / "folders" / "out.jsonl"): {}})  # created by the feed's storage
    assert not (tmp_path / "new").exists()


def test_a_feed_that_is_a_writable_file_in_a_folder_we_cannot_write_is_not_refused():
    """``-O /dev/stdout`` (or ``/dev/null``) for a user who may not write /dev: Scrapy opens the file
    as it is, so the file decides, not its folder."""
    if os.geteuid() != 0 or not shutil.which("setpriv"):
        missing("runs the check as nobody: needs root and setpriv(1)")
    code = ("import json; from ptmscrape.checks import BadInput, check_feeds\n"
            "def check(uri):\n"
            "    try:\n"
            "        check_feeds({uri: {}})\n"
            "    except BadInput as exc:\n"
            "        return str(exc)\n"
            "print(json.dumps({uri: check(uri) for uri in"
            " ('/dev/stdout', '/dev/null', '/proc/version', '/dev/new/out.jsonl')}))")
    # Standard output a pipe of the user's own, as in `scrapy crawl … -O /dev/stdout | jq`.
    pythonpath = os.pathsep.join((str(ROOT), os.environ["PYTHONPATH"]))  # the network guard's folder kept
    proc = subprocess.run(["setpriv", "--reuid=65534", "--regid=65534", "--clear-groups", "sh", "-c",
                           '"$0" -c "$1" | cat', sys.executable, code],
                          cwd=ROOT, env={**os.environ, "PYTHONPATH": pythonpath}, capture_output=True, text=True,
                          timeout=60)
    assert proc.returncode == 0, proc.stderr
    assert json.loads(proc.stdout) == {
        "/dev/stdout": None, "/dev/null": None,
        "/proc/version": "the feed /proc/version is read-only",
        "/dev/new/out.jsonl": "the folder of the feed /dev/new/out.jsonl cannot be created: /dev is read-only"}


def test_a_feed_named_with_a_tilde_is_checked_where_scrapy_writes_it(tmp_path, monkeypatch):
    """Scrapy does not expand "~" in a feed's path (the shell does, in ``-O ~/out.jsonl``): ``~/out.jsonl``
    in FEEDS is ./~/out.jsonl, whatever $HOME is."""
    (tmp_path / "afile").write_text("")
    monkeypatch.setenv("HOME", str(tmp_path / "afile" / "home"))  # no home can be made there
    monkeypatch.chdir(tmp_path)
    check_feeds({"~/out.jsonl": {}})


def test_a_crawl_stopped_by_force_says_so_last_and_in_its_stats_file(tmp_path):
    """Ctrl-C twice, or Scrapyd's cancel.json twice (two SIGINTs): Scrapy stops without closing the
    spider, so no verdict was logged and no stats file written (a Scrapyd user reading either saw
    nothing, or the previous run's report). Now both say exit status 1."""
    import signal
    import time

    from tests.replicas.huggingface import HuggingFaceReplica, fixture_models, synthetic_models

    release = threading.Event()

    def hold_second_page(incoming, call_next):  # the graceful stop waits for it: time for a second SIGINT
        if incoming.arg("cursor"):
            release.wait(120)
        return call_next()

    stats_file = tmp_path / "stats.json"
    log_file = tmp_path / "crawl.log"
    with HuggingFaceReplica(fixture_models() + synthetic_models(12), repos=False) as hub:
        hub.replica.interceptors.append(hold_second_page)
        cmd = crawl_command("huggingface", tmp_path / "out.jsonl", tmp_path / "data", stats_file,
                            settings={**hf(hub), "PTM_CLONE": 0, "LOG_FILE": log_file})
        crawl = subprocess.Popen(cmd, cwd=ROOT, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        try:
            def wait_for(text: str) -> None:
                for _ in range(600):  # readiness waits, not timing assertions
                    if log_file.exists() and text in log_file.read_text():
                        return
                    assert crawl.poll() is None, log_file.read_text()[-3000:]
                    time.sleep(0.1)
                raise AssertionError(f"never logged {text!r}")

            for _ in range(600):  # the first page answered, the second one asked for (and held)
                if hub.replica.count("GET", r"cursor="):
                    break
                assert crawl.poll() is None
                time.sleep(0.1)
            crawl.send_signal(signal.SIGINT)
            wait_for("Closing spider (shutdown)")
            crawl.send_signal(signal.SIGINT)
            assert crawl.wait(60) == 1
        finally:
            release.set()
            if crawl.poll() is None:
                crawl.kill()
                crawl.wait()
    log = log_file.read_text()
    assert "forcing unclean shutdown" in log
    assert last_line(log).endswith("ERROR: Crawl verdict: exit status 1: the crawl was stopped by force before it "
                                   "closed (a second Ctrl-C or SIGTERM, or Scrapyd's cancel.json twice): "
                                   "the requests and clones in flight were dropped"), log[-3000:]
    stats = json.loads(stats_file.read_text())
    assert stats["ptm/verdict/exit_status"] == 1 and stats["finish_reason"] == "shutdown (forced)"


def test_a_refused_or_killed_run_leaves_no_earlier_runs_report_in_its_stats_file(tmp_path):
    """A fixed PTM_STATS_FILE (a Scrapyd job scheduled every week) is what tells a Scrapyd user the
    exit status. A run refused before its crawl (exit status 2) or killed (cancel.json with
    signal=KILL, out of memory) wrote none, so the file still held the previous run's report
    (exit status 0). A refused run writes its own verdict now; a run clears the old one as it starts."""
    import signal
    import time

    from tests.replicas.huggingface import HuggingFaceReplica, fixture_models

    earlier = json.dumps({"finish_reason": "finished", "ptm/verdict/exit_status": 0})
    stats_file = tmp_path / "out.jsonl.stats.json"  # run_crawl's
    stats_file.write_text(earlier)
    refused = run_crawl("huggingface", tmp_path, check=False, args={"limt": "5"},
                        settings={"PTM_HUGGINGFACE_URL": "http://127.0.0.1:9"})
    assert refused.returncode == 2
    report = json.loads(stats_file.read_text())
    assert report["ptm/verdict/exit_status"] == 2 and "unknown spider argument -a limt" in report["ptm/verdict/reason"]

    stats_file.write_text(earlier)
    release = threading.Event()

    def hold_listing(incoming, call_next):
        release.wait(120)
        return call_next()

    with HuggingFaceReplica(fixture_models(), repos=False) as hub:
        hub.replica.interceptors.append(hold_listing)
        cmd = crawl_command("huggingface", tmp_path / "out.jsonl", tmp_path / "data", stats_file,
                            settings={**hf(hub), "PTM_CLONE": 0})
        crawl = subprocess.Popen(cmd, cwd=ROOT, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        try:
            for _ in range(600):  # readiness wait: the crawl has asked for its first page
                if hub.replica.count("GET", r"^/api/models"):
                    break
                assert crawl.poll() is None
                time.sleep(0.1)
            crawl.send_signal(signal.SIGKILL)
            crawl.wait(60)
        finally:
            release.set()
            if crawl.poll() is None:
                crawl.kill()
                crawl.wait()
    assert not stats_file.exists()  # no report: the run did not end, rather than the previous one's
