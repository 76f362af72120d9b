"""HF_TOKEN goes to the hub's host — its API and its git server, for gated repositories — and
nowhere else: not to another git host, and never into records, raw payloads, snapshots, logs,
stats, the JOBDIR (paused with requests queued, then resumed) or any clone's git config."""

from __future__ import annotations

import os
import secrets
import signal
import subprocess

import pytest

from ptmscrape.gitrepo import Git, GitPolicy, RepoError
from tests.crawl import ROOT, crawl_command, run_crawl
from tests.crawl_control import BackgroundCrawl, hold
from tests.replicas.faults import FaultPlan, inject, log_headers
from tests.replicas.huggingface import HuggingFaceReplica, synthetic_models
from tests.replicas.server import GitHost, Replica, Reply, insteadof_env


def gated_by(token: str, repo: str):
    """An interceptor answering 401 to git requests for ``repo`` without the bearer token."""
    def interceptor(req, call_next):
        if req.path.startswith(f"/{repo}") and req.headers.get("authorization") != f"Bearer {token}":
            return Reply.text("Authentication required", 401, headers={"WWW-Authenticate": 'Basic realm="hf"'})
        return call_next()
    return interceptor


def files_containing(root, needle: bytes) -> list[str]:
    hits = []
    for folder, _, files in os.walk(root):
        for name in files:
            path = os.path.join(folder, name)
            if os.path.islink(path):
                continue
            with open(path, "rb") as f:
                if needle in f.read():
                    hits.append(path)
    return hits


def test_token_reaches_only_the_hub_host_and_is_stored_nowhere(tmp_path):
    token = f"hf_{secrets.token_hex(16)}"
    data, jobdir = tmp_path / "data", tmp_path / "job"
    models = synthetic_models(24, seed=4)
    with HuggingFaceReplica(models, tmp_path / "hub-git") as hub, Replica() as other:
        hub.add_model({"_id": "6a" * 12, "id": "gated/repo", "gated": "manual", "downloads": 1, "tags": []})
        # A repository on another host (as a GitHub URL would be): it must never see the token.
        other_git = GitHost(tmp_path / "other-git")
        other_git.mount(other)
        hub.add_model({"_id": "6b" * 12, "id": "elsewhere/repo", "downloads": 1, "tags": []}, repo=False)
        hub.models["elsewhere/repo"]["sha"] = other_git.add_repo("elsewhere/repo", {"README.md": "x\n"})
        hub.replica.interceptors.append(gated_by(token, "gated/repo"))
        inject(hub.replica, FaultPlan(seed=4, rates={"5xx": .15, "429": .1, "truncate": .1},
                                      paths=r"^/api/", healthy_after=3))
        hub_headers, other_headers = log_headers(hub.replica), log_headers(other)
        env = insteadof_env(f"{hub.url}/elsewhere", f"{other.url}/elsewhere", {"HF_TOKEN": token})
        settings = {"PTM_HUGGINGFACE_URL": hub.url, "JOBDIR": str(jobdir), "LOG_LEVEL": "DEBUG",
                    "PTM_RETRY_BACKOFF": 0.01, "PTM_RATELIMIT_MAX_WAIT": 1, "CONCURRENT_REQUESTS": 2}
        ids = ",".join([m["id"] for m in models] + ["gated/repo", "elsewhere/repo"])

        # Run 1: paused (like Ctrl-C) while detail requests still wait in the JOBDIR queue.
        held = hold(hub.replica, "GET", hub._detail, lambda req, m, n: n == 8)
        cmd = crawl_command("huggingface", tmp_path / "1.jsonl", data, tmp_path / "1.stats.json",
                            args={"models": ids}, settings=settings)
        first = BackgroundCrawl(cmd, tmp_path / "1.log", env=env)
        first.wait_until(held.reached.is_set, "the 8th detail page")
        first.proc.send_signal(signal.SIGTERM)
        first.wait_until(lambda: "shutting down gracefully" in first.log, "the graceful stop")
        held.open()
        assert first.wait() == 1  # paused, not finished (README "Exit status")
        queued = [p for p in jobdir.rglob("*") if p.is_file() and "requests.queue" in str(p)]
        assert queued and sum(p.stat().st_size for p in queued) > 1000  # requests were pickled
        assert files_containing(tmp_path, token.encode()) == []

        # Run 2: resumed to the end.
        second = run_crawl("huggingface", tmp_path, args={"models": ids}, settings=settings,
                           data_dir=data, out_name="2.jsonl", env=env)

    records = {f"{r['ModelOwner']}/{r['ModelName']}": r for r in second.records("huggingface")}
    assert len(records) == 26
    assert records["gated/repo"]["CloneStatus"] == "cloned"  # the token opened the gated repo
    assert records["elsewhere/repo"]["CloneStatus"] == "cloned"
    # Sent: on every API request (first tries and retries alike) and on the gated repo's git requests.
    api = [h for _, path, h in hub_headers.seen if path.startswith("/api/")]
    assert len(api) > 26 and all(h.get("authorization") == f"Bearer {token}" for h in api)
    gated_git = [h for _, path, h in hub_headers.seen if path.startswith("/gated/repo")]
    assert gated_git and all(h.get("authorization") == f"Bearer {token}" for h in gated_git)
    # Not sent: to another host, even one reached through the hub's own URL.
    assert other_headers.seen and not any("authorization" in h for _, _, h in other_headers.seen)

    # Stored nowhere: data tree (records, payloads, snapshots, clones' .git/config), JOBDIR,
    # feeds, stats files and the logs of both runs.
    for clone in (data / "huggingface/repos").glob("*/*"):
        assert token not in (clone / ".git/config").read_text()
        assert "extraheader" not in (clone / ".git/config").read_text().lower()
    assert files_containing(tmp_path, token.encode()) == []
    assert token not in first.log and token not in second.log
    assert "Bearer" not in second.log


def test_the_hubs_git_token_is_not_carried_through_a_redirect_to_another_host(tmp_path):
    """git keeps ``http.<hub>/.extraHeader`` for a session after following a redirect, so a hub URL
    redirecting to another host would hand that host the token: no redirect is followed there."""
    token = f"hf_{secrets.token_hex(16)}"
    with Replica() as hub, Replica() as other:
        other_git = GitHost(tmp_path / "other-git")
        other_git.mount(other)
        other_git.add_repo("gated/repo", {"README.md": "x\n"})
        other_headers = log_headers(other)
        port = other.url.rsplit(":", 1)[1]

        def redirect(req, call_next):
            query = "&".join(f"{k}={v}" for k, v in req.query)
            return Reply(302, b"", {"Location": f"http://localhost:{port}{req.path}" + (f"?{query}" if query else "")})
        hub.interceptors.append(redirect)

        def clone(auth_headers):
            git = Git(GitPolicy(allow_protocols=("https", "http"), auth_headers=auth_headers))
            data = tmp_path / "data"
            return git.clone(f"{hub.url}/gated/repo", data / "hf/repos/gated/repo", data / ".incoming")

        with pytest.raises(RepoError):
            clone(((f"{hub.url}/", f"Authorization: Bearer {token}"),))
        assert not any("authorization" in h for _, _, h in other_headers.seen)
        assert clone(())  # without a token the redirect is followed, as git does by default
        assert other_headers.seen


def test_git_lfs_gets_the_token_but_no_error_log_of_it_can_hold_it(tmp_path):
    """git-lfs writes every ``GIT_*`` environment variable of its process (what ``git lfs env``
    prints) into ``.git/lfs/logs/<time>.log`` of the clone when it logs an error: a token given to
    git in ``GIT_CONFIG_VALUE_<n>`` would be stored in the dataset's clone, for whoever gets the
    dataset. git and git-lfs still get it for the hub's host (a gated repository's LFS files)."""
    token = f"hf_{secrets.token_hex(16)}"
    with Replica() as hub:
        host = GitHost(tmp_path / "git")
        host.mount(hub)
        host.add_repo("gated/repo", {"README.md": "x\n"}, lfs={"model.bin": b"weights\n"})
        hub.interceptors.append(gated_by(token, "gated/repo"))
        git = Git(GitPolicy(allow_protocols=("http",), lfs=True,
                            auth_headers=((f"{hub.url}/", f"Authorization: Bearer {token}"),)))
        target = tmp_path / "data/hf/repos/gated/repo"
        git.clone(f"{hub.url}/gated/repo", target, tmp_path / "data/hf/repos/.incoming")
        assert (target / "model.bin").read_bytes() == b"weights\n"  # the LFS batch call had the token
        shown = git._run(target, "lfs", "env")  # what git-lfs logs with an error
    assert "GIT_EXEC_PATH=" in shown and token not in shown
    assert not any(token in value for value in git._env.values())
    assert files_containing(tmp_path / "data", token.encode()) == []


def test_a_crawl_logs_no_password_to_a_console_into_it(tmp_path):
    """Scrapy's telnet console (on by Scrapy's default) logs its password at INFO: a Python shell in
    the crawl, which holds HF_TOKEN, for whoever reads the log (Scrapyd serves job logs over HTTP)."""
    cmd = crawl_command("huggingface", tmp_path / "out.jsonl", tmp_path / "data", tmp_path / "stats.json",
                        args={"limit": 0})
    assert not any("TELNETCONSOLE" in part for part in cmd)  # the project's default
    proc = subprocess.run(cmd, cwd=ROOT, capture_output=True, text=True, timeout=120)
    log = proc.stderr + proc.stdout
    assert proc.returncode == 0 and "Spider closed" in log, log[-3000:]
    assert "Password" not in log and "scrapy.extensions.telnet.TelnetConsole" not in log


def test_a_crawl_writes_no_remote_control_token_outside_the_data_dir(tmp_path):
    """Scrapy 2.19's remote control (on by Scrapy's default: an HTTP server running Python sent to it)
    writes its port and token to a file in the user's state folder, outside the data dir, and a
    crawl killed or stopped by force leaves it there: one file per killed crawl, for good."""
    hub = HuggingFaceReplica(synthetic_models(3), tmp_path / "hub-git")
    with hub:
        listing = hold(hub.replica, "GET", hub._listing, lambda req, m, n: n == 1)
        cmd = crawl_command("huggingface", tmp_path / "out.jsonl", tmp_path / "data", tmp_path / "stats.json",
                            settings={"PTM_HUGGINGFACE_URL": hub.url, "PTM_CLONE": 0})
        state = tmp_path / "state"
        crawl = BackgroundCrawl(cmd, tmp_path / "crawl.log", env={"XDG_STATE_HOME": str(state)})
        try:
            crawl.wait_until(listing.reached.is_set, "the first listing page asked for")
            assert not state.exists() or not any(state.rglob("*.json"))
        finally:
            crawl.kill()
    assert not state.exists() or not any(state.rglob("*.json"))

