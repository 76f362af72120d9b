"""The JSON Lines exporter's shortcut writes exactly what Scrapy's own exporter writes."""

from __future__ import annotations

import copy
import io
import json

import pytest
from scrapy.exporters import JsonLinesItemExporter as ScrapyExporter

from ptmscrape.exporters import JsonLinesItemExporter
from ptmscrape.items import PTMRecord, RawModelItem
from ptmscrape.mappers.huggingface import map_raw
from tests.crawl import run_crawl
from tests.replicas.huggingface import HuggingFaceReplica, fixture_models, synthetic_models


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


def test_csv_keeps_a_record_with_a_lone_surrogate():
    import csv

    from ptmscrape.exporters import CsvItemExporter

    records = [PTMRecord({"id": 1, "ModelName": "a\ud800b", "Tags": ["t\udfff"]}),
               PTMRecord({"id": 2, "ModelName": "ok", "Tags": []})]
    rows = list(csv.DictReader(io.StringIO(_export(CsvItemExporter, records).decode(), newline="")))
    assert [r["id"] for r in rows] == ["1", "2"]
    assert rows[0]["ModelName"] == "a\\ud800b" and json.loads(rows[0]["Tags"]) == ["t\udfff"]


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


def test_an_item_with_a_lone_surrogate_is_written_with_non_ascii_escaped():
    """``"\\ud800"`` is valid JSON but no UTF-8: that item's line is ASCII JSON (valid UTF-8 that
    decodes to the same item), the lines of the others are Scrapy's, byte for byte."""
    normal = [_items()[0], PTMRecord({"id": 10, "ModelName": "ünï"})]
    odd = [PTMRecord({"id": 9, "ModelName": "a\ud800b", "Tags": ["ü", "\udfff"]}),
           RawModelItem("huggingface", "a/b", "http://x", {"id": "a/b", "s": "\ud800é"}, {})]
    with pytest.raises(UnicodeEncodeError):  # Scrapy's exporter: the item is lost from the feed
        _export(ScrapyExporter, odd[:1], encoding="utf-8")
    out = _export(JsonLinesItemExporter, [normal[0], *odd, normal[1]], encoding="utf-8")
    lines = out.decode("utf-8").splitlines(keepends=True)
    assert len(lines) == 4 and lines[1].isascii() and lines[2].isascii()
    assert json.loads(lines[1]) == {"id": 9, "ModelName": "a\ud800b", "Tags": ["ü", "\udfff"]}
    assert json.loads(lines[2])["payload"] == {"id": "a/b", "s": "\ud800é"}
    assert "".join(lines[1:3]).encode() == _export(ScrapyExporter, odd, encoding="utf-8", ensure_ascii=True)
    assert lines[0].encode() + lines[3].encode() == _export(ScrapyExporter, normal, encoding="utf-8")
    assert '"ünï"' in lines[3]  # the encoder of the feed is back after the escaped line


def test_a_crawl_keeps_a_record_with_a_lone_surrogate_in_its_feed(tmp_path):
    model = copy.deepcopy(fixture_models()[0])
    model.update(id="org/surrogate", modelId="org/surrogate", author="org", _id="64c1a2f0e1d2c3b4a5968704",
                 pipeline_tag="p\udfffq", tags=["lone\ud800x", "ok"])
    with HuggingFaceReplica([*fixture_models(), model], repos=False) as hub:
        result = run_crawl("huggingface", tmp_path, settings={"PTM_HUGGINGFACE_URL": hub.url, "PTM_CLONE": 0})
    assert "Error caught on signal handler" not in result.log
    feed = {r["ModelName"]: r for r in result.items}  # read as UTF-8
    assert sorted(feed) == sorted(r["ModelName"] for r in result.records("huggingface"))
    assert feed["surrogate"]["ModelTask"] == "p\udfffq" and "lone\ud800x" in feed["surrogate"]["Tags"]


def _csv_rows(data: bytes) -> list[dict[str, str]]:
    import csv

    return list(csv.DictReader(io.StringIO(data.decode(), newline="")))


HOSTILE_CELLS = ["=HYPERLINK(\"http://x\",\"y\")", "+1", "-2+3", "@SUM(A1)", "\tx", "\rx"]


def test_csv_guards_cells_a_spreadsheet_would_run_as_formulas():
    from ptmscrape.exporters import CsvItemExporter

    guarded = []
    records = [PTMRecord({"id": i, "ModelName": cell, "ModelHub": {"ModelHubName": cell},
                          "Tags": [cell], "Downloads": -5, "License": "mit=ok"})
               for i, cell in enumerate(HOSTILE_CELLS)]
    rows = _csv_rows(_export(CsvItemExporter, records, on_guarded=lambda: guarded.append(1)))
    assert [r["ModelName"] for r in rows] == ["'" + c for c in HOSTILE_CELLS]
    assert [r["ModelHub.ModelHubName"] for r in rows] == ["'" + c for c in HOSTILE_CELLS]
    # A list cell is JSON (starts with "["); a number is no text; "=" inside a cell runs nothing.
    assert [json.loads(r["Tags"]) for r in rows] == [[c] for c in HOSTILE_CELLS]
    assert {r["Downloads"] for r in rows} == {"-5"} and {r["License"] for r in rows} == {"mit=ok"}
    assert len(guarded) == 2 * len(HOSTILE_CELLS)


def test_csv_formula_guard_can_be_turned_off():
    from ptmscrape.exporters import CsvItemExporter

    records = [PTMRecord({"id": i, "ModelName": cell}) for i, cell in enumerate(HOSTILE_CELLS)]
    rows = _csv_rows(_export(CsvItemExporter, records, formula_guard=False))
    assert [r["ModelName"] for r in rows] == HOSTILE_CELLS


def test_csv_feed_of_a_crawl_is_guarded_and_counted(tmp_path):
    model = copy.deepcopy(fixture_models()[0])
    model.update(id="org/=cmd", modelId="org/=cmd", author="org", _id="64c1a2f0e1d2c3b4a5968705")
    with HuggingFaceReplica([*fixture_models(), model], repos=False) as hub:
        settings = {"PTM_HUGGINGFACE_URL": hub.url, "PTM_CLONE": 0}
        guarded = run_crawl("huggingface", tmp_path / "on", settings=settings, out_name="out.csv")
        exact = run_crawl("huggingface", tmp_path / "off", settings={**settings, "PTM_CSV_FORMULA_GUARD": 0},
                          out_name="out.csv")
    rows = _csv_rows(guarded.out.read_bytes())
    assert len(rows) == len(fixture_models()) + 1
    row = next(r for r in rows if r["ModelName"].endswith("=cmd"))
    assert row["ModelName"] == "'=cmd" and row["ModelOwner"] == "org"
    assert guarded.stats["ptm/feed/csv_cells_guarded"] >= 1
    assert [r["ModelName"] for r in guarded.records("huggingface") if "cmd" in r["ModelName"]] == ["=cmd"]
    assert "=cmd" in [r["ModelName"] for r in _csv_rows(exact.out.read_bytes())]
    assert "ptm/feed/csv_cells_guarded" not in exact.stats


def test_csv_columns_do_not_depend_on_the_first_records_objects():
    """The columns are the first record's: an ONNX record whose ``Metrics`` is ``{}`` (or null) gave
    no ``Metrics`` column, so every later model's accuracy figures were left out of the feed; a
    Civitai record with ``LicensePermissions`` null gave one column that the later records' flags
    (four keys) never filled. Open-keyed objects are one JSON cell now, fixed-keyed ones always
    their keys' columns."""
    import csv

    from ptmscrape.exporters import CsvItemExporter
    from ptmscrape.mappers.common import new_record

    def record(n, metrics, permissions):
        r = new_record(hub="onnxmodelzoo", hub_url="http://x", object_id=str(n), owner="o", name=f"m{n}",
                       model_url="http://x", owner_url="", stable_key=str(n), model_id=f"o/m{n}")
        r.update(Metrics=metrics, LicensePermissions=permissions)
        return PTMRecord(r)

    flags = {"AllowCommercialUse": ["Sell"], "AllowDerivatives": True, "AllowDifferentLicense": False,
             "AllowNoCredit": True}
    records = [record(1, {}, None), record(2, None, None),
               record(3, {"Top-1 accuracy (%)": "74.93"}, flags), record(4, {"Mean IoU": "64.2%"}, None)]
    rows = list(csv.DictReader(io.StringIO(_export(CsvItemExporter, records).decode(), newline="")))
    assert [r["Metrics"] for r in rows] == ["{}", "", '{"Top-1 accuracy (%)": "74.93"}', '{"Mean IoU": "64.2%"}']
    assert rows[2]["LicensePermissions.AllowCommercialUse"] == '["Sell"]'
    assert rows[2]["LicensePermissions.AllowDerivatives"] == "True"
    assert rows[2]["LicensePermissions.AllowDifferentLicense"] == "False"
    assert rows[0]["LicensePermissions.AllowNoCredit"] == "" and rows[3]["LicensePermissions.AllowNoCredit"] == ""
    assert "LicensePermissions" not in rows[0]
