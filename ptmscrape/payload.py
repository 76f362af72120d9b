"""Print a model's raw payload as the hub served it, from a data dir:

    python -m ptmscrape.payload <data dir> <hub> <model id>

``<model id>`` is the hub's id of the model (``openai-community/gpt2``), its ``MetadataObjectID``
or its record ``id``. The newest record of the model (``<hub>/<hub>.jsonl``, then the snapshots of
crawls not merged yet) locates the payload: its ``MetadataFilePath`` is ``<file>#<byte offset>``,
one line of a crawl's ``<hub>/json/payloads/<hub>-<stamp>.jsonl`` (see ``ptmscrape/dataset/payloads.py``).
Exit status 1 when no record of that model is found.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Iterator
from typing import Any

from ptmscrape.dataset.jsonl import compact_json, read_jsonl
from ptmscrape.dataset.paths import records_file
from ptmscrape.dataset.payloads import read_payload
from ptmscrape.dataset.snapshots import pending_snapshots
from ptmscrape.dataset.tree import DatasetTree


def matches(record: dict[str, Any], model_id: str) -> bool:
    given = record.get("ModelHub")
    hub: dict[str, Any] = given if isinstance(given, dict) else {}
    owner, name = record.get("ModelOwner"), record.get("ModelName")
    names = {str(hub.get("MetadataObjectID")), str(record.get("id")), str(name)}
    if owner and owner != "_":
        names.add(f"{owner}/{name}")
    return model_id in names


def records(tree: DatasetTree, hub: str) -> Iterator[dict[str, Any]]:
    """Newest first: crawls not merged yet (newest last on disk), then ``<hub>.jsonl``."""
    for snapshot in reversed(pending_snapshots(tree, hub)):
        yield from read_jsonl(snapshot)
    yield from read_jsonl(tree.path(records_file(hub)))


def find_payload(data_dir: str, hub: str, model_id: str) -> Any:
    """The raw payload of the newest record of ``model_id``; KeyError when there is none."""
    tree = DatasetTree(data_dir)
    for record in records(tree, hub):
        if matches(record, model_id):
            return read_payload(tree, record["ModelHub"]["MetadataFilePath"])
    raise KeyError(f"no record of {hub}:{model_id} in {tree.root}")


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="python -m ptmscrape.payload", description=__doc__.split("\n\n")[0])
    ap.add_argument("data_dir")
    ap.add_argument("hub")
    ap.add_argument("model_id")
    args = ap.parse_args(argv)
    try:
        payload = find_payload(args.data_dir, args.hub, args.model_id)
    except KeyError as exc:
        print(exc.args[0], file=sys.stderr)
        return 1
    except (OSError, ValueError) as exc:
        print(f"payload of {args.hub}:{args.model_id} unreadable: {exc}", file=sys.stderr)
        return 1
    sys.stdout.write(compact_json(payload) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
