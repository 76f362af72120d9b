"""Helpers of the reliability tests (faults, hostile inputs, clone failures, secrets, crash safety):
what a directory tree holds, whether a data dir stays inside itself, hostile hub payloads."""

from __future__ import annotations

import json
import os
import subprocess
from pathlib import Path

from tests.replicas.server import GIT_ENV, GitHost, Incoming, Reply, git


def tree_state(root: Path, skip: tuple[Path, ...] = ()) -> dict[str, tuple]:
    """Every path under ``root`` (not following symlinks) with its type, size and mtime."""
    state = {}
    skip_text = tuple(str(s) for s in skip)
    for folder, dirs, files in os.walk(root):
        dirs[:] = [d for d in dirs if not os.path.join(folder, d).startswith(skip_text)]
        for name in dirs + files:
            path = os.path.join(folder, name)
            if path.startswith(skip_text):
                continue
            st = os.lstat(path)
            state[os.path.relpath(path, root)] = (st.st_mode >> 12, st.st_size if name in files else 0,
                                                  st.st_mtime_ns if name in files else 0)
    return state


def assert_contained(data_dir: Path) -> int:
    """No symlink anywhere under ``data_dir`` and no path resolving outside it; returns #paths."""
    root = data_dir.resolve()
    n = 0
    for folder, dirs, files in os.walk(root):
        for name in dirs + files:
            path = Path(folder, name)
            assert not path.is_symlink(), f"symlink in the data dir: {path} -> {os.readlink(path)}"
            assert root in path.resolve().parents, f"{path} resolves outside {root}"
            n += 1
    return n


def assert_only_complete_clones(repos: Path) -> list[Path]:
    """Everything under ``repos/`` is a whole clone (``<owner>/<name>`` with a HEAD commit),
    and ``repos/.incoming`` (where clones are built) is empty. Returns the clones."""
    incoming = repos / ".incoming"
    assert not incoming.exists() or list(incoming.iterdir()) == [], list(incoming.iterdir())
    clones = []
    for owner in repos.iterdir() if repos.exists() else []:
        if owner.name == ".incoming":
            continue
        assert owner.is_dir(), owner
        for clone in owner.iterdir():
            head = subprocess.run(["git", "-C", str(clone), "rev-parse", "--verify", "HEAD"],
                                  capture_output=True, text=True, env={**os.environ, **GIT_ENV})
            assert head.returncode == 0 and (clone / ".git").is_dir(), f"partial clone left: {clone}"
            clones.append(clone)
    return clones


def add_symlink_repo(host: GitHost, repo: str) -> str:
    """A repository whose tree holds symlinks pointing out of any clone; returns its HEAD."""
    sha = host.add_repo(repo, {"README.md": "# links\n"})
    bare = str(host.bare_path(repo))
    env = {"GIT_DIR": bare}
    index = os.path.join(bare, "links.index")
    env_index = {**env, "GIT_INDEX_FILE": index}
    git("read-tree", "main", env=env_index)
    for name, target in (("etc", "/etc"), ("up", "../../../../.."), ("passwd", "/etc/passwd")):
        blob = subprocess.run(["git", "hash-object", "-w", "--stdin"], input=target.encode(),
                              env={**os.environ, **GIT_ENV, **env}, capture_output=True, check=True)
        git("update-index", "--add", "--cacheinfo", f"120000,{blob.stdout.decode().strip()},{name}",
            env=env_index)
    tree = git("write-tree", env=env_index)
    sha = git("commit-tree", tree, "-p", sha, "-m", "links", env=env)
    git("update-ref", "refs/heads/main", sha, env=env)
    os.unlink(index)
    return sha


class ListingExtras:
    """Appends raw objects (anything JSON) to the first ``/api/models`` listing page a replica
    serves: hostile payloads the replica's own model store could not even hold."""

    def __init__(self, extras: list):
        self.extras = extras
        self.done = False

    def __call__(self, req: Incoming, call_next) -> Reply:
        reply = call_next()
        if req.path == "/api/models" and not self.done and reply.status == 200:
            self.done = True
            page = json.loads(reply.body) + self.extras
            return Reply(200, json.dumps(page).encode(), reply.headers)
        return reply
