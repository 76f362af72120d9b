"""The JSON Lines exporter's shortcut writes exactly what Scrapy's own exporter writes."""

from __future__ import annotations

import io

import pytest
from scrapy.exporters import JsonLinesItemExporter as ScrapyExporter

from ptmscrape.exporters import JsonLinesItemExporter
from ptmscrape.items import PTMRecord, RawModelItem
from ptmscrape.mappers.huggingface import map_raw
from tests.replicas.huggingface import fixture_models, synthetic_models


def _items():
    records = [PTMRecord(map_raw(RawModelItem("huggingface", str(m.get("id")), "http://x", m,
                                              {"base_url": "http://127.0.0.1:1"})))
               for m in fixture_models() + synthetic_models(20)]
    odd = PTMRecord({"ModelName": "ünïcode \u2028 \x01 \"quoted\"", "Downloads": None, "Tags": []})
    raw = RawModelItem("huggingface", "a/b", "http://x", {"id": "a/b", "n": 1.5})
    return [*records, odd, {"plain": "dict"}, raw]


def _export(cls, items, **options) -> bytes:
    out = io.BytesIO()
    exporter = cls(out, **options)
    exporter.start_exporting()
    for item in items:
        exporter.export_item(item)
    exporter.finish_exporting()
    return out.getvalue()


@pytest.mark.parametrize("options", [
    {"encoding": "utf-8"},
    {},
    {"encoding": "utf-8", "fields_to_export": ["ModelName", "id"]},
    {"encoding": "utf-8", "indent": 2},
])
def test_same_bytes_as_scrapys_exporter(options):
    items = _items()
    expected = _export(ScrapyExporter, items, **options)
    assert expected.count(b"\n") >= len(items)
    assert _export(JsonLinesItemExporter, items, **options) == expected


def test_project_uses_it_for_json_lines_feeds():
    import ptmscrape.settings as project

    assert project.FEED_EXPORTERS["jsonl"] == "ptmscrape.exporters.JsonLinesItemExporter"


def test_csv_flattens_nested_keys_and_writes_lists_as_json():
    import csv
    import json

    from ptmscrape.exporters import CsvItemExporter, flatten

    record = PTMRecord({"id": 7, "ModelHub": {"ModelHubName": "hf", "Inner": {"Deep": None}},
                        "Datasets": [{"DatasetName": "squad, v2", "DatasetOwner": None}], "Tags": ["a\nb", 'q"'],
                        "Gated": False, "License": None})
    assert flatten(record) == {"id": 7, "ModelHub.ModelHubName": "hf", "ModelHub.Inner.Deep": None,
                               "Datasets": '[{"DatasetName": "squad, v2", "DatasetOwner": null}]',
                               "Tags": '["a\\nb", "q\\""]', "Gated": False, "License": None}
    rows = list(csv.DictReader(io.StringIO(_export(CsvItemExporter, [record]).decode(), newline="")))
    assert rows == [{"id": "7", "ModelHub.ModelHubName": "hf", "ModelHub.Inner.Deep": "",
                     "Datasets": '[{"DatasetName": "squad, v2", "DatasetOwner": null}]',
                     "Tags": '["a\\nb", "q\\""]', "Gated": "False", "License": ""}]
    assert json.loads(rows[0]["Tags"]) == ["a\nb", 'q"']


def test_an_item_that_fails_to_encode_leaves_nothing_behind_for_the_next():
    inner = {"bad": object()}
    failing = PTMRecord({"id": 1, "inner": inner})
    circular = PTMRecord({"id": 2})
    circular["self"] = circular
    outputs, errors = [], []
    for cls in (ScrapyExporter, JsonLinesItemExporter):
        out = io.BytesIO()
        exporter = cls(out, encoding="utf-8")
        inner["bad"] = object()
        caught = []
        for item in (failing, circular):
            with pytest.raises((TypeError, ValueError)) as info:
                exporter.export_item(item)
            caught.append((type(info.value), str(info.value)))
        errors.append(caught)
        del inner["bad"]  # the same containers, now encodable: no marker of the failed call remains
        exporter.export_item(PTMRecord({"id": 3, "inner": inner}))
        exporter.export_item(failing)
        outputs.append(out.getvalue())
    assert errors[0] == errors[1]
    assert errors[0][1] == (ValueError, "Circular reference detected")
    assert outputs[0] == outputs[1]
    assert outputs[0].count(b"\n") == 2
