"""ONNX Model Zoo (github.com/onnx/models): markdown READMEs in one git repository.

``GET <PTM_ONNX_RAW_URL>/README.md`` (raw.githubusercontent.com) lists the models in one pipe table
per section; a section is a heading ``### <Category> <a name="<anchor>"/>`` (``####`` for the
domain-based one), its table ``|Model Class |Reference |Description |[Hugging Face Spaces |]``.
The Model Class cell links the model's folder: ``<b>[ResNet](vision/classification/resnet)</b>``
(early 2023) or ``validated/vision/...`` (since the 2023-12 revamp; that README also opens with a
deprecation notice). Rows without a link are placeholders (``<br>[contribute](contribute.md)``)
and are skipped; a missing ``</b>`` or trailing ``|`` is tolerated.

``GET <raw>/<folder>/README.md``: the model's page. Its download tables have the columns Model,
Download, Download (with sample test data) (or Compressed), ONNX version, Opset version (any
capitalisation), then zero or more accuracy columns whose names vary (Accuracy, Top-1 accuracy
(%), mAP, Mean IoU, TOP-1 ERROR, …) or a Dataset column. Download cells are ``[<size>](model/
<file>.onnx)`` relative to the folder. Tables without a Download column (GLUE scores, dataset
files) are not about model files and are left out; so are rows without a download link. A
download table whose name column is headed otherwise (``Model name``, ``Name``) is read all the
same, its first column that is no download, version or dataset giving the names, when it links an
``.onnx`` file; a column headed otherwise (``Link``, ``ONNX file``) whose cells link ``.onnx``
files is a download column; in a table without one, the names' ``.onnx`` links
(``[ResNet18](model/resnet18.onnx)``) are the downloads.

One item per model: each download-table row with a download link is a model (what the hub offers
as one downloadable model, as PTMTorrent counted them; ``ResNet50-int8`` and ``ResNet50-qdq`` are
two), sharing its folder (``RepoSubPath``) with the folder's other rows. The payload of a row,
built here (``kind: "readme_row"``):

* ``category``, ``anchor`` (the task, as PTMTorrent used it), ``model_dir``, ``model_classes``
  (the index rows linking the folder: ``name``, ``reference``, ``reference_url``, ``description``,
  ``hf_space_url``), ``listed`` (whether an index table links the folder, see below);
* ``title`` (the README's first ``#`` heading), ``license`` (the first line of its ``License``
  section, as a reader sees it), ``spdx_license`` (the identifier of its ``SPDX-License-Identifier``
  comment, which every README opens with; Super Resolution's README has no License section),
  ``readme_path``, ``readme_url``, ``index_url``;
* ``table``: the row's table's ``header`` (as written) and ``line``, and ``cells``: the row as
  written ({header: cell});
* ``row``: ``name``, ``name_url``, ``downloads`` (``column``, ``size``, and ``path`` in the
  repository or ``url``), ``onnx_version``, ``opset``, ``dataset``, ``metrics`` ({column: value}
  for every other non-empty column), ``line``, ``table`` (its number in the README).

Rows with more cells than their header (extra cells dropped) are logged and counted in
``ptm/pages/malformed_table_rows``; rows without a download link in ``ptm/pages/rows_without_link``;
a README without any model row in ``ptm/pages/readmes_without_models``.

**Generated models** (newest layout): ``<category>/<model>_Opset<N>_<source>/`` folders (under
``Computer_Vision/``, ``Natural_Language_Processing/``, ``Generative_AI/``,
``Graph_Machine_Learning/``), each with a ``.onnx`` file and a ``turnkey_stats.yaml``, linked from
no README. They are found in the repository's file tree, ``GET <PTM_ONNX_TREE_URL>`` (GitHub's
recursive git-trees API, one request: ``{sha, tree: [{path, type, sha, size}], truncated}``): every
``<top folder>/<model folder>/turnkey_stats.yaml`` outside ``validated/`` (folders under
``<category>/skip/`` hold unverified models and are counted in ``ptm/pages/unverified_models_skipped``,
not crawled), then ``GET <raw>/<model folder>/turnkey_stats.yaml``. GitHub cuts a tree listing
at 100,000 entries or 7 MB and says ``truncated: true``: the models listed are crawled, the rest
are missing, and the crawl says so (WARNING, ``ptm/pages/tree_truncated``, and as a failed page, so
no model is reported as removed). Their payload (``kind: "generated"``): ``model_dir``,
``category``, ``files`` (the folder's ``.onnx`` paths), ``stats_path``, ``stats_url``, ``tree_sha``
and ``turnkey`` (the YAML as parsed: ``author``, ``class``, ``model_name``, ``parameters``,
``onnx_model_information`` {``ir_version``, ``opset``, ``size on disk (KiB)``}, ``task``, …).

**Model folders no index table links** (``text/machine_comprehension/gpt2-bs`` in both layouts:
its own README with a download table, its ``.onnx`` in the repository, only missing from the
top-level README): the same tree listing gives every folder with a ``README.md`` that is the
nearest README above one or more ``.onnx`` files (generated-model and ``skip`` folders aside), then
the top-level README is read once more (``dont_filter``: the answer must name the folders it links
whatever order the two pages arrive in, on whichever worker) and each folder it does not link is
crawled like a linked one, logged and counted in ``ptm/pages/unlisted_model_folders``. Its entry
has no ``model_classes``; its ``category`` and ``anchor`` are the index section linking the other
folders of its parent folder (``text/machine_comprehension/`` -> ``machine_comprehension``) when
they all sit in one section, else null; ``listed`` is false (true for the folders the index links).
Without a tree listing (``PTM_ONNX_TREE_URL`` empty, or the tree page lost) they are not found.

All models live in ``PTM_ONNX_REPO_URL``, which the clone stage clones once (LFS pointers only).
"""

from __future__ import annotations

import json
import posixpath
import re
from typing import Any
from urllib.parse import quote, unquote, urlsplit

import yaml

from ptmscrape.markdown_tables import Table, links, parse_tables, plain_text
from ptmscrape.spiders_base import HubSpider, listed_size
from ptmscrape.stats import (
    PAGES_GENERATED_MODELS_LISTED,
    PAGES_MALFORMED_TABLE_ROWS,
    PAGES_READMES_WITHOUT_MODELS,
    PAGES_ROWS_WITHOUT_LINK,
    PAGES_TREE_TRUNCATED,
    PAGES_UNLISTED_MODEL_FOLDERS,
    PAGES_UNVERIFIED_MODELS_SKIPPED,
)

INDEX = "README.md"
_ROLES = {"model": "name", "onnx version": "onnx_version", "opset version": "opset", "dataset": "dataset"}
_ANCHOR = re.compile(r"""<a\s+(?:name|id)\s*=\s*["']([^"']+)["']\s*/?>""", re.I)
_SPDX = re.compile(r"SPDX-License-Identifier:[ \t]*([A-Za-z0-9.+:()-]+(?:[ \t]+[A-Za-z0-9.+:()-]+)*?)[ \t]*(?:-->|$)",
                   re.M)
STATS_FILE = "turnkey_stats.yaml"
MAX_STATS_BYTES = 1 << 20  # the real files are ~5 KB


class OnnxmodelzooSpider(HubSpider):
    name = "onnxmodelzoo"
    base_url_setting = "PTM_ONNX_RAW_URL"

    @classmethod
    def from_crawler(cls, crawler, *args, **kwargs):
        spider = super().from_crawler(crawler, *args, **kwargs)
        spider.repo_url = crawler.settings.get("PTM_ONNX_REPO_URL").rstrip("/")
        spider.tree_url = crawler.settings.get("PTM_ONNX_TREE_URL").strip()
        return spider

    async def start(self):
        if self.limit != 0:
            yield self.request(f"{self.base_url}/{INDEX}", self.parse_index)
            if self.tree_url:
                yield self.request(self.tree_url, self.parse_tree,
                                   headers={"Accept": "application/vnd.github+json"})

    def parse_index(self, response):
        if not self.raw_file(response):
            return
        entries, skipped = index_entries(markdown_of(response))
        if not entries:
            self.page_malformed(response, "no model tables", "no Model Class row links a folder")
            return
        self.crawler.stats.inc_value(PAGES_ROWS_WITHOUT_LINK, skipped)
        for number, (model_dir, entry) in enumerate(entries.items()):
            if self.limit is not None and number >= self.limit:
                return
            yield self.request(f"{self.base_url}/{model_dir}/README.md", self.parse_model,
                               cb_kwargs={"entry": entry})

    def parse_model(self, response, entry):
        if not self.raw_file(response):
            return
        model_dir, text = entry["model_dir"], markdown_of(response)
        tables = [t for t in parse_tables(text) if is_download_table(t)]
        problems = [p for t in tables for p in t.problems]
        for problem in problems:
            self.logger.warning("Malformed table row in %s: %s", response.url, problem)
        self.crawler.stats.inc_value(PAGES_MALFORMED_TABLE_ROWS, len(problems))
        folder_info = {
            **entry,
            "title": readme_title(text),
            "license": readme_license(text),
            "spdx_license": readme_spdx_license(text),
            "readme_path": f"{model_dir}/README.md",
            "readme_url": response.url,
            "index_url": f"{self.base_url}/{INDEX}",
        }
        models = skipped = 0
        for number, table in enumerate(tables):
            records = table.records()
            for variant, cells in zip(table_variants(table, model_dir), records, strict=True):
                if not variant["downloads"]:
                    self.logger.warning("Table row without a download link in %s: line %d (%r), not a model",
                                        response.url, variant["line"], variant["name"][:100])
                    skipped += 1
                    continue
                if self.limit_reached_for(response):
                    return
                models += 1
                row = {**variant, "table": number}
                yield self.raw_item(row_key(row), response, {
                    "kind": "readme_row", **folder_info,
                    "table": {"header": list(table.header), "line": table.line},
                    "cells": cells, "row": row,
                }, repo_url=self.repo_url)
        self.crawler.stats.inc_value(PAGES_ROWS_WITHOUT_LINK, skipped)
        if not models:
            self.logger.warning("No model row in %s (no download table row with a link)", response.url)
            self.crawler.stats.inc_value(PAGES_READMES_WITHOUT_MODELS)

    # -- generated models (the repository's file tree) -------------------------------------------
    def parse_tree(self, response):
        data = self.json_page(response, dict)
        if data is None:
            return
        entries = data.get("tree")
        if not isinstance(entries, list):
            self.page_malformed(response, "unexpected JSON", "no tree list")
            return
        folders, skipped = generated_folders(entries)
        readmes = readme_model_folders(entries)
        if readmes:  # which of them no index table links: the top-level README says
            yield self.request(f"{self.base_url}/{INDEX}", self.parse_unlisted, dont_filter=True,
                               cb_kwargs={"folders": readmes})
        self.crawler.stats.inc_value(PAGES_UNVERIFIED_MODELS_SKIPPED, skipped)
        self.crawler.stats.set_value(PAGES_GENERATED_MODELS_LISTED, len(folders))
        if data.get("truncated") is True:
            self.logger.warning(
                "Tree listing %s is truncated (%d entries): generated models beyond it are missing "
                "from this crawl, and no model is reported as removed", response.url, len(entries))
            self.crawler.stats.set_value(PAGES_TREE_TRUNCATED, 1)
            self.count_failed_page("truncated tree", response.request)
        tree_sha = data.get("sha") if isinstance(data.get("sha"), str) else None
        sizes = {e["path"]: listed_size(e.get("size")) for e in entries
                 if isinstance(e, dict) and isinstance(e.get("path"), str)}
        for number, (folder_path, files) in enumerate(folders.items()):
            if self.limit is not None and number >= self.limit:
                return
            yield self.request(f"{self.base_url}/{quote(folder_path)}/{STATS_FILE}", self.parse_stats,
                               cb_kwargs={"model": {"model_dir": folder_path, "files": files,
                                                    "tree_sha": tree_sha},
                                          "size": sizes.get(f"{folder_path}/{STATS_FILE}")})

    def parse_unlisted(self, response, folders):
        """The top-level README again, for the tree's README model folders (``folders``): each one
        it does not link is crawled as the index's are (see the module's docstring)."""
        if not self.raw_file(response):
            return
        entries, _ = index_entries(markdown_of(response))
        if not entries:
            self.page_malformed(response, "no model tables", "no Model Class row links a folder")
            return
        unlisted = [model_dir for model_dir in folders if model_dir not in entries]
        self.crawler.stats.set_value(PAGES_UNLISTED_MODEL_FOLDERS, len(unlisted))
        for number, model_dir in enumerate(unlisted):
            if self.limit is not None and number >= self.limit:
                return
            entry = unlisted_entry(model_dir, entries)
            self.logger.info("Model folder %s has a README and .onnx files but no index table links it: "
                             "crawled from the file tree (task %s)", model_dir, entry["anchor"])
            yield self.request(f"{self.base_url}/{quote(model_dir)}/README.md", self.parse_model,
                               cb_kwargs={"entry": entry})

    def parse_stats(self, response, model, size=None):
        if not self.raw_file(response) or self.cut_short(response, size):
            return
        if len(response.body) > MAX_STATS_BYTES:
            self.report_bad_page(response, f"oversized YAML ({len(response.body)} bytes)")
            return
        try:
            stats = load_yaml(markdown_of(response))
        except yaml.YAMLError as exc:
            self.page_malformed(response, "malformed YAML", " ".join(str(exc).split()))
            return
        if not isinstance(stats, dict):
            self.page_malformed(response, "unexpected YAML", f"a {type(stats).__name__}")
            return
        if self.limit_reached_for(response):
            return
        model_dir = model["model_dir"]
        yield self.raw_item(model_dir.rsplit("/", 1)[-1], response, {
            "kind": "generated",
            "model_dir": model_dir,
            "category": model_dir.split("/", 1)[0],
            "files": model["files"],
            "stats_path": f"{model_dir}/{STATS_FILE}",
            "stats_url": response.url,
            "tree_sha": model["tree_sha"],
            "turnkey": stats,
        }, repo_url=self.repo_url)


def markdown_of(response) -> str:
    """The file's text: raw GitHub files are UTF-8, whatever type they are served as; served as
    committed, so CRLF line ends (a README written on Windows) are read as LF."""
    return response.body.decode("utf-8", "replace").replace("\r\n", "\n")


def row_key(row: dict) -> str:
    """A row's model file (its first ``.onnx`` download, else its first download) as named in the
    table: the raw item's id (the mapper keys the record by the file's name)."""
    downloads = row["downloads"]
    first = next((d for d in downloads if (d.get("path") or d.get("url", "")).endswith(".onnx")), downloads[0])
    return first.get("path") or first.get("url")


# -- the file tree -------------------------------------------------------------------------------

def generated_folders(entries: list) -> tuple[dict[str, list[str]], int]:
    """``({model folder: [its .onnx paths]}, unverified folders skipped)`` from a git tree listing:
    the folders ``<top>/<model>/`` (outside ``validated/``) holding a ``turnkey_stats.yaml``."""
    blobs = [e["path"] for e in entries if isinstance(e, dict) and e.get("type") == "blob"
             and isinstance(e.get("path"), str) and safe_repo_path(e["path"])]
    folders: dict[str, list[str]] = {}
    skipped = 0
    for path in blobs:
        parts = path.split("/")
        if parts[-1] != STATS_FILE or parts[0] == "validated":
            continue
        if len(parts) == 4 and parts[1] == "skip":
            skipped += 1
        elif len(parts) == 3:
            folders["/".join(parts[:2])] = []
    for path in blobs:
        folder_path, _, name = path.rpartition("/")
        if folder_path in folders and name.endswith(".onnx"):
            folders[folder_path].append(path)
    return folders, skipped


def readme_model_folders(entries: list) -> list[str]:
    """The folders of a git tree listing holding a model README: a ``README.md`` that is the nearest
    one above an ``.onnx`` file, in tree order. ``.onnx`` files in a folder with a
    ``turnkey_stats.yaml`` (generated models, also under ``skip/``) and the top-level README do
    not count."""
    blobs = [e["path"] for e in entries if isinstance(e, dict) and e.get("type") == "blob"
             and isinstance(e.get("path"), str) and safe_repo_path(e["path"])]
    readmes = {path.rpartition("/")[0] for path in blobs if path.endswith("/README.md")}
    generated = {path.rpartition("/")[0] for path in blobs if path.rpartition("/")[2] == STATS_FILE}
    found: set[str] = set()
    for path in blobs:
        if not path.endswith(".onnx") or path.rpartition("/")[0] in generated:
            continue
        parts = path.split("/")[:-1]
        nearest = next(("/".join(parts[:n]) for n in range(len(parts), 0, -1) if "/".join(parts[:n]) in readmes),
                       None)
        if nearest is not None:
            found.add(nearest)
    return [folder_path for folder_path in dict.fromkeys(p.rpartition("/")[0] for p in blobs) if folder_path in found]


def unlisted_entry(model_dir: str, entries: dict[str, dict]) -> dict:
    """The index entry of a folder no index table links: no model class; the section of the
    folders beside it, when the index puts them all in one."""
    parent = posixpath.dirname(model_dir)
    sections = {(e["category"], e["anchor"]) for d, e in entries.items() if posixpath.dirname(d) == parent}
    category, anchor = next(iter(sections)) if len(sections) == 1 else (None, None)
    return {"category": category, "anchor": anchor, "model_dir": model_dir, "model_classes": [],
            "listed": False}


def safe_repo_path(path: str) -> bool:
    parts = path.split("/")
    return (0 < len(path) <= 1000 and "\\" not in path
            and all(p and p not in (".", "..") and p.isprintable() for p in parts))


class _NoAliasLoader(yaml.SafeLoader):
    """Safe YAML without aliases: ``*alias`` references can make a small file expand
    exponentially once copied (the real files use none)."""

    def compose_node(self, parent, index):
        if self.check_event(yaml.AliasEvent):
            raise yaml.YAMLError(f"aliases are not accepted ({self.peek_event().start_mark})")
        return super().compose_node(parent, index)


def load_yaml(text: str):
    """The document as JSON-compatible data (dates as ISO text, keys as strings)."""
    data = yaml.load(text, Loader=_NoAliasLoader)  # noqa: S506 (a SafeLoader subclass)
    return json.loads(json.dumps(data, default=str, skipkeys=True))


# -- the top-level README -----------------------------------------------------------------------

def index_entries(markdown: str) -> tuple[dict[str, dict], int]:
    """``({model folder: index entry}, placeholder rows skipped)`` from the top-level README.

    An entry holds the section's ``category`` and ``anchor`` and every index row that links the
    folder (``model_classes``), so models sharing a folder make one entry.
    """
    entries: dict[str, dict] = {}
    skipped = 0
    for table in parse_tables(markdown):
        if not table.header or _column(table.header[0]) != "model class":
            continue
        category, anchor = section(table.heading)
        for row in table.rows:
            cells = dict(zip((_column(h) for h in table.header), row, strict=True))
            target = next((link.target for link in links(cells["model class"])), None)
            model_dir = folder(target) if target else None
            if model_dir is None:
                skipped += 1
                continue
            entry = entries.setdefault(model_dir, {"category": category, "anchor": anchor,
                                                   "model_dir": model_dir, "model_classes": [],
                                                   "listed": True})
            entry["model_classes"].append(index_row(cells))
    return entries, skipped


def index_row(cells: dict[str, str]) -> dict:
    reference = links(cells.get("reference", ""))
    space = next((cells[c] for c in cells if c.replace(" ", "") == "huggingfacespaces"), "")
    return {
        "name": plain_text(cells["model class"]),
        "reference": plain_text(cells.get("reference", "")),
        "reference_url": reference[0].target.strip() if reference else None,
        "description": plain_text(cells.get("description", "")),
        "hf_space_url": next((link.target for link in links(space)), None),
    }


def section(heading: str | None) -> tuple[str, str]:
    """``("Image Classification", "image_classification")`` from the heading text."""
    heading = heading or ""
    anchor = _ANCHOR.search(heading)
    title = plain_text(_ANCHOR.sub("", heading))
    return title, anchor.group(1) if anchor else re.sub(r"[^a-z0-9]+", "_", title.lower()).strip("_")


def folder(target: str) -> str | None:
    """The repository folder a Model Class link points at, or None (absolute or escaping links)."""
    parts = urlsplit(target.strip())
    if parts.scheme or parts.netloc or not parts.path:
        return None
    path = posixpath.normpath(unquote(parts.path).lstrip("/").removesuffix("README.md"))
    if path in (".", "") or path.startswith("..") or "\\" in path:
        return None
    return path


# -- a model's README ---------------------------------------------------------------------------

def readme_title(markdown: str) -> str | None:
    """The first level-1 heading (before any code block, whose comments also start with ``#``)."""
    match = re.search(r"^# +(.+?)\s*#*\s*$", markdown.split("```", 1)[0], re.M)
    return plain_text(match.group(1)) if match else None


_CODE_BLOCK = re.compile(r"^```.*?^```", re.M | re.S)


def without_code_blocks(markdown: str) -> str:
    """``markdown`` without its fenced code blocks (a ``## License`` or SPDX line in a sample is none)."""
    return _CODE_BLOCK.sub("", markdown)


def readme_license(markdown: str) -> str | None:
    """The first line of the README's ``License`` section as a reader sees it (``MIT License``,
    ``[BSD-3](LICENSE)`` -> ``BSD-3``), or None without one."""
    outside_code = without_code_blocks(markdown)
    # A heading may be indented by up to three spaces (BiDAF's " ## License").
    match = re.search(r"^ {0,3}#{1,6}[ \t]*licen[cs]e[ \t]*#*[ \t]*$(.*?)(?=^ {0,3}#|\Z)", outside_code,
                      re.M | re.S | re.I)
    if not match:
        return None
    lines = (plain_text(line) for line in match.group(1).splitlines())
    return next((line[:200] for line in lines if line), None)


def readme_spdx_license(markdown: str) -> str | None:
    """The license expression of the README's ``SPDX-License-Identifier:`` line (``<!--- SPDX-License-
    Identifier: Apache-2.0 -->`` opens every README of the zoo), or None without one."""
    outside_code = without_code_blocks(markdown)
    match = _SPDX.search(outside_code)
    return match.group(1).strip()[:200] if match else None


def is_download_table(table: Table) -> bool:
    """A table of model files: it has a download column and a name column, or, when its name column
    is headed otherwise (``Model name``, ``Name``), a download link to an ``.onnx`` file."""
    roles = column_roles(table)
    if "download" not in roles:  # the names may link the model files: [ResNet18](model/resnet18.onnx)
        return any(_links_onnx_file(cell) for row in table.rows for kind, cell in zip(roles, row, strict=True)
                   if kind == "name")
    return "name" in (role(h) for h in table.header) or any(
        _links_onnx_file(cell) for row in table.rows for kind, cell in zip(roles, row, strict=True)
        if kind == "download")


def role(header: str) -> str:
    """What a per-model column holds, whatever its spelling: name, download, onnx_version,
    opset, dataset or metric."""
    name = _column(header)
    if name.startswith("download") or name == "compressed":
        return "download"
    if re.fullmatch(r"(?:onnx )?opset(?:[ _-]versions?)?", name):  # Opset, ONNX Opset, Opset Version(s)
        return "opset"
    return _ROLES.get(name, "metric")


def column_roles(table: Table) -> list[str]:
    """:func:`role` of each column, where a column headed otherwise (``Link``, ``ONNX file``)
    whose cells link ``.onnx`` files is a download column; without a column headed ``Model``,
    the first column that is neither a download nor a version nor a dataset holds the names
    (``Model name``, ``Name``)."""
    roles = [role(h) for h in table.header]
    for column, kind in enumerate(roles):
        if kind == "metric" and any(_links_onnx_file(row[column]) for row in table.rows):
            roles[column] = "download"
    if "name" not in roles and "metric" in roles:
        roles[roles.index("metric")] = "name"
    return roles


def _links_onnx_file(cell: str) -> bool:
    return any(_is_onnx_file(link.target) for link in links(cell))


def _is_onnx_file(target: str) -> bool:
    return urlsplit(target.strip()).path.lower().endswith(".onnx")


def table_variants(table: Table, model_dir: str):
    """One dict per row: name, download links (repository paths), versions, metrics."""
    roles = column_roles(table)
    names_link_files = "download" not in roles  # then the names' .onnx links are the downloads
    # Columns as a reader sees their headers, a repeated one numbered (|mAP|mAP| -> "mAP (2)"),
    # so no metric overwrites another.
    seen: dict[str, int] = {}
    names = []
    for header in table.header:
        name = plain_text(header)
        seen[name] = seen.get(name, 0) + 1
        names.append(name if seen[name] == 1 else f"{name} ({seen[name]})")
    for row, line in zip(table.rows, table.row_lines, strict=True):
        variant: dict[str, Any] = {"name": "", "name_url": None, "downloads": [], "onnx_version": None, "opset": None,
                   "dataset": None, "metrics": {}, "line": line}
        for header, kind, cell in zip(names, roles, row, strict=True):
            if kind == "name":
                variant["name"] = plain_text(cell)
                variant["name_url"] = next((link.target for link in links(cell)), None)
                if names_link_files:
                    variant["downloads"] += [{"column": header, "size": link.text,
                                              **download_location(link.target, model_dir)}
                                             for link in links(cell) if _is_onnx_file(link.target)]
            elif kind == "download":
                variant["downloads"] += [{"column": header, "size": link.text,
                                          **download_location(link.target, model_dir)}
                                         for link in links(cell) if link.target]
            elif kind == "metric":
                if plain_text(cell):
                    variant["metrics"][header] = plain_text(cell)
            else:  # onnx_version, opset, dataset
                variant[kind] = plain_text(cell) or None
        yield variant


def download_location(target: str, model_dir: str) -> dict[str, str]:
    """``{"path": <file in the repository>}`` for a relative link, else ``{"url": ...}``."""
    parts = urlsplit(target.strip())
    if parts.scheme or parts.netloc:
        return {"url": target.strip()}
    path = posixpath.normpath(posixpath.join(model_dir, unquote(parts.path)))
    return {"url": target.strip()} if path.startswith("..") else {"path": path}


def _column(header: str) -> str:
    return plain_text(header).lower()
