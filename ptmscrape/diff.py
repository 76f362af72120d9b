"""Compare two crawls: ``python -m ptmscrape.diff <snapshot-a> <snapshot-b>``.

Every crawl leaves a dated snapshot, ``<data>/<hub>/snapshots/<hub>-<stamp>.jsonl``. This prints
the models added and removed between two snapshots (or any two record files, e.g. a saved copy of
``<hub>.jsonl``) and, for models in both, the fields that changed — numbers with their delta::

    ~ google-bert/bert-base-uncased  Downloads: 55443322 -> 56000000 (+556678)

``--fields Downloads,Likes`` compares only these fields; ``--json`` prints one JSON object instead.
A file that is not there, or holds no record (empty, other JSON Lines), is one line and exit status 2:
compared, every model of the other side would look added or removed.
``CrawledAt`` and ``CloneStatus`` differ on every crawl, so they are compared only when named;
``ModelHub.MetadataFilePath`` (the payload's locator, which moves to the new crawl's payload file
whenever the payload changed) only when ``ModelHub`` is named.
Models are matched by ``id``, which is stable across crawls (and renames on Hugging Face).

The command reads two files of any size: it keeps where each id's line is (16 bytes an id) and
reads the lines two at a time (:func:`compare_files`), so two snapshots of a million models each
need some 100 MB, not the tens of GB their decoded records would take (:func:`load`).
"""

from __future__ import annotations

import argparse
import json
import sys
from array import array
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, Any

from ptmscrape.dataset.jsonl import OWN_LINE, json_object, read_jsonl

NOISY_FIELDS = frozenset({"CrawledAt", "CloneStatus"})


@dataclass
class FieldChange:
    field: str
    old: Any
    new: Any

    @property
    def delta(self) -> int | float | None:
        numbers = (int, float)
        if isinstance(self.old, numbers) and isinstance(self.new, numbers) \
                and not isinstance(self.old, bool) and not isinstance(self.new, bool):
            return self.new - self.old
        return None

    def __str__(self) -> str:
        text = f"{self.field}: {_short(self.old)} -> {_short(self.new)}"
        return text if self.delta is None else f"{text} ({self.delta:+})"


@dataclass
class SnapshotDiff:
    added: list[dict] = field(default_factory=list)
    removed: list[dict] = field(default_factory=list)
    changed: list[tuple[dict, list[FieldChange]]] = field(default_factory=list)
    unchanged: int = 0


def load(path: str | Path) -> dict[int, dict]:
    """Records of a snapshot or record file by ``id`` (the last line of an id wins)."""
    if not Path(path).is_file():
        raise FileNotFoundError(f"no such snapshot: {path}")
    return {r["id"]: r for r in read_jsonl(path) if isinstance(r.get("id"), int)}


def compare(a: dict[int, dict], b: dict[int, dict], fields: list[str] | None = None) -> SnapshotDiff:
    out = SnapshotDiff()
    out.added = sorted((b[i] for i in b.keys() - a.keys()), key=label)
    out.removed = sorted((a[i] for i in a.keys() - b.keys()), key=label)
    for i in sorted(a.keys() & b.keys(), key=lambda i: label(b[i])):
        old, new = a[i], b[i]
        changes = _changes(old, new, fields)
        if changes:
            out.changed.append((new, changes))
        else:
            out.unchanged += 1
    return out


class NoRecords(ValueError):
    """A side of the diff holds no PTM record: compared, every model of the other looked added or removed."""

    def __init__(self, side: str, path: str | Path):
        super().__init__(f"{side}: {path} holds no PTM record (no JSON line with an integer id): "
                         "not a snapshot or record file, or one of a crawl that stored nothing")


def compare_files(a_path: str | Path, b_path: str | Path, fields: list[str] | None = None) -> SnapshotDiff:
    """:func:`compare` of two record files, with memory for their ids, not their records: each
    file's ids and line offsets are indexed (the last line of an id wins, as in :func:`load`), then
    the lines of each id are read and decoded two at a time. The records in the result keep only
    what names them (``id``, ``ModelOwner``, ``ModelName``)."""
    a, b = _index(a_path), _index(b_path)
    if a is None or b is None:  # an id beyond 64 bits: the files' records in memory
        a_records, b_records = load(a_path), load(b_path)
        for side, path, held in (("a", a_path, a_records), ("b", b_path, b_records)):
            if not held:
                raise NoRecords(side, path)
        return compare(a_records, b_records, fields)
    for side, path, index in (("a", a_path, a), ("b", b_path, b)):
        if not index[0]:
            raise NoRecords(side, path)
    out = SnapshotDiff()
    changed: list[tuple[dict, list[FieldChange]]] = []
    with open(a_path, "rb") as fa, open(b_path, "rb") as fb:
        (a_ids, a_at), (b_ids, b_at) = a, b
        i = j = 0
        while i < len(a_ids) or j < len(b_ids):
            if j == len(b_ids) or (i < len(a_ids) and a_ids[i] < b_ids[j]):
                out.removed.append(_naming(_record_at(fa, a_at[i])))
                i += 1
            elif i == len(a_ids) or b_ids[j] < a_ids[i]:
                out.added.append(_naming(_record_at(fb, b_at[j])))
                j += 1
            else:
                old, new = _record_at(fa, a_at[i]), _record_at(fb, b_at[j])
                changes = _changes(old, new, fields)
                if changes:
                    changed.append((_naming(new), changes))
                else:
                    out.unchanged += 1
                i += 1
                j += 1
    out.added.sort(key=label)
    out.removed.sort(key=label)
    out.changed = sorted(changed, key=lambda pair: label(pair[0]))
    return out


def _changes(old: dict, new: dict, fields: list[str] | None) -> list[FieldChange]:
    names = fields or sorted((old.keys() | new.keys()) - NOISY_FIELDS)
    strip = not fields
    return [FieldChange(n, old.get(n), new.get(n)) for n in names
            if _value(old, n, strip) != _value(new, n, strip)]


def _index(path: str | Path) -> tuple[array, array] | None:
    """The ids of a record file, sorted, and the offset of each one's last line (lines as
    :func:`load` reads them); None if an id does not fit in 64 bits."""
    if Path(path).is_dir():
        raise FileNotFoundError(f"{path} is a directory: give a snapshot file")
    if not Path(path).is_file():
        raise FileNotFoundError(f"no such snapshot: {path}")
    ids, offsets = array("q"), array("q")
    offset = 0
    with open(path, "rb") as f:
        for raw in f:
            if not raw.endswith(b"\n"):
                break  # a torn last line, as read_jsonl skips it
            own = OWN_LINE.fullmatch(raw)
            if own:
                rid: Any = int(own.group(1))
            else:
                record = json_object(raw)
                rid = record.get("id") if record is not None else None
            if isinstance(rid, int):
                if not -2**63 <= rid < 2**63:
                    return None
                ids.append(rid)
                offsets.append(offset)
            offset += len(raw)
    order = sorted(range(len(ids)), key=ids.__getitem__)  # stable: an id's lines in file order
    last_ids, last_offsets = array("q"), array("q")
    for k, at in enumerate(order):
        if k + 1 < len(order) and ids[order[k + 1]] == ids[at]:
            continue  # a later line of this id wins
        last_ids.append(ids[at])
        last_offsets.append(offsets[at])
    return last_ids, last_offsets


def _record_at(f: IO[bytes], offset: int) -> dict:
    f.seek(offset)
    record = json_object(f.readline())
    assert record is not None  # indexed as a JSON object
    return record


def _naming(record: dict) -> dict:
    return {k: record[k] for k in ("id", "ModelOwner", "ModelName") if k in record}


def _value(record: dict, name: str, strip_locator: bool) -> Any:
    value = record.get(name)
    if strip_locator and name == "ModelHub" and isinstance(value, dict):
        return {k: v for k, v in value.items() if k != "MetadataFilePath"}
    return value


def label(record: dict) -> str:
    owner, name = record.get("ModelOwner"), record.get("ModelName")
    return f"{owner}/{name}" if owner else str(name)


def _short(value: Any, limit: int = 80) -> str:
    text = value if isinstance(value, str) else json.dumps(value, ensure_ascii=False, separators=(",", ":"))
    return text if len(text) <= limit else text[: limit - 1] + "…"


def render(diff: SnapshotDiff, a_path: str, b_path: str) -> str:
    lines = [f"a: {a_path}", f"b: {b_path}",
             f"{len(diff.added)} added, {len(diff.removed)} removed, {len(diff.changed)} changed, "
             f"{diff.unchanged} unchanged"]
    lines += [f"+ {label(r)}" for r in diff.added]
    lines += [f"- {label(r)}" for r in diff.removed]
    lines += [f"~ {label(r)}  " + "; ".join(str(c) for c in changes) for r, changes in diff.changed]
    return "\n".join(lines) + "\n"


def as_json(diff: SnapshotDiff) -> dict:
    """``changed`` is keyed by each model's label, ``<label> (id <id>)`` where models of one label
    changed (names are not unique on every hub: a Civitai creator may give two models one name)."""
    labels = [label(r) for r, _ in diff.changed]
    repeated = {name for name, n in Counter(labels).items() if n > 1}
    return {
        "added": [label(r) for r in diff.added],
        "removed": [label(r) for r in diff.removed],
        "changed": {(f"{name} (id {r.get('id')})" if name in repeated else name):
                    {c.field: {"old": c.old, "new": c.new, "delta": c.delta} for c in changes}
                    for name, (r, changes) in zip(labels, diff.changed, strict=True)},
        "unchanged": diff.unchanged,
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m ptmscrape.diff", description=__doc__.split("\n")[0])
    parser.add_argument("a", help="the earlier snapshot (JSON Lines of PTM records)")
    parser.add_argument("b", help="the later snapshot")
    parser.add_argument("--fields", help="comma-separated fields to compare (default: all)")
    parser.add_argument("--json", action="store_true", help="print one JSON object")
    parser.add_argument("more", nargs="*", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.more:
        parser.error("one file a side: a crawl with several snapshot files (one a worker of a distributed "
                     "crawl, one a run of a resumed job) compares as one file once joined: "
                     "cat <its snapshots> > crawl.jsonl")
    fields = [f.strip() for f in args.fields.split(",") if f.strip()] if args.fields else None
    try:
        diff = compare_files(args.a, args.b, fields)
    except (FileNotFoundError, NoRecords) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    if args.json:
        print(json.dumps(as_json(diff), ensure_ascii=False, indent=1))
    else:
        sys.stdout.write(render(diff, args.a, args.b))
    return 0


if __name__ == "__main__":
    sys.exit(main())
