"""OpenVINO Open Model Zoo mapper: model.yml payloads (parsed as the spider does) -> records."""

import pytest
from jsonschema import Draft202012Validator

from ptmscrape.items import RawModelItem, load_schema
from ptmscrape.mappers.common import MappingError, stable_id
from ptmscrape.mappers.openvino import map_raw
from spiders.openvino import MODEL_FILE, load_yaml
from tests.replicas.openvino import FIXTURES, MODELS

VALIDATOR = Draft202012Validator(load_schema())
REPO = "https://github.com/openvinotoolkit/open_model_zoo"


def payload_of(model_dir):
    m = MODEL_FILE.match(f"{model_dir}/model.yml")
    return {"group": m["group"], "name": m["name"], "folder": m["folder"], "model_dir": model_dir,
            "model": load_yaml((FIXTURES / model_dir / "model.yml").read_text())}


def raw(payload, repo_url=REPO):
    return RawModelItem(hub="openvino", model_id="x", url="http://x", payload=payload,
                        context={"repo_url": repo_url})


def record_of(model_dir):
    return map_raw(raw(payload_of(model_dir)))


@pytest.mark.parametrize("model_dir", sorted(MODELS))
def test_every_fixture_model_maps_to_a_valid_record(model_dir):
    record = record_of(model_dir)
    assert list(VALIDATOR.iter_errors(record)) == []
    assert record["ModelHub"]["MetadataObjectID"] == MODELS[model_dir]
    assert record["id"] == stable_id("openvino", MODELS[model_dir])
    assert (record["RepoURL"], record["RepoSubPath"]) == (REPO, model_dir)
    assert record["ModelURL"] == f"{REPO}/tree/HEAD/{model_dir}"


def test_intel_ir_model_files_sizes_and_hashes():
    r = record_of("models/intel/person-detection-0200")
    assert (r["ModelOwner"], r["ModelName"], r["ModelOwnerURL"]) == (
        "intel", "person-detection-0200", f"{REPO}/tree/HEAD/models/intel")
    assert (r["ModelTask"], r["Library"], r["ModelFormat"]) == ("detection", "dldt", "openvino_ir")
    assert r["License"] == "https://raw.githubusercontent.com/opencv/open_model_zoo/master/LICENSE"
    assert [f["Name"] for f in r["Files"]][:2] == ["FP32/person-detection-0200.xml", "FP32/person-detection-0200.bin"]
    assert all(len(f["SHA256"]) == 64 and f["URL"].startswith("https://storage.openvinotoolkit.org/")
               for f in r["Files"])
    assert r["UsedStorage"] == 187842 + 7269168 + 187779 + 3634626 + 492835 + 1921625
    assert r["Tags"] == ["intel", "detection", "dldt"]


def test_public_model_framework_license_paper_and_a_drive_source():
    r = record_of("models/public/resnet-50-pytorch")
    assert (r["Library"], r["ModelFormat"], r["ModelTask"]) == ("pytorch", None, "classification")
    assert r["ModelPaperDOIs"] == ["10.48550/arXiv.1512.03385"]
    assert r["Tags"] == ["public", "classification", "pytorch", "quantizable"]
    assert r["Files"] == [{"Name": "resnet50-19c8e357.pth", "Size": 102502400, "URL":
                           "https://download.pytorch.org/models/resnet50-19c8e357.pth",
                           "SHA256": "19c8e3572231adff6824a2da93fd67b5986919a2e65f8b6007eab4edee220097"}]
    google = record_of("models/public/googlenet-v1-tf")
    # {$type: google_drive, id: ...}: the URL Open Model Zoo's downloader fetches the id from.
    assert google["Files"][1] == {
        "Name": "googlenet-v1-tf.frozen.pb", "Size": 26735789,
        "SHA256": "0e6d6b8ee2b3a0d1e4f6b95bbd6b0a7e0e6a4bbcf0a0dbf2c7b6e0d1a9f7c3e4",
        "URL": "https://docs.google.com/uc?export=download&id=1Bq1vWqzTmcA1OqTH9aLBTq1WfpCqkmmr"}
    assert google["UsedStorage"] == 24642554 + 26735789


def test_a_prefixed_mirror_changes_no_identity_and_not_the_clone_folder():
    plain = record_of("models/intel/person-detection-0200")
    mirrored = map_raw(raw(payload_of("models/intel/person-detection-0200"),
                           repo_url="https://mirror.example/gh/openvinotoolkit/open_model_zoo.git/"))
    assert mirrored["RepoURL"] == "https://mirror.example/gh/openvinotoolkit/open_model_zoo.git"
    assert (mirrored["id"], mirrored["ModelHub"]["MetadataFilePath"]) == (
        plain["id"], plain["ModelHub"]["MetadataFilePath"])
    # The shared clone is named by the repository's owner/name (docs/hubs.md), not by the URL's path.
    assert mirrored["RepoPath"] == plain["RepoPath"] == "openvino/repos/openvinotoolkit/open_model_zoo"


@pytest.mark.parametrize("source, url", [
    ({"$type": "google_drive", "id": "0B-ABC_def123"}, "https://docs.google.com/uc?export=download&id=0B-ABC_def123"),
    ({"$type": "http", "url": "https://example.org/w.bin"}, "https://example.org/w.bin"),
    ({"$type": "google_drive", "id": "abc&confirm=t"}, None),  # no parameter smuggled into the URL
    ({"$type": "google_drive", "id": "abc#x"}, None),
    ({"$type": "google_drive", "id": "../../evil"}, None),
    ({"$type": "google_drive", "id": "a b"}, None),
    ({"$type": "google_drive", "id": "abc\n"}, None),
    ({"$type": "google_drive", "id": ""}, None),
    ({"$type": "google_drive", "id": 12345}, None),
    ({"$type": "google_drive", "id": "x" * 201}, None),
    ({"$type": "google_drive"}, None),
    ({"$type": "ftp", "id": "abc"}, None),
    (["https://example.org/w.bin"], None),
])
def test_file_sources_in_each_form_the_downloader_takes(source, url):
    record = map_raw(raw({"group": "public", "name": "m", "model_dir": "models/public/m", "model": {
        "files": [{"name": "w.bin", "size": 1, "sha256": "ab" * 32, "source": source}]}}))
    assert list(VALIDATOR.iter_errors(record)) == []
    assert record["Files"][0]["URL"] == url


def test_paper_links_ending_a_sentence_give_their_dois():
    description = ("ResNet, described in https://arxiv.org/abs/1512.03385. Its CVPR version: "
                   "https://doi.org/10.1109/CVPR.2016.90. See also https://arxiv.org/abs/1603.05027v3, "
                   "https://arxiv.org/abs/1409.4842; and https://doi.org/10.1109/CVPR.2015.7298594:")
    record = map_raw(raw({"group": "public", "name": "m", "model_dir": "models/public/m",
                          "model": {"description": description}}))
    assert record["ModelPaperDOIs"] == ["10.48550/arXiv.1512.03385", "10.1109/CVPR.2016.90",
                                        "10.48550/arXiv.1603.05027", "10.48550/arXiv.1409.4842",
                                        "10.1109/CVPR.2015.7298594"]


def test_composite_parts_are_separate_models_with_separate_payload_files():
    parts = [record_of(d) for d in MODELS if "formula" in d]
    assert {p["ModelName"] for p in parts} == {"formula-recognition-medium-scan-0001-im2latex-encoder",
                                                "formula-recognition-medium-scan-0001-im2latex-decoder"}
    assert len({p["ModelHub"]["MetadataFilePath"] for p in parts}) == 2


@pytest.mark.parametrize("payload, reason", [
    ("x", "not an object"),
    ({"group": "evil", "name": "a", "model_dir": "models/evil/a", "model": {}}, "no model group and name"),
    ({"group": "intel", "name": "", "model_dir": "models/intel/a", "model": {}}, "no model group and name"),
    ({"group": "intel", "name": "a", "model_dir": "models/intel/../../a", "model": {}},
     "unsafe or missing model folder"),
    ({"group": "intel", "name": "a", "model_dir": "models/intel/a", "model": ["x"]}, "not a mapping"),
])
def test_unmappable_payloads_name_the_reason(payload, reason):
    with pytest.raises(MappingError, match=reason):
        map_raw(raw(payload))


def test_junk_in_model_yml_fields_gives_a_valid_record():
    record = map_raw(raw({"group": "public", "name": "..", "model_dir": "models/public/%2e%2e", "model": {
        "task_type": ["x"], "framework": 3, "license": None, "description": 5,
        "files": [{"name": "a", "size": -1, "sha256": "XYZ", "source": {"$type": "drive"}}, "junk",
                  {"name": 7, "size": True, "sha256": "AB" * 32}],
    }}))
    assert list(VALIDATOR.iter_errors(record)) == []
    assert record["Files"] == [{"Name": "a", "Size": None, "SHA256": None, "URL": None},
                               {"Name": "", "Size": None, "SHA256": "ab" * 32, "URL": None}]
    assert (record["UsedStorage"], record["ModelTask"], record["Library"]) == (None, None, None)
    assert record["ModelHub"]["MetadataFilePath"] == "openvino/json/metadata/public/%2E..json"


def test_a_tensorflow_model_has_the_library_every_other_hub_names_tensorflow():
    # The zoo writes "framework: tf"; TF Hub, ModelZoo and Modelhub records say "tensorflow", so a
    # count of models per Library would else split TensorFlow in two.
    r = record_of("models/public/googlenet-v1-tf")
    assert r["Library"] == "tensorflow"
    assert "tf" in r["Tags"]  # the zoo's own word stays among the tags


@pytest.mark.parametrize("quantizable, tagged", [(True, True), (False, False), ("false", False), ("no", False),
                                                 (1, False), (None, False)])
def test_only_a_yaml_true_makes_a_model_quantizable(quantizable, tagged):
    """``quantizable: yes`` is YAML 1.1's true; a quoted ``"false"`` or ``"no"`` (text) must not tag it."""
    payload = payload_of("models/public/resnet-50-pytorch")
    payload["model"]["quantizable"] = quantizable
    assert ("quantizable" in map_raw(raw(payload))["Tags"]) is tagged
