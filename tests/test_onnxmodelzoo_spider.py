"""ONNX Model Zoo: index and per-model README callbacks on our fixture zoo (both layouts), and the
mapper."""

import asyncio
import logging
import pickle

import pytest
from jsonschema import Draft202012Validator
from scrapy.http import Request, TextResponse
from scrapy.utils.request import request_from_dict

from ptmscrape.items import RawModelItem, load_schema
from ptmscrape.mappers.common import MappingError
from ptmscrape.mappers.onnxmodelzoo import map_raw
from spiders.onnxmodelzoo import OnnxmodelzooSpider, folder, index_entries
from tests.crawl import project_crawler
from tests.replicas.onnx import FIXTURES, MODEL_DIRS, PLACEHOLDER_ROWS, model_dirs, prefix

VALIDATOR = Draft202012Validator(load_schema())
RAW = "https://raw.githubusercontent.com/onnx/models/main"
REPO = "https://github.com/onnx/models"
LAYOUTS = ["2023", "2025"]


def make_spider(**kwargs):
    crawler = project_crawler(OnnxmodelzooSpider, {"PTM_ONNX_RAW_URL": RAW, "PTM_ONNX_REPO_URL": REPO})
    spider = OnnxmodelzooSpider.from_crawler(crawler, **kwargs)
    crawler.spider = spider
    return spider


def text_response(url, body, request=None):
    body = body.encode() if isinstance(body, str) else body
    return TextResponse(url, body=body, encoding="utf-8", request=request or Request(url))


def index_requests(spider, layout, body=None):
    body = body if body is not None else (FIXTURES / layout / "README.md").read_bytes()
    return list(spider.parse_index(text_response(f"{RAW}/README.md", body)))


def model_payload(spider, request, layout, body=None):
    """The raw payload parse_model yields for one index request (its README from the fixtures)."""
    path = request.url.removeprefix(f"{RAW}/")
    body = body if body is not None else (FIXTURES / layout / path).read_bytes()
    (item,) = spider.parse_model(text_response(request.url, body, request), **request.cb_kwargs)
    assert isinstance(item, RawModelItem) and item.model_id == request.cb_kwargs["entry"]["model_dir"]
    return item


def crawl_fixtures(layout):
    """Index, then every model README: the raw items by model folder (without the layout prefix)."""
    spider = make_spider()
    items = [model_payload(spider, r, layout) for r in index_requests(spider, layout)]
    return {i.model_id.removeprefix(prefix(layout)): i for i in items}


def stat(spider, key):
    return spider.crawler.stats.get_value(key)


@pytest.fixture(scope="module", params=LAYOUTS)
def layout_items(request):
    return request.param, crawl_fixtures(request.param)


# -- the top-level README ------------------------------------------------------------------------

def test_start_is_the_top_level_readme():
    async def collect(spider):
        return [r async for r in spider.start()]
    (request,) = asyncio.run(collect(make_spider()))
    assert request.url == f"{RAW}/README.md" and request.callback.__name__ == "parse_index"
    assert asyncio.run(collect(make_spider(limit="0"))) == []


@pytest.mark.parametrize("layout", LAYOUTS)
def test_index_requests_each_linked_folder_once_and_skips_placeholders(layout):
    spider = make_spider()
    requests = index_requests(spider, layout)
    assert [r.url for r in requests] == [f"{RAW}/{d}/README.md" for d in model_dirs(layout)]
    assert all(r.callback.__name__ == "parse_model" for r in requests)
    assert stat(spider, "ptm/pages/rows_without_link") == PLACEHOLDER_ROWS
    entries = {r.cb_kwargs["entry"]["model_dir"].removeprefix(prefix(layout)): r.cb_kwargs["entry"]
               for r in requests}
    anchors = {d: e["anchor"] for d, e in entries.items()}
    assert anchors == {
        "vision/classification/pebblenet": "image_classification",
        "vision/classification/shardnet": "image_classification",
        "vision/classification/glyphdigits": "domain_based_image",  # a #### heading
        "vision/object_detection_segmentation/yolo-mini-coco": "object_detection",  # no trailing |
        "vision/object_detection_segmentation/segfcn": "object_detection",  # no </b>, has [contribute]
        "vision/object_detection_segmentation/duc-lite": "object_detection",
        "vision/body_analysis/age_bands": "body_analysis",
        "vision/super_resolution/upscale_cnn": "image_manipulation",
        "text/machine_comprehension/qa-bert-mini": "machine_comprehension",
        "text/machine_comprehension/t5-mini": "machine_comprehension",
    }
    assert entries["vision/classification/glyphdigits"]["category"] == "Domain-based Image Classification"
    duc = entries["vision/object_detection_segmentation/duc-lite"]
    assert duc["category"] == "Object Detection & Image Segmentation"
    # Two index rows share one folder: one entry, both model classes.
    shard = entries["vision/classification/shardnet"]["model_classes"]
    assert [c["name"] for c in shard] == ["ShardNet_V1", "ShardNet_V2"]
    segfcn = entries["vision/object_detection_segmentation/segfcn"]["model_classes"][0]
    assert segfcn == {
        "name": "SegFCN", "reference": "Pixel et al.", "reference_url": "https://example.org/papers/segfcn.pdf",
        "description": "A fully convolutional segmentation model trained end to end. contribute",
        "hf_space_url": "https://huggingface.co/spaces/onnx/SegFCN"}
    yolo = entries["vision/object_detection_segmentation/yolo-mini-coco"]["model_classes"][0]
    assert yolo["description"].endswith("Smaller and faster than its big brother.")
    assert yolo["hf_space_url"] is None
    glyph = entries["vision/classification/glyphdigits"]["model_classes"][0]
    assert glyph["reference_url"] == "https://example.org/tutorials/glyph-digits.ipynb"  # tab-padded cell


def test_index_limit_requests_that_many_folders():
    assert len(index_requests(make_spider(limit="3"), "2023")) == 3


def test_index_requests_can_be_saved_in_a_jobdir():
    spider = make_spider()
    for request in index_requests(spider, "2025"):
        restored = request_from_dict(pickle.loads(pickle.dumps(request.to_dict(spider=spider))), spider=spider)
        assert (restored.url, restored.callback, restored.cb_kwargs) == (request.url, request.callback,
                                                                         request.cb_kwargs)


def test_an_index_without_model_tables_is_reported():
    spider = make_spider()
    assert index_requests(spider, "2023", body="# ONNX Model Zoo\n\nUnder maintenance.\n") == []
    assert stat(spider, "ptm/pages/failed/no model tables") == 1


@pytest.mark.parametrize("target, expected", [
    ("vision/classification/resnet", "vision/classification/resnet"),
    ("validated/vision/classification/resnet/", "validated/vision/classification/resnet"),
    ("./vision/classification/resnet/README.md", "vision/classification/resnet"),
    ("/vision/a%20b", "vision/a b"),
    ("../elsewhere", None), ("https://github.com/onnx/models/tree/main/vision", None),
    ("contribute.md", "contribute.md"), ("#anchor", None), (".", None),
])
def test_folder_of_a_model_class_link(target, expected):
    assert folder(target) == expected


def test_index_entries_ignore_tables_that_are_not_model_class_tables():
    markdown = ("### A <a name=\"a\"/>\n|Model Class |Reference |\n|-|-|\n|<b>[X](x/dir)</b>|r|\n\n"
                "## Usage\n|File |What |\n|-|-|\n|[model.onnx](x/model)|the model|\n")
    entries, skipped = index_entries(markdown)
    assert list(entries) == ["x/dir"] and skipped == 0 and entries["x/dir"]["anchor"] == "a"


# -- the per-model READMEs -----------------------------------------------------------------------

# folder -> (download tables, variants, metric columns) in the 2023 fixtures
SHAPES = {
    "vision/classification/pebblenet": (3, 8, {"Top-1 accuracy (%)", "Top-5 accuracy (%)"}),
    "vision/classification/shardnet": (2, 4, {"Top-1 error", "Top-5 error"}),
    "vision/classification/glyphdigits": (1, 3, {"TOP-1 ERROR"}),
    "vision/object_detection_segmentation/yolo-mini-coco": (1, 1, set()),
    "vision/object_detection_segmentation/segfcn": (1, 3, {"Mean IoU"}),
    "vision/object_detection_segmentation/duc-lite": (1, 2, {"mIOU (%)"}),
    "vision/body_analysis/age_bands": (1, 2, set()),
    "vision/super_resolution/upscale_cnn": (1, 1, set()),
    "text/machine_comprehension/qa-bert-mini": (1, 3, {"Accuracy"}),
    "text/machine_comprehension/t5-mini": (1, 2, set()),
}


def test_every_linked_folder_gives_one_item(layout_items):
    layout, items = layout_items
    assert sorted(items) == sorted(MODEL_DIRS)


@pytest.mark.parametrize("model_dir", sorted(SHAPES))
def test_header_variants_give_download_tables_variants_and_metrics(model_dir):
    payload = crawl_fixtures("2023")[model_dir].payload
    tables, variants, metrics = SHAPES[model_dir]
    assert len(payload["tables"]) == tables
    assert len(payload["variants"]) == variants
    assert set().union(*(v["metrics"] for v in payload["variants"])) == metrics
    for variant in payload["variants"]:
        assert variant["downloads"] and variant["opset"] and variant["opset"].isdigit()
        assert all(d["path"].startswith(f"{model_dir}/model") for d in variant["downloads"])
    assert payload["table_problems"] == []


def test_pebblenet_tables_as_written_and_as_variants(layout_items):
    layout, items = layout_items
    payload = items["vision/classification/pebblenet"].payload
    folder_ = prefix(layout) + "vision/classification/pebblenet"
    assert payload["title"] == "PebbleNet" and payload["anchor"] == "image_classification"
    assert payload["readme_path"] == f"{folder_}/README.md"
    assert payload["readme_url"] == f"{RAW}/{folder_}/README.md" and payload["index_url"] == f"{RAW}/README.md"
    first = payload["tables"][0]
    assert first["line"] == 19 and first["header"][:2] == ["Model", "Download"]
    assert first["rows"][0] == {
        "Model": "PebbleNet18", "Download": "[41.2 MB](model/pebblenet18-v1-7.onnx)",
        "Download (with sample test data)": "[39.9 MB](model/pebblenet18-v1-7.tar.gz)",
        "ONNX version": "1.2.1", "Opset version": "7",
        "Top-1 accuracy (%)": "68.10", "Top-5 accuracy (%)": "88.05"}
    qdq = next(v for v in payload["variants"] if v["name"] == "PebbleNet50-qdq")
    assert qdq == {
        "name": "PebbleNet50-qdq", "name_url": None, "onnx_version": "1.10.0", "opset": "12", "dataset": None,
        "metrics": {"Top-1 accuracy (%)": "73.70"}, "line": 25, "table": 0,
        "downloads": [
            {"column": "Download", "size": "24.2 MB", "path": f"{folder_}/model/pebblenet50-v1-12-qdq.onnx"},
            {"column": "Download (with sample test data)", "size": "16.1 MB",
             "path": f"{folder_}/model/pebblenet50-v1-12-qdq.tar.gz"}]}
    caffe2 = [v for v in payload["variants"] if v["table"] == 1]
    assert [v["opset"] for v in caffe2] == ["3", "9"] and all(v["metrics"] == {} for v in caffe2)
    # The table inside <!-- --> and the "| like this |" line in the code block are not read.
    assert all("from the paper" not in v["name"] for v in payload["variants"])
    # The newest layout added a row.
    v2 = [v["name"] for v in payload["variants"] if v["table"] == 2]
    assert v2 == (["PebbleNet18-v2", "PebbleNet18-v2-int8"] if layout == "2025" else ["PebbleNet18-v2"])


def test_odd_columns_dataset_links_and_capitalisation():
    items = crawl_fixtures("2023")
    ages = items["vision/body_analysis/age_bands"].payload["variants"]
    assert [(v["name"], v["name_url"], v["dataset"]) for v in ages] == [
        ("tinynet_age_bands", "https://example.org/drive/age-bands-tinynet", "FaceAges"),
        ("widenet_age_bands_2019", "https://example.org/drive/age-bands-widenet", "FaceAges 2019")]
    assert ages[0]["downloads"] == [{"column": "Download", "size": "22 MB",
                                     "path": "vision/body_analysis/age_bands/models/age_bands_tinynet.onnx"}]
    (upscale,) = items["vision/super_resolution/upscale_cnn"].payload["variants"]  # "Opset Version"
    assert (upscale["onnx_version"], upscale["opset"]) == ("1.5.0", "10")
    duc = items["vision/object_detection_segmentation/duc-lite"].payload
    assert duc["variants"][0]["metrics"] == {"mIOU (%)": "76.40"}
    assert duc["tables"][0]["header"][5] == "[mIOU](#metric) (%)"  # as written
    t5 = items["text/machine_comprehension/t5-mini"].payload["variants"]  # rows without a trailing |
    assert [(v["name"], v["opset"]) for v in t5] == [("T5-Mini-encoder", "12"),
                                                     ("T5-Mini-decoder-with-lm-head", "12")]


def test_non_download_tables_and_rows_without_links_are_left_out():
    spider = make_spider()
    requests = {r.cb_kwargs["entry"]["model_dir"]: r for r in index_requests(spider, "2023")}
    segfcn = model_payload(spider, requests["vision/object_detection_segmentation/segfcn"], "2023").payload
    assert [t["header"][-1] for t in segfcn["tables"]] == ["Mean IoU"]  # not the two "mean IoU" tables
    before = stat(spider, "ptm/pages/rows_without_link")
    qa = model_payload(spider, requests["text/machine_comprehension/qa-bert-mini"], "2023").payload
    assert stat(spider, "ptm/pages/rows_without_link") == before + 1  # "(coming soon)" row
    assert [v["name"] for v in qa["variants"]] == ["QA-BERT-Mini", "QA-BERT-Mini", "QA-BERT-Mini-Classifier"]
    assert len(qa["tables"][0]["rows"]) == 4  # the table as written keeps it
    assert qa["variants"][2]["metrics"] == {"Accuracy": "MCC of 0.81"}
    assert qa["variants"][0]["metrics"] == {}  # empty accuracy cell
    assert len(qa["tables"]) == 1  # not the GLUE scores


def test_a_malformed_row_is_reported_and_the_rest_is_kept(caplog):
    spider = make_spider()
    request = index_requests(spider, "2023")[0]
    body = ("# Broken\n\n|Model|Download|ONNX version|Opset version|\n|-|-|-|-|\n"
            "|Good|[1 MB](model/good-7.onnx)|1.2|7|\n"
            "|Wide|[2 MB](model/wide-9.onnx)|1.4|9|extra|cells|\n"
            "|Short|[3 MB](model/short-11.onnx)|\n")
    with caplog.at_level(logging.WARNING):
        payload = model_payload(spider, request, "2023", body=body).payload
    assert [(v["name"], v["opset"]) for v in payload["variants"]] == [
        ("Good", "7"), ("Wide", "9"), ("Short", None)]
    assert payload["table_problems"] == ["line 6: 6 cells, the header has 4 (dropped: extra | cells)"]
    assert stat(spider, "ptm/pages/malformed_table_rows") == 1
    assert f"Malformed table row in {request.url}: line 6" in caplog.text


def test_a_readme_without_download_tables_still_makes_an_item():
    spider = make_spider()
    request = index_requests(spider, "2023")[0]
    payload = model_payload(spider, request, "2023", body="# PebbleNet\n\nModels are coming.\n").payload
    assert payload["tables"] == [] and payload["variants"] == [] and payload["title"] == "PebbleNet"


# -- mapper --------------------------------------------------------------------------------------

def test_every_fixture_model_maps_to_a_valid_record(layout_items):
    layout, items = layout_items
    records = {d: map_raw(item) for d, item in items.items()}
    for model_dir, record in records.items():
        assert list(VALIDATOR.iter_errors(record)) == [], model_dir
        assert record["RepoURL"] == REPO and record["RepoSubPath"] == prefix(layout) + model_dir
        assert record["ModelHub"]["MetadataObjectID"] == prefix(layout) + model_dir
        assert record["ModelURL"] == f"{REPO}/tree/HEAD/{prefix(layout)}{model_dir}"
        assert (record["ModelOwner"], record["ModelOwnerURL"], record["Library"]) == (
            "onnx", "https://github.com/onnx", "onnx")
    assert len({r["id"] for r in records.values()}) == len(records)
    assert len({r["ModelHub"]["MetadataFilePath"] for r in records.values()}) == len(records)


def test_record_fields_of_pebblenet_and_shardnet():
    items = crawl_fixtures("2023")
    pebble = map_raw(items["vision/classification/pebblenet"])
    assert (pebble["ModelName"], pebble["ModelTask"], pebble["ModelArchitecture"]) == (
        "PebbleNet", "image_classification", "PebbleNet")
    assert pebble["Tags"] == ["image_classification", "opset:3", "opset:7", "opset:9", "opset:12"]
    assert pebble["ModelPaperDOIs"] == ["10.48550/arXiv.2101.00042"]
    assert pebble["ModelHub"]["ModelHubURL"] == REPO
    assert pebble["LatestGitCommitSHA"] is None and pebble["CloneStatus"] == "pending"
    shard = map_raw(items["vision/classification/shardnet"])
    assert (shard["ModelName"], shard["ModelArchitecture"]) == ("ShardNet", "ShardNet_V1")
    # arXiv pdf link and abs link with a version: both DOIs, versions dropped.
    assert shard["ModelPaperDOIs"] == ["10.48550/arXiv.1902.01234", "10.48550/arXiv.1911.05678"]
    assert map_raw(items["vision/body_analysis/age_bands"])["ModelPaperDOIs"] == []  # not arXiv


def test_a_model_keeps_its_id_and_payload_file_when_it_moves_under_validated():
    old, new = crawl_fixtures("2023"), crawl_fixtures("2025")
    for model_dir in MODEL_DIRS:
        a, b = map_raw(old[model_dir]), map_raw(new[model_dir])
        assert a["id"] == b["id"]
        assert a["ModelHub"]["MetadataFilePath"] == b["ModelHub"]["MetadataFilePath"]
        assert a["ModelHub"]["MetadataObjectID"] != b["ModelHub"]["MetadataObjectID"]


def test_mapper_name_fallback_and_repository_from_context():
    item = crawl_fixtures("2023")["vision/classification/shardnet"]
    payload = {**item.payload, "title": None}
    record = map_raw(RawModelItem("onnxmodelzoo", item.model_id, item.url, payload,
                                  {"repo_url": "https://github.com/mirror-org/onnx-models/"}))
    assert record["ModelName"] == "ShardNet_V1"  # no README title: the first Model Class
    assert record["RepoURL"] == "https://github.com/mirror-org/onnx-models"
    assert (record["ModelOwner"], record["ModelOwnerURL"]) == ("mirror-org", "https://github.com/mirror-org")
    assert list(VALIDATOR.iter_errors(record)) == []


@pytest.mark.parametrize("payload, reason", [
    (["not", "an", "object"], "not an object"),
    ({"model_dir": "", "title": "X"}, "no model folder"),
    ({"model_dir": "a/b", "title": None, "model_classes": []}, "neither a README title"),
    ({"model_dir": "a/b", "title": 7, "model_classes": [{"name": None}]}, "neither a README title"),
])
def test_unmappable_payloads_name_the_reason(payload, reason):
    with pytest.raises(MappingError, match=reason):
        map_raw(RawModelItem("onnxmodelzoo", "a/b", RAW, payload))


def test_junk_in_optional_fields_is_tolerated():
    payload = {"model_dir": "a/b", "title": "Ok", "anchor": 5, "model_classes": ["junk", {"name": 3}],
               "variants": [None, {"opset": 12}, {"opset": "ONNX 9, ONNX.ML 1"}, {"opset": " 11 "}]}
    record = map_raw(RawModelItem("onnxmodelzoo", "a/b", RAW, payload))
    assert record["Tags"] == ["opset:11"] and record["ModelTask"] is None and record["ModelArchitecture"] is None
    assert list(VALIDATOR.iter_errors(record)) == []
