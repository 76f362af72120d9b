import json
import subprocess
import sys

from tests.crawl import ROOT
from tests.replicas.demo import available


def test_offline_demo_crawls_every_hub_that_has_a_replica(tmp_path):
    proc = subprocess.run([sys.executable, "-m", "tests.replicas.demo", "--out", str(tmp_path)], cwd=ROOT,
                          capture_output=True, text=True, timeout=900)
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    hubs = available()
    assert "huggingface" in hubs
    for hub in hubs:
        records = [json.loads(line) for line in (tmp_path / f"{hub}.jsonl").read_text().splitlines()]
        assert records, f"the demo crawled no {hub} models"
        assert (tmp_path / "data" / hub / f"{hub}.jsonl").is_file()
        assert json.loads((tmp_path / f"{hub}.stats.json").read_text())["finish_reason"] == "finished"
