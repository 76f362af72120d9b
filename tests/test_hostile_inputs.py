"""Hostile inputs: model ids and owners that try to leave the data dir, repository URLs that try
to run code or reach local files, hub JSON of the wrong shape. Each is refused with a reason that
names the model (a counted drop or ``CloneStatus: failed: …``), the crawl goes on, whatever could
be kept is kept, and nothing is written outside the data dir."""

from __future__ import annotations

import json
import os
import re
import shutil
import string
import subprocess

import pytest
from hypothesis import HealthCheck, given, settings, strategies as st
from jsonschema import Draft202012Validator

from ptmscrape import gitrepo
from ptmscrape.dataset import paths
from ptmscrape.dataset.paths import UnsafePath, segment
from ptmscrape.dataset.payloads import read_payload
from ptmscrape.dataset.tree import DatasetTree
from ptmscrape.gitrepo import Git, GitPolicy, RepoError, UnsafeRepoURL, check_branch, check_url
from ptmscrape.items import RawModelItem, load_schema, printable
from ptmscrape.logformatter import ConciseLogFormatter
from ptmscrape.mappers.common import MappingError
from ptmscrape.mappers.huggingface import map_raw
from tests.crawl import run_crawl
from tests.reliability_support import (
    ListingExtras,
    add_symlink_repo,
    assert_contained,
    assert_only_complete_clones,
    tree_state,
)
from tests.replicas.huggingface import HuggingFaceReplica, synthetic_models
from tests.replicas.server import GitHost

HTTPS = GitPolicy()
REPLICA_POLICY = GitPolicy(allow_protocols=("https", "http"))
VALIDATOR = Draft202012Validator(load_schema())
SOME = settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])


# -- path rules: segment and DatasetTree.path ---------------------------------------------------
@pytest.mark.parametrize("name", ["..", ".", "../../etc/passwd", "/etc/passwd", "a\x00b", "a/../../b",
                                  "x" * 10_000, "模型/ü\u202e", "\\..\\..\\windows", "~root", "-rf",
                                  "%2e%2e", "con", "a\nb", " "])
def test_hostile_names_become_one_harmless_segment(name, tmp_path):
    safe = segment(name)
    assert re.fullmatch(r"[A-Za-z0-9_.%~\-]{1,120}", safe) and not safe.startswith(".")
    tree = DatasetTree(tmp_path / "data")
    for relative in (paths.metadata_file("hub", name, name), paths.repo_dir("hub", name, name)):
        assert tree.root in tree.path(relative).parents


@SOME
@given(st.text(min_size=1, max_size=400))
def test_segment_is_always_one_safe_segment(name):
    safe = segment(name)
    assert 0 < len(safe) <= 120
    assert "/" not in safe and "\x00" not in safe and safe not in (".", "..") and not safe.startswith(".")
    assert safe.isascii() and safe.isprintable()


@SOME
@given(st.text(min_size=1, max_size=300), st.text(min_size=1, max_size=300))
def test_segment_never_maps_two_names_to_one(a, b):
    assert (segment(a) == segment(b)) == (a == b)


@SOME
@given(st.text(max_size=300))
def test_tree_path_stays_inside_or_refuses(relative):
    tree = DatasetTree("/tmp/ptm-hostile-root/data")
    try:
        p = tree.path(relative)
    except UnsafePath:
        return
    assert p == tree.root or tree.root in p.parents


def test_tree_path_refuses_a_symlink_leading_out(tmp_path):
    tree = DatasetTree(tmp_path / "data")
    (tmp_path / "data/hub").mkdir(parents=True)
    os.symlink(tmp_path, tmp_path / "data/hub/out")
    with pytest.raises(UnsafePath):
        tree.path("hub/out/x.json")
    with pytest.raises(UnsafePath):
        tree.write_atomic("hub/out/x.json", b"{}")
    with pytest.raises(UnsafePath):
        tree.path("hub/a\x00b")
    assert not (tmp_path / "x.json").exists()


# -- git rules: check_url, check_branch, GitPolicy.env -----------------------------------------
@pytest.mark.parametrize("url, reason", [
    ("ext::sh -c touch% /tmp/pwned", "remote-helper URL not allowed"),
    ("EXT::sh -c id", "remote-helper URL not allowed"),
    ("fd::17", "remote-helper URL not allowed"),
    ("transport::https://github.com/a/b", "remote-helper URL not allowed"),
    ("file:///etc", "transport 'file' not allowed"),
    ("FILE:///etc/passwd", "transport 'file' not allowed"),
    ("ssh://git@github.com/a/b", "transport 'ssh' not allowed"),
    ("git://github.com/a/b", "transport 'git' not allowed"),
    ("http://github.com/a/b", "transport 'http' not allowed"),
    ("git@github.com:a/b.git", "not a plain URL"),
    ("/srv/repos/a.git", "not a plain URL"),
    ("../../a.git", "not a plain URL"),
    ("https://user:secret@github.com/a/b", "credentials in the URL"),
    ("https://ghp_token@github.com/a/b", "credentials in the URL"),
    ("https://github.com@evil.example/a/b", "credentials in the URL"),
    ("--upload-pack=touch /tmp/pwned", "starts with '-'"),
    ("-c core.sshCommand=touch", "starts with '-'"),
    ("https://-oProxyCommand=x/a/b", "no valid host"),
    ("https:///a/b", "no valid host"),
    ("https://github.com:99999/a/b", "invalid port"),
    ("https://github.com:x/a/b", "invalid port"),
    ("https://github.com/", "no repository path"),
    ("https://github.com/a/../../b", "'.' or '..' segment"),
    ("https://github.com/a/%2e%2e/b", "'.' or '..' segment"),
    ("https://github.com/a b", "whitespace or control"),
    ("https://github.com/a\x00b", "whitespace or control"),
    ("https://github.com/a\nb", "whitespace or control"),
    ("https://github.com/" + "a" * 3000, "longer than"),
    ("", "no repository URL"),
    (None, "no repository URL"),
    (["https://github.com/a/b"], "no repository URL"),
])
def test_check_url_refuses_with_a_reason(url, reason):
    with pytest.raises(UnsafeRepoURL, match=re.escape(reason)):
        check_url(url, HTTPS)


@pytest.mark.parametrize("url", ["https://github.com/google/bert", "https://huggingface.co/gpt2",
                                 "https://github.com/onnx/models.git", " https://gitlab.com/a/b/c ",
                                 "https://github.com/a/-rf", "https://[::1]:8443/a/b"])
def test_check_url_accepts_plain_https(url):
    assert check_url(url, HTTPS) == url.strip()


_URLISH = st.one_of(
    st.text(max_size=200),
    st.builds(lambda scheme, host, path: f"{scheme}://{host}/{path}",
              st.sampled_from(["https", "http", "file", "ssh", "ext", "HTTPS", "git+https", ""]),
              st.text(max_size=40), st.text(max_size=80)),
    st.builds(lambda a, b: f"{a}::{b}", st.text(max_size=20), st.text(max_size=40)),
)


@SOME
@given(_URLISH)
def test_check_url_only_ever_lets_plain_allowed_urls_through(url):
    try:
        accepted = check_url(url, HTTPS)
    except UnsafeRepoURL:
        return
    from urllib.parse import unquote, urlsplit
    parts = urlsplit(accepted)
    assert parts.scheme.lower() == "https" and "::" not in accepted.split("/", 1)[0]
    assert not accepted.startswith("-") and "@" not in parts.netloc and parts.hostname
    assert all(ord(c) > 0x20 and c != "\x7f" for c in accepted) and len(accepted) <= 2048
    assert all(unquote(s) not in (".", "..") for s in parts.path.split("/"))


@pytest.mark.parametrize("branch", ["-f", "--upload-pack=x", "/a", "a..b", "a//b", "a/", "a.", ".hidden",
                                    "a/.b", "a.lock", "a.lock/b", "a b", "a~1", "a^", "a:b", "a?", "a*",
                                    "a[", "a\\b", "@{-1}", "x" * 201, 5, ["main"], "main\n"])
def test_check_branch_refuses_options_and_bad_ref_names(branch):
    with pytest.raises(RepoError, match="invalid branch name"):
        check_branch(branch)


def test_check_branch_refuses_head_which_git_refuses_as_a_branch_name():
    """``git check-ref-format --branch HEAD`` fails: an entry naming branch ``HEAD`` was accepted
    and its clone asked git for a branch that cannot exist (found by the property test below)."""
    with pytest.raises(RepoError, match="invalid branch name"):
        check_branch("HEAD")
    assert check_branch("HEAD/x") == "HEAD/x" and check_branch("head") == "head"


@settings(max_examples=150, deadline=None)
@given(st.text(alphabet=string.ascii_letters + string.digits + "._/-@{}~^:?*[\\ ", max_size=24))
def test_check_branch_accepts_only_what_git_accepts_as_a_branch(branch):
    try:
        accepted = check_branch(branch)
    except RepoError:
        return
    if accepted is None:
        assert branch == ""
        return
    assert not accepted.startswith("-")
    ok = subprocess.run(["git", "check-ref-format", "--branch", accepted], capture_output=True)
    assert ok.returncode == 0, accepted


def test_policy_env_never_prompts_limits_transports_and_ignores_a_hosting_repo(monkeypatch):
    monkeypatch.setenv("GIT_DIR", "/somewhere/else/.git")
    monkeypatch.setenv("GIT_WORK_TREE", "/somewhere/else")
    monkeypatch.setenv("GIT_CONFIG_COUNT", "1")
    monkeypatch.setenv("GIT_CONFIG_KEY_0", "url.http://replica/.insteadOf")
    monkeypatch.setenv("GIT_CONFIG_VALUE_0", "https://github.com/")
    policy = GitPolicy(auth_headers=(("https://huggingface.co/", "Authorization: Bearer hf_SeCrEt"),))
    env = policy.env()
    assert env["GIT_TERMINAL_PROMPT"] == "0" and env["GIT_ASKPASS"] == ""
    assert env["GIT_ALLOW_PROTOCOL"] == "https" and env["GIT_LFS_SKIP_SMUDGE"] == "1"
    assert "GIT_DIR" not in env and "GIT_WORK_TREE" not in env
    assert env["GIT_CONFIG_COUNT"] == "3" and env["GIT_CONFIG_KEY_0"] == "url.http://replica/.insteadOf"
    assert env["GIT_CONFIG_KEY_1"] == "http.https://huggingface.co/.extraHeader"
    # where the header goes, no redirect is followed (git would carry it to the other host)
    redirects = ("http.https://huggingface.co/.followRedirects", "false")
    assert (env["GIT_CONFIG_KEY_2"], env["GIT_CONFIG_VALUE_2"]) == redirects
    assert "hf_SeCrEt" not in repr(policy) and "hf_SeCrEt" not in " ".join(policy.config_options())
    assert "core.symlinks=false" in policy.config_options()


def test_git_itself_refuses_remote_helpers_and_local_files_under_the_policy(tmp_path):
    """Defence in depth: even a URL that slipped past check_url is refused by git's
    GIT_ALLOW_PROTOCOL, so ``ext::`` never runs a command and ``file://`` never copies a local repo."""
    host = GitHost(tmp_path / "local")
    host.add_repo("secret/repo", {"secret.txt": "local data"})
    marker = tmp_path / "pwned"
    for url in (f"ext::sh -c touch% {marker}", f"file://{host.bare_path('secret/repo')}",
                str(host.bare_path("secret/repo"))):
        target = tmp_path / "clone"
        out = subprocess.run(["git", *HTTPS.config_options(), "clone", "--", url, str(target)],
                             env=HTTPS.env(), capture_output=True, text=True, cwd=tmp_path)
        assert out.returncode != 0 and "not allowed" in out.stderr, (url, out.stderr)
        assert not (target / "secret.txt").exists()
    assert not marker.exists()


def _clone_and_plant(tmp_path, plant):
    """A clone in a data dir (at the hub's first commit), ``plant(clone, marker)`` done to its .git
    as by whoever else writes the data dir, and a new commit on the hub: returns (cloner result of
    the update, the marker file a planted command would write, the clone, the replica host)."""
    import asyncio

    from ptmscrape.cloning import Cloner
    from tests.replicas.server import Replica

    host = GitHost(tmp_path / "git")
    host.add_repo("owner/repo", {"README.md": "x\n", "docs/a.md": "a\n"})
    marker = tmp_path / "ran"
    with Replica() as server:
        host.mount(server)
        url = f"{server.url}/owner/repo"

        def crawl(hub_sha=None, subpath=None):
            cloner = Cloner(DatasetTree(tmp_path / "data"), Git(REPLICA_POLICY), concurrency=1)
            cloner.open("modelzoo")
            try:
                return asyncio.run(cloner.clone("modelzoo", url, hub_sha=hub_sha, subpath=subpath))
            finally:
                cloner.close()

        clone = tmp_path / "data" / crawl().path
        script = tmp_path / "run.sh"
        script.write_text(f"#!/bin/sh\necho \"$0\" >> {marker}\n")
        script.chmod(0o755)
        plant(clone, script)
        new = host.commit("owner/repo", {"README.md": "y\n", "docs/a.md": "b\n"})
        return crawl(new), crawl(new, subpath="docs"), marker, clone


def _config(text):
    def plant(clone, script):
        included = script.parent / "included.config"  # what include.path brings in
        included.write_text(f"[core]\n\tfsmonitor = {script}\n")
        with open(clone / ".git/config", "a") as f:
            f.write(text.format(script=script, outside=script.parent / "outside", included=included))
    return plant


@pytest.mark.parametrize("planted, key", [
    ("[core]\n\tfsmonitor = {script}\n", "core.fsmonitor"),
    ("[core]\n\tworktree = {outside}\n", "core.worktree"),
    ("[core]\n\tsshCommand = {script}\n", "core.sshcommand"),
    ("[include]\n\tpath = {included}\n", "include.path"),
    ("[filter \"x\"]\n\tsmudge = {script}\n", "filter.x.smudge"),
    ('[url "http://127.0.0.1:9/"]\n\tinsteadOf = http://\n', "url.http://127.0.0.1:9/.insteadof"),
])
def test_git_is_not_run_in_a_clone_whose_config_was_written_by_someone_else(tmp_path, planted, key):
    """A clone's config is git's own; a data dir copied from elsewhere, or shared, may hold one
    with settings that run a program, write outside the data dir or fetch elsewhere: no git runs
    there (not its update, nor the last commit of a model's folder), the record says why."""
    (tmp_path / "outside").mkdir()
    update, subpath, marker, clone = _clone_and_plant(tmp_path, _config(planted))
    for result in (update, subpath):
        assert result.status == f"failed: {gitrepo.UNSAFE_CONFIG} ({key})", result.status
    assert not marker.exists()
    assert list((tmp_path / "outside").iterdir()) == []
    assert (clone / "README.md").read_text() == "x\n"


def test_no_hook_planted_in_a_clone_runs_when_it_is_updated(tmp_path):
    def plant(clone, script):
        for hook in ("reference-transaction", "post-index-change", "post-checkout", "post-merge"):
            (clone / ".git/hooks" / hook).write_bytes(script.read_bytes())
            (clone / ".git/hooks" / hook).chmod(0o755)
    update, subpath, marker, clone = _clone_and_plant(tmp_path, plant)
    assert update.status == "updated" and subpath.sha == update.sha
    assert (clone / "README.md").read_text() == "y\n"
    assert not marker.exists()


def test_a_clone_whose_git_dir_is_elsewhere_is_not_updated(tmp_path):
    """A ``.git`` that is a ``gitdir:`` file or a symlink leads git to a repository outside the
    data dir: its config, its refs and objects written by a fetch."""
    elsewhere = tmp_path / "elsewhere.git"

    def plant(clone, script):
        os.rename(clone / ".git", elsewhere)
        (clone / ".git").write_text(f"gitdir: {elsewhere}\n")
    update, subpath, marker, clone = _clone_and_plant(tmp_path, plant)
    assert update.status.startswith(f"failed: {gitrepo.UNSAFE_CONFIG} (.git is not"), update.status
    assert "FETCH_HEAD" not in os.listdir(elsewhere)


@pytest.mark.parametrize("inside", ["refs/remotes", "logs", "objects/pack", "refs"])
def test_a_clone_with_a_symlink_in_its_git_dir_leading_out_is_not_updated(tmp_path, inside):
    """A data dir copied from elsewhere, or shared, may hold a clone whose ``.git/refs``, ``logs``
    or ``objects/pack`` is a symlink: git follows it, so an update would write the fetched refs,
    its reflog or the new pack outside the data dir (and a killed update's lock files would be
    looked for, and removed, there). No git runs in such a clone; the record says why."""
    outside = tmp_path / "outside"

    def plant(clone, script):
        outside.mkdir()
        folder = clone / ".git" / inside
        if folder.exists():
            shutil.copytree(folder, outside, dirs_exist_ok=True)
            shutil.rmtree(folder)
        os.symlink(outside, folder)
        (outside / "keep.lock").write_text("someone else's lock\n")
        states.append(tree_state(outside))
    states: list[dict] = []
    update, subpath, marker, clone = _clone_and_plant(tmp_path, plant)
    for result in (update, subpath):
        assert result.status.startswith(f"failed: {gitrepo.UNSAFE_CONFIG} (.git holds a symlink"), result.status
    assert tree_state(outside) == states[0]  # nothing written, nothing removed there
    assert (clone / "README.md").read_text() == "x\n"


# -- hub JSON of the wrong shape -------------------------------------------------------------
def raw(payload) -> RawModelItem:
    return RawModelItem(hub="huggingface", model_id=str(payload)[:50], url="https://hub/api/models",
                        payload=payload, context={"base_url": "https://huggingface.co"})


@pytest.mark.parametrize("payload, reason", [
    ("a string", "payload is str"), (None, "payload is NoneType"), ([{"id": "a/b"}], "payload is list"),
    ({}, "missing or malformed 'id'"), ({"id": 12345}, "missing or malformed 'id'"),
    ({"id": ["a/b"]}, "missing or malformed 'id'"), ({"id": "a/b/c"}, "missing or malformed 'id'"),
    ({"id": "/etc/passwd"}, "missing or malformed 'id'"), ({"id": "a b/c"}, "missing or malformed 'id'"),
    ({"id": ""}, "missing or malformed 'id'"), ({"id": "a/b\n"}, "missing or malformed 'id'"),
])
def test_unmappable_payloads_raise_a_reason(payload, reason):
    with pytest.raises(MappingError, match=re.escape(reason)):
        map_raw(raw(payload))


# Every hub's field a model's identity comes from, its limit, and a payload carrying a value there.
_ID_FIELDS = [
    ("modelhub", 100, lambda v: {"id": v, "name": "n", "github": "https://github.com/a/b"}),
    ("pytorchhub", 200, lambda v: {"Slug": v, "ModelName": "N"}),
    ("huggingface", 100, lambda v: {"_id": v, "id": "a/b"}),
    ("ollama", 200, lambda v: {"Name": v}),
    ("ollama", 200, lambda v: {"Name": "n", "Namespace": v}),
    ("tfhub", 300, lambda v: {"handle": "a/" + v[2:], "path": "assets/docs/a/models/b/1.md"}),
    ("openvino", 300, lambda v: {"group": "intel", "name": v, "model_dir": "models/intel/a", "model": {}}),
    ("openvino", 600, lambda v: {"group": "intel", "name": "a", "folder": v, "model_dir": "models/intel/a",
                                 "model": {}}),
    ("onnxmodelzoo", 500, lambda v: {"model_dir": v, "kind": "generated", "turnkey": {}}),
    ("onnxmodelzoo", 1000, lambda v: {"model_dir": "a/b", "row": {"downloads": [{"path": v[:-5] + ".onnx"}]}}),
    ("modelscope", 100, lambda v: {"Path": "iic", "Name": "n", "Id": v}),
    ("modelzoo", 300, lambda v: {"title": "t", "link": None}),  # the slug (raw item's model_id, context)
]


@pytest.mark.parametrize("hub, limit, payload", _ID_FIELDS)
def test_an_over_long_id_is_refused_not_cut_into_another_models_id(hub, limit, payload):
    from ptmscrape.mappers import mapper_for

    def mapped(value):
        return mapper_for(hub)(RawModelItem(hub=hub, model_id=value, url="https://hub/", payload=payload(value)))

    record = mapped("m" * limit)  # at the limit: kept whole
    assert list(VALIDATOR.iter_errors(record)) == []
    for tail in ("1", "2"):  # cut to the limit, both would be the model above
        with pytest.raises(MappingError, match=f"{limit + 1} characters long, over the limit of {limit}"):
            mapped("m" * limit + tail)


def test_a_modelzoo_slug_reaches_the_mapper_whole_from_the_spider():
    """The raw item's ``model_id`` is cut to 300 characters (``HubSpider.raw_item``); the ModelZoo
    mapper names the model by its slug, so the spider hands it the slug whole: two slugs sharing their
    first 300 characters were one model."""
    from ptmscrape.mappers.modelzoo import map_raw as map_modelzoo
    from spiders.modelzoo import ModelzooSpider
    from tests.helpers import html_response, json_response, make_spider

    api = make_spider(ModelzooSpider, {"PTM_MODELZOO_URL": "https://zoo.example"})
    rendered = make_spider(ModelzooSpider, {"PTM_MODELZOO_URL": "https://zoo.example",
                                            "SPLASH_URL": "http://127.0.0.1:8050"}, render="splash")
    page = "<html><div class='model-info-div box-shadow'><p>x</p></div></html>"

    def item(spider, slug):
        if spider is api:
            (raw,) = spider.parse_model(json_response(f"https://zoo.example/api/models/{slug}/", {}), slug=slug)
        else:
            (raw,) = spider.parse_model_page(html_response(f"https://zoo.example/model/{slug}", page), slug=slug)
        return raw

    for spider in (api, rendered):
        assert map_modelzoo(item(spider, "m" * 300))["ModelName"] == "m" * 300  # at the limit: kept whole
        for tail in ("1", "2"):
            with pytest.raises(MappingError, match="301 characters long, over the limit of 300"):
                map_modelzoo(item(spider, "m" * 300 + tail))


def test_a_trailing_newline_does_not_pass_for_a_valid_value():
    """Validators anchored with ``$`` let ``"value\\n"`` through with ``re.match``; hub text is
    checked whole."""
    from ptmscrape.mappers import civitai, ollama, repo_files
    from spiders.openvino import OpenvinoSpider
    from spiders.tfhub import path_handle

    sha = "a" * 64
    assert civitai._file({"hashes": {"SHA256": sha}})["SHA256"] == sha
    assert civitai._file({"hashes": {"SHA256": sha + "\n"}})["SHA256"] is None
    assert repo_files.file_entry("f", 1, sha, None)["SHA256"] == sha
    assert repo_files.file_entry("f", 1, sha + "\n", None)["SHA256"] is None
    assert ollama._digest(f"sha256:{sha}") and ollama._digest(f"sha256:{sha}\n") is None
    assert path_handle("assets/docs/g/models/m/1.md")[1] == "g/m/1"
    with pytest.raises(ValueError):
        path_handle("assets/docs/g/models/m/1.md\n")
    openvino = OpenvinoSpider.__new__(OpenvinoSpider)
    assert openvino.is_model_file("models/public/m/model.yml")
    assert not openvino.is_model_file("models/public/m/model.yml\n")


def test_wrong_types_and_huge_strings_still_give_a_valid_bounded_record():
    payload = {"_id": {"$oid": 1}, "id": "ok/wrong-types", "author": 5, "downloads": "lots", "likes": -3,
               "downloadsAllTime": 1.5, "tags": {"a": 1}, "cardData": ["x"], "config": "x",
               "safetensors": [], "siblings": "x", "gated": {"x": 1}, "pipeline_tag": "t" * 2_000_000,
               "library_name": ["x"], "createdAt": 5, "lastModified": "l" * 100_000, "sha": "../../x",
               "usedStorage": True}
    record = map_raw(raw(payload))
    assert list(VALIDATOR.iter_errors(record)) == []
    assert record["ModelName"] == "wrong-types" and record["ModelOwner"] == "ok"
    assert record["Downloads"] is record["Likes"] is record["UsedStorage"] is record["Gated"] is None
    assert record["Tags"] == [] and record["LatestGitCommitSHA"] is None
    assert len(json.dumps(record)) < 2000  # no field carries the megabytes through


def test_log_lines_about_hostile_models_are_escaped_and_short():
    assert printable("owner/na\x00me\n2026-01-01 [x] ERROR fake\x1b[31m") == (
        "owner/na\\x00me\\n2026-01-01 [x] ERROR fake\\x1b[31m")
    assert len(printable("x" * 10_000)) < 230
    fmt = ConciseLogFormatter()

    class Spider:
        class crawler:
            settings = {"DEFAULT_DROPITEM_LOG_LEVEL": "WARNING"}
    out = fmt.dropped(raw({"id": "a/b", "x": "y" * 100_000}), Exception("why"), None, Spider)
    assert len(out["args"]["item"]) < 600 and "characters)" in out["args"]["item"]


# -- a real crawl of a hub serving hostile models --------------------------------------------
def model(i: int, model_id: str, **fields) -> dict:
    return {"_id": f"{0x660000000000000000000000 + i:024x}", "id": model_id, "downloads": 100 - i,
            "tags": [], **fields}


def test_crawl_of_hostile_models_keeps_what_it_can_and_writes_only_inside_the_data_dir(tmp_path):
    parent = tmp_path / "parent"
    (parent / "sibling").mkdir(parents=True)
    (parent / "sibling/keep.txt").write_text("not to be touched\n")
    (parent / "notes.txt").write_text("neither\n")
    (tmp_path / "out").mkdir()
    data = parent / "data"
    cloned_ok = [model(1, "-rf/--upload-pack=touch"), model(2, "组织/模型-ü")]
    refused = {  # id -> CloneStatus (the record is kept)
        "../escape": "failed: '.' or '..' segment in the URL path",
        "owner/na\x00me": "failed: URL contains whitespace or control characters",
        "o/" + "x" * 5000: "failed: URL longer than 2048 characters",
    }
    shapes = [model(10, "ok/wrong-types", downloads="lots", tags={"a": 1}, cardData=[], config="x",
                    safetensors=[], gated={"x": 1}, likes=-3, pipeline_tag=["x"]),
              model(11, "ok/huge", pipeline_tag="t" * 2_000_000, cardData={"license": "l" * 100_000})]
    dropped = ["a string", None, {"no": "id"}, {"_id": "x", "id": 12345}, {"id": "../../etc/passwd"},
               {"id": "/etc/passwd"}, {"id": "a\nb/c"}]
    with HuggingFaceReplica(synthetic_models(3), tmp_path / "hub-git") as hub:
        for m in cloned_ok:
            hub.add_model(m)
        links = model(3, "evil/symlinks")
        links["sha"] = add_symlink_repo(hub.git, links["id"])
        hub.models[links["id"]] = links
        for i, model_id in enumerate(refused):
            hub.add_model(model(20 + i, model_id), repo=False)
        for m in shapes:
            hub.add_model(m)
        hub.replica.interceptors.append(ListingExtras(dropped))
        before = tree_state(parent)
        result = run_crawl("huggingface", tmp_path / "out", data_dir=data,
                           settings={"PTM_HUGGINGFACE_URL": hub.url})

    assert tree_state(parent, skip=(data,)) == before  # nothing written beside the data dir
    assert assert_contained(data) > 10  # no symlink, nothing resolving outside
    links_clone = data / "huggingface/repos/evil/symlinks"
    assert (links_clone / "etc").is_file() and (links_clone / "etc").read_text() == "/etc"
    assert_only_complete_clones(data / "huggingface/repos")

    records = {f"{r['ModelOwner']}/{r['ModelName']}": r for r in result.records("huggingface")}
    assert len(records) == 3 + 3 + len(refused) + len(shapes)
    for m in [*cloned_ok, links, *shapes]:
        assert records[m["id"]]["CloneStatus"] == "cloned", m["id"]
    assert records["-rf/--upload-pack=touch"]["RepoPath"] == "huggingface/repos/-rf/--upload-pack%3Dtouch"
    for model_id, status in refused.items():
        assert records[model_id]["CloneStatus"].startswith(status), model_id
        assert records[model_id]["RepoPath"] is None
        assert read_payload(DatasetTree(data), records[model_id]["ModelHub"]["MetadataFilePath"])  # payload kept
    assert records["ok/huge"]["CloneStatus"] == "cloned" and records["ok/huge"]["ModelTask"] == "t" * 200
    assert records["ok/wrong-types"]["Downloads"] is None and records["ok/wrong-types"]["Tags"] == []

    stats = result.stats
    assert stats["item_dropped_reasons_count/UnmappableModel"] == stats["ptm/map/failed"] == len(dropped)
    assert stats["ptm/clone/failed"] == len(refused)
    assert stats["ptm/clone/failed/URL longer than 2048 characters"] == 1
    log = result.log
    for reason in ("payload is str", "payload is NoneType", "'../../etc/passwd'", "'/etc/passwd'",
                   "'12345'", "<no id>"):
        assert re.search(r"WARNING: Dropped: huggingface:.*" + re.escape(reason), log), reason
    assert "Clone failed for huggingface:owner/na\\x00me" in log and "\x00" not in log
    assert "t" * 1000 not in log and max(len(line) for line in log.splitlines()) < 3000
    assert "Traceback" not in log
