"""Test tiers, marked at collection (``tests/conftest.py``), so a new test is tiered without anyone
remembering to mark it.

* ``crawl``: the test, or a fixture it uses, reaches ``subprocess`` (a real ``scrapy crawl`` through
  ``tests/crawl.py``, git, Scrapyd, the demo …), ``run_crawl`` or ``require_service`` — directly or
  through helpers in ``tests/`` and ``bench/``. ``pytest -m "not crawl" tests`` leaves them out: the
  quick tier (callback, mapper, pipeline and unit tests).
* ``service``: among those, the ones that need Splash or Redis (``tests/services.py``).

What a test reaches is read from the names its code uses (``co_names``), so it is a static guess
that errs on the safe side: a helper that *could* start a process puts the test in ``crawl``.
"""

from __future__ import annotations

import inspect
import subprocess
import types

import pytest

from tests import crawl, services

# What makes a test slow or dependent on the machine, by the name the reason is reported with.
TARGETS = {"subprocess": subprocess, "run_crawl": crawl.run_crawl, "require_service": services.require_service}
FOLLOWED = ("tests", "bench")  # helpers in these packages are followed into


def reaches(func, seen: set | None = None) -> set[str]:
    """The names of the :data:`TARGETS` that ``func`` (a function or class) reaches through the
    globals its code names, following functions and classes defined in :data:`FOLLOWED`."""
    seen = set() if seen is None else seen
    func = inspect.unwrap(func)
    if id(func) in seen:
        return set()
    seen.add(id(func))
    if isinstance(func, type):
        found: set[str] = set()
        for member in vars(func).values():
            member = getattr(member, "__func__", member)
            if isinstance(member, types.FunctionType):
                found |= reaches(member, seen)
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
        found.update(label for label, target in TARGETS.items() if obj is target)
        if isinstance(obj, types.ModuleType) and obj.__name__.startswith(FOLLOWED):
            # ``module.helper(...)``: the helper's name is among the names the code uses
            for attr in names:
                member = getattr(obj, attr, None)
                found.update(label for label, target in TARGETS.items() if member is target)
                if isinstance(member, (types.FunctionType, type)):
                    found |= reaches(member, seen)
        elif isinstance(obj, (types.FunctionType, type)) and \
                (getattr(obj, "__module__", None) or "").startswith(FOLLOWED):
            found |= reaches(obj, seen)
    return found


def item_reaches(item) -> set[str]:
    """What a collected test reaches: its function and the fixtures it uses."""
    funcs = [getattr(item, "function", None)]
    info = getattr(item, "_fixtureinfo", None)
    for name in getattr(item, "fixturenames", ()):
        funcs += [d.func for d in (info.name2fixturedefs.get(name) or ())] if info else []
    found: set[str] = set()
    seen: set = set()
    for func in funcs:
        if func is not None:
            found |= reaches(func, seen)
    return found


def mark(item) -> None:
    found = item_reaches(item)
    if found:
        item.add_marker(pytest.mark.crawl)
    if "require_service" in found:
        item.add_marker(pytest.mark.service)
