"""The validate stage's fast path (fastjsonschema) must give jsonschema's verdict on every record."""

from __future__ import annotations

import asyncio
import copy

import pytest
from jsonschema import Draft202012Validator

from pipelines.validate import InvalidRecord, ValidatePipeline
from ptmscrape.items import PTMRecord, RawModelItem, load_schema
from ptmscrape.mappers.huggingface import map_raw
from spiders.huggingface import HuggingfaceSpider
from tests.crawl import project_crawler
from tests.replicas.huggingface import synthetic_models

ODD_VALUES = [None, True, False, 0, 1, 1.0, 1.5, -1, 2**53, 2**60, "", "x", "0" * 40, "1.1.0",
              "failed: x", "2024-01-01T00:00:00Z", [], ["a"], ["a", "a"], [1], {}, {"a": 1}]


def _records() -> list[dict]:
    base = map_raw(RawModelItem("huggingface", "m", "http://x", synthetic_models(1)[0],
                                {"base_url": "http://127.0.0.1:1"}))
    out = [base]
    for key in list(base):
        for value in ODD_VALUES:
            out.append({**base, key: value})
        out.append({k: v for k, v in base.items() if k != key})
    for key in base["ModelHub"]:
        for value in ODD_VALUES:
            changed = copy.deepcopy(base)
            changed["ModelHub"][key] = value
            out.append(changed)
    for value in ODD_VALUES:
        changed = copy.deepcopy(base)
        changed["Datasets"] = [{"DatasetName": value, "DatasetOwner": "o", "DatasetURL": "u",
                                "DatasetOwnerURL": "v"}]
        out.append(changed)
    out.append({**base, "Unexpected": 1})
    return out


@pytest.fixture
def pipeline():
    return ValidatePipeline(project_crawler(HuggingfaceSpider))


def test_fast_path_agrees_with_jsonschema_on_every_variant(pipeline):
    authority = Draft202012Validator(load_schema())
    verdicts = {True: 0, False: 0}
    for record in _records():
        expected = authority.is_valid(record)
        try:
            asyncio.run(pipeline.process_item(PTMRecord(record)))
            got = True
        except InvalidRecord:
            got = False
        assert got == expected, record
        verdicts[got] += 1
    assert verdicts[True] > 20 and verdicts[False] > 100  # both sides really exercised


def test_the_quick_check_is_never_looser_than_jsonschema_and_clears_mapped_records():
    from ptmscrape.quick_check import compile_quick_check

    schema = load_schema()
    authority, quick = Draft202012Validator(schema), compile_quick_check(schema)
    records = _records()
    extra = {"ModelPaperDOIs": ["a", "a"], "Downloads": 1.0, "Tags": ["a", 1], "CloneStatus": "failed: \n",
             "LatestGitCommitSHA": "0" * 40 + "\n", "ModelName": "", "SchemaVersion": "1.1.1", "id": 0,
             "ModelHub": None, "Datasets": [{"DatasetName": "d"}], "Metrics": {"top1": 1}, "Opset": 0}
    records += [{**records[0], key: value} for key, value in extra.items()]
    cleared = [r for r in records if quick(r)]
    assert all(authority.is_valid(r) for r in cleared)
    assert records[0] in cleared and 20 < len(cleared) < len(records)
    # Valid, but not what it can vouch for: left to the next checker.
    assert authority.is_valid({**records[0], "Downloads": 1.0}) and not quick({**records[0], "Downloads": 1.0})
    hub_records = [map_raw(RawModelItem("huggingface", m["id"], "http://x", m, {"base_url": "http://127.0.0.1:1"}))
                   for m in synthetic_models(200)]
    assert all(quick(r) for r in hub_records)


def test_property_names_are_data_in_the_written_check():
    """Property names become literals in the code the quick check writes out; any name works."""
    from ptmscrape.quick_check import compile_quick_check

    odd = ["a'b", 'c"d', "e\\f", "g\nh", "é 🙂", "x)}: return True\n#", ""]
    schema = {"type": "object", "additionalProperties": False, "required": odd[:2],
              "properties": {name: {"type": "string"} for name in odd}}
    authority, quick = Draft202012Validator(schema), compile_quick_check(schema)
    valid = {name: "v" for name in odd}
    cases = [valid, {k: v for k, v in valid.items() if k != odd[0]}, {k: v for k, v in valid.items() if k != odd[-1]},
             {**valid, odd[5]: 1}, {**valid, odd[6]: None}, {**valid, "other": "v"}, {}, None, []]
    assert [quick(case) for case in cases] == [authority.is_valid(case) for case in cases] \
        == [True, False, True, False, False, False, False, False, False]
