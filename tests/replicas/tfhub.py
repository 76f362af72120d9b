"""A local TensorFlow Hub: the ``tensorflow/tfhub.dev`` repository built from our hand-written
documentation files in ``tests/fixtures/tfhub/`` (laid out as in the real repository), served by
:class:`tests.replicas.github_tree.GitHubRepoReplica` (git, git-trees API, raw files).

History, so that model files have different last commits:

1. every file (2023-01-05);
2. albert_base/3's changelog (2023-02-10), touching only that file.
"""

from __future__ import annotations

from pathlib import Path

from tests.replicas.github_tree import GitHubRepoReplica

FIXTURES = Path(__file__).resolve().parent.parent / "fixtures" / "tfhub"
REPO = "tensorflow/tfhub.dev"
BRANCH = "master"
DOCS = "assets/docs"
# Every model documentation file (one record each), with the handle the crawl gives it.
MODELS = {
    "assets/docs/deepmind/models/i3d-kinetics-400/1.md": "deepmind/i3d-kinetics-400/1",
    "assets/docs/google/models/aiy/vision/classifier/birds_V1/1.md": "google/aiy/vision/classifier/birds_V1/1",
    "assets/docs/google/models/aiy/vision/classifier/birds_V1/lite/1.md":
        "google/aiy/vision/classifier/birds_V1/lite/1",
    "assets/docs/google/models/albert_base/1.md": "google/albert_base/1",
    "assets/docs/google/models/albert_base/2.md": "google/albert_base/2",
    "assets/docs/google/models/albert_base/3.md": "google/albert_base/3",
    "assets/docs/google/models/bit/m-r50x1/ilsvrc2012_classification/1.md":
        "google/bit/m-r50x1/ilsvrc2012_classification/1",
    "assets/docs/google/models/imagenet/mobilenet_v2_100_224/classification/4.md":
        "google/imagenet/mobilenet_v2_100_224/classification/4",
    "assets/docs/google/models/imagenet/mobilenet_v2_100_224/classification/4/default/tfjs/1.md":
        "google/imagenet/mobilenet_v2_100_224/classification/4/default/tfjs/1",
    "assets/docs/vasudevgupta7/models/wav2vec2/1.md": "vasudevgupta7/wav2vec2/1",
}
UPDATED = "assets/docs/google/models/albert_base/3.md"


def fixture_files() -> dict[str, bytes]:
    return {p.relative_to(FIXTURES).as_posix(): p.read_bytes() for p in sorted(FIXTURES.rglob("*")) if p.is_file()}


class TfhubReplica(GitHubRepoReplica):
    """``with TfhubReplica(tmp_path / "git") as hub: hub.settings()``."""

    def __init__(self, repos_root: str | Path, prefix: str = "", port: int = 0):
        files = fixture_files()
        super().__init__(repos_root, REPO, files, branch=BRANCH, prefix=prefix, port=port)
        self.commit({UPDATED: files[UPDATED] + b"\n#### Version 3.1 docs\n\n*   Clarified inputs.\n"},
                    message="albert_base/3: changelog", date="2023-02-10T09:00:00Z")

    def settings(self) -> dict[str, str]:
        return {"PTM_TFHUB_RAW_URL": self.raw_url, "PTM_TFHUB_TREE_URL": self.tree_url,
                "PTM_TFHUB_REPO_URL": f"https://github.com/{REPO}"}


def start_demo_replica(workdir: Path, port: int = 0):
    """For the offline demo: (replica context manager, crawl settings, crawl environment)."""
    hub = TfhubReplica(Path(workdir) / "tfhub-git", port=port)
    return hub, hub.settings(), hub.env()
