"""Project commands (``COMMANDS_MODULE``): ``crawl`` with exit statuses (see ``crawl.py``), ``export``
and ``report`` (the work of those two is in ``ptmscrape/export/``). Bad input is one line on stderr
and exit status 2 (:func:`fail`)."""

from __future__ import annotations

import sys
from typing import NoReturn

from ptmscrape.verdict import BAD_INPUT


def fail(command: str, message: object) -> NoReturn:
    """``scrapy <command>: error: <message>`` on stderr, then exit status 2 (README "Exit status").
    Scrapy's ``UsageError`` would print the whole usage block before it, whatever ``print_help``."""
    sys.stderr.write(f"scrapy {command}: error: {message}\n")
    sys.stderr.flush()
    raise SystemExit(BAD_INPUT)
