#!/usr/bin/env bash
# Runs every test: unit and integration tests (real Docker engine, Redis and
# MongoDB-compatible server), clippy for both targets, then the browser tests in real
# Chromium against a freshly built app. Installs and starts what is missing first.
set -euo pipefail
source "$(dirname "$0")/lib.sh"
cd "$OWN_IDE_ROOT"
ensure_services
ensure_rust_tools
ensure_apt chromium fonts-dejavu-core
command -v npm >/dev/null || ensure_apt nodejs npm

# A one-off build gains nothing from incremental state (about 3 GB on disk).
export CARGO_INCREMENTAL="${CARGO_INCREMENTAL:-0}"
check_disk 8
say "unit and integration tests"
# Doc-tests are skipped: the crate has none, and an empty run would be the last summary.
cargo test --features ssr --lib --bins --tests

say "clippy (ssr and hydrate)"
cargo clippy --features ssr --all-targets -q -- -D warnings
cargo clippy --lib --no-default-features --features hydrate --target wasm32-unknown-unknown -q -- -D warnings

say "browser tests"
"$OWN_IDE_ROOT/scripts/build-editor.sh"
cargo leptos build
( cd end2end && { [ -d node_modules ] && [ node_modules -nt package-lock.json ] || npm ci --no-audit --no-fund --silent; } )
leptos_env
port="${E2E_PORT:-3107}"
# The browser tests act as many different guests: each sets its own X-Forwarded-For,
# which the app honours only because the test runner (127.0.0.1) is a trusted proxy.
export LISTEN_ADDR="127.0.0.1:$port" OWN_IDE_BASE_URL="http://127.0.0.1:$port" \
  TRUSTED_PROXIES=127.0.0.1 GUEST_QUOTA=5 IP_EXPIRY_SECONDS=86400
"$OWN_IDE_ROOT/target/debug/own-ide" >"$OWN_IDE_LOGS/e2e-server.log" 2>&1 &
server=$!
trap 'kill $server 2>/dev/null || true; wait $server 2>/dev/null || true' EXIT
wait_for 60 "the app on port $port" port_open 127.0.0.1 "$port"
status=0
( cd end2end && npx playwright test ) || status=$?
# One plain summary line for CI, read from the JSON report.
node -e '
  const s = require(process.argv[1]).stats;
  console.log(`end2end: ${s.expected + s.flaky} passed, ${s.unexpected} failed` + (s.skipped ? `, ${s.skipped} skipped` : ""));
' "$OWN_IDE_ROOT/end2end/report.json" || true
exit $status
