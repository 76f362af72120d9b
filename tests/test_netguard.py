"""No test reaches past this machine (tests/netguard): a connection or a name lookup that would is
refused with an error naming the host, in the test process and in the Python processes tests start."""

import errno
import os
import socket
import subprocess
import sys
from urllib.parse import urlsplit

import pytest

from tests.replicas.server import Replica, Reply


@pytest.mark.parametrize("host", ["192.0.2.1", "2001:db8::1", "8.8.8.8"])
def test_a_connection_past_loopback_is_refused_naming_the_host(host):
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    with socket.socket(family) as s, pytest.raises(OSError, match=f"'{host}' is not a loopback address") as exc:
        s.connect((host, 443))
    assert exc.value.errno == errno.ENETUNREACH
    with socket.socket(family) as s:
        assert s.connect_ex((host, 443)) == errno.ENETUNREACH


@pytest.mark.parametrize("name", ["huggingface.co", "api.github.com", "localhost.example"])
def test_a_name_other_than_localhost_is_not_resolved(name):
    with pytest.raises(socket.gaierror, match=f"'{name}'"):
        socket.getaddrinfo(name, 443)


def test_loopback_still_connects():
    with Replica() as server:
        server.route("GET", "/ok", lambda incoming, match: Reply.text("ok"))
        port = server.server.server_address[1]
        for host in ("127.0.0.1", "localhost"):
            with socket.create_connection((host, port), timeout=10) as s:
                s.sendall(b"GET /ok HTTP/1.0\r\n\r\n")
                assert s.recv(100).split(b" ")[1] == b"200"


def test_a_python_process_a_test_starts_is_guarded_too():
    probe = "import socket\ntry:\n    socket.getaddrinfo('huggingface.co', 443)\nexcept OSError as e:\n    print(e)\n"
    out = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, timeout=60)
    assert "tests resolve no name but localhost: 'huggingface.co'" in out.stdout, out.stdout + out.stderr


# -- programs that are not Python: git, git-lfs and curl honour the proxy of the environment --------

def netguard_proxy_port():
    return urlsplit(os.environ.get("https_proxy", "")).port


def test_every_proxy_variable_names_a_loopback_port_that_refuses():
    """What git (curl) and git-lfs (Go) read, in both spellings, in the test process and so in every
    process a test starts: one proxy, on loopback, where a connection is refused at once."""
    names = ("http_proxy", "https_proxy", "all_proxy", "HTTP_PROXY", "HTTPS_PROXY", "ALL_PROXY")
    assert {os.environ.get(name) for name in names} == {f"http://127.0.0.1:{netguard_proxy_port()}"}
    for name in ("no_proxy", "NO_PROXY"):
        assert set(os.environ.get(name, "").split(",")) >= {"127.0.0.1", "localhost", "::1"}, name
    with socket.socket() as s:
        assert s.connect_ex(("127.0.0.1", netguard_proxy_port())) == errno.ECONNREFUSED


def _git(*args, cwd=None):
    """git as the project runs it: the environment of the test process (gitrepo copies it)."""
    return subprocess.run(["git", "-c", "http.lowSpeedTime=10", *args], cwd=cwd, capture_output=True, text=True,
                          timeout=60, env={**os.environ, "GIT_TERMINAL_PROMPT": "0"})


@pytest.mark.parametrize("url", ["https://huggingface.co/google-bert/bert-base-uncased",
                                 "http://github.com/onnx/models.git", "https://192.0.2.1/owner/repo"])
def test_git_reaches_no_host_past_loopback(tmp_path, url):
    """A wrong URL in a test (a replica's rewrite missing) must not clone from the internet: git's
    connection goes to the guard's proxy, a loopback port nothing listens on, and is refused there;
    the host is never looked up."""
    out = _git("clone", "-q", url, str(tmp_path / "clone"))
    assert out.returncode != 0
    assert "Could not resolve host" not in out.stderr, out.stderr
    assert f"127.0.0.1 port {netguard_proxy_port()}" in out.stderr, out.stderr
    assert not (tmp_path / "clone").exists()


def test_the_projects_git_reaches_no_host_past_loopback(tmp_path):
    """The crawls' git (ptmscrape.gitrepo, its environment built from the process's) is held too."""
    from ptmscrape.gitrepo import Git, GitPolicy, RepoError

    with pytest.raises(RepoError) as exc:
        Git(GitPolicy()).clone("https://huggingface.co/owner/repo", tmp_path / "clone", tmp_path / "scratch")
    assert str(exc.value) == "host unreachable"
    assert f"Failed to connect to 127.0.0.1 port {netguard_proxy_port()}" in exc.value.detail, exc.value.detail
    assert not (tmp_path / "clone").exists()


def test_git_lfs_reaches_no_host_past_loopback(tmp_path):
    from tests.replicas.server import lfs_pointer

    repo = tmp_path / "repo"
    _git("init", "-q", "-b", "main", str(repo))
    (repo / ".gitattributes").write_text("*.bin filter=lfs diff=lfs merge=lfs -text\n")
    (repo / "w.bin").write_bytes(lfs_pointer(b"weights\n"))
    for args in (("add", "."), ("-c", "user.name=t", "-c", "user.email=t@t", "commit", "-qm", "x"),
                 ("remote", "add", "origin", "https://huggingface.co/owner/repo")):
        assert _git(*args, cwd=repo).returncode == 0
    out = _git("lfs", "fetch", "origin", "main", cwd=repo)
    assert out.returncode != 0
    said = out.stdout + out.stderr
    assert f"127.0.0.1:{netguard_proxy_port()}" in said and "connection refused" in said, said
    assert "lookup huggingface.co" not in said, said


@pytest.mark.parametrize("host", ["127.0.0.1", "localhost"])
def test_git_still_clones_from_loopback(tmp_path, served, host):
    _, server = served
    url = server.url.replace("127.0.0.1", host) + "/owner/repo"
    out = _git("clone", "-q", url, str(tmp_path / "clone"))
    assert out.returncode == 0, out.stderr
    assert (tmp_path / "clone" / "README.md").read_text() == "x\n"


def test_python_http_clients_still_reach_loopback_directly():
    """Scrapy's HttpProxyMiddleware and urllib read the same proxy variables: loopback is in
    ``no_proxy``, so crawls of the replicas go straight to them; any other host to the dead proxy."""
    import urllib.request

    from scrapy import Request
    from scrapy.downloadermiddlewares.httpproxy import HttpProxyMiddleware

    proxies = HttpProxyMiddleware()
    for url in ("http://127.0.0.1:8050/render.html", "https://localhost:5000/x", "http://[::1]:8000/"):
        request = Request(url)
        proxies.process_request(request)
        assert "proxy" not in request.meta, url
    request = Request("https://huggingface.co/api/models")
    proxies.process_request(request)
    assert request.meta["proxy"] == f"http://127.0.0.1:{netguard_proxy_port()}"

    with Replica() as server:
        server.route("GET", "/ok", lambda incoming, match: Reply.text("ok"))
        with urllib.request.urlopen(server.url + "/ok", timeout=10) as reply:
            assert reply.read() == b"ok"
