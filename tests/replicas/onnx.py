"""A local ONNX Model Zoo: the ``onnx/models`` git repository over smart HTTP at ``/onnx/models``
(point git at it with ``insteadof_env("https://github.com", replica.url)``) and its files as
raw.githubusercontent.com serves them, at ``/onnx/models/main/<path>`` (LFS files as pointers).

The repository holds our hand-written zoo in ``tests/fixtures/onnx/<layout>/`` (``2023``: model
folders at ``vision/…``, ``text/…``; ``2025``: under ``validated/``, deprecation notice, and
generated-model folders ``<Category>/<model>_Opset<N>_<source>/turnkey_stats.yaml``) plus an
LFS pointer for every ``model/…`` or ``models/…`` file a README links and a ``<model>_Opset<N>.onnx``
pointer in every generated-model folder. GitHub's recursive git-trees listing of ``main`` is served
at ``/ghapi/repos/onnx/models/git/trees/main`` (a base URL with a path, as a proxy would have);
``truncate_tree = N`` serves only its first N entries with ``truncated: true``, as GitHub does for
huge trees. History, so that folders
have different last commits:

1. every README and most weight pointers (2023-01-05);
2. PebbleNet's int8 weights (2023-01-20), touching only the PebbleNet folder;
3. a notebook for QA-BERT-Mini (2023-02-03), touching only that folder.
"""

from __future__ import annotations

import hashlib
import json
import os
import re
import subprocess
from pathlib import Path

from tests.replicas.server import (
    GIT_ENV,
    GitHost,
    Incoming,
    Replica,
    Reply,
    git,
    insteadof_env,
    lfs_pointer,
)

FIXTURES = Path(__file__).resolve().parent.parent / "fixtures" / "onnx"
REPO = "onnx/models"
RAW_PREFIX = f"/{REPO}/main"
LAYOUTS = ("2023", "2025")
ATTRIBUTES = "*.onnx filter=lfs diff=lfs merge=lfs -text\n*.tar.gz filter=lfs diff=lfs merge=lfs -text\n"
_WEIGHT_LINK = re.compile(r"\]\((models?/[^)\s]+\.(?:onnx|tar\.gz))\)")
TREE_PREFIX = f"/ghapi/repos/{REPO}/git/trees"
# Generated-model folders of the 2025 layout (in the tree, linked from no README), and the
# unverified ones under <Category>/skip/ (in the tree, never crawled).
GENERATED_DIRS = [
    "Computer_Vision/pebbleconv_Opset16_torchvision",
    "Computer_Vision/tinyvit_Opset17_timm",
    "Generative_AI/tinygpt_Opset16_transformers",
    "Graph_Machine_Learning/gcnlite_Opset16_graph_convolutions",
    "Natural_Language_Processing/minibert_Opset18_transformers",
]
UNVERIFIED_DIRS = ["Computer_Vision/skip/wobblynet_Opset16_timm"]

# Model folders the top-level README links (relative to the layout's prefix), in README order.
MODEL_DIRS = [
    "vision/classification/pebblenet",
    "vision/classification/shardnet",
    "vision/classification/glyphdigits",
    "vision/object_detection_segmentation/yolo-mini-coco",
    "vision/object_detection_segmentation/segfcn",
    "vision/object_detection_segmentation/duc-lite",
    "vision/body_analysis/age_bands",
    "vision/super_resolution/upscale_cnn",
    "text/machine_comprehension/qa-bert-mini",
    "text/machine_comprehension/t5-mini",
]
# Model folders with a README and an .onnx file that no table of the top-level README links (as
# text/machine_comprehension/gpt2-bs in the real zoo): found through the tree listing.
UNLISTED_DIRS = ["text/machine_comprehension/qa-bert-beam"]
# Placeholder rows ([contribute](contribute.md), no folder link) in the top-level README.
PLACEHOLDER_ROWS = 4
# Commits after the first: (message, date, folder, files added there).
LATER_COMMITS = [
    ("PebbleNet: add int8 models", "2023-01-20T09:30:00Z", "vision/classification/pebblenet",
     ["model/pebblenet50-v1-12-int8.onnx", "model/pebblenet50-v1-12-int8.tar.gz"]),
    ("QA-BERT-Mini: validation notebook", "2023-02-03T16:00:00Z", "text/machine_comprehension/qa-bert-mini",
     ["dependencies/qa-bert-mini-validation.ipynb"]),
]


def prefix(layout: str) -> str:
    return "validated/" if layout == "2025" else ""


def model_dirs(layout: str) -> list[str]:
    return [prefix(layout) + d for d in MODEL_DIRS]


def unlisted_dirs(layout: str) -> list[str]:
    return [prefix(layout) + d for d in UNLISTED_DIRS]


def generated_dirs(layout: str) -> list[str]:
    return GENERATED_DIRS if layout == "2025" else []


def generated_model_file(model_dir: str) -> str:
    """``Computer_Vision/alexnet_Opset17_torch_hub/alexnet_Opset17.onnx`` for that folder."""
    name = model_dir.rsplit("/", 1)[-1]
    stem = re.sub(r"(_Opset\d+)_.*$", r"\1", name)
    return f"{model_dir}/{stem}.onnx"


def fake_weights(path: str) -> bytes:
    """Stand-in content of an LFS-tracked file (only its pointer is committed)."""
    return f"replica weights of {path}\n".encode()


class OnnxZooReplica:
    """``with OnnxZooReplica(tmp_path / "git", layout="2023") as zoo: zoo.raw_url``."""

    def __init__(self, repos_root: str | Path, layout: str = "2023", port: int = 0):
        if layout not in LAYOUTS:
            raise ValueError(f"layout must be one of {LAYOUTS}, got {layout!r}")
        self.layout = layout
        self.replica = Replica(port)
        self.git = GitHost(repos_root)
        self.commits: list[str] = []  # oldest first
        self.gone: set[str] = set()  # repository paths answered 404 over raw
        self.truncate_tree: int | None = None
        self._build_repo()
        self.replica.route("GET", rf"{re.escape(RAW_PREFIX)}/(?P<path>.+)", self._raw)
        self.replica.route("GET", rf"{re.escape(TREE_PREFIX)}/(?P<ref>[^/]+)", self._tree)
        self.git.mount(self.replica)

    # -- the repository ------------------------------------------------------------------------
    def _build_repo(self) -> None:
        root = FIXTURES / self.layout
        files: dict[str, bytes | str] = {".gitattributes": ATTRIBUTES}
        for path in sorted(p for p in root.rglob("*") if p.is_file()):
            relative = path.relative_to(root).as_posix()
            files[relative] = path.read_bytes()
            if path.name == "README.md":
                folder = path.parent.relative_to(root).as_posix()
                for link in _WEIGHT_LINK.findall(path.read_text()):
                    weight = f"{folder}/{link}"
                    files[weight] = self._pointer(weight)
            if path.name == "turnkey_stats.yaml":
                weight = generated_model_file(path.parent.relative_to(root).as_posix())
                files[weight] = self._pointer(weight)
        later = []
        for message, date, folder, names in LATER_COMMITS:
            paths = [f"{prefix(self.layout)}{folder}/{name}" for name in names]
            later.append((message, date, {p: files.pop(p, None) or self._pointer(p) for p in paths}))
        self.commits.append(self.git.add_repo(REPO, files, message="Model zoo", date="2023-01-05T12:00:00Z"))
        for message, date, added in later:
            self.commits.append(self.git.commit(REPO, added, message=message, date=date))

    def _pointer(self, path: str) -> bytes:
        content = fake_weights(path)
        if not path.endswith((".onnx", ".tar.gz")):
            return content  # a plain file (notebook)
        self.git.lfs_objects[hashlib.sha256(content).hexdigest()] = content
        return lfs_pointer(content)

    def last_commit(self, path: str) -> str:
        """``git log -1 --format=%H -- <path>`` in the served repository."""
        return git("log", "-1", "--format=%H", "main", "--", path, env={"GIT_DIR": str(self.git.bare_path(REPO))})

    def file(self, path: str) -> bytes | None:
        """The file at ``main`` (an LFS file's pointer), or None."""
        out = subprocess.run(["git", "cat-file", "blob", f"main:{path}"], capture_output=True,
                             env={**os.environ, **GIT_ENV, "GIT_DIR": str(self.git.bare_path(REPO))})
        return out.stdout if out.returncode == 0 else None

    # -- HTTP ----------------------------------------------------------------------------------
    @property
    def url(self) -> str:
        return self.replica.url

    @property
    def raw_url(self) -> str:
        return self.url + RAW_PREFIX

    @property
    def tree_url(self) -> str:
        return f"{self.url}{TREE_PREFIX}/main?recursive=1"

    def settings(self) -> dict[str, str]:
        return {"PTM_ONNX_RAW_URL": self.raw_url, "PTM_ONNX_REPO_URL": f"https://github.com/{REPO}",
                "PTM_ONNX_TREE_URL": self.tree_url}

    def env(self, base: dict[str, str] | None = None) -> dict[str, str]:
        """Crawl environment: git fetches https://github.com/onnx/models from this replica."""
        return insteadof_env("https://github.com", self.url, base)

    def git_sessions(self) -> int:
        """Clones/fetches of the repository (each starts with one ``info/refs`` GET)."""
        return self.replica.count("GET", rf"^/{re.escape(REPO)}(\.git)?/info/refs")

    def raw_requests(self, path: str) -> int:
        return self.replica.count("GET", rf"^{re.escape(RAW_PREFIX)}/{re.escape(path)}$")

    def __enter__(self) -> OnnxZooReplica:
        self.replica.start()
        return self

    def __exit__(self, *exc) -> None:
        self.replica.stop()

    def _raw(self, req: Incoming, m: re.Match) -> Reply:
        path = m.group("path")
        content = None if path in self.gone or ".." in path.split("/") else self.file(path)
        if content is None:
            return Reply.text("404: Not Found", 404)
        return Reply(200, content, {"Content-Type": "text/plain; charset=utf-8"})

    def _tree(self, req: Incoming, m: re.Match) -> Reply:
        env = {"GIT_DIR": str(self.git.bare_path(REPO))}
        ref = m.group("ref")
        try:
            tree_sha = git("rev-parse", f"{ref}^{{tree}}", env=env)
        except Exception:  # noqa: BLE001 (an unknown ref)
            return Reply.text('{"message": "Not Found"}', 404, content_type="application/json")
        recursive = req.arg("recursive") not in (None, "", "0", "false")
        listing = git("ls-tree", "-l", *(["-r", "-t"] if recursive else []), ref, env=env)
        entries = []
        for line in listing.splitlines():
            meta, path = line.split("\t", 1)
            mode, kind, sha, size = meta.split()
            entry = {"path": path, "mode": mode, "type": kind, "sha": sha}
            if kind == "blob":
                entry["size"] = int(size)
            entries.append(entry)
        truncated = self.truncate_tree is not None and len(entries) > self.truncate_tree
        if truncated:
            entries = entries[: self.truncate_tree]
        body = {"sha": tree_sha, "url": f"{self.url}{TREE_PREFIX}/{tree_sha}", "tree": entries,
                "truncated": truncated}
        return Reply(200, json.dumps(body).encode(), {"Content-Type": "application/json; charset=utf-8"})


def start_demo_replica(workdir: Path, port: int = 0):
    """For the offline demo: (replica context manager, crawl settings, crawl environment)."""
    zoo = OnnxZooReplica(Path(workdir) / "onnx-git", layout="2025", port=port)
    return zoo, zoo.settings(), zoo.env()
