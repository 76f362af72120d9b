"""Files of the dataset are created as any file of its user: 0o666 less the umask (issue 11,
item 6). ``<hub>.jsonl`` and payload files were 0600 whatever the umask (``mkstemp``, ``os.open``
with 0o600), while snapshots followed it."""

from __future__ import annotations

import os
import stat
import subprocess

import pytest

from tests.crawl import ROOT, crawl_command
from tests.replicas.huggingface import HuggingFaceReplica, synthetic_models


@pytest.mark.parametrize(("umask", "mode"), [(0o022, 0o644), (0o077, 0o600)])
def test_dataset_files_follow_the_umask(tmp_path, umask, mode):
    data = tmp_path / "data"
    with HuggingFaceReplica(synthetic_models(6), tmp_path / "git", lfs=False) as hub:
        for run in (1, 2):  # a re-crawl rewrites <hub>.jsonl and merges into it
            cmd = crawl_command("huggingface", tmp_path / f"{run}.jsonl", data, tmp_path / f"{run}.stats",
                                settings={"PTM_HUGGINGFACE_URL": hub.url, "PTM_CLONE_CONCURRENCY": 2})
            proc = subprocess.run(cmd, cwd=ROOT, capture_output=True, text=True, umask=umask, timeout=300)
            assert proc.returncode == 0, proc.stderr[-3000:]
    files = [p for p in data.rglob("*") if p.is_file() and "/repos/" not in str(p) and not p.name.startswith(".")]
    names = {p.relative_to(data).as_posix() for p in files}
    assert "huggingface/huggingface.jsonl" in names and "repo-index.jsonl" in names
    # One payload file: the first crawl's (the re-crawl found every payload unchanged).
    assert sum(n.startswith("huggingface/json/payloads/") for n in names) == 1
    assert sum(n.startswith("huggingface/snapshots/") for n in names) == 2
    assert {p.relative_to(data).as_posix(): oct(stat.S_IMODE(os.stat(p).st_mode)) for p in files} == \
        {n: oct(mode) for n in names}
    clone = next((data / "huggingface/repos").glob("*/*/README.md"))
    assert stat.S_IMODE(os.stat(clone).st_mode) == mode  # git follows the umask too
