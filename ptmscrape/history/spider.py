"""The spider side of ``-a history=commits,refs,discussions,files``: for each model the crawl lists,
the Hub API calls for its history, their paging, and what a re-crawl can skip.

Per model (``<api>`` is ``<base>/api/models/<id>``, the id as the hub gave it):

* commits — ``<api>/commits/<sha>?limit=N``, newest first, the next page in a (relative) ``Link``
  header; paging stops at the first commit among the newest ones (``RECENT_COMMITS``) of the head
  an earlier crawl stored completely (so a force-push re-stores nothing older), and no call is
  made when the listed SHA is that head (unless a paging was cut short since); the stored commits
  a force-push dropped are written to ``dropped_commits`` when the paging ends (each paging is
  numbered, its lines carry the number: ``ptmscrape.history.tables.dropped_before``);
* refs — ``<api>/refs?include_prs=1``: one call; stored only when the body changed; its answer
  (whatever it was) asks for the discussion list, with the pull requests' heads;
* discussions — ``<api>/discussions?p=N`` until ``start + len(discussions) >= count``, then
  ``<api>/discussions/<num>`` for each discussion that is new or whose list entry changed (status,
  title, comments, reactions, pinned, the repo owner taking part: the list carries no update time),
  or a pull request whose ``refs/pr/<num>`` moved (a commit pushed to it moves no list field), or
  one whose details are older than ``PTM_HUGGINGFACE_DISCUSSIONS_REFRESH_DAYS`` (when set: edits);
* files — ``<api>/tree/<sha>?recursive=true&expand=true``, cursor ``Link`` paging; no call when the
  files at the listed SHA are stored already.

A call the hub refuses (401 gated/private/missing, 404 ``RevisionNotFound``, …) is recorded as a
failure of that model and kind; the crawl goes on. A call that fails otherwise (after retries) is
recorded the same way and also counted as lost (``ptm/history/lost``): the crawl then exits 1, and
with a JOBDIR the job fetches the call again when it resumes (``ptmscrape.signals.history_call_lost``,
``ptmscrape/jobdir.py``). No state line is written for a call lost, so a later crawl asks for it again.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import logging
import re
from typing import TYPE_CHECKING, Any
from urllib.parse import quote

import scrapy

from ptmscrape import signals as ptm_signals
from ptmscrape.checks import BadInput
from ptmscrape.dataset.paths import UTC_TIMESTAMP, utc_now
from ptmscrape.dataset.tree import DatasetTree
from ptmscrape.history.store import FAILURES_FILE, HistoryItem, digest, history_file, load_state
from ptmscrape.idset import IdSet
from ptmscrape.items import printable
from ptmscrape.mappers.common import stable_id, text
from ptmscrape.middlewares import RateLimited
from ptmscrape.spiders_base import next_link
from ptmscrape.stats import (
    HISTORY_CALLS,
    HISTORY_CALLS_BY_KIND,
    HISTORY_FAILED,
    HISTORY_FAILED_BY,
    HISTORY_LOST,
    HISTORY_LOST_BY_REASON,
    HISTORY_MALFORMED_BY_KIND,
    HISTORY_MODELS,
    HISTORY_PR_HEAD_MOVED,
    HISTORY_REFRESHED,
    HISTORY_RELISTED,
    HISTORY_REWRITTEN,
    HISTORY_SKIPPED_BY_REASON,
    HISTORY_UNCHANGED_BY_KIND,
)

HISTORY_KINDS = ("commits", "refs", "discussions", "files")
_SHA = re.compile(r"[0-9a-f]{40}")
_PR_REF = re.compile(r"refs/pr/([0-9]{1,9})")
_MODEL_ID = re.compile(r"[^\s/?#%\\]+(/[^\s/?#%\\]+)?")
# Answers that say something about the model (kept, recorded), not about the network.
_REFUSALS = [401, 403, 404, 410]
# Commits of a stored head that paging stops at, kept in its state line: a force-push that rewrote
# fewer commits than this re-stores nothing older; one that rewrote more stores the history again
# (the tables keep each commit once). Bounded, so the state a crawl loads stays small per model.
RECENT_COMMITS = 20
# Refusals (gated, private, deleted: expected, in failures.jsonl) named at WARNING; the rest at DEBUG.
NAMED_REFUSALS = 10


def parse_history_kinds(value: str | None) -> tuple[str, ...]:
    """``-a history=commits,files`` (or ``all``) -> the kinds, in a fixed order."""
    names = {v.strip() for v in (value or "").split(",") if v.strip()}
    if "all" in names:
        names = (names - {"all"}) | set(HISTORY_KINDS)
    unknown = sorted(names - set(HISTORY_KINDS))
    if unknown:
        raise BadInput(f"-a history= knows {', '.join(HISTORY_KINDS)} (or all), not {', '.join(unknown)}")
    return tuple(k for k in HISTORY_KINDS if k in names)


def refusal_reason(status: int, headers) -> str:
    """Why the hub refused a history call, for stats and the failures file."""
    code = (headers.get(b"X-Error-Code") or b"").decode("latin-1").strip()[:60]
    if status in (401, 403):
        return f"gated, private or missing (HTTP {status})"
    if status == 404 and code == "RevisionNotFound":
        return "revision not found (HTTP 404 RevisionNotFound)"
    return f"not found (HTTP {status}{' ' + code if code else ''})"


if TYPE_CHECKING:  # what the mixin uses of the HubSpider it is mixed into
    from ptmscrape.spiders_base import HubSpider as _MixedInto
else:
    _MixedInto = object


class HistoryMixin(_MixedInto):
    """Mixed into a :class:`~ptmscrape.spiders_base.HubSpider` (before it) whose listing callbacks
    ``yield from self.history_requests(model)`` for each listed model payload."""

    history_kinds: tuple[str, ...] = ()

    def __init__(self, *args: Any, history: str | None = None, **kwargs: Any):
        super().__init__(*args, **kwargs)
        self.history_kinds = parse_history_kinds(history)
        self._history_state: dict[int, dict[str, Any]] | None = None
        self._history_models = IdSet()  # models whose history this crawl asked for
        self._refresh_before: str | None = None
        self._refusals = 0  # refused calls so far (the first NAMED_REFUSALS logged at WARNING)

    @property
    def history_state(self) -> dict[int, dict[str, Any]]:
        """What earlier crawls stored (read once, when the first model's history is asked for)."""
        if self._history_state is None:
            self._history_state = load_state(DatasetTree.from_crawler(self.crawler), self.name)
        return self._history_state

    @property
    def discussions_refresh_before(self) -> str:
        """Stored discussion details older than this (``crawled_at`` of their state line) are fetched
        again (``PTM_HUGGINGFACE_DISCUSSIONS_REFRESH_DAYS``; "": never)."""
        if self._refresh_before is None:
            days = self.settings.getint("PTM_HUGGINGFACE_DISCUSSIONS_REFRESH_DAYS")
            self._refresh_before = "" if days <= 0 else (
                dt.datetime.now(dt.UTC) - dt.timedelta(days=days)).strftime(UTC_TIMESTAMP)
        return self._refresh_before

    def _history_count(self, name: str, n: int = 1) -> None:
        self.crawler.stats.inc_value(name, n)

    # -- per model ------------------------------------------------------------------------
    def history_requests(self, model: Any):
        """The first history calls of one listed model (none without ``-a history``)."""
        if not self.history_kinds or not isinstance(model, dict):
            return
        model_id = model.get("id", model.get("modelId"))
        if not isinstance(model_id, str) or not _MODEL_ID.fullmatch(model_id) or any(
                part in (".", "..") for part in model_id.split("/")):
            self._history_count(HISTORY_SKIPPED_BY_REASON + "malformed id")
            self.logger.warning("No history for %s: malformed model id", printable(f"{self.name}:{model_id}"))
            return
        record_id = stable_id(self.name, text(model.get("_id"), 100) or model_id)
        if record_id in self._history_models:
            return  # listed twice in one crawl
        self._history_models.add(record_id)
        self._history_count(HISTORY_MODELS)
        state = self.history_state.get(record_id, {})
        sha = model.get("sha") if isinstance(model.get("sha"), str) and _SHA.fullmatch(model["sha"]) else None
        rev = sha or "main"
        api = f"{self.base_url}/api/models/{quote(model_id, safe='/')}"
        ctx = {"model": record_id, "model_id": model_id, "api": api}
        if "commits" in self.history_kinds:
            known = state.get("commits", {}).get("head")
            # A paging cut short since (a kill, a lost page) may have stored commits the head no
            # longer reaches: its first page tells (one call).
            if sha and known == sha and self._unfinished_after(record_id) is None:
                self._history_count(HISTORY_UNCHANGED_BY_KIND + "commits")
            else:
                size = self.settings.getint("PTM_HUGGINGFACE_COMMITS_PAGE_SIZE")
                yield self.history_request(f"{api}/commits/{rev}?limit={size}", self.parse_history_commits,
                                           {**ctx, "rev": rev})
        if "refs" in self.history_kinds:  # its answer asks for the discussion list (with the PR heads)
            yield self.history_request(f"{api}/refs?include_prs=1", self.parse_history_refs, ctx)
        elif "discussions" in self.history_kinds:
            yield self.discussion_list_request(ctx, None)
        if "files" in self.history_kinds:
            if sha and state.get("files", {}).get("revision") == sha:
                self._history_count(HISTORY_UNCHANGED_BY_KIND + "files")
            else:
                yield self.history_request(f"{api}/tree/{rev}?recursive=true&expand=true", self.parse_history_files,
                                           {**ctx, "rev": rev, "count": 0})

    def discussion_list_request(self, ctx: dict[str, Any], pr_heads: dict[str, str] | None) -> scrapy.Request:
        """The first page of a model's discussion list. ``pr_heads``: the commit each pull request's
        ``refs/pr/<num>`` points at (None: refs not known), so that a pull request whose head
        moved has its details fetched again though its list entry did not move."""
        return self.history_request(f"{ctx['api']}/discussions?p=0", self.parse_history_discussions,
                                    {**ctx, "page": 0, "pr_heads": pr_heads})

    def _after_refs(self, ctx: dict[str, Any], pr_heads: dict[str, str] | None = None):
        """What follows a model's refs call, however it ended: its discussion list, if asked for."""
        if "discussions" in self.history_kinds:
            yield self.discussion_list_request(ctx, pr_heads)

    def history_request(self, url: str, callback, ctx: dict[str, Any]) -> scrapy.Request:
        return scrapy.Request(url, callback=callback, errback=self.history_failed,
                              meta={"ptm_history": ctx, "handle_httpstatus_list": _REFUSALS})

    # -- callbacks ------------------------------------------------------------------------
    def _history_response(self, response, kind: str):
        """Count the call; the failure item if the hub refused it, else None."""
        self._history_count(HISTORY_CALLS)
        self._history_count(HISTORY_CALLS_BY_KIND + kind)
        if response.status < 300:
            return None
        return self._history_failure(response.meta["ptm_history"], kind,
                                     refusal_reason(response.status, response.headers), response.url,
                                     refused=True)

    def _history_failure(self, ctx: dict[str, Any], kind: str, reason: str, url: str, *,
                         refused: bool = False, detail: str = "", request: scrapy.Request | None = None,
                         level: int = logging.WARNING) -> HistoryItem:
        """The failure item of one call. ``refused``: the hub answered for the model (gated,
        private, deleted), an outcome a crawl expects; any other failure lost data the hub has,
        which fails the crawl (``ptmscrape/verdict.py``) and is fetched again when a JOBDIR job
        resumes (``request``: the call's). ``detail`` goes to the log and the failures file, not
        into stats names."""
        self._history_count(HISTORY_FAILED)
        self._history_count(HISTORY_FAILED_BY + kind)
        self._history_count(HISTORY_FAILED_BY + reason)
        if not refused:
            self.count_lost_history_call(reason, request)
        elif level == logging.WARNING:
            # A big hub has thousands of gated models, each refusing every kind: a WARNING a call would
            # bury the log's real problems. failures.jsonl and ptm/history/failed/<reason> have them all.
            self._refusals += 1
            if self._refusals > NAMED_REFUSALS:
                level = logging.DEBUG
            if self._refusals == NAMED_REFUSALS + 1:
                self.logger.warning("More history calls refused by the hub (gated, private or deleted "
                                    "repositories): logged at DEBUG from here on; each is in %s "
                                    "(ptm/history/failed/<reason>)", history_file(self.name, FAILURES_FILE))
        self.logger.log(level, "History of %s (%s) not stored: %s%s",
                        printable(f"{self.name}:{ctx['model_id']}"), kind, reason,
                        f" ({detail[:200]})" if detail else "")
        failure = {"reason": reason, "url": url, **({"detail": detail[:200]} if detail else {})}
        return HistoryItem(self.name, ctx["model"], ctx["model_id"], kind, failure=failure)

    def history_not_stored(self, item: HistoryItem, reason: str) -> HistoryItem:
        """An item whose lines the dataset tree did not take (a full disk): its call is lost, as one
        that failed after retries (an ERROR naming the model; with a JOBDIR it is fetched again).
        Returns its failure item, for ``failures.jsonl``."""
        url = item.request.url if item.request is not None else ""
        return self._history_failure({"model": item.model, "model_id": item.model_id}, item.kind, reason, url,
                                     request=item.request, level=logging.ERROR)

    def count_lost_history_call(self, reason: str, request: scrapy.Request | None = None) -> None:
        """A history call lost for good: counted in ``ptm/history/lost`` (and by ``reason``), and
        signalled (``ptmscrape.signals.history_call_lost``: with a JOBDIR, ``request`` is fetched
        again when the job resumes, its fingerprint being in Scrapy's ``requests.seen``)."""
        self._history_count(HISTORY_LOST)
        self._history_count(HISTORY_LOST_BY_REASON + reason)
        self.crawler.signals.send_catch_log(ptm_signals.history_call_lost, reason=reason, request=request)

    def report_bad_page(self, response, reason: str) -> None:
        # A history page still malformed after its retries loses that model's history of one kind,
        # not models of the listing: kept out of ptm/pages/failed (and so the removed-models report
        # runs); its callback turns the reason into the model's failure (_given_up).
        if "ptm_history" not in response.meta:
            return super().report_bad_page(response, reason)
        response.meta["ptm_history_given_up"] = reason
        return None

    def _given_up(self, response, kind: str):
        """The failure item of a history page given up as malformed; none while it is fetched again."""
        reason = response.meta.pop("ptm_history_given_up", None)
        if reason is not None:
            short, _, detail = reason.partition(" (")
            yield self._history_failure(response.meta["ptm_history"], kind, short, response.url,
                                        detail=detail.removesuffix(")"), request=response.request)

    def _malformed_entries(self, ctx: dict[str, Any], kind: str, n: int, lacking: str) -> None:
        """Entries of one page skipped for lacking their key (nothing to store them under); the
        rest of the page is stored, and a revision or discussion still counts as complete: a
        re-crawl would get the same entries."""
        if n:
            self._history_count(HISTORY_MALFORMED_BY_KIND + kind, n)
            self.logger.warning("History of %s (%s): %d malformed entr%s skipped (no %s)",
                                printable(f"{self.name}:{ctx['model_id']}"), kind, n, "y" if n == 1 else "ies",
                                lacking)

    def _item(self, ctx: dict[str, Any], kind: str, rows, states, response, began=None) -> HistoryItem:
        return HistoryItem(self.name, ctx["model"], ctx["model_id"], kind, rows or {}, states or [],
                           request=response.request, began=began or [])

    def _next(self, response, ctx, kind, callback, new_ctx):
        """The request for the next page, or a failure item when the link leaves the hub."""
        link = next_link(response.headers.get("Link"))
        if not link:
            return None
        url = self.hub_link(response.url, link)
        if url is None:
            return self._history_failure(ctx, kind, "next page link leaves the hub", response.url,
                                         request=response.request)
        # The pages of this paging so far, by a short digest of their URL: a next link that repeats
        # one (a loop, or back to the first page) would be dropped by Scrapy's dupefilter in silence,
        # the paging ending there with no state line and nothing counted.
        pages = [*ctx.get("pages", ()), _page_key(response.url)]
        if _page_key(url) in pages:
            return self._history_failure(ctx, kind, "next page link repeats an earlier page", response.url,
                                         detail=printable(url, 200), request=response.request,
                                         level=logging.ERROR)
        return self.history_request(url, callback, {**new_ctx, "pages": pages})

    def parse_history_commits(self, response):
        ctx = response.meta["ptm_history"]
        refused = self._history_response(response, "commits")
        if refused:
            yield refused
            return
        page = self.json_page(response, expect=list)
        if page is None:
            yield from self._given_up(response, "commits")
            return
        head = ctx.get("head") or (ctx["rev"] if _SHA.fullmatch(ctx["rev"]) else None)
        # The model's pagings are numbered (state.jsonl): every line this one writes carries its
        # number, so a reader tells what it listed (again) from what an earlier paging stored,
        # however close in time (crawled_at has whole seconds). ``since`` (the time, before any line
        # of it is written) is what readers of lines without a number go by.
        first = "paging" not in ctx
        paging = ctx["paging"] if not first else self._next_paging(ctx["model"])
        since = ctx.get("since") or utc_now()
        listed_entries = ctx.get("entries", 0) + len(page)
        stored = self._stored_commits(ctx["model"])
        total_header = (response.headers.get(b"X-Total-Count") or b"").decode("latin-1").strip()
        total = int(total_header) if total_header.isdigit() else None
        head, rows, reached, above, malformed = _commits_above(page, () if ctx.get("relist") else stored, head)
        if reached and not self._commit_count_agrees(ctx, total, ctx.get("entries", 0) + above,
                                                     stored.index(reached)):
            ctx = {**ctx, "relist": True}
            head, rows, reached, above, malformed = _commits_above(page, (), head)
        self._malformed_entries(ctx, "commits", malformed, "id")
        # Only real commit ids go into the state (a hostile hub's huge ids would be loaded by every crawl).
        listed = ctx.get("recent", []) + [r["raw"]["id"] for r in rows if _SHA.fullmatch(r["raw"]["id"])]
        follow = None if reached else self._next(response, ctx, "commits", self.parse_history_commits,
                                                 {**ctx, "head": head, "recent": listed[:RECENT_COMMITS],
                                                  "since": since, "entries": listed_entries, "paging": paging})
        states, files = [], {"commits": [{**r, "paging": paging} for r in rows]}
        # Written before the page's lines: the number is taken even if the crawl is killed right
        # after them; and a paging cut short (a kill, a refused page) leaves its commits stored with
        # no commits state line: the paging that completes it must know some may be in no history
        # any more.
        began = [{"kind": "commits_paging", "head": head, "paging": paging}] if first else []
        if follow is None and head:
            if reached:  # what follows it in the hub's list was stored with it
                listed += stored[stored.index(reached):]
            dropped = self._dropped_commits(ctx, stored, reached, since,
                                            whole=total is None or listed_entries >= total)
            if reached and (after := self._unfinished_after(ctx["model"])) is not None:
                # Pagings cut short since the head stored last stored new commits: those this one
                # did not list again above the commit it met are in no history any more.
                dropped.append({"unfinished_after": after})
            if dropped:
                files["dropped_commits"] = [{**d, "head": head, "paging": paging} for d in dropped]
            states.append({"kind": "commits", "head": head, "total": total, "recent": listed[:RECENT_COMMITS],
                           "paging": paging})
        yield self._item(ctx, "commits", files, states, response, began)
        if follow is not None:
            yield follow

    def _dropped_commits(self, ctx: dict[str, Any], stored: list[str], reached: str | None, since: str, *,
                         whole: bool) -> list[dict[str, Any]]:
        """The ``dropped_commits`` lines of a paging that ended: stored commits the new head no
        longer reaches (a force-push). Paging met a stored commit: the stored head's newest commits
        above it. It met none: the whole new history was listed (``whole``, unless the hub listed
        fewer than it counts), so every commit of the model an earlier paging stored and this one did
        not list again; the hub's commits carry no parents, so the tables tell which (the ``paging``
        of their lines, lower than this one's)."""
        if ctx.get("relist") and whole:
            # Listed again for a count that did not add up (_commit_count_agrees): what it left out is
            # in no history; a rewrite or not, the crawl cannot tell, so not counted as one.
            return [{"stored_before": since}]
        if not stored:
            # Nothing stored completely, but an earlier paging cut short stored some of its first
            # pages: those this whole listing leaves out are in no history (a force-push since).
            # Not a rewrite this crawl can tell, so neither counted nor logged as one.
            started = self.history_state.get(ctx["model"], {}).get("commits_paging")
            return [{"stored_before": since}] if whole and started else []
        if stored[0] == reached:
            return []
        if reached:
            dropped: list[dict[str, Any]] = [{"commit_id": c} for c in stored[:stored.index(reached)]]
            what = f"{len(dropped)} stored commit{'s' if len(dropped) > 1 else ''} dropped"
        elif whole:
            dropped = [{"stored_before": since}]
            what = "none of its newest stored commits is left; the commits not listed again are dropped"
        else:
            return []
        self._history_count(HISTORY_REWRITTEN)
        self.logger.info("History of %s (commits): rewritten (a force-push): %s",
                         printable(f"{self.name}:{ctx['model_id']}"), what)
        return dropped

    def _commit_count_agrees(self, ctx: dict[str, Any], total: int | None, new: int, dropped: int) -> bool:
        """Whether the hub's count of the new head's commits is the stored head's, less the ``dropped``
        stored commits above the one paging met, plus the ``new`` ones listed above it. Else commits
        the hub lists below that one were never stored (a merge of a branch whose commits are older
        than the stored head, listed after it): the whole history is listed again, once. A count
        below that one (a hub that caps its count, say) loses no commit: paging stops as usual."""
        stored_total = self.history_state.get(ctx["model"], {}).get("commits", {}).get("total")
        if total is None or not isinstance(stored_total, int) or stored_total - dropped + new >= total:
            return True
        self._history_count(HISTORY_RELISTED)
        self.logger.info("History of %s (commits): the hub counts %d commits, the stored %d less %d dropped plus "
                         "%d new make %d: listing the whole history again",
                         printable(f"{self.name}:{ctx['model_id']}"), total, stored_total, dropped, new,
                         stored_total - dropped + new)
        return False

    def _next_paging(self, model: int) -> int:
        """The number of a new commit paging of ``model``: one above every paging an earlier crawl
        began (``state.jsonl``; 1 for a model none began)."""
        entry = self.history_state.get(model, {})
        numbers = [line.get("paging") for line in (entry.get("commits", {}), entry.get("commits_paging", {}))]
        return 1 + max((n for n in numbers if isinstance(n, int) and not isinstance(n, bool) and n > 0),
                       default=0)

    def _unfinished_after(self, model: int) -> int | None:
        """The number of the model's last paging that finished (0: none numbered), when pagings
        began after it (cut short: a kill, a lost page); else None."""
        entry = self.history_state.get(model, {})
        began, done = entry.get("commits_paging", {}).get("paging"), entry.get("commits", {}).get("paging", 0)
        if not isinstance(began, int) or not isinstance(done, int) or isinstance(done, bool):
            return None
        return done if began > done else None

    def _stored_commits(self, model: int) -> list[str]:
        """The newest commits of the head an earlier crawl stored completely, newest first: each
        one's older history is stored too, so paging may stop at any of them."""
        line = self.history_state.get(model, {}).get("commits", {})
        recent = line.get("recent")
        if isinstance(recent, list) and all(isinstance(c, str) for c in recent):
            return [c for c in recent if _SHA.fullmatch(c)]
        return [line["head"]] if isinstance(line.get("head"), str) else []  # a state line of older crawls

    def parse_history_refs(self, response):
        ctx = response.meta["ptm_history"]
        refused = self._history_response(response, "refs")
        if refused:
            yield refused
            yield from self._after_refs(ctx)
            return
        body = self.json_page(response, expect=dict)
        if body is None:
            failed = list(self._given_up(response, "refs"))
            if failed:  # else the page is being fetched again
                yield from failed
                yield from self._after_refs(ctx)
            return
        body_digest = digest(body)
        if self.history_state.get(ctx["model"], {}).get("refs", {}).get("digest") == body_digest:
            self._history_count(HISTORY_UNCHANGED_BY_KIND + "refs")
        else:
            yield self._item(ctx, "refs", {"refs": [{"raw": body}]}, [{"kind": "refs", "digest": body_digest}],
                             response)
        yield from self._after_refs(ctx, pull_request_heads(body))

    def parse_history_discussions(self, response):
        ctx = response.meta["ptm_history"]
        refused = self._history_response(response, "discussions")
        if refused:
            yield refused
            return
        body = self.json_page(response, expect=dict)
        if body is not None and not isinstance(body.get("discussions"), list):
            body = self.page_malformed(response, "unexpected JSON", "no discussions list")
        if body is None:
            yield from self._given_up(response, "discussions")
            return
        listed = body["discussions"]
        count, start = _whole(body.get("count")), _whole(body.get("start"))
        if count is None and body.get("count") is not None or start is None and body.get("start") is not None:
            # Without a count and start it can read, the rest of the list would be left unread in silence.
            yield self._history_failure(ctx, "discussions", "malformed discussion paging", response.url,
                                        detail=f"count {printable(repr(body.get('count')), 40)}, start "
                                               f"{printable(repr(body.get('start')), 40)}", request=response.request,
                                        level=logging.ERROR)
            return
        if ctx["page"] > 0 and isinstance(start, int) and start < ctx.get("start", 0):
            # Page p answered a start before the end of the page read last (the hub ignores p, or its
            # offsets do not advance): following its count would ask for pages for ever.
            yield self._history_failure(ctx, "discussions", "discussion list does not advance", response.url,
                                        detail=f"start {start} on page {ctx['page']}, expected at least "
                                               f"{ctx.get('start', 0)}", request=response.request,
                                        level=logging.ERROR)
            return
        stored = self.history_state.get(ctx["model"], {}).get("discussion", {})
        pr_heads = ctx.get("pr_heads") or {}
        details_ctx = {k: v for k, v in ctx.items() if k not in ("pr_heads", "page")}
        malformed = 0
        for entry in listed:
            if not isinstance(entry, dict) or not isinstance(entry.get("num"), int):
                malformed += 1
                continue
            signature = discussion_signature(entry)
            known = stored.get(entry["num"], {})
            pr_head = pr_heads.get(str(entry["num"]))
            if known.get("signature") == signature:
                # A commit pushed to a pull request moves no list field: its ref shows it. A state
                # line of a crawl that did not know the head (older, or without refs) counts as moved.
                if pr_head is not None and known.get("pr_head") != pr_head:
                    self._history_count(HISTORY_PR_HEAD_MOVED)
                elif self._due_for_refresh(known):
                    self._history_count(HISTORY_REFRESHED)
                else:
                    self._history_count(HISTORY_UNCHANGED_BY_KIND + "discussions")
                    continue
            yield self.history_request(f"{ctx['api']}/discussions/{entry['num']}",
                                       self.parse_history_discussion,
                                       {**details_ctx, "listed": entry, "signature": signature,
                                        "pr_head": pr_head})
        self._malformed_entries(ctx, "discussions", malformed, "num")
        if (listed and isinstance(count, int) and isinstance(start, int)
                and start + len(listed) < count):
            page = ctx["page"] + 1
            yield self.history_request(f"{ctx['api']}/discussions?p={page}", self.parse_history_discussions,
                                       {**ctx, "page": page, "start": start + len(listed)})

    def _due_for_refresh(self, known: dict[str, Any]) -> bool:
        """Whether a stored discussion's details are older than the refresh age (edits and hidden
        comments show nowhere else)."""
        before = self.discussions_refresh_before
        return bool(before) and isinstance(known.get("crawled_at"), str) and known["crawled_at"] < before

    def parse_history_discussion(self, response):
        ctx = response.meta["ptm_history"]
        refused = self._history_response(response, "discussion")
        if refused:
            yield refused
            return
        detail = self.json_page(response, expect=dict)
        if detail is None:
            yield from self._given_up(response, "discussion")
            return
        num = ctx["listed"]["num"]
        known = self.history_state.get(ctx["model"], {}).get("discussion", {}).get(num, {}).get("events") or {}
        events = detail.get("events") if isinstance(detail.get("events"), list) else []
        digests, new_events, malformed = {}, [], 0
        for event in events:
            if not isinstance(event, dict) or not isinstance(event.get("id"), str):
                malformed += 1
                continue
            digests[event["id"]] = event_digest = digest(event)
            if known.get(event["id"]) != event_digest:
                new_events.append({"num": num, "raw": event})
        self._malformed_entries(ctx, "events", malformed, "id")
        discussion = {**ctx["listed"], **{k: v for k, v in detail.items() if k != "events"}}
        state = {"kind": "discussion", "num": num, "signature": ctx["signature"], "events": digests}
        if ctx.get("pr_head"):  # the pull request's head these events are complete up to
            state["pr_head"] = ctx["pr_head"]
        yield self._item(ctx, "discussion",
                         {"discussions": [{"num": num, "raw": discussion}], "discussion_events": new_events},
                         [state], response)

    def parse_history_files(self, response):
        ctx = response.meta["ptm_history"]
        refused = self._history_response(response, "files")
        if refused:
            yield refused
            return
        page = self.json_page(response, expect=list)
        if page is None:
            yield from self._given_up(response, "files")
            return
        rows = [{"revision": ctx["rev"], "raw": e} for e in page
                if isinstance(e, dict) and isinstance(e.get("path"), str)]
        self._malformed_entries(ctx, "files", len(page) - len(rows), "path")
        count = ctx["count"] + len(rows)
        follow = self._next(response, ctx, "files", self.parse_history_files, {**ctx, "count": count})
        states = [] if follow is not None else [{"kind": "files", "revision": ctx["rev"], "count": count}]
        yield self._item(ctx, "files", {"files": rows}, states, response)
        if follow is not None:
            yield follow

    def url_too_long(self, request: scrapy.Request, reason: str) -> Any:
        """A history call ``URLLENGTH_LIMIT`` refuses (a hub's huge next link): lost for its model
        and kind, as one that failed after retries; its failure item takes the request's place."""
        ctx = request.meta.get("ptm_history")
        if ctx is None:
            return super().url_too_long(request, reason)
        kind = getattr(request.callback, "__name__", "").removeprefix("parse_history_")
        return self._history_failure(ctx, kind, "URL too long", printable(request.url, 300),
                                     detail=f"{reason}: {len(request.url)} characters", level=logging.ERROR)

    def history_failed(self, failure):
        """Errback: the call failed after retries (network, 5xx, 429); reported and recorded. Not
        counted in ``ptm/pages/failed``: a lost history call loses no model of the listing."""
        request = failure.request
        ctx = request.meta["ptm_history"]
        kind = request.callback.__name__.removeprefix("parse_history_")
        self._history_count(HISTORY_CALLS)
        self._history_count(HISTORY_CALLS_BY_KIND + kind)
        status = getattr(getattr(failure.value, "response", None), "status", None)
        if isinstance(failure.value, RateLimited):  # what was given up on is the hub's limit
            status = failure.value.status
        cause = f"HTTP {status}" if status else (failure.type.__name__ if failure.type else "error")
        self.logger.error("History call failed after retries: %s (%s: %s)", request.url, cause,
                          failure.getErrorMessage()[:200])
        reason = (f"rate limited after retries ({cause})" if isinstance(failure.value, RateLimited)
                  else f"failed after retries ({cause})")
        yield self._history_failure(ctx, kind, reason, request.url, request=request)
        if kind == "refs":
            yield from self._after_refs(ctx)


def _commits_above(page: list, stop_at, head: str | None) -> tuple[str | None, list[dict[str, Any]], str | None,
                                                                  int, int]:
    """``(head, rows, reached, above, malformed)`` of one commit page: its commits above the first
    one in ``stop_at`` (``reached``, at index ``above`` of the page), the head (the first commit
    listed, unless known) and how many entries had no id."""
    rows: list[dict[str, Any]] = []
    malformed = 0
    for i, commit in enumerate(page):
        if not isinstance(commit, dict) or not isinstance(commit.get("id"), str):
            malformed += 1
            continue
        head = head or commit["id"]
        if commit["id"] in stop_at:
            return head, rows, commit["id"], i, malformed
        rows.append({"raw": commit})
    return head, rows, None, len(page), malformed


def _whole(value: Any) -> int | None:
    """A whole number of a paging as the hub may write it (``5``, ``"5"``), else None."""
    if isinstance(value, int) and not isinstance(value, bool):
        return value
    if isinstance(value, str) and value.isascii() and value.isdigit() and len(value) <= 18:
        return int(value)
    return None


def _page_key(url: str) -> str:
    """A page's URL in 16 hex digits, for the pages of one paging kept in its requests' meta."""
    return hashlib.blake2b(url.encode("utf-8", "surrogatepass"), digest_size=8).hexdigest()


def pull_request_heads(refs: dict[str, Any]) -> dict[str, str]:
    """``{"<num>": commit}`` of a refs body's ``refs/pr/<num>`` (only well-formed ones: the map
    rides along with the discussion list request, whose queues may store it as JSON)."""
    heads = {}
    prs = refs.get("pullRequests")
    for ref in prs if isinstance(prs, list) else ():
        name, target = (ref.get("ref"), ref.get("targetCommit")) if isinstance(ref, dict) else (None, None)
        if isinstance(name, str) and (m := _PR_REF.fullmatch(name)) and isinstance(target, str) \
                and _SHA.fullmatch(target):
            heads[str(int(m.group(1)))] = target
    return heads


def discussion_signature(entry: dict[str, Any]) -> str:
    """What of a list entry moves when a discussion changes (the list has no update time). The
    list has nothing that moves when a comment is edited or hidden, or a commit is pushed to a pull
    request (its ref shows that: ``pull_request_heads``): those show once something here moves
    (docs/history.md)."""
    owner = entry.get("repoOwner")
    return digest({**{k: entry.get(k) for k in ("title", "status", "numComments", "numReactionUsers",
                                                "topReactions", "pinned", "isPullRequest")},
                   # flips when the repo's owner first takes part, e.g. pushing to a pull request
                   "ownerParticipating": owner.get("isParticipating") if isinstance(owner, dict) else None})

