"""Real ``scrapy crawl huggingface`` runs (subprocess) against the local Hugging Face replica."""

import subprocess

from jsonschema import Draft202012Validator

from ptmscrape.dataset.payloads import read_payload
from ptmscrape.dataset.tree import DatasetTree
from ptmscrape.items import load_schema
from tests.crawl import run_crawl
from tests.replicas.server import Reply

VALIDATOR = Draft202012Validator(load_schema())
PAGES_OF_5 = {"PTM_HUGGINGFACE_PAGE_SIZE": 5}


def settings(hub, **extra):
    return {"PTM_HUGGINGFACE_URL": hub.url, **PAGES_OF_5, **extra}


def head(repo_dir):
    return subprocess.run(["git", "-C", str(repo_dir), "rev-parse", "HEAD"], capture_output=True,
                          text=True, check=True).stdout.strip()


def git_requests(hub):
    return hub.replica.count("GET", r"/info/refs") + hub.replica.count("POST", r"/git-upload-pack")


def test_crawl_pages_maps_stores_and_clones_every_model(tmp_path, hf_replica):
    result = run_crawl("huggingface", tmp_path, settings=settings(hf_replica))
    items = result.items
    models = hf_replica.models

    assert sorted(i["ModelOwner"] + "/" + i["ModelName"] for i in items) == sorted(models)
    assert len({i["id"] for i in items}) == len(models) == 12
    assert hf_replica.replica.count("GET", r"^/api/models\?") == 3  # 5 + 5 + 2, cursor-paged
    for item in items:
        assert list(VALIDATOR.iter_errors(item)) == []
        model = models[f"{item['ModelOwner']}/{item['ModelName']}"]
        assert item["CloneStatus"] == "cloned"
        repo = result.data_dir / item["RepoPath"]
        assert item["RepoPath"] == f"huggingface/repos/{item['ModelOwner']}/{item['ModelName']}"
        assert head(repo) == item["LatestGitCommitSHA"] == model["sha"]
        # LFS weights stay pointers by default
        assert (repo / "model.safetensors").read_text().startswith("version https://git-lfs.github.com/spec/v1")
        payload = read_payload(DatasetTree(result.data_dir), item["ModelHub"]["MetadataFilePath"])
        assert payload["id"] == model["id"] and payload["_id"] == model["_id"]

    records = result.records("huggingface")
    assert sorted(r["id"] for r in records) == sorted(i["id"] for i in items)
    snapshots = list((result.data_dir / "huggingface/snapshots").glob("*.jsonl"))
    assert len(snapshots) == 1 and len(snapshots[0].read_text().splitlines()) == 12
    assert list((result.data_dir / "huggingface/repos/.incoming").iterdir()) == []
    stats = result.stats
    assert stats["finish_reason"] == "finished"
    assert stats["ptm/clone/cloned"] == stats["ptm/store/records"] == stats["item_scraped_count"] == 12


def test_recrawl_updates_in_place_and_fetches_only_changed_repos(tmp_path, hf_replica):
    data = tmp_path / "data"
    run_crawl("huggingface", tmp_path, settings=settings(hf_replica), data_dir=data, out_name="1.jsonl")
    before = git_requests(hf_replica)

    second = run_crawl("huggingface", tmp_path, settings=settings(hf_replica), data_dir=data, out_name="2.jsonl")
    assert {i["CloneStatus"] for i in second.items} == {"unchanged"}
    assert git_requests(hf_replica) == before  # hub SHA == local HEAD: no git traffic at all

    changed = "acme-research/vit-tiny-demo"
    new_sha = hf_replica.update_repo(changed, {"README.md": "# new card\n"})
    third = run_crawl("huggingface", tmp_path, settings=settings(hf_replica), data_dir=data, out_name="3.jsonl")
    status = {f"{i['ModelOwner']}/{i['ModelName']}": i for i in third.items}
    assert status[changed]["CloneStatus"] == "updated"
    assert head(data / status[changed]["RepoPath"]) == status[changed]["LatestGitCommitSHA"] == new_sha
    assert {i["CloneStatus"] for n, i in status.items() if n != changed} == {"unchanged"}

    records = third.records("huggingface")
    assert len(records) == len({r["id"] for r in records}) == 12  # updated, never duplicated
    assert next(r for r in records if r["ModelName"] == "vit-tiny-demo")["LatestGitCommitSHA"] == new_sha
    assert len(list((data / "huggingface/snapshots").glob("*.jsonl"))) == 3


def test_limit_stops_listing_and_items(tmp_path, hf_replica):
    result = run_crawl("huggingface", tmp_path, args={"limit": 7}, settings=settings(hf_replica, PTM_CLONE=0))
    assert len(result.items) == 7
    assert hf_replica.replica.count("GET", r"^/api/models\?") == 2
    # the most downloaded first (sort=downloads, direction=-1)
    downloads = [i["Downloads"] for i in result.items]
    assert downloads == sorted(downloads, reverse=True)


def test_renamed_model_is_followed_and_recorded_under_its_new_id(tmp_path, hf_replica):
    result = run_crawl("huggingface", tmp_path, args={"models": "bert-base-uncased"},
                       settings=settings(hf_replica))
    (item,) = result.items
    assert hf_replica.replica.count("GET", r"^/api/models/bert-base-uncased$") == 1
    assert (item["ModelOwner"], item["ModelName"]) == ("google-bert", "bert-base-uncased")
    assert item["RepoURL"] == f"{hf_replica.url}/google-bert/bert-base-uncased"
    assert head(result.data_dir / item["RepoPath"]) == item["LatestGitCommitSHA"]
    assert result.stats["downloader/response_status_count/307"] == 1


def test_clone_off_records_the_hub_sha_and_touches_no_git(tmp_path, hf_replica):
    result = run_crawl("huggingface", tmp_path, settings=settings(hf_replica, PTM_CLONE=0))
    assert {(i["CloneStatus"], i["RepoPath"]) for i in result.items} == {("skipped", None)}
    shas = {i["LatestGitCommitSHA"] for i in result.items}
    assert shas == {m["sha"] for m in hf_replica.models.values()}
    assert git_requests(hf_replica) == 0
    assert not (result.data_dir / "huggingface/repos").exists()


def test_lfs_weights_are_fetched_when_asked(tmp_path, hf_replica):
    result = run_crawl("huggingface", tmp_path, args={"limit": 1},
                       settings=settings(hf_replica, PTM_CLONE_LFS=1))
    (item,) = result.items
    weights = (result.data_dir / item["RepoPath"] / "model.safetensors").read_bytes()
    assert weights.startswith(b"weights of ") and item["CloneStatus"] == "cloned"


def test_shallow_clone_with_depth(tmp_path, hf_replica):
    hf_replica.update_repo("acme-research/vit-tiny-demo", {"README.md": "# v2\n"})
    result = run_crawl("huggingface", tmp_path, args={"models": "acme-research/vit-tiny-demo"},
                       settings=settings(hf_replica, PTM_CLONE_DEPTH=1))
    repo = result.data_dir / result.items[0]["RepoPath"]
    count = subprocess.run(["git", "-C", str(repo), "rev-list", "--count", "HEAD"], capture_output=True,
                           text=True, check=True).stdout.strip()
    assert count == "1"


def test_429_waits_what_the_hub_says_then_goes_on(tmp_path, hf_replica):
    routes = hf_replica.replica.routes
    method, pattern, listing = next(r for r in routes if r[1].pattern == "/api/models")
    calls = []

    def limited_once(req, m):
        calls.append(1)
        if len(calls) == 2:  # the second page is rate limited once
            return Reply.text("Too Many Requests", 429, headers={"RateLimit": '"api";r=0;t=1'})
        return listing(req, m)

    routes[routes.index((method, pattern, listing))] = (method, pattern, limited_once)
    result = run_crawl("huggingface", tmp_path, settings=settings(hf_replica, PTM_CLONE=0))
    assert len(result.items) == 12
    assert result.stats["ptm/ratelimit/waits"] == 1
    assert result.stats["ptm/ratelimit/wait_seconds"] == 1
    assert "waiting 1.0s as the hub asks" in result.log


def test_a_next_page_the_scheduler_failed_to_take_at_the_headers_is_still_crawled(tmp_path, hf_replica):
    """The first next page fails to be scheduled where its page's headers arrive: it was the end of
    the listing, and the crawl still finished with exit status 0."""
    result = run_crawl("huggingface", tmp_path, settings=settings(
        hf_replica, PTM_CLONE=0, SCHEDULER="tests.probes.SchedulerFailingOnce"))
    assert "Could not schedule the next listing page" in result.log
    assert "ConnectionError('probe: the scheduler failed once')" in result.log
    names = sorted(m["id"].split("/")[-1] for m in hf_replica.models.values())
    assert sorted(i["ModelName"] for i in result.items) == names
