"""The baseline the crawl is compared with: the way the original PTMTorrent scripts worked.

Fetch every listing page with ``requests`` into one list, then build the records with the
project's mapper, then write them as JSON Lines. No pipeline, no validation, no per-model files.

    python -m bench.baseline http://127.0.0.1:PORT out.jsonl   # prints phase timings as JSON
    python -m bench.baseline http://127.0.0.1:PORT --fetch-only  # how fast the replica serves
"""

from __future__ import annotations

import argparse
import json
import time
from urllib.parse import urlencode

import requests

from ptmscrape import settings
from ptmscrape.items import RawModelItem
from ptmscrape.mappers.huggingface import map_raw


def listing_url(base: str) -> str:
    """The spider's first listing URL (same sort, page size and ``expand[]`` fields)."""
    params = [("sort", "downloads"), ("direction", "-1"), ("limit", str(settings.PTM_HUGGINGFACE_PAGE_SIZE))]
    params += [("expand[]", field) for field in settings.PTM_HUGGINGFACE_EXPAND]
    return f"{base}/api/models?{urlencode(params)}"


def pages(base: str, decode: bool = True):
    session = requests.Session()
    url = listing_url(base)
    while url:
        response = session.get(url, timeout=120)
        response.raise_for_status()
        yield response.json() if decode else response.content
        url = response.links.get("next", {}).get("url")


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("base_url")
    ap.add_argument("out", nargs="?")
    ap.add_argument("--fetch-only", action="store_true", help="fetch the pages, decode nothing")
    args = ap.parse_args(argv)
    base = args.base_url.rstrip("/")
    started = time.perf_counter()
    if args.fetch_only:
        size = models = 0
        for body in pages(base, decode=False):
            size += len(body)
            models += body.count(b'"_id":')
        fetched = time.perf_counter()
        print(json.dumps({"models": models, "bytes": size, "fetch_seconds": fetched - started}))
        return
    models = [model for page in pages(base) for model in page]
    fetched = time.perf_counter()
    records = [map_raw(RawModelItem("huggingface", str(m.get("id")), base, m, {"base_url": base}))
               for m in models]
    mapped = time.perf_counter()
    with open(args.out, "w", encoding="utf-8") as f:
        for record in records:
            f.write(json.dumps(record, ensure_ascii=False) + "\n")
    written = time.perf_counter()
    print(json.dumps({"models": len(records), "fetch_seconds": fetched - started,
                      "map_seconds": mapped - fetched, "write_seconds": written - mapped,
                      "seconds": written - started}))


if __name__ == "__main__":
    main()
