"""The dataset tree: every path under the data dir is made here, and nowhere else.

Layout (``PTM_DATA_DIR``, default ``data``)::

    <data>/<hub>/<hub>.jsonl                    latest record of every model (one line each)
    <data>/<hub>/snapshots/<hub>-<stamp>.jsonl  the records of one crawl (a time series)
    <data>/<hub>/json/metadata/<owner>/<name>.json   raw hub payload of one model
    <data>/<hub>/repos/<owner>/<name>/          git clone of one model repository
    <data>/repo-index.jsonl                     repo URL -> clone path, shared by all hubs

Names from the internet become path segments only through :func:`segment`, which is injective and
can never yield ``..``, a separator, NUL or an over-long name, so no model id can leave the tree.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import fcntl
import hashlib
import json
import os
import re
import tempfile
from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import Any

import jsonlines

_SAFE_CHARS = re.compile(r"[A-Za-z0-9_.\-]")
_MAX_SEGMENT = 120


class UnsafePath(ValueError):
    """A name could not be turned into a path inside the dataset tree."""


def segment(name: str) -> str:
    """Turn one untrusted name into one safe path segment (reversible percent-encoding).

    Characters other than ``[A-Za-z0-9_.-]`` and a leading dot are encoded as ``%XX`` (UTF-8), so
    ``..`` -> ``%2E.``, ``a/b`` -> ``a%2Fb``. Over-long results are cut and suffixed with a hash so
    distinct names stay distinct.
    """
    if not isinstance(name, str) or not name:
        raise UnsafePath(f"empty or non-text name {name!r}")
    out = []
    for i, ch in enumerate(name):
        if _SAFE_CHARS.fullmatch(ch) and not (i == 0 and ch == "."):
            out.append(ch)
        else:
            out.extend(f"%{b:02X}" for b in ch.encode("utf-8", "surrogatepass"))
    safe = "".join(out)
    if len(safe) > _MAX_SEGMENT:
        digest = hashlib.sha256(name.encode("utf-8", "surrogatepass")).hexdigest()[:16]
        safe = f"{safe[:_MAX_SEGMENT - 17]}~{digest}"
    return safe


def utc_now() -> str:
    return dt.datetime.now(dt.UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


# -- tree-relative paths (pure functions: mappers use them too) ---------------------------------
REPO_INDEX_FILE = "repo-index.jsonl"


def records_file(hub: str) -> str:
    return f"{segment(hub)}/{segment(hub)}.jsonl"


def snapshot_file(hub: str, stamp: str) -> str:
    return f"{segment(hub)}/snapshots/{segment(hub)}-{segment(stamp)}.jsonl"


def metadata_file(hub: str, owner: str, name: str) -> str:
    return f"{segment(hub)}/json/metadata/{segment(owner)}/{segment(name)}.json"


def repo_dir(hub: str, owner: str, name: str) -> str:
    return f"{segment(hub)}/repos/{segment(owner)}/{segment(name)}"


class DatasetTree:
    """Paths and files of one data dir. All returned relative paths use ``/``."""

    def __init__(self, root: str | os.PathLike[str]):
        self.root = Path(root).resolve()

    @classmethod
    def from_crawler(cls, crawler) -> DatasetTree:
        return cls(crawler.settings.get("PTM_DATA_DIR", "data"))

    # -- paths ---------------------------------------------------------------------------
    def path(self, relative: str) -> Path:
        """Absolute path of a tree-relative path, refusing anything that resolves outside."""
        p = (self.root / relative).resolve()
        if p != self.root and self.root not in p.parents:
            raise UnsafePath(f"{relative!r} leaves the data dir")
        return p

    def scratch_dir(self, hub: str) -> Path:
        """Where clones are built before they land (same filesystem, so rename is atomic)."""
        return self.path(f"{segment(hub)}/repos/.incoming")

    # -- files ---------------------------------------------------------------------------
    def write_atomic(self, relative: str, data: bytes) -> None:
        """Write a whole file so readers (and a crash) see the old or the new content, never half."""
        target = self.path(relative)
        target.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(dir=target.parent, prefix=".tmp-", suffix=target.suffix)
        try:
            with os.fdopen(fd, "wb") as f:
                f.write(data)
            os.replace(tmp, target)
        except BaseException:
            _unlink_quietly(tmp)
            raise

    def append_line(self, relative: str, obj: Any) -> None:
        """Append one JSON line with a single write (concurrent appenders never interleave)."""
        target = self.path(relative)
        target.parent.mkdir(parents=True, exist_ok=True)
        line = (json.dumps(obj, ensure_ascii=False, separators=(",", ":")) + "\n").encode()
        fd = os.open(target, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)
        try:
            os.write(fd, line)
        finally:
            os.close(fd)


def _unlink_quietly(path: str | os.PathLike[str]) -> None:
    try:
        os.unlink(path)
    except FileNotFoundError:
        pass


def read_jsonl(path: str | os.PathLike[str]) -> Iterator[dict[str, Any]]:
    """Records of a JSON Lines file; a torn last line (a crash mid-write) is ignored."""
    try:
        f = open(path, "rb")
    except FileNotFoundError:
        return
    with f:
        for raw in f:
            if not raw.endswith(b"\n"):
                break  # torn tail of a killed writer
            try:
                obj = json.loads(raw)
            except ValueError:
                continue
            if isinstance(obj, dict):
                yield obj


class SnapshotWriter:
    """Appends the records of one crawl to its snapshot file, one flushed line per record.

    The file is opened in append mode and each record is written and flushed whole, so a killed
    crawl leaves complete lines (plus at most one torn tail, which :func:`read_jsonl` skips). A
    ``.pending`` marker beside the snapshot says it is not yet merged into ``<hub>.jsonl``.
    """

    def __init__(self, tree: DatasetTree, hub: str, stamp: str):
        self.tree = tree
        self.hub = hub
        self.relative = snapshot_file(hub, stamp)
        self.path = tree.path(self.relative)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        pending_marker(self.path).touch()
        self._fp = open(self.path, "ab")
        self._writer = jsonlines.Writer(self._fp, compact=True, flush=True,
                                        dumps=_dumps_ascii_safe)

    def write(self, record: dict[str, Any]) -> None:
        self._writer.write(record)

    def close(self) -> None:
        self._writer.close()
        self._fp.close()


def _dumps_ascii_safe(obj: Any) -> str:
    return json.dumps(obj, ensure_ascii=False, separators=(",", ":"))


def pending_marker(snapshot: Path) -> Path:
    return snapshot.with_name(snapshot.name + ".pending")


def pending_snapshots(tree: DatasetTree, hub: str) -> list[Path]:
    """Snapshots not yet merged (their crawl crashed or is still running), oldest first."""
    folder = tree.path(f"{segment(hub)}/snapshots")
    if not folder.is_dir():
        return []
    return sorted(p.with_name(p.name[: -len(".pending")]) for p in folder.glob("*.jsonl.pending"))


def merge_records(tree: DatasetTree, hub: str, snapshots: Iterable[Path]) -> dict[str, int]:
    """Rebuild ``<hub>.jsonl``: the newest record of every model, one line each.

    Sources are read newest first (the given snapshots, newest last in the argument, then the
    current file), keeping the first line seen per ``id``; memory holds only the set of ids.
    Returns counts: ``records`` written, ``carried`` (models in the old file that no merged
    snapshot contains: not seen by this crawl, possibly removed from the hub).
    """
    snapshots = list(snapshots)
    target = tree.path(records_file(hub))
    target.parent.mkdir(parents=True, exist_ok=True)
    with _locked(target.with_name(".merge.lock")):
        return _merge_locked(target, snapshots)


@contextlib.contextmanager
def _locked(lock_path: Path) -> Iterator[None]:
    """Serialise merges of workers sharing one data dir (distributed crawls)."""
    with open(lock_path, "a") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(lock, fcntl.LOCK_UN)


def _merge_locked(target: Path, snapshots: list[Path]) -> dict[str, int]:
    seen: set[int] = set()
    counts = {"records": 0, "carried": 0}
    fd, tmp = tempfile.mkstemp(dir=target.parent, prefix=".merge-", suffix=".jsonl")
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as out:
            writer = jsonlines.Writer(out, compact=True, dumps=_dumps_ascii_safe)
            for source, is_old in [*((s, False) for s in reversed(snapshots)), (target, True)]:
                for record in read_jsonl(source):
                    rid = record.get("id")
                    if not isinstance(rid, int) or rid in seen:
                        continue
                    seen.add(rid)
                    writer.write(record)
                    counts["records"] += 1
                    counts["carried"] += is_old
            out.flush()
            os.fsync(out.fileno())
        os.replace(tmp, target)
    except BaseException:
        _unlink_quietly(tmp)
        raise
    for snapshot in snapshots:
        _unlink_quietly(pending_marker(snapshot))
    return counts


def stable_suffix(text: str) -> str:
    """Short hash to tell apart two things that would otherwise share a path."""
    return hashlib.sha256(text.encode("utf-8", "surrogatepass")).hexdigest()[:8]
