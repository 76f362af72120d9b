"""Where clones and payload files go (issue 11, item 1).

A repository the hub hosts is cloned into ``<hub>/repos/<owner>/<name>`` from the model's id, even
when the hub's base URL carries a path; any other repository into its URL's path below the host
(GitLab subgroups kept); two repository URLs never share a folder, nor lands one inside another,
with 16 clones in flight.
"""

from __future__ import annotations

import asyncio
import subprocess
from pathlib import Path

import pytest

from pipelines.clone import ClonePipeline
from pipelines.map import MapPipeline
from ptmscrape.cloning import Cloner
from ptmscrape.dataset import paths
from ptmscrape.dataset.payloads import read_payload
from ptmscrape.dataset.tree import DatasetTree
from ptmscrape.items import RawModelItem
from spiders.modelzoo import ModelzooSpider
from tests.crawl import project_crawler, run_crawl
from tests.replicas.huggingface import HuggingFaceReplica, synthetic_models
from tests.replicas.openvino import OpenvinoReplica
from tests.replicas.server import GitHost, Replica, insteadof_env
from tests.replicas.tfhub import TfhubReplica


def git_out(repo: Path, *args: str) -> str:
    return subprocess.run(["git", "-C", str(repo), *args], capture_output=True, text=True,
                          check=True).stdout.strip()


def test_hub_hosted_clones_follow_the_model_id_under_a_prefixed_base_url(tmp_path):
    models = synthetic_models(24)  # two owners, a dozen models each
    assert len({m["author"] for m in models}) == 2
    with HuggingFaceReplica(models, tmp_path / "git", prefix="/hf", lfs=False) as hub:
        assert hub.url.endswith("/hf")
        result = run_crawl("huggingface", tmp_path, settings={
            "PTM_HUGGINGFACE_URL": hub.url, "PTM_HUGGINGFACE_PAGE_SIZE": 10, "PTM_CLONE_CONCURRENCY": 16})
        served = {m: hub.models[m]["sha"] for m in hub.models}

    records = result.records("huggingface")
    assert len(records) == len(models) == 24
    assert len({r["RepoPath"] for r in records}) == 24
    for r in records:
        model_id = f"{r['ModelOwner']}/{r['ModelName']}"
        assert r["CloneStatus"] == "cloned", (model_id, r["CloneStatus"])
        assert r["RepoURL"] == f"{hub.url}/{model_id}"
        assert r["RepoPath"] == f"huggingface/repos/{model_id}"
        assert r["ModelHub"]["MetadataFilePath"].startswith("huggingface/json/payloads/huggingface-")
        clone = result.data_dir / r["RepoPath"]
        assert git_out(clone, "rev-parse", "HEAD") == r["LatestGitCommitSHA"] == served[model_id]
        assert git_out(clone, "remote", "get-url", "origin") == r["RepoURL"]
        payload = read_payload(DatasetTree(result.data_dir), r["ModelHub"]["MetadataFilePath"])
        assert payload["id"] == model_id
    assert not (result.data_dir / "huggingface/repos/hf").exists()


# Each a different repository: GitLab subgroups, one path on two hosts, a project on another host
# where GitLab has a subgroup of that name (its folder would hold the subgroup's clones), and a
# path deeper than the folder limit.
GITLAB_PATHS = ["group/sub/project", "group/sub/tool", "group/sub2/project", "group/project",
                "team/sub/project", "a/b/c/d/e/f/g/h/i/j", "solo"]
OTHER_HOST_PATHS = ["group/sub/project", "team/sub"]


def zoo_record(crawler, slug: str, link: str):
    item = RawModelItem("modelzoo", slug, "http://zoo.invalid/api/models/x/", {"link": link, "id": 1},
                        {"base_url": "http://zoo.invalid"})
    return asyncio.run(MapPipeline.from_crawler(crawler).process_item(item))


def test_external_repositories_follow_their_path_and_never_share_or_nest_with_16_in_flight(tmp_path):
    crawler = project_crawler(ModelzooSpider, {"PTM_DATA_DIR": str(tmp_path / "data"),
                                               "PTM_GIT_ALLOW_PROTOCOL": "https:http"})
    crawler.spider = ModelzooSpider.from_crawler(crawler)
    gitlab, other = GitHost(tmp_path / "gitlab"), GitHost(tmp_path / "other")
    heads = {}
    with Replica() as gitlab_server, Replica() as other_server:
        gitlab.mount(gitlab_server)
        other.mount(other_server)
        for host, server, paths in ((gitlab, gitlab_server, GITLAB_PATHS), (other, other_server, OTHER_HOST_PATHS)):
            for path in paths:
                heads[f"{server.url}/{path}"] = host.add_repo(path, {"README.md": f"{server.url} {path}\n"})
        records = [zoo_record(crawler, f"m{i}", url) for i, url in enumerate(heads)]

        stage = ClonePipeline.from_crawler(crawler)
        assert stage.cloner.concurrency == 16
        stage.open_spider()

        async def all_at_once():
            return await asyncio.gather(*(stage.process_item(r) for r in records))

        try:
            done = asyncio.run(all_at_once())
        finally:
            stage.close_spider()
        # A second crawl finds each clone where the first left it, at the same commit.
        stage = ClonePipeline.from_crawler(crawler)
        stage.open_spider()
        try:
            again = [asyncio.run(stage.process_item(zoo_record(crawler, "again", r["RepoURL"]))) for r in done]
        finally:
            stage.close_spider()

    data = tmp_path / "data"
    paths = [r["RepoPath"] for r in done]
    assert all(r["CloneStatus"] == "cloned" for r in done), [r["CloneStatus"] for r in done]
    assert len(set(paths)) == len(paths)
    for a in paths:  # no clone inside another's folder
        assert not any(b != a and b.startswith(a + "/") for b in paths), a
    for r in done:
        clone = data / r["RepoPath"]
        assert git_out(clone, "rev-parse", "HEAD") == r["LatestGitCommitSHA"] == heads[r["RepoURL"]]
        assert git_out(clone, "remote", "get-url", "origin") == r["RepoURL"]
    by_url = {r["RepoURL"]: r["RepoPath"] for r in done}
    assert by_url[f"{gitlab_server.url}/group/sub/tool"] == "modelzoo/repos/group/sub/tool"
    assert by_url[f"{gitlab_server.url}/group/sub2/project"] == "modelzoo/repos/group/sub2/project"
    assert by_url[f"{gitlab_server.url}/group/project"] == "modelzoo/repos/group/project"
    assert by_url[f"{gitlab_server.url}/solo"] == "modelzoo/repos/solo"
    assert by_url[f"{gitlab_server.url}/a/b/c/d/e/f/g/h/i/j"] == "modelzoo/repos/a/b/c/d/e/f/g/h%2Fi%2Fj"
    # One path on two hosts: whichever came first has it, the other its "~<hash>" sibling.
    pair = sorted(by_url[f"{s.url}/group/sub/project"] for s in (gitlab_server, other_server))
    assert pair[0] == "modelzoo/repos/group/sub/project" and pair[1].startswith(pair[0] + "%7E")
    assert list((data / "modelzoo/repos/.incoming").iterdir()) == []
    assert [(r["RepoPath"], r["CloneStatus"]) for r in again] == [(p, "unchanged") for p in paths]


MIRROR = "https://mirror.example/gh"  # a mirror whose base URL carries a path


@pytest.mark.parametrize("hub, replica_class, setting, clone", [
    ("tfhub", TfhubReplica, "PTM_TFHUB_REPO_URL", "tfhub/repos/tensorflow/tfhub.dev"),
    ("openvino", OpenvinoReplica, "PTM_OPENVINO_REPO_URL", "openvino/repos/openvinotoolkit/open_model_zoo"),
])
def test_a_shared_repository_behind_a_prefixed_mirror_is_cloned_where_the_docs_say(
        tmp_path, hub, replica_class, setting, clone):
    with replica_class(tmp_path / "git") as replica:
        repo_url = f"{MIRROR}/{replica.repo}"
        # git fetches the mirror's URL from the replica (which serves the repository at /<owner>/<name>).
        result = run_crawl(hub, tmp_path, args={"limit": 2}, settings={**replica.settings(), setting: repo_url},
                           env=insteadof_env(MIRROR, replica.url))
    assert len(result.items) == 2
    for item in result.items:
        assert (item["RepoURL"], item["RepoPath"], item["CloneStatus"]) == (repo_url, clone, "cloned")
    assert git_out(result.data_dir / clone, "remote", "get-url", "origin") == repo_url
    assert not (result.data_dir / hub / "repos" / "gh").exists()


def tfhub_record(repo_url):
    from ptmscrape.mappers.tfhub import map_raw
    from spiders.tfhub import parse_doc
    from tests.replicas.tfhub import FIXTURES

    path = "assets/docs/google/models/albert_base/3.md"
    page = {**parse_doc((FIXTURES / path).read_text(), path), "path": path}
    return map_raw(RawModelItem("tfhub", "google/albert_base/3", "http://x", page, {"repo_url": repo_url}))


def openvino_record(repo_url):
    from ptmscrape.mappers.openvino import map_raw
    from spiders.openvino import load_yaml
    from tests.replicas.openvino import FIXTURES

    model_dir = "models/public/resnet-50-pytorch"
    payload = {"group": "public", "name": "resnet-50-pytorch", "folder": "resnet-50-pytorch", "model_dir": model_dir,
               "model": load_yaml((FIXTURES / model_dir / "model.yml").read_text())}
    return map_raw(RawModelItem("openvino", "public/resnet-50-pytorch", "http://x", payload, {"repo_url": repo_url}))


def onnx_record(repo_url):
    from ptmscrape.mappers.onnxmodelzoo import map_raw

    model_dir = "validated/vision/classification/resnet"
    payload = {"kind": "readme_row", "model_dir": model_dir, "anchor": "image_classification",
               "row": {"name": "ResNet50", "downloads": [{"path": f"{model_dir}/model/resnet50-v1-12.onnx",
                                                          "column": "Download"}]}}
    return map_raw(RawModelItem("onnxmodelzoo", "x", "http://x", payload, {"repo_url": repo_url}))


@pytest.mark.parametrize("record, clone", [
    (tfhub_record, "tfhub/repos/tensorflow/tfhub.dev"),
    (openvino_record, "openvino/repos/openvinotoolkit/open_model_zoo"),
    (onnx_record, "onnxmodelzoo/repos/onnx/models"),
])
def test_the_clone_stage_takes_a_shared_repositorys_folder_from_the_mapper(tmp_path, record, clone):
    from ptmscrape.gitrepo import Git, GitPolicy

    cloner = Cloner(DatasetTree(tmp_path / "data"), Git(GitPolicy()), concurrency=1)
    hub, repo = clone.split("/repos/")
    for url in (f"https://github.com/{repo}", f"{MIRROR}/{repo}", f"{MIRROR}/{repo}.git"):
        mapped = record(url)
        assert mapped["RepoURL"] == url and mapped["RepoPath"] == clone, url
        assert cloner._planned_dir(hub, url, mapped["RepoPath"]) == clone, url
    # Without the mapper's folder the URL's path would name it, mirror prefix and all.
    assert cloner._planned_dir(hub, f"{MIRROR}/{repo}", None) == f"{hub}/repos/gh/{repo}"


def test_payload_files_are_named_by_the_hubs_id():
    assert paths.metadata_file_of("huggingface", "openai-community/gpt2") == \
        "huggingface/json/metadata/openai-community/gpt2.json"
    assert paths.metadata_file_of("pytorchhub", "facebookresearch_WSL-Images_resnext") == \
        "pytorchhub/json/metadata/_/facebookresearch_WSL-Images_resnext.json"
    assert paths.metadata_file_of("hub", "../..") == "hub/json/metadata/%2E./%2E..json"
    assert paths.repo_dir_of("huggingface", "gpt2") == "huggingface/repos/_/gpt2"


def test_hostile_url_paths_and_ids_stay_single_safe_segments():
    from ptmscrape.gitrepo import path_segments

    for url, expected in [
        ("https://gitlab.com/group/sub/project.git", "h/repos/group/sub/project"),
        ("https://host/.incoming/x", "h/repos/%2Eincoming/x"),  # never the scratch folder
        ("https://host/a/.git", "h/repos/a/%2Egit"),
        ("https://host/%2F/x%00", "h/repos/%252F/x%2500"),
        ("https://host/" + "/".join("abcdefghijk"), "h/repos/a/b/c/d/e/f/g/h%2Fi%2Fj%2Fk"),
    ]:
        assert paths.repo_dir_at("h", path_segments(url)) == expected, url
    for model_id in ("../..", "./x", "-rf/--upload-pack=touch", "a" * 500):
        relative = paths.repo_dir_of("h", model_id)
        parts = relative.split("/")
        assert len(parts) == 4 and parts[:2] == ["h", "repos"] and not {"..", "."} & set(parts)
        assert all(len(p) <= 120 for p in parts)


def test_spellings_of_one_repository_share_one_index_key_and_other_repositories_do_not():
    """The repository index's key (``normalize_url``): one repository reached by two hubs spelled
    two ways is cloned once. GitHub and GitLab paths are case-blind; other hosts' are not."""
    from ptmscrape.gitrepo import normalize_url

    for spelling in ("https://github.com/Owner/Repo", "https://github.com/owner/repo.git",
                     "https://www.github.com/owner/repo/", "HTTPS://GitHub.com/OWNER/repo.git/"):
        assert normalize_url(spelling) == "https://github.com/owner/repo", spelling
    assert normalize_url("https://gitlab.com/Group/Sub/Project.git") == "https://gitlab.com/group/sub/project"
    assert normalize_url("https://huggingface.co/Org/Model.git") == "https://huggingface.co/Org/Model"
    assert normalize_url("https://huggingface.co/Org/Model") != normalize_url("https://huggingface.co/org/model")
    assert normalize_url("http://127.0.0.1:8080/o/r") != normalize_url("http://127.0.0.1:9090/o/r")


def test_a_clone_landing_where_another_process_put_another_repository_is_refused(tmp_path):
    from ptmscrape.gitrepo import DirectoryTaken, Git, GitPolicy

    host = GitHost(tmp_path / "git")
    first, second = host.add_repo("one/repo", {"a": "1\n"}), host.add_repo("two/repo", {"b": "2\n"})
    git = Git(GitPolicy(allow_protocols=("http",)))
    target = tmp_path / "data/repos/repo"
    with Replica() as server:
        host.mount(server)
        assert git.clone(f"{server.url}/one/repo", target, tmp_path / "scratch") == first
        # The same repository landing again (another worker was first): theirs is used.
        assert git.clone(f"{server.url}/one/repo.git", target, tmp_path / "scratch") == first
        with pytest.raises(DirectoryTaken):
            git.clone(f"{server.url}/two/repo", target, tmp_path / "scratch")
    assert git_out(target, "rev-parse", "HEAD") == first != second
    assert list((tmp_path / "scratch").iterdir()) == []


@pytest.mark.parametrize("jobdir", [False, True])
def test_a_model_whose_clone_the_crawls_close_came_before(tmp_path, jobdir):
    """Without a JOBDIR it is stored without a clone, saying why, for the next crawl to clone; in a JOBDIR
    job it is dropped and the page that gave it is handed to the job (model_not_stored) to be
    fetched again on resume. Both are counted."""
    from scrapy.exceptions import DropItem

    from ptmscrape import signals as ptm_signals

    settings = {"PTM_DATA_DIR": str(tmp_path / "data"), "PTM_GIT_ALLOW_PROTOCOL": "https:http"}
    if jobdir:
        settings["JOBDIR"] = str(tmp_path / "job")
    crawler = project_crawler(ModelzooSpider, settings)
    crawler.spider = ModelzooSpider.from_crawler(crawler)
    saved = []
    crawler.signals.connect(lambda reason, request: saved.append((reason, request)),
                            signal=ptm_signals.model_not_stored, weak=False)
    record = zoo_record(crawler, "m", "http://127.0.0.1:9/acme/repo")  # never asked: the job is not started
    record.raw.request = page = object()
    stage = ClonePipeline.from_crawler(crawler)
    stage.cloner.stopping = lambda: True  # the crawl is closing
    stage.open_spider()
    try:
        if jobdir:
            with pytest.raises(DropItem, match="modelzoo:m: the crawl stopped before its clone"):
                asyncio.run(stage.process_item(record))
        else:
            stored = asyncio.run(stage.process_item(record))
    finally:
        stage.close_spider()
    stats = crawler.stats
    assert stats.get_value("ptm/clone/deferred") == 1 and stats.get_value("ptm/clone/cloned") is None
    if jobdir:
        assert saved == [("the crawl stopped before its clone", page)]
    else:
        assert saved == []
        assert (stored["CloneStatus"], stored["RepoPath"]) == ("skipped: the crawl stopped before its clone", None)
        assert stats.get_value("ptm/clone/skipped") == 1
