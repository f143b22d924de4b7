#!/usr/bin/env bash
# Copies Swagger UI (npm package swagger-ui-dist, pinned in apidocs/package-lock.json)
# into public/api-docs/, which the app serves at /api-docs/ for the page /api/docs: the
# API description's viewer comes from this site, never from a CDN. Runs `npm ci` only
# when node_modules is missing or older than the lock file. Works from any cwd.
set -euo pipefail
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
src="$root/apidocs"
out="$root/public/api-docs"
stamp="$src/node_modules/.package-lock.json"

if [ ! -f "$stamp" ] || [ "$src/package-lock.json" -nt "$stamp" ]; then
  command -v npm >/dev/null || { echo "build-apidocs: npm (Node 18+) is required" >&2; exit 1; }
  echo "build-apidocs: installing swagger-ui-dist (npm ci)"
  (cd "$src" && npm ci --no-audit --no-fund --loglevel=error)
  touch "$stamp"
fi
mkdir -p "$out"
for f in swagger-ui-bundle.js swagger-ui.css LICENSE; do
  cp -p "$src/node_modules/swagger-ui-dist/$f" "$out/$f"
done
echo "build-apidocs: public/api-docs is ready"
