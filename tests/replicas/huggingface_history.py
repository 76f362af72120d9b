"""History and community endpoints of the local Hugging Face Hub, mounted on a
:class:`~tests.replicas.huggingface.HuggingFaceReplica`:

* ``/api/models/<id>/commits/<rev>?limit=&p=`` — newest first, ``X-Total-Count``, a ``Link``
  rel=next relative to the server root (as the Hub sends it);
* ``/api/models/<id>/refs[?include_prs=1]`` — ``{tags, branches, converts[, pullRequests]}`` (a pull
  request's ref at its newest commit event);
* ``/api/models/<id>/discussions?p=`` — ``{discussions, count, start, numClosedDiscussions}``, no
  ``Link``; ``/api/models/<id>/discussions/<num>`` — details with ``events`` (some authors deleted);
* ``/api/models/<id>/tree/<rev>?recursive=&expand=&cursor=`` — cursor ``Link`` paging.

Shapes follow real Hub bodies (the README's format notes); the contents are generated. Gated or
private models answer 401 like the Hub does anonymously; an unknown revision 404
``RevisionNotFound``. ``prefix`` serves everything under a path (a mirror): links of the tree
carry it, the commit links do not (the Hub's own root-relative form).
"""

from __future__ import annotations

import base64
import copy
import hashlib
import re
from dataclasses import dataclass, field

from tests.replicas.server import Incoming, Reply

_ID = r"(?P<id>[^/]+(?:/[^/]+)?)"


def _sha(*parts) -> str:
    return hashlib.sha1("\x00".join(map(str, parts)).encode()).hexdigest()


def _oid(*parts) -> str:
    return f"{int(_sha(*parts)[:12], 16):024x}"


def _user(name: str) -> dict:
    return {"_id": _oid("user", name), "avatarUrl": f"/avatars/{_sha(name)[:32]}.svg", "fullname": name.title(),
            "name": name, "type": "user", "isPro": False, "isHf": False, "isHfAdmin": False, "isMod": False,
            "followerCount": 0, "isUserFollowing": False}


@dataclass
class ModelHistory:
    commits: list[dict]  # newest first; commits[0]["id"] is the model's sha
    tags: list[dict]
    discussions: list[dict]  # details (with events), in creation order
    files: list[dict]  # tree entries, expanded, recursive


def synthetic_history(model_id: str, sha: str, n: int) -> ModelHistory:
    """History of model number ``n`` (sizes vary with ``n``, deterministic)."""
    n_commits, n_discussions, n_files = 2 + (n * 5) % 12, (n * 3) % 8, 3 + (n * 7) % 9
    ids = [sha] + [_sha(model_id, "commit", i) for i in range(1, n_commits)]
    commits = []
    for i, cid in enumerate(ids):
        authors = [{"user": f"dev{(n + i) % 4}", "avatar": f"https://cdn-avatars.example/{(n + i) % 4}.png"}]
        message = ""
        if i % 3 == 1:  # a Co-authored-by trailer adds an author
            authors.append({"user": "helper", "avatar": "https://cdn-avatars.example/h.png"})
            message = "\n\n\nCo-authored-by: Helper <helper@users.noreply.huggingface.co>\n"
        commits.append({"id": cid, "title": f"Update {model_id} ({n_commits - i})", "message": message,
                        "authors": authors,
                        "date": f"2024-{1 + (n_commits - i) % 12:02d}-{1 + i % 28:02d}T10:00:00.000Z"})
    tags = [{"name": "v1.0", "ref": "refs/tags/v1.0", "targetCommit": ids[-1]}] if n % 2 else []
    discussions = [_discussion(model_id, num, n) for num in range(1, n_discussions + 1)]
    files = _tree(model_id, n, n_files, ids)
    return ModelHistory(commits, tags, discussions, files)


def _discussion(model_id: str, num: int, n: int) -> dict:
    is_pr = num % 3 == 0
    author = _user(f"user{(num + n) % 5}")
    events = [_comment(model_id, num, 0, author, f"Question {num} about {model_id}")]
    if is_pr:
        events.append({"id": _oid(model_id, num, "commit"), "author": {"_id": author["_id"], "name": author["name"],
                                                                        "type": "user"},
                       "createdAt": "2024-03-01T10:00:01.000Z", "type": "commit",
                       "data": {"subject": f"PR {num}", "oid": _sha(model_id, num, "pr"),
                                "parents": [_sha(model_id, "base")]}})
    if num % 2 == 0:  # a reply by a user who has since deleted their account: no author
        reply = _comment(model_id, num, 1, None, "Thanks!")
        del reply["author"]
        events.append(reply)
    if num % 4 == 1 and num > 1:
        hidden = _comment(model_id, num, 2, _user("spammer"), "This comment has been hidden")
        hidden["data"].update(hidden=True, hiddenBy="", edited=True)
        events.append(hidden)
    closed = num % 2 == 0
    if closed:
        events.append({"id": _oid(model_id, num, "status"), "author": {"_id": author["_id"], "name": author["name"],
                                                                        "type": "user"},
                       "createdAt": "2024-03-02T10:00:00.000Z", "type": "status-change", "data": {"status": "closed"}})
    if num == 5:
        events.append({"id": _oid(model_id, num, "title"), "author": author, "createdAt": "2024-03-02T11:00:00.000Z",
                       "type": "title-change", "data": {"from": "Old title", "to": f"Discussion {num}"}})
    owner = model_id.split("/")[0]
    detail = {
        "num": num, "author": author,
        "org": {"avatarUrl": "https://cdn-avatars.example/org.png", "fullname": owner, "name": owner, "type": "org",
                "isHf": False},
        "repo": {"name": model_id, "type": "model"}, "title": f"Discussion {num}",
        "status": "closed" if closed else "open", "createdAt": f"2024-03-{num:02d}T10:00:00.000Z",
        "pinned": num == 1, "locked": False, "collection": "discussions", "isPullRequest": is_pr,
        "filesWithConflicts": [], "events": events,
    }
    if is_pr:
        detail["changes"] = {"base": "refs/heads/main", "cachedStorageEstimate": {"size": 0}}
        detail["diffUrl"] = f"https://huggingface.co/{model_id}/discussions/{num}/files.diff"
    return detail


def _comment(model_id, num, k, author, raw) -> dict:
    return {"id": _oid(model_id, num, "comment", k), "author": author,
            "createdAt": f"2024-03-01T10:00:{k:02d}.000Z", "type": "comment",
            "data": {"edited": False, "hidden": False,
                     "latest": {"raw": raw, "html": f"<p>{raw}</p>\n", "updatedAt": f"2024-03-01T10:00:{k:02d}.000Z",
                                "author": {"_id": (author or {}).get("_id", ""), "name": (author or {}).get("name", ""),
                                           "type": "user"}},
                     "numEdits": 0, "editors": [], "editorAvatarUrls": [], "reactions": [], "isReport": False}}


def _tree(model_id: str, n: int, n_files: int, commits: list[str]) -> list[dict]:
    entries = [{"type": "directory", "oid": _sha(model_id, "dir"), "size": 0, "path": "onnx"}]
    for i in range(n_files):
        path = ("onnx/" if i % 4 == 3 else "") + ("model.safetensors" if i == 0 else f"file{i}.json")
        entry = {"type": "file", "oid": _sha(model_id, path), "size": 100 + i, "path": path,
                 "lastCommit": {"id": commits[i % len(commits)], "title": "Upload", "date": "2024-02-01T00:00:00.000Z"},
                 "securityFileStatus": {"status": "safe"}}
        if path.endswith(".safetensors"):
            entry["size"] = 440473133 + n
            entry["lfs"] = {"oid": hashlib.sha256(f"{model_id}{path}".encode()).hexdigest(), "size": entry["size"],
                            "pointerSize": 134}
            entry["xetHash"] = hashlib.sha256(f"xet{model_id}".encode()).hexdigest()
        entries.append(entry)
    return entries


@dataclass
class HubHistory:
    """``HubHistory(hf_replica)`` serves a history for every model of the replica."""

    hub: object  # HuggingFaceReplica
    commits_page: int = 50  # the Hub's default limit
    discussions_page: int = 3  # the Hub's is 50; small here for multi-page tests
    tree_page: int = 4
    prefix: str = ""
    gated: set[str] = field(default_factory=set)  # 401 for every call
    histories: dict[str, ModelHistory] = field(default_factory=dict)

    def __post_init__(self):
        for n, (model_id, model) in enumerate(sorted(self.hub.models.items())):
            if not re.fullmatch(r"[0-9a-f]{40}", model.get("sha") or ""):  # the Hub lists one for every model
                model["sha"] = _sha(model_id, "head")
            self.histories[model_id] = synthetic_history(model_id, model["sha"], n)
        routes = [
            (rf"/api/models/{_ID}/commits/(?P<rev>[^/]+)", self._commits),
            (rf"/api/models/{_ID}/refs", self._refs),
            (rf"/api/models/{_ID}/discussions", self._discussions),
            (rf"/api/models/{_ID}/discussions/(?P<num>[0-9]+)", self._discussion),
            (rf"/api/models/{_ID}/tree/(?P<rev>[^/]+)", self._tree),
        ]
        replica = self.hub.replica
        # before the replica's /api/models/<id> route, which would match these paths too
        replica.routes[:0] = [("GET", re.compile(p), h) for p, h in routes]
        if self.prefix:
            replica.interceptors.append(self._strip_prefix)

    def _strip_prefix(self, incoming: Incoming, call_next):
        if incoming.path.startswith(self.prefix + "/"):
            incoming.path = incoming.path[len(self.prefix):]
        return call_next()

    # -- changes --------------------------------------------------------------------------
    def push_commit(self, model_id: str, path: str = "NEW.md") -> str:
        """A new commit (and file) on main: the model's ``sha`` moves."""
        h = self.histories[model_id]
        sha = _sha(model_id, "pushed", len(h.commits))
        h.commits.insert(0, {"id": sha, "title": f"Add {path}", "message": "", "authors": [{"user": "dev9",
                             "avatar": "https://cdn-avatars.example/9.png"}], "date": "2025-01-01T00:00:00.000Z"})
        h.files.append({"type": "file", "oid": _sha(model_id, path, sha), "size": 7, "path": path,
                        "lastCommit": {"id": sha, "title": f"Add {path}", "date": "2025-01-01T00:00:00.000Z"}})
        self.hub.models[model_id]["sha"] = sha
        return sha

    def force_push(self, model_id: str, rewritten: int, new: int = 1) -> list[str]:
        """The newest ``rewritten`` commits replaced by ``new`` others (``rewritten`` = all: the
        history squashed); the model's ``sha`` moves. Returns the ids no longer reachable."""
        h = self.histories[model_id]
        dropped, kept = h.commits[:rewritten], h.commits[rewritten:]
        fresh = [{"id": _sha(model_id, "rewritten", dropped[0]["id"], i), "title": f"Rewritten ({i})", "message": "",
                  "authors": [{"user": "dev9", "avatar": "https://cdn-avatars.example/9.png"}],
                  "date": "2025-02-01T00:00:00.000Z"} for i in range(new)]
        h.commits[:] = fresh + kept
        self.hub.models[model_id]["sha"] = fresh[0]["id"]
        return [c["id"] for c in dropped]

    def restore(self, model_id: str, commits: list[dict]) -> None:
        """The history set back to ``commits`` (newest first): another force-push."""
        self.histories[model_id].commits[:] = copy.deepcopy(commits)
        self.hub.models[model_id]["sha"] = commits[0]["id"]

    def push_to_pull_request(self, model_id: str, num: int) -> dict:
        """A commit pushed to pull request ``num``: a commit event, and ``refs/pr/<num>`` moves; the
        discussion list entry stays as it was (the Hub's list has nothing that moves)."""
        detail = next(d for d in self.histories[model_id].discussions if d["num"] == num)
        assert detail["isPullRequest"], num
        author = detail["author"]
        event = {"id": _oid(model_id, num, "commit", len(detail["events"])),
                 "author": {"_id": author["_id"], "name": author["name"], "type": "user"},
                 "createdAt": "2025-03-01T10:00:00.000Z", "type": "commit",
                 "data": {"subject": f"PR {num}, more", "oid": _sha(model_id, num, "pr", len(detail["events"])),
                          "parents": [self._pr_head(detail)]}}
        detail["events"].append(event)
        return event

    @staticmethod
    def _pr_head(detail: dict) -> str:
        return next(e["data"]["oid"] for e in reversed(detail["events"]) if e["type"] == "commit")

    def edit_comment(self, model_id: str, num: int, raw: str) -> dict:
        """The first comment of discussion ``num`` edited: nothing its list entry shows moves."""
        detail = next(d for d in self.histories[model_id].discussions if d["num"] == num)
        event = next(e for e in detail["events"] if e["type"] == "comment")
        event["data"].update(edited=True, numEdits=event["data"]["numEdits"] + 1)
        event["data"]["latest"].update(raw=raw, html=f"<p>{raw}</p>\n", updatedAt="2025-04-01T10:00:00.000Z")
        return event

    def comment(self, model_id: str, num: int, raw: str = "A new comment") -> dict:
        detail = next(d for d in self.histories[model_id].discussions if d["num"] == num)
        event = _comment(model_id, num, 50 + len(detail["events"]), _user("newcomer"), raw)
        detail["events"].append(event)
        return event

    def open_discussion(self, model_id: str) -> dict:
        h = self.histories[model_id]
        detail = _discussion(model_id, len(h.discussions) + 1, 1)
        h.discussions.append(detail)
        return detail

    # -- expected contents ------------------------------------------------------------------
    def all_commits(self):
        return {(m, c["id"]) for m, h in self.served().items() for c in h.commits}

    def all_events(self):
        return {(m, d["num"], e["id"]) for m, h in self.served().items() for d in h.discussions for e in d["events"]}

    def all_discussions(self):
        return {(m, d["num"]) for m, h in self.served().items() for d in h.discussions}

    def all_files(self):
        return {(m, f["path"]) for m, h in self.served().items() for f in h.files}

    def all_refs(self):
        return {(m, r["ref"]) for m in self.served() for kind, refs in self._refs_body(m).items() for r in refs}

    def served(self) -> dict[str, ModelHistory]:
        return {m: h for m, h in self.histories.items() if m not in self.gated}

    # -- HTTP -----------------------------------------------------------------------------
    def _model(self, m: re.Match) -> tuple[ModelHistory | None, Reply | None]:
        model_id = m.group("id")
        if model_id in self.gated or model_id not in self.histories or model_id not in self.hub.models:
            return None, Reply.json({"error": "Invalid username or password."}, 401, headers={
                "X-Error-Message": "Invalid username or password.",
                "Www-Authenticate": 'Bearer realm="Authentication required", charset="UTF-8"'})
        return self.histories[model_id], None

    def _revision(self, h: ModelHistory, rev: str) -> tuple[int | None, Reply | None]:
        ids = [c["id"] for c in h.commits]
        if rev == "main":
            return 0, None
        if rev in ids:
            return ids.index(rev), None
        return None, Reply.json({"error": f"Invalid rev id: {rev}"}, 404, headers={
            "X-Error-Code": "RevisionNotFound", "X-Error-Message": f"Invalid rev id: {rev}"})

    def _commits(self, req: Incoming, m: re.Match) -> Reply:
        h, refused = self._model(m)
        if refused:
            return refused
        at, refused = self._revision(h, m.group("rev"))
        if refused:
            return refused
        reachable = h.commits[at:]
        limit = int(req.arg("limit", str(self.commits_page)))
        p = int(req.arg("p", "0"))
        page = reachable[p * limit:(p + 1) * limit]
        headers = {"X-Total-Count": str(len(reachable))}
        if (p + 1) * limit < len(reachable):
            next_url = f'/api/models/{m.group("id")}/commits/{m.group("rev")}?p={p + 1}&limit={limit}'
            headers["Link"] = f'<{next_url}>; rel="next"'
        return Reply.json(page, headers=headers)

    def _refs_body(self, model_id: str, prs: bool = True) -> dict:
        h = self.histories[model_id]
        body = {"tags": copy.deepcopy(h.tags),
                "branches": [{"name": "main", "ref": "refs/heads/main", "targetCommit": h.commits[0]["id"]}],
                "converts": []}
        if prs:
            body["pullRequests"] = [{"name": f"refs/pr/{d['num']}", "ref": f"refs/pr/{d['num']}",
                                     "targetCommit": self._pr_head(d)}
                                    for d in h.discussions if d["isPullRequest"]]
        return body

    def _refs(self, req: Incoming, m: re.Match) -> Reply:
        h, refused = self._model(m)
        if refused:
            return refused
        return Reply.json(self._refs_body(m.group("id"), req.arg("include_prs") in ("1", "true")))

    def _discussions(self, req: Incoming, m: re.Match) -> Reply:
        h, refused = self._model(m)
        if refused:
            return refused
        newest_first = sorted(h.discussions, key=lambda d: -d["num"])
        p = int(req.arg("p", "0"))
        start = p * self.discussions_page
        items = []
        for d in newest_first[start:start + self.discussions_page]:
            item = {k: d[k] for k in ("num", "author", "repo", "title", "status", "createdAt", "isPullRequest",
                                      "pinned")}
            item.update(numComments=sum(e["type"] == "comment" for e in d["events"]), topReactions=[],
                        numReactionUsers=0, repoOwner={"name": m.group("id").split("/")[0], "isParticipating": False,
                                                       "type": "org", "isDiscussionAuthor": False})
            items.append(item)
        return Reply.json({"discussions": items, "count": len(h.discussions), "start": start,
                           "numClosedDiscussions": sum(d["status"] == "closed" for d in h.discussions)})

    def _discussion(self, req: Incoming, m: re.Match) -> Reply:
        h, refused = self._model(m)
        if refused:
            return refused
        num = int(m.group("num"))
        detail = next((d for d in h.discussions if d["num"] == num), None)
        if detail is None:
            return Reply.json({"error": "Discussion not found"}, 404)
        return Reply.json(detail)

    def _tree(self, req: Incoming, m: re.Match) -> Reply:
        h, refused = self._model(m)
        if refused:
            return refused
        _, refused = self._revision(h, m.group("rev"))
        if refused:
            return refused
        expand = req.arg("expand") in ("1", "true", "True")
        entries = h.files if req.arg("recursive") in ("1", "true", "True") else [
            e for e in h.files if "/" not in e["path"]]
        if not expand:
            entries = [{k: v for k, v in e.items() if k not in ("lastCommit", "securityFileStatus")} for e in entries]
        cursor = req.arg("cursor")
        start = int(base64.b64decode(cursor)) if cursor else 0
        page = entries[start:start + self.tree_page]
        headers = {}
        if start + self.tree_page < len(entries):
            nxt = base64.b64encode(str(start + self.tree_page).encode()).decode()
            params = "&".join(f"{k}={v}" for k, v in req.query if k != "cursor")
            headers["Link"] = (f'<{self.prefix}/api/models/{m.group("id")}/tree/{m.group("rev")}?{params}'
                               f'&cursor={nxt}>; rel="next"')
        return Reply.json(page, headers=headers)
