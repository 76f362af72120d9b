"""ONNX Model Zoo: index and per-model README callbacks on our fixture zoo (both layouts); the mapper:
``test_onnxmodelzoo_mapper.py``."""

import json
import logging
import pickle
import re

import pytest
from scrapy.utils.request import request_from_dict

from ptmscrape.items import RawModelItem
from spiders.onnxmodelzoo import (
    OnnxmodelzooSpider,
    folder,
    generated_folders,
    index_entries,
    load_yaml,
    readme_license,
    readme_model_folders,
    readme_spdx_license,
    unlisted_entry,
)
from tests.helpers import fixture_response, spider_maker, start_requests, text_response
from tests.replicas.onnx import (
    FIXTURES,
    GENERATED_DIRS,
    MODEL_DIRS,
    PLACEHOLDER_ROWS,
    UNLISTED_DIRS,
    UNVERIFIED_DIRS,
    generated_model_file,
    model_dirs,
    prefix,
    unlisted_dirs,
)

RAW = "https://raw.githubusercontent.com/onnx/models/main"
REPO = "https://github.com/onnx/models"
TREE = "https://api.github.com/repos/onnx/models/git/trees/main?recursive=1"
LAYOUTS = ["2023", "2025"]


make_spider = spider_maker(OnnxmodelzooSpider, {"PTM_ONNX_RAW_URL": RAW, "PTM_ONNX_REPO_URL": REPO,
                                                 "PTM_ONNX_TREE_URL": TREE})


def index_requests(spider, layout, body=None):
    url = f"{RAW}/README.md"
    response = fixture_response(FIXTURES / layout / "README.md", url) if body is None else text_response(url, body)
    return list(spider.parse_index(response))


def model_items(spider, request, layout, body=None):
    """The raw items parse_model yields for one index request (its README from the fixtures)."""
    path = request.url.removeprefix(f"{RAW}/")
    response = (fixture_response(FIXTURES / layout / path, request.url, request) if body is None
                else text_response(request.url, body, request))
    items = list(spider.parse_model(response, **request.cb_kwargs))
    assert all(isinstance(i, RawModelItem) for i in items)
    return items


def crawl_fixtures(layout):
    """Index, then every model README: the raw items of each model folder (without the layout
    prefix), in table order."""
    spider = make_spider()
    return {r.cb_kwargs["entry"]["model_dir"].removeprefix(prefix(layout)): model_items(spider, r, layout)
            for r in index_requests(spider, layout)}


def rows(items):
    return [i.payload["row"] for i in items]


def stat(spider, key):
    return spider.crawler.stats.get_value(key)


@pytest.fixture(scope="module", params=LAYOUTS)
def layout_items(request):
    return request.param, crawl_fixtures(request.param)


# -- the top-level README ------------------------------------------------------------------------

def test_start_is_the_top_level_readme_and_the_file_tree():
    index, tree = start_requests(make_spider())
    assert index.url == f"{RAW}/README.md" and index.callback.__name__ == "parse_index"
    assert tree.url == TREE and tree.callback.__name__ == "parse_tree"
    assert start_requests(make_spider(limit="0")) == []


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


# -- the per-model READMEs: one item per model row ------------------------------------------------

# folder -> (download tables with model rows, model rows, metric columns) in the 2023 fixtures
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
# Rows the newest layout added: PebbleNet18-v2-int8 and Upscale_CNN-int8.
ROWS = {"2023": sum(n for _, n, _ in SHAPES.values()), "2025": sum(n for _, n, _ in SHAPES.values()) + 2}


def test_every_model_row_gives_one_item(layout_items):
    layout, items = layout_items
    assert sorted(items) == sorted(MODEL_DIRS)
    assert sum(len(v) for v in items.values()) == ROWS[layout] == {"2023": 29, "2025": 31}[layout]
    ids = [i.model_id for v in items.values() for i in v]
    assert len(set(ids)) == len(ids)  # each row's model file, as listed
    for model_dir, folder_items in items.items():
        for item in folder_items:
            assert item.model_id.startswith(prefix(layout) + model_dir + "/")
            assert item.payload["kind"] == "readme_row" and item.payload["model_dir"] == prefix(layout) + model_dir


@pytest.mark.parametrize("model_dir", sorted(SHAPES))
def test_header_variants_give_rows_and_metrics(model_dir):
    folder_rows = rows(crawl_fixtures("2023")[model_dir])
    tables, count, metrics = SHAPES[model_dir]
    assert len({r["table"] for r in folder_rows}) == tables
    assert len(folder_rows) == count
    assert set().union(*(r["metrics"] for r in folder_rows)) == metrics
    for row in folder_rows:
        assert row["downloads"] and row["opset"] and row["opset"].isdigit()
        assert all(d["path"].startswith(f"{model_dir}/model") for d in row["downloads"])


def test_pebblenet_rows_as_written_and_as_read(layout_items):
    layout, items = layout_items
    pebble = items["vision/classification/pebblenet"]
    folder_ = prefix(layout) + "vision/classification/pebblenet"
    first = pebble[0].payload
    assert first["title"] == "PebbleNet" and first["anchor"] == "image_classification"
    assert first["license"] == "Apache 2.0"  # the README's License section
    assert first["readme_path"] == f"{folder_}/README.md"
    assert first["readme_url"] == f"{RAW}/{folder_}/README.md" and first["index_url"] == f"{RAW}/README.md"
    assert first["table"]["line"] == 19 and first["table"]["header"][:2] == ["Model", "Download"]
    assert first["cells"] == {
        "Model": "PebbleNet18", "Download": "[41.2 MB](model/pebblenet18-v1-7.onnx)",
        "Download (with sample test data)": "[39.9 MB](model/pebblenet18-v1-7.tar.gz)",
        "ONNX version": "1.2.1", "Opset version": "7",
        "Top-1 accuracy (%)": "68.10", "Top-5 accuracy (%)": "88.05"}
    assert pebble[0].model_id == f"{folder_}/model/pebblenet18-v1-7.onnx"
    qdq = next(r for r in rows(pebble) if r["name"] == "PebbleNet50-qdq")
    assert qdq == {
        "name": "PebbleNet50-qdq", "name_url": None, "onnx_version": "1.10.0", "opset": "12", "dataset": None,
        "metrics": {"Top-1 accuracy (%)": "73.70"}, "line": 25, "table": 0,
        "downloads": [
            {"column": "Download", "size": "24.2 MB", "path": f"{folder_}/model/pebblenet50-v1-12-qdq.onnx"},
            {"column": "Download (with sample test data)", "size": "16.1 MB",
             "path": f"{folder_}/model/pebblenet50-v1-12-qdq.tar.gz"}]}
    caffe2 = [r for r in rows(pebble) if r["table"] == 1]
    assert [r["opset"] for r in caffe2] == ["3", "9"] and all(r["metrics"] == {} for r in caffe2)
    # The table inside <!-- --> and the "| like this |" line in the code block are not read.
    assert all("from the paper" not in r["name"] for r in rows(pebble))
    v2 = [r["name"] for r in rows(pebble) if r["table"] == 2]
    assert v2 == (["PebbleNet18-v2", "PebbleNet18-v2-int8"] if layout == "2025" else ["PebbleNet18-v2"])


def test_odd_columns_dataset_links_and_capitalisation():
    items = crawl_fixtures("2023")
    ages = rows(items["vision/body_analysis/age_bands"])
    assert [(r["name"], r["name_url"], r["dataset"]) for r in ages] == [
        ("tinynet_age_bands", "https://example.org/drive/age-bands-tinynet", "FaceAges"),
        ("widenet_age_bands_2019", "https://example.org/drive/age-bands-widenet", "FaceAges 2019")]
    assert ages[0]["downloads"] == [{"column": "Download", "size": "22 MB",
                                     "path": "vision/body_analysis/age_bands/models/age_bands_tinynet.onnx"}]
    (upscale,) = rows(items["vision/super_resolution/upscale_cnn"])  # "Opset Version"
    assert (upscale["onnx_version"], upscale["opset"]) == ("1.5.0", "10")
    duc = items["vision/object_detection_segmentation/duc-lite"]
    assert duc[0].payload["row"]["metrics"] == {"mIOU (%)": "76.40"}
    assert duc[0].payload["table"]["header"][5] == "[mIOU](#metric) (%)"  # as written
    t5 = rows(items["text/machine_comprehension/t5-mini"])  # rows without a trailing |
    assert [(r["name"], r["opset"]) for r in t5] == [("T5-Mini-encoder", "12"),
                                                     ("T5-Mini-decoder-with-lm-head", "12")]


def test_non_download_tables_and_rows_without_links_are_left_out():
    spider = make_spider()
    requests = {r.cb_kwargs["entry"]["model_dir"]: r for r in index_requests(spider, "2023")}
    segfcn = model_items(spider, requests["vision/object_detection_segmentation/segfcn"], "2023")
    assert {i.payload["table"]["header"][-1] for i in segfcn} == {"Mean IoU"}  # not the "mean IoU" tables
    before = stat(spider, "ptm/pages/rows_without_link")
    qa = model_items(spider, requests["text/machine_comprehension/qa-bert-mini"], "2023")
    assert stat(spider, "ptm/pages/rows_without_link") == before + 1  # "(coming soon)" row
    assert [r["name"] for r in rows(qa)] == ["QA-BERT-Mini", "QA-BERT-Mini", "QA-BERT-Mini-Classifier"]
    assert rows(qa)[2]["metrics"] == {"Accuracy": "MCC of 0.81"}
    assert rows(qa)[0]["metrics"] == {}  # empty accuracy cell


def test_a_malformed_row_is_reported_and_the_rest_is_kept(caplog):
    spider = make_spider()
    request = index_requests(spider, "2023")[0]
    body = ("# Broken\n\n|Model|Download|ONNX version|Opset version|\n|-|-|-|-|\n"
            "|Good|[1 MB](model/good-7.onnx)|1.2|7|\n"
            "|Wide|[2 MB](model/wide-9.onnx)|1.4|9|extra|cells|\n"
            "|Short|[3 MB](model/short-11.onnx)|\n")
    with caplog.at_level(logging.WARNING):
        items = model_items(spider, request, "2023", body=body)
    assert [(r["name"], r["opset"]) for r in rows(items)] == [("Good", "7"), ("Wide", "9"), ("Short", None)]
    assert stat(spider, "ptm/pages/malformed_table_rows") == 1
    assert f"Malformed table row in {request.url}: line 6" in caplog.text


@pytest.mark.parametrize("name_header", ["Model name", "Name", "Model Name (ONNX)", "Variant"])
def test_a_download_table_whose_model_column_is_spelt_otherwise_still_gives_its_models(name_header):
    """A download table whose name column is not headed ``Model`` (a header variant the zoo's
    READMEs could take) was left out whole: its models were lost without a word."""
    spider = make_spider()
    request = index_requests(spider, "2023")[0]
    body = (f"# Renamed\n\n|{name_header}|Download|ONNX version|Opset version|Top-1 accuracy (%)|\n"
            "|-|-|-|-|-|\n"
            "|NetA|[1 MB](model/neta-7.onnx)|1.2|7|70.1|\n"
            "|NetB|[2 MB](model/netb-12.onnx)|1.9|12|71.0|\n")
    items = model_items(spider, request, "2023", body=body)
    assert [(r["name"], r["opset"], r["metrics"]) for r in rows(items)] == [
        ("NetA", "7", {"Top-1 accuracy (%)": "70.1"}), ("NetB", "12", {"Top-1 accuracy (%)": "71.0"})]
    assert [i.model_id.rsplit("/", 1)[-1] for i in items] == ["neta-7.onnx", "netb-12.onnx"]
    assert not stat(spider, "ptm/pages/readmes_without_models")


def test_a_model_row_without_a_download_link_is_logged_by_readme_line_and_name(caplog):
    """Only counted, a row whose download cell has no markdown link (an HTML ``<a href>``, a bare
    path) could not be found among a crawl's thousands of READMEs: the log names it."""
    spider = make_spider()
    request = index_requests(spider, "2023")[0]
    before = stat(spider, "ptm/pages/rows_without_link")  # the index's placeholder rows
    body = ("# Odd\n\n|Model|Download|ONNX version|Opset version|\n|-|-|-|-|\n"
            "|NetA|[1 MB](model/neta-7.onnx)|1.2|7|\n"
            '|NetB|<a href="model/netb-12.onnx">2 MB</a>|1.9|12|\n')
    with caplog.at_level(logging.INFO, logger="onnxmodelzoo"):
        items = model_items(spider, request, "2023", body=body)
    assert [r["name"] for r in rows(items)] == ["NetA"]
    assert stat(spider, "ptm/pages/rows_without_link") == before + 1
    assert f"Table row without a download link in {request.url}: line 6 ('NetB'), not a model" in caplog.text


def test_a_table_with_download_links_but_no_model_file_and_no_model_column_is_not_a_model_table():
    spider = make_spider()
    request = index_requests(spider, "2023")[0]
    body = ("# Data\n\n|Model|Download|ONNX version|Opset version|\n|-|-|-|-|\n"
            "|NetA|[1 MB](model/neta-7.onnx)|1.2|7|\n\n"
            "|Dataset|Download|\n|-|-|\n|ImageNet val|[6 GB](https://example.org/val.tar)|\n")
    assert [r["name"] for r in rows(model_items(spider, request, "2023", body=body))] == ["NetA"]


def test_a_readme_without_model_rows_gives_no_item_and_is_counted(caplog):
    spider = make_spider()
    request = index_requests(spider, "2023")[0]
    with caplog.at_level(logging.WARNING):
        assert model_items(spider, request, "2023", body="# PebbleNet\n\nModels are coming.\n") == []
    assert stat(spider, "ptm/pages/readmes_without_models") == 1
    assert f"No model row in {request.url}" in caplog.text


PORTAL = "\ufeff\n<!DOCTYPE html>\n<html><head><title>Sign in</title></head><body>Your session expired</body></html>\n"


@pytest.mark.parametrize("headers, body", [
    ({"Content-Type": "text/html; charset=utf-8"}, PORTAL),
    ({"Content-Type": "text/plain; charset=utf-8"}, PORTAL),  # a portal that says it is text
    ({"Content-Type": "text/html"}, "<head><title>Sign in</title></head>"),
])
def test_an_html_page_in_place_of_a_readme_is_a_failed_page_not_a_readme_without_models(headers, body, caplog):
    """A proxy or captive portal answering a raw README with its 200 HTML page: read as markdown,
    the README had no model rows (a WARNING), so its models were missing and, the listing being
    whole, reported removed, with exit status 0. raw.githubusercontent.com never serves HTML."""
    spider = make_spider()
    request = index_requests(spider, "2023")[0]
    response = text_response(request.url, body, request, headers=headers)
    with caplog.at_level(logging.WARNING):
        assert list(spider.parse_model(response, **request.cb_kwargs)) == []
    assert stat(spider, "ptm/pages/failed/HTML page instead of the file") == 1
    assert stat(spider, "ptm/pages/readmes_without_models") is None
    assert f"Page failed (not retried): {request.url} (HTML page instead of the file" in caplog.text
    for parse in (spider.parse_index, lambda r: spider.parse_unlisted(r, folders=["x/y"])):
        assert list(parse(text_response(f"{RAW}/README.md", PORTAL, headers=headers))) == []
    (stats_request,) = tree_requests(spider, tree_entries(GENERATED_DIRS[:1]))
    assert stats_item(spider, stats_request, "<html><body>Bad gateway</body></html>") == []
    assert stat(spider, "ptm/pages/failed/HTML page instead of the file") == 4


@pytest.mark.parametrize("content_type", ["text/plain; charset=utf-8", "text/html"])  # a mirror's type for .md
def test_a_readme_that_opens_with_an_html_comment_or_tag_is_a_readme(content_type):
    spider = make_spider()
    request = index_requests(spider, "2023")[0]
    readme = (FIXTURES / "2023" / request.url.removeprefix(f"{RAW}/")).read_text()
    openings = ("", "<!--- SPDX-License-Identifier: Apache-2.0 -->\n", "<p align=\"center\"><img src=\"x.png\"></p>\n")
    for opening in openings:
        response = text_response(request.url, opening + readme, request, headers={"Content-Type": content_type})
        assert list(spider.parse_model(response, **request.cb_kwargs)) != []
    assert stat(spider, "ptm/pages/failed") is None


def test_the_limit_counts_model_rows_not_folders():
    spider = make_spider(limit="3")
    request = index_requests(spider, "2023")[0]  # PebbleNet: 8 rows
    assert len(model_items(spider, request, "2023")) == 3


# -- generated models: the file tree and turnkey_stats.yaml --------------------------------------

def tree_entries(dirs, extra=()):
    """A git-trees listing (as GitHub serves it) of generated-model folders."""
    entries = [{"path": "validated/vision/classification/pebblenet/README.md", "type": "blob", "sha": "0" * 40,
                "size": 10, "mode": "100644"},
               {"path": "validated/x/y/turnkey_stats.yaml", "type": "blob", "sha": "0" * 40, "size": 1}]
    for d in dirs:
        entries += [{"path": d.split("/")[0], "type": "tree", "sha": "1" * 40, "mode": "040000"},
                    {"path": d, "type": "tree", "sha": "2" * 40, "mode": "040000"},
                    {"path": generated_model_file(d), "type": "blob", "sha": "3" * 40, "size": 133},
                    {"path": f"{d}/turnkey_stats.yaml", "type": "blob", "sha": "4" * 40,
                     "size": stats_size(d)}]
    return entries + list(extra)


def stats_size(model_dir: str) -> int:
    """The size the tree lists for a folder's turnkey_stats.yaml: its fixture's (a file shorter
    than that is cut short), or a made-up one for a folder without a fixture."""
    fixture = FIXTURES / "2025" / model_dir / "turnkey_stats.yaml"
    return fixture.stat().st_size if fixture.is_file() else 900


def tree_requests(spider, entries, truncated=False):
    body = json.dumps({"sha": "f" * 40, "url": TREE, "tree": entries, "truncated": truncated})
    return list(spider.parse_tree(text_response(TREE, body)))


def stats_item(spider, request, body=None):
    """The items of a stats file: its fixture, or ``body`` (then the size the tree lists is its own)."""
    response = (fixture_response(FIXTURES / "2025" / request.url.removeprefix(f"{RAW}/"), request.url, request)
                if body is None else text_response(request.url, body, request))
    kwargs = request.cb_kwargs if body is None else {**request.cb_kwargs, "size": len(response.body)}
    return list(spider.parse_stats(response, **kwargs))


def test_the_tree_lists_each_generated_model_folder_once():
    spider = make_spider()
    requests = tree_requests(spider, tree_entries(GENERATED_DIRS + UNVERIFIED_DIRS))
    assert [r.url for r in requests] == [f"{RAW}/{d}/turnkey_stats.yaml" for d in GENERATED_DIRS]
    assert requests[1].cb_kwargs == {"model": {
        "model_dir": "Computer_Vision/tinyvit_Opset17_timm", "tree_sha": "f" * 40,
        "files": ["Computer_Vision/tinyvit_Opset17_timm/tinyvit_Opset17.onnx"]},
        "size": stats_size("Computer_Vision/tinyvit_Opset17_timm")}
    assert stat(spider, "ptm/pages/generated_models_listed") == len(GENERATED_DIRS)
    assert stat(spider, "ptm/pages/unverified_models_skipped") == 1  # Computer_Vision/skip/…
    assert stat(spider, "ptm/pages/tree_truncated") is None and stat(spider, "ptm/pages/failed") is None


def test_a_truncated_tree_is_crawled_as_far_as_it_goes_and_reported(caplog):
    spider = make_spider()
    with caplog.at_level(logging.WARNING):
        requests = tree_requests(spider, tree_entries(GENERATED_DIRS[:2]), truncated=True)
    assert len(requests) == 2
    assert stat(spider, "ptm/pages/tree_truncated") == 1
    assert stat(spider, "ptm/pages/failed/truncated tree") == 1 and stat(spider, "ptm/pages/failed") == 1
    assert f"Tree listing {TREE} is truncated" in caplog.text


def test_tree_paths_that_could_escape_are_ignored():
    hostile = [{"path": p, "type": "blob"} for p in (
        "../evil/turnkey_stats.yaml", "A/../turnkey_stats.yaml", "A/b\\c/turnkey_stats.yaml",
        "A//turnkey_stats.yaml", "A/x\x00/turnkey_stats.yaml")] + [{"path": 7, "type": "blob"}, "junk", None]
    folders, skipped = generated_folders(hostile + [{"path": "A/ok_Opset1_x/turnkey_stats.yaml", "type": "blob"}])
    assert folders == {"A/ok_Opset1_x": []} and skipped == 0


def test_a_tree_that_is_not_a_listing_is_reported():
    spider = make_spider()
    assert list(spider.parse_tree(text_response(TREE, '{"message": "API rate limit exceeded"}'))) == []
    assert stat(spider, "ptm/pages/failed/unexpected JSON") == 1


def test_turnkey_stats_become_the_generated_models_payload():
    spider = make_spider()
    requests = tree_requests(spider, tree_entries(GENERATED_DIRS))
    items = [i for r in requests for i in stats_item(spider, r)]
    assert [i.model_id for i in items] == [d.rsplit("/", 1)[-1] for d in GENERATED_DIRS]
    tiny = items[1]
    assert tiny.url == f"{RAW}/Computer_Vision/tinyvit_Opset17_timm/turnkey_stats.yaml"
    payload = dict(tiny.payload)
    stats = payload.pop("turnkey")
    assert payload == {
        "kind": "generated", "model_dir": "Computer_Vision/tinyvit_Opset17_timm", "category": "Computer_Vision",
        "files": ["Computer_Vision/tinyvit_Opset17_timm/tinyvit_Opset17.onnx"],
        "stats_path": "Computer_Vision/tinyvit_Opset17_timm/turnkey_stats.yaml",
        "stats_url": tiny.url, "tree_sha": "f" * 40}
    assert (stats["author"], stats["class"], stats["parameters"]) == ("timm", "TinyViT", 5428040)
    assert stats["onnx_model_information"] == {"ir_version": 8, "opset": 17, "size on disk (KiB)": 21204.5}
    assert tiny.context["repo_url"] == REPO


@pytest.mark.parametrize("body, kind", [
    ("author: timm\nclass: [unclosed\n", "malformed YAML"),
    ("- just\n- a list\n", "unexpected YAML"),
    ("base: &b [1, 2]\nbomb: [*b, *b]\n", "malformed YAML"),  # aliases refused
])
def test_a_bad_turnkey_stats_file_is_reported_and_gives_no_item(body, kind):
    spider = make_spider()
    (request,) = tree_requests(spider, tree_entries(GENERATED_DIRS[:1]))
    assert stats_item(spider, request, body) == []
    assert stat(spider, f"ptm/pages/failed/{kind}") == 1


def test_yaml_values_become_json_values():
    assert load_yaml("when: 2023-12-08\n1: one\nok: [1, 2.5, true, null]\n") == {
        "when": "2023-12-08", "1": "one", "ok": [1, 2.5, True, None]}



@pytest.mark.parametrize("markdown, expected", [
    ("# M\n## License\nMIT License\n<hr>\n", "MIT License"),
    ("# M\n## License\n\n[BSD-3](LICENSE)\n## Next\n", "BSD-3"),
    ("# M\n### licence ###\nApache 2.0\n", "Apache 2.0"),
    ("# M\n## License\n<hr>\n## Next\nnot it\n", None),
    ("# M\n```\n## License\nin a code block\n```\n", None),
    ("# M\n## Licenses of the datasets\nnot the model's\n", None),
    # a heading indented by a space (BiDAF's README: " ## License"), still a heading
    ("# M\n ## License\nMIT License\n<hr>\n", "MIT License"),
    ("# M\n   ## License\nMIT\n", "MIT"),
    ("# M\n    ## License\nan indented code line, no heading\n", None),
])
def test_the_license_is_the_first_line_of_the_readmes_license_section(markdown, expected):
    assert readme_license(markdown) == expected


@pytest.mark.parametrize("markdown, expected", [
    # Super Resolution's README: the SPDX comment is its only word on the license
    ("<!--- SPDX-License-Identifier: Apache-2.0 -->\n\n# Super Resolution\n\n## Model\n", "Apache-2.0"),
    ("<!-- SPDX-License-Identifier: MIT OR Apache-2.0 -->\n# M\n", "MIT OR Apache-2.0"),
    ("# M\n```\n# SPDX-License-Identifier: MIT\n```\n", None),
    ("# M\n## License\nMIT\n", None),
])
def test_the_spdx_license_is_the_readmes_spdx_comment(markdown, expected):
    assert readme_spdx_license(markdown) == expected


# -- model folders no index table links (gpt2-bs): found in the tree ------------------------------

def blob(path):
    return {"path": path, "type": "blob", "sha": "0" * 40, "size": 1, "mode": "100644"}


def fixture_tree(layout):
    """The tree listing of a fixture layout, as the replica serves it: every file, plus the .onnx
    files the READMEs link (LFS pointers in the replica's repository), sorted as git lists them."""
    root = FIXTURES / layout
    paths = {f.relative_to(root).as_posix() for f in root.rglob("*") if f.is_file()}
    for readme in root.rglob("README.md"):
        here = readme.parent.relative_to(root).as_posix()
        paths |= {f"{here}/{link}" for link in re.findall(r"\]\((models?/[^)\s]+\.onnx)\)", readme.read_text())}
    paths |= {generated_model_file(p.rpartition("/")[0]) for p in paths if p.endswith("/turnkey_stats.yaml")}
    return [blob(p) for p in sorted(paths)]


def test_readme_model_folders_are_the_nearest_readme_above_onnx_files():
    entries = [blob(p) for p in (
        "README.md", "contribute.md", "vision/README.md",  # the index; a README above model folders
        "text/mc/orphan/README.md", "text/mc/orphan/model/orphan-12.onnx",
        "text/mc/docs-only/README.md", "text/mc/docs-only/notes.txt",  # no model file
        "vision/classification/resnet/README.md", "vision/classification/resnet/model/resnet18-v1-7.onnx",
        "vision/classification/resnet/preproc/resnet-preproc-v1-18.onnx",  # below resnet's README
        "Computer_Vision/README.md", "Computer_Vision/a_Opset1_timm/a_Opset1.onnx",  # generated models
        "Computer_Vision/a_Opset1_timm/turnkey_stats.yaml",
        "Computer_Vision/skip/b_Opset1_timm/b_Opset1.onnx", "Computer_Vision/skip/b_Opset1_timm/turnkey_stats.yaml",
        "../evil/README.md", "../evil/m.onnx", "text/../README.md")]
    entries += [{"path": "text/mc/tree-only", "type": "tree"}, "junk", None, {"path": 3, "type": "blob"}]
    assert readme_model_folders(entries) == ["text/mc/orphan", "vision/classification/resnet"]


@pytest.mark.parametrize("layout", LAYOUTS)
def test_the_tree_asks_the_index_which_readme_folders_it_does_not_link(layout, caplog):
    spider = make_spider()
    requests = tree_requests(spider, fixture_tree(layout))
    again = requests[0]  # the top-level README once more, with the tree's README model folders
    assert (again.url, again.callback.__name__, again.dont_filter) == (f"{RAW}/README.md", "parse_unlisted", True)
    assert sorted(again.cb_kwargs["folders"]) == sorted(model_dirs(layout) + unlisted_dirs(layout))
    with caplog.at_level(logging.INFO):
        (request,) = spider.parse_unlisted(fixture_response(FIXTURES / layout / "README.md", again.url, again),
                                           **again.cb_kwargs)
    (unlisted,) = unlisted_dirs(layout)
    assert (request.url, request.callback.__name__) == (f"{RAW}/{unlisted}/README.md", "parse_model")
    assert request.cb_kwargs == {"entry": {  # the section of the folders beside it
        "category": "Machine Comprehension", "anchor": "machine_comprehension", "model_dir": unlisted,
        "model_classes": [], "listed": False}}
    assert stat(spider, "ptm/pages/unlisted_model_folders") == 1
    assert f"Model folder {unlisted} has a README and .onnx files but no index table links it" in caplog.text
    restored = request_from_dict(pickle.loads(pickle.dumps(again.to_dict(spider=spider))), spider=spider)
    assert restored.cb_kwargs == again.cb_kwargs  # a JOBDIR can hold it

    (item,) = model_items(spider, request, layout)  # read like a linked folder's README
    assert item.payload["row"]["name"] == "qa-bert-beam" and item.payload["listed"] is False
    assert item.model_id == f"{unlisted}/model/qa-bert-beam-12.onnx"
    linked = index_requests(make_spider(), layout)
    assert all(r.cb_kwargs["entry"]["listed"] is True for r in linked)


def unlisted_items(layout):
    """The raw items of the fixture folders no index table links: tree, index again, READMEs."""
    spider = make_spider()
    again = tree_requests(spider, fixture_tree(layout))[0]
    index = fixture_response(FIXTURES / layout / "README.md", again.url, again)
    return [i for r in spider.parse_unlisted(index, **again.cb_kwargs) for i in model_items(spider, r, layout)]


def test_an_unlisted_folders_task_is_its_neighbours_section_only_when_they_share_one():
    entries, _ = index_entries(
        "### Vision <a name=\"vision\"/>\n|Model Class |Reference |Description |\n|-|-|-|\n"
        "|<b>[A](v/a)</b>|r|d|\n|<b>[B](mixed/b)</b>|r|d|\n\n"
        "### Text <a name=\"text\"/>\n|Model Class |Reference |Description |\n|-|-|-|\n"
        "|<b>[C](mixed/c)</b>|r|d|\n")
    assert unlisted_entry("v/orphan", entries)["anchor"] == "vision"
    assert (unlisted_entry("mixed/orphan", entries)["anchor"], unlisted_entry("lonely/orphan", entries)["category"]) \
        == (None, None)


def test_an_index_listing_every_readme_folder_gives_nothing_more():
    spider = make_spider()
    entries = [blob(p) for d in MODEL_DIRS for p in (f"{d}/README.md", f"{d}/model/x.onnx")]
    (again,) = tree_requests(spider, entries)
    assert list(spider.parse_unlisted(fixture_response(FIXTURES / "2023" / "README.md", again.url, again),
                                      **again.cb_kwargs)) == []
    assert stat(spider, "ptm/pages/unlisted_model_folders") == 0
    assert UNLISTED_DIRS[0] not in again.cb_kwargs["folders"]


def test_a_broken_index_read_again_is_reported():
    spider = make_spider()
    (again,) = tree_requests(spider, [blob("a/b/README.md"), blob("a/b/model/b.onnx")])
    assert list(spider.parse_unlisted(text_response(again.url, "# Maintenance\n", again), **again.cb_kwargs)) == []
    assert stat(spider, "ptm/pages/failed/no model tables") == 1


def test_two_accuracy_columns_with_one_header_keep_both_values():
    """A table measuring on two datasets under one header (``|mAP|mAP|``) kept the second value
    only: the first was overwritten in the row's metrics."""
    spider = make_spider()
    request = index_requests(spider, "2023")[0]
    body = ("# Two\n\n|Model|Download|ONNX version|Opset version|mAP|mAP|\n|-|-|-|-|-|-|\n"
            "|NetA|[1 MB](model/neta-7.onnx)|1.2|7|0.31|0.45|\n")
    (item,) = model_items(spider, request, "2023", body=body)
    assert item.payload["row"]["metrics"] == {"mAP": "0.31", "mAP (2)": "0.45"}
    assert item.payload["cells"]["mAP (2)"] == "0.45"


def test_a_readme_with_windows_line_ends_gives_its_license_section():
    """A README committed with CRLF line ends (raw GitHub serves it so) had no License section
    for the crawl: its License became the SPDX identifier (``MIT`` where the section says
    ``MIT License``), unlike the same README with LF line ends."""
    spider = make_spider()
    request = index_requests(spider, "2023")[0]
    body = ("<!--- SPDX-License-Identifier: MIT -->\n\n# Net\n\n|Model|Download|ONNX version|Opset version|\n"
            "|-|-|-|-|\n|NetA|[1 MB](model/neta-7.onnx)|1.2|7|\n\n## License\nMIT License\n")
    (lf,) = model_items(spider, request, "2023", body=body)
    (crlf,) = model_items(make_spider(), request, "2023", body=body.replace("\n", "\r\n"))
    assert crlf.payload["license"] == lf.payload["license"] == "MIT License"
    assert crlf.payload["title"] == "Net" and crlf.payload["spdx_license"] == "MIT"


@pytest.mark.parametrize("file_header", ["Link", "ONNX file", "Model file"])
def test_a_table_whose_download_column_is_headed_otherwise_still_gives_its_models(file_header):
    """A table linking its .onnx files under a header other than Download/Compressed was no
    download table: its models were lost (the README's other tables still gave theirs)."""
    spider = make_spider()
    request = index_requests(spider, "2023")[0]
    body = ("# Net\n\n|Model|Download|ONNX version|Opset version|\n|-|-|-|-|\n"
            "|NetA|[1 MB](model/neta-7.onnx)|1.2|7|\n\n"
            f"|Model|{file_header}|ONNX version|Opset version|Accuracy|\n|-|-|-|-|-|\n"
            "|NetB|[2 MB](model/netb-12.onnx)|1.9|12|0.7|\n")
    items = model_items(spider, request, "2023", body=body)
    assert [(r["name"], r["opset"], r["metrics"]) for r in rows(items)] == [
        ("NetA", "7", {}), ("NetB", "12", {"Accuracy": "0.7"})]
    assert rows(items)[1]["downloads"] == [{"column": file_header, "size": "2 MB",
                                            "path": "vision/classification/pebblenet/model/netb-12.onnx"}]


@pytest.mark.parametrize("opset_header", ["Opset", "Opset Versions", "ONNX Opset", "opset-version"])
def test_an_opset_column_headed_otherwise_gives_the_opset(opset_header):
    """``Opset`` (or ``ONNX Opset``) was read as an accuracy column: the record's Opset was null
    and its Metrics held ``{"Opset": "12"}``."""
    spider = make_spider()
    request = index_requests(spider, "2023")[0]
    body = (f"# Net\n\n|Model|Download|ONNX version|{opset_header}|Accuracy|\n|-|-|-|-|-|\n"
            "|NetA|[1 MB](model/neta-12.onnx)|1.9|12|0.7|\n")
    (row,) = rows(model_items(spider, request, "2023", body=body))
    assert (row["opset"], row["metrics"]) == ("12", {"Accuracy": "0.7"})


def test_a_table_linking_its_models_from_the_name_column_gives_them():
    """A table without a download column whose model names link the .onnx files
    (``[NetB](model/netb-12.onnx)``) was no download table: its models were lost without a word."""
    spider = make_spider()
    request = index_requests(spider, "2023")[0]
    body = ("# Net\n\n|Model|ONNX version|Opset version|Accuracy|\n|-|-|-|-|\n"
            "|[NetB](model/netb-12.onnx)|1.9|12|0.7|\n|[NetC docs](https://example.org/netc)|1.9|12|0.6|\n")
    items = model_items(spider, request, "2023", body=body)
    assert [(r["name"], r["opset"], r["metrics"]) for r in rows(items)] == [("NetB", "12", {"Accuracy": "0.7"})]
    assert rows(items)[0]["downloads"] == [{"column": "Model", "size": "NetB",
                                            "path": "vision/classification/pebblenet/model/netb-12.onnx"}]
    assert stat(spider, "ptm/pages/readmes_without_models") is None
