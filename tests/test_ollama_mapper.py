"""Ollama payloads -> records: tags as versions with layer digests and sizes, pulls, dates."""

import copy
import hashlib
import json

import pytest
from jsonschema import Draft202012Validator

from ptmscrape.items import RawModelItem, load_schema
from ptmscrape.mappers.common import MappingError, stable_id
from ptmscrape.mappers.ollama import NO_REPOSITORY, _date, _pulls, map_raw
from tests.replicas.ollama import manifest_bytes

VALIDATOR = Draft202012Validator(load_schema())
BASE = "https://ollama.com"


def payload(name="llama3.2", tags=("latest", "1b", "3b"), **fields):
    def tag(t):
        body = manifest_bytes(name, t)
        return {"Tag": t, "ShortDigest": hashlib.sha256(body).hexdigest()[:12], "Size": "2.0GB", "Context": "128K",
                "Input": "Text", "Manifest": json.loads(body),
                "ManifestDigest": "sha256:" + hashlib.sha256(body).hexdigest(), "Error": None}
    return {"Namespace": "library", "Name": name, "Description": "Meta's Llama 3.2 goes small.",
            "Capabilities": ["tools"], "Sizes": ["1b", "3b"], "PullCount": "31.5M", "TagCount": "3",
            "Updated": "10 months ago", "UpdatedAt": "Sep 25, 2024 5:01 PM UTC",
            "URL": f"{BASE}/library/{name}", "Tags": [tag(t) for t in tags], **fields}


def raw(p, base=BASE):
    return RawModelItem(hub="ollama", model_id=f"library/{p.get('Name')}", url=f"{base}/library", payload=p,
                        context={"base_url": base})


def errors(record):
    return [f"{'/'.join(map(str, e.absolute_path))}: {e.message}" for e in VALIDATOR.iter_errors(record)]


def test_a_model_with_three_tags():
    r = map_raw(raw(payload()))
    assert errors(r) == []
    assert (r["ModelName"], r["ModelOwner"], r["ModelURL"], r["ModelOwnerURL"]) == (
        "llama3.2", "library", "https://ollama.com/library/llama3.2", "https://ollama.com/library")
    assert r["ModelHub"] == {"ModelHubName": "ollama", "ModelHubURL": BASE, "MetadataObjectID": "library/llama3.2",
                             "MetadataFilePath": "ollama/json/metadata/library/llama3.2.json"}
    assert r["id"] == stable_id("ollama", "library/llama3.2")
    assert (r["Downloads"], r["Tags"], r["LastModified"]) == (31_500_000, ["tools"], "2024-09-25T17:01:00Z")
    assert (r["CloneStatus"], r["RepoURL"]) == (NO_REPOSITORY, None)
    latest, one_b, three_b = r["ModelVersions"]
    assert [v["Name"] for v in r["ModelVersions"]] == ["latest", "1b", "3b"]
    manifest = json.loads(manifest_bytes("llama3.2", "latest"))
    assert latest["Digest"] == three_b["Digest"] != one_b["Digest"]  # latest is 3b
    assert [f["Name"] for f in latest["Files"]] == ["config", "model", "template", "license", "license", "params"]
    model_layer = latest["Files"][1]
    assert model_layer["Type"] == "application/vnd.ollama.image.model" and model_layer["Primary"] is True
    assert model_layer["Digest"] == manifest["layers"][0]["digest"] == "sha256:" + model_layer["SHA256"]
    assert model_layer["Size"] == manifest["layers"][0]["size"]
    assert latest["Size"] == manifest["config"]["size"] + sum(layer["size"] for layer in manifest["layers"])
    # Blobs shared by tags count once.
    blobs = {}
    for t in ("latest", "1b", "3b"):
        m = json.loads(manifest_bytes("llama3.2", t))
        for entry in [m["config"], *m["layers"]]:
            blobs[entry["digest"]] = entry["size"]
    assert r["UsedStorage"] == sum(blobs.values()) < latest["Size"] + one_b["Size"] + three_b["Size"]


def test_a_tag_without_manifest_keeps_its_error():
    p = payload(name="gemma2", tags=("latest", "2b"))
    p["Tags"][1].update(Manifest=None, ManifestDigest=None, Error="HTTP 404")
    r = map_raw(raw(p))
    assert errors(r) == []
    # Civitai's version keys too: every version item has one key set, null ([] for a list) without a value.
    assert r["ModelVersions"][1] == {"Name": "2b", "VersionID": None, "BaseModel": None, "BaseModelType": None,
                                     "CreatedAt": None, "Digest": None, "Size": None, "Downloads": None,
                                     "DownloadURL": None, "TrainedWords": [], "Error": "HTTP 404", "Files": []}
    version_keys = set(load_schema()["properties"]["ModelVersions"]["items"]["properties"])
    assert all(set(v) == version_keys for v in r["ModelVersions"])


@pytest.mark.parametrize("text, number", [("55.7M", 55_700_000), ("221K", 221_000), ("1.2B", 1_200_000_000),
                                          ("987", 987), ("1,234", 1234), ("lots", None), (None, None), ("", None),
                                          ("9" * 30 + "B", None), ("9" * 400, None)])
def test_pull_counts(text, number):
    assert _pulls(text) == number


@pytest.mark.parametrize("text, when", [("Jun 16, 2025 8:46 PM UTC", "2025-06-16T20:46:00Z"),
                                        ("Jul 2, 2025 6:09 AM UTC", "2025-07-02T06:09:00Z"),
                                        ("1 month ago", None), (None, None), (7, None)])
def test_update_dates(text, when):
    assert _date(text) == when


def test_the_base_url_is_the_model_urls_base():
    r = map_raw(raw(payload(), base="http://127.0.0.1:9/site"))
    assert r["ModelURL"] == "http://127.0.0.1:9/site/library/llama3.2"


def test_no_name_is_refused_and_junk_gives_a_valid_record():
    with pytest.raises(MappingError, match="no model name"):
        map_raw(raw(payload(Name=" ")))
    with pytest.raises(MappingError, match="not an object"):
        map_raw(RawModelItem("ollama", "x", "u", ["x"], {}))
    p = payload(Capabilities="tools", PullCount=5, UpdatedAt="yesterday", Tags=[
        "junk", {"Tag": 5, "Manifest": {"config": "x", "layers": [{"digest": "md5:abc", "size": -1,
                                                                   "mediaType": ["x"]}, 7]},
                 "ManifestDigest": "sha256:short", "Error": 404}])
    p["Name"] = "../" * 66  # 198 characters: a longer name is refused (test_hostile_inputs.py)
    r = map_raw(raw(copy.deepcopy(p)))
    assert errors(r) == []
    (v,) = r["ModelVersions"]
    assert (v["Name"], v["Digest"], v["Error"]) == (None, None, None)
    assert v["Files"] == [{"Name": None, "Type": None, "Format": None, "Size": None, "SHA256": None,
                           "Digest": None, "Hashes": {}, "PickleScan": None, "PickleScanMessage": None,
                           "VirusScan": None, "VirusScanMessage": None, "ScannedAt": None, "Primary": None,
                           "URL": None}]
    assert (r["Tags"], r["Downloads"], r["LastModified"], r["UsedStorage"]) == (["tools"], None, None, None)
    assert "/../" not in r["ModelHub"]["MetadataFilePath"]
