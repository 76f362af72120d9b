"""Helpers shared by the hub mappers: stable ids, the record skeleton, tolerant field readers."""

from __future__ import annotations

import datetime as dt
import hashlib
import re
import time
from typing import Any
from urllib.parse import unquote

from ptmscrape.dataset import paths
from ptmscrape.items import SCHEMA_VERSION, load_schema

_ARXIV = re.compile(r"^\d{4}\.\d{4,5}(v\d+)?$|^[a-z\-]+(\.[A-Z]{2})?/\d{7}(v\d+)?$")
_ARXIV_VERSION = re.compile(r"v\d+$")


class MappingError(ValueError):
    """The raw payload cannot become a record; the message says why."""


def stable_id(hub: str, key: str) -> int:
    """A positive 53-bit integer from hub name and the hub's id of the model.

    The same model gets the same id on every crawl and every machine (no coordination), and the
    id is exact in JSON readers that use doubles (JavaScript, pandas).
    """
    digest = hashlib.sha256(f"{hub}\x00{key}".encode("utf-8", "surrogatepass")).digest()
    return (int.from_bytes(digest[:8], "big") >> 11) or 1


def _schema_keys() -> tuple[tuple[str, bool], ...]:
    """(key, takes a list) for every property of the record schema, in the schema's order."""
    properties = load_schema()["properties"]
    return tuple((key, "array" in (spec.get("type") if isinstance(spec.get("type"), list) else [spec.get("type")]))
                 for key, spec in properties.items())


# Every record carries every schema key, so all hubs give one set of columns: a key a hub has no
# value for is null (or [] for a list). Read from the schema, so a new key needs no code here.
SCHEMA_KEYS = _schema_keys()


def new_record(*, hub: str, hub_url: str, object_id: str, owner: str, name: str,
               model_url: str, owner_url: str, stable_key: str | None = None,
               model_id: str | None = None) -> dict[str, Any]:
    """The required part of a record, every other schema key null or []; mappers fill in the rest.

    ``model_id`` is the hub's id of the model (what it lists and serves it by): the payload file
    is named by it (``paths.metadata_file_of``); without it, by ``owner``/``name``.
    """
    record = {
        "id": stable_id(hub, stable_key or object_id),
        "SchemaVersion": SCHEMA_VERSION,
        "ModelHub": {
            "ModelHubName": hub,
            "ModelHubURL": hub_url,
            "MetadataFilePath": paths.metadata_file_of(hub, model_id) if model_id
            else paths.metadata_file(hub, owner or "_", name),
            "MetadataObjectID": object_id,
        },
        "ModelName": name,
        "ModelOwner": owner,
        "ModelURL": model_url,
        "ModelOwnerURL": owner_url,
        "Datasets": [],
        "ModelPaperDOIs": [],
        "LatestGitCommitSHA": None,
        "RepoURL": None,
        "RepoBranch": None,
        "RepoSubPath": None,
        "RepoPath": None,
        "CloneStatus": "pending",
        "CrawledAt": crawled_at(),
    }
    known = _other_keys
    if known is None or known[0] is not SCHEMA_KEYS:
        known = _empty_keys(record)
    _, nulls, lists = known
    record.update(nulls)
    for key in lists:
        record[key] = []
    return record


# The schema keys new_record() leaves empty, in the schema's order: null, then [] for the lists
# (fresh ones: a mapper may append to them); worked out from the first record for the SCHEMA_KEYS
# they were read from.
_other_keys: tuple[tuple[tuple[str, bool], ...], dict[str, None], tuple[str, ...]] | None = None


def _empty_keys(record: dict[str, Any]) -> tuple[tuple[tuple[str, bool], ...], dict[str, None], tuple[str, ...]]:
    global _other_keys
    others = dict.fromkeys(key for key, _ in SCHEMA_KEYS if key not in record)
    _other_keys = SCHEMA_KEYS, others, tuple(key for key, is_list in SCHEMA_KEYS if is_list and key in others)
    return _other_keys


_now: tuple[int, str] = (-1, "")  # (second, its UTC_TIMESTAMP text), replaced whole


def crawled_at() -> str:
    """``paths.utc_now()`` (UTC, to the second), formatted once per second rather than once per
    record: a crawl maps thousands of records a second."""
    global _now
    second = int(time.time())
    now = _now
    if second != now[0]:
        now = _now = (second, time.strftime(paths.UTC_TIMESTAMP, time.gmtime(second)))
    return now[1]


def utc_time(value: Any) -> dt.datetime | None:
    """An ISO 8601 time (``2023-10-05T13:31:16.745``, ``…Z``, ``…+02:00``) as an aware UTC
    datetime; a time without a zone is taken as UTC (the hubs that drop the zone serve UTC).
    None for anything else: another type, unparseable text, a year before 1000."""
    if not isinstance(value, str) or not value.strip() or len(value) > 64:
        return None
    try:
        when = dt.datetime.fromisoformat(value.strip())
        when = when.replace(tzinfo=dt.UTC) if when.tzinfo is None else when.astimezone(dt.UTC)
    except (ValueError, OverflowError):
        return None
    return when if when.year >= 1000 else None  # strftime writes no leading zeros


def utc_text(when: dt.datetime | None) -> str | None:
    """An aware UTC datetime as the dataset writes every time (``paths.UTC_TIMESTAMP``)."""
    return when.strftime(paths.UTC_TIMESTAMP) if when is not None else None


def utc_timestamp(value: Any) -> str | None:
    """:func:`utc_time` as the dataset writes it: ``2023-10-05T13:31:16.745`` -> ``2023-10-05T13:31:16Z``."""
    return utc_text(utc_time(value))


def text(value: Any, limit: int = 10_000) -> str | None:
    """A string field, or None when the hub sent another type; over-long text is cut."""
    if isinstance(value, str):
        return value[:limit]
    return None


def display_name(value: Any, name: str) -> str | None:
    """The hub's human-readable name of a model (a title, ModelScope's ``ChineseName``), when it says
    more than ``name`` (the schema's ``DisplayName``: "when it differs from ModelName")."""
    shown = (text(value, 500) or "").strip()
    return shown if shown and shown != name else None


def id_text(value: Any, limit: int, label: str) -> str | None:
    """A string field a model's identity is built from (its id, slug, handle, folder…), or None
    when the hub sent another type. One over ``limit`` is refused, never cut: two ids sharing
    their first ``limit`` characters would else become one model."""
    if isinstance(value, str) and len(value) > limit:
        raise MappingError(f"{label} is {len(value)} characters long, over the limit of {limit}: "
                           f"{value[:100]!r}")
    return value if isinstance(value, str) else None


# The largest count a record carries: SQLite, Parquet (int64) and most readers hold no more, and no
# hub has more downloads, likes, bytes or parameters than that.
MAX_COUNT = 2**63 - 1


def count(value: Any) -> int | None:
    """A non-negative integer field, or None for another type, a negative or an impossible size."""
    if isinstance(value, bool) or not isinstance(value, int) or not 0 <= value <= MAX_COUNT:
        return None
    return value


def str_list(value: Any, limit: int = 1000) -> list[str]:
    """A list of strings from a string, a list, or junk (ignored), order kept, no duplicates."""
    items = [value] if isinstance(value, str) else value if isinstance(value, list) else []
    out: list[str] = []
    for item in items:
        if isinstance(item, str) and item and item not in out:
            out.append(item[:500])
        if len(out) >= limit:
            break
    return out


def arxiv_doi(arxiv_id: str) -> str | None:
    """DataCite DOI of an arXiv paper: ``10.48550/arXiv.<id>`` (version suffix dropped)."""
    arxiv_id = arxiv_id.strip()
    if not _ARXIV.fullmatch(arxiv_id):
        return None
    return "10.48550/arXiv." + _ARXIV_VERSION.sub("", arxiv_id)


def github_owner_url(repo_url: str | None) -> str:
    """``https://github.com/<owner>`` for a GitHub repo URL, else ''."""
    if not repo_url:
        return ""
    m = re.match(r"^https?://(www\.)?github\.com/([^/]+)", repo_url)
    return f"https://github.com/{m.group(2)}" if m else ""


_ARXIV_LINK = re.compile(r"^https?://(?:www\.|export\.)?arxiv\.org/(?:abs|pdf)/([^?#]+?)(?:\.pdf)?/?(?:[?#].*)?$", re.I)
_DOI_LINK = re.compile(r"^https?://(?:dx\.|www\.)?doi\.org/(10\.\d{4,9}/[^?#\s]+)", re.I)


def paper_doi(url: Any) -> str | None:
    """The DOI a paper link names: arXiv abs/pdf pages -> ``10.48550/arXiv.<id>`` (no version),
    ``doi.org`` links -> their DOI; None for any other link."""
    if not isinstance(url, str):
        return None
    url = url.strip()
    if match := _ARXIV_LINK.match(url):
        return arxiv_doi(match.group(1))
    if match := _DOI_LINK.match(unquote(url)):
        return match.group(1).rstrip(".")
    return None
