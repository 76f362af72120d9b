import copy

import pytest
from jsonschema import Draft202012Validator

from ptmscrape.items import RawModelItem, load_schema
from ptmscrape.mappers.common import MappingError, stable_id
from ptmscrape.mappers.huggingface import map_raw
from tests.replicas.huggingface import fixture_models, synthetic_models

VALIDATOR = Draft202012Validator(load_schema())


def raw(payload, base="https://huggingface.co"):
    return RawModelItem(hub="huggingface", model_id=str(payload.get("id")), url=f"{base}/api/models",
                        payload=payload, context={"base_url": base})


def by_id(model_id):
    return next(m for m in fixture_models() if m["id"] == model_id)


def test_every_fixture_and_synthetic_model_maps_to_a_valid_record():
    for model in fixture_models() + synthetic_models(50):
        model["sha"] = model["sha"] or "a" * 40
        record = map_raw(raw(model))
        errors = [e.message for e in VALIDATOR.iter_errors(record)]
        assert errors == [], (model["id"], errors)


def test_ptmtorrent_keys_and_extensions_from_a_full_model():
    model = by_id("acme-research/vit-tiny-demo")
    model["sha"] = "3f49326eb077187dfe1c2a2bb15fbd74e6ab91e3"
    r = map_raw(raw(model))
    assert r["ModelName"] == "vit-tiny-demo" and r["ModelOwner"] == "acme-research"
    assert r["ModelURL"] == "https://huggingface.co/acme-research/vit-tiny-demo"
    assert r["ModelOwnerURL"] == "https://huggingface.co/acme-research"
    assert r["ModelHub"]["MetadataObjectID"] == "64c1a2f0e1d2c3b4a5968778"
    assert r["ModelHub"]["MetadataFilePath"] == "huggingface/json/metadata/acme-research/vit-tiny-demo.json"
    assert r["Datasets"] == [
        {"DatasetName": "imagenet-1k", "DatasetOwner": "", "DatasetURL": "https://huggingface.co/datasets/imagenet-1k",
         "DatasetOwnerURL": ""},
        {"DatasetName": "tiny-birds", "DatasetOwner": "acme-research",
         "DatasetURL": "https://huggingface.co/datasets/acme-research/tiny-birds",
         "DatasetOwnerURL": "https://huggingface.co/acme-research"},
    ]
    # arXiv ids become DataCite DOIs, version suffix dropped
    assert r["ModelPaperDOIs"] == ["10.48550/arXiv.2010.11929", "10.48550/arXiv.2006.03677"]
    assert r["LatestGitCommitSHA"] == model["sha"]
    assert (r["ModelTask"], r["ModelArchitecture"], r["License"]) == (
        "image-classification", "ViTForImageClassification", "apache-2.0")
    assert (r["Downloads"], r["DownloadsAllTime"], r["Likes"]) == (120345, 2345678, 42)
    assert (r["ParameterCount"], r["UsedStorage"], r["Library"]) == (5717416, 1376256, "transformers")
    assert r["RepoURL"] == "https://huggingface.co/acme-research/vit-tiny-demo"
    assert r["Gated"] is False


def test_base_models_languages_gating_and_doi_tags():
    r = map_raw(raw(by_id("llamaish/Tiny-Chat-1B-Instruct")))
    assert r["BaseModels"] == ["llamaish/Tiny-Chat-1B"]
    assert r["Languages"] == ["en", "de"]
    assert r["Gated"] == "manual"
    speech = map_raw(raw(by_id("speechy/sepformer-toy")))
    assert speech["ModelPaperDOIs"] == ["10.48550/arXiv.2010.13154", "10.1109/ICASSP39728.2021.9413901"]
    assert speech["Languages"] == ["en"]  # card data language as a plain string
    assert speech["ModelArchitecture"] is None  # no architectures, no model_type
    assert speech["LatestGitCommitSHA"] is None  # empty sha from the hub


def test_id_is_stable_and_survives_a_rename():
    model = by_id("google-bert/bert-base-uncased")
    renamed = copy.deepcopy(model)
    renamed["id"] = renamed["modelId"] = "bert-base-uncased"
    assert map_raw(raw(model))["id"] == map_raw(raw(renamed))["id"] == stable_id("huggingface", model["_id"])
    assert 0 < map_raw(raw(model))["id"] < 2**53


def test_wrong_types_are_dropped_field_by_field_not_fatal():
    model = by_id("acme-research/vit-tiny-demo")
    model.update(downloads="many", likes=-3, tags="not-a-list", cardData=["x"], config=None,
                 safetensors={"total": "big"}, gated=7, lastModified=12)
    r = map_raw(raw(model))
    assert (r["Downloads"], r["Likes"], r["Tags"], r["ParameterCount"], r["Gated"], r["LastModified"]) == (
        None, None, ["not-a-list"], None, None, None)
    assert list(VALIDATOR.iter_errors(r)) == []


def test_task_library_and_license_fall_back_to_the_card_then_the_tags():
    """Listings often leave ``pipeline_tag``/``library_name`` out while the model card has them;
    a card may list several licenses (the first is the model's), or none but a ``license:`` tag."""
    model = by_id("acme-research/vit-tiny-demo")
    del model["pipeline_tag"], model["library_name"]
    model["cardData"].update(pipeline_tag="image-segmentation", library_name="timm", license=["mit", "apache-2.0"])
    model["tags"] = [t for t in model["tags"] if not t.startswith("license:")] + ["license:cc-by-4.0"]
    r = map_raw(raw(model))
    assert (r["ModelTask"], r["Library"], r["License"]) == ("image-segmentation", "timm", "mit")
    del model["cardData"]["license"]
    assert map_raw(raw(model))["License"] == "cc-by-4.0"
    model["pipeline_tag"], model["library_name"] = "image-classification", "transformers"
    r = map_raw(raw(model))  # the listing's own fields come first
    assert (r["ModelTask"], r["Library"]) == ("image-classification", "transformers")


def test_counts_beyond_64_bits_are_dropped_so_every_exporter_can_hold_the_record():
    model = by_id("acme-research/vit-tiny-demo")
    model.update(downloads=10**30, likes=2**63 - 1, usedStorage=2**63, safetensors={"total": 10**40})
    r = map_raw(raw(model))
    assert (r["Downloads"], r["Likes"], r["UsedStorage"], r["ParameterCount"]) == (None, 2**63 - 1, None, None)


@pytest.mark.parametrize("payload, reason", [
    ([], "payload is list"),
    ({"downloads": 3}, "missing or malformed 'id'"),
    ({"id": "a/b/c"}, "missing or malformed 'id'"),
    ({"id": "has space/x"}, "missing or malformed 'id'"),
])
def test_unmappable_payloads_say_why(payload, reason):
    item = RawModelItem("huggingface", "x", "u", payload, {"base_url": "https://huggingface.co"})
    with pytest.raises(MappingError, match=reason):
        map_raw(item)


def test_times_are_written_as_every_hub_writes_them_utc_to_the_second():
    # The API serves milliseconds ("2022-03-02T23:29:04.000Z"); the dataset writes every time
    # as YYYY-MM-DDTHH:MM:SSZ (CrawledAt, Civitai, Ollama, ModelScope), so times of all hubs compare
    # and sort as one column.
    r = map_raw(raw(by_id("google-bert/bert-base-uncased")))
    assert (r["CreatedAt"], r["LastModified"]) == ("2022-03-02T23:29:04Z", "2024-02-19T11:06:12Z")
    offset = map_raw(raw({**by_id("google-bert/bert-base-uncased"), "lastModified": "2024-02-19T13:06:12.5+02:00",
                          "createdAt": "yesterday"}))
    assert (offset["CreatedAt"], offset["LastModified"]) == (None, "2024-02-19T11:06:12Z")
