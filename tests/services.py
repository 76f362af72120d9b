"""Services that some tests need (Splash, Redis, Scrapyd …) and one rule for when they, or anything
else of the machine a test needs (root, a tmpfs mount, namespaces: :func:`missing`), are missing.

A test that needs a running service calls :func:`require_service` first:

* the service answers (a TCP connection to its host and port succeeds): the test runs;
* it does not, and ``CI=true``: the test **fails**. CI starts every service (``.ci/services.sh``),
  so a missing one there is a broken setup, never something to skip quietly;
* it does not, anywhere else: the test is **skipped**, and the reason names the service, the
  address tried and how to start it (``-ra`` in pytest.ini prints it).

Usable from tests and fixtures alike (it only calls ``pytest.skip``/``pytest.fail``)::

    from tests.services import require_service

    @pytest.fixture
    def splash_url():
        return require_service("Splash", os.environ.get("SPLASH_URL", "http://127.0.0.1:8050"))
"""

from __future__ import annotations

import os
import socket
from typing import NoReturn
from urllib.parse import urlsplit

import pytest

# Port used when a URL gives none.
DEFAULT_PORTS = {"http": 80, "https": 443, "redis": 6379, "rediss": 6379}
START_HINT = "bash .ci/services.sh"


def in_ci() -> bool:
    """``CI=true``: the environment CI runs the tests in (``.ci/run``)."""
    return os.environ.get("CI", "").strip().lower() == "true"


def host_port(url_or_hostport: str) -> tuple[str, int]:
    """``("127.0.0.1", 8050)`` from ``"http://127.0.0.1:8050/x"``, ``"redis://h:6379/0"`` or
    ``"127.0.0.1:8050"``."""
    text = url_or_hostport.strip()
    parts = urlsplit(text if "://" in text else f"//{text}")
    if not parts.hostname:
        raise ValueError(f"no host in {url_or_hostport!r}")
    port = parts.port or DEFAULT_PORTS.get(parts.scheme)
    if port is None:
        raise ValueError(f"no port in {url_or_hostport!r}")
    return parts.hostname, port


def reachable(url_or_hostport: str, timeout: float = 3.0) -> str | None:
    """``None`` if a TCP connection to the service succeeds, else why it did not."""
    host, port = host_port(url_or_hostport)
    try:
        with socket.create_connection((host, port), timeout=timeout):
            return None
    except OSError as exc:
        return f"{type(exc).__name__}: {exc}"


def require_service(
    name: str, url_or_hostport: str, *, timeout: float = 3.0, start_hint: str = START_HINT
) -> str:
    """Return ``url_or_hostport`` if the service answers there; otherwise skip the calling test,
    or fail it under ``CI=true``."""
    __tracebackhide__ = True  # the skip is reported at the caller's line
    problem = reachable(url_or_hostport, timeout)
    if problem is None:
        return url_or_hostport
    missing(f"{name} is not reachable at {url_or_hostport} ({problem}); start it with: {start_hint}")


def missing(reason: str) -> NoReturn:
    """Skip the calling test for want of something of the machine (``reason`` names it), or fail it
    under ``CI=true``: CI runs as root on a machine that has what the tests need (the services,
    ``mount``, ``unshare`` with user, pid and mount namespaces, ``setpriv``, git-lfs), so a test
    skipped there would be a check quietly not made. The only way a test skips
    (``tests/test_conventions.py``)."""
    __tracebackhide__ = True  # reported at the caller's line, not this one
    if in_ci():
        pytest.fail(f"CI=true and {reason}", pytrace=False)
    pytest.skip(reason)
