import copy

import pytest
from jsonschema import Draft202012Validator

from ptmscrape.items import RawModelItem, load_schema
from ptmscrape.mappers.common import MappingError, stable_id
from ptmscrape.mappers.modelscope import map_raw
from tests.replicas.modelscope import fixture_models, synthetic_models

VALIDATOR = Draft202012Validator(load_schema())
BASE = "https://www.modelscope.cn"


def raw(payload, base=BASE, listed_owner=None):
    return RawModelItem(hub="modelscope", model_id="x", url=f"{base}/api/v1/dolphin/models",
                        payload=payload, context={"base_url": base, "listed_owner": listed_owner})


def by_name(name):
    return copy.deepcopy(next(m for m in fixture_models() if m["Name"] == name))


def test_every_fixture_and_synthetic_model_maps_to_a_valid_record():
    for model in fixture_models() + synthetic_models(40):
        record = map_raw(raw(model))
        assert [e.message for e in VALIDATOR.iter_errors(record)] == [], model["Name"]


def test_ptmtorrent_keys_and_extensions_from_a_full_model():
    r = map_raw(raw(by_name("nlp_structbert_backbone_base_std")))
    assert (r["ModelOwner"], r["ModelName"]) == ("iic", "nlp_structbert_backbone_base_std")
    assert r["ModelURL"] == f"{BASE}/models/iic/nlp_structbert_backbone_base_std"
    assert r["ModelOwnerURL"] == f"{BASE}/organization/iic"
    assert r["ModelHub"] == {"ModelHubName": "modelscope", "ModelHubURL": BASE,
                             "MetadataFilePath": "modelscope/json/metadata/iic/nlp_structbert_backbone_base_std.json",
                             "MetadataObjectID": "300112"}
    assert r["id"] == stable_id("modelscope", "iic/nlp_structbert_backbone_base_std")
    assert r["RepoURL"] == f"{BASE}/iic/nlp_structbert_backbone_base_std.git"
    assert r["RepoBranch"] is None and r["LatestGitCommitSHA"] is None  # the listing gives no commit
    assert r["ModelPaperDOIs"] == ["10.48550/arXiv.1908.04577"]
    assert (r["ModelTask"], r["ModelTasks"]) == ("fill-mask", ["fill-mask"])
    assert r["ModelArchitecture"] == "SbertForMaskedLM"
    assert (r["License"], r["Downloads"], r["Likes"]) == ("Apache License 2.0", 812345, 37)
    assert r["Library"] == "pytorch" and r["Tags"] == ["structbert", "backbone", "chinese"]
    assert (r["CreatedAt"], r["LastModified"]) == ("2022-11-01T00:00:00Z", "2023-11-01T00:00:00Z")
    assert r["DisplayName"] == "StructBERT预训练模型-中文-base"
    assert r["CloneStatus"] == "pending"


def test_a_chinese_name_that_is_the_name_again_is_no_display_name():
    # The schema's DisplayName is the hub's human-readable name "when it differs from ModelName".
    model = fixture_models()[0]
    assert map_raw(raw({**model, "ChineseName": model["Name"]}))["DisplayName"] is None
    assert map_raw(raw({**model, "ChineseName": f" {model['Name']} "}))["DisplayName"] is None


def test_task_names_iso_times_arxiv_versions_and_user_owners():
    r = map_raw(raw(by_name("Qwen2.5-0.5B-Instruct")))
    assert r["ModelTasks"] == ["text-generation", "chat"] and r["ModelTask"] == "text-generation"
    assert r["CreatedAt"] == "2024-09-18T08:00:00Z"  # ISO text
    assert r["ModelPaperDOIs"] == ["10.48550/arXiv.2407.10671"]
    user = map_raw(raw(by_name("sd-lora-inkwash")))
    assert user["ModelOwnerURL"] == f"{BASE}/profile/zhang-wei"  # no Organization: a user
    assert user["License"] is None and user["ModelArchitecture"] is None
    plain = map_raw(raw(by_name("Qwen2.5-7B-Instruct")))
    assert plain["ModelTasks"] == ["text-generation"]  # tasks given as plain names


def test_identity_is_the_hub_id_not_the_base_url():
    model = by_name("bert-base-uncased")
    mirror = map_raw(raw(model, base="http://127.0.0.1:8/mirror/ms/"))
    assert mirror["id"] == map_raw(raw(model))["id"]
    assert mirror["RepoURL"] == "http://127.0.0.1:8/mirror/ms/AI-ModelScope/bert-base-uncased.git"
    assert mirror["ModelHub"]["MetadataFilePath"] == "modelscope/json/metadata/AI-ModelScope/bert-base-uncased.json"
    model.pop("Id")
    assert map_raw(raw(model))["ModelHub"]["MetadataObjectID"] == "AI-ModelScope/bert-base-uncased"
    assert map_raw(raw(model))["id"] == mirror["id"]  # same model, with or without the numeric Id


def test_per_owner_listing_without_path_uses_the_owner_asked_for():
    model = by_name("Qwen2.5-7B-Instruct")
    model.pop("Path")
    assert map_raw(raw(model, listed_owner="Qwen"))["ModelOwner"] == "Qwen"
    with pytest.raises(MappingError, match="'Path'"):
        map_raw(raw(model))


@pytest.mark.parametrize("payload, reason", [
    ("junk", "payload is str, not an object"),
    ({"Path": "iic"}, "missing or malformed 'Name'"),
    ({"Path": "iic", "Name": ""}, "missing or malformed 'Name'"),
    ({"Path": "iic", "Name": "../../etc"}, "missing or malformed 'Name'"),
    ({"Path": "a/b", "Name": "c"}, "missing or malformed 'Path'"),
    ({"Path": 7, "Name": "c"}, "missing or malformed 'Path'"),
    ({"Path": "a", "Name": "x\\..\\y"}, "missing or malformed 'Name'"),
])
def test_unmappable_payloads_raise_a_reason(payload, reason):
    with pytest.raises(MappingError, match=reason.replace("(", r"\(")):
        map_raw(raw(payload))


def test_odd_ids_are_kept_with_safe_urls_and_paths():
    r = map_raw(raw({"Path": "..", "Name": "名字 #?x", "Id": 1}))
    assert r["ModelHub"]["MetadataFilePath"].startswith("modelscope/json/metadata/%2E./")
    assert r["RepoURL"] == f"{BASE}/../%E5%90%8D%E5%AD%97%20%23%3Fx.git"  # the clone stage refuses '..'
    assert [e.message for e in VALIDATOR.iter_errors(r)] == []


def test_wrong_types_and_huge_strings_give_a_valid_bounded_record():
    model = {"Path": "p", "Name": "n", "Id": True, "Downloads": "many", "Stars": -1, "Likes": 4,
             "License": ["x"], "Tasks": [{"Name": 5}, None, "asr", {"Name": "asr"}], "Tags": "one",
             "CreatedTime": 10**15, "LastUpdatedTime": float("nan"), "ChineseName": "名" * 10_000,
             "RelatedArxivId": ["not an id", 12], "Architectures": {}, "ModelType": ["bert"],
             "Libraries": None, "Frameworks": ["onnx"], "Organization": "iic"}
    r = map_raw(raw(model))
    assert [e.message for e in VALIDATOR.iter_errors(r)] == []
    assert r["ModelHub"]["MetadataObjectID"] == "p/n"  # a bool is no id
    assert (r["Downloads"], r["Likes"], r["License"]) == (None, 4, None)
    assert r["ModelTasks"] == ["asr"] and r["Tags"] == ["one"]
    assert (r["CreatedAt"], r["LastModified"]) == (None, None)
    assert len(r["DisplayName"]) == 500 and r["ModelPaperDOIs"] == []
    assert (r["ModelArchitecture"], r["Library"]) == ("bert", "onnx")
    assert r["ModelOwnerURL"] == f"{BASE}/profile/p"


def test_text_times_are_written_as_every_time_in_the_dataset_utc_to_the_second():
    # CreatedTime/LastUpdatedTime come as Unix seconds or as text: text with a zone offset (the
    # hub is in UTC+8), milliseconds or digits must not reach the record as written, where every
    # other time (CrawledAt, the other hubs') is YYYY-MM-DDTHH:MM:SSZ.
    model = by_name("Qwen2.5-0.5B-Instruct")
    r = map_raw(raw({**model, "CreatedTime": "2024-09-18T16:00:00+08:00",
                     "LastUpdatedTime": "2024-09-25T10:30:00.250Z"}))
    assert (r["CreatedAt"], r["LastModified"]) == ("2024-09-18T08:00:00Z", "2024-09-25T10:30:00Z")
    r = map_raw(raw({**model, "CreatedTime": "1667260800", "LastUpdatedTime": "last week"}))
    assert (r["CreatedAt"], r["LastModified"]) == ("2022-11-01T00:00:00Z", None)
    r = map_raw(raw({**model, "CreatedTime": "20240918", "LastUpdatedTime": "2024"}))
    assert (r["CreatedAt"], r["LastModified"]) == ("2024-09-18T00:00:00Z", None)
