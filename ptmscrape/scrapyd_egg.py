"""Whether a Scrapyd job runs the egg Scrapyd deployed, or another copy of the project.

``scrapyd.runner`` activates the deployed egg by *appending* it to ``sys.path``; the job's first
entry is Scrapyd's working directory (``python -m scrapyd.runner``). Scrapyd started in the
project's folder (where one keeps its ``scrapyd.conf``), or a ``pip install -e .`` in its Python,
puts another ``ptmscrape`` ahead of the egg: every job then runs that copy, and deploying a new
version changes nothing, without a word. The crawl command says so at the top of the job's log.
"""

from __future__ import annotations

import os
import sys
import zipfile
from collections.abc import Iterable

import ptmscrape


def shadowed_egg(path: Iterable[str] | None = None, package_file: str | None = None) -> tuple[str, str] | None:
    """``(the folder ptmscrape was imported from, the egg it should have come from)`` when an egg
    holding ptmscrape is on ``path`` (``sys.path``) but ptmscrape was imported from elsewhere;
    ``None`` otherwise (no egg: a plain ``scrapy crawl``, or Scrapyd with no version deployed)."""
    here = os.path.dirname(os.path.abspath(package_file or ptmscrape.__file__))
    eggs = [entry for entry in (sys.path if path is None else path) if _holds_ptmscrape(entry)]
    if not eggs or any(here.startswith(os.path.abspath(egg) + os.sep) for egg in eggs):
        return None
    return here, eggs[0]


def _holds_ptmscrape(entry: str) -> bool:
    if not entry.endswith(".egg") or not os.path.isfile(entry):
        return False
    try:
        with zipfile.ZipFile(entry) as egg:
            return "ptmscrape/__init__.py" in egg.namelist()
    except (OSError, zipfile.BadZipFile):
        return False
