"""Liveness of other processes and process groups (leftovers of dead writers may be removed; live
ones' stay), and killing one command with what it started (``kill_tree``)."""

from __future__ import annotations

import hashlib
import os
import signal
import socket
import subprocess


def pid_namespace() -> str:
    """This process's pid namespace (a container has its own), ``""`` where ``/proc`` cannot tell."""
    try:
        return os.readlink("/proc/self/ns/pid").removeprefix("pid:[").removesuffix("]")
    except OSError:
        return ""


def boot_id() -> str:
    """This boot of this machine's kernel (containers share their host's), ``""`` where ``/proc``
    cannot tell. A pid namespace's number says which machine it is on no more than a host name
    does: every machine's first one is ``pid:[4026531836]``."""
    try:
        with open("/proc/sys/kernel/random/boot_id", "rb") as f:
            return f.read().strip().decode("ascii")
    except (OSError, UnicodeDecodeError):
        return ""


# Where this process's pids mean something, in the names of files and folders a process leaves
# while it writes (temp files, scratch clones): a pid says whether the writer is gone only on the
# machine, and in the pid namespace, that ran it; a data dir on a network file system is shared by
# workers on several machines, and one on a host by containers (with --network host they share the
# host's name too). A digest of host name and pid namespace: fixed length, neither dot nor dash.
HOST_TAG = hashlib.sha256(f"{socket.gethostname()}\0{pid_namespace()}".encode("utf-8", "surrogateescape")
                          ).hexdigest()[:12]


def pid_alive(pid: int) -> bool:
    """Whether a process with this pid exists (leftovers of dead writers may be removed)."""
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def group_running(pgid: int) -> bool:
    """Whether a process of process group ``pgid`` runs. Zombies do not count (they write nothing,
    and a container's init may never reap them); where ``/proc`` cannot be read, any member does."""
    try:
        os.killpg(pgid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        pass
    try:
        pids = [name for name in os.listdir("/proc") if name.isdigit()]
    except OSError:
        return True
    for pid in pids:
        fields = _stat_fields(pid)  # None: gone meanwhile
        if fields and len(fields) > 2 and fields[2] == b"%d" % pgid and fields[0] not in (b"Z", b"X"):
            return True
    return False


def _stat_fields(pid: int | str) -> list[bytes] | None:
    """The fields of ``/proc/<pid>/stat`` after the command: state, ppid, pgrp, …; None if the
    process is gone (or ``/proc`` cannot be read). The line is ``<pid> (<command>) <state> …``, and
    the command may hold ")" or spaces."""
    try:
        with open(f"/proc/{pid}/stat", "rb") as f:
            return f.read().rsplit(b")", 1)[1].split()
    except (OSError, IndexError):
        return None


def kill_tree(pid: int) -> list[int]:
    """SIGKILL process ``pid`` and every process below it, and no other: not the rest of their
    process group (every git command of a crawl shares one, ``gitrepo._Lifeline``), nor a process
    that took the pid of one that ended. ``pid`` must be a child of this process not yet waited for.
    Returns the pids killed, ``pid`` first.

    Each process is stopped (SIGSTOP) before its children are looked for, so none starts another,
    nor reaps one (its pid free for another process), before all are killed. A child found in the
    process table is taken only if, once a pidfd holds it, the table still names its parent (it may
    have ended and its pid gone to another process meanwhile), and is signalled through that pidfd
    (by pid where pidfds are not available: Linux before 5.3, other systems). They are killed
    children first: a parent killed first would hand them to init, which reaps one that already
    ended, and its pid could be another process's by the time it is signalled. Whatever happens,
    what was stopped is killed (never left stopped)."""
    taken: dict[int, int | None] = {}  # pid -> its pidfd (None: signalled by pid), in the order found
    try:
        found = [pid] if _take(taken, pid, None) and _send(taken, pid, signal.SIGSTOP) else []
        while found:  # until a look at the process table finds no new child of a stopped process
            found = []
            for child, parent in _parent_pids().items():
                if parent in taken and child not in taken and _take(taken, child, parent):
                    if _send(taken, child, signal.SIGSTOP):
                        found.append(child)
    finally:
        for p in reversed(list(taken)):  # below before above
            _send(taken, p, signal.SIGKILL)
        for fd in taken.values():
            if fd is not None:
                os.close(fd)
    return list(taken)


def _take(taken: dict[int, int | None], pid: int, parent: int | None) -> bool:
    """Hold ``pid`` (a pidfd where possible) if it is still a child of ``parent`` (None: no check)."""
    fd: int | None = None
    try:
        fd = os.pidfd_open(pid)
    except ProcessLookupError:
        return False
    except (AttributeError, OSError):
        fd = None  # no pidfds here: by pid
    if parent is not None and _parent_of(pid) not in (parent, _UNKNOWN):
        if fd is not None:
            os.close(fd)
        return False
    taken[pid] = fd
    return True


def _send(taken: dict[int, int | None], pid: int, sig: int) -> bool:
    """Send ``sig`` to a process held by :func:`_take`; False (and let go) if it is gone."""
    fd = taken[pid]
    try:
        if fd is None:
            os.kill(pid, sig)
        else:
            signal.pidfd_send_signal(fd, sig)
    except ProcessLookupError:
        del taken[pid]
        if fd is not None:
            os.close(fd)
        return False
    return True


_UNKNOWN = -1  # _parent_of where /proc cannot tell


def _parent_of(pid: int | str) -> int | None:
    """The parent pid ``/proc`` gives for ``pid``: None if it is gone, ``_UNKNOWN`` without ``/proc``."""
    fields = _stat_fields(pid)
    if fields is None:
        return None if os.path.isdir("/proc/self") else _UNKNOWN
    try:
        return int(fields[1])
    except (ValueError, IndexError):
        return None


def _parent_pids() -> dict[int, int]:
    """pid -> parent pid of every process we can see (``/proc``, else ``ps``)."""
    parents: dict[int, int] = {}
    try:
        names = [name for name in os.listdir("/proc") if name.isdigit()]
    except OSError:
        out = subprocess.run(["ps", "-A", "-o", "pid=", "-o", "ppid="], capture_output=True, text=True).stdout
        for line in out.splitlines():
            fields = line.split()
            if len(fields) == 2 and all(f.isdigit() for f in fields):
                parents[int(fields[0])] = int(fields[1])
        return parents
    for name in names:
        parent = _parent_of(name)
        if parent is not None and parent != _UNKNOWN:
            parents[int(name)] = parent
    return parents
