"""Checks of spider arguments and settings made before a crawl starts (no Scrapy here).

A problem is a :class:`BadInput`: one line naming the argument or setting, which
``ptmscrape/commands/crawl.py`` prints on stderr before exiting with status 2 (no traceback).
"""

from __future__ import annotations

import difflib
import inspect
import math
import os
import shutil
import subprocess
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit
from urllib.request import url2pathname

from ptmscrape.dataset.paths import segment
from ptmscrape.distributed import redacted


class BadInput(ValueError):
    """A bad spider argument or setting; its message is the one line the user sees."""


def spider_arguments(spidercls: type) -> list[str]:
    """The ``-a`` arguments a spider declares: the keyword parameters of the ``__init__`` of its
    class and its bases, down to (not including) Scrapy's own classes."""
    names: list[str] = []
    for klass in spidercls.__mro__:
        if klass.__module__.split(".")[0] == "scrapy" or klass is object:
            break
        init = klass.__dict__.get("__init__")
        if init is None:
            continue
        for param in inspect.signature(init).parameters.values():
            if (param.kind in (param.POSITIONAL_OR_KEYWORD, param.KEYWORD_ONLY) and param.name != "self"
                    and param.name not in names):
                names.append(param.name)
    return sorted(names)


def check_arguments(spidercls: type, given: dict[str, Any]) -> None:
    """Refuse ``-a`` arguments the spider does not declare (a typo such as ``limt`` would else
    crawl the whole hub). ``_``-prefixed ones (Scrapyd's ``_job``, ``_version``) are accepted."""
    known = spider_arguments(spidercls)
    unknown = sorted(name for name in given if not name.startswith("_") and name not in known)
    if unknown:
        listed = ", ".join(known) if known else "none"
        raise BadInput(f"unknown spider argument {', '.join(f'-a {n}' for n in unknown)}: "
                       f"{getattr(spidercls, 'name', spidercls.__name__)} accepts {listed}")


def positive_int(value: str | int | None, name: str) -> int | None:
    """``-a <name>=`` as a whole number >= 0 (None when not given)."""
    if value in (None, ""):
        return None
    text = str(value).strip()
    if not text.lstrip("+-").isdigit():
        raise BadInput(f"-a {name}= must be a whole number, got {value!r}")
    number = int(text)
    if number < 0:
        raise BadInput(f"-a {name}= must not be negative, got {value!r}")
    return number


def check_data_dir(value: Any) -> None:
    """``PTM_DATA_DIR`` must be a directory we can write to, or creatable in one."""
    if not value:
        raise BadInput("PTM_DATA_DIR is empty: give the dataset tree a directory")
    check_output_dir(f"PTM_DATA_DIR={value}", Path(str(value)).expanduser())


# The folders of a hub every crawl of it writes in (ptmscrape/dataset/paths.py), outermost first.
HUB_FOLDERS = ("", "snapshots", "json", "json/payloads")


def check_hub_folders(value: Any, hub: str) -> None:
    """The folders of ``hub`` in the data dir (``PTM_DATA_DIR``, checked before) that every crawl
    writes in, each writable or creatable: a tree copied from elsewhere, or crawled by another
    user, may have them read-only in a writable data dir (the store stage failed as it opened)."""
    data = Path(str(value)).expanduser()
    for folder in HUB_FOLDERS:
        path = data / segment(hub) / folder if folder else data / segment(hub)
        check_output_dir(f"PTM_DATA_DIR={value}: {path}", path)


def check_output_dir(name: str, path: Path) -> None:
    """A directory we can write to, or creatable in one; ``name`` (the option or setting, and the
    value given) starts the message."""
    if path.exists() and not path.is_dir():
        raise BadInput(f"{name} is not a directory")
    existing = path
    while not existing.exists() and existing != existing.parent:
        existing = existing.parent
    if not existing.is_dir():
        raise BadInput(f"{name} cannot be created: {existing} is not a directory")
    # access() answers for the running user, and EROFS (a read-only mount) even for root.
    if not os.access(existing, os.W_OK | os.X_OK):
        what = "is read-only" if existing == path else f"cannot be created: {existing} is read-only"
        raise BadInput(f"{name} {what}")


def check_output_file(name: str, path: str | Path, folder_hint: str = "") -> None:
    """A file we can write (or replace): not a directory, nor named as one (``out/``, which
    ``Path`` would make a file ``out``), in a directory that exists and that we can write to
    (SQLite and the report write beside the file). ``folder_hint``: added to the error for a path
    named as a folder."""
    if isinstance(path, str) and path.endswith(("/", os.sep)) and not Path(path).is_dir():
        raise BadInput(f"{name} names a folder: give a file{folder_hint}")
    path = Path(path)
    if path.is_dir():
        raise BadInput(f"{name} is a directory: give a file")
    folder = path.absolute().parent
    if not folder.is_dir():
        raise BadInput(f"{name}: there is no directory {folder}")
    if not os.access(folder, os.W_OK | os.X_OK):
        raise BadInput(f"{name}: the directory {folder} is read-only")


def check_feeds(feeds: Mapping[Any, Any]) -> None:
    """Each local feed (``-O out.jsonl``, ``FEEDS``) must be a file we can write, or create with its
    folders: Scrapy opens it at the first item, and the crawl would run to its end without it."""
    for key in feeds:
        uri = str(key)
        if "%(" in uri:  # named by the crawl (%(time)s, %(batch_id)d): checked when opened
            continue
        parts = urlsplit(uri)
        scheme = parts.scheme
        if scheme == "file":
            path = Path(url2pathname(parts.path))
        elif len(scheme) > 1:  # s3://, ftp://, stdout:
            continue
        else:
            path = Path(uri)  # as Scrapy opens it: "~" is a folder's name there
        if path.is_dir():
            raise BadInput(f"the feed {uri} is a directory: give a file")
        if path.exists():  # opened as it is (/dev/stdout, a file in a folder we may not write)
            if not os.access(path, os.W_OK):
                raise BadInput(f"the feed {uri} is read-only")
            continue
        check_output_dir(f"the folder of the feed {uri}", path.absolute().parent)


# The schemes redis-py's from_url() takes (scrapy-redis connects with it).
REDIS_SCHEMES = ("redis", "rediss", "unix")


def check_redis_url(value: Any) -> None:
    """``PTM_REDIS_URL``, when set, must be a URL redis-py can connect to (``redis://``, ``rediss://``,
    ``unix://``): another was a traceback once the crawl had started, and exit status 1. The message
    shows no password."""
    url = str(value or "").strip()
    if not url:
        return
    scheme = urlsplit(url).scheme.lower() if "://" in url else ""
    if scheme not in REDIS_SCHEMES:
        shown = redacted(url)[:200]
        raise BadInput(f"-s PTM_REDIS_URL={shown} is not a Redis URL: give redis://[:password@]host[:port]/db "
                       f"(or rediss://, unix://)")


def check_hub_urls(settings: Mapping[str, Any]) -> None:
    """A hub's ``PTM_*_URL`` must not carry ``user:password@``: Scrapy logs every request URL and the
    records keep the base URL (``ModelURL``), so they would be in the log and the dataset. The
    message shows no credentials. (``PTM_REDIS_URL`` may: it is never logged, see ``redacted``.)"""
    for name in sorted(settings):
        if not (name.startswith("PTM_") and name.endswith("_URL")) or name == "PTM_REDIS_URL":
            continue
        shown = _with_credentials(settings[name])
        if shown:
            raise BadInput(f"-s {name}={shown} carries credentials: they would be logged and "
                           f"stored in the records; give the mirror's address without them (a hub's token "
                           f"goes in its environment variable, e.g. HF_TOKEN)")


def check_splash_url(url: str | None) -> None:
    """``SPLASH_URL`` must not carry ``user:password@`` either: Scrapy cannot connect to such a URL
    (every page would fail with "invalid hostname") and logs it with every Splash request.
    scrapy-splash sends Splash's credentials from ``SPLASH_USER`` and ``SPLASH_PASS``."""
    shown = _with_credentials(url)
    if shown:
        raise BadInput(f"-s SPLASH_URL={shown} carries credentials: they would be logged, and Scrapy "
                       f"cannot connect to such a URL; give Splash's address without them and its credentials "
                       f"in SPLASH_USER and SPLASH_PASS")


def _with_credentials(value: Any) -> str:
    """``value``, a URL holding ``user:password@``, as shown in a message (``***`` for them); ``""``
    for any other."""
    url = str(value or "").strip()
    return redacted(url)[:200] if "@" in urlsplit(url).netloc else ""


# Settings a negative value of which means nothing: refused, not taken silently for 0 (a retry
# delay of -30 retried a rate-limited git host at once).
NOT_NEGATIVE = frozenset({"PTM_CLONE_RETRIES", "PTM_CLONE_RETRY_DELAY"})


def check_typed_settings(defaults: dict[str, Any], get) -> None:
    """Each ``PTM_`` setting whose default is a bool, int or float must parse as one (a float as a
    finite one). ``get(name, kind)`` reads it through Scrapy's ``getbool``/``getint``/``getfloat``."""
    for name, default in sorted(defaults.items()):
        kind = type(default)
        if kind not in (bool, int, float):
            continue
        try:
            value = get(name, kind)
            if kind is float and not math.isfinite(value):  # nan, inf: no setting means either
                raise ValueError(value)
        except (TypeError, ValueError):
            word = {bool: "true/false (1/0)", int: "a whole number", float: "a number"}[kind]
            raise BadInput(f"-s {name}= must be {word}") from None
        if name.endswith("_PAGE_SIZE") and value < 1:  # a hub asked for pages of 0 models
            raise BadInput(f"-s {name}= must be 1 or more, got {value}")
        if name in NOT_NEGATIVE and value < 0:
            raise BadInput(f"-s {name}= must not be negative, got {value:g}")


def _runs(command: list[str]) -> bool:
    """Whether ``command`` is there and exits 0 (within a minute)."""
    try:
        return subprocess.run(command, stdin=subprocess.DEVNULL, capture_output=True, timeout=60).returncode == 0
    except (OSError, subprocess.TimeoutExpired):
        return False


# The transports of PTM_GIT_ALLOW_PROTOCOL git runs a remote helper for (git-remote-<name>).
HELPER_TRANSPORTS = ("https", "http")


def check_git(clone: bool, allowed: Any = "https") -> None:
    """``PTM_CLONE`` (on by default) needs git on PATH: without it, the crawl did not start (GitPython's
    import raised, a traceback and exit status 1); had it started, every clone would have failed.
    So does a git without the remote helper (``git-remote-https``) of an allowed transport
    (``allowed``: ``PTM_GIT_ALLOW_PROTOCOL``): a minimal git build, or a broken git-core, passed
    ``git --version`` and failed every clone at the end ("unable to find remote helper for 'https'").
    git looks for the helper in ``git --exec-path``, then on PATH; so does this check."""
    if not clone:
        return
    if not _runs(["git", "--version"]):
        raise BadInput("-s PTM_CLONE=1 needs git, and `git --version` failed here: install git (Debian: "
                       "apt-get install git) or put it on PATH, or turn cloning off (-s PTM_CLONE=0)")
    given = {name.strip().lower() for name in str(allowed or "").split(":")}
    wanted = [transport for transport in HELPER_TRANSPORTS if transport in given]
    if not wanted:
        return
    try:
        found = subprocess.run(["git", "--exec-path"], stdin=subprocess.DEVNULL, capture_output=True,
                               text=True, timeout=60)
        exec_path = found.stdout.strip() if found.returncode == 0 else ""
    except (OSError, subprocess.TimeoutExpired):
        exec_path = ""
    for transport in wanted:
        helper = f"git-remote-{transport}"
        there = os.path.join(exec_path, helper) if exec_path else ""
        if (there and os.path.isfile(there) and os.access(there, os.X_OK)) or shutil.which(helper):
            continue
        raise BadInput(f"-s PTM_CLONE=1 needs git's {transport} transport, and {helper} is neither in "
                       f"`git --exec-path` ({exec_path or 'no answer'}) nor on PATH: install git with its "
                       f"{transport} support (Debian: apt-get install git; a git built from source needs "
                       f"libcurl) or turn cloning off (-s PTM_CLONE=0)")


def check_git_lfs(clone: bool, lfs: bool) -> None:
    """``PTM_CLONE_LFS`` needs git-lfs: without it, every clone failed (git's "'lfs' is not a git
    command") while the crawl exited 0 (clone failures are the records')."""
    if clone and lfs and not _runs(["git", "lfs", "version"]):
        raise BadInput("-s PTM_CLONE_LFS=1 needs git-lfs, and `git lfs version` failed here: install git-lfs "
                       "(Debian: apt-get install git-lfs) or leave PTM_CLONE_LFS off (LFS pointer files only)")


def check_git_protocols(clone: bool, allowed: Any) -> None:
    """``PTM_GIT_ALLOW_PROTOCOL`` left empty failed every clone ("transport not allowed") while the
    crawl exited 0 (clone failures are the records')."""
    if clone and not [p for p in str(allowed or "").split(":") if p.strip()]:
        raise BadInput(f"-s PTM_GIT_ALLOW_PROTOCOL={str(allowed or '').strip()} allows no git transport, so "
                       f"every clone would fail: leave it at https, or turn cloning off (-s PTM_CLONE=0)")


def check_setting_names(given: Iterable[str], known: Iterable[str]) -> None:
    """Every ``PTM_`` setting given must be one of the project's (``ptmscrape/settings.py`` defines
    each, with its default): a typo was ignored without a word, and the crawl ran with the default
    (``-s PTM_CLONES=0`` cloned a whole hub), as a typo in a spider argument would."""
    known = sorted(known)
    unknown = sorted(name for name in given if name.startswith("PTM_") and name not in known)
    if unknown:
        name = unknown[0]
        near = difflib.get_close_matches(name, known, n=1)
        hint = f" (did you mean {near[0]}?)" if near else " (docs/settings.md lists them)"
        raise BadInput(f"-s {name}: no such setting{hint}")
