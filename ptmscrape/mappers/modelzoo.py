"""ModelZoo ``/api/models/<slug>/`` objects (or the same object read from a rendered page) -> records.

The model's slug is the raw item's ``context["slug"]``, whole (the detail object has none; the
item's ``model_id`` is cut for labels); one over 300 characters is refused, never cut into another
model's slug. The repository is the
``link``: a GitHub repository (``/tree/<branch>/<path>`` links give ``RepoBranch`` and
``RepoSubPath``); a GitHub user or organisation page has no repository (clone skipped); a link on
another host is kept as given and the clone stage finds out whether git can clone it (its reason
goes in ``CloneStatus``). ``stars`` (the repository's GitHub stars, as the hub shows them) go in
``Likes``, the framework in ``Library``, category slugs in ``Tags``, the ``title`` in ``DisplayName``.
The categories are the hub's domains, as PyTorch Hub's tags are: the first one's slug
(``computer-vision``) is ``ModelTask``, as PyTorch Hub's first domain tag (``vision``) is.
"""

from __future__ import annotations

import re
from typing import Any
from urllib.parse import quote, unquote, urlsplit

from ptmscrape.items import RawModelItem
from ptmscrape.mappers.common import (
    MappingError,
    arxiv_doi,
    count,
    display_name,
    github_owner_url,
    id_text,
    new_record,
    text,
)

_GITHUB_HOSTS = ("github.com", "www.github.com")
_ARXIV_URL = re.compile(r"^https?://(?:www\.|export\.)?arxiv\.org/(?:abs|pdf)/(.+?)(?:\.pdf)?/?$", re.I)
# doi.org/10.x/y, and publishers' /doi/[abs|pdf|full/]10.x/y pages (ACM, Wiley, T&F, …)
_DOI_URL = re.compile(r"^https?://(?:(?:dx\.)?doi\.org|[^/]+/doi(?:/abs|/pdf|/full)?)/(10\.\d{4,9}/[^?#\s]+)$", re.I)


def map_raw(raw: RawModelItem) -> dict[str, Any]:
    obj = raw.payload
    if not isinstance(obj, dict):
        raise MappingError(f"payload is {type(obj).__name__}, not an object")
    slug = id_text(raw.context.get("slug", raw.model_id), 300, "slug")
    if not isinstance(slug, str) or not slug.strip():
        raise MappingError("no slug")
    base = raw.context.get("base_url", "https://modelzoo.co").rstrip("/")
    link = text(obj.get("link"), 2000)
    repo_url, branch, subpath = repository(link)
    owner_url = github_owner_url(link.strip() if link else None)
    model_id = obj.get("id")
    categories = [c for c in obj.get("categories") or [] if isinstance(c, dict)] \
        if isinstance(obj.get("categories"), list) else []
    tags = [c["slug"] for c in categories if isinstance(c.get("slug"), str) and c["slug"]]

    record = new_record(
        hub=raw.hub, hub_url=base,
        object_id=str(model_id) if isinstance(model_id, int) and not isinstance(model_id, bool) else slug,
        owner=owner_url.rsplit("/", 1)[-1] if owner_url else "", name=slug,
        model_url=f"{base}/model/{quote(slug, safe='')}", owner_url=owner_url,
        # The slug is what the hub lists and links by; the numeric id only comes with the detail.
        stable_key=slug, model_id=slug,
    )
    record.update(
        ModelPaperDOIs=paper_dois(obj.get("papers")),
        ModelTask=tags[0] if tags else None,
        ModelArchitecture=None,
        License=None,
        Downloads=None,
        DownloadsAllTime=None,
        Likes=count(obj.get("stars")),
        Tags=tags,
        Library=text(obj.get("framework"), 200),
        DisplayName=display_name(obj.get("title"), slug),
        Languages=[],
        CreatedAt=None,
        LastModified=None,
        Gated=None,
        BaseModels=[],
        ParameterCount=None,
        UsedStorage=None,
        RepoURL=repo_url,
        RepoBranch=branch,
        RepoSubPath=subpath,
    )
    return record


def repository(link: str | None) -> tuple[str | None, str | None, str | None]:
    """``(repository URL, branch, folder)`` of a model's link; ``(None, None, None)`` if it has none."""
    if not link or not link.strip():
        return None, None, None
    link = link.strip()
    parts = urlsplit(link)
    if parts.scheme.lower() not in ("http", "https"):
        return None, None, None
    if (parts.hostname or "").lower() not in _GITHUB_HOSTS:
        return link, None, None  # GitLab, Bitbucket, a website…: git will tell
    segments = [s for s in parts.path.split("/") if s]
    if len(segments) < 2:
        return None, None, None  # a user or organisation page
    owner, name = segments[0], segments[1].removesuffix(".git")
    branch = subpath = None
    if len(segments) >= 4 and segments[2] in ("tree", "blob"):
        # Split, then decode: GitHub percent-encodes a folder's spaces and non-ASCII letters (and
        # a branch's '/' as %2F), and git knows them by their decoded names.
        branch, subpath = unquote(segments[3]), "/".join(unquote(s) for s in segments[4:]) or None
    return f"https://github.com/{owner}/{name}", branch, subpath


def paper_dois(papers: Any) -> list[str]:
    """DOIs of the papers' URLs: arXiv abs/pdf pages -> ``10.48550/arXiv.<id>``, DOI links as is."""
    if not isinstance(papers, dict):
        return []
    dois: list[str] = []
    for url in papers.values():
        if not isinstance(url, str):
            continue
        url = url.strip()
        arxiv = _ARXIV_URL.match(url)
        doi = arxiv_doi(arxiv.group(1)) if arxiv else None
        if doi is None and (match := _DOI_URL.match(url)):
            doi = match.group(1)
        if doi and doi not in dois:
            dois.append(doi)
    return dois
