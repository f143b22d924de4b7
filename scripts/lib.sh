# Shared helpers for the set-up scripts. Each `ensure_*` installs or starts one thing
# only when it is missing, so a second run is quick. Sourced, not run.

OWN_IDE_ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"

say()  { printf '\033[1;34m==>\033[0m %s\n' "$*"; }
die()  { printf '\033[1;31merror:\033[0m %s\n' "$*" >&2; exit 1; }

# Reads one `KEY=VALUE` line's value the way the app's dotenvy does: `export ` and
# whitespace around `=` allowed; 'single quotes' literal; "double quotes" with \-escapes
# and $VAR / ${VAR} substitution; unquoted values end at whitespace (only a comment may
# follow), with substitution. Fails on a line dotenvy refuses. (Values spanning several
# lines are not supported here.)
dotenv_value() { # dotenv_value RAW_VALUE  -> prints the value
  local raw=$1 out="" c i=0 n quote=""
  raw="${raw#"${raw%%[![:space:]]*}"}"
  case "$raw" in
    \'*) raw="${raw#\'}"; printf '%s' "${raw%%\'*}"; return ;;
    \"*) quote='"'; raw="${raw#\"}" ;;
  esac
  n=${#raw}
  while [ "$i" -lt "$n" ]; do
    c="${raw:i:1}"
    if [ -n "$quote" ] && [ "$c" = '"' ]; then break; fi
    if [ -z "$quote" ] && [ "$c" = '#' ] && [ "$i" = 0 ]; then break; fi
    if [ -z "$quote" ] && [[ "$c" == [[:space:]] ]]; then
      # Unquoted, whitespace may only be followed by a comment (dotenvy refuses the rest).
      local tail="${raw:i}"; tail="${tail#"${tail%%[![:space:]]*}"}"
      if [ -z "$tail" ] || [ "${tail:0:1}" = '#' ]; then break; fi
      return 1
    fi
    if [ "$c" = '\' ]; then
      i=$((i + 1)); c="${raw:i:1}"
      case "$c" in n) out+=$'\n' ;; *) out+="$c" ;; esac
    elif [ "$c" = '$' ]; then
      local name rest="${raw:i+1}"
      if [ "${rest:0:1}" = '{' ]; then
        name="${rest#\{}"; name="${name%%\}*}"; i=$((i + ${#name} + 2))
      else
        name="${rest%%[!A-Za-z0-9_]*}"; i=$((i + ${#name}))
      fi
      # Like dotenvy: the process environment first, then keys read earlier from the file.
      if [ -n "$name" ]; then
        if [ -n "${!name+x}" ]; then out+="${!name}"; else local k="DOTENV_$name"; out+="${!k:-}"; fi
      else
        out+='$'
      fi
    else
      out+="$c"
    fi
    i=$((i + 1))
  done
  printf '%s' "$out"
}

# The app reads .env itself (dotenvy, which never overrides a variable already set). The
# scripts need a few of its keys to start the right services; they are read with the same
# rules, never by sourcing the file as bash (a `$`, a quote or a space would differ).
DOTENV_KEYS=(DOCKER_HOST REDIS_URL DATABASE_URI MONGODB_URI DATABASE_NAME DATABASE_USER DATABASE_PASSWORD
  LISTEN_ADDR LEPTOS_SITE_ADDR SANDBOX_IMAGE_PREFIX OWN_IDE_HOME OWN_IDE_LOGS)
load_dotenv() {
  local file="$OWN_IDE_ROOT/.env" line key value
  [ -f "$file" ] || return 0
  while IFS= read -r line || [ -n "$line" ]; do
    [[ "$line" =~ ^[[:space:]]*(export[[:space:]]+)?([A-Za-z_][A-Za-z0-9_.]*)[[:space:]]*=(.*)$ ]] || continue
    key="${BASH_REMATCH[2]}"
    # dotenvy stops at the first line it cannot parse; so does this, saying where.
    value="$(dotenv_value "${BASH_REMATCH[3]}")" \
      || { printf 'warning: .env: cannot parse the value of %s (quote it); the app stops reading .env there too\n' "$key" >&2; return 0; }
    printf -v "DOTENV_$key" '%s' "$value" 2>/dev/null || continue
    local k
    for k in "${DOTENV_KEYS[@]}"; do
      if [ "$k" = "$key" ] && [ -z "${!key+x}" ]; then export "$key=$value"; fi
    done
  done <"$file"
}
load_dotenv

OWN_IDE_HOME="${OWN_IDE_HOME:-/var/lib/own-ide}"        # data and tools of the local services
OWN_IDE_LOGS="${OWN_IDE_LOGS:-$OWN_IDE_HOME/logs}"
CARGO_LEPTOS_VERSION=0.3.10
SECANTUS_VERSION=0.7.0b3
export PATH="$HOME/.cargo/bin:$PATH"

is_root() { [ "$(id -u)" = 0 ]; }

# Installs Debian packages that are not installed yet.
ensure_apt() {
  local missing=()
  for p in "$@"; do dpkg -s "$p" >/dev/null 2>&1 || missing+=("$p"); done
  [ ${#missing[@]} -eq 0 ] && return 0
  command -v apt-get >/dev/null || die "this is not a Debian-like system; install: ${missing[*]}"
  is_root || die "run as root, or install these packages first: ${missing[*]}"
  say "installing ${missing[*]}"
  if [ -z "${OWN_IDE_APT_UPDATED:-}" ]; then
    apt-get update -q >/dev/null || die "apt-get update failed"
    export OWN_IDE_APT_UPDATED=1
  fi
  DEBIAN_FRONTEND=noninteractive apt-get install -y -q --no-install-recommends "${missing[@]}" >/dev/null \
    || die "apt-get install failed for: ${missing[*]}"
}

# Stops early, with a clear message, when the build would run out of disk space half-way.
check_disk() { # check_disk GIGABYTES
  local need=$1 free_kb
  free_kb=$(df -Pk "$OWN_IDE_ROOT" | awk 'NR==2 {print $4}')
  [ "${free_kb:-0}" -ge $((need * 1024 * 1024)) ] && return 0
  die "only $((free_kb / 1024 / 1024)) GB free on $(df -P "$OWN_IDE_ROOT" | awk 'NR==2 {print $6}'); the build needs about ${need} GB (free some space, e.g. old target/ directories)"
}

port_open() { (exec 3<>"/dev/tcp/$1/$2") 2>/dev/null; }

wait_for() { # wait_for SECONDS DESCRIPTION COMMAND...
  local secs=$1 what=$2; shift 2
  for _ in $(seq "$((secs * 5))"); do "$@" && return 0; sleep 0.2; done
  die "$what did not come up within ${secs}s"
}

# The Rust side: wasm target, cargo-leptos, and the wasm-bindgen CLI matching Cargo.lock.
ensure_rust_tools() {
  command -v cargo >/dev/null || die "cargo is missing: install Rust 1.95 with rustup first"
  rustup target list --installed 2>/dev/null | grep -qx wasm32-unknown-unknown \
    || { say "adding the wasm32 target"; rustup target add wasm32-unknown-unknown >/dev/null; }
  if ! cargo leptos --version 2>/dev/null | grep -q "$CARGO_LEPTOS_VERSION"; then
    # --debug builds in ~7 minutes instead of ~25 and works the same (see ENVIRONMENT.md).
    say "installing cargo-leptos $CARGO_LEPTOS_VERSION (about 7 minutes, once)"
    cargo install cargo-leptos --version "$CARGO_LEPTOS_VERSION" --locked --features no_downloads --debug -q \
      || die "cargo install cargo-leptos failed"
  fi
  local wbg
  wbg="$(grep -A1 '^name = "wasm-bindgen"$' "$OWN_IDE_ROOT/Cargo.lock" | sed -n 's/^version = "\(.*\)"/\1/p')"
  # An empty version would match any installed wasm-bindgen and skip the install.
  [[ "$wbg" =~ ^[0-9]+\.[0-9]+\.[0-9]+$ ]] \
    || die "could not read the wasm-bindgen version from Cargo.lock (got '${wbg}'); run 'cargo generate-lockfile' or check that wasm-bindgen is a dependency"
  if [ "$(wasm-bindgen --version 2>/dev/null)" != "wasm-bindgen $wbg" ]; then
    say "installing wasm-bindgen-cli $wbg (about 6 minutes, once)"
    cargo install wasm-bindgen-cli --version "$wbg" -q || die "cargo install wasm-bindgen-cli failed"
  fi
}

# wasm-opt for release builds: the npm build (Debian's binaryen 108 breaks hydration).
ensure_wasm_opt() {
  local dir="$OWN_IDE_HOME/tools"
  if [ ! -x "$dir/node_modules/.bin/wasm-opt" ]; then
    command -v npm >/dev/null || ensure_apt nodejs npm
    say "installing wasm-opt (npm binaryen)"
    mkdir -p "$dir" && npm install --prefix "$dir" --no-audit --no-fund --silent binaryen@132 >/dev/null \
      || die "npm install binaryen failed"
  fi
  export PATH="$dir/node_modules/.bin:$PATH"
}

# A Docker engine: the one DOCKER_HOST or the local socket points at, else dockerd.
ensure_docker() {
  if docker info >/dev/null 2>&1; then return 0; fi
  [ -n "${DOCKER_HOST:-}" ] && die "DOCKER_HOST=$DOCKER_HOST does not answer"
  ensure_apt docker.io iptables tini
  say "starting dockerd"
  mkdir -p "$OWN_IDE_LOGS"
  nohup dockerd >"$OWN_IDE_LOGS/dockerd.log" 2>&1 &
  wait_for 60 "dockerd (log: $OWN_IDE_LOGS/dockerd.log)" docker_answers
}

docker_answers() { docker info >/dev/null 2>&1; }

ensure_runtime_images() {
  command -v mmdebstrap >/dev/null || ensure_apt mmdebstrap
  "$OWN_IDE_ROOT/scripts/build-runtimes.sh"
  ensure_runsc
}

# gVisor, only when SANDBOX_RUNTIME=runsc: Debian's runsc registered with dockerd. The
# --network=none argument is required here (without it every container fails with "cannot run
# with network enabled in root network namespace"); sandbox containers have no network anyway.
# --oci-seccomp makes gVisor apply the project's seccomp profile to the program too (without
# it runsc ignores the profile: io_uring_setup succeeded).
# dockerd re-reads its runtimes on SIGHUP, which leaves running containers alone (a restart
# would kill every container other runs are using).
ensure_runsc() {
  [ "${SANDBOX_RUNTIME:-runc}" = runsc ] || return 0
  runsc_registered && return 0
  ensure_apt runsc
  [ -n "${DOCKER_HOST:-}" ] && die "register runsc with the Docker engine at $DOCKER_HOST by hand"
  is_root || die "run as root to register runsc in /etc/docker/daemon.json"
  command -v python3 >/dev/null || ensure_apt python3-minimal
  say "registering runsc in /etc/docker/daemon.json"
  mkdir -p /etc/docker
  python3 - /etc/docker/daemon.json <<'PY' || die "cannot update /etc/docker/daemon.json"
import json, os, sys
path = sys.argv[1]
conf = {}
if os.path.exists(path) and os.path.getsize(path) > 0:
    with open(path) as f:
        conf = json.load(f)
conf.setdefault("runtimes", {})["runsc"] = {"path": "/usr/bin/runsc", "runtimeArgs": ["--network=none", "--oci-seccomp"]}
tmp = path + ".tmp"
with open(tmp, "w") as f:
    json.dump(conf, f, indent=2)
    f.write("\n")
os.replace(tmp, path)
PY
  local pid
  pid="$(cat /var/run/docker.pid 2>/dev/null || pidof -s dockerd || true)"
  [ -n "$pid" ] || die "dockerd is not running here; restart it yourself to load runsc"
  kill -HUP "$pid"
  wait_for 30 "dockerd to load the runsc runtime" runsc_registered
}

# Whether dockerd knows runsc with the arguments above.
runsc_registered() {
  docker info --format '{{json .Runtimes}}' 2>/dev/null \
    | grep -q '"runsc":{[^}]*"runtimeArgs":\["--network=none","--oci-seccomp"\]'
}

# Redis: REDIS_URL if it answers, else a local redis-server on 6379.
ensure_redis() {
  local url="${REDIS_URL:-redis://127.0.0.1:6379}"
  local hostport="${url#redis://}"; hostport="${hostport#*@}"; hostport="${hostport%%/*}"
  local host="${hostport%%:*}" port="${hostport##*:}"
  [ "$port" = "$hostport" ] && port=6379
  port_open "$host" "$port" && return 0
  case "$host" in 127.0.0.1|localhost) ;; *) die "REDIS_URL=$url does not answer";; esac
  command -v redis-server >/dev/null || ensure_apt redis-server
  say "starting redis-server on $port"
  redis-server --daemonize yes --bind 127.0.0.1 --port "$port" --save "" --appendonly no \
    --logfile "$OWN_IDE_LOGS/redis.log" >/dev/null
  wait_for 20 "redis-server" port_open 127.0.0.1 "$port"
}

# MongoDB: DATABASE_URI/MONGODB_URI if given, else SecantusDB (MongoDB wire protocol) on 27017.
ensure_mongo() {
  if [ -n "${DATABASE_URI:-${MONGODB_URI:-}}" ]; then return 0; fi
  port_open 127.0.0.1 27017 && return 0
  local venv="$OWN_IDE_HOME/secantus"
  if [ ! -x "$venv/bin/secantusd-py" ]; then
    command -v python3 >/dev/null || ensure_apt python3 python3-venv
    say "installing SecantusDB $SECANTUS_VERSION (MongoDB-compatible, for development)"
    python3 -m venv "$venv" || { ensure_apt python3-venv; python3 -m venv "$venv"; } || die "python3 -m venv failed"
    "$venv/bin/pip" install -q "SecantusDB==$SECANTUS_VERSION" || die "pip install SecantusDB failed"
  fi
  mkdir -p "$OWN_IDE_HOME/mongo-data" "$OWN_IDE_LOGS"
  say "starting the MongoDB-compatible server on 27017"
  nohup "$venv/bin/secantusd-py" --host 127.0.0.1 --port 27017 --storage-path "$OWN_IDE_HOME/mongo-data" \
    --cache-size 256M >"$OWN_IDE_LOGS/mongo.log" 2>&1 &
  wait_for 60 "the MongoDB-compatible server" port_open 127.0.0.1 27017
}

ensure_services() {
  mkdir -p "$OWN_IDE_LOGS"
  ensure_docker
  ensure_runtime_images
  ensure_redis
  ensure_mongo
}

# Site roots: cargo-leptos empties its site root on every build, so each command builds
# into and serves from its own. A test build (debug) then never replaces the bundle under
# an app that `run.sh` serves (release), whose pages would fail to hydrate.
SITE_ROOT_RUN="$OWN_IDE_ROOT/target/site"
SITE_ROOT_TEST="$OWN_IDE_ROOT/target/site-test"

# Where cargo puts the server binaries (CARGO_TARGET_DIR, relative to the checkout, if set).
target_dir() {
  local d="${CARGO_TARGET_DIR:-target}"
  [[ "$d" = /* ]] || d="$OWN_IDE_ROOT/$d"
  printf '%s' "$d"
}

# Builds the site into SITE_ROOT (cargo-leptos reads LEPTOS_SITE_ROOT from the environment).
leptos_build() { # leptos_build SITE_ROOT [cargo leptos build flags]
  local root=$1; shift
  LEPTOS_SITE_ROOT="$root" cargo leptos build "$@"
}

# Environment the server binary needs when it is not started by cargo-leptos.
leptos_env() { # leptos_env SITE_ROOT
  export LEPTOS_OUTPUT_NAME=own-ide
  export LEPTOS_SITE_ROOT="$1"
  export LEPTOS_SITE_PKG_DIR=pkg
  export LEPTOS_HASH_FILES=false
}
