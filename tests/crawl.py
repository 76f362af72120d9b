"""Run a real ``scrapy crawl`` in a subprocess (as a user would) and collect what it produced."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


@dataclass
class CrawlResult:
    returncode: int
    log: str
    out: Path
    stats_file: Path
    data_dir: Path

    @property
    def items(self) -> list[dict]:
        return read_jsonl(self.out)

    @property
    def stats(self) -> dict:
        return json.loads(self.stats_file.read_text())

    def records(self, hub: str) -> list[dict]:
        return read_jsonl(self.data_dir / hub / f"{hub}.jsonl")


def read_jsonl(path: Path) -> list[dict]:
    if not path.exists():
        return []
    return [json.loads(line) for line in path.read_text().splitlines() if line.strip()]


def crawl_command(spider: str, out: Path, data_dir: Path, stats_file: Path,
                  args: dict | None = None, settings: dict | None = None) -> list[str]:
    cmd = [sys.executable, "-m", "scrapy.cmdline", "crawl", spider, "-O", str(out),
           "-s", f"PTM_DATA_DIR={data_dir}", "-s", f"PTM_STATS_FILE={stats_file}",
           # Replicas speak plain http on 127.0.0.1; real crawls keep the https-only default.
           "-s", "PTM_GIT_ALLOW_PROTOCOL=https:http",
           # The host's free disk space decides no test: the guard is off unless a test sets it
           # (a later -s wins; tests/test_disk_space.py runs it for real).
           "-s", "PTM_CLONE_MIN_FREE_GB=0"]
    for key, value in (args or {}).items():
        cmd += ["-a", f"{key}={value}"]
    for key, value in (settings or {}).items():
        cmd += ["-s", f"{key}={value}"]
    return cmd


def run_crawl(spider: str, workdir: Path, *, args: dict | None = None, settings: dict | None = None,
              env: dict | None = None, data_dir: Path | None = None, out_name: str = "out.jsonl",
              timeout: float = 600, check: bool = True) -> CrawlResult:
    """``scrapy crawl <spider> -O <workdir>/<out_name>`` with the data dir under ``workdir``."""
    data_dir = data_dir or workdir / "data"
    out = workdir / out_name
    stats_file = workdir / (out_name + ".stats.json")
    cmd = crawl_command(spider, out, data_dir, stats_file, args, settings)
    proc = subprocess.run(cmd, cwd=ROOT, env={**os.environ, **(env or {})}, capture_output=True,
                          text=True, timeout=timeout)
    result = CrawlResult(proc.returncode, proc.stderr + proc.stdout, out, stats_file, data_dir)
    if check:
        assert proc.returncode == 0, result.log[-5000:]
        assert "Traceback" not in result.log, result.log[-5000:]
    return result


def project_crawler(spidercls, settings: dict | None = None):
    """A crawler with the project's settings (``ptmscrape/settings.py``) plus ``settings``, its
    stats open — for cheap callback and pipeline tests without a reactor."""
    from scrapy.utils.test import get_crawler

    import ptmscrape.settings as project

    ours = {k: getattr(project, k) for k in dir(project) if k.isupper()}
    crawler = get_crawler(spidercls, {**ours, **(settings or {})})
    crawler.stats.open_spider()
    return crawler
