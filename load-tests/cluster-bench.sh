#!/usr/bin/env bash
# load-tests/cluster-bench.sh: the cluster benchmarks of issue 16, each one
# command that starts what it needs on loopback (the private Postgres,
# nats-server with deploy/nats.conf, hubs in cluster mode and/or single
# hubs, connected to directly: no HAProxy), runs `audotics-load`, writes
# the JSON reports, and stops every process it started, by pid.
#
#   load-tests/cluster-bench.sh listeners [--out DIR] [--connect-rate N] [--sessions S] [--rate R]
#                                     # 100,000 listeners over 6 nodes in S sessions (3),
#                                     # N joins/s in total (250; 0 = as fast as possible),
#                                     # one writer per session, R ops/s in total (6)
#   load-tests/cluster-bench.sh fanout    [--out DIR] [--pairs N] [--writers W]
#                                     # 1 node vs 3 nodes, A B A B; W writers per session (5)
#   load-tests/cluster-bench.sh failover  [--out DIR] [--runs N] [--natural-owners]
#                                     # kill -9 of the owner of all 1,000 sessions (or,
#                                     # --natural-owners, of those its connections reached first)
#   load-tests/cluster-bench.sh memory    [--out DIR] [--pairs N]  # idle listener on a non-owner
#
# KEEP_LOGS=DIR keeps the processes' logs there.
# Binaries: $HUB_BIN and $LOAD_BIN, by default
# ${CARGO_TARGET_DIR:-target}/release/{audotics-hub,audotics-load}; build
# them first with `cargo build --release -p audotics-hub -p audotics-load`.
# Needs nats-server, psql and the PostgreSQL server binaries (Debian:
# nats-server, postgresql). Scratch data lives in a temporary directory,
# removed at the end.
set -euo pipefail

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
TARGET=${CARGO_TARGET_DIR:-$ROOT/target}
HUB_BIN=${HUB_BIN:-$TARGET/release/audotics-hub}
LOAD_BIN=${LOAD_BIN:-$TARGET/release/audotics-load}
NATS_BIN=${NATS_SERVER_BIN:-$(command -v nats-server || echo /usr/sbin/nats-server)}
BASE_PORT=${BASE_PORT:-18400}
NATS_PORT=$((BASE_PORT + 99))
NATS_MON=$((BASE_PORT + 98))

SCENARIO=${1:-}
[ -n "$SCENARIO" ] || { sed -n '2,22p' "$0"; exit 2; }
shift
OUT=$ROOT/docs/benchmarks/cluster
PAIRS=4
RUNS=3
PRIME=1
CONNECT_RATE=250
LSESSIONS=3
LRATE=6
FWRITERS=5
while [ $# -gt 0 ]; do
    case $1 in
    --out) OUT=$2; shift 2 ;;
    --pairs) PAIRS=$2; shift 2 ;;
    --runs) RUNS=$2; shift 2 ;;
    --natural-owners) PRIME=0; shift ;;
    --connect-rate) CONNECT_RATE=$2; shift 2 ;;
    --sessions) LSESSIONS=$2; shift 2 ;;
    --rate) LRATE=$2; shift 2 ;;
    --writers) FWRITERS=$2; shift 2 ;;
    *) echo "unknown option $1" >&2; exit 2 ;;
    esac
done
mkdir -p "$OUT"
OUT=$(cd "$OUT" && pwd)
for b in "$HUB_BIN" "$LOAD_BIN" "$NATS_BIN"; do
    [ -x "$b" ] || { echo "missing $b" >&2; exit 1; }
done
command -v psql >/dev/null || { echo "psql missing (apt-get install postgresql-client)" >&2; exit 1; }

WORK=$(mktemp -d /tmp/cluster-bench.XXXXXX)
LOGS=$WORK/logs
mkdir -p "$LOGS"
ulimit -n "$(ulimit -Hn)" 2>/dev/null || true

# Every process started here, in start order: "name pid".
STARTED=()
say() { printf '%s %s\n' "$(date +%T)" "$*" >&2; }

stop_pid() {
    local pid=$1 secs=${2:-20} i
    kill -0 "$pid" 2>/dev/null || return 0
    kill -TERM "$pid" 2>/dev/null || return 0
    for ((i = 0; i < secs * 10; i++)); do
        kill -0 "$pid" 2>/dev/null || { wait "$pid" 2>/dev/null || true; return 0; }
        sleep 0.1
    done
    say "pid $pid did not stop in ${secs}s: SIGKILL"
    kill -KILL "$pid" 2>/dev/null || true
    wait "$pid" 2>/dev/null || true
}

forget() {
    local pid=$1 keep=() e
    for e in "${STARTED[@]}"; do
        [ "${e#* }" = "$pid" ] || keep+=("$e")
    done
    STARTED=("${keep[@]}")
}

cleanup() {
    local i e
    for ((i = ${#STARTED[@]} - 1; i >= 0; i--)); do
        e=${STARTED[i]}
        stop_pid "${e#* }" 60
    done
    STARTED=()
    if [ -n "${KEEP_LOGS:-}" ]; then
        mkdir -p "$KEEP_LOGS" && cp -r "$LOGS"/. "$KEEP_LOGS"/
    fi
    rm -rf "$WORK"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

http_ok() { curl -sf -o /dev/null --max-time 2 "http://127.0.0.1:$1$2"; }

wait_ready() {
    local port=$1 pid=$2 i
    for ((i = 0; i < 600; i++)); do
        http_ok "$port" /readyz && return 0
        kill -0 "$pid" 2>/dev/null || { echo "process $pid (port $port) exited" >&2; tail -n 20 "$LOGS"/* >&2; exit 1; }
        sleep 0.2
    done
    echo "port $port not ready" >&2
    exit 1
}

start_postgres() {
    say "private Postgres under $WORK/pg"
    "$HUB_BIN" postgres --data-dir "$WORK/pg" >"$WORK/pg.out" 2>"$LOGS/postgres.log" &
    PG_PID=$!
    STARTED+=("postgres $PG_PID")
    local i
    for ((i = 0; i < 600; i++)); do
        grep -q '^DATABASE_URL=' "$WORK/pg.out" 2>/dev/null && break
        kill -0 "$PG_PID" 2>/dev/null || { cat "$LOGS/postgres.log" >&2; exit 1; }
        sleep 0.2
    done
    DB_URL=$(grep -m1 '^DATABASE_URL=' "$WORK/pg.out" | cut -d= -f2-)
    [ -n "$DB_URL" ] || { echo "no DATABASE_URL" >&2; exit 1; }
}

start_nats() {
    say "nats-server on 127.0.0.1:$NATS_PORT (deploy/nats.conf)"
    "$NATS_BIN" -c "$ROOT/deploy/nats.conf" -a 127.0.0.1 -p "$NATS_PORT" -m "$NATS_MON" \
        >"$LOGS/nats.log" 2>&1 &
    NATS_PID=$!
    STARTED+=("nats $NATS_PID")
    local i
    for ((i = 0; i < 100; i++)); do
        http_ok "$NATS_MON" /healthz && return 0
        sleep 0.1
    done
    echo "nats-server not ready" >&2
    exit 1
}

HUB_FLAGS=(--ops-per-sec 1000 --ops-burst 2000 --account-ops-per-sec 100000
    --signups-per-minute 100000 --sessions-per-hour 100000 --max-unproven-per-ip 0)

# start_hub NAME PORT cluster|single: sets HUB_PID (not waited for).
start_hub() {
    local name=$1 port=$2 mode=$3 args
    args=(serve --bind "127.0.0.1:$port" --database-url "$DB_URL" "${HUB_FLAGS[@]}")
    if [ "$mode" = cluster ]; then
        args+=(--nats "nats://127.0.0.1:$NATS_PORT" --cluster bench --node-id "$name")
    fi
    "$HUB_BIN" "${args[@]}" >>"$LOGS/$name.log" 2>&1 &
    HUB_PID=$!
    STARTED+=("$name $HUB_PID")
}

stop_hub() {
    stop_pid "$1" 30
    forget "$1"
}

rss() { awk '/^VmRSS:/ { print $2 }' "/proc/$1/status" 2>/dev/null || echo 0; }

metric() { # metric PORT NAME-SUFFIX: summed value
    curl -s --max-time 5 "http://127.0.0.1:$1/metrics" |
        awk -v n="$2" '$1 !~ /^#/ { split($1, a, "{"); if (a[1] ~ (n "$")) s += $2 } END { print s + 0 }'
}

url() { printf 'http://127.0.0.1:%s' "$1"; }
join_urls() { local IFS=,; echo "$*"; }

machine() {
    printf '{"date":"%s","commit":"%s","nproc":%s,"cpu":"%s","load_before":"%s"}\n' \
        "$(date -u +%FT%TZ)" "$(git -C "$ROOT" rev-parse --short HEAD)" "$(nproc)" \
        "$(awk -F': ' '/model name/ { print $2; exit }' /proc/cpuinfo)" "$(cut -d' ' -f1-3 /proc/loadavg)"
}

# --- 1. 100,000 listeners over 6 nodes ----------------------------------------
run_listeners() {
    start_postgres
    start_nats
    local ports=() pids=() urls=() i
    for i in 1 2 3 4 5 6; do
        ports+=($((BASE_PORT + i)))
        start_hub "node$i" "${ports[-1]}" cluster
        pids+=("$HUB_PID")
        urls+=("$(url "${ports[-1]}")")
    done
    for i in 0 1 2 3 4 5; do wait_ready "${ports[i]}" "${pids[i]}"; done
    local per=$(((100000 + LSESSIONS - 1) / LSESSIONS)) name=listeners-100k
    [ "$LSESSIONS" = 3 ] || name=listeners-100k-s$LSESSIONS
    machine >"$OUT/$name-machine.json"
    # Joins are paced: every join on a non-owner is a request to the
    # session's owner, answered `unavailable` after 3 s (REQUEST_WAIT)
    # if the owner's queue is longer than that.
    say "$((per * LSESSIONS)) listeners in $LSESSIONS sessions of $per over 6 nodes; 1 writer per session, $LRATE ops/s in total; $CONNECT_RATE joins/s"
    "$LOAD_BIN" fanout -s "$LSESSIONS" -l "$per" -w 1 -r "$LRATE" --duration 30 --procs 6 --users 200 \
        --connect-rate "$CONNECT_RATE" --timeout 1800 \
        --hub "$(join_urls "${urls[@]}")" --node-pid "$(join_urls "${pids[@]}")" \
        --hub-pid "${pids[0]}" --json >"$OUT/$name.json"
    for i in 0 1 2 3 4 5; do
        printf '%s owned=%s frames_sent=%s gaps_filled=%s dropped=%s takeovers=%s\n' "node$((i + 1))" \
            "$(metric "${ports[i]}" cluster_sessions_owned)" "$(metric "${ports[i]}" hub_frames_sent_total)" \
            "$(metric "${ports[i]}" cluster_gaps_filled_total)" \
            "$(metric "${ports[i]}" cluster_messages_dropped_total)" \
            "$(metric "${ports[i]}" cluster_takeovers_total)"
    done >"$OUT/$name-metrics.txt"
    cat "$OUT/$name-metrics.txt" >&2
}

# --- 2. fan-out: 1 node against 3 nodes, alternating --------------------------
run_fanout() {
    start_postgres
    start_nats
    local n p single=$((BASE_PORT + 10)) c1=$((BASE_PORT + 11)) c2=$((BASE_PORT + 12)) c3=$((BASE_PORT + 13))
    local flags=(-s 10 -l 1000 -w "$FWRITERS" -r 1600 --duration 15 --users 200 --json) name=fanout
    [ "$FWRITERS" = 5 ] || name=fanout-w$FWRITERS
    machine >"$OUT/$name-machine.json"
    for ((n = 1; n <= PAIRS; n++)); do
        say "pair $n: A = one hub (no NATS)"
        start_hub single "$single" single
        p=$HUB_PID
        wait_ready "$single" "$p"
        "$LOAD_BIN" fanout "${flags[@]}" --hub "$(url "$single")" --hub-pid "$p" \
            >"$OUT/$name-$(printf %02d $((2 * n - 1)))-one-node.json"
        stop_hub "$p"
        say "pair $n: B = three nodes; node1 owns the sessions, writers on node2/node3"
        start_hub node1 "$c1" cluster; p1=$HUB_PID
        start_hub node2 "$c2" cluster; p2=$HUB_PID
        start_hub node3 "$c3" cluster; p3=$HUB_PID
        wait_ready "$c1" "$p1"; wait_ready "$c2" "$p2"; wait_ready "$c3" "$p3"
        "$LOAD_BIN" fanout "${flags[@]}" --hub "$(url "$c1"),$(url "$c2"),$(url "$c3")" \
            --writer-hub "$(url "$c2"),$(url "$c3")" --prime-owner "$(url "$c1")" \
            --hub-pid "$p1" --node-pid "$p1,$p2,$p3" \
            >"$OUT/$name-$(printf %02d $((2 * n)))-three-nodes.json"
        for port in "$c1" "$c2" "$c3"; do
            printf 'pair %s port %s owned=%s forwarded=%s received=%s published=%s events_in=%s gaps_filled=%s dropped=%s op_s_sum=%s op_count=%s commits=%s commit_batch_sum=%s\n' \
                "$n" "$port" "$(metric "$port" cluster_sessions_owned)" \
                "$(metric "$port" cluster_ops_forwarded_total)" "$(metric "$port" cluster_ops_received_total)" \
                "$(metric "$port" cluster_events_published_total)" "$(metric "$port" cluster_events_received_total)" \
                "$(metric "$port" cluster_gaps_filled_total)" "$(metric "$port" cluster_messages_dropped_total)" \
                "$(metric "$port" cluster_op_duration_seconds_sum)" "$(metric "$port" cluster_op_duration_seconds_count)" \
                "$(metric "$port" hub_commit_batch_size_count)" "$(metric "$port" hub_commit_batch_size_sum)"
        done >>"$OUT/$name-metrics.txt"
        stop_hub "$p1"; stop_hub "$p2"; stop_hub "$p3"
    done
}

# --- 3. kill -9 of the owner of 1,000 sessions ----------------------------------
run_failover() {
    start_postgres
    start_nats
    machine >"$OUT/failover-machine.json"
    local n c1=$((BASE_PORT + 21)) c2=$((BASE_PORT + 22)) c3=$((BASE_PORT + 23))
    local prime=(--prime-owner "$(url "$c1")") name=failover
    if [ "$PRIME" = 0 ]; then prime=(); name=failover-natural; fi
    for ((n = 1; n <= RUNS; n++)); do
        start_hub node1 "$c1" cluster; p1=$HUB_PID
        start_hub node2 "$c2" cluster; p2=$HUB_PID
        start_hub node3 "$c3" cluster; p3=$HUB_PID
        wait_ready "$c1" "$p1"; wait_ready "$c2" "$p2"; wait_ready "$c3" "$p3"
        say "$name run $n: SIGKILL node1 (pid $p1) 10 s into 30 s of 1,000 ops/s over 1,000 sessions"
        "$LOAD_BIN" failover -s 1000 -l 2 -r 1000 --duration 30 --kill-after 10 --drain 5 \
            --hub "$(url "$c1"),$(url "$c2"),$(url "$c3")" "${prime[@]}" \
            --kill-pid "$p1" --kill-url "$(url "$c1")" --database-url "$DB_URL" \
            --users 200 --json >"$OUT/$name-$(printf %02d "$n").json"
        wait "$p1" 2>/dev/null || true
        forget "$p1"
        stop_hub "$p2"; stop_hub "$p3"
    done
}

# --- 4. memory per idle listener on a non-owner node --------------------------
run_memory() {
    start_postgres
    start_nats
    machine >"$OUT/memory-machine.json"
    local n a=$((BASE_PORT + 31)) b=$((BASE_PORT + 32)) s=$((BASE_PORT + 33)) x=$((BASE_PORT + 34))
    local flags=(-n 15000 -s 100 --hold 10 --users 200 --json)
    for ((n = 1; n <= PAIRS; n++)); do
        say "pair $n: cluster: node A owns 100 sessions, 15,000 idle listeners join on node B"
        start_hub nodeA "$a" cluster; pa=$HUB_PID
        start_hub nodeB "$b" cluster; pb=$HUB_PID
        wait_ready "$a" "$pa"; wait_ready "$b" "$pb"
        sleep 5
        "$LOAD_BIN" connect "${flags[@]}" --setup-hub "$(url "$a")" --prime-owner "$(url "$a")" \
            --hub "$(url "$b")" --hub-pid "$pb" --node-pid "$pb,$pa" \
            >"$OUT/memory-$(printf %02d $((2 * n - 1)))-non-owner.json"
        printf 'pair %s nodeA owned=%s listeners=%s nodeB owned=%s listeners=%s\n' "$n" \
            "$(metric "$a" cluster_sessions_owned)" "$(metric "$a" hub_listeners)" \
            "$(metric "$b" cluster_sessions_owned)" "$(metric "$b" hub_listeners)" >>"$OUT/memory-metrics.txt"
        stop_hub "$pb"; stop_hub "$pa"
        say "pair $n: single hub: 15,000 idle listeners (setup through another hub)"
        start_hub single "$s" single; ps=$HUB_PID
        start_hub setup "$x" single; px=$HUB_PID
        wait_ready "$s" "$ps"; wait_ready "$x" "$px"
        sleep 5
        "$LOAD_BIN" connect "${flags[@]}" --setup-hub "$(url "$x")" \
            --hub "$(url "$s")" --hub-pid "$ps" --node-pid "$ps" \
            >"$OUT/memory-$(printf %02d $((2 * n)))-single.json"
        stop_hub "$ps"; stop_hub "$px"
    done
}

case $SCENARIO in
listeners) run_listeners ;;
fanout) run_fanout ;;
failover) run_failover ;;
memory) run_memory ;;
*) echo "unknown scenario $SCENARIO (listeners, fanout, failover, memory)" >&2; exit 2 ;;
esac
say "done: reports in $OUT"
