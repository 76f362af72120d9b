"""Per-model shortcuts of the map and clone stages give the same values as the long way."""

from __future__ import annotations

import asyncio
import datetime as dt
import random
import re

import pytest

import pipelines.map as map_stage
from pipelines.map import MapPipeline, UnmappableModel
from ptmscrape.gitrepo import without_credentials
from ptmscrape.items import RawModelItem
from ptmscrape.mappers import common
from spiders.huggingface import HuggingfaceSpider
from tests.crawl import project_crawler
from tests.replicas.huggingface import synthetic_models


def test_crawled_at_is_utc_now_to_the_second_across_second_boundaries(monkeypatch):
    clock = iter([1_700_000_000.0, 1_700_000_000.999, 1_700_000_001.0, 1_700_000_001.5, 1_700_000_059.99,
                  1_700_000_060.0, 1_699_999_999.9, 2_000_000_000.25])
    monkeypatch.setattr(common, "_now", (-1, ""))
    for t in clock:
        monkeypatch.setattr(common.time, "time", lambda t=t: t)
        expected = dt.datetime.fromtimestamp(t, dt.UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
        assert common.crawled_at() == expected


def test_crawled_at_matches_dataset_utc_now_in_a_record():
    from ptmscrape.dataset.paths import utc_now

    before = utc_now()
    record = common.new_record(hub="h", hub_url="u", object_id="o", owner="w", name="n", model_url="m",
                               owner_url="")
    assert before <= record["CrawledAt"] <= utc_now()
    assert re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ", record["CrawledAt"])


def test_new_record_has_every_schema_key_in_order_and_fresh_lists():
    from ptmscrape.items import load_schema

    def fresh():
        return common.new_record(hub="h", hub_url="u", object_id="o", owner="w", name="n", model_url="m",
                                 owner_url="")

    first, second = fresh(), fresh()
    schema_keys = list(load_schema()["properties"])
    assert sorted(first) == sorted(schema_keys) and list(first) == list(second)
    own = ["id", "SchemaVersion", "ModelHub", "ModelName", "ModelOwner", "ModelURL", "ModelOwnerURL", "Datasets",
           "ModelPaperDOIs", "LatestGitCommitSHA", "RepoURL", "RepoBranch", "RepoSubPath", "RepoPath",
           "CloneStatus", "CrawledAt"]
    assert list(first) == own + [key for key in schema_keys if key not in own]
    for key, value in first.items():
        if isinstance(value, list):
            assert value == [] and value is not second[key], key
    first["Tags"].append("changed")
    assert fresh()["Tags"] == [] and second["Files"] == [] and first["License"] is None


_OLD_CREDENTIALS = re.compile(r"^([A-Za-z][A-Za-z0-9+.\-]*://)[^/?#]*@")


def test_without_credentials_shortcut_agrees_with_the_pattern():
    rng = random.Random(7)
    alphabet = "ab:/@?#.-+%1 "
    urls = ["https://u:p@h/x", "https://h/x@y", "http://h/a?b=c@d", "git@github.com:a/b", "", "@",
            "https://@h/x", "ftp://a@b@c/d"]
    urls += ["".join(rng.choice(alphabet) for _ in range(rng.randrange(20))) for _ in range(5000)]
    urls += ["https://" + u for u in urls[:2000]]
    for url in urls:
        assert without_credentials(url) == _OLD_CREDENTIALS.sub(r"\1***@", url), url


def test_map_builds_the_error_label_only_for_an_error(monkeypatch):
    crawler = project_crawler(HuggingfaceSpider)
    stage = MapPipeline.from_crawler(crawler)
    good = RawModelItem("huggingface", "o/m", "u", synthetic_models(1)[0], {"base_url": "http://h"})
    bad = RawModelItem("huggingface", "bad\x1b[31m/x", "u", {"id": 42}, {"base_url": "http://h"})
    labels = []
    real = map_stage.printable
    monkeypatch.setattr(map_stage, "printable", lambda text, *a: labels.append(text) or real(text, *a))
    assert asyncio.run(stage.process_item(good))["ModelName"]
    assert labels == []
    with pytest.raises(UnmappableModel, match=r"huggingface:bad\\x1b\[31m/x: missing or malformed 'id'"):
        asyncio.run(stage.process_item(bad))
    assert labels == ["huggingface:bad\x1b[31m/x"]
    assert crawler.stats.get_value("ptm/map/mapped") == 1 and crawler.stats.get_value("ptm/map/failed") == 1
