"""ModelZoo (modelzoo.co): its JSON API, or (``-a render=splash``) its JavaScript site through Splash.

API (default):

* ``GET <base>/api/models/<offset>/`` -> ``{"models": [{slug, title, description, stars, link,
  framework, categories}, ...]}``. Whether the number is an offset into 50-model pages was never
  confirmed (PTMTorrent read only ``/api/models/0/`` and took it as the whole list). The crawl
  reads it as an offset: after ``/0/`` it asks for ``/<0 + models on the page>/`` and so on, and
  stops at a page that is empty or lists no slug it has not seen. So 50-model pages, other page
  sizes, and a ``/0/`` that holds every model (one extra request, whose page is empty or repeats
  the list) all give the whole hub.
* ``GET <base>/api/models/<slug>/`` -> ``{title, description, stars, long_desc, link, papers,
  framework, categories, id}`` (no ``slug``): the model's raw payload, as served.

Rendered site (``-a render=splash``, needs ``SPLASH_URL``): the HTML pages are an empty shell that
JavaScript fills from the API, so each page is fetched through Splash (``ptmscrape.rendering``).

* ``<base>/`` lists model cards ``a.model-detail-div.box-shadow.w-100[href="/model/<slug>"]``;
  ``a.next-page`` leads to the next listing page (on the base URL's scheme and host: a link
  elsewhere is not followed, the page is reported); ``.no-models`` marks an empty one (the end).
  (The cards are modelzoo.co's; the paging markup is the replica's, as the real site's is unknown.)
* ``<base>/model/<slug>``, documented (PTMTorrent's scraper of the real site read it):
  ``div.model-info-div.box-shadow`` whose stripped strings hold the framework (index 2), the
  category title(s) (4, comma-separated, ``-`` for none; matched to ``CATEGORIES``) and GitHub
  stars (6, ``-`` when missing); the repository link ``a.btn.btn-primary.btn-get-model[target=_blank]``.
* Assumed (the replica's markup; the real site's is unknown), each read only when present: in
  ``.model-page`` (``data-model-id``): ``.model-title``, ``.model-description``,
  ``a.model-category`` badges (``data-id``, ``data-slug``, ``data-short-title``, title as text;
  they replace the categories read from the info box), ``a.model-paper`` links (paper title as
  text) and ``.model-long-desc``. An element for a null value is left out.

Both paths yield the same raw payload: the detail object. From the documented markup alone it
has no title, description, long_desc, papers or id (all null) and categories without ids. (Rendered
HTML cannot tell ``null`` from ``""`` for framework and stars, and HTML parsing turns CR LF into LF
in text.)
"""

from __future__ import annotations

import re
from urllib.parse import quote, unquote

from ptmscrape.checks import BadInput
from ptmscrape.items import printable
from ptmscrape.next_page_first import NEXT_PAGE_META
from ptmscrape.rendering import splash_enabled, splash_request
from ptmscrape.spiders_base import HubSpider, paths_below
from ptmscrape.stats import PAGES_ENTRIES_WITHOUT_SLUG

_CARD = "a.model-detail-div.box-shadow.w-100"
_INFO = "div.model-info-div.box-shadow"
_GET_MODEL = "a.btn.btn-primary.btn-get-model[target=_blank]"
_MODEL_PATH = re.compile(r"^/model/([^/]+)/?$")
_NOT_SLUGS = (".", "..")  # path segments that name no model
SPLASH_MAX_WAIT = 30.0  # seconds: Splash's render timeout (none is asked for); a wait must end before it
# The hub's categories: (slug, title, short_title), as the schemas PTMTorrent generated from the real
# API list them (their numeric ids are unknown). A rendered page shows the title.
CATEGORIES = (
    ("computer-vision", "Computer Vision", "CV"),
    ("reinforcement-learning", "Reinforcement Learning", "RL"),
    ("natural-language-processing", "Natural Language Processing", "NLP"),
    ("generative-models", "Generative Models", "Generative"),
    ("unsupervised-learning", "Unsupervised Learning", "Unsupervised"),
    ("audio-speech", "Audio and Speech", "Audio"),
    ("graph", "Graph", "Graph"),
    ("self-supervised-learning", "Self-Supervised Learning", "Self-Supervised"),
    ("health-bioscience", "Health and Bioscience", "Health"),
)
_CATEGORY_OF = {name.lower(): (slug, title, short) for slug, title, short in CATEGORIES
                for name in (slug, title, short)}


class ModelzooSpider(HubSpider):
    name = "modelzoo"
    base_url_setting = "PTM_MODELZOO_URL"
    full_crawl_arguments = frozenset({"render"})
    listing_callbacks = frozenset({"parse_listing", "parse_listing_page"})  # the API's, the rendered site's

    def __init__(self, *args, render="api", models=None, **kwargs):
        super().__init__(*args, **kwargs)
        if render not in ("api", "splash"):
            raise BadInput(f"-a render= must be 'api' or 'splash', got {render!r}")
        self.render = render
        self.models = [m.strip() for m in (models or "").split(",") if m.strip()]
        if any(m in _NOT_SLUGS for m in self.models):
            raise BadInput("-a models= lists '.' or '..', which name no model")
        self.listed: set[str] = set()

    def check_settings(self, settings) -> None:
        super().check_settings(settings)
        if self.render == "splash" and not splash_enabled(settings):
            raise BadInput("-a render=splash needs a Splash server: set SPLASH_URL "
                           "(e.g. -s SPLASH_URL=http://127.0.0.1:8050)")
        if self.render == "splash":
            self.check_splash_wait(settings)

    @staticmethod
    def check_splash_wait(settings) -> None:
        """A wait Splash cannot give (render.html refused one over 30 s with HTTP 400; the render
        script's wait of 30 s or more outlasts Splash's 30 s render timeout: 504 for every page), or that outlasts
        ``DOWNLOAD_TIMEOUT`` (every page given up before Splash answers), fails the whole crawl:
        refused before it starts."""
        given = f"-s PTM_MODELZOO_SPLASH_WAIT={settings.get('PTM_MODELZOO_SPLASH_WAIT')}"
        wait = settings.getfloat("PTM_MODELZOO_SPLASH_WAIT")
        if not 0 <= wait < SPLASH_MAX_WAIT:
            raise BadInput(f"{given} must be from 0 to below {SPLASH_MAX_WAIT:g} seconds (Splash's render timeout: "
                           f"the page's load and the wait must fit in it)")
        timeout = settings.getfloat("DOWNLOAD_TIMEOUT")
        if timeout > 0 and wait >= timeout:
            raise BadInput(f"{given} must be below DOWNLOAD_TIMEOUT ({timeout:g} s): each page is given up after "
                           f"that, before Splash has rendered it")

    async def start(self):
        if self.limit == 0:
            return
        if self.models:
            for slug in self.models[: self.limit]:
                yield self.model_request(slug)
        elif self.render == "splash":
            yield self.rendered(f"{self.base_url}/", self.parse_listing_page)
        else:
            yield self.listing_request(0)

    # -- requests ------------------------------------------------------------------------
    def listing_request(self, offset: int, next_page: bool = False):
        make = self.next_page if next_page else self.request
        return make(f"{self.base_url}/api/models/{offset}/", self.parse_listing, cb_kwargs={"offset": offset})

    def model_request(self, slug: str):
        if self.render == "splash":
            return self.rendered(f"{self.base_url}/model/{quote(slug, safe='')}", self.parse_model_page,
                                 cb_kwargs={"slug": slug})
        return self.request(f"{self.base_url}/api/models/{quote(slug, safe='')}/", self.parse_model,
                            cb_kwargs={"slug": slug})

    def rendered(self, url: str, callback, **kwargs):
        wait = self.settings.getfloat("PTM_MODELZOO_SPLASH_WAIT")
        return splash_request(url, callback, wait=wait, errback=self.page_failed, **kwargs)

    # -- API -----------------------------------------------------------------------------
    def parse_listing(self, response, offset: int):
        page = self.json_page(response, expect=dict)
        if page is None:
            return
        models = page.get("models")
        if not isinstance(models, list):
            self.page_malformed(response, "unexpected JSON", "no 'models' list")
            return
        slugs = [self.listed_slug(response, m.get("slug") if isinstance(m, dict) else None) for m in models]
        requests, more = self.request_models(slugs)
        if more:  # the next page first: it downloads while this page's models are fetched
            yield self.listing_request(offset + len(models), next_page=True)
        yield from requests

    def parse_model(self, response, slug: str):
        model = self.json_page(response, expect=dict)
        if model is not None:
            yield self.raw_item(slug, response, model, slug=slug)

    # -- rendered site -------------------------------------------------------------------
    def parse_listing_page(self, response):
        cards = response.css(f"{_CARD}::attr(href)").getall()
        if not cards and not response.css(".no-models"):
            # The script failed or was slower than PTM_MODELZOO_SPLASH_WAIT: render it again.
            self.page_malformed(response, "page not rendered", "no model cards, no end of list")
            return
        slugs = [self.listed_slug(response, _slug_from_href(response.urljoin(href), self.base_url))
                 for href in cards]
        requests, more = self.request_models(slugs)
        next_page = response.css("a.next-page::attr(href)").get()
        if more and next_page:  # the next page first (see parse_listing)
            url = self.hub_link(response.url, next_page)
            if url is None:  # Splash would fetch it: another server, one of the local network...
                self.report_bad_page(response, f"next page link leaves the hub ({printable(next_page, 200)})")
            else:
                # Marked as a next page: one that leads back to a page read is a loop, not the end.
                yield self.rendered(url, self.parse_listing_page, meta={NEXT_PAGE_META: True})
        yield from requests

    def parse_model_page(self, response, slug: str):
        if not response.css(_INFO):
            self.page_malformed(response, "page not rendered", "no model-info-div")
            return
        yield self.raw_item(slug, response, rendered_model(response), slug=slug)

    # -- listing bookkeeping -------------------------------------------------------------
    def listed_slug(self, response, slug) -> str | None:
        """The slug, or None (logged, counted) when there is none: empty, or ``.``/``..``, which
        would ask for the listing's own path or its parent rather than a model."""
        if isinstance(slug, str) and slug.strip() and slug not in _NOT_SLUGS:
            return slug
        self.logger.error("Listing entry without a usable slug on %s: %r", response.url, slug)
        self.crawler.stats.inc_value(PAGES_ENTRIES_WITHOUT_SLUG)
        return None

    def request_models(self, slugs) -> tuple[list, bool]:
        """Requests for the slugs not listed before, and whether to read the next page."""
        requests: list = []
        for slug in slugs:
            if slug is None or slug in self.listed:
                continue
            if self.limit is not None and len(self.listed) >= self.limit:
                return requests, False
            self.listed.add(slug)
            requests.append(self.model_request(slug))
        return requests, bool(requests) and (self.limit is None or len(self.listed) < self.limit)


def rendered_model(response) -> dict:
    """The detail object, read back from a rendered model page (same keys, same order)."""
    page = response.css(".model-page")
    info = [s.strip() for s in response.css(f"{_INFO} ::text").getall() if s.strip()]
    badges = page.css("a.model-category")
    return {
        "title": _text(page, ".model-title"),
        "description": _text(page, ".model-description"),
        "stars": _stars(info[6] if len(info) > 6 else None),
        "long_desc": _text(page, ".model-long-desc"),
        "link": response.css(f"{_GET_MODEL}::attr(href)").get(),
        "papers": {a.xpath("string()").get(): a.attrib.get("href")
                   for a in page.css("a.model-paper")} if page.css("ul.model-papers") else None,
        "framework": _dash_none(info[2] if len(info) > 2 else None),
        "categories": [{"id": _int(a.attrib.get("data-id")), "slug": a.attrib.get("data-slug"),
                        "title": a.xpath("string()").get(), "short_title": a.attrib.get("data-short-title")}
                       for a in badges] if badges else _categories(info[4] if len(info) > 4 else None),
        "id": _int(page.attrib.get("data-model-id")) if page else None,
    }


def _categories(shown: str | None) -> list[dict]:
    """Category objects of the titles the info box shows (``Generative Models, Computer Vision``):
    a known one gets its slug and short title (its id is unknown), another only its title."""
    out = []
    for title in (t.strip() for t in (_dash_none(shown) or "").split(",")):
        if title:
            slug, title, short = _CATEGORY_OF.get(title.lower(), (None, title, None))
            out.append({"id": None, "slug": slug, "title": title, "short_title": short})
    return out


def _text(selection, css: str) -> str | None:
    """Exact text of the first match (whitespace kept), or None when there is no such element."""
    found = selection.css(css)
    return found[0].xpath("string()").get() if found else None


def _dash_none(value: str | None) -> str | None:
    return None if value in (None, "-") else value


def _stars(value: str | None) -> int | None:
    value = _dash_none(value)
    return int(value.replace(",", "")) if value and value.replace(",", "").isdigit() else None


def _int(value: str | None) -> int | None:
    return int(value) if value and value.lstrip("-").isdigit() else None


def _slug_from_href(url: str, base_url: str) -> str | None:
    """The slug of a model page's URL, read below the base URL's path (a mirror's ``/modelzoo``);
    a site that does not know its prefix links from the host's root, which is read too."""
    match = next(filter(None, (_MODEL_PATH.match(rest) for rest in paths_below(url, base_url))), None)
    return unquote(match.group(1)) if match else None
