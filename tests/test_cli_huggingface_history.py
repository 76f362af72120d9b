"""Real ``scrapy crawl huggingface -a history=…`` runs (subprocess) against the local replica's
history endpoints: everything served lands once, re-crawls ask only what can have changed, and
refused calls are recorded per model."""

import json
import math
import signal
from collections import Counter

import pytest

from ptmscrape.dataset.jsonl import read_jsonl
from ptmscrape.history.spider import RECENT_COMMITS
from ptmscrape.history.store import digest
from ptmscrape.history.tables import TABLES, rows
from tests.crawl import run_crawl
from tests.replicas.huggingface import HuggingFaceReplica
from tests.replicas.huggingface_history import HubHistory
from tests.replicas.server import Reply

PREFIX = "/hf"  # a mirror under a path: links must keep it


@pytest.fixture
def hub(hf_models):
    with HuggingFaceReplica(hf_models, repos=False) as replica:
        yield HubHistory(replica, commits_page=50, discussions_page=3, tree_page=4, prefix=PREFIX)


def crawl(hub, tmp_path, name, args=None, check=True, **settings):
    return run_crawl("huggingface", tmp_path, data_dir=tmp_path / "data", out_name=f"{name}.jsonl",
                     args={"history": "commits,refs,discussions,files", **(args or {})},
                     settings={"PTM_HUGGINGFACE_URL": hub.hub.url + PREFIX, "PTM_HUGGINGFACE_PAGE_SIZE": 5,
                               "PTM_CLONE": 0, "PTM_HUGGINGFACE_COMMITS_PAGE_SIZE": 5, **settings}, check=check)


def history(data, kind):
    return list(read_jsonl(data / "huggingface/history" / f"{kind}.jsonl"))  # skips a torn line


def calls(hub, pattern):
    return hub.hub.replica.count("GET", pattern)


def table_keys(data, name):
    table = TABLES[name]
    at = [table.columns.index(c) for c in ("model_id", *table.key[1:])]
    keys = [tuple(row[i] for i in at) for row in rows(data, name)]
    assert len(keys) == len(set(keys)), f"{name}: a row twice"
    return set(keys)


def assert_everything_once(hub, data, records):
    """Every served commit, ref, discussion, event and file: once in the tree, once in the tables."""
    by_model = {r["ModelOwner"] + "/" + r["ModelName"]: r["id"] for r in records}
    commits = [(c["model_id"], c["raw"]["id"]) for c in history(data, "commits")]
    assert Counter(commits).most_common(1)[0][1] == 1 and set(commits) == hub.all_commits()
    events = [(e["model_id"], e["num"], e["raw"]["id"]) for e in history(data, "discussion_events")]
    assert Counter(events).most_common(1)[0][1] == 1 and set(events) == hub.all_events()
    files = [(f["model_id"], f["revision"], f["raw"]["path"]) for f in history(data, "files")]
    assert Counter(files).most_common(1)[0][1] == 1  # once per revision: the tree keeps older file lists
    head = {m: hub.hub.models[m]["sha"] for m in hub.served()}
    assert {(m, path) for m, rev, path in files if rev == head[m]} == hub.all_files()
    # a discussion that changed has a line per version; no version twice
    versions = [(d["model_id"], d["num"], digest(d["raw"])) for d in history(data, "discussions")]
    assert Counter(versions).most_common(1)[0][1] == 1 and {v[:2] for v in versions} == hub.all_discussions()
    refs = history(data, "refs")  # the whole body, once per version
    assert Counter((r["model_id"], digest(r["raw"])) for r in refs).most_common(1)[0][1] == 1
    assert {r["model_id"] for r in refs} == set(hub.served())
    for line in [*refs, *history(data, "files"), *history(data, "discussions")]:
        assert line["model"] == by_model[line["model_id"]]  # the record id of <hub>.jsonl
    assert table_keys(data, "commit") == hub.all_commits()
    assert table_keys(data, "ref") == hub.all_refs()
    assert table_keys(data, "discussion") == hub.all_discussions()
    assert table_keys(data, "discussion_event") == hub.all_events()
    assert table_keys(data, "file") == hub.all_files()


def list_pages(hub):
    """Discussion list calls one crawl needs to see every model's discussions."""
    return sum(max(1, math.ceil(len(h.discussions) / hub.discussions_page)) for h in hub.served().values())


def test_history_crawl_stores_everything_served_once_and_recrawls_ask_only_what_changed(tmp_path, hub):
    data = tmp_path / "data"
    first = crawl(hub, tmp_path, "1")
    assert len(first.items) == 12  # history rows never reach the feed
    assert_everything_once(hub, data, first.records("huggingface"))
    assert sum(len(h.commits) > 5 for h in hub.histories.values()) >= 3  # multi-page commits
    assert sum(len(h.discussions) > 3 for h in hub.histories.values()) >= 3  # multi-page discussions
    assert calls(hub, r"/commits/") > 12 and calls(hub, r"/discussions\?p=[1-9]") > 0
    assert calls(hub, r"/tree/.*cursor=") > 0
    stats = first.stats
    assert stats["ptm/history/models"] == 12
    assert stats["ptm/history/calls"] == sum(stats[f"ptm/history/calls/{k}"] for k in (
        "commits", "refs", "discussions", "discussion", "files"))
    assert "History at the end: 12 models, " in first.log
    author = TABLES["discussion_event"].columns.index("author")
    deleted = [r for r in rows(data, "discussion_event") if r[author] is None]
    assert deleted  # replies of deleted users are kept, author NULL
    sizes = {p.name: p.stat().st_size for p in (data / "huggingface/history").iterdir()}

    before = len(hub.hub.replica.requests)
    second = crawl(hub, tmp_path, "2")
    new = hub.hub.replica.requests[before:]
    history_calls = [p for _, p in new if "/api/models/" in p and p.split("?")[0].count("/") > 5]
    # unchanged: one refs call per model and the discussion lists; no commits, trees or details
    assert len(history_calls) == 12 + list_pages(hub), history_calls
    assert all("/refs?" in p or "/discussions?p=" in p for p in history_calls)
    assert {p.name: p.stat().st_size for p in (data / "huggingface/history").iterdir()} == sizes
    assert second.stats["ptm/history/unchanged/commits"] == second.stats["ptm/history/unchanged/files"] == 12

    pushed, talked, opened = sorted(hub.histories)[:3]
    hub.push_commit(pushed)
    talked_num = next(d["num"] for d in hub.histories[talked].discussions)
    hub.comment(talked, talked_num)
    hub.open_discussion(opened)
    before = len(hub.hub.replica.requests)
    third = crawl(hub, tmp_path, "3")
    new = [p for _, p in hub.hub.replica.requests[before:]]
    assert [p for p in new if "/commits/" in p] == [
        f"{PREFIX}/api/models/{pushed}/commits/{hub.hub.models[pushed]['sha']}?limit=5"]  # one page: new + known
    tree_pages = math.ceil(len(hub.histories[pushed].files) / hub.tree_page)
    assert len([p for p in new if "/tree/" in p]) == tree_pages
    details = sorted(p for p in new if "/discussions/" in p)
    assert details == sorted([f"{PREFIX}/api/models/{talked}/discussions/{talked_num}",
                              f"{PREFIX}/api/models/{opened}/discussions/{len(hub.histories[opened].discussions)}"])
    assert_everything_once(hub, data, third.records("huggingface"))
    files_table = [r for r in rows(data, "file") if r[1] == pushed]
    assert {r[2] for r in files_table} == {hub.hub.models[pushed]["sha"]}  # files at the new revision only


def test_gated_and_missing_revisions_are_recorded_per_model_and_the_crawl_goes_on(tmp_path, hub):
    gated, moved = sorted(hub.histories)[:2]
    hub.gated.add(gated)
    hub.hub.models[moved]["sha"] = "f" * 40  # listed at a revision the hub no longer has
    result = crawl(hub, tmp_path, "1")
    assert result.stats["finish_reason"] == "finished" and len(result.items) == 12
    failures = {(f["model_id"], f["kind"]): f["reason"] for f in history(result.data_dir, "failures")}
    assert failures == {
        **{(gated, k): "gated, private or missing (HTTP 401)" for k in ("commits", "refs", "discussions", "files")},
        (moved, "commits"): "revision not found (HTTP 404 RevisionNotFound)",
        (moved, "files"): "revision not found (HTTP 404 RevisionNotFound)",
    }
    stats = result.stats
    assert stats["ptm/history/failed/gated, private or missing (HTTP 401)"] == 4
    assert stats["ptm/history/failed/revision not found (HTTP 404 RevisionNotFound)"] == 2
    assert f"History of huggingface:{gated} (refs) not stored: gated, private or missing (HTTP 401)" in result.log
    data = result.data_dir
    assert {c["model_id"] for c in history(data, "commits")} == set(hub.histories) - {gated, moved}
    assert {r["model_id"] for r in history(data, "refs")} == set(hub.histories) - {gated}
    assert {d["model_id"] for d in history(data, "discussions")} == {m for m, _ in hub.all_discussions()}
    state = history(data, "state")
    assert not [s for s in state
                if s["model_id"] in (gated,) or (s["model_id"] == moved and s["kind"] in ("commits", "files"))]


FAST = {"RETRY_TIMES": 1, "PTM_RETRY_BACKOFF": 0.01, "PTM_RATELIMIT_MAX_RETRIES": 1, "PTM_PAGE_RETRIES": 1}


def test_lost_history_calls_are_recorded_per_model_and_fail_the_crawl(tmp_path, hub):
    down, cut, shapeless, limited = sorted(hub.histories)[3:7]

    def faults(incoming, call_next):
        if incoming.path.endswith(f"/{down}/refs"):
            return Reply.text("boom", 503)
        if f"/{cut}/commits/" in incoming.path:
            return Reply(200, b'[{"id": "abc", "tit', {"Content-Type": "application/json"})
        if incoming.path.endswith(f"/{shapeless}/discussions"):
            return Reply.json({"error": "x"})
        if f"/{limited}/tree/" in incoming.path:
            return Reply.json({"error": "rate limited"}, 429, headers={"Retry-After": "0"})
        return call_next()

    hub.hub.replica.interceptors.append(faults)
    result = crawl(hub, tmp_path, "1", check=False, **FAST)
    assert result.returncode == 1 and "Traceback" not in result.log  # README "Exit status"
    failures = {(f["model_id"], f["kind"]): f["reason"] for f in history(result.data_dir, "failures")}
    assert failures == {(down, "refs"): "failed after retries (HTTP 503)", (cut, "commits"): "malformed JSON",
                        (shapeless, "discussions"): "unexpected JSON",
                        (limited, "files"): "rate limited after retries (HTTP 429)"}
    stats = result.stats
    assert stats["ptm/history/lost"] == 4 and "ptm/pages/failed" not in stats
    assert stats["ptm/pages/retried"] == 2  # malformed pages are fetched again first (PTM_PAGE_RETRIES)
    assert calls(hub, rf"/{cut}/commits/") == 2
    assert (f"History of huggingface:{shapeless} (discussions) not stored: unexpected JSON (no discussions list)"
            in result.log)
    assert ("Crawl verdict: exit status 1: 4 history calls lost (failed after retries (HTTP 503): 1, "
            "malformed JSON: 1, rate limited after retries (HTTP 429): 1, unexpected JSON: 1)") in result.log
    # the listing was read whole: the finish reason and the removed-models report say so
    assert stats["finish_reason"] == "finished" and stats["ptm/store/removed"] == 0
    assert len(result.items) == 12


def test_after_a_force_push_a_recrawl_stores_only_the_rewritten_commits(tmp_path, hub):
    data = tmp_path / "data"
    crawl(hub, tmp_path, "1", args={"history": "commits"})
    deep = max(hub.histories, key=lambda m: len(hub.histories[m].commits))
    commits = hub.histories[deep].commits
    assert len(commits) > 10  # several pages of 5
    dropped = commits.pop(0)  # amended: a new head on the same parent
    commits.insert(0, {**dropped, "id": "a" * 40, "title": "amended"})
    hub.hub.models[deep]["sha"] = "a" * 40
    before = len(hub.hub.replica.requests)
    crawl(hub, tmp_path, "2", args={"history": "commits"})
    asked = [p for _, p in hub.hub.replica.requests[before:] if "/commits/" in p]
    assert asked == [f"{PREFIX}/api/models/{deep}/commits/{'a' * 40}?limit=5"]  # one page, not the history
    lines = Counter(c["raw"]["id"] for c in history(data, "commits") if c["model_id"] == deep)
    assert max(lines.values()) == 1 and set(lines) == {c["id"] for c in commits} | {dropped["id"]}
    # the commit table keeps the dropped commit, marked: the crawl saw the new head meet the old history
    # below it (docs/history.md)
    (line,) = history(data, "dropped_commits")
    assert (line["model_id"], line["commit_id"], line["head"]) == (deep, dropped["id"], "a" * 40)
    assert dropped_at(data, deep) == {**{c["id"]: None for c in commits}, dropped["id"]: line["crawled_at"]}


def test_commits_the_hub_lists_below_the_stored_head_after_a_merge_are_stored(tmp_path, hub):
    """A merge pushed with git: the merged branch's commit is older than the stored head, so the
    Hub lists it below that head, where a re-crawl's paging stops. The hub's count of commits tells
    that the history is more than the stored one plus the new commits on top: it is listed again."""
    data = tmp_path / "data"
    crawl(hub, tmp_path, "1", args={"history": "commits"})
    model = max(hub.histories, key=lambda m: len(hub.histories[m].commits))
    commits = hub.histories[model].commits
    branch = {**commits[2], "id": "b" * 40, "title": "On a branch, dated before the stored head"}
    commits.insert(2, branch)
    merge = {**commits[0], "id": "c" * 40, "title": "Merge branch"}
    commits.insert(0, merge)
    hub.hub.models[model]["sha"] = merge["id"]
    second = crawl(hub, tmp_path, "2", args={"history": "commits"})
    assert second.stats["ptm/history/relisted"] == 1 and "ptm/history/rewritten" not in second.stats
    got = dropped_at(data, model)
    assert set(got) == {c["id"] for c in commits} and not any(got.values())  # every commit, live
    assert table_keys(data, "commit") == hub.all_commits()
    before = len(hub.hub.replica.requests)
    crawl(hub, tmp_path, "3", args={"history": "commits"})  # the count adds up again: no call
    assert not [p for _, p in hub.hub.replica.requests[before:] if "/commits/" in p]


def dropped_at(data, model_id):
    """commit id -> dropped_at of one model's rows of the commit table."""
    cols = TABLES["commit"].columns
    at = [cols.index(c) for c in ("model_id", "commit_id", "dropped_at")]
    return {r[at[1]]: r[at[2]] for r in rows(data, "commit") if r[at[0]] == model_id}


def test_a_history_rewritten_deeper_than_the_recent_commits_marks_every_commit_it_left_out(tmp_path, hub):
    data = tmp_path / "data"
    deep = max(hub.histories, key=lambda m: len(hub.histories[m].commits))
    for i in range(RECENT_COMMITS):
        hub.push_commit(deep, f"f{i}.md")
    original = [dict(c) for c in hub.histories[deep].commits]
    crawl(hub, tmp_path, "1", args={"history": "commits"})
    # all but the oldest 2 rewritten: deeper than the recent commits a re-crawl stops at
    dropped = hub.force_push(deep, rewritten=len(original) - 2, new=3)
    second = crawl(hub, tmp_path, "2", args={"history": "commits"})
    assert second.stats["ptm/history/rewritten"] == 1 and "rewritten (a force-push)" in second.log
    (marker,) = history(data, "dropped_commits")
    assert marker["model_id"] == deep and "commit_id" not in marker and marker["stored_before"]
    live = {c["id"] for c in hub.histories[deep].commits}  # the 3 new ones and the 2 kept, listed again
    got = dropped_at(data, deep)
    assert {c for c, at in got.items() if at is None} == live
    assert {c for c, at in got.items() if at is not None} == set(dropped)
    assert {at for at in got.values() if at} == {marker["crawled_at"]}
    others = [at for m in hub.histories if m != deep for at in dropped_at(data, m).values()]
    assert others and not any(others)  # other models' commits stay live

    # pushed back: paging meets the 2 kept commits; the old ones are live again (stored again), the
    # rewritten ones above the meeting point dropped
    rewritten = [c["id"] for c in hub.histories[deep].commits[:3]]
    hub.restore(deep, original)
    crawl(hub, tmp_path, "3", args={"history": "commits"})
    assert [d.get("commit_id") for d in history(data, "dropped_commits")[1:]] == rewritten
    got = dropped_at(data, deep)
    assert {c for c, at in got.items() if at is None} == {c["id"] for c in original}
    assert {c for c, at in got.items() if at is not None} == set(rewritten)


def test_commits_a_killed_paging_stored_are_marked_dropped_once_a_force_push_left_them_out(tmp_path, hub):
    """A first crawl killed in the middle of a model's commit pages (no state line: its next crawl
    pages the whole history again), then the history force-pushed: the commits of the first pages
    are in no history the hub has any more, and must not stay in the commit table as live."""
    from tests.crawl import crawl_command
    from tests.crawl_control import BackgroundCrawl, hold

    data = tmp_path / "data"
    deep = max(hub.histories, key=lambda m: len(hub.histories[m].commits))  # pages of 5
    gate = hold(hub.hub.replica, "GET", hub._commits, lambda req, m, n: m.group("id") == deep and req.arg("p") == "1")
    settings = {"PTM_HUGGINGFACE_URL": hub.hub.url + PREFIX, "PTM_HUGGINGFACE_PAGE_SIZE": 5, "PTM_CLONE": 0,
                "PTM_HUGGINGFACE_COMMITS_PAGE_SIZE": 5}
    args = {"history": "commits"}
    killed = BackgroundCrawl(crawl_command("huggingface", tmp_path / "1.jsonl", data, tmp_path / "1.stats.json",
                                           args, settings), tmp_path / "1.log")
    first_page = lambda: {c["raw"]["id"] for c in history(data, "commits") if c["model_id"] == deep}  # noqa: E731
    killed.wait_until(lambda: gate.reached.is_set() and len(first_page()) == 5, "the first commit page stored")
    killed.kill()
    gate.open()
    stored = first_page()
    dropped = hub.force_push(deep, rewritten=len(hub.histories[deep].commits), new=2)  # squashed
    assert stored <= set(dropped)

    crawl(hub, tmp_path, "2", args=args)
    got = dropped_at(data, deep)
    assert {c for c, at in got.items() if at is None} == {c["id"] for c in hub.histories[deep].commits}
    assert {c for c, at in got.items() if at is not None} == stored
    others = [at for m in hub.histories if m != deep for at in dropped_at(data, m).values()]
    assert others and not any(others)  # the other models' commits stay live



def test_new_commits_a_killed_re_crawl_stored_are_marked_dropped_once_a_force_push_left_them_out(tmp_path, hub):
    """The history stored completely; commits pushed, and the re-crawl paging them killed after
    its first page (stored, no state line); then those commits force-pushed away. The next crawl
    meets the commits stored before: the killed paging's commits must not stay live."""
    from tests.crawl import crawl_command
    from tests.crawl_control import BackgroundCrawl, hold

    data = tmp_path / "data"
    model = sorted(hub.histories)[0]
    args = {"history": "commits"}
    crawl(hub, tmp_path, "1", args=args)
    before = {c["id"] for c in hub.histories[model].commits}
    pushed = [hub.push_commit(model, f"p{i}.md") for i in range(12)]  # pages of 5: 3 pages of them
    gate = hold(hub.hub.replica, "GET", hub._commits, lambda req, m, n: m.group("id") == model and req.arg("p") == "1")
    settings = {"PTM_HUGGINGFACE_URL": hub.hub.url + PREFIX, "PTM_HUGGINGFACE_PAGE_SIZE": 5, "PTM_CLONE": 0,
                "PTM_HUGGINGFACE_COMMITS_PAGE_SIZE": 5}
    killed = BackgroundCrawl(crawl_command("huggingface", tmp_path / "2.jsonl", data, tmp_path / "2.stats.json",
                                           args, settings), tmp_path / "2.log")
    stored = lambda: {c["raw"]["id"] for c in history(data, "commits") if c["model_id"] == model} - before  # noqa: E731
    killed.wait_until(lambda: gate.reached.is_set() and len(stored()) == 5, "the first page of new commits stored")
    killed.kill()
    gate.open()
    assert stored() == set(pushed[-5:])  # newest first
    dropped = hub.force_push(model, rewritten=12, new=2)
    assert set(dropped) == set(pushed)

    third = crawl(hub, tmp_path, "3", args=args)
    assert "ptm/history/rewritten" not in third.stats  # none of what the last complete crawl stored went
    got = dropped_at(data, model)
    assert {c for c, at in got.items() if at is None} == {c["id"] for c in hub.histories[model].commits}
    assert {c for c, at in got.items() if at is not None} == set(pushed[-5:])
    # killed again in the middle of new commits, then the head put back to the one stored: found too
    gone = set(pushed[-5:])
    pushed = [hub.push_commit(model, f"q{i}.md") for i in range(12)]
    gate = hold(hub.hub.replica, "GET", hub._commits, lambda req, m, n: m.group("id") == model and req.arg("p") == "1")
    killed = BackgroundCrawl(crawl_command("huggingface", tmp_path / "4.jsonl", data, tmp_path / "4.stats.json",
                                           args, settings), tmp_path / "4.log")
    killed.wait_until(lambda: gate.reached.is_set() and set(pushed[-5:]) <= stored(), "the first page stored")
    killed.kill()
    gate.open()
    hub.restore(model, hub.histories[model].commits[12:])
    fifth = crawl(hub, tmp_path, "5", args=args)
    assert fifth.stats["ptm/history/calls/commits"] == 1
    got = dropped_at(data, model)
    assert {c for c, at in got.items() if at is None} == {c["id"] for c in hub.histories[model].commits}
    assert {c for c, at in got.items() if at is not None} == gone | set(pushed[-5:])

def test_a_commit_pushed_to_a_pull_request_is_seen_by_the_next_crawl(tmp_path, hub):
    data = tmp_path / "data"
    args = {"history": "refs,discussions"}
    crawl(hub, tmp_path, "1", args=args)
    model = next(m for m, h in sorted(hub.histories.items()) if any(d["isPullRequest"] for d in h.discussions))
    num = next(d["num"] for d in hub.histories[model].discussions if d["isPullRequest"])
    event = hub.push_to_pull_request(model, num)
    before = len(hub.hub.replica.requests)
    second = crawl(hub, tmp_path, "2", args=args)
    details = [p for _, p in hub.hub.replica.requests[before:] if "/discussions/" in p]
    assert details == [f"{PREFIX}/api/models/{model}/discussions/{num}"]  # that one only
    assert second.stats["ptm/history/pr_head_moved"] == 1
    assert [e["raw"]["id"] for e in history(data, "discussion_events")[-1:]] == [event["id"]]
    assert table_keys(data, "discussion_event") == hub.all_events()
    assert table_keys(data, "ref") == hub.all_refs()

    before = len(hub.hub.replica.requests)
    third = crawl(hub, tmp_path, "3", args=args)  # nothing moved: no details
    assert [p for _, p in hub.hub.replica.requests[before:] if "/discussions/" in p] == []
    assert "ptm/history/pr_head_moved" not in third.stats


def test_an_edited_comment_is_seen_once_the_discussion_is_older_than_the_refresh_days(tmp_path, hub):
    data = tmp_path / "data"
    args = {"history": "discussions"}
    crawl(hub, tmp_path, "1", args=args)
    model = next(m for m, h in sorted(hub.histories.items()) if h.discussions)
    num = hub.histories[model].discussions[0]["num"]
    edited = hub.edit_comment(model, num, "edited later")
    text_of = TABLES["discussion_event"].columns.index("text"), TABLES["discussion_event"].columns.index("event_id")

    def stored_text():
        return next(r[text_of[0]] for r in rows(data, "discussion_event") if r[text_of[1]] == edited["id"])

    before = len(hub.hub.replica.requests)
    crawl(hub, tmp_path, "2", args=args)  # off by default: the list entry did not move
    assert not [p for _, p in hub.hub.replica.requests[before:] if "/discussions/" in p]
    assert stored_text() != "edited later"

    # a week passes: the stored details are older than the refresh age
    state = data / "huggingface/history/state.jsonl"
    lines = [{**s, "crawled_at": "2020-01-01T00:00:00Z"} if s["kind"] == "discussion" else s
             for s in history(data, "state")]
    state.write_text("".join(json.dumps(s) + "\n" for s in lines))
    third = crawl(hub, tmp_path, "3", args=args, PTM_HUGGINGFACE_DISCUSSIONS_REFRESH_DAYS=7)
    assert third.stats["ptm/history/refreshed"] == len(hub.all_discussions())  # each once
    assert stored_text() == "edited later"
    assert table_keys(data, "discussion_event") == hub.all_events()

    before = len(hub.hub.replica.requests)
    crawl(hub, tmp_path, "4", args=args, PTM_HUGGINGFACE_DISCUSSIONS_REFRESH_DAYS=7)  # fetched just now
    assert not [p for _, p in hub.hub.replica.requests[before:] if "/discussions/" in p]


def test_history_follows_the_crawls_own_selection(tmp_path, hub):
    one = "google-bert/bert-base-uncased"
    result = crawl(hub, tmp_path, "1", args={"models": one, "history": "commits"})
    assert {c["model_id"] for c in history(result.data_dir, "commits")} == {one}
    assert calls(hub, r"/refs|/discussions|/tree/") == 0
    assert not (result.data_dir / "huggingface/history/files.jsonl").exists()

    limited = crawl(hub, tmp_path, "2", args={"limit": 3, "history": "refs"})
    assert len(limited.items) == 3 and calls(hub, r"/refs\?include_prs=1$") == 3


def test_unknown_history_kind_is_refused_with_the_reason(tmp_path, hub):
    result = run_crawl("huggingface", tmp_path, args={"history": "commits,stars"},
                       settings={"PTM_HUGGINGFACE_URL": hub.hub.url}, check=False)
    assert result.returncode == 2 and "Traceback" not in result.log  # README "Exit status"
    assert "-a history= knows commits, refs, discussions, files (or all), not stars" in result.log
    assert calls(hub, r"/api/") == 0


def test_a_killed_history_crawl_loses_nothing_and_the_next_one_completes_it(tmp_path, hub):
    from tests.crawl import crawl_command
    from tests.crawl_control import BackgroundCrawl, hold

    data = tmp_path / "data"
    deep = max(hub.histories, key=lambda m: len(hub.histories[m].commits))  # a model with several commit pages
    commits_gate = hold(hub.hub.replica, "GET", hub._commits,
                        lambda req, m, n: m.group("id") == deep and req.arg("p") == "1")
    tree_gate = hold(hub.hub.replica, "GET", hub._tree, lambda req, m, n: m.group("id") == deep and req.arg("cursor"))
    settings = {"PTM_HUGGINGFACE_URL": hub.hub.url + PREFIX, "PTM_HUGGINGFACE_PAGE_SIZE": 5, "PTM_CLONE": 0,
                "PTM_HUGGINGFACE_COMMITS_PAGE_SIZE": 5}
    args = {"history": "all"}
    cmd = crawl_command("huggingface", tmp_path / "1.jsonl", data, tmp_path / "1.stats.json", args, settings)
    crawl = BackgroundCrawl(cmd, tmp_path / "1.log")
    stored = lambda: {c["raw"]["id"] for c in history(data, "commits") if c["model_id"] == deep}  # noqa: E731
    crawl.wait_until(lambda: commits_gate.reached.is_set() and tree_gate.reached.is_set() and len(stored()) == 5,
                     "first commit page of the deep model stored")
    crawl.kill()
    commits_gate.open()
    tree_gate.open()
    # the kill left whole lines and no state claiming the unfinished commits or files
    for path in (data / "huggingface/history").iterdir():
        assert path.read_bytes().endswith(b"\n")
    assert not [s for s in history(data, "state") if s["model_id"] == deep and s["kind"] in ("commits", "files")]
    with open(data / "huggingface/history/commits.jsonl", "ab") as f:
        f.write(b'{"model":1,"model_id":"torn","raw":{"id":"to')  # and a power cut tore a line

    result = run_crawl("huggingface", tmp_path, args=args, settings=settings, data_dir=data, out_name="2.jsonl")
    records = result.records("huggingface")
    assert {tuple(k) for k in table_keys(data, "commit")} == hub.all_commits()  # nothing lost, each once
    assert table_keys(data, "file") == hub.all_files()
    assert table_keys(data, "discussion_event") == hub.all_events()
    assert {c["raw"]["id"] for c in history(data, "commits") if c["model_id"] == deep} == {
        c["id"] for c in hub.histories[deep].commits}
    assert len(records) == 12


def test_few_calls_left_in_the_rate_limit_window_slow_the_crawl_down(tmp_path, hub):
    sent = []

    def ratelimit_headers(incoming, call_next):
        reply = call_next()
        if "/refs" in incoming.path and not sent:  # once: 9 of 500 calls left, window resets in 1 s
            sent.append(1)
            reply.headers.update({"RateLimit": '"api";r=9;t=1',
                                  "RateLimit-Policy": '"fixed window";"api";q=500;w=300'})
        return reply

    hub.hub.replica.interceptors.append(ratelimit_headers)
    result = crawl(hub, tmp_path, "1", args={"limit": 3})
    assert sent and result.stats["ptm/ratelimit/paced"] >= 1
    assert "9 calls left for 1s: pacing requests" in result.log
    # one call every 1 / (9 + 1) s until the window resets: no wait beyond the reset
    assert 0 < result.stats["ptm/ratelimit/paced_seconds"] <= result.stats["ptm/ratelimit/paced"] * 1.0
    assert result.stats["ptm/ratelimit/paced"] <= 10
    assert len(result.items) == 3 and "ptm/history/failed" not in result.stats


# -- history calls a JOBDIR job lost ----------------------------------------------------------------

FIRST_PAGE = "google-bert/bert-base-uncased", "llamaish/Tiny-Chat-1B-Instruct"  # both on listing page 1


def lose(hub, down, cut):
    """``down``'s refs answer 503, ``cut``'s second commit page arrives cut short (malformed), until
    the returned switch is cleared: calls lost for good, by the errback and by the callback."""
    broken = {"on"}

    def faults(incoming, call_next):
        if broken and incoming.path.endswith(f"/{down}/refs"):
            return Reply.text("boom", 503)
        if broken and f"/{cut}/commits/" in incoming.path and incoming.arg("p") == "1":
            return Reply(200, b'[{"id": "abc", "tit', {"Content-Type": "application/json"})
        return call_next()

    hub.hub.replica.interceptors.append(faults)
    return broken


def test_history_calls_lost_before_a_pause_are_fetched_again_when_the_job_resumes(tmp_path, hub):
    """A JOBDIR job whose run lost history calls (5xx after retries, a page still malformed) and was
    paused: the calls' fingerprints are in requests.seen, so the resumed run must fetch them again
    itself, not exit 0 with the model's refs and commits missing. Still failing, the run fails; mended,
    the job completes, each commit stored once."""
    from tests.crawl import crawl_command
    from tests.crawl_control import BackgroundCrawl, hold

    data, jobdir = tmp_path / "data", tmp_path / "job"
    down, cut = FIRST_PAGE
    assert len(hub.histories[cut].commits) > 5  # a second commit page (pages of 5)
    broken = lose(hub, down, cut)
    listing = hold(hub.hub.replica, "GET", hub.hub._listing, lambda req, m, n: n >= 3)  # the last page waits
    settings = {"PTM_HUGGINGFACE_URL": hub.hub.url + PREFIX, "PTM_HUGGINGFACE_PAGE_SIZE": 5, "PTM_CLONE": 0,
                "PTM_HUGGINGFACE_COMMITS_PAGE_SIZE": 5, "JOBDIR": jobdir, **FAST}
    args = {"history": "commits,refs,discussions,files"}
    cmd = crawl_command("huggingface", tmp_path / "1.jsonl", data, tmp_path / "1.stats.json", args, settings)
    paused = BackgroundCrawl(cmd, tmp_path / "1.log")
    paused.wait_until(lambda: listing.reached.is_set()
                     and f"History of huggingface:{down} (refs) not stored" in paused.log
                     and f"History of huggingface:{cut} (commits) not stored" in paused.log,
                     "both history calls lost, the last listing page held")
    paused.proc.send_signal(signal.SIGTERM)
    paused.wait_until(lambda: "shutting down gracefully" in paused.log, "the graceful stop")
    listing.open()
    assert paused.wait() == 1
    lost_at = calls(hub, rf"/{down}/refs"), calls(hub, rf"/{cut}/commits/.*p=1")

    still_broken = crawl(hub, tmp_path, "2", check=False, JOBDIR=jobdir, **FAST)
    assert (calls(hub, rf"/{down}/refs"), calls(hub, rf"/{cut}/commits/.*p=1")) > lost_at  # asked again
    assert still_broken.returncode == 1, still_broken.log[-3000:]
    stats = still_broken.stats
    assert stats["ptm/job/history_calls_fetched_again"] == 2 and stats["ptm/history/lost"] == 2
    assert "ptm/job/pages_fetched_again" not in stats and "ptm/pages/failed" not in stats
    assert (f"Resuming the job in {jobdir}: the previous run was paused gracefully; fetching again "
            "the 2 history call(s) the job lost") in still_broken.log
    assert stats["finish_reason"] == "finished" and stats["ptm/store/removed"] == 0  # the listing is whole

    broken.clear()  # the hub answers again
    before = len(hub.hub.replica.requests)
    mended = crawl(hub, tmp_path, "3", JOBDIR=jobdir, **FAST)  # check=True: exit status 0
    assert (f"Resuming the job in {jobdir}: the previous run finished; fetching again the 2 history call(s) "
            "the job lost") in mended.log
    asked = sorted(p for _, p in hub.hub.replica.requests[before:])
    assert asked == sorted([f"{PREFIX}/api/models/{down}/refs?include_prs=1",
                            f"{PREFIX}/api/models/{cut}/commits/{hub.hub.models[cut]['sha']}?p=1&limit=5",
                            f"{PREFIX}/api/models/{cut}/commits/{hub.hub.models[cut]['sha']}?p=2&limit=5"])
    stats = mended.stats
    assert stats["ptm/job/history_calls_fetched_again"] == 2 and "ptm/history/lost" not in stats
    assert "Crawl verdict: exit status 0" in mended.log
    assert not (jobdir / "ptm-failed-pages.pickle").exists()
    assert_everything_once(hub, data, mended.records("huggingface"))  # the refs and every commit, once
    state = {(s["model_id"], s["kind"]) for s in history(data, "state")}
    assert {(down, "refs"), (cut, "commits")} <= state  # a later crawl starts from them


def test_a_model_whose_history_call_was_lost_is_asked_again_by_the_next_crawl(tmp_path, hub):
    """No state line vouches for what a lost call would have brought (a first page stored, the next
    lost, included): the next crawl asks again for each, and the tables end up whole, each row once
    (the pages stored before the lost one are stored again, as after a kill)."""
    refs, commits, tree, listed, detail = ("speechy/sepformer-toy", "org0/model-0000005", "org0/model-0000002",
                                           "org1/model-0000004", "org0/model-0000001")
    broken = {"on"}

    def faults(incoming, call_next):
        path, arg = incoming.path, incoming.arg
        if not broken:
            return call_next()
        if path.endswith(f"/{refs}/refs") or (f"/{commits}/commits/" in path and arg("p") == "1"):
            return Reply.text("boom", 503)
        if path.endswith(f"/{listed}/discussions") and arg("p") == "1" or path.endswith(f"/{detail}/discussions/2"):
            return Reply.text("boom", 503)
        if f"/{tree}/tree/" in path and arg("cursor"):
            return Reply(200, b'[{"type": "file", "pa', {"Content-Type": "application/json"})
        return call_next()

    hub.hub.replica.interceptors.append(faults)
    data = tmp_path / "data"
    first = crawl(hub, tmp_path, "1", check=False, **FAST)
    assert first.returncode == 1 and first.stats["ptm/history/lost"] == 5, first.log[-3000:]
    vouched = {(s["model_id"], s["kind"], s.get("num")) for s in history(data, "state")}
    assert not vouched & {(refs, "refs", None), (commits, "commits", None), (tree, "files", None),
                          (detail, "discussion", 2)}
    assert {c["model_id"] for c in history(data, "commits")} >= {commits}  # its first page is stored
    on_page_2 = {d["num"] for d in sorted(hub.histories[listed].discussions, key=lambda d: -d["num"])[3:]}
    assert not {num for model, kind, num in vouched if model == listed and kind == "discussion"} & on_page_2

    broken.clear()
    before = len(hub.hub.replica.requests)
    second = crawl(hub, tmp_path, "2", **FAST)
    asked = [p for _, p in hub.hub.replica.requests[before:]]
    for call in (f"/{refs}/refs", f"/{commits}/commits/", f"/{tree}/tree/", f"/{listed}/discussions/",
                 f"/{detail}/discussions/2"):
        assert any(call in p for p in asked), call
    assert second.stats.get("ptm/history/failed", 0) == 0
    assert table_keys(data, "commit") == hub.all_commits() and table_keys(data, "ref") == hub.all_refs()
    assert table_keys(data, "file") == hub.all_files()
    assert table_keys(data, "discussion") == hub.all_discussions()
    assert table_keys(data, "discussion_event") == hub.all_events()
    vouched = {(s["model_id"], s["kind"], s.get("num")) for s in history(data, "state")}
    assert {(refs, "refs", None), (commits, "commits", None), (tree, "files", None), (detail, "discussion", 2),
            *((listed, "discussion", num) for num in on_page_2)} <= vouched


def test_history_calls_a_job_saves_to_fetch_again_never_hold_the_token(tmp_path, hub):
    """The saved requests of lost calls are pickled into the JOBDIR: HF_TOKEN went out with them
    (the replica saw it) but must not be in the pickle, nor in any other file or the log."""
    import secrets

    from tests.replicas.faults import log_headers
    from tests.test_secrets import files_containing

    token = f"hf_{secrets.token_hex(16)}"
    down, cut = FIRST_PAGE
    lose(hub, down, cut)
    headers = log_headers(hub.hub.replica)  # the last interceptor added sees every request first
    jobdir = tmp_path / "job"
    result = run_crawl("huggingface", tmp_path, data_dir=tmp_path / "data", check=False, env={"HF_TOKEN": token},
                       args={"history": "commits,refs,discussions,files"},
                       settings={"PTM_HUGGINGFACE_URL": hub.hub.url + PREFIX, "PTM_HUGGINGFACE_PAGE_SIZE": 5,
                                 "PTM_CLONE": 0, "PTM_HUGGINGFACE_COMMITS_PAGE_SIZE": 5, "JOBDIR": jobdir, **FAST})
    assert result.returncode == 1 and result.stats["ptm/history/lost"] == 2, result.log[-3000:]
    saved = (jobdir / "ptm-failed-pages.pickle").read_bytes()
    assert f"/{down}/refs".encode() in saved  # the lost call is what the job keeps
    refs = [h for _, path, h in headers.seen if path.endswith(f"/{down}/refs")]
    assert refs and all(h.get("authorization") == f"Bearer {token}" for h in refs)
    assert files_containing(tmp_path, token.encode()) == [] and token not in result.log
