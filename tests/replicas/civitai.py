"""A local Civitai: ``GET <prefix>/api/v1/models`` as civitai/civitai's
``src/pages/api/v1/models/index.ts`` answers it — ``{"items": [...], "metadata": {"nextCursor",
"nextPage"}}``, cursor paging (the cursor is opaque: ``<next id>|<position>``), ``page`` refused
with a 429 past 1,000 results and with a 400 next to ``query``, ``limit`` 0..100 (default 100),
NSFW models only with ``nsfw=true``, ``types`` and ``username`` filters. Models are our fixture
(``tests/fixtures/civitai/models.json``, in the API's item format) plus synthetic ones.

``nextPage`` names the public host (``https://civitai.com`` by default), as the real API names its
own: a crawl must not follow it off the base URL. ``cursor_in_metadata=False`` leaves
``nextCursor`` out so that only ``nextPage`` leads on.
"""

from __future__ import annotations

import copy
import json
import re
from pathlib import Path
from urllib.parse import urlencode

from tests.replicas.server import Incoming, Replica, Reply

FIXTURES = Path(__file__).resolve().parent.parent / "fixtures" / "civitai"


def fixture_models() -> list[dict]:
    return json.loads((FIXTURES / "models.json").read_text())


def synthetic_models(n: int, start_id: int = 500_000) -> list[dict]:
    """``n`` more models shaped like the fixture's LoRA (ids ``start_id`` upwards)."""
    template = next(m for m in fixture_models() if m["type"] == "LORA" and not m["nsfw"])
    out = []
    for i in range(n):
        m = copy.deepcopy(template)
        mid = start_id + i
        m["id"], m["name"] = mid, f"Synthetic LoRA {i}"
        m["creator"] = {"username": f"maker{i % 7}", "image": None}
        m["stats"]["downloadCount"] = 1000 + i
        for v in m["modelVersions"]:
            v["id"], v["modelId"] = mid * 10, mid
            for f in v["files"]:
                f["id"] = mid * 10 + 1
                f["downloadUrl"] = f"https://civitai.com/api/download/models/{mid * 10}"
        out.append(m)
    return out


class CivitaiReplica:
    """``with CivitaiReplica(models, prefix="/mirror") as hub: hub.base_url``."""

    def __init__(self, models: list[dict] | None = None, prefix: str = "",
                 public_origin: str = "https://civitai.com", cursor_in_metadata: bool = True, port: int = 0):
        self.models = fixture_models() if models is None else models
        self.prefix = prefix
        self.public_origin = public_origin
        self.cursor_in_metadata = cursor_in_metadata
        self.replica = Replica(port)
        self.replica.route("GET", rf"{re.escape(prefix)}/api/v1/models", self._listing)

    @property
    def url(self) -> str:
        return self.replica.url

    @property
    def base_url(self) -> str:
        return self.url + self.prefix

    def settings(self, **extra) -> dict:
        return {"PTM_CIVITAI_URL": self.base_url, **extra}

    def env(self, base: dict | None = None) -> dict:
        return dict(base or {})

    def listing_requests(self) -> list[str]:
        return [p for m, p in self.replica.requests if m == "GET" and "/api/v1/models" in p]

    def visible(self, nsfw: bool = True, types: list[str] = (), username: str | None = None) -> list[dict]:
        """The models a listing shows, in its order (Newest: highest id first)."""
        out = [m for m in self.models if nsfw or not m.get("nsfw")]
        if types:
            out = [m for m in out if m.get("type") in types]
        if username:
            out = [m for m in out if (m.get("creator") or {}).get("username") == username]
        return sorted(out, key=lambda m: -m["id"] if isinstance(m.get("id"), int) else 0)

    def __enter__(self) -> CivitaiReplica:
        self.replica.start()
        return self

    def __exit__(self, *exc) -> None:
        self.replica.stop()

    def _listing(self, req: Incoming, m: re.Match) -> Reply:
        try:
            limit = int(req.arg("limit", "100"))
        except ValueError:
            return Reply.json({"error": {"issues": [{"path": ["limit"], "message": "Expected number"}]}}, 400)
        if not 0 <= limit <= 100:
            return Reply.json({"error": {"issues": [{"path": ["limit"], "code": "too_big"}]}}, 400)
        limit = limit or 100
        page, cursor, query = req.arg("page"), req.arg("cursor"), req.arg("query")
        if query and page:
            return Reply.json({"error": "Cannot use page param with query search. Use cursor-based pagination."}, 400)
        if page and not cursor and int(page) * limit > 1000:
            return Reply.json({"error": "You've requested too many pages, please use cursors instead"}, 429)
        models = self.visible(req.arg("nsfw") == "true", req.args("types"), req.arg("username"))
        if query:
            models = [x for x in models if query.lower() in str(x.get("name", "")).lower()]
        start = 0
        if cursor:
            start = int(cursor.split("|")[1])
        elif page:
            start = (int(page) - 1) * limit
        items = models[start:start + limit]
        metadata: dict = {}
        if start + limit < len(models):
            nxt = models[start + limit]
            next_cursor = f"{nxt.get('id')}|{start + limit}"
            params = [(k, v) for k, v in req.query if k != "cursor"] + [("cursor", next_cursor)]
            if self.cursor_in_metadata:
                metadata["nextCursor"] = next_cursor
            metadata["nextPage"] = f"{self.public_origin}/api/v1/models?{urlencode(params)}"
        if page and not cursor:
            metadata.update(currentPage=int(page), pageSize=limit)
        return Reply.json({"items": items, "metadata": metadata})


def start_demo_replica(workdir: Path, port: int = 0):
    """For the offline demo: (replica context manager, crawl settings, crawl environment)."""
    hub = CivitaiReplica(fixture_models() + synthetic_models(5), port=port)
    return hub, hub.settings(PTM_CIVITAI_PAGE_SIZE=4), {}
