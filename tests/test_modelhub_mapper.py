"""Modelhub mapper: index entries (our fixtures) -> records against the schema."""

import pytest
from jsonschema import Draft202012Validator

from ptmscrape.items import RawModelItem, load_schema
from ptmscrape.mappers.common import MappingError, stable_id
from ptmscrape.mappers.modelhub import map_raw
from tests.replicas.modelhub import fixture_models
from tests.test_modelhub_spider import INDEX, by_name

VALIDATOR = Draft202012Validator(load_schema())


def raw(entry):
    return RawModelItem(hub="modelhub", model_id=str(entry.get("id")), url=INDEX, payload=entry,
                        context={"base_url": INDEX})


def test_every_fixture_entry_maps_to_a_valid_record():
    for entry in fixture_models():
        record = map_raw(raw(entry))
        assert [e.message for e in VALIDATOR.iter_errors(record)] == [], entry["name"]


def test_record_fields_of_a_uuid_model():
    r = map_raw(raw(by_name("brats-cascade")))
    assert r["id"] == stable_id("modelhub", "a0b1c2d3-e4f5-4a6b-9c8d-7e6f5a4b3c2d")
    assert r["ModelHub"] == {
        "ModelHubName": "modelhub", "ModelHubURL": "https://modelhub.ai",
        "MetadataFilePath": "modelhub/json/metadata/_/a0b1c2d3-e4f5-4a6b-9c8d-7e6f5a4b3c2d.json",
        "MetadataObjectID": "a0b1c2d3-e4f5-4a6b-9c8d-7e6f5a4b3c2d",
    }
    assert (r["ModelName"], r["ModelOwner"]) == ("brats-cascade", "modelhub-ai")
    assert r["ModelURL"] == r["RepoURL"] == "https://github.com/modelhub-ai/brats-cascade"
    assert r["ModelOwnerURL"] == "https://github.com/modelhub-ai"
    assert r["ModelTask"] == "Brain Tumor Segmentation on MRI"
    assert (r["Tags"], r["Library"]) == (["pytorch", "gpu"], "pytorch")
    assert r["RepoBranch"] == "master" and r["LatestGitCommitSHA"] is None
    assert r["CloneStatus"] == "pending"


def test_short_ids_other_owners_and_colab_only_backends():
    kidney = map_raw(raw(by_name("colab_kidney")))
    assert kidney["ModelHub"]["MetadataObjectID"] == "0003"
    assert kidney["id"] == stable_id("modelhub", "0003")
    assert (kidney["Tags"], kidney["Library"]) == (["colab", "pytorch"], "pytorch")
    spleen = map_raw(raw(by_name("colab_spleen")))
    assert (spleen["Tags"], spleen["Library"]) == (["colab"], None)
    other = map_raw(raw(by_name("ToothMetalArtifact")))
    assert (other["ModelOwner"], other["ModelOwnerURL"]) == ("radlab-replica", "https://github.com/radlab-replica")
    assert kidney["ModelHub"]["MetadataFilePath"] == "modelhub/json/metadata/_/0003.json"  # the hub's id


def test_gpu_is_a_tag_only_when_the_index_says_true():
    """``"gpu": true`` adds the tag ``gpu`` once; anything else (false, or a string such as
    ``"false"`` that is truthy in Python) adds nothing."""
    entry = by_name("brats-cascade")
    assert map_raw(raw(dict(entry, gpu=True, backend=["pytorch", "gpu"])))["Tags"] == ["pytorch", "gpu"]
    for not_true in (False, "false", "yes", 1, None):
        assert map_raw(raw(dict(entry, gpu=not_true)))["Tags"] == ["pytorch"], not_true


def test_repo_url_spellings_are_normalised():
    entry = dict(by_name("tiny-squeeze"), github="https://github.com/modelhub-ai/tiny-squeeze.git/")
    assert map_raw(raw(entry))["RepoURL"] == "https://github.com/modelhub-ai/tiny-squeeze"


def test_an_entry_without_a_repository_maps_with_no_repo():
    entry = {k: v for k, v in by_name("tiny-squeeze").items() if k not in ("github", "github_branch")}
    r = map_raw(raw(entry))
    assert (r["RepoURL"], r["RepoBranch"], r["ModelOwner"], r["ModelURL"]) == (None, None, "", "")
    assert list(VALIDATOR.iter_errors(r)) == []


@pytest.mark.parametrize("entry, reason", [
    ("oops", "index entry is str"),
    ({"name": "x", "github": "https://github.com/a/b"}, "missing or malformed 'id'"),
    ({"id": 7, "name": "x"}, "missing or malformed 'id'"),
    ({"id": "0005", "name": ""}, "missing or malformed 'name'"),
    ({"id": "0005", "name": "x", "github": "modelhub-ai/x"}, "'github' is not a repository URL"),
])
def test_unmappable_entries_say_why(entry, reason):
    with pytest.raises(MappingError, match=reason):
        map_raw(RawModelItem(hub="modelhub", model_id="?", url=INDEX, payload=entry))
