"""Stopping a crawl at a known point, without sleeping and hoping.

:func:`hold` makes a replica hold chosen requests until the test opens the gate, so a crawl run
in the background (:class:`BackgroundCrawl`) is deterministically "in the middle" — e.g. listing
page 6 not answered, one clone half-way — when the test pauses or kills it.
"""

from __future__ import annotations

import os
import signal
import subprocess
import threading
import time
from collections.abc import Callable
from pathlib import Path

from tests.crawl import ROOT
from tests.replicas.server import Replica

WAIT_LIMIT = 180  # seconds; only a guard against a hung crawl, never part of an assertion


class Gate:
    """Requests matching ``when(request, match, n)`` (``n``: the handler's n-th call, from 1) wait
    until :meth:`open`; ``reached`` is set when the first one arrives."""

    def __init__(self, when: Callable):
        self.when = when
        self.reached = threading.Event()
        self._open = threading.Event()
        self._calls = 0
        self._lock = threading.Lock()

    def wrap(self, handler):
        def gated(req, m):
            with self._lock:
                self._calls += 1
                n = self._calls
            if not self._open.is_set() and self.when(req, m, n):
                self.reached.set()
                self._open.wait(WAIT_LIMIT)
            return handler(req, m)
        return gated

    def open(self) -> None:
        self._open.set()


def hold(replica: Replica, method: str, handler, when: Callable) -> Gate:
    """Put a :class:`Gate` in front of the replica route served by ``handler``."""
    gate = Gate(when)
    for i, (m, pattern, h) in enumerate(replica.routes):
        if m == method and h == handler:
            replica.routes[i] = (m, pattern, gate.wrap(h))
            return gate
    raise LookupError(f"no {method} route served by {handler!r}")


class BackgroundCrawl:
    """A ``scrapy crawl`` subprocess in its own process group, logging to ``log_path``."""

    def __init__(self, cmd: list[str], log_path: Path, env: dict | None = None):
        self.log_path = log_path
        self._log = open(log_path, "wb")
        self.proc = subprocess.Popen(cmd, cwd=ROOT, env={**os.environ, **(env or {})},
                                     stdout=self._log, stderr=subprocess.STDOUT, start_new_session=True)

    @property
    def log(self) -> str:
        return self.log_path.read_text(errors="replace")

    def wait_until(self, condition: Callable[[], bool], what: str) -> None:
        deadline = time.monotonic() + WAIT_LIMIT
        while not condition():
            if self.proc.poll() is not None:
                raise AssertionError(f"crawl exited ({self.proc.returncode}) before {what}:\n{self.log[-4000:]}")
            if time.monotonic() > deadline:
                self.kill()
                raise AssertionError(f"gave up waiting for {what}:\n{self.log[-4000:]}")
            time.sleep(0.05)

    def kill(self) -> None:
        """SIGKILL the crawl and its git children, like a container or machine going down."""
        try:
            os.killpg(self.proc.pid, signal.SIGKILL)
        except ProcessLookupError:
            pass
        self.wait()

    def wait(self) -> int:
        try:
            return self.proc.wait(WAIT_LIMIT)
        finally:
            self._log.close()


def count_lines(paths) -> int:
    return sum(p.read_bytes().count(b"\n") for p in paths)
