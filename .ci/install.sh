#!/usr/bin/env bash
# Everything the project and its tests need, installed from the package registries.
set -euo pipefail
cd "$(dirname "$0")/.."

export DEBIAN_FRONTEND=noninteractive
need=()
for pkg in git git-lfs redis-server; do
  dpkg -s "$pkg" >/dev/null 2>&1 || need+=("$pkg")
done
if [ ${#need[@]} -gt 0 ]; then
  apt-get update -qq
  apt-get install -y -qq "${need[@]}" >/dev/null
fi

# The venv's interpreter: PTM_PYTHON if set, else Debian's own python3 where it is 3.11 or newer
# (built with profile-guided and link-time optimisation: a crawl costs ~15% less CPU than on a
# default pyenv build of the same Python, bench/RESULTS.md "Seventh round"), else python3.
python=${PTM_PYTHON:-python3}
if [ -z "${PTM_PYTHON:-}" ] && /usr/bin/python3 -c 'import sys, ensurepip; sys.exit(sys.version_info < (3, 11))' 2>/dev/null; then
  python=/usr/bin/python3
fi
[ -x .venv/bin/python ] || "$python" -m venv .venv
.venv/bin/python -c 'import sys; print("venv python:", sys.version.split()[0], sys.base_prefix)'
.venv/bin/pip install -q --disable-pip-version-check -r requirements.txt

