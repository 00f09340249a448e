#!/usr/bin/env bash
# Starts a local raftkv cluster: N nodes (default 3) on 127.0.0.1:8001..800N, data in
# ./data/nodeI, each node's log in ./data/nodeI.log. Waits for a leader, prints the
# cluster status and example commands, then runs until Ctrl-C, which stops every node
# cleanly.
#
#   ./run-cluster.sh        # three nodes
#   ./run-cluster.sh 5      # five nodes
set -euo pipefail
cd "$(dirname "$0")"

n=${1:-3}
if ! [[ "$n" =~ ^[1-9]$ ]]; then
    echo "usage: $0 [NODES]   (NODES from 1 to 9, default 3)" >&2
    exit 2
fi

cargo build --release
bin=target/release/raftkv

ports=()
for i in $(seq 1 "$n"); do ports+=($((8000 + i))); done
peers=$(printf ':%s,' "${ports[@]}")
peers=${peers%,}

for port in "${ports[@]}"; do
    if (exec 3<>"/dev/tcp/127.0.0.1/$port") 2>/dev/null; then
        echo "error: port $port is already in use (another cluster running?)." >&2
        echo "       stop whatever listens there, e.g. find it with: ss -ltnp 'sport = :$port'" >&2
        exit 1
    fi
done

mkdir -p data
pids=()
stop() {
    trap - INT TERM EXIT
    if [ "${#pids[@]}" -gt 0 ]; then
        echo
        echo "stopping ${#pids[@]} nodes..."
        kill -INT "${pids[@]}" 2>/dev/null || true
        wait "${pids[@]}" 2>/dev/null || true
    fi
}
trap stop INT TERM EXIT

for i in $(seq 1 "$n"); do
    "$bin" node --id "$i" --addr ":${ports[$((i - 1))]}" --peers "$peers" \
        --data "data/node$i" >>"data/node$i.log" 2>&1 &
    pids+=($!)
done

# Wait (at most 20 s) for a leader; stop early if a node died.
leader=""
for _ in $(seq 1 200); do
    for i in $(seq 1 "$n"); do
        if ! kill -0 "${pids[$((i - 1))]}" 2>/dev/null; then
            echo "error: node $i exited; the end of data/node$i.log says:" >&2
            tail -n 5 "data/node$i.log" >&2
            exit 1
        fi
        if "$bin" client --addr ":${ports[$((i - 1))]}" --timeout 1 status 2>/dev/null \
            | grep -qx 'role: leader'; then
            leader=$i
        fi
    done
    [ -n "$leader" ] && break
    sleep 0.1
done
if [ -z "$leader" ]; then
    echo "error: no leader elected within 20 s; see data/node*.log" >&2
    exit 1
fi

echo
echo "raftkv: $n nodes running on $peers; node $leader leads."
echo
"$bin" client --addr ":${ports[$((leader - 1))]}" status
cat <<USAGE

Try, in another terminal:
  $bin client put greeting hello
  $bin client get greeting
  $bin client cas greeting hello bonjour
  $bin client delete greeting
  $bin client status

Logs: data/node1.log .. data/node$n.log.  Ctrl-C stops the cluster.
USAGE

wait "${pids[@]}"
