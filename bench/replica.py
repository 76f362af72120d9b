"""A Hugging Face replica for benchmarks, in its own process so it never shares a core's time
slices or memory with the crawl being measured.

    python -m bench.replica --models 1000000 [--latency-ms 50] [--port 0]
    python -m bench.replica --models 200 --repos DIR --latency-ms 50
    python -m bench.replica --models 200000 --churn 0.01,0.005,0.005   # a re-crawl's hub

Listing mode (default): ``/api/models`` pages of 1,000 with cursor ``Link`` headers, served from
pre-serialised page files (``bench.models``, cached under ``--cache``; built once with all cores).
``--repos DIR``: the tests' :class:`HuggingFaceReplica` with one git repository per model (each
model's ``sha`` is its repository's HEAD), for the clone benchmark.
``--churn C,R,A``: the same hub some time later, for re-crawls: fractions C of its models changed
(new ``downloads``, ``likes``, ``sha``, ``lastModified``), R removed and A added (new ids), chosen
by model number (:class:`Churn`); every other model is served byte for byte as before.
Prints one JSON line ``{"url": ...}`` on stdout when it answers; runs until killed.
"""

from __future__ import annotations

import argparse
import base64
import hashlib
import json
import os
import random
import re
import signal
import sys
import time
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path
from urllib.parse import urlencode

from bench.models import PAGE_SIZE, hub_model, page_bytes, page_count
from tests.replicas.server import Incoming, Replica, Reply

DEFAULT_CACHE = Path(os.environ.get("XDG_CACHE_HOME", Path.home() / ".cache")) / "ptmscrape-bench"


class PageCache:
    """Page files of one synthetic hub: ``<cache>/hf-n<N>-s<seed>-p<size>/<page>.json``."""

    def __init__(self, root: Path, n: int, seed: int = 1, size: int = PAGE_SIZE):
        self.n, self.seed, self.size = n, seed, size
        self.folder = Path(root) / f"hf-n{n}-s{seed}-p{size}"
        self.pages = page_count(n, size)

    def file(self, p: int) -> Path:
        return self.folder / f"{p:05d}.json"

    def build(self, workers: int | None = None) -> float:
        """Write the missing pages (in parallel); returns seconds spent."""
        missing = [p for p in range(self.pages) if not self.file(p).exists()]
        started = time.perf_counter()
        if missing:
            self.folder.mkdir(parents=True, exist_ok=True)
            print(f"building {len(missing)} page(s) of {self.n} models in {self.folder}", file=sys.stderr)
            with ProcessPoolExecutor(workers or os.cpu_count()) as pool:
                list(pool.map(self._build_page, missing, chunksize=8))
        return time.perf_counter() - started

    def _build_page(self, p: int) -> None:
        tmp = self.file(p).with_suffix(".tmp")
        tmp.write_bytes(page_bytes(p, self.n, self.seed, self.size))
        tmp.replace(self.file(p))

    def read(self, p: int) -> bytes:
        return self.file(p).read_bytes()


class Churn:
    """Which models of an ``n``-model hub changed, went or came (fractions of ``n``): model ``i``'s
    fate depends only on ``i``, so every page agrees, and the added models (numbers ``n``,
    ``n + 1``, …, ids never listed before) are spread over the pages."""

    def __init__(self, n: int, changed: float, removed: float, added: float, size: int = PAGE_SIZE):
        self.n, self.changed, self.removed, self.size = n, changed, removed, size
        self.added = round(n * added)

    @staticmethod
    def _draw(i: int) -> float:
        return int.from_bytes(hashlib.sha256(b"churn%d" % i).digest()[:8], "big") / 2**64

    def fate(self, i: int) -> str:
        x = self._draw(i)
        return "removed" if x < self.removed else "changed" if x < self.removed + self.changed else "kept"

    def page(self, p: int, served: bytes) -> bytes:
        models = []
        for k, model in enumerate(json.loads(served)):
            fate = self.fate(p * self.size + k)
            if fate == "changed":
                model.update(downloads=model["downloads"] + 1000, likes=model["likes"] + 10,
                             sha=hashlib.sha1(model["sha"].encode()).hexdigest(),
                             lastModified="2025-06-01T10:00:00.000Z")
            if fate != "removed":
                models.append(model)
        pages = page_count(self.n, self.size)
        for j in range(p, self.added, pages):
            models.append(hub_model(random.Random(f"added{j}"), self.n + j, self.n))
        return json.dumps(models, separators=(",", ":")).encode()


def listing_replica(cache: PageCache, latency: float = 0.0, port: int = 0, churn: Churn | None = None) -> Replica:
    replica = Replica(port, delay=latency)

    def listing(req: Incoming, m: re.Match) -> Reply:
        p = _page_of(req.arg("cursor"))
        if not 0 <= p < cache.pages:
            return Reply.json({"error": "bad cursor"}, 400)
        headers = {"Content-Type": "application/json; charset=utf-8", "X-Total-Count": str(cache.n)}
        if p + 1 < cache.pages:
            params = [(k, v) for k, v in req.query if k != "cursor"] + [("cursor", _cursor(p + 1))]
            headers["Link"] = f'<{replica.url}/api/models?{urlencode(params)}>; rel="next"'
        body = cache.read(p)
        return Reply(200, churn.page(p, body) if churn else body, headers)

    replica.route("GET", r"/api/models", listing)
    return replica


def _cursor(p: int) -> str:
    # Opaque to clients, like the Hub's base64 cursors.
    return base64.urlsafe_b64encode(json.dumps({"page": p}).encode()).decode()


def _page_of(cursor: str | None) -> int:
    if not cursor:
        return 0
    try:
        return int(json.loads(base64.urlsafe_b64decode(cursor))["page"])
    except (ValueError, KeyError, TypeError):
        return -1


def repos_replica(models: int, root: Path, latency: float = 0.0):
    from tests.replicas.huggingface import HuggingFaceReplica, synthetic_models

    hub = HuggingFaceReplica(synthetic_models(models), root)
    hub.replica.delay = latency
    return hub.replica


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--models", type=int, required=True)
    ap.add_argument("--seed", type=int, default=1)
    ap.add_argument("--port", type=int, default=0)
    ap.add_argument("--latency-ms", type=float, default=0.0, help="sleep before answering each request")
    ap.add_argument("--cache", type=Path, default=DEFAULT_CACHE, help="where page files are kept")
    ap.add_argument("--repos", type=Path, help="serve a git repository per model, built under this dir")
    ap.add_argument("--build-only", action="store_true", help="build the page files and exit")
    ap.add_argument("--churn", metavar="C,R,A", help="fractions of models changed, removed, added (a later hub)")
    args = ap.parse_args(argv)
    latency = args.latency_ms / 1000
    if args.repos:
        replica = repos_replica(args.models, args.repos, latency)
        info = {"models": args.models, "repos": args.models}
    else:
        cache = PageCache(args.cache, args.models, args.seed)
        built = cache.build()
        if args.build_only:
            print(json.dumps({"pages": cache.pages, "build_seconds": round(built, 1)}), flush=True)
            return
        churn = Churn(args.models, *map(float, args.churn.split(","))) if args.churn else None
        replica = listing_replica(cache, latency, args.port, churn)
        info = {"models": args.models, "pages": cache.pages, "build_seconds": round(built, 1)}
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(0))
    replica.start()
    print(json.dumps({"url": replica.url, "pid": os.getpid(), **info}), flush=True)
    try:
        signal.pause()
    finally:
        replica.stop()


if __name__ == "__main__":
    main()
