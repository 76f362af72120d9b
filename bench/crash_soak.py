"""Crash soak ("nothing lost on a crash"), not a benchmark and not a test: minutes of crawls.

For each hub's replica (the offline demo's, ``tests/replicas``): one uninterrupted reference crawl,
then crawls with a JOBDIR and clones into one data dir, each stopped at a random moment (SIGKILL of
the process group or of the crawl's pid alone, SIGINT twice, SIGTERM, SIGTERM then SIGKILL as
``docker stop``) at a random point (a time, while listing, with a clone in ``.incoming``, with a git
process running, at ``Closing spider``, or at the N-th rename in the data dir or JOBDIR:
``bench/soak_probe.py``), restarted at once or after the killed crawl's git is gone; a job that
finishes starts a new one (a re-crawl); then a last crawl runs to its end. Checked against the
reference: every model in ``<hub>/<hub>.jsonl`` once, whole lines, no ``.tmp-*``/``.merge-*``/
``.pending`` or ``.incoming`` leftovers, every record valid against the schema, same clone outcome
and commit, every clone a git repository at its record's commit (``git fsck``, clean worktree, no
LFS pointer with ``--lfs``), ``repo-index.jsonl`` agreeing with the clones on disk, each payload
locator giving the model's payload (``python -m ptmscrape.payload`` too), nothing written into the
project, no git left running, and exit status 0 only for a whole dataset.

    .venv/bin/python -m bench.crash_soak [--rounds 4] [--passes 1] [--seed S] [--out DIR] [hub ...]
    .venv/bin/python -m bench.crash_soak huggingface --big 100 --updates --lfs   # commits pushed between jobs
    .venv/bin/python -m bench.crash_soak --modes term,int2 -a limit=30 -s PTM_CLONE_CONCURRENCY=1

Each line says what a round did; ``PROBLEM`` lines name what broke; ``<out>/results.json`` keeps all.
"""

from __future__ import annotations

import argparse
import json
import os
import random
import signal
import subprocess
import sys
import tempfile
import time
import traceback
from pathlib import Path

import jsonschema

import ptmscrape.settings as project
from ptmscrape.dataset.payloads import read_payload
from ptmscrape.dataset.tree import DatasetTree
from ptmscrape.gitrepo import normalize_url
from ptmscrape.items import load_schema
from tests.crawl import ROOT, crawl_command
from tests.replicas.demo import available

GIT_ENV = {"GIT_TERMINAL_PROMPT": "0", "GIT_LFS_SKIP_SMUDGE": "1"}
MODES = ["kill9-group", "kill9-pid", "int2", "term", "term-kill"]
POINTS = ["time", "listing", "clone", "close", "rename", "rename", "git", "git"]


def log(msg):
    print(f"[{time.strftime('%H:%M:%S')}] {msg}", flush=True)


def git_under(root: str) -> list[str]:
    """Command lines of git processes working in a folder under ``root``."""
    found = []
    for name in os.listdir("/proc"):
        if not name.isdigit():
            continue
        try:
            cwd = os.readlink(f"/proc/{name}/cwd")
            if not cwd.startswith(root):
                continue
            with open(f"/proc/{name}/cmdline", "rb") as f:
                cmd = f.read().replace(b"\0", b" ").decode(errors="replace")
        except OSError:
            continue
        if "git" in cmd and any(w in cmd for w in ("fetch", "reset", "lfs", "clone", "checkout", "index-pack")):
            found.append(cmd)
    return found


def proc_cmdlines_with(text: str) -> list[tuple[int, str]]:
    found = []
    for name in os.listdir("/proc"):
        if not name.isdigit():
            continue
        try:
            with open(f"/proc/{name}/cmdline", "rb") as f:
                cmd = f.read().replace(b"\0", b" ").decode(errors="replace")
            with open(f"/proc/{name}/stat", "rb") as f:
                state = f.read().rsplit(b")", 1)[1].split()[0]
        except OSError:
            continue
        if text in cmd and state not in (b"Z", b"X"):
            found.append((int(name), cmd))
    return found


class Run:
    def __init__(self, cmd, log_path, env):
        self.log_path = log_path
        self._log = open(log_path, "wb")
        self.start = time.monotonic()
        self.proc = subprocess.Popen(cmd, cwd=ROOT, env=env, stdout=self._log, stderr=subprocess.STDOUT,
                                     start_new_session=True)

    def text(self):
        return self.log_path.read_text(errors="replace")

    def wait(self, timeout=300):
        try:
            return self.proc.wait(timeout)
        except subprocess.TimeoutExpired:
            os.killpg(self.proc.pid, signal.SIGKILL)
            self.proc.wait()
            return "hung"
        finally:
            self._log.close()


def wait_point(run: Run, point: str, data: Path, hub: str, ref_secs: float, rng) -> str:
    """Wait until the chosen kill point; returns what was reached ('exited' if the crawl ended)."""
    deadline = time.monotonic() + max(60.0, ref_secs * 4)
    if point == "time":
        target = time.monotonic() + rng.uniform(0.1, max(0.5, ref_secs * 1.05))
    elif point == "rename":
        target = None
    elif point == "listing":
        target = time.monotonic() + rng.uniform(0.1, max(0.3, ref_secs * 0.5))
    else:
        target = None
    incoming = data / hub / "repos" / ".incoming"
    while True:
        if run.proc.poll() is not None:
            return "exited"
        now = time.monotonic()
        if now > deadline:
            return "deadline"
        if target is not None and now >= target:
            return point
        if point == "clone":
            try:
                if any(incoming.iterdir()):
                    time.sleep(rng.uniform(0, 0.3))
                    return "clone"
            except OSError:
                pass
            if "Spider closed" in run.text() or "Closing spider" in run.text():
                return "clone-missed"
        if point == "git":
            cmds = git_under(str(data))
            if cmds:
                time.sleep(rng.choice([0, rng.uniform(0, 0.05), rng.uniform(0, 0.2)]))
                return "git:" + cmds[0][:60]
            if "Closing spider" in run.text():
                return "git-missed"
        if point == "close":
            t = run.text()
            if "Closing spider" in t:
                time.sleep(rng.choice([0, 0, rng.uniform(0, 0.1), rng.uniform(0, 0.3)]))
                return "close"
        time.sleep(0.02)


def stop(run: Run, mode: str, rng) -> object:
    pid = run.proc.pid
    try:
        if mode == "kill9-group":
            os.killpg(pid, signal.SIGKILL)
        elif mode == "kill9-pid":
            os.kill(pid, signal.SIGKILL)
        elif mode == "int2":
            os.kill(pid, signal.SIGINT)
            time.sleep(rng.uniform(0, 1.0))
            if run.proc.poll() is None:
                os.kill(pid, signal.SIGINT)
        elif mode == "term":
            os.kill(pid, signal.SIGTERM)
        elif mode == "term-kill":  # docker stop: SIGTERM, then SIGKILL after the grace period
            os.kill(pid, signal.SIGTERM)
            try:
                run.proc.wait(rng.uniform(0, 1.5))
            except subprocess.TimeoutExpired:
                os.killpg(pid, signal.SIGKILL)
    except ProcessLookupError:
        pass
    return run.wait()


def verdict_line(text: str) -> str:
    lines = [ln for ln in text.splitlines() if "Crawl verdict" in ln]
    return lines[-1].split("Crawl verdict", 1)[1][:200] if lines else "(no verdict line)"


def git(*args, cwd):
    return subprocess.run(["git", *args], cwd=cwd, capture_output=True, text=True,
                          env={**os.environ, **GIT_ENV})


def whole_lines(path: Path, problems: list, what: str) -> list[dict]:
    if not path.exists():
        problems.append(f"{what}: {path} missing")
        return []
    raw = path.read_bytes()
    if raw and not raw.endswith(b"\n"):
        problems.append(f"{what}: torn last line in {path}")
    out = []
    for n, line in enumerate(raw.splitlines(), 1):
        try:
            out.append(json.loads(line))
        except ValueError:
            problems.append(f"{what}: bad line {n} in {path}: {line[:80]!r}")
    return out


def check(hub, data: Path, jobdir: Path, ref: dict, ref_data: Path, final_rc, final_log: str,
          validator, root_before: str, changed: dict, lfs: bool = False) -> list[str]:
    problems: list[str] = []
    records = whole_lines(data / hub / f"{hub}.jsonl", problems, "records")
    ids = [r["id"] for r in records]
    if len(ids) != len(set(ids)):
        dup = sorted({i for i in ids if ids.count(i) > 1})
        problems.append(f"duplicate ids in {hub}.jsonl: {dup[:5]}")
    got = set(ids)
    want = set(ref)
    if got != want:
        problems.append(f"ids differ from reference: missing {sorted(want - got)[:5]} extra {sorted(got - want)[:5]}")
    # leftovers
    for p in data.rglob("*"):
        n = p.name
        if n.startswith(".tmp-") or n.startswith(".merge-") and n.endswith(".jsonl") or n.endswith(".pending"):
            problems.append(f"leftover {p.relative_to(data)}")
    inc = data / hub / "repos" / ".incoming"
    if inc.exists() and any(inc.iterdir()):
        problems.append(f"leftover in .incoming: {[x.name for x in inc.iterdir()]}")
    for p in jobdir.rglob("*") if jobdir.exists() else []:
        if p.name.startswith(".tmp") or p.name.endswith(".tmp"):
            problems.append(f"leftover in jobdir {p.relative_to(jobdir)}")
    # schema, clones, payloads
    tree, ref_tree = DatasetTree(data), DatasetTree(ref_data)
    clone_ok = {"cloned", "updated", "unchanged"}
    fsck_done: set = set()
    for r in records:
        rid = r["id"]
        errs = list(validator.iter_errors(r))
        if errs:
            problems.append(f"schema: {rid}: {errs[0].message[:150]}")
        rr = ref.get(rid)
        if rr is None:
            continue
        st, rst = str(r.get("CloneStatus")), str(rr.get("CloneStatus"))
        if (st in clone_ok) != (rst in clone_ok) or st.split(":")[0] != rst.split(":")[0] and not (
                st in clone_ok and rst in clone_ok):
            problems.append(f"clone status {rid} {r.get('ModelName')}: {st[:100]!r} (reference {rst[:100]!r})")
        try:
            ref_payload = read_payload(ref_tree, rr["ModelHub"]["MetadataFilePath"])
        except Exception as exc:  # noqa: BLE001
            ref_payload = None
            problems.append(f"reference payload of {rid} unreadable: {exc!r}")
        hub_id = ref_payload.get("id") if isinstance(ref_payload, dict) else None
        want_sha = changed.get(hub_id, rr.get("LatestGitCommitSHA"))
        if r.get("LatestGitCommitSHA") != want_sha:
            problems.append(f"sha {rid} {hub_id}: {r.get('LatestGitCommitSHA')} (expected {want_sha})")
        rp = r.get("RepoPath")
        if st in clone_ok:
            if not rp:
                problems.append(f"no RepoPath for {rid} with status {st}")
            else:
                clone = data / rp
                head = git("rev-parse", "HEAD", cwd=clone) if clone.is_dir() else None
                if head is None or head.returncode or not (clone / ".git").is_dir():
                    problems.append(f"clone {rp} of {rid} not a git repo")
                else:
                    sha = r.get("LatestGitCommitSHA")
                    h = head.stdout.strip()
                    if r.get("RepoSubPath"):
                        anc = git("merge-base", "--is-ancestor", sha, h, cwd=clone) if sha else None
                        if anc is None or anc.returncode:
                            problems.append(f"clone {rp}: {sha} not an ancestor of HEAD {h} ({rid})")
                    elif sha != h:
                        problems.append(f"clone {rp}: HEAD {h} != recorded {sha} ({rid})")
                    if rp not in fsck_done:
                        fsck_done.add(rp)
                        fs = git("fsck", "--connectivity-only", "--no-progress", cwd=clone)
                        if fs.returncode:
                            problems.append(f"clone {rp}: git fsck: {fs.stderr[:200]!r}")
                        if lfs:
                            for f in clone.rglob("*"):
                                if ".git" in f.parts or not f.is_file() or f.stat().st_size > 1024:
                                    continue
                                if f.read_bytes().startswith(b"version https://git-lfs.github.com/spec/v1"):
                                    problems.append(f"clone {rp}: LFS pointer where the file goes: {f.name}")
                    stt = git("status", "--porcelain", "--untracked-files=no", cwd=clone)
                    if stt.returncode or stt.stdout.strip():
                        problems.append(f"clone {rp}: worktree differs from HEAD: "
                                        f"{stt.stdout[:200]!r}{stt.stderr[:200]!r}")
        try:
            payload = read_payload(tree, r["ModelHub"]["MetadataFilePath"])
            if hub_id in changed:
                if payload.get("id") != hub_id or payload.get("sha") != changed[hub_id]:
                    problems.append(f"payload of updated {rid} is not its latest ({r['ModelHub']['MetadataFilePath']})")
            elif payload != ref_payload:
                problems.append(f"payload of {rid} differs from reference ({r['ModelHub']['MetadataFilePath']})")
        except Exception as exc:  # noqa: BLE001
            problems.append(f"payload of {rid} unreadable: {exc!r}")
    # python -m ptmscrape.payload by MetadataObjectID, for a few
    for r in records[:3]:
        oid = r["ModelHub"]["MetadataObjectID"]
        p = subprocess.run([sys.executable, "-m", "ptmscrape.payload", str(data), hub, str(oid)], cwd=ROOT,
                           capture_output=True, text=True)
        if p.returncode:
            problems.append(f"ptmscrape.payload {oid}: exit {p.returncode} {p.stderr[:200]}")
        else:
            want_p = read_payload(tree, r["ModelHub"]["MetadataFilePath"])
            if json.loads(p.stdout) != want_p:
                problems.append(f"ptmscrape.payload {oid}: another model's payload")
    # repo index
    index = whole_lines(data / "repo-index.jsonl", [], "index") if (data / "repo-index.jsonl").exists() else []
    paths = {}
    for line in index:
        path = line.get("path")
        clone = data / path if path else None
        if not clone or not clone.is_dir():
            problems.append(f"repo-index line for {line.get('url')} -> {path}: no such clone")
            continue
        origin = git("config", "--get", "remote.origin.url", cwd=clone).stdout.strip()
        if normalize_url(origin) != line.get("url"):
            problems.append(f"repo-index {path}: origin {origin} != {line.get('url')}")
        key = (line.get("url"), line.get("branch"))
        if key in paths and paths[key] != path:
            problems.append(f"repo-index: {key} -> two paths {paths[key]} {path}")
        paths[key] = path
    indexed = set(paths.values())
    for r in records:
        if r.get("RepoPath") and str(r.get("CloneStatus")) in clone_ok and r["RepoPath"] not in indexed:
            problems.append(f"RepoPath {r['RepoPath']} not in repo-index.jsonl")
    # clones on disk not in the index
    repos = data / hub / "repos"
    if repos.exists():
        for gitdir in repos.rglob(".git"):
            rel = str(gitdir.parent.relative_to(data))
            if ".incoming" in rel:
                continue
            if rel not in indexed:
                problems.append(f"clone on disk {rel} not in repo-index.jsonl")
    # verdict honesty
    if final_rc == 0 and got != want:
        problems.append("final crawl exit 0 but dataset incomplete")
    if final_rc != 0:
        problems.append(f"final crawl exit status {final_rc}: {verdict_line(final_log)}")
    if "Traceback" in final_log:
        problems.append("Traceback in final log")
    root_after = git("status", "--porcelain", "--ignored", cwd=ROOT).stdout
    if root_after != root_before:
        new = set(root_after.splitlines()) - set(root_before.splitlines())
        problems.append(f"files appeared in the project: {new}")
    return problems


def soak_hub(hub, starter, work: Path, rounds: int, rng, validator, results, updates=False, lfs=False, big=0,
             spider_args=None, extra_settings=None):
    work.mkdir(parents=True, exist_ok=True)
    if big and hub == "huggingface":
        from tests.replicas.huggingface import HuggingFaceReplica, fixture_models, synthetic_models
        replica = HuggingFaceReplica(fixture_models() + synthetic_models(big), work / "replica" / "hf-git",
                                     renames={"bert-base-uncased": "google-bert/bert-base-uncased"})
        settings, env = {"PTM_HUGGINGFACE_URL": replica.url, "PTM_HUGGINGFACE_PAGE_SIZE": 10}, {}
    else:
        replica, settings, env = starter(work / "replica")
    with replica:
        env = {**os.environ, **env}
        probe_ext = json.dumps({**project.EXTENSIONS, "bench.soak_probe.KillAtNth": 0})
        settings = {**settings, "PTM_GIT_ALLOW_PROTOCOL": "https:http", "LOG_LEVEL": "INFO", **(extra_settings or {})}
        if lfs:
            settings["PTM_CLONE_LFS"] = "1"
        changed: dict[str, str] = {}  # hub model id -> its current sha (updated after the reference)
        rev = [0]

        def mutate():
            for mid in rng.sample(sorted(m for m in replica.models if replica.git.exists(m)), 4):
                rev[0] += 1
                sha = replica.git.commit(mid, {"README.md": f"# rev {rev[0]} of {mid}\n"},
                                         lfs={"model.safetensors": f"w{rev[0]} {mid}".encode() * 200},
                                         message=f"rev {rev[0]}")
                replica.models[mid]["sha"] = sha
                replica.models[mid]["lastModified"] = f"2025-01-01T00:00:{rev[0] % 60:02d}.000Z"
                changed[mid] = sha
            log(f"{hub}: updated {len(changed)} repos so far")
        root_before = git("status", "--porcelain", "--ignored", cwd=ROOT).stdout
        ref_data = work / "ref"
        t0 = time.monotonic()
        cmd = crawl_command(hub, work / "ref.jsonl", ref_data, work / "ref.stats.json", args=spider_args,
                            settings={**settings, "EXTENSIONS": probe_ext, "SOAK_KILL_AT": "0",
                                      "SOAK_TRACE": str(work / "ref.renames")})
        ref_run = Run(cmd, work / "ref.log", env)
        rc = ref_run.wait()
        ref_secs = time.monotonic() - t0
        if rc != 0:
            log(f"{hub}: reference crawl exit {rc}: {verdict_line(ref_run.text())}")
        ref = {r["id"]: r for r in map(json.loads, (ref_data / hub / f"{hub}.jsonl").read_text().splitlines())}
        n_renames = len((work / "ref.renames").read_text().splitlines()) if (work / "ref.renames").exists() else 0
        log(f"{hub}: reference {len(ref)} models in {ref_secs:.1f}s, {n_renames} renames")
        data = work / "data"
        last_secs = ref_secs
        job_n = 0
        jobdir = work / f"job{job_n}"
        history = []
        round_problems = []
        for n in range(rounds):
            mode, point = rng.choice(MODES), rng.choice(POINTS)
            stats = work / f"r{n}.stats.json"
            extra = {}
            if point == "rename":
                k = rng.randint(1, max(1, n_renames if rng.random() < 0.5 else min(n_renames, 4)))
                mode = f"probe-{k}:{rng.choice(['before', 'after'])}"
                extra = {"EXTENSIONS": probe_ext, "SOAK_KILL_AT": mode[6:], "SOAK_TRACE": str(work / f"r{n}.renames")}
            cmd = crawl_command(hub, work / f"r{n}.jsonl", data, stats, args=spider_args,
                                settings={**settings, "JOBDIR": str(jobdir), **extra})
            run = Run(cmd, work / f"r{n}.log", env)
            reached = wait_point(run, point, data, hub, last_secs, rng)
            if point == "rename":
                rc = run.wait()
                reached = "rename" if rc == -9 else "exited"
            elif reached == "exited":
                rc = run.wait()
            else:
                rc = stop(run, mode, rng)
            text = run.text()
            if rc == 0:
                last_secs = time.monotonic() - run.start
            history.append((mode, point, reached, rc))
            log(f"{hub} round {n}: {mode} at {point} -> {reached}, exit {rc}; {verdict_line(text)[:120]}")
            # a signal while Python still imports Scrapy ends it with a KeyboardInterrupt traceback
            early = text.rstrip().endswith("KeyboardInterrupt") and "Scrapy" not in text.split("Traceback")[0]
            if "Traceback" in text and not early:
                round_problems.append(f"round {n} ({mode}@{reached}): Traceback in log")
            if rc == "hung":
                round_problems.append(f"round {n} ({mode}@{reached}): crawl hung after the signal")
            if mode in ("term", "int2") and reached not in ("exited",) and rc == 0:
                # a signal after the crawl had finished its work may still end 0; check the log says finished
                if "finish_reason': 'finished'" not in text and "(finished)" not in text:
                    round_problems.append(f"round {n} ({mode}@{reached}): exit 0 without finishing")
            # git processes of a killed crawl must go (half the time the next run starts at once)
            if rng.random() < 0.5:
                t_end = time.monotonic() + 20
                left = proc_cmdlines_with(str(data)) + git_under(str(data))
                while left and time.monotonic() < t_end:
                    time.sleep(0.2)
                    left = proc_cmdlines_with(str(data)) + git_under(str(data))
                if left:
                    round_problems.append(f"round {n} ({mode}@{reached}): processes left running: {left[:3]}")
            # hub.jsonl stays whole and unique at every point
            recs = data / hub / f"{hub}.jsonl"
            if recs.exists():
                pr: list = []
                rs = whole_lines(recs, pr, f"round {n}")
                ids = [r["id"] for r in rs]
                if len(ids) != len(set(ids)):
                    pr.append(f"round {n} ({mode}@{reached}): duplicate ids in {hub}.jsonl")
                round_problems += pr
            if rc == 0:
                have = {r["id"] for r in whole_lines(recs, [], "x")} if recs.exists() else set()
                if have != set(ref):
                    round_problems.append(f"round {n} ({mode}@{reached}): exit 0 with {len(have)} of {len(ref)} "
                                          f"models in {hub}.jsonl (missing {sorted(set(ref) - have)[:5]})")
            if rc == 0:  # job finished: the next rounds start a new job (a re-crawl) into the same data dir
                job_n += 1
                jobdir = work / f"job{job_n}"
                if updates:
                    mutate()
        cmd = crawl_command(hub, work / "final.jsonl", data, work / "final.stats.json", args=spider_args,
                            settings={**settings, "JOBDIR": str(jobdir)})
        final = Run(cmd, work / "final.log", env)
        frc = final.wait()
        ftext = final.text()
        if frc == 0 and "nothing to do" in ftext.lower():
            pass
        log(f"{hub} final: exit {frc}; {verdict_line(ftext)[:150]}")
        problems = round_problems + check(hub, data, jobdir, ref, ref_data, frc, ftext, validator, root_before,
                                          changed, lfs)
        # a further uninterrupted re-crawl without a JOBDIR: everything unchanged?
        results.append({"hub": hub, "rounds": history, "final_rc": frc, "problems": problems,
                        "work": str(work)})
        for p in problems:
            log(f"  PROBLEM {hub}: {p}")
        if not problems:
            log(f"  {hub}: all invariants hold")


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("hubs", nargs="*")
    ap.add_argument("--rounds", type=int, default=4)
    ap.add_argument("--passes", type=int, default=1)
    ap.add_argument("--seed", type=int, default=None)
    ap.add_argument("--out", default=None)
    ap.add_argument("--updates", action="store_true", help="huggingface: push commits between jobs")
    ap.add_argument("--big", type=int, default=0, help="huggingface: this many synthetic models")
    ap.add_argument("-a", dest="spider_args", action="append", default=[], help="name=value, every crawl")
    ap.add_argument("-s", dest="settings", action="append", default=[], help="NAME=VALUE, every crawl")
    ap.add_argument("--modes", default=None, help="comma-separated subset of " + ",".join(MODES))
    ap.add_argument("--lfs", action="store_true", help="PTM_CLONE_LFS=1")
    args = ap.parse_args()
    seed = args.seed if args.seed is not None else random.randrange(1 << 30)
    rng = random.Random(seed)
    if args.modes:
        MODES[:] = args.modes.split(",")
    log(f"seed {seed}")
    starters = available()
    hubs = args.hubs or list(starters)
    validator = jsonschema.Draft202012Validator(load_schema(), format_checker=jsonschema.FormatChecker())
    out = Path(args.out or tempfile.mkdtemp(prefix="ptm-soak-"))
    results = []
    for p in range(args.passes):
        for hub in hubs:
            try:
                soak_hub(hub, starters[hub], out / f"p{p}-{hub}", args.rounds, rng, validator, results,
                         updates=args.updates, lfs=args.lfs, big=args.big,
                         spider_args=dict(a.split("=", 1) for a in args.spider_args),
                         extra_settings=dict(a.split("=", 1) for a in args.settings))
            except Exception:  # noqa: BLE001
                log(f"{hub}: soak error\n{traceback.format_exc()}")
                results.append({"hub": hub, "problems": ["soak error: " + traceback.format_exc()[-500:]]})
    (out / "results.json").write_text(json.dumps(results, indent=1, default=str))
    log(f"results in {out / 'results.json'}")
    bad = [r for r in results if r["problems"]]
    log(f"{len(results)} hub soaks, {len(bad)} with problems")


if __name__ == "__main__":
    main()
