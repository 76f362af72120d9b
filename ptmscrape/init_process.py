"""A crawl started as PID 1 (a container without an init: ``docker run`` without ``--init``, a
Kubernetes pod's command) forks: the crawl goes on in the child, and PID 1 stays behind as its init.

PID 1 adopts every process whose parent dies. The clone stage kills git commands (over
``PTM_CLONE_MAX_GB``, out of disk space, at a forced stop), and what each had started
(``git-remote-https``, ``index-pack``) is then adopted; a crawl as PID 1 never waits for those, so
each stays a zombie, holding its process id, until the crawl ends: ~1.5 per killed clone (49 for
20 in ``tests/test_pid1.py``). Where the container has a process limit (``pids.max``), a long crawl
can reach it, after which no git starts. The init here waits for every process it adopts, passes on the signals sent
to it (``docker stop``'s SIGTERM, ``kill -INT``) to the crawl, and exits with the crawl's status.
Signals from a terminal (Ctrl-C) are not passed on: they reach the crawl itself, which is in the
terminal's process group too, and one Ctrl-C must not become two (Scrapy's forced stop).
"""

from __future__ import annotations

import os
import signal
import sys

PASSED_ON = (signal.SIGTERM, signal.SIGINT, signal.SIGHUP, signal.SIGQUIT, signal.SIGUSR1, signal.SIGUSR2)
SI_KERNEL = 0x80  # si_code of a signal the kernel sent: a terminal's Ctrl-C, Ctrl-\ or hang-up


def become_init_if_pid_1() -> None:
    """As PID 1: fork; the child returns (and crawls), the parent supervises it and never returns."""
    if os.getpid() != 1:
        return
    watched = {*PASSED_ON, signal.SIGCHLD}
    # Blocked before the fork: a signal arriving in between waits for the parent's sigwaitinfo.
    mask = signal.pthread_sigmask(signal.SIG_BLOCK, watched)
    sys.stdout.flush()
    sys.stderr.flush()
    crawl = os.fork()
    if crawl == 0:
        signal.pthread_sigmask(signal.SIG_SETMASK, mask)
        return
    os._exit(supervise(crawl, watched))  # nothing of the crawl's (atexit, buffers) runs twice


def supervise(crawl: int, watched: set[signal.Signals]) -> int:
    """Wait for every child, pass on signals to ``crawl``; the crawl's exit status once it ends."""
    while True:
        info = signal.sigwaitinfo(watched)
        if info.si_signo == signal.SIGCHLD:
            status = reap(crawl)
            if status is not None:
                return status
        elif info.si_code != SI_KERNEL:
            try:
                os.kill(crawl, info.si_signo)
            except ProcessLookupError:
                pass


def reap(crawl: int) -> int | None:
    """Wait for every child that has ended (one SIGCHLD may stand for several); the crawl's exit
    status (128 + signal if a signal ended it) if it is among them."""
    status = None
    while True:
        try:
            pid, wait_status = os.waitpid(-1, os.WNOHANG)
        except ChildProcessError:
            return 1 if status is None else status  # no child left, the crawl's status unseen
        if pid == 0:
            return status
        if pid == crawl:
            code = os.waitstatus_to_exitcode(wait_status)
            status = code if code >= 0 else 128 - code
