#!/usr/bin/env bash
# Start the services the tests use, on loopback only. Each start script is idempotent.
set -euo pipefail
cd "$(dirname "$0")/.."
for script in .ci/splash.sh .ci/start-*.sh; do
  [ -e "$script" ] || continue
  echo "--- $script"
  bash "$script"
done
