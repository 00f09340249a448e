#!/usr/bin/env bash
# What a planned stop of the leader costs, against a crash: on a three-node loopback
# cluster, stop the leader REPS times with SIGTERM (what `./run-cluster.sh stop`
# sends; Ctrl-C's SIGINT takes the same path: the leader hands leadership over before
# it exits) and REPS times with `kill -9` (the others wait out an election timeout),
# alternately, and time from the signal to the end of the next successful write,
# sent by one `raftkv client put` to the two survivors. The stopped node is restarted
# and the cluster settled before the next round.
#
#   bash examples/handoff.sh            # from the project root; builds first
#
# Knobs (env): REPS=10  BASE=/tmp/raftkv-handoff  PORT_BASE=25000 (node i listens on
#              PORT_BASE+i)  BIN=target/release/raftkv (skips the build if set)
#              NODE_FLAGS="" (extra `raftkv node` flags, e.g. election timeouts)
# Prints one line per round, then min/median/max (ms) per way of stopping. Only the
# processes started here are stopped (by PID).
set -euo pipefail
cd "$(dirname "$0")/.."

REPS=${REPS:-10}
BASE=${BASE:-/tmp/raftkv-handoff}
PORT_BASE=${PORT_BASE:-25000}
NODE_FLAGS=${NODE_FLAGS:-}
if [ -z "${BIN:-}" ]; then cargo build --release -q; BIN=target/release/raftkv; fi

addr() { echo "127.0.0.1:$((PORT_BASE + $1))"; }
PEERS="$(addr 1),$(addr 2),$(addr 3)"
declare -A PID
log() { echo "[$(date +%H:%M:%S)] $*" >&2; }

start_node() {
  # shellcheck disable=SC2086
  "$BIN" node --id "$1" --addr "$(addr "$1")" --peers "$PEERS" --data "$BASE/node$1" \
    $NODE_FLAGS >>"$BASE/node$1.log" 2>&1 &
  PID[$1]=$!
}

stop_all() {
  local i
  for i in 1 2 3; do [ -n "${PID[$i]:-}" ] && kill -TERM "${PID[$i]}" 2>/dev/null || true; done
  for i in 1 2 3; do [ -n "${PID[$i]:-}" ] && wait "${PID[$i]}" 2>/dev/null || true; PID[$i]=""; done
}
trap 'stop_all' EXIT
trap 'exit 130' INT TERM

# The value of KEY in node I's status, or nothing if it does not answer.
status_key() {
  { "$BIN" client --addr "$(addr "$1")" --timeout 1 status 2>/dev/null || true; } |
    awk -F': ' -v k="$2" '$1 == k { print $2 }'
}

# Waits (at most 30 s) until every node follows one leader; prints its id.
settled_leader() {
  local deadline=$((SECONDS + 30)) i leader first
  while [ $SECONDS -lt $deadline ]; do
    first=""
    for i in 1 2 3; do
      leader=$(status_key "$i" leader | cut -d' ' -f1)
      if [ -z "$leader" ] || [ "$leader" = none ]; then first=""; break; fi
      if [ -z "$first" ]; then first=$leader; elif [ "$first" != "$leader" ]; then first=""; break; fi
    done
    if [ -n "$first" ]; then echo "$first"; return 0; fi
    sleep 0.1
  done
  log "no settled leader within 30 s"; return 1
}

now_ms() { echo $(( $(date +%s%N) / 1000000 )); }

# One round: stop the leader with signal $1 (TERM or KILL); sets ROUND_MS to the ms
# until the next write succeeded (no subshell: it restarts the node and keeps its PID).
round() {
  local sig=$1 leader others t0 t1 i
  leader=$(settled_leader)
  others=""
  for i in 1 2 3; do [ "$i" != "$leader" ] && others="${others:+$others,}$(addr "$i")"; done
  t0=$(now_ms)
  kill -"$sig" "${PID[$leader]}"
  "$BIN" client --addr "$others" --timeout 30 put handoff "after-$sig-$t0" >/dev/null
  t1=$(now_ms)
  wait "${PID[$leader]}" 2>/dev/null || true
  start_node "$leader"
  ROUND_MS=$((t1 - t0))
}

# min / median / max of the numbers given.
summary() {
  printf '%s\n' "$@" | sort -n | awk '{ v[NR] = $1 } END {
    m = (NR % 2) ? v[(NR + 1) / 2] : (v[NR / 2] + v[NR / 2 + 1]) / 2
    printf "min %d  median %g  max %d  (n=%d)\n", v[1], m, v[NR], NR }'
}

rm -rf "$BASE"; mkdir -p "$BASE"
for i in 1 2 3; do start_node "$i"; done
settled_leader >/dev/null
"$BIN" client --addr "$PEERS" put handoff start >/dev/null
TERM_MS=(); KILL_MS=()
for r in $(seq 1 "$REPS"); do
  round TERM; TERM_MS+=("$ROUND_MS"); log "round $r: SIGTERM -> next write $ROUND_MS ms"
  round KILL; KILL_MS+=("$ROUND_MS"); log "round $r: kill -9 -> next write $ROUND_MS ms"
done
echo "SIGTERM (hand-off):   $(summary "${TERM_MS[@]}")"
echo "kill -9 (election):   $(summary "${KILL_MS[@]}")"
