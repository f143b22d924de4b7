#!/usr/bin/env bash
# Runs Own-IDE at http://127.0.0.1:3000 (LISTEN_ADDR to change), installing and starting
# whatever is missing first: toolchain, Docker engine, runtime images, Redis, MongoDB.
set -euo pipefail
source "$(dirname "$0")/lib.sh"
cd "$OWN_IDE_ROOT"
ensure_services
ensure_rust_tools
ensure_wasm_opt
"$OWN_IDE_ROOT/scripts/build-editor.sh"
"$OWN_IDE_ROOT/scripts/build-apidocs.sh"
say "building the app (release; the first build takes a while)"
leptos_build "$SITE_ROOT_RUN" --release
leptos_env "$SITE_ROOT_RUN"
export LEPTOS_ENV=PROD
say "Own-IDE is starting at http://${LISTEN_ADDR:-127.0.0.1:3000}"
exec "$(target_dir)/release/own-ide"
