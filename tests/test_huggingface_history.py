"""Cheap tests of the history calls (spider callbacks on replica-shaped responses), the history
files, the tables module and RateLimit pacing — no crawl, no network."""

import asyncio
import json
import logging
import sqlite3

import pytest
from scrapy.http import Headers, Request, TextResponse
from scrapy.utils.request import request_from_dict

from pipelines.history import HistoryPipeline, HistoryStored
from ptmscrape.dataset.paths import utc_now
from ptmscrape.dataset.tree import DatasetTree
from ptmscrape.history.spider import RECENT_COMMITS, discussion_signature, parse_history_kinds, refusal_reason
from ptmscrape.history.store import HistoryItem, HistoryStore, history_file, load_state
from ptmscrape.history.tables import TABLES, rows
from ptmscrape.items import RawModelItem
from ptmscrape.mappers.huggingface import map_raw
from ptmscrape.middlewares import RateLimitPacingMiddleware, ratelimit_remaining
from spiders.huggingface import HuggingfaceSpider
from tests.crawl import project_crawler
from tests.helpers import json_response, make_spider, text_response
from tests.replicas.huggingface_history import synthetic_history

BASE = "https://mirror.example/hf"
SHA = "a" * 40
MODEL = {"_id": "621ffdc036468d709f174338", "id": "google-bert/bert-base-uncased", "sha": SHA}


def history_spider(tmp_path, history="all", **settings):
    return make_spider(HuggingfaceSpider, {"PTM_HUGGINGFACE_URL": BASE, "PTM_DATA_DIR": str(tmp_path),
                                           "PTM_HUGGINGFACE_COMMITS_PAGE_SIZE": 2, **settings}, history=history)


def respond(request, body, status=200, headers=None):
    return json_response(request.url, body, request, status=status, headers=headers)


def by_kind(outputs):
    return {r.callback.__name__.removeprefix("parse_history_"): r for r in outputs if isinstance(r, Request)}


def test_history_argument_names_kinds_or_all():
    assert parse_history_kinds(None) == ()
    assert parse_history_kinds("files, commits") == ("commits", "files")
    assert parse_history_kinds("all") == ("commits", "refs", "discussions", "files")
    with pytest.raises(ValueError, match="not stars"):
        parse_history_kinds("commits,stars")


def test_each_listed_model_gets_its_calls_under_the_base_url_with_its_record_id(tmp_path):
    spider = history_spider(tmp_path)
    listing = respond(Request(f"{BASE}/api/models?limit=1"), [MODEL, dict(MODEL)])  # listed twice
    out = list(spider.parse_listing(listing))
    assert isinstance(out[0], RawModelItem)
    calls = by_kind(out)
    assert len([r for r in out if isinstance(r, Request)]) == 3  # the second listing adds none
    # the discussion list follows the refs answer (it carries the pull requests' heads)
    calls.update(by_kind(spider.parse_history_refs(respond(calls["refs"], {"branches": []}))))
    api = f"{BASE}/api/models/google-bert/bert-base-uncased"
    assert calls["commits"].url == f"{api}/commits/{SHA}?limit=2"
    assert calls["refs"].url == f"{api}/refs?include_prs=1"
    assert calls["discussions"].url == f"{api}/discussions?p=0"
    assert calls["files"].url == f"{api}/tree/{SHA}?recursive=true&expand=true"
    record = map_raw(RawModelItem("huggingface", MODEL["id"], listing.url, MODEL, {"base_url": BASE}))
    assert {r.meta["ptm_history"]["model"] for r in calls.values()} == {record["id"]}
    for request in calls.values():  # plain data and spider methods: a JOBDIR can hold them
        assert request_from_dict(request.to_dict(spider=spider), spider=spider).url == request.url


def test_malformed_model_ids_get_no_history(tmp_path):
    spider = history_spider(tmp_path)
    for bad in ("../../etc", "a/b/c", "x y", None):
        assert list(spider.history_requests({"id": bad, "sha": SHA})) == []
    assert spider.crawler.stats.get_value("ptm/history/skipped/malformed id") == 4


def test_stored_state_skips_commits_and_files_of_an_unchanged_sha(tmp_path):
    spider = history_spider(tmp_path)
    rid = map_raw(RawModelItem("huggingface", MODEL["id"], BASE, MODEL, {}))["id"]
    spider._history_state = {rid: {"commits": {"head": SHA}, "files": {"revision": SHA}}}
    assert set(by_kind(spider.history_requests(MODEL))) == {"refs"}  # the discussion list follows it
    moved = by_kind(spider.history_requests({**MODEL, "_id": "other"}))  # another model: all of them
    assert set(moved) == {"commits", "refs", "files"}


def test_commit_pages_stop_at_the_newest_stored_commit(tmp_path):
    spider = history_spider(tmp_path)
    commits = synthetic_history(MODEL["id"], SHA, 3).commits  # 17 commits, newest first
    rid = map_raw(RawModelItem("huggingface", MODEL["id"], BASE, MODEL, {}))["id"]
    spider._history_state = {rid: {"commits": {"head": commits[3]["id"]}}}  # a line without "recent"
    request = by_kind(spider.history_requests(MODEL))["commits"]
    first = list(spider.parse_history_commits(respond(request, commits[:2], headers={
        "X-Total-Count": "17", "Link": f'</api/models/{MODEL["id"]}/commits/{SHA}?p=1&limit=2>; rel="next"'})))
    item, follow = first
    assert [r["raw"]["id"] for r in item.rows["commits"]] == [SHA, commits[1]["id"]] and item.states == []
    # the paging's number, taken before its first lines (a state line of older crawls has none: 1)
    assert item.began == [{"kind": "commits_paging", "head": SHA, "paging": 1}]
    # the Hub's root-relative link, put back under the mirror's path
    assert follow.url == f"{BASE}/api/models/{MODEL['id']}/commits/{SHA}?p=1&limit=2"
    (last,) = spider.parse_history_commits(respond(follow, commits[2:4], headers={"X-Total-Count": "17"}))
    assert [r["raw"]["id"] for r in last.rows["commits"]] == [commits[2]["id"]]  # stopped at the known one
    assert last.states == [{"kind": "commits", "head": SHA, "total": 17,
                            "recent": [c["id"] for c in commits[:4]], "paging": 1}]
    assert {r["paging"] for r in item.rows["commits"] + last.rows["commits"]} == {1} and last.began == []
    assert "dropped_commits" not in last.rows  # the old head is below the new one: nothing dropped


def test_after_a_force_push_commit_pages_stop_at_the_first_commit_stored_before(tmp_path):
    spider = history_spider(tmp_path)
    commits = synthetic_history(MODEL["id"], SHA, 3).commits
    rid = map_raw(RawModelItem("huggingface", MODEL["id"], BASE, MODEL, {}))["id"]
    old_head = "b" * 40  # amended: SHA replaces it on top of commits[1]
    stored = [old_head] + [c["id"] for c in commits[1:]] + [f"{n:040x}" for n in range(30)]
    spider._history_state = {rid: {"commits": {"head": old_head, "recent": stored[:RECENT_COMMITS], "paging": 3},
                                   "commits_paging": {"head": "c" * 40, "paging": 4}}}  # 4 cut short
    request = by_kind(spider.history_requests(MODEL))["commits"]
    (item,) = spider.parse_history_commits(respond(request, commits[:2], headers={
        "X-Total-Count": "17", "Link": f'</api/models/{MODEL["id"]}/commits/{SHA}?p=1&limit=2>; rel="next"'}))
    assert [r["raw"]["id"] for r in item.rows["commits"]] == [SHA]  # one page, only the new commit
    (state,) = item.states
    assert state["head"] == SHA and state["recent"] == [SHA] + stored[1:RECENT_COMMITS]
    assert len(state["recent"]) == RECENT_COMMITS  # bounded, however long the history
    # the amended head is no longer reached: a dropped-commit line, written before the state line
    # and paging 4, cut short, may have stored commits this one did not list again: in no history
    assert item.rows["dropped_commits"] == [{"commit_id": old_head, "head": SHA, "paging": 5},
                                            {"unfinished_after": 3, "head": SHA, "paging": 5}]
    assert item.rows["commits"][0]["paging"] == 5 and state["paging"] == 5
    assert spider.crawler.stats.get_value("ptm/history/rewritten") == 1


def test_a_history_rewritten_below_every_recent_commit_marks_what_was_stored_before_the_paging(tmp_path):
    spider = history_spider(tmp_path)
    commits = synthetic_history(MODEL["id"], SHA, 3).commits  # none of them stored before
    other = {**MODEL, "_id": "other"}
    stored = {"commits": {"head": "b" * 40, "recent": [f"{n:040x}" for n in range(20)]}}
    spider._history_state = {map_raw(RawModelItem("huggingface", MODEL["id"], BASE, m, {}))["id"]: stored
                             for m in (MODEL, other)}
    request = by_kind(spider.history_requests(MODEL))["commits"]
    before = utc_now()
    first, follow = spider.parse_history_commits(respond(request, commits[:2], headers={
        "X-Total-Count": "3", "Link": f'</api/models/{MODEL["id"]}/commits/{SHA}?p=1&limit=2>; rel="next"'}))
    assert "dropped_commits" not in first.rows  # not known before the last page
    (last,) = spider.parse_history_commits(respond(follow, commits[2:3], headers={"X-Total-Count": "3"}))
    (marker,) = last.rows["dropped_commits"]
    # every commit of the new history is stored by this paging, at or after the time it began
    assert marker == {"stored_before": follow.meta["ptm_history"]["since"], "head": SHA, "paging": 1}
    assert before <= marker["stored_before"] <= utc_now()
    # a listing shorter than the hub's count is not the whole history: nothing is marked
    request = by_kind(spider.history_requests(other))["commits"]
    (item,) = spider.parse_history_commits(respond(request, commits[:2], headers={"X-Total-Count": "3"}))
    assert "dropped_commits" not in item.rows and item.states


@pytest.mark.parametrize("total,relisted", [(18, False), (19, True), (17, False)])
def test_a_hub_count_above_the_stored_history_plus_the_new_commits_lists_it_all_again(tmp_path, total, relisted):
    """17 commits stored, one new on top: the hub counting 19 lists one below the stored head
    that was never stored (dated before it); 17, fewer than it can have, loses none."""
    spider = history_spider(tmp_path)
    commits = synthetic_history(MODEL["id"], SHA, 3).commits  # 17, newest first; SHA the new head
    rid = map_raw(RawModelItem("huggingface", MODEL["id"], BASE, MODEL, {}))["id"]
    stored = [c["id"] for c in commits[1:]]
    spider._history_state = {rid: {"commits": {"head": stored[0], "total": 17, "recent": stored[:RECENT_COMMITS]}}}
    request = by_kind(spider.history_requests(MODEL))["commits"]
    link = f'</api/models/{MODEL["id"]}/commits/{SHA}?p=1&limit=2>; rel="next"'
    out = list(spider.parse_history_commits(respond(request, commits[:2], headers={
        "X-Total-Count": str(total), "Link": link})))
    if not relisted:
        (item,) = out
        assert [r["raw"]["id"] for r in item.rows["commits"]] == [SHA] and item.states[0]["head"] == SHA
        assert spider.crawler.stats.get_value("ptm/history/relisted") is None
        return
    item, follow = out  # the stored commit met is stored again, and paging goes on
    assert [r["raw"]["id"] for r in item.rows["commits"]] == [SHA, stored[0]] and item.states == []
    assert follow.meta["ptm_history"]["relist"] and spider.crawler.stats.get_value("ptm/history/relisted") == 1
    (last,) = spider.parse_history_commits(respond(follow, commits[2:4], headers={"X-Total-Count": str(total)}))
    assert [r["raw"]["id"] for r in last.rows["commits"]] == [c["id"] for c in commits[2:4]]  # not stopped
    assert last.states[0]["head"] == SHA and spider.crawler.stats.get_value("ptm/history/rewritten") is None
    assert "dropped_commits" not in last.rows  # 4 listed of the 19 the hub counts: not the whole history


def test_only_commit_ids_go_into_the_commits_state(tmp_path):
    """The state's recent commits are loaded by every crawl: a hostile hub's huge ids stay out."""
    spider = history_spider(tmp_path)
    commits = synthetic_history(MODEL["id"], SHA, 3).commits
    huge = {**commits[1], "id": "x" * 100_000}
    request = by_kind(spider.history_requests(MODEL))["commits"]
    (item,) = spider.parse_history_commits(respond(request, [commits[0], huge, commits[2]],
                                                   headers={"X-Total-Count": "3"}))
    assert len(item.rows["commits"]) == 3  # stored as the hub gave them
    assert item.states[0]["recent"] == [SHA, commits[2]["id"]]


def test_next_links_stay_on_the_hub(tmp_path):
    spider = history_spider(tmp_path)
    request = by_kind(spider.history_requests(MODEL))["files"]
    same = respond(request, [], headers={"Link": f'<{BASE}/api/models/x/tree/{SHA}?cursor=abc>; rel="next"'})
    assert (spider.hub_link(same.url, f"/hf/api/models/x/tree/{SHA}?cursor=abc")
            == f"{BASE}/api/models/x/tree/{SHA}?cursor=abc")
    for elsewhere in ("file:///etc/passwd", BASE.replace("http", "ftp", 1) + "/x", "//evil.example/x"):
        assert spider.hub_link(same.url, elsewhere) is None
    evil = respond(request, [{"path": "a", "type": "file"}],
                   headers={"Link": '<https://evil.example/steal>; rel="next"'})
    item, failure = spider.parse_history_files(evil)
    assert failure.failure["reason"] == "next page link leaves the hub"
    assert item.states == [] and len(item.rows["files"]) == 1  # rows kept; revision not complete


@pytest.mark.parametrize("status,headers,reason", [
    (401, {"X-Error-Message": "Invalid username or password."}, "gated, private or missing (HTTP 401)"),
    (404, {"X-Error-Code": "RevisionNotFound"}, "revision not found (HTTP 404 RevisionNotFound)"),
    (404, {"X-Error-Code": "EntryNotFound"}, "not found (HTTP 404 EntryNotFound)"),
])
def test_refused_calls_become_failure_items(tmp_path, status, headers, reason):
    spider = history_spider(tmp_path)
    request = by_kind(spider.history_requests(MODEL))["commits"]
    (item,) = spider.parse_history_commits(respond(request, {"error": "x"}, status, headers))
    assert item.failure == {"reason": reason, "url": request.url} and item.rows == {} and item.states == []
    assert refusal_reason(status, Headers(headers)) == reason
    assert spider.crawler.stats.get_value(f"ptm/history/failed/{reason}") == 1
    assert spider.crawler.stats.get_value("ptm/history/lost") is None  # an answer: the crawl is not failed


def test_discussions_fetch_only_new_or_changed_ones_and_store_only_new_events(tmp_path):
    spider = history_spider(tmp_path, "discussions")
    rid = map_raw(RawModelItem("huggingface", MODEL["id"], BASE, MODEL, {}))["id"]
    details = synthetic_history(MODEL["id"], SHA, 3).discussions  # 1 discussion
    listed = {k: details[0][k] for k in ("num", "title", "status", "isPullRequest", "pinned")}
    listed["numComments"] = 1
    request = by_kind(spider.history_requests(MODEL))["discussions"]
    (detail_request,) = spider.parse_history_discussions(respond(request, {
        "discussions": [listed], "count": 1, "start": 0, "numClosedDiscussions": 0}))
    (item,) = spider.parse_history_discussion(respond(detail_request, details[0]))
    events = [e["id"] for e in details[0]["events"]]
    assert [e["raw"]["id"] for e in item.rows["discussion_events"]] == events
    # raw of a discussion line: the list entry merged with the details, events apart (docs/history.md)
    (line,) = item.rows["discussions"]
    assert line["raw"] == {**{k: v for k, v in details[0].items() if k != "events"}, "numComments": 1}
    (state,) = item.states
    spider._history_state = {rid: {"discussion": {1: state}}}
    # unchanged list entry: no detail call; changed: only the new event is stored
    assert list(spider.parse_history_discussions(respond(request, {
        "discussions": [listed], "count": 1, "start": 0}))) == []
    (detail_request,) = spider.parse_history_discussions(respond(request, {
        "discussions": [{**listed, "numComments": 2}], "count": 1, "start": 0}))
    new_event = {"id": "f" * 24, "type": "comment", "createdAt": "2025-01-01T00:00:00.000Z", "data": {}}
    (item,) = spider.parse_history_discussion(respond(detail_request, {**details[0],
                                                                        "events": details[0]["events"] + [new_event]}))
    assert [e["raw"]["id"] for e in item.rows["discussion_events"]] == ["f" * 24]


def test_a_pull_request_whose_ref_moved_has_its_details_fetched_though_its_list_entry_did_not(tmp_path):
    spider = history_spider(tmp_path, "refs,discussions")
    rid = map_raw(RawModelItem("huggingface", MODEL["id"], BASE, MODEL, {}))["id"]
    entries = [{"num": n, "title": f"t{n}", "status": "open", "isPullRequest": n != 1} for n in (1, 2, 3)]
    signatures = {e["num"]: discussion_signature(e) for e in entries}
    spider._history_state = {rid: {"discussion": {
        1: {"signature": signatures[1]},
        2: {"signature": signatures[2], "pr_head": "2" * 40},
        3: {"signature": signatures[3]}}}}  # stored by a crawl that did not know the head
    (refs,) = spider.history_requests(MODEL)
    body = {"branches": [], "pullRequests": [{"name": "refs/pr/2", "ref": "refs/pr/2", "targetCommit": "e" * 40},
                                             {"name": "refs/pr/3", "ref": "refs/pr/3", "targetCommit": "3" * 40}]}
    item, listing = spider.parse_history_refs(respond(refs, body))
    assert item.kind == "refs" and listing.meta["ptm_history"]["pr_heads"] == {"2": "e" * 40, "3": "3" * 40}
    page = {"discussions": entries, "count": 3, "start": 0}
    details = list(spider.parse_history_discussions(respond(listing, page)))
    assert [r.url.rsplit("/", 1)[1] for r in details] == ["2", "3"]
    assert spider.crawler.stats.get_value("ptm/history/pr_head_moved") == 2
    (fetched,) = spider.parse_history_discussion(respond(details[0], {"num": 2, "events": []}))
    assert fetched.states[0]["pr_head"] == "e" * 40  # what the next crawl compares with
    # the head the state holds: nothing to fetch
    spider._history_state[rid]["discussion"].update({2: fetched.states[0], 3: {**spider._history_state[rid][
        "discussion"][3], "pr_head": "3" * 40}})
    assert list(spider.parse_history_discussions(respond(listing, page))) == []


@pytest.mark.parametrize("days, fetched", [(0, []), (7, ["1"])])
def test_stored_discussions_are_fetched_again_once_older_than_the_refresh_days(tmp_path, days, fetched):
    spider = history_spider(tmp_path, "discussions", PTM_HUGGINGFACE_DISCUSSIONS_REFRESH_DAYS=days)
    rid = map_raw(RawModelItem("huggingface", MODEL["id"], BASE, MODEL, {}))["id"]
    entries = [{"num": n, "title": f"t{n}", "status": "open", "isPullRequest": False} for n in (1, 2, 3)]
    spider._history_state = {rid: {"discussion": {
        1: {"signature": discussion_signature(entries[0]), "crawled_at": "2020-01-01T00:00:00Z"},
        2: {"signature": discussion_signature(entries[1]), "crawled_at": utc_now()},
        3: {"signature": discussion_signature(entries[2])}}}}  # no time: not refreshed
    (listing,) = spider.history_requests(MODEL)
    got = spider.parse_history_discussions(respond(listing, {"discussions": entries, "count": 3, "start": 0}))
    assert [r.url.rsplit("/", 1)[1] for r in got] == fetched
    assert spider.crawler.stats.get_value("ptm/history/refreshed") == (len(fetched) or None)


def test_the_discussion_list_follows_the_refs_call_however_it_ended(tmp_path):
    from twisted.internet.error import ConnectionRefusedError
    from twisted.python.failure import Failure

    spider = history_spider(tmp_path, "refs,discussions")
    (refs,) = spider.history_requests(MODEL)
    refused, listing = spider.parse_history_refs(respond(refs, {"error": "x"}, 401))
    assert refused.failure and listing.meta["ptm_history"]["pr_heads"] is None
    failure = Failure(ConnectionRefusedError("refused"))
    failure.request = refs
    lost, listing = spider.history_failed(failure)
    assert lost.failure and listing.url.endswith("/discussions?p=0")
    malformed, listing = spider.parse_history_refs(respond(refs, ["not", "a", "dict"]))
    assert malformed.failure["reason"] == "unexpected JSON" and listing.url.endswith("/discussions?p=0")
    assert list(history_spider(tmp_path, "refs").parse_history_refs(respond(refs, {"branches": []})))[1:] == []


def test_the_discussion_signature_moves_with_every_list_field_an_event_can_change():
    entry = {"num": 3, "title": "t", "status": "open", "isPullRequest": True, "pinned": False, "numComments": 2,
             "numReactionUsers": 1, "topReactions": [{"reaction": "👍", "count": 1}],
             "repoOwner": {"name": "o", "type": "org", "isParticipating": False, "isDiscussionAuthor": False},
             "author": {"name": "u", "avatarUrl": "/a.png"}, "createdAt": "2024-03-01T10:00:00.000Z"}
    same = discussion_signature(entry)
    # the same user adding a second reaction: numReactionUsers stays
    assert discussion_signature({**entry, "topReactions": [{"reaction": "👍", "count": 1},
                                                            {"reaction": "🔥", "count": 1}]}) != same
    # the repo's owner pushing to the pull request: no comment, but the owner now takes part
    assert discussion_signature({**entry, "repoOwner": {**entry["repoOwner"], "isParticipating": True}}) != same
    assert discussion_signature({**entry, "author": {"name": "u", "avatarUrl": "/b.png"}}) == same


def test_discussion_list_pages_until_start_plus_length_reaches_count(tmp_path):
    spider = history_spider(tmp_path, "discussions")
    request = by_kind(spider.history_requests(MODEL))["discussions"]
    entry = {"num": 1, "title": "t", "status": "open"}
    more = [r for r in spider.parse_history_discussions(respond(request, {"discussions": [entry], "count": 3,
                                                                          "start": 0}))]
    assert [r.url.rsplit("/", 1)[1] for r in more] == ["1", "discussions?p=1"]
    last = list(spider.parse_history_discussions(respond(more[1], {"discussions": [{**entry, "num": 2},
                                                                                   {**entry, "num": 3}],
                                                                   "count": 3, "start": 1})))
    assert [r.url.rsplit("/", 1)[1] for r in last] == ["2", "3"]


def test_pipeline_stores_rows_then_state_and_keeps_items_out_of_the_feed(tmp_path):
    crawler = project_crawler(HuggingfaceSpider, {"PTM_DATA_DIR": str(tmp_path)})
    stage = HistoryPipeline.from_crawler(crawler)
    item = HistoryItem("huggingface", 7, "o/m", "commits", {"commits": [{"raw": {"id": "c1"}}]},
                       [{"kind": "commits", "head": "c1"}])
    with pytest.raises(HistoryStored):
        asyncio.run(stage.process_item(item))
    raw = RawModelItem("huggingface", "o/m", BASE, {})
    assert asyncio.run(stage.process_item(raw)) is raw
    tree = DatasetTree(tmp_path)
    (line,) = [json.loads(x) for x in tree.path(history_file("huggingface", "commits")).read_text().splitlines()]
    assert (line["model"], line["model_id"], line["raw"]) == (7, "o/m", {"id": "c1"}) and line["crawled_at"]
    assert load_state(tree, "huggingface")[7]["commits"]["head"] == "c1"
    assert crawler.stats.get_value("ptm/history/stored/commits") == 1


def test_a_torn_line_of_a_killed_crawl_is_skipped_and_never_glued_to(tmp_path):
    tree = DatasetTree(tmp_path)
    store = HistoryStore(tree)
    path = tree.path(history_file("huggingface", "commits"))
    path.parent.mkdir(parents=True)
    path.write_bytes(b'{"model":1,"model_id":"o/m","raw":{"id":"c0"}}\n{"model":1,"model_id":"o/m","ra')
    store.write(HistoryItem("huggingface", 1, "o/m", "commits", {"commits": [{"raw": {"id": "c1"}}]}))
    assert [r[2] for r in rows(tmp_path, "commit")] == ["c1", "c0"]


@pytest.mark.parametrize("block", [1, 7, 64, 1 << 16])
def test_history_files_read_newest_first_across_blocks_skipping_torn_and_broken_lines(tmp_path, block):
    from ptmscrape.history.tables import _newest_first

    path = tmp_path / "x.jsonl"
    path.write_bytes(b'{"n":1}\n[2]\n{"n":3,"s":"\xc3\xa9\\n"}\nnot json\n{"n":5}\n{"n":6,"torn')
    assert [o["n"] for o in _newest_first(path, block)] == [5, 3, 1]
    path.write_bytes(b'{"n":1}\n{"n":2}\n')
    assert [o["n"] for o in _newest_first(path, block)] == [2, 1]
    path.write_bytes(b"")
    assert list(_newest_first(path, block)) == []
    assert list(_newest_first(tmp_path / "missing.jsonl", block)) == []


def _write(tmp_path, name, lines):
    path = DatasetTree(tmp_path).path(history_file("huggingface", name))
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path, "a") as f:
        for line in lines:
            f.write(json.dumps(line) + "\n")


def test_tables_give_each_key_once_newest_wins_and_only_complete_file_lists(tmp_path):
    m = {"model": 5, "model_id": "o/m", "crawled_at": "2025-01-01T00:00:00Z"}
    _write(tmp_path, "commits", [{**m, "raw": {"id": "c1", "title": "t"}}, {**m, "raw": {"id": "c2", "authors": [
        {"user": "a", "avatar": "x"}, {"user": "b", "avatar": "y"}]}}, {**m, "raw": {"id": "c1", "title": "t"}}])
    _write(tmp_path, "discussions", [{**m, "num": 1, "raw": {"num": 1, "status": "open", "isPullRequest": False}},
                                     {**m, "num": 1, "raw": {"num": 1, "status": "closed", "author": {"name": "u"}}}])
    _write(tmp_path, "discussion_events", [
        {**m, "num": 1, "raw": {"id": "e1", "type": "comment", "data": {"hidden": True, "latest": {"raw": "hi"}}}},
        {**m, "num": 1, "raw": {"id": "e2", "type": "status-change", "author": {"name": "u"},
                                "data": {"status": "closed"}}}])
    _write(tmp_path, "refs", [{**m, "raw": {"branches": [{"name": "main", "ref": "refs/heads/main",
                                                          "targetCommit": "c0"}]}},
                              {**m, "raw": {"branches": [{"name": "main", "ref": "refs/heads/main",
                                                          "targetCommit": "c2"}],
                                            "tags": [{"name": "v1", "ref": "refs/tags/v1", "targetCommit": "c1"}],
                                            "pullRequests": [{"name": "refs/pr/1", "ref": "refs/pr/1",
                                                              "targetCommit": "p1"}]}}])
    lfs = {"oid": "9" * 64, "size": 10, "pointerSize": 134}
    _write(tmp_path, "files", [{**m, "revision": "r1", "raw": {"path": "a", "type": "file", "size": 1}},
                               {**m, "revision": "r2", "raw": {"path": "a", "type": "file", "size": 2, "lfs": lfs}},
                               {**m, "revision": "r3", "raw": {"path": "b", "type": "file"}}])  # r3 unfinished
    _write(tmp_path, "state", [{**m, "kind": "files", "revision": "r1"}, {**m, "kind": "files", "revision": "r2"}])

    def table(name):
        cols = TABLES[name].columns
        return [dict(zip(cols, r, strict=True)) for r in rows(tmp_path, name)]

    # newest first
    assert [(c["commit_id"], c["authors"]) for c in table("commit")] == [("c1", "[]"), ("c2", '["a","b"]')]
    (d,) = table("discussion")
    assert (d["status"], d["author"], d["is_pull_request"]) == ("closed", "u", None)
    e2, e1 = table("discussion_event")  # newest first
    assert (e1["author"], e1["hidden"], e1["text"]) == (None, 1, "hi")  # a deleted user: NULL
    assert (e2["type"], json.loads(e2["data"])) == ("status-change", {"status": "closed"})
    assert {(r["ref_type"], r["ref"], r["target_commit"]) for r in table("ref")} == {
        ("branch", "refs/heads/main", "c2"), ("tag", "refs/tags/v1", "c1"), ("pull_request", "refs/pr/1", "p1")}
    (f,) = table("file")
    assert (f["revision"], f["path"], f["size"], f["lfs_oid"], f["lfs_size"]) == ("r2", "a", 2, "9" * 64, 10)

    db = sqlite3.connect(":memory:")
    for t in TABLES.values():
        db.execute(t.ddl)
        db.executemany(f'INSERT INTO "{t.name}" VALUES ({",".join("?" * len(t.columns))})', rows(tmp_path, t.name))
    counts = {t: db.execute(f'SELECT COUNT(*) FROM "{t}"').fetchone()[0] for t in TABLES}
    assert counts == {"commit": 2, "ref": 3, "discussion": 1, "discussion_event": 2, "file": 1}


def test_the_commit_table_marks_what_a_force_push_dropped_until_it_is_stored_again(tmp_path):
    m = {"model": 5, "model_id": "o/m"}
    at = "2025-01-0{}T00:00:00Z".format
    _write(tmp_path, "commits", [{**m, "crawled_at": at(1), "raw": {"id": c}} for c in ("c1", "c2", "c3", "c4")]
           + [{**m, "model": 6, "crawled_at": at(1), "raw": {"id": "x1"}},
              {**m, "crawled_at": at(3), "raw": {"id": "n1"}}, {**m, "crawled_at": at(3), "raw": {"id": "c4"}},
              {**m, "crawled_at": at(5), "raw": {"id": "c3"}}])
    _write(tmp_path, "dropped_commits", [
        {**m, "crawled_at": at(2), "commit_id": "c1", "head": "n0"},  # met c2: c1 above it dropped
        {**m, "crawled_at": at(4), "stored_before": at(3), "head": "n1"},  # the whole history listed again
        {**m, "crawled_at": at(4), "commit_id": "c1", "head": "n1"},  # seen again (a crawl killed after it)
        {**m, "crawled_at": at(4), "commit_id": "c2", "stored_before": at(3)},  # not ours: both
        {**m, "model": True, "crawled_at": at(4), "commit_id": "x1"}])
    cols = TABLES["commit"].columns
    got = {(r[cols.index("model")], r[cols.index("commit_id")]): r[cols.index("dropped_at")]
           for r in rows(tmp_path, "commit")}
    assert got == {(5, "c1"): at(2), (5, "c2"): at(4), (5, "c3"): None,  # stored again after the drop
                   (5, "c4"): None, (5, "n1"): None, (6, "x1"): None}


def crawl_commits(tmp_path, commits, page=2, killed_after=None):
    """One crawl's commit paging of MODEL on a hub whose history is ``commits`` (newest first),
    its items stored as the history stage stores them (``killed_after`` pages: the rest never read)."""
    spider = history_spider(tmp_path, history="commits", PTM_HUGGINGFACE_COMMITS_PAGE_SIZE=page)
    store = HistoryStore(DatasetTree(tmp_path))
    head = commits[0]["id"]
    pending = [r for r in spider.history_requests({**MODEL, "sha": head}) if isinstance(r, Request)]
    while pending:
        request = pending.pop()
        p = int(request.url.partition("&p=")[2] or 0)
        if p == killed_after:
            break
        more = (p + 1) * page < len(commits)
        headers = {"X-Total-Count": str(len(commits)),
                   **({"Link": f'</api/models/{MODEL["id"]}/commits/{head}?limit={page}&p={p + 1}>; rel="next"'}
                      if more else {})}
        for out in spider.parse_history_commits(respond(request, commits[p * page:(p + 1) * page], headers=headers)):
            if isinstance(out, HistoryItem):
                store.write(out)
            else:
                pending.append(out)
    return spider


def live_and_dropped(tmp_path):
    cols = TABLES["commit"].columns
    got = {r[cols.index("commit_id")]: r[cols.index("dropped_at")] for r in rows(tmp_path, "commit")}
    return {c for c, at in got.items() if at is None}, {c for c, at in got.items() if at is not None}


def test_back_to_back_crawls_within_one_second_neither_keep_dropped_commits_live_nor_drop_listed_ones(
        tmp_path, monkeypatch):
    """History lines have whole-second times: crawls one right after the other store their lines
    in the same second. What is dropped must not depend on it (every crawl here is in one second)."""
    for module in ("ptmscrape.history.spider", "ptmscrape.history.store"):
        monkeypatch.setattr(f"{module}.utc_now", lambda: "2026-01-01T00:00:00Z")
    original = synthetic_history(MODEL["id"], SHA, 3).commits  # 17 commits
    ids = [c["id"] for c in original]
    crawl_commits(tmp_path, original)
    # squashed (deeper than the recent commits): listed whole again, every stored commit left out dropped
    squashed = [{**original[0], "id": "e" * 40}, {**original[1], "id": "f" * 40}]
    crawl_commits(tmp_path, squashed)
    assert live_and_dropped(tmp_path) == ({"e" * 40, "f" * 40}, set(ids))
    # pushed back: listed whole again (none of the squashed commits is in it): live again
    crawl_commits(tmp_path, original)
    assert live_and_dropped(tmp_path) == (set(ids), {"e" * 40, "f" * 40})
    # the head amended: paging meets the stored commits below it, the old head dropped
    amended = [{**original[0], "id": "b" * 40}, *original[1:]]
    crawl_commits(tmp_path, amended)
    assert live_and_dropped(tmp_path) == ({"b" * 40, *ids[1:]}, {ids[0], "e" * 40, "f" * 40})
    # and pushed back: the old head listed again is live, the amended one dropped
    crawl_commits(tmp_path, original)
    assert live_and_dropped(tmp_path) == (set(ids), {"b" * 40, "e" * 40, "f" * 40})




def test_commits_a_paging_cut_short_stored_are_dropped_once_the_next_paging_finds_them_gone(tmp_path):
    """A re-crawl pages new commits and is killed after a page of them (stored, no state line);
    then the hub's history drops them (a force-push). The paging that completes meets the commits
    stored before: what the killed paging stored, not listed again, is in no history any more."""
    original = synthetic_history(MODEL["id"], SHA, 3).commits  # 5 commits
    ids = [c["id"] for c in original]
    crawl_commits(tmp_path, original)
    pushed = [{**original[0], "id": f"{n:x}" * 40} for n in (1, 2, 3)]  # 3 new commits on top
    crawl_commits(tmp_path, pushed + original, killed_after=1)  # stores the first 2 of them
    force_pushed = [{**original[0], "id": "d" * 40}]  # the 3 replaced by another one
    crawl_commits(tmp_path, force_pushed + original)
    assert live_and_dropped(tmp_path) == ({"d" * 40, *ids}, {"1" * 40, "2" * 40})
    # and the export marks them as the tables do
    from ptmscrape.export.sqlite import export_sqlite
    export_sqlite(tmp_path, tmp_path / "d.sqlite")
    db = sqlite3.connect(tmp_path / "d.sqlite")
    assert {r[0] for r in db.execute('SELECT commit_id FROM "commit" WHERE dropped_at IS NOT NULL')} == {
        "1" * 40, "2" * 40}
    db.close()
    # a paging that completes after one cut short, the history unchanged: nothing more dropped
    two_more = [{**original[0], "id": f"{n:x}" * 40} for n in (8, 9)] + force_pushed + original
    crawl_commits(tmp_path, two_more, killed_after=1)
    crawl_commits(tmp_path, two_more)
    assert live_and_dropped(tmp_path) == ({"8" * 40, "9" * 40, "d" * 40, *ids}, {"1" * 40, "2" * 40})
    # cut short again, then the hub's head put back to the one stored: its commits are still asked
    # for (once), to find what the paging cut short stored is gone
    crawl_commits(tmp_path, [{**original[0], "id": f"{n:x}" * 40} for n in (6, 7)] + two_more, killed_after=1)
    spider = crawl_commits(tmp_path, two_more)
    assert spider.crawler.stats.get_value("ptm/history/calls/commits") == 1
    assert live_and_dropped(tmp_path) == ({"8" * 40, "9" * 40, "d" * 40, *ids},
                                          {"1" * 40, "2" * 40, "6" * 40, "7" * 40})
    spider = crawl_commits(tmp_path, two_more)  # and then no more
    assert spider.crawler.stats.get_value("ptm/history/unchanged/commits") == 1

def test_lines_of_versions_that_did_not_number_pagings_are_older_than_every_numbered_one(tmp_path):
    m = {"model": 5, "model_id": "o/m"}
    at = "2025-01-0{}T00:00:00Z".format
    _write(tmp_path, "commits", [{**m, "crawled_at": at(1), "raw": {"id": c}} for c in ("c1", "c2", "c3")]
           + [{**m, "crawled_at": at(2), "paging": 1, "raw": {"id": "c2"}}])  # upgraded: c2 listed again
    _write(tmp_path, "dropped_commits", [
        {**m, "crawled_at": at(1), "commit_id": "c3"},  # unnumbered, with c3 in its second: times decide
        {**m, "crawled_at": at(3), "commit_id": "c2"},  # unnumbered: older than c2's numbered line
        {**m, "crawled_at": at(2), "paging": 1, "stored_before": at(2), "head": "c2"}])  # drops c1 and c3
    cols = TABLES["commit"].columns
    got = {r[cols.index("commit_id")]: (r[cols.index("dropped_at")], r[cols.index("paging")])
           for r in rows(tmp_path, "commit")}
    assert got == {"c1": (at(2), None), "c2": (None, 1), "c3": (at(1), None)}

def test_tables_of_an_empty_data_dir_are_empty(tmp_path):
    assert all(list(rows(tmp_path, name)) == [] for name in TABLES)


def test_ratelimit_header_gives_remaining_reset_and_quota():
    headers = Headers({"RateLimit": '"api";r=489;t=189', "RateLimit-Policy": '"fixed window";"api";q=500;w=300'})
    assert ratelimit_remaining(headers) == (489, 189.0, 500)
    assert ratelimit_remaining(Headers({"RateLimit": '"api";r=3;t=10'})) == (3, 10.0, None)
    assert ratelimit_remaining(Headers({})) is None


def test_requests_are_paced_once_few_calls_are_left_and_not_before(monkeypatch):
    crawler = project_crawler(HuggingfaceSpider, {"PTM_RATELIMIT_PACE_BELOW": 0.1})
    mw = RateLimitPacingMiddleware.from_crawler(crawler)
    slept = []

    async def fake_sleep(crawler, seconds):
        slept.append(seconds)
        return True
    monkeypatch.setattr("ptmscrape.middlewares.sleep_unless_closing", fake_sleep)
    request = Request("https://hub.example/api/models/x/refs")
    policy = {"RateLimit-Policy": '"fixed window";"api";q=500;w=300'}

    def answer(remaining, reset):
        mw.process_response(request, TextResponse(request.url, body=b"[]", headers={
            "RateLimit": f'"api";r={remaining};t={reset}', **policy}))

    answer(400, 200)  # plenty left
    for _ in range(3):
        asyncio.run(mw.process_request(request))
    assert slept == []
    answer(9, 100)  # under 10% of 500: one call every 100 / 10 s
    for _ in range(3):
        asyncio.run(mw.process_request(request))
    # the first goes at once, the next ones a slot of 100 / (9 + 1) s apart (the clock is frozen here)
    assert len(slept) == 2 and 9.9 < slept[0] <= 10 and 19.9 < slept[1] <= 20
    assert crawler.stats.get_value("ptm/ratelimit/paced") == 2
    answer(480, 300)  # a new window
    asyncio.run(mw.process_request(request))
    assert len(slept) == 2
    other = Request("https://other.example/x")
    assert asyncio.run(mw.process_request(other)) is None and len(slept) == 2


def test_a_call_failing_after_retries_is_recorded_without_marking_the_listing_incomplete(tmp_path):
    from twisted.internet.error import ConnectionRefusedError
    from twisted.python.failure import Failure

    spider = history_spider(tmp_path)
    request = by_kind(spider.history_requests(MODEL))["files"]
    failure = Failure(ConnectionRefusedError("refused"))
    failure.request = request
    (item,) = spider.history_failed(failure)
    assert item.kind == "files" and item.failure["reason"] == "failed after retries (ConnectionRefusedError)"
    stats = spider.crawler.stats
    assert stats.get_value("ptm/history/failed/files") == 1 and stats.get_value("ptm/history/calls/files") == 1
    assert stats.get_value("ptm/pages/failed") is None  # the removed-models report still runs
    assert stats.get_value("ptm/history/lost/failed after retries (ConnectionRefusedError)") == 1


def test_a_malformed_history_page_given_up_is_a_failure_of_its_model_not_a_lost_listing_page(tmp_path):
    spider = history_spider(tmp_path, "commits,discussions")  # not crawling: given up at once
    calls = by_kind(spider.history_requests(MODEL))
    (item,) = spider.parse_history_commits(text_response(calls["commits"].url, '[{"id": "abc", "tit',
                                                         calls["commits"]))
    assert (item.kind, item.failure["reason"], item.failure["url"]) == (
        "commits", "malformed JSON", calls["commits"].url)
    assert item.failure["detail"].startswith("JSONDecodeError: Unterminated string") and item.rows == {}
    (item,) = spider.parse_history_discussions(respond(calls["discussions"], {"error": "x"}))
    assert (item.kind, item.failure["reason"], item.failure["detail"]) == (
        "discussions", "unexpected JSON", "no discussions list")
    stats = spider.crawler.stats
    assert stats.get_value("ptm/history/lost/malformed JSON") == 1
    assert stats.get_value("ptm/history/lost/unexpected JSON") == 1
    assert stats.get_value("ptm/pages/failed") is None  # the listing is whole: the removed-models report runs


def test_each_lost_call_is_signalled_with_its_request_to_be_fetched_again_and_no_refusal_is(tmp_path):
    """``history_call_lost`` carries the request a JOBDIR job saves and fetches again on resume
    (``ptmscrape/jobdir.py``): from the errback, a page given up as malformed, a next link off the hub."""
    from twisted.internet.error import ConnectionRefusedError
    from twisted.python.failure import Failure

    from ptmscrape import signals as ptm_signals

    spider = history_spider(tmp_path)
    lost = []
    spider.crawler.signals.connect(lambda reason, request: lost.append((reason, request)),
                                   signal=ptm_signals.history_call_lost, weak=False)
    calls = by_kind(spider.history_requests(MODEL))
    failure = Failure(ConnectionRefusedError("refused"))
    failure.request = calls["files"]
    list(spider.history_failed(failure))
    list(spider.parse_history_commits(text_response(calls["commits"].url, '[{"id": "abc", "tit', calls["commits"])))
    off_hub = respond(calls["files"], [], headers={"Link": '<https://evil.example/x>; rel="next"'})
    list(spider.parse_history_files(off_hub))
    list(spider.parse_history_refs(respond(calls["refs"], {"error": "x"}, 401)))  # an answer, not lost
    assert lost == [("failed after retries (ConnectionRefusedError)", calls["files"]),
                    ("malformed JSON", calls["commits"]), ("next page link leaves the hub", calls["files"])]
    assert spider.crawler.stats.get_value("ptm/history/lost") == 3


def test_tree_entries_without_a_path_are_counted_and_named_by_model(tmp_path, caplog):
    spider = history_spider(tmp_path)
    request = by_kind(spider.history_requests(MODEL))["files"]
    page = [{"type": "file", "path": "a", "size": 1}, {"type": "file", "name": "weird.bin"}, "junk"]
    with caplog.at_level("WARNING"):
        (item,) = spider.parse_history_files(respond(request, page))
    assert [r["raw"]["path"] for r in item.rows["files"]] == ["a"]
    assert item.states == [{"kind": "files", "revision": SHA, "count": 1}]  # the hub would serve them again
    assert spider.crawler.stats.get_value("ptm/history/malformed/files") == 2
    assert f"History of huggingface:{MODEL['id']} (files): 2 malformed entries skipped (no path)" in caplog.text
    request = by_kind(spider.history_requests({**MODEL, "_id": "other"}))["commits"]
    with caplog.at_level("WARNING"):
        list(spider.parse_history_commits(respond(request, [{"id": SHA}, {"title": "no id"}])))
    assert spider.crawler.stats.get_value("ptm/history/malformed/commits") == 1
    assert "(commits): 1 malformed entry skipped (no id)" in caplog.text


def test_without_a_listed_sha_commits_stop_at_the_stored_head_and_files_are_asked_again(tmp_path):
    spider = history_spider(tmp_path)
    model = {"_id": MODEL["_id"], "id": MODEL["id"]}  # e.g. PTM_HUGGINGFACE_EXPAND without sha
    rid = map_raw(RawModelItem("huggingface", MODEL["id"], BASE, model, {}))["id"]
    spider._history_state = {rid: {"commits": {"head": SHA}, "files": {"revision": "main"}}}
    calls = by_kind(spider.history_requests(model))
    assert calls["commits"].url.endswith("/commits/main?limit=2")
    assert calls["files"].url.endswith("/tree/main?recursive=true&expand=true")
    (item,) = spider.parse_history_commits(respond(calls["commits"], [{"id": SHA}, {"id": "b" * 40}],
                                                   headers={"Link": '</api/models/x/commits/main?p=1>; rel="next"'}))
    assert item.rows["commits"] == [] and item.states[0]["head"] == SHA  # nothing new: one call


def test_refusals_are_named_at_warning_up_to_a_limit_then_at_debug(tmp_path, caplog):
    # A crawl of a big hub meets thousands of gated models, each refusing every kind of call: a
    # WARNING a call buried the log's real problems. failures.jsonl lists them all.
    spider = history_spider(tmp_path)
    refusals = []
    for i in range(15):
        model = {**MODEL, "id": f"gated/m{i}", "_id": f"{0x670000000000000000000100 + i:024x}"}
        refusals.append(by_kind(spider.history_requests(model))["commits"])
    with caplog.at_level(logging.DEBUG, logger="huggingface"):
        for request in refusals:
            list(spider.parse_history_commits(respond(request, {"error": "x"}, 401)))
    named = [r for r in caplog.records if "not stored: gated, private or missing" in r.getMessage()]
    assert len(named) == 15  # every one named, the first ten at WARNING
    assert [r.levelno for r in named] == [logging.WARNING] * 10 + [logging.DEBUG] * 5
    assert "huggingface:gated/m0 (commits)" in named[0].getMessage()
    (more,) = [r for r in caplog.records if r.getMessage().startswith("More history calls refused")]
    assert more.levelno == logging.WARNING and "huggingface/history/failures.jsonl" in more.getMessage()
    assert spider.crawler.stats.get_value("ptm/history/failed/gated, private or missing (HTTP 401)") == 15
