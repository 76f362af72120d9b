"""Print a model's raw payload as the hub served it, from a data dir:

    python -m ptmscrape.payload <data dir> <hub> <model id>

``<model id>`` is the hub's id of the model (``openai-community/gpt2``), its ``MetadataObjectID``
or its record ``id``; a bare name (``gpt2``) only when one model alone has it. The newest record
of the model (``<hub>/<hub>.jsonl``, then the snapshots of crawls not merged yet) locates the
payload: its ``MetadataFilePath`` is ``<file>#<byte offset>``, one line of a crawl's
``<hub>/json/payloads/<hub>-<stamp>.jsonl`` (see ``ptmscrape/dataset/payloads.py``).
Exit status 1 when no record of that model is found, or a bare name names several (they are listed).
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
    """Whether ``model_id`` names this record's model whole: its ``MetadataObjectID``, record
    ``id``, ``<owner>/<name>`` or the hub's id of it (``ModelURL`` is ``<ModelHubURL>/<id>``)."""
    given = record.get("ModelHub")
    hub: dict[str, Any] = given if isinstance(given, dict) else {}
    owner, name = record.get("ModelOwner"), record.get("ModelName")
    names = {str(hub.get("MetadataObjectID")), str(record.get("id"))}
    if owner and owner != "_":
        names.add(f"{owner}/{name}")
    hub_url = hub.get("ModelHubURL")
    if isinstance(hub_url, str) and record.get("ModelURL") == f"{hub_url.rstrip('/')}/{model_id}":
        return True
    return model_id in names


class AmbiguousName(KeyError):
    """A bare model name that several models of the hub carry."""


def records(tree: DatasetTree, hub: str) -> Iterator[dict[str, Any]]:
    """Newest first: crawls not merged yet (newest last on disk), then ``<hub>.jsonl``."""
    for snapshot in reversed(pending_snapshots(tree, hub)):
        yield from read_jsonl(snapshot)
    yield from read_jsonl(tree.path(records_file(hub)))


def find_payload(data_dir: str, hub: str, model_id: str) -> Any:
    """The raw payload of the newest record of ``model_id``; KeyError when there is none.

    A bare model name (``ModelName``: a hub such as ModelZoo names its models by it alone) is
    taken when no record matches whole and one model alone has that name; several:
    :class:`AmbiguousName`, naming them, never whichever comes first."""
    tree = DatasetTree(data_dir)
    by_name: dict[Any, dict[str, Any]] = {}  # record id -> its newest record with that ModelName
    for record in records(tree, hub):
        if matches(record, model_id):
            return read_payload(tree, record["ModelHub"]["MetadataFilePath"])
        if record.get("ModelName") == model_id:
            by_name.setdefault(record.get("id"), record)
    if len(by_name) == 1:
        record = next(iter(by_name.values()))
        return read_payload(tree, record["ModelHub"]["MetadataFilePath"])
    if by_name:
        names = sorted({f"{r.get('ModelOwner')}/{r.get('ModelName')}" for r in by_name.values()})
        shown = ", ".join(names[:10]) + (f", … ({len(names)} in all)" if len(names) > 10 else "")
        raise AmbiguousName(f"{hub}:{model_id} names {len(by_name)} models ({shown}): "
                            "give its whole id, MetadataObjectID or record id")
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
