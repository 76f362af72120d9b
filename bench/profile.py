"""Profile a metadata crawl with py-spy and summarise where the time goes.

    python -m bench.profile --models 100000           # writes bench/profiles/crawl-100000.txt
    python -m bench.profile --models 10000 --svg      # and a flame graph beside it

py-spy (``pip install -r bench/requirements.txt``) samples the crawl process from outside (wall
clock, so time spent in system calls counts); the summary lists, for the stages and the functions
that matter, the share of samples whose stack contains them (inclusive) and the top self times.
"""

from __future__ import annotations

import argparse
import collections
import re
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

from bench.replica import DEFAULT_CACHE
from bench.run import replica
from tests.crawl import ROOT, crawl_command

PROFILES = ROOT / "bench" / "profiles"
# Where a crawl can spend its time, in pipeline order; matched against frame names.
WATCH = [
    ("listing: page JSON decode", ("HubSpider.json_page", "HubSpider.json_array_page")),
    ("spider middlewares (per item)", "SpiderMiddlewareManager._evaluate_iterable"),
    ("item pipeline, all stages", "ItemPipelineManager.process_item_async"),
    ("  map", "MapPipeline.process_item"),
    ("  validate", "ValidatePipeline.process_item"),
    ("  dedupe", "DedupePipeline.process_item"),
    ("  clone (off)", "ClonePipeline.process_item"),
    ("  store", "StorePipeline.process_item"),
    ("    payload line", ("PayloadWriter.write", "payload_line")),
    ("    snapshot line", "SnapshotWriter.write"),
    ("item_scraped signal handlers", "_send_catch_log_asyncio"),
    ("  feed export (-O)", "FeedExporter.item_scraped"),
    ("merge into <hub>.jsonl (close)", "_merge_locked"),
    ("start-up imports", "_find_and_load"),
]


def summarise(raw: Path, top: int = 25) -> str:
    inclusive: collections.Counter[str] = collections.Counter()
    own: collections.Counter[str] = collections.Counter()
    total = 0
    for line in raw.read_text().splitlines():
        stack, _, count = line.rpartition(" ")
        n = int(count)
        total += n
        frames = [_name(f) for f in stack.split(";")]
        for name in set(frames):
            inclusive[name] += n
        own[frames[-1]] += n
    out = [f"{total} samples", "", "Stages (share of samples whose stack contains them):"]
    for label, needle in WATCH:
        needles = (needle,) if isinstance(needle, str) else needle
        hits = sum(c for name, c in inclusive.items() if name.startswith(tuple(n + " " for n in needles)))
        out.append(f"  {hits / total:6.1%}  {label}")
    out += ["", f"Top {top} self time (function at the top of the stack):"]
    out += [f"  {c / total:6.1%}  {name}" for name, c in own.most_common(top)]
    return "\n".join(out) + "\n"


def _name(frame: str) -> str:
    m = re.match(r"(.*) \((.*?):\d+\)$", frame)
    if not m:
        return frame
    path = m.group(2).split("site-packages/")[-1].replace(str(ROOT) + "/", "")
    return f"{m.group(1)} ({path})"


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--models", type=int, default=100_000)
    ap.add_argument("--rate", type=int, default=100, help="samples per second")
    ap.add_argument("--svg", action="store_true", help="also write a flame graph")
    ap.add_argument("--cache", type=Path, default=DEFAULT_CACHE)
    args = ap.parse_args(argv)
    py_spy = shutil.which("py-spy") or str(Path(sys.executable).with_name("py-spy"))
    PROFILES.mkdir(exist_ok=True)
    work = Path(tempfile.mkdtemp(prefix="ptmscrape-profile-"))
    try:
        with replica("--models", str(args.models), "--cache", str(args.cache)) as hub:
            crawl = crawl_command("huggingface", work / "out.jsonl", work / "data", work / "stats.json",
                                  settings={"PTM_HUGGINGFACE_URL": hub["url"], "PTM_CLONE": 0})
            raw = work / "stacks.txt"
            for fmt, target in [("raw", raw)] + ([("flamegraph", PROFILES / f"crawl-{args.models}.svg")]
                                                 if args.svg else []):
                subprocess.run([py_spy, "record", "-r", str(args.rate), "-f", fmt, "-o", str(target),
                                "--", *crawl], cwd=ROOT, check=True, capture_output=True)
                shutil.rmtree(work / "data", ignore_errors=True)
        text = f"# py-spy profile of a metadata crawl of {args.models:,} models\n\n" + summarise(raw)
        (PROFILES / f"crawl-{args.models}.txt").write_text(text)
        print(text)
    finally:
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
