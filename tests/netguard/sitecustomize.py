"""No test may reach past this machine: Python's sockets here connect to loopback addresses only, and
resolve no name but ``localhost`` (an error naming the host instead). ``tests/conftest.py`` installs
it in the test process and puts this folder on ``PYTHONPATH``, so every Python process a test starts
(crawls, Scrapyd) loads it as ``sitecustomize`` too.

Programs that are not Python (git, git-remote-https through curl, git-lfs) are held by the proxy
variables of the environment instead: conftest sets ``http_proxy``, ``https_proxy``, ``all_proxy``
(and their upper-case spellings) to :func:`proxy_env`'s loopback port, which it keeps bound and never
listening, and ``no_proxy`` to the loopback names. A loopback URL (every replica's) is fetched
directly; any other fails at once, before its host is looked up, with git's "Failed to connect to
127.0.0.1 port <the guard's>" (git-lfs: "proxyconnect tcp: ... connection refused"). Scrapy's
HttpProxyMiddleware and urllib read the same variables, and bypass the proxy for loopback the same way."""

from __future__ import annotations

import errno
import ipaddress
import socket

_LOCAL_NAMES = frozenset({"localhost", "localhost.localdomain", "ip6-localhost"})


def is_local(host) -> bool:
    """A loopback address, the unspecified one (a bind to all interfaces), or a name for loopback."""
    if isinstance(host, bytes):
        host = host.decode("ascii", "replace")
    if not host or not isinstance(host, str):
        return host in (None, "")
    host = host.strip("[]").split("%", 1)[0]
    if host.lower().rstrip(".") in _LOCAL_NAMES:
        return True
    try:
        address = ipaddress.ip_address(host)
    except ValueError:
        return False
    mapped = getattr(address, "ipv4_mapped", None)
    return address.is_loopback or address.is_unspecified or bool(mapped and mapped.is_loopback)


def _refused(host) -> OSError:
    return OSError(errno.ENETUNREACH, f"tests reach only this machine: {host!r} is not a loopback address "
                                      "(tests/netguard)")


PROXY_VARIABLES = ("http_proxy", "https_proxy", "all_proxy", "HTTP_PROXY", "HTTPS_PROXY", "ALL_PROXY")
NO_PROXY = "127.0.0.1,localhost,::1"


def refusing_port() -> socket.socket:
    """A socket bound to a loopback port, never listening: a connection there is refused at once,
    and no other socket can take the port while this one is open (keep a reference to it)."""
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.bind(("127.0.0.1", 0))
    return sock


def proxy_env(port: int) -> dict[str, str]:
    """The proxy variables that send every URL but a loopback one to ``127.0.0.1:port``."""
    proxy = f"http://127.0.0.1:{port}"
    return {**dict.fromkeys(PROXY_VARIABLES, proxy), "no_proxy": NO_PROXY, "NO_PROXY": NO_PROXY}


def install() -> None:
    if getattr(socket, "_ptm_netguard", False):
        return
    resolve, connect, connect_ex = socket.getaddrinfo, socket.socket.connect, socket.socket.connect_ex

    def getaddrinfo(host, *args, **kwargs):
        if not is_local(host):
            raise socket.gaierror(socket.EAI_NONAME, f"tests resolve no name but localhost: {host!r} "
                                                     "(tests/netguard)")
        return resolve(host, *args, **kwargs)

    def guarded_connect(self, address):
        if self.family in (socket.AF_INET, socket.AF_INET6) and not is_local(address[0]):
            raise _refused(address[0])
        return connect(self, address)

    def guarded_connect_ex(self, address):
        if self.family in (socket.AF_INET, socket.AF_INET6) and not is_local(address[0]):
            return errno.ENETUNREACH
        return connect_ex(self, address)

    socket.getaddrinfo = getaddrinfo
    socket.socket.connect = guarded_connect  # type: ignore[method-assign]
    socket.socket.connect_ex = guarded_connect_ex  # type: ignore[method-assign]
    socket._ptm_netguard = True  # type: ignore[attr-defined]


install()
