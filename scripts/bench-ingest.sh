#!/usr/bin/env bash
# Ingest throughput on Tansu: records per CPU-second of the ingest process, records/s
# through ingest, and Tansu's own consume ceiling on the same records (one consumer).
#   scripts/bench-ingest.sh [IMPRESSIONS] [RUNS]
set -euo pipefail
cd "$(dirname "$0")/.."
count="${1:-1000000}"
runs="${2:-3}"
export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-$HOME/.cache/adjoin/target}"
cargo build --release -p adjoin >&2
cargo build --release -p adjoin-ingest --example consume_ceiling >&2
adjoin="$CARGO_TARGET_DIR/release/adjoin"
ceiling="$CARGO_TARGET_DIR/release/examples/consume_ceiling"
tansu="${TANSU_BIN:-${CARGO_HOME:-$HOME/.cargo}/bin/tansu}"
port=19095
ticks=$(getconf CLK_TCK)

for run in $(seq 1 "$runs"); do
    "$tansu" broker --listener-url tcp://127.0.0.1:$port --advertised-listener-url tcp://127.0.0.1:$port \
        --storage-engine memory://tansu/ >/tmp/bench-tansu.log 2>&1 &
    tansu_pid=$!
    sleep 2
    export ADJOIN__KAFKA__BROKERS=127.0.0.1:$port ADJOIN__TOPICS__IMPRESSIONS=bench_imp ADJOIN__TOPICS__CLICKS=bench_clk
    export ADJOIN__METRICS__LISTEN=127.0.0.1:19391 RUST_LOG=warn
    summary=$("$adjoin" generate --start 2026-11-27T00:00:00Z --count "$count" --seed "$run")
    records=$(echo "$summary" | awk '{print $2}')
    echo "run $run: $summary" >&2
    echo "run $run ceiling: $("$ceiling" 127.0.0.1:$port "$records" bench_imp bench_clk)"
    started=$(date +%s.%N)
    "$adjoin" ingest >/tmp/bench-ingest.log 2>&1 &
    ingest_pid=$!
    for _ in $(seq 1 12000); do
        kill -0 "$ingest_pid" 2>/dev/null || { echo "ingest exited: $(tail -3 /tmp/bench-ingest.log)" >&2; exit 1; }
        # Before the metrics server is up, curl fails: that counts as nothing done yet.
        done_records=$( (curl -s 127.0.0.1:19391/metrics || true) | awk '/^adjoin_ingest_records_total/ {sum += $2} END {print sum + 0}')
        [ "$done_records" -ge "$records" ] && break
        sleep 0.05
    done
    finished=$(date +%s.%N)
    read -r utime stime < <(awk '{print $14, $15}' "/proc/$ingest_pid/stat")
    cpu=$(echo "($utime + $stime) / $ticks" | bc -l)
    wall=$(echo "$finished - $started" | bc -l)
    rss=$(awk '/VmHWM/ {print $2}' "/proc/$ingest_pid/status")
    printf 'run %s ingest: %s records, wall %.2fs (%.0f records/s incl. start-up), cpu %.2fs (%.0f records per CPU-second), peak RSS %s KB\n' \
        "$run" "$records" "$wall" "$(echo "$records / $wall" | bc -l)" "$cpu" "$(echo "$records / $cpu" | bc -l)" "$rss"
    kill -TERM "$ingest_pid"; wait "$ingest_pid" || true
    kill "$tansu_pid"; wait "$tansu_pid" 2>/dev/null || true
done
