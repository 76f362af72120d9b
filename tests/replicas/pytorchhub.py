"""A local PyTorch Hub: the compact listing ``/hub/research-models/compact`` and one page per model
``/hub/<slug>/`` (our HTML fixtures in ``tests/fixtures/pytorchhub/``, in the built site's markup, one
of them in the ~2020 layout), plus the models' GitHub repositories over smart HTTP at
``/<owner>/<repo>``. Point git at it with ``insteadof_env("https://github.com", replica.url)``.

Repositories: ``pytorch/vision`` (two models, default branch ``main``), ``NVIDIA/DeepLearningExamples``
(two models, each in its own folder; the second commit touches only WaveSmooth's), and one repository
per other model. ``textforge/transformers`` was renamed: its card's ``data-id`` has the name the
replica serves, its page still links (and loads) the old ``textforge/textforge-transformers.git``, as
pytorch.org's ``huggingface/transformers`` card and ``huggingface/pytorch-transformers.git`` link do.
"""

from __future__ import annotations

import re
from pathlib import Path

from tests.replicas.server import GitHost, Incoming, Replica, Reply, insteadof_env

FIXTURES = Path(__file__).resolve().parent.parent / "fixtures" / "pytorchhub"
LISTING = "research-models_compact.html"

# slug -> repository (owner/repo): its card's data-id
MODEL_REPOS = {
    "pytorch_vision_tinyresnet": "pytorch/vision",
    "pytorch_vision_pocketnet": "pytorch/vision",
    "nvidia_deeplearningexamples_speakfast": "NVIDIA/DeepLearningExamples",
    "nvidia_deeplearningexamples_wavesmooth": "NVIDIA/DeepLearningExamples",
    "quietlab_hush-vad_vad": "quietlab/hush-vad",
    "facebookresearch_WSL-Mini_resnext": "facebookresearch/WSL-Mini",
    "textforge_transformers": "textforge/transformers",
}
SUBPATHS = {
    "nvidia_deeplearningexamples_speakfast": "PyTorch/SpeechSynthesis/SpeakFast",
    "nvidia_deeplearningexamples_wavesmooth": "PyTorch/SpeechSynthesis/WaveSmooth",
}


def slugs() -> list[str]:
    return list(MODEL_REPOS)


def hubconf(*entrypoints: str) -> str:
    lines = ["dependencies = ['torch']", ""]
    for name in entrypoints:
        lines += [f"def {name}(pretrained=False, **kwargs):", f'    """{name} (replica)."""', "    return None", ""]
    return "\n".join(lines)


class PytorchHubReplica:
    """``with PytorchHubReplica(tmp_path / "git") as hub: hub.base_url`` (= ``<url><prefix>/hub``).

    ``prefix`` (e.g. ``/mirror``) serves the site under a path, as a mirror or proxy would; the
    pages' links stay site-relative ``/hub/<slug>/``, as in the served HTML.
    """

    def __init__(self, repos_root: str | Path, prefix: str = "", port: int = 0):
        self.prefix = prefix.rstrip("/")
        self.replica = Replica(port)
        self.git = GitHost(repos_root)
        self.commits: dict[str, list[str]] = {}  # owner/repo -> SHAs, oldest first
        self.gone: set[str] = set()  # slugs whose page answers 404 (taken down after listing)
        self._build_repos()
        hub = re.escape(self.prefix) + "/hub"
        self.replica.route("GET", rf"{hub}/research-models/compact", self._listing)
        self.replica.route("GET", rf"{hub}/(?P<slug>[A-Za-z0-9_.-]+)/", self._model_page)
        self.replica.route("GET", rf"{hub}/(?P<slug>[A-Za-z0-9_.-]+)", self._add_slash)
        self.git.mount(self.replica)

    def _build_repos(self) -> None:
        def add(repo, files, branch="master"):
            self.commits[repo] = [self.git.add_repo(repo, files, branch=branch)]

        add("pytorch/vision", {"hubconf.py": hubconf("tinyresnet18", "pocketnet_v1"),
                               "torchvision/models/tinyresnet.py": "class TinyResNet: pass\n",
                               "torchvision/models/pocketnet.py": "class PocketNet: pass\n"}, branch="main")
        add("NVIDIA/DeepLearningExamples", {
            "hubconf.py": hubconf("nvidia_speakfast", "nvidia_wavesmooth", "nvidia_speakfast_utils"),
            "PyTorch/SpeechSynthesis/SpeakFast/README.md": "# SpeakFast\n",
            "PyTorch/SpeechSynthesis/SpeakFast/model.py": "class SpeakFast: pass\n",
            "PyTorch/SpeechSynthesis/WaveSmooth/README.md": "# WaveSmooth\n",
            "PyTorch/SpeechSynthesis/WaveSmooth/model.py": "class WaveSmooth: pass\n",
        })
        self.commits["NVIDIA/DeepLearningExamples"].append(self.git.commit(
            "NVIDIA/DeepLearningExamples", {"PyTorch/SpeechSynthesis/WaveSmooth/README.md": "# WaveSmooth v2\n"},
            branch="master", message="WaveSmooth: v2"))
        add("quietlab/hush-vad", {"hubconf.py": hubconf("hush_vad"), "README.md": "# Hush VAD\n"})
        add("facebookresearch/WSL-Mini", {"hubconf.py": hubconf("resnext101_8x8d_wslmini")})
        add("textforge/transformers", {"hubconf.py": hubconf("tokenizer", "model")}, branch="main")

    @property
    def url(self) -> str:
        return self.replica.url

    @property
    def base_url(self) -> str:
        return self.url + self.prefix + "/hub"

    def settings(self) -> dict[str, str]:
        return {"PTM_PYTORCHHUB_URL": self.base_url}

    def env(self, base: dict[str, str] | None = None) -> dict[str, str]:
        """Crawl environment: git fetches https://github.com/... from this replica."""
        return insteadof_env("https://github.com", self.url, base)

    def head(self, repo: str) -> str:
        return self.commits[repo][-1]

    def git_sessions(self, repo: str) -> int:
        """How many git clones/fetches reached ``owner/repo`` (each starts with one ``info/refs`` GET)."""
        return self.replica.count("GET", rf"^/{re.escape(repo)}(\.git)?/info/refs")

    def page_requests(self, slug: str) -> int:
        return self.replica.count("GET", rf"^{re.escape(self.prefix)}/hub/{re.escape(slug)}/$")

    def __enter__(self) -> PytorchHubReplica:
        self.replica.start()
        return self

    def __exit__(self, *exc) -> None:
        self.replica.stop()

    def _listing(self, req: Incoming, m: re.Match) -> Reply:
        return Reply.text((FIXTURES / LISTING).read_text(), content_type="text/html; charset=utf-8")

    def _model_page(self, req: Incoming, m: re.Match) -> Reply:
        page = FIXTURES / f"{m.group('slug')}.html"
        if m.group("slug") not in MODEL_REPOS or m.group("slug") in self.gone or not page.is_file():
            return Reply.text("<h1>404</h1>", 404, content_type="text/html; charset=utf-8")
        return Reply.text(page.read_text(), content_type="text/html; charset=utf-8")

    def _add_slash(self, req: Incoming, m: re.Match) -> Reply:
        # GitHub Pages redirects a folder URL without its trailing slash.
        return Reply.text("", 301, headers={"Location": f"{self.prefix}/hub/{m.group('slug')}/"})


def start_demo_replica(workdir: Path, port: int = 0):
    """For the offline demo: (replica context manager, crawl settings, crawl environment)."""
    hub = PytorchHubReplica(Path(workdir) / "pytorchhub-git", port=port)
    return hub, hub.settings(), hub.env()
