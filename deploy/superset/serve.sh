#!/usr/bin/env bash
# Starts the Superset web server that provision.sh set up, with the same settings
# (SUPERSET_VENV, SUPERSET_HOME, SUPERSET_CONFIG_PATH, SUPERSET_SECRET_KEY or
# SUPERSET_DEV=1). Listens on 127.0.0.1:${SUPERSET_PORT:-8088}.
#
#   deploy/superset/serve.sh            # Flask's threaded server: local use
#   SUPERSET_GUNICORN=1 deploy/superset/serve.sh
#                                       # gunicorn, 2 workers (~630 MB): a server
set -euo pipefail
HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
VENV=${SUPERSET_VENV:-$HERE/.venv}
export SUPERSET_HOME=${SUPERSET_HOME:-$HERE/.home}
export SUPERSET_CONFIG_PATH=${SUPERSET_CONFIG_PATH:-$HERE/superset_config.py}
export FLASK_APP=superset
export PYTHONWARNINGS=${PYTHONWARNINGS:-ignore}
HOST=${SUPERSET_BIND:-127.0.0.1}
PORT=${SUPERSET_PORT:-8088}
[[ -x "$VENV/bin/superset" ]] || { echo "serve.sh: no Superset in $VENV: run provision.sh first" >&2; exit 1; }
case "${SUPERSET_GUNICORN:-}" in
    1|true|yes|on)
        exec "$VENV/bin/gunicorn" --bind "$HOST:$PORT" --workers "${SUPERSET_WORKERS:-2}" \
            --worker-class gthread --threads 4 --timeout 120 --limit-request-line 0 \
            --limit-request-field_size 0 "superset.app:create_app()" ;;
    *)
        exec "$VENV/bin/superset" run --host "$HOST" --port "$PORT" --with-threads ;;
esac
