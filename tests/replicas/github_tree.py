"""A local GitHub repository as a tree-discovered hub sees it (tfhub.dev, Open Model Zoo).

One replica serves, for a repository ``<owner>/<name>`` built from a dict of files:

* the git repository over smart HTTP at ``/<owner>/<name>`` (point git at it with
  ``insteadof_env("https://github.com", replica.url)``);
* GitHub's recursive git-trees API at ``<prefix>/api/repos/<owner>/<name>/git/trees/<ref>``
  (``?recursive=1``), answered from ``git ls-tree`` as GitHub does: ``{sha, url, tree: [{path,
  mode, type, sha, size, url}], truncated}``;
* raw files as raw.githubusercontent.com serves them, at ``<prefix>/raw/<owner>/<name>/<ref>/<path>``.

``prefix`` puts the API and raw files under a path (a mirror); ``extra_entries`` adds tree entries
that are not in git (hostile paths); ``truncated`` cuts the tree as GitHub does past its limits;
``gone`` paths answer 404 over raw; ``hidden`` paths are left out of the tree; ``tree_rate_limited``
tree requests (the next so many) meet GitHub's primary rate limit: 403, ``x-ratelimit-remaining: 0``
and ``x-ratelimit-reset`` ``tree_limit_reset`` seconds on (a Unix time).
"""

from __future__ import annotations

import os
import re
import subprocess
import time
from pathlib import Path
from urllib.parse import unquote

from tests.replicas.server import GIT_ENV, GitHost, Incoming, Replica, Reply, git, insteadof_env


class GitHubRepoReplica:
    def __init__(self, repos_root: str | Path, repo: str, files: dict[str, bytes | str], *,
                 branch: str = "master", prefix: str = "", date: str = "2023-01-05T12:00:00Z",
                 port: int = 0):
        self.repo, self.branch, self.prefix = repo, branch, prefix.rstrip("/")
        self.replica = Replica(port)
        self.git = GitHost(repos_root)
        self.commits: list[str] = [self.git.add_repo(repo, files, message="initial import", branch=branch,
                                                     date=date)]
        self.extra_entries: list[dict] = []
        self.truncated: int | None = None  # keep only this many entries and say "truncated"
        self.gone: set[str] = set()
        self.hidden: set[str] = set()  # paths left out of the tree (a model removed from the hub)
        self.tree_rate_limited = 0  # the next so many tree requests answer GitHub's 403 of a rate limit
        self.tree_limit_reset = 2  # seconds until that limit's window resets
        self.replica.route("GET", rf"{re.escape(self.prefix)}/api/repos/{re.escape(repo)}/git/trees/(?P<ref>[^/]+)",
                           self._tree)
        self.replica.route("GET", rf"{re.escape(self.prefix)}/raw/{re.escape(repo)}/(?P<ref>[^/]+)/(?P<path>.+)",
                           self._raw)
        self.git.mount(self.replica)

    # -- the repository ------------------------------------------------------------------------
    def commit(self, files: dict[str, bytes | str], message: str, date: str) -> str:
        sha = self.git.commit(self.repo, files, message=message, branch=self.branch, date=date)
        self.commits.append(sha)
        return sha

    def _git(self, *args: str) -> subprocess.CompletedProcess:
        return subprocess.run(["git", *args], capture_output=True,
                              env={**os.environ, **GIT_ENV, "GIT_DIR": str(self.git.bare_path(self.repo))})

    def last_commit(self, path: str) -> str:
        return git("log", "-1", "--format=%H", self.branch, "--", path,
                   env={"GIT_DIR": str(self.git.bare_path(self.repo))})

    def file(self, path: str, ref: str | None = None) -> bytes | None:
        out = self._git("cat-file", "blob", f"{ref or self.branch}:{path}")
        return out.stdout if out.returncode == 0 else None

    def tree_entries(self, ref: str) -> tuple[str, list[dict]] | None:
        tree = self._git("rev-parse", f"{ref}^{{tree}}")
        listing = self._git("ls-tree", "-r", "-t", "-l", "-z", "--full-tree", ref)
        if tree.returncode or listing.returncode:
            return None
        entries = []
        for row in listing.stdout.decode().split("\0"):
            if not row:
                continue
            info, path = row.split("\t", 1)
            mode, kind, sha, size = info.split()
            entry = {"path": path, "mode": mode, "type": kind, "sha": sha}
            if kind == "blob":
                entry["size"] = int(size)
            entry["url"] = f"{self.api_url}/git/{kind}s/{sha}"
            entries.append(entry)
        return tree.stdout.decode().strip(), entries

    # -- HTTP ----------------------------------------------------------------------------------
    @property
    def url(self) -> str:
        return self.replica.url

    @property
    def api_url(self) -> str:
        return f"{self.url}{self.prefix}/api/repos/{self.repo}"

    @property
    def tree_url(self) -> str:
        return f"{self.api_url}/git/trees/{self.branch}?recursive=1"

    @property
    def raw_url(self) -> str:
        return f"{self.url}{self.prefix}/raw/{self.repo}/{self.branch}"

    def env(self, base: dict[str, str] | None = None) -> dict[str, str]:
        """Crawl environment: git fetches https://github.com/<repo> from this replica."""
        return insteadof_env("https://github.com", self.url, base)

    def git_sessions(self) -> int:
        return self.replica.count("GET", rf"^/{re.escape(self.repo)}(\.git)?/info/refs")

    def raw_requests(self, path: str | None = None) -> int:
        tail = re.escape(path) + "$" if path else ""
        return self.replica.count("GET", rf"^{re.escape(self.prefix)}/raw/{re.escape(self.repo)}/[^/]+/{tail}")

    def tree_requests(self) -> int:
        return self.replica.count("GET", rf"^{re.escape(self.prefix)}/api/repos/{re.escape(self.repo)}/git/trees/")

    def __enter__(self):
        self.replica.start()
        return self

    def __exit__(self, *exc) -> None:
        self.replica.stop()

    def _tree(self, req: Incoming, m: re.Match) -> Reply:
        if self.tree_rate_limited > 0:
            self.tree_rate_limited -= 1
            return Reply.json({"message": "API rate limit exceeded for 127.0.0.1.",
                               "documentation_url": "https://docs.github.com/rest/using-the-rest-api/"
                                                    "rate-limits-for-the-rest-api"}, 403, headers={
                "x-ratelimit-limit": "60", "x-ratelimit-remaining": "0", "x-ratelimit-used": "60",
                "x-ratelimit-resource": "core", "x-ratelimit-reset": str(int(time.time()) + self.tree_limit_reset)})
        found = self.tree_entries(unquote(m.group("ref")))
        if found is None:
            return Reply.json({"message": "Not Found", "status": "404"}, 404)
        sha, entries = found
        if req.arg("recursive") in (None, "", "0", "false"):
            entries = [e for e in entries if "/" not in e["path"]]
        entries = self.extra_entries + [e for e in entries if e["path"] not in self.hidden]
        truncated = self.truncated is not None and len(entries) > self.truncated
        if truncated:
            entries = entries[:self.truncated]
        return Reply.json({"sha": sha, "url": f"{self.api_url}/git/trees/{sha}", "tree": entries,
                           "truncated": truncated})

    def _raw(self, req: Incoming, m: re.Match) -> Reply:
        path = unquote(m.group("path"))
        content = None if path in self.gone or ".." in path.split("/") else self.file(path, unquote(m.group("ref")))
        if content is None:
            return Reply.text("404: Not Found", 404)
        return Reply(200, content, {"Content-Type": "text/plain; charset=utf-8"})
