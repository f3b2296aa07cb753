#!/usr/bin/env bash
# The deploy checks: installs their tools if needed (install.sh, idempotent), then
# checks docker-compose.yml (check_compose.py) and deploy/k8s (check_k8s.py) against
# Docker Compose, the Kubernetes schemas and the adjoin binary.
#
#   ADJOIN_BIN=~/.cache/adjoin/target/debug/adjoin deploy/tools/check.sh
#
# ADJOIN_BIN defaults to $CARGO_TARGET_DIR (or ~/.cache/adjoin/target)/debug/adjoin.
# Ends with one line `deploy: N passed, N failed`; exits 1 if anything failed.
set -uo pipefail
HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)

TOOLS_DIR=$("$HERE/install.sh") || { echo "deploy/tools/install.sh failed" >&2; exit 1; }
export DEPLOY_TOOLS_DIR=$TOOLS_DIR
PYTHON=$TOOLS_DIR/venv/bin/python

passed=0 failed=0 status=0
for check in check_compose.py check_k8s.py; do
    echo "=== $check"
    output=$("$PYTHON" "$HERE/$check" 2>&1) || status=1
    printf '%s\n' "$output"
    # Each check ends with `NAME: N passed, N failed`.
    if summary=$(grep -E '^[a-z0-9_]+: [0-9]+ passed, [0-9]+ failed$' <<<"$output" | tail -n 1); then
        read -r _ p _ f _ <<<"$summary"
        passed=$((passed + p)) failed=$((failed + f))
    else
        echo "$check ended without its summary line" >&2
        failed=$((failed + 1)) status=1
    fi
done
echo "deploy: $passed passed, $failed failed"
exit "$status"
