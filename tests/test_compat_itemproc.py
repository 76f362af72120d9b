"""``ptmscrape/compat/itemproc.py``: the item pipeline chain with Scrapy's order, arguments, drops
and warnings, without naming every stage for every item."""

from __future__ import annotations

import asyncio
import warnings

import pytest
import scrapy
from scrapy.exceptions import DropItem, ScrapyDeprecationWarning
from scrapy.pipelines import ItemPipelineManager as ScrapyManager
from scrapy.utils.test import get_crawler
from twisted.internet.defer import succeed

import ptmscrape.compat.itemproc as itemproc
from ptmscrape.compat.itemproc import ItemPipelineManager
from spiders.huggingface import HuggingfaceSpider
from tests.crawl import project_crawler


class _Spider(scrapy.Spider):
    name = "t"


class Plain:
    def process_item(self, item):
        return {**item, "trail": [*item["trail"], "plain"]}


class Coroutine:
    async def process_item(self, item):
        await asyncio.sleep(0)
        return {**item, "trail": [*item["trail"], "coroutine"]}


class Deferred:
    def process_item(self, item):
        return succeed({**item, "trail": [*item["trail"], "deferred"]})


class WithSpider:
    def process_item(self, item, spider):
        return {**item, "trail": [*item["trail"], f"spider {spider.name}"]}


class Drops:
    async def process_item(self, item):
        if item["id"] == "drop me":
            raise DropItem("dropped")
        return item


def _run(manager_cls, items):
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        crawler = get_crawler(_Spider)
        crawler.spider = crawler._create_spider()
        stages = [Plain(), Coroutine(), Deferred(), WithSpider(), Drops()]
        manager = manager_cls(*stages, crawler=crawler)

        async def process_all():
            out = []
            for item in items:
                try:
                    out.append(await manager.process_item_async(item))
                except DropItem as exc:
                    out.append(f"DropItem: {exc}")
            return out

        results = asyncio.run(process_all())
    return results, sorted({str(w.message) for w in caught if issubclass(w.category, ScrapyDeprecationWarning)})


def test_same_items_drops_and_warnings_as_scrapys():
    items = [{"id": "a", "trail": []}, {"id": "drop me", "trail": []}]
    ours = _run(ItemPipelineManager, items)
    assert ours == _run(ScrapyManager, items)
    results, deprecations = ours
    assert results == [{"id": "a", "trail": ["plain", "coroutine", "deferred", "spider t"]}, "DropItem: dropped"]
    assert any("returned a Deferred" in d for d in deprecations)
    assert any("requires a spider argument" in d for d in deprecations)


def test_stages_are_named_only_to_warn(monkeypatch):
    named = []
    monkeypatch.setattr(itemproc, "global_object_name", lambda obj: named.append(obj) or "x")
    crawler = get_crawler(_Spider)
    manager = ItemPipelineManager(Plain(), Coroutine(), crawler=crawler)
    assert asyncio.run(manager.process_item_async({"trail": []})) == {"trail": ["plain", "coroutine"]}
    assert named == []
    with pytest.warns(ScrapyDeprecationWarning, match="returned a Deferred"):
        asyncio.run(ItemPipelineManager(Deferred(), crawler=crawler).process_item_async({"trail": []}))
    assert len(named) == 1


def test_the_project_uses_it():
    crawler = project_crawler(HuggingfaceSpider)
    assert crawler.settings["ITEM_PROCESSOR"] == "ptmscrape.compat.itemproc.ItemPipelineManager"
