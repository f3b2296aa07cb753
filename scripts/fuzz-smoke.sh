#!/usr/bin/env bash
# Builds the decoder fuzz targets and runs each briefly (FUZZ_SECONDS, default 20).
# cargo-fuzz needs nightly-only flags; RUSTC_BOOTSTRAP lets the stable toolchain
# accept them, since this machine has no nightly.
set -euo pipefail
cd "$(dirname "$0")/../shared/fuzz"
seconds="${FUZZ_SECONDS:-20}"
export RUSTC_BOOTSTRAP=1
targets=$(cargo fuzz list)
for target in $targets; do
    echo "[fuzz] building $target" >&2
    cargo fuzz build "$target"
done
for target in $targets; do
    echo "[fuzz] running $target for ${seconds}s" >&2
    mkdir -p "corpus/$target"
    # libFuzzer reports every new code path; the last lines carry the verdict and stats.
    cargo fuzz run "$target" "corpus/$target" seeds -- -max_total_time="$seconds" -max_len=20000 \
        -print_final_stats=1 2>&1 | tail -n 25
done
