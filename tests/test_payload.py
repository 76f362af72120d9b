"""Raw payloads in one JSON Lines file per crawl, located by ``<file>#<offset>``; the payload command."""

import json
import os
import subprocess
import sys

import pytest

from ptmscrape.dataset.jsonl import read_jsonl
from ptmscrape.dataset.payloads import PayloadWriter, read_payload
from ptmscrape.dataset.tree import DatasetTree
from ptmscrape.payload import find_payload
from tests.crawl import ROOT, run_crawl
from tests.replicas.huggingface import HuggingFaceReplica, synthetic_models


def test_payloads_of_a_crawl_share_one_file_and_read_back_by_locator(tmp_path):
    tree = DatasetTree(tmp_path)
    writer = PayloadWriter(tree, "hub", "s1")
    payloads = [{"id": f"o/m{i}", "n": i, "text": "é\n" * i} for i in range(50)]
    locators = [writer.write(json.dumps(p, ensure_ascii=False).encode()) for p in payloads]
    writer.close()
    assert {loc.partition("#")[0] for loc in locators} == {"hub/json/payloads/hub-s1.jsonl"}
    assert [read_payload(tree, loc) for loc in locators] == payloads
    assert os.listdir(tmp_path / "hub/json/payloads") == ["hub-s1.jsonl"]


def test_a_torn_tail_is_skipped_and_never_located(tmp_path):
    tree = DatasetTree(tmp_path)
    writer = PayloadWriter(tree, "hub", "s1")
    first = writer.write(b'{"id":"a"}')
    writer.close()
    with open(tmp_path / "hub/json/payloads/hub-s1.jsonl", "ab") as f:
        f.write(b'{"id":"torn')  # a killed crawl's last write
    assert [r["id"] for r in read_jsonl(tmp_path / "hub/json/payloads/hub-s1.jsonl")] == ["a"]
    with pytest.raises(ValueError):
        read_payload(tree, "hub/json/payloads/hub-s1.jsonl#10")
    assert read_payload(tree, first) == {"id": "a"}


def test_a_locator_cannot_leave_the_data_dir(tmp_path):
    with pytest.raises(ValueError):
        read_payload(DatasetTree(tmp_path / "data"), "../../etc/passwd#0")


def test_a_crawl_writes_one_payload_file_and_the_command_prints_a_payload(tmp_path):
    models = synthetic_models(30)
    models[17]["cardData"]["pretty_name"] = "café"  # served as "caf\u00e9" (the replica escapes)
    with HuggingFaceReplica(models, None, repos=False) as hub:
        settings = {"PTM_HUGGINGFACE_URL": hub.url, "PTM_HUGGINGFACE_PAGE_SIZE": 7, "PTM_CLONE": 0}
        result = run_crawl("huggingface", tmp_path, settings=settings)
        assert len(result.items) == 30
        files = [f for f in (result.data_dir / "huggingface/json").rglob("*") if f.is_file()]
        assert len(files) == 1 and files[0].parent.name == "payloads"  # one file, not one per model
        wanted = models[17]
        out = subprocess.run([sys.executable, "-m", "ptmscrape.payload", str(result.data_dir), "huggingface",
                              wanted["id"]], capture_output=True, text=True, cwd=ROOT, timeout=60)
        assert out.returncode == 0, out.stderr
        payload, served = json.loads(out.stdout), json.loads(json.dumps(hub.models[wanted["id"]]))
        assert payload["id"] == wanted["id"] and payload == {k: served[k] for k in payload}
        assert payload["cardData"]["pretty_name"] == "café"
        # Stored as the hub served it (its escapes kept), not re-encoded.
        record = next(r for r in result.items if r["ModelHub"]["MetadataObjectID"] == wanted["_id"])
        stored_at, _, offset = record["ModelHub"]["MetadataFilePath"].partition("#")
        with open(result.data_dir / stored_at, "rb") as f:
            f.seek(int(offset))
            line = f.readline()
        assert b'"pretty_name":"caf\\u00e9"' in line and "café".encode() not in line
        by_object_id = find_payload(str(result.data_dir), "huggingface", wanted["_id"])  # MetadataObjectID
        assert by_object_id["id"] == wanted["id"]
        missing = subprocess.run([sys.executable, "-m", "ptmscrape.payload", str(result.data_dir), "huggingface",
                                  "no/such"], capture_output=True, text=True, cwd=ROOT, timeout=60)
        assert missing.returncode == 1 and "no record of huggingface:no/such" in missing.stderr

        # A re-crawl of the unchanged hub writes no payload: records keep their locators.
        again = run_crawl("huggingface", tmp_path, settings=settings, out_name="again.jsonl")
    assert again.stats["ptm/store/raw_payloads_unchanged"] == 30
    assert [f for f in (result.data_dir / "huggingface/json").rglob("*") if f.is_file()] == files
    assert {i["id"]: i["ModelHub"] for i in again.items} == {i["id"]: i["ModelHub"] for i in result.items}


def _raw(payload, served=None):
    from ptmscrape.items import RawModelItem

    return RawModelItem(hub="hub", model_id="o/m", url="https://hub.example/api", payload=payload,
                        payload_json=served)


def test_the_stored_payload_is_the_hubs_text_when_the_spider_has_it():
    from pipelines.store import payload_line

    served = '{"id": "o/m",  "x" : 1.50, "u": "\\u00e9"}'
    assert payload_line(_raw(json.loads(served), served)) == served.encode()
    # No served text, or one that would not fit on one line: the payload, compact.
    assert payload_line(_raw({"id": "o/m", "u": "é"})) == '{"id":"o/m","u":"é"}'.encode()
    assert payload_line(_raw({"id": "o/m"}, '{"id":\n"o/m"}')) == b'{"id":"o/m"}'
    # A lone surrogate (raw in a body json.loads accepts) cannot be UTF-8: written escaped.
    line = payload_line(_raw({"id": "o/m", "s": "\ud800"}, '{"id": "o/m", "s": "\ud800"}'))
    assert line == b'{"id":"o/m","s":"\\ud800"}' and json.loads(line) == {"id": "o/m", "s": "\ud800"}


def test_records_and_payloads_with_a_lone_surrogate_are_stored_as_valid_utf8(tmp_path):
    from ptmscrape.dataset.jsonl import compact_json
    from ptmscrape.dataset.snapshots import SnapshotWriter

    tree = DatasetTree(tmp_path)
    writer = SnapshotWriter(tree, "hub", "s1")
    writer.write({"id": 1, "ModelName": "a\ud800b"})
    writer.write({"id": 2, "ModelName": "é"})
    writer.close()
    raw = writer.path.read_bytes()
    raw.decode("utf-8")  # strict: valid UTF-8
    assert [r["ModelName"] for r in read_jsonl(writer.path)] == ["a\ud800b", "é"]
    assert compact_json({"a": "é"}) == '{"a":"é"}'  # unescaped when it can be


def test_record_lines_are_the_compact_json_of_the_record():
    from ptmscrape.dataset.jsonl import compact_json, record_json
    from ptmscrape.items import PTMRecord, RawModelItem
    from ptmscrape.mappers.huggingface import map_raw
    from tests.replicas.huggingface import fixture_models, synthetic_models

    records = [PTMRecord(map_raw(RawModelItem("huggingface", str(m.get("id")), "http://x", m,
                                              {"base_url": "http://127.0.0.1:1"})))
               for m in fixture_models() + synthetic_models(50)]
    odd_text = "".join(chr(c) for c in range(0x800)) + "\u2028\u2029\ufeff😀"
    records.append(PTMRecord({"id": 3, "ModelName": odd_text, "Tags": [odd_text], "Gated": False, "Likes": 0}))
    for record in records:
        assert record_json(record) == compact_json(record).encode()
    # What orjson does not write as json does goes through compact_json.
    for special in ({"id": 2**70}, {"id": 1, 5: "int key"}, {"id": 1, "ModelName": "a\ud800b"}):
        assert record_json(special) == compact_json(special).encode()
        assert json.loads(record_json(special)) == json.loads(compact_json(special))


def test_the_command_takes_a_bare_name_only_when_one_model_has_it(tmp_path):
    """Hugging Face's legacy ids have no owner (``gpt2``); another owner's ``x/gpt2`` shares the name."""
    from ptmscrape.payload import AmbiguousName

    models = synthetic_models(3)
    models[0].update(id="someone/gpt2", modelId="someone/gpt2", author="someone")
    models[1].update(id="gpt2", modelId="gpt2", author="openai-community")
    models[2].update(id="someone/only-here", modelId="someone/only-here", author="someone")
    with HuggingFaceReplica(models, None, repos=False) as hub:
        result = run_crawl("huggingface", tmp_path, settings={"PTM_HUGGINGFACE_URL": hub.url, "PTM_CLONE": 0})
    data, records_file = str(result.data_dir), result.data_dir / "huggingface/huggingface.jsonl"
    lines = records_file.read_text().splitlines(True)
    assert len(lines) == 3
    for order in (lines, lines[::-1]):  # whichever record comes first
        records_file.write_text("".join(order))
        assert find_payload(data, "huggingface", "gpt2")["id"] == "gpt2"  # the hub's id, whole
        assert find_payload(data, "huggingface", "someone/gpt2")["id"] == "someone/gpt2"
        assert find_payload(data, "huggingface", "only-here")["id"] == "someone/only-here"  # one model has it

    # Two models carry the name and neither's id, owner/name or URL is it: no guess.
    records_file.write_text("".join(line.replace('"ModelName":"gpt2"', '"ModelName":"twin"') for line in lines))
    with pytest.raises(AmbiguousName, match="names 2 models"):
        find_payload(data, "huggingface", "twin")
    out = subprocess.run([sys.executable, "-m", "ptmscrape.payload", data, "huggingface", "twin"],
                         capture_output=True, text=True, cwd=ROOT, timeout=60)
    assert out.returncode == 1 and out.stdout == ""
    assert "openai-community/twin" in out.stderr and "someone/twin" in out.stderr


def _stored_in_files(tmp_path, files: int):
    """A data dir whose records point into ``files`` payload files (crawls), two models each."""
    tree = DatasetTree(tmp_path)
    lines = []
    for n in range(files):
        writer = PayloadWriter(tree, "hub", f"s{n}")
        for k in range(2):
            record_id = 10 * n + k + 1
            locator = writer.write(b'{"id":"m%d"}' % record_id)
            lines.append(json.dumps({"id": record_id, "ModelHub": {"MetadataFilePath": locator}},
                                    separators=(",", ":")) + "\n")
        writer.close()
    (tmp_path / "hub/hub.jsonl").write_text("".join(lines))
    return tree, [json.loads(line) for line in lines]


def test_a_recrawl_keeps_few_payload_files_open_however_many_crawls_wrote(tmp_path, monkeypatch):
    """Daily re-crawls for years point into thousands of payload files: one descriptor each would
    pass the usual 1,024 and leave none for the clones (nor read the rest of the payloads)."""
    import ptmscrape.dataset.payloads as payloads_module
    from ptmscrape.dataset.payloads import StoredPayloads

    monkeypatch.setattr(payloads_module, "MAX_OPEN_PAYLOAD_FILES", 3)
    tree, records = _stored_in_files(tmp_path, 10)
    stored = StoredPayloads(tree, "hub")
    before = len(os.listdir("/proc/self/fd"))
    most = 0
    for _ in range(2):
        for record in records + records[::-1]:
            wanted = b'{"id":"m%d"}' % record["id"]
            assert stored.unchanged(record["id"], wanted) == record["ModelHub"]["MetadataFilePath"]
            assert stored.unchanged(record["id"], wanted + b" ") is None
            most = max(most, len(os.listdir("/proc/self/fd")) - before)
    assert most <= 3
    stored.close()
    assert len(os.listdir("/proc/self/fd")) == before


def test_a_payload_file_not_opened_for_lack_of_descriptors_is_tried_again(tmp_path, monkeypatch):
    import errno

    import ptmscrape.dataset.payloads as payloads_module
    from ptmscrape.dataset.payloads import StoredPayloads

    tree, records = _stored_in_files(tmp_path, 1)
    stored = StoredPayloads(tree, "hub")
    real_open, calls = os.open, []

    def out_of_descriptors_once(*args, **kwargs):
        calls.append(args[0])
        if len(calls) == 1:
            raise OSError(errno.EMFILE, os.strerror(errno.EMFILE))
        return real_open(*args, **kwargs)

    monkeypatch.setattr(payloads_module.os, "open", out_of_descriptors_once)
    first = records[0]
    assert stored.unchanged(first["id"], b'{"id":"m1"}') is None  # written again this once
    assert stored.unchanged(first["id"], b'{"id":"m1"}') == first["ModelHub"]["MetadataFilePath"]
    stored.close()


def test_the_command_names_what_is_missing_a_dir_a_hub_or_any_record(tmp_path):
    """A data dir that is not there, a file, or a hub the tree has no folder of (a typo: ``hugginface``)
    all said "no record of <hub>:<id> in <dir>", exit status 1, as for a model the hub never had:
    a script could not tell a wrong path from a missing model. Now bad input is one line and exit
    status 2, naming the hubs the tree holds; a hub folder without records says so (exit status 1)."""
    def payload(data, hub="huggingface", model="gpt2"):
        out = subprocess.run([sys.executable, "-m", "ptmscrape.payload", str(data), hub, model],
                             capture_output=True, text=True, cwd=ROOT, timeout=60)
        assert out.stdout == "" and out.stderr.count("\n") == 1, out.stderr
        return out.returncode, out.stderr.strip()

    error = "python -m ptmscrape.payload: error:"
    missing = tmp_path / "nope"
    assert payload(missing) == (2, f"{error} no dataset tree at {missing}")
    (tmp_path / "afile").write_text("")
    assert payload(tmp_path / "afile") == (2, f"{error} no dataset tree at {tmp_path / 'afile'}: it is a file")
    data = tmp_path / "data"
    data.mkdir()
    assert payload(data) == (2, f"{error} no folder of hub 'huggingface' in {data} (it holds no hub folder)")
    (data / "huggingface" / "repos").mkdir(parents=True)
    (data / "civitai").mkdir()
    assert payload(data, "hugginface") == (
        2, f"{error} no folder of hub 'hugginface' in {data} (its hubs: civitai, huggingface)")
    assert payload(data) == (1, f"no records of huggingface in {data}: no huggingface/huggingface.jsonl nor "
                                "snapshot of an unmerged crawl (its crawls stored nothing?)")
    (data / "huggingface" / "huggingface.jsonl").write_text("")  # as a crawl that stored nothing leaves it
    assert payload(data)[0] == 1 and "no records of huggingface" in payload(data)[1]
