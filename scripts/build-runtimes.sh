#!/usr/bin/env bash
# Builds the sandbox runtime images (${OWN_IDE_IMAGE_PREFIX:-own-ide-}<lang>:latest) without any
# registry: mmdebstrap makes a lean Debian root file system (essential variant: no apt; perl,
# docs and setuid bits removed) with the language's packages, `docker import` turns it into a
# base image, and the one runtimes/Dockerfile adds the supervisor and the sandbox user.
#
# Build key: sha256 of this script, runtimes/Dockerfile, runtimes/<lang>/packages, the supervisor source and
# the exact version of every package that would be installed (the dependency closure resolved
# from the host's apt lists, refreshed by `apt-get update` unless OWN_IDE_APT_UPDATE=0), so a
# Debian security update rebuilds the image and an unchanged archive costs about a second.
set -euo pipefail
root="$(cd "$(dirname "$0")/.." && pwd)"
langs=("$@"); [ ${#langs[@]} -gt 0 ] || langs=(python cpp java javascript c rust go typescript)
suite="${OWN_IDE_DEBIAN_SUITE:-bookworm}"
prefix="${SANDBOX_IMAGE_PREFIX:-${OWN_IDE_IMAGE_PREFIX:-own-ide-}}"  # the engine reads SANDBOX_IMAGE_PREFIX too
mirror="${OWN_IDE_DEBIAN_MIRROR:-http://deb.debian.org/debian}"
security="${OWN_IDE_DEBIAN_SECURITY:-http://deb.debian.org/debian-security}"

# The supervisor: static, so the same binary runs in every image whatever its libc.
build_supervisor() {
  local out="$1"
  if ! gcc -static -O2 -Wall -Wextra -Werror -o "$out" "$root/runtimes/supervisor/supervisor.c" 2>/dev/null; then
    echo "gcc -static failed; installing libc6-dev" >&2
    apt-get install -y -qq libc6-dev >/dev/null
    gcc -static -O2 -Wall -Wextra -Werror -o "$out" "$root/runtimes/supervisor/supervisor.c"
  fi
}

# Prints "package version" for the dependency closure of the given packages (plus the
# essential set every image holds), resolved from the host's apt lists.
resolved_versions() {
  local closure
  closure="$( { dpkg-query -W -f='${Package} ${Essential}\n' 2>/dev/null | awk '$2=="yes"{print $1}'
    apt-cache depends --recurse --no-recommends --no-suggests --no-conflicts --no-breaks \
      --no-replaces --no-enhances "$@" 2>/dev/null | grep -v '^ ' | grep -v '^<'; } | sort -u)"
  # shellcheck disable=SC2086
  apt-cache policy $closure 2>/dev/null | awk '/^[^ ]/{p=$1} /Candidate:/{print p, $2}'
}

if [ "${OWN_IDE_APT_UPDATE:-1}" != 0 ]; then
  apt-get update -qq >/dev/null 2>&1 || echo "apt-get update failed; using the lists as they are" >&2
fi
work="$(mktemp -d)"
trap 'rm -rf "$work"' EXIT
build_supervisor "$work/supervisor"
cp "$root/runtimes/Dockerfile" "$work/Dockerfile"
cp "$root/runtimes/javascript/warm.js" "$work/node-warm.js"
cp "$root/runtimes/java/WarmJavac.java" "$work/WarmJavac.java"

# Only there for maintainer scripts, which have all run when the customize hooks do: usrmerge
# (done already) pulls in perl; debconf is perl too. Nothing a compiler or a program needs.
export lean_purge="usrmerge libfile-find-rule-perl libnumber-compare-perl libtext-glob-perl
  perl libperl5.36 perl-modules-5.36 debconf perl-base"

for lang in "${langs[@]}"; do
  list="$root/runtimes/$lang/packages"
  [ -f "$list" ] || { echo "no runtime package list for '$lang'" >&2; exit 1; }
  mapfile -t pkgs < <(grep -v '^\s*\(#\|$\)' "$list")
  # The base's key (what mmdebstrap makes) and the image's key (base + Dockerfile + supervisor)
  # are separate, so a supervisor change does not re-run mmdebstrap.
  base_hash="$( { cat "$0" "$list"; resolved_versions "${pkgs[@]}"; } | sha256sum | cut -c1-16)"
  hash="$( { echo "$base_hash"; cat "$root/runtimes/Dockerfile" "$root/runtimes/supervisor/supervisor.c" \
    "$root/runtimes/javascript/warm.js" "$root/runtimes/java/WarmJavac.java"; } |
    sha256sum | cut -c1-16)"
  image="$prefix$lang:latest"
  have="$(docker image inspect -f '{{ index .Config.Labels "own-ide.hash" }}' "$image" 2>/dev/null || true)"
  if [ "$have" = "$hash" ]; then echo "runtime $image is up to date"; continue; fi
  echo "building runtime $image (this takes 20 s to 2 min per language)"
  base="${prefix}base-$lang:$base_hash"
  if ! docker image inspect "$base" >/dev/null 2>&1; then
    # essential variant: dpkg and the Essential set, no apt; the hooks drop perl (see
    # lean_purge), setuid/setgid bits, apt lists, logs, docs and man pages. openjdk's postinst
    # fails without /usr/share/man/man1 (update-alternatives links its man page there).
    mmdebstrap --quiet --variant=essential --include="$(IFS=,; echo "${pkgs[*]}")" \
      --dpkgopt='path-exclude=/usr/share/doc/*' --dpkgopt='path-exclude=/usr/share/man/*' \
      --dpkgopt='path-exclude=/usr/share/info/*' --dpkgopt='path-exclude=/usr/share/locale/*' \
      --dpkgopt='path-exclude=/usr/share/lintian/*' \
      --essential-hook='mkdir -p "$1"/usr/share/man/man1' \
      --customize-hook='chroot "$1" dpkg --purge --force-all $lean_purge >/dev/null 2>&1 || true' \
      --customize-hook='test ! -e "$1"/usr/bin/perl && test -x "$1"/bin/sh' \
      --customize-hook='find "$1" -xdev -perm /6000 -exec chmod ug-s {} +' \
      --customize-hook='rm -rf "$1"/var/lib/apt/lists/* "$1"/var/cache/apt/* "$1"/var/log/* "$1"/var/cache/debconf/*-old "$1"/usr/share/doc "$1"/usr/share/man' \
      "$suite" - "deb $mirror $suite main" "deb $mirror $suite-updates main" \
      "deb $security $suite-security main" > "$work/rootfs.tar"
    # Imported only after mmdebstrap succeeded: a failed run must not leave an empty base
    # image that the next run would take as built.
    docker import "$work/rootfs.tar" "$base" >/dev/null
    rm -f "$work/rootfs.tar"
  fi
  docker build --quiet --build-arg "BASE=$base" --build-arg "LANG_PACKAGES=${pkgs[*]}" \
    --label "own-ide.hash=$hash" -t "$image" "$work" >/dev/null
  # Older base images of this language are dead weight (hundreds of MB each) once the image
  # is rebuilt; one still used by a container stays (rmi without -f refuses).
  docker image ls --format '{{.Repository}}:{{.Tag}}' "${prefix}base-$lang" | grep -vxF "$base" |
    xargs -r docker rmi >/dev/null 2>&1 || true
  echo "built $image ($(docker image inspect -f '{{.Size}}' "$image" | awk '{printf "%d MB", $1/1e6}'))"
done
