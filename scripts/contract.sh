#!/usr/bin/env bash
# The contract test: schemathesis (PyPI, pinned, in a venv kept under OWN_IDE_HOME)
# reads the app's own OpenAPI description and sends generated requests to the live app
# at BASE_URL (all checks, a bounded number of examples per operation), as a fresh user
# with a bearer token; it fails on anything that does not match the description.
# Strings are generated without NUL characters: the schemas say where NUL is refused
# (code), but schemathesis' stateful phase was seen to put one into a schema-valid body.
# Usage: scripts/contract.sh BASE_URL   (scripts/test.sh runs it against its app)
set -euo pipefail
source "$(dirname "$0")/lib.sh"
base="${1:?usage: scripts/contract.sh BASE_URL}"
SCHEMATHESIS_VERSION=4.32.5
venv="$OWN_IDE_HOME/schemathesis"
if [ "$("$venv/bin/st" --version 2>/dev/null)" != "st, version $SCHEMATHESIS_VERSION" ]; then
  command -v python3 >/dev/null || ensure_apt python3 python3-venv
  say "installing schemathesis $SCHEMATHESIS_VERSION (once)"
  python3 -m venv "$venv" || { ensure_apt python3-venv; python3 -m venv "$venv"; } || die "python3 -m venv failed"
  "$venv/bin/pip" install -q "schemathesis==$SCHEMATHESIS_VERSION" || die "pip install schemathesis failed"
fi

# A client address of its own (the app trusts 127.0.0.1 as a proxy in the tests), so
# that no count left by an earlier run or by the browser tests decides what it sees.
ip="10.$((RANDOM % 250)).$((RANDOM % 250)).$((RANDOM % 250 + 1))"
user="contract_$(od -An -N5 -tx1 /dev/urandom | tr -d ' \n')"
password="contract-$(od -An -N8 -tx1 /dev/urandom | tr -d ' \n')"
curl -fsS -o /dev/null -H "X-Forwarded-For: $ip" -H 'content-type: application/json' \
  -d "{\"username\":\"$user\",\"password\":\"$password\"}" "$base/api/v1/users" \
  || die "could not register the contract test's user at $base"
token="$(curl -fsS -H "X-Forwarded-For: $ip" --data-urlencode "username=$user" \
  --data-urlencode "password=$password" "$base/api/v1/token" \
  | python3 -c 'import json, sys; print(json.load(sys.stdin)["access_token"])')" \
  || die "could not log the contract test's user in"

# Every check; scripts/schemathesis.toml narrows one (positive_data_acceptance on
# POST /api/v1/runs, whose rules go beyond what a JSON schema can say; reason there).
say "contract test: schemathesis against $base/api/v1/openapi.json"
cd "$OWN_IDE_LOGS"
"$venv/bin/st" --config-file "$OWN_IDE_ROOT/scripts/schemathesis.toml" \
  run "$base/api/v1/openapi.json" --url "$base" \
  --checks all \
  --max-examples "${CONTRACT_MAX_EXAMPLES:-50}" \
  --request-timeout 30 \
  --generation-allow-x00 false \
  --no-color \
  -H "Authorization: Bearer $token" \
  -H "X-Forwarded-For: $ip"
