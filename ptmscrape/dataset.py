"""The dataset tree: every path under the data dir is made here, and nowhere else.

Layout (``PTM_DATA_DIR``, default ``data``)::

    <data>/<hub>/<hub>.jsonl                    latest record of every model (one line each)
    <data>/<hub>/snapshots/<hub>-<stamp>.jsonl  the records of one crawl (a time series)
    <data>/<hub>/json/payloads/<hub>-<stamp>.jsonl  raw hub payloads of one crawl, one line each
                                                (a record's MetadataFilePath: ``<file>#<offset>``)
    <data>/<hub>/repos/<owner>/<name>/          clone of a hub-hosted repository (the model's id)
    <data>/<hub>/repos/<path below the host>/   clone of any other repository (its URL's path)
    <data>/repo-index.jsonl                     repo URL -> clone path, shared by all hubs

Names from the internet become path segments only through :func:`segment`, which is injective and
can never yield ``..``, a separator, NUL or an over-long name, so no model id can leave the tree.
"""

from __future__ import annotations

import bisect
import contextlib
import datetime as dt
import fcntl
import hashlib
import itertools
import json
import os
import re
import tempfile
from array import array
from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import Any

import jsonlines

from ptmscrape.idset import IdSet

_SAFE_CHARS = re.compile(r"[A-Za-z0-9_.\-]")
_SAFE_NAME = re.compile(r"[A-Za-z0-9_\-][A-Za-z0-9_.\-]{0,119}")  # already its own segment
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
    if _SAFE_NAME.fullmatch(name):
        return name
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


UTC_TIMESTAMP = "%Y-%m-%dT%H:%M:%SZ"  # CrawledAt and every other time the dataset records


def utc_now() -> str:
    return dt.datetime.now(dt.UTC).strftime(UTC_TIMESTAMP)


# -- tree-relative paths (pure functions: mappers use them too) ---------------------------------
REPO_INDEX_FILE = "repo-index.jsonl"


def records_file(hub: str) -> str:
    return f"{segment(hub)}/{segment(hub)}.jsonl"


def snapshot_file(hub: str, stamp: str) -> str:
    return f"{segment(hub)}/snapshots/{segment(hub)}-{segment(stamp)}.jsonl"


def payload_file(hub: str, stamp: str) -> str:
    return f"{segment(hub)}/json/payloads/{segment(hub)}-{segment(stamp)}.jsonl"


def metadata_file(hub: str, owner: str, name: str) -> str:
    return f"{segment(hub)}/json/metadata/{segment(owner)}/{segment(name)}.json"


def repo_dir(hub: str, owner: str, name: str) -> str:
    return f"{segment(hub)}/repos/{segment(owner)}/{segment(name)}"


def owner_and_name(model_id: str) -> tuple[str, str]:
    """``(owner, name)`` of a hub's id of a model, split at its last ``/``; ``_`` when it has no
    owner part (``gpt2``, a slug). Payload files and hub-hosted clones are named by it."""
    owner, _, name = model_id.rpartition("/")
    return owner or "_", name


def metadata_file_of(hub: str, model_id: str) -> str:
    """Payload file of the model the hub calls ``model_id``: ``<hub>/json/metadata/<owner>/<name>.json``."""
    return metadata_file(hub, *owner_and_name(model_id))


def repo_dir_of(hub: str, model_id: str) -> str:
    """Clone of a repository hosted by the hub itself, named by the model's id (never by its URL,
    whose path may carry a mirror's prefix): ``<hub>/repos/<owner>/<name>``."""
    return repo_dir(hub, *owner_and_name(model_id))


def repo_dir_at(hub: str, path_segments: list[str]) -> str:
    """Clone of an external repository: its URL's path below the host, one folder per segment
    (GitLab's nested groups kept): ``<hub>/repos/<group>/<subgroup>/<project>``."""
    if not path_segments:
        raise UnsafePath("no repository path")
    return f"{segment(hub)}/repos/" + "/".join(segment(s) for s in path_segments)


class DatasetTree:
    """Paths and files of one data dir. All returned relative paths use ``/``."""

    def __init__(self, root: str | os.PathLike[str]):
        self.root = Path(root).resolve()
        # Checked and created folders (relative -> absolute): a crawl writes up to a million
        # files into a few thousand folders, and resolving every path costs a syscall per segment.
        self._folders: dict[str, str] = {}

    @classmethod
    def from_crawler(cls, crawler) -> DatasetTree:
        return cls(crawler.settings.get("PTM_DATA_DIR"))

    # -- paths ---------------------------------------------------------------------------
    def path(self, relative: str) -> Path:
        """Absolute path of a tree-relative path, refusing anything that resolves outside."""
        try:
            p = (self.root / relative).resolve()
        except (ValueError, OSError) as exc:  # NUL byte, symlink loop, over-long name
            raise UnsafePath(f"{relative[:200]!r}: {exc}") from None
        if p != self.root and self.root not in p.parents:
            raise UnsafePath(f"{relative!r} leaves the data dir")
        return p

    def scratch_dir(self, hub: str) -> Path:
        """Where clones are built before they land (same filesystem, so rename is atomic)."""
        return self.path(f"{segment(hub)}/repos/.incoming")

    # -- files ---------------------------------------------------------------------------
    def write_atomic(self, relative: str, data: bytes) -> None:
        """Write a whole file so readers (and a crash) see the old or the new content, never half."""
        folder_relative, _, name = relative.rpartition("/")
        folder = self._folders.get(folder_relative)
        if folder is None or name in ("", ".", "..") or os.path.islink(f"{folder}/{name}"):
            self._write_atomic_checked(relative, data)
            return
        tmp = f"{folder}/.tmp-{os.getpid()}-{next(_tmp_numbers)}{os.path.splitext(name)[1]}"
        try:
            # 0o666 less the umask, as any file a user creates: the dataset is shared with others.
            fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW | os.O_CLOEXEC, 0o666)
        except OSError:  # folder removed meanwhile, or a leftover name: the careful way
            self._folders.pop(folder_relative, None)
            self._write_atomic_checked(relative, data)
            return
        try:
            try:
                written = 0
                while written < len(data):
                    written += os.write(fd, data[written:])
            finally:
                os.close(fd)
            os.replace(tmp, f"{folder}/{name}")
        except BaseException:
            _unlink_quietly(tmp)
            raise

    def write_if_changed(self, relative: str, data: bytes) -> bool:
        """:meth:`write_atomic`, unless the file already holds exactly ``data`` (a re-crawl of an
        unchanged hub reads its files instead of replacing them). Returns whether it wrote."""
        if self._holds(relative, data):
            return False
        self.write_atomic(relative, data)
        return True

    def _holds(self, relative: str, data: bytes) -> bool:
        folder_relative, _, name = relative.rpartition("/")
        if name in ("", ".", ".."):
            return False
        folder = self._folders.get(folder_relative)
        if folder is None:
            path = self.path(folder_relative) if folder_relative else self.root
            if not path.is_dir():
                return False
            folder = self._remember_folder(folder_relative, path)
        try:  # O_NOFOLLOW: a symlink is never "unchanged"; writing it goes the careful way
            fd = os.open(f"{folder}/{name}", os.O_RDONLY | os.O_NOFOLLOW | os.O_CLOEXEC)
        except OSError:
            return False
        try:
            return os.fstat(fd).st_size == len(data) and os.read(fd, len(data) + 1) == data
        finally:
            os.close(fd)

    def _write_atomic_checked(self, relative: str, data: bytes) -> None:
        target = self.path(relative)
        target.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(dir=target.parent, prefix=f".tmp-{os.getpid()}-", suffix=target.suffix)
        try:
            os.fchmod(fd, file_mode())
            with os.fdopen(fd, "wb") as f:
                f.write(data)
            os.replace(tmp, target)
        except BaseException:
            _unlink_quietly(tmp)
            raise
        folder_relative = relative.rpartition("/")[0]
        self._remember_folder(folder_relative, self.path(folder_relative) if folder_relative else self.root)

    def _remember_folder(self, relative: str, path: Path) -> str:
        if len(self._folders) >= 10_000:  # bounded: a hub has up to ~100k owner folders
            self._folders.clear()
        folder = self._folders[relative] = str(path)
        return folder

    def append_line(self, relative: str, obj: Any) -> None:
        """Append one JSON line with a single write (concurrent appenders never interleave)."""
        target = self.path(relative)
        target.parent.mkdir(parents=True, exist_ok=True)
        line = (json.dumps(obj, ensure_ascii=False, separators=(",", ":")) + "\n").encode()
        fd = os.open(target, os.O_RDWR | os.O_APPEND | os.O_CREAT, 0o666)
        try:
            size = os.fstat(fd).st_size
            if size and os.pread(fd, 1, size - 1) != b"\n":
                line = b"\n" + line  # a crash tore the last line: never glue ours onto it
            os.write(fd, line)
        finally:
            os.close(fd)


_tmp_numbers = itertools.count()


def file_mode() -> int:
    """Mode of a new file as ``open()`` makes it: 0o666 less the process's umask. For files made
    by ``mkstemp`` (always 0o600), so the dataset is as readable as any other file of its user."""
    try:
        with open("/proc/self/status", "rb") as f:
            for line in f:
                if line.startswith(b"Umask:"):
                    return 0o666 & ~int(line.split()[1], 8)
    except (OSError, ValueError, IndexError):
        pass
    mask = os.umask(0o077)  # no /proc (not Linux): read it by setting it, and put it back at once
    os.umask(mask)
    return 0o666 & ~mask


def _unlink_quietly(path: str | os.PathLike[str]) -> None:
    try:
        os.unlink(path)
    except FileNotFoundError:
        pass


_TEMP_FILE = re.compile(r"\.(?:tmp|merge)-([0-9]+)-")


def remove_stale_temp_files(tree: DatasetTree, hub: str) -> int:
    """Remove the temp files (``.tmp-<pid>-…``) that killed writers left in ``<hub>/`` outside
    ``repos/``; files of live processes (another worker) stay. Returns how many were removed."""
    removed = 0
    top = tree.path(segment(hub))
    for folder, dirs, files in os.walk(top):
        if folder == str(top) and "repos" in dirs:
            dirs.remove("repos")  # clones: git's own business (and maybe a million files)
        for name in files:
            m = _TEMP_FILE.match(name)
            if m and not pid_alive(int(m.group(1))):
                _unlink_quietly(os.path.join(folder, name))
                removed += 1
    return removed


def pid_alive(pid: int) -> bool:
    """Whether a process with this pid exists (leftovers of dead writers may be removed)."""
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def read_jsonl(path: str | os.PathLike[str]) -> Iterator[dict[str, Any]]:
    """Records of a JSON Lines file; a torn last line (a crash mid-write) is ignored."""
    for raw in _complete_lines(path):
        obj = _json_object(raw)
        if obj is not None:
            yield obj


def record_ids(path: str | os.PathLike[str]) -> Iterator[Any]:
    """The ``id`` of every record of a JSON Lines file that has one, in order: the ids of
    :func:`read_jsonl`, without decoding the lines this module wrote (see ``_OWN_LINE``)."""
    for raw in _complete_lines(path):
        own = _OWN_LINE.fullmatch(raw)
        if own:
            yield int(own.group(1))
            continue
        obj = _json_object(raw)
        if obj is not None and "id" in obj:
            yield obj["id"]


def _complete_lines(path: str | os.PathLike[str]) -> Iterator[bytes]:
    try:
        f = open(path, "rb")
    except FileNotFoundError:
        return
    with f:
        for raw in f:
            if not raw.endswith(b"\n"):
                break  # torn tail of a killed writer
            yield raw


def _json_object(raw: bytes) -> dict[str, Any] | None:
    try:
        obj = json.loads(raw)
    except ValueError:
        return None
    return obj if isinstance(obj, dict) else None


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
        # flush=True: each line leaves the buffer whole, in one write() for lines under 8 KiB.
        self._writer = jsonlines.Writer(open(self.path, "ab"), dumps=compact_json, flush=True)

    def write(self, record: dict[str, Any]) -> None:
        self._writer.write(record)

    def close(self) -> None:
        fp = self._writer._fp  # jsonlines closes only files it opened itself
        self._writer.close()
        fp.close()


class PayloadWriter:
    """Appends the raw payloads of one crawl to one JSON Lines file (O(1) files per crawl, not
    one per model): each payload is one line, written whole with a single ``write()`` before its
    record is stored, so a killed crawl leaves whole lines plus at most one torn tail that no
    record points to. :meth:`write` returns the payload's locator, ``<file>#<byte offset>``
    (the record's ``MetadataFilePath``; :func:`read_payload` reads it back)."""

    def __init__(self, tree: DatasetTree, hub: str, stamp: str):
        self.tree = tree
        self.relative = payload_file(hub, stamp)
        self._fd = -1  # opened at the first payload: a crawl that writes none leaves no file
        self._size = 0
        self._prefix = self.relative + "#"

    def _open(self) -> None:
        path = self.tree.path(self.relative)
        path.parent.mkdir(parents=True, exist_ok=True)
        self._fd = os.open(path, os.O_WRONLY | os.O_APPEND | os.O_CREAT | os.O_NOFOLLOW | os.O_CLOEXEC, 0o666)
        self._size = os.fstat(self._fd).st_size
        if self._size:  # another run of this stamp (cannot happen: the pid is in it) tore a line
            self._size += os.write(self._fd, b"\n")

    def write(self, line: bytes) -> str:
        """Append ``line`` (compact JSON, no newline); return its locator."""
        if self._fd < 0:
            self._open()
        offset = self._size
        data = line + b"\n"
        written = os.write(self._fd, data)
        while written < len(data):  # a short write (signal, full disk): the rest, in order
            written += os.write(self._fd, data[written:])
        self._size += len(data)
        return f"{self._prefix}{offset}"

    def close(self) -> None:
        if self._fd >= 0:
            os.close(self._fd)
            self._fd = -1


# The payload locator of a record line as this module writes it (the first MetadataFilePath key:
# ModelHub comes before any free text, and a quote inside a string value is escaped).
_LOCATOR = re.compile(rb'"MetadataFilePath":"([^"#\\]{1,2000})#([0-9]{1,15})"')
_ID_PREFIX = re.compile(rb'\{"id":(-?[0-9]{1,20}),')
_OFFSET_BITS = 40  # a payload file up to 1 TB; the file's number in the bits above


class StoredPayloads:
    """Where ``<hub>.jsonl`` says each model's payload is, to leave unchanged payloads alone.

    A re-crawl writes a model's payload only when it differs from the stored one (compared byte
    for byte with one ``pread``); an unchanged one keeps its record's locator, pointing into the
    earlier crawl's file. So a re-crawl of an unchanged hub writes no payload, and its records
    equal the previous crawl's. Memory: 16 bytes a model (two sorted arrays), not a dict.
    """

    def __init__(self, tree: DatasetTree, hub: str):
        self.tree = tree
        self.files: list[str] = []
        numbers: dict[bytes, int] = {}
        ids, locations = array("q"), array("q")
        for raw in _complete_lines(tree.path(records_file(hub))):
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
        self._fds: dict[int, int] = {}

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
            try:
                fd = os.open(self.tree.path(self.files[number]), os.O_RDONLY | os.O_NOFOLLOW | os.O_CLOEXEC)
            except (OSError, UnsafePath):
                fd = -1
            self._fds[number] = fd
        if fd < 0 or os.pread(fd, len(line) + 1, offset) != line + b"\n":
            return None
        return f"{self.files[number]}#{offset}"

    def close(self) -> None:
        for fd in self._fds.values():
            if fd >= 0:
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


_COMPACT = json.JSONEncoder(ensure_ascii=False, separators=(",", ":"))
compact_json = _COMPACT.encode


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


# A whole line as this module writes records: compact JSON, "id" first. Such lines are copied
# as they are; re-encoding a million of them would give the same bytes, at 20 µs a line.
_OWN_LINE = re.compile(rb'\{"id":(-?[0-9]{1,20}),".*\}\n', re.DOTALL)


def _merge_locked(target: Path, snapshots: list[Path]) -> dict[str, int]:
    # Under the lock no other merge runs: a temp file here is a killed merge's leftover.
    for leftover in target.parent.glob(".merge-*.jsonl"):
        _unlink_quietly(leftover)
    seen = IdSet()
    counts = {"records": 0, "carried": 0}
    fd, tmp = tempfile.mkstemp(dir=target.parent, prefix=".merge-", suffix=".jsonl")
    try:
        os.fchmod(fd, file_mode())
        with os.fdopen(fd, "wb") as out:
            reencode = jsonlines.Writer(out, dumps=compact_json)
            for source, is_old in [*((s, False) for s in reversed(snapshots)), (target, True)]:
                for raw in _complete_lines(source):
                    own = _OWN_LINE.fullmatch(raw)
                    if own:
                        rid, line = int(own.group(1)), raw
                    else:
                        record = _json_object(raw)
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
        _unlink_quietly(tmp)
        raise
    for snapshot in snapshots:
        _unlink_quietly(pending_marker(snapshot))
    return counts


def stable_suffix(text: str) -> str:
    """Short hash to tell apart two things that would otherwise share a path."""
    return hashlib.sha256(text.encode("utf-8", "surrogatepass")).hexdigest()[:8]
