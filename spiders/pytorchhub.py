"""PyTorch Hub (pytorch.org/hub): a static listing page, then one HTML page per model.

The hub has no JSON API: ``<base>/research-models/compact`` lists every model as a card
(``div.compact-hub-card-wrapper`` with ``data-tags`` and ``data-id`` = GitHub ``owner/repo``, around
one site-relative ``a[href="/hub/<slug>/"]``; no pagination, sorting and filtering are client-side).
A card whose link is not a model page (``/hub/<slug>/``, also absolute or under the base URL's path,
one path segment, not ``.`` or ``..``) is reported with its number and the crawl goes on.
Each model page ``<base>/<slug>/`` (built from the base URL and the card's slug, not from the
card's site-relative href, so a mirror under a path works) gives the name (the jumbotron's ``h1``:
articles have ``h1`` headings of their own), the author (the first ``p.detail-lead`` that is not
the summary, rendered ``By <author> ``), the summary (``p.lead-summary``) and buttons whose parent ``<a>`` holds the
GitHub link (usually a deep ``blob``/``tree`` URL), the Colab notebook and, for some, a demo. The
button classes are the same in the current layout (buttons in ``div.detail-button-container``) and
the ~2020 one (buttons loose in ``div.col-md-6``). From the article (``article.pytorch-article``)
come the text of each code block (``CodeSamples``, where the ``torch.hub.load`` calls are) and every
link (``ArticleLinks``, where the papers are); the mapper reads entrypoints and DOIs from them.

The raw payload is therefore built here: a dict of the fields read from the card and the page,
plus the slug and the page URL (keys as in PTMTorrent's ``pytorchhubModelMetadata`` schema).
"""

from __future__ import annotations

import re
from urllib.parse import quote, unquote, urlsplit

from ptmscrape.spiders_base import HubSpider, paths_below

CARDS = "div.compact-hub-card-wrapper"
ARTICLE = "article.pytorch-article"
# Bounds on what one page may put in its payload (the real maximum: 21 code blocks, 30 links).
MAX_CODE_SAMPLES, MAX_CODE_CHARS, MAX_LINKS = 100, 20_000, 500
_URL = re.compile(r"https?://[^\s<>\"'()\[\]{}]+")
_MODEL_PATH = re.compile(r"^/([^/]+)/?$")  # below /hub (or the base URL's path)


class PytorchhubSpider(HubSpider):
    name = "pytorchhub"
    base_url_setting = "PTM_PYTORCHHUB_URL"

    async def start(self):
        if self.limit != 0:
            yield self.request(f"{self.base_url}/research-models/compact", self.parse_listing)

    def parse_listing(self, response):
        if self.html_page(response) is None:
            return
        cards = response.css(CARDS)
        if not cards:  # a maintenance page, or the site's markup changed
            self.page_malformed(response, "no model cards", f"nothing matches {CARDS}")
            return
        wanted = 0
        for number, card in enumerate(cards, 1):
            href = card.css("a[href]::attr(href)").get("").strip()
            slug = _slug(response.urljoin(href), self.base_url) if href else None
            if not slug:
                self.report_bad_page(response, f"card without a model link (card {number}: {href[:80]!r})")
                continue
            if self.limit is not None and wanted >= self.limit:
                return
            wanted += 1
            # The page is <base>/<slug>/: the site links from its root (/hub/…), which a mirror's
            # base URL with a path (http://mirror/pytorch/hub) would leave.
            yield self.request(f"{self.base_url}/{quote(slug, safe='')}/", self.parse_model, cb_kwargs={"card": {
                "slug": slug,
                "tags": [t.strip() for t in card.attrib.get("data-tags", "").split(",") if t.strip()],
                "github_id": card.attrib.get("data-id", "").strip(),
                "title": _text(card.css("h4.compact-item-title")),
                "summary": _text(card.css("p.compact-card-summary")),
            }})

    def parse_model(self, response, card):
        if self.html_page(response) is None:
            return
        name = _text(response.css("div.jumbotron h1")[:1]) or _text(response.css("h1")[:1])
        if not name:
            self.page_malformed(response, "model page without a name", "no text in h1")
            return
        if self.limit_reached_for(response):
            return
        # The summary is p.detail-lead.lead-summary: not the author on a page without a "By" line.
        author = _text(response.css("p.detail-lead:not(.lead-summary)")[:1])
        article = response.css(ARTICLE)[:1] or response.css("div.main-content")[:1]
        yield self.raw_item(card["slug"], response, {
            "Slug": card["slug"],
            "ModelURL": response.url,
            "ModelName": name,
            "ModelAuthor": author.removeprefix("By ").strip() if author else None,
            "ModelDescription": _text(response.css("p.lead-summary")) or card["summary"] or None,
            "GitHubURL": _button_link(response, "detail-github-link"),
            "ColabURL": _button_link(response, "detail-colab-link"),
            "DemoURL": _button_link(response, "detail-web-demo-link"),
            "GitHubID": card["github_id"] or None,
            "Tags": card["tags"],
            "CardTitle": card["title"] or None,
            "CodeSamples": [code[:MAX_CODE_CHARS] for code in
                            ("".join(pre.css("::text").getall()) for pre in article.css("pre"))
                            if code.strip()][:MAX_CODE_SAMPLES],
            "ArticleLinks": _links(response, article),
        })


def _slug(url: str, base_url: str) -> str | None:
    """``pytorch_vision_resnet`` from a card's ``…/hub/pytorch_vision_resnet/``, read below the base
    URL's path (a mirror's ``/mirror/hub``) or the site's ``/hub`` (it links from its root); None for
    any other link (``javascript:…``, ``/hub/a/b/``, ``/hub/a%2Fb/``: a slug is a file's name) and for
    ``.`` or ``..``, which name no model."""
    if urlsplit(url).scheme not in ("http", "https"):
        return None
    match = next(filter(None, (_MODEL_PATH.match(rest) for rest in paths_below(url, base_url, "/hub"))), None)
    slug = unquote(match.group(1)) if match else None
    return slug if slug and "/" not in slug and slug not in (".", "..") else None


def _text(selection) -> str:
    """The element's text with runs of whitespace collapsed (h1 is wrapped in newlines)."""
    return " ".join(" ".join(selection.css("::text").getall()).split())


def _links(response, article) -> list[str]:
    """The article's link targets and the URLs written out in its text (references as plain
    text, BibTeX in code blocks), absolute, each once, in page order."""
    out: list[str] = []
    written = _URL.findall(" ".join(article.css("::text").getall()))
    for href in article.css("a::attr(href)").getall() + [u.rstrip(".,;:") for u in written]:
        href = href.strip()
        if href and not href.startswith("#"):
            url = response.urljoin(href)
            if url not in out:
                out.append(url)
        if len(out) >= MAX_LINKS:
            break
    return out


def _button_link(response, button_class: str) -> str | None:
    href = response.css(f"button.{button_class}").xpath("ancestor::a[1]/@href").get()
    return response.urljoin(href.strip()) if href and href.strip() else None
