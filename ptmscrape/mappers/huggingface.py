"""Hugging Face ``/api/models`` objects -> uniform records."""

from __future__ import annotations

import re
from typing import Any

from ptmscrape.dataset import paths
from ptmscrape.items import RawModelItem
from ptmscrape.mappers.common import (
    MappingError,
    arxiv_doi,
    count,
    id_text,
    new_record,
    str_list,
    text,
    utc_timestamp,
)

_MODEL_ID = re.compile(r"^[^\s/]+(/[^\s/]+)?$")
_SHA = re.compile(r"[0-9a-f]{40}")


def map_raw(raw: RawModelItem) -> dict[str, Any]:
    obj = raw.payload
    if not isinstance(obj, dict):
        raise MappingError(f"payload is {type(obj).__name__}, not an object")
    model_id = obj.get("id", obj.get("modelId"))
    if not isinstance(model_id, str) or not _MODEL_ID.fullmatch(model_id):
        raise MappingError(f"missing or malformed 'id': {str(model_id)[:100]!r}")
    base = raw.context.get("base_url", "https://huggingface.co").rstrip("/")
    owner, _, name = model_id.rpartition("/")
    author = text(obj.get("author"), 200)
    owner = owner or author or ""
    object_id = id_text(obj.get("_id"), 100, "'_id'") or model_id
    card = obj.get("cardData")
    if not isinstance(card, dict):
        card = {}
    config = obj.get("config")
    if not isinstance(config, dict):
        config = {}
    tags = str_list(obj.get("tags"))

    record = new_record(
        hub=raw.hub, hub_url=base, object_id=object_id, owner=owner, name=name,
        model_url=f"{base}/{model_id}", owner_url=f"{base}/{owner}" if owner else "",
        # Mongo _id survives renames; the model id does not.
        stable_key=object_id, model_id=model_id,
    )
    record.update(
        Datasets=[_dataset(d, base) for d in _tagged(tags, "dataset", card.get("datasets"))],
        ModelPaperDOIs=_dois(tags),
        LatestGitCommitSHA=_sha(obj.get("sha")),
        ModelTask=text(obj.get("pipeline_tag"), 200) or text(card.get("pipeline_tag"), 200),
        ModelArchitecture=_architecture(config),
        License=_license(card, tags),
        Downloads=count(obj.get("downloads")),
        DownloadsAllTime=count(obj.get("downloadsAllTime")),
        Likes=count(obj.get("likes")),
        Tags=tags,
        Library=text(obj.get("library_name"), 200) or text(card.get("library_name"), 200),
        Languages=str_list(card.get("language")),
        # Served to the millisecond ("2022-03-02T23:29:04.000Z"); written as every time in the
        # dataset, UTC to the second ("2022-03-02T23:29:04Z"), so all hubs' times are one column.
        CreatedAt=utc_timestamp(obj.get("createdAt")),
        LastModified=utc_timestamp(obj.get("lastModified")),
        Gated=obj.get("gated") if isinstance(obj.get("gated"), (bool, str)) else None,
        BaseModels=_tagged(tags, "base_model", card.get("base_model")),
        ParameterCount=count((obj.get("safetensors") or {}).get("total"))
        if isinstance(obj.get("safetensors"), dict) else None,
        UsedStorage=count(obj.get("usedStorage")),
        RepoURL=f"{base}/{model_id}",
        # The hub's own repository: its clone is named by the model id, not by the URL's path
        # (a mirror's base URL may carry one).
        RepoPath=paths.repo_dir_of(raw.hub, model_id),
    )
    return record


def _tagged(tags: list[str], prefix: str, card_value: Any) -> list[str]:
    """Values from card data plus ``<prefix>:<value>`` tags (``base_model:finetune:x`` -> x)."""
    values = str_list(card_value)
    for tag in tags:
        if tag.startswith(prefix + ":"):
            value = tag[len(prefix) + 1:]
            value = value.split(":", 1)[1] if ":" in value else value
            if value and value not in values:
                values.append(value)
    return values


def _dataset(dataset_id: str, base: str) -> dict[str, str]:
    owner, _, name = dataset_id.rpartition("/")
    return {
        "DatasetName": name,
        "DatasetOwner": owner,
        "DatasetURL": f"{base}/datasets/{dataset_id}",
        "DatasetOwnerURL": f"{base}/{owner}" if owner else "",
    }


def _dois(tags: list[str]) -> list[str]:
    dois: list[str] = []
    for tag in tags:
        kind, _, value = tag.partition(":")
        doi = arxiv_doi(value) if kind == "arxiv" else value.strip() if kind == "doi" else None
        if doi and doi not in dois:
            dois.append(doi)
    return dois


def _architecture(config: dict[str, Any]) -> str | None:
    architectures = str_list(config.get("architectures"))
    return architectures[0] if architectures else text(config.get("model_type"), 200)


def _license(card: dict[str, Any], tags: list[str]) -> str | None:
    licenses = str_list(card.get("license"))
    if licenses:
        return licenses[0]
    return next((t.split(":", 1)[1] for t in tags if t.startswith("license:")), None)


def _sha(value: Any) -> str | None:
    return value if isinstance(value, str) and _SHA.fullmatch(value) else None
