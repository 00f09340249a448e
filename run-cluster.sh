#!/usr/bin/env bash
# Runs a local raftkv cluster: N nodes (default 3) on 127.0.0.1:8001..800N.
#
#   ./run-cluster.sh            # start three nodes; Ctrl-C stops them
#   ./run-cluster.sh 5          # start five (a separate cluster, see below)
#   ./run-cluster.sh restart 2  # from another terminal: restart node 2 of the running cluster
#   ./run-cluster.sh stop       # from another terminal: stop the running cluster
#
# Each cluster size has its own data: data/3-nodes/node1 .. node3 (logs in
# data/3-nodes/nodeI.log, process ids in data/3-nodes/nodeI.pid), data/5-nodes/... for
# five, so `./run-cluster.sh 5` never meets a three-node data directory. Delete
# data/N-nodes to start that cluster over (empty); delete data/ to start everything over.
#
# The script builds raftkv with cargo and runs the binary cargo reports (so
# CARGO_TARGET_DIR is honoured and a stale ./target is never used). Nodes are stopped
# with SIGTERM (a clean shutdown); one still running after RAFTKV_STOP_WAIT seconds
# (default 10) gets SIGKILL, and the script says so.
#
# Environment: RAFTKV_BIN=PATH runs that binary instead of building; RAFTKV_DATA=DIR
# puts the data elsewhere (default ./data); RAFTKV_BASE_PORT=P puts node I on port P+I
# (default 8000).
set -euo pipefail
cd "$(dirname "$0")"

data_root=${RAFTKV_DATA:-data}
base_port=${RAFTKV_BASE_PORT:-8000}
stop_wait=${RAFTKV_STOP_WAIT:-10}
# The running cluster: one line "N SCRIPT_PID", written by the script that runs it.
running_file="$data_root/running"

usage() {
    cat >&2 <<EOF
usage: $0 [NODES]        start NODES nodes (1 to 9, default 3); Ctrl-C stops them
       $0 restart ID     restart node ID of the running cluster
       $0 stop           stop the running cluster
EOF
    exit 2
}

# Sets $bin: RAFTKV_BIN, or the raftkv binary cargo builds (cargo prints its path).
find_binary() {
    if [ -n "${RAFTKV_BIN:-}" ]; then
        bin=$RAFTKV_BIN
    else
        local out
        if ! out=$(cargo build --release --message-format=json-render-diagnostics); then
            echo "error: cargo build failed" >&2
            exit 1
        fi
        bin=$(printf '%s\n' "$out" | grep '"reason":"compiler-artifact"' \
            | grep '"kind":\["bin"\]' | grep '"name":"raftkv"' \
            | sed -n 's/.*"executable":"\([^"]*\)".*/\1/p' | tail -n 1)
    fi
    if [ -z "$bin" ] || [ ! -x "$bin" ]; then
        echo "error: no raftkv binary found (${bin:-cargo reported none})" >&2
        exit 1
    fi
}

port() { echo $((base_port + $1)); }

# True if process $1 runs (a zombie does not count).
alive() {
    kill -0 "$1" 2>/dev/null || return 1
    local state
    state=$(ps -o stat= -p "$1" 2>/dev/null || true)
    [[ "$state" != Z* ]]
}

# The pid of node $1 of the cluster in $dir, if that node runs; empty otherwise.
node_pid() {
    local file="$dir/node$1.pid" pid
    [ -f "$file" ] || return 0
    pid=$(cat "$file")
    if [[ "$pid" =~ ^[0-9]+$ ]] && alive "$pid"; then echo "$pid"; fi
}

# Starts node $1 in the background, in its own session so that a Ctrl-C in the
# terminal reaches only this script, which then stops the nodes in order.
start_node() {
    local i=$1 launcher=()
    command -v setsid >/dev/null && launcher=(setsid)
    "${launcher[@]}" "$bin" node --id "$i" --addr ":$(port "$i")" --peers "$peers" \
        --data "$dir/node$i" </dev/null >>"$dir/node$i.log" 2>&1 &
    echo $! >"$dir/node$i.pid"
}

# Stops the given nodes: SIGTERM, wait up to $stop_wait s, then SIGKILL what is left.
stop_nodes() {
    local pids=() names=() dead=() i pid
    for i in "$@"; do
        pid=$(node_pid "$i")
        if [ -n "$pid" ]; then pids+=("$pid"); names+=("$i"); else dead+=("$i"); fi
    done
    if [ "${#dead[@]}" -gt 0 ]; then
        echo "node ${dead[*]}: not running"
    fi
    [ "${#pids[@]}" -gt 0 ] || return 0
    echo "stopping node ${names[*]} (SIGTERM)..."
    kill -TERM "${pids[@]}" 2>/dev/null || true
    local deadline=$((SECONDS + stop_wait)) left
    while :; do
        left=()
        for pid in "${pids[@]}"; do alive "$pid" && left+=("$pid"); done
        [ "${#left[@]}" -eq 0 ] && break
        if [ "$SECONDS" -ge "$deadline" ]; then
            echo "still running after ${stop_wait} s: pid ${left[*]}; sending SIGKILL" >&2
            kill -KILL "${left[@]}" 2>/dev/null || true
            break
        fi
        sleep 0.1
    done
}

# Sets $n, $dir and $peers for a cluster of $1 nodes.
set_cluster() {
    n=$1
    dir="$data_root/$n-nodes"
    peers=""
    local i
    for i in $(seq 1 "$n"); do peers+=":$(port "$i"),"; done
    peers=${peers%,}
}

# Reads the running cluster's size and script pid into $n, $dir, $peers, $owner.
read_running() {
    local size
    if [ ! -f "$running_file" ] || ! read -r size owner <"$running_file" \
        || ! [[ "$size" =~ ^[1-9]$ ]]; then
        echo "error: no cluster is running here (start one with $0)" >&2
        exit 1
    fi
    set_cluster "$size"
}

# Waits up to $2 s until node $1 answers status; prints its role.
wait_answer() {
    local end=$((SECONDS + $2)) role
    while [ "$SECONDS" -lt "$end" ]; do
        role=$("$bin" client --addr ":$(port "$1")" --timeout 1 status 2>/dev/null \
            | sed -n 's/^role: //p') || true
        if [ -n "$role" ]; then echo "$role"; return 0; fi
        sleep 0.1
    done
    return 1
}

cmd_restart() {
    [[ "${1:-}" =~ ^[1-9]$ ]] || usage
    read_running
    local i=$1
    if [ "$i" -gt "$n" ]; then
        echo "error: the running cluster has nodes 1 to $n" >&2
        exit 2
    fi
    find_binary
    touch "$dir/node$i.restarting"
    stop_nodes "$i"
    start_node "$i"
    local role
    if ! role=$(wait_answer "$i" 20); then
        rm -f "$dir/node$i.restarting"
        echo "error: node $i did not answer within 20 s; the end of $dir/node$i.log says:" >&2
        tail -n 5 "$dir/node$i.log" >&2
        exit 1
    fi
    rm -f "$dir/node$i.restarting"
    echo "node $i restarted (pid $(cat "$dir/node$i.pid")); it is a $role"
}

cmd_stop() {
    read_running
    if [[ "${owner:-}" =~ ^[0-9]+$ ]] && alive "$owner"; then
        # The script that runs the cluster stops its nodes and removes the file.
        kill -TERM "$owner"
        local end=$((SECONDS + stop_wait + 5))
        while alive "$owner" && [ "$SECONDS" -lt "$end" ]; do sleep 0.1; done
        if alive "$owner"; then
            echo "error: the cluster's script (pid $owner) did not exit" >&2
            exit 1
        fi
        echo "stopped the $n-node cluster"
    else
        stop_nodes $(seq 1 "$n")
        rm -f "$running_file"
    fi
}

# --- start ---------------------------------------------------------------------------

monitor_sleep=""
cleanup() {
    trap - INT TERM HUP EXIT
    [ -n "$monitor_sleep" ] && kill "$monitor_sleep" 2>/dev/null
    echo
    stop_nodes $(seq 1 "$n")
    rm -f "$running_file"
}

cmd_start() {
    [[ "$1" =~ ^[1-9]$ ]] || usage
    set_cluster "$1"
    if [ -f "$running_file" ]; then
        local size owner
        read -r size owner <"$running_file" || true
        if [[ "${owner:-}" =~ ^[0-9]+$ ]] && alive "$owner"; then
            echo "error: a ${size}-node cluster is already running (script pid $owner)." >&2
            echo "       stop it with Ctrl-C in its terminal, or: $0 stop" >&2
            exit 1
        fi
    fi
    if [ -d "$data_root/node1" ]; then
        echo "note: $data_root/node1 ... are from an older layout and are not used;" \
            "delete them when you no longer need them." >&2
    fi
    find_binary
    local i
    for i in $(seq 1 "$n"); do
        if (exec 3<>"/dev/tcp/127.0.0.1/$(port "$i")") 2>/dev/null; then
            echo "error: port $(port "$i") is already in use." >&2
            echo "       a node left from an earlier run? $0 stop stops it; otherwise" \
                "find the process with: ss -ltnp 'sport = :$(port "$i")'" >&2
            exit 1
        fi
    done
    mkdir -p "$dir"
    echo "$n $$" >"$running_file"
    trap cleanup EXIT
    trap 'exit 0' INT TERM HUP
    for i in $(seq 1 "$n"); do start_node "$i"; done
    wait_for_leader
    watch_nodes
}

# Waits (at most 20 s) for a leader and prints how to use the cluster.
wait_for_leader() {
    local leader="" i pid
    for _ in $(seq 1 200); do
        for i in $(seq 1 "$n"); do
            pid=$(node_pid "$i")
            if [ -z "$pid" ]; then
                echo "error: node $i exited; the end of $dir/node$i.log says:" >&2
                tail -n 5 "$dir/node$i.log" >&2
                exit 1
            fi
            if "$bin" client --addr ":$(port "$i")" --timeout 1 status 2>/dev/null \
                | grep -qx 'role: leader'; then
                leader=$i
            fi
        done
        [ -n "$leader" ] && break
        sleep 0.1
    done
    if [ -z "$leader" ]; then
        echo "error: no leader elected within 20 s; see $dir/node*.log" >&2
        exit 1
    fi
    local shown=$bin
    [[ "$bin" == "$PWD"/* ]] && shown=${bin#"$PWD"/}
    # The client's default --addr is :8001,:8002,:8003.
    local client="$shown client"
    [ "$peers" = ":8001,:8002,:8003" ] || client+=" --addr $peers"
    echo
    echo "raftkv: $n nodes running on $peers; node $leader leads."
    echo
    "$bin" client --addr ":$(port "$leader")" status
    cat <<USAGE

Try, in another terminal:
  $client put greeting hello
  $client get greeting
  $client cas greeting hello bonjour
  $client delete greeting
  $client status

Restart node 2:  $0 restart 2
Data and logs:   $dir/ (node1.log .. node$n.log)
Ctrl-C stops the cluster.
USAGE
}

# Runs until a signal; says once when a node exits on its own.
watch_nodes() {
    local reported=" " i pid
    while :; do
        sleep 1 &
        monitor_sleep=$!
        wait "$monitor_sleep" || true
        for i in $(seq 1 "$n"); do
            pid=$(cat "$dir/node$i.pid" 2>/dev/null || true)
            [ -e "$dir/node$i.restarting" ] && continue
            if [ -n "$pid" ] && [ -z "$(node_pid "$i")" ] && [[ "$reported" != *" $pid "* ]]; then
                echo "node $i (pid $pid) exited; see $dir/node$i.log; $0 restart $i starts it again" >&2
                reported+="$pid "
            fi
        done
    done
}

case "${1:-3}" in
restart) cmd_restart "${2:-}" ;;
stop) cmd_stop ;;
-h | --help | help) usage ;;
*) cmd_start "${1:-3}" ;;
esac
