"""A local Ollama: the site (``<site prefix>/library``, ``/library/<model>/tags`` — our HTML
fixtures in ``tests/fixtures/ollama/``, in ollama.com's markup with its ``x-test-*`` hooks) and the
registry (``<registry prefix>/v2/library/<model>/manifests/<tag>``, our manifests in the
registry's format, with ``Docker-Content-Digest`` and the registry's JSON error for unknown ones).

Both live on one server under two path prefixes (``""`` for both is fine: the paths differ).
``pages`` replaces a site page's HTML (path -> text, e.g. a hostile listing); ``gone_manifests``
(``model:tag``) answer 404 as a tag removed after the page was read.
"""

from __future__ import annotations

import hashlib
import re
from pathlib import Path

from tests.replicas.server import Incoming, Replica, Reply

FIXTURES = Path(__file__).resolve().parent.parent / "fixtures" / "ollama"
MANIFEST_TYPE = "application/vnd.docker.distribution.manifest.v2+json"
HTML = "text/html; charset=utf-8"


def fixture_models() -> dict[str, list[str]]:
    """model -> its tags, as the fixture's tags pages list them."""
    return {d.name: sorted(p.stem for p in d.iterdir())
            for d in sorted((FIXTURES / "manifests").iterdir())}


def manifest_bytes(model: str, tag: str) -> bytes | None:
    path = FIXTURES / "manifests" / model / f"{tag}.json"
    return path.read_bytes() if path.is_file() else None


class OllamaReplica:
    """``with OllamaReplica(site_prefix="/site", registry_prefix="/reg") as hub: hub.settings()``."""

    def __init__(self, site_prefix: str = "", registry_prefix: str = "", port: int = 0):
        self.site_prefix, self.registry_prefix = site_prefix, registry_prefix
        self.pages: dict[str, str] = {}
        self.gone_manifests: set[str] = set()
        self.replica = Replica(port)
        site, reg = re.escape(site_prefix), re.escape(registry_prefix)
        self.replica.route("GET", rf"{reg}/v2/library/(?P<model>[^/]+)/manifests/(?P<tag>[^/]+)", self._manifest)
        self.replica.route("GET", rf"{site}/library", self._listing)
        self.replica.route("GET", rf"{site}/library/(?P<model>[^/]+)/tags", self._tags)

    @property
    def url(self) -> str:
        return self.replica.url

    @property
    def base_url(self) -> str:
        return self.url + self.site_prefix

    @property
    def registry_url(self) -> str:
        return self.url + self.registry_prefix

    def settings(self, **extra) -> dict:
        return {"PTM_OLLAMA_URL": self.base_url, "PTM_OLLAMA_REGISTRY_URL": self.registry_url, **extra}

    def manifest_requests(self) -> list[str]:
        return [p for m, p in self.replica.requests if m == "GET" and "/manifests/" in p]

    def page_requests(self) -> list[str]:
        return [p for m, p in self.replica.requests if m == "GET" and "/manifests/" not in p]

    def __enter__(self) -> OllamaReplica:
        self.replica.start()
        return self

    def __exit__(self, *exc) -> None:
        self.replica.stop()

    def _page(self, relative: str) -> Reply:
        if relative in self.pages:
            return Reply.text(self.pages[relative], content_type=HTML)
        path = FIXTURES / relative.lstrip("/")
        if not path.is_file():
            return Reply.text("<!doctype html><html><body><h1>404</h1></body></html>", 404, content_type=HTML)
        return Reply.text(path.read_text(), content_type=HTML)

    def _listing(self, req: Incoming, m: re.Match) -> Reply:
        return self._page("/library.html")

    def _tags(self, req: Incoming, m: re.Match) -> Reply:
        return self._page(f"/library/{m.group('model')}/tags.html")

    def _manifest(self, req: Incoming, m: re.Match) -> Reply:
        model, tag = m.group("model"), m.group("tag")
        body = None if f"{model}:{tag}" in self.gone_manifests else manifest_bytes(model, tag)
        if body is None:
            return Reply.json({"errors": [{"code": "MANIFEST_UNKNOWN", "message": "manifest unknown",
                                           "detail": {"Tag": tag}}]}, 404)
        digest = "sha256:" + hashlib.sha256(body).hexdigest()
        return Reply(200, body, {"Content-Type": MANIFEST_TYPE, "Docker-Content-Digest": digest})


def start_demo_replica(workdir: Path, port: int = 0):
    """For the offline demo: (replica context manager, crawl settings, crawl environment)."""
    hub = OllamaReplica(registry_prefix="/registry", port=port)
    return hub, hub.settings(), {}
