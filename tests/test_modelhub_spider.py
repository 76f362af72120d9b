"""Modelhub: the index callback (fixture responses) and the mapper (records against the schema)."""

import asyncio
import json

import pytest
from jsonschema import Draft202012Validator
from scrapy.http import Request, TextResponse

from ptmscrape.items import RawModelItem, load_schema
from ptmscrape.mappers.common import MappingError, stable_id
from ptmscrape.mappers.modelhub import map_raw
from spiders.modelhub import ModelhubSpider
from tests.crawl import project_crawler
from tests.replicas.modelhub import fixture_index_text, fixture_models

VALIDATOR = Draft202012Validator(load_schema())
INDEX = "https://raw.example/modelhub-ai/modelhub/master/models.json"


def make_spider(**kwargs):
    crawler = project_crawler(ModelhubSpider, {"PTM_MODELHUB_INDEX_URL": INDEX})
    return ModelhubSpider.from_crawler(crawler, **kwargs)


def index_response(body: str | bytes) -> TextResponse:
    body = body.encode() if isinstance(body, str) else body
    return TextResponse(INDEX, body=body, headers={"Content-Type": "text/plain; charset=utf-8"},
                        request=Request(INDEX))


def start_requests(spider):
    async def collect():
        return [r async for r in spider.start()]
    return asyncio.run(collect())


def raw(entry):
    return RawModelItem(hub="modelhub", model_id=str(entry.get("id")), url=INDEX, payload=entry,
                        context={"base_url": INDEX})


def by_name(name):
    return next(m for m in fixture_models() if m["name"] == name)


# -- spider --------------------------------------------------------------------------------------

def test_start_is_one_request_for_the_index_setting():
    (request,) = start_requests(make_spider())
    assert request.url == INDEX and request.callback.__name__ == "parse_index"
    assert start_requests(make_spider(limit="0")) == []


def test_index_yields_one_untouched_item_per_entry_in_order():
    spider = make_spider()
    items = list(spider.parse_index(index_response(fixture_index_text())))
    assert all(isinstance(i, RawModelItem) for i in items)
    assert [i.model_id for i in items] == [
        "6f1c2d3e-4a5b-4c6d-8e7f-9a0b1c2d3e4f", "0003", "0004",
        "a0b1c2d3-e4f5-4a6b-9c8d-7e6f5a4b3c2d", "3c9e8f7a-1b2c-4d3e-a5f6-0718293a4b5c",
        "d4e5f6a7-b8c9-4d0e-8f1a-2b3c4d5e6f70",
    ]
    assert items[1].payload == {
        "id": "0003", "name": "colab_kidney",
        "task_extended": "Kidney segmentation - Google CoLab Notebook - Segmentation",
        "github": "https://github.com/modelhub-ai/colab_kidney", "github_branch": "master",
        "backend": ["colab", "pytorch"],
    }
    assert items[3].payload["gpu"] is True
    assert {i.hub for i in items} == {"modelhub"} and items[0].url == INDEX


def test_limit_stops_the_index():
    items = list(make_spider(limit="2").parse_index(index_response(fixture_index_text())))
    assert len(items) == 2


@pytest.mark.parametrize("body, reason", [
    (b"<html>rate limited</html>", "malformed JSON"),
    (b'{"models": []}', "unexpected JSON"),
])
def test_a_malformed_index_is_reported_not_raised(body, reason):
    spider = make_spider()
    assert list(spider.parse_index(index_response(body))) == []
    assert spider.crawler.stats.get_value(f"ptm/pages/bad/{reason}") == 1


def test_junk_entries_still_become_items_for_the_mapper_to_reject():
    body = json.dumps([by_name("tiny-squeeze"), "oops", {"name": "no-id"}])
    items = list(make_spider().parse_index(index_response(body)))
    assert [i.model_id for i in items] == ["6f1c2d3e-4a5b-4c6d-8e7f-9a0b1c2d3e4f", "<not an object>", "no-id"]


# -- mapper --------------------------------------------------------------------------------------

def test_every_fixture_entry_maps_to_a_valid_record():
    for entry in fixture_models():
        record = map_raw(raw(entry))
        assert [e.message for e in VALIDATOR.iter_errors(record)] == [], entry["name"]


def test_record_fields_of_a_uuid_model():
    r = map_raw(raw(by_name("brats-cascade")))
    assert r["id"] == stable_id("modelhub", "a0b1c2d3-e4f5-4a6b-9c8d-7e6f5a4b3c2d")
    assert r["ModelHub"] == {
        "ModelHubName": "modelhub", "ModelHubURL": "https://modelhub.ai",
        "MetadataFilePath": "modelhub/json/metadata/_/a0b1c2d3-e4f5-4a6b-9c8d-7e6f5a4b3c2d.json",
        "MetadataObjectID": "a0b1c2d3-e4f5-4a6b-9c8d-7e6f5a4b3c2d",
    }
    assert (r["ModelName"], r["ModelOwner"]) == ("brats-cascade", "modelhub-ai")
    assert r["ModelURL"] == r["RepoURL"] == "https://github.com/modelhub-ai/brats-cascade"
    assert r["ModelOwnerURL"] == "https://github.com/modelhub-ai"
    assert r["ModelTask"] == "Brain Tumor Segmentation on MRI"
    assert (r["Tags"], r["Library"]) == (["pytorch", "gpu"], "pytorch")
    assert r["RepoBranch"] == "master" and r["LatestGitCommitSHA"] is None
    assert r["CloneStatus"] == "pending"


def test_short_ids_other_owners_and_colab_only_backends():
    kidney = map_raw(raw(by_name("colab_kidney")))
    assert kidney["ModelHub"]["MetadataObjectID"] == "0003"
    assert kidney["id"] == stable_id("modelhub", "0003")
    assert (kidney["Tags"], kidney["Library"]) == (["colab", "pytorch"], "pytorch")
    spleen = map_raw(raw(by_name("colab_spleen")))
    assert (spleen["Tags"], spleen["Library"]) == (["colab"], None)
    other = map_raw(raw(by_name("ToothMetalArtifact")))
    assert (other["ModelOwner"], other["ModelOwnerURL"]) == ("radlab-replica", "https://github.com/radlab-replica")
    assert kidney["ModelHub"]["MetadataFilePath"] == "modelhub/json/metadata/_/0003.json"  # the hub's id


def test_repo_url_spellings_are_normalised():
    entry = dict(by_name("tiny-squeeze"), github="https://github.com/modelhub-ai/tiny-squeeze.git/")
    assert map_raw(raw(entry))["RepoURL"] == "https://github.com/modelhub-ai/tiny-squeeze"


def test_an_entry_without_a_repository_maps_with_no_repo():
    entry = {k: v for k, v in by_name("tiny-squeeze").items() if k not in ("github", "github_branch")}
    r = map_raw(raw(entry))
    assert (r["RepoURL"], r["RepoBranch"], r["ModelOwner"], r["ModelURL"]) == (None, None, "", "")
    assert list(VALIDATOR.iter_errors(r)) == []


@pytest.mark.parametrize("entry, reason", [
    ("oops", "index entry is str"),
    ({"name": "x", "github": "https://github.com/a/b"}, "missing or malformed 'id'"),
    ({"id": 7, "name": "x"}, "missing or malformed 'id'"),
    ({"id": "0005", "name": ""}, "missing or malformed 'name'"),
    ({"id": "0005", "name": "x", "github": "modelhub-ai/x"}, "'github' is not a repository URL"),
])
def test_unmappable_entries_say_why(entry, reason):
    with pytest.raises(MappingError, match=reason):
        map_raw(RawModelItem(hub="modelhub", model_id="?", url=INDEX, payload=entry))
