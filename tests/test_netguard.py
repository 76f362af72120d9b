"""No test reaches past this machine (tests/netguard): a connection or a name lookup that would is
refused with an error naming the host, in the test process and in the Python processes tests start."""

import errno
import socket
import subprocess
import sys

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
