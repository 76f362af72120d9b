"""Offline demo: start the bundled hub replicas on 127.0.0.1 and crawl them for real.

    python -m tests.replicas.demo                   # every hub that has a replica
    python -m tests.replicas.demo huggingface       # just one
    python -m tests.replicas.demo --out demo-data   # where the dataset tree goes

Each crawl is the ordinary ``scrapy crawl <hub> -O <out>/<hub>.jsonl``, with the hub's base URL
pointed at its replica (and, for GitHub-hosted repositories, git's ``url.<base>.insteadOf``).

Each replica listens on the port it had in the previous run into the same ``--out``
(``<out>/demo-ports.json``), so its URLs stay the same and a re-run updates the clones it made
(``updated``/``unchanged``) instead of cloning everything again beside them (a new port is a new
repository URL). Only if that port is taken does a replica get a new one, which the demo says.
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
from urllib.parse import urlsplit

from tests.crawl import ROOT, crawl_command

# spider name -> replica module under tests.replicas
REPLICAS = {
    "huggingface": "huggingface",
    "modelhub": "modelhub",
    "modelzoo": "modelzoo",
    "onnxmodelzoo": "onnx",
    "pytorchhub": "pytorchhub",
    "civitai": "civitai",
    "ollama": "ollama",
    "modelscope": "modelscope",
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
    ports_file = out / PORTS_FILE
    ports = _read_ports(ports_file)
    with tempfile.TemporaryDirectory(prefix="ptm-demo-") as scratch:
        for hub in hubs:
            with contextlib.ExitStack() as stack:
                replica, settings, env = _start(starters[hub], Path(scratch) / hub, ports.get(hub, 0), hub)
                stack.enter_context(replica)
                ports[hub] = urlsplit(replica.url).port  # the url may carry a path (…:PORT/mirror)
                _write_ports(ports_file, ports)
                settings = {**settings, "PTM_GIT_ALLOW_PROTOCOL": "https:http"}
                stats_file = out / f"{hub}.stats.json"
                stats_file.unlink(missing_ok=True)  # never report a previous run's figures
                cmd = crawl_command(hub, out / f"{hub}.jsonl", out / "data", stats_file, settings=settings)
                print(f"==> scrapy {' '.join(cmd[3:6])} …  (replica at {replica.url})", flush=True)
                proc = subprocess.run(cmd, cwd=ROOT, env={**os.environ, **env})
                failures += proc.returncode != 0
                print("    " + summary(hub, proc.returncode, stats_file, out), flush=True)
    print(f"Dataset tree: {out / 'data'}")
    return 1 if failures else 0


PORTS_FILE = "demo-ports.json"


def summary(hub: str, returncode: int, stats_file: Path, out: Path) -> str:
    """What this run of the hub's crawl did (from its own stats file only)."""
    try:
        stats = json.loads(stats_file.read_text())
    except (OSError, ValueError):
        stats = None
    if stats is None:
        return f"FAILED (exit status {returncode}): the crawl wrote no stats; see its log above"
    get = stats.get
    records = get("item_scraped_count", 0)
    repos = {kind: get(f"ptm/clone/repos/{kind}", 0) for kind in ("cloned", "updated", "unchanged", "failed")}
    if not any(repos.values()) and records and get("ptm/clone/skipped", 0) == records:
        # civitai, ollama: the hub has no git repositories, so there is nothing to clone
        text = f"{records} records; no git repositories to clone -> {out / (hub + '.jsonl')}"
    else:
        text = (f"{records} records; repositories: {repos['cloned']} cloned, {repos['updated']} updated, "
                f"{repos['unchanged']} unchanged, {repos['failed']} failed -> {out / (hub + '.jsonl')}")
    if returncode:
        text = f"FAILED (exit status {returncode}: {get('ptm/verdict/reason', '?')}); " + text
    return text


def _start(starter, workdir: Path, port: int, hub: str):
    try:
        return starter(workdir, port=port)
    except OSError as exc:
        if not port:
            raise
        print(f"    port {port} of the last run is taken ({exc.strerror}): {hub} gets a new port, "
              f"so its repositories are cloned again beside the old ones", flush=True)
        return starter(workdir, port=0)


def _read_ports(path: Path) -> dict[str, int]:
    try:
        data = json.loads(path.read_text())
    except (OSError, ValueError):
        return {}
    return {k: v for k, v in data.items() if isinstance(v, int)} if isinstance(data, dict) else {}


def _write_ports(path: Path, ports: dict[str, int]) -> None:
    path.write_text(json.dumps(ports, indent=1, sort_keys=True) + "\n")


if __name__ == "__main__":
    sys.exit(main())
