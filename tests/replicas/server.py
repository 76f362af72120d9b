"""Building blocks of the local hub replicas: a loopback HTTP server with routes, git repositories
served over git's smart HTTP protocol (``git http-backend``), and a minimal Git LFS server.

Replicas bind to 127.0.0.1 only. Used by the tests, the benchmark and the offline demo.
"""

from __future__ import annotations

import hashlib
import json
import os
import re
import socket
import struct
import subprocess
import tempfile
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from urllib.parse import parse_qsl, unquote, urlsplit

GIT_ENV = {
    "GIT_AUTHOR_NAME": "Replica", "GIT_AUTHOR_EMAIL": "replica@example.invalid",
    "GIT_COMMITTER_NAME": "Replica", "GIT_COMMITTER_EMAIL": "replica@example.invalid",
    "GIT_CONFIG_NOSYSTEM": "1", "GIT_CONFIG_GLOBAL": os.devnull,
}


@dataclass
class Reply:
    status: int = 200
    body: bytes = b""
    headers: dict[str, str] = field(default_factory=dict)
    # A broken answer (tests/replicas/faults.py): send only the first ``cut`` bytes of the body
    # (-1: not even the status line), hold the connection ``stall`` seconds, then drop it.
    cut: int | None = None
    stall: float = 0.0
    # A slow body: the status line and headers go out at once, the body this many seconds later
    # (or, with ``body_after``, once that event is set, ``body_delay`` seconds at most).
    body_delay: float = 0.0
    body_after: threading.Event | None = None

    @classmethod
    def json(cls, obj, status: int = 200, headers: dict[str, str] | None = None) -> Reply:
        body = json.dumps(obj, separators=(",", ":")).encode()
        return cls(status, body, {"Content-Type": "application/json; charset=utf-8", **(headers or {})})

    @classmethod
    def text(cls, text: str, status: int = 200, content_type: str = "text/plain; charset=utf-8",
             headers: dict[str, str] | None = None) -> Reply:
        return cls(status, text.encode(), {"Content-Type": content_type, **(headers or {})})


@dataclass
class Incoming:
    method: str
    path: str
    query: list[tuple[str, str]]
    headers: dict[str, str]
    body: bytes

    def arg(self, name: str, default: str | None = None) -> str | None:
        return next((v for k, v in self.query if k == name), default)

    def args(self, name: str) -> list[str]:
        return [v for k, v in self.query if k == name]


Handler = Callable[[Incoming, re.Match], Reply]


class Replica:
    """A threaded HTTP server on 127.0.0.1 dispatching to regex routes; ``with`` starts/stops it.

    ``delay`` (seconds, settable any time) is slept before answering each request: network latency.
    """

    def __init__(self, port: int = 0, delay: float = 0.0):
        self.delay = delay
        self.routes: list[tuple[str, re.Pattern, Handler]] = []
        self.requests: list[tuple[str, str]] = []  # (method, path?query) log, for assertions
        # Wrappers around routing, outermost last: ``fn(incoming, call_next) -> Reply`` may answer
        # by itself or change what the routes answered (fault injection, auth checks).
        self.interceptors: list[Callable[[Incoming, Callable[[], Reply]], Reply]] = []
        self.stopping = threading.Event()  # cuts stalls short when the replica stops
        self._lock = threading.Lock()
        replica = self

        class _Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, *args):  # keep test output quiet
                pass

            def _serve(self):
                replica._handle(self)

            do_GET = do_POST = do_HEAD = do_PUT = _serve

        self.server = ThreadingHTTPServer(("127.0.0.1", port), _Handler)
        self.server.daemon_threads = True
        self._thread: threading.Thread | None = None

    @property
    def url(self) -> str:
        host, port = self.server.server_address[:2]
        return f"http://{host}:{port}"

    def route(self, method: str, pattern: str, handler: Handler) -> None:
        self.routes.append((method, re.compile(pattern), handler))

    def start(self) -> Replica:
        self._thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self._thread.start()
        return self

    def stop(self) -> None:
        self.stopping.set()
        self.server.shutdown()
        self.server.server_close()

    def __enter__(self) -> Replica:
        return self.start()

    def __exit__(self, *exc) -> None:
        self.stop()

    def count(self, method: str, path_regex: str) -> int:
        pattern = re.compile(path_regex)
        with self._lock:
            return sum(1 for m, p in self.requests if m == method and pattern.search(p))

    def _handle(self, h: BaseHTTPRequestHandler) -> None:
        if self.delay:
            time.sleep(self.delay)
        parts = urlsplit(h.path)
        body = _read_body(h)
        incoming = Incoming(h.command, parts.path, parse_qsl(parts.query, keep_blank_values=True),
                            {k.lower(): v for k, v in h.headers.items()}, body)
        with self._lock:
            self.requests.append((h.command, h.path))
        call = lambda: self._route(incoming)  # noqa: E731
        for interceptor in self.interceptors:
            call = (lambda f, nxt: lambda: f(incoming, nxt))(interceptor, call)
        reply = call()
        if reply.cut is not None and reply.cut < 0:
            self._drop(h, reply.stall)
            return
        h.send_response(reply.status)
        headers = {k.lower(): (k, v) for k, v in reply.headers.items()}
        for key, value in headers.values():
            h.send_header(key, value)
        h.send_header("Content-Length", str(len(reply.body)))
        h.end_headers()
        if reply.body_delay:
            h.wfile.flush()
            (reply.body_after or self.stopping).wait(reply.body_delay)
        if h.command != "HEAD":
            h.wfile.write(reply.body if reply.cut is None else reply.body[:reply.cut])
        if reply.cut is not None:
            self._drop(h, reply.stall)

    def _route(self, incoming: Incoming) -> Reply:
        for method, pattern, handler in self.routes:
            m = pattern.fullmatch(incoming.path)
            if m and (method == incoming.method or (method == "GET" and incoming.method == "HEAD")):
                try:
                    return handler(incoming, m)
                except Exception as exc:  # a replica bug shows as a 500 with the reason
                    return Reply.text(f"replica error: {exc!r}", 500)
        return Reply.text("Not Found", 404)

    def _drop(self, h: BaseHTTPRequestHandler, stall: float) -> None:
        """End the connection abruptly (RST), after holding it ``stall`` seconds."""
        h.wfile.flush()
        if stall:
            self.stopping.wait(stall)
        h.close_connection = True
        h.connection.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))


def _read_body(h: BaseHTTPRequestHandler) -> bytes:
    if h.headers.get("Transfer-Encoding", "").lower() == "chunked":
        chunks = []
        while True:
            size = int(h.rfile.readline().split(b";")[0].strip() or b"0", 16)
            if size == 0:
                h.rfile.readline()
                return b"".join(chunks)
            chunks.append(h.rfile.read(size))
            h.rfile.readline()
    length = int(h.headers.get("Content-Length") or 0)
    return h.rfile.read(length) if length else b""


# --- git over HTTP -----------------------------------------------------------------------------

def git(*args: str, cwd: str | os.PathLike[str] | None = None, env: dict[str, str] | None = None) -> str:
    out = subprocess.run(["git", *args], cwd=cwd, env={**os.environ, **GIT_ENV, **(env or {})},
                         check=True, capture_output=True)
    return out.stdout.decode().strip()


LFS_ATTRIBUTES = "*.bin filter=lfs diff=lfs merge=lfs -text\n*.safetensors filter=lfs diff=lfs merge=lfs -text\n"


def lfs_pointer(content: bytes) -> bytes:
    oid = hashlib.sha256(content).hexdigest()
    return f"version https://git-lfs.github.com/spec/v1\noid sha256:{oid}\nsize {len(content)}\n".encode()


class GitHost:
    """Bare repositories under ``root`` served at ``/<repo path>`` (with or without ``.git``).

    ``add_repo`` builds a repository from a dict of files; files listed in ``lfs`` are committed as
    LFS pointers and their content is kept for the LFS server.
    """

    def __init__(self, root: str | os.PathLike[str]):
        self.root = Path(root)
        self.root.mkdir(parents=True, exist_ok=True)
        self.lfs_objects: dict[str, bytes] = {}
        self.denied: dict[str, int] = {}  # repo path -> HTTP status answered instead (401, 404…)

    def bare_path(self, repo: str) -> Path:
        return self.root / f"{repo.removesuffix('.git')}.git"

    def exists(self, repo: str) -> bool:
        return self.bare_path(repo).is_dir()

    def add_repo(self, repo: str, files: dict[str, bytes | str], lfs: dict[str, bytes] | None = None,
                 message: str = "initial commit", branch: str = "main", date: str = "2023-01-10T12:00:00Z") -> str:
        bare = self.bare_path(repo)
        bare.parent.mkdir(parents=True, exist_ok=True)
        git("init", "--quiet", "--bare", f"--initial-branch={branch}", str(bare))
        return self.commit(repo, files, lfs, message=message, branch=branch, date=date)

    def commit(self, repo: str, files: dict[str, bytes | str], lfs: dict[str, bytes] | None = None,
               message: str = "update", branch: str = "main", date: str = "2023-02-01T12:00:00Z") -> str:
        """Add a commit on ``branch`` with these files (added or replaced); returns its SHA."""
        bare = self.bare_path(repo)
        with tempfile.TemporaryDirectory() as work:
            env = {"GIT_DIR": str(bare), "GIT_WORK_TREE": work, "GIT_INDEX_FILE": f"{work}/.index",
                   "GIT_AUTHOR_DATE": date, "GIT_COMMITTER_DATE": date}
            has_head = subprocess.run(["git", "rev-parse", "--verify", "-q", f"refs/heads/{branch}"],
                                      env={**os.environ, **env}, capture_output=True).returncode == 0
            if has_head:
                git("read-tree", branch, env=env)
            all_files = dict(files)
            if lfs:
                all_files[".gitattributes"] = LFS_ATTRIBUTES
                for name, content in lfs.items():
                    all_files[name] = lfs_pointer(content)
                    self.lfs_objects[hashlib.sha256(content).hexdigest()] = content
            for name, content in all_files.items():
                target = Path(work, name)
                target.parent.mkdir(parents=True, exist_ok=True)
                target.write_bytes(content.encode() if isinstance(content, str) else content)
                git("update-index", "--add", name, cwd=work, env=env)
            tree = git("write-tree", env=env)
            parent = ["-p", branch] if has_head else []
            sha = git("commit-tree", tree, *parent, "-m", message, env=env)
            git("update-ref", f"refs/heads/{branch}", sha, env=env)
            git("symbolic-ref", "HEAD", f"refs/heads/{branch}", env=env)
        return sha

    def head(self, repo: str, branch: str = "main") -> str:
        return git("rev-parse", f"refs/heads/{branch}", env={"GIT_DIR": str(self.bare_path(repo))})

    def mount(self, replica: Replica, prefix: str = "") -> None:
        """Serve every repository under ``prefix`` (smart HTTP + LFS batch API)."""
        service = r"(?P<repo>.+?)(?:\.git)?/(?P<rest>info/refs|git-upload-pack|HEAD|objects/.+)"
        lfs = r"(?P<repo>.+?)(?:\.git)?/info/lfs/objects/batch"
        replica.route("POST", f"{re.escape(prefix)}/{lfs}", self._lfs_batch(replica, prefix))
        replica.route("GET", f"{re.escape(prefix)}/lfs-objects/(?P<oid>[0-9a-f]{{64}})", self._lfs_object)
        replica.route("GET", f"{re.escape(prefix)}/{service}", self._smart_http)
        replica.route("POST", f"{re.escape(prefix)}/{service}", self._smart_http)

    def _smart_http(self, req: Incoming, m: re.Match) -> Reply:
        repo = unquote(m.group("repo"))  # git sends non-ASCII names percent-encoded
        if repo in self.denied:
            status = self.denied[repo]
            return Reply.text("Authentication required" if status == 401 else "Not Found", status,
                              headers={"WWW-Authenticate": 'Basic realm="Replica"'} if status == 401 else {})
        if not self.exists(repo):
            return Reply.text("Repository not found", 404)
        env = {
            **os.environ, **GIT_ENV,
            "GIT_PROJECT_ROOT": str(self.root), "GIT_HTTP_EXPORT_ALL": "1",
            "PATH_INFO": f"/{repo}.git/{m.group('rest')}", "REQUEST_METHOD": req.method,
            "QUERY_STRING": "&".join(f"{k}={v}" for k, v in req.query),
            "CONTENT_TYPE": req.headers.get("content-type", ""), "CONTENT_LENGTH": str(len(req.body)),
            "REMOTE_ADDR": "127.0.0.1", "GATEWAY_INTERFACE": "CGI/1.1",
            "SERVER_PROTOCOL": "HTTP/1.1",
        }
        for header in ("content-encoding", "git-protocol"):
            if header in req.headers:
                env["HTTP_" + header.upper().replace("-", "_")] = req.headers[header]
        out = subprocess.run(["git", "http-backend"], input=req.body, env=env, capture_output=True)
        head, _, body = out.stdout.partition(b"\r\n\r\n")
        status, headers = 200, {}
        for line in head.decode("latin-1").split("\r\n"):
            key, _, value = line.partition(":")
            if key.lower() == "status":
                status = int(value.split()[0])
            elif key:
                headers[key] = value.strip()
        return Reply(status, body, headers)

    def _lfs_batch(self, replica: Replica, prefix: str = "") -> Handler:
        def handler(req: Incoming, m: re.Match) -> Reply:
            request = json.loads(req.body or b"{}")
            objects = []
            for obj in request.get("objects", []):
                oid = obj.get("oid", "")
                if oid in self.lfs_objects:
                    href = f"{replica.url}{prefix}/lfs-objects/{oid}"  # where mount() serves it
                    objects.append({"oid": oid, "size": obj.get("size"), "authenticated": True,
                                    "actions": {"download": {"href": href, "expires_in": 3600}}})
                else:
                    objects.append({"oid": oid, "size": obj.get("size"),
                                    "error": {"code": 404, "message": "Object does not exist"}})
            return Reply.json({"transfer": "basic", "objects": objects},
                              headers={"Content-Type": "application/vnd.git-lfs+json"})
        return handler

    def _lfs_object(self, req: Incoming, m: re.Match) -> Reply:
        content = self.lfs_objects.get(m.group("oid"))
        if content is None:
            return Reply.text("Not Found", 404)
        return Reply(200, content, {"Content-Type": "application/octet-stream"})


def insteadof_env(real_base: str, replica_base: str, env: dict[str, str] | None = None) -> dict[str, str]:
    """Environment making git fetch ``real_base/...`` from ``replica_base/...`` (git's own
    ``url.<base>.insteadOf`` via ``GIT_CONFIG_COUNT``), so no test-only branch is needed."""
    env = dict(os.environ if env is None else env)
    n = int(env.get("GIT_CONFIG_COUNT", "0"))
    env[f"GIT_CONFIG_KEY_{n}"] = f"url.{replica_base.rstrip('/')}/.insteadOf"
    env[f"GIT_CONFIG_VALUE_{n}"] = real_base.rstrip("/") + "/"
    env["GIT_CONFIG_COUNT"] = str(n + 1)
    return env
