"""``scrapy crawl`` with an exit status that tells what happened (README "Exit status").

Scrapy's own command, plus:

* before anything starts, the spider's name and arguments, the project's settings and the JOBDIR
  are checked (``HubSpider.check_input``, ``ptmscrape/checks.py``, ``jobdir.check_free``); a
  problem is one line on stderr and exit status 2, with no traceback;
* after the crawl, the exit status is the verdict of ``ptmscrape.extensions.CrawlVerdict``
  (``ptmscrape/verdict.py``): 0 when every listed page was read, 1 otherwise;
* after a forced stop (Ctrl-C twice), the git commands still running are killed, not waited for,
  and the verdict (exit status 1) is logged and written to ``PTM_STATS_FILE`` here: no extension did;
* started as PID 1 (a container without an init), it forks first and stays as the crawl's init
  (``ptmscrape/init_process.py``).

Scrapyd runs jobs through ``scrapy.cmdline.execute()`` (``scrapyd.runner``), so its jobs use this
command too: the same checks, the verdict as the last line of the job's log, and the exit status
in Scrapyd's own log ("Process died: exitstatus=1"); a job whose deployed egg is shadowed by
another copy of the project says so (``ptmscrape/scrapyd_egg.py``).
"""

from __future__ import annotations

import asyncio
import logging
import time
from pathlib import Path
from typing import NoReturn

from scrapy.commands.crawl import Command as ScrapyCrawlCommand
from scrapy.spiderloader import get_spider_loader
from twisted.internet.defer import Deferred

import ptmscrape.settings as project_settings
from ptmscrape import commands, jobdir
from ptmscrape.checks import (
    BadInput,
    check_data_dir,
    check_feeds,
    check_git,
    check_git_lfs,
    check_git_protocols,
    check_hub_folders,
    check_hub_urls,
    check_redis_url,
    check_setting_names,
    check_splash_url,
    check_typed_settings,
)
from ptmscrape.extensions import StatsFile, forget_report, write_report
from ptmscrape.gc_tuning import freeze_before_exit
from ptmscrape.gitrepo import end_git_commands
from ptmscrape.init_process import become_init_if_pid_1
from ptmscrape.scrapyd_egg import shadowed_egg
from ptmscrape.stats import VERDICT_EXIT_STATUS, VERDICT_REASON
from ptmscrape.verdict import BAD_INPUT, FAILED, Verdict

logger = logging.getLogger(__name__)


class Command(ScrapyCrawlCommand):
    def process_options(self, args, opts) -> None:
        super().process_options(args, opts)
        assert self.settings is not None  # set by scrapy.cmdline before any command method runs
        if len(args) != 1:
            return  # Scrapy's usage error, from run()
        forget_report(self.settings.get("PTM_STATS_FILE"))
        loader = get_spider_loader(self.settings)
        try:
            spidercls = loader.load(args[0])
        except KeyError:
            fail(args[0], BadInput(f"no spider named {args[0]!r} (spiders: {', '.join(sorted(loader.list()))})"),
                 self.settings)
        try:
            preflight(spidercls, self.settings, opts.spargs)
        except BadInput as exc:
            fail(args[0], exc, self.settings)
        become_init_if_pid_1()  # before Scrapy starts anything: the crawl is not PID 1

    def run(self, args, opts) -> None:
        if len(args) != 1:
            return super().run(args, opts)
        assert self.settings is not None and self.crawler_process is not None  # set by scrapy.cmdline
        if shadowed := shadowed_egg():  # logging is set up by now: the line goes to Scrapyd's job log
            logger.warning("This job runs ptmscrape from %s, not from the egg Scrapyd deployed (%s): a copy "
                           "of the project in Scrapyd's working directory, or installed in its Python, comes "
                           "first on sys.path, so a deployed version changes nothing. Start scrapyd in a "
                           "folder without the project (docs/operations.md, Scrapyd).", *shadowed)
        crawler = self._create_crawler(args[0])
        errors: list[BaseException] = []

        def note_error(task: asyncio.Future[None]) -> None:
            if not task.cancelled() and (exc := task.exception()) is not None:
                errors.append(exc)

        started = self.crawler_process.crawl(crawler, **opts.spargs)
        if isinstance(started, asyncio.Future):
            started.add_done_callback(note_error)
        else:
            assert isinstance(started, Deferred)  # CrawlerProcess; AsyncCrawlerProcess gives a Task
            started.addErrback(lambda failure: errors.append(failure.value))
        self.crawler_process.start()
        # After a normal end no git runs (the clone stage waited for each); after a forced stop the
        # clones in flight are killed here, or the process would wait for them before exiting.
        end_git_commands()
        freeze_before_exit()
        if errors:
            if isinstance(errors[0], BadInput):
                fail(args[0], errors[0], self.settings)
            logger.error("The crawl could not start", exc_info=errors[0])
            self.exitcode = FAILED
        elif self.crawler_process.bootstrap_failed:
            self.exitcode = FAILED
        elif crawler.stats.get_value(VERDICT_EXIT_STATUS) is None:
            self.exitcode = stopped_by_force(crawler)
        else:
            self.exitcode = int(crawler.stats.get_value(VERDICT_EXIT_STATUS))


FORCED = ("the crawl was stopped by force before it closed (a second Ctrl-C or SIGTERM, or Scrapyd's "
          "cancel.json twice): the requests and clones in flight were dropped")


def stopped_by_force(crawler) -> int:
    """A crawl whose engine never stopped (Scrapy's forced stop ends the reactor before the spider
    closes): no extension gave a verdict or wrote ``PTM_STATS_FILE``, so the log ended at Scrapy's
    "forcing unclean shutdown" and a stats file, if any, was the previous run's. Both are done here."""
    crawler.stats.set_value(VERDICT_EXIT_STATUS, FAILED)
    crawler.stats.set_value(VERDICT_REASON, FORCED)
    for extension in getattr(crawler.extensions, "middlewares", ()):
        if isinstance(extension, StatsFile):
            extension.reason = "shutdown (forced)"
            extension.write()
    result = Verdict(FAILED, FORCED)
    logger.log(result.log_level(crawler.settings), "%s", result.line)
    return FAILED


def preflight(spidercls, settings, arguments: dict) -> None:
    """Everything checkable before the crawl starts; raises :class:`BadInput`."""
    defaults = {name: getattr(project_settings, name) for name in dir(project_settings)
                if name.startswith("PTM_")}
    check_setting_names(list(settings), defaults)
    getters = {bool: settings.getbool, int: settings.getint, float: settings.getfloat}
    check_typed_settings(defaults, lambda name, kind: getters[kind](name))
    check_input = getattr(spidercls, "check_input", None)
    if check_input is not None:
        check_input(settings, arguments)
    check_data_dir(settings.get("PTM_DATA_DIR"))
    check_hub_folders(settings.get("PTM_DATA_DIR"), spidercls.name)
    # A hub without git repositories clones nothing, cloning on or off.
    clone = settings.getbool("PTM_CLONE") and getattr(spidercls, "has_repositories", True)
    check_git(clone, settings.get("PTM_GIT_ALLOW_PROTOCOL"))
    check_git_lfs(clone, settings.getbool("PTM_CLONE_LFS"))
    check_git_protocols(clone, settings.get("PTM_GIT_ALLOW_PROTOCOL"))
    check_redis_url(settings.get("PTM_REDIS_URL"))
    check_hub_urls({name: settings.get(name) for name in defaults})
    check_splash_url(settings.get("SPLASH_URL"))
    check_feeds(settings.getdict("FEEDS"))
    jobdir.check_free(settings)
    jobdir.check_data_dir(settings)


def fail(spider: str, exc: BadInput, settings=None) -> NoReturn:
    """One line on stderr, and in ``LOG_FILE`` if there is one (Scrapyd's job log), the verdict in
    ``PTM_STATS_FILE`` if set (where a Scrapyd user reads a job's exit status), then exit 2."""
    log_file = settings.get("LOG_FILE") if settings is not None else None
    stats_file = settings.get("PTM_STATS_FILE") if settings is not None else None
    if stats_file:
        try:
            write_report(Path(stats_file), {VERDICT_EXIT_STATUS: BAD_INPUT, VERDICT_REASON: str(exc)})
        except OSError:
            pass  # said nowhere else either: the one line below is the verdict
    line = f"scrapy crawl {spider}: error: {exc}"
    if log_file:
        stamp = time.strftime("%Y-%m-%d %H:%M:%S")
        try:
            with open(log_file, "a", encoding="utf-8") as log:
                log.write(f"{stamp} [{__name__}] ERROR: {line}\n"
                          f"{stamp} [{__name__}] ERROR: Crawl verdict: exit status {BAD_INPUT}: {exc}\n")
        except OSError:
            pass
    commands.fail(f"crawl {spider}", exc)
