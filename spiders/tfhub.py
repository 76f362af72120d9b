"""TensorFlow Hub (tfhub.dev): model documentation in the ``tensorflow/tfhub.dev`` repository.

tfhub.dev's models moved to Kaggle; their documentation stays in git. Each model version is one
markdown file ``assets/docs/<publisher>/models/<model path>/<version>.md`` (the model path can be
nested: ``google/models/bit/m-r50x1/ilsvrc2012_classification/1.md``; TF.js and TF Lite
deployments sit below it, ``…/classification/1/default/tfjs/1.md``, ``…/birds_V1/lite/1.md``), or
the same without ``models/`` (the repository's README only asks for the publisher's folder:
``captain-pool/esrgan-tf2/1.md``).
Publisher pages (``assets/docs/<publisher>/<publisher>.md``) and collections
(``assets/docs/<publisher>/collections/…``) are not models and are not fetched.

A file opens with ``# <Kind> <handle>`` (``# Module google/albert_base/3``; kinds ``Module``,
``Placeholder``, ``Tfjs``, ``Lite``, ``Coral``), a one-line description, and metadata comments
``<!-- key: value -->`` (``asset-path``, ``module-type``, ``network-architecture``, ``dataset``,
``language``, ``fine-tunable``, ``format``, ``license``, ``parent-model``, …; keys may repeat).
One item per file; its id is the handle the path spells (``google/albert_base/3``), unique per
file: the heading's handle is the same for a model version, but a Lite deployment's heading
repeats its parent's (``# Lite google/aiy/vision/classifier/birds_V1/1`` in ``…/birds_V1/lite/1.md``).
The payload, built here: ``kind`` (the heading's), ``handle``, ``publisher``, ``version``,
``heading_handle``, ``description``, ``metadata`` ({key: [values]}), ``links`` (link targets), and
``markdown`` (the file, cut at 200,000 characters); the base adds ``path``, ``raw_url``,
``blob_sha``, ``tree_sha``, ``tree_url``. A ``Collection`` or ``Publisher`` file found under
``models/`` is skipped (``ptm/pages/not_a_model``).
"""

from __future__ import annotations

import re

from ptmscrape.github_tree import GitTreeHubSpider, text_of
from ptmscrape.stats import PAGES_NOT_A_MODEL

# ``models/`` is the layout the repository suggests, not one it enforces: some publishers keep their
# models directly in their folder (``assets/docs/captain-pool/esrgan-tf2/1.md``). Collections never.
MODEL_FILE = re.compile(
    r"^assets/docs/(?P<publisher>[^/]+)/(?:models/)?(?!collections/)(?P<model>.+)/(?P<version>\d+)\.md$")
NOT_MODELS = {"collection", "publisher"}
MAX_MARKDOWN = 200_000
MAX_METADATA = 500  # metadata comments kept per file
_HEADING = re.compile(r"^#[ \t]+(?P<kind>[A-Za-z]+)[ \t]+(?P<handle>\S+)[ \t]*$", re.M)
# <!-- key: value -->, its value's spaces cut in code: as a lazy value between optional spaces, a
# comment of spaces with no end took cubic time. The value stops at another comment's start, so
# each character is read by one try at most.
_METADATA = re.compile(r"<!--[ \t]*(?P<key>[A-Za-z0-9_-]{1,60})[ \t]*:(?P<value>(?:(?!<!--).)*?)-->")
# ](target "title"): the target stops at "(" but for one level of balanced parentheses (a
# Wikipedia link's "_(b)"), so that a run of "](" without ")" is not scanned to the end of the
# file from each of them (quadratic).
_LINK = re.compile(r"\]\(\s*<?([^()\s>]+(?:\([^()\s]*\)[^()\s>]*)*)>?(?:\s+\"[^\"]*\")?\s*\)")


class TfhubSpider(GitTreeHubSpider):
    name = "tfhub"
    base_url_setting = "PTM_TFHUB_RAW_URL"
    repo_url_setting = "PTM_TFHUB_REPO_URL"
    tree_url_setting = "PTM_TFHUB_TREE_URL"

    def is_model_file(self, path: str) -> bool:
        return MODEL_FILE.fullmatch(path) is not None

    def model_payload(self, response, path):
        page = parse_doc(text_of(response), path)
        if page["kind"] and page["kind"].lower() in NOT_MODELS:
            self.logger.info("Not a model: %s (%s)", response.url, page["kind"])
            self.crawler.stats.inc_value(PAGES_NOT_A_MODEL)
            return None
        return page["handle"], page


def path_handle(path: str) -> tuple[str, str, str]:
    """``(publisher, handle, version)`` as the file's path spells them
    (``assets/docs/google/models/albert_base/3.md`` -> ``google``, ``google/albert_base/3``, ``3``)."""
    m = MODEL_FILE.fullmatch(path)
    if m is None:
        raise ValueError(f"not a model documentation path: {path!r}")
    return m["publisher"], f"{m['publisher']}/{m['model']}/{m['version']}", m["version"]


def parse_doc(markdown: str, path: str) -> dict:
    """The payload of one model documentation file (see the module docstring)."""
    publisher, handle, version = path_handle(path)
    heading = _HEADING.search(markdown.split("```", 1)[0])
    metadata: dict[str, list[str]] = {}
    for number, m in enumerate(_METADATA.finditer(markdown)):
        if number >= MAX_METADATA:
            break
        values = metadata.setdefault(m["key"].lower(), [])
        value = m["value"].strip(" \t")
        if value and value not in values:
            values.append(value[:1000])
    links: list[str] = []
    for target in _LINK.findall(markdown):
        if target not in links and len(links) < 500:
            links.append(target[:1000])
    return {
        "kind": heading["kind"] if heading else None, "handle": handle, "publisher": publisher,
        "version": version, "heading_handle": heading["handle"][:500] if heading else None,
        "description": description(markdown, heading.end() if heading else 0),
        "metadata": metadata, "links": links, "markdown": markdown[:MAX_MARKDOWN],
    }


def description(markdown: str, start: int) -> str | None:
    """The first paragraph after the heading that is neither a comment nor a heading."""
    lines: list[str] = []
    for line in markdown[start:].splitlines():
        stripped = line.strip()
        if stripped.startswith("<!--") or stripped.startswith("#") or stripped.startswith("[!["):
            if lines:
                break
            continue
        if not stripped:
            if lines:
                break
            continue
        lines.append(stripped)
    return " ".join(lines)[:2000] or None
