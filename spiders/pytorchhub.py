"""PyTorch Hub (pytorch.org/hub): a static listing page, then one HTML page per model.

The hub has no JSON API: ``<base>/research-models/compact`` lists every model as a card
(``div.compact-hub-card-wrapper`` with ``data-tags`` and ``data-id`` = GitHub ``owner/repo``, around
one site-relative ``a[href="/hub/<slug>/"]``; no pagination, sorting and filtering are client-side).
Each model page ``/hub/<slug>/`` gives the name (``h1``), the author (the first ``p.detail-lead``,
rendered ``By <author> ``), the summary (``p.lead-summary``) and buttons whose parent ``<a>`` holds the
GitHub link (usually a deep ``blob``/``tree`` URL), the Colab notebook and, for some, a demo. The
button classes are the same in the current layout (buttons in ``div.detail-button-container``) and
the ~2020 one (buttons loose in ``div.col-md-6``).

The raw payload is therefore built here: a dict of the fields read from the card and the page,
plus the slug and the page URL (keys as in PTMTorrent's ``pytorchhubModelMetadata`` schema).
"""

from __future__ import annotations

from urllib.parse import quote, urlsplit

from ptmscrape.spiders_base import HubSpider

CARDS = "div.compact-hub-card-wrapper"


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
            slug = _slug(href)
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
        name = _text(response.css("h1"))
        if not name:
            self.page_malformed(response, "model page without a name", "no text in h1")
            return
        if self.limit_reached:
            return
        author = _text(response.css("p.detail-lead")[:1])
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
        })


def _slug(href: str) -> str | None:
    """``pytorch_vision_resnet`` from ``/hub/pytorch_vision_resnet/`` (or its absolute form)."""
    segments = [s for s in urlsplit(href).path.split("/") if s]
    return segments[-1] if segments else None


def _text(selection) -> str:
    """The element's text with runs of whitespace collapsed (h1 is wrapped in newlines)."""
    return " ".join(" ".join(selection.css("::text").getall()).split())


def _button_link(response, button_class: str) -> str | None:
    href = response.css(f"button.{button_class}").xpath("ancestor::a[1]/@href").get()
    return response.urljoin(href.strip()) if href and href.strip() else None
