#!/usr/bin/env bash
# raftkv against etcd, measured side by side by this script alone.
#
# Both systems run as three members on 127.0.0.1 with fsync on; keys are 16 bytes and
# values 100 bytes. raftkv is driven by `raftkv bench`, etcd by examples/etcd-load (a
# load generator of this repository's own that speaks etcd's native gRPC, its fastest
# transport). Repetitions are interleaved, raftkv then etcd, each on a fresh cluster with
# a warm-up, so that both see the same machine; the table gives the median of the reps.
#
#   bash examples/bench-vs-etcd.sh        # from anywhere; builds both load generators
#
# Needs: etcd and etcdctl on PATH (Debian: apt-get install etcd-server etcd-client),
# cargo, python3.
#
# Knobs (env):
#   DUR=5 (s per run)  REPS=3  WARM=3 (s of 64-client puts before each rep)
#   SYSTEMS="raftkv etcd"
#   SHAPES="put:64:8:leader get:64:8:spread put:1:1:follower put:1:1:leader
#           put:64:64:leader get:64:64:leader"
#       each shape is WORKLOAD:CLIENTS:CONNS:WHERE; WORKLOAD put|get|get-stale,
#       CONNS the connections the clients share, WHERE leader|follower|spread
#       (spread: connections round-robin over all three members)
#   BASE=/tmp/raftkv-vs-etcd  PORT_BASE=24000  BIN=target/release/raftkv (no build if set)
# Output: one TSV row per run (kept in $BASE/runs-*.tsv), then the table of medians.
# cpu_us_per_op is the CPU time of all three members plus the load generator, divided
# by the operations done. Only processes started here are stopped (by PID).
set -euo pipefail
cd "$(dirname "$0")/.."

DUR=${DUR:-5}; REPS=${REPS:-3}; WARM=${WARM:-3}
SYSTEMS=${SYSTEMS:-"raftkv etcd"}
SHAPES=${SHAPES:-"put:64:8:leader get:64:8:spread put:1:1:follower put:1:1:leader put:64:64:leader get:64:64:leader"}
BASE=${BASE:-/tmp/raftkv-vs-etcd}; PORT_BASE=${PORT_BASE:-24000}
KEYS=1000

for tool in python3 cargo; do
  command -v "$tool" >/dev/null || { echo "bench-vs-etcd: $tool is not on PATH" >&2; exit 2; }
done
if [[ " $SYSTEMS " == *" etcd "* ]]; then
  for tool in etcd etcdctl; do
    command -v "$tool" >/dev/null || {
      echo "bench-vs-etcd: $tool is not on PATH (Debian: apt-get install etcd-server etcd-client)" >&2
      exit 2
    }
  done
fi
if [ -z "${BIN:-}" ]; then cargo build --release -q; BIN=target/release/raftkv; fi
LOADGEN=examples/etcd-load/target/release/etcd-load
if [[ " $SYSTEMS " == *" etcd "* ]]; then
  cargo build --release -q --manifest-path examples/etcd-load/Cargo.toml
fi
# `bench --conns` is how raftkv clients share connections; without it, one per client.
CONNS_FLAG=0
"$BIN" bench --help 2>/dev/null | grep -q -- '--conns' && CONNS_FLAG=1

mkdir -p "$BASE"
RUNS=$BASE/runs-$(date +%Y%m%d-%H%M%S).tsv
declare -a PIDS=()
LEADER=""; FOLLOWER=""; ALL=""
log() { echo "[$(date +%H:%M:%S)] $*" >&2; }

stop_cluster() {
  local pid
  for pid in "${PIDS[@]}"; do kill -TERM "$pid" 2>/dev/null || true; done
  for pid in "${PIDS[@]}"; do wait "$pid" 2>/dev/null || true; done
  PIDS=()
}
trap 'stop_cluster' EXIT
trap 'exit 130' INT TERM

# --- raftkv --------------------------------------------------------------------
raftkv_addr() { echo ":$((PORT_BASE + $1))"; }

start_raftkv() {
  local i peers=":$((PORT_BASE + 1)),:$((PORT_BASE + 2)),:$((PORT_BASE + 3))"
  rm -rf "$BASE/raftkv"; mkdir -p "$BASE/raftkv"
  for i in 1 2 3; do
    "$BIN" node --id "$i" --addr "$(raftkv_addr "$i")" --peers "$peers" \
      --data "$BASE/raftkv/n$i" >"$BASE/raftkv/n$i.log" 2>&1 </dev/null &
    PIDS+=($!)
  done
  local leader="" _
  for _ in $(seq 1 100); do
    leader=$("$BIN" client --addr "$peers" --timeout 1 status 2>/dev/null |
      awk '$1 == "leader:" && $2 != "none" { print $2 }') || true
    [ -n "$leader" ] && break
    sleep 0.1
  done
  [ -n "$leader" ] || { echo "raftkv elected no leader; logs in $BASE/raftkv" >&2; exit 1; }
  LEADER=$(raftkv_addr "$leader")
  FOLLOWER=$(raftkv_addr $((leader % 3 + 1)))
  ALL=$peers
  "$BIN" bench --addr "$LEADER" --clients 64 --duration "$WARM" --keys 50000 put >/dev/null
  "$BIN" bench --addr "$LEADER" --clients 8 --ops "$KEYS" --keys "$KEYS" put >/dev/null
}

# raftkv_run WORKLOAD CLIENTS CONNS WHERE: prints bench's JSON line.
raftkv_run() {
  local workload=$1 clients=$2 conns=$3 where=$4 addr args=()
  case $where in
    leader) addr=$LEADER ;;
    follower) addr=$FOLLOWER ;;
    spread) addr=$ALL; args+=(--spread) ;;
  esac
  [ "$CONNS_FLAG" = 1 ] && args+=(--conns "$conns")
  case $workload in
    put) args+=(--keys 50000 put) ;;
    get) args+=(--keys "$KEYS" get) ;;
    get-stale) args+=(--keys "$KEYS" --stale get) ;;
  esac
  "$BIN" bench --addr "$addr" --clients "$clients" --duration "$DUR" \
    --key-size 16 --value-size 100 --json "${args[@]}"
}

# --- etcd ----------------------------------------------------------------------
etcd_url() { echo "http://127.0.0.1:$((PORT_BASE + 10 + $1))"; }

start_etcd() {
  local i cluster="" token="bench-$$-$RANDOM"
  rm -rf "$BASE/etcd"; mkdir -p "$BASE/etcd"
  for i in 1 2 3; do cluster+="${cluster:+,}n$i=http://127.0.0.1:$((PORT_BASE + 20 + i))"; done
  for i in 1 2 3; do
    etcd --name "n$i" --data-dir "$BASE/etcd/n$i" \
      --listen-client-urls "$(etcd_url "$i")" --advertise-client-urls "$(etcd_url "$i")" \
      --listen-peer-urls "http://127.0.0.1:$((PORT_BASE + 20 + i))" \
      --initial-advertise-peer-urls "http://127.0.0.1:$((PORT_BASE + 20 + i))" \
      --initial-cluster "$cluster" --initial-cluster-state new \
      --initial-cluster-token "$token" >"$BASE/etcd/n$i.log" 2>&1 </dev/null &
    PIDS+=($!)
  done
  local urls leader="" _
  urls="$(etcd_url 1),$(etcd_url 2),$(etcd_url 3)"
  for _ in $(seq 1 100); do
    leader=$(ETCDCTL_API=3 etcdctl --endpoints "$urls" endpoint status -w json 2>/dev/null |
      python3 -c 'import json,sys
for s in json.load(sys.stdin):
    h = s["Status"]["header"]
    if h["member_id"] == s["Status"]["leader"]: print(s["Endpoint"])' 2>/dev/null) || true
    [ -n "$leader" ] && break
    sleep 0.1
  done
  [ -n "$leader" ] || { echo "etcd elected no leader; logs in $BASE/etcd" >&2; exit 1; }
  LEADER=$leader
  local u
  for u in ${urls//,/ }; do [ "$u" != "$leader" ] && { FOLLOWER=$u; break; }; done
  ALL=$urls
  "$LOADGEN" --endpoints "$LEADER" --clients 64 --duration "$WARM" put >/dev/null
  "$LOADGEN" --endpoints "$LEADER" --keys "$KEYS" preload
}

# etcd_run WORKLOAD CLIENTS CONNS WHERE: prints etcd-load's JSON line.
etcd_run() {
  local workload=$1 clients=$2 conns=$3 where=$4 endpoints
  case $where in
    leader) endpoints=$LEADER ;;
    follower) endpoints=$FOLLOWER ;;
    spread) endpoints=$ALL ;;
  esac
  "$LOADGEN" --endpoints "$endpoints" --clients "$clients" --conns "$conns" \
    --duration "$DUR" --keys "$KEYS" "$workload"
}

# --- measuring -----------------------------------------------------------------
cpu_ticks() { awk '{ print $14 + $15 }' "/proc/$1/stat" 2>/dev/null || echo 0; }
servers_ticks() {
  local pid sum=0
  for pid in "${PIDS[@]}"; do sum=$((sum + $(cpu_ticks "$pid"))); done
  echo "$sum"
}

# measure SYSTEM REP SHAPE: one run, one TSV row.
measure() {
  local system=$1 rep=$2 shape=$3 workload clients conns where before after out json gen
  IFS=: read -r workload clients conns where <<<"$shape"
  before=$(servers_ticks)
  out=$( { TIMEFORMAT='LOADGEN_CPU %U %S'; time "${system}_run" "$workload" "$clients" \
           "$conns" "$where"; } 2>&1 ) || true
  after=$(servers_ticks)
  json=$(grep '^{' <<<"$out") || { echo "$system $shape failed: $out" >&2; return; }
  gen=$(awk '/^LOADGEN_CPU/ { print $2 + $3 }' <<<"$out")
  python3 - "$system" "$rep" "$shape" "$json" "$((after - before))" "$(getconf CLK_TCK)" \
    "$gen" <<'PY' | tee -a "$RUNS"
import json, sys
system, rep, shape, j, ticks, hz, gen = sys.argv[1:]
d = json.loads(j)
cpu_s = int(ticks) / int(hz) + float(gen or 0)
per_op = cpu_s / d["ops"] * 1e6 if d["ops"] else 0
print("\t".join([system, rep, shape, f"{d['ops_per_s']:.0f}", f"{d['p50_ms']:.3f}",
                 f"{d['p99_ms']:.3f}", str(d["errors"]), f"{per_op:.1f}"]))
PY
}

echo -e "system\trep\tshape\tops_per_s\tp50_ms\tp99_ms\terrors\tcpu_us_per_op" | tee "$RUNS"
for rep in $(seq 1 "$REPS"); do
  for system in $SYSTEMS; do
    log "rep $rep: $system"
    "start_$system"
    for shape in $SHAPES; do measure "$system" "$rep" "$shape"; done
    stop_cluster
  done
done
[ "$CONNS_FLAG" = 1 ] || log "this raftkv has no bench --conns: its clients used one connection each"

python3 - "$RUNS" <<'PY'
import csv, statistics, sys
rows = list(csv.DictReader(open(sys.argv[1]), delimiter="\t"))
shapes = list(dict.fromkeys(r["shape"] for r in rows))
systems = list(dict.fromkeys(r["system"] for r in rows))
def med(system, shape, key):
    v = [float(r[key]) for r in rows if r["system"] == system and r["shape"] == shape]
    return statistics.median(v) if v else float("nan")
print()
print(f"median of {len({r['rep'] for r in rows})} reps; shape = workload:clients:conns:where")
head = f"{'shape':<22}" + "".join(f"{s + ' ops/s':>14}{'p50 ms':>9}{'p99 ms':>9}{'cpu us/op':>11}" for s in systems)
if len(systems) == 2:
    head += f"{'ratio':>8}"
print(head)
for shape in shapes:
    line = f"{shape:<22}"
    for s in systems:
        line += f"{med(s, shape, 'ops_per_s'):>14.0f}{med(s, shape, 'p50_ms'):>9.2f}"
        line += f"{med(s, shape, 'p99_ms'):>9.2f}{med(s, shape, 'cpu_us_per_op'):>11.1f}"
    if len(systems) == 2:
        a, b = (med(s, shape, "ops_per_s") for s in systems)
        line += f"{a / b:>8.2f}" if b else f"{'-':>8}"
    print(line)
errors = sum(int(r["errors"]) for r in rows)
if errors:
    print(f"\n{errors} operations failed in all; see {sys.argv[1]}")
PY
log "runs: $RUNS"
