"""The crawl's verdict (ptmscrape/verdict.py) and the pre-crawl checks (ptmscrape/checks.py): plain
functions of stats, arguments and paths, no Scrapy. tests/test_exit_status.py runs them for real."""

from __future__ import annotations

import re
import shutil

import pytest

from ptmscrape.checks import (
    BadInput,
    check_arguments,
    check_data_dir,
    check_redis_url,
    check_setting_names,
    check_typed_settings,
    positive_int,
)
from ptmscrape.verdict import FAILED_PAGES, NOTHING_STORED, verdict
from spiders.huggingface import HuggingfaceSpider
from spiders.modelhub import ModelhubSpider
from spiders.modelzoo import ModelzooSpider
from tests.helpers import git_without_helpers

GOOD = {"finish_reason": "finished", "ptm/store/records": 12}


def test_a_complete_crawl_is_0():
    result = verdict(GOOD)
    assert (result.status, result.reason) == (0, "every listed page was read")
    assert result.line == "Crawl verdict: exit status 0: every listed page was read"
    assert verdict({**GOOD, "finish_reason": "closespider_itemcount"}).status == 0
    # Clone failures are in the records (CloneStatus), not a failed crawl.
    assert verdict({**GOOD, "ptm/clone/failed": 3}).status == 0


def test_failed_pages_are_1_with_their_kinds_and_finish_reason():
    stats = {**GOOD, "ptm/pages/failed": 3, "ptm/pages/failed/HTTP 503": 2,
             "ptm/pages/failed/malformed JSON": 1}
    result = verdict(stats)
    assert result.status == 1
    assert result.reason == "3 pages failed (HTTP 503: 2, malformed JSON: 1)"
    assert result.finish_reason == FAILED_PAGES
    while_running = {k: v for k, v in stats.items() if k != "finish_reason"}
    assert verdict(while_running).finish_reason == FAILED_PAGES


def test_not_found_is_told_apart_from_failed():
    stats = {**GOOD, "ptm/pages/failed": 2, "ptm/pages/not_found": 1, "ptm/pages/failed/HTTP 404": 1,
             "ptm/pages/failed/TimeoutError": 1}
    assert verdict(stats).reason == "1 page not found (HTTP 404); 1 page failed (TimeoutError: 1)"
    only_404 = {**GOOD, "ptm/pages/failed": 1, "ptm/pages/not_found": 1, "ptm/pages/failed/HTTP 404": 1}
    assert verdict(only_404).reason == "1 page not found (HTTP 404)"


def test_lost_history_calls_are_1_and_refused_ones_are_not():
    refused = {**GOOD, "ptm/history/failed": 4, "ptm/history/failed/gated, private or missing (HTTP 401)": 4}
    assert verdict(refused).status == 0
    lost = {**refused, "ptm/history/failed": 7, "ptm/history/lost": 3,
            "ptm/history/lost/failed after retries (HTTP 503)": 2, "ptm/history/lost/malformed JSON": 1}
    result = verdict(lost)
    assert result.status == 1
    assert result.reason == "3 history calls lost (failed after retries (HTTP 503): 2, malformed JSON: 1)"
    assert result.finish_reason == "finished"  # the listing is whole: the removed-models report runs


def test_nothing_stored_is_1_unless_none_was_expected():
    empty = {"finish_reason": "finished"}
    assert (verdict(empty).status, verdict(empty).reason, verdict(empty).finish_reason) == (
        1, "nothing was stored: the hub listed no model", NOTHING_STORED)
    scraped = {**empty, "item_scraped_count": 3}  # items no store stage took (Scrapy alone: bench/)
    assert verdict(scraped).reason == "nothing was stored"
    dropped = {**empty, "item_dropped_count": 3, "ptm/map/failed": 1, "ptm/validate/invalid": 2}
    assert verdict(dropped).reason == "nothing was stored: all 3 models listed were dropped as bad hub data"
    assert verdict({**dropped, "item_dropped_count": 4}).reason == "nothing was stored"  # other drops too
    assert verdict({**empty, "ptm/pages/failed": 1}).reason == "1 page failed; nothing was stored"
    assert verdict(empty, expect_records=False).status == 0
    # A resumed job whose models were all stored by the run that was killed stored them all.
    assert verdict({**empty, "ptm/dedupe/stored_before_resume": 5}).status == 0
    # A resumed job with nothing left to do: its earlier runs stored the models.
    assert verdict({**empty, "ptm/dedupe/stored_by_earlier_runs": 5}).status == 0
    # A distributed crawl's worker that got only models a dead worker had stored.
    assert verdict({**empty, "ptm/dedupe/stored_by_dead_worker": 2}).status == 0


def test_failed_monitors_callback_errors_and_stops_are_1():
    monitors = verdict({**GOOD, "ptm/monitors/failed": 1, "ptm/monitors/failed/Minimum items": 1})
    assert (monitors.status, monitors.reason) == (1, "1 monitor failed (Minimum items)")
    assert monitors.finish_reason == "finished"  # monitors run after the spider closed
    errors = verdict({**GOOD, "spider_exceptions_count": 2})
    assert (errors.status, errors.finish_reason) == (1, FAILED_PAGES)
    stopped = verdict({**GOOD, "finish_reason": "shutdown", "ptm/pages/failed": 1})
    assert stopped.status == 1 and stopped.finish_reason == "shutdown"
    assert stopped.reason.startswith("the crawl stopped before the end (finish reason shutdown)")


def test_models_an_item_stage_failed_on_are_1_with_the_errors():
    stats = {**GOOD, "ptm/items/failed": 3, "ptm/items/failed/ValueError": 2, "ptm/items/failed/OSError": 1}
    result = verdict(stats)
    assert result.status == 1
    assert result.reason == "3 models lost to an error in an item stage (OSError: 1, ValueError: 2)"
    assert result.finish_reason == "finished"  # the listing is whole: the removed-models report runs


def test_spider_arguments_are_the_init_keywords():
    check_arguments(HuggingfaceSpider, {"limit": "1", "sort": "likes", "_job": "x", "_version": "2"})
    check_arguments(ModelzooSpider, {"render": "api", "models": "a"})
    with pytest.raises(BadInput, match=r"unknown spider argument -a limt: huggingface accepts "
                                       r"author, history, limit, models, search, sort"):
        check_arguments(HuggingfaceSpider, {"limt": "5"})
    with pytest.raises(BadInput, match="modelhub accepts limit$"):
        check_arguments(ModelhubSpider, {"sort": "likes"})
    with pytest.raises(BadInput, match="limt"):  # the spider refuses it too, not only the command
        HuggingfaceSpider(limt="5")


@pytest.mark.parametrize("value, message", [("abc", "whole number"), ("1.5", "whole number"),
                                            ("-1", "negative"), ("1e3", "whole number")])
def test_limit_must_be_a_whole_number(value, message):
    with pytest.raises(BadInput, match=message):
        positive_int(value, "limit")


def test_limit_values_that_are_fine():
    assert [positive_int(v, "limit") for v in (None, "", "0", " 7 ", 3)] == [None, None, 0, 7, 3]


def test_data_dir(tmp_path):
    check_data_dir(tmp_path)
    check_data_dir(tmp_path / "new" / "tree")  # created by the crawl
    (tmp_path / "file").write_text("x")
    with pytest.raises(BadInput, match="is not a directory"):
        check_data_dir(tmp_path / "file")
    with pytest.raises(BadInput, match="cannot be created: .*file is not a directory"):
        check_data_dir(tmp_path / "file" / "data")
    with pytest.raises(BadInput, match="PTM_DATA_DIR is empty"):
        check_data_dir("")


@pytest.mark.parametrize("url", ["notaurl", "127.0.0.1:6379", "http://host/0", "redis//:pw@host"])
def test_a_redis_url_must_be_one(url):
    with pytest.raises(BadInput, match="-s PTM_REDIS_URL=.* is not a Redis URL"):
        check_redis_url(url)


def test_a_refused_redis_url_shows_no_part_of_its_password():
    with pytest.raises(BadInput) as refused:
        check_redis_url("http://:p@zz/w0rd@127.0.0.1:6379/0")
    assert "zz" not in str(refused.value) and "w0rd" not in str(refused.value)
    assert "http://***@127.0.0.1:6379/0" in str(refused.value)


@pytest.mark.parametrize("url", ["", None, "redis://127.0.0.1:6379/0", "rediss://:pw@h:1/2", "unix:///tmp/r.sock",
                                 "REDIS://host"])
def test_redis_urls_that_are_fine(url):
    check_redis_url(url)


def test_typed_settings():
    values = {"PTM_A": "3", "PTM_B": "many", "PTM_C": "yes?"}

    def get(name, kind):
        if kind is bool and values[name] not in ("0", "1", "True", "False"):
            raise ValueError(values[name])
        return kind(values[name])

    check_typed_settings({"PTM_A": 1, "PTM_S": "text"}, get)
    with pytest.raises(BadInput, match="-s PTM_B= must be a whole number"):
        check_typed_settings({"PTM_B": 1}, get)
    with pytest.raises(BadInput, match=r"-s PTM_C= must be true/false"):
        check_typed_settings({"PTM_C": True}, get)


@pytest.mark.parametrize("value", [0, -5])
def test_a_page_size_must_be_one_or_more(value):
    with pytest.raises(BadInput, match=f"PTM_HUGGINGFACE_PAGE_SIZE= must be 1 or more, got {value}"):
        check_typed_settings({"PTM_HUGGINGFACE_PAGE_SIZE": 1000}, lambda name, kind: value)
    check_typed_settings({"PTM_HUGGINGFACE_PAGE_SIZE": 1000, "PTM_CLONE_DEPTH": 0}, lambda name, kind: 1)


@pytest.mark.parametrize("name, default", [("PTM_CLONE_RETRIES", 2), ("PTM_CLONE_RETRY_DELAY", 30.0)])
def test_a_retry_count_or_delay_must_not_be_negative(name, default):
    # -s PTM_CLONE_RETRIES=-1 turned retries off, -s PTM_CLONE_RETRY_DELAY=-30 (a sign too many)
    # retried a rate-limited git host at once, both without a word: refused before the crawl.
    with pytest.raises(BadInput, match=f"-s {name}= must not be negative, got -1"):
        check_typed_settings({name: default}, lambda name, kind: kind(-1))
    check_typed_settings({name: default}, lambda name, kind: kind(0))


@pytest.mark.parametrize("value", ["nan", "inf", "-inf", "1e400"])
def test_a_float_setting_must_be_a_finite_number(value):
    # -s PTM_CLONE_MAX_GB=nan parsed as a float, then failed the clone stage's start with a
    # traceback (int(nan * 10**9)); inf alike. Refused before the crawl, as any bad setting.
    with pytest.raises(BadInput, match="-s PTM_CLONE_MAX_GB= must be a number"):
        check_typed_settings({"PTM_CLONE_MAX_GB": 20.0}, lambda name, kind: kind(value))


# -- the README's documented -a arguments are the ones each spider accepts ----------------------

def readme_arguments(spider: str) -> set[str]:
    """The ``-a`` arguments the README and ``docs/`` document for ``spider``: on its ``crawl <spider>``
    command lines and in its bullet in docs/hubs.md, plus ``limit`` ("Every spider accepts `limit`")."""
    import re

    from tests.crawl import ROOT

    pages = [ROOT / "README.md", *sorted((ROOT / "docs").glob("*.md"))]
    readme = "\n\n".join(page.read_text() for page in pages)
    assert "Every spider accepts `limit`" in (ROOT / "README.md").read_text().replace("\n", " ")
    assert "Every spider accepts `limit`" in (ROOT / "docs/hubs.md").read_text().replace("\n", " ")
    assert re.search(rf"^\* `\.venv/bin/scrapy crawl {spider} ", (ROOT / "docs/hubs.md").read_text(), re.M) \
        or spider == "huggingface", f"docs/hubs.md has no bullet for {spider}"
    found = {"limit"}
    for line in readme.splitlines():
        if re.search(rf"\bcrawl {spider}\b", line):
            found |= set(re.findall(r"-a (\w+)=?", line))
    bullet = re.search(rf"^\* `\.venv/bin/scrapy crawl {spider} .*?(?=^\* |^$)", readme, re.M | re.S)
    if bullet:
        found |= set(re.findall(r"-a (\w+)", bullet[0]))
    return found


def every_spider():
    import importlib
    import pkgutil

    import scrapy

    import spiders
    for module in pkgutil.iter_modules(spiders.__path__):
        loaded = importlib.import_module(f"spiders.{module.name}")
        yield from (c for c in vars(loaded).values() if isinstance(c, type) and issubclass(c, scrapy.Spider)
                    and c.__module__ == loaded.__name__)


# What the README must document at least (guards the parsing above).
AT_LEAST = {"huggingface": {"sort", "search", "author", "models", "history"},
            "civitai": {"sort", "types", "query", "username", "nsfw"},
            "modelscope": {"sort", "owners"}, "modelzoo": {"render", "models"}}
# A valid value for each argument whose value is checked; the others take any text.
VALID = {"limit": "5", "nsfw": "false", "history": "all", "render": "api"}


@pytest.mark.parametrize("spidercls", list(every_spider()), ids=lambda c: c.name)
def test_every_documented_argument_is_accepted_and_every_accepted_one_documented(spidercls):
    from scrapy.settings import Settings

    import ptmscrape.settings as project
    from ptmscrape.checks import spider_arguments

    documented = readme_arguments(spidercls.name)
    assert documented >= AT_LEAST.get(spidercls.name, set())
    assert documented == set(spider_arguments(spidercls))
    given = {name: VALID.get(name, "x") for name in documented}
    check_arguments(spidercls, {**given, "_job": "1"})  # the signature check of `scrapy crawl`
    # and the spider's own checks of the values
    spidercls.check_input(Settings({k: getattr(project, k) for k in dir(project) if k.isupper()}), given)


def test_unknown_ptm_setting_names_are_refused_naming_the_nearest():
    check_setting_names(["PTM_CLONE", "LOG_LEVEL", "JOBDIR"], ["PTM_CLONE", "PTM_CLONE_LFS"])
    with pytest.raises(BadInput, match=r"^-s PTM_CLONES: no such setting \(did you mean PTM_CLONE\?\)$"):
        check_setting_names(["PTM_CLONES"], ["PTM_CLONE", "PTM_CLONE_LFS"])
    with pytest.raises(BadInput, match=r"-s PTM_XYZZY: no such setting \(docs/settings.md lists them\)"):
        check_setting_names(["PTM_XYZZY"], ["PTM_CLONE"])


def test_the_exit_status_table_names_every_finish_reason_that_still_exits_0():
    """A crawl stopped by a limit you set (CLOSESPIDER_ITEMCOUNT, _PAGECOUNT, _TIMEOUT) exits 0, a
    CLOSESPIDER_ERRORCOUNT stop 1: docs/failures.md says which, as ptmscrape/verdict.py decides."""
    import re

    from ptmscrape.verdict import COMPLETE_REASONS
    from tests.crawl import ROOT

    page = (ROOT / "docs/failures.md").read_text()
    row = next(line for line in page.splitlines() if line.startswith("| `0` |"))
    named = set(re.findall(r"`(finished|closespider_\w+)`", row))
    assert named == set(COMPLETE_REASONS), f"the `0` row of docs/failures.md names {sorted(named)}"
    settings = set(re.findall(r"`(CLOSESPIDER_\w+)`", row))
    assert settings == {f"CLOSESPIDER_{r.removeprefix('closespider_').upper()}" for r in COMPLETE_REASONS
                        if r != "finished"}
    for reason in COMPLETE_REASONS:
        assert verdict({**GOOD, "finish_reason": reason}).status == 0
    assert verdict({**GOOD, "finish_reason": "closespider_errorcount"}).status == 1


def test_lfs_cloning_without_git_lfs_is_refused_before_the_crawl(tmp_path, monkeypatch):
    # Without git-lfs, -s PTM_CLONE_LFS=1 failed every clone ("failed: log": the last line of git's
    # "'lfs' is not a git command ... The most similar command is log") and the crawl exited 0.
    from scrapy.settings import Settings

    import ptmscrape.settings as project
    from ptmscrape.commands.crawl import preflight

    git_only = tmp_path / "bin"
    git_only.mkdir()
    (git_only / "git").symlink_to(shutil.which("git"))

    def settings(**given):
        ours = {k: getattr(project, k) for k in dir(project) if k.isupper()}
        return Settings({**ours, "PTM_DATA_DIR": str(tmp_path / "data"), **given})

    preflight(HuggingfaceSpider, settings(PTM_CLONE_LFS=True), {})  # git-lfs is installed here
    monkeypatch.setenv("PATH", str(git_only))
    with pytest.raises(BadInput, match=r"^-s PTM_CLONE_LFS=1 needs git-lfs"):
        preflight(HuggingfaceSpider, settings(PTM_CLONE_LFS=True), {})
    preflight(HuggingfaceSpider, settings(PTM_CLONE_LFS=False), {})  # without it: no git-lfs needed
    preflight(HuggingfaceSpider, settings(PTM_CLONE_LFS=True, PTM_CLONE=False), {})


@pytest.mark.parametrize("name", ["PTM_HUGGINGFACE_URL", "PTM_ONNX_TREE_URL", "PTM_OLLAMA_REGISTRY_URL"])
def test_a_hub_url_carrying_credentials_is_refused_without_showing_them(name):
    # Every request URL is logged, and the base URL is in each record's ModelURL: a mirror's
    # user:password@ would have been written in the log and the dataset.
    from ptmscrape.checks import check_hub_urls

    check_hub_urls({name: "https://mirror.example:8443/hf", "PTM_REDIS_URL": "redis://:pw@host/0"})
    check_hub_urls({name: ""})
    for given in ("https://user:s3cret@mirror.example/hf", "https://s3cret@mirror.example/hf",
                  " https://u:s3cret@mirror.example"):
        with pytest.raises(BadInput, match=rf"^-s {name}=https://\*\*\*@mirror\.example\S* carries credentials") as exc:
            check_hub_urls({name: given})
        assert "s3cret" not in str(exc.value)


def test_cloning_with_no_git_transport_allowed_is_refused_before_the_crawl():
    # -s PTM_GIT_ALLOW_PROTOCOL= failed every clone ("transport not allowed") and the crawl exited 0.
    from ptmscrape.checks import check_git_protocols

    check_git_protocols(True, "https")
    check_git_protocols(True, "http:https")
    check_git_protocols(False, "")  # no clones: no transport needed
    for value in ("", ":", " "):
        with pytest.raises(BadInput, match=r"^-s PTM_GIT_ALLOW_PROTOCOL=\S* allows no git transport"):
            check_git_protocols(True, value)


def test_a_splash_url_carrying_credentials_is_refused_without_showing_them(tmp_path, monkeypatch):
    # -s SPLASH_URL=http://user:s3cret@splash:8050 (or the environment variable) was crawled: Scrapy
    # cannot connect to such a URL ("ValueError: invalid hostname: user:s3cret@…"), so every page
    # failed, each ERROR and Scrapy's request log showing the password. Splash's credentials go in
    # SPLASH_USER and SPLASH_PASS.
    from scrapy.settings import Settings

    import ptmscrape.settings as project
    from ptmscrape.commands.crawl import preflight

    def settings(**given):
        ours = {k: getattr(project, k) for k in dir(project) if k.isupper()}
        return Settings({**ours, "PTM_DATA_DIR": str(tmp_path / "data"), "PTM_CLONE": False, **given})

    preflight(ModelzooSpider, settings(SPLASH_URL="http://127.0.0.1:8050", SPLASH_USER="u", SPLASH_PASS="p"),
              {"render": "splash"})
    for given in ("http://user:s3cret@127.0.0.1:8050", "https://s3cret@splash.example"):
        with pytest.raises(BadInput, match=r"^-s SPLASH_URL=https?://\*\*\*@\S+ carries credentials.*"
                                           r"SPLASH_USER and SPLASH_PASS") as exc:
            preflight(ModelzooSpider, settings(SPLASH_URL=given), {"render": "splash"})
        assert "s3cret" not in str(exc.value)


# -- what a successful crawl left out, and where to look ----------------------------------------
def test_a_crawl_that_left_models_out_says_which_counts_and_where_they_are_named():
    from ptmscrape.verdict import left_out

    assert left_out(GOOD, "huggingface") == ""  # nothing left out: no line
    stats = {**GOOD, "ptm/map/failed": 3, "ptm/validate/invalid": 2, "ptm/clone/failed": 4,
             "ptm/clone/failed/repository not found": 3, "ptm/clone/failed/authentication required": 1,
             "ptm/history/failed": 7, "ptm/history/lost": 2, "ptm/pages/failed": 1}
    # Exit status 0 for bad hub data and failed clones (README "Exit status"), but the end says so.
    assert verdict({k: v for k, v in stats.items() if k not in ("ptm/pages/failed", "ptm/history/lost")}).status == 0
    text = left_out(stats, "huggingface")
    assert "5 models dropped (3 unmappable, 2 invalid)" in text
    assert "'Dropped: huggingface:<id>: <reason>'" in text
    assert ("4 models not cloned (authentication required: 1, repository not found: 3): "
            "their CloneStatus in huggingface/huggingface.jsonl") in text
    assert "7 history calls not stored (2 lost, 5 refused by the hub): huggingface/history/failures.jsonl" in text
    assert "1 page failed: each named by URL in an ERROR above" in text


def test_history_calls_an_earlier_run_lost_are_left_out_too():
    from ptmscrape.verdict import left_out

    text = left_out({**GOOD, "ptm/history/lost": 1, "ptm/history/lost/lost by an earlier run": 1}, "huggingface")
    assert text == "1 history call not stored (1 lost, 0 refused by the hub): huggingface/history/failures.jsonl"


@pytest.mark.parametrize("limit", ["closespider_timeout", "closespider_pagecount", "closespider_itemcount"])
def test_a_crawl_a_limit_stopped_before_it_stored_anything_is_not_said_to_list_no_model(limit):
    """``-s CLOSESPIDER_TIMEOUT=…`` (or a page count) that stops a crawl before its first model reached
    the store stage: the hub may have listed hundreds (their pages or clones still in flight), yet the
    verdict said "the hub listed no model", sending its reader to check the hub's URL."""
    result = verdict({"finish_reason": limit})
    assert (result.status, result.finish_reason) == (1, limit)
    assert result.reason == f"nothing was stored: the crawl's limit stopped it first (finish reason {limit})"
    for finish in (None, "finished", NOTHING_STORED):  # NOTHING_STORED: CrawlVerdict closed it at idle
        assert verdict({"finish_reason": finish}).reason == "nothing was stored: the hub listed no model"


# -- clones that failed for a reason of this machine, not of the repository ----------------------
def test_clones_failed_for_a_reason_of_this_machine_are_1_and_the_repositorys_own_are_0():
    """A read-only or failing repos dir, git missing or broken: the dataset is incomplete by the
    operator's machine, as for lack of disk space; a 404 or a gated repository is the hub's fact."""
    hubs_own = {**GOOD, "ptm/clone/failed": 2, "ptm/clone/failed/repository not found": 1,
                "ptm/clone/failed/authentication required": 1}
    assert verdict(hubs_own).status == 0
    local = {**GOOD, "ptm/clone/failed": 3, "ptm/clone/failed/filesystem error": 3,
             "ptm/clone/failed_locally": 3, "ptm/clone/failed_locally/filesystem error": 3}
    result = verdict(local)
    assert result.status == 1
    assert result.reason == ("3 models not cloned for a reason of this machine, not of the hub (filesystem "
                             "error: 3): fix it (the WARNINGs 'Clone failed for …' say what), then crawl again")
    assert result.finish_reason == "finished"  # the listing was read whole: removed models are reported


def test_the_left_out_line_says_how_many_clones_failed_for_a_reason_of_this_machine():
    from ptmscrape.verdict import left_out

    stats = {**GOOD, "ptm/clone/failed": 4, "ptm/clone/failed/repository not found": 1,
             "ptm/clone/failed/filesystem error": 3, "ptm/clone/failed_locally": 3,
             "ptm/clone/failed_locally/filesystem error": 3}
    assert left_out(stats, "huggingface") == (
        "4 models not cloned (filesystem error: 3, repository not found: 1), 3 of them for a reason of this "
        "machine: their CloneStatus in huggingface/huggingface.jsonl")


def test_cloning_without_git_is_refused_before_the_crawl(tmp_path, monkeypatch):
    # Without git on PATH, every clone failed, or rather the crawl never started: GitPython's import
    # raised ("Bad git executable") as scrapy loaded its commands, a traceback and exit status 1.
    from scrapy.settings import Settings

    import ptmscrape.settings as project
    from ptmscrape.commands.crawl import preflight

    def settings(**given):
        ours = {k: getattr(project, k) for k in dir(project) if k.isupper()}
        return Settings({**ours, "PTM_DATA_DIR": str(tmp_path / "data"), **given})

    preflight(HuggingfaceSpider, settings(), {})  # git is installed here
    empty = tmp_path / "bin"
    empty.mkdir()
    monkeypatch.setenv("PATH", str(empty))
    for given in ({}, {"PTM_CLONE_LFS": True}):  # named before git-lfs, which needs git too
        with pytest.raises(BadInput, match=r"^-s PTM_CLONE=1 needs git, and `git --version` failed here: "
                                           r"install git .* or turn cloning off \(-s PTM_CLONE=0\)$"):
            preflight(HuggingfaceSpider, settings(**given), {})
    preflight(HuggingfaceSpider, settings(PTM_CLONE=False), {})  # no clones: no git needed


def test_cloning_with_a_git_that_has_no_https_helper_is_refused_before_the_crawl(tmp_path, monkeypatch):
    # A git without git-remote-https (a minimal build, a broken git-core) passed `git --version`:
    # the crawl ran and every clone failed at the end ("unable to find remote helper for 'https'").
    from scrapy.settings import Settings

    import ptmscrape.settings as project
    from ptmscrape.checks import check_git
    from ptmscrape.commands.crawl import preflight

    def settings(**given):
        ours = {k: getattr(project, k) for k in dir(project) if k.isupper()}
        return Settings({**ours, "PTM_DATA_DIR": str(tmp_path / "data"), **given})

    preflight(HuggingfaceSpider, settings(), {})  # the real git has its helpers here
    preflight(HuggingfaceSpider, settings(PTM_GIT_ALLOW_PROTOCOL="https:http"), {})
    fake, core = git_without_helpers(tmp_path)
    monkeypatch.setenv("PATH", str(fake))
    where = re.escape(str(core))
    with pytest.raises(BadInput, match=r"^-s PTM_CLONE=1 needs git's https transport, and git-remote-https is "
                                       rf"neither in `git --exec-path` \({where}\) nor on PATH: install .* "
                                       r"or turn cloning off \(-s PTM_CLONE=0\)$"):
        preflight(HuggingfaceSpider, settings(), {})
    helper = core / "git-remote-https"
    helper.write_text("#!/bin/sh\n")
    with pytest.raises(BadInput, match=r"git-remote-https is neither"):  # there, but not executable
        check_git(True, "https")
    helper.chmod(0o755)
    check_git(True, "https")
    check_git(True)  # the existing callers' form: https, as by default
    with pytest.raises(BadInput, match=r"^-s PTM_CLONE=1 needs git's http transport, and git-remote-http is"):
        preflight(HuggingfaceSpider, settings(PTM_GIT_ALLOW_PROTOCOL="https:http"), {})
    helper.unlink()
    preflight(HuggingfaceSpider, settings(PTM_CLONE=False), {})  # no clones: no check
    preflight(HuggingfaceSpider, settings(PTM_GIT_ALLOW_PROTOCOL="ssh"), {})  # no helper needed for ssh


def test_a_hub_without_git_repositories_needs_no_git(tmp_path, monkeypatch):
    # Civitai and Ollama clone nothing (CloneStatus 'skipped: the hub has no git repository'): their
    # crawls were refused without git ("-s PTM_CLONE=1 needs git", a setting nobody gave) or git-lfs.
    from scrapy.settings import Settings

    import ptmscrape.settings as project
    from ptmscrape.commands.crawl import preflight
    from spiders.civitai import CivitaiSpider
    from spiders.ollama import OllamaSpider

    ours = {k: getattr(project, k) for k in dir(project) if k.isupper()}
    empty = tmp_path / "bin"
    empty.mkdir()
    monkeypatch.setenv("PATH", str(empty))
    for spidercls in (CivitaiSpider, OllamaSpider):
        for given in ({}, {"PTM_CLONE_LFS": True}, {"PTM_GIT_ALLOW_PROTOCOL": ""}):
            preflight(spidercls, Settings({**ours, "PTM_DATA_DIR": str(tmp_path / "data"), **given}), {})
    with pytest.raises(BadInput, match=r"^-s PTM_CLONE=1 needs git"):  # a hub with repositories still does
        preflight(HuggingfaceSpider, Settings({**ours, "PTM_DATA_DIR": str(tmp_path / "data")}), {})
