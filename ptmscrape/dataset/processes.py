"""Liveness of other processes and process groups (leftovers of dead writers may be removed; live
ones' stay)."""

from __future__ import annotations

import os


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
