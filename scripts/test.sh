#!/usr/bin/env bash
# Runs every test: unit and integration tests (real Docker engine, Redis and
# MongoDB-compatible server), clippy for both targets, then the browser tests in real
# Chromium against a freshly built app, and the contract test (schemathesis with the
# app's own OpenAPI description) against the same app. Installs and starts what is missing first.
set -euo pipefail
source "$(dirname "$0")/lib.sh"
cd "$OWN_IDE_ROOT"
ensure_services
# The hostile-program tests run under gVisor too (tests/sandbox.rs, tests/engine.rs).
SANDBOX_RUNTIME=runsc ensure_runsc
ensure_rust_tools
# nginx: the load balancer of the cluster tests (tests/cluster.rs, through scripts/cluster.sh).
ensure_apt chromium fonts-dejavu-core nginx curl
command -v npm >/dev/null || ensure_apt nodejs npm

# The tests get their own MongoDB database and Redis logical database, so that they never
# see, nor leave, the counters, sessions and history of an app running on the same
# services. (Redis pub/sub channels are shared by all logical databases; the app's only
# one carries run ids, which an instance that does not hold the run ignores.)
dev_redis="${REDIS_URL:-redis://127.0.0.1:6379}"
dev_redis_base="${dev_redis%%\?*}"
[[ "$dev_redis_base" =~ ^(rediss?://[^/]*)(/([0-9]+))?/?$ ]] || die "cannot read REDIS_URL=$dev_redis"
test_redis_db="${TEST_REDIS_DB:-1}"
[ "$test_redis_db" != "${BASH_REMATCH[3]:-0}" ] \
  || die "REDIS_URL uses database $test_redis_db, which the tests use: set TEST_REDIS_DB to another"
export REDIS_URL="${BASH_REMATCH[1]}/$test_redis_db${dev_redis#"$dev_redis_base"}"
[ "${DATABASE_NAME:-own_ide}" != "${TEST_DATABASE_NAME:-own_ide_test}" ] \
  || die "DATABASE_NAME is the tests' database: set TEST_DATABASE_NAME to another"
export DATABASE_NAME="${TEST_DATABASE_NAME:-own_ide_test}"

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
"$OWN_IDE_ROOT/scripts/build-apidocs.sh"
# Its own site root: a running `scripts/run.sh` app keeps serving its own bundle.
leptos_build "$SITE_ROOT_TEST"
( cd end2end && { [ -d node_modules ] && [ node_modules -nt package-lock.json ] || npm ci --no-audit --no-fund --silent; } )
leptos_env "$SITE_ROOT_TEST"
port="${E2E_PORT:-3107}"
port_open 127.0.0.1 "$port" && die "port $port is in use (set E2E_PORT to a free one)"
# The browser tests act as many different guests: each sets its own X-Forwarded-For,
# which the app honours only because the test runner (127.0.0.1) is a trusted proxy.
export LISTEN_ADDR="127.0.0.1:$port" OWN_IDE_BASE_URL="http://127.0.0.1:$port" \
  TRUSTED_PROXIES=127.0.0.1 GUEST_QUOTA=5 IP_EXPIRY_SECONDS=86400 \
  RUN_TIME_LIMIT_MS="${E2E_RUN_TIME_LIMIT_MS:-15000}" \
  INTERACTIVE_TIME_LIMIT_MS="${E2E_INTERACTIVE_TIME_LIMIT_MS:-20000}"
log="$OWN_IDE_LOGS/e2e-server.log"
"$(target_dir)/debug/own-ide" >"$log" 2>&1 &
server=$!
trap 'kill $server 2>/dev/null || true; wait $server 2>/dev/null || true' EXIT
# A server that dies at start is reported at once, with the end of its log.
for _ in $(seq 300); do
  port_open 127.0.0.1 "$port" && break
  if ! kill -0 "$server" 2>/dev/null; then
    tail -n 30 "$log" >&2
    die "the app exited at start (above: the end of $log)"
  fi
  sleep 0.2
done
port_open 127.0.0.1 "$port" || { tail -n 30 "$log" >&2; die "the app did not listen on port $port within 60s (log: $log)"; }
# The summary below must be this run's, never a report left by an earlier one.
rm -f "$OWN_IDE_ROOT/end2end/report.json"
status=0
# Existing clients of the other APIs, unchanged, against the same app.
say "Judge0 SDK and piston-client against /judge0 and /piston"
ensure_judge0_sdk
"$JUDGE0_SDK_PYTHON" end2end/facades/judge0_sdk.py || status=$?
( cd end2end && node facades/piston_client.mjs ) || status=$?
( cd end2end && npx playwright test ) || status=$?
# One plain summary line for CI, read from the JSON report.
if [ -f "$OWN_IDE_ROOT/end2end/report.json" ]; then
  node -e '
    const s = require(process.argv[1]).stats;
    console.log(`end2end: ${s.expected + s.flaky} passed, ${s.unexpected} failed` + (s.skipped ? `, ${s.skipped} skipped` : ""));
  ' "$OWN_IDE_ROOT/end2end/report.json" || true
else
  echo "end2end: no report (the browser tests did not run to the end)"
fi

say "contract test (schemathesis)"
"$OWN_IDE_ROOT/scripts/contract.sh" "$OWN_IDE_BASE_URL" || status=1
exit $status
