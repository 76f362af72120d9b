"""Helpers for the cheap tiers (callback tests on fixture responses, mapper tests): a spider on the
project's settings, its start requests, and responses built from ``tests/fixtures`` — the way City
Bureau's scrapers build theirs (``file_response``) — so no test file keeps its own copy."""

from __future__ import annotations

import asyncio
import contextlib
import json
import signal
from pathlib import Path

from scrapy.http import HtmlResponse, Request, TextResponse

from tests.crawl import project_crawler

FIXTURES = Path(__file__).resolve().parent / "fixtures"


def make_spider(spidercls, settings: dict | None = None, **kwargs):
    """``spidercls`` built by ``from_crawler`` (spider arguments ``kwargs``) on a crawler with the
    project's settings plus ``settings``; ``spider.crawler.stats`` is open."""
    crawler = project_crawler(spidercls, settings)
    spider = spidercls.from_crawler(crawler, **kwargs)
    crawler.spider = spider
    return spider


def spider_maker(spidercls, settings: dict):
    """A ``make_spider(extra_settings=None, **spider_arguments)`` for one hub's test module, its
    base URLs (``settings``) pointing where that module's fixtures say."""
    def make(extra_settings: dict | None = None, **kwargs):
        return make_spider(spidercls, {**settings, **(extra_settings or {})}, **kwargs)
    return make


def start_requests(spider) -> list:
    """What ``spider.start()`` yields, collected outside a reactor."""
    async def collect():
        return [request async for request in spider.start()]
    return asyncio.run(collect())


def text_response(url: str, body: str | bytes, request: Request | None = None, *,
                  headers: dict | None = None, status: int = 200, cls=TextResponse) -> TextResponse:
    """A UTF-8 response to ``request`` (default: a GET of ``url``), as a callback receives it."""
    body = body.encode() if isinstance(body, str) else body
    return cls(url, body=body, encoding="utf-8", headers=headers, status=status, request=request or Request(url))


def json_response(url: str, obj, request: Request | None = None, *, headers: dict | None = None,
                  status: int = 200) -> TextResponse:
    """``obj`` served as ``application/json`` (plus ``headers``), as an API answers."""
    return text_response(url, json.dumps(obj), request, status=status,
                         headers={"Content-Type": "application/json", **(headers or {})})


def html_response(url: str, body: str | bytes, request: Request | None = None, **kwargs) -> HtmlResponse:
    return text_response(url, body, request, cls=HtmlResponse, **kwargs)


def fixture_response(path: str | Path, url: str, request: Request | None = None, **kwargs) -> TextResponse:
    """The fixture file ``path`` (relative to ``tests/fixtures``, or absolute) served from ``url``:
    an ``HtmlResponse`` for ``.html`` files, a ``TextResponse`` otherwise."""
    path = FIXTURES / path
    cls = HtmlResponse if path.suffix in (".html", ".htm") else TextResponse
    return text_response(url, path.read_bytes(), request, cls=cls, **kwargs)



@contextlib.contextmanager
def returns_in_reason(seconds: int = 60):
    """Fail the test if the block has not returned within ``seconds``: for hostile input that could
    keep a regular expression busy for hours (the C matcher checks for signals, so SIGALRM stops it)."""
    class TookTooLong(Exception):
        pass

    def stop(signum, frame):
        raise TookTooLong

    previous = signal.signal(signal.SIGALRM, stop)
    signal.alarm(seconds)
    try:
        yield
    except TookTooLong:
        raise AssertionError(f"still running after {seconds} s") from None
    finally:
        signal.alarm(0)
        signal.signal(signal.SIGALRM, previous)


def git_without_helpers(tmp_path: Path) -> tuple[Path, Path]:
    """A folder for PATH holding a ``git`` that answers ``--version`` and whose ``--exec-path`` is an
    empty folder (a git without git-remote-https), and that folder: ``(bin, exec_path)``."""
    core, fake = tmp_path / "git-core", tmp_path / "bin"
    core.mkdir()
    fake.mkdir()
    (fake / "git").write_text(f'#!/bin/sh\ncase "$1" in\n  --version|version) echo "git version 2.47.0";;\n'
                              f'  --exec-path) echo "{core}";;\n  *) exit 1;;\nesac\n')
    (fake / "git").chmod(0o755)
    return fake, core
