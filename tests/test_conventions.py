"""Conventions of the test suite: three tiers per hub in their own files, the cheap tiers free of
processes (so ``pytest -m "not crawl" tests`` stays quick), shared helpers instead of copies."""

import importlib
import inspect
import pkgutil
import re
from pathlib import Path

import pytest
import scrapy

import spiders
from tests.tiers import reaches

TESTS = Path(__file__).resolve().parent


def hub_names() -> list[str]:
    """The ``name`` of every spider in ``spiders/``."""
    names = set()
    for info in pkgutil.iter_modules(spiders.__path__):
        module = importlib.import_module(f"spiders.{info.name}")
        names.update(c.name for c in vars(module).values()
                     if isinstance(c, type) and issubclass(c, scrapy.Spider) and c.__module__ == module.__name__
                     and getattr(c, "name", None))
    return sorted(names)


def module_tests(module_name: str) -> dict:
    module = importlib.import_module(f"tests.{module_name}")
    return {name: f for name, f in vars(module).items()
            if name.startswith("test_") and inspect.isfunction(f) and f.__module__ == module.__name__}


HUBS = hub_names()


def test_the_hubs_are_found():
    assert {"huggingface", "modelzoo", "tfhub"} <= set(HUBS) and len(HUBS) >= 10


@pytest.mark.parametrize("hub", HUBS)
def test_every_hub_has_callback_mapper_and_cli_tests(hub):
    missing = [f for f in (f"test_{hub}_spider.py", f"test_{hub}_mapper.py", f"test_cli_{hub}.py")
               if not (TESTS / f).is_file()]
    assert missing == [], f"hub {hub!r} lacks {missing}"
    assert module_tests(f"test_{hub}_mapper"), f"test_{hub}_mapper.py has no test"


@pytest.mark.parametrize("hub", HUBS)
def test_mapper_tests_live_in_the_mapper_file(hub):
    # The callback tier checks what the spider yields; what the mapper makes of it is tested in
    # test_<hub>_mapper.py (which may build its payloads with the spider-test helpers).
    source = (TESTS / f"test_{hub}_spider.py").read_text()
    assert f"ptmscrape.mappers.{hub}" not in source and "map_raw" not in source


@pytest.mark.parametrize("hub", HUBS)
def test_the_cheap_tiers_start_no_process_and_the_cli_tier_is_marked_crawl(hub):
    for module_name in (f"test_{hub}_spider", f"test_{hub}_mapper"):
        for name, func in module_tests(module_name).items():
            assert not reaches(func) & {"subprocess", "run_crawl"}, f"{module_name}::{name} starts a process"
    cli = module_tests(f"test_cli_{hub}")
    assert cli
    for name, func in cli.items():
        assert reaches(func), f"test_cli_{hub}::{name} would run in the quick tier"


def test_tiers_follow_helpers_and_module_attributes():
    # Probe code compiled here (not written in this test) so this test itself stays in the quick tier.
    probe = {"__name__": "tests.probe", "crawl": importlib.import_module("tests.crawl")}
    exec("def test_probe(tmp_path):\n    return helper(tmp_path)\n"
         "def helper(tmp_path):\n    return crawl.run_crawl('huggingface', tmp_path)\n"
         "def cheap():\n    return 1\n", probe)
    assert reaches(probe["test_probe"]) == {"run_crawl", "subprocess"}
    assert reaches(probe["cheap"]) == set()
    helpers = importlib.import_module("tests.helpers")
    assert reaches(helpers.make_spider) == reaches(helpers.fixture_response) == set()


def test_no_test_module_keeps_its_own_spider_factory_or_start_request_collector():
    copies = []
    for path in sorted(TESTS.glob("test_*.py")):
        source = path.read_text()
        if re.search(r"^def make_spider\(", source, re.M):
            copies.append(f"{path.name}: make_spider (use tests.helpers.spider_maker/make_spider)")
        if re.search(r"return \[\w+ async for \w+ in \w+\.start\(\)\]", source):
            copies.append(f"{path.name}: a start-request collector (use tests.helpers.start_requests)")
    assert copies == []


def _spider_modules() -> list[Path]:
    """The spiders and the spider base for hubs of one GitHub repository's files."""
    root = TESTS.parent
    return sorted((root / "spiders").glob("*.py")) + [root / "ptmscrape/github_tree.py"]


def test_spiders_check_the_limit_per_page_with_limit_reached_for():
    """``limit_reached`` alone stops a page a resumed JOBDIR job fetches again to store the models a full
    disk dropped (docs/operations.md): the limit was reached, so they were never stored again.
    ``limit_reached_for(response)`` lets such a page list them (docs/adding-a-hub.md says so)."""
    import ast

    bare = [f"{path.name}:{node.lineno}" for path in _spider_modules()
            for node in ast.walk(ast.parse(path.read_text()))
            if isinstance(node, ast.Attribute) and node.attr == "limit_reached"]
    assert bare == [], f"use self.limit_reached_for(response): {bare}"


def test_every_listing_next_page_goes_to_a_listing_callback():
    """A next cursor or link that repeats a page read in this crawl is reported (``Listing loops``,
    exit status 1) only for pages of the spider's ``listing_callbacks`` (``parse_listing``;
    ``HubSpider.listing_page_scheduled``): under another name Scrapy's dupefilter ended the listing
    there in silence, exit status 0."""
    import ast

    from ptmscrape.spiders_base import HubSpider

    others = []
    for path in _spider_modules():
        name = f"spiders.{path.stem}" if path.parent.name == "spiders" else "ptmscrape.github_tree"
        module = importlib.import_module(name)
        listing = set(HubSpider.listing_callbacks).union(*(
            c.listing_callbacks for c in vars(module).values() if isinstance(c, type) and issubclass(c, HubSpider)))
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute) and node.func.attr == "next_page":
                callback = node.args[1] if len(node.args) > 1 else None
                if not (isinstance(callback, ast.Attribute) and callback.attr in listing):
                    others.append(f"{path.name}:{node.lineno}")
    assert others == [], f"name the listing's callback parse_listing (or add it to listing_callbacks): {others}"


def _skips_and_xfails():
    """``(file, line, name, call)`` of every ``pytest.skip``/``skipif``/``importorskip``/``xfail``
    call in ``tests/`` (decorators included), of every such mark not called (``@pytest.mark.skip``,
    ``marks=pytest.mark.xfail``: ``call`` None) and of every import of one (``from pytest import
    skip``: ``call`` None), in line order per file."""
    import ast

    names = ("skip", "skipif", "importorskip", "xfail")
    for path in sorted(TESTS.rglob("*.py")):
        if "fixtures" in path.relative_to(TESTS).parts:
            continue
        tree = ast.parse(path.read_text(), str(path))
        # Attributes that are a call's function (counted as the call) or the object of another
        # attribute (``pytest.skip.Exception``: no skip).
        inner = {id(n.func) for n in ast.walk(tree) if isinstance(n, ast.Call)}
        inner |= {id(n.value) for n in ast.walk(tree) if isinstance(n, ast.Attribute)}
        found = []
        for node in ast.walk(tree):
            if isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute) and node.func.attr in names:
                found.append((node.lineno, node.func.attr, node))
            elif isinstance(node, ast.Attribute) and node.attr in names and id(node) not in inner:
                found.append((node.lineno, node.attr, None))
            elif isinstance(node, ast.ImportFrom) and node.module in ("pytest", "_pytest.outcomes"):
                found.extend((node.lineno, a.name, None) for a in node.names if a.name in names)
        for line, name, call in sorted(found, key=lambda f: f[0]):
            yield path.relative_to(TESTS).as_posix(), line, name, call


def test_a_test_is_skipped_only_through_tests_services():
    """Whatever a test needs of the machine (a service, root, a tmpfs mount, namespaces, setpriv),
    CI provides: a test that skips for want of it must fail under ``CI=true``, as a missing service
    does. So the only skip is ``tests.services.missing`` (and ``require_service``, which calls it)."""
    skips = [f"{path}:{line} {name}" for path, line, name, _ in _skips_and_xfails()
             if name != "xfail" and path != "services.py"]
    assert skips == []


def test_what_a_test_misses_of_the_machine_skips_it_here_and_fails_it_under_ci(monkeypatch):
    from tests.services import missing

    monkeypatch.setenv("CI", "true")
    with pytest.raises(pytest.fail.Exception, match=r"^CI=true and no setpriv\(1\)$"):
        missing("no setpriv(1)")
    monkeypatch.delenv("CI")
    with pytest.raises(pytest.skip.Exception, match=r"^no setpriv\(1\)$"):
        missing("no setpriv(1)")


def test_every_xfail_is_strict_and_names_how_it_fails():
    """An xfail that starts passing fails the run (strict), so a probe of an upstream bug says when
    its workaround can go; ``raises=`` keeps a new, different breakage from hiding behind it."""
    loose = []
    for path, line, name, call in _skips_and_xfails():
        if name != "xfail":
            continue
        keywords = {k.arg: k.value for k in call.keywords} if call is not None else {}
        strict = keywords.get("strict")
        if not (getattr(strict, "value", None) is True and "raises" in keywords):
            loose.append(f"{path}:{line}")
    assert loose == []


def test_the_skip_and_xfail_checks_see_marks_not_called(tmp_path, monkeypatch):
    """``@pytest.mark.skip`` (or ``pytestmark = pytest.mark.skip``, ``marks=pytest.mark.xfail``) is
    no call: the checks above walked calls only, so such a test skipped under CI=true unseen, and a
    bare xfail passed for strict; ``from pytest import skip`` then ``skip(…)`` slipped by too."""
    import tests.test_conventions as conventions

    (tmp_path / "test_x.py").write_text(
        "import pytest\nfrom pytest import skip\n"
        "pytestmark = pytest.mark.skip\n"
        "@pytest.mark.skip\ndef test_a(): pass\n"
        "@pytest.mark.parametrize('v', [pytest.param(1, marks=pytest.mark.xfail)])\ndef test_b(v): pass\n"
        "def test_c():\n    with pytest.raises(pytest.skip.Exception): skip('x')\n")
    monkeypatch.setattr(conventions, "TESTS", tmp_path)
    found = [(line, name) for _, line, name, _ in conventions._skips_and_xfails()]
    assert found == [(2, "skip"), (3, "skip"), (4, "skip"), (6, "xfail")], found
