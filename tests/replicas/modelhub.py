"""A local Modelhub: the ``models.json`` index as raw.githubusercontent.com serves it (text/plain,
pretty-printed) and every model's GitHub repository over smart HTTP at ``/<owner>/<repo>``.

Point git at it with ``insteadof_env("https://github.com", replica.url)``. The index is our fixture
(``tests/fixtures/modelhub/models.json``), in the real file's format; each repository gets a
modelhub-style contribution (``contrib_src/model/config.json`` after ``config_schema.json``).
"""

from __future__ import annotations

import json
import re
from pathlib import Path
from urllib.parse import urlsplit

from tests.replicas.server import GitHost, Incoming, Replica, Reply, git, insteadof_env

FIXTURES = Path(__file__).resolve().parent.parent / "fixtures" / "modelhub"
INDEX_PATH = "/modelhub-ai/modelhub/master/models.json"


def fixture_index_text() -> str:
    return (FIXTURES / "models.json").read_text()


def fixture_models() -> list[dict]:
    return json.loads(fixture_index_text())


def repo_path(model: dict) -> str:
    """``owner/repo`` of a model's ``github`` URL."""
    return urlsplit(model["github"]).path.strip("/")


def model_files(model: dict) -> dict[str, str]:
    task = model.get("task_extended", "")
    config = {
        "id": model.get("id", ""),
        "meta": {"name": model["name"], "application_area": "Medical imaging",
                 "task": task.split(" - ")[-1], "task_extended": task,
                 "data_type": "Image", "data_source": "replica"},
        "publication": {"title": f"{model['name']} (replica)", "source": "replica", "year": 2019,
                        "authors": "Replica", "abstract": "Not a real model.", "url": "", "google_scholar": "",
                        "bibtex": ""},
        "model": {"description": f"{model['name']} replica", "provenance": "", "architecture": "CNN",
                  "learning_type": "Supervised learning", "format": ".onnx",
                  "io": {"input": {"format": ["image/png"]}, "output": []}},
    }
    return {
        "README.md": f"# {model['name']}\n\n{task}\n",
        "contrib_src/model/config.json": json.dumps(config, indent=2) + "\n",
        "contrib_src/license/model": "MIT License (replica)\n",
        "dockerfiles/Dockerfile": "FROM modelhub/plain:latest\n",
    }


class ModelhubReplica:
    """``with ModelhubReplica(tmp_path / "git") as hub: hub.url`` — the index at
    ``hub.index_url``; repositories are built on their ``github_branch``.

    ``head_elsewhere``: repositories (``owner/repo``) whose default branch (the remote HEAD) is
    ``develop``, one commit ahead of ``github_branch`` — a clone that ignored the index's branch
    would land on the wrong commit.
    """

    def __init__(self, repos_root: str | Path, models: list[dict] | None = None, *,
                 index_text: str | None = None, head_elsewhere: tuple[str, ...] = (), port: int = 0):
        self.index_text = index_text if index_text is not None else (
            fixture_index_text() if models is None else json.dumps(models, indent=2) + "\n")
        self.models = json.loads(self.index_text) if models is None else models
        self.replica = Replica(port)
        self.git = GitHost(repos_root)
        self.branch_heads: dict[str, str] = {}  # owner/repo -> SHA of github_branch
        for model in self.models:
            if not isinstance(model, dict) or not str(model.get("github")).startswith("https://"):
                continue  # deliberately broken entries get no repository
            repo, branch = repo_path(model), model.get("github_branch") or "master"
            if self.git.exists(repo):
                continue
            self.branch_heads[repo] = self.git.add_repo(repo, model_files(model), branch=branch)
            if repo in head_elsewhere:
                git("update-ref", "refs/heads/develop", self.branch_heads[repo],
                    env={"GIT_DIR": str(self.git.bare_path(repo))})
                self.git.commit(repo, {"README.md": "# work in progress\n"}, message="wip",
                                branch="develop")  # also moves HEAD to develop
        self.replica.route("GET", re.escape(INDEX_PATH), self._index)
        self.git.mount(self.replica)

    @property
    def url(self) -> str:
        return self.replica.url

    @property
    def index_url(self) -> str:
        return self.url + INDEX_PATH

    def settings(self) -> dict[str, str]:
        return {"PTM_MODELHUB_INDEX_URL": self.index_url}

    def env(self, base: dict[str, str] | None = None) -> dict[str, str]:
        """Crawl environment: git fetches https://github.com/... from this replica."""
        return insteadof_env("https://github.com", self.url, base)

    def git_sessions(self, repo: str) -> int:
        """How many git clones/fetches reached ``owner/repo`` (each starts with one ``info/refs`` GET;
        the ``git-upload-pack`` POSTs that follow are 1 or 2 per session, by protocol version)."""
        return self.replica.count("GET", rf"^/{re.escape(repo)}(\.git)?/info/refs")

    def __enter__(self) -> ModelhubReplica:
        self.replica.start()
        return self

    def __exit__(self, *exc) -> None:
        self.replica.stop()

    def _index(self, req: Incoming, m: re.Match) -> Reply:
        # raw.githubusercontent.com serves every file as text/plain, whatever its extension.
        return Reply.text(self.index_text)


def start_demo_replica(workdir: Path, port: int = 0):
    """For the offline demo: (replica context manager, crawl settings, crawl environment)."""
    hub = ModelhubReplica(Path(workdir) / "modelhub-git", port=port)
    return hub, hub.settings(), hub.env()
