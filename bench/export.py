"""Benchmark of ``scrapy export`` / ``scrapy report`` on a synthetic dataset tree.

    python -m bench.export --models 100000            # ~1 min; figures appended to bench/RESULTS.md
    python -m bench.export --models 1000000 --keep    # keep the tree and outputs under --work
    python -m bench.export --models 100000 --history 10   # plus history files (commits, files, ...)

The tree is one Hugging Face hub of N models: ``huggingface.jsonl`` and one snapshot, both real
mapper output (1,000 synthetic Hub payloads through ``ptmscrape.mappers.huggingface``, repeated with
new ids, names, owners, downloads and base models). Then, as after a second crawl, a second
snapshot (downloads changed) and a rewritten ``huggingface.jsonl``. Each step is a real
``scrapy export`` / ``scrapy report`` process; peak RSS is that process's maximum (``wait4``).
With ``--history K`` each crawl also appends ``-a history=all`` files: K commits and K files a
model (every model moved: a new revision), its refs, one discussion and two events.
Never run by the tests.
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import os
import platform
import random
import re
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from ptmscrape.dataset.jsonl import compact_json
from ptmscrape.items import RawModelItem
from ptmscrape.mappers.huggingface import map_raw
from tests.replicas.huggingface import synthetic_models

ROOT = Path(__file__).resolve().parent.parent
RESULTS = ROOT / "bench" / "RESULTS.md"
BEGIN, END = "<!-- bench:export:begin -->", "<!-- bench:export:end -->"


def templates(n: int = 1000) -> list[dict]:
    out = []
    for model in synthetic_models(n, seed=3):
        raw = RawModelItem("huggingface", model["id"], "https://huggingface.co/api/models", model,
                           {"base_url": "https://huggingface.co"})
        out.append(map_raw(raw))
    return out


def write_records(path: Path, n: int, crawled_at: str, seed: int, tpl: list[dict]) -> None:
    rng = random.Random(seed)
    owners = max(1, n // 20)
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path, "w", encoding="utf-8") as f:
        for i in range(n):
            r = dict(tpl[i % len(tpl)])
            owner, name = f"org{i % owners}", f"model-{i:07d}"
            base = f"org{(i // 2) % owners}/model-{i // 2:07d}" if i % 5 == 0 and i else None
            r.update(id=i + 1, ModelOwner=owner, ModelName=name,
                     ModelURL=f"https://huggingface.co/{owner}/{name}",
                     ModelOwnerURL=f"https://huggingface.co/{owner}",
                     Downloads=int(rng.paretovariate(1.1) * 10), CrawledAt=crawled_at,
                     BaseModels=[base] if base else [], RepoURL=f"https://huggingface.co/{owner}/{name}",
                     ModelHub={**r["ModelHub"],
                               "MetadataFilePath": f"huggingface/json/metadata/{owner}/{name}.json",
                               "MetadataObjectID": f"{i:024x}"})
            f.write(compact_json(r) + "\n")


def write_history(hub: Path, n: int, k: int, crawled_at: str, seed: int) -> None:
    """History files as ``-a history=all`` appends them, for models 1..n: ``k`` commits and ``k``
    files a model (a new revision each call: ``seed``), its refs, one discussion with two events."""
    folder = hub / "history"
    folder.mkdir(parents=True, exist_ok=True)
    names = ("commits", "files", "refs", "discussions", "discussion_events", "state")
    files = {name: open(folder / f"{name}.jsonl", "a", encoding="utf-8") for name in names}
    try:
        for i in range(n):
            head = {"model": i + 1, "model_id": f"org{i % max(1, n // 20)}/model-{i:07d}", "crawled_at": crawled_at}
            revision = f"{seed:08x}{i:032x}"
            for c in range(k):
                files["commits"].write(compact_json({**head, "raw": {
                    "id": f"{seed:08x}{i:024x}{c:08x}", "title": f"Update {c}", "message": "",
                    "authors": [{"user": f"dev{c % 7}"}], "date": crawled_at}}) + "\n")
                files["files"].write(compact_json({**head, "revision": revision, "raw": {
                    "type": "file", "oid": f"{c:040x}", "size": 1000 * c, "path": f"dir/file-{c}.bin",
                    "lfs": {"oid": f"{c:064x}", "size": 1000 * c, "pointerSize": 133},
                    "lastCommit": {"id": revision, "date": crawled_at}}}) + "\n")
            files["refs"].write(compact_json({**head, "raw": {"branches": [
                {"name": "main", "ref": "refs/heads/main", "targetCommit": revision}],
                "tags": [], "converts": []}}) + "\n")
            files["discussions"].write(compact_json({**head, "num": 1, "raw": {
                "num": 1, "title": "Question", "status": "open" if seed == 1 else "closed", "isPullRequest": False,
                "author": {"name": "user"}, "createdAt": crawled_at, "numComments": 2}}) + "\n")
            for e in range(2):
                files["discussion_events"].write(compact_json({**head, "num": 1, "raw": {
                    "id": f"{i:016x}{e:08x}", "type": "comment", "author": {"name": "user"},
                    "createdAt": crawled_at, "data": {"latest": {"raw": "text"}, "hidden": False}}}) + "\n")
            files["state"].write(compact_json({**head, "kind": "files", "revision": revision}) + "\n")
    finally:
        for f in files.values():
            f.close()


def measure(name: str, cmd: list[str], log: Path) -> dict:
    started = time.perf_counter()
    with open(log, "a") as out:
        proc = subprocess.Popen(cmd, cwd=ROOT, stdout=out, stderr=out)
        _, status, usage = os.wait4(proc.pid, 0)
    code = os.waitstatus_to_exitcode(status)
    if code:
        sys.exit(f"{name} failed ({code}); see {log}")
    return {"step": name, "wall_s": time.perf_counter() - started,
            "cpu_s": usage.ru_utime + usage.ru_stime, "peak_rss_mb": usage.ru_maxrss / 1024}


def scrapy(*args: str) -> list[str]:
    return [sys.executable, "-m", "scrapy.cmdline", *args]


def run(n: int, work: Path, history: int = 0) -> tuple[list[dict], dict]:
    data = work / "data"
    hub = data / "huggingface"
    tpl = templates()
    t0 = time.perf_counter()
    write_records(hub / "huggingface.jsonl", n, "2025-06-01T00:00:00Z", 1, tpl)
    (hub / "snapshots").mkdir(parents=True, exist_ok=True)
    shutil.copy(hub / "huggingface.jsonl", hub / "snapshots" / "huggingface-20250601T000000Z-1.jsonl")
    if history:
        write_history(hub, n, history, "2025-06-01T00:00:00Z", 1)
    built = time.perf_counter() - t0
    db, log = work / "dataset.sqlite", work / "export.log"
    setting = ["-s", f"PTM_DATA_DIR={data}"]
    steps = [measure("first export (1 crawl)", scrapy("export", *setting, "-o", str(db)), log)]
    write_records(hub / "snapshots" / "huggingface-20250701T000000Z-1.jsonl", n, "2025-07-01T00:00:00Z", 2, tpl)
    shutil.copy(hub / "snapshots" / "huggingface-20250701T000000Z-1.jsonl", hub / "huggingface.jsonl")
    if history:  # every model moved: new commits, a new file list, its discussion changed
        write_history(hub, n, history, "2025-07-01T00:00:00Z", 2)
    steps.append(measure("after a 2nd crawl (incremental)", scrapy("export", *setting, "-o", str(db)), log))
    steps.append(measure("again (no-op)", scrapy("export", *setting, "-o", str(db)), log))
    steps.append(measure("Parquet from the database", scrapy(
        "export", *setting, "--format", "parquet", "--sqlite", str(db), "-o", str(work / "parquet")), log))
    steps.append(measure("report from the database", scrapy(
        "report", *setting, "--sqlite", str(db), "-o", str(work / "report.html")), log))
    sizes = {"jsonl_mb": (hub / "huggingface.jsonl").stat().st_size / 2**20,
             "sqlite_mb": db.stat().st_size / 2**20,
             "parquet_mb": sum(p.stat().st_size for p in (work / "parquet").glob("*.parquet")) / 2**20,
             "build_s": built}
    return steps, sizes


def title(n: int, history: int) -> str:
    return f"{n:,} models" + (f" with history ({history} commits and {history} files a model a crawl)"
                              if history else "")


def markdown(n: int, steps: list[dict], sizes: dict, history: int = 0) -> str:
    cpu = platform.processor() or platform.machine()
    option = f" --history {history}" if history else ""
    lines = [f"### {title(n, history)} ({dt.datetime.now(dt.UTC):%Y-%m-%d %H:%M} UTC, `python -m bench.export "
             f"--models {n}{option}`)", "",
             f"{os.cpu_count()} cores ({cpu}), load average {os.getloadavg()[0]:.1f} at the end. "
             f"`huggingface.jsonl` {sizes['jsonl_mb']:,.0f} MB; database {sizes['sqlite_mb']:,.0f} MB "
             f"(2 crawls); Parquet {sizes['parquet_mb']:,.0f} MB.", "",
             "| step | wall s | CPU s | models/s | peak RSS MB |", "|---|---|---|---|---|"]
    for s in steps:
        rate = f"{n / s['wall_s']:,.0f}" if "export" in s["step"] or "crawl" in s["step"] else "—"
        lines.append(f"| {s['step']} | {s['wall_s']:.1f} | {s['cpu_s']:.1f} | {rate} | {s['peak_rss_mb']:.0f} |")
    return "\n".join(lines) + "\n"


def record(section: str, n: int, history: int = 0) -> None:
    text = RESULTS.read_text()
    if BEGIN not in text:
        text += (f"\n## Export (`scrapy export`, `scrapy report`)\n\n{BEGIN}\n{END}\n")
    head, rest = text.split(BEGIN, 1)
    body, tail = rest.split(END, 1)
    blocks = [b for b in re.split(r"(?=^### )", body.strip("\n"), flags=re.M) if b.strip()]
    blocks = [b for b in blocks if not b.startswith(f"### {title(n, history)} (")] + [section]
    blocks.sort(key=lambda b: (int(re.match(r"### ([\d,]+)", b).group(1).replace(",", "")), " with history" in b))
    RESULTS.write_text(f"{head}{BEGIN}\n" + "\n".join(b.rstrip("\n") + "\n" for b in blocks) + f"{END}{tail}")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--models", type=int, default=100_000)
    parser.add_argument("--work", type=Path, help="folder for the tree and outputs (default: a temp dir)")
    parser.add_argument("--keep", action="store_true", help="keep --work afterwards")
    parser.add_argument("--no-record", action="store_true", help="do not write bench/RESULTS.md")
    parser.add_argument("--history", type=int, default=0, metavar="K",
                        help="also history files: K commits and K files a model a crawl (default: none)")
    args = parser.parse_args(argv)
    work = args.work or Path(tempfile.mkdtemp(prefix="ptm-bench-export-"))
    work.mkdir(parents=True, exist_ok=True)
    try:
        steps, sizes = run(args.models, work, args.history)
    finally:
        if not args.keep:
            shutil.rmtree(work, ignore_errors=True)
    section = markdown(args.models, steps, sizes, args.history)
    print(section)
    print(json.dumps({"steps": steps, "sizes": sizes}))
    if not args.no_record:
        record(section, args.models, args.history)
    return 0


if __name__ == "__main__":
    sys.exit(main())
