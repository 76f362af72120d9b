"""Raw hub payloads: one JSON Lines file per crawl, each record locating its payload by
``<file>#<byte offset>`` (its ``MetadataFilePath``)."""

from __future__ import annotations

import bisect
import errno
import json
import os
import re
from array import array
from collections import OrderedDict
from typing import Any

from ptmscrape.dataset.jsonl import complete_lines
from ptmscrape.dataset.paths import UnsafePath, payload_file, records_file
from ptmscrape.dataset.tree import DatasetTree, LineAppender


class PayloadWriter:
    """Appends the raw payloads of one crawl to one JSON Lines file (O(1) files per crawl, not
    one per model): each payload is one line, written whole (:class:`LineAppender`: a write a
    full disk cut short is cut off again) before its record is stored, so a killed crawl leaves
    whole lines plus at most one torn tail that no record points to. :meth:`write` returns the
    payload's locator, ``<file>#<byte offset>`` (the record's ``MetadataFilePath``;
    :func:`read_payload` reads it back)."""

    def __init__(self, tree: DatasetTree, hub: str, stamp: str):
        self.tree = tree
        self.relative = payload_file(hub, stamp)
        self._file: LineAppender | None = None  # opened at the first payload: a crawl that writes none leaves no file
        self._prefix = self.relative + "#"

    def _open(self) -> LineAppender:
        path = self.tree.path(self.relative)
        path.parent.mkdir(parents=True, exist_ok=True)
        file = LineAppender(path)
        if file.size:  # another run of this stamp (cannot happen: pid and a random part are in it) tore a line
            file.append(b"\n")
        self._file = file
        return file

    def write(self, line: bytes) -> str:
        """Append ``line`` (compact JSON, no newline); return its locator."""
        offset = (self._file or self._open()).append(line + b"\n")
        return f"{self._prefix}{offset}"

    def close(self) -> None:
        if self._file is not None:
            self._file.close()
            self._file = None


# The payload locator of a record line as this module writes it (the first MetadataFilePath key:
# ModelHub comes before any free text, and a quote inside a string value is escaped).
_LOCATOR = re.compile(rb'"MetadataFilePath":"([^"#\\]{1,2000})#([0-9]{1,15})"')
_ID_PREFIX = re.compile(rb'\{"id":(-?[0-9]{1,20}),')
_OFFSET_BITS = 40  # a payload file up to 1 TB; the file's number in the bits above


# Payload files StoredPayloads keeps open at once (well below the usual limit of 1,024 descriptors).
MAX_OPEN_PAYLOAD_FILES = 128


class StoredPayloads:
    """Where ``<hub>.jsonl`` says each model's payload is, to leave unchanged payloads alone.

    A re-crawl writes a model's payload only when it differs from the stored one (compared byte
    for byte with one ``pread``); an unchanged one keeps its record's locator, pointing into the
    earlier crawl's file. A stored payload that cannot be read (its file gone, unreadable, a
    directory, an I/O error) counts as changed: it is written again, never a reason to drop the
    model. So a re-crawl of an unchanged hub writes no payload, and its records equal the previous
    crawl's. Memory: 16 bytes a model (two sorted arrays), not a dict.
    """

    def __init__(self, tree: DatasetTree, hub: str):
        self.tree = tree
        self.files: list[str] = []
        numbers: dict[bytes, int] = {}
        ids, locations = array("q"), array("q")
        for raw in complete_lines(tree.path(records_file(hub))):
            own = _ID_PREFIX.match(raw)
            found = _LOCATOR.search(raw, 0, 4096) if own else None  # ModelHub comes first
            if own is None or found is None:
                continue
            number = numbers.get(found.group(1))
            if number is None:
                number = numbers[found.group(1)] = len(self.files)
                self.files.append(found.group(1).decode())
            ids.append(int(own.group(1)))
            locations.append(number << _OFFSET_BITS | int(found.group(2)))
        order = sorted(range(len(ids)), key=ids.__getitem__)
        self.ids = array("q", (ids[i] for i in order))
        self.locations = array("q", (locations[i] for i in order))
        self._fds: OrderedDict[int, int] = OrderedDict()  # file number -> open fd, least recently used first
        self._unreadable: set[int] = set()

    def __len__(self) -> int:
        return len(self.ids)

    def unchanged(self, record_id: int, line: bytes) -> str | None:
        """The stored locator of this model's payload if it holds exactly ``line``, else None."""
        i = bisect.bisect_left(self.ids, record_id)
        if i == len(self.ids) or self.ids[i] != record_id:
            return None
        number, offset = self.locations[i] >> _OFFSET_BITS, self.locations[i] & ((1 << _OFFSET_BITS) - 1)
        fd = self._fds.get(number)
        if fd is None:
            fd = self._open(number)
            if fd < 0:
                return None
        else:
            self._fds.move_to_end(number)
        try:
            if os.pread(fd, len(line) + 1, offset) != line + b"\n":
                return None
        except OSError:  # an old payload file that cannot be read (a directory now, EIO): write it again
            os.close(self._fds.pop(number))
            self._unreadable.add(number)
            return None
        return f"{self.files[number]}#{offset}"

    def _open(self, number: int) -> int:
        """An fd of payload file ``number``, or -1. At most ``MAX_OPEN_PAYLOAD_FILES`` stay open
        (the least recently used is closed): a data dir re-crawled daily for years points into
        thousands of payload files, and the crawl's clones need descriptors too."""
        if number in self._unreadable:
            return -1
        if len(self._fds) >= MAX_OPEN_PAYLOAD_FILES:
            os.close(self._fds.popitem(last=False)[1])
        try:
            fd = os.open(self.tree.path(self.files[number]), os.O_RDONLY | os.O_NOFOLLOW | os.O_CLOEXEC)
        except OSError as exc:
            if exc.errno not in (errno.EMFILE, errno.ENFILE):  # out of descriptors for now: try again later
                self._unreadable.add(number)
            return -1
        except UnsafePath:
            self._unreadable.add(number)
            return -1
        self._fds[number] = fd
        return fd

    def close(self) -> None:
        for fd in self._fds.values():
            os.close(fd)
        self._fds.clear()


def read_payload(tree: DatasetTree, locator: str) -> Any:
    """The raw payload a record's ``MetadataFilePath`` locates: ``<file>#<offset>`` (one line of a
    crawl's payload file), or a whole file (datasets written before payload files per crawl)."""
    relative, _, offset = locator.partition("#")
    path = tree.path(relative)
    if not offset:
        return json.loads(path.read_bytes())
    with open(path, "rb") as f:
        f.seek(int(offset))
        line = f.readline()
    if not line.endswith(b"\n"):
        raise ValueError(f"{locator}: no whole line at this offset")
    return json.loads(line)

