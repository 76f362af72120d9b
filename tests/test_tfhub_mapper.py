"""TensorFlow Hub mapper: documentation payloads (built by the spider from our fixtures) -> records."""

import pytest
from jsonschema import Draft202012Validator

from ptmscrape.items import RawModelItem, load_schema
from ptmscrape.mappers.common import MappingError, stable_id
from ptmscrape.mappers.tfhub import map_raw
from spiders.tfhub import parse_doc
from tests.replicas.tfhub import FIXTURES, MODELS

VALIDATOR = Draft202012Validator(load_schema())
REPO = "https://github.com/tensorflow/tfhub.dev"


def raw(payload, repo_url=REPO):
    return RawModelItem(hub="tfhub", model_id=str(payload.get("handle") if isinstance(payload, dict) else ""),
                        url="http://x", payload=payload, context={"repo_url": repo_url})


def record_of(path):
    page = {**parse_doc((FIXTURES / path).read_text(), path), "path": path}
    return map_raw(raw(page))


@pytest.mark.parametrize("path", sorted(MODELS))
def test_every_fixture_model_maps_to_a_valid_record(path):
    record = record_of(path)
    assert list(VALIDATOR.iter_errors(record)) == []
    assert record["ModelHub"]["MetadataObjectID"] == MODELS[path]
    assert record["id"] == stable_id("tfhub", MODELS[path])
    assert (record["RepoURL"], record["RepoSubPath"]) == (REPO, path)


def test_metadata_files_are_one_per_version():
    paths = {record_of(p)["ModelHub"]["MetadataFilePath"] for p in MODELS}
    assert len(paths) == len(MODELS)
    assert "tfhub/json/metadata/google/albert_base%2F3.json" in paths


def test_albert_record_fields():
    r = record_of("assets/docs/google/models/albert_base/3.md")
    assert (r["ModelOwner"], r["ModelName"], r["ModelVersion"]) == ("google", "albert_base/3", "3")
    assert (r["ModelURL"], r["ModelOwnerURL"]) == ("https://tfhub.dev/google/albert_base/3", "https://tfhub.dev/google")
    assert (r["ModelTask"], r["ModelArchitecture"], r["Library"]) == ("text-embedding", "Transformer", "tensorflow")
    assert (r["ModelFormat"], r["FineTunable"], r["License"]) == ("hub", True, None)
    assert [d["DatasetName"] for d in r["Datasets"]] == ["wikipedia", "bookscorpus"]
    assert r["Languages"] == ["en"] and r["Tags"] == ["text-embedding"]
    assert r["ModelPaperDOIs"] == ["10.48550/arXiv.1909.11942"]
    assert r["Files"] == []  # asset-path: legacy names no file; a list key is [] as on every hub


@pytest.mark.parametrize("asset", ["legacy", "gs://bucket/model.tar.gz", "", None])
def test_an_asset_path_that_is_no_url_gives_no_files_as_an_empty_list(asset):
    path = "assets/docs/deepmind/models/i3d-kinetics-400/1.md"  # asset-path: legacy
    page = {**parse_doc((FIXTURES / path).read_text(), path), "path": path}
    assert page["metadata"]["asset-path"] == ["legacy"]
    if asset != "legacy":
        page["metadata"]["asset-path"] = [asset] if asset is not None else []
    record = map_raw(raw(page))
    assert record["Files"] == [] and list(VALIDATOR.iter_errors(record)) == []


def test_license_asset_url_doi_link_and_nested_model_path():
    r = record_of("assets/docs/google/models/imagenet/mobilenet_v2_100_224/classification/4.md")
    assert r["ModelName"] == "imagenet/mobilenet_v2_100_224/classification/4"
    assert (r["License"], r["ModelFormat"], r["FineTunable"]) == ("apache-2.0", "saved_model_2", True)
    assert r["Files"] == [{"Name": "4.tar.gz", "Size": None, "SHA256": None, "URL":
                           "https://storage.googleapis.com/tfhub-modules/google/imagenet/mobilenet_v2_100_224/classification/4.tar.gz"}]
    assert r["ModelPaperDOIs"] == ["10.1109/CVPR.2018.00474"]


def test_deployments_have_their_format_library_parent_and_documentation_page():
    lite = record_of("assets/docs/google/models/aiy/vision/classifier/birds_V1/lite/1.md")
    assert (lite["ModelFormat"], lite["Library"], lite["ModelVersion"]) == ("lite", "tflite", "1")
    assert lite["BaseModels"] == ["google/aiy/vision/classifier/birds_V1/1"]
    assert lite["ModelURL"] == f"{REPO}/blob/HEAD/assets/docs/google/models/aiy/vision/classifier/birds_V1/lite/1.md"
    assert lite["Files"][0]["URL"].endswith("model-with-metadata.tflite")
    parent = record_of("assets/docs/google/models/aiy/vision/classifier/birds_V1/1.md")
    assert parent["id"] != lite["id"] and parent["FineTunable"] is False
    tfjs = record_of("assets/docs/google/models/imagenet/mobilenet_v2_100_224/classification/4/default/tfjs/1.md")
    assert (tfjs["ModelFormat"], tfjs["Library"]) == ("tfjs", "tensorflow.js")


def test_task_comment_and_community_license():
    r = record_of("assets/docs/vasudevgupta7/models/wav2vec2/1.md")
    assert (r["ModelTask"], r["License"], r["ModelOwner"]) == ("audio-speech-to-text", "mit", "vasudevgupta7")
    assert r["ModelPaperDOIs"] == ["10.48550/arXiv.2006.11477"]


def test_repository_comes_from_the_context_and_a_prefixed_mirror_changes_no_identity():
    path = "assets/docs/google/models/albert_base/3.md"
    page = {**parse_doc((FIXTURES / path).read_text(), path), "path": path}
    mirrored = map_raw(raw(page, repo_url="http://127.0.0.1:9/mirror/tensorflow/tfhub.dev/"))
    plain = map_raw(raw(page))
    assert mirrored["RepoURL"] == "http://127.0.0.1:9/mirror/tensorflow/tfhub.dev"
    assert (mirrored["id"], mirrored["ModelOwner"], mirrored["ModelHub"]["MetadataFilePath"]) == (
        plain["id"], plain["ModelOwner"], plain["ModelHub"]["MetadataFilePath"])
    # The shared clone is named by the repository's owner/name, as docs/hubs.md says, not by the
    # mirror URL's path (which would give tfhub/repos/mirror/tensorflow/tfhub.dev).
    assert mirrored["RepoPath"] == plain["RepoPath"] == "tfhub/repos/tensorflow/tfhub.dev"


def test_paper_links_lose_the_punctuation_that_follows_them():
    from ptmscrape.mappers.repo_files import paper_dois

    assert paper_dois(["https://arxiv.org/abs/1909.11942.", " https://doi.org/10.1109/CVPR.2018.00474; ",
                       "https://arxiv.org/pdf/2006.11477v3.pdf,", "https://arxiv.org/abs/.", "https://doi.org/:"]) == [
        "10.48550/arXiv.1909.11942", "10.1109/CVPR.2018.00474", "10.48550/arXiv.2006.11477"]


@pytest.mark.parametrize("payload, reason", [
    ([], "not an object"),
    ({"path": "assets/docs/a/models/b/1.md"}, "no TF Hub handle"),
    ({"handle": "nohandle", "path": "assets/docs/a/models/b/1.md"}, "no TF Hub handle"),
    ({"handle": "a//1", "path": "assets/docs/a/models/b/1.md"}, "no TF Hub handle"),
    ({"handle": "a/b/1", "path": "assets/docs/../../etc/passwd"}, "unsafe or missing documentation path"),
    ({"handle": "a/b/1"}, "unsafe or missing documentation path"),
])
def test_unmappable_payloads_name_the_reason(payload, reason):
    with pytest.raises(MappingError, match=reason):
        map_raw(raw(payload))


def test_junk_in_metadata_and_links_is_tolerated():
    record = map_raw(raw({"handle": "..%2F/../1", "path": "assets/docs/x/models/y/1.md", "kind": 5,
                          "metadata": {"dataset": "notalist", "license": [None, 3, "bsd"], 7: ["x"],
                                       "fine-tunable": ["maybe"], "asset-path": ["file:///etc/passwd"]},
                          "links": "nope", "heading_handle": ["x"]}))
    assert list(VALIDATOR.iter_errors(record)) == []
    assert (record["License"], record["FineTunable"], record["Files"], record["Datasets"]) == ("bsd", None, [], [])
    assert record["ModelHub"]["MetadataFilePath"].startswith("tfhub/json/metadata/%2E.%252F/")


@pytest.mark.parametrize("written, fine_tunable", [("true", True), ("True", True), ("FALSE", False), ("false", False),
                                                    ("yes", None)])
def test_fine_tunable_is_read_whatever_its_case(written, fine_tunable):
    """The metadata comments are hand-written markdown: ``fine-tunable: True`` means what ``true`` does."""
    record = map_raw(raw({"handle": "acme/m/1", "path": "assets/docs/acme/models/m/1.md",
                          "metadata": {"fine-tunable": [written]}}))
    assert record["FineTunable"] is fine_tunable
