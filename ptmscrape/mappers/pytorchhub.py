"""PyTorch Hub model pages (fields read by ``spiders/pytorchhub.py``) -> uniform records.

The repository is the card's ``data-id`` (``owner/repo``, the hub's ``github-id``): the page's
GitHub link may still carry a renamed repository's old name (``huggingface/pytorch-transformers.git``
on the ``huggingface/transformers`` card). The link, usually a deep one
(``…/vision/blob/main/torchvision/models/resnet.py``), gives the model's folder in a repository
shared by several models (NVIDIA/DeepLearningExamples): a ``tree/<ref>/<folder>`` link into the
card's repository (owner and name compared ignoring case) -> ``RepoSubPath``. Only a card without a
valid ``data-id`` takes its repository from the link (its first two path segments). The branch is
left to the repository's default, as ``torch.hub.load('owner/repo', …)`` does.

The owner is that repository's GitHub owner (``pytorch``, ``facebookresearch``, ``NVIDIA``): the
account ``torch.hub.load('<owner>/<repo>', …)`` names, and ``ModelOwnerURL`` its GitHub page, so the
owner joins with the other hubs' GitHub-hosted models. The page's free-text credit (``By Pytorch
Team``, ``By Facebook AI (fairseq Team)``, ``By Sergey Zagoruyko`` on a ``pytorch/vision`` model; the
front matter's ``author``, and PTMTorrent's ``ModelOwner``) names no account: it is ``ModelAuthor``.

The article's paper links become ``ModelPaperDOIs`` (arXiv abs/pdf -> ``10.48550/arXiv.<id>``,
doi.org links -> the DOI), and the ``torch.hub.load('<repo>[:<ref>]', '<entrypoint>', …)`` calls of
its code samples ``Entrypoints`` (``[{Repo, Ref, Name}]``, each once, in page order), commented-out
variants (``# model = torch.hub.load(…)``) included; an entrypoint given as a variable is each
literal the code sample assigns it before the call, commented-out alternatives included (MiDaS:
``model_type = "DPT_Large"``, ``#model_type = "MiDaS_small"``; x3d: ``model_name = 'x3d_s'``);
calls whose repo is a variable, or whose entrypoint variable is assigned no literal, are left
out. An entrypoint is any function of the repository's ``hubconf.py``, and torch.hub's
documentation says one may return "a model (nn.module), or auxiliary tools to make the user workflow
smoother, e.g. tokenizers": pages load such helpers next to their model (NVIDIA's
``nvidia_ssd_processing_utils``, MiDaS's ``transforms``, Hugging Face's ``tokenizer`` and ``config``).
They are kept (the page's code needs them), with ``Kind`` ``helper`` when a word of the name says
so (``utils``, ``util``, ``transforms``, ``transform``, ``tokenizer``, ``config``, ``get``), else
``model``: the page alone cannot tell more.
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
# The entrypoint is a string literal, or a variable (group 5) assigned literals before the call.
_HUB_LOAD = re.compile(
    rf"torch\.hub\.load\({_SEP}(?:repo_or_dir{_SEP}={_SEP})?(['\"])([^'\"\n]{{1,300}})\1{_SEP},"
    rf"{_SEP}(?:model{_SEP}={_SEP})?(?:(['\"])([^'\"\n]{{1,300}})\3|([A-Za-z_][A-Za-z0-9_]{{0,99}})(?=[\s#]*[,)]))")
# <name> = '<literal>' on a line of its own, also commented out (an alternative the page offers).
# "(?:#[ \t]*)?", not "#?[ \t]*": two runs of spaces next to each other took quadratic time on a
# line of spaces.
_ASSIGNED = r"^[ \t]*(?:#[ \t]*)?{name}[ \t]*=[ \t]*(['\"])([^'\"\n]{{1,300}})\1"
_MAX_ENTRYPOINTS = 500
# Words of an entrypoint's name that make it a helper, not a model (the real pages' helpers:
# nvidia_convnets_processing_utils, nvidia_tts_utils, transforms, tokenizer, config, ofa_specialized_get).
HELPER_WORDS = frozenset({"utils", "util", "transforms", "transform", "tokenizer", "config", "get"})
_NAME_WORDS = re.compile(r"[A-Z]+(?![a-z])|[A-Z]?[a-z]+|\d+")


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
        hub=raw.hub, hub_url=base, object_id=slug, owner=repo_owner, name=name,
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
        ModelAuthor=" ".join((text(page.get("ModelAuthor"), 300) or "").split()) or None,
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
    """``[{"Repo": "pytorch/vision", "Ref": "v0.10.0", "Name": "resnet18", "Kind": "model"}, …]``
    from the ``torch.hub.load`` calls in the page's code samples."""
    found: list[dict[str, str | None]] = []
    samples = code_samples if isinstance(code_samples, list) else []
    for code in (c for c in samples if isinstance(c, str)):
        for match in _HUB_LOAD.finditer(code):
            repo, _, ref = match.group(2).strip().partition(":")
            names = [match.group(4)] if match.group(5) is None else _assigned(code[:match.start()], match.group(5))
            for name in (n.strip() for n in names):
                entry = {"Repo": repo.strip(), "Ref": ref.strip() or None, "Name": name,
                         "Kind": entrypoint_kind(name)}
                if entry["Repo"] and name and entry not in found:
                    found.append(entry)
                if len(found) >= _MAX_ENTRYPOINTS:
                    return found
    return found


def _assigned(code: str, variable: str) -> list[str]:
    """The literals ``code`` assigns to ``variable`` (``model_type = "DPT_Large"``, also commented
    out: ``#model_type = "MiDaS_small"``), in order."""
    pattern = re.compile(_ASSIGNED.format(name=re.escape(variable)), re.M)
    return [m.group(2) for m in pattern.finditer(code)]


def entrypoint_kind(name: str) -> str:
    """``helper`` for an entrypoint whose name has a helper word (``nvidia_ssd_processing_utils``,
    ``transforms``, ``ofa_specialized_get``; words split at ``_``, ``.``, ``-`` and case changes,
    compared ignoring case), else ``model`` (``nvidia_ssd``, ``modelForCausalLM``, ``roberta.large``)."""
    return "helper" if any(w.lower() in HELPER_WORDS for w in _NAME_WORDS.findall(name)) else "model"


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
