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
files) are not about model files and are left out; so are rows without a download link.

One record per model folder, as PTMTorrent made one per per-model README: the folder is what
the index links, what has a README and what git history can date (``RepoSubPath``). Index rows
sharing a folder (ShuffleNet V1 and V2) make one record; the folder's download-table rows are its
variants, kept in the raw payload. The payload, built here:

* ``category``, ``anchor`` (the task, as PTMTorrent used it), ``model_dir``, ``model_classes``
  (the index rows: ``name``, ``reference``, ``reference_url``, ``description``, ``hf_space_url``);
* ``title`` (the README's first ``#`` heading), ``readme_path``, ``readme_url``, ``index_url``;
* ``tables``: each download table's ``header``, ``line`` and ``rows`` (dicts of cells as written);
* ``variants``: each row with a download link: ``name``, ``name_url``, ``downloads`` (``column``,
  ``size``, and ``path`` in the repository or ``url``), ``onnx_version``, ``opset``, ``dataset``,
  ``metrics`` ({column: value} for every other non-empty column), ``line``, ``table``;
* ``table_problems``: rows with more cells than their header (extra cells dropped), also logged
  and counted in ``ptm/pages/malformed_table_rows``. Skipped rows count in
  ``ptm/pages/rows_without_link``.

All models live in ``PTM_ONNX_REPO_URL``, which the clone stage clones once (LFS pointers only).
"""

from __future__ import annotations

import posixpath
import re
from urllib.parse import unquote, urlsplit

from ptmscrape.markdown_tables import Table, links, parse_tables, plain_text
from ptmscrape.spiders_base import HubSpider

INDEX = "README.md"
_ROLES = {"model": "name", "onnx version": "onnx_version", "opset version": "opset", "dataset": "dataset"}
_ANCHOR = re.compile(r"""<a\s+(?:name|id)\s*=\s*["']([^"']+)["']\s*/?>""", re.I)


class OnnxmodelzooSpider(HubSpider):
    name = "onnxmodelzoo"
    base_url_setting = "PTM_ONNX_RAW_URL"

    @classmethod
    def from_crawler(cls, crawler, *args, **kwargs):
        spider = super().from_crawler(crawler, *args, **kwargs)
        spider.repo_url = crawler.settings.get("PTM_ONNX_REPO_URL").rstrip("/")
        return spider

    async def start(self):
        if self.limit != 0:
            yield self.request(f"{self.base_url}/{INDEX}", self.parse_index)

    def parse_index(self, response):
        entries, skipped = index_entries(markdown_of(response))
        if not entries:
            self.page_malformed(response, "no model tables", "no Model Class row links a folder")
            return
        self.crawler.stats.inc_value("ptm/pages/rows_without_link", skipped)
        for number, (model_dir, entry) in enumerate(entries.items()):
            if self.limit is not None and number >= self.limit:
                return
            yield self.request(f"{self.base_url}/{model_dir}/README.md", self.parse_model,
                               cb_kwargs={"entry": entry})

    def parse_model(self, response, entry):
        if self.limit_reached:
            return
        model_dir, text = entry["model_dir"], markdown_of(response)
        tables = [t for t in parse_tables(text) if is_download_table(t)]
        problems = [p for t in tables for p in t.problems]
        for problem in problems:
            self.logger.warning("Malformed table row in %s: %s", response.url, problem)
        self.crawler.stats.inc_value("ptm/pages/malformed_table_rows", len(problems))
        variants, skipped = [], 0
        for number, table in enumerate(tables):
            for variant in table_variants(table, model_dir):
                if variant["downloads"]:
                    variants.append({**variant, "table": number})
                else:
                    skipped += 1
        self.crawler.stats.inc_value("ptm/pages/rows_without_link", skipped)
        yield self.raw_item(model_dir, response, {
            **entry,
            "title": readme_title(text),
            "readme_path": f"{model_dir}/README.md",
            "readme_url": response.url,
            "index_url": f"{self.base_url}/{INDEX}",
            "tables": [{"header": list(t.header), "line": t.line, "rows": t.records()} for t in tables],
            "variants": variants,
            "table_problems": problems,
        }, repo_url=self.repo_url)


def markdown_of(response) -> str:
    """The file's text: raw GitHub files are UTF-8, whatever type they are served as."""
    return response.body.decode("utf-8", "replace")


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
            cells = dict(zip((_column(h) for h in table.header), row))
            target = next((link.target for link in links(cells["model class"])), None)
            model_dir = folder(target) if target else None
            if model_dir is None:
                skipped += 1
                continue
            entry = entries.setdefault(model_dir, {"category": category, "anchor": anchor,
                                                   "model_dir": model_dir, "model_classes": []})
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


def is_download_table(table: Table) -> bool:
    roles = [role(h) for h in table.header]
    return "name" in roles and "download" in roles


def role(header: str) -> str:
    """What a per-model column holds, whatever its spelling: name, download, onnx_version,
    opset, dataset or metric."""
    name = _column(header)
    if name.startswith("download") or name == "compressed":
        return "download"
    return _ROLES.get(name, "metric")


def table_variants(table: Table, model_dir: str):
    """One dict per row: name, download links (repository paths), versions, metrics."""
    for row, line in zip(table.rows, table.row_lines):
        variant = {"name": "", "name_url": None, "downloads": [], "onnx_version": None, "opset": None,
                   "dataset": None, "metrics": {}, "line": line}
        for header, cell in zip(table.header, row):
            kind = role(header)
            if kind == "name":
                variant["name"] = plain_text(cell)
                variant["name_url"] = next((link.target for link in links(cell)), None)
            elif kind == "download":
                variant["downloads"] += [{"column": plain_text(header), "size": link.text,
                                          **download_location(link.target, model_dir)}
                                         for link in links(cell) if link.target]
            elif kind == "metric":
                if plain_text(cell):
                    variant["metrics"][plain_text(header)] = plain_text(cell)
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
