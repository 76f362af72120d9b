"""Project-wide conventions: spider naming, documented settings, the CLI sees every spider."""

import importlib
import inspect
import os
import pkgutil
import re
import subprocess
import sys
from pathlib import Path

import pytest
import scrapy

import ptmscrape.settings as settings
import spiders
from ptmscrape.spiders_base import HubSpider

ROOT = Path(__file__).resolve().parent.parent


def spider_modules():
    return [m.name for m in pkgutil.iter_modules(spiders.__path__) if not m.name.startswith("_")]


def test_every_spider_imports_and_file_class_and_name_agree():
    assert "huggingface" in spider_modules()
    for module_name in spider_modules():
        module = importlib.import_module(f"spiders.{module_name}")
        classes = [c for c in vars(module).values()
                   if isinstance(c, type) and issubclass(c, scrapy.Spider) and c.__module__ == module.__name__]
        assert len(classes) == 1, f"spiders/{module_name}.py should define exactly one spider"
        (cls,) = classes
        assert cls.name == module_name
        assert cls.__name__.lower() == f"{module_name}spider"
        assert issubclass(cls, HubSpider)
        assert importlib.import_module(f"ptmscrape.mappers.{module_name}").map_raw


def test_no_spider_callback_is_a_generator_returning_a_value():
    """What Scrapy's WARN_ON_GENERATOR_RETURN_VALUE checks on every response (off in settings.py:
    it re-parses the callback's source each time), checked here once for every spider method."""
    from scrapy.utils.misc import is_generator_with_return_value

    assert settings.WARN_ON_GENERATOR_RETURN_VALUE is False
    checked = 0
    for module_name in spider_modules():
        module = importlib.import_module(f"spiders.{module_name}")
        (cls,) = [c for c in vars(module).values()
                  if isinstance(c, type) and issubclass(c, scrapy.Spider) and c.__module__ == module.__name__]
        for klass in cls.__mro__:
            if not klass.__module__.startswith(("spiders.", "ptmscrape.")):
                continue
            for name, function in vars(klass).items():
                if inspect.isgeneratorfunction(function):
                    checked += 1
                    assert not is_generator_with_return_value(function), f"{klass.__name__}.{name}"
    assert checked > 20

    def returns_a_value(response):
        yield 1
        return 2

    assert is_generator_with_return_value(returns_a_value)  # the check itself still finds one


def test_scrapy_list_shows_every_spider():
    out = subprocess.run([sys.executable, "-m", "scrapy.cmdline", "list"], cwd=ROOT, capture_output=True,
                         text=True, check=True).stdout.split()
    assert sorted(out) == sorted(spider_modules())


def test_every_ptm_setting_is_documented_in_the_readme_and_vice_versa():
    """The settings table moved from the README to docs/settings.md (linked from the README)."""
    defined = {name for name in dir(settings) if name.startswith("PTM_")}
    table = (ROOT / "docs/settings.md").read_text()
    documented = set(re.findall(r"^\| `(PTM_[A-Z0-9_]+)` \|", table, flags=re.M))
    assert defined == documented


def test_the_settings_table_gives_each_setting_its_default():
    """The default column says what ptmscrape/settings.py sets: `value` as it is read, "empty" for
    "", the first items of a list followed by "…"."""
    table = (ROOT / "docs/settings.md").read_text()
    wrong = []
    for name, shown in re.findall(r"^\| `(PTM_[A-Z0-9_]+)` \| ([^|]+?) \|", table, flags=re.M):
        value = getattr(settings, name)
        if name == "PTM_REDIS_URL" and os.environ.get("PTM_REDIS_URL"):
            value = ""  # its default is the environment's: the table gives the one without it
        quoted = re.fullmatch(r"`([^`]*)`", shown)
        if isinstance(value, list):
            listed = [item.strip() for item in shown.split(",")]
            ok = listed[-1] == "…" and listed[:-1] == value[:len(listed) - 1]
        elif value == "":
            ok = shown == "empty"
        elif isinstance(value, bool) or isinstance(value, str):
            ok = quoted is not None and quoted.group(1) == str(value)
        else:
            ok = quoted is not None and float(quoted.group(1)) == value
        if not ok:
            wrong.append(f"{name}: docs say {shown}, settings.py {value!r}")
    assert wrong == []


def test_every_ptm_environment_variable_the_settings_read_is_documented():
    read = set(re.findall(r'os\.environ\.get\("(PTM_[A-Z0-9_]+)"', (ROOT / "ptmscrape/settings.py").read_text()))
    assert read, "the settings module reads PTM_LOG_LEVEL from the environment"
    docs = (ROOT / "docs/settings.md").read_text()
    assert {name for name in read if f"`{name}`" not in docs} == set()


def test_ptm_log_level_sets_the_default_log_level_and_the_command_line_wins():
    def log_level(env_value, *args):
        env = {k: v for k, v in os.environ.items() if k != "PTM_LOG_LEVEL"}
        if env_value:
            env["PTM_LOG_LEVEL"] = env_value
        return subprocess.run([sys.executable, "-m", "scrapy.cmdline", "settings", "--get", "LOG_LEVEL", *args],
                              cwd=ROOT, env=env, capture_output=True, text=True, check=True).stdout.strip()
    assert log_level(None) == "INFO"
    assert log_level("DEBUG") == "DEBUG"
    assert log_level("DEBUG", "-s", "LOG_LEVEL=WARNING") == "WARNING"


def test_every_ptm_setting_has_a_doc_comment():
    lines = (ROOT / "ptmscrape/settings.py").read_text().splitlines()
    for i, line in enumerate(lines):
        if re.match(r"^PTM_[A-Z0-9_]+ = ", line):
            assert lines[i - 1].startswith("# "), f"{line.split()[0]} needs a one-line comment above it"


def test_splash_is_on_exactly_when_splash_url_is_set_in_the_environment():
    # The settings module reads SPLASH_URL at import, as `scrapy crawl` does in a fresh process.
    probe = ("from scrapy.utils.reactor import install_reactor;"
             "install_reactor('twisted.internet.asyncioreactor.AsyncioSelectorReactor');"
             "from scrapy.utils.project import get_project_settings;"
             "from scrapy.utils.test import get_crawler;"
             "from spiders.huggingface import HuggingfaceSpider as S;"
             "c = get_crawler(S, get_project_settings().copy_to_dict());"
             "print(sorted(str(k) for k in c.settings.getdict('DOWNLOADER_MIDDLEWARES') if 'plash' in str(k)))")
    def splash_middlewares(env_url):
        env = {k: v for k, v in os.environ.items() if k != "SPLASH_URL"}
        if env_url:
            env["SPLASH_URL"] = env_url
        return subprocess.run([sys.executable, "-c", probe], cwd=ROOT, env=env, capture_output=True,
                              text=True, check=True).stdout.strip()
    assert splash_middlewares(None) == "[]"
    assert "SplashMiddleware" in splash_middlewares("http://127.0.0.1:8050")


def test_ptm_settings_are_read_without_a_fallback():
    """Defaults live in ptmscrape/settings.py only: no read site passes its own (issue 11, item 7)."""
    import ast

    getters = {"get", "getint", "getfloat", "getbool", "getlist", "getdict", "getwithbase", "getpriority"}
    found = []
    for folder in ("ptmscrape", "pipelines", "spiders"):
        for path in sorted((ROOT / folder).rglob("*.py")):
            if path == ROOT / "ptmscrape/settings.py":  # where the defaults live
                continue
            for node in ast.walk(ast.parse(path.read_text(), str(path))):
                if not (isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute)
                        and node.func.attr in getters and node.args):
                    continue
                name = node.args[0]
                ptm = (isinstance(name, ast.Constant) and isinstance(name.value, str)
                       and name.value.startswith("PTM_")) \
                    or "setting" in ast.unparse(name)  # e.g. cls.base_url_setting
                if ptm and (len(node.args) > 1 or any(k.arg == "default" for k in node.keywords)):
                    found.append(f"{path.relative_to(ROOT)}:{node.lineno}: {ast.unparse(node)}")
    assert found == []


def test_typed_ptm_settings_have_a_default_of_the_type_they_are_read_as():
    """``-s`` values are checked against the default's type before the crawl (``checks.py``): a
    setting read with ``getfloat`` but an int default would refuse ``-s PTM_…=0.5`` with exit 2."""
    import ast

    kinds = {"getint": int, "getfloat": float, "getbool": bool}
    wrong = []
    for folder in ("ptmscrape", "pipelines", "spiders"):
        for path in sorted((ROOT / folder).rglob("*.py")):
            for node in ast.walk(ast.parse(path.read_text(), str(path))):
                if (isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute)
                        and node.func.attr in kinds and node.args and isinstance(node.args[0], ast.Constant)
                        and str(node.args[0].value).startswith("PTM_")):
                    name, kind = node.args[0].value, kinds[node.func.attr]
                    if type(getattr(settings, name)) is not kind:
                        wrong.append(f"{path.relative_to(ROOT)}:{node.lineno}: {name} read as {kind.__name__}, "
                                     f"default {getattr(settings, name)!r}")
    assert wrong == []


@pytest.mark.parametrize("command", sorted(p.stem for p in (ROOT / "ptmscrape/commands").glob("*.py")
                                           if p.stem != "__init__"))
def test_a_project_commands_help_has_no_option_text_taken_for_a_heading(command):
    """Scrapy's help formatter title-cases and underlines a wrapped help line ending in ':'."""
    out = subprocess.run([sys.executable, "-m", "scrapy.cmdline", command, "-h"], cwd=ROOT, capture_output=True,
                         text=True, check=True).stdout.splitlines()
    headings = [out[i - 1] for i, line in enumerate(out) if i and re.fullmatch(r"=+", line)]
    assert set(headings) <= {"Usage", "Options", "Global Options"}, headings
