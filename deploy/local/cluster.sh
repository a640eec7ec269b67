#!/usr/bin/env bash
# Local raftlock clusters on 127.0.0.1.
#
#   cluster.sh run [3|5]      start N nodes in the foreground; Ctrl-C stops them
#   cluster.sh up [3|5]       start N nodes in the background
#   cluster.sh status         each node's pid, state and (if raftlockctl is built) role
#   cluster.sh kill N         SIGKILL node N
#   cluster.sh stop N         SIGSTOP node N (pause)
#   cluster.sh cont N         SIGCONT node N (resume)
#   cluster.sh restart N      SIGKILL node N if running, then start it again
#   cluster.sh down           SIGTERM every node and wait
#
# Environment: RAFTLOCK_BUILD (build dir, default ./build), RAFTLOCK_LOCAL_DIR
# (state: data, logs, pids; default ./.local-cluster), RAFTLOCK_PEER_BASE
# (default 7000: node i listens on BASE+i for peers), RAFTLOCK_CLIENT_BASE
# (default 9000: node i serves clients on BASE+i). `up` and `run` record the
# two bases in the state directory; the other commands use the recorded ones.
# `run` moves each node's earlier log to nI.prev.log and shows only new lines.
set -euo pipefail

ROOT="$(cd "$(dirname "$0")/../.." && pwd)"
BUILD="${RAFTLOCK_BUILD:-$ROOT/build}"
DIR="${RAFTLOCK_LOCAL_DIR:-$ROOT/.local-cluster}"
PEER_BASE="${RAFTLOCK_PEER_BASE:-7000}"
CLIENT_BASE="${RAFTLOCK_CLIENT_BASE:-9000}"
DAEMON="$BUILD/server/raftlockd"
CTL="$BUILD/client/raftlockctl"

die() { echo "cluster.sh: $*" >&2; exit 2; }

size() { cat "$DIR/size" 2>/dev/null || echo 0; }

# Ports of the cluster `up` or `run` started in $DIR, if any.
load_ports() {
  [[ -f "$DIR/ports" ]] && read -r PEER_BASE CLIENT_BASE <"$DIR/ports"
  return 0
}

members() {
  local n=$1 out="" i
  for ((i = 1; i <= n; i++)); do
    out+="${out:+,}$i=127.0.0.1:$((PEER_BASE + i))/127.0.0.1:$((CLIENT_BASE + i))"
  done
  echo "$out"
}

endpoints() {
  local n=$1 out="" i
  for ((i = 1; i <= n; i++)); do out+="${out:+,}127.0.0.1:$((CLIENT_BASE + i))"; done
  echo "$out"
}

pid_of() { cat "$DIR/n$1.pid" 2>/dev/null || true; }

# Node $1 is running: its pid file names a live raftlockd of this state
# directory's node $1 (not another program that reused a stale pid).
alive() {
  local pid args
  pid=$(pid_of "$1")
  [[ "$pid" =~ ^[0-9]+$ ]] && kill -0 "$pid" 2>/dev/null || return 1
  args=$(tr '\0' ' ' <"/proc/$pid/cmdline" 2>/dev/null) || return 1
  [[ "$args" == *"--data-dir $DIR/n$1 "* ]]
}

start_node() {
  local i=$1 n
  n=$(size)
  [[ -x "$DAEMON" ]] || die "$DAEMON not built (run: make build)"
  mkdir -p "$DIR/n$i"
  # Where this start's lines begin in the log (up waits for "serving" there).
  stat -c %s "$DIR/n$i.log" 2>/dev/null >"$DIR/n$i.logstart" || echo 0 >"$DIR/n$i.logstart"
  "$DAEMON" --cluster-id local --node-id "$i" --data-dir "$DIR/n$i" \
    --members "$(members "$n")" >>"$DIR/n$i.log" 2>&1 &
  echo $! >"$DIR/n$i.pid"
}

# Waits until node $1 logs that it serves (0), or exits or takes 20 s (1).
wait_serving() {
  local i=$1 tries start
  start=$(cat "$DIR/n$i.logstart" 2>/dev/null || echo 0)
  for ((tries = 0; tries < 200; tries++)); do
    tail -c "+$((start + 1))" "$DIR/n$i.log" 2>/dev/null | grep -q "serving cluster" && return 0
    alive "$i" || return 1
    sleep 0.1
  done
  return 1
}

check_node() {
  [[ "$1" =~ ^[0-9]+$ ]] && (( $1 >= 1 && $1 <= $(size) )) || die "no node '$1' (cluster has $(size))"
}

cmd_up() {
  local n=${1:-3} i
  [[ "$n" == 3 || "$n" == 5 ]] || die "size must be 3 or 5"
  for ((i = 1; i <= $(size); i++)); do alive "$i" && die "node $i is running; run 'down' first"; done
  mkdir -p "$DIR"
  echo "$n" >"$DIR/size"
  echo "$PEER_BASE $CLIENT_BASE" >"$DIR/ports"
  for ((i = 1; i <= n; i++)); do start_node "$i"; done
  for ((i = 1; i <= n; i++)); do
    if ! wait_serving "$i"; then
      local what="exited at start"
      alive "$i" && what="is not serving after 20 s"
      tail -n 5 "$DIR/n$i.log" >&2
      stop_all >/dev/null
      die "node $i $what (log: $DIR/n$i.log); stopped the others"
    fi
  done
  echo "raftlock: $n nodes on 127.0.0.1 (logs and data in $DIR)"
  echo "  client endpoints: $(endpoints "$n")"
  echo "  try: $CTL --endpoints $(endpoints "$n") cluster status"
}

cmd_status() {
  local n i pid state
  n=$(size)
  (( n > 0 )) || { echo "no local cluster"; return 0; }
  for ((i = 1; i <= n; i++)); do
    pid=$(pid_of "$i")
    if alive "$i"; then
      state=$(ps -o state= -p "$pid" | tr -d ' ')
      [[ "$state" == T* ]] && state="paused" || state="running"
    else
      state="down"
    fi
    printf 'node %d  pid %-8s %-8s client 127.0.0.1:%d\n' "$i" "${pid:--}" "$state" $((CLIENT_BASE + i))
  done
  if [[ -x "$CTL" ]]; then "$CTL" --endpoints "$(endpoints "$n")" --timeout 2s cluster status || true; fi
}

signal_node() {
  local sig=$1 i=$2
  check_node "$i"
  alive "$i" || die "node $i is not running"
  kill "-$sig" "$(pid_of "$i")"
}

cmd_down() {
  stop_all
  echo "raftlock: local cluster stopped"
}

# SIGTERMs every node of this state directory, waits up to 5 s each, then
# SIGKILLs; removes the pid files.
stop_all() {
  local n i
  n=$(size)
  for ((i = 1; i <= n; i++)); do
    if alive "$i"; then kill -CONT "$(pid_of "$i")" 2>/dev/null || true; kill -TERM "$(pid_of "$i")" 2>/dev/null || true; fi
  done
  for ((i = 1; i <= n; i++)); do
    local tries=0
    while alive "$i" && (( tries < 50 )); do sleep 0.1; tries=$((tries + 1)); done
    alive "$i" && kill -KILL "$(pid_of "$i")" 2>/dev/null || true
    rm -f "$DIR/n$i.pid"
  done
}

cmd_run() {
  local n=${1:-3} i
  trap 'echo; cmd_down; exit 0' INT TERM
  for ((i = 1; i <= n; i++)); do
    if ! alive "$i" && [[ -f "$DIR/n$i.log" ]]; then mv "$DIR/n$i.log" "$DIR/n$i.prev.log"; fi
  done
  cmd_up "$n"
  echo "  Ctrl-C stops the cluster. Logs follow."
  tail -n +1 -F $(for ((i = 1; i <= n; i++)); do echo "$DIR/n$i.log"; done) &
  local tail_pid=$!
  trap 'kill $tail_pid 2>/dev/null; echo; cmd_down; exit 0' INT TERM
  wait "$tail_pid"
}

case "${1:-}" in
  run | up) ;;
  *) load_ports ;;
esac

case "${1:-}" in
  run) cmd_run "${2:-3}" ;;
  up) cmd_up "${2:-3}" ;;
  status) cmd_status ;;
  kill) signal_node KILL "${2:-}" ;;
  stop) signal_node STOP "${2:-}" ;;
  cont) signal_node CONT "${2:-}" ;;
  restart)
    check_node "${2:-}"
    if alive "$2"; then kill -KILL "$(pid_of "$2")"; sleep 0.2; fi
    start_node "$2"
    wait_serving "$2" || die "node $2 did not start again (log: $DIR/n$2.log)"
    echo "node $2 restarted (pid $(pid_of "$2"))" ;;
  down) cmd_down ;;
  *) sed -n '2,18p' "$0" | sed 's/^# \{0,1\}//'; exit 2 ;;
esac
