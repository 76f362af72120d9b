"""A local ModelZoo (modelzoo.co): its JSON API, its JavaScript site, and the models' GitHub repositories.

* ``GET /api/models/<offset>/`` -> ``{"models": [<listing entry>, ...]}``: ``page_size`` models from
  ``offset`` on (empty past the end). Whether modelzoo.co read the number as an offset was never
  confirmed (see ``spiders/modelzoo.py``); this replica does, with 50-model pages by default.
* ``GET /api/models/<slug>/`` -> the model's detail object (no ``slug`` key), or 404.
* ``GET /`` (``?offset=<n>``) and ``GET /model/<slug>``: one HTML shell with no model data in it;
  its inline script (``modelzoo_site.html``) fetches the API above and renders the cards and model
  pages, so only a browser that runs JavaScript (Splash) sees the models.
* GitHub repositories of the models' ``link``s over smart HTTP at ``/<owner>/<repo>``: point git
  at them with ``insteadof_env("https://github.com", replica.url)``. ``/website/<page>`` is an HTML
  page (and ``/website/<page>/info/refs`` a 404, as on any website): the stand-in for a link that
  is a website, not a repository (``WEBSITE`` -> ``replica.url + "/website"``; see :meth:`git_env`).

No real ModelZoo API response was ever recorded: the field shapes follow the JSON Schemas that the
PTMTorrent authors generated from the real responses, and the models (``tests/fixtures/modelzoo/
models.json``) are synthesized. Each fixture model is a listing entry and a detail object in one
dict: ``slug`` + the detail keys.
"""

from __future__ import annotations

import copy
import json
import re
from pathlib import Path
from urllib.parse import unquote

from tests.replicas.server import GitHost, Incoming, Replica, Reply, insteadof_env

FIXTURES = Path(__file__).resolve().parent.parent / "fixtures" / "modelzoo"
SITE = Path(__file__).resolve().parent / "modelzoo_site.html"

LISTING_KEYS = ("slug", "title", "description", "stars", "link", "framework", "categories")
DETAIL_KEYS = ("title", "description", "stars", "long_desc", "link", "papers", "framework", "categories", "id")
# Fixture links to this (reserved, never resolving) host are websites, not repositories.
WEBSITE = "https://project-site.example"

_GITHUB_REPO = re.compile(r"^https://github\.com/([^/]+)/([^/]+?)(?:\.git)?(?:/tree/([^/]+)/(.+?))?/?$")


def fixture_models() -> list[dict]:
    return json.loads((FIXTURES / "models.json").read_text("utf-8"))


def listing_entry(model: dict) -> dict:
    return {k: model[k] for k in LISTING_KEYS if k in model}


def detail(model: dict) -> dict:
    return {k: model[k] for k in DETAIL_KEYS if k in model}


def shell_html() -> str:
    return SITE.read_text("utf-8")


class ModelZooReplica:
    """``with ModelZooReplica(models, tmp_path) as zoo: zoo.url`` — every GitHub repository the
    models link to is created (unless ``repos=False``): files under a ``/tree/<branch>/<path>``
    link's path, one commit per model in list order."""

    def __init__(self, models: list[dict], repos_root: str | Path | None = None, *,
                 page_size: int = 50, repos: bool = True, prefix: str = "", port: int = 0):
        self.models: dict[str, dict] = {}
        self.page_size = page_size
        self.bodies: dict[str, bytes] = {}  # slug -> raw detail body served instead (e.g. bad JSON)
        self.fail_once: set[str] = set()  # API paths answered once with a 503 (then normally)
        self.replica = Replica(port)
        self.prefix = prefix.rstrip("/")  # everything served under it (a mirror: /modelzoo/...)
        self.git = GitHost(repos_root) if repos_root and repos else None
        for model in models:
            self.add_model(model)
        r = self.replica
        p = re.escape(self.prefix)
        r.route("GET", p + r"/api/models/(?P<offset>\d+)/?", self._listing)
        r.route("GET", p + r"/api/models/(?P<slug>[^/]+)/?", self._detail)
        r.route("GET", p + r"/(?:model/[^/]+/?)?", self._shell)
        r.route("GET", p + r"/website(?:/[^/]*)?", self._website)  # pages only: no /info/refs
        if self.git:
            self.git.mount(r, self.prefix)

    # -- data ----------------------------------------------------------------------------
    def add_model(self, model: dict) -> dict:
        model = copy.deepcopy(model)
        self.models[model["slug"]] = model
        match = _GITHUB_REPO.match(model.get("link") or "")
        if self.git and match:
            owner, name, branch, subpath = match.groups()
            repo = f"{owner}/{name}"
            folder = f"{subpath}/" if subpath else ""
            files = {f"{folder}README.md": f"# {model.get('title')}\n\n{model.get('description') or ''}\n",
                     f"{folder}model.py": f"# {model['slug']}\nFRAMEWORK = {model.get('framework')!r}\n"}
            if self.git.exists(repo):
                self.git.commit(repo, files, message=f"add {model['slug']}", branch=branch or "main")
            else:
                self.git.add_repo(repo, files, message=f"add {model['slug']}", branch=branch or "main")
        return model

    def repo_head(self, repo: str, branch: str = "main") -> str:
        return self.git.head(repo, branch)

    # -- HTTP ----------------------------------------------------------------------------
    @property
    def url(self) -> str:
        return self.replica.url + self.prefix

    def git_env(self, env: dict[str, str] | None = None) -> dict[str, str]:
        """Environment sending git's GitHub and website traffic to this replica."""
        return insteadof_env(WEBSITE, f"{self.url}/website", insteadof_env("https://github.com", self.url, env))

    def __enter__(self) -> ModelZooReplica:
        self.replica.start()
        return self

    def __exit__(self, *exc) -> None:
        self.replica.stop()

    def _hiccup(self, req: Incoming) -> Reply | None:
        if req.path in self.fail_once:
            self.fail_once.discard(req.path)
            return Reply.json({"detail": "Service temporarily unavailable."}, 503)
        return None

    def _listing(self, req: Incoming, m: re.Match) -> Reply:
        if hiccup := self._hiccup(req):
            return hiccup
        offset = int(m.group("offset"))
        page = list(self.models.values())[offset:offset + self.page_size]
        return Reply.json({"models": [listing_entry(model) for model in page]})

    def _detail(self, req: Incoming, m: re.Match) -> Reply:
        if hiccup := self._hiccup(req):
            return hiccup
        slug = unquote(m.group("slug"))
        if slug in self.bodies:
            return Reply(200, self.bodies[slug], {"Content-Type": "application/json"})
        model = self.models.get(slug)
        if model is None:
            return Reply.json({"detail": "Not found."}, 404)
        return Reply.json(detail(model))

    def _shell(self, req: Incoming, m: re.Match) -> Reply:
        return Reply.text(shell_html(), content_type="text/html; charset=utf-8")

    def _website(self, req: Incoming, m: re.Match) -> Reply:
        return Reply.text("<!doctype html><title>Project site</title><h1>Our project</h1>",
                          content_type="text/html; charset=utf-8")


def start_demo_replica(workdir: Path, port: int = 0):
    """For the offline demo: (replica context manager, crawl settings, crawl environment)."""
    zoo = ModelZooReplica(fixture_models(), Path(workdir) / "modelzoo-git", page_size=5, port=port)
    return zoo, {"PTM_MODELZOO_URL": zoo.url}, zoo.git_env({})
