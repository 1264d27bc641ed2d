#!/usr/bin/env bash
# Browser tests' dependencies: Debian's chromium (/usr/bin/chromium) and playwright-core from npm
# (Playwright's own browser download does not work here). Idempotent; run by tests/e2e/conftest.py.
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
if ! [ -x /usr/bin/chromium ]; then
  if [ "$(id -u)" -ne 0 ]; then
    echo "serverflow e2e: install Debian's chromium: sudo apt-get install chromium" >&2
    exit 1
  fi
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq
  apt-get install -y -qq --no-install-recommends chromium >/dev/null
fi
if ! [ -f "$here/node_modules/playwright-core/package.json" ]; then
  (cd "$here" && npm install --no-audit --no-fund --silent)
fi
