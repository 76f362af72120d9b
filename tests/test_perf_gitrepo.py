"""Re-crawl speed: a clone's HEAD and origin are read from its files, with git's answers.

``head_sha`` / ``head_and_origin`` read the plain layout ``git clone`` makes without starting a
process; whatever they cannot vouch for goes to GitPython and git as before. Each case below
compares them with that slow path (``_head_sha_git``, ``Repo.remotes.origin.url``) and with git.
"""

from __future__ import annotations

import os
import shutil
import subprocess
from pathlib import Path

import git as gitpython
import pytest

from ptmscrape import gitrepo
from ptmscrape.gitfiles import commit_in_store, read_clone
from ptmscrape.gitrepo import _head_sha_git, head_and_origin, head_sha

ENV = {**os.environ, "GIT_AUTHOR_NAME": "t", "GIT_AUTHOR_EMAIL": "t@t", "GIT_COMMITTER_NAME": "t",
       "GIT_COMMITTER_EMAIL": "t@t", "GIT_CONFIG_NOSYSTEM": "1", "HOME": "/nonexistent"}
ORIGIN = "https://example.com/owner/name"


def git(cwd: Path, *args: str, stdin: str | None = None) -> str:
    return subprocess.run(["git", *args], cwd=cwd, env=ENV, check=True, capture_output=True, text=True,
                          input=stdin).stdout.strip()


def make_repo(path: Path, commits: int = 1, origin: str | None = ORIGIN) -> list[str]:
    path.mkdir(parents=True)
    git(path, "init", "-q", "-b", "main")
    shas = []
    for i in range(commits):
        (path / f"f{i % 7}.txt").write_text(f"{i}\n")
        git(path, "add", "-A")
        git(path, "commit", "-q", "-m", f"c{i}")
        shas.append(git(path, "rev-parse", "HEAD"))
    if origin:
        git(path, "remote", "add", "origin", origin)
    return shas


def slow_origin(path: Path) -> str | None:
    try:
        return gitpython.Repo(path).remotes.origin.url
    except Exception:
        return None


def assert_same_as_git(path: Path) -> tuple[str | None, str | None]:
    head = _head_sha_git(path)
    assert head_sha(path) == head
    assert head_and_origin(path) == (head, slow_origin(path) if head else None)
    return head, (slow_origin(path) if head else None)


@pytest.fixture
def repo(tmp_path) -> Path:
    make_repo(tmp_path / "r", commits=3)
    return tmp_path / "r"


def test_a_cloned_repository_is_read_without_starting_any_process(tmp_path, repo, monkeypatch):
    git(tmp_path, "clone", "-q", "--no-local", "--", str(repo), "c")
    clone = tmp_path / "c"
    git(clone, "remote", "set-url", "origin", ORIGIN)
    expected = git(clone, "rev-parse", "HEAD")

    def no_process(*args, **kwargs):
        raise AssertionError("a process was started")

    monkeypatch.setattr(subprocess, "Popen", no_process)
    assert head_sha(clone) == expected
    assert head_and_origin(clone) == (expected, ORIGIN)


@pytest.mark.parametrize("layout", ["loose", "packed", "packed-refs", "detached", "no-origin"])
def test_valid_layouts_give_the_head_and_origin_git_gives(tmp_path, layout):
    path = tmp_path / "r"
    shas = make_repo(path, commits=4, origin=None if layout == "no-origin" else ORIGIN)
    if layout in ("packed", "packed-refs"):
        git(path, "gc", "-q")
    if layout == "packed-refs":
        git(path, "pack-refs", "--all")
        assert not (path / ".git/refs/heads/main").exists()
    if layout == "detached":
        git(path, "checkout", "-q", "--detach", shas[1])
    head, origin = assert_same_as_git(path)
    assert head == (shas[1] if layout == "detached" else shas[-1])
    assert origin == (None if layout == "no-origin" else ORIGIN)
    assert read_clone(path) is not None  # the fast path answered


def broken(tmp_path: Path, kind: str) -> Path:
    path = tmp_path / "r"
    if kind == "plain directory":
        path.mkdir()
        (path / "file").write_text("x")
        return path
    if kind == "half .git (HEAD only)":
        (path / ".git").mkdir(parents=True)
        (path / ".git/HEAD").write_text("ref: refs/heads/main\n")
        return path
    if kind == "empty repository":
        make_repo(path, commits=0)
        return path
    shas = make_repo(path, commits=2)
    git(path, "gc", "-q")
    if kind == "branch at a missing commit":
        (path / ".git/refs/heads").mkdir(exist_ok=True)
        (path / ".git/refs/heads/main").write_text("1" * 40 + "\n")
    elif kind == "objects removed":
        shutil.rmtree(path / ".git/objects/pack")
    elif kind == "truncated pack":
        pack = next((path / ".git/objects/pack").glob("*.pack"))
        pack.write_bytes(pack.read_bytes()[:12])
    elif kind == "HEAD at a blob":
        blob = git(path, "hash-object", "-w", "--stdin", stdin="blob\n")
        (path / ".git/HEAD").write_text(blob + "\n")
    elif kind == "HEAD at a tree":
        (path / ".git/HEAD").write_text(git(path, "rev-parse", "HEAD^{tree}") + "\n")
    elif kind == "HEAD garbage":
        (path / ".git/HEAD").write_text("ref: ../../../etc/passwd\n")
    elif kind == "ref escaping the repository":
        outside = tmp_path / "outside"
        outside.write_text(shas[0] + "\n")
        (path / ".git/HEAD").write_text("ref: refs/heads/../../../../outside\n")
    elif kind == ".git is a file":
        shutil.rmtree(path / ".git")
        (path / ".git").write_text("gitdir: /nonexistent\n")
    return path


@pytest.mark.parametrize("kind", [
    "plain directory", "half .git (HEAD only)", "empty repository", "branch at a missing commit",
    "objects removed", "truncated pack", "HEAD at a blob", "HEAD at a tree", "HEAD garbage",
    "ref escaping the repository", ".git is a file",
])
def test_broken_or_half_repositories_are_not_valid(tmp_path, kind):
    path = broken(tmp_path, kind)
    assert head_sha(path) is None
    assert head_and_origin(path) == (None, None)
    assert _head_sha_git(path) is None  # as GitPython and git say


def test_what_the_files_cannot_vouch_for_is_asked_of_git(tmp_path):
    """An annotated tag checked out detached, alternates, an odd config: same answers as git."""
    tagged = tmp_path / "tagged"
    shas = make_repo(tagged, commits=2)
    borrower = tmp_path / "borrower"
    git(tmp_path, "clone", "-q", "--shared", "--", str(tagged), "borrower")
    assert (borrower / ".git/objects/info/alternates").exists()
    assert read_clone(borrower) is None
    assert assert_same_as_git(borrower)[0] == shas[-1]

    git(tagged, "tag", "-a", "v1", "-m", "v1", shas[0])
    (tagged / ".git/HEAD").write_text(git(tagged, "rev-parse", "v1") + "\n")  # the tag object
    assert read_clone(tagged) is None
    assert assert_same_as_git(tagged)[0] == shas[0]

    for config in ('[include]\n\tpath = other\n', '[remote "origin"]\n\turl = "https://q/a b"\n',
                   '[remote "origin"]\n\turl = https://a/b\n\turl = https://c/d\n',
                   '[remote.origin]\n\turl = https://a/b\n', '[remote "origin"]\n\turl = https://a/\\\nb\n'):
        odd = tmp_path / f"odd{hash(config) & 0xFFFF}"
        make_repo(odd, origin=None)
        with open(odd / ".git/config", "a") as f:
            f.write(config)
        assert read_clone(odd) is None, config
        assert_same_as_git(odd)


def test_config_as_git_writes_it_is_read_and_anything_else_goes_to_gitpython(tmp_path):
    path = tmp_path / "r"
    make_repo(path, origin=None)
    git(path, "config", "remote.upstream.url", "https://other/x")
    git(path, "config", "remote.origin.url", "https://a/b/c.git")
    git(path, "config", "remote.origin.fetch", "+refs/heads/*:refs/remotes/origin/*")
    git(path, "config", "branch.main.remote", "origin")
    assert read_clone(path)[1] == "https://a/b/c.git"
    assert_same_as_git(path)
    plain = (path / ".git/config").read_text()
    for variant in (plain.replace('[remote "origin"]', '[REMOTE  "origin"]  # comment'),
                    plain.replace("\turl = https://a", "\tURL=https://a"), plain + "; comment\n",
                    plain.replace("[core]", "[core] ")):
        (path / ".git/config").write_text(variant)
        assert read_clone(path) is None, variant
        assert_same_as_git(path)


def test_every_object_of_a_big_pack_is_found_with_its_type(tmp_path):
    """The pack index look-up against ``git cat-file``: every commit found as a commit, trees and
    blobs never, random names never (the binary search covers every fan-out bucket)."""
    path = tmp_path / "r"
    commits = make_repo(path, commits=300, origin=None)
    git(path, "gc", "-q")
    objects = str(path / ".git/objects")
    assert not any(len(d.name) == 2 for d in (path / ".git/objects").iterdir())  # all packed
    listed = git(path, "cat-file", "--batch-check", "--batch-all-objects").splitlines()
    kinds = {line.split()[0]: line.split()[1] for line in listed}
    assert set(commits) <= set(kinds)
    for sha, kind in kinds.items():
        assert commit_in_store(objects, sha) == (kind == "commit"), (sha, kind)
    for n in range(256):
        assert not commit_in_store(objects, f"{n:02x}" + "5" * 38)


def test_large_offsets_table_is_followed(tmp_path, monkeypatch):
    """Version-2 indexes keep offsets beyond 2 GiB in a second table; an index is rewritten to use
    it (git writes one for smaller packs with --index-version=2,0)."""
    path = tmp_path / "r"
    commits = make_repo(path, commits=20, origin=None)
    git(path, "repack", "-adq")
    pack = next((path / ".git/objects/pack").glob("*.pack"))
    idx = pack.with_suffix(".idx")
    idx.unlink()
    git(path, "index-pack", "--index-version=2,0", str(pack))  # every offset in the 64-bit table
    data = idx.read_bytes()
    count = int.from_bytes(data[8 + 1020:8 + 1024], "big")
    first_offset = int.from_bytes(data[8 + 1024 + 24 * count:8 + 1024 + 24 * count + 4], "big")
    assert first_offset & 0x80000000
    for sha in commits:
        assert commit_in_store(str(path / ".git/objects"), sha)
    assert head_sha(path) == commits[-1]


def test_git_locating_variables_send_everything_to_the_slow_path(repo, monkeypatch):
    monkeypatch.setenv("GIT_OBJECT_DIRECTORY", str(repo / ".git/objects"))
    assert read_clone(repo) is None
    assert head_sha(repo) == git(repo, "rev-parse", "HEAD")
    monkeypatch.delenv("GIT_OBJECT_DIRECTORY")
    assert read_clone(repo) is not None


def test_fast_reader_is_used_by_head_sha(repo, monkeypatch):
    calls = []
    monkeypatch.setattr(gitrepo, "_head_sha_git", lambda p: calls.append(p))
    assert head_sha(repo) == git(repo, "rev-parse", "HEAD")
    assert calls == []
