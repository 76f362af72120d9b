"""A disk that fills up, for tests, without filling one: :class:`FullDisk` makes ``os.write`` to
files under one folder store at most ``budget`` more bytes (the write that crosses it is cut short,
as the kernel does when the disk fills mid-write), then fail with ENOSPC.

``python -m tests.full_disk crawl <spider> …`` is ``python -m scrapy.cmdline crawl <spider> …`` with
such a disk: the folder is ``TEST_FULL_DISK_DIR``, the budget ``TEST_FULL_DISK_BYTES``. A write it
cuts short is said on stderr (``full disk: cut a write short …``), so a test knows a line was torn.

:func:`in_a_small_disk` runs a command with a real small disk (a tmpfs in a user and mount
namespace of its own), for what ``os.write`` does not reach: Python's buffered files.
"""

from __future__ import annotations

import errno
import os
import shutil
import subprocess
import sys
import threading
from pathlib import Path

from tests.crawl import ROOT

_real_write = os.write


class FullDisk:
    def __init__(self, folder: str | os.PathLike[str], budget: int):
        self.folder = os.path.realpath(folder) + os.sep
        self.budget = budget
        self.cut = 0  # writes cut short
        self.refused = 0  # writes refused whole
        self.lock = threading.Lock()

    def write(self, fd: int, data) -> int:
        try:
            path = os.readlink(f"/proc/self/fd/{fd}")
        except OSError:
            path = ""
        if not path.startswith(self.folder):
            return _real_write(fd, data)
        with self.lock:
            if self.budget <= 0:
                self.refused += 1
                raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))
            written = _real_write(fd, bytes(memoryview(data)[: self.budget]))
            self.budget -= written
            if written < len(data):
                self.cut += 1
                sys.stderr.write(f"full disk: cut a write short ({written} of {len(data)} bytes) to {path}\n")
            return written

    def install(self) -> FullDisk:
        os.write = self.write
        return self

    @staticmethod
    def uninstall() -> None:
        os.write = _real_write


# -- a real small disk: what FullDisk cannot reach (Python's buffered files write with the C write()) --

def in_a_small_disk(mount: Path, size: str, saved: Path, cmd: list[str]) -> subprocess.CompletedProcess:
    """Run ``cmd`` with a tmpfs of ``size`` mounted at ``mount`` (its contents from ``saved``, and
    copied back there after), in a user and mount namespace of its own (``unshare``)."""
    script = ('set -e; mount -t tmpfs -o size="$1" tmpfs "$2"; cp -a "$3/." "$2/"; shift 3; '
              'set +e; "$@"; status=$?; set -e; rm -rf "$SAVED"; mkdir "$SAVED"; '
              'cp -a "$MOUNT/." "$SAVED/"; exit $status')
    env = {**os.environ, "SAVED": str(saved), "MOUNT": str(mount)}
    return subprocess.run(["unshare", "--user", "--map-root-user", "--mount", "sh", "-c", script, "sh",
                           size, str(mount), str(saved), *cmd],
                          cwd=ROOT, env=env, capture_output=True, text=True, timeout=600)


def small_disks_available() -> str | None:
    if not shutil.which("unshare"):
        return "no unshare(1)"
    probe = subprocess.run(["unshare", "--user", "--map-root-user", "--mount", "sh", "-c",
                            "mount -t tmpfs -o size=4k tmpfs /mnt || mount -t tmpfs -o size=4k tmpfs /tmp"],
                           capture_output=True, text=True)
    return None if probe.returncode == 0 else f"cannot mount a tmpfs in a user namespace: {probe.stderr.strip()}"


def small_disk(tmp_path: Path) -> tuple[Path, Path]:
    """``(disk, saved)`` folders for :func:`in_a_small_disk`; the test is skipped where no small
    disk can be mounted (failed under ``CI=true``: tests/services.py)."""
    from tests.services import missing

    reason = small_disks_available()
    if reason:
        missing(reason)
    disk, saved = tmp_path / "disk", tmp_path / "saved"
    disk.mkdir()
    saved.mkdir()
    return disk, saved

def main() -> None:
    FullDisk(os.environ["TEST_FULL_DISK_DIR"], int(os.environ["TEST_FULL_DISK_BYTES"])).install()
    from scrapy.cmdline import execute

    execute(["scrapy", *sys.argv[1:]])


if __name__ == "__main__":
    main()
