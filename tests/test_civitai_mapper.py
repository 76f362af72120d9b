"""Civitai items -> records: versions, files, hashes, scans, license flags, NSFW; bad ids refused."""

import copy

import pytest
from jsonschema import Draft202012Validator

from ptmscrape.items import RawModelItem, load_schema
from ptmscrape.mappers.civitai import NO_REPOSITORY, map_raw
from ptmscrape.mappers.common import MappingError, stable_id
from tests.replicas.civitai import fixture_models

VALIDATOR = Draft202012Validator(load_schema())
BASE = "https://civitai.com"


def raw(payload, base=BASE):
    model_id = str(payload.get("id")) if isinstance(payload, dict) else "?"
    return RawModelItem(hub="civitai", model_id=model_id, url=f"{base}/api/v1/models", payload=payload,
                        context={"base_url": base})


def by_id(model_id):
    return copy.deepcopy(next(m for m in fixture_models() if m["id"] == model_id))


def errors(record):
    return [f"{'/'.join(map(str, e.absolute_path))}: {e.message}" for e in VALIDATOR.iter_errors(record)]


def test_every_fixture_model_maps_to_a_valid_record():
    for model in fixture_models():
        record = map_raw(raw(model))
        assert errors(record) == [], model["id"]
        assert record["CloneStatus"] == NO_REPOSITORY and record["RepoURL"] is None


def test_a_checkpoint_with_two_versions():
    r = map_raw(raw(by_id(43331)))
    assert (r["ModelName"], r["ModelOwner"]) == ("majicMIX realistic 麦橘写实", "Merjic")
    assert r["ModelURL"] == "https://civitai.com/models/43331"
    assert r["ModelOwnerURL"] == "https://civitai.com/user/Merjic"
    assert r["ModelHub"] == {"ModelHubName": "civitai", "ModelHubURL": BASE, "MetadataObjectID": "43331",
                             "MetadataFilePath": "civitai/json/metadata/Merjic/43331.json"}
    assert r["id"] == stable_id("civitai", "43331")
    assert (r["ModelType"], r["NSFW"], r["NSFWLevel"]) == ("Checkpoint", False, 31)
    assert (r["Downloads"], r["Likes"]) == (802158, 40107)
    assert r["Tags"] == ["base model", "asian", "realistic"] and r["BaseModels"] == ["SD 1.5"]
    # publishedAt comes without a zone ("2023-10-05T13:31:16.745"): UTC, written as the dataset writes times.
    assert (r["CreatedAt"], r["LastModified"]) == ("2023-10-05T13:31:16Z", "2023-11-11T16:15:55Z")
    assert r["LicensePermissions"] == {"AllowCommercialUse": ["Image"], "AllowDerivatives": True,
                                       "AllowDifferentLicense": True, "AllowNoCredit": True}
    v7, inpainting = r["ModelVersions"]
    assert (v7["Name"], v7["VersionID"], v7["BaseModel"]) == ("v7", "176425", "SD 1.5")
    (f,) = v7["Files"]
    assert f["Name"] == "majicmixRealistic_v7.safetensors" and f["Size"] == round(2082642.474609375 * 1024)
    assert f["Format"] == "SafeTensor" and f["Type"] == "Model" and f["Primary"] is True
    assert f["SHA256"] == f["Hashes"]["SHA256"].lower() and len(f["SHA256"]) == 64
    assert set(f["Hashes"]) == {"AutoV1", "AutoV2", "SHA256", "CRC32", "BLAKE3"}
    assert (f["PickleScan"], f["PickleScanMessage"], f["VirusScan"]) == ("Success", "No Pickle imports", "Success")
    assert f["URL"] == "https://civitai.com/api/download/models/176425"
    assert (v7["CreatedAt"], f["ScannedAt"]) == ("2023-10-05T13:31:16Z", "2023-10-05T12:16:37Z")
    assert r["UsedStorage"] == v7["Size"] + inpainting["Size"]


def test_each_version_keeps_its_downloads_base_model_type_trigger_words_and_download_link():
    r = map_raw(raw(by_id(43331)))
    v7, inpainting = r["ModelVersions"]
    assert (v7["Downloads"], v7["BaseModelType"], v7["TrainedWords"], v7["DownloadURL"]) == (
        263696, "Standard", [], "https://civitai.com/api/download/models/176425")
    assert (inpainting["Name"], inpainting["Downloads"], inpainting["BaseModelType"], inpainting["DownloadURL"]) == (
        "v7 inpainting", 12349, "Inpainting", "https://civitai.com/api/download/models/221343")
    assert r["Downloads"] == 802158  # the model's own count, not the versions' sum
    lora = map_raw(raw(by_id(82098)))
    assert lora["ModelVersions"][0]["TrainedWords"] == ["more detail"]
    version_keys = set(load_schema()["properties"]["ModelVersions"]["items"]["properties"])
    for model in fixture_models():
        assert all(set(v) == version_keys for v in map_raw(raw(model))["ModelVersions"]), model["id"]


def test_junk_in_the_new_version_fields_gives_nulls():
    model = by_id(82098)
    model["modelVersions"][0].update(stats={"downloadCount": -5}, baseModelType=["Standard"], downloadUrl=7,
                                     trainedWords=["ok", 3, None, "", "ok", "x" * 900])
    model["modelVersions"].append({"id": 1, "name": "bare"})  # no stats, type, words or link
    r = map_raw(raw(model))
    assert errors(r) == []
    junk, bare = r["ModelVersions"]
    assert (junk["Downloads"], junk["BaseModelType"], junk["DownloadURL"]) == (None, None, None)
    assert junk["TrainedWords"] == ["ok", "x" * 500]
    assert (bare["Downloads"], bare["BaseModelType"], bare["DownloadURL"], bare["TrainedWords"]) == (
        None, None, None, [])


def test_times_are_utc_in_the_datasets_format_and_ordered_as_times():
    model = by_id(133005)  # three versions, newest first
    newest, middle, oldest = model["modelVersions"]
    newest["publishedAt"] = "2024-01-09T00:00:00.000"  # no zone: UTC
    middle["publishedAt"] = "2024-01-08T23:30:00-02:00"  # 01:30 UTC on the 9th: the latest, though
    oldest["publishedAt"] = "2024-01-08T12:00:00.5+00:00"  # its text sorts before the first's
    oldest["files"][0]["scannedAt"] = "2024-01-08T13:00:00.999Z"
    r = map_raw(raw(model))
    assert errors(r) == []
    assert [v["CreatedAt"] for v in r["ModelVersions"]] == [
        "2024-01-09T00:00:00Z", "2024-01-09T01:30:00Z", "2024-01-08T12:00:00Z"]
    assert (r["CreatedAt"], r["LastModified"]) == ("2024-01-08T12:00:00Z", "2024-01-09T01:30:00Z")
    assert r["ModelVersions"][2]["Files"][0]["ScannedAt"] == "2024-01-08T13:00:00Z"


@pytest.mark.parametrize("junk", ["yesterday", "2024-13-01T00:00:00", "", "0005-01-01T00:00:00", 1704067200,
                                  None, ["2024-01-01"], "2024-01-01T00:00:00" + "0" * 100])
def test_an_unreadable_time_is_null_and_the_others_still_count(junk):
    model = by_id(133005)
    model["modelVersions"][0]["publishedAt"] = junk
    model["modelVersions"][0]["files"][0]["scannedAt"] = junk
    r = map_raw(raw(model))
    assert errors(r) == []
    assert r["ModelVersions"][0]["CreatedAt"] is None and r["ModelVersions"][0]["Files"][0]["ScannedAt"] is None
    assert (r["CreatedAt"], r["LastModified"]) == ("2024-01-08T12:00:00Z", "2024-04-21T09:30:00Z")


def test_scan_results_and_secondary_files_are_kept():
    r = map_raw(raw(by_id(5529)))  # EasyNegative: no creator, a pickle file flagged Danger
    assert (r["ModelOwner"], r["ModelOwnerURL"]) == ("", "")
    assert r["ModelHub"]["MetadataFilePath"] == "civitai/json/metadata/_/5529.json"
    safetensors, pickle_file = r["ModelVersions"][0]["Files"]
    assert (pickle_file["Format"], pickle_file["Primary"]) == ("PickleTensor", None)
    assert (pickle_file["PickleScan"], pickle_file["PickleScanMessage"]) == (
        "Danger", "Dangerous import detected: builtins.eval")
    assert (pickle_file["VirusScan"], pickle_file["ScannedAt"]) == ("Pending", None)


def test_a_versions_size_is_its_primary_files_and_the_models_storage_all_files():
    """A version's download link gives its primary file: the size of the version is that file's, not
    the sum of alternative copies of one model (the real Counterfeit-V3.0 v3.0 had a 5.67 GB and a
    4.24 GB file: 9.9 GB); UsedStorage is every file the model page offers."""
    model = by_id(5529)
    safetensors, pickle_file = model["modelVersions"][0]["files"]
    assert safetensors.get("primary") is True and not pickle_file.get("primary")
    r = map_raw(raw(model))
    primary, other = r["ModelVersions"][0]["Files"]
    assert r["ModelVersions"][0]["Size"] == primary["Size"] != primary["Size"] + other["Size"]
    assert r["UsedStorage"] == sum(f["Size"] for v in r["ModelVersions"] for f in v["Files"])
    for f in model["modelVersions"][0]["files"]:
        f.pop("primary", None)  # none marked: every file counts
    assert map_raw(raw(model))["ModelVersions"][0]["Size"] == primary["Size"] + other["Size"]


def test_license_flags_old_and_new_shapes_and_nsfw_as_data():
    assert map_raw(raw(by_id(7240)))["LicensePermissions"] == {  # older answers: one string
        "AllowCommercialUse": ["Sell"], "AllowDerivatives": False, "AllowDifferentLicense": False,
        "AllowNoCredit": False}
    nsfw = map_raw(raw(by_id(9001)))
    assert (nsfw["NSFW"], nsfw["NSFWLevel"], nsfw["LicensePermissions"]["AllowCommercialUse"]) == (True, 28, [])
    model = by_id(9001)
    model["allowCommercialUse"] = "None"
    assert map_raw(raw(model))["LicensePermissions"]["AllowCommercialUse"] == []


def test_the_base_url_is_the_model_and_owner_urls_base():
    r = map_raw(raw(by_id(4201), base="http://127.0.0.1:9/mirror"))
    assert r["ModelURL"] == "http://127.0.0.1:9/mirror/models/4201"
    assert r["ModelHub"]["ModelHubURL"] == "http://127.0.0.1:9/mirror"


@pytest.mark.parametrize("bad_id", [None, True, 0, -3, 1.5, "../../etc", "12/34", "", "١٢", "9" * 30])
def test_a_model_without_a_usable_id_is_refused_with_the_reason(bad_id):
    model = by_id(4201)
    model["id"] = bad_id
    with pytest.raises(MappingError, match="'id'"):
        map_raw(raw(model))


def test_digit_string_ids_are_accepted_and_a_missing_name_is_refused():
    model = by_id(4201)
    model["id"] = "4201"
    assert map_raw(raw(model))["id"] == map_raw(raw(by_id(4201)))["id"]
    model["name"] = "  "
    with pytest.raises(MappingError, match="no name"):
        map_raw(raw(model))
    with pytest.raises(MappingError, match="not an object"):
        map_raw(raw(["not", "a", "model"]))


def test_wrong_types_and_huge_values_still_give_a_valid_bounded_record():
    model = by_id(82098)
    model.update(nsfw="yes", nsfwLevel=-1, allowDerivatives="true", tags="one-tag", stats=[1, 2],
                 creator={"username": "../../" + "x" * 5000}, type=["LORA"])
    version = model["modelVersions"][0]
    version["files"] += ["not a file", {"sizeKB": "12", "hashes": ["SHA256"], "metadata": None,
                                        "primary": "yes", "name": 7}]
    version["files"][0]["hashes"]["SHA256"] = "not-a-hash"
    version["files"][0]["sizeKB"] = float("inf")
    model["modelVersions"].append("junk")
    r = map_raw(raw(model))
    assert errors(r) == []
    assert (r["NSFW"], r["NSFWLevel"], r["ModelType"], r["Downloads"]) == (None, None, None, None)
    assert r["Tags"] == ["one-tag"] and len(r["ModelOwner"]) <= 200
    assert "/../" not in r["ModelHub"]["MetadataFilePath"].split("metadata/", 1)[1]
    assert r["ModelOwnerURL"].startswith("https://civitai.com/user/..%2F..%2F")
    first, junk = r["ModelVersions"][0]["Files"]
    assert (first["SHA256"], first["Size"]) == (None, None)
    assert (junk["Size"], junk["Hashes"], junk["Primary"], junk["Name"]) == (None, {}, None, None)
    assert len(r["ModelVersions"]) == 1
