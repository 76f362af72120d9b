"""OpenVINO Open Model Zoo ``model.yml`` files (payload built by ``spiders/openvino.py``) -> records.

One record per ``models/<group>/<name>/model.yml``: ``ModelOwner`` is the group (``intel``: Intel's
own models, shipped as OpenVINO IR; ``public``: third-party models with conversion recipes),
``ModelName`` the folder name (a composite model's part: the part's folder), the id
``<group>/<folder>``. ``task_type`` -> ``ModelTask``,
``framework`` -> ``Library`` (``tf`` as ``tensorflow``, as other hubs name it; ``dldt`` is OpenVINO IR:
``ModelFormat`` ``openvino_ir``),
``license`` (a URL) -> ``License``, ``files`` -> ``Files`` (name, size, SHA256, source URL: a
``{$type: google_drive, id}`` source gets the Google Drive URL the zoo's downloader fetches) and
their total size -> ``UsedStorage``; arXiv and doi.org links in the description ->
``ModelPaperDOIs``. Every model shares the clone of the zoo's repository (``RepoURL``), in
``openvino/repos/<owner>/<name>`` of that repository (``RepoPath``, also behind a mirror's path
prefix); its folder is ``RepoSubPath``, so ``LatestGitCommitSHA`` is the last commit under it.
"""

from __future__ import annotations

import re
from typing import Any

from ptmscrape.dataset import paths
from ptmscrape.github_tree import safe_tree_path
from ptmscrape.items import RawModelItem
from ptmscrape.mappers.common import MappingError, id_text, new_record, text
from ptmscrape.mappers.repo_files import file_entry, paper_dois, shared_repo_dir

DEFAULT_REPO = "https://github.com/openvinotoolkit/open_model_zoo"
# Where the zoo's downloader fetches a {$type: google_drive, id: <id>} file from
# (tools/model_tools/.../download_engine/file_source.py: this URL with the id as the "id" parameter).
DRIVE_DOWNLOAD = "https://docs.google.com/uc?export=download&id="
_DRIVE_ID = re.compile(r"[A-Za-z0-9_-]{1,200}")  # Drive file ids: nothing that could end the parameter
GROUPS = ("intel", "public")
# The zoo's framework names that other hubs' records spell otherwise (TF Hub, ModelZoo, Modelhub and
# Hugging Face: "tensorflow"), so Library is one vocabulary across hubs; Tags keep the zoo's word.
LIBRARY_OF_FRAMEWORK = {"tf": "tensorflow"}
MAX_FILES = 1000
_URL = re.compile(r"https?://[^\s<>\"')\]]+")


def map_raw(raw: RawModelItem) -> dict[str, Any]:
    page = raw.payload
    if not isinstance(page, dict):
        raise MappingError(f"payload is {type(page).__name__}, not an object")
    group, name = text(page.get("group"), 20), id_text(page.get("name"), 300, "model name")
    folder = id_text(page.get("folder"), 600, "model folder") or name
    if group not in GROUPS or not name or not name.strip() or not folder:
        raise MappingError(f"no model group and name (got {group!r:.30}, {name!r:.100})")
    model_dir = safe_tree_path(page.get("model_dir"))
    if model_dir is None:
        raise MappingError(f"{group}/{name[:100]}: unsafe or missing model folder")
    model = page.get("model")
    if not isinstance(model, dict):
        raise MappingError(f"{group}/{name[:100]}: model.yml is not a mapping")
    repo_url = (text(raw.context.get("repo_url"), 500) or DEFAULT_REPO).rstrip("/")
    record = new_record(hub=raw.hub, hub_url=repo_url, object_id=f"{group}/{folder}", owner=group, name=name,
                        model_url=f"{repo_url}/tree/HEAD/{model_dir}",
                        owner_url=f"{repo_url}/tree/HEAD/models/{group}")
    # One payload file per model.yml: a part's name could repeat under two composites.
    record["ModelHub"]["MetadataFilePath"] = paths.metadata_file(raw.hub, group, folder)
    framework = text(model.get("framework"), 100)
    task = text(model.get("task_type"), 200)
    listed = model.get("files")
    files = [file_entry(f.get("name"), f.get("size"), f.get("sha256"), source_url(f.get("source")))
             for f in (listed if isinstance(listed, list) else [])[:MAX_FILES]
             if isinstance(f, dict)]
    sizes = [f["Size"] for f in files if f["Size"] is not None]
    record.update(
        ModelTask=task,
        Library=LIBRARY_OF_FRAMEWORK.get(framework, framework) if framework else None,
        License=text(model.get("license"), 1000),
        Tags=[t for t in (group, task, framework) if t]
        + (["quantizable"] if model.get("quantizable") is True else []),
        ModelPaperDOIs=paper_dois(_URL.findall(text(model.get("description")) or "")),
        ModelFormat="openvino_ir" if framework == "dldt" else None,
        Files=files,
        UsedStorage=sum(sizes) if sizes else None,
        RepoURL=repo_url,
        RepoSubPath=model_dir,
        RepoPath=shared_repo_dir(raw.hub, repo_url),
    )
    return record


def source_url(source: Any) -> str | None:
    """The download URL of a ``files`` entry's ``source``, in each form the zoo's downloader takes:
    a URL, ``{$type: http, url: <URL>}``, or ``{$type: google_drive, id: <id>}`` (the URL the
    downloader fetches it from; an id with any character outside ``[A-Za-z0-9_-]`` gives null)."""
    if isinstance(source, str):
        return source
    if not isinstance(source, dict):
        return None
    kind = source.get("$type")
    if kind == "http":
        return text(source.get("url"))
    file_id = source.get("id")
    if kind == "google_drive" and isinstance(file_id, str) and _DRIVE_ID.fullmatch(file_id):
        return DRIVE_DOWNLOAD + file_id
    return None
