"""Compare two crawls: ``python -m ptmscrape.diff <snapshot-a> <snapshot-b>``.

Every crawl leaves a dated snapshot, ``<data>/<hub>/snapshots/<hub>-<stamp>.jsonl``. This prints
the models added and removed between two snapshots (or any two record files, e.g. a saved copy of
``<hub>.jsonl``) and, for models in both, the fields that changed — numbers with their delta::

    ~ google-bert/bert-base-uncased  Downloads: 55443322 -> 56000000 (+556678)

``--fields Downloads,Likes`` compares only these fields; ``--json`` prints one JSON object instead.
``CrawledAt`` and ``CloneStatus`` differ on every crawl, so they are compared only when named;
``ModelHub.MetadataFilePath`` (the payload's locator, which moves to the new crawl's payload file
whenever the payload changed) only when ``ModelHub`` is named.
Models are matched by ``id``, which is stable across crawls (and renames on Hugging Face).
"""

from __future__ import annotations

import argparse
import json
import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ptmscrape.dataset.jsonl import read_jsonl

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
        names = fields or sorted((old.keys() | new.keys()) - NOISY_FIELDS)
        strip = not fields
        changes = [FieldChange(n, old.get(n), new.get(n)) for n in names
                   if _value(old, n, strip) != _value(new, n, strip)]
        if changes:
            out.changed.append((new, changes))
        else:
            out.unchanged += 1
    return out


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
    return {
        "added": [label(r) for r in diff.added],
        "removed": [label(r) for r in diff.removed],
        "changed": {label(r): {c.field: {"old": c.old, "new": c.new, "delta": c.delta} for c in changes}
                    for r, changes in diff.changed},
        "unchanged": diff.unchanged,
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m ptmscrape.diff", description=__doc__.split("\n")[0])
    parser.add_argument("a", help="the earlier snapshot (JSON Lines of PTM records)")
    parser.add_argument("b", help="the later snapshot")
    parser.add_argument("--fields", help="comma-separated fields to compare (default: all)")
    parser.add_argument("--json", action="store_true", help="print one JSON object")
    args = parser.parse_args(argv)
    fields = [f.strip() for f in args.fields.split(",") if f.strip()] if args.fields else None
    try:
        diff = compare(load(args.a), load(args.b), fields)
    except FileNotFoundError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    if args.json:
        print(json.dumps(as_json(diff), ensure_ascii=False, indent=1))
    else:
        sys.stdout.write(render(diff, args.a, args.b))
    return 0


if __name__ == "__main__":
    sys.exit(main())
