#!/usr/bin/env bash
# The test command: brings up the test stack, then runs every test in the workspace
# (unit, property, integration against PostgreSQL and the mock cluster, and system
# tests against a Tansu broker process), then the sink's SQL checks and the
# dashboards' checks. Extra arguments go to `cargo test`.
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/test-stack.sh up
cargo test --workspace --locked "$@"
# The sink's SQL on its own, against PostgreSQL and SQLite (psql and python3).
services/sink/sql/check.sh
# The Grafana dashboard against the documented metrics, and the Prometheus config.
python3 deploy/grafana/check_dashboard.py
# docker-compose.yml and deploy/k8s against Docker Compose, the Kubernetes schemas
# and this adjoin binary (every ADJOIN__ variable, port and topic).
ADJOIN_BIN="${CARGO_TARGET_DIR:-target}/debug/adjoin" deploy/tools/check.sh
# The Superset dashboard end to end: the demo fills a scratch PostgreSQL database
# through the real pipeline (the adjoin binary cargo test built), Superset is
# provisioned from nothing, every chart's data is compared with the facts and every
# chart must render in headless Chromium.
. scripts/cache-paths.sh
ADJOIN_BIN="${CARGO_TARGET_DIR:-target}/debug/adjoin" CHECK_REQUIRE_RENDER=1 \
    CHECK_SCREENSHOT="${CARGO_TARGET_DIR:-target}/superset-dashboard.png" \
    deploy/superset/tools/check.sh
