"""ONNX Model Zoo mapper: model rows and generated models (read by the spider from our fixture zoo,
both layouts) -> records."""

import pytest
from jsonschema import Draft202012Validator

from ptmscrape.items import RawModelItem, load_schema
from ptmscrape.mappers.common import MappingError, stable_id
from ptmscrape.mappers.onnxmodelzoo import map_raw
from tests.replicas.onnx import GENERATED_DIRS, MODEL_DIRS, prefix, unlisted_dirs
from tests.test_onnxmodelzoo_spider import (
    LAYOUTS,
    RAW,
    REPO,
    ROWS,
    crawl_fixtures,
    make_spider,
    stats_item,
    tree_entries,
    tree_requests,
    unlisted_items,
)

VALIDATOR = Draft202012Validator(load_schema())


@pytest.fixture(scope="module", params=LAYOUTS)
def layout_items(request):
    return request.param, crawl_fixtures(request.param)


def test_every_fixture_row_maps_to_a_valid_record(layout_items):
    layout, items = layout_items
    records = [map_raw(item) for folder_items in items.values() for item in folder_items]
    assert len(records) == ROWS[layout]
    for record in records:
        model_dir = record["RepoSubPath"]
        assert list(VALIDATOR.iter_errors(record)) == [], record["ModelName"]
        assert model_dir.removeprefix(prefix(layout)) in MODEL_DIRS
        assert record["RepoURL"] == REPO
        (main,) = [f for f in record["ModelFiles"] if f["Path"] == record["ModelHub"]["MetadataObjectID"]]
        assert main["Path"].startswith(model_dir + "/") and main["Path"].endswith(".onnx")
        assert record["ModelURL"] == f"{REPO}/blob/HEAD/{main['Path']}"
        assert record["ModelName"] == main["Path"].rsplit("/", 1)[-1].removesuffix(".onnx")
        assert (record["ModelOwner"], record["ModelOwnerURL"], record["Library"]) == (
            "onnx", "https://github.com/onnx", "onnx")
    assert len({r["id"] for r in records}) == len(records)
    assert len({r["ModelHub"]["MetadataFilePath"] for r in records}) == len(records)
    assert len({r["ModelName"] for r in records}) == len(records)  # row names repeat, file names do not


def test_record_fields_of_a_pebblenet_row_and_a_shardnet_row():
    items = crawl_fixtures("2023")
    qdq = map_raw(next(i for i in items["vision/classification/pebblenet"]
                       if i.payload["row"]["name"] == "PebbleNet50-qdq"))
    assert (qdq["ModelName"], qdq["ModelTask"], qdq["ModelArchitecture"]) == (
        "pebblenet50-v1-12-qdq", "image_classification", "PebbleNet")
    assert qdq["ModelFiles"] == [
        {"Path": "vision/classification/pebblenet/model/pebblenet50-v1-12-qdq.onnx", "URL": None,
         "Size": "24.2 MB", "Kind": "Download"},
        {"Path": "vision/classification/pebblenet/model/pebblenet50-v1-12-qdq.tar.gz", "URL": None,
         "Size": "16.1 MB", "Kind": "Download (with sample test data)"}]
    assert (qdq["OnnxVersion"], qdq["Opset"], qdq["Metrics"]) == ("1.10.0", 12, {"Top-1 accuracy (%)": "73.70"})
    assert qdq["Tags"] == ["image_classification", "opset:12"]
    assert qdq["ModelPaperDOIs"] == ["10.48550/arXiv.2101.00042"]
    assert qdq["RepoSubPath"] == "vision/classification/pebblenet"
    assert qdq["ModelHub"]["MetadataObjectID"] == "vision/classification/pebblenet/model/pebblenet50-v1-12-qdq.onnx"
    assert qdq["ModelHub"]["MetadataFilePath"] == "onnxmodelzoo/json/metadata/onnx/pebblenet50-v1-12-qdq.onnx.json"
    assert qdq["id"] == stable_id("onnxmodelzoo", "pebblenet50-v1-12-qdq.onnx")
    assert (qdq["SourceLibrary"], qdq["ModelClass"], qdq["ParameterCount"]) == (None, None, None)
    assert qdq["LatestGitCommitSHA"] is None and qdq["CloneStatus"] == "pending"
    shard = map_raw(items["vision/classification/shardnet"][0])
    assert (shard["ModelName"], shard["ModelArchitecture"]) == ("shardnet-3", "ShardNet_V1")
    # One folder, two index classes: each row gets the class its name names, and that class's paper
    # (an arXiv pdf link; an abs link with a version, dropped).
    assert shard["ModelPaperDOIs"] == ["10.48550/arXiv.1902.01234"]
    shard_v2 = map_raw(next(i for i in items["vision/classification/shardnet"]
                            if i.payload["row"]["name"] == "ShardNet-v2"))
    assert (shard_v2["ModelName"], shard_v2["ModelArchitecture"]) == ("shardnet-v2-10", "ShardNet_V2")
    assert shard_v2["ModelPaperDOIs"] == ["10.48550/arXiv.1911.05678"]
    age = map_raw(items["vision/body_analysis/age_bands"][0])
    assert age["ModelPaperDOIs"] == []  # not arXiv
    assert age["Datasets"] == [{"DatasetName": "FaceAges", "DatasetOwner": "", "DatasetURL": "",
                                "DatasetOwnerURL": ""}]


def test_a_model_row_keeps_its_id_and_payload_file_when_it_moves_under_validated():
    old, new = crawl_fixtures("2023"), crawl_fixtures("2025")
    for model_dir in MODEL_DIRS:
        before = {r["id"]: r for r in map(map_raw, old[model_dir])}
        after = {r["id"]: r for r in map(map_raw, new[model_dir])}
        assert set(before) <= set(after), model_dir  # 2025 added rows, removed none
        for model_id, a in before.items():
            b = after[model_id]
            assert a["ModelName"] == b["ModelName"]
            assert a["ModelHub"]["MetadataFilePath"] == b["ModelHub"]["MetadataFilePath"]
            assert b["ModelHub"]["MetadataObjectID"] == "validated/" + a["ModelHub"]["MetadataObjectID"]
            assert b["RepoSubPath"] == "validated/" + a["RepoSubPath"]


def test_a_row_linking_a_file_elsewhere_and_the_repository_from_context():
    item = crawl_fixtures("2023")["vision/classification/shardnet"][0]
    row = {**item.payload["row"], "downloads": [
        {"column": "Download", "size": "5 MB", "url": "https://example.org/files/shard%20net-7.onnx?dl=1"}]}
    record = map_raw(RawModelItem("onnxmodelzoo", item.model_id, item.url, {**item.payload, "row": row},
                                  {"repo_url": "https://github.com/mirror-org/onnx-models/"}))
    assert record["ModelName"] == "shard net-7"
    assert record["ModelURL"] == "https://example.org/files/shard%20net-7.onnx?dl=1"
    assert record["ModelFiles"] == [{"Path": None, "URL": "https://example.org/files/shard%20net-7.onnx?dl=1",
                                     "Size": "5 MB", "Kind": "Download"}]
    assert record["RepoURL"] == "https://github.com/mirror-org/onnx-models"
    assert (record["ModelOwner"], record["ModelOwnerURL"]) == ("mirror-org", "https://github.com/mirror-org")
    assert list(VALIDATOR.iter_errors(record)) == []
    # A mirror under a path: the owner is still the repository's, not the mirror's first segment.
    mirrored = map_raw(RawModelItem("onnxmodelzoo", item.model_id, item.url, item.payload,
                                    {"repo_url": "http://127.0.0.1:8080/git/mirror/onnx/models"}))
    assert mirrored["ModelOwner"] == "onnx"
    assert mirrored["ModelHub"]["MetadataFilePath"] == "onnxmodelzoo/json/metadata/onnx/shardnet-3.onnx.json"
    # ... and the clone is the repository's owner/name folder (docs/hubs.md), not the mirror's path.
    assert mirrored["RepoPath"] == "onnxmodelzoo/repos/onnx/models"
    assert record["RepoPath"] == "onnxmodelzoo/repos/mirror-org/onnx-models"


def test_generated_models_under_a_mirror_share_the_repositorys_clone_folder():
    spider = make_spider()
    (item,) = [i for r in tree_requests(spider, tree_entries(GENERATED_DIRS[:1])) for i in stats_item(spider, r)]
    for repo_url in ("https://github.com/onnx/models", "https://mirror.example/gh/onnx/models.git"):
        record = map_raw(RawModelItem("onnxmodelzoo", item.model_id, item.url, item.payload, {"repo_url": repo_url}))
        assert record["RepoPath"] == "onnxmodelzoo/repos/onnx/models", repo_url
    lone = map_raw(RawModelItem("onnxmodelzoo", item.model_id, item.url, item.payload,
                                {"repo_url": "https://mirror.example/models"}))
    assert lone["RepoPath"] is None  # no owner/name in the URL: the clone stage names it by the URL


def test_generated_models_map_turnkey_stats_onto_the_record():
    spider = make_spider()
    items = [i for r in tree_requests(spider, tree_entries(GENERATED_DIRS)) for i in stats_item(spider, r)]
    records = {r["ModelName"]: r for r in map(map_raw, items)}
    assert sorted(records) == sorted(d.rsplit("/", 1)[-1] for d in GENERATED_DIRS)
    tiny = records["tinyvit_Opset17_timm"]
    assert [e.message for e in VALIDATOR.iter_errors(tiny)] == []
    assert tiny["id"] == stable_id("onnxmodelzoo", "tinyvit_Opset17_timm")
    assert tiny["ModelHub"]["MetadataObjectID"] == "Computer_Vision/tinyvit_Opset17_timm"
    assert tiny["ModelURL"] == f"{REPO}/tree/HEAD/Computer_Vision/tinyvit_Opset17_timm"
    assert (tiny["ParameterCount"], tiny["Opset"], tiny["SourceLibrary"], tiny["ModelClass"]) == (
        5428040, 17, "timm", "TinyViT")
    assert (tiny["ModelArchitecture"], tiny["ModelTask"], tiny["Tags"]) == (
        "TinyViT", "Computer_Vision", ["Computer_Vision", "opset:17"])
    assert tiny["ModelFiles"] == [{"Path": "Computer_Vision/tinyvit_Opset17_timm/tinyvit_Opset17.onnx",
                                   "URL": None, "Size": "21204.5 KiB", "Kind": "model"}]
    assert (tiny["RepoURL"], tiny["RepoSubPath"]) == (REPO, "Computer_Vision/tinyvit_Opset17_timm")
    assert (tiny["OnnxVersion"], tiny["Metrics"]) == (None, None)
    assert {r["SourceLibrary"] for r in records.values()} == {
        "timm", "torchvision", "transformers", "graph_convolutions"}
    for record in records.values():
        assert list(VALIDATOR.iter_errors(record)) == [], record["ModelName"]


@pytest.mark.parametrize("payload, reason", [
    (["not", "an", "object"], "not an object"),
    ({"model_dir": "", "row": {}}, "no model folder"),
    ({"model_dir": "a/b", "kind": "readme_row"}, "no table row"),
    ({"model_dir": "a/b", "row": {"downloads": []}}, "without a model file"),
    ({"model_dir": "a/b", "row": {"downloads": [{"url": "https://example.org/"}]}}, "without a name"),
    ({"model_dir": "a/b", "kind": "generated", "turnkey": ["x"]}, "no turnkey_stats.yaml object"),
])
def test_unmappable_payloads_name_the_reason(payload, reason):
    with pytest.raises(MappingError, match=reason):
        map_raw(RawModelItem("onnxmodelzoo", "a/b", RAW, payload))


def test_junk_in_optional_fields_is_tolerated():
    row = {"downloads": [None, {"path": "a/b/m-9.onnx", "size": 5, "column": None}], "opset": "ONNX 9",
           "metrics": {"Top-1": 3, "Top-5": "90"}, "onnx_version": 1.2, "dataset": ["x"]}
    payload = {"model_dir": "a/b", "anchor": 5, "model_classes": ["junk", {"name": 3}], "row": row}
    record = map_raw(RawModelItem("onnxmodelzoo", "a/b/m-9.onnx", RAW, payload))
    assert (record["ModelName"], record["Tags"], record["ModelTask"], record["ModelArchitecture"]) == (
        "m-9", [], None, None)
    assert (record["Opset"], record["OnnxVersion"], record["Metrics"], record["Datasets"]) == (
        None, None, {"Top-5": "90"}, [])
    assert record["ModelFiles"] == [{"Path": "a/b/m-9.onnx", "URL": None, "Size": None, "Kind": "download"}]
    assert list(VALIDATOR.iter_errors(record)) == []
    generated = {"model_dir": "C/x_Opset1_y", "kind": "generated", "category": "C", "files": [3, "C/x_Opset1_y/x.onnx"],
                 "turnkey": {"parameters": -1, "onnx_model_information": {"opset": True, "size on disk (KiB)": "9"},
                             "class": 4, "author": None}}
    record = map_raw(RawModelItem("onnxmodelzoo", "x_Opset1_y", RAW, generated))
    assert (record["ParameterCount"], record["Opset"], record["ModelClass"], record["SourceLibrary"]) == (
        None, None, None, None)
    assert record["ModelTask"] == "C" and record["ModelFiles"][0]["Size"] is None
    assert list(VALIDATOR.iter_errors(record)) == []



@pytest.mark.parametrize("license, spdx, expected", [
    (None, "Apache-2.0", "Apache-2.0"),  # Super Resolution: no License section, an SPDX comment
    ("MIT License", "MIT", "MIT License"),  # the section, as a reader sees it, comes first
    (None, None, None),
])
def test_without_a_license_section_the_license_is_the_readmes_spdx_identifier(license, spdx, expected):
    row = {"name": "SR", "opset": "10", "onnx_version": "1.5.0",
           "downloads": [{"path": "v/sr/model/sr-10.onnx", "size": "240 KB", "column": "Download"}]}
    payload = {"model_dir": "v/sr", "anchor": "image_manipulation", "license": license, "spdx_license": spdx,
               "model_classes": [], "row": row}
    record = map_raw(RawModelItem("onnxmodelzoo", "v/sr/model/sr-10.onnx", RAW, payload))
    assert record["License"] == expected
    assert list(VALIDATOR.iter_errors(record)) == []


def test_the_readmes_license_and_a_two_domain_opset():
    row = {"name": "BiDAF", "opset": "ONNX 9, ONNX.ML 1", "onnx_version": "1.4",
           "downloads": [{"path": "t/bidaf/model/bidaf-9.onnx", "size": "41 MB", "column": "Download"}]}
    payload = {"model_dir": "t/bidaf", "anchor": "machine_comprehension", "license": "MIT License",
               "model_classes": [{"name": "BiDAF", "reference_url": "https://arxiv.org/abs/1611.01603"}], "row": row}
    record = map_raw(RawModelItem("onnxmodelzoo", "t/bidaf/model/bidaf-9.onnx", RAW, payload))
    assert (record["License"], record["Opset"]) == ("MIT License", 9)
    assert record["Tags"] == ["machine_comprehension", "opset:9"]
    assert record["ModelPaperDOIs"] == ["10.48550/arXiv.1611.01603"]
    assert list(VALIDATOR.iter_errors(record)) == []


@pytest.mark.parametrize("row_name, file_name, classes", [
    ("ShuffleNet-v1", "shufflenet-3.onnx", ["ShuffleNet_V1"]),
    ("ShuffleNet-v2-fp32", "shufflenet-v2-12.onnx", ["ShuffleNet_V2"]),
    ("ShuffleNet", "shufflenet-v2-12.onnx", ["ShuffleNet_V2"]),  # the file's name tells
    ("ShuffleNet", "shufflenet-9.onnx", ["ShuffleNet_V1", "ShuffleNet_V2"]),  # nothing tells: all kept
])
def test_a_row_of_a_folder_shared_by_two_classes_gets_the_class_it_names(row_name, file_name, classes):
    row = {"name": row_name, "downloads": [{"path": f"v/shufflenet/model/{file_name}", "column": "Download"}]}
    payload = {"model_dir": "v/shufflenet", "row": row, "model_classes": [
        {"name": "ShuffleNet_V1", "reference_url": "https://arxiv.org/abs/1707.01083"},
        {"name": "ShuffleNet_V2", "reference_url": "https://arxiv.org/abs/1807.11164"}]}
    record = map_raw(RawModelItem("onnxmodelzoo", f"v/shufflenet/model/{file_name}", RAW, payload))
    papers = {"ShuffleNet_V1": "10.48550/arXiv.1707.01083", "ShuffleNet_V2": "10.48550/arXiv.1807.11164"}
    assert record["ModelArchitecture"] == classes[0]
    assert record["ModelPaperDOIs"] == [papers[c] for c in classes]


def test_a_reference_link_followed_by_punctuation_still_gives_its_doi():
    from ptmscrape.mappers.onnxmodelzoo import paper_dois

    assert paper_dois(["https://arxiv.org/abs/1512.03385.", "https://arxiv.org/abs/1707.01083v2;", None]) == [
        "10.48550/arXiv.1512.03385", "10.48550/arXiv.1707.01083"]


@pytest.mark.parametrize("layout", LAYOUTS)
def test_a_folder_no_index_table_links_maps_with_its_neighbours_task_and_no_class(layout):
    (item,) = unlisted_items(layout)
    record = map_raw(item)
    assert list(VALIDATOR.iter_errors(record)) == []
    assert (record["ModelName"], record["ModelTask"], record["ModelArchitecture"], record["ModelPaperDOIs"]) == (
        "qa-bert-beam-12", "machine_comprehension", None, [])
    assert (record["RepoSubPath"], record["Opset"], record["OnnxVersion"]) == (unlisted_dirs(layout)[0], 12, "1.7")
    assert record["id"] == stable_id("onnxmodelzoo", "qa-bert-beam-12.onnx")  # the same in both layouts
