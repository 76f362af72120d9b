#!/usr/bin/env bash
# Splash 3.5 (JavaScript rendering service for scrapy-splash) on 127.0.0.1:8050, without Docker.
#
# Idempotent: installs what is missing, does nothing else if Splash already answers /_ping.
#   - Debian packages: PyQt5 with QtWebKit and QtWebEngine (the browser engines Splash drives),
#     plus liblua5.2-dev/pkg-config/gcc/python3-dev to build lupa against Lua 5.2 (see below).
#   - A venv .splash-venv/ on Debian's /usr/bin/python3 with --system-site-packages (so it sees
#     Debian's PyQt5), holding splash==3.5 and the dependency versions verified with it.
#   - Exact-text fixes to the installed splash 3.5 package, which predates Python 3.9/3.10 (see
#     "source fixes" below: without them every JSON POST, i.e. every scrapy-splash request, fails).
# Then starts `python -m splash.server` in the background (log: /tmp/ptmscrape-splash-<port>.log)
# and waits up to SPLASH_START_TIMEOUT (120) seconds for http://127.0.0.1:<port>/_ping.
# Port: PTM_SPLASH_PORT (8050). Stop it: kill "$(cat /tmp/ptmscrape-splash-8050.pid)".
#
# Splash renders pages served from 127.0.0.1 with its defaults: it has no private-address filter,
# and --allowed-schemes defaults to http,https,data,ftp,sftp,ws,wss.
set -euo pipefail
cd "$(dirname "$0")/.."

HOST=127.0.0.1
PORT="${PTM_SPLASH_PORT:-8050}"
VENV="$PWD/.splash-venv"
LOG="/tmp/ptmscrape-splash-$PORT.log"
PIDFILE="/tmp/ptmscrape-splash-$PORT.pid"
TIMEOUT="${SPLASH_START_TIMEOUT:-120}"
PY=/usr/bin/python3   # Debian's python: the one python3-pyqt5.* is built for

# Verified together on Debian 12 (Qt 5.15.8, PyQt5 5.15.9, Python 3.11.2).
PINS=(
  splash==3.5
  Twisted[http2]==26.10.0
  qt5reactor==0.6.3
  Pillow==13.0.0
  psutil==7.2.2
  adblockparser==0.7
  xvfbwrapper==0.2.37
  funcparserlib==1.0.1
  attrs==26.1.0
)
# lupa (Lua scripting: /execute, /run, SplashRequest(endpoint='execute')) is built from source
# against Debian's Lua 5.2 like Splash's Docker image does: lupa's PyPI wheels bundle Lua 5.4, whose
# require() returns two values and breaks Splash's sandbox setup ("tuple indices must be integers").
# 1.14.1 is the last 1.x: lupa 2.x built from source still builds its own bundled Lua (2.8: "Lua 5.5",
# which the check below refuses), so it cannot be pinned here without another build recipe.
LUPA=lupa==1.14.1

ping_splash() {
  "$PY" - "$HOST" "$PORT" <<'EOF' 2>/dev/null
import sys, urllib.request
with urllib.request.urlopen(f"http://{sys.argv[1]}:{sys.argv[2]}/_ping", timeout=3) as r:
    sys.exit(0 if b'"ok"' in r.read() else 1)
EOF
}

if ping_splash; then
  echo "splash: already answering on http://$HOST:$PORT"
  exit 0
fi

# --- Debian packages ----------------------------------------------------------------------------
APT_PKGS=(python3-pyqt5.qtwebkit python3-pyqt5.qtwebengine python3-venv python3-dev
          liblua5.2-dev pkg-config gcc)
need=()
for pkg in "${APT_PKGS[@]}"; do
  dpkg -s "$pkg" 2>/dev/null | grep -q '^Status: install ok installed' || need+=("$pkg")
done
if [ ${#need[@]} -gt 0 ]; then
  echo "splash: apt-get install ${need[*]}"
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq
  apt-get install -y -qq "${need[@]}" >/dev/null
fi

# --- venv + pins --------------------------------------------------------------------------------
[ -x "$VENV/bin/python" ] || "$PY" -m venv --system-site-packages "$VENV"
PIP=("$VENV/bin/pip" install -q --disable-pip-version-check)
STAMP="$VENV/.ptmscrape-pins"
want="${PINS[*]} $LUPA lua5.2"
if [ "$(cat "$STAMP" 2>/dev/null)" != "$want" ]; then
  echo "splash: pip install ${PINS[*]} $LUPA (lupa from source against Lua 5.2)"
  "${PIP[@]}" "${PINS[@]}"
  LUPA_NO_LUAJIT=true "${PIP[@]}" --force-reinstall --no-deps --no-cache-dir --no-binary lupa "$LUPA"
  lua=$("$VENV/bin/python" -c 'import lupa; print(lupa.LuaRuntime().eval("_VERSION"))')
  if [ "$lua" != "Lua 5.2" ]; then
    echo "splash: lupa was built against '$lua', expected 'Lua 5.2'" >&2
    exit 1
  fi
  echo "$want" >"$STAMP"
fi

# --- source fixes for splash 3.5 on Python 3.11 -------------------------------------------------
# Each is an exact-text replacement in the installed package, applied only where the old text is
# still present (so re-running is a no-op). A missing old text that is not already fixed fails loudly.
"$VENV/bin/python" - <<'EOF'
import os, sys
import splash
root = os.path.dirname(splash.__file__)
PATCHES = [
    # Python 3.9 removed json.loads(encoding=...): every POST with an application/json body (which is
    # how scrapy-splash sends every SplashRequest) failed with HTTP 500 "unexpected keyword 'encoding'".
    ("render_options.py",
     "json.loads(content, encoding='utf8')", "json.loads(content)"),
    # Python 3.10 removed the implicit float -> int conversion that PyQt5 relied on: QTimer.start()
    # with a float raised TypeError, so splash:wait(0.5), Lua timeouts and per-request
    # resource_timeout (request.timeout * 1000) failed.
    ("browser_tab.py",
     "        timer.start(time_ms)\n", "        timer.start(int(time_ms))\n"),
    ("browser_tab.py",
     "self._timer.start(timeout * 1000)", "self._timer.start(int(timeout * 1000))"),
    ("network_manager.py",
     "        timer.start(timeout_ms)\n", "        timer.start(int(timeout_ms))\n"),
    ("engines/webkit/browser_tab.py",
     "point = QPoint(x, y)", "point = QPoint(int(x), int(y))"),
    # A Lua script failing during setup left LuaRender without .splash, and close() then replaced the
    # real error with "'LuaRender' object has no attribute 'splash'".
    ("qtrender_lua.py",
     "    def close(self):\n        self.splash.clear()\n",
     "    def close(self):\n        if hasattr(self, 'splash'):\n            self.splash.clear()\n"),
]
for rel, old, new in PATCHES:
    path = os.path.join(root, rel)
    with open(path, encoding="utf-8") as f:
        text = f.read()
    if new in text:
        continue
    if old not in text:
        sys.exit(f"splash: cannot patch {path}: text not found: {old!r}")
    with open(path, "w", encoding="utf-8") as f:
        f.write(text.replace(old, new))
    print(f"splash: patched {rel}")
EOF

# --- start --------------------------------------------------------------------------------------
# offscreen: no X server needed (no Xvfb); QT_QUICK_BACKEND=software: QtWebEngine (engine=chromium)
# aborts the whole server on "Failed to create OpenGL context" otherwise; --no-sandbox: Chromium
# refuses to run as root with its sandbox.
echo "splash: starting on http://$HOST:$PORT (log: $LOG)"
QTWEBENGINE_CHROMIUM_FLAGS=--no-sandbox QT_QPA_PLATFORM=offscreen QT_QUICK_BACKEND=software \
  setsid nohup "$VENV/bin/python" -m splash.server -i "$HOST" -p "$PORT" --disable-xvfb \
  >"$LOG" 2>&1 </dev/null &
pid=$!
echo "$pid" >"$PIDFILE"

deadline=$((SECONDS + TIMEOUT))
while [ $SECONDS -lt $deadline ]; do
  if ping_splash; then
    echo "splash: answering on http://$HOST:$PORT (pid $pid)"
    exit 0
  fi
  if ! kill -0 "$pid" 2>/dev/null; then
    echo "splash: the server (pid $pid) exited before answering; last lines of $LOG:" >&2
    tail -n 30 "$LOG" >&2 || true
    exit 1
  fi
  sleep 1
done
echo "splash: no answer from http://$HOST:$PORT/_ping within ${TIMEOUT}s; last lines of $LOG:" >&2
tail -n 30 "$LOG" >&2 || true
exit 1
