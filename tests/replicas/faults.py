"""A faulty network in front of any replica: 5xx, 429 with a wait, truncated or malformed bodies,
connection resets, answers cut off mid-body, slow answers, and permanently broken pages.

Every decision is a pure function of ``(seed, method, path?query, attempt number)``, so a failing
test replays exactly with the same seed::

    plan = FaultPlan(seed=7, rates={"5xx": .1, "429": .05, "truncate": .05}, healthy_after=3)
    faults = inject(hub.replica, plan)          # works for any tests.replicas.server.Replica
    ...crawl...
    faults.injected                             # [(method, target, attempt, kind), ...]

``healthy_after=n`` lets the n-th and later attempts at one URL through (so bounded retries always
win); ``broken={regex: kind}`` fails every attempt at matching URLs (a page that never recovers).
"""

from __future__ import annotations

import hashlib
import re
import threading
import time
from collections import Counter
from dataclasses import dataclass, field

from tests.replicas.server import Incoming, Replica, Reply

KINDS = ("5xx", "429", "truncate", "malformed", "reset", "cut", "slow")


@dataclass
class FaultPlan:
    seed: int = 0
    rates: dict[str, float] = field(default_factory=dict)  # kind -> chance per request
    paths: str = r".*"  # only requests whose path?query matches (re.search) may fail
    healthy_after: int | None = None  # attempts numbered >= this are never faulted
    broken: dict[str, str] = field(default_factory=dict)  # path?query regex -> kind, every attempt
    wait: int = 1  # seconds asked by a 429 (RateLimit t= or Retry-After)
    slow: float = 0.3  # seconds a slow answer is held back
    stall: float = 0.0  # seconds a "cut" answer holds the connection before dropping it

    def __post_init__(self):
        unknown = set(self.rates) | set(self.broken.values())
        unknown -= set(KINDS)
        if unknown:
            raise ValueError(f"unknown fault kinds {sorted(unknown)}; known: {KINDS}")
        if sum(self.rates.values()) > 1:
            raise ValueError("fault rates add up to more than 1")

    def decide(self, method: str, target: str, attempt: int) -> tuple[str | None, bytes]:
        """The fault (or None) for this attempt, and the hash bytes that tune it."""
        digest = hashlib.sha256(f"{self.seed}\0{method}\0{target}\0{attempt}".encode()).digest()
        for pattern, kind in self.broken.items():
            if re.search(pattern, target):
                return kind, digest
        if not re.search(self.paths, target):
            return None, digest
        if self.healthy_after is not None and attempt >= self.healthy_after:
            return None, digest
        u = int.from_bytes(digest[:4], "big") / 2**32
        for kind in KINDS:
            u -= self.rates.get(kind, 0.0)
            if u < 0:
                return kind, digest
        return None, digest


class FaultInjector:
    """The interceptor that applies a :class:`FaultPlan` to one replica's answers."""

    def __init__(self, plan: FaultPlan):
        self.plan = plan
        self.attempts: Counter[tuple[str, str]] = Counter()
        self.injected: list[tuple[str, str, int, str]] = []
        self._lock = threading.Lock()

    def counts(self) -> Counter[str]:
        return Counter(kind for *_, kind in self.injected)

    def __call__(self, req: Incoming, call_next) -> Reply:
        target = req.path + (("?" + "&".join(f"{k}={v}" for k, v in req.query)) if req.query else "")
        with self._lock:
            self.attempts[req.method, target] += 1
            attempt = self.attempts[req.method, target]
        kind, digest = self.plan.decide(req.method, target, attempt)
        if kind is None:
            return call_next()
        reply = self._apply(kind, digest, call_next)
        if reply is not None:
            with self._lock:
                self.injected.append((req.method, target, attempt, kind))
            return reply
        return call_next()

    def _apply(self, kind: str, digest: bytes, call_next) -> Reply | None:
        plan = self.plan
        if kind == "5xx":
            status = (500, 502, 503, 504)[digest[4] % 4]
            return Reply.text(f"upstream error {status}", status)
        if kind == "429":
            if digest[5] % 2:
                headers = {"RateLimit": f'"api";r=0;t={plan.wait}',
                           "RateLimit-Policy": '"fixed window";"api";q=500;w=300'}
            else:
                headers = {"Retry-After": str(plan.wait)}
            return Reply.text("Too Many Requests", 429, headers=headers)
        if kind == "reset":
            return Reply(cut=-1)
        if kind == "slow":
            time.sleep(plan.slow)
            return call_next()
        reply = call_next()
        if reply.status != 200 or len(reply.body) < 2:
            return None  # nothing to spoil: answered as is, and not counted as a fault
        fraction = 0.1 + 0.8 * digest[6] / 255
        keep = max(1, min(len(reply.body) - 1, int(len(reply.body) * fraction)))
        if kind == "truncate":  # a complete HTTP answer whose body ends early
            return Reply(reply.status, reply.body[:keep], reply.headers)
        if kind == "malformed":
            if b"<html" in reply.body[:512].lower():  # tags broken, document cut, no </html>
                return Reply(reply.status, reply.body[:keep] + b"<tr><td>broken<td <<div", reply.headers)
            return Reply(reply.status, reply.body[:keep] + b"\x00}{<html>Bad Gateway", reply.headers)
        if kind == "cut":  # Content-Length promises the whole body; the connection dies half-way
            return Reply(reply.status, reply.body, reply.headers, cut=keep, stall=plan.stall)
        raise AssertionError(kind)


def inject(replica: Replica, plan: FaultPlan) -> FaultInjector:
    """Put ``plan``'s faults in front of everything ``replica`` serves; returns the injector."""
    injector = FaultInjector(plan)
    replica.interceptors.append(injector)
    return injector


class HeaderLog:
    """Records the headers of every request a replica receives (e.g. to check a bearer token)."""

    def __init__(self):
        self.seen: list[tuple[str, str, dict[str, str]]] = []
        self._lock = threading.Lock()

    def __call__(self, req: Incoming, call_next) -> Reply:
        with self._lock:
            self.seen.append((req.method, req.path, dict(req.headers)))
        return call_next()


def log_headers(replica: Replica) -> HeaderLog:
    log = HeaderLog()
    replica.interceptors.append(log)
    return log
