"""A local OpenVINO Open Model Zoo: the ``openvinotoolkit/open_model_zoo`` repository built from
our hand-written ``model.yml`` files in ``tests/fixtures/openvino/`` (laid out as in the real
repository, with READMEs, an index, a composite model and demo/tool files that are not models),
served by :class:`tests.replicas.github_tree.GitHubRepoReplica` (git, git-trees API, raw files).

History: every file (2023-01-05), then a new FP16-INT8 variant of face-detection-0200
(2023-03-01), touching only that model's folder.
"""

from __future__ import annotations

from pathlib import Path

from tests.replicas.github_tree import GitHubRepoReplica

FIXTURES = Path(__file__).resolve().parent.parent / "fixtures" / "openvino"
REPO = "openvinotoolkit/open_model_zoo"
BRANCH = "master"
# model.yml folder -> the model id the crawl gives it
MODELS = {
    "models/intel/face-detection-0200": "intel/face-detection-0200",
    "models/intel/formula-recognition-medium-scan-0001/formula-recognition-medium-scan-0001-im2latex-decoder":
        "intel/formula-recognition-medium-scan-0001/formula-recognition-medium-scan-0001-im2latex-decoder",
    "models/intel/formula-recognition-medium-scan-0001/formula-recognition-medium-scan-0001-im2latex-encoder":
        "intel/formula-recognition-medium-scan-0001/formula-recognition-medium-scan-0001-im2latex-encoder",
    "models/intel/person-detection-0200": "intel/person-detection-0200",
    "models/public/googlenet-v1-tf": "public/googlenet-v1-tf",
    "models/public/resnet-50-pytorch": "public/resnet-50-pytorch",
}
UPDATED = "models/intel/face-detection-0200"
INT8_FILES = """  - name: FP16-INT8/face-detection-0200.xml
    size: 480211
    sha256: 5d1c8a0f1e9e1c3b0b9d2c6a4e3f7a8b9c0d1e2f3a4b5c6d7e8f9a0b1c2d3e4f
    source: https://storage.openvinotoolkit.org/repositories/open_model_zoo/2022.1/models_bin/1/face-detection-0200/FP16-INT8/face-detection-0200.xml
"""


def fixture_files() -> dict[str, bytes]:
    return {p.relative_to(FIXTURES).as_posix(): p.read_bytes() for p in sorted(FIXTURES.rglob("*")) if p.is_file()}


class OpenvinoReplica(GitHubRepoReplica):
    """``with OpenvinoReplica(tmp_path / "git") as hub: hub.settings()``."""

    def __init__(self, repos_root: str | Path, prefix: str = "", port: int = 0):
        files = fixture_files()
        super().__init__(repos_root, REPO, files, branch=BRANCH, prefix=prefix, port=port)
        model = f"{UPDATED}/model.yml"
        updated = files[model].decode().replace("framework: dldt", INT8_FILES + "framework: dldt")
        self.commit({model: updated}, message="face-detection-0200: FP16-INT8", date="2023-03-01T10:00:00Z")

    def settings(self) -> dict[str, str]:
        return {"PTM_OPENVINO_RAW_URL": self.raw_url, "PTM_OPENVINO_TREE_URL": self.tree_url,
                "PTM_OPENVINO_REPO_URL": f"https://github.com/{REPO}"}


def start_demo_replica(workdir: Path, port: int = 0):
    """For the offline demo: (replica context manager, crawl settings, crawl environment)."""
    hub = OpenvinoReplica(Path(workdir) / "openvino-git", port=port)
    return hub, hub.settings(), hub.env()
