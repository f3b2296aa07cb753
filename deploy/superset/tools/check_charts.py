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
import urllib.error
import urllib.request

BASE = sys.argv[1].rstrip("/") if len(sys.argv) > 1 else "http://127.0.0.1:8088"
USER = sys.argv[2] if len(sys.argv) > 2 else "admin"
PASSWORD = sys.argv[3] if len(sys.argv) > 3 else "admin"
DASHBOARD = "adjoin"
EXPECTED_CHARTS = 21


def call(path, token=None, body=None):
    headers = {"Accept": "application/json"}
    data = None
    if body is not None:
        data = json.dumps(body).encode()
        headers["Content-Type"] = "application/json"
    if token:
        headers["Authorization"] = f"Bearer {token}"
    req = urllib.request.Request(BASE + path, data=data, headers=headers)
    try:
        with urllib.request.urlopen(req, timeout=120) as resp:
            return resp.status, json.load(resp)
    except urllib.error.HTTPError as ex:
        try:
            return ex.code, json.load(ex)
        except ValueError:
            return ex.code, {"message": ex.reason}


def main() -> int:
    status, login = call("/api/v1/security/login", body={
        "username": USER, "password": PASSWORD, "provider": "db", "refresh": False})
    if status != 200:
        print(f"login failed: HTTP {status} {login}")
        return 1
    token = login["access_token"]

    status, charts = call(f"/api/v1/dashboard/{DASHBOARD}/charts", token)
    if status != 200:
        print(f"dashboard {DASHBOARD!r}: HTTP {status} {charts}")
        return 1
    charts = sorted(charts["result"], key=lambda c: c["id"])
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
