#!/usr/bin/env python3
"""Checks a running Superset: logs in, finds the adjoin dashboard, and asks every
chart's data endpoint (GET /api/v1/chart/<id>/data/, which runs the chart's saved
query context) for its rows. Exits non-zero if a chart is missing, errors or
returns no rows.

    python3 check_charts.py [BASE_URL] [USER] [PASSWORD]
    (defaults: http://127.0.0.1:8088 admin admin; standard library only)
"""

import json
import sys

from superset_api import call as api_call, dashboard_charts, login

BASE = sys.argv[1].rstrip("/") if len(sys.argv) > 1 else "http://127.0.0.1:8088"
USER = sys.argv[2] if len(sys.argv) > 2 else "admin"
PASSWORD = sys.argv[3] if len(sys.argv) > 3 else "admin"
DASHBOARD = "adjoin"
EXPECTED_CHARTS = 21


def call(path, token=None, body=None):
    return api_call(BASE, path, token, body)


def main() -> int:
    token = login(BASE, USER, PASSWORD)
    if token is None:
        return 1

    charts = dashboard_charts(BASE, token, DASHBOARD)
    if charts is None:
        return 1
    failures = 0
    for chart in charts:
        status, data = call(f"/api/v1/chart/{chart['id']}/data/", token)
        name = f"{chart['id']:3d} {chart['form_data']['viz_type']:24s} {chart['slice_name']}"
        if status != 200:
            failures += 1
            print(f"FAIL {name}: HTTP {status} {json.dumps(data)[:300]}")
            continue
        result = data["result"][0]
        rows = result.get("rowcount", 0)
        if result.get("error") or rows == 0:
            failures += 1
            print(f"FAIL {name}: {rows} rows, error {result.get('error')}")
            continue
        # A big number over no rows still returns one row, of NULL.
        if all(v is None for row in result["data"] for v in row.values()):
            failures += 1
            print(f"FAIL {name}: {rows} rows, all NULL")
            continue
        first = result["data"][0] if result.get("data") else {}
        print(f"ok   {name}: {rows} rows; first {json.dumps(first, default=str)[:110]}")
    if len(charts) != EXPECTED_CHARTS:
        failures += 1
        print(f"FAIL expected {EXPECTED_CHARTS} charts on the dashboard, found {len(charts)}")
    print(f"{len(charts) - failures} passed, {failures} failed")
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
