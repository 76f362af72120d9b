"""Clones that fail: repository gone (404), auth required (401, Hugging Face's answer for gated and
missing repos), a transfer that stalls, a server dying mid-pack, a full or read-only disk. Each
ends as ``CloneStatus: failed: <reason>`` and ``ptm/clone/failed/<reason>``, with nothing under
``repos/`` but complete clones, and no hang."""

from __future__ import annotations

import json
import os
import signal
import subprocess
from contextlib import contextmanager

from tests.crawl import crawl_command, read_jsonl, run_crawl
from tests.crawl_control import BackgroundCrawl
from tests.reliability_support import assert_only_complete_clones
from tests.replicas.faults import FaultPlan, inject
from tests.replicas.huggingface import HuggingFaceReplica, synthetic_models
from tests.services import missing


def model(i: int, model_id: str) -> dict:
    return {"_id": f"{0x670000000000000000000000 + i:024x}", "id": model_id, "downloads": 100 - i, "tags": []}


def by_id(records) -> dict[str, dict]:
    return {f"{r['ModelOwner']}/{r['ModelName']}": r for r in records}


def crawl(hub, tmp_path, check: bool = True, **settings):
    return run_crawl("huggingface", tmp_path, check=check, settings={
        "PTM_HUGGINGFACE_URL": hub.url, "PTM_GIT_STALL_TIMEOUT": 2, "PTM_GIT_TIMEOUT": 120, **settings})


def last_line(log: str) -> str:
    return [line for line in log.splitlines() if line.strip()][-1]


def test_gone_gated_stalled_and_dying_clones_are_recorded_failures(tmp_path):
    failing = {
        "gone/repo": "repository not found (HTTP 404)",
        "gated/repo": "authentication required (HTTP 401/403)",
        "stall/repo": "transfer stalled or timed out",
        "dies/repo": "connection broken during transfer",
    }
    with HuggingFaceReplica(synthetic_models(3), tmp_path / "hub-git") as hub:
        for i, model_id in enumerate(failing):
            hub.add_model(model(i, model_id))
        hub.git.denied["gone/repo"] = 404
        hub.git.denied["gated/repo"] = 401
        # Part of the pack, then silence for far longer than PTM_GIT_STALL_TIMEOUT...
        stall = inject(hub.replica, FaultPlan(broken={r"^/stall/repo(\.git)?/git-upload-pack": "cut"},
                                              stall=600))
        # ...or part of the pack, then the connection is reset.
        dies = inject(hub.replica, FaultPlan(broken={r"^/dies/repo(\.git)?/git-upload-pack": "cut"}))
        result = crawl(hub, tmp_path, PTM_CLONE_RETRIES=0)  # each reason as one try meets it

    assert [k for *_, k in stall.injected] == ["cut"] and [k for *_, k in dies.injected] == ["cut"]
    records = by_id(result.records("huggingface"))
    assert len(records) == 7
    for model_id, reason in failing.items():
        assert records[model_id]["CloneStatus"] == f"failed: {reason}", records[model_id]["CloneStatus"]
        assert records[model_id]["RepoPath"] is None
        assert f"Clone failed for huggingface:{model_id}" in result.log
    assert {r["CloneStatus"] for m, r in records.items() if m not in failing} == {"cloned"}
    stats = result.stats
    assert stats["ptm/clone/failed"] == 4 and stats["ptm/clone/cloned"] == 3
    for reason in ("repository not found", "authentication required", "transfer stalled or timed out",
                   "connection broken during transfer"):
        assert stats[f"ptm/clone/failed/{reason}"] == 1, reason
    clones = assert_only_complete_clones(result.data_dir / "huggingface/repos")
    assert sorted(f"{c.parent.name}/{c.name}" for c in clones) == sorted(
        m for m in records if m not in failing)
    # Facts about the hub's repositories, kept in the records: the crawl is a success all the same.
    assert result.returncode == 0
    assert last_line(result.log).endswith("Crawl verdict: exit status 0: every listed page was read")
    assert "ptm/clone/failed_locally" not in stats
    assert "for a reason of this machine" not in result.log


def test_a_clone_the_git_server_failed_for_a_moment_is_tried_again_in_the_crawl(tmp_path):
    """A 5xx from the hub's git server (or a 429, a dropped connection) failed the model's clone
    until the next crawl, a week later on a big hub. Tried again now within the crawl, up to
    PTM_CLONE_RETRIES times; a 404 is a fact about the repository and is not."""
    with HuggingFaceReplica(synthetic_models(1), tmp_path / "hub-git") as hub:
        for i, model_id in enumerate(("flaky/repo", "down/repo", "gone/repo")):
            hub.add_model(model(i, model_id))
        hub.git.denied["gone/repo"] = 404
        faults = inject(hub.replica, FaultPlan(rates={"5xx": 1.0}, paths=r"^/flaky/repo(\.git)?/info/refs",
                                               healthy_after=2, broken={r"^/down/repo(\.git)?/info/refs": "5xx"}))
        result = crawl(hub, tmp_path, PTM_CLONE_RETRIES=2, PTM_CLONE_RETRY_DELAY=0.2)
        asked = {repo: hub.replica.count("GET", rf"^/{repo}(\.git)?/info/refs") for repo in ("gone/repo", "down/repo")}

    records = by_id(result.records("huggingface"))
    assert records["flaky/repo"]["CloneStatus"] == "cloned"
    assert records["down/repo"]["CloneStatus"] == "failed: server error (HTTP 5xx)"  # after 1 + 2 tries
    assert records["gone/repo"]["CloneStatus"] == "failed: repository not found (HTTP 404)"
    assert asked == {"gone/repo": 1, "down/repo": 3} and len(faults.injected) == 4
    stats = result.stats
    assert (stats["ptm/clone/retried"], stats["ptm/clone/retried/server error"]) == (3, 3)
    assert stats["ptm/clone/failed"] == 2 and stats["ptm/clone/cloned"] == 2
    assert "INFO: Clone of huggingface:flaky/repo (" in result.log
    assert "failed: server error (HTTP 5xx); trying again in 0.2 s (retry 1 of 2, PTM_CLONE_RETRIES)" in result.log
    assert_only_complete_clones(result.data_dir / "huggingface/repos")


def test_a_pause_does_not_wait_out_a_clones_retry_delay(tmp_path):
    """Ctrl-C once (a pause) waits for the models in flight: one waiting an hour before its retry
    held the crawl that hour, and a supervisor's stop timeout killed it instead. Its retry is not
    started: the model is stored for the next crawl to clone."""
    with HuggingFaceReplica([model(0, "down/repo")], tmp_path / "hub-git") as hub:
        inject(hub.replica, FaultPlan(broken={r"^/down/repo(\.git)?/info/refs": "5xx"}))
        settings = {"PTM_HUGGINGFACE_URL": hub.url, "PTM_CLONE_RETRIES": 3, "PTM_CLONE_RETRY_DELAY": 3000}
        cmd = crawl_command("huggingface", tmp_path / "out.jsonl", tmp_path / "data", tmp_path / "stats.json",
                            settings=settings)
        paused = BackgroundCrawl(cmd, tmp_path / "crawl.log")
        paused.wait_until(lambda: "trying again in 3000 s" in paused.log, "the retry's wait")
        paused.proc.send_signal(signal.SIGINT)
        paused.wait()  # a guard of WAIT_LIMIT (180 s), far below the hour
    [record] = read_jsonl(tmp_path / "data/huggingface/huggingface.jsonl")
    assert (record["CloneStatus"], record["RepoPath"]) == ("skipped: the crawl stopped before its clone", None)
    assert hub.replica.count("GET", r"^/down/repo(\.git)?/info/refs") == 1


def test_a_jobdir_job_paused_during_a_retrys_wait_clones_the_model_on_resume(tmp_path):
    """The model whose retry a pause cut short is not stored (neither failed nor skipped): its page
    is fetched again by the resumed job, which clones it (the server well again)."""
    with HuggingFaceReplica([model(0, "down/repo")], tmp_path / "hub-git") as hub:
        inject(hub.replica, FaultPlan(rates={"5xx": 1.0}, paths=r"^/down/repo(\.git)?/info/refs", healthy_after=2))
        settings = {"PTM_HUGGINGFACE_URL": hub.url, "PTM_CLONE_RETRIES": 3, "PTM_CLONE_RETRY_DELAY": 3000,
                    "JOBDIR": str(tmp_path / "job")}
        cmd = crawl_command("huggingface", tmp_path / "1.jsonl", tmp_path / "data", tmp_path / "1.stats.json",
                            settings=settings)
        paused = BackgroundCrawl(cmd, tmp_path / "1.log")
        paused.wait_until(lambda: "trying again in 3000 s" in paused.log, "the retry's wait")
        paused.proc.send_signal(signal.SIGINT)
        paused.wait()
        assert read_jsonl(tmp_path / "data/huggingface/huggingface.jsonl") == []
        stats = json.loads((tmp_path / "1.stats.json").read_text())
        assert (stats["ptm/clone/deferred"], stats["ptm/clone/retrying"], stats["ptm/clone/waiting"]) == (1, 0, 0)
        assert "ptm/clone/failed" not in stats and "ptm/clone/retried" not in stats
        resumed = run_crawl("huggingface", tmp_path, settings=settings, data_dir=tmp_path / "data", out_name="2.jsonl")
    [record] = read_jsonl(tmp_path / "data/huggingface/huggingface.jsonl")
    assert record["CloneStatus"] == "cloned"
    assert "ptm/clone/retried" not in resumed.stats and resumed.stats.get("ptm/clone/retrying", 0) == 0


def test_a_tokenless_crawl_warns_of_the_first_gated_clones_and_counts_them_all(tmp_path):
    """Without HF_TOKEN every gated model's clone fails (401): a WARNING each was thousands of lines.
    The first NAMED_FAILURES of each reason are warnings, the rest DEBUG; the summary counts all."""
    from pipelines.clone import NAMED_FAILURES

    gated = [f"gated/m{i}" for i in range(NAMED_FAILURES + 2)]
    with HuggingFaceReplica([], tmp_path / "hub-git") as hub:
        for i, model_id in enumerate([*gated, "gone/repo"]):
            hub.add_model(model(i, model_id))
            hub.git.denied[model_id] = 401 if model_id in gated else 404
        result = crawl(hub, tmp_path, LOG_LEVEL="INFO")

    records = by_id(result.records("huggingface"))
    assert {records[m]["CloneStatus"] for m in gated} == {"failed: authentication required (HTTP 401/403)"}
    lines = [line for line in result.log.splitlines() if "WARNING: Clone failed for huggingface:" in line]
    assert len([line for line in lines if "authentication required" in line]) == NAMED_FAILURES
    assert len([line for line in lines if "gone/repo" in line]) == 1  # another reason: warnings of its own
    assert result.log.count("WARNING: More clones failed for authentication required (HTTP 401/403)") == 1
    assert (f"Left out by this crawl: {len(gated) + 1} models not cloned (authentication required: {len(gated)}, "
            f"repository not found: 1): their CloneStatus in {result.data_dir}/huggingface/huggingface.jsonl"
            in result.log)
    assert result.stats["ptm/clone/failed/authentication required"] == len(gated)


def test_a_clone_outliving_ptm_git_timeout_is_killed_and_recorded(tmp_path):
    # A trickle (a few bytes, then silence) under a huge stall limit: only PTM_GIT_TIMEOUT ends it.
    with HuggingFaceReplica([model(0, "slow/repo")], tmp_path / "hub-git") as hub:
        inject(hub.replica, FaultPlan(broken={r"^/slow/repo(\.git)?/git-upload-pack": "cut"}, stall=600))
        result = crawl(hub, tmp_path, PTM_GIT_STALL_TIMEOUT=600, PTM_GIT_TIMEOUT=3)
    record = result.records("huggingface")[0]
    assert record["CloneStatus"].startswith("failed: transfer stalled or timed out"), record["CloneStatus"]
    assert_only_complete_clones(result.data_dir / "huggingface/repos")


@contextmanager
def mounted_tmpfs(path, options: str):
    """A tmpfs at ``path`` (root only); skips the test when mounting is not permitted (fails it under
    ``CI=true``, where the tests run as root: tests/services.py)."""
    path.mkdir(parents=True, exist_ok=True)
    out = subprocess.run(["mount", "-t", "tmpfs", "-o", options, "tmpfs", str(path)], capture_output=True,
                         text=True)
    if out.returncode != 0:
        missing(f"cannot mount a tmpfs here ({out.stderr.strip() or 'not root'}); "
                    "the disk-error tests need root and mount permission")
    try:
        yield path
    finally:
        subprocess.run(["umount", "-l", str(path)], check=True)


def big_model_hub(tmp_path):
    hub = HuggingFaceReplica(synthetic_models(2), tmp_path / "hub-git")
    big = model(9, "big/repo")
    hub.add_model(big, repo=False)
    hub.models["big/repo"]["sha"] = hub.git.add_repo("big/repo", {"weights.bin": os.urandom(3 << 20)})
    return hub


def test_a_full_disk_fails_the_clone_that_does_not_fit_and_keeps_the_rest(tmp_path):
    data = tmp_path / "data"
    hub = big_model_hub(tmp_path)
    with hub, mounted_tmpfs(data / "huggingface/repos", "size=1m"):
        result = crawl(hub, tmp_path, check=False, PTM_CLONE_CONCURRENCY=1)
        records = by_id(result.records("huggingface"))
        assert records["big/repo"]["CloneStatus"] in ("failed: disk full",
                                                      "failed: filesystem error (No space left on device)")
        assert {r["CloneStatus"] for m, r in records.items() if m != "big/repo"} <= {"cloned", "failed: disk full"}
        clones = assert_only_complete_clones(data / "huggingface/repos")
        assert "big" not in {c.parent.name for c in clones}
        stats = result.stats
        assert stats.get("ptm/clone/failed/disk full", 0) + stats.get("ptm/clone/failed/filesystem error", 0) >= 1
        # This machine's disk, not the repository: the dataset is incomplete, and the crawl says so.
        assert result.returncode == 1, result.log[-3000:]
        assert stats["ptm/clone/failed_locally"] == stats["ptm/clone/failed"] >= 1
        assert " not cloned for a reason of this machine, not of the hub (" in last_line(result.log)


def read_only(repos):
    """``repos`` made read-only while in the block: a read-only tmpfs over it as root (root writes
    through mode bits), else mode 555 (left so: a test that fixes it chmods it back)."""
    if os.geteuid() == 0:
        return mounted_tmpfs(repos, "ro,size=64k")
    repos.mkdir(parents=True)
    repos.chmod(0o555)
    return contextmanager(lambda: (yield repos))()


def test_a_read_only_repos_dir_fails_every_clone_with_the_reason_and_the_crawl(tmp_path):
    """Every clone failed (``filesystem error``) and the crawl exited 0, as if the hub's repositories
    were gone: the dataset is incomplete by this machine's fault, which its operator can fix, as for
    lack of disk space (exit status 1). The records are stored, each with its CloneStatus."""
    data = tmp_path / "data"
    repos = data / "huggingface/repos"
    with HuggingFaceReplica(synthetic_models(3), tmp_path / "hub-git") as hub:
        with read_only(repos):
            result = crawl(hub, tmp_path, check=False)
            assert list(repos.iterdir()) == []
    records = result.records("huggingface")
    assert len(records) == 3  # the records are stored: only the clones failed
    assert {r["CloneStatus"] for r in records} in (
        {"failed: filesystem error (Read-only file system)"}, {"failed: filesystem error (Permission denied)"})
    stats = result.stats
    assert stats["ptm/clone/failed/filesystem error"] == 3
    assert stats["ptm/clone/failed_locally"] == stats["ptm/clone/failed_locally/filesystem error"] == 3
    assert result.returncode == 1, result.log[-3000:]
    assert "Traceback" not in result.log
    assert last_line(result.log).endswith(
        "Crawl verdict: exit status 1: 3 models not cloned for a reason of this machine, not of the hub "
        "(filesystem error: 3): fix it (the WARNINGs 'Clone failed for …' say what), then crawl again")
    assert (stats["ptm/verdict/exit_status"], stats["finish_reason"]) == (1, "finished")
    assert ("Left out by this crawl: 3 models not cloned (filesystem error: 3), 3 of them for a reason of "
            "this machine: their CloneStatus in ") in result.log
    assert "Clones at the end: " in result.log and "(3 failed, 3 of them for a reason of this machine, " in result.log


def test_a_crawl_again_once_the_repos_dir_is_fixed_clones_them_all_and_exits_0(tmp_path):
    """The verdict on clones failed for a reason of this machine says 'fix it, then crawl again': the
    next crawl over the same data dir retries every clone the first one failed, and exits 0."""
    data = tmp_path / "data"
    repos = data / "huggingface/repos"
    with HuggingFaceReplica(synthetic_models(3), tmp_path / "hub-git") as hub:
        with read_only(repos):
            first = crawl(hub, tmp_path, check=False)
        assert first.returncode == 1
        if os.geteuid() != 0:
            repos.chmod(0o755)
        again = crawl(hub, tmp_path, check=False)
    assert again.returncode == 0, again.log[-3000:]
    assert {r["CloneStatus"] for r in again.records("huggingface")} == {"cloned"}
    assert "ptm/clone/failed_locally" not in again.stats
    assert "Crawl verdict: exit status 0: " in last_line(again.log)


def test_a_jobdir_job_whose_clones_failed_for_a_reason_of_this_machine_says_to_crawl_again_with_a_new_one(tmp_path):
    """In the JOBDIR of a finished job a new run does nothing and exits 0: a job whose clones failed
    for a reason of this machine (exit status 1: 'fix it, then crawl again'), crawled again as told,
    with its JOBDIR, exited 0 with not one clone retried. The verdict now says to use a new JOBDIR,
    which clones them."""
    data = tmp_path / "data"
    repos = data / "huggingface/repos"
    with HuggingFaceReplica(synthetic_models(3), tmp_path / "hub-git") as hub:
        with read_only(repos):
            first = crawl(hub, tmp_path, check=False, JOBDIR=str(tmp_path / "job1"))
        assert first.returncode == 1
        assert last_line(first.log).endswith(
            "fix it (the WARNINGs 'Clone failed for …' say what), then crawl again with a new JOBDIR "
            "(this job's runs do not clone them again)")
        if os.geteuid() != 0:
            repos.chmod(0o755)
        again = crawl(hub, tmp_path, check=False, JOBDIR=str(tmp_path / "job2"))
    assert again.returncode == 0, again.log[-3000:]
    assert {r["CloneStatus"] for r in again.records("huggingface")} == {"cloned"}
