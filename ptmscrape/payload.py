"""Print a model's raw payload as the hub served it, from a data dir:

    python -m ptmscrape.payload <data dir> <hub> <model id>

``<model id>`` is the hub's id of the model (``openai-community/gpt2``), its ``MetadataObjectID``
or its record ``id``; a bare name (``gpt2``) only when one model alone has it. The newest record
of the model (``<hub>/<hub>.jsonl``, then the snapshots of crawls not merged yet) locates the
payload: its ``MetadataFilePath`` is ``<file>#<byte offset>``, one line of a crawl's
``<hub>/json/payloads/<hub>-<stamp>.jsonl`` (see ``ptmscrape/dataset/payloads.py``).
Exit status 1 when no record of that model is found (the hub's folder holds no records at all: said
so), or a bare name names several (they are listed); 2, one line, when the data dir is not there (or
is a file) or holds no folder of that hub (the hubs it holds are named).
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from ptmscrape.dataset.jsonl import compact_json, read_jsonl
from ptmscrape.dataset.paths import records_file, segment
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


def missing_input(data_dir: str, hub: str) -> str | None:
    """What is wrong with the command's data dir and hub (exit status 2), or None: no tree there,
    a file, or no folder of that hub in it (a typo, or a hub never crawled into it)."""
    data = Path(data_dir)
    if not data.is_dir():
        return f"no dataset tree at {data_dir}" + (": it is a file" if data.exists() else "")
    if (data / segment(hub)).is_dir():
        return None
    hubs = sorted(d.name for d in data.iterdir() if d.is_dir() and not d.name.startswith("."))
    return (f"no folder of hub {hub!r} in {data_dir} "
            + (f"(its hubs: {', '.join(hubs)})" if hubs else "(it holds no hub folder)"))


def _has_records(path: Path) -> bool:
    """Whether a records file or snapshot is there with something in it (a crawl that stored
    nothing leaves them empty)."""
    try:
        return path.stat().st_size > 0
    except OSError:
        return False


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="python -m ptmscrape.payload", description=__doc__.split("\n\n")[0])
    ap.add_argument("data_dir")
    ap.add_argument("hub")
    ap.add_argument("model_id")
    args = ap.parse_args(argv)
    missing = missing_input(args.data_dir, args.hub)
    if missing:
        print(f"{ap.prog}: error: {missing}", file=sys.stderr)
        return 2
    tree = DatasetTree(args.data_dir)
    if not any(_has_records(path) for path in [tree.path(records_file(args.hub)),
                                               *pending_snapshots(tree, args.hub)]):
        print(f"no records of {args.hub} in {args.data_dir}: no {records_file(args.hub)} nor snapshot of an "
              "unmerged crawl (its crawls stored nothing?)", file=sys.stderr)
        return 1
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
