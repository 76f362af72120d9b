"""ModelScope model objects -> uniform records.

The objects come from the site-wide catalogue (``PUT /api/v1/dolphin/models``, ``Data.Model.Models``)
or the SDK's per-owner listing (``PUT /api/v1/models/``, ``Data.Models``). Field names follow the
modelscope SDK (``HubApi.list_models``, ``ModelInfo``): ``Path`` (the owner), ``Name``, ``Id``,
``ChineseName``, ``License``, ``Downloads``, ``Stars``, ``CreatedTime``/``LastUpdatedTime`` (Unix
seconds or ISO text), ``Tasks`` (``[{Name, ChineseName}]`` or names), ``Libraries``,
``Architectures``, ``ModelType``, ``Tags``, ``RelatedArxivId``, ``Organization``. No real response was
ever recorded, so every field is read tolerantly: a field of another type becomes null or empty.
"""

from __future__ import annotations

import time
from typing import Any
from urllib.parse import quote

from ptmscrape.dataset import paths
from ptmscrape.items import RawModelItem
from ptmscrape.mappers.common import (
    MappingError,
    arxiv_doi,
    count,
    display_name,
    id_text,
    new_record,
    str_list,
    text,
    utc_timestamp,
)

DEFAULT_BASE = "https://www.modelscope.cn"
# Latest plausible Unix time in seconds (year 9999); larger numbers are milliseconds or junk.
_MAX_SECONDS = 253402300799


def model_id(obj: Any, listed_owner: str | None = None) -> tuple[str, str]:
    """``(owner, name)`` of a model object, or MappingError naming what is wrong.

    ``Path`` is the owner; the per-owner listing may leave it out, and then the owner asked for
    (``listed_owner``) is used. Neither part may be empty or contain ``/``.
    """
    if not isinstance(obj, dict):
        raise MappingError(f"payload is {type(obj).__name__}, not an object")
    owner = obj.get("Path") if obj.get("Path") not in (None, "") else obj.get("Owner")
    if owner in (None, "") and isinstance(listed_owner, str):
        owner = listed_owner
    name = obj.get("Name")
    for label, value in (("Path", owner), ("Name", name)):
        if not isinstance(value, str) or not value or "/" in value or "\\" in value:
            raise MappingError(f"missing or malformed {label!r}: {str(value)[:100]!r}")
    assert isinstance(owner, str) and isinstance(name, str)  # checked just above
    return owner, name


def map_raw(raw: RawModelItem) -> dict[str, Any]:
    obj = raw.payload
    owner, name = model_id(obj, raw.context.get("listed_owner"))
    base = str(raw.context.get("base_url") or DEFAULT_BASE).rstrip("/")
    key = f"{owner}/{name}"
    hub_id = obj.get("Id")
    object_id = (id_text(str(hub_id), 100, "'Id'") if isinstance(hub_id, (int, str))
                 and not isinstance(hub_id, bool) else None) or key
    o, n = quote(owner, safe=""), quote(name, safe="")
    owner_page = "organization" if isinstance(obj.get("Organization"), dict) else "profile"
    tasks = _tasks(obj.get("Tasks"))
    libraries = str_list(obj.get("Libraries")) or str_list(obj.get("Frameworks"))
    architectures = str_list(obj.get("Architectures"))

    record = new_record(
        hub=raw.hub, hub_url=base, object_id=object_id, owner=owner, name=name,
        model_url=f"{base}/models/{o}/{n}", owner_url=f"{base}/{owner_page}/{o}",
        # "owner/name" is what the hub, its SDK and its git URLs identify a model by, and what
        # both listings give; the numeric Id is not documented to survive anything.
        stable_key=key,
    )
    record.update(
        ModelPaperDOIs=_dois(obj.get("RelatedArxivId")),
        ModelTask=tasks[0] if tasks else None,
        ModelTasks=tasks,
        ModelArchitecture=architectures[0] if architectures else next(iter(str_list(obj.get("ModelType"))), None),
        License=text(obj.get("License"), 200) or None,
        Downloads=count(obj.get("Downloads")),
        Likes=count(obj.get("Stars")) if count(obj.get("Stars")) is not None else count(obj.get("Likes")),
        Tags=str_list(obj.get("Tags")),
        Library=libraries[0] if libraries else None,
        CreatedAt=_time(obj.get("CreatedTime")),
        LastModified=_time(obj.get("LastUpdatedTime")),
        DisplayName=display_name(obj.get("ChineseName"), name),
        # Each model is its own git repository (LFS for weights), at the hub's default branch.
        RepoURL=f"{base}/{o}/{n}.git",
        # The hub's own repository: its clone is named by the model's id, never by the URL's
        # path (a mirror's base URL may carry one).
        RepoPath=paths.repo_dir_of(raw.hub, f"{owner}/{name}"),
    )
    return record


def _tasks(value: Any) -> list[str]:
    names = [item.get("Name") if isinstance(item, dict) else item
             for item in (value if isinstance(value, list) else [value])]
    return str_list(names, limit=50)


def _dois(value: Any) -> list[str]:
    dois: list[str] = []
    for arxiv_id in str_list(value):
        doi = arxiv_doi(arxiv_id)
        if doi and doi not in dois:
            dois.append(doi)
    return dois


def _time(value: Any) -> str | None:
    """Unix seconds (also as digits) or ISO 8601 text -> ``YYYY-MM-DDTHH:MM:SSZ`` (UTC), as every
    time in the dataset; text with a zone offset is converted, text without one read as UTC."""
    if isinstance(value, str):
        value = value.strip()
        # Digits are Unix seconds (nine to eleven: 1973 to 5138); eight are an ISO date (20240918).
        if not (value.isascii() and value.isdigit() and 9 <= len(value) <= 11):
            return utc_timestamp(value)
        value = int(value)
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not 0 <= value <= _MAX_SECONDS:
        return None
    return time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(int(value)))
