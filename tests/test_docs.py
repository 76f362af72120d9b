"""The README stays short (a newcomer's way in) and every relative link in it and in docs/ leads somewhere.

Other tests read what the pages say: settings (test_project.py), -a arguments (test_verdict.py), the
silent-hub bound (test_exit_status.py), the analysis snippets (test_export.py).
"""

from __future__ import annotations

import re
import unicodedata
from pathlib import Path

import pytest

from tests.crawl import ROOT

README_LIMIT = 12_000
PAGES = [ROOT / "README.md", *sorted((ROOT / "docs").glob("*.md"))]
_FENCE = re.compile(r"^```.*?^```", re.M | re.S)
_CODE = re.compile(r"`[^`\n]*`")
_LINK = re.compile(r"\[[^\]\n]*\]\(\s*<?([^)\s>]+)>?(?:\s+\"[^\"]*\")?\s*\)")


def prose(text: str) -> str:
    """The page without code blocks and inline code, where brackets are not links."""
    return _CODE.sub("", _FENCE.sub("", text))


def links(text: str) -> list[str]:
    return _LINK.findall(prose(text))


def anchors(text: str) -> set[str]:
    """The anchors GitHub gives a page's headings: lower case, punctuation dropped, spaces to '-'."""
    found: set[str] = set()
    seen: dict[str, int] = {}
    for heading in re.findall(r"^#{1,6}[ \t]+(.+?)[ \t]*#*$", _FENCE.sub("", text), re.M):
        slug = "".join(c for c in heading.lower().replace("`", "")
                       if c in " -_" or unicodedata.category(c)[0] in "LN").replace(" ", "-")
        n = seen.get(slug, 0)
        seen[slug] = n + 1
        found.add(slug if n == 0 else f"{slug}-{n}")
    return found


def test_the_readme_is_at_most_12000_characters():
    size = len((ROOT / "README.md").read_text())
    assert size <= README_LIMIT, f"README.md has {size} characters; move detail into docs/"


def test_the_readme_links_every_docs_page():
    linked = {(ROOT / target.split("#")[0]).resolve() for target in links((ROOT / "README.md").read_text())}
    assert [p.name for p in PAGES[1:] if p.resolve() not in linked] == []


@pytest.mark.parametrize("page", PAGES, ids=lambda p: str(p.relative_to(ROOT)))
def test_every_relative_link_points_at_an_existing_file_and_heading(page: Path):
    broken = []
    for target in links(page.read_text()):
        if re.match(r"^[a-z][a-z0-9+.-]*:", target, re.I):  # https:, mailto:: not ours to check
            continue
        path, _, fragment = target.partition("#")
        file = (page.parent / path).resolve() if path else page.resolve()
        if not file.exists():
            broken.append(f"{target}: no such file")
        elif not file.is_relative_to(ROOT):
            broken.append(f"{target}: outside the repository")
        elif fragment and file.suffix == ".md" and fragment not in anchors(file.read_text()):
            broken.append(f"{target}: no heading #{fragment} in {file.relative_to(ROOT)}")
    assert broken == []


def test_the_link_checker_finds_broken_links(tmp_path):
    """Guards the parsing above: it sees links, skips code, and knows a heading's anchor."""
    text = ("# Exit status\n\n## The `PTM` record (v1)\n\nSee [a](docs/a.md#x) and `[b](not/a/link.md)`.\n\n"
            "```\n[c](also/not.md)\n```\n")
    assert links(text) == ["docs/a.md#x"]
    assert anchors(text) == {"exit-status", "the-ptm-record-v1"}


def stats_names_spelled_out(path: Path) -> list[tuple[int, str]]:
    """``ptm/…`` string literals of a module (whole strings, and f-strings starting with one);
    docstrings and comments mention names as prose, and are not counted."""
    import ast

    found = []
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        first = node.values[0] if isinstance(node, ast.JoinedStr) and node.values else node
        if isinstance(first, ast.Constant) and isinstance(first.value, str) and first.value.startswith("ptm/"):
            found.append((node.lineno, first.value))
    return found


def test_docs_stats_lists_every_stats_name():
    from ptmscrape.stats import names

    page = (ROOT / "docs/stats.md").read_text()
    listed = set(re.findall(r"^\| `(ptm/[^`]+)` \|", page, re.M))
    missing = [name for name in names().values()
               if (name not in listed if not name.endswith("/") else not any(
                   n.startswith(name + "<") for n in listed))]
    assert names() and not missing, f"docs/stats.md lacks {missing}"
    unknown = [n for n in listed if n not in names().values() and not any(
        n.startswith(p + "<") for p in names().values() if p.endswith("/"))]
    assert not unknown, f"docs/stats.md lists names the code does not count: {unknown}"


def test_stats_names_are_spelled_out_only_in_the_stats_module():
    modules = [p for folder in ("ptmscrape", "spiders", "pipelines") for p in sorted((ROOT / folder).rglob("*.py"))]
    spelled = {str(p.relative_to(ROOT)): stats_names_spelled_out(p) for p in modules}
    assert spelled.pop("ptmscrape/stats.py")  # the one place (and the check sees literals)
    offenders = {path: found for path, found in spelled.items() if found}
    assert not offenders, f"use the constants of ptmscrape/stats.py: {offenders}"


_IMPORT = re.compile(r"^\s*from\s+(ptmscrape[\w.]*)\s+import\s+([\w, ]+)|^\s*import\s+(ptmscrape[\w.]*)", re.M)


def project_imports(text: str) -> list[tuple[str, list[str]]]:
    """(module, names) of every ``from ptmscrape… import …`` / ``import ptmscrape…`` in a page's code blocks."""
    found = []
    for block in _FENCE.findall(text):
        for module, names, plain in _IMPORT.findall(block):
            found.append((module or plain, [n.strip() for n in names.split(",") if n.strip()]))
    return found


@pytest.mark.parametrize("page", PAGES, ids=lambda p: p.name)
def test_every_project_import_in_a_code_block_works(page: Path):
    import importlib

    for module, names in project_imports(page.read_text()):
        imported = importlib.import_module(module)
        missing = [name for name in names if not hasattr(imported, name)]
        assert not missing, f"{page.name}: `from {module} import {', '.join(names)}`: {missing} not in {module}"


def test_the_import_check_reads_code_blocks_and_finds_a_missing_name():
    page = "text\n```python\nfrom ptmscrape.dataset import read_jsonl, x\nimport ptmscrape.payload\n```\n"
    assert project_imports(page) == [("ptmscrape.dataset", ["read_jsonl", "x"]), ("ptmscrape.payload", [])]
    import ptmscrape.dataset

    assert not hasattr(ptmscrape.dataset, "read_jsonl")  # the name docs/operations.md once imported from there


def names_used(path: Path) -> set[str]:
    """The names a module's code reads (``NAME`` and ``module.NAME``), not the ones it only imports."""
    import ast

    used: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.Name):
            used.add(node.id)
        elif isinstance(node, ast.Attribute):
            used.add(node.attr)
    return used


def test_every_stats_name_is_counted_somewhere():
    """docs/stats.md lists the constants of ptmscrape/stats.py; a constant no code reads any more is a
    counter the page promises and no crawl has."""
    from ptmscrape.stats import names

    modules = [p for folder in ("ptmscrape", "spiders", "pipelines") for p in sorted((ROOT / folder).rglob("*.py"))
               if p != ROOT / "ptmscrape/stats.py"]
    used = set().union(*(names_used(p) for p in modules))
    unused = sorted(const for const in names() if const not in used)
    assert not unused, f"ptmscrape/stats.py names counters no code counts: {unused}"


def _environment_variables_read() -> set[str]:
    """``PTM_…`` environment variables the project reads: ptmscrape/settings.py, the .ci/ scripts, tests/."""
    read = set(re.findall(r'os\.environ\.get\("(PTM_[A-Z0-9_]+)"', (ROOT / "ptmscrape/settings.py").read_text()))
    for script in sorted((ROOT / ".ci").iterdir()):
        read |= set(re.findall(r"\$\{?(PTM_[A-Z0-9_]+)", script.read_text()))
    for module in sorted((ROOT / "tests").glob("*.py")):
        read |= set(re.findall(r'os\.environ\.get\("(PTM_[A-Z0-9_]+)"', module.read_text()))
    return read


def test_every_ptm_name_in_the_docs_is_a_setting_or_an_environment_variable_and_every_variable_documented():
    """The settings table is checked in test_project.py; this covers every other mention: a
    ``PTM_…`` name in the README or docs/ is a setting of ptmscrape/settings.py or an environment
    variable something reads, and every such variable is documented somewhere."""
    import ptmscrape.settings as settings

    defined = {name for name in dir(settings) if name.startswith("PTM_")}
    variables = _environment_variables_read()
    assert "PTM_LOG_LEVEL" in variables and "PTM_PYTHON" in variables  # the scan sees both kinds
    text = "\n".join(page.read_text() for page in PAGES)
    mentioned = set(re.findall(r"\bPTM_[A-Z0-9_]*[A-Z0-9]\b", text))
    assert not mentioned - defined - variables, f"the docs name what nothing reads: {mentioned - defined - variables}"
    assert not variables - mentioned, f"environment variables no page documents: {variables - mentioned}"


def _ignored(name: str) -> bool:
    """What .gitignore keeps out of the repository at its top level (outputs, venvs, caches)."""
    from fnmatch import fnmatch

    patterns = [line.strip().strip("/") for line in (ROOT / ".gitignore").read_text().splitlines()
                if line.strip() and not line.startswith("#")]
    return any(fnmatch(name, pattern) for pattern in patterns)


def test_the_layout_page_names_every_module_and_folder_and_only_ones_that_exist():
    page = (ROOT / "docs/layout.md").read_text()
    (block,) = _FENCE.findall(page)
    named = set(re.findall(r"(?<![\w/.-])([\w.-]+/?)", block))
    missing = []
    for entry in sorted(ROOT.iterdir()):  # the repository's top level: folders and files
        if _ignored(entry.name) or (entry.name.startswith(".") and entry.name != ".ci") or entry.name == "README.md":
            continue
        if (entry.name + "/" if entry.is_dir() else entry.name) not in named:
            missing.append(entry.name)
    for entry in sorted((ROOT / "ptmscrape").iterdir()):  # every module and package of ptmscrape/
        if entry.name.startswith("__") or _ignored(entry.name):
            continue
        if (entry.name + "/" if entry.is_dir() else entry.name) not in named:
            missing.append(f"ptmscrape/{entry.name}")
    for folder in ("pipelines", ".ci"):
        missing += [f"{folder}/{p.name}" for p in sorted((ROOT / folder).iterdir())
                    if not p.name.startswith("__") and p.name not in named]
    assert not missing, f"docs/layout.md does not name {missing}"
    files = {p.name for folder in ("ptmscrape", "spiders", "pipelines", "tests", "bench", ".ci", "docs")
             for p in (ROOT / folder).rglob("*")} | {p.name for p in ROOT.iterdir()}
    unknown = sorted(n for n in named if re.fullmatch(r"[\w.-]+\.(py|sh|cfg|txt|toml|ini|json|sql|md)", n)
                     and n not in files)
    assert not unknown, f"docs/layout.md names files that do not exist: {unknown}"


def test_the_layout_page_names_every_module_of_the_packages_and_every_test_helper():
    """The check above looks at the top of ptmscrape/; this one at the modules inside its packages
    (but a hub's mapper: "mappers/<hub>.py"), at tests/' helpers (not test_*.py) and at the replicas'
    own modules (not a hub's replica)."""
    page = (ROOT / "docs/layout.md").read_text()
    (block,) = _FENCE.findall(page)
    hubs = {p.stem for p in (ROOT / "spiders").glob("*.py")} | {"onnx"}  # the ONNX zoo's replica module

    def named(name: str) -> bool:
        return re.search(rf"(?<![\w.-]){re.escape(name)}(?![\w-]|\.\w)", block) is not None

    missing = []
    for package in sorted(p for p in (ROOT / "ptmscrape").iterdir() if p.is_dir() and (p / "__init__.py").exists()):
        for module in sorted(package.iterdir()):
            if module.is_file() and not module.name.startswith("__") and not _ignored(module.name) \
                    and not (package.name == "mappers" and module.stem in hubs) and not named(module.name):
                missing.append(str(module.relative_to(ROOT)))
    for module in sorted((ROOT / "tests").glob("*.py")):
        if not module.name.startswith(("test_", "__")) and not named(module.name):
            missing.append(str(module.relative_to(ROOT)))
    for module in sorted((ROOT / "tests/replicas").glob("*.py")):
        if not module.name.startswith("__") and module.stem not in hubs and not named(module.name):
            missing.append(str(module.relative_to(ROOT)))
    assert not missing, f"docs/layout.md does not name {missing}"


def test_docs_stats_names_every_reason_an_item_is_dropped_for():
    """``item_dropped_reasons_count/<Reason>`` is Scrapy's count by the class of the DropItem a stage
    raised: a paused JOBDIR job shows ``…/Deferred`` by the hundred, a full disk ``…/NotStored``."""
    import importlib
    import inspect

    from scrapy.exceptions import DropItem

    reasons = {name for path in sorted((ROOT / "pipelines").glob("*.py"))
               for name, obj in vars(importlib.import_module(f"pipelines.{path.stem}")).items()
               if inspect.isclass(obj) and issubclass(obj, DropItem) and obj is not DropItem}
    page = (ROOT / "docs/stats.md").read_text()
    listed = page[page.index("item_dropped_reasons_count/<Reason>"):].split(".", 1)[0]
    assert reasons and not {r for r in reasons if f"`{r}`" not in listed}, listed


def test_the_readme_set_up_names_the_python_the_project_requires():
    """A newcomer reads the README's set-up, not setup.py: its python_requires must be stated there."""
    required = re.search(r'python_requires=">=(\d+\.\d+)"', (ROOT / "setup.py").read_text())
    assert required
    setup = (ROOT / "README.md").read_text().split("## Set up", 1)[1].split("```", 1)[0]
    assert f"Python {required.group(1)} or newer" in setup
