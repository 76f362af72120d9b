"""JSON Lines readers and the compact encoding every dataset line is written in.

Readers skip a torn last line (a crash mid-write). Lines this package writes are compact JSON with
``"id"`` first (:data:`OWN_LINE`), so ids can be read without decoding them.
"""

from __future__ import annotations

import json
import os
import re
from collections.abc import Container, Iterator
from typing import Any

import orjson

_COMPACT = json.JSONEncoder(ensure_ascii=False, separators=(",", ":"))
_COMPACT_ASCII = json.JSONEncoder(ensure_ascii=True, separators=(",", ":"))


def compact_json(obj: Any) -> str:
    """Compact JSON that is valid UTF-8 text: escaped as ASCII if it holds a lone surrogate (hub
    text can: ``"\\ud800"`` is valid JSON, but no UTF-8 encodes that character)."""
    text = _COMPACT.encode(obj)
    if not text.isascii():
        try:
            text.encode()
        except UnicodeEncodeError:
            return _COMPACT_ASCII.encode(obj)
    return text


def record_json(record: dict[str, Any]) -> bytes:
    """``compact_json(record)``, UTF-8 encoded, three times faster: orjson writes the JSON types a
    record holds (objects, arrays, strings, integers, booleans, null) as json does, byte for byte.
    What it writes otherwise or not at all goes through :func:`compact_json`: a lone surrogate, an
    integer beyond 64 bits, a key that is not a string. Floats (which json and orjson format
    differently, ``1e-05`` / ``0.00001``) are not in records: the schema has no number type."""
    try:
        return orjson.dumps(record)
    except orjson.JSONEncodeError:
        return compact_json(record).encode()


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


def records_except(path: str | os.PathLike[str], ids: Container[Any]) -> Iterator[dict[str, Any]]:
    """The records of :func:`read_jsonl` whose ``id`` is not in ``ids``. A line this module wrote
    whose id is in ``ids`` is skipped undecoded (see ``OWN_LINE``): after a crawl that saw most of
    the hub, almost no line needs decoding."""
    for raw in complete_lines(path):
        own = OWN_LINE.fullmatch(raw)
        if own and int(own.group(1)) in ids:
            continue
        obj = json_object(raw)
        if obj is not None and obj.get("id") not in ids:
            yield obj


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
    except (ValueError, RecursionError):  # RecursionError: nested deeper than json.loads reads
        return None
    return obj if isinstance(obj, dict) else None
