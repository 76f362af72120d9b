"""Legacy Hugging Face ids answered in place (issue 11, item 8): the real ``/api/models/gpt2``
answers 200 with ``"id": "gpt2"``, ``"author": "openai-community"`` and the ``_id`` of
``openai-community/gpt2`` (no redirect). A model given under both names gets one record, with the
namespaced id, whatever answer comes first."""

from __future__ import annotations

import copy
import json

import pytest

from ptmscrape.dataset.payloads import read_payload
from ptmscrape.dataset.tree import DatasetTree
from tests.crawl import run_crawl
from tests.replicas.huggingface import HuggingFaceReplica, synthetic_models


def models():
    gpt2, lone = copy.deepcopy(synthetic_models(2))
    gpt2.update(id="openai-community/gpt2", modelId="openai-community/gpt2", author="openai-community")
    # A legacy id whose author has no model of that name: the legacy body is the record.
    lone.update(id="t5-tiny", modelId="t5-tiny", author="someone")
    return [gpt2, lone]


@pytest.fixture
def hub(tmp_path):
    with HuggingFaceReplica(models(), None, repos=False, prefix="/hf",
                            aliases={"gpt2": "openai-community/gpt2"}) as replica:
        yield replica


@pytest.mark.parametrize("given", ["gpt2,openai-community/gpt2", "openai-community/gpt2,gpt2", "gpt2"])
def test_a_model_given_under_its_legacy_id_gets_the_namespaced_id(tmp_path, hub, given):
    # One request at a time: the order of the answers is the order given.
    result = run_crawl("huggingface", tmp_path, args={"models": given},
                       settings={"PTM_HUGGINGFACE_URL": hub.url, "PTM_CLONE": 0, "CONCURRENT_REQUESTS": 1})
    (record,) = result.records("huggingface")
    assert [i["id"] for i in result.items] == [record["id"]]
    assert (record["ModelOwner"], record["ModelName"]) == ("openai-community", "gpt2")
    assert record["ModelURL"] == record["RepoURL"] == f"{hub.url}/openai-community/gpt2"
    assert record["ModelHub"]["MetadataFilePath"].startswith("huggingface/json/payloads/")
    assert read_payload(DatasetTree(result.data_dir), record["ModelHub"]["MetadataFilePath"])["id"] == \
        "openai-community/gpt2"
    assert record["ModelHub"]["MetadataObjectID"] == hub.models["openai-community/gpt2"]["_id"]
    # No payload stored under the legacy id: every payload line of the crawl is the namespaced model's.
    lines = [line for f in sorted((result.data_dir / "huggingface/json/payloads").glob("*.jsonl"))
             for line in f.read_text().splitlines() if line.strip()]
    assert lines and {json.loads(line)["id"] for line in lines} == {"openai-community/gpt2"}


def test_a_legacy_id_whose_namespaced_name_is_not_found_keeps_its_own_record(tmp_path, hub):
    result = run_crawl("huggingface", tmp_path, args={"models": "t5-tiny"},
                       settings={"PTM_HUGGINGFACE_URL": hub.url, "PTM_CLONE": 0})
    (record,) = result.records("huggingface")
    assert (record["ModelOwner"], record["ModelName"], record["ModelURL"]) == (
        "someone", "t5-tiny", f"{hub.url}/t5-tiny")
    assert "Page failed" not in result.log
    assert hub.replica.count("GET", r"^/hf/api/models/someone/t5-tiny$") == 1
