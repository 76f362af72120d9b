"""One key set for every hub (issue 11, item 5): every record carries every key of the schema,
null or [] when the hub has no value, so a table of all hubs has one set of columns. The key list
comes from the schema, so a key added there is carried by every hub's records with no code change."""

from __future__ import annotations

import contextlib
import os

from ptmscrape.items import RawModelItem, load_schema
from ptmscrape.mappers import common, modelhub
from tests.crawl import run_crawl
from tests.replicas.demo import REPLICAS, available

SCHEMA_KEYS = set(load_schema()["properties"])


def test_records_of_all_five_hubs_carry_exactly_the_schemas_keys(tmp_path):
    starters = available()
    assert set(starters) == set(REPLICAS)  # all five hubs
    keys = {}
    for hub, start in starters.items():
        with contextlib.ExitStack() as stack:
            replica, settings, env = start(tmp_path / "replicas" / hub)
            stack.enter_context(replica)
            result = run_crawl(hub, tmp_path / hub, args={"limit": 3}, env={**os.environ, **env},
                               settings={**settings, "PTM_CLONE": 0})
        assert result.items, hub
        for item in result.items + result.records(hub):
            keys.setdefault(hub, set()).add(frozenset(item))
    assert {hub: found for hub, found in keys.items()} == {hub: {frozenset(SCHEMA_KEYS)} for hub in REPLICAS}


def test_a_key_new_in_the_schema_is_null_or_empty_in_every_record(monkeypatch):
    schema = load_schema()
    schema["properties"]["NewScalar"] = {"type": ["string", "null"]}
    schema["properties"]["NewList"] = {"type": "array", "items": {"type": "string"}}
    monkeypatch.setattr(common, "load_schema", lambda: schema)
    monkeypatch.setattr(common, "SCHEMA_KEYS", common._schema_keys())
    entry = {"id": "0001", "name": "m", "github": "https://github.com/o/m", "backend": ["pytorch"]}
    record = modelhub.map_raw(RawModelItem("modelhub", "0001", "https://x.invalid/models.json", entry))
    assert set(record) == set(schema["properties"])
    assert (record["NewScalar"], record["NewList"], record["Downloads"], record["Languages"]) == (None, [], None, [])
    assert next(iter(record)) == "id"  # stored lines start with the id (the store's fast path)


def test_the_published_schema_names_the_version_its_records_carry():
    # A reader fetching or caching the schema by its $id must get the version records say they follow.
    from ptmscrape.items import SCHEMA_VERSION

    schema = load_schema()
    assert schema["properties"]["SchemaVersion"]["const"] == SCHEMA_VERSION
    assert schema["$id"].endswith(f"/{SCHEMA_VERSION}.json"), schema["$id"]
