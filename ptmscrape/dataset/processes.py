"""Liveness of other processes and process groups (leftovers of dead writers may be removed; live
ones' stay), and killing one command with what it started (``kill_tree``)."""

from __future__ import annotations

import os
import signal
import subprocess


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
        try:
            with open(f"/proc/{pid}/stat", "rb") as f:
                # "<pid> (<command>) <state> <ppid> <pgrp> ...": the command may hold ")" or spaces.
                state, _ppid, pgrp = f.read().rsplit(b")", 1)[1].split()[:3]
        except (OSError, ValueError):
            continue  # gone meanwhile
        if int(pgrp) == pgid and state not in (b"Z", b"X"):
            return True
    return False


def kill_tree(pid: int) -> list[int]:
    """SIGKILL process ``pid`` and every process below it, and no other: not the rest of their
    process group (every git command of a crawl shares one, ``gitrepo._Lifeline``). Each one is
    stopped (SIGSTOP) before its children are looked for, so none starts another, nor is reaped
    (its pid free for another process), before all are killed. ``pid`` must be a child of this
    process not yet waited for. Returns the pids killed."""
    stopped: list[int] = []
    found = [pid]
    while found:
        for p in found:
            try:
                os.kill(p, signal.SIGSTOP)
            except ProcessLookupError:
                continue
            stopped.append(p)
        below = set(stopped)
        found = [child for child, parent in _parent_pids().items() if parent in below and child not in below]
    for p in stopped:
        try:
            os.kill(p, signal.SIGKILL)
        except ProcessLookupError:
            pass
    return stopped


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
        try:
            with open(f"/proc/{name}/stat", "rb") as f:
                # "<pid> (<command>) <state> <ppid> ...": the command may hold ")" or spaces.
                parents[int(name)] = int(f.read().rsplit(b")", 1)[1].split()[1])
        except (OSError, ValueError, IndexError):
            continue  # gone meanwhile
    return parents
