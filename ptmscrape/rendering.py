"""Splash (JavaScript rendering) for ptmscrape: which settings turn it on, and Splash requests.

Off unless ``SPLASH_URL`` is set. Then the add-on :class:`SplashRendering` (or the dict that
:func:`splash_settings` returns) routes requests built with :func:`splash_request` (or any
``scrapy_splash.SplashRequest``) through the Splash server: the response a callback gets is the page
*after* its JavaScript ran, with ``response.url`` the page's own URL. A :func:`splash_request` is
rendered by a Lua script (:data:`RENDER_SCRIPT`, Splash's ``execute`` endpoint), so its
``response.status`` and headers are the page's own: the hub's 404, 429 or 5xx is handled as for a
plain request (Splash's render.html answered 200 for them). Plain requests are untouched.

Enable it in a project's settings, either way::

    SPLASH_URL = os.environ.get("SPLASH_URL", "")          # or -s SPLASH_URL=http://127.0.0.1:8050
    ADDONS = {"ptmscrape.rendering.SplashRendering": 0}      # 1. add-on: a no-op without SPLASH_URL
    globals().update(splash_settings(globals()))              # 2. or at the end of settings.py

The components these settings name are scrapy-splash's, fixed for Scrapy 2.19, in
``ptmscrape.compat.splash``. This module does not import it (nor scrapy-splash): a crawl without
``SPLASH_URL`` never loads scrapy-splash. It is loaded when Splash is on (the add-on, or
:func:`splash_request`, which only a spider rendering through Splash calls).

The Splash server itself (3.5, without Docker) is installed and started by ``.ci/splash.sh``.
"""

from __future__ import annotations

import json
import os
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any
from urllib.parse import urlsplit

from scrapy.utils.misc import load_object

if TYPE_CHECKING:
    from scrapy_splash import SplashRequest

__all__ = [
    "DEFAULT_WAIT",
    "RENDER_SCRIPT",
    "SPLASH_DOWNLOADER_MIDDLEWARES",
    "SPLASH_SPIDER_MIDDLEWARES",
    "SplashRendering",
    "final_url",
    "page_status",
    "splash_enabled",
    "splash_error",
    "splash_page",
    "splash_request",
    "splash_settings",
]

# --- settings ------------------------------------------------------------------------------

# scrapy-splash's documented order: cookies before SplashMiddleware on the request path, and
# HttpCompressionMiddleware after it, so Splash's own responses are decompressed before
# SplashMiddleware reads them.
SPLASH_DOWNLOADER_MIDDLEWARES = {
    "ptmscrape.compat.splash.SplashCookiesMiddleware": 723,
    "ptmscrape.compat.splash.SplashMiddleware": 725,
    "scrapy.downloadermiddlewares.httpcompression.HttpCompressionMiddleware": 810,
}
SPLASH_SPIDER_MIDDLEWARES = {
    "ptmscrape.compat.splash.SplashDeduplicateArgsMiddleware": 100,
}
_FINGERPRINTER = "ptmscrape.compat.splash.SplashRequestFingerprinter"
_SCRAPY_FINGERPRINTER = "scrapy.utils.request.RequestFingerprinter"
_DEFAULTS = {
    "DUPEFILTER_CLASS": ("scrapy.dupefilters.RFPDupeFilter", "ptmscrape.compat.splash.SplashAwareDupeFilter"),
    "HTTPCACHE_STORAGE": (
        "scrapy.extensions.httpcache.FilesystemCacheStorage",
        "ptmscrape.compat.splash.SplashAwareFSCacheStorage",
    ),
}


def _path(obj) -> str:
    if isinstance(obj, str):
        return obj
    return f"{obj.__module__}.{obj.__qualname__}"


def _is_splash_fingerprinter(obj) -> bool:
    # Only called with SPLASH_URL set (Splash is on); first, so "scrapy_splash.…" paths load.
    from ptmscrape.compat.splash import scrapy_splash

    try:
        cls = load_object(obj) if isinstance(obj, str) else obj
    except (ImportError, NameError, AttributeError, ValueError):
        return False
    return isinstance(cls, type) and issubclass(cls, scrapy_splash.SplashRequestFingerprinter)


def _merge(existing, ours: dict[str, int]) -> dict:
    """``existing`` without upstream scrapy_splash entries (replaced by ours), plus ours where
    ``existing`` does not already name the component."""
    merged = {k: v for k, v in dict(existing or {}).items() if not _path(k).startswith("scrapy_splash.")}
    named = {_path(k) for k in merged}
    for path, priority in ours.items():
        if path not in named:
            merged[path] = priority
    return merged


def splash_settings(settings_or_url: Any = None) -> dict[str, Any]:
    """The settings that route Splash requests through Splash, or ``{}`` when there is no Splash URL.

    ``settings_or_url`` is a Splash URL (``"http://127.0.0.1:8050"``), or a mapping of the
    settings so far (a settings module's ``globals()``, a dict, a Scrapy ``Settings``) whose
    ``SPLASH_URL`` decides, or ``None`` for the ``SPLASH_URL`` environment variable. Returns::

        {"SPLASH_URL": url,
         "DOWNLOADER_MIDDLEWARES": {..., "ptmscrape.compat.splash.SplashCookiesMiddleware": 723,
                                    "ptmscrape.compat.splash.SplashMiddleware": 725,
                                    "scrapy.downloadermiddlewares.httpcompression.HttpCompressionMiddleware": 810},
         "SPIDER_MIDDLEWARES": {..., "ptmscrape.compat.splash.SplashDeduplicateArgsMiddleware": 100},
         "REQUEST_FINGERPRINTER_CLASS": "ptmscrape.compat.splash.SplashRequestFingerprinter",
         "DUPEFILTER_CLASS": "ptmscrape.compat.splash.SplashAwareDupeFilter",
         "HTTPCACHE_STORAGE": "ptmscrape.compat.splash.SplashAwareFSCacheStorage"}

    Given existing settings, the middleware dicts are theirs plus these entries (upstream
    ``scrapy_splash.*`` entries are dropped, as these replace them); ``DUPEFILTER_CLASS`` and
    ``HTTPCACHE_STORAGE`` are only included while they are unset or Scrapy's defaults (so e.g.
    scrapy-redis's dupefilter is kept); a project's own ``REQUEST_FINGERPRINTER_CLASS`` becomes
    ``SCRAPY_SPLASH_REQUEST_FINGERPRINTER_BASE_CLASS``, the base of the Splash-aware one.
    """
    if settings_or_url is None:
        settings_or_url = os.environ.get("SPLASH_URL", "")
    if isinstance(settings_or_url, str):
        url, current = settings_or_url, {}
    elif isinstance(settings_or_url, Mapping) or hasattr(settings_or_url, "get"):
        url, current = settings_or_url.get("SPLASH_URL") or "", settings_or_url
    else:
        raise TypeError(f"splash_settings() takes a URL or settings, got {type(settings_or_url)}")
    if not url:
        return {}

    out: dict[str, Any] = {
        "SPLASH_URL": url,
        "DOWNLOADER_MIDDLEWARES": _merge(
            current.get("DOWNLOADER_MIDDLEWARES"), SPLASH_DOWNLOADER_MIDDLEWARES
        ),
        "SPIDER_MIDDLEWARES": _merge(current.get("SPIDER_MIDDLEWARES"), SPLASH_SPIDER_MIDDLEWARES),
        "REQUEST_FINGERPRINTER_CLASS": _FINGERPRINTER,
    }
    base = current.get("REQUEST_FINGERPRINTER_CLASS")
    if base and _path(base) != _SCRAPY_FINGERPRINTER and not _is_splash_fingerprinter(base):
        out["SCRAPY_SPLASH_REQUEST_FINGERPRINTER_BASE_CLASS"] = base
    for name, (default, ours) in _DEFAULTS.items():
        if _path(current.get(name) or default) == default:
            out[name] = ours
    return out


def splash_enabled(settings) -> bool:
    """Whether these settings send Splash requests to Splash (``SPLASH_URL`` is set)."""
    return bool(settings.get("SPLASH_URL"))


class SplashRendering:
    """Add-on: with ``SPLASH_URL`` set, enable Splash (the settings of :func:`splash_settings`).

    Middlewares are added to the component dicts whatever their priority; the other settings are
    set at add-on priority, so a value given in settings.py or with ``-s`` still wins.
    """

    def update_settings(self, settings) -> None:
        wanted = splash_settings(settings)
        ours = {
            "DOWNLOADER_MIDDLEWARES": SPLASH_DOWNLOADER_MIDDLEWARES,
            "SPIDER_MIDDLEWARES": SPLASH_SPIDER_MIDDLEWARES,
        }
        for name, value in wanted.items():
            if name in ours:
                # value[path] is the project's own priority where it names the component already.
                for path in ours[name]:
                    settings.set_in_component_priority_dict(name, load_object(path), value[path])
                for stale in [k for k in settings.getdict(name) if _path(k).startswith("scrapy_splash.")]:
                    settings.set_in_component_priority_dict(name, load_object(stale), None)
            else:
                settings.set(name, value, priority="addon")


# --- requests ------------------------------------------------------------------------------

# Seconds Splash waits after the page loaded before returning the DOM (lets XHR-filled content land).
DEFAULT_WAIT = 0.5

# The Lua script of every Splash request (Splash's ``execute`` endpoint): the page rendered as
# ``render.html`` renders it, answered with the page's own HTTP status (``http_status``) and headers,
# which scrapy-splash makes ``response.status`` and ``response.headers``. Splash 3.5's render.html
# answers 200 for a page the hub answered 404, 429, 500 or 503 with a body (its own 502 only for one
# without), and has no argument that carries the page's status. Headers that describe the hub's
# bytes rather than the DOM (length, encoding), its cookies and a ``Location`` (Splash followed the
# redirects it was going to) are left out. A page that gave no answer of its own (the network
# failed, Splash's browser refused the URL) gets Splash's 502 ``RenderError``, as render.html did.
# The page is asked for with the request's headers (``args.headers``, which scrapy-splash fills
# from the request: the crawl's User-Agent, DEFAULT_REQUEST_HEADERS), as render.html did.
# ``final_url`` is the URL the page came from after Splash's browser followed the hub's redirects
# (:func:`final_url`): HubRedirectMiddleware refuses one on another host, as it refuses such a
# redirect of a plain request. ``response.url`` stays the page's own URL (not Splash's URL: Qt
# rewrites its percent-escapes).
RENDER_SCRIPT = """\
local dropped = {["content-length"] = true, ["content-encoding"] = true, ["transfer-encoding"] = true,
                 ["connection"] = true, ["keep-alive"] = true, ["set-cookie"] = true, ["set-cookie2"] = true,
                 ["location"] = true}

function main(splash, args)
  if args.images ~= nil then
    splash.images_enabled = args.images ~= 0 and args.images ~= false
  end
  -- The request's headers (the crawl's User-Agent...), which scrapy-splash passes and render.html sent.
  local ok, reason = splash:go{args.url, headers = args.headers}
  local status = splash:status_code()
  if not ok then
    local _, _, code = string.find(reason or "", "^http(%d%d%d)$")
    status = code and tonumber(code)
    if not status then
      -- No answer of the page's own (the network failed, Splash refused the URL...): Splash's own
      -- error, as render.html gives it.
      splash:set_result_status_code(502)
      local _, _, text = string.find(splash:html() or "", "<h1>Failed loading page %((.-)%)</h1>")
      return {error = 502, type = "RenderError", description = "Error rendering page",
              info = {type = reason, text = text, url = args.url}}
    end
  elseif args.wait and args.wait > 0 then
    splash:wait(args.wait)
  end
  local headers = {}
  local entries = splash:history()
  local last = entries[#entries]
  for _, header in ipairs(last and last.response.headers or {}) do
    if not dropped[string.lower(header.name)] then
      local seen = headers[header.name]
      headers[header.name] = seen and (seen .. ", " .. header.value) or header.value
    end
  end
  return {html = splash:html(), http_status = status, headers = headers, final_url = splash:url()}
end
"""


def splash_request(
    url: str,
    callback=None,
    *,
    wait: float = DEFAULT_WAIT,
    timeout: float | None = None,
    args: dict | None = None,
    **kwargs: Any,
) -> SplashRequest:
    """A request for ``url`` rendered by Splash (:data:`RENDER_SCRIPT` on its ``execute`` endpoint):
    ``response.text`` is the DOM after the page's JavaScript ran and ``wait`` more seconds;
    ``response.url`` is ``url``; ``response.status`` and ``response.headers`` are the page's own
    (a hub's 404, 429 or 5xx is handled as for a plain request: HttpError, retries, rate-limit
    waits), Splash's answer is ``response.splash_response_status``.

    ``timeout`` is Splash's render timeout (server default 30 s, at most its ``--max-timeout``);
    ``args`` are more arguments (the script reads ``images``: 0 loads none); other keyword arguments go
    to :class:`scrapy_splash.SplashRequest` / :class:`scrapy.Request` (``meta``, ``cb_kwargs``,
    ``errback``, ``dont_filter``…). Without ``SPLASH_URL`` (Splash off) it is fetched as a plain GET.
    """
    from ptmscrape.compat.splash import SplashRequest

    splash_args: dict[str, Any] = {"wait": wait, "lua_source": RENDER_SCRIPT}
    if timeout is not None:
        splash_args["timeout"] = timeout
    splash_args.update(args or {})
    return SplashRequest(url, callback, endpoint="execute", args=splash_args, **kwargs)


# --- failures ------------------------------------------------------------------------------


def splash_page(request) -> tuple[str, str | None]:
    """``(the page's own URL, the Splash endpoint it was sent to)`` of a request, or
    ``(request.url, None)`` for one not sent through Splash.

    Once SplashMiddleware has rewritten a Splash request (what a retry, an errback or the downloader
    sees), its URL is the Splash server's (``http://127.0.0.1:8050/execute``): a page reported
    by that URL names neither the page nor the model."""
    if request.meta.get("_splash_processed"):
        url = ((request.meta.get("splash") or {}).get("args") or {}).get("url")
        if isinstance(url, str) and url:
            return url, request.url
    return request.url, None


def page_status(response) -> bool:
    """Whether a Splash response's status is the rendered page's own, which Splash carried (it
    answered 200: :data:`RENDER_SCRIPT`), rather than Splash's own error (a render timeout's 504, a
    page it could not load's 502, a bad request's 400). False for a plain response."""
    return response is not None and getattr(response, "splash_response_status", None) == 200


def final_url(response) -> str | None:
    """The URL a page rendered by :data:`RENDER_SCRIPT` came from, after the redirects Splash's
    browser followed (``response.url`` stays the URL asked for); None for any other response."""
    data = getattr(response, "data", None) if page_status(response) else None
    url = data.get("final_url") if isinstance(data, dict) else None
    return url if isinstance(url, str) and url else None


def splash_error(response) -> str | None:
    """Splash's own reason for a non-200 answer (its JSON error body), e.g. ``GlobalTimeoutError:
    Timeout exceeded rendering page`` (504) or ``RenderError: Error rendering page (network1
    Connection refused)`` (502), or :data:`NO_LUA` for a Splash without Lua, or None when the body
    is not Splash's error object."""
    try:
        error = json.loads(response.body)
    except (ValueError, TypeError, AttributeError):
        return _no_lua(response)
    if not isinstance(error, dict) or not (error.get("type") or error.get("description")):
        return None
    said = ": ".join(str(part) for part in (error.get("type"), error.get("description")) if part)
    info = error.get("info")
    if isinstance(info, dict) and (info.get("code") or info.get("text")):
        said += " (" + " ".join(str(part) for part in (info.get("type"), info.get("code"), info.get("text"))
                                if part not in (None, "")) + ")"
    return said[:300]


NO_LUA = ("no execute endpoint: this Splash runs no Lua scripts (started with --disable-lua?), and pages are "
          "rendered by one (ptmscrape.rendering.RENDER_SCRIPT)")


def _no_lua(response) -> str | None:
    """:data:`NO_LUA` for Splash's 404 of its ``execute`` endpoint (a Splash without Lua has none:
    Twisted's 'No Such Resource' page for every page rendered), else None."""
    request = getattr(response, "request", None)
    url = request.url if request is not None else getattr(response, "url", "")
    # Splash's own 404, not a hub's 404 page that it carried (splash_response_status 200).
    status = getattr(response, "splash_response_status", getattr(response, "status", None))
    if status == 404 and urlsplit(url).path.rstrip("/").endswith("/execute"):
        return NO_LUA
    return None
