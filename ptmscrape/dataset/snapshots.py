"""Snapshots (the records of one crawl, a time series) and their merge into ``<hub>.jsonl``."""

from __future__ import annotations

import contextlib
import fcntl
import os
import shutil
import tempfile
from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import Any

import jsonlines

from ptmscrape.dataset.jsonl import OWN_LINE, compact_json, complete_lines, json_object, record_json
from ptmscrape.dataset.paths import records_file, segment, snapshot_file
from ptmscrape.dataset.tree import DatasetTree, LineAppender, file_mode, remove_stale_temp_files, unlink_quietly
from ptmscrape.idset import IdSet


class SnapshotWriter:
    """Appends the records of one crawl to its snapshot file, one flushed line per record.

    The file is opened in append mode and each record is written whole, unbuffered, so a killed
    crawl leaves complete lines (plus at most one torn tail, which :func:`read_jsonl` skips), and a
    write a full disk cut short is cut off again (:class:`LineAppender`): the next line never
    continues a torn one. A ``.pending`` marker beside the snapshot says it is not yet merged into
    ``<hub>.jsonl``. While the writer is open it holds a lock on the file (``flock``, which the
    kernel lets go when the process ends, killed or not): a merge by another crawl sharing the data
    dir merges what it has so far but leaves its marker (:func:`_writing`), so should this crawl be
    killed, the next merge still takes the records it wrote since.

    The writer also notes what the merge would otherwise read the file again to learn: the ids it
    wrote. While every line is one of this module's own (``OWN_LINE``: an integer id first) with an
    id not written before, and the file held nothing else, :attr:`ids` is the complete set and the
    merge copies the file instead of reading it line by line (:func:`merge_records`).
    """

    def __init__(self, tree: DatasetTree, hub: str, stamp: str):
        self.tree = tree
        self.hub = hub
        self.relative = snapshot_file(hub, stamp)
        self.path = tree.path(self.relative)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        pending_marker(self.path).touch()
        self._file = LineAppender(self.path)
        with contextlib.suppress(OSError):  # a file system without locks: merges take it as not written
            fcntl.flock(self._file.fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        self.ids: IdSet | None = IdSet() if self._file.size == 0 else None

    def write(self, record: dict[str, Any]) -> None:
        ids = self.ids
        if ids is not None:
            rid = record.get("id") if isinstance(record, dict) else None
            # An integer id of up to 20 digits, first: what OWN_LINE recognises.
            if type(rid) is int and -(10**20) < rid < 10**20 and next(iter(record)) == "id" and rid not in ids:
                ids.add(rid)
            else:
                self.ids = None  # the merge reads the file as any other
        try:
            self._file.append(record_json(record) + b"\n")
        except BaseException:
            self.ids = None  # the merge reads the file line by line
            raise

    def close(self) -> None:
        self._file.close()


def pending_marker(snapshot: Path) -> Path:
    return snapshot.with_name(snapshot.name + ".pending")


def pending_snapshots(tree: DatasetTree, hub: str) -> list[Path]:
    """Snapshots not yet merged (their crawl crashed or is still running), oldest first."""
    folder = tree.path(f"{segment(hub)}/snapshots")
    if not folder.is_dir():
        return []
    return sorted(p.with_name(p.name[: -len(".pending")]) for p in folder.glob("*.jsonl.pending"))


def merge_interrupted(tree: DatasetTree, hub: str) -> tuple[int, int, int]:
    """Crash recovery at a crawl's start: merge the snapshots of interrupted crawls into
    ``<hub>.jsonl`` and remove the temp files killed writers left. Returns how many
    snapshots were merged, how many records ``<hub>.jsonl`` then holds, how many temp files went.

    Temp files go whether or not a snapshot is pending: a crawl killed after its merge (writing
    its removed-models report) leaves one and no pending snapshot. A walk of ``<hub>/`` without
    ``repos/``: a few files a crawl."""
    stale = remove_stale_temp_files(tree, hub)
    interrupted = pending_snapshots(tree, hub)
    if not interrupted:
        return 0, 0, stale
    counts = merge_records(tree, hub, interrupted)
    return len(interrupted), counts["records"], stale


def merge_records(tree: DatasetTree, hub: str, snapshots: Iterable[Path],
                  written: SnapshotWriter | None = None) -> dict[str, int]:
    """Rebuild ``<hub>.jsonl``: the newest record of every model, one line each.

    Sources are read newest first (the given snapshots, newest last in the argument, then the
    current file), keeping the first line seen per ``id``; memory holds only the set of ids.
    ``written``, the closed writer of the newest snapshot, lets its file be copied whole when it
    knows every id in it (:class:`SnapshotWriter`): ~7 µs a record less, the line-by-line reading.
    Returns counts: ``records`` written, ``carried`` (models in the old file that no merged
    snapshot contains: not seen by this crawl, possibly removed from the hub).
    """
    snapshots = list(snapshots)
    target = tree.path(records_file(hub))
    target.parent.mkdir(parents=True, exist_ok=True)
    known = None
    if written is not None and written.ids is not None and snapshots and snapshots[-1] == written.path:
        known = written.ids
    with _locked(target.with_name(".merge.lock")):
        return _merge_locked(target, snapshots, known)


@contextlib.contextmanager
def _locked(lock_path: Path) -> Iterator[None]:
    """Serialise merges of workers sharing one data dir (distributed crawls)."""
    with open(lock_path, "a") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(lock, fcntl.LOCK_UN)




def _merge_locked(target: Path, snapshots: list[Path], known: IdSet | None) -> dict[str, int]:
    # Under the lock no other merge runs: a temp file here is a killed merge's leftover.
    for leftover in target.parent.glob(".merge-*.jsonl"):
        unlink_quietly(leftover)
    seen = IdSet()
    counts = {"records": 0, "carried": 0}
    sources = [*((s, False) for s in reversed(snapshots)), (target, True)]
    fd, tmp = tempfile.mkstemp(dir=target.parent, prefix=".merge-", suffix=".jsonl")
    try:
        os.fchmod(fd, file_mode())
        with os.fdopen(fd, "wb") as out:
            if known is not None:  # the newest snapshot: own lines, unique ids, all known
                seen, counts["records"] = known, len(known)
                with open(sources.pop(0)[0], "rb") as newest:
                    shutil.copyfileobj(newest, out, 1 << 20)
            reencode = jsonlines.Writer(out, dumps=compact_json)
            for source, is_old in sources:
                for raw in complete_lines(source):
                    own = OWN_LINE.fullmatch(raw)
                    if own:
                        rid, line = int(own.group(1)), raw
                    else:
                        record = json_object(raw)
                        found = record.get("id") if record is not None else None
                        if not isinstance(found, int):
                            continue
                        rid, line = found, None
                    if rid in seen:
                        continue
                    seen.add(rid)
                    if line is None:
                        reencode.write(record)
                    else:
                        out.write(line)
                    counts["records"] += 1
                    counts["carried"] += is_old
            out.flush()
            os.fsync(out.fileno())
        os.replace(tmp, target)
    except BaseException:
        unlink_quietly(tmp)
        raise
    for snapshot in snapshots:
        if not _writing(snapshot):
            unlink_quietly(pending_marker(snapshot))
    return counts


def _writing(snapshot: Path) -> bool:
    """Whether a live crawl still writes ``snapshot`` (its :class:`SnapshotWriter` holds the lock):
    then its ``.pending`` marker stays, for the merge after that crawl ends, or is killed."""
    try:
        fd = os.open(snapshot, os.O_RDONLY | os.O_NOFOLLOW | os.O_CLOEXEC)
    except OSError:
        return False
    try:
        fcntl.flock(fd, fcntl.LOCK_SH | fcntl.LOCK_NB)
    except BlockingIOError:
        return True
    except OSError:
        return False
    finally:
        os.close(fd)
    return False

