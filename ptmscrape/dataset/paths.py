"""Path rules of the dataset tree: every tree-relative path is made here, as pure functions
(mappers use them too).

Names from the internet become path segments only through :func:`segment`, which is injective and
can never yield ``..``, a separator, NUL or an over-long name, so no model id can leave the tree.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import re

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
    return _fit("".join(out), name)


def _fit(safe: str, name: str) -> str:
    """``safe`` (the encoding of ``name``), cut and suffixed with a hash of ``name`` if over-long."""
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


def branch_dir(relative: str, branch: str) -> str:
    """Clone of a repository checked out at a branch a model named (``RepoBranch``), beside the
    repository's own folder: ``…/repos/acme/garden`` -> ``…/repos/acme/garden%40r2`` (``@r2``)."""
    parent, _, last = relative.rpartition("/")
    return f"{parent}/{_fit(f'{last}%40{segment(branch)}', f'{relative}@{branch}')}"


def stable_suffix(text: str) -> str:
    """Short hash to tell apart two things that would otherwise share a path."""
    return hashlib.sha256(text.encode("utf-8", "surrogatepass")).hexdigest()[:8]
