#!/usr/bin/env bash
# Join throughput on Tansu: events per CPU-second of the join process reading the
# keyed topics, events/s through the join next to Tansu's own consume ceiling on the
# same topics (one consumer), and replay speed after a SIGKILL and restart.
#   scripts/bench-join.sh [IMPRESSIONS] [RUNS]
set -euo pipefail
cd "$(dirname "$0")/.."
count="${1:-500000}"
runs="${2:-3}"
export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-$HOME/.cache/adjoin/target}"
cargo build --release -p adjoin >&2
cargo build --release -p adjoin-ingest --example consume_ceiling >&2
adjoin="$CARGO_TARGET_DIR/release/adjoin"
ceiling="$CARGO_TARGET_DIR/release/examples/consume_ceiling"
tansu="${TANSU_BIN:-${CARGO_HOME:-$HOME/.cargo}/bin/tansu}"
port=19096
ticks=$(getconf CLK_TCK)

# Sums a metric family (all series) from a metrics endpoint; 0 while it is not up.
metric() { (curl -s "$1/metrics" || true) | awk -v name="$2" '$1 ~ "^"name {sum += $2} END {print sum + 0}'; }
cpu_seconds() { awk -v ticks="$ticks" '{print ($14 + $15) / ticks}' "/proc/$1/stat"; }

for run in $(seq 1 "$runs"); do
    "$tansu" broker --listener-url tcp://127.0.0.1:$port --advertised-listener-url tcp://127.0.0.1:$port \
        --storage-engine memory://tansu/ >/tmp/bench-join-tansu.log 2>&1 &
    tansu_pid=$!
    sleep 2
    export ADJOIN__KAFKA__BROKERS=127.0.0.1:$port RUST_LOG=warn
    export ADJOIN__TOPICS__IMPRESSIONS=bj_imp_$run ADJOIN__TOPICS__CLICKS=bj_clk_$run
    export ADJOIN__INGEST__IMPRESSIONS_KEYED_TOPIC=bj_imp_keyed_$run ADJOIN__INGEST__CLICKS_KEYED_TOPIC=bj_clk_keyed_$run
    export ADJOIN__JOIN__OUTCOMES_TOPIC=bj_outcomes_$run
    summary=$("$adjoin" generate --start 2026-11-27T00:00:00Z --count "$count" --seed "$run")
    records=$(echo "$summary" | awk '{print $2}')
    echo "run $run: $summary" >&2

    # Ingest writes the keyed topics (with markers); the join is measured on them.
    ADJOIN__METRICS__LISTEN=127.0.0.1:19392 "$adjoin" ingest >/tmp/bench-join-ingest.log 2>&1 &
    ingest_pid=$!
    until [ "$(metric 127.0.0.1:19392 adjoin_ingest_records_total)" -ge "$records" ]; do sleep 0.2; done
    keyed=$( (curl -s 127.0.0.1:19392/metrics || true) | awk '/^adjoin_ingest_records_total/ && /result="keyed"/ {sum += $2} END {print sum + 0}')
    sleep 3 # a few more markers, then the partitions' idle markers
    kill -TERM "$ingest_pid"; wait "$ingest_pid" || true
    echo "run $run ceiling: $("$ceiling" 127.0.0.1:$port "$keyed" "$ADJOIN__INGEST__IMPRESSIONS_KEYED_TOPIC" "$ADJOIN__INGEST__CLICKS_KEYED_TOPIC")"

    export ADJOIN__METRICS__LISTEN=127.0.0.1:19393
    started=$(date +%s.%N)
    RUST_LOG=warn,adjoin_join=info "$adjoin" join >/tmp/bench-join.log 2>&1 &
    join_pid=$!
    until [ "$(metric 127.0.0.1:19393 adjoin_join_records_total)" -ge "$keyed" ]; do
        kill -0 "$join_pid" 2>/dev/null || { echo "join exited: $(tail -3 /tmp/bench-join.log)" >&2; exit 1; }
        sleep 0.05
    done
    finished=$(date +%s.%N)
    cpu=$(cpu_seconds "$join_pid")
    rss=$(awk '/VmHWM/ {print $2}' "/proc/$join_pid/status")
    read_records=$(metric 127.0.0.1:19393 adjoin_join_records_total)
    wall=$(echo "$finished - $started" | bc -l)
    printf 'run %s join: %s keyed records (%s read incl. markers), wall %.2fs (%.0f records/s incl. start-up), cpu %.2fs (%.0f records per CPU-second), peak RSS %s KB\n' \
        "$run" "$keyed" "$read_records" "$wall" "$(echo "$keyed / $wall" | bc -l)" "$cpu" "$(echo "$keyed / $cpu" | bc -l)" "$rss"

    # Replay: SIGKILL after the commits settle, start again, and time reading from
    # the committed offsets until the record count stops growing.
    sleep 3
    kill -KILL "$join_pid"; wait "$join_pid" 2>/dev/null || true
    started=$(date +%s.%N)
    RUST_LOG=warn,adjoin_join=info "$adjoin" join >/tmp/bench-join-replay.log 2>&1 &
    join_pid=$!
    last=-1; stable_since=$(date +%s.%N)
    while true; do
        now_count=$(metric 127.0.0.1:19393 adjoin_join_records_total)
        now=$(date +%s.%N)
        if [ "$now_count" != "$last" ]; then last=$now_count; stable_since=$now; fi
        if [ "$last" -gt 0 ] && [ "$(echo "$now - $stable_since > 3" | bc -l)" = 1 ]; then break; fi
        sleep 0.05
    done
    replay_wall=$(echo "$stable_since - $started" | bc -l)
    # From the first shard's first record: the group join after a SIGKILL waits for
    # the broker to drop the dead member, which is not replay work.
    first_read=$(sed 's/\x1b\[[0-9;]*m//g' /tmp/bench-join-replay.log | awk '/shard starts reading/ {print $1; exit}')
    replay_read=$(echo "$stable_since - $(date -d "$first_read" +%s.%N)" | bc -l)
    printf 'run %s replay: %s records re-read after SIGKILL in %.2fs from the first record read (%.0f records/s); %.2fs incl. start-up and group join\n' \
        "$run" "$last" "$replay_read" "$(echo "$last / $replay_read" | bc -l)" "$replay_wall"
    grep -h "starts reading" /tmp/bench-join.log /tmp/bench-join-replay.log | sed 's/\x1b\[[0-9;]*m//g' | awk '{print "  " $0}' | cut -c1-160 >&2
    kill -TERM "$join_pid"; wait "$join_pid" || true
    kill "$tansu_pid"; wait "$tansu_pid" 2>/dev/null || true
done
