"""A clone's HEAD commit and origin URL, read from the files of its ``.git`` (no git process).

Only the plain layout ``git clone`` makes is read: a ``.git`` directory with ``HEAD``, loose or
packed refs, loose objects or version-2 pack indexes, and a config file written the way git writes
it. Whenever anything is not plain (a linked worktree, alternates, ``GIT_DIR`` and friends in the
environment, a tag or delta object, an odd config line...), :func:`read_clone` answers None and
the caller (``ptmscrape.gitrepo.head_sha``/``head_and_origin``) asks GitPython and git instead.
"""

from __future__ import annotations

import mmap
import os
import re
import struct
import zlib
from typing import Literal

# Environment variables with which GitPython (and git) would look elsewhere than <path>/.git.
_LOCATING_ENV = ("GIT_DIR", "GIT_COMMON_DIR", "GIT_OBJECT_DIRECTORY", "GIT_WORK_TREE",
                 "GIT_ALTERNATE_OBJECT_DIRECTORIES")
_REF_NAME = re.compile(r"^refs/(?!.*\.\.)(?!.*//)[A-Za-z0-9._/\-]{1,200}$")
_HEX40 = re.compile(r"^[0-9a-f]{40}$")
# The lines of a config file as git itself writes them; anything else goes to GitPython.
_CONFIG_SECTION = re.compile(r'^\[([a-z0-9-]+)(?: "([^"\\]*)")?\]$')
_CONFIG_ENTRY = re.compile(r"^\t([a-z][a-z0-9-]*)(?: = (.*))?$")


def read_clone(path: str | os.PathLike[str]) -> tuple[str, str | None] | None:
    """``(HEAD commit, origin URL or None)`` of a clone in the plain layout ``git clone`` makes,
    read from its files alone; None whenever anything is not plain (the caller then asks git)."""
    if any(os.environ.get(name) for name in _LOCATING_ENV):
        return None
    git_dir = os.path.join(os.fspath(path), ".git")
    try:
        with open(os.path.join(git_dir, "HEAD"), "rb") as f:
            head = f.read(512).decode("ascii").strip()
        if (os.path.lexists(os.path.join(git_dir, "commondir")) or not os.path.isdir(os.path.join(git_dir, "refs"))
                or not os.path.isdir(git_dir) or os.path.islink(os.path.join(git_dir, "HEAD"))):
            return None
        if head.startswith("ref:"):
            sha = _read_ref(git_dir, head[4:].strip())
        else:
            sha = head
        if not sha or not _HEX40.fullmatch(sha) or not commit_in_store(os.path.join(git_dir, "objects"), sha):
            return None
        with open(os.path.join(git_dir, "config"), "rb") as f:
            config = f.read(1 << 20).decode("utf-8")
    except (OSError, ValueError):
        return None
    origin = _origin_in_config(config)
    return None if origin is False else (sha, origin)


def _read_ref(git_dir: str, ref: str) -> str | None:
    """Commit a (non-symbolic) branch ref points to, from its file or ``packed-refs``."""
    if not _REF_NAME.fullmatch(ref) or any(part.startswith(".") or part.endswith(".lock") for part in ref.split("/")):
        return None
    try:
        with open(os.path.join(git_dir, *ref.split("/")), "rb") as f:
            return f.read(128).decode("ascii").strip()
    except FileNotFoundError:
        pass
    except IsADirectoryError:
        return None
    with open(os.path.join(git_dir, "packed-refs"), "rb") as f:
        for line in f.read().decode("utf-8").splitlines():
            if line[:1] not in ("#", "^") and line.endswith(" " + ref):
                return line.split(" ", 1)[0]
    return None


def _origin_in_config(text: str) -> str | None | Literal[False]:
    """URL of ``remote "origin"`` in a repository's config written the way ``git clone`` and
    ``git config`` write it; None if there is none; False if any line is written otherwise
    (comments, includes, other case or spacing, quotes, continued lines, repeated URLs...)."""
    section = None
    urls: list[str] = []
    for line in text.splitlines():
        if line.startswith("["):
            m = _CONFIG_SECTION.match(line)
            if not m or m.group(1) in ("include", "includeif"):
                return False
            section = m.groups()
            continue
        m = _CONFIG_ENTRY.match(line)
        if not m or section is None or any(c in line for c in "\"\\#;"):
            return False
        if section == ("remote", "origin") and m.group(1) == "url":
            urls.append(m.group(2) or "")
    if len(urls) > 1:
        return False
    return urls[0] if urls else None


_OBJ_COMMIT = 1  # pack entry type


def commit_in_store(objects: str, sha: str) -> bool:
    """True if ``sha`` is a commit object in the loose objects or a pack of ``objects``, found by
    reading files only; False if this cannot tell (the caller then asks git)."""
    if len(sha) != 40 or os.path.exists(os.path.join(objects, "info", "alternates")):
        return False
    try:
        with open(os.path.join(objects, sha[:2], sha[2:]), "rb") as f:
            head = zlib.decompressobj().decompress(f.read(64), 32)
        return head.startswith(b"commit ") and b"\0" in head
    except FileNotFoundError:
        pass
    except (OSError, zlib.error):
        return False
    binsha = bytes.fromhex(sha)
    pack_dir = os.path.join(objects, "pack")
    try:
        names = os.listdir(pack_dir)
    except OSError:
        return False
    for name in names:
        if name.endswith(".idx"):
            offset = _pack_offset(os.path.join(pack_dir, name), binsha)
            if offset is not None:
                return _pack_entry_type(os.path.join(pack_dir, name[:-4] + ".pack"), offset) == _OBJ_COMMIT
    return False


def _pack_offset(idx_path: str, binsha: bytes) -> int | None:
    """Offset of ``binsha`` in the pack of a version-2 pack index, or None (absent, unreadable)."""
    try:
        with open(idx_path, "rb") as f, mmap.mmap(f.fileno(), 0, access=mmap.ACCESS_READ) as idx:
            if idx[:8] != b"\377tOc\0\0\0\2" or len(idx) < 8 + 1024:
                return None
            first = binsha[0]
            lo = struct.unpack_from(">I", idx, 8 + 4 * (first - 1))[0] if first else 0
            hi = struct.unpack_from(">I", idx, 8 + 4 * first)[0]
            total = struct.unpack_from(">I", idx, 8 + 4 * 255)[0]
            shas = 8 + 1024
            if not lo <= hi <= total or len(idx) < shas + total * 28:
                return None
            while lo < hi:
                mid = (lo + hi) // 2
                at = shas + 20 * mid
                found = idx[at:at + 20]
                if found == binsha:
                    offset = struct.unpack_from(">I", idx, shas + total * 24 + 4 * mid)[0]
                    if offset & 0x80000000:  # index into the table of 64-bit offsets
                        offset = struct.unpack_from(">Q", idx, shas + total * 28 + 8 * (offset & 0x7FFFFFFF))[0]
                    return offset
                if found < binsha:
                    lo = mid + 1
                else:
                    hi = mid
    except (OSError, ValueError, struct.error):
        return None
    return None


def _pack_entry_type(pack_path: str, offset: int) -> int | None:
    try:
        with open(pack_path, "rb") as f:
            if f.read(4) != b"PACK":
                return None
            f.seek(offset)
            byte = f.read(1)
    except (OSError, ValueError):
        return None
    return (byte[0] >> 4) & 7 if byte else None
