"""Run the benchmarks and write the figures into ``bench/RESULTS.md``.

    python -m bench.run --quick     # a few minutes: 10k models, 100 repositories
    python -m bench.run --full      # 10k / 100k / 1M models (1M: crawl only), 200 repositories

Every measured program runs in its own process against a replica in another process
(``bench.replica``), both on 127.0.0.1; peak memory is the measured process's own maximum RSS
(``wait4``), CPU time is user + system of that process. The machine's load average is recorded
next to each figure: other work on the machine makes wall-clock figures noisy, CPU time less so.
"""

from __future__ import annotations

import argparse
import contextlib
import datetime as dt
import json
import os
import platform
import shutil
import subprocess
import sys
import tempfile
import time
from dataclasses import asdict, dataclass
from pathlib import Path

from bench.replica import DEFAULT_CACHE
from ptmscrape import settings as project_settings
from tests.crawl import ROOT, crawl_command

RESULTS = ROOT / "bench" / "RESULTS.md"
# The figures behind RESULTS.md, per plan; a run that skips a part keeps that part's last figures.
RAW_RESULTS = ROOT / "bench" / "results-{plan}.json"
# Paced runs list 20,000 models, the setup issue 16 measured and set its target with: 20 pages of
# 0.5 s. The last page's models are processed after the hub has served it (~0.2 s for 1,000), a
# fixed tail that is 4% of a 10-page hub time and 0.01% of the real Hub's ~2,200 pages.
PLANS = {
    "quick": {"listing": [10_000], "baseline_max": 10_000, "recrawl_models": 10_000, "floor_models": 10_000,
              "paced_models": 20_000,
              "repos": 100, "clone_levels": sorted({4, project_settings.PTM_CLONE_CONCURRENCY})},
    "full": {"listing": [10_000, 100_000, 1_000_000], "baseline_max": 100_000, "recrawl_models": 100_000,
             "floor_models": 100_000, "paced_models": 20_000,
             "repos": 200, "clone_levels": sorted({1, 4, 8, 16, 32, project_settings.PTM_CLONE_CONCURRENCY})},
}
LATENCY_MS = 50
# Paced mode: the replica serves each listing page in this time (cursor paging: one page in
# flight), as the real Hub does in roughly 0.3-1 s for 1,000 models with expand[] fields.
PACE_MS = 500
RECRAWL_RUNS = 3


@dataclass
class Run:
    """One measured process."""
    wall: float
    cpu: float  # user + system
    sys: float  # system (kernel) part: file creation, sockets, processes
    max_rss_mb: float
    returncode: int
    load_before: float
    load_after: float


def measure(cmd: list[str], log: Path, env: dict | None = None, stdout=None) -> Run:
    load_before = os.getloadavg()[0]
    started = time.perf_counter()
    with open(log, "w") as err:
        proc = subprocess.Popen(cmd, cwd=ROOT, env={**os.environ, **(env or {})},
                                stdout=stdout or err, stderr=err)
        _, status, usage = os.wait4(proc.pid, 0)
        proc.returncode = os.waitstatus_to_exitcode(status)
    wall = time.perf_counter() - started
    return Run(wall, usage.ru_utime + usage.ru_stime, usage.ru_stime, usage.ru_maxrss / 1024, proc.returncode,
               load_before, os.getloadavg()[0])


@contextlib.contextmanager
def replica(*args: str):
    proc = subprocess.Popen([sys.executable, "-m", "bench.replica", *args], cwd=ROOT,
                            stdout=subprocess.PIPE, text=True)
    try:
        line = proc.stdout.readline()
        if not line:
            raise RuntimeError(f"replica {args} did not start")
        yield json.loads(line)
    finally:
        proc.terminate()
        proc.wait(30)


def crawl(url: str, work: Path, settings: dict, env: dict | None = None, name: str = "crawl",
          feed: bool = True, stores: bool = True) -> dict:
    out, stats_file = work / f"{name}.jsonl", work / f"{name}.stats.json"
    settings = {"PTM_HUGGINGFACE_URL": url, "LOG_LEVEL": "INFO", **settings}
    cmd = crawl_command("huggingface", out, work / "data", stats_file, settings=settings)
    if not feed:
        at = cmd.index("-O")
        del cmd[at:at + 2]
    run = measure(cmd, work / f"{name}.log", env)
    stats = json.loads(stats_file.read_text()) if stats_file.exists() else {}
    # A crawl without pipelines stores nothing: its exit status is 1 by design (README "Exit status"),
    # and only for that reason; any other failure of it is a failed run.
    nothing_stored = (not stores and run.returncode == 1
                      and stats.get("ptm/verdict/reason") == "nothing was stored")
    if (run.returncode != 0 and not nothing_stored) or not stats:
        raise RuntimeError(f"crawl failed (exit {run.returncode}); see {work / f'{name}.log'}")
    return {**asdict(run), "items": stats.get("item_scraped_count", 0),
            "verdict": stats.get("ptm/verdict/reason"),
            "engine_seconds": stats.get("elapsed_time_seconds"),
            "clone": {k.split("/")[-1]: v for k, v in stats.items()
                      if k.startswith("ptm/clone/") and isinstance(v, int) and k.count("/") == 2}}


def baseline(url: str, work: Path) -> dict:
    phases = work / "baseline.json"
    with open(phases, "w") as out:
        run = measure([sys.executable, "-m", "bench.baseline", url, str(work / "baseline.jsonl")],
                      work / "baseline.log", stdout=out)
    if run.returncode != 0:
        raise RuntimeError(f"baseline failed; see {work / 'baseline.log'}")
    return {**asdict(run), **json.loads(phases.read_text())}


def replica_rate(url: str) -> dict:
    out = subprocess.run([sys.executable, "-m", "bench.baseline", url, "--fetch-only"], cwd=ROOT,
                         capture_output=True, text=True, check=True)
    info = json.loads(out.stdout)
    return {**info, "models_per_s": info["models"] / info["fetch_seconds"]}


def disk_usage(root: Path) -> dict:
    """Files (and folders) a crawl left in its data dir, and the bytes they take on disk."""
    files = folders = blocks = 0
    for folder, dirs, names in os.walk(root):
        folders += len(dirs)
        for name in names:
            st = os.lstat(os.path.join(folder, name))
            files += 1
            blocks += st.st_blocks
    return {"files": files, "folders": folders, "bytes": blocks * 512}


def startup(url: str, work: Path) -> dict:
    """A crawl that lists nothing (``-a limit=0``): Scrapy's and the project's start-up alone."""
    cmd = crawl_command("huggingface", work / "startup.jsonl", work / "startup-data", work / "startup.stats.json",
                        args={"limit": 0}, settings={"PTM_HUGGINGFACE_URL": url, "PTM_CLONE": 0})
    return asdict(measure(cmd, work / "startup.log"))


# -- the benchmarks ---------------------------------------------------------------------------

def bench_listing(n: int, plan: dict, work: Path, cache: Path) -> dict:
    result: dict = {"models": n}
    with replica("--models", str(n), "--cache", str(cache)) as hub:
        result["replica"] = replica_rate(hub["url"])
        run_dir = work / f"listing-{n}"
        run_dir.mkdir()
        result["crawl"] = crawl(hub["url"], run_dir, {"PTM_CLONE": 0})
        result["crawl"]["disk"] = disk_usage(run_dir / "data")
        result["pages"] = -(-n // 1000)
        result["startup"] = startup(hub["url"], run_dir)
        if n == plan["recrawl_models"]:
            result["recrawl"] = crawl(hub["url"], run_dir, {"PTM_CLONE": 0}, name="recrawl")
            result["recrawl"]["disk"] = disk_usage(run_dir / "data")
        shutil.rmtree(run_dir / "data", ignore_errors=True)
        if n == plan["floor_models"]:
            # Scrapy alone: the same listing, items passed to no pipeline and no feed.
            result["floor"] = crawl(hub["url"], run_dir, {"ITEM_PIPELINES": "{}"}, name="floor", feed=False,
                                    stores=False)
        if n <= plan["baseline_max"]:
            result["baseline"] = baseline(hub["url"], run_dir)
    return result


def bench_paced(n: int, pace_ms: int, work: Path, cache: Path) -> dict:
    """The crawl and the plain baseline against a replica that serves each page in ``pace_ms``."""
    pages = -(-n // 1000)
    result: dict = {"models": n, "pace_ms": pace_ms, "pages": pages, "hub_seconds": pages * pace_ms / 1000}
    with replica("--models", str(n), "--cache", str(cache), "--latency-ms", str(pace_ms)) as hub:
        run_dir = work / f"paced-{n}"
        run_dir.mkdir()
        result["startup"] = startup(hub["url"], run_dir)
        result["crawl"] = crawl(hub["url"], run_dir, {"PTM_CLONE": 0})
        result["crawl"]["disk"] = disk_usage(run_dir / "data")
        shutil.rmtree(run_dir / "data", ignore_errors=True)
        result["baseline"] = baseline(hub["url"], run_dir)
    return result


def bench_clones(m: int, levels: list[int], work: Path) -> dict:
    result: dict = {"repos": m, "latency_ms": LATENCY_MS}
    repos_root = work / "git"
    with replica("--models", str(m), "--repos", str(repos_root), "--latency-ms", str(LATENCY_MS)) as hub:
        url = hub["url"]
        env = _git_env()
        ids = [model["id"] for page in _pages(url) for model in page]
        loop_dir = work / "loop"
        loop_dir.mkdir()
        script = "\n".join(f"git clone -q --no-recurse-submodules -- {url}/{i} {loop_dir}/{n}"
                           for n, i in enumerate(ids))
        result["sequential"] = asdict(measure(["bash", "-ec", script], work / "loop.log", env))
        shutil.rmtree(loop_dir)
        result["crawls"] = {}
        for level in levels:
            run_dir = work / f"clone-{level}"
            run_dir.mkdir()
            result["crawls"][level] = crawl(url, run_dir, {"PTM_CLONE": 1, "PTM_CLONE_CONCURRENCY": level}, env)
        default_dir = work / f"clone-{project_settings.PTM_CLONE_CONCURRENCY}"
        # A re-crawl lasts about a second: the median of RECRAWL_RUNS runs, each followed by a
        # metadata-only crawl of the same hub (fresh data dir), so the two are compared back to back.
        recrawls, metas = [], []
        for n in range(RECRAWL_RUNS):
            recrawls.append(crawl(url, default_dir, {"PTM_CLONE": 1}, env, name=f"recrawl-{n}"))
            meta_dir = work / f"clone-metadata-only-{n}"
            meta_dir.mkdir()
            metas.append(crawl(url, meta_dir, {"PTM_CLONE": 0}, env))
        result["recrawl"] = _median_run(recrawls)
        result["metadata_only"] = _median_run(metas)
    return result


def _median_run(runs: list[dict]) -> dict:
    ordered = sorted(runs, key=lambda r: r["wall"])
    return {**ordered[len(ordered) // 2], "walls": [round(r["wall"], 3) for r in runs]}


def _git_env() -> dict:
    # Same conditions for the loop and the clone stage: no LFS smudge (PTM_CLONE_LFS=0), no prompts.
    return {"GIT_LFS_SKIP_SMUDGE": "1", "GIT_TERMINAL_PROMPT": "0"}


def _pages(url: str):
    from bench.baseline import pages
    return pages(url)


# -- report -----------------------------------------------------------------------------------

def machine() -> dict:
    cpu = next((line.split(":", 1)[1].strip() for line in Path("/proc/cpuinfo").read_text().splitlines()
                if line.startswith("model name")), platform.processor())
    mem = next(int(line.split()[1]) for line in Path("/proc/meminfo").read_text().splitlines()
               if line.startswith("MemTotal"))
    import scrapy
    git = subprocess.run(["git", "--version"], capture_output=True, text=True).stdout.strip()
    return {"cpu": cpu, "cores": os.cpu_count(), "memory_gb": round(mem / 2**20, 1),
            "kernel": platform.release(), "python": platform.python_version(),
            # The build matters as much as the version: pyenv's default build (no PGO/LTO, shared
            # libpython) costs ~15% more CPU a model than Debian's python3 (RESULTS.md, seventh round).
            "python_path": os.path.realpath(sys.executable),
            "scrapy": scrapy.__version__, "git": git, "load_at_start": os.getloadavg()}


def render(plan_name: str, res: dict) -> str:
    m = res["machine"]
    lines = [f"Run `python -m bench.run --{plan_name}` at {res['started']} UTC, {res['seconds']:.0f} s in all.",
             "", f"Machine: {m['cpu']}, {m['cores']} cores, {m['memory_gb']} GB RAM, Linux {m['kernel']}, "
             f"Python {m['python']} ({m.get('python_path', 'path not recorded')}), Scrapy {m['scrapy']}, {m['git']}. "
             "Load average (1 min) at start: "
             f"{m['load_at_start'][0]:.2f}; each row gives it before → after its run.", "",
             "**Metadata** (`scrapy crawl huggingface -s PTM_CLONE=0 -O out.jsonl`, no injected latency):", "",
             "| models | crawl wall s | models/s | CPU s (kernel) | CPU µs/model | peak RSS MB | baseline s | "
             "crawl ÷ baseline time | baseline peak RSS MB | replica alone, models/s | load |",
             "|---|---|---|---|---|---|---|---|---|---|---|"]
    for row in res["listing"]:
        c, b = row["crawl"], row.get("baseline")
        mark = f" (run of {row['carried_from']})" if "carried_from" in row else ""
        base = (f"{b['wall']:.1f} | {c['wall'] / b['wall']:.1f}× | {b['max_rss_mb']:.0f}" if b
                else "— | — | —")
        lines.append(f"| {row['models']:,}{mark} | {c['wall']:.1f} | {c['items'] / c['wall']:,.0f} | "
                     f"{c['cpu']:.1f} ({c['sys']:.1f}) | "
                     f"{c['cpu'] / max(1, c['items']) * 1e6:.0f} | {c['max_rss_mb']:.0f} | {base} | "
                     f"{row['replica']['models_per_s']:,.0f} | {c['load_before']:.1f} → {c['load_after']:.1f} |")
    for row in res["listing"]:
        c, up = row["crawl"], row.get("startup")
        if up and "disk" in c:
            beyond = (c["cpu"] - up["cpu"]) / max(1, c["items"]) * 1e6
            lines.append(f"\nAt {row['models']:,} ({row['pages']} pages): start-up alone (`-a limit=0`) "
                         f"{up['wall']:.2f} s wall, {up['cpu']:.2f} CPU s; **{beyond:.0f} CPU µs per model beyond "
                         f"start-up**; the data dir holds **{c['disk']['files']} files** in "
                         f"{c['disk']['folders']} folders, {c['disk']['bytes'] / max(1, c['items']):,.0f} bytes "
                         f"on disk per model ({c['disk']['bytes'] / 2**20:.1f} MB).")
        again = row.get("recrawl")
        if again and "disk" in again:
            lines.append(f"After the re-crawl of the unchanged hub: {again['disk']['files']} files, "
                         f"{again['disk']['bytes'] / 2**20:.1f} MB.")
    for row in res["listing"]:
        b = row.get("baseline")
        if b:
            lines.append(f"\nBaseline phases at {row['models']:,}: fetch {b['fetch_seconds']:.2f} s, "
                         f"map {b['map_seconds']:.2f} s, write {b['write_seconds']:.2f} s "
                         f"(process wall {b['wall']:.2f} s, incl. interpreter start).")
    for row in res["listing"]:
        if "floor" in row:
            f, c = row["floor"], row["crawl"]
            lines.append(f"\nScrapy alone at {row['models']:,} (same spider and listing; no item pipeline, no feed): "
                         f"{f['wall']:.1f} s, {f['items'] / f['wall']:,.0f} models/s, "
                         f"{f['cpu'] / max(1, f['items']) * 1e6:.0f} CPU µs/model — the ceiling for any crawl "
                         f"that hands each model to Scrapy as an item (the full crawl: "
                         f"{c['cpu'] / max(1, c['items']) * 1e6:.0f} CPU µs/model).")
    for row in res["listing"]:
        if "recrawl" in row:
            first, again = row["crawl"], row["recrawl"]
            lines.append(f"\nMetadata-only re-crawl of the unchanged hub at {row['models']:,} into the same data "
                         f"dir: {again['wall']:.1f} s vs {first['wall']:.1f} s = "
                         f"**{again['wall'] / first['wall']:.0%}** of the first crawl.")
    pc = res.get("paced")
    if pc:
        c, b, up = pc["crawl"], pc["baseline"], pc["startup"]
        hub = pc["hub_seconds"]
        mark = f" — run of {pc['carried_from']}" if "carried_from" in pc else ""
        lines += ["", f"**Paced**{mark} ({pc['models']:,} models, the replica serves each of its "
                  f"{pc['pages']} pages in "
                  f"{pc['pace_ms']} ms, so the hub's serving time is {hub:.1f} s; cursor paging: one page in flight):",
                  "", "| program | wall s | ÷ hub time | target (1.05 × hub + start-up) | CPU s | peak RSS MB | "
                  "files in data dir | load |", "|---|---|---|---|---|---|---|---|",
                  f"| crawl | {c['wall']:.2f} | {c['wall'] / hub:.2f}× | {1.05 * hub + up['wall']:.2f} s: "
                  f"**{'met' if c['wall'] <= 1.05 * hub + up['wall'] else 'missed'}** | {c['cpu']:.1f} | "
                  f"{c['max_rss_mb']:.0f} | {c['disk']['files']} | {c['load_before']:.1f} → {c['load_after']:.1f} |",
                  f"| plain `requests` baseline | {b['wall']:.1f} | {b['wall'] / hub:.2f}× | — | {b['cpu']:.1f} | "
                  f"{b['max_rss_mb']:.0f} | — | {b['load_before']:.1f} → {b['load_after']:.1f} |",
                  f"| start-up alone (`-a limit=0`) | {up['wall']:.2f} | — | — | {up['cpu']:.2f} | "
                  f"{up['max_rss_mb']:.0f} | — | {up['load_before']:.1f} → {up['load_after']:.1f} |"]
    cl = res.get("clones")
    if cl:
        seq = cl["sequential"]["wall"]
        mark = f" — run of {cl['carried_from']}" if "carried_from" in cl else ""
        lines += ["", f"**Clones**{mark} ({cl['repos']} repositories over HTTP, {cl['latency_ms']} ms injected per "
                  f"request; sequential `git clone` loop: {seq:.1f} s, load "
                  f"{cl['sequential']['load_before']:.1f} → {cl['sequential']['load_after']:.1f}):", "",
                  "| PTM_CLONE_CONCURRENCY | crawl wall s | repos/s | speed-up vs loop | cloned | failed | "
                  "peak RSS MB | load |", "|---|---|---|---|---|---|---|---|"]
        for level, c in cl["crawls"].items():
            mark = " (default)" if int(level) == project_settings.PTM_CLONE_CONCURRENCY else ""
            lines.append(f"| {level}{mark} | {c['wall']:.1f} | {cl['repos'] / c['wall']:.1f} | "
                         f"**{seq / c['wall']:.1f}×** | {c['clone'].get('cloned', 0)} | "
                         f"{c['clone'].get('failed', 0)} | {c['max_rss_mb']:.0f} | "
                         f"{c['load_before']:.1f} → {c['load_after']:.1f} |")
        first = {int(k): v for k, v in cl["crawls"].items()}[project_settings.PTM_CLONE_CONCURRENCY]
        again, meta = cl["recrawl"], cl["metadata_only"]
        runs = (f" (median of {len(again['walls'])} runs: {', '.join(f'{w:.2f}' for w in again['walls'])} s; "
                f"metadata-only: {', '.join(f'{w:.2f}' for w in meta['walls'])} s, run after each)"
                if "walls" in again else "")
        lines += ["", f"Crawl wall times include Scrapy's start-up and the listing: a metadata-only crawl of the "
                  f"same hub takes {meta['wall']:.2f} s.", "",
                  f"Re-crawl of the unchanged hub (clones on, default concurrency) into the same data dir: "
                  f"{again['wall']:.2f} s vs {first['wall']:.1f} s = **{again['wall'] / first['wall']:.0%}** of "
                  f"the first crawl ({again['clone'].get('unchanged', 0)} clones unchanged){runs}. "
                  f"Less the metadata-only "
                  f"crawl, an unchanged repository costs {(again['wall'] - meta['wall']) / cl['repos'] * 1e3:.2f} ms "
                  f"and a clone {(first['wall'] - meta['wall']) / cl['repos'] * 1e3:.1f} ms: "
                  f"{(again['wall'] - meta['wall']) / (first['wall'] - meta['wall']):.1%}, the ratio a "
                  f"re-crawl tends to as the number of repositories grows."]
    return "\n".join(lines) + "\n"


def _carry_over(res: dict, raw: Path) -> None:
    """Fill in the parts this run skipped from the last run's figures, then save these."""
    if raw.exists():
        last = json.loads(raw.read_text())
        done = {row["models"] for row in res["listing"]}
        for row in last.get("listing", []):
            if row["models"] not in done:
                res["listing"].append({"carried_from": last["started"], **row})
        if "paced" not in res and "paced" in last:
            res["paced"] = {"carried_from": last["started"], **last["paced"]}
        if "clones" not in res and "clones" in last:
            res["clones"] = {"carried_from": last["started"], **last["clones"]}
        res["listing"].sort(key=lambda row: row["models"])
    saved = json.loads(json.dumps(res))  # level keys become strings in JSON; render() takes both
    raw.write_text(json.dumps(saved, indent=1) + "\n")


def write_report(plan_name: str, text: str, path: Path = RESULTS) -> None:
    begin, end = f"<!-- bench:{plan_name}:begin -->", f"<!-- bench:{plan_name}:end -->"
    current = path.read_text() if path.exists() else "# Benchmark results\n"
    block = f"{begin}\n{text}{end}"
    if begin in current and end in current:
        head, rest = current.split(begin, 1)
        current = head + block + rest.split(end, 1)[1]
    else:
        current = current.rstrip("\n") + f"\n\n## `--{plan_name}` run (generated)\n\n{block}\n"
    path.write_text(current)


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    mode = ap.add_mutually_exclusive_group(required=True)
    mode.add_argument("--quick", action="store_const", dest="plan", const="quick")
    mode.add_argument("--full", action="store_const", dest="plan", const="full")
    ap.add_argument("--cache", type=Path, default=DEFAULT_CACHE, help="replica page files (reused)")
    ap.add_argument("--report", type=Path, default=RESULTS)
    ap.add_argument("--keep", action="store_true", help="keep the work dir (logs, outputs)")
    ap.add_argument("--skip-clones", action="store_true")
    ap.add_argument("--skip-listing", action="store_true", help="clones only; keep the listing's last figures")
    ap.add_argument("--sizes", type=int, nargs="+", help="hub sizes to crawl instead of the plan's")
    args = ap.parse_args(argv)
    plan = dict(PLANS[args.plan])
    if args.sizes:
        plan["listing"] = args.sizes
    work = Path(tempfile.mkdtemp(prefix="ptmscrape-bench-"))
    started = time.perf_counter()
    res = {"plan": args.plan, "machine": machine(),
           "started": dt.datetime.now(dt.UTC).strftime("%Y-%m-%d %H:%M"), "listing": []}
    try:
        for n in ([] if args.skip_listing else plan["listing"]):
            print(f"listing: {n:,} models …", file=sys.stderr, flush=True)
            (work / str(n)).mkdir()
            res["listing"].append(bench_listing(n, plan, work / str(n), args.cache))
            print(json.dumps(res["listing"][-1]["crawl"]), file=sys.stderr, flush=True)
        if not args.skip_listing and plan.get("paced_models"):
            n = plan["paced_models"]
            print(f"paced: {n:,} models, {PACE_MS} ms a page …", file=sys.stderr, flush=True)
            (work / "paced").mkdir()
            res["paced"] = bench_paced(n, PACE_MS, work / "paced", args.cache)
            print(json.dumps(res["paced"]["crawl"]), file=sys.stderr, flush=True)
        if not args.skip_clones:
            print(f"clones: {plan['repos']} repositories …", file=sys.stderr, flush=True)
            (work / "clones").mkdir()
            res["clones"] = bench_clones(plan["repos"], plan["clone_levels"], work / "clones")
        res["seconds"] = time.perf_counter() - started
        _carry_over(res, RAW_RESULTS.with_name(RAW_RESULTS.name.format(plan=args.plan)))
        (work / "results.json").write_text(json.dumps(res, indent=1))
        text = render(args.plan, res)
        write_report(args.plan, text, args.report)
        print(text)
    finally:
        if args.keep:
            print(f"work dir kept: {work}", file=sys.stderr)
        else:
            shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
