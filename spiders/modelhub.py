"""Modelhub (modelhub.ai): one JSON index lists every model; each model lives in a GitHub repository.

``GET <PTM_MODELHUB_INDEX_URL>`` (the ``models.json`` of the modelhub-ai/modelhub repository, served
by raw.githubusercontent.com as text/plain) returns a JSON array of
``{id, name, task_extended, github, github_branch, backend[], gpu?}``. ``id`` is a UUID for older
models and a short string (``"0003"``) for newer ones. There are no pages and no per-model API: the
record comes from the index entry, the code from cloning ``github`` at ``github_branch``.
"""

from __future__ import annotations

from ptmscrape.spiders_base import HubSpider


class ModelhubSpider(HubSpider):
    name = "modelhub"
    base_url_setting = "PTM_MODELHUB_INDEX_URL"

    async def start(self):
        if self.limit != 0:
            yield self.request(self.base_url, self.parse_index)

    def parse_index(self, response):
        index = self.json_page(response, expect=list)
        for entry in index or []:
            if self.limit_reached_for(response):
                return
            yield self.raw_item(_model_id(entry), response, entry)


def _model_id(entry) -> str:
    if not isinstance(entry, dict):
        return "<not an object>"
    return str(entry.get("id") or entry.get("name") or "<no id>")
