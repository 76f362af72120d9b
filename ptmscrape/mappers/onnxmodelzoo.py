"""ONNX Model Zoo models (payloads built by ``spiders/onnxmodelzoo.py``) -> uniform records.

One record per model: a download-table row of a model folder's README (``kind: "readme_row"``) or
a generated model folder with a ``turnkey_stats.yaml`` (``kind: "generated"``). Every model lives
in the one ``onnx/models`` repository (``RepoURL``), cloned into ``onnxmodelzoo/repos/<owner>/<name>``
of that repository (``RepoPath``, also behind a mirror's path prefix); its folder is ``RepoSubPath``,
so the clone stage shares one clone and sets ``LatestGitCommitSHA`` to the last commit under the folder (rows of
one folder share it).

README rows: the name is the model file's name without its extension (``resnet50-v1-12``, unique,
where the rows' own names repeat: six "AlexNet" rows, one per opset); the table's columns become
``ModelFiles`` (path in the repository, size as written, column), ``OnnxVersion``, ``Opset`` and
``Metrics`` (every accuracy column, as written), a ``Dataset`` column ``Datasets``; the README's
``License`` section ``License`` (without one, its ``SPDX-License-Identifier`` comment:
``Apache-2.0``). The task is the index section's anchor (``image_classification``; for a folder
no index table links, such as ``gpt2-bs``, the section of the folders beside it, or none), the
architecture the Model Class name (of a folder linked from several classes, the one the row's
name names: ``ShuffleNet-v2`` -> ShuffleNet_V2; none for an unlinked folder); tags are the
anchor and ``opset:<n>``. Papers the row's classes link on arXiv become DOIs.

Generated models: the name is the folder's (``alexnet_Opset17_torch_hub``); ``turnkey_stats.yaml``
gives ``ParameterCount`` (``parameters``), ``Opset``, ``SourceLibrary`` (``author``: timm,
torchvision, torch_hub, transformers, …), ``ModelClass`` and ``ModelArchitecture`` (``class``) and
``ModelTask`` (``task``); ``ModelFiles`` are the folder's ``.onnx`` files, sized as the YAML says.

Ids and payload files are keyed by the model file's name (README rows) or the model folder's name
(generated models), never by the folder path, so a model keeps its id when folders move (the
2023-12 revamp moved every README model under ``validated/``). ``MetadataObjectID`` is the model
file's path (or the generated model's folder) as listed.
"""

from __future__ import annotations

import posixpath
import re
from typing import Any
from urllib.parse import unquote, urlsplit

from ptmscrape.items import RawModelItem
from ptmscrape.mappers.common import (
    MappingError,
    arxiv_doi,
    count,
    github_owner_url,
    id_text,
    new_record,
    text,
)
from ptmscrape.mappers.repo_files import repo_owner_and_name, shared_repo_dir, without_trailing_punctuation

DEFAULT_REPO = "https://github.com/onnx/models"
_ARXIV_URL = re.compile(r"^https?://(?:www\.)?arxiv\.org/(?:abs|pdf)/([^?#]+?)(?:\.pdf)?/?(?:[?#].*)?$")
# "12", or the opsets of two domains as BiDAF's README gives them ("ONNX 9, ONNX.ML 1"): the ai.onnx one.
_OPSET = re.compile(r"^(\d{1,3})$|^ONNX\s+(\d{1,3})\s*,\s*ONNX\.ML\s+\d{1,3}$", re.I)
_MODEL_SUFFIXES = (".onnx", ".tar.gz", ".tgz", ".zip")


def map_raw(raw: RawModelItem) -> dict[str, Any]:
    page = raw.payload
    if not isinstance(page, dict):
        raise MappingError(f"payload is {type(page).__name__}, not an object")
    model_dir = id_text(page.get("model_dir"), 500, "model folder")
    if not model_dir or not model_dir.strip("/ "):
        raise MappingError("no model folder")
    repo_url = (text(raw.context.get("repo_url"), 500) or DEFAULT_REPO).rstrip("/")
    # The owner is the segment before the repository's name, also behind a mirror's path prefix.
    owner = (repo_owner_and_name(repo_url) or ("", ""))[0]
    if page.get("kind") == "generated":
        return _generated(raw.hub, page, model_dir, repo_url, owner)
    return _readme_row(raw.hub, page, model_dir, repo_url, owner)


def _readme_row(hub: str, page: dict, model_dir: str, repo_url: str, owner: str) -> dict[str, Any]:
    row = page.get("row")
    if not isinstance(row, dict):
        raise MappingError(f"{model_dir[:100]!r}: no table row")
    files = model_files(row.get("downloads"))
    main = next((f for f in files if (f["Path"] or f["URL"] or "").endswith(".onnx")), files[0] if files else None)
    if main is None:
        raise MappingError(f"{model_dir[:100]!r}: table row without a model file")
    location = main["Path"] or main["URL"]
    assert location is not None  # model_files keeps only files with a path or a URL
    file_name = posixpath.basename(unquote(urlsplit(location).path) if main["URL"] else location)
    if not file_name:
        raise MappingError(f"{model_dir[:100]!r}: model file without a name ({location[:100]!r})")
    name = _stem(file_name)
    classes = _classes_of_row(row, name, [c for c in page.get("model_classes") or [] if isinstance(c, dict)])
    class_names = [n.strip() for n in (text(c.get("name"), 300) for c in classes) if n and n.strip()]

    record = new_record(
        hub=hub, hub_url=repo_url, object_id=location, owner=owner, name=name,
        model_url=f"{repo_url}/blob/HEAD/{main['Path']}" if main["Path"] else location,
        owner_url=github_owner_url(repo_url), stable_key=file_name,
        model_id=f"{owner or '_'}/{file_name}",
    )
    anchor = text(page.get("anchor"), 200)
    opset = _opset(row.get("opset"))
    metrics = row.get("metrics")
    if not isinstance(metrics, dict):
        metrics = {}
    dataset_name = (text(row.get("dataset"), 300) or "").strip()
    record.update(
        ModelTask=anchor,
        ModelArchitecture=class_names[0] if class_names else None,
        ModelPaperDOIs=paper_dois(text(c.get("reference_url"), 1000) for c in classes),
        Datasets=[{"DatasetName": dataset_name, "DatasetOwner": "", "DatasetURL": "",
                   "DatasetOwnerURL": ""}] if dataset_name else [],
        Tags=([anchor] if anchor else []) + ([f"opset:{opset}"] if opset else []),
        Library="onnx",
        License=(text(page.get("license"), 200) or "").strip() or (text(page.get("spdx_license"), 200) or "").strip()
        or None,
        RepoURL=repo_url,
        RepoSubPath=model_dir,
        RepoPath=shared_repo_dir(hub, repo_url),
        ModelFiles=files,
        OnnxVersion=(text(row.get("onnx_version"), 50) or "").strip() or None,
        Opset=opset,
        Metrics={str(k)[:200]: v[:200] for k, v in list(metrics.items())[:50] if isinstance(v, str)},
        SourceLibrary=None,
        ModelClass=None,
        ParameterCount=None,
    )
    return record


def _generated(hub: str, page: dict, model_dir: str, repo_url: str, owner: str) -> dict[str, Any]:
    name = model_dir.rstrip("/").rsplit("/", 1)[-1]
    stats = page.get("turnkey")
    if not isinstance(stats, dict):
        raise MappingError(f"{model_dir[:100]!r}: no turnkey_stats.yaml object")
    info = stats.get("onnx_model_information")
    if not isinstance(info, dict):
        info = {}
    size = info.get("size on disk (KiB)")
    size_text = f"{size} KiB" if isinstance(size, (int, float)) and not isinstance(size, bool) else None
    files = [{"Path": p[:1000], "URL": None, "Size": size_text, "Kind": "model"}
             for p in page.get("files") or [] if isinstance(p, str) and p]
    model_class = (text(stats.get("class"), 300) or "").strip() or None
    task = (text(stats.get("task"), 200) or "").strip() or (text(page.get("category"), 200) or None)
    opset = _opset(info.get("opset"))

    record = new_record(
        hub=hub, hub_url=repo_url, object_id=model_dir, owner=owner, name=name,
        model_url=f"{repo_url}/tree/HEAD/{model_dir}", owner_url=github_owner_url(repo_url),
        stable_key=name, model_id=f"{owner or '_'}/{name}",
    )
    record.update(
        ModelTask=task,
        ModelArchitecture=model_class,
        Tags=([task] if task else []) + ([f"opset:{opset}"] if opset else []),
        Library="onnx",
        RepoURL=repo_url,
        RepoSubPath=model_dir,
        RepoPath=shared_repo_dir(hub, repo_url),
        ModelFiles=files,
        OnnxVersion=None,
        Opset=opset,
        Metrics=None,
        SourceLibrary=(text(stats.get("author"), 200) or "").strip() or None,
        ModelClass=model_class,
        ParameterCount=count(stats.get("parameters")),
    )
    return record


def _classes_of_row(row: dict, name: str, classes: list[dict]) -> list[dict]:
    """The index classes a row belongs to. A folder linked from several classes (ShuffleNet_V1 and
    ShuffleNet_V2 share ``shufflenet/``) gives each row the class its name names (``ShuffleNet-v2``,
    ``shufflenet-v2-10``), the longest such name; a row naming none keeps them all."""
    if len(classes) < 2:
        return classes
    row_names = [_squashed(n) for n in (text(row.get("name"), 300), name) if n]
    named = [(len(key), c) for c in classes
             if (key := _squashed(text(c.get("name"), 300) or "")) and any(key in n for n in row_names)]
    if not named:
        return classes
    longest = max(length for length, _ in named)
    return [c for length, c in named if length == longest]


def _squashed(value: str) -> str:
    return re.sub(r"[^0-9a-z]", "", value.lower())


def model_files(downloads: Any) -> list[dict[str, str | None]]:
    """``ModelFiles`` of a row's download links (repository paths or outside URLs)."""
    files = []
    for d in downloads if isinstance(downloads, list) else []:
        if not isinstance(d, dict):
            continue
        # The model file names the model: cut, two files could become one model.
        path, url = id_text(d.get("path"), 1000, "download path"), id_text(d.get("url"), 2000, "download URL")
        if not (path or url):
            continue
        files.append({"Path": path or None, "URL": None if path else url,
                      "Size": (text(d.get("size"), 100) or "").strip() or None,
                      "Kind": (text(d.get("column"), 200) or "").strip() or "download"})
    return files


def _stem(file_name: str) -> str:
    for suffix in _MODEL_SUFFIXES:
        if file_name.lower().endswith(suffix) and len(file_name) > len(suffix):
            return file_name[: -len(suffix)]
    return file_name


def _opset(value: Any) -> int | None:
    if isinstance(value, int) and not isinstance(value, bool):
        return value if 0 < value < 1000 else None
    match = _OPSET.match(value.strip()) if isinstance(value, str) else None
    number = int(match.group(1) or match.group(2)) if match else 0
    return number if number > 0 else None


def paper_dois(urls) -> list[str]:
    dois: list[str] = []
    for url in urls:
        match = _ARXIV_URL.match(without_trailing_punctuation(url)) if url else None
        doi = arxiv_doi(match.group(1)) if match else None
        if doi and doi not in dois:
            dois.append(doi)
    return dois
