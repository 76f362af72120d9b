import pytest

from tests.replicas.huggingface import HuggingFaceReplica, fixture_models, synthetic_models


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


# -- tiers ----------------------------------------------------------------------------------------
# ``pytest -m "not crawl" tests`` is the quick tier: every test that starts a process (a real
# ``scrapy crawl`` through tests/crawl.py, git, Scrapyd, the demo …) or needs a running service is
# marked ``crawl`` here, found by what the test and its fixtures call (transitively, through helpers
# in tests/ and bench/), so a new test is tiered without anyone remembering to mark it. ``service`` also marks
# those that need Splash/Redis (tests/services.py).

_FOLLOWED = ("tests", "bench")


def _reaches(func, targets: tuple, seen: set) -> set:
    """Which of ``targets`` (objects such as ``subprocess``) ``func``'s code reaches through the
    globals it names, following functions and classes defined under ``tests`` and ``bench``."""
    import inspect
    import types

    func = inspect.unwrap(func)
    if id(func) in seen:
        return set()
    seen.add(id(func))
    if isinstance(func, type):
        found = set()
        for member in vars(func).values():
            member = getattr(member, "__func__", member)
            if isinstance(member, types.FunctionType):
                found |= _reaches(member, targets, seen)
        return found
    code = getattr(func, "__code__", None)
    if code is None:
        return set()
    names, stack = set(), [code]
    while stack:
        c = stack.pop()
        names.update(c.co_names)
        stack.extend(k for k in c.co_consts if isinstance(k, types.CodeType))
    found = set()
    for name in names:
        obj = func.__globals__.get(name)
        if obj is None:
            continue
        found.update(i for i, t in enumerate(targets) if obj is t)
        if isinstance(obj, types.ModuleType) and obj.__name__.startswith(_FOLLOWED):
            # ``module.helper(...)``: the helper's name is among the attribute names used
            for attr in names:
                member = getattr(obj, attr, None)
                if isinstance(member, (types.FunctionType, type)):
                    found |= _reaches(member, targets, seen)
        elif isinstance(obj, (types.FunctionType, type)) and \
                (getattr(obj, "__module__", None) or "").startswith(_FOLLOWED):
            found |= _reaches(obj, targets, seen)
    return found


def pytest_collection_modifyitems(config, items):
    import subprocess

    from tests import crawl, services

    targets = (subprocess, crawl.run_crawl, services.require_service)
    for item in items:
        funcs = [getattr(item, "function", None)]
        for name in getattr(item, "fixturenames", ()):
            defs = getattr(item, "_fixtureinfo", None) and item._fixtureinfo.name2fixturedefs.get(name)
            funcs += [d.func for d in defs or ()]
        found, seen = set(), set()
        for func in funcs:
            if func is not None:
                found |= _reaches(func, targets, seen)
        if found:
            item.add_marker(pytest.mark.crawl)
        if 2 in found:
            item.add_marker(pytest.mark.service)
