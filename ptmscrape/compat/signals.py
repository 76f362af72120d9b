"""Scrapy 2.19's signal dispatch without an asyncio task per receiver.

``SignalManager.send_catch_log_async`` (what the scraper awaits for ``item_scraped``, ``item_dropped``
and the engine's signals) wraps every receiver in a coroutine and ``asyncio.gather``s them: each
receiver becomes a task that runs on a later turn of the event loop, even a plain function such as
``CoreStats.item_scraped`` or ``FeedExporter.item_scraped``. For ``item_scraped`` that is two tasks,
a gather future and a loop turn for every model: 66–72 µs a dispatch against 11–15 µs for calling
the two receivers (``bench/RESULTS.md``, fourth round).

:class:`InlineSignalDispatch` (an extension, ``EXTENSIONS`` in ``settings.py``) gives its crawler's
``SignalManager`` a ``send_catch_log_async`` that calls the receivers in order, as Scrapy's
synchronous ``send_catch_log`` does, and awaits only what they return that is awaitable (coroutines,
futures, Deferreds), together, as Scrapy does. Results, logged errors, ``dont_log`` and the warning
for a receiver returning a Deferred are Scrapy's. What changes: a plain receiver runs before the
sender's ``await`` rather than on a later loop turn. ``tests/test_compat_upstream.py`` has a
strict-xfail test that XPASSes once Scrapy's dispatch calls plain receivers without a task; then
this module and its ``EXTENSIONS`` entry can go.

Finding and calling the receivers is PyDispatcher's work done with less of it per call (three plain
receivers: 17 → 7.5 µs, ``bench/RESULTS.md``, fifth round): in the common case, one connection list
for the sender and signal, the receivers are read from that list as ``getAllReceivers`` would yield
them, and the arguments a plain function or method accepts (what ``robustApply`` works out from its
code on every call) are worked out once per code object.
"""

from __future__ import annotations

import asyncio
import inspect
import logging
from collections.abc import Awaitable, Iterable, Sequence
from functools import partial
from types import CodeType, FunctionType, MethodType
from typing import Any

from pydispatch import dispatcher
from pydispatch.dispatcher import WEAKREF_TYPES, getAllReceivers, liveReceivers
from pydispatch.robustapply import robustApply
from scrapy.signalmanager import SignalManager
from scrapy.utils.asyncio import is_asyncio_available
from scrapy.utils.defer import ensure_awaitable
from scrapy.utils.python import global_object_name
from twisted.internet.defer import Deferred

logger = logging.getLogger("scrapy.utils.signal")  # where Scrapy logs a failing receiver


class InlineSignalDispatch:
    def __init__(self, crawler):
        signals = crawler.signals
        signals.send_catch_log_async = partial(send_catch_log_async, signals)

    @classmethod
    def from_crawler(cls, crawler):
        return cls(crawler)


async def send_catch_log_async(manager: SignalManager, signal: Any, **named: Any) -> list[tuple[Any, Any]]:
    """``SignalManager.send_catch_log_async``: ``[(receiver, result or exception), ...]``."""
    sender = named.pop("sender", manager.sender)
    dont_log = named.pop("dont_log", ())
    dont_log = tuple(dont_log) if isinstance(dont_log, Sequence) else (dont_log,)
    spider = named.get("spider")
    results: list[tuple[Any, Any]] = []
    pending: list[tuple[int, Any, Awaitable[Any]]] = []
    arguments = {"signal": signal, "sender": sender, **named}
    for receiver in receivers_of(sender, signal):
        try:
            result = apply(receiver, arguments)
        except dont_log as exc:  # pylint: disable=catching-non-exception
            result = exc
        except Exception as exc:
            _log_failure(receiver, spider)
            result = exc
        else:
            if result is not None and (isinstance(result, Deferred) or inspect.isawaitable(result)):
                pending.append((len(results), receiver,
                                ensure_awaitable(result, _warn=global_object_name(receiver))))
        results.append((receiver, result))
    if pending:
        settle = [_settle(receiver, awaitable, dont_log, spider) for _, receiver, awaitable in pending]
        if is_asyncio_available():
            outcomes = await asyncio.gather(*settle)
        else:
            outcomes = [await each for each in settle]
        for (at, receiver, _), outcome in zip(pending, outcomes, strict=True):
            results[at] = (receiver, outcome)
    return results


def receivers_of(sender: Any, signal: Any) -> Iterable[Any]:
    """The live receivers of ``signal`` from ``sender``, in ``liveReceivers(getAllReceivers(...))``'s
    order. When one connection list holds them all (every receiver connected through one
    ``SignalManager`` for this signal), that list is read directly; else PyDispatcher's generators."""
    connections = dispatcher.connections
    by_sender, by_any = connections.get(id(sender)), connections.get(id(dispatcher.Any))
    lists = [found for table in (by_sender, by_any) if table
             for found in (table.get(signal), table.get(dispatcher.Any)) if found]
    if len(lists) != 1:
        return liveReceivers(getAllReceivers(sender, signal))
    live = []
    for receiver in lists[0]:
        if isinstance(receiver, WEAKREF_TYPES):
            receiver = receiver()
            if receiver is None:
                continue
        live.append(receiver)
    return live


# (code object, positional arguments bound already) -> the argument names a receiver with that
# code accepts, or None when it takes **kwargs. Bounded by the receivers' source code.
_ACCEPTED: dict[tuple[CodeType, int], frozenset[str] | None] = {}


def apply(receiver: Any, arguments: dict[str, Any]) -> Any:
    """``robustApply(receiver, **arguments)``: the receiver called with the arguments it accepts."""
    kind = type(receiver)
    if kind is MethodType and type(receiver.__func__) is FunctionType:
        code, bound = receiver.__func__.__code__, 1
    elif kind is FunctionType:
        code, bound = receiver.__code__, 0
    else:  # a callable object, a builtin, a partial: robustApply's own rules
        return robustApply(receiver, **arguments)
    try:
        accepted = _ACCEPTED[code, bound]
    except KeyError:
        accepted = _ACCEPTED[code, bound] = (
            None if code.co_flags & inspect.CO_VARKEYWORDS else frozenset(code.co_varnames[bound:code.co_argcount]))
    if accepted is None:
        return receiver(**arguments)
    return receiver(**{name: value for name, value in arguments.items() if name in accepted})


async def _settle(receiver: Any, awaitable: Awaitable[Any], dont_log: tuple, spider: Any) -> Any:
    try:
        return await awaitable
    except dont_log as exc:  # pylint: disable=catching-non-exception
        return exc
    except Exception as exc:
        _log_failure(receiver, spider)
        return exc


def _log_failure(receiver: Any, spider: Any) -> None:
    logger.error("Error caught on signal handler: %(receiver)s", {"receiver": receiver},
                 exc_info=True, extra={"spider": spider})
