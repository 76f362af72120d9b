"""Git, the safe way: every clone, fetch and HEAD lookup of the project goes through here.

Rules (repo URLs come from strangers):

* a URL is accepted only if it is a plain ``scheme://host/path`` URL whose scheme is in
  ``PTM_GIT_ALLOW_PROTOCOL`` (default ``https``) — no ``ext::``/remote-helper syntax, no
  ``file://``/``ssh://`` unless explicitly allowed, no credentials, no leading ``-``, no
  whitespace or control characters; git itself enforces the same list via ``GIT_ALLOW_PROTOCOL``;
* the URL is always passed after ``--`` and no option is ever built from hub data (branch names
  are checked against git's ref-name rules first);
* git never prompts (``GIT_TERMINAL_PROMPT=0``, empty askpass), a transfer slower than 1 KB/s for
  ``PTM_GIT_STALL_TIMEOUT`` seconds aborts, and any command is killed after ``PTM_GIT_TIMEOUT``;
* no git process outlives the process that started it, even one killed with SIGKILL (see
  :class:`_Lifeline`): none goes on downloading, or writing in a scratch dir, once its crawl is gone;
* a new clone is built in a scratch dir and lands with one ``rename``: a clone directory in the
  dataset tree is always complete;
* a new clone that downloads more than ``PTM_CLONE_MAX_GB`` (its pack, LFS objects) is killed, with
  the processes it started and no other git of the crawl, and never lands; so is an update whose
  fetch adds more than that to its clone's objects, and the clone is left as it was;
* a clone or update in flight is killed the same way when the caller's ``guard`` says so (the
  clone stage's: the disk's free space fell below ``PTM_CLONE_MIN_FREE_GB``);
* an update holds ``.git/ptmscrape-update`` (a ``flock``, which names its crawl's git process group
  until the update succeeds): the locks and unfinished files git left in a clone when its crawl was
  killed mid-update (SIGKILL leaves ``index.lock``, ``config.lock``...) are removed by the next
  update, which would else fail for ever (and leave the half-checked-out working tree as it was);
  and such a clone is never "unchanged" (:func:`update_unfinished`), even at the hub's commit;
* a failure of this machine, not of the repository (a read-only, full or failing file system, git
  missing or broken: :func:`local_failure`) is marked ``RepoError.local``: it fails the crawl.
"""

from __future__ import annotations

import atexit
import contextlib
import dataclasses
import fcntl
import logging
import os
import re
import shutil
import subprocess
import threading
import time
import uuid
import weakref
from collections.abc import Callable
from pathlib import Path
from urllib.parse import unquote, urlsplit

# Without git on PATH, GitPython's import raised ("Bad git executable") as Scrapy loaded the
# project's commands: a traceback for every command, cloning on or not. A crawl that clones is
# refused before it starts instead (checks.check_git); the others need no git.
os.environ.setdefault("GIT_PYTHON_REFRESH", "quiet")

import git  # noqa: E402
from git.exc import GitCommandError, GitCommandNotFound  # noqa: E402

from ptmscrape.dataset.processes import HOST_TAG, group_running, kill_tree, pid_alive
from ptmscrape.gitfiles import read_clone

logger = logging.getLogger(__name__)

_BRANCH = re.compile(r"^(?![-/])(?!.*\.\.)(?!.*//)(?!.*/\.)(?!\.)[A-Za-z0-9._/\-]{1,200}(?<![./])$")
_MAX_URL = 2048
_REPO_LOCATING_ENV = frozenset({
    "GIT_DIR", "GIT_WORK_TREE", "GIT_INDEX_FILE", "GIT_OBJECT_DIRECTORY", "GIT_COMMON_DIR",
    "GIT_ALTERNATE_OBJECT_DIRECTORIES", "GIT_NAMESPACE",
})
_SHA = re.compile(r"^[0-9a-f]{40}([0-9a-f]{24})?$")


class RepoError(Exception):
    """A repository could not be cloned or updated; ``str()`` is a short reason for CloneStatus,
    ``detail`` what git itself said, where git said it (:func:`git_said`), for the log."""

    detail: str | None = None
    # A failure of this machine, not of the repository (a read-only, full or failing file system,
    # git missing or broken): the dataset is incomplete by the operator's fault, so it fails the
    # crawl (ptm/clone/failed_locally, the verdict); a repository's (404, gated, too large) does not.
    local: bool = False


class UnsafeRepoURL(RepoError):
    pass


class DirectoryTaken(RepoError):
    """Another process landed a clone of another repository in the target folder first."""


class TooLarge(RepoError):
    """A new clone downloaded more than ``PTM_CLONE_MAX_GB`` (killed, its scratch folder removed), or an
    update added more than that to its clone's objects (killed, the clone left as it was)."""


GB = 10**9  # PTM_CLONE_MIN_FREE_GB and PTM_CLONE_MAX_GB count in GB of 10^9 bytes, as df -H does
# CloneStatus reasons: the same words every time (no numbers), so ptm/clone/failed/<reason> is one counter.
TOO_LARGE = "larger than PTM_CLONE_MAX_GB"
TIMED_OUT = "transfer stalled or timed out (killed after PTM_GIT_TIMEOUT)"
# A new clone of it, or an update asking for its HEAD ("couldn't find remote ref HEAD").
EMPTY = "no commit on the default branch (empty repository?)"
SIZE_POLL_SECONDS = 1.0  # how often a clone's size is looked at against PTM_CLONE_MAX_GB


@dataclasses.dataclass(frozen=True)
class GitPolicy:
    allow_protocols: tuple[str, ...] = ("https",)
    stall_timeout: int = 60
    timeout: int = 3600
    lfs: bool = False
    depth: int = 0
    # Largest download of one new clone (its packs and LFS objects), in bytes; 0 = no limit.
    max_bytes: int = 0
    # (URL prefix, header) pairs sent by git to matching URLs only, e.g. the hub's bearer token for
    # its own host. Given to git in a config file in memory that only git's processes read (see
    # Git): never on a command line (visible in ps), in the environment (git-lfs's error logs
    # copy it) nor in a clone's .git/config. Not in repr(), so never in a log line.
    auth_headers: tuple[tuple[str, str], ...] = dataclasses.field(default=(), repr=False)

    @classmethod
    def from_settings(cls, settings) -> GitPolicy:
        protocols = tuple(p for p in settings.get("PTM_GIT_ALLOW_PROTOCOL").split(":") if p)
        return cls(
            allow_protocols=protocols,
            stall_timeout=settings.getint("PTM_GIT_STALL_TIMEOUT"),
            timeout=settings.getint("PTM_GIT_TIMEOUT"),
            lfs=settings.getbool("PTM_CLONE_LFS"),
            depth=settings.getint("PTM_CLONE_DEPTH"),
            max_bytes=max(0, int(settings.getfloat("PTM_CLONE_MAX_GB") * GB)),  # 0 or less: off, as documented
        )

    def env(self, auth_file: str | None = None) -> dict[str, str]:
        """The environment of every git command. The auth headers are not in it: git-lfs writes
        every ``GIT_*`` variable of its process into the clone's ``.git/lfs/logs/`` when it logs an
        error, so a header in ``GIT_CONFIG_VALUE_<n>`` would be stored in the dataset. They are in
        ``auth_file`` (:meth:`auth_config`, a file only git's processes can read: :class:`Git`),
        which the environment includes; without one (no ``memfd_create``), in the environment."""
        # Variables that point git at another repository or object store than the one it works
        # on (set, e.g., when a crawl is started from a git hook) must not reach our commands.
        env = {k: v for k, v in os.environ.items() if k not in _REPO_LOCATING_ENV}
        env.update(
            GIT_TERMINAL_PROMPT="0",
            GIT_ASKPASS="",
            SSH_ASKPASS="",
            GCM_INTERACTIVE="never",
            GIT_ALLOW_PROTOCOL=":".join(self.allow_protocols),
            GIT_PROTOCOL_FROM_USER="0",
        )
        # Checkouts leave LFS pointers; with ``lfs`` on, ``Git._lfs_pull`` fetches the objects from
        # the repository's own endpoint (a smudge at checkout would follow its .lfsconfig).
        env["GIT_LFS_SKIP_SMUDGE"] = "1"
        n = int(env.get("GIT_CONFIG_COUNT", "0") or 0)
        entries: list[tuple[str, str]] = []
        for prefix, header in self.auth_headers:
            if auth_file is None:
                entries.append((f"http.{prefix}.extraHeader", header))
            # git keeps a header for the whole session of a URL it matched, also after following
            # a redirect to another host: no redirect is followed where the header is sent.
            entries.append((f"http.{prefix}.followRedirects", "false"))
        if auth_file is not None and self.auth_headers:
            entries.append(("include.path", auth_file))
        for key, value in entries:
            env[f"GIT_CONFIG_KEY_{n}"] = key
            env[f"GIT_CONFIG_VALUE_{n}"] = value
            n += 1
        if entries:
            env["GIT_CONFIG_COUNT"] = str(n)
        return env

    def auth_config(self) -> bytes:
        """The auth headers as a git config file: ``[http "<prefix>"] extraHeader = <header>``."""
        def quoted(text: str) -> str:
            return '"' + text.replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n") + '"'
        return "".join(f"[http {quoted(prefix)}]\n\textraHeader = {quoted(header)}\n"
                       for prefix, header in self.auth_headers).encode()

    def config_options(self) -> list[str]:
        return [
            "-c", "http.lowSpeedLimit=1000",
            "-c", f"http.lowSpeedTime={self.stall_timeout}",
            "-c", "core.askPass=",
            "-c", "credential.helper=",
            # A repository's symlinks are checked out as small files holding the link text, so no
            # path in the dataset tree leads outside it (a clone may link to /etc or ~).
            "-c", "core.symlinks=false",
            # No hook of a clone's .git/hooks (a reset or a fetch runs reference-transaction,
            # post-index-change...) runs: git clone installs none, so any there was put there.
            "-c", "core.hooksPath=/dev/null",
            # No automatic maintenance: after a fetch, git would start "git gc --auto" (one pack an
            # update: from the 50th) in a session of its own, out of the lifeline's process group:
            # a repack of the whole clone, needing its size again in free disk space, that no
            # PTM_CLONE_MIN_FREE_GB, PTM_GIT_TIMEOUT or kill of the crawl stops.
            "-c", "maintenance.auto=false",
            "-c", "gc.auto=0",
        ]


def check_url(url: object, policy: GitPolicy) -> str:
    """The URL, stripped, if it is safe to hand to git; else :class:`UnsafeRepoURL` saying why."""
    if not isinstance(url, str) or not url.strip():
        raise UnsafeRepoURL("no repository URL")
    url = url.strip()
    if len(url) > _MAX_URL:
        raise UnsafeRepoURL(f"URL longer than {_MAX_URL} characters")
    if url.startswith("-"):
        raise UnsafeRepoURL(f"URL starts with '-' (git option injection): {url[:80]!r}")
    if "::" in url.split("/", 1)[0] or re.match(r"^[A-Za-z][A-Za-z0-9+.\-]*::", url):
        raise UnsafeRepoURL(f"remote-helper URL not allowed: {url[:80]!r}")
    if any(ord(c) < 0x21 or c == "\x7f" for c in url):
        raise UnsafeRepoURL("URL contains whitespace or control characters")
    try:
        parts = urlsplit(url)
    except ValueError as exc:
        raise UnsafeRepoURL(f"malformed URL: {exc}") from None
    scheme = parts.scheme.lower()
    if not scheme or "://" not in url:
        raise UnsafeRepoURL(f"not a plain URL with scheme, host and path ({url[:80]!r})")
    if scheme not in policy.allow_protocols:
        allowed = ":".join(policy.allow_protocols)
        raise UnsafeRepoURL(f"transport '{scheme}' not allowed (PTM_GIT_ALLOW_PROTOCOL={allowed})")
    if parts.username is not None or parts.password is not None or "@" in parts.netloc:
        raise UnsafeRepoURL("credentials in the URL are not accepted")
    if not parts.hostname or parts.hostname.startswith("-"):
        raise UnsafeRepoURL(f"no valid host ({url[:80]!r})")
    try:
        parts.port  # noqa: B018 - raises on a port that is not a number in range
    except ValueError:
        raise UnsafeRepoURL(f"invalid port ({url[:80]!r})") from None
    if not parts.path.strip("/"):
        raise UnsafeRepoURL(f"no repository path ({url[:80]!r})")
    if any(unquote(s) in (".", "..") for s in parts.path.split("/")):
        # curl resolves them, so the URL would fetch another repository than the one named.
        raise UnsafeRepoURL(f"'.' or '..' segment in the URL path ({url[:80]!r})")
    try:
        git.Git.check_unsafe_protocols(url)
    except Exception as exc:  # GitPython's own list (ext::, fd::)
        raise UnsafeRepoURL(str(exc)) from None
    return url


_CREDENTIALS = re.compile(r"^([A-Za-z][A-Za-z0-9+.\-]*://)[^/?#]*@")


def without_credentials(url: str) -> str:
    """``url`` with any ``user:password@`` replaced by ``***@`` (check_url refuses such URLs)."""
    return _CREDENTIALS.sub(r"\1***@", url) if "@" in url else url


def normalize_url(url: str) -> str:
    """Key under which one repository is known, whatever hub or spelling led to it."""
    parts = urlsplit(url.strip())
    path = parts.path.rstrip("/")
    if path.endswith(".git"):
        path = path[:-4]
    host = (parts.hostname or "").lower()
    if parts.port:
        host = f"{host}:{parts.port}"
    if host in ("github.com", "www.github.com", "gitlab.com"):
        host = host.removeprefix("www.")
        path = path.lower()
    return f"{parts.scheme.lower()}://{host}{path}"


_MAX_PATH_DEPTH = 8  # folders of one clone below repos/; deeper URL paths share the last one


def path_segments(url: str) -> list[str]:
    """The path of a repository URL below its host, segment by segment (``.git`` dropped):
    ``https://gitlab.com/group/sub/project.git`` -> ``["group", "sub", "project"]``. Segments past
    ``_MAX_PATH_DEPTH`` are kept, joined (``/`` then encoded by ``dataset.segment``), in the last."""
    segments = [s for s in urlsplit(url).path.split("/") if s]
    if segments:
        segments[-1] = segments[-1].removesuffix(".git") or segments[-1]
    if not segments:
        raise UnsafeRepoURL(f"no repository path in {url[:80]!r}")
    if len(segments) > _MAX_PATH_DEPTH:
        segments[_MAX_PATH_DEPTH - 1:] = ["/".join(segments[_MAX_PATH_DEPTH - 1:])]
    return segments


# What git clone (and git-lfs, and this module's update) writes in a clone's .git/config: git is
# run in an existing clone only when its configuration holds nothing else (git --list spelling:
# section and key lower case).
_CLONE_CONFIG = re.compile(r"""(?x)
    core\.(repositoryformatversion|filemode|bare|logallrefupdates|symlinks|ignorecase|precomposeunicode)
  | remote\.origin\.(url|fetch)
  | branch\.[^\n]+\.(remote|merge)
  | lfs\.repositoryformatversion
  | lfs\.[^\n]+\.(access|locksverify)
  | extensions\.objectformat
""")
UNSAFE_CONFIG = "git configuration of the clone holds settings git clone does not write"


def check_branch(branch: str | None) -> str | None:
    if branch in (None, ""):
        return None
    if (not isinstance(branch, str) or not _BRANCH.fullmatch(branch) or branch == "HEAD"
            or any(part.endswith(".lock") for part in branch.split("/"))):
        raise RepoError(f"invalid branch name ({str(branch)[:60]!r})")
    return branch


def head_sha(path: str | os.PathLike[str]) -> str | None:
    """Commit checked out in a clone, or None if the directory is not a valid repository.

    Valid means: a git directory whose HEAD resolves to a commit object present in its object
    store. GitPython's ``repo.head.commit`` asks a ``git cat-file`` process for the object (~2 ms,
    once per repository per crawl: most of what an unchanged repository cost a re-crawl), so the
    plain layout ``git clone`` makes is read from its files first (:func:`ptmscrape.gitfiles.read_clone`); anything
    else (a linked worktree, alternates, a delta or tag object, a missing or damaged object...)
    is asked of GitPython and git as before.
    """
    fast = read_clone(path)
    return fast[0] if fast else _head_sha_git(path)


def head_and_origin(path: str | os.PathLike[str]) -> tuple[str | None, str | None]:
    """``(head_sha(path), URL of its "origin" remote or None)``; the URL only for a valid clone."""
    fast = read_clone(path)
    if fast:
        return fast
    head = _head_sha_git(path)
    if head is None:
        return None, None
    try:
        return head, git.Repo(path).remotes.origin.url
    except Exception:
        return head, None


def _head_sha_git(path: str | os.PathLike[str]) -> str | None:
    try:
        sha = git.Repo(path).head.commit.hexsha
    except Exception:
        return None
    return sha if _SHA.match(sha) else None


class _Lifeline:
    """The process group every git command of this process runs in, and what ends it.

    Its leader is a shell that waits for end-of-file on a pipe whose other end only this process
    holds. However this process ends (SIGKILL included), the kernel closes that end; the shell then
    kills its whole group: each git and what git started (``git-remote-https``, ``fetch-pack``,
    ``index-pack``, ``git-lfs``), which share git's process group. A group of their own also keeps
    a terminal's Ctrl-C (sent to the crawl's group) from killing the clones a paused crawl waits for.

    (``PR_SET_PDEATHSIG`` would reach git alone, not its children, and fires when the *thread* that
    started it ends; a pipe is closed when the process is gone.)
    """

    SCRIPT = ("/bin/sh", "-c", "read -r line; kill -KILL 0", "ptmscrape-git-lifeline")

    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.proc: subprocess.Popen[bytes] | None = None
        self.fd = -1  # our end of the pipe
        self.ended = False

    def group(self) -> int:
        """The process group (the shell's pid) for a new git command; the shell is started first
        if need be (or again, should it have been killed)."""
        with self.lock:
            if self.ended:
                raise RepoError("not started: this process is ending")
            if self.proc is None or self.proc.poll() is not None:
                if self.fd >= 0:
                    os.close(self.fd)
                    self.fd = -1
                read_end, write_end = os.pipe()  # neither end is inherited by a command
                try:
                    self.proc = subprocess.Popen(self.SCRIPT, stdin=read_end, stdout=subprocess.DEVNULL,
                                                 stderr=subprocess.DEVNULL, process_group=0)
                except BaseException:
                    os.close(write_end)
                    raise
                finally:
                    os.close(read_end)
                self.fd = write_end
            return self.proc.pid

    def end(self) -> None:
        """Kill every git command still running, and start no new one (a process about to exit)."""
        with self.lock:
            self.ended = True
            proc, fd, self.fd = self.proc, self.fd, -1
        if fd >= 0:
            os.close(fd)
        if proc is not None:
            try:
                proc.wait(10)  # at once, unless a process forked by a C library holds the pipe too
            except subprocess.TimeoutExpired:
                pass

    def forked(self) -> None:
        """In a forked child: the parent's pipe closed here (it must not keep the parent's git
        alive), a lifeline of its own when it runs git."""
        self.lock = threading.Lock()
        if self.fd >= 0:
            os.close(self.fd)
        if self.proc is not None:
            self.proc.returncode = 0  # not our child: never waited for here
        self.proc, self.fd = None, -1


_lifeline = _Lifeline()
os.register_at_fork(after_in_child=_lifeline.forked)
atexit.register(_lifeline.end)


def end_git_commands() -> None:
    """Kill the git commands this process still runs and refuse new ones: for a crawl command whose
    crawl is over (a forced stop does not wait for the clones in flight)."""
    _lifeline.end()


class Git:
    """Runs git commands for one policy; every call is bounded by ``policy.timeout``."""

    def __init__(self, policy: GitPolicy):
        self.policy = policy
        # The auth headers (the hub's token) in a file in memory that only this process and the git
        # commands it starts can read (``pass_fds``: git and the processes git starts inherit it,
        # git-lfs too): never on a command line, in the environment (git-lfs logs it) or on disk.
        self._fds: tuple[int, ...] = ()
        auth_file = None
        if policy.auth_headers and hasattr(os, "memfd_create"):
            fd = os.memfd_create("ptmscrape-git-auth")  # close-on-exec: reaches git through pass_fds only
            try:
                os.write(fd, policy.auth_config())
            except BaseException:
                os.close(fd)
                raise
            # The path git opens it by (the same number in git's processes): where neither exists,
            # the environment carries the headers as before.
            auth_file = next((p for p in (f"/dev/fd/{fd}", f"/proc/self/fd/{fd}") if os.path.exists(p)), None)
            if auth_file is None:
                os.close(fd)
            else:
                weakref.finalize(self, os.close, fd)
                self._fds = (fd,)
        self._env = policy.env(auth_file)
        self._checked: set[str] = set()  # clones whose .git passed check_clone (in this process)

    def check_clone(self, path: str | os.PathLike[str]) -> None:
        """Raise :class:`RepoError` unless ``path`` is a clone git may run in: its ``.git`` a
        directory of its own (not a symlink, a ``gitdir:`` file or a linked worktree's, which lead
        to a repository elsewhere) with no symlink in it, its config holding only what git clone writes. A clone's
        config is git's own, never a hub's, but a data dir comes from elsewhere too (shared by
        workers, copied from another machine): one with ``core.fsmonitor``, ``core.worktree``,
        ``core.sshCommand``, ``include.path``, a filter or an ``insteadOf`` would have git run a
        program, write outside the data dir or fetch elsewhere."""
        key = os.fspath(path)
        if key in self._checked:
            return
        dot_git = os.path.join(key, ".git")
        if (os.path.islink(dot_git) or not os.path.isdir(dot_git)
                or os.path.lexists(os.path.join(dot_git, "commondir"))):
            raise RepoError(f"{UNSAFE_CONFIG} (.git is not a folder of the clone's own)")
        link = _symlink_in(dot_git)
        if link is not None:  # git follows it: a fetch would write refs, reflogs or packs there
            raise RepoError(f"{UNSAFE_CONFIG} (.git holds a symlink: {printable_key(link)})")
        # Read from "/", not the clone: git sets itself up in the repository it runs in, as that
        # config says (a core.worktree that does not exist: "fatal: cannot chdir").
        listing = self._run("/", "config", "--file", os.path.abspath(os.path.join(dot_git, "config")),
                            "--no-includes", "--null", "--list")
        odd = sorted({entry.split("\n", 1)[0] for entry in listing.split("\0")
                      if entry and not _CLONE_CONFIG.fullmatch(entry.split("\n", 1)[0])})
        if odd:
            shown = ", ".join(printable_key(k) for k in odd[:5]) + (", …" if len(odd) > 5 else "")
            raise RepoError(f"{UNSAFE_CONFIG} ({shown})")
        self._checked.add(key)

    def _run(self, cwd: str | os.PathLike[str], *args: str, scratch: Path | None = None, before: int = 0,
             guard: Callable[[], None] | None = None) -> str:
        """``git <args>`` in ``cwd``; with ``scratch`` (a new clone's folder, or the clone an update
        fetches into, which held ``before`` bytes of objects) and a size limit in the policy or a
        ``guard``, watched while it runs (:meth:`_run_watched`)."""
        cmd = ["git", *self.policy.config_options(), *args]
        if scratch is not None and (self.policy.max_bytes > 0 or guard is not None):
            return self._run_watched(cwd, cmd, scratch, before, guard)
        try:
            return git.Git(os.fspath(cwd)).execute(
                cmd, env=self._env, kill_after_timeout=self.policy.timeout,
                with_extended_output=False, strip_newline_in_stdout=True,
                process_group=_lifeline.group(), pass_fds=self._fds,
            )
        except GitCommandError as exc:
            raise git_failure(exc) from None
        except GitCommandNotFound:
            raise git_not_found() from None

    def _run_watched(self, cwd: str | os.PathLike[str], cmd: list[str], scratch: Path, before: int = 0,
                     guard: Callable[[], None] | None = None) -> str:
        """``cmd`` as :meth:`_run` runs it, looked at every ``SIZE_POLL_SECONDS`` by the thread
        waiting on it: once what it downloaded into ``scratch`` (:func:`downloaded_bytes`, less the
        ``before`` bytes already there) passes ``policy.max_bytes`` (:class:`TooLarge`), after
        ``policy.timeout``, or once ``guard`` raises a :class:`RepoError` (raised in turn), it is
        killed with the processes it started (``git-remote-https``, ``fetch-pack``, ``index-pack``,
        ``git-lfs``), and no other: every git of the crawl shares one process group."""
        try:
            proc = git.Git(os.fspath(cwd)).execute(cmd, env=self._env, as_process=True,
                                                   process_group=_lifeline.group(), pass_fds=self._fds)
        except GitCommandNotFound:
            raise git_not_found() from None
        popen = proc.proc
        assert popen is not None  # set until the AutoInterrupt is deleted
        deadline = time.monotonic() + self.policy.timeout
        out: bytes | None = b""
        err: bytes | None = b""
        try:
            while True:
                try:
                    out, err = popen.communicate(timeout=SIZE_POLL_SECONDS)
                    break
                except subprocess.TimeoutExpired:
                    pass
                stop: RepoError | None = None
                if self.policy.max_bytes and downloaded_bytes(scratch) - before > self.policy.max_bytes:
                    stop = TooLarge(TOO_LARGE)
                elif time.monotonic() >= deadline:
                    stop = RepoError(TIMED_OUT)
                elif guard is not None:
                    try:
                        guard()
                    except RepoError as exc:
                        stop = exc
                if stop is not None:
                    kill_tree(popen.pid)
                    try:
                        popen.communicate(timeout=60)  # the pipes close as the killed processes go
                    except subprocess.TimeoutExpired:
                        pass  # a process that left the tree holds them: the clone is over all the same
                    raise stop
        finally:
            if popen.poll() is None:  # an exception in this thread: leave nothing running
                kill_tree(popen.pid)
                popen.wait()
        # As GitPython's execute hands them to GitCommandError: without their last newline (its
        # message quotes stderr, and describe_failure would read the closing quote as git's last line).
        out, err = (out or b"").removesuffix(b"\n"), (err or b"").removesuffix(b"\n")
        if popen.returncode:
            raise git_failure(GitCommandError(cmd, popen.returncode, err, out))
        return out.decode("utf-8", "replace")

    def _lfs(self, cwd: str | os.PathLike[str], url: str, *args: str, scratch: Path | None = None,
             before: int = 0, guard: Callable[[], None] | None = None) -> None:
        """``git lfs <args>`` (``pull``, ``fetch``) from the repository's own LFS endpoint (git-lfs's
        default for ``url``): a repository's ``.lfsconfig`` may name another (``file://`` on this
        machine, any host, any transport), and git's configuration overrides it."""
        endpoint = url.rstrip("/") + ("/info/lfs" if url.rstrip("/").endswith(".git") else ".git/info/lfs")
        self._run(cwd, "-c", f"lfs.url={endpoint}", "-c", f"remote.origin.lfsurl={endpoint}", "lfs", *args,
                  scratch=scratch, before=before, guard=guard)

    def clone(self, url: str, target: Path, scratch_root: Path, branch: str | None = None,
              guard: Callable[[], None] | None = None) -> str:
        """Clone ``url`` so that it appears at ``target`` complete or not at all; returns HEAD.
        ``guard`` is called while git runs: a :class:`RepoError` it raises stops the clone."""
        url = check_url(url, self.policy)
        branch = check_branch(branch)
        scratch_root.mkdir(parents=True, exist_ok=True)
        # <crawl pid>-<process group of its git>-<random>.<host>: clean_scratch() reads all three.
        scratch = scratch_root / f"{os.getpid()}-{_lifeline.group()}-{uuid.uuid4().hex[:12]}.{HOST_TAG}"
        args = ["clone", "--no-recurse-submodules"]
        if self.policy.depth > 0:
            args += ["--depth", str(self.policy.depth)]
        if branch:
            args += ["--branch", branch]
        try:
            self._run(scratch_root, *args, "--", url, os.fspath(scratch), scratch=scratch, guard=guard)
            if self.policy.lfs:
                self._lfs(scratch, url, "pull", scratch=scratch, guard=guard)
            if self.policy.max_bytes > 0 and downloaded_bytes(scratch) > self.policy.max_bytes:
                raise TooLarge(TOO_LARGE)  # done between two looks: too large all the same
            sha = head_sha(scratch)
            if sha is None:
                raise RepoError(EMPTY)
            target.parent.mkdir(parents=True, exist_ok=True)
            try:
                os.rename(scratch, target)
            except OSError:
                # Another worker landed the same repository first: theirs is complete; use it.
                head, origin = head_and_origin(target)
                if head is None:
                    raise
                if origin is not None and normalize_url(origin) != normalize_url(url):
                    raise DirectoryTaken(f"{target} holds a clone of another repository") from None
                return head
            return sha
        finally:
            shutil.rmtree(scratch, ignore_errors=True)

    def update(self, url: str, path: Path, branch: str | None = None,
               guard: Callable[[], None] | None = None) -> str:
        """Fetch ``branch`` (default: the remote's HEAD) into an existing clone and check it out.

        Watched as a new clone is: what the fetch (and, with ``lfs``, the LFS objects of the
        fetched commit) adds to the clone's objects is held against ``policy.max_bytes``, and
        ``guard`` is called. The checkout moves only once both are in: a fetch that fails or is
        killed leaves the clone at its commit (:func:`_undo_fetch`), so the next crawl tries again.
        The checkout is watched by ``guard`` too; one stopped or failed puts the clone back at its
        commit (:meth:`_roll_back`)."""
        url = check_url(url, self.policy)
        branch = check_branch(branch)
        self.check_clone(path)
        with _updating(path, wait=self.policy.timeout, guard=guard) as owned:
            return self._update(url, path, branch, guard, owned)

    def _update(self, url: str, path: Path, branch: str | None, guard: Callable[[], None] | None,
                owned: bool = False) -> str:
        self._run(path, "config", "remote.origin.url", url)
        # Always a pack (never unpacked to loose objects, as git does below 100 objects): one written
        # as tmp_pack_* until complete, which a killed fetch leaves whole for _undo_fetch to remove.
        args = ["-c", "fetch.unpackLimit=1", "fetch", "--no-recurse-submodules"]
        # PTM_CLONE_DEPTH is the depth of new clones: a shallow one stays that deep, a full one is
        # not cut (--depth would make it shallow at the fetched commit, its history gone from git log).
        if self.policy.depth > 0 and (path / ".git" / "shallow").exists():
            args += ["--depth", str(self.policy.depth)]
        before = downloaded_bytes(path) if self.policy.max_bytes else 0
        marks = _fetch_marks(path)
        try:
            # check_branch() refused anything that git could read as an option.
            self._run(path, *args, "origin", branch or "HEAD", scratch=path, before=before, guard=guard)
            if self.policy.lfs:  # before the checkout moves: a failed LFS fetch must leave the clone as it was
                fetched = self._run(path, "rev-parse", "--verify", "--quiet", "FETCH_HEAD^{commit}")
                if not _SHA.match(fetched):
                    raise RepoError("fetched no commit")
                self._lfs(path, url, "fetch", "origin", fetched, scratch=path, before=before, guard=guard)
        except Exception:
            _undo_fetch(path, marks)
            raise
        # The checkout is watched too: a small pack may check out into a huge working tree (one
        # blob under many names), so a guard's stop (free space) applies to it as to the fetch.
        old = head_sha(path)
        try:
            self._run(path, "reset", "--hard", "--quiet", "FETCH_HEAD", scratch=path, before=before, guard=guard)
        except RepoError:
            if owned:  # else another process updates it too: its git's locks are not ours to remove
                self._roll_back(path, old)
            raise
        if self.policy.lfs:
            self._run(path, "lfs", "checkout")  # from the objects fetched above: no transfer
        sha = head_sha(path)
        if sha is None:
            raise RepoError("clone has no HEAD commit after update")
        return sha

    def _roll_back(self, path: Path, old: str | None) -> None:
        """Put ``path`` back at commit ``old`` after its checkout failed or was stopped: the locks
        the killed git left removed (only called while this process holds the update's flock: no
        other git works there), the files of ``old`` checked out again and those of the new commit removed, so
        what the checkout wrote does not stay on the disk. Should that fail too, the clone is left
        as it is: its update mark (:func:`update_unfinished`) has the next crawl's update redo it."""
        try:
            _remove_files(_lock_files(path / ".git"), f"after a stopped checkout of {path}")
            if old is None:
                raise RepoError("no commit to go back to")
            self._run(path, "reset", "--hard", "--quiet", old)
            self._run(path, "clean", "-d", "-x", "--force", "--quiet")
        except (RepoError, OSError) as exc:
            logger.warning("Could not put %s back at its commit after a stopped checkout (%s): the next "
                           "update does", path, exc)

    def stored_bytes(self, path: Path) -> int:
        """Bytes of git objects (loose and packed, ``git count-objects -v``) and LFS objects."""
        sizes = dict(line.split(": ", 1) for line in self._run(path, "count-objects", "-v").splitlines()
                     if ": " in line)
        total = (int(sizes.get("size", 0)) + int(sizes.get("size-pack", 0))) * 1024
        lfs = Path(path, ".git", "lfs", "objects")
        if lfs.is_dir():
            total += sum(f.stat().st_size for f in lfs.rglob("*") if f.is_file())
        return total

    def last_commit_touching(self, path: Path, subpath: str) -> str | None:
        """Last commit that changed files under ``subpath`` (for many models in one repo)."""
        self.check_clone(path)
        if "\x00" in subpath:  # from a hub's link; no argument can carry it (Popen: ValueError)
            raise RepoError("the folder's name holds a NUL character")
        out = self._run(path, "log", "-1", "--format=%H", "--", subpath.strip("/") or ".")
        return out.strip() if _SHA.match(out.strip()) else None


def _symlink_in(dot_git: str) -> str | None:
    """The path (below ``dot_git``) of a symlink in a clone's ``.git``, or None: git clone makes
    none, and git follows one (``refs``, ``logs``, ``objects/pack`` leading out of the data dir).
    One walk of ``.git`` (packed objects: a few hundred entries), never of the working tree."""
    folders = [dot_git]
    while folders:
        folder = folders.pop()
        try:
            entries = list(os.scandir(folder))
        except OSError:
            continue  # git says what is wrong with it
        for entry in entries:
            if entry.is_symlink():
                return os.path.relpath(entry.path, dot_git)
            if entry.is_dir(follow_symlinks=False):
                folders.append(entry.path)
    return None


def printable_key(key: str) -> str:
    """A config key as an error shows it: at most 80 characters, control characters escaped."""
    return key[:80].encode("unicode_escape").decode("ascii") if not key[:80].isprintable() else key[:80]


def downloaded_bytes(scratch: Path) -> int:
    """What a new clone in ``scratch`` has downloaded so far (of an existing clone: what it holds,
    less which is what an update downloaded): its packs (``tmp_pack_*`` while one arrives), loose
    objects (what git's "dumb" HTTP fetches from a server that is no git's, a static file host) and
    its LFS objects. A few folder reads, never a walk of the working tree (checked-out files are
    not counted)."""
    total = 0
    folders = _object_folders(scratch / ".git" / "objects")
    lfs = scratch / ".git" / "lfs"
    if lfs.is_dir():
        folders += [Path(root) for root, _dirs, _files in os.walk(lfs)]
    for folder in folders:
        for entry in _scan(folder):
            try:
                if entry.is_file(follow_symlinks=False):
                    total += entry.stat(follow_symlinks=False).st_size
            except OSError:
                continue  # renamed meanwhile (tmp_pack_* -> pack-*.pack): seen at the next look
    return total


UPDATE_MARK = "ptmscrape-update"  # in a clone's .git: flock-ed during an update, names the updater


# Seconds between two tries at the update mark of a clone another process updates.
UPDATE_WAIT_POLL = 0.2


@contextlib.contextmanager
def _updating(clone: Path, wait: float = 0, guard: Callable[[], None] | None = None):
    """Held while this process updates ``clone``: an ``flock`` of ``.git/ptmscrape-update``, which
    names the process group of this crawl's git (``<pid>-<group>.<host tag>``). Found free and
    naming a group of this machine that no longer runs (the crawl was killed mid-update, its git
    with it), it means the locks and unfinished files in ``.git`` are that git's leftovers: removed
    (:func:`_remove_leftovers`), else every later update of the clone would fail on them.

    Taken by another process (a worker sharing the data dir updates the same clone: one shared by
    a hub's models, on every re-crawl), the update waits for it, up to ``wait`` seconds (the
    other's git is bounded by the same timeout), while ``guard`` lets it: two gits at once in one
    clone failed on each other's locks (the model's ``CloneStatus`` "failed" though the clone was
    updated), and a failed fetch's clean-up (:func:`_undo_fetch`) removed the other's pack in the
    making. After ``wait``, or where ``flock`` does not work, nothing is removed: git's own locks
    decide, as without it. Yields whether this process holds the flock."""
    try:
        fd = os.open(clone / ".git" / UPDATE_MARK, os.O_RDWR | os.O_CREAT | os.O_NOFOLLOW | os.O_CLOEXEC, 0o666)
    except OSError:
        yield False  # no .git folder (git says so), a read-only clone...
        return
    try:
        if not _lock_update_mark(fd, clone, wait, guard):
            yield False
            return
        try:
            holder = os.pread(fd, 200, 0).decode("ascii")
        except (OSError, UnicodeDecodeError):
            holder = ""
        if _left_by_a_killed_update(holder):
            _remove_leftovers(clone)
        with contextlib.suppress(OSError):
            os.ftruncate(fd, 0)
            os.pwrite(fd, f"{os.getpid()}-{_lifeline.group()}.{HOST_TAG}".encode(), 0)
        yield True  # an update that fails leaves its name: should git have left anything, the next one removes it
        with contextlib.suppress(OSError):
            os.ftruncate(fd, 0)  # done: nothing of it is left to undo
    finally:
        os.close(fd)  # releases the flock


def _lock_update_mark(fd: int, clone: Path, wait: float, guard: Callable[[], None] | None) -> bool:
    """``flock`` the update mark ``fd``, waiting up to ``wait`` s while another process holds it;
    False if it is still held then, or ``flock`` does not work here. Raises :class:`RepoError` when
    ``guard`` does, or this process is ending, meanwhile."""
    deadline = time.monotonic() + wait
    said = False
    while True:
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            return True
        except BlockingIOError:
            pass  # another process updates the clone
        except OSError:
            return False  # no flock on this file system
        if time.monotonic() >= deadline:
            logger.warning("Another process still updates %s after %s s: updating it too (git's locks decide)",
                           clone, wait)
            return False
        if not said:
            logger.info("Another process (a worker sharing the data dir?) updates %s: waiting for it before "
                        "updating it too", clone)
            said = True
        if _lifeline.ended:
            raise RepoError("not started: this process is ending")
        if guard is not None:
            guard()
        time.sleep(UPDATE_WAIT_POLL)


def update_unfinished(clone: str | os.PathLike[str]) -> bool:
    """Whether the last update of ``clone`` was killed or failed and its crawl is gone: HEAD may be
    at the new commit while the working tree is not (a crawl killed between the checkout and
    ``git lfs checkout`` leaves LFS pointers where the files go), so the clone is not "unchanged"
    even at the hub's commit. One small read (the mark is empty after an update that succeeded)."""
    try:
        with open(os.path.join(clone, ".git", UPDATE_MARK), "rb") as f:
            holder = f.read(200).decode("ascii")
    except (OSError, UnicodeDecodeError):
        return False
    return bool(holder) and (_left_by_a_killed_update(holder) or _updater_gone(holder))


def _updater_gone(holder: str) -> bool:
    """Whether ``holder`` names a crawl process of this machine that runs no more. Its git's group
    ends a moment after it (the lifeline shell sees the pipe close, then kills the group): a crawl
    started in between must not take the clone for unchanged. Its leftovers wait for the group's end
    (:func:`_left_by_a_killed_update`): a git still being killed may hold them."""
    named = _updater_of(holder)
    return named is not None and not pid_alive(named[0])


def _left_by_a_killed_update(holder: str) -> bool:
    """Whether ``holder`` (an update mark's ``<pid>-<group>.<host tag>``) names a git process group
    of this machine that runs no process any more."""
    named = _updater_of(holder)
    return named is not None and not group_running(named[1])


def _updater_of(holder: str) -> tuple[int, int] | None:
    """The (crawl pid, git process group) an update mark names, if it names this machine's."""
    name, dot, host = holder.partition(".")
    pid, _, group_text = name.partition("-")
    group = _process_group(group_text)
    if not dot or host != HOST_TAG or not (pid.isascii() and pid.isdigit()) or group is None:
        return None
    return int(pid), group


def _remove_leftovers(clone: Path) -> None:
    """Remove from ``clone``'s ``.git`` what a killed git left: its lock files and the files it
    writes before renaming them into place complete (``tmp_pack_*``, ``tmp_obj_*``, ``*.temp``)."""
    locks = _lock_files(clone / ".git")
    _remove_files(_unfinished_objects(clone) + locks, f"left in {clone} by a killed update")
    if locks:
        logger.info("Removed %d lock file(s) a killed update left in %s", len(locks), clone)


def _fetch_marks(clone: Path) -> frozenset[str]:
    """What of ``clone``'s ``.git`` :func:`_undo_fetch` must leave: its LFS files and lock files."""
    return frozenset(os.fspath(p) for p in _lfs_and_lock_files(clone / ".git"))


def _lfs_and_lock_files(dot_git: Path) -> list[Path]:
    files = [Path(root, name) for root, _dirs, names in os.walk(dot_git / "lfs") for name in names]
    return files + _lock_files(dot_git)


def _lock_files(dot_git: Path) -> list[Path]:
    return [*dot_git.glob("*.lock"), *dot_git.glob("refs/**/*.lock")]


def _unfinished_objects(clone: Path) -> list[Path]:
    """The files git writes before it renames them into place complete (``tmp_pack_*``,
    ``tmp_obj_*``, the dumb HTTP fetch's ``*.temp``)."""
    return [Path(entry.path) for folder in _object_folders(clone / ".git" / "objects")
            for entry in _scan(folder) if entry.name.startswith("tmp_") or entry.name.endswith(".temp")]


def _remove_files(files: list[Path], why: str) -> None:
    for path in files:
        try:
            path.unlink()
        except FileNotFoundError:
            pass
        except OSError as exc:
            logger.warning("Could not remove %s (%s): %s", path, why, exc)


def _undo_fetch(clone: Path, marks: frozenset[str]) -> None:
    """Remove from ``clone`` what a failed or killed fetch (:meth:`Git.update`) left: the files git
    writes before it renames them into place complete (``tmp_pack_*``, ``tmp_obj_*``, the dumb
    HTTP fetch's ``*.temp``), the LFS files not in ``marks`` (objects are named by their content:
    left, they would count as there next time and let an update past the cap piece by piece) and
    the locks not in ``marks`` (a killed git cannot remove its own; left, they fail every later
    update). Complete packs and loose objects stay: a ref may already name them."""
    added = [p for p in _lfs_and_lock_files(clone / ".git") if os.fspath(p) not in marks]
    _remove_files(_unfinished_objects(clone) + added, f"after a failed update of {clone}")


def _object_folders(objects: Path) -> list[Path]:
    """``objects/pack`` and the ``<2 hex digits>/`` folders of loose objects of an object store."""
    # Loose objects: none in a new clone over git's own protocol (git's "dumb" HTTP writes them).
    return [objects / "pack", *(Path(entry.path) for entry in _scan(objects)
                                if len(entry.name) == 2 and entry.is_dir(follow_symlinks=False))]


def _scan(folder: Path) -> list[os.DirEntry[str]]:
    try:
        return list(os.scandir(folder))
    except OSError:
        return []  # not made yet


def clean_scratch(scratch_root: Path) -> int:
    """Remove leftovers of killed clones of this host (their crawl's pid is gone); returns how many.

    A folder named with a process group (``<pid>-<group>-<random>``) is left alone while a process
    of that group runs: a git of the killed crawl (its lifeline killed too) could still write in it.
    A warning says so; a later crawl removes it. A folder of another host (``.<host tag>``) is never
    touched: a data dir on a network file system is shared by workers on several machines, and its
    pid says nothing here (a later crawl on that host removes it)."""
    removed = 0
    if not scratch_root.is_dir():
        return 0
    running: dict[int, bool] = {}  # a killed crawl leaves up to PTM_CLONE_CONCURRENCY folders
    for entry in scratch_root.iterdir():
        name, dot, host = entry.name.partition(".")
        if dot and host != HOST_TAG:
            continue
        pid, *rest = name.split("-")
        if not (pid.isascii() and pid.isdigit()) or (int(pid) <= _MAX_PID and pid_alive(int(pid))):
            continue
        group = _process_group(rest[0]) if len(rest) == 2 else None
        if group is not None and group not in running:
            running[group] = group_running(group)
        if group is not None and running[group]:
            logger.warning("Left %s in place: git processes of the killed crawl that built it still run "
                           "(process group %s); a later crawl removes it", entry, group)
            continue
        shutil.rmtree(entry, ignore_errors=True)
        removed += 1
    return removed


# Linux's largest pid_max: a number above it names no process (os.kill overflows on large ones).
_MAX_PID = 4_194_304


def _process_group(text: str) -> int | None:
    """The process group a scratch folder's name gives, if it could be a crawl's git group (0 and 1
    are the kernel's and init's, which always run)."""
    if not (text.isascii() and text.isdigit() and len(text) <= 7):
        return None
    number = int(text)
    return number if 2 <= number <= _MAX_PID else None


NOT_FOUND = "repository not found (HTTP 404)"
AUTH_REQUIRED = "authentication required (HTTP 401/403)"
RATE_LIMITED = "rate limited (HTTP 429)"
SERVER_ERROR = "server error (HTTP 5xx)"
STALLED = "transfer stalled or timed out"
BROKEN = "connection broken during transfer"
# Failures of the moment, not of the repository: the clone stage tries them again in the crawl
# (PTM_CLONE_RETRIES). Not TIMED_OUT (a clone that ran PTM_GIT_TIMEOUT would run it again), nor
# a 401/403/404, a missing branch, a size or disk limit, a refused URL: facts that stay.
TRANSIENT = frozenset({RATE_LIMITED, SERVER_ERROR, STALLED, BROKEN})
# The status git names ("The requested URL returned error: 503") says more than any words around
# it: a server's own text (git shows it as "remote: Not Found") may say anything.
_HTTP_STATUS = re.compile(r"returned error: ([1-5][0-9][0-9])\b")
_BY_STATUS = {401: AUTH_REQUIRED, 403: AUTH_REQUIRED, 404: NOT_FOUND, 410: NOT_FOUND,
              429: RATE_LIMITED}
_FAILURES = [
    # First: git quotes the branch ("Remote branch timeout-fix not found in upstream origin"). An
    # update that names none asks for the remote's HEAD, which an emptied repository lacks.
    (re.compile(r"Remote branch .* not found|couldn't find remote ref (?!HEAD$)", re.I | re.M), "branch not found"),
    (re.compile(r"couldn't find remote ref HEAD$", re.M), EMPTY),
    (re.compile(r"timed out|Operation too slow|transfer rate|Timeout", re.I), STALLED),
    # git-lfs, an object the LFS server does not have: "[<oid>] Object does not exist: [404] …".
    (re.compile(r"\[[0-9a-f]{64}\][^\n]*\[404\]"), "LFS object not found (HTTP 404)"),
    # git-lfs, asked for credentials (its LFS server's 401): "Git credentials for <url> not found".
    (re.compile(r"Git credentials for \S+ not found"), AUTH_REQUIRED),
    (re.compile(r"error: 404|not found|does not exist", re.I), NOT_FOUND),
    (re.compile(r"error: 401|error: 403|Authentication failed|could not read Username|terminal prompts disabled", re.I),
     AUTH_REQUIRED),
    (re.compile(r"transport '[^']*' not allowed", re.I), "transport not allowed"),
    (re.compile(r"No space left on device", re.I), "disk full"),
    (re.compile(r"Could not resolve host|Connection refused|Failed to connect", re.I), "host unreachable"),
    # curl's words for a connection dropped before or during an answer ("Empty reply from server",
    # "Recv failure: Connection reset by peer") are git's last line: the same reason.
    (re.compile(r"RPC failed|early EOF|unexpected disconnect|fetch-pack: invalid|the remote end hung up"
                r"|Empty reply from server|Connection reset|Recv failure", re.I), BROKEN),
]
# A URL in git's message ('https://host/owner/timeout-model/'): its words are a repository's name.
_URL_IN_MESSAGE = re.compile(r"[A-Za-z][A-Za-z0-9+.\-]*://[^\s']*")
_GITPYTHON_STDERR = "\n  stderr: '"


def _stderr(exc: GitCommandError) -> str:
    """git's stderr, its URLs (with any query string or credentials) as ``<url>``."""
    stderr = exc.stderr if isinstance(exc.stderr, str) else (exc.stderr or b"").decode("utf-8", "replace")
    # GitPython hands git's stderr over as "\n  stderr: '<stderr>'".
    if stderr.startswith(_GITPYTHON_STDERR) and stderr.endswith("'"):
        stderr = stderr[len(_GITPYTHON_STDERR):-1]
    return _URL_IN_MESSAGE.sub("<url>", stderr)


# The lines of git's stderr that say what went wrong (not "Cloning into…" or progress).
_SAID = re.compile(r"^(?:(?:fatal|error|remote|warning):|\[[0-9a-f]{64}\] |Failed to |batch response:)", re.I)


def git_said(exc: GitCommandError) -> str | None:
    """What git said of a failure, for the log: its last few error lines (``fatal:``, ``error:``, a
    server's ``remote:``, git-lfs's), URLs as ``<url>``, joined with `` | ``, at most 400 characters."""
    lines = [line.strip() for line in _stderr(exc).replace("\r", "\n").splitlines() if _SAID.match(line.strip())]
    return " | ".join(lines[-4:])[:400] or None


def git_failure(exc: GitCommandError) -> RepoError:
    """The :class:`RepoError` of a failed git command: its reason, what git said, and whether the
    failure is this machine's (:func:`local_failure`)."""
    error = RepoError(describe_failure(exc))
    error.detail = git_said(exc)
    error.local = local_failure(_stderr(exc))
    return error


GIT_NOT_FOUND = "git not found (install git, or put it on PATH)"


def git_not_found() -> RepoError:
    """git is not on PATH (any more): no clone can be made here."""
    error = RepoError(GIT_NOT_FOUND)
    error.local = True
    return error


# What git (or git-lfs, lower case) says of a failure of this machine: its file system read-only,
# full (of blocks or inodes), over quota, failing or not ours to write; too many files open; git
# installed without its https helper, or without git-lfs. Not a file name too long or a name the file
# system refuses (a repository's files), nor memory (a repository may ask for any amount). The words
# are the system's error, which git and git-lfs put last on a line ("<what>: <strerror>"): before
# it, a line may name the repository's files unquoted ("unable to create file <path>: …").
_LOCAL = re.compile(r":\s*(?:Read-only file system|No space left on device|Disk quota exceeded|Input/output error"
                    r"|Permission denied|Operation not permitted|Too many open files)\.?$", re.I)
# git's own lines for a program of its it cannot run (they quote what they name).
_LOCAL_PROGRAM = re.compile(r"^git: 'lfs' is not a git command|unable to find remote helper for 'https?'$")
# Lines a server wrote: git shows them as "remote: …"; git-lfs shows an LFS server's words (the JSON
# "message" of its answer) as "batch response: …", "LFS: …", "Fatal error: …" (a 5xx) or an
# object's error "[<oid>] <message>: [<HTTP status>] <message>". Quoted text: a path, a URL, a
# branch, named by the hub.
_REMOTE_LINE = re.compile(r"^\s*(?:remote:|(?:\[[0-9a-f]{64}\] )?(?:batch response:|LFS:|Fatal error:))"
                          r"|\[\d{3}\] ", re.I)
_QUOTED = re.compile(r"'[^'\n]*'|\"(?:[^\"\\\n]|\\.)*\"")


def local_failure(stderr: str) -> bool:
    """Whether git's ``stderr`` (:func:`_stderr`) tells of a failure of this machine, in git's own
    words: the lines a server wrote, the text git quotes (paths, URLs: the hub's names) and what
    comes before the system's error on a line (unquoted paths) aside."""
    for line in stderr.replace("\r", "\n").splitlines():
        line = line.strip()
        if _REMOTE_LINE.search(line):
            continue
        if _LOCAL_PROGRAM.search(line) or _LOCAL.search(_QUOTED.sub("''", line)):
            return True
    return False


def describe_failure(exc: GitCommandError) -> str:
    """A short reason for a failed git command, without URLs' query strings or credentials."""
    if exc.status in (-9, "-9") or "kill" in str(exc.status).lower():
        return TIMED_OUT
    text = _stderr(exc)
    for pattern, reason in _FAILURES[:2]:
        if pattern.search(text):
            return reason
    status = _HTTP_STATUS.search(text)
    if status:
        code = int(status.group(1))
        if code in _BY_STATUS:
            return _BY_STATUS[code]
        if code >= 500:
            return SERVER_ERROR
    for pattern, reason in _FAILURES[2:]:
        if pattern.search(text):
            return reason
    lines = [ln.strip() for ln in text.splitlines() if ln.strip()]
    # git's message is its last "fatal:" or "error:" line; advice may follow it ("remove the file
    # manually to continue.").
    said = [line for line in lines if _GIT_MESSAGE.match(line)]
    last = said[-1] if said else lines[-1] if lines else f"git exited with status {exc.status}"
    return last[:200]


_GIT_MESSAGE = re.compile(r"(?:fatal|error): ")
