"""Hubs kept in one GitHub repository, discovered from its file tree.

Such a hub (TensorFlow Hub's ``tensorflow/tfhub.dev``, OpenVINO's ``open_model_zoo``) has no
listing API: its models are files at known places in the repository. One request to GitHub's
recursive git-trees API (``GET /repos/<owner>/<repo>/git/trees/<ref>?recursive=1``, the hub's
``PTM_<HUB>_TREE_URL``) lists every path, as ``{"sha", "tree": [{"path", "type", "sha", "size",
…}], "truncated"}``; the spider keeps the blobs its hub recognises as model files, fetches each from
the raw-file base (``PTM_<HUB>_RAW_URL``) and yields one item per model. The repository itself
(``PTM_<HUB>_REPO_URL``) is cloned once by the clone stage and shared by every model, each with its
``RepoSubPath``.

Tree paths come from the internet: a path with ``..``, ``.``, empty segments, a leading ``/`` or ``:``, a
backslash or control characters is never requested (logged, counted in
``ptm/pages/unsafe_tree_paths``). GitHub cuts a tree over its limits short (``"truncated": true``):
the models it lists are crawled, the cut is logged and counted as a failed page
(``ptm/pages/failed/truncated tree``), so the crawl does not report the rest as removed.
"""

from __future__ import annotations

import re
from typing import Any
from urllib.parse import quote

from scrapy.http import Response

from ptmscrape.checks import BadInput
from ptmscrape.items import printable
from ptmscrape.spiders_base import HubSpider, listed_size
from ptmscrape.stats import PAGES_TREE_MODEL_FILES, PAGES_TREE_TRUNCATED, PAGES_UNSAFE_TREE_PATHS

_CONTROL = re.compile(r"[\x00-\x1f\x7f]")
_SHA = re.compile(r"^(?:[0-9a-f]{40}|[0-9a-f]{64})$")
MAX_PATH = 1000  # longer tree paths are not model files of any known hub


def safe_tree_path(path: Any) -> str | None:
    """``path`` if it is a plain relative path inside the repository, else None."""
    if not isinstance(path, str) or not path or len(path) > MAX_PATH:
        return None
    if path.startswith(("/", ":")) or "\\" in path or _CONTROL.search(path):  # ':' = git pathspec magic
        return None
    if any(part in ("", ".", "..") for part in path.split("/")):
        return None
    return path


class GitTreeHubSpider(HubSpider):
    """A hub whose models are files of one GitHub repository.

    Subclasses set ``name``, ``base_url_setting`` (raw-file base), ``repo_url_setting`` and
    ``tree_url_setting``, and implement :meth:`is_model_file` (which tree paths are models) and
    :meth:`model_payload` (the raw payload of one fetched file, or None after reporting it).
    """

    repo_url_setting: str = ""
    tree_url_setting: str = ""
    repo_url: str  # set by from_crawler, from the settings above
    tree_url: str
    tree_headers = {"Accept": "application/vnd.github+json"}

    @classmethod
    def from_crawler(cls, crawler, *args, **kwargs):
        spider = super().from_crawler(crawler, *args, **kwargs)
        spider.repo_url = (crawler.settings.get(cls.repo_url_setting) or "").rstrip("/")
        spider.tree_url = crawler.settings.get(cls.tree_url_setting) or ""
        if not spider.tree_url:
            raise ValueError(f"{cls.tree_url_setting} is not set")
        return spider

    def check_settings(self, settings) -> None:
        super().check_settings(settings)
        if not str(settings.get(self.tree_url_setting) or "").strip():
            raise BadInput(f"{self.tree_url_setting} is not set: give the URL of the repository's file tree "
                           f"(GitHub's recursive git-trees API)")

    async def start(self):
        if self.limit != 0:
            yield self.request(self.tree_url, self.parse_tree, headers=self.tree_headers)

    # -- hub specifics -----------------------------------------------------------------------
    def is_model_file(self, path: str) -> bool:
        raise NotImplementedError

    def model_payload(self, response: Response, path: str) -> tuple[str, dict] | None:
        """``(model id, payload)`` for one model file, or None (the reason reported)."""
        raise NotImplementedError

    # -- the tree and the files --------------------------------------------------------------
    def parse_tree(self, response: Response):
        data = self.json_page(response, dict)
        if data is None:
            return
        entries = data.get("tree")
        if not isinstance(entries, list):
            self.page_malformed(response, "unexpected JSON", "no 'tree' list")
            return
        tree_sha = git_sha(data.get("sha"))
        if data.get("truncated") is True:
            self.logger.error("Tree listing truncated by GitHub: %s (%d entries): models past the cut "
                              "are not listed", response.url, len(entries))
            self.crawler.stats.inc_value(PAGES_TREE_TRUNCATED)
            self.count_failed_page("truncated tree", response.request)
        files, unsafe = {}, 0
        for entry in entries:
            if not isinstance(entry, dict) or entry.get("type") != "blob":
                continue
            path = safe_tree_path(entry.get("path"))
            if path is None:
                unsafe += 1
                self.logger.warning("Unsafe path in the tree of %s: %s", response.url,
                                    printable(entry.get("path")))
                continue
            if self.is_model_file(path):
                files[path] = entry
        self.crawler.stats.inc_value(PAGES_UNSAFE_TREE_PATHS, unsafe)
        self.crawler.stats.set_value(PAGES_TREE_MODEL_FILES, len(files))
        for number, path in enumerate(sorted(files)):
            if self.limit is not None and number >= self.limit:
                return
            entry = files[path]
            yield self.request(f"{self.base_url}/{quote(path)}", self.parse_file, cb_kwargs={
                "path": path, "tree_sha": tree_sha,
                "blob_sha": git_sha(entry.get("sha")), "blob_size": listed_size(entry.get("size")),
            })

    def parse_file(self, response: Response, path: str, tree_sha: str | None = None,
                   blob_sha: str | None = None, blob_size: int | None = None):
        if self.limit_reached_for(response) or not self.raw_file(response):
            return
        if self.cut_short(response, blob_size):
            return
        found = self.model_payload(response, path)
        if found is None:
            return
        model_id, payload = found
        payload = {**payload, "path": path, "raw_url": response.url, "blob_sha": blob_sha,
                   "tree_sha": tree_sha, "tree_url": self.tree_url}
        yield self.raw_item(model_id, response, payload, repo_url=self.repo_url)


def git_sha(value: Any) -> str | None:
    """A git object id (SHA-1 or SHA-256, lowercase hex) from the tree, or None for anything else."""
    return value if isinstance(value, str) and _SHA.fullmatch(value) else None


def text_of(response: Response) -> str:
    """A raw GitHub file's text: UTF-8, whatever type it is served as."""
    return response.body.decode("utf-8", "replace")
