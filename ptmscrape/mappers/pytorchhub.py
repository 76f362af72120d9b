"""PyTorch Hub model pages (fields read by ``spiders/pytorchhub.py``) -> uniform records.

The repository is the card's ``data-id`` (``owner/repo``, the hub's ``github-id``): the page's
GitHub link may still carry a renamed repository's old name (``huggingface/pytorch-transformers.git``
on the ``huggingface/transformers`` card). The link, usually a deep one
(``…/vision/blob/main/torchvision/models/resnet.py``), gives the model's folder in a repository
shared by several models (NVIDIA/DeepLearningExamples): a ``tree/<ref>/<folder>`` link into the
card's repository (owner and name compared ignoring case) -> ``RepoSubPath``. Only a card without a
valid ``data-id`` takes its repository from the link (its first two path segments). The branch is
left to the repository's default, as ``torch.hub.load('owner/repo', …)`` does.

The article's paper links become ``ModelPaperDOIs`` (arXiv abs/pdf -> ``10.48550/arXiv.<id>``,
doi.org links -> the DOI), and the ``torch.hub.load('<repo>[:<ref>]', '<entrypoint>', …)`` calls of
its code samples ``Entrypoints`` (``[{Repo, Ref, Name}]``, each once, in page order), commented-out
variants (``# model = torch.hub.load(…)``) included; calls whose repo or entrypoint is a variable
are left out.
"""

from __future__ import annotations

import re
from typing import Any
from urllib.parse import unquote, urlsplit

from ptmscrape.dataset import paths
from ptmscrape.items import RawModelItem
from ptmscrape.mappers.common import MappingError, id_text, new_record, paper_doi, str_list, text

_GITHUB_HOSTS = ("github.com", "www.github.com")
_OWNER_REPO = re.compile(r"^(?!\.*/)[A-Za-z0-9_.-]+/(?!\.*$)[A-Za-z0-9_.-]+$")  # neither part . or ..
# The hub's tags are domains; "scriptable" says the model can be TorchScripted, not what it does.
_NOT_A_TASK = {"scriptable"}
# torch.hub.load('owner/repo[:ref]', 'entrypoint', …), also with repo_or_dir=/model= keywords and
# with the arguments on "#"-commented continuation lines.
_SEP = r"[\s#]*"
_HUB_LOAD = re.compile(
    rf"torch\.hub\.load\({_SEP}(?:repo_or_dir{_SEP}={_SEP})?(['\"])([^'\"\n]{{1,300}})\1{_SEP},"
    rf"{_SEP}(?:model{_SEP}={_SEP})?(['\"])([^'\"\n]{{1,300}})\3")
_MAX_ENTRYPOINTS = 500


def map_raw(raw: RawModelItem) -> dict[str, Any]:
    page = raw.payload
    if not isinstance(page, dict):
        raise MappingError(f"payload is {type(page).__name__}, not an object")
    slug = id_text(page.get("Slug"), 200, "slug")
    if not slug or not slug.strip():
        raise MappingError("no slug (the model page's URL name)")
    name = text(page.get("ModelName"), 300)
    if not name or not name.strip():
        raise MappingError("model page has no name")
    base = raw.context.get("base_url", "https://pytorch.org/hub").rstrip("/")
    repo_url, subpath = repository(text(page.get("GitHubURL"), 1000), text(page.get("GitHubID"), 200))
    repo_owner = repo_url.split("/")[3] if repo_url else ""
    tags = str_list(page.get("Tags"))

    record = new_record(
        hub=raw.hub, hub_url=base, object_id=slug,
        owner=text(page.get("ModelAuthor"), 300) or repo_owner, name=name,
        model_url=text(page.get("ModelURL"), 1000) or f"{base}/{slug}/",
        owner_url=f"https://github.com/{repo_owner}" if repo_owner else "",
    )
    # Slugs are unique on the hub, titles need not be: the payload file is named by the slug.
    record["ModelHub"]["MetadataFilePath"] = paths.metadata_file_of(raw.hub, slug)
    record.update(
        ModelTask=next((t for t in tags if t not in _NOT_A_TASK), None),
        Tags=tags,
        Library="pytorch",
        RepoURL=repo_url,
        RepoSubPath=subpath,
        ModelPaperDOIs=paper_dois(page.get("ArticleLinks")),
        Entrypoints=entrypoints(page.get("CodeSamples")),
    )
    return record


def paper_dois(links: Any) -> list[str]:
    dois: list[str] = []
    for link in str_list(links):
        doi = paper_doi(link)
        if doi and doi not in dois:
            dois.append(doi)
    return dois


def entrypoints(code_samples: Any) -> list[dict[str, str | None]]:
    """``[{"Repo": "pytorch/vision", "Ref": "v0.10.0", "Name": "resnet18"}, …]`` from the
    ``torch.hub.load`` calls in the page's code samples."""
    found: list[dict[str, str | None]] = []
    samples = code_samples if isinstance(code_samples, list) else []
    for code in (c for c in samples if isinstance(c, str)):
        for match in _HUB_LOAD.finditer(code):
            repo, _, ref = match.group(2).strip().partition(":")
            name = match.group(4).strip()
            entry = {"Repo": repo.strip(), "Ref": ref.strip() or None, "Name": name}
            if entry["Repo"] and name and entry not in found:
                found.append(entry)
            if len(found) >= _MAX_ENTRYPOINTS:
                return found
    return found


def repository(link: str | None, github_id: str | None) -> tuple[str | None, str | None]:
    """``(repo URL, folder or None)``: the card's ``owner/repo``, else the page's GitHub link's; the
    folder from a ``tree`` link into that repository."""
    linked = _github_link(link)
    card = github_id.strip() if github_id and _OWNER_REPO.fullmatch(github_id.strip()) else None
    if card is None:
        return (f"https://github.com/{linked[0]}", linked[1]) if linked else (None, None)
    same = linked is not None and linked[0].lower() == card.lower()
    return f"https://github.com/{card}", linked[1] if linked and same else None


def _github_link(link: str | None) -> tuple[str, str | None] | None:
    """``("owner/repo", folder or None)`` of a GitHub link, None for any other link."""
    parts = urlsplit(link.strip()) if link else None
    if parts and parts.scheme in ("https", "http") and (parts.hostname or "") in _GITHUB_HOSTS:
        segments = [unquote(s) for s in parts.path.split("/") if s]
        if len(segments) >= 2:
            owner, repo = segments[0], segments[1].removesuffix(".git")
            subpath = "/".join(segments[4:]) if len(segments) > 4 and segments[2] == "tree" else None
            return f"{owner}/{repo}", subpath
    return None
