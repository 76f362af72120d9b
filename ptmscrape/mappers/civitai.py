"""Civitai ``/api/v1/models`` items -> uniform records.

One record per model. A Civitai model is not itself downloadable: it is a named page with
versions (``v7``, ``v7 inpainting``), each separately downloadable (its own download link, files,
base model and download count). The versions become ``ModelVersions``: per version its name and id,
``BaseModel`` (``SD 1.5``), ``BaseModelType`` (``Standard``, ``Inpainting``), ``Downloads``
(``stats.downloadCount``), ``DownloadURL`` (``downloadUrl``), ``TrainedWords`` (its trigger words),
and its files (file size in bytes from ``sizeKB``, format, SHA256 and the other hashes, pickle and
virus scan results, download URL: described, never fetched); the license flags become
``LicensePermissions`` (``allowCommercialUse`` is a list in today's API and a single string such as
``"Sell"`` in older answers: both become a list); ``nsfw``/``nsfwLevel`` are kept as data.
``Downloads`` and ``Likes`` are the model's download and thumbs-up counts; ``CreatedAt`` and
``LastModified`` are the earliest and latest ``publishedAt`` of its versions (the listing has no model
dates). Every time (those, each version's ``CreatedAt``, each file's ``ScannedAt``) is written as the
dataset writes times, UTC to the second (``2023-10-05T13:31:16Z``): ``publishedAt`` comes without a
zone (``2023-10-05T13:31:16.745``; the API drops the zone of its UTC times) and is read as UTC; an
unreadable time is null. ``BaseModels`` the versions' base models (``SD 1.5``, ``SDXL 1.0``);
``UsedStorage`` the sum of all file sizes. Civitai has no git repositories (what it serves are the
versions' files): ``CloneStatus`` says so.
"""

from __future__ import annotations

import datetime as dt
import re
from typing import Any
from urllib.parse import quote

from ptmscrape.dataset import paths
from ptmscrape.items import RawModelItem
from ptmscrape.mappers.common import (
    MappingError,
    count,
    new_record,
    str_list,
    text,
    utc_text,
    utc_time,
    utc_timestamp,
)

HUB_URL = "https://civitai.com"
NO_REPOSITORY = "skipped: the hub has no git repository"
_SHA256 = re.compile(r"^[0-9a-fA-F]{64}$")
MAX_VERSIONS = 1000
MAX_FILES = 100
MAX_TRAINED_WORDS = 100


def map_raw(raw: RawModelItem) -> dict[str, Any]:
    model = raw.payload
    if not isinstance(model, dict):
        raise MappingError(f"model is {type(model).__name__}, not an object")
    model_id = _id(model.get("id"))
    if model_id is None:
        raise MappingError(f"missing or malformed 'id': {str(model.get('id'))[:100]!r}")
    name = text(model.get("name"), 300)
    if not name or not name.strip():
        raise MappingError(f"model {model_id} has no name")
    base = str(raw.context.get("base_url") or HUB_URL).rstrip("/")
    creator = model.get("creator")
    if not isinstance(creator, dict):
        creator = {}
    owner = (text(creator.get("username"), 200) or "").strip()

    record = new_record(
        hub=raw.hub, hub_url=base, object_id=model_id, owner=owner, name=name,
        model_url=f"{base}/models/{model_id}",
        owner_url=f"{base}/user/{quote(owner, safe='')}" if owner else "",
    )
    # Names are not unique on Civitai (and change); ids are: the payload file is named by the id.
    record["ModelHub"]["MetadataFilePath"] = paths.metadata_file(raw.hub, owner or "_", model_id)

    # publishedAt is served without a zone ("2023-10-05T13:31:16.745"): Civitai's API drops the
    # zone of its UTC times. Earliest and latest are picked from the parsed times.
    dated = [(utc_time(v.get("publishedAt")), v)
             for v in _list(model.get("modelVersions"))[:MAX_VERSIONS] if isinstance(v, dict)]
    versions = [_version(v, published_at) for published_at, v in dated]
    published = sorted(when for when, _ in dated if when is not None)
    stats = model.get("stats")
    if not isinstance(stats, dict):
        stats = {}
    sizes = [f["Size"] for v in versions for f in v["Files"] if f["Size"] is not None]
    record.update(
        ModelType=text(model.get("type"), 100),
        NSFW=model.get("nsfw") if isinstance(model.get("nsfw"), bool) else None,
        NSFWLevel=count(model.get("nsfwLevel")),
        LicensePermissions={
            "AllowCommercialUse": _commercial_use(model.get("allowCommercialUse")),
            "AllowDerivatives": _bool(model.get("allowDerivatives")),
            "AllowDifferentLicense": _bool(model.get("allowDifferentLicense")),
            "AllowNoCredit": _bool(model.get("allowNoCredit")),
        },
        ModelVersions=versions,
        Downloads=count(stats.get("downloadCount")),
        Likes=count(stats.get("thumbsUpCount")),
        Tags=str_list(model.get("tags")),
        BaseModels=str_list([v["BaseModel"] for v in versions if v["BaseModel"]]),
        CreatedAt=utc_text(published[0]) if published else None,
        LastModified=utc_text(published[-1]) if published else None,
        UsedStorage=sum(sizes) if sizes else None,
        RepoURL=None,
        CloneStatus=NO_REPOSITORY,
    )
    return record


def _version(version: dict, published_at: dt.datetime | None) -> dict[str, Any]:
    files = [_file(f) for f in _list(version.get("files"))[:MAX_FILES] if isinstance(f, dict)]
    # What the version's download link gives is its primary file; the others are alternatives
    # (Counterfeit-V3.0's v3.0: a 5.67 GB and a 4.24 GB copy of one model) or extras.
    primary = next((f for f in files if f["Primary"] is True), None)
    sizes = [f["Size"] for f in ([primary] if primary else files) if f["Size"] is not None]
    stats = version.get("stats")
    if not isinstance(stats, dict):
        stats = {}
    return {
        "Name": text(version.get("name"), 300),
        "VersionID": _id(version.get("id")),
        "BaseModel": text(version.get("baseModel"), 100),
        "BaseModelType": text(version.get("baseModelType"), 100),
        "CreatedAt": utc_text(published_at),
        "Digest": None,
        "Size": sum(sizes) if sizes else None,
        "Downloads": count(stats.get("downloadCount")),
        "DownloadURL": text(version.get("downloadUrl"), 2000),
        "TrainedWords": str_list(version.get("trainedWords"), limit=MAX_TRAINED_WORDS),
        "Error": None,
        "Files": files,
    }


def _file(entry: dict) -> dict[str, Any]:
    hashes = entry.get("hashes")
    if not isinstance(hashes, dict):
        hashes = {}
    hashes = {str(k)[:20]: v[:200] for k, v in list(hashes.items())[:20] if isinstance(v, str)}
    sha256 = hashes.get("SHA256")
    metadata = entry.get("metadata")
    if not isinstance(metadata, dict):
        metadata = {}
    size_kb = entry.get("sizeKB")
    size = (round(size_kb * 1024) if isinstance(size_kb, (int, float)) and not isinstance(size_kb, bool)
            and 0 <= size_kb < 2**53 / 1024 else None)
    return {
        "Name": text(entry.get("name"), 500),
        "Type": text(entry.get("type"), 100),
        "Format": text(metadata.get("format"), 100),
        "Size": size,
        "SHA256": sha256.lower() if sha256 and _SHA256.fullmatch(sha256) else None,
        "Digest": None,
        "Hashes": hashes,
        "PickleScan": text(entry.get("pickleScanResult"), 100),
        "PickleScanMessage": text(entry.get("pickleScanMessage"), 2000),
        "VirusScan": text(entry.get("virusScanResult"), 100),
        "VirusScanMessage": text(entry.get("virusScanMessage"), 2000),
        "ScannedAt": utc_timestamp(entry.get("scannedAt")),
        "Primary": entry.get("primary") if isinstance(entry.get("primary"), bool) else None,
        "URL": text(entry.get("downloadUrl"), 2000),
    }


def _id(value: Any) -> str | None:
    """Civitai ids are positive integers (in JSON, or as digits)."""
    if isinstance(value, bool):
        return None
    if isinstance(value, int) and value > 0:
        return str(value)
    if isinstance(value, str) and value.isascii() and value.isdigit() and len(value) <= 20 and int(value) > 0:
        return str(int(value))
    return None


def _commercial_use(value: Any) -> list[str]:
    if isinstance(value, str):  # older answers: one level ("None", "Image", "Rent", "Sell")
        return [] if value == "None" else [value[:50]]
    return [v for v in str_list(value, limit=20) if v != "None"]


def _bool(value: Any) -> bool | None:
    return value if isinstance(value, bool) else None


def _list(value: Any) -> list:
    return value if isinstance(value, list) else []
