#!/usr/bin/env bash
# Builds the sandbox runtime images (own-ide-<lang>:latest) without any registry:
# mmdebstrap makes a Debian root file system with the language's packages, `docker import`
# turns it into a base image, and runtimes/<lang>/Dockerfile adds the non-root user.
# An image whose runtimes/<lang> folder has not changed since it was built is skipped.
set -euo pipefail
root="$(cd "$(dirname "$0")/.." && pwd)"
langs=("$@"); [ ${#langs[@]} -gt 0 ] || langs=(python cpp java javascript)
suite="${OWN_IDE_DEBIAN_SUITE:-bookworm}"

for lang in "${langs[@]}"; do
  dir="$root/runtimes/$lang"
  [ -f "$dir/Dockerfile" ] || { echo "no runtime folder for '$lang'" >&2; exit 1; }
  hash="$(cat "$dir"/* | sha256sum | cut -c1-16)"
  image="own-ide-$lang:latest"
  have="$(docker image inspect -f '{{ index .Config.Labels "own-ide.hash" }}' "$image" 2>/dev/null || true)"
  if [ "$have" = "$hash" ]; then echo "runtime $image is up to date"; continue; fi
  echo "building runtime $image (this takes 20 s to 2 min per language)"
  base="own-ide-base-$lang:$hash"
  if ! docker image inspect "$base" >/dev/null 2>&1; then
    pkgs="$(tr '\n' ',' < "$dir/packages")time"
    mmdebstrap --quiet --variant=apt --include="$pkgs" \
      --customize-hook='rm -rf "$1"/var/lib/apt/lists/* "$1"/var/cache/apt/*' \
      "$suite" - | docker import - "$base" >/dev/null
  fi
  docker build --quiet --build-arg "BASE=$base" --label "own-ide.hash=$hash" \
    -t "$image" "$dir" >/dev/null
  echo "built $image"
done
