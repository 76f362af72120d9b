"""TensorFlow Hub model documentation files (payload built by ``spiders/tfhub.py``) -> records.

One record per model version: the TF Hub handle (``google/albert_base/3``) is the id,
``ModelOwner`` its publisher, ``ModelName`` the rest (``albert_base/3``), ``ModelVersion`` the
version, ``ModelURL`` ``https://tfhub.dev/<handle>`` (which now redirects to Kaggle), or for a
TF.js/Lite deployment, whose heading names another handle, its documentation file on GitHub. Metadata
comments become fields: ``module-type`` -> ``ModelTask`` and ``Tags``, ``network-architecture``
-> ``ModelArchitecture``, ``dataset`` -> ``Datasets``, ``language`` -> ``Languages``,
``license`` -> ``License`` (null when the file names none), ``format`` (or the deployment kind:
TF.js, Lite, Coral) -> ``ModelFormat`` and ``Library``, ``fine-tunable`` -> ``FineTunable``,
``parent-model`` -> ``BaseModels``, an ``asset-path`` URL -> ``Files`` (``[]`` for any other
``asset-path``, such as ``legacy``). arXiv and doi.org links
become ``ModelPaperDOIs``. Every model shares the clone of the ``tensorflow/tfhub.dev`` repository
(``RepoURL``), in ``tfhub/repos/<owner>/<name>`` of that repository (``RepoPath``, also behind a
mirror's path prefix); its documentation file is ``RepoSubPath``, so ``LatestGitCommitSHA`` is the
last commit that changed it.
"""

from __future__ import annotations

from typing import Any

from ptmscrape.github_tree import safe_tree_path
from ptmscrape.items import RawModelItem
from ptmscrape.mappers.common import MappingError, id_text, new_record, text
from ptmscrape.mappers.repo_files import file_entry, paper_dois, shared_repo_dir

TFHUB_URL = "https://tfhub.dev"
DEFAULT_REPO = "https://github.com/tensorflow/tfhub.dev"
FORMAT_OF_KIND = {"tfjs": "tfjs", "lite": "lite", "coral": "coral"}
LIBRARY_OF_FORMAT = {"tfjs": "tensorflow.js", "lite": "tflite", "coral": "tflite"}


def map_raw(raw: RawModelItem) -> dict[str, Any]:
    page = raw.payload
    if not isinstance(page, dict):
        raise MappingError(f"payload is {type(page).__name__}, not an object")
    handle = id_text(page.get("handle"), 300, "TF Hub handle")
    if not handle or "/" not in handle.strip("/") or "//" in handle:
        raise MappingError(f"no TF Hub handle (got {handle!r:.100})")
    path = safe_tree_path(page.get("path"))
    if path is None:
        raise MappingError(f"{handle!r:.100}: unsafe or missing documentation path")
    owner, name = handle.split("/", 1)
    meta = metadata(page.get("metadata"))
    first = lambda key: meta.get(key, [None])[0]  # noqa: E731
    kind = (text(page.get("kind"), 50) or "").lower()
    model_format = first("format") or FORMAT_OF_KIND.get(kind)
    repo_url = (text(raw.context.get("repo_url"), 500) or DEFAULT_REPO).rstrip("/")
    # A deployment (TF.js, Lite) has no tfhub.dev page of its own: its documentation file is its page.
    own_page = text(page.get("heading_handle"), 500) == handle
    record = new_record(hub=raw.hub, hub_url=TFHUB_URL, object_id=handle, owner=owner, name=name,
                        model_url=f"{TFHUB_URL}/{handle}" if own_page else f"{repo_url}/blob/HEAD/{path}",
                        owner_url=f"{TFHUB_URL}/{owner}")
    asset = first("asset-path")
    record.update(
        ModelTask=first("module-type") or first("task"),
        ModelArchitecture=first("network-architecture"),
        Datasets=[{"DatasetName": d, "DatasetOwner": "", "DatasetURL": "", "DatasetOwnerURL": ""}
                  for d in meta.get("dataset", [])],
        Languages=meta.get("language", []),
        License=first("license"),
        Tags=unique(meta.get("module-type", []) + meta.get("task", []) + meta.get("tags", [])),
        Library=LIBRARY_OF_FORMAT.get(model_format or "", "tensorflow"),
        BaseModels=meta.get("parent-model", []),
        ModelPaperDOIs=paper_dois(page.get("links")),
        ModelVersion=handle.rsplit("/", 1)[1],
        ModelFormat=model_format,
        FineTunable={"true": True, "false": False}.get((first("fine-tunable") or "").lower()),
        # A list key, [] like every hub's when there is nothing (asset-path "legacy" names no file).
        Files=[file_entry(asset.rsplit("/", 1)[-1], None, None, asset)]
        if asset and asset.startswith(("https://", "http://")) else [],
        RepoURL=repo_url,
        RepoSubPath=path,
        RepoPath=shared_repo_dir(raw.hub, repo_url),
    )
    return record


def metadata(value: Any) -> dict[str, list[str]]:
    """``{key: [values]}`` with junk (non-text keys or values) left out."""
    if not isinstance(value, dict):
        return {}
    out: dict[str, list[str]] = {}
    for key, values in value.items():
        kept = [v[:1000] for v in values if isinstance(v, str) and v.strip()] if isinstance(values, list) else []
        if isinstance(key, str) and kept:
            out[key] = kept
    return out


def unique(values: list[str]) -> list[str]:
    return list(dict.fromkeys(values))
