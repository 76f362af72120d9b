"""JSON Lines readers and the compact encoding every dataset line is written in.

Readers skip a torn last line (a crash mid-write). Lines this package writes are compact JSON with
``"id"`` first (:data:`OWN_LINE`), so ids can be read without decoding them.
"""

from __future__ import annotations

import json
import os
import re
from collections.abc import Iterator
from typing import Any

_COMPACT = json.JSONEncoder(ensure_ascii=False, separators=(",", ":"))
compact_json = _COMPACT.encode

# A whole line as this module writes records: compact JSON, "id" first. Such lines are copied
# as they are; re-encoding a million of them would give the same bytes, at 20 µs a line.
OWN_LINE = re.compile(rb'\{"id":(-?[0-9]{1,20}),".*\}\n', re.DOTALL)


def read_jsonl(path: str | os.PathLike[str]) -> Iterator[dict[str, Any]]:
    """Records of a JSON Lines file; a torn last line (a crash mid-write) is ignored."""
    for raw in complete_lines(path):
        obj = json_object(raw)
        if obj is not None:
            yield obj


def record_ids(path: str | os.PathLike[str]) -> Iterator[Any]:
    """The ``id`` of every record of a JSON Lines file that has one, in order: the ids of
    :func:`read_jsonl`, without decoding the lines this module wrote (see ``OWN_LINE``)."""
    for raw in complete_lines(path):
        own = OWN_LINE.fullmatch(raw)
        if own:
            yield int(own.group(1))
            continue
        obj = json_object(raw)
        if obj is not None and "id" in obj:
            yield obj["id"]


def complete_lines(path: str | os.PathLike[str]) -> Iterator[bytes]:
    try:
        f = open(path, "rb")
    except FileNotFoundError:
        return
    with f:
        for raw in f:
            if not raw.endswith(b"\n"):
                break  # torn tail of a killed writer
            yield raw


def json_object(raw: bytes) -> dict[str, Any] | None:
    try:
        obj = json.loads(raw)
    except ValueError:
        return None
    return obj if isinstance(obj, dict) else None
