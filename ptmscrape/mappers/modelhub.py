"""Modelhub ``models.json`` entries -> uniform records.

``ModelURL`` is the model's GitHub repository, as PTMTorrent recorded it: app.modelhub.ai is a
single-page app that picks a model by its position in the list (modelhub-ai/modelhub-app keeps the
choice in component state), so it has no stable per-model page to link to.
"""

from __future__ import annotations

import re
from typing import Any

from ptmscrape.items import RawModelItem
from ptmscrape.mappers.common import MappingError, id_text, new_record, str_list, text

HUB_URL = "https://modelhub.ai"
# https://<host>/<owner>/<repo> (always github.com in the real index; other hosts are kept as given).
_REPO = re.compile(r"^(https?://[^/\s@]+)/([^/\s]+)/([^/\s]+?)(?:\.git)?/?$")
# Runtimes listed among the backends; the library is the first real framework.
_NOT_A_LIBRARY = {"colab", "gpu", "cloud"}


def map_raw(raw: RawModelItem) -> dict[str, Any]:
    entry = raw.payload
    if not isinstance(entry, dict):
        raise MappingError(f"index entry is {type(entry).__name__}, not an object")
    model_id = id_text(entry.get("id"), 100, "'id'")
    if not model_id or not model_id.strip():
        raise MappingError(f"missing or malformed 'id': {str(entry.get('id'))[:100]!r}")
    name = text(entry.get("name"), 300)
    if not name or not name.strip():
        raise MappingError(f"missing or malformed 'name': {str(entry.get('name'))[:100]!r}")
    repo_url = text(entry.get("github"), 500)
    repo = _REPO.fullmatch(repo_url.strip()) if repo_url else None
    if repo_url and not repo:
        raise MappingError(f"'github' is not a repository URL: {repo_url[:100]!r}")
    host, owner = (repo.group(1), repo.group(2)) if repo else ("", "")
    repo_url = f"{host}/{owner}/{repo.group(3)}" if repo else None

    backends = str_list(entry.get("backend"))
    record = new_record(
        hub=raw.hub, hub_url=HUB_URL, object_id=model_id, owner=owner, name=name,
        model_url=repo_url or "", owner_url=f"{host}/{owner}" if owner else "", model_id=model_id,
    )
    record.update(
        ModelTask=text(entry.get("task_extended"), 500),
        Tags=backends + (["gpu"] if entry.get("gpu") is True and "gpu" not in backends else []),
        Library=next((b for b in backends if b.lower() not in _NOT_A_LIBRARY), None),
        RepoURL=repo_url,
        RepoBranch=text(entry.get("github_branch"), 200) or None,
    )
    return record
