#!/usr/bin/env bash
# raftkv 3-node loopback benchmark, in the same shapes as the etcd measurement in docs/BENCHMARKS.md
# (so the two can be run side by side in one sitting; see docs/BENCHMARKS.md):
# three nodes on 127.0.0.1, fsync on, 16-byte keys, 100-byte values; puts at CONCS clients
# on a fresh cluster each (+WARM s of 64-client put warm-up, like the etcd script), then
# linearizable and --stale gets at READC clients over 1000 preloaded keys.
#
#   bash examples/bench-vs-etcd.sh            # from the project root; builds first
#
# Knobs (env): DUR=5 (s per run)  REPS=1  WARM=3 (s)  CONCS="1 16 64 256"  READC=64
#              BASE=/tmp/raftkv-bench  PORT_BASE=24000 (node i listens on PORT_BASE+i)
#              PHASES="puts reads"  BIN=target/release/raftkv (skips the build if set)
#              CONNS= (empty: one connection per client; N: the clients share
#              min(N, clients) pipelined connections, `bench --conns`, as etcd's tool)
# Prints one TSV row per run (also kept in $BASE/results-*.tsv): kind, clients, ops/s,
# p50/p90/p99/p99.9/max ms, errors, and CPU (% of one core) of the leader, the two
# followers and the bench process. Only processes started here are stopped (by PID).
set -euo pipefail
cd "$(dirname "$0")/.."

DUR=${DUR:-5}; REPS=${REPS:-1}; WARM=${WARM:-3}
CONCS=${CONCS:-"1 16 64 256"}; READC=${READC:-64}
BASE=${BASE:-/tmp/raftkv-bench}; PORT_BASE=${PORT_BASE:-24000}
PHASES=${PHASES:-"puts reads"}
CONNS=${CONNS:-}
phase() { [[ " $PHASES " == *" $1 "* ]]; }
if [ -z "${BIN:-}" ]; then cargo build --release -q; BIN=target/release/raftkv; fi

PEERS=":$((PORT_BASE + 1)),:$((PORT_BASE + 2)),:$((PORT_BASE + 3))"
RES=$BASE/results-$(date +%Y%m%d-%H%M%S).tsv
mkdir -p "$BASE"
declare -A PID
log() { echo "[$(date +%H:%M:%S)] $*" >&2; }

stop_cluster() {
  local i
  for i in 1 2 3; do [ -n "${PID[$i]:-}" ] && kill -INT "${PID[$i]}" 2>/dev/null || true; done
  for i in 1 2 3; do [ -n "${PID[$i]:-}" ] && wait "${PID[$i]}" 2>/dev/null || true; PID[$i]=""; done
}
trap 'stop_cluster' EXIT
trap 'exit 130' INT TERM

start_cluster() {
  local i
  rm -rf "$BASE/data"; mkdir -p "$BASE/data"
  for i in 1 2 3; do
    "$BIN" node --id "$i" --addr ":$((PORT_BASE + i))" --peers "$PEERS" \
      --data "$BASE/data/n$i" >"$BASE/data/n$i.log" 2>&1 </dev/null &
    PID[$i]=$!
  done
  LEADER=""
  for _ in $(seq 1 100); do
    for i in 1 2 3; do
      if "$BIN" client --addr ":$((PORT_BASE + i))" --timeout 1 status 2>/dev/null | grep -qx 'role: leader'; then
        LEADER=$i
      fi
    done
    [ -n "$LEADER" ] && break
    sleep 0.1
  done
  [ -n "$LEADER" ] || { echo "no leader; logs in $BASE/data" >&2; exit 1; }
  LADDR=":$((PORT_BASE + LEADER))"
}

cpu_pid() { awk '{print $14+$15}' "/proc/$1/stat" 2>/dev/null || echo 0; }
CLK=$(getconf CLK_TCK)
pct() { awk -v a="$1" -v b="$2" -v k="$CLK" -v s="$3" 'BEGIN{printf "%.0f", (b-a)/k/s*100}'; }

# run KIND CLIENTS BENCH-ARGS...: one bench run against the leader, one TSV row.
run() {
  local kind=$1 c=$2; shift 2
  local i order=() c0=() c1=() t0 t1 out secs conns=()
  [ -n "$CONNS" ] && conns=(--conns "$(( CONNS < c ? CONNS : c ))")
  order=("$LEADER"); for i in 1 2 3; do [ "$i" = "$LEADER" ] || order+=("$i"); done
  for i in "${order[@]}"; do c0+=("$(cpu_pid "${PID[$i]}")"); done
  t0=$(date +%s.%N)
  out=$( { TIMEFORMAT='BENCHCPU %U %S'; time "$BIN" bench --addr "$LADDR" --clients "$c" \
           "${conns[@]}" --duration "$DUR" --key-size 16 --value-size 100 --json "$@"; } 2>&1 ) || true
  t1=$(date +%s.%N); secs=$(awk -v a="$t0" -v b="$t1" 'BEGIN{print b-a}')
  for i in "${order[@]}"; do c1+=("$(cpu_pid "${PID[$i]}")"); done
  local json; json=$(grep '^{' <<<"$out") || { echo "$out" >&2; exit 1; }
  local bcpu; bcpu=$(grep '^BENCHCPU' <<<"$out" | awk -v s="$secs" '{printf "%.0f", ($2+$3)/s*100}')
  python3 - "$kind" "$c" "$json" "$(pct "${c0[0]}" "${c1[0]}" "$secs")" \
    "$(pct "${c0[1]}" "${c1[1]}" "$secs")" "$(pct "${c0[2]}" "${c1[2]}" "$secs")" "$bcpu" <<'PY' | tee -a "$RES"
import json, sys
kind, c, j, l, f1, f2, b = sys.argv[1:]
d = json.loads(j)
print("\t".join([kind, c, f"{d['ops_per_s']:.0f}", f"{d['p50_ms']:.2f}", f"{d['p90_ms']:.2f}",
                 f"{d['p99_ms']:.2f}", f"{d['p999_ms']:.2f}", f"{d['max_ms']:.2f}",
                 str(d['errors']), l, f1, f2, b]))
PY
}

echo -e "kind\tclients\tops_per_s\tp50_ms\tp90_ms\tp99_ms\tp999_ms\tmax_ms\terrors\tcpu_leader\tcpu_f1\tcpu_f2\tcpu_bench" | tee "$RES"
for rep in $(seq 1 "$REPS"); do
  if phase puts; then
    for c in $CONCS; do
      start_cluster
      "$BIN" bench --addr "$LADDR" --clients 64 --duration "$WARM" --keys 50000 put >/dev/null
      run put "$c" --keys 50000 put
      stop_cluster
    done
  fi
  if phase reads; then
    start_cluster
    "$BIN" bench --addr "$LADDR" --clients 8 --ops 1000 --keys 1000 put >/dev/null 2>&1 || true
    "$BIN" bench --addr "$LADDR" --clients 64 --duration "$WARM" --keys 50000 put >/dev/null
    run get-linearizable "$READC" --keys 1000 get
    run get-stale "$READC" --keys 1000 --stale get
    stop_cluster
  fi
done
log "results: $RES"
