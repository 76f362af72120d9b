"""A JSON array page decoded element by element, each element with the text the hub served for it.

The store stage keeps every model's raw payload. For a model listed in an array page (Hugging
Face's ``/api/models``), the hub's own text of the element is that payload, byte for byte; keeping
it saves re-encoding the decoded element (~20 µs a model, as much as decoding the whole page), and
the stored payload is exactly what the hub served. Decoding is json's own C scanner, element by
element, so what is accepted and rejected is what ``json.loads`` accepts and rejects.
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable
from json.scanner import make_scanner
from typing import Any

import orjson

# json's C scanner (what json.loads runs), one value at a given index; typeshed types it as a class.
_SCAN: Callable[[str, int], tuple[Any, int]] = make_scanner(json.JSONDecoder())  # type: ignore[arg-type]
_SPACE = re.compile(r"[ \t\n\r]*")


def _after_space(text: str, at: int) -> int:
    return _SPACE.match(text, at).end()  # type: ignore[union-attr]  # "*": always matches


def array_elements(body: bytes) -> list[tuple[Any, str]]:
    """``(element, its JSON text)`` for each element of the JSON array ``body``.

    Raises ``ValueError`` (``json.JSONDecodeError``, ``UnicodeDecodeError``) for a body that is
    not one well-formed JSON array, as ``json.loads`` would; ``TypeError`` naming the type (``a dict``)
    if it is JSON but not an array.
    """
    compact = _compact_elements(body)
    if compact is not None:
        return compact
    text = body.decode(json.detect_encoding(body), "surrogatepass")  # as json.loads decodes bytes
    scan, skip = _SCAN, _after_space
    at = skip(text, 0)
    if not text.startswith("[", at):
        value = json.loads(text)  # the error json.loads gives, or a value that is not an array
        raise TypeError(f"a {type(value).__name__}")
    at = skip(text, at + 1)
    elements: list[tuple[Any, str]] = []
    if text.startswith("]", at):
        end = at + 1
    else:
        while True:
            try:
                value, end = scan(text, at)
            except StopIteration as stop:
                raise json.JSONDecodeError("Expecting value", text, stop.value) from None
            elements.append((value, text[at:end]))
            at = skip(text, end)
            if text.startswith(",", at):
                at = skip(text, at + 1)
            elif text.startswith("]", at):
                end = at + 1
                break
            else:
                raise json.JSONDecodeError("Expecting ',' delimiter", text, at)
    if skip(text, end) != len(text):
        raise json.JSONDecodeError("Extra data", text, end)
    return elements


def _compact_elements(body: bytes) -> list[tuple[Any, str]] | None:
    """:func:`array_elements` of a compact UTF-8 array whose elements orjson encodes back to the
    very bytes served; None for any other body."""
    if not body.startswith(b"["):
        return None
    try:
        values = orjson.loads(body)
    except orjson.JSONDecodeError:
        return None
    if type(values) is not list:
        return None
    elements: list[tuple[Any, str]] = []
    dumps, at = orjson.dumps, 1
    for value in values:
        try:
            text = dumps(value)
        except orjson.JSONEncodeError:  # nested deeper than orjson writes (it reads deeper)
            return None
        end = at + len(text)
        if not body.startswith(text, at) or body[end:end + 1] not in (b",", b"]"):
            return None
        elements.append((value, text.decode()))
        at = end + 1
    return elements if at == len(body) or body == b"[]" else None
