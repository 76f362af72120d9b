"""Give asyncio's event loop turns from CPU-bound crawl code, so that downloads and the engine's
scheduling go on meanwhile (the map stage every few models, ``next_page_first`` after a next-page
request)."""

from __future__ import annotations

import asyncio


async def loop_turns(count: int = 1) -> None:
    """Let the event loop turn ``count`` times; nothing when no asyncio loop runs (a stage or
    middleware driven by Twisted without asyncio, e.g. tests calling it directly)."""
    try:
        asyncio.get_running_loop()
    except RuntimeError:
        return
    for _ in range(count):
        await asyncio.sleep(0)
