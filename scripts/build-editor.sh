#!/usr/bin/env bash
# Builds the CodeMirror 6 editor bundle from editor/ (npm packages, see editor/package.json)
# into public/editor/: editor.js (ES module entry, sets window.OwnIde and fires the
# 'ownide-editor-ready' event) plus chunks/*.js (shared code and one lazily imported chunk
# per language). Runs `npm ci` only when node_modules is missing or older than
# package-lock.json, and skips esbuild when the output is newer than its inputs.
# Works from any cwd. Set OWN_IDE_EDITOR_FORCE=1 to rebuild anyway.
set -euo pipefail
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
editor="$root/editor"
out="$root/public/editor"
lock="$editor/package-lock.json"
stamp="$editor/node_modules/.package-lock.json" # npm's hidden lockfile, rewritten by npm ci

if [ ! -f "$stamp" ] || [ "$lock" -nt "$stamp" ]; then
  command -v npm >/dev/null || { echo "build-editor: npm (Node 18+) is required" >&2; exit 1; }
  echo "build-editor: installing npm packages (npm ci)"
  (cd "$editor" && npm ci --no-audit --no-fund --loglevel=error)
  touch "$stamp"
fi

entry="$out/editor.js"
if [ -z "${OWN_IDE_EDITOR_FORCE:-}" ] && [ -f "$entry" ] &&
   [ -z "$(find "$editor/src" "$lock" "${BASH_SOURCE[0]}" -newer "$entry" -print -quit)" ]; then
  echo "build-editor: public/editor is up to date"
  exit 0
fi

# Build into a fresh folder, then swap it in, so no stale chunks pile up.
tmp="$root/public/.editor-build.$$"
trap 'rm -rf "$tmp"' EXIT
rm -rf "$tmp"
"$editor/node_modules/.bin/esbuild" "editor=$editor/src/main.js" \
  --bundle --format=esm --splitting --minify --target=es2020 \
  --outdir="$tmp" --chunk-names='chunks/[name]-[hash]' \
  --log-level=warning
rm -rf "$out"
mv "$tmp" "$out"
echo "build-editor: wrote public/editor ($(du -sh "$out" | cut -f1))"
