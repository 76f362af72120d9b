"""Real ``scrapy crawl ollama`` runs (subprocess) against the local Ollama site and registry, both
behind base URLs with path prefixes: listing -> tags pages -> manifests, limit, failures, faults,
removed models."""

import hashlib
import json

import pytest
from jsonschema import Draft202012Validator

from ptmscrape.dataset.payloads import read_payload
from ptmscrape.dataset.tree import DatasetTree
from ptmscrape.items import load_schema
from tests.crawl import read_jsonl, run_crawl
from tests.replicas.faults import FaultPlan, inject
from tests.replicas.ollama import FIXTURES, OllamaReplica, fixture_models, manifest_bytes

VALIDATOR = Draft202012Validator(load_schema())
FAST = {"PTM_RETRY_BACKOFF": 0.01, "PTM_RETRY_BACKOFF_MAX": 0.05, "PTM_RATELIMIT_DEFAULT_WAIT": 0.05}


@pytest.fixture
def hub():
    with OllamaReplica(site_prefix="/mirror/site", registry_prefix="/mirror/registry") as hub:
        yield hub


def by_name(rows):
    return {r["ModelName"]: r for r in rows}


def test_crawl_records_every_model_with_its_tags_manifests(tmp_path, hub):
    result = run_crawl("ollama", tmp_path, settings=hub.settings())
    models = fixture_models()
    items = by_name(result.items)
    assert sorted(items) == sorted(models) and len(items) == 5
    assert sorted(hub.page_requests()) == sorted(["/mirror/site/library"] + [
        f"/mirror/site/library/{m}/tags" for m in models])
    assert sorted(hub.manifest_requests()) == sorted(
        f"/mirror/registry/v2/library/{m}/manifests/{t}" for m, tags in models.items() for t in tags)

    records = by_name(result.records("ollama"))
    assert sorted(records) == sorted(models)
    for name, record in records.items():
        assert list(VALIDATOR.iter_errors(record)) == [], name
        assert record["ModelURL"] == f"{hub.base_url}/library/{name}"
        assert record["CloneStatus"] == "skipped: the hub has no git repository"
        assert sorted(v["Name"] for v in record["ModelVersions"]) == models[name]
        for version in record["ModelVersions"]:
            served = manifest_bytes(name, version["Name"])
            assert version["Digest"] == "sha256:" + hashlib.sha256(served).hexdigest()
            assert [f["Digest"] for f in version["Files"][1:]] == [
                layer["digest"] for layer in json.loads(served)["layers"]]
        payload = read_payload(DatasetTree(result.data_dir), record["ModelHub"]["MetadataFilePath"])
        assert payload["Name"] == name and len(payload["Tags"]) == len(models[name])
    assert records["llava"]["ModelVersions"][0]["Files"][2]["Name"] == "projector"
    assert records["nomic-embed-text"]["Tags"] == ["embedding"]
    assert result.stats["finish_reason"] == "finished" and "ptm/pages/failed" not in result.stats
    assert result.stats["ptm/store/records"] == result.stats["ptm/clone/skipped"] == 5


def test_limit_gives_that_many_records_and_pages(tmp_path, hub):
    result = run_crawl("ollama", tmp_path, args={"limit": 2}, settings=hub.settings())
    assert sorted(by_name(result.items)) == ["gemma2", "llama3.2"]  # the first two listed
    assert len(hub.page_requests()) == 3
    assert all("/llama3.2/" in p or "/gemma2/" in p for p in hub.manifest_requests())


def test_a_tag_gone_from_the_registry_is_reported_and_its_model_kept(tmp_path, hub):
    hub.gone_manifests.add("magistral:24b")
    data = tmp_path / "data"
    # The tags page lists the tag, the registry has no manifest for it: a page not found, so the
    # record is incomplete and the crawl exits 1 (README "Exit status"), with every model stored.
    first = run_crawl("ollama", tmp_path, settings=hub.settings(), data_dir=data, out_name="1.jsonl", check=False)
    assert first.returncode == 1 and "Traceback" not in first.log
    assert first.log.rstrip().endswith("Crawl verdict: exit status 1: 1 page not found (HTTP 404)")
    assert first.stats["finish_reason"] == "failed_pages" and first.stats["ptm/verdict/exit_status"] == 1
    assert sorted(by_name(first.records("ollama"))) == sorted(fixture_models())
    hub.pages["/library.html"] = (FIXTURES / "library.html").read_text().replace('title="llava"', 'title="llava2"')
    result = run_crawl("ollama", tmp_path, settings={**hub.settings(), **FAST}, data_dir=data, out_name="2.jsonl",
                       check=False)
    assert result.returncode == 1 and "Traceback" not in result.log
    assert "Crawl verdict: exit status 1: 2 pages not found (HTTP 404)" in result.log
    items = by_name(result.items)
    assert [v["Error"] for v in items["magistral"]["ModelVersions"]] == [None, "HTTP 404", None]
    assert result.stats["ptm/pages/failed/HTTP 404"] == 2  # the gone tag, and llava2's tags page
    assert result.stats["ptm/pages/not_found"] == 2
    assert f"Page not found: {hub.registry_url}/v2/library/magistral/manifests/24b (HTTP 404)" in result.log
    # A crawl that lost pages cannot tell a removed model (llava) from one it did not reach.
    assert "ptm/store/removed" not in result.stats and "1 page(s) failed" not in result.log
    assert "not reported as removed: 2 page(s) failed" in result.log


def test_a_model_gone_from_the_library_is_reported_after_a_complete_crawl(tmp_path, hub):
    data = tmp_path / "data"
    run_crawl("ollama", tmp_path, settings=hub.settings(), data_dir=data, out_name="1.jsonl")
    listing = (FIXTURES / "library.html").read_text()
    start = listing.index('    <li x-test-model', listing.index('title="gemma2"') - 400)
    end = listing.index("</li>", start) + len("</li>\n")
    hub.pages["/library.html"] = listing[:start] + listing[end:]
    second = run_crawl("ollama", tmp_path, settings=hub.settings(), data_dir=data, out_name="2.jsonl")
    assert "gemma2" not in by_name(second.items) and second.stats["ptm/store/removed"] == 1
    (report,) = sorted((data / "ollama").glob("removed-*.txt"))
    assert report.read_text().splitlines()[1].startswith("library/gemma2\t")
    assert len(read_jsonl(data / "ollama/ollama.jsonl")) == 5


def test_under_faults_every_model_is_stored_exactly_once_with_every_manifest(tmp_path, hub):
    faults = inject(hub.replica, FaultPlan(seed=3, rates={"5xx": .2, "429": .1, "truncate": .15,
                                                         "malformed": .15, "reset": .1, "cut": .1},
                                           healthy_after=4))
    result = run_crawl("ollama", tmp_path, settings={**hub.settings(), **FAST})
    assert faults.injected, "the plan injected no fault: pick another seed"
    assert sorted(by_name(result.items)) == sorted(by_name(result.records("ollama"))) == sorted(fixture_models())
    for record in result.items:
        assert all(v["Digest"] and not v["Error"] for v in record["ModelVersions"]), record["ModelName"]
    assert result.stats["finish_reason"] == "finished" and "ptm/pages/failed" not in result.stats


def test_unprefixed_base_urls_work_too(tmp_path):
    with OllamaReplica() as hub:
        result = run_crawl("ollama", tmp_path, args={"limit": 1}, settings=hub.settings())
    (item,) = result.items
    assert item["ModelURL"] == f"{hub.url}/library/llama3.2" and len(item["ModelVersions"]) == 3


def test_a_crawl_paused_mid_model_resumes_with_the_tags_it_had_gathered(tmp_path, hub):
    """The tags gathered so far travel in the queued manifest request, so a JOBDIR keeps them."""
    import signal
    from collections import Counter

    from tests.crawl import crawl_command
    from tests.crawl_control import BackgroundCrawl, count_lines, hold

    data, jobdir = tmp_path / "data", tmp_path / "job"
    settings = {**hub.settings(), "JOBDIR": jobdir}
    gate = hold(hub.replica, "GET", hub._manifest,
                lambda req, m, n: (m.group("model"), m.group("tag")) == ("magistral", "24b"))
    cmd = crawl_command("ollama", tmp_path / "1.jsonl", data, tmp_path / "1.stats.json", settings=settings)
    crawl = BackgroundCrawl(cmd, tmp_path / "1.log")
    snapshots = lambda: list((data / "ollama/snapshots").glob("*.jsonl"))  # noqa: E731
    crawl.wait_until(lambda: gate.reached.is_set() and count_lines(snapshots()) == 4, "4 models stored")
    crawl.proc.send_signal(signal.SIGTERM)
    crawl.wait_until(lambda: "shutting down gracefully" in crawl.log, "the graceful stop")
    gate.open()  # magistral:24b (in flight) is answered; the request for its last tag is saved
    assert crawl.wait() == 1  # paused, not finished (README "Exit status")
    assert "exit status 1: the crawl stopped before the end (finish reason shutdown)" in crawl.log
    paused = json.loads((tmp_path / "1.stats.json").read_text())
    assert paused["finish_reason"] == "shutdown" and paused["ptm/store/records"] == 4
    assert paused["ptm/verdict/exit_status"] == 1

    resumed = run_crawl("ollama", tmp_path, settings=settings, data_dir=data, out_name="2.jsonl")
    assert "Resuming crawl (1 requests scheduled)" in resumed.log
    (magistral,) = resumed.items
    assert magistral["ModelName"] == "magistral"
    assert [v["Name"] for v in magistral["ModelVersions"]] == ["latest", "24b", "24b-small-2506-q8_0"]
    assert all(v["Digest"] and not v["Error"] for v in magistral["ModelVersions"])
    assert set(Counter(hub.manifest_requests()).values()) == {1}  # no manifest fetched twice
    assert sorted(by_name(read_jsonl(data / "ollama/ollama.jsonl"))) == sorted(fixture_models())
