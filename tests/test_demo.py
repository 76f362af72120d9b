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
    assert "FAILED" not in proc.stdout and "Traceback" not in proc.stdout + proc.stderr
    ports = json.loads((tmp_path / "demo-ports.json").read_text())
    assert sorted(ports) == sorted(hubs) and all(isinstance(p, int) and p > 0 for p in ports.values())


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
    # The refused run's own verdict (its stats file), not the previous run's report
    assert f"FAILED (exit status 2: PTM_DATA_DIR={tmp_path / 'data'} is not a directory" in failed.stdout
    assert f" {cloned[1]} records;" not in failed.stdout and " 0 records;" in failed.stdout  # its own figures
    assert "PTM_DATA_DIR=" in failed.stderr and "Traceback" not in failed.stderr


def test_a_demo_rerun_keeps_the_port_of_a_replica_behind_a_path_and_hubs_without_git_say_so(tmp_path):
    """modelscope's replica URL carries a path (``…:PORT/mirror``); civitai and ollama have no git
    repositories, which the summary says instead of '0 cloned, … 0 failed'."""
    first = run_demo(tmp_path, "modelscope", "civitai", "ollama")
    assert first.returncode == 0, first.stdout[-3000:] + first.stderr[-3000:]
    url = re.search(r"crawl modelscope .*replica at (http://127\.0\.0\.1:\d+/mirror)\)", first.stdout)
    assert url, first.stdout
    for hub in ("civitai", "ollama"):
        assert re.search(rf"\n    \d+ records; no git repositories to clone -> \S+/{hub}\.jsonl\n", first.stdout)
    assert re.search(r"\d+ records; repositories: (\d+) cloned, 0 updated, 0 unchanged, 0 failed -> \S+/modelscope",
                     first.stdout)

    again = run_demo(tmp_path, "modelscope")
    assert again.returncode == 0, again.stdout[-3000:] + again.stderr[-3000:]
    assert f"replica at {url[1]})" in again.stdout  # the same port, so the clones are updated in place
    assert re.search(r"records; repositories: 0 cloned, 0 updated, \d+ unchanged, 0 failed", again.stdout)
