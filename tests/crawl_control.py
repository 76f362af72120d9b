"""Stopping a crawl at a known point, without sleeping and hoping.

:func:`hold` makes a replica hold chosen requests until the test opens the gate, so a crawl run
in the background (:class:`BackgroundCrawl`) is deterministically "in the middle" — e.g. listing
page 6 not answered, one clone half-way — when the test pauses or kills it. :class:`RedisGate`
does the same to a distributed crawl's Redis traffic: the crawl is stopped at one chosen command.
"""

from __future__ import annotations

import functools
import inspect
import os
import re
import signal
import socket
import subprocess
import threading
import time
from collections.abc import Callable
from pathlib import Path
from urllib.parse import urlsplit, urlunsplit

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
        @functools.wraps(handler)  # another gate can be put in front of this one (hold)
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
    """Put a :class:`Gate` in front of the replica route served by ``handler`` (in front of the
    gates already there)."""
    gate = Gate(when)
    for i, (m, pattern, h) in enumerate(replica.routes):
        if m == method and inspect.unwrap(h) == handler:
            replica.routes[i] = (m, pattern, gate.wrap(h))
            return gate
    raise LookupError(f"no {method} route served by {handler!r}")


class RedisGate:
    """A relay between a crawl and Redis (give the crawl :attr:`url`) that stops passing on what
    the crawl sends from the first bytes ``pattern`` matches (a command, as Redis' protocol spells
    it): that command never runs, and the crawl (its Redis client blocks) stands still there until
    it is killed. ``reached`` is set then."""

    def __init__(self, redis_url: str, pattern: re.Pattern[bytes]):
        target = urlsplit(redis_url)
        self.target = (target.hostname or "127.0.0.1", target.port or 6379)
        self.pattern = pattern
        self.reached = threading.Event()
        self.listener = socket.create_server(("127.0.0.1", 0))
        credentials = target.netloc.rpartition("@")[0]
        netloc = f"{credentials + '@' if credentials else ''}127.0.0.1:{self.listener.getsockname()[1]}"
        self.url = urlunsplit(target._replace(netloc=netloc))
        self.sockets: list[socket.socket] = [self.listener]
        threading.Thread(target=self._accept, daemon=True).start()

    def __enter__(self) -> RedisGate:
        return self

    def __exit__(self, *exc) -> None:
        for sock in self.sockets:
            sock.close()

    def _accept(self) -> None:
        while True:
            try:
                client, _ = self.listener.accept()
            except OSError:
                return
            upstream = socket.create_connection(self.target)
            self.sockets += [client, upstream]
            threading.Thread(target=self._relay, args=(client, upstream, True), daemon=True).start()
            threading.Thread(target=self._relay, args=(upstream, client, False), daemon=True).start()

    def _relay(self, source: socket.socket, sink: socket.socket, from_crawl: bool) -> None:
        tail = b""  # a command may straddle two reads
        while True:
            try:
                data = source.recv(65536)
            except OSError:
                data = b""
            if not data:
                for sock in (source, sink):
                    try:
                        sock.shutdown(socket.SHUT_RDWR)
                    except OSError:
                        pass
                return
            if from_crawl:
                if self.pattern.search(tail + data):
                    self.reached.set()
                tail = (tail + data)[-4096:]
                if self.reached.is_set():
                    continue
            try:
                sink.sendall(data)
            except OSError:
                return


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
