#!/usr/bin/env python3
"""Checks that the dashboard's headline numbers equal SQL over the fact tables.

Logs in to a running Superset, asks the big-number charts for their values (the
charts' saved queries over the rollup views, last 24 hours) and computes the same
numbers from `impressions` and `clicks` directly. A rollup that drifted from the
facts, a chart on the wrong column or a bad metric expression shows up here.

    python check_totals.py BASE_URL DATABASE_URL [USER] [PASSWORD]

Run with the Superset venv's python (it has psycopg2). Exits 1 on any difference.
"""

import sys

import psycopg2

from superset_api import call as api_call, login

BASE = sys.argv[1].rstrip("/")
DATABASE_URL = sys.argv[2]
USER = sys.argv[3] if len(sys.argv) > 3 else "admin"
PASSWORD = sys.argv[4] if len(sys.argv) > 4 else "admin"

# Chart name -> SQL over the facts, in the charts' window (the last 24 hours of the
# impression's minute, as the rollups key matched clicks).
WINDOW = "date_trunc('minute', {column}) >= date_trunc('minute', now() - interval '24 hours')"
IMPRESSIONS = f"SELECT count(*) FROM impressions WHERE {WINDOW.format(column='event_time')}"
MATCHED = ("SELECT count(*) FROM clicks WHERE outcome = 'matched' AND "
           + WINDOW.format(column="impression_time"))
# Chart (slice name in tools/gen_bundle.py) -> the same number from the facts.
EXPECTED = {
    "Impressions": IMPRESSIONS,
    "Clicks": MATCHED,
    "Spend": f"SELECT (SELECT coalesce(sum(impression_cost), 0) FROM impressions "
             f"WHERE {WINDOW.format(column='event_time')}) + (SELECT coalesce(sum(click_cost), 0) "
             f"FROM clicks WHERE outcome = 'matched' AND {WINDOW.format(column='impression_time')})",
    "CTR": f"SELECT ({MATCHED})::float8 / nullif(({IMPRESSIONS}), 0)",
}


def call(path, token=None, body=None):
    return api_call(BASE, path, token, body)


def main() -> int:
    token = login(BASE, USER, PASSWORD)
    if token is None:
        return 1
    status, charts = call("/api/v1/dashboard/adjoin/charts", token)
    if status != 200:
        print(f"dashboard: HTTP {status} {charts}")
        return 1
    ids = {chart["slice_name"]: chart["id"] for chart in charts["result"]}
    connection = psycopg2.connect(DATABASE_URL.replace("postgresql+psycopg2://", "postgresql://"))
    failures = 0
    for name, sql in EXPECTED.items():
        if name not in ids:
            failures += 1
            print(f"FAIL {name}: not on the dashboard")
            continue
        status, data = call(f"/api/v1/chart/{ids[name]}/data/", token)
        if status != 200:
            failures += 1
            print(f"FAIL {name}: HTTP {status}")
            continue
        row = data["result"][0]["data"][0]
        shown = float(next(iter(row.values())) or 0)
        with connection.cursor() as cursor:
            cursor.execute(sql)
            expected = float(cursor.fetchone()[0] or 0)
        if expected == 0:
            failures += 1
            print(f"FAIL {name}: the facts hold nothing in the window; fill the database first")
        elif abs(shown - expected) > 1e-9 * abs(expected):
            failures += 1
            print(f"FAIL {name}: chart {shown!r}, SQL over the facts {expected!r}")
        else:
            print(f"ok   {name}: {shown!r}, as SQL over the facts")
    connection.close()
    checked = len(EXPECTED)
    print(f"totals: {checked - failures} equal, {failures} differ")
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
