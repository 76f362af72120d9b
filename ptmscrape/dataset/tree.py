"""The data dir: paths checked to stay inside it, and files written whole (atomic replace, single
appends), so readers and a crash see the old or the new content, never half."""

from __future__ import annotations

import contextlib
import fcntl
import itertools
import json
import os
import re
import tempfile
from pathlib import Path
from typing import Any

from ptmscrape.dataset.paths import UnsafePath, segment
from ptmscrape.dataset.processes import HOST_TAG, pid_alive


class DatasetTree:
    """Paths and files of one data dir. All returned relative paths use ``/``."""

    def __init__(self, root: str | os.PathLike[str]):
        self.root = Path(root).expanduser().resolve()  # as check_data_dir, which checked it
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
        tmp = f"{folder}/.tmp-{os.getpid()}-{HOST_TAG}-{next(_tmp_numbers)}{os.path.splitext(name)[1]}"
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
            unlink_quietly(tmp)
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
        fd, tmp = tempfile.mkstemp(dir=target.parent, prefix=f".tmp-{os.getpid()}-{HOST_TAG}-", suffix=target.suffix)
        try:
            os.fchmod(fd, file_mode())
            with os.fdopen(fd, "wb") as f:
                f.write(data)
            os.replace(tmp, target)
        except BaseException:
            unlink_quietly(tmp)
            raise
        folder_relative = relative.rpartition("/")[0]
        self._remember_folder(folder_relative, self.path(folder_relative) if folder_relative else self.root)

    def _remember_folder(self, relative: str, path: Path) -> str:
        if len(self._folders) >= 10_000:  # bounded: a hub has up to ~100k owner folders
            self._folders.clear()
        folder = self._folders[relative] = str(path)
        return folder

    def append_line(self, relative: str, obj: Any) -> None:
        """Append one JSON line to a file other crawls append to as well (the repository index),
        whole or not at all (:func:`append_shared`)."""
        target = self.path(relative)
        target.parent.mkdir(parents=True, exist_ok=True)
        append_shared(target, (json.dumps(obj, ensure_ascii=False, separators=(",", ":")) + "\n").encode())


_tmp_numbers = itertools.count()


class LineAppender:
    """An append-only file of whole lines that one writer owns (its name carries the writer's pid):
    a crawl's snapshot, its payload file.

    A line is on disk whole or not at all. A write that fails part-way (a full disk: the kernel
    takes what fits, the next ``write()`` raises ENOSPC) is cut off again (``ftruncate`` to the end
    of the last whole line), so no later line continues a torn one, and no reader ever meets a
    torn line in the middle of the file (one that could even look like a whole record). Should the
    cut itself fail, each later append tries it first, and raises while it cannot be made."""

    def __init__(self, path: str | os.PathLike[str]):
        self.fd = os.open(path, os.O_WRONLY | os.O_APPEND | os.O_CREAT | os.O_NOFOLLOW | os.O_CLOEXEC, 0o666)
        self.size = os.fstat(self.fd).st_size
        self.torn = False

    def append(self, data: bytes) -> int:
        """Append ``data`` (whole lines, each ending in a newline); return the offset it starts at."""
        if self.torn:
            self._cut()
        offset = self.size
        try:
            write_all(self.fd, data)
        except BaseException:
            # Cut back even when nothing was counted: an exception a signal handler raises as
            # os.write returns leaves its bytes on disk, uncounted. (Only on failure: one ftruncate.)
            self.torn = True
            try:
                self._cut()
            except OSError:
                pass  # the next append tries again first
            raise
        self.size = offset + len(data)
        return offset

    def _cut(self) -> None:
        os.ftruncate(self.fd, self.size)
        self.torn = False

    def close(self) -> None:
        if self.fd >= 0:
            os.close(self.fd)
            self.fd = -1


def write_all(fd: int, data: bytes) -> None:
    written = 0
    while written < len(data):  # a short write (a signal, a full disk): the rest, in order
        written += os.write(fd, data[written:])


def append_shared(path: str | os.PathLike[str], data: bytes) -> None:
    """Append ``data`` (whole lines, each ending in a newline) to a file that other writers append
    to as well (the history files, which every worker of a distributed crawl writes), whole or
    not at all, as :class:`LineAppender` does for a file one writer owns.

    The append holds an exclusive ``flock``: a write the disk cuts short is cut back to where it
    began without cutting a line another writer appended meanwhile. A torn last line (a writer
    killed mid-write, or a cut that failed or could not be made safely) is ended first, so no line
    is glued onto it."""
    # 0o666 less the umask, as any file a user creates (docs/output.md)
    fd = os.open(path, os.O_RDWR | os.O_APPEND | os.O_CREAT | os.O_NOFOLLOW | os.O_CLOEXEC, 0o666)
    try:
        try:
            fcntl.flock(fd, fcntl.LOCK_EX)
            locked = True
        except OSError:  # a file system without locks (some network ones): no cut, which could hit another's line
            locked = False
        size = os.fstat(fd).st_size
        if size and os.pread(fd, 1, size - 1) != b"\n":
            data = b"\n" + data
        try:
            write_all(fd, data)
        except BaseException:
            if locked:
                with contextlib.suppress(OSError):  # else the next append ends the torn line first
                    os.ftruncate(fd, size)
            raise
    finally:
        os.close(fd)  # releases the lock


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


def unlink_quietly(path: str | os.PathLike[str]) -> None:
    try:
        os.unlink(path)
    except FileNotFoundError:
        pass


# .tmp-<pid>-<host tag>-…; written before host tags: .tmp-<pid>-…
_TEMP_FILE = re.compile(r"\.(?:tmp|merge)-([0-9]+)-(?:([0-9a-f]{12})-)?")


def remove_stale_temp_files(tree: DatasetTree, hub: str) -> int:
    """Remove the temp files (``.tmp-<pid>-<host tag>-…``) that killed writers of this machine left
    in ``<hub>/`` outside ``repos/``; files of live processes (another worker) and of other machines
    (a data dir on a network file system) stay. Returns how many were removed."""
    removed = 0
    top = tree.path(segment(hub))
    for folder, dirs, files in os.walk(top):
        if folder == str(top) and "repos" in dirs:
            dirs.remove("repos")  # clones: git's own business (and maybe a million files)
        for name in files:
            m = _TEMP_FILE.match(name)
            if m and m.group(2) in (None, HOST_TAG) and not pid_alive(int(m.group(1))):
                unlink_quietly(os.path.join(folder, name))
                removed += 1
    return removed
