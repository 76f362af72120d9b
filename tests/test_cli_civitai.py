"""Real ``scrapy crawl civitai`` runs (subprocess) against the local Civitai replica, behind a base
URL with a path prefix: cursor paging, limit, faults, hostile ids, removed models."""


import pytest
from jsonschema import Draft202012Validator

from ptmscrape.dataset.payloads import read_payload
from ptmscrape.dataset.tree import DatasetTree
from ptmscrape.items import load_schema
from tests.crawl import read_jsonl, run_crawl
from tests.replicas.civitai import CivitaiReplica, fixture_models, synthetic_models
from tests.replicas.faults import FaultPlan, inject

VALIDATOR = Draft202012Validator(load_schema())
PAGE = 3
FAST = {"PTM_RETRY_BACKOFF": 0.01, "PTM_RETRY_BACKOFF_MAX": 0.05, "PTM_RATELIMIT_DEFAULT_WAIT": 0.05}


def models():
    return fixture_models() + synthetic_models(4)  # 11 models: 4 pages of 3


@pytest.fixture
def hub():
    with CivitaiReplica(models(), prefix="/mirror/civitai") as hub:
        yield hub


def ids(rows):
    return sorted(r["ModelHub"]["MetadataObjectID"] for r in rows)


def test_crawl_pages_through_cursors_and_stores_every_model_valid(tmp_path, hub):
    result = run_crawl("civitai", tmp_path, settings=hub.settings(PTM_CIVITAI_PAGE_SIZE=PAGE))
    expected = [str(m["id"]) for m in hub.visible()]
    assert ids(result.items) == sorted(expected) and len(expected) == 11

    # Four listing pages, all under the base path: the API's nextPage (on https://civitai.com) is
    # not followed, its cursor is; no page number is ever built.
    listing = hub.listing_requests()
    assert len(listing) == 4 and all(p.startswith("/mirror/civitai/api/v1/models?") for p in listing)
    assert all("page=" not in p for p in listing) and sum("cursor=" in p for p in listing) == 3
    assert all("nsfw=true" in p for p in listing)

    records = {r["ModelHub"]["MetadataObjectID"]: r for r in result.records("civitai")}
    assert sorted(records) == sorted(expected)
    served = {str(m["id"]): m for m in hub.models}
    for model_id, record in records.items():
        assert list(VALIDATOR.iter_errors(record)) == [], model_id
        assert record["CloneStatus"] == "skipped: the hub has no git repository"
        assert record["ModelURL"] == f"{hub.base_url}/models/{model_id}"
        payload = read_payload(DatasetTree(result.data_dir), record["ModelHub"]["MetadataFilePath"])
        assert payload == served[model_id]
    assert not (result.data_dir / "civitai/repos").exists() or not any(
        p for p in (result.data_dir / "civitai/repos").iterdir() if p.name != ".incoming")
    assert records["9001"]["NSFW"] is True  # NSFW models are listed (nsfw=true), flagged as data
    stats = result.stats
    assert stats["finish_reason"] == "finished" and stats["ptm/clone/skipped"] == 11
    assert stats["ptm/store/records"] == stats["item_scraped_count"] == 11
    assert "ptm/pages/failed" not in stats


def test_limit_gives_that_many_records_and_stops_paging(tmp_path, hub):
    result = run_crawl("civitai", tmp_path, args={"limit": 4}, settings=hub.settings(PTM_CIVITAI_PAGE_SIZE=PAGE))
    assert ids(result.items) == sorted(str(m["id"]) for m in hub.visible()[:4])
    assert len(hub.listing_requests()) == 2
    assert "not reported as removed: the crawl was narrowed by -a limit" in result.log


def test_next_page_urls_alone_lead_through_the_hub(tmp_path):
    with CivitaiReplica(models(), prefix="/p", cursor_in_metadata=False,
                        public_origin="http://127.0.0.1:9") as hub:  # nothing listens there
        result = run_crawl("civitai", tmp_path, settings=hub.settings(PTM_CIVITAI_PAGE_SIZE=4))
    assert ids(result.items) == sorted(str(m["id"]) for m in hub.visible())
    assert len(hub.listing_requests()) == 3 and "ptm/pages/failed" not in result.stats


def test_nsfw_false_leaves_nsfw_models_out(tmp_path, hub):
    result = run_crawl("civitai", tmp_path, args={"nsfw": "false"}, settings=hub.settings())
    assert "9001" not in ids(result.items) and len(result.items) == 10
    assert all("nsfw" not in p for p in hub.listing_requests())


def test_under_faults_every_model_is_stored_exactly_once(tmp_path, hub):
    faults = inject(hub.replica, FaultPlan(seed=5, rates={"5xx": .2, "429": .1, "truncate": .15,
                                                         "malformed": .15, "reset": .1, "cut": .1},
                                           healthy_after=4))
    result = run_crawl("civitai", tmp_path, settings=hub.settings(PTM_CIVITAI_PAGE_SIZE=PAGE, **FAST))
    assert faults.injected, "the plan injected no fault: pick another seed"
    expected = sorted(str(m["id"]) for m in hub.visible())
    assert ids(result.items) == ids(result.records("civitai")) == expected
    assert result.stats["finish_reason"] == "finished" and "ptm/pages/failed" not in result.stats


def test_hostile_models_are_dropped_or_kept_inside_the_data_dir(tmp_path):
    hostile = fixture_models()[:2]
    bad = [dict(hostile[0], id=i) for i in ("../../../etc/passwd", -5, True, None)]
    sneaky = dict(hostile[1], id=777, name="../../x", creator={"username": "../../../tmp/evil", "image": None})
    with CivitaiReplica(hostile + bad + [sneaky]) as hub:
        result = run_crawl("civitai", tmp_path, settings=hub.settings())
    assert ids(result.items) == sorted([str(hostile[0]["id"]), str(hostile[1]["id"]), "777"])
    assert result.stats["item_dropped_reasons_count/UnmappableModel"] == 4
    assert "Dropped: civitai:../../../etc/passwd: missing or malformed 'id'" in result.log
    record = next(r for r in result.records("civitai") if r["ModelHub"]["MetadataObjectID"] == "777")
    path = (result.data_dir / record["ModelHub"]["MetadataFilePath"].partition("#")[0]).resolve()
    assert path.is_file() and path.is_relative_to(result.data_dir.resolve())
    assert read_payload(DatasetTree(result.data_dir), record["ModelHub"]["MetadataFilePath"])["id"] == 777
    assert record["ModelOwner"] == "../../../tmp/evil"  # kept as data, never as a path
    assert not list(tmp_path.parent.glob("evil*"))


def test_a_model_gone_from_the_hub_is_reported_after_a_complete_crawl(tmp_path):
    data = tmp_path / "data"
    with CivitaiReplica(models()) as hub:
        run_crawl("civitai", tmp_path, settings=hub.settings(PTM_CIVITAI_PAGE_SIZE=PAGE), data_dir=data,
                  out_name="1.jsonl")
        hub.models = [m for m in hub.models if m["id"] != 7240]
        second = run_crawl("civitai", tmp_path, settings=hub.settings(PTM_CIVITAI_PAGE_SIZE=PAGE),
                           data_dir=data, out_name="2.jsonl")
    assert second.stats["ptm/store/removed"] == 1
    (report,) = sorted((data / "civitai").glob("removed-*.txt"))
    assert report.read_text().splitlines()[1].split("\t")[:2] == ["Meina/MeinaMix", str(
        next(r["id"] for r in read_jsonl(data / "civitai/civitai.jsonl") if r["ModelName"] == "MeinaMix"))]
    assert len(read_jsonl(data / "civitai/civitai.jsonl")) == 11  # nothing deleted
