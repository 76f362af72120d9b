"""Start-up: the validate stage loads ``jsonschema`` on the first rejected record only, and the
reason it gives is still ``jsonschema``'s."""

from __future__ import annotations

import subprocess
import sys

from tests.crawl import ROOT

SCRIPT = r"""
import asyncio, sys
from pipelines.validate import InvalidRecord, ValidatePipeline
from ptmscrape.items import RawModelItem
from ptmscrape.mappers.huggingface import map_raw
from spiders.huggingface import HuggingfaceSpider
from tests.crawl import project_crawler
from tests.replicas.huggingface import synthetic_models

stage = ValidatePipeline(project_crawler(HuggingfaceSpider))
record = map_raw(RawModelItem("huggingface", "m", "http://x", synthetic_models(1)[0],
                              {"base_url": "http://127.0.0.1:1"}))
asyncio.run(stage.process_item(record))
print("after valid:", "jsonschema" in sys.modules)
record["Downloads"] = "many"
try:
    asyncio.run(stage.process_item(record))
except InvalidRecord as exc:
    print("reason:", exc)
print("after invalid:", "jsonschema" in sys.modules)
from jsonschema import Draft202012Validator
from ptmscrape.items import load_schema
print("expected:", next(Draft202012Validator(load_schema()).iter_errors(record)).message)
"""


def test_jsonschema_is_imported_only_when_a_record_is_rejected():
    out = subprocess.run([sys.executable, "-c", SCRIPT], cwd=ROOT, capture_output=True, text=True,
                         check=True).stdout.splitlines()
    assert out[0] == "after valid: False"
    assert out[1].startswith("reason: ") and ": Downloads: " in out[1]
    assert out[2] == "after invalid: True"
    assert out[1].endswith(out[3].removeprefix("expected: "))
