"""Ollama (ollama.com library + registry.ollama.ai): HTML listing, one tags page per model, then
each tag's OCI manifest from the registry.

* ``GET <PTM_OLLAMA_URL>/library``: every library model as ``li[x-test-model]`` (one page, no
  paging), with ``[x-test-model-title]`` (``title`` = the model name), the summary (``p``),
  ``[x-test-capability]`` (tools, vision, embedding, thinking), ``[x-test-size]`` (parameter sizes
  such as ``8b``), ``[x-test-pull-count]`` (``55.7M``), ``[x-test-tag-count]`` and
  ``[x-test-updated]`` (relative: ``1 month ago``; its parent's ``title`` holds the date). The
  ``x-test-*`` attributes are the site's own test hooks, steadier than its CSS classes.
* ``GET <PTM_OLLAMA_URL>/library/<model>/tags``: the model page listing every tag, with
  ``[x-test-model-name]``, the pull count and update time, and one row per tag (a link to
  ``/library/<model>:<tag>``, the short manifest digest in ``.font-mono``, size, context window
  and input kinds). The model's readme page is not read.
* ``GET <PTM_OLLAMA_REGISTRY_URL>/v2/library/<model>/manifests/<tag>`` (``Accept:
  application/vnd.docker.distribution.manifest.v2+json``): ``{schemaVersion, mediaType, config,
  layers: [{mediaType: application/vnd.ollama.image.{model|template|license|params|system|
  projector|adapter}, digest, size}]}``; the ``Docker-Content-Digest`` header names the manifest.
  Blobs are never fetched.

The tags of one model are fetched one after another, each request carrying what was gathered so
far (plain data, so a JOBDIR can hold it); the model is yielded after its last tag. A tag whose
manifest fails is recorded with the reason and reported like any failed page. Names and tags
come from HTML: only ones that the registry could hold (``[a-z0-9][a-z0-9._-]*``) are requested.
"""

from __future__ import annotations

import re
from urllib.parse import quote, unquote, urlsplit

import scrapy

from ptmscrape.checks import BadInput
from ptmscrape.spiders_base import HubSpider
from ptmscrape.stats import PAGES_ENTRIES_WITHOUT_NAME, PAGES_INVALID_TAGS

MANIFEST_ACCEPT = "application/vnd.docker.distribution.manifest.v2+json"
NAMESPACE = "library"
# Ollama model names and tags (registry path components and Docker tags), bounded in length.
_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,199}$")
_TAG = re.compile(r"^[A-Za-z0-9_][A-Za-z0-9._-]{0,127}$")


class OllamaSpider(HubSpider):
    name = "ollama"
    base_url_setting = "PTM_OLLAMA_URL"
    has_repositories = False  # nothing to clone: no git needed
    registry_url: str  # PTM_OLLAMA_REGISTRY_URL, set by from_crawler

    @classmethod
    def from_crawler(cls, crawler, *args, **kwargs):
        spider = super().from_crawler(crawler, *args, **kwargs)  # check_settings: the registry is set
        spider.registry_url = crawler.settings.get("PTM_OLLAMA_REGISTRY_URL").strip().rstrip("/")
        return spider

    def check_settings(self, settings) -> None:
        super().check_settings(settings)
        if not str(settings.get("PTM_OLLAMA_REGISTRY_URL") or "").strip():
            raise BadInput("PTM_OLLAMA_REGISTRY_URL is not set: give the registry's base URL")

    async def start(self):
        if self.limit != 0:
            yield self.request(f"{self.base_url}/{NAMESPACE}", self.parse_listing)

    # -- listing ---------------------------------------------------------------------------
    def parse_listing(self, response):
        if self.html_page(response) is None:
            return
        entries = response.css("li[x-test-model]")
        if not entries:
            self.page_malformed(response, "no models", "nothing matches li[x-test-model]")
            return
        wanted = 0
        for number, entry in enumerate(entries, 1):
            name = (entry.css("[x-test-model-title]::attr(title)").get() or "").strip()
            if not _NAME.fullmatch(name):
                self.logger.error("Listing entry %d on %s without a usable model name: %r",
                                  number, response.url, name[:200])
                self.crawler.stats.inc_value(PAGES_ENTRIES_WITHOUT_NAME)
                continue
            if self.limit is not None and wanted >= self.limit:
                return
            wanted += 1
            updated = entry.css("[x-test-updated]")
            model = {
                "Namespace": NAMESPACE,
                "Name": name,
                "Description": _text(entry.css("[x-test-model-title] p")) or None,
                "Capabilities": _texts(entry.css("[x-test-capability]")),
                "Sizes": _texts(entry.css("[x-test-size]")),
                "PullCount": _text(entry.css("[x-test-pull-count]")) or None,
                "TagCount": _text(entry.css("[x-test-tag-count]")) or None,
                "Updated": _text(updated) or None,
                "UpdatedAt": (updated.xpath("ancestor::*[@title][1]/@title").get() or "").strip() or None,
            }
            yield self.request(f"{self.base_url}/{NAMESPACE}/{quote(name, safe='')}/tags", self.parse_tags,
                               cb_kwargs={"model": model})

    # -- model page (its tags) ---------------------------------------------------------------
    def parse_tags(self, response, model: dict):
        if self.html_page(response) is None:
            return
        if not response.css("[x-test-model-name]"):
            self.page_malformed(response, "model page without a name", "no [x-test-model-name]")
            return
        model = dict(model, URL=response.url.removesuffix("/tags"))
        summary = _text(response.css("#summary-content"))
        if summary:
            model["Description"] = summary
        model["PullCount"] = _text(response.css("[x-test-pull-count]")) or model.get("PullCount")
        tags, seen = [], set()
        for link in response.css("a[href]"):
            tag = _tag_of(link.attrib["href"], model["Name"])
            if tag is None or tag in seen:
                continue
            seen.add(tag)
            if not _TAG.fullmatch(tag):
                self.logger.error("Tag %r of %s on %s is not a valid tag: skipped", tag[:200],
                                  model["Name"], response.url)
                self.crawler.stats.inc_value(PAGES_INVALID_TAGS)
                continue
            row = link.xpath("ancestor::div[contains(concat(' ', normalize-space(@class), ' '), ' group ')][1]")
            columns = [_text(p) for p in row.css("p.col-span-2, div.col-span-2")]
            tags.append({
                "Tag": tag,
                "ShortDigest": (row.css(".font-mono::text").get() or "").strip() or None,
                "Size": columns[0] if len(columns) > 0 and columns[0] else None,
                "Context": columns[1] if len(columns) > 1 and columns[1] else None,
                "Input": columns[2] if len(columns) > 2 and columns[2] else None,
                "Manifest": None, "ManifestDigest": None, "Error": None,
            })
        if not tags:
            # Every library model has a tag (``latest`` at least): none found means the page's
            # tag links changed shape or its rows were cut, not a model without versions.
            self.page_malformed(response, "no tags", f"no valid link to /library/{model['Name']}:<tag>")
            return
        model["Tags"] = tags
        yield from self.next_tag(response, model, 0)

    # -- manifests ----------------------------------------------------------------------------
    def next_tag(self, response, model: dict, index: int):
        """The manifest request for tag ``index``, or the model once every tag is done."""
        if index < len(model["Tags"]):
            tag = model["Tags"][index]["Tag"]
            url = (f"{self.registry_url}/v2/{NAMESPACE}/{quote(model['Name'], safe='')}"
                   f"/manifests/{quote(tag, safe='')}")
            yield scrapy.Request(url, callback=self.parse_manifest, errback=self.manifest_failed,
                                 headers={"Accept": MANIFEST_ACCEPT},
                                 cb_kwargs={"model": model, "index": index})
            return
        if self.limit_reached_for(response):
            return
        yield self.raw_item(f"{NAMESPACE}/{model['Name']}", response, model)

    def parse_manifest(self, response, model: dict, index: int):
        manifest = self.json_page(response, expect=dict)
        if manifest is None and self._fetching_again(response):
            return  # page_malformed queued another try, carrying the same model
        tag = model["Tags"][index]
        if manifest is None:
            tag["Error"] = "malformed manifest"
        elif not isinstance(manifest.get("layers"), list):
            self.report_bad_page(response, "manifest without layers")
            tag["Error"] = "manifest without layers"
        else:
            tag["Manifest"] = manifest
            digest = response.headers.get("Docker-Content-Digest")
            tag["ManifestDigest"] = digest.decode("latin-1")[:100] if digest else None
        yield from self.next_tag(response, model, index + 1)

    def manifest_failed(self, failure):
        """A manifest that failed after retries: reported, recorded on its tag, and the model's
        other tags still fetched."""
        self.page_failed(failure)
        request = failure.request
        model, index = request.cb_kwargs["model"], request.cb_kwargs["index"]
        status = getattr(getattr(failure.value, "response", None), "status", None)
        model["Tags"][index]["Error"] = f"HTTP {status}" if status else failure.type.__name__
        yield from self.next_tag(request, model, index + 1)

    def _fetching_again(self, response) -> bool:
        """Whether :meth:`page_malformed` just queued another try of this page (as it decides)."""
        request = response.request
        try:
            engine = self.crawler.engine
        except RuntimeError:
            engine = None
        tries = request.meta.get("ptm_page_retries", 0) if request is not None else 0
        return (request is not None and engine is not None
                and tries < self.settings.getint("PTM_PAGE_RETRIES"))


def _tag_of(href: str, name: str) -> str | None:
    """``latest`` from ``/library/llama3.2:latest`` (any prefix before it), else None."""
    segments = [s for s in urlsplit(href).path.split("/") if s]
    if not segments:
        return None
    model, sep, tag = unquote(segments[-1]).partition(":")
    return tag if sep and model == name and tag else None


def _text(selection) -> str:
    return " ".join(" ".join(selection.css("::text").getall()).split())


def _texts(selection) -> list[str]:
    return [t for t in (_text(s) for s in selection) if t]
