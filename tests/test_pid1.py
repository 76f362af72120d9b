"""A crawl started as PID 1 of its pid namespace, as in a container without an init
(``ptmscrape/init_process.py``): the processes of the clones it kills are waited for, not left as
zombies, and signals sent to PID 1 reach the crawl. ``unshare`` makes the namespace."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time

import pytest

import ptmscrape.settings as project
from ptmscrape.dataset.processes import _parent_pids
from tests.crawl import ROOT, CrawlResult, crawl_command
from tests.replicas.huggingface import HuggingFaceReplica, synthetic_models
from tests.services import missing

UNSHARE = ["unshare", "--user", "--map-root-user", "--pid", "--fork", "--mount-proc"]


@pytest.fixture(scope="module")
def pid_namespaces():
    probe = subprocess.run([*UNSHARE, "true"], capture_output=True, text=True)
    if probe.returncode != 0:
        missing(f"cannot make a pid namespace with unshare: {probe.stderr.strip()}")


def crawl_as_pid_1(tmp_path, hub, settings) -> subprocess.Popen:
    cmd = crawl_command("huggingface", tmp_path / "out.jsonl", tmp_path / "data", tmp_path / "stats.json",
                        settings={"PTM_HUGGINGFACE_URL": hub.url, "PTM_HUGGINGFACE_PAGE_SIZE": 5,
                                  "EXTENSIONS": json.dumps({**project.EXTENSIONS, "tests.probes.ProcessProbe": 0}),
                                  **settings})
    return subprocess.Popen([*UNSHARE, sys.executable, *cmd[1:]], cwd=ROOT, stdout=subprocess.PIPE,
                            stderr=subprocess.STDOUT, text=True)


def result_of(proc: subprocess.Popen, tmp_path) -> CrawlResult:
    log, _ = proc.communicate(timeout=600)
    return CrawlResult(proc.returncode, log, tmp_path / "out.jsonl", tmp_path / "stats.json", tmp_path / "data")


def test_the_processes_of_killed_clones_are_waited_for(tmp_path, pid_namespaces):
    """Every clone is killed for its size: what each git started is adopted by PID 1. The crawl was
    PID 1 and left them as zombies (1.5 a killed clone); its init now waits for them."""
    with HuggingFaceReplica(synthetic_models(20), tmp_path / "hub-git") as hub:
        hub.replica.delay = 0.05  # clones last long enough for the size watcher to see them
        result = result_of(crawl_as_pid_1(tmp_path, hub, {"PTM_CLONE_MAX_GB": 1e-9}), tmp_path)
    assert result.returncode == 0, result.log[-5000:]
    stats = result.stats
    assert stats["ptm/clone/failed/larger than PTM_CLONE_MAX_GB"] == 20, result.log[-5000:]
    assert stats["test/zombies"] == 0
    assert stats["test/pid"] != 1  # the crawl forked: PID 1 is its init


def test_a_signal_sent_to_pid_1_reaches_the_crawl(tmp_path, pid_namespaces):
    """``docker stop`` sends SIGTERM to PID 1: the crawl is paused gracefully (finish reason
    ``shutdown``, exit status 1), and PID 1 exits with the crawl's status."""
    with HuggingFaceReplica(synthetic_models(40), None, repos=False) as hub:
        hub.replica.delay = 0.5  # 8 pages: 4 s
        proc = crawl_as_pid_1(tmp_path, hub, {"PTM_CLONE": 0})
        deadline = time.monotonic() + 60
        while not any(path.stat().st_size for path in (tmp_path / "data").glob("huggingface/snapshots/*.jsonl")):
            assert time.monotonic() < deadline and proc.poll() is None, "the crawl stored no model"
            time.sleep(0.05)  # models stored: the crawl runs, its signal handlers are in place
        pid_1 = next(pid for pid, parent in _parent_pids().items() if parent == proc.pid)
        os.kill(pid_1, signal.SIGTERM)
        result = result_of(proc, tmp_path)
    assert result.stats["finish_reason"] == "shutdown", result.log[-5000:]
    assert result.returncode == 1
    assert 0 < result.stats["item_scraped_count"] < 40


def test_one_ctrl_c_in_a_terminal_stays_one(tmp_path, pid_namespaces):
    """A terminal's Ctrl-C reaches every process of its foreground group, the crawl and its init
    alike: the init must not pass it on too, or the crawl gets two (Scrapy's forced stop: clones
    killed, no run report)."""
    import pty
    import select

    with HuggingFaceReplica(synthetic_models(40), None, repos=False) as hub:
        hub.replica.delay = 0.5
        cmd = crawl_command("huggingface", tmp_path / "out.jsonl", tmp_path / "data", tmp_path / "stats.json",
                            settings={"PTM_HUGGINGFACE_URL": hub.url, "PTM_HUGGINGFACE_PAGE_SIZE": 5,
                                      "PTM_CLONE": 0})
        pid, terminal = pty.fork()
        if pid == 0:  # the crawl's side of the terminal
            os.chdir(ROOT)
            os.execvp(UNSHARE[0], [*UNSHARE, sys.executable, *cmd[1:]])
        log, sent, deadline = b"", False, time.monotonic() + 120
        while time.monotonic() < deadline:
            if select.select([terminal], [], [], 0.1)[0]:
                try:
                    data = os.read(terminal, 65536)
                except OSError:  # the crawl's side closed
                    break
                if not data:
                    break
                log += data
            if not sent and any(p.stat().st_size for p in (tmp_path / "data").glob("huggingface/snapshots/*.jsonl")):
                os.write(terminal, b"\x03")
                sent = True
        _, status = os.waitpid(pid, 0)
        os.close(terminal)
    text = log.decode(errors="replace")
    assert sent and "Received SIGINT, shutting down gracefully" in text, text[-3000:]
    assert "Received SIGINT twice" not in text
    assert json.loads((tmp_path / "stats.json").read_text())["finish_reason"] == "shutdown"
    assert os.waitstatus_to_exitcode(status) == 1


def test_reaping_returns_the_crawls_status_only_once_it_ended():
    """``reap`` waits for any child (in a process of its own here: it would take pytest's); a crawl
    ended by a signal exits 128 + the signal, as a shell says."""
    script = (
        "import subprocess, time\n"
        "from ptmscrape.init_process import reap\n"
        "other = subprocess.Popen(['true']); crawl = subprocess.Popen(['sleep', '30']); time.sleep(0.3)\n"
        "before = reap(crawl.pid)\n"
        "crawl.kill(); time.sleep(0.3)\n"
        "print(before, reap(crawl.pid), reap(crawl.pid))\n"
    )
    out = subprocess.run([sys.executable, "-c", script], cwd=ROOT, capture_output=True, text=True, check=True)
    # still running: None; killed: 128 + 9; then no child is left: 1
    assert out.stdout.split() == ["None", str(128 + signal.SIGKILL), "1"]
