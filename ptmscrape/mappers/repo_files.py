"""Helpers shared by the mappers of hubs kept in one GitHub repository (tfhub, openvino, onnx): the
folder of the shared clone, paper links as DOIs and the ``Files`` entries of the record."""

from __future__ import annotations

import re
from typing import Any
from urllib.parse import urlsplit

from ptmscrape.dataset import paths
from ptmscrape.mappers.common import arxiv_doi, text

_ARXIV_URL = re.compile(r"^https?://(?:www\.)?arxiv\.org/(?:abs|pdf)/([^?#]+?)(?:\.pdf)?/?(?:[?#].*)?$")
_DOI_URL = re.compile(r"^https?://(?:dx\.)?doi\.org/(10\.\d{4,9}/[^\s?#]+)$", re.I)
_SHA256 = re.compile(r"^[0-9a-f]{64}$")


def repo_owner_and_name(repo_url: str) -> tuple[str, str] | None:
    """``(owner, name)`` of a repository: the last two segments of its URL's path (``.git``
    dropped), so also behind a mirror's prefix (``https://mirror.example/gh/onnx/models`` ->
    ``("onnx", "models")``); None when the path has fewer than two."""
    try:
        segments = [s for s in urlsplit(repo_url).path.split("/") if s]
    except ValueError:
        return None
    if len(segments) < 2:
        return None
    return segments[-2], segments[-1].removesuffix(".git") or segments[-1]


def shared_repo_dir(hub: str, repo_url: str) -> str | None:
    """``RepoPath`` of the one repository every model of ``hub`` shares:
    ``<hub>/repos/<owner>/<name>``, named by the repository's owner and name, never by the rest of
    the URL's path (a mirror's prefix), so the clone is where the docs say; None (the clone stage
    then names it by the URL's path) when the URL names no owner and name."""
    found = repo_owner_and_name(repo_url)
    return paths.repo_dir(hub, *found) if found else None


def paper_dois(urls: Any) -> list[str]:
    """DOIs of the arXiv (``10.48550/arXiv.<id>``) and doi.org links, in order, once each. A link
    found in prose may end with the sentence's punctuation (``see https://arxiv.org/abs/1512.03385.``):
    trailing ``.,;:`` are no part of it."""
    dois: list[str] = []
    for url in urls if isinstance(urls, list) else []:
        if not isinstance(url, str):
            continue
        url = without_trailing_punctuation(url)
        arxiv, doi = _ARXIV_URL.match(url), _DOI_URL.match(url)
        found = arxiv_doi(arxiv.group(1)) if arxiv else doi.group(1) if doi else None
        if found and found not in dois:
            dois.append(found)
    return dois


def without_trailing_punctuation(url: str) -> str:
    """A link as matched in text, without the ``.,;:`` that end the sentence around it."""
    return url.strip().rstrip(".,;:")


def file_entry(name: Any, size: Any, sha256: Any, url: Any) -> dict[str, Any]:
    """One ``Files`` entry: ``Name``, ``Size`` (bytes), ``SHA256`` (hex), ``URL``; junk -> null."""
    return {
        "Name": text(name, 500) or "",
        "Size": size if isinstance(size, int) and not isinstance(size, bool) and size >= 0 else None,
        "SHA256": sha256.lower() if isinstance(sha256, str) and _SHA256.fullmatch(sha256.lower()) else None,
        "URL": text(url, 2000),
    }
