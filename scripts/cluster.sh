#!/usr/bin/env bash
# A cluster on one machine: web nodes and executors as separate processes of the one
# binary, each on its own port, behind Debian's nginx as the load balancer.
#
#   scripts/cluster.sh start    build (unless told not to), then start whatever is not running
#   scripts/cluster.sh stop     SIGTERM every node (runs in flight finish or end `stopped`),
#                               wait for each to exit, then stop nginx
#   scripts/cluster.sh status   one line per process: running or not, and /healthz
#   scripts/cluster.sh run      start, stay in the foreground, stop everything on Ctrl-C/SIGTERM
#
# Settings (environment; the app's own variables, e.g. DATABASE_NAME, REDIS_URL,
# SECRET_KEY, MAX_CONCURRENT_RUNS, pass through to every node):
#   CLUSTER_PORT=8080            the load balancer (http://127.0.0.1:$CLUSTER_PORT)
#   CLUSTER_WEB_NODES=2          web nodes, on CLUSTER_WEB_PORT, +1, ...   (default 8081)
#   CLUSTER_EXECUTORS=2          executors, on CLUSTER_EXECUTOR_PORT, +1, ... (default 8091)
#   CLUSTER_EXECUTOR_SLOTS       runs each executor executes at once (its MAX_CONCURRENT_RUNS)
#   CLUSTER_BUILD=release        release | debug: which build to make and run
#   CLUSTER_BIN                  run this binary instead, and build nothing
#   CLUSTER_DIR                  pids, nginx config and every log (default $OWN_IDE_LOGS/cluster)
#   CLUSTER_SERVICES=ensure      ensure | skip: install/start Docker, Redis, MongoDB first
set -euo pipefail
source "$(dirname "$0")/lib.sh"
cd "$OWN_IDE_ROOT"

cmd="${1:-}"
lb_port="${CLUSTER_PORT:-8080}"
web_nodes="${CLUSTER_WEB_NODES:-2}"
executors="${CLUSTER_EXECUTORS:-2}"
web_port="${CLUSTER_WEB_PORT:-8081}"
executor_port="${CLUSTER_EXECUTOR_PORT:-8091}"
build="${CLUSTER_BUILD:-release}"
dir="${CLUSTER_DIR:-$OWN_IDE_LOGS/cluster}"
# Longer than the nodes' SHUTDOWN_GRACE_SECONDS, so that a node still finishing its runs
# is not killed; only a node that does not exit after that gets SIGKILL.
stop_wait="${CLUSTER_STOP_WAIT_SECONDS:-$(( ${SHUTDOWN_GRACE_SECONDS:-10} + 20 ))}"

for v in lb_port web_nodes executors web_port executor_port stop_wait; do
  [[ "${!v}" =~ ^[0-9]+$ ]] || die "$v must be a whole number (got '${!v}')"
done
[ "$web_nodes" -ge 1 ] || die "CLUSTER_WEB_NODES must be at least 1"
case "$build" in release|debug) ;; *) die "CLUSTER_BUILD must be release or debug (got '$build')" ;; esac

# Node names, in start order: executors first, so that the first run a web node accepts
# finds an executor reading the queue.
nodes() {
  local i
  for ((i = 1; i <= executors; i++)); do echo "executor-$i"; done
  for ((i = 1; i <= web_nodes; i++)); do echo "web-$i"; done
}
node_port() { # node_port NAME
  local n="${1##*-}"
  case "$1" in
    web-*) echo $((web_port + n - 1)) ;;
    executor-*) echo $((executor_port + n - 1)) ;;
  esac
}

binary() {
  if [ -n "${CLUSTER_BIN:-}" ]; then printf '%s' "$CLUSTER_BIN"; else printf '%s/%s/own-ide' "$(target_dir)" "$build"; fi
}
site_root() {
  if [ "$build" = release ]; then printf '%s' "$SITE_ROOT_RUN"; else printf '%s' "$SITE_ROOT_TEST"; fi
}

build_app() {
  [ -n "${CLUSTER_BIN:-}" ] && return 0
  ensure_rust_tools
  "$OWN_IDE_ROOT/scripts/build-editor.sh"
  if [ "$build" = release ]; then
    ensure_wasm_opt
    say "building the app (release)"
    leptos_build "$(site_root)" --release
  else
    say "building the app (debug)"
    leptos_build "$(site_root)"
  fi
}

# The pid in NAME's pid file, if that process is alive and is still ours (a pid file left
# by a crash may name a process that reused the number).
live_pid() { # live_pid NAME
  local f="$dir/$1.pid" pid
  [ -f "$f" ] || return 1
  pid="$(cat "$f")"
  [[ "$pid" =~ ^[0-9]+$ ]] && kill -0 "$pid" 2>/dev/null || return 1
  case "$1" in
    nginx) [ "$(readlink "/proc/$pid/exe" 2>/dev/null)" = "$(readlink -f "$(command -v nginx)")" ] || return 1 ;;
    *) [ "$(readlink "/proc/$pid/exe" 2>/dev/null)" = "$(readlink -f "$(binary)")" ] || return 1 ;;
  esac
  printf '%s' "$pid"
}

# Web nodes and executors must sign the same tokens and sessions: one SECRET_KEY for all,
# generated once for this cluster directory unless the environment gives one.
secret_key() {
  if [ -n "${SECRET_KEY:-}" ]; then printf '%s' "$SECRET_KEY"; return; fi
  local f="$dir/secret_key"
  if [ ! -s "$f" ]; then
    (umask 077; od -An -N32 -tx1 /dev/urandom | tr -d ' \n' >"$f")
  fi
  cat "$f"
}

start_node() { # start_node NAME
  local name=$1 port role pid log="$dir/$1.log"
  port="$(node_port "$name")"
  role="${name%-*}"
  if pid="$(live_pid "$name")"; then say "$name is already running (pid $pid)"; return 0; fi
  port_open 127.0.0.1 "$port" && die "port $port ($name) is in use by another process"
  local env=(ROLE="$role" LISTEN_ADDR="127.0.0.1:$port" SECRET_KEY="$(secret_key)")
  if [ "$role" = web ]; then
    # Every request reaches a web node through nginx on this machine: the client address
    # is the X-Forwarded-For entry nginx appended.
    env+=(TRUSTED_PROXIES="${TRUSTED_PROXIES:-127.0.0.1}")
  elif [ -n "${CLUSTER_EXECUTOR_SLOTS:-}" ]; then
    env+=(MAX_CONCURRENT_RUNS="$CLUSTER_EXECUTOR_SLOTS")
  fi
  # Its own session: Ctrl-C on `run` reaches this script, which stops the nodes in order,
  # rather than every node at once.
  env "${env[@]}" setsid "$(binary)" >>"$log" 2>&1 </dev/null &
  echo $! >"$dir/$name.pid"
  say "$name (pid $!) on 127.0.0.1:$port, log $log"
}

nginx_conf() {
  local i upstream=""
  for ((i = 1; i <= web_nodes; i++)); do upstream+="    server 127.0.0.1:$(node_port "web-$i") max_fails=1 fail_timeout=2s;"$'\n'; done
  cat <<EOF
# Written by scripts/cluster.sh; rewritten at every start.
daemon off;
worker_processes 1;
pid $dir/nginx.pid;
error_log $dir/nginx-error.log warn;
events { worker_connections 1024; }
http {
  access_log $dir/nginx-access.log;
  client_body_temp_path $dir/nginx-tmp/body;
  proxy_temp_path $dir/nginx-tmp/proxy;
  fastcgi_temp_path $dir/nginx-tmp/fastcgi;
  uwsgi_temp_path $dir/nginx-tmp/uwsgi;
  scgi_temp_path $dir/nginx-tmp/scgi;
  # A run's code and stdin are each capped by the app (64 KiB by default); keep the body
  # in memory and refuse what no node would accept.
  client_max_body_size 1m;
  client_body_buffer_size 1m;
  upstream own_ide_web {
$upstream    keepalive 32;
  }
  server {
    listen 127.0.0.1:$lb_port;
    location / {
      proxy_pass http://own_ide_web;
      # HTTP/1.1 with keep-alive to the nodes (and the chunked streams SSE needs).
      proxy_http_version 1.1;
      proxy_set_header Connection "";
      proxy_set_header Host \$http_host;
      # nginx appends the address it saw; the nodes trust this hop (TRUSTED_PROXIES) and
      # read that right-most entry, so a client cannot choose its own address.
      proxy_set_header X-Forwarded-For \$proxy_add_x_forwarded_for;
      proxy_set_header X-Forwarded-Proto \$scheme;
      # Server-sent events: every chunk goes out as the node writes it, and a run's
      # stream stays open as long as the run (keep-alive comments keep it well under this).
      proxy_buffering off;
      proxy_cache off;
      proxy_read_timeout 1h;
      proxy_send_timeout 1h;
      # A node that refuses the connection (stopped, restarting) is skipped; a request
      # that reached a node is never sent twice (POST is not retried by nginx).
      proxy_next_upstream error timeout;
    }
  }
}
EOF
}

start_nginx() {
  local pid
  if pid="$(live_pid nginx)"; then say "nginx is already running (pid $pid)"; return 0; fi
  command -v nginx >/dev/null || ensure_apt nginx
  port_open 127.0.0.1 "$lb_port" && die "port $lb_port (load balancer) is in use by another process"
  mkdir -p "$dir/nginx-tmp"
  nginx_conf >"$dir/nginx.conf"
  nginx -t -q -p "$dir" -e "$dir/nginx-error.log" -c "$dir/nginx.conf" || die "nginx refused $dir/nginx.conf"
  # Not the system service: a child of its own with this config, in its own session.
  setsid nginx -p "$dir" -e "$dir/nginx-error.log" -c "$dir/nginx.conf" >>"$dir/nginx-error.log" 2>&1 </dev/null &
  echo $! >"$dir/nginx.pid"
  say "nginx (pid $!): http://127.0.0.1:$lb_port"
}

# Waits until NAME answers /healthz, failing with the end of its log if it exits first.
await_node() { # await_node NAME PORT
  local name=$1 port=$2 log="$dir/$1.log"
  for _ in $(seq 600); do
    curl -fsS -o /dev/null "http://127.0.0.1:$port/healthz" 2>/dev/null && return 0
    if ! live_pid "$name" >/dev/null; then
      tail -n 20 "$log" >&2 || true
      die "$name exited at start (above: the end of $log)"
    fi
    sleep 0.2
  done
  die "$name did not answer on port $port within 120s (log: $log)"
}

start_all() {
  mkdir -p "$dir"
  command -v curl >/dev/null || ensure_apt curl
  [ "${CLUSTER_SERVICES:-ensure}" = skip ] || ensure_services
  build_app
  [ -x "$(binary)" ] || die "no binary at $(binary)"
  local name
  [ "${LEPTOS_OUTPUT_NAME:-}" ] || leptos_env "$(site_root)"
  while read -r name; do start_node "$name"; done < <(nodes)
  while read -r name; do await_node "$name" "$(node_port "$name")"; done < <(nodes)
  start_nginx
  for _ in $(seq 100); do
    curl -fsS -o /dev/null "http://127.0.0.1:$lb_port/healthz" 2>/dev/null && break
    sleep 0.1
  done
  curl -fsS -o /dev/null "http://127.0.0.1:$lb_port/healthz" || die "nginx does not answer on $lb_port (log: $dir/nginx-error.log)"
  say "cluster up: $web_nodes web node(s), $executors executor(s), http://127.0.0.1:$lb_port"
}

# SIGTERM to every node at once (each finishes or stops its runs and writes their end),
# then wait for each; nginx goes last, so that clients waiting for a result get it.
stop_all() {
  local name pid pids=() names=()
  while read -r name; do
    if pid="$(live_pid "$name")"; then
      kill -TERM "$pid" 2>/dev/null || true
      pids+=("$pid"); names+=("$name")
    fi
  # Also the nodes of an earlier start with more of them (their pid files are still here).
  done < <({ nodes; ls "$dir" 2>/dev/null | sed -n 's/^\(\(web\|executor\)-[0-9]*\)\.pid$/\1/p'; } | sort -u)
  local i deadline=$((SECONDS + stop_wait))
  for i in "${!pids[@]}"; do
    while kill -0 "${pids[$i]}" 2>/dev/null && [ $SECONDS -lt $deadline ]; do sleep 0.1; done
    if kill -0 "${pids[$i]}" 2>/dev/null; then
      say "${names[$i]} did not exit within ${stop_wait}s: killing it"
      kill -KILL "${pids[$i]}" 2>/dev/null || true
    else
      say "${names[$i]} stopped"
    fi
    rm -f "$dir/${names[$i]}.pid"
  done
  if pid="$(live_pid nginx)"; then
    kill -QUIT "$pid" 2>/dev/null || true
    deadline=$((SECONDS + 10))
    while kill -0 "$pid" 2>/dev/null && [ $SECONDS -lt $deadline ]; do sleep 0.1; done
    kill -KILL "$pid" 2>/dev/null || true
    say "nginx stopped"
  fi
  rm -f "$dir/nginx.pid"
}

status_all() {
  local name pid port health metrics
  while read -r name; do
    port="$(node_port "$name")"
    if pid="$(live_pid "$name")"; then
      health="$(curl -fsS -m 2 "http://127.0.0.1:$port/healthz" 2>/dev/null || echo "no answer")"
      # What the node says it is, and how busy (its /metrics).
      metrics="$(curl -fsS -m 2 "http://127.0.0.1:$port/metrics" 2>/dev/null \
        | sed -n 's/^own_ide_role{role="\(.*\)"} 1$/role=\1/p; s/^own_ide_runs_in_progress \(.*\)$/running=\1/p' | tr '\n' ' ')"
      printf '%-12s running  pid %-7s 127.0.0.1:%-5s healthz: %s %s\n' "$name" "$pid" "$port" "$health" "$metrics"
    else
      printf '%-12s stopped\n' "$name"
    fi
  done < <(nodes)
  if pid="$(live_pid nginx)"; then
    printf '%-12s running  pid %-7s 127.0.0.1:%-5s\n' nginx "$pid" "$lb_port"
  else
    printf '%-12s stopped\n' nginx
  fi
}

case "$cmd" in
  start) start_all ;;
  stop) stop_all ;;
  status) status_all ;;
  run)
    trap 'trap - INT TERM; say "stopping the cluster"; stop_all; exit 0' INT TERM
    start_all
    say "Ctrl-C stops every node (logs: $dir)"
    # Wakes on a signal at once (wait is interrupted), or when nginx exits on its own.
    while live_pid nginx >/dev/null; do sleep 1 & wait $! || true; done
    say "nginx exited: stopping the cluster"
    stop_all
    ;;
  *) die "usage: scripts/cluster.sh start|stop|status|run (settings: see the top of this script)" ;;
esac
