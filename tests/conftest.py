import importlib.util
import os
from pathlib import Path

import pytest

from tests.replicas.huggingface import HuggingFaceReplica, fixture_models, synthetic_models
from tests.replicas.server import GitHost, Replica

# The project reads PTM_REDIS_URL from the environment: one set on a developer's machine would turn
# every crawl of the tests (and their subprocesses) into a distributed one.
os.environ.pop("PTM_REDIS_URL", None)

# Only loopback: this process's sockets, and (as their sitecustomize) every Python process a test starts.
_NETGUARD = Path(__file__).parent / "netguard"
_spec = importlib.util.spec_from_file_location("ptm_netguard", _NETGUARD / "sitecustomize.py")
netguard = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(netguard)  # installs it
os.environ["PYTHONPATH"] = os.pathsep.join(p for p in (str(_NETGUARD), os.environ.get("PYTHONPATH")) if p)
# ... and the other programs tests start (git, curl, git-lfs): every URL but a loopback one goes to a
# proxy on a loopback port this process keeps bound and never listening, and is refused there.
_REFUSING_PROXY = netguard.refusing_port()
os.environ.update(netguard.proxy_env(_REFUSING_PROXY.getsockname()[1]))


@pytest.fixture
def hf_models() -> list[dict]:
    """The hand-written fixtures plus 8 synthetic models: 12 models."""
    return fixture_models() + synthetic_models(8)


@pytest.fixture
def hf_replica(tmp_path, hf_models):
    with HuggingFaceReplica(hf_models, tmp_path / "hub-git",
                            renames={"bert-base-uncased": "google-bert/bert-base-uncased"}) as hub:
        yield hub


@pytest.fixture
def crawler(tmp_path):
    """A Hugging Face crawler with the project's settings, its data dir under tmp_path."""
    from spiders.huggingface import HuggingfaceSpider
    from tests.crawl import project_crawler

    crawler = project_crawler(HuggingfaceSpider, {"PTM_DATA_DIR": str(tmp_path / "data"),
                                                  "PTM_GIT_ALLOW_PROTOCOL": "https:http"})
    crawler.spider = HuggingfaceSpider.from_crawler(crawler)
    return crawler



def pytest_unconfigure(config):
    _REFUSING_PROXY.close()  # held for the whole session (no ResourceWarning at exit)


# -- tiers: ``pytest -m "not crawl" tests`` is the quick tier (tests/tiers.py finds what to mark) --

def pytest_collection_modifyitems(config, items):
    from tests.tiers import mark

    for item in items:
        mark(item)


@pytest.fixture
def served(tmp_path):
    """(host, server): a git host on 127.0.0.1 with one repository, owner/repo."""
    host = GitHost(tmp_path / "git")
    host.add_repo("owner/repo", {"README.md": "x\n"})
    with Replica() as server:
        host.mount(server)
        yield host, server
