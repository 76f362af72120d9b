"""ONNX Model Zoo model folders (payload built by ``spiders/onnxmodelzoo.py``) -> uniform records.

One record per model folder. Every model lives in the one ``onnx/models`` repository
(``RepoURL``); the folder is ``RepoSubPath``, so the clone stage shares one clone and sets
``LatestGitCommitSHA`` to the last commit under the folder. The task is the index section's
anchor (``image_classification``), the architecture the first Model Class name; tags are the
anchor and the opsets served (``opset:12``). Papers linked on arXiv become DOIs.

The stable id and the payload file are keyed by the folder without the ``validated/`` prefix the
2023-12 revamp added, so a model keeps its id across that move; ``MetadataObjectID`` is the
folder as listed.
"""

from __future__ import annotations

import re
from typing import Any
from urllib.parse import urlsplit

from ptmscrape import dataset
from ptmscrape.items import RawModelItem
from ptmscrape.mappers.common import MappingError, arxiv_doi, github_owner_url, new_record, text

DEFAULT_REPO = "https://github.com/onnx/models"
_ARXIV_URL = re.compile(r"^https?://(?:www\.)?arxiv\.org/(?:abs|pdf)/([^?#]+?)(?:\.pdf)?/?(?:[?#].*)?$")
_OPSET = re.compile(r"^\d{1,3}$")


def map_raw(raw: RawModelItem) -> dict[str, Any]:
    page = raw.payload
    if not isinstance(page, dict):
        raise MappingError(f"payload is {type(page).__name__}, not an object")
    model_dir = text(page.get("model_dir"), 500)
    if not model_dir or not model_dir.strip("/ "):
        raise MappingError("no model folder")
    classes = [c for c in page.get("model_classes") or [] if isinstance(c, dict)]
    class_names = [n.strip() for n in (text(c.get("name"), 300) for c in classes) if n and n.strip()]
    name = (text(page.get("title"), 300) or "").strip() or (class_names[0] if class_names else None)
    if not name:
        raise MappingError(f"{model_dir[:100]!r} has neither a README title nor a Model Class name")

    repo_url = (text(raw.context.get("repo_url"), 500) or DEFAULT_REPO).rstrip("/")
    key = model_dir.removeprefix("validated/")
    segments = [s for s in urlsplit(repo_url).path.split("/") if s]
    owner = segments[0] if len(segments) >= 2 else ""
    record = new_record(
        hub=raw.hub, hub_url=repo_url, object_id=model_dir, owner=owner, name=name,
        model_url=f"{repo_url}/tree/HEAD/{model_dir}", owner_url=github_owner_url(repo_url),
        stable_key=key,
    )
    # One file per folder (names repeat across folders); keyed like the id, so it survives the move.
    record["ModelHub"]["MetadataFilePath"] = dataset.metadata_file(raw.hub, owner or "_", key)
    anchor = text(page.get("anchor"), 200)
    record.update(
        ModelTask=anchor,
        ModelArchitecture=class_names[0] if class_names else None,
        ModelPaperDOIs=paper_dois(text(c.get("reference_url"), 1000) for c in classes),
        Tags=([anchor] if anchor else []) + [f"opset:{o}" for o in opsets(page.get("variants"))],
        Library="onnx",
        RepoURL=repo_url,
        RepoSubPath=model_dir,
    )
    return record


def paper_dois(urls) -> list[str]:
    dois: list[str] = []
    for url in urls:
        match = _ARXIV_URL.match(url.strip()) if url else None
        doi = arxiv_doi(match.group(1)) if match else None
        if doi and doi not in dois:
            dois.append(doi)
    return dois


def opsets(variants: Any) -> list[str]:
    """The distinct opset numbers of the folder's model files, lowest first."""
    found = {v.get("opset").strip() for v in variants or [] if isinstance(v, dict)
             and isinstance(v.get("opset"), str) and _OPSET.match(v.get("opset").strip())}
    return sorted(found, key=int)
