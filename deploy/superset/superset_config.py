"""Superset configuration for the adjoin dashboards.

Loaded by Superset through SUPERSET_CONFIG_PATH (provision.sh sets it to this file).
Everything that differs between a laptop and a server comes from the environment:

  SUPERSET_SECRET_KEY        signs sessions and encrypts the stored database
                             passwords. Required, unless SUPERSET_DEV=1. Keep it
                             stable: with another key Superset can no longer decrypt
                             the adjoin connection it stored.
  SUPERSET_DEV=1             local development: allows the built-in insecure
                             SECRET_KEY (and, in provision.sh, admin/admin).
  SUPERSET_METADATA_DB_URI   Superset's own metadata database (users, charts,
                             dashboards), not the adjoin data. Default: a SQLite
                             file in SUPERSET_HOME (deploy/superset/.home when
                             provision.sh runs, ~/.superset otherwise).
  SUPERSET_COOKIE_SECURE=1   send the session cookie over HTTPS only (behind TLS).
  TALISMAN_ENABLED=0         turn off the security headers (on by default).
"""

import os
import sys


def _flag(name: str) -> bool:
    return os.environ.get(name, "").strip().lower() in {"1", "true", "yes", "on"}


DEV_MODE = _flag("SUPERSET_DEV")

# --- Secret key -------------------------------------------------------------------

_DEV_SECRET_KEY = "adjoin-local-development-only-not-a-secret"  # noqa: S105

SECRET_KEY = os.environ.get("SUPERSET_SECRET_KEY", "").strip()
if not SECRET_KEY:
    if not DEV_MODE:
        # Superset would otherwise start with its public placeholder key.
        sys.stderr.write(
            "superset_config.py: SUPERSET_SECRET_KEY is not set.\n"
            "  Production: export SUPERSET_SECRET_KEY=\"$(openssl rand -base64 42)\" and keep it.\n"
            "  Local development only: export SUPERSET_DEV=1 to use an insecure built-in key.\n"
        )
        raise SystemExit(2)
    SECRET_KEY = _DEV_SECRET_KEY

# --- Metadata database --------------------------------------------------------------

_home = os.environ.get("SUPERSET_HOME") or os.path.expanduser("~/.superset")
SQLALCHEMY_DATABASE_URI = os.environ.get("SUPERSET_METADATA_DB_URI") or (
    "sqlite:///" + os.path.join(_home, "superset.db") + "?check_same_thread=false"
)
# load-examples is never run; point its target at a file nobody reads rather than
# at the metadata database.
SQLALCHEMY_EXAMPLES_URI = (
    "sqlite:///" + os.path.join(_home, "examples-unused.db") + "?check_same_thread=false"
)

# --- Features -----------------------------------------------------------------------
# Superset 6 imports and exports the versioned YAML/ZIP format without any flag; the
# ones below only shape the UI. Alerts, reports and thumbnails need Celery: off.
FEATURE_FLAGS = {
    "DASHBOARD_RBAC": False,
    "TAGGING_SYSTEM": False,
    "ALERT_REPORTS": False,
    "THUMBNAILS": False,
    "ENABLE_TEMPLATE_PROCESSING": False,
}

# --- Caches -------------------------------------------------------------------------
# No Redis: metadata cached per process, query results not at all (the dashboards are
# real time and read small rollups through their indexes). Filter and explore state
# stay in the metadata database (Superset's default, and required).
CACHE_CONFIG = {
    "CACHE_TYPE": "SimpleCache",
    "CACHE_DEFAULT_TIMEOUT": 300,
    "CACHE_KEY_PREFIX": "adjoin_superset_",
}
DATA_CACHE_CONFIG = {"CACHE_TYPE": "NullCache"}

# --- Web security -------------------------------------------------------------------
# CSRF stays on. Talisman stays on with Superset's default CSP, which does not force
# HTTPS, so http://localhost:8088 works; set SUPERSET_COOKIE_SECURE=1 behind TLS.
WTF_CSRF_ENABLED = True
TALISMAN_ENABLED = os.environ.get("TALISMAN_ENABLED", "true").strip().lower() not in {
    "0",
    "false",
    "no",
    "off",
}
SESSION_COOKIE_SECURE = _flag("SUPERSET_COOKIE_SECURE")
SESSION_COOKIE_SAMESITE = "Lax"
SESSION_COOKIE_HTTPONLY = True

# Row limits: a week of one-minute points is about 10k rows per series.
ROW_LIMIT = 50000
SQL_MAX_ROW = 100000
