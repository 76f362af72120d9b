"""OpenVINO Open Model Zoo: ``models/{intel,public}/<name>/model.yml`` in the
``openvinotoolkit/open_model_zoo`` repository.

Each ``model.yml`` describes one downloadable model: ``description``, ``task_type``,
``framework`` (``dldt`` for Intel's own IR models, else the source framework), ``license`` (a URL),
``files`` (``name``, ``size``, ``sha256``, ``source``: a URL, or a mapping such as
``{$type: google_drive, id: …}``), conversion and Model Optimizer arguments, ``quantizable``.
A composite model (``formula-recognition-medium-scan-0001``) has one ``model.yml`` per part, in
its subfolders (``…/<composite>/<part>/model.yml``): each part is a model. One item per file; the
model id is ``<group>/<folder>`` (``intel/person-detection-0200``). The payload: ``group``,
``name`` (the last folder: the downloader's name), ``folder``, ``model_dir`` and ``model`` (the
parsed YAML, as JSON); the base adds ``path``, ``raw_url``, ``blob_sha``, ``tree_sha``,
``tree_url``. A file that is not a YAML mapping is a malformed page (fetched again, then reported).

YAML comes from the internet: it is read with a safe loader that also refuses aliases (an alias
bomb expands to gigabytes once written as JSON) and keeps dates, binary and sets as text.
"""

from __future__ import annotations

import re
from typing import Any

import yaml

from ptmscrape.github_tree import GitTreeHubSpider, text_of

# <name>/model.yml, or <composite>/<part>/model.yml for each part of a composite model (both are
# names the zoo's downloader takes).
MODEL_FILE = re.compile(r"^models/(?P<group>intel|public)/(?P<folder>(?:[^/]+/)?(?P<name>[^/]+))/model\.yml$")
MAX_YAML = 2_000_000  # bytes; model.yml files are a few KB


class OpenvinoSpider(GitTreeHubSpider):
    name = "openvino"
    base_url_setting = "PTM_OPENVINO_RAW_URL"
    repo_url_setting = "PTM_OPENVINO_REPO_URL"
    tree_url_setting = "PTM_OPENVINO_TREE_URL"

    def is_model_file(self, path: str) -> bool:
        return MODEL_FILE.fullmatch(path) is not None

    def model_payload(self, response, path):
        m = MODEL_FILE.fullmatch(path)
        if len(response.body) > MAX_YAML:
            return self.page_malformed(response, "malformed YAML", f"{len(response.body)} bytes")
        try:
            model = load_yaml(text_of(response))
        except (yaml.YAMLError, RecursionError, ValueError) as exc:  # ValueError: e.g. a bad int
            return self.page_malformed(response, "malformed YAML", " ".join(str(exc).split()))
        if not isinstance(model, dict):
            return self.page_malformed(response, "malformed YAML", f"a {type(model).__name__}, not a mapping")
        return f"{m['group']}/{m['folder']}", {
            "group": m["group"], "name": m["name"], "folder": m["folder"],
            "model_dir": path.rsplit("/", 1)[0], "model": model,
        }


class _SafeLoader(yaml.SafeLoader):
    """``yaml.SafeLoader`` without aliases; timestamps, binary and sets stay text."""

    def compose_node(self, parent, index):
        if self.check_event(yaml.AliasEvent):
            event = self.peek_event()
            raise yaml.composer.ComposerError(None, None, "aliases are not accepted", event.start_mark)
        return super().compose_node(parent, index)


for _tag in ("timestamp", "binary", "set", "omap", "pairs"):
    _SafeLoader.add_constructor(f"tag:yaml.org,2002:{_tag}", lambda loader, node: (
        loader.construct_scalar(node) if isinstance(node, yaml.ScalarNode) else None))


def load_yaml(text: str) -> Any:
    """The document as JSON-able data (mapping keys as text)."""
    return _jsonable(yaml.load(text, Loader=_SafeLoader))  # noqa: S506 (a safe loader)


def _jsonable(value: Any) -> Any:
    if isinstance(value, dict):
        return {str(k): _jsonable(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_jsonable(v) for v in value]
    if value is None or isinstance(value, (str, bool, int)):
        return value
    if isinstance(value, float):
        return value if value == value and value not in (float("inf"), float("-inf")) else str(value)
    return str(value)
