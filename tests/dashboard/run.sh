#!/usr/bin/env bash
# Runs the dashboard's import-graph check (imports.mjs: no cycles, no view importing another view)
# and then its browser test (dashboard.test.mjs) against the real server, first installing
# what it needs and a fresh machine lacks: Debian's Chromium and the pinned playwright-core.
# Needs target/release/vggserve (make build), or another binary named by VGGSERVE_BIN, and
# VGGSERVE_SHARED (the Makefile sets it). Its screenshots go to bench-out/ (dashboard-test.png…);
# VGGSERVE_SCREENSHOTS=1 also rewrites docs/img/gradcam-overlay.png, the tracked picture of "why?".
set -euo pipefail
cd "$(dirname "$0")/../.."

if ! command -v node >/dev/null; then
  echo "tests/dashboard/run.sh: node (>= 20) is needed and was not found" >&2
  exit 1
fi

# Cheap and needs neither a browser nor a server: fail fast on a broken module graph.
node tests/dashboard/imports.mjs

if [ ! -x /usr/bin/chromium ]; then
  echo "tests/dashboard/run.sh: installing Debian's chromium" >&2
  apt-get update -qq
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium >/dev/null
fi

if [ ! -d tests/dashboard/node_modules ]; then
  (cd tests/dashboard && npm ci --no-audit --no-fund)
fi

node --test tests/dashboard/dashboard.test.mjs
