"""Project commands (``COMMANDS_MODULE``): ``crawl`` with exit statuses (see ``crawl.py``), ``export``
and ``report`` (the work of those two is in ``ptmscrape/export/``). Bad input is one line on stderr
and exit status 2 (:func:`fail`)."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import NoReturn

from ptmscrape.verdict import BAD_INPUT


def fail(command: str, message: object) -> NoReturn:
    """``scrapy <command>: error: <message>`` on stderr, then exit status 2 (README "Exit status").
    Scrapy's ``UsageError`` would print the whole usage block before it, whatever ``print_help``."""
    sys.stderr.write(f"scrapy {command}: error: {message}\n")
    sys.stderr.flush()
    raise SystemExit(BAD_INPUT)


def dataset_dir(command: str, args: list[str], settings) -> Path:
    """``PTM_DATA_DIR`` of a command that takes no positional arguments and reads a dataset tree;
    :func:`fail` for extra arguments or a tree that is not there (a file, or nothing)."""
    if args:
        fail(command, f"unexpected arguments: {' '.join(args)}")
    data_dir = Path(settings["PTM_DATA_DIR"]).expanduser()
    if not data_dir.is_dir():
        fail(command, f"no dataset tree at {data_dir} (PTM_DATA_DIR)"
             + (": it is a file" if data_dir.exists() else ""))
    return data_dir


def check_something_to_export(command: str, data_dir: Path) -> None:
    """:func:`fail` when the tree holds nothing the export reads: an empty database (exit status
    0) would look like a dataset to a script (README "Exit status")."""
    from ptmscrape.export.sqlite import nothing_to_export

    lacking = nothing_to_export(data_dir)
    if lacking:
        fail(command, f"nothing to export in {data_dir} (PTM_DATA_DIR): {lacking}")
