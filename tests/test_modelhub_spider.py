"""Modelhub: the index callback on fixture responses (the mapper: ``test_modelhub_mapper.py``)."""

import json

import pytest
from scrapy.http import TextResponse

from ptmscrape.items import RawModelItem
from spiders.modelhub import ModelhubSpider
from tests.helpers import spider_maker, start_requests, text_response
from tests.replicas.modelhub import fixture_index_text, fixture_models

INDEX = "https://raw.example/modelhub-ai/modelhub/master/models.json"

make_spider = spider_maker(ModelhubSpider, {"PTM_MODELHUB_INDEX_URL": INDEX})


def index_response(body: str | bytes) -> TextResponse:
    return text_response(INDEX, body, headers={"Content-Type": "text/plain; charset=utf-8"})


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
    assert spider.crawler.stats.get_value(f"ptm/pages/failed/{reason}") == 1


def test_junk_entries_still_become_items_for_the_mapper_to_reject():
    body = json.dumps([by_name("tiny-squeeze"), "oops", {"name": "no-id"}])
    items = list(make_spider().parse_index(index_response(body)))
    assert [i.model_id for i in items] == ["6f1c2d3e-4a5b-4c6d-8e7f-9a0b1c2d3e4f", "<not an object>", "no-id"]
