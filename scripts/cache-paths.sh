# Where the test stack keeps what it installs outside the clone, so fresh clones
# (CI) reuse it. Sourced by scripts/test-stack.sh and scripts/test.sh.
export SUPERSET_VENV="${SUPERSET_VENV:-$HOME/.cache/adjoin/superset-venv}"
export PLAYWRIGHT_NODE_MODULES="${PLAYWRIGHT_NODE_MODULES:-$HOME/.cache/adjoin/playwright/node_modules}"
