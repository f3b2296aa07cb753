#!/usr/bin/env bash
# The test command: brings up the test stack, then runs every test in the workspace
# (unit, property, integration against PostgreSQL and the mock cluster, and system
# tests against a Tansu broker process). Extra arguments go to `cargo test`.
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/test-stack.sh up
cargo test --workspace --locked "$@"
