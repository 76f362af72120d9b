import json
import re
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


def run_demo(out, *hubs):
    return subprocess.run([sys.executable, "-m", "tests.replicas.demo", "--out", str(out), *hubs], cwd=ROOT,
                          capture_output=True, text=True, timeout=900)


def test_a_demo_rerun_updates_its_clones_and_a_failed_rerun_shows_no_old_figures(tmp_path):
    first = run_demo(tmp_path, "huggingface")
    assert first.returncode == 0, first.stdout[-3000:] + first.stderr[-3000:]
    cloned = re.search(r"(\d+) records; repositories: (\d+) cloned, 0 updated, 0 unchanged, 0 failed", first.stdout)
    assert cloned and int(cloned[2]) > 0, first.stdout
    repos_dir = tmp_path / "data" / "huggingface" / "repos"
    repos = sorted(p.relative_to(repos_dir) for p in repos_dir.glob("*/*") if p.parent.name != ".incoming")
    url = re.search(r"replica at (\S+)\)", first.stdout)[1]

    again = run_demo(tmp_path, "huggingface")
    assert again.returncode == 0, again.stdout[-3000:] + again.stderr[-3000:]
    assert f"replica at {url})" in again.stdout  # the same URLs, hence the same clones
    assert re.search(rf"{cloned[1]} records; repositories: 0 cloned, \d+ updated, \d+ unchanged, 0 failed",
                     again.stdout), again.stdout
    assert sorted(p.relative_to(repos_dir) for p in repos_dir.glob("*/*")
                  if p.parent.name != ".incoming") == repos  # nothing cloned again beside the old ones
    assert not any("~" in str(r) for r in repos)

    (tmp_path / "data").rename(tmp_path / "data.kept")
    (tmp_path / "data").write_text("not a directory")  # the re-run's crawl refuses to start
    failed = run_demo(tmp_path, "huggingface")
    assert failed.returncode == 1
    assert "FAILED (exit status 2): the crawl wrote no stats" in failed.stdout
    assert "records;" not in failed.stdout  # not the previous run's figures
    assert "PTM_DATA_DIR=" in failed.stderr and "Traceback" not in failed.stderr
