"""Offline demo: start the bundled hub replicas on 127.0.0.1 and crawl them for real.

    python -m tests.replicas.demo                   # every hub that has a replica
    python -m tests.replicas.demo huggingface       # just one
    python -m tests.replicas.demo --out demo-data   # where the dataset tree goes

Each crawl is the ordinary ``scrapy crawl <hub> -O <out>/<hub>.jsonl``, with the hub's base URL
pointed at its replica (and, for GitHub-hosted repositories, git's ``url.<base>.insteadOf``).
"""

from __future__ import annotations

import argparse
import contextlib
import importlib
import json
import os
import subprocess
import sys
import tempfile
from pathlib import Path

from tests.crawl import ROOT, crawl_command

# spider name -> replica module under tests.replicas
REPLICAS = {
    "huggingface": "huggingface",
    "modelhub": "modelhub",
    "modelzoo": "modelzoo",
    "onnxmodelzoo": "onnx",
    "pytorchhub": "pytorchhub",
    "tfhub": "tfhub",
    "openvino": "openvino",
}


def available() -> dict[str, object]:
    found = {}
    for spider, module in REPLICAS.items():
        try:
            replica = importlib.import_module(f"tests.replicas.{module}")
        except ModuleNotFoundError:
            continue
        if hasattr(replica, "start_demo_replica"):
            found[spider] = replica.start_demo_replica
    return found


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("hubs", nargs="*", help="spider names (default: all with a replica)")
    parser.add_argument("--out", default="demo-data", help="output folder (default: demo-data)")
    args = parser.parse_args(argv)
    starters = available()
    hubs = args.hubs or list(starters)
    unknown = [h for h in hubs if h not in starters]
    if unknown:
        parser.error(f"no replica for {', '.join(unknown)}; available: {', '.join(starters)}")
    out = Path(args.out).resolve()
    out.mkdir(parents=True, exist_ok=True)
    failures = 0
    with tempfile.TemporaryDirectory(prefix="ptm-demo-") as scratch:
        for hub in hubs:
            with contextlib.ExitStack() as stack:
                replica, settings, env = starters[hub](Path(scratch) / hub)
                stack.enter_context(replica)
                settings = {**settings, "PTM_GIT_ALLOW_PROTOCOL": "https:http"}
                cmd = crawl_command(hub, out / f"{hub}.jsonl", out / "data", out / f"{hub}.stats.json",
                                    settings=settings)
                print(f"==> scrapy {' '.join(cmd[3:6])} …  (replica at {replica.url})", flush=True)
                proc = subprocess.run(cmd, cwd=ROOT, env={**os.environ, **env})
                failures += proc.returncode != 0
                stats = json.loads((out / f"{hub}.stats.json").read_text())
                print(f"    {stats.get('item_scraped_count', 0)} records, "
                      f"{stats.get('ptm/clone/cloned', 0)} cloned, "
                      f"{stats.get('ptm/clone/failed', 0)} clone failures -> {out / (hub + '.jsonl')}")
    print(f"Dataset tree: {out / 'data'}")
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
