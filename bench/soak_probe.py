"""The crash soak's kill point (``bench/crash_soak.py``): an extension that SIGKILLs the crawl (its
process group) at the N-th rename or replace into the data dir or the JOBDIR, before or after it
(``-s SOAK_KILL_AT=N:before`` / ``N:after``; ``0``: never), each one listed in ``SOAK_TRACE``."""
import os
import signal
import threading

from scrapy import signals


class KillAtNth:
    def __init__(self, crawler):
        spec = crawler.settings.get("SOAK_KILL_AT", "")
        n, _, when = spec.partition(":")
        self.n, self.when = int(n), when or "before"
        self.roots = tuple(os.path.realpath(d) for d in (crawler.settings.get("PTM_DATA_DIR"),
                                                          crawler.settings.get("JOBDIR")) if d)
        self.roots = tuple(r + os.sep for r in self.roots)
        self.count = 0
        self.lock = threading.Lock()
        self.log = crawler.settings.get("SOAK_TRACE")

    @classmethod
    def from_crawler(cls, crawler):
        probe = cls(crawler)
        crawler.signals.connect(probe.opened, signal=signals.engine_started)
        probe.opened()
        return probe

    def opened(self, *a, **k):
        if getattr(os, "_soak_patched", False):
            return
        os._soak_patched = True
        for name in ("replace", "rename"):
            real = getattr(os, name)
            setattr(os, name, self._wrap(real, name))

    def _wrap(self, real, name):
        def fn(src, dst, *args, **kwargs):
            mine = os.path.realpath(os.fspath(dst)).startswith(self.roots)
            hit = False
            if mine:
                with self.lock:
                    self.count += 1
                    hit = self.count == self.n
                    if self.log:
                        with open(self.log, "a") as f:
                            f.write(f"{self.count} {name} {os.fspath(src)} -> {os.fspath(dst)}\n")
            if hit and self.when == "before":
                os.killpg(os.getpgid(0), signal.SIGKILL)
            result = real(src, dst, *args, **kwargs)
            if hit:
                os.killpg(os.getpgid(0), signal.SIGKILL)
            return result
        return fn
