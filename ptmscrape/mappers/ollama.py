"""Ollama library models (payload built by ``spiders/ollama.py``) -> uniform records.

One record per model (``library/<name>``). Each tag becomes one ``ModelVersions`` entry: its
manifest digest (``Docker-Content-Digest``), its total size (config plus layers) and its layers
as files (``Name`` the layer kind — ``model``, ``template``, ``license``, ``params``, ``system``,
``projector``, ``adapter`` — ``Type`` the media type, ``Digest``/``SHA256`` and ``Size``). The
keys of a Civitai version a tag has no value for are null (``TrainedWords`` ``[]``). A tag
whose manifest could not be fetched keeps its ``Error``. ``UsedStorage`` counts each distinct
blob once (tags share most of them); ``Downloads`` is the pull count as the site shows it, rounded
(``55.7M`` -> 55,700,000); ``Tags`` are the capabilities (``tools``, ``vision``, ``embedding``);
``LastModified`` is the date in the update line's tooltip (the visible text is relative). The
registry is content-addressed, not git: ``CloneStatus`` says so.
"""

from __future__ import annotations

import datetime as dt
import re
from typing import Any
from urllib.parse import quote

from ptmscrape.dataset import paths
from ptmscrape.items import RawModelItem
from ptmscrape.mappers.common import MAX_COUNT, MappingError, count, id_text, new_record, str_list, text

HUB_URL = "https://ollama.com"
NO_REPOSITORY = "skipped: the hub has no git repository"
LAYER_PREFIX = "application/vnd.ollama.image."
_COUNT = re.compile(r"^\s*([0-9]+(?:\.[0-9]+)?)\s*([KMB]?)\s*$", re.I)
_SCALE = {"": 1, "K": 1_000, "M": 1_000_000, "B": 1_000_000_000}
_DIGEST = re.compile(r"^sha256:([0-9a-f]{64})$")
MAX_TAGS = 2000
MAX_LAYERS = 100


def map_raw(raw: RawModelItem) -> dict[str, Any]:
    model = raw.payload
    if not isinstance(model, dict):
        raise MappingError(f"payload is {type(model).__name__}, not an object")
    name = id_text(model.get("Name"), 200, "model name")
    if not name or not name.strip():
        raise MappingError("no model name")
    namespace = id_text(model.get("Namespace"), 200, "namespace") or "library"
    base = str(raw.context.get("base_url") or HUB_URL).rstrip("/")
    model_id = f"{namespace}/{name}"
    record = new_record(
        hub=raw.hub, hub_url=base, object_id=model_id, owner=namespace, name=name,
        model_url=f"{base}/{quote(namespace, safe='')}/{quote(name, safe='')}",
        owner_url=f"{base}/{quote(namespace, safe='')}",
    )
    record["ModelHub"]["MetadataFilePath"] = paths.metadata_file(raw.hub, namespace, name)
    versions = [_version(t) for t in _list(model.get("Tags"))[:MAX_TAGS] if isinstance(t, dict)]
    blobs = {f["Digest"]: f["Size"] for v in versions for f in v["Files"]
             if f["Digest"] and f["Size"] is not None}
    record.update(
        Downloads=_pulls(model.get("PullCount")),
        Tags=str_list(model.get("Capabilities")),
        LastModified=_date(model.get("UpdatedAt")),
        ModelVersions=versions,
        UsedStorage=sum(blobs.values()) if blobs else None,
        RepoURL=None,
        CloneStatus=NO_REPOSITORY,
    )
    return record


def _version(tag: dict) -> dict[str, Any]:
    manifest = tag.get("Manifest")
    if not isinstance(manifest, dict):
        manifest = {}
    entries = [manifest.get("config")] + _list(manifest.get("layers"))[:MAX_LAYERS]
    files = [_layer(e) for e in entries if isinstance(e, dict)]
    sizes = [f["Size"] for f in files if f["Size"] is not None]
    return {
        "Name": text(tag.get("Tag"), 200),
        "VersionID": None,
        "BaseModel": None,
        "BaseModelType": None,
        "CreatedAt": None,
        "Digest": _digest(tag.get("ManifestDigest")),
        "Size": sum(sizes) if manifest and sizes else None,
        "Downloads": None,
        "DownloadURL": None,
        "TrainedWords": [],
        "Error": text(tag.get("Error"), 300),
        "Files": files,
    }


def _layer(entry: dict) -> dict[str, Any]:
    media_type = text(entry.get("mediaType"), 200)
    digest = _digest(entry.get("digest"))
    kind = None
    if media_type and media_type.startswith(LAYER_PREFIX):
        kind = media_type.removeprefix(LAYER_PREFIX)[:50]
    elif media_type and "container.image" in media_type:  # the manifest's config blob
        kind = "config"
    return {
        "Name": kind, "Type": media_type, "Format": None, "Size": count(entry.get("size")),
        "SHA256": digest.removeprefix("sha256:") if digest else None, "Digest": digest, "Hashes": {},
        "PickleScan": None, "PickleScanMessage": None, "VirusScan": None, "VirusScanMessage": None,
        "ScannedAt": None, "Primary": kind == "model" if kind else None, "URL": None,
    }


def _digest(value: Any) -> str | None:
    return value if isinstance(value, str) and _DIGEST.fullmatch(value) else None


def _pulls(value: Any) -> int | None:
    """``55.7M`` -> 55700000, ``221K`` -> 221000, ``1,234`` -> 1234 (as rounded as the site shows)."""
    match = _COUNT.match(value.replace(",", "")) if isinstance(value, str) else None
    if not match:
        return None
    pulls = float(match.group(1)) * _SCALE[match.group(2).upper()]
    return count(round(pulls)) if pulls <= MAX_COUNT else None


def _date(value: Any) -> str | None:
    """``Jun 16, 2025 8:46 PM UTC`` -> ``2025-06-16T20:46:00Z``."""
    if not isinstance(value, str):
        return None
    try:
        when = dt.datetime.strptime(value.strip()[:40], "%b %d, %Y %I:%M %p UTC")
    except ValueError:
        return None
    return when.strftime(paths.UTC_TIMESTAMP)


def _list(value: Any) -> list:
    return value if isinstance(value, list) else []
