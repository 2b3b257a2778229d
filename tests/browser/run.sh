#!/usr/bin/env bash
# Browser tests of the web client: installs what is missing (Debian Chromium,
# playwright-core), builds the hub unless HUB_BIN is given, runs
# `node --test` (the client's pure modules, then the browser scenarios
# against a real hub serving this tree's web/) and exits with its status. Artifacts (screenshots, hub logs)
# land in tests/browser/artifacts/.
set -euo pipefail

HERE="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
ROOT="$(cd "$HERE/../.." && pwd)"

if [ ! -x /usr/bin/chromium ]; then
  echo "browser tests: installing Debian chromium" >&2
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq
  apt-get install -y -qq chromium chromium-driver >/dev/null
fi

if [ ! -d "$HERE/node_modules/playwright-core" ]; then
  echo "browser tests: npm ci" >&2
  (cd "$HERE" && npm ci --no-audit --no-fund --loglevel=error)
fi

if [ -z "${HUB_BIN:-}" ]; then
  (cd "$ROOT" && cargo build --bin audotics-hub)
  TARGET_DIR="$(cd "$ROOT" && cargo metadata --no-deps --format-version 1 \
    | node -e 'let s="";process.stdin.on("data",d=>s+=d).on("end",()=>console.log(JSON.parse(s).target_directory))')"
  export HUB_BIN="$TARGET_DIR/debug/audotics-hub"
fi

cd "$HERE"
# Node's test runner prints its summary (tests / pass / fail) at the end and
# exits non-zero when any test fails.
# One file at a time: each starts its own hub and browser (hub.test.js also
# clears artifacts/ first; party.test.js adds its screenshots after).
exec node --test --test-reporter=spec --test-concurrency=1 --test-timeout=900000 \
  "$HERE/unit.test.js" "$HERE/hub.test.js" "$HERE/party.test.js"
