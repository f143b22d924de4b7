#!/usr/bin/env bash
# Hand checks of the runtime images and the supervisor, with the flags the engine uses
# (src/server/sandbox/container.rs `spec`) with the changes docs/SANDBOX.md recommends (seccomp,
# tmpfs options, no --init). Prints what each run produced; read it.
# Usage: runtimes/supervisor/selftest.sh [PREFIX] [extra docker run args, e.g. --runtime runsc]
set -uo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
prefix="${1:-${OWN_IDE_IMAGE_PREFIX:-own-ide-}}"; shift || true
nonce=0123456789abcdef0123456789abcdef
flags=(--rm -i --network none --read-only --cap-drop ALL --security-opt no-new-privileges
  --security-opt "seccomp=$here/../seccomp.json"
  --tmpfs /work:rw,exec,nosuid,nodev,size=64m,nr_inodes=4096,uid=10001,gid=10001,mode=0700
  --tmpfs /tmp:rw,noexec,nosuid,nodev,size=64m,nr_inodes=4096,uid=10001,gid=10001,mode=0700
  --memory 256m --memory-swap 256m --pids-limit 64 --user 10001:10001 -w /work "$@")

# payload FILE... -> the header and file records on stdout (name = basename)
payload() {
  local body="" f
  body="$(for f in "$@"; do printf '%s %s\n' "$(basename "$f")" "$(stat -c %s "$f")"; cat "$f"; done | base64 -w0)"
  printf '%s %s\n' "$nonce" "$(printf %s "$body" | base64 -d | wc -c)"
  printf %s "$body" | base64 -d
}
run() { # run LANG STDIN-TEXT FILE... -- SUPERVISOR-ARGS...
  local lang=$1 input=$2; shift 2; local files=()
  while [ "$1" != -- ]; do files+=("$1"); shift; done; shift
  echo "== $lang: $*"
  { payload "${files[@]}"; printf %s "$input"; } |
    docker run "${flags[@]}" "$prefix$lang:latest" /usr/local/libexec/own-ide/supervisor "$@" 2>&1 | cat -v
  echo " [docker run exit ${PIPESTATUS[1]}]"
}
t="$(mktemp -d)"; trap 'rm -rf "$t"' EXIT
printf 'import sys\nprint("hello,", sys.stdin.read())\n' > "$t/main.py"
printf 'console.log("hello, world")\n' > "$t/main.js"
printf '#include <iostream>\nint main(){std::cout<<"hello, world"<<std::endl;}\n' > "$t/main.cpp"
printf 'public class Main{public static void main(String[] a){System.out.println("hello, world");}}\n' > "$t/Main.java"
run python "stdin text" "$t/main.py" -- -- python3 -u main.py
run javascript "" "$t/main.js" -- -- node main.js
run cpp "" "$t/main.cpp" -- --compile "g++ -O2 -o main main.cpp" -- ./main
run java "" "$t/Main.java" -- --compile "javac Main.java" -- java -cp . Main
run cpp "" "$here/hostile.cpp" -- --compile "g++ -O2 -o hostile hostile.cpp" -- ./hostile
printf 'import os\nwhile True:\n    try: os.fork()\n    except OSError: pass\n' > "$t/bomb.py"
run python "" "$t/bomb.py" -- -- timeout 5 python3 bomb.py
printf 'kill -9 -1; echo survived\n' > "$t/kill.sh"
run python "" "$t/kill.sh" -- -- sh kill.sh
printf 'x' > "$t/x"
echo "== bad name"; { printf '%s 9\n../x 1\nx' "$nonce"; } |
  docker run "${flags[@]}" "${prefix}python:latest" /usr/local/libexec/own-ide/supervisor -- true 2>&1 | cat -v
echo " [docker run exit ${PIPESTATUS[1]}]"
