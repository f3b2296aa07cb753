#!/usr/bin/env python3
"""Checks every chart on the dashboard against an oracle computed from the facts.

Logs in to a running Superset, asks each chart's data endpoint for what the chart
shows (its saved query over the rollup views), and computes the same numbers here,
in plain Python, from the fact tables `impressions` and `clicks` (and, for what the
sink skipped, which has no facts, from the `sink_health_minute` table). The oracle
is read off the chart's own form data (dataset, metrics, group-by, filters, sort,
row limit), so a chart added to the bundle is checked too, and a chart using
something the oracle does not know fails instead of passing unchecked.

A rollup that drifted from the facts, a chart on the wrong column, a metric
expression that averages ratios, a filter that drops rows: each shows up here as a
difference, with the chart, the row and both values.

    python check_totals.py BASE_URL DATABASE_URL [USER] [PASSWORD]

Run with the Superset venv's python (it has psycopg2). Exits 1 on any difference.
"""

import datetime as dt
import math
import re
import sys
from collections import defaultdict

import psycopg2

from superset_api import call as api_call, dashboard_charts, login

BASE = sys.argv[1].rstrip("/")
DATABASE_URL = sys.argv[2]
USER = sys.argv[3] if len(sys.argv) > 3 else "admin"
PASSWORD = sys.argv[4] if len(sys.argv) > 4 else "admin"

DIMENSIONS = ("ad_category", "device", "os", "browser", "location")
# The charts' own time range (tools/gen_bundle.py TIME_RANGE): the last 24 hours.
WINDOW = dt.timedelta(hours=24)


def minute_of(t: dt.datetime) -> dt.datetime:
    return t.replace(second=0, microsecond=0)


def ratio(num, den):
    return None if not den else float(num) / float(den)


# Metric name (tools/gen_bundle.py) -> its value from a group's summed measures.
# Written independently of the SQL expressions on purpose: ratios of sums.
METRICS = {
    "impressions_sum": lambda s: s["impressions"],
    "clicks_sum": lambda s: s["clicks"],
    "impression_cost_sum": lambda s: s["impression_cost"],
    "click_cost_sum": lambda s: s["click_cost"],
    "spend": lambda s: s["impression_cost"] + s["click_cost"],
    "ctr_agg": lambda s: ratio(s["clicks"], s["impressions"]),
    "cpc_agg": lambda s: ratio(s["click_cost"], s["clicks"]),
    "cpi_agg": lambda s: ratio(s["impression_cost"], s["impressions"]),
    "matched_clicks_sum": lambda s: s["matched"],
    "no_impression_clicks_sum": lambda s: s["no_impression"],
    "late_clicks_sum": lambda s: s["late"],
    "unmatched_clicks": lambda s: s["no_impression"] + s["late"],
    "unmatched_click_cost_sum": lambda s: s["unmatched_cost"],
    "duplicate_impressions_sum": lambda s: s["duplicate_impressions"],
    "duplicate_clicks_sum": lambda s: s["duplicate_clicks"],
    "duplicates": lambda s: s["duplicate_impressions"] + s["duplicate_clicks"],
    "dead_letter_impressions_sum": lambda s: s["dead_letter_impressions"],
    "dead_letter_clicks_sum": lambda s: s["dead_letter_clicks"],
    "dead_letters": lambda s: s["dead_letter_impressions"] + s["dead_letter_clicks"],
    "match_rate_agg": lambda s: ratio(s["matched"], s["matched"] + s["no_impression"] + s["late"]),
}


def load_view_rows(connection) -> dict:
    """The rows each dataset would hold, computed from the facts: dataset name ->
    {row key: {measure: sum}}, keys as tuples of (column, value) pairs."""
    views = {name: defaultdict(lambda: defaultdict(int)) for name in
             ("kpis_minute", "ad_kpis_minute", "dimension_kpis_minute", "data_health_minute")}

    def add(row, measures):
        for name, value in measures.items():
            row[name] += value

    def add_kpis(minute, ad_id, category, attrs, measures):
        """Into the whole-pipeline, per-ad and per-attribute views of `minute`."""
        add(views["kpis_minute"][(("minute", minute),)], measures)
        add(views["ad_kpis_minute"][(("minute", minute), ("ad_id", ad_id),
                                     ("ad_category", category))], measures)
        for dimension, value in zip(DIMENSIONS, (category, *attrs)):
            add(views["dimension_kpis_minute"][(("minute", minute), ("dimension", dimension),
                                                ("value", value))], measures)

    with connection.cursor() as cursor:
        cursor.execute("SELECT event_time, impression_cost, ad_id, ad_category, device, os, "
                       "browser, location FROM impressions")
        for t, cost, ad_id, category, *attrs in cursor:
            add_kpis(minute_of(t), ad_id, category, attrs,
                     {"impressions": 1, "impression_cost": cost})
        cursor.execute("SELECT outcome, click_cost, event_time, impression_time, ad_id, "
                       "ad_category, device, os, browser, location FROM clicks")
        for outcome, cost, t, impression_time, ad_id, category, *attrs in cursor:
            if outcome != "matched":
                # Unmatched clicks count at their own minute, in data health only.
                add(views["data_health_minute"][(("minute", minute_of(t)),)],
                    {outcome: 1, "unmatched_cost": cost})
                continue
            # A matched click counts at its impression's minute, under the
            # impression's attributes (copied onto the click row).
            minute = minute_of(impression_time)
            add(views["data_health_minute"][(("minute", minute),)], {"matched": 1})
            add_kpis(minute, ad_id, category, attrs, {"clicks": 1, "click_cost": cost})
        cursor.execute("SELECT minute, duplicate_impressions, duplicate_clicks, "
                       "dead_letter_impressions, dead_letter_clicks FROM sink_health_minute")
        for minute, *counts in cursor:
            add(views["data_health_minute"][(("minute", minute),)], dict(zip(
                ("duplicate_impressions", "duplicate_clicks", "dead_letter_impressions",
                 "dead_letter_clicks"), counts)))
    return views


class Unsupported(Exception):
    """The chart uses something the oracle cannot compute: a failure, not a skip."""


HAVING = re.compile(r"^\(?\s*SUM\((\w+)\)\s*(>=|<=|>|<|=)\s*(\d+(?:\.\d+)?)\s*\)?$", re.I)
COMPARE = {">=": lambda a, b: a >= b, "<=": lambda a, b: a <= b, ">": lambda a, b: a > b,
           "<": lambda a, b: a < b, "=": lambda a, b: a == b}


def row_filter(form_data, now):
    """WHERE: the chart's time range and simple filters; HAVING: SUM(column) op N."""
    where, having = [], []
    for f in form_data.get("adhoc_filters", []):
        if f["expressionType"] == "SIMPLE" and f["operator"] == "TEMPORAL_RANGE":
            if f["comparator"] != 'DATEADD(DATETIME("now"), -24, hour) : now':
                raise Unsupported(f"time range {f['comparator']!r}")
            where.append(lambda r: now - WINDOW <= r["minute"] < now)
        elif f["expressionType"] == "SIMPLE" and f["operator"] == "==":
            where.append(lambda r, c=f["subject"], v=f["comparator"]: r[c] == v)
        elif f["expressionType"] == "SIMPLE" and f["operator"] == "IN":
            where.append(lambda r, c=f["subject"], v=tuple(f["comparator"]): r[c] in v)
        elif f["expressionType"] == "SQL" and f["clause"] == "HAVING":
            match = HAVING.match(f["sqlExpression"])
            if not match:
                raise Unsupported(f"HAVING {f['sqlExpression']!r}")
            column, op, bound = match.groups()
            having.append(lambda s, c=column, o=op, b=float(bound): COMPARE[o](float(s[c]), b))
        else:
            raise Unsupported(f"filter {f}")
    return where, having


def expected_groups(view_rows, form_data, columns, now):
    """Group the dataset's rows by `columns` after the WHERE filters, sum the
    measures, keep the groups passing HAVING: {group values: sums}."""
    where, having = row_filter(form_data, now)
    groups = defaultdict(lambda: defaultdict(int))
    for key, measures in view_rows.items():
        row = dict(key)
        if all(w(row) for w in where):
            group = groups[tuple(row[c] for c in columns)]
            for name, value in measures.items():
                group[name] += value
    return {g: s for g, s in groups.items() if all(h(s) for h in having)}


def metric_value(name, sums):
    if name not in METRICS:
        raise Unsupported(f"metric {name!r}")
    return METRICS[name](defaultdict(int, sums))


def same(shown, expected) -> bool:
    if expected is None or shown is None:
        return expected is None and (shown is None or (isinstance(shown, float) and math.isnan(shown)))
    return math.isclose(float(shown), float(expected), rel_tol=1e-9, abs_tol=1e-9)


def metric_names(form_data):
    names = form_data.get("metrics") or [form_data["metric"]]
    for name in names:
        if not isinstance(name, str):
            raise Unsupported(f"ad-hoc metric {name}")
    return names


def check_chart(chart, result, views, now) -> list[str]:
    """Differences between what the chart returned and the oracle, as messages."""
    form_data = chart["form_data"]
    viz = form_data["viz_type"]
    dataset = chart["dataset"]
    if dataset not in views:
        raise Unsupported(f"dataset {dataset!r}")
    rows = views[dataset]
    metrics = metric_names(form_data)
    data = result["data"]
    problems = []

    def compare(where, name, shown, expected):
        if not same(shown, expected):
            problems.append(f"{where} {name}: chart {shown!r}, facts {expected!r}")

    if viz == "big_number_total":
        sums = expected_groups(rows, form_data, [], now).get((), {})
        compare("total", metrics[0], data[0].get(metrics[0]), metric_value(metrics[0], sums))
    elif viz in ("echarts_timeseries_line", "echarts_timeseries_bar"):
        x, groupby = form_data["x_axis"], form_data.get("groupby", [])
        if form_data.get("time_grain_sqla") != "PT1M" or len(groupby) > 1 or (groupby and len(metrics) > 1):
            raise Unsupported(f"time series shape {form_data.get('time_grain_sqla')} {groupby} {metrics}")
        groups = expected_groups(rows, form_data, [x, *groupby], now)
        # After the pivot: one row per minute (epoch ms), one column per metric, or
        # per group-by value when one metric is split by a column.
        expected = defaultdict(dict)
        for (minute, *by), sums in groups.items():
            series = by[0] if groupby else None
            for name in metrics:
                expected[int(minute.timestamp() * 1000)][series if groupby else name] = metric_value(name, sums)
        series_names = sorted({s for cells in expected.values() for s in cells})
        shown = {int(row[x]): row for row in data}
        if set(shown) != set(expected):
            problems.append(f"minutes: chart {len(shown)}, facts {len(expected)} "
                            f"(only in chart {sorted(set(shown) - set(expected))[:3]}, "
                            f"only in facts {sorted(set(expected) - set(shown))[:3]})")
        for minute in sorted(set(shown) & set(expected)):
            stamp = dt.datetime.fromtimestamp(minute / 1000, dt.timezone.utc).strftime("%H:%M")
            for series in series_names:
                compare(stamp, series, shown[minute].get(series), expected[minute].get(series))
    elif viz in ("table", "pie"):
        groupby = form_data["groupby"]
        sort = form_data.get("timeseries_limit_metric") or metrics[0]
        descending = form_data.get("order_desc", True) if viz == "table" else True
        limit = form_data["row_limit"]
        groups = expected_groups(rows, form_data, groupby, now)
        keyed = {g: {name: metric_value(name, s) for name in {*metrics, sort}}
                 for g, s in groups.items()}
        # The top rows by the sort metric; ties may come in any order, so the
        # sorted values are compared, and each shown row with its own group.
        ranked = sorted((v[sort] for v in keyed.values() if v[sort] is not None), reverse=descending)
        if len(data) != min(limit, len(keyed)):
            problems.append(f"rows: chart {len(data)}, facts {min(limit, len(keyed))} "
                            f"({len(keyed)} groups, limit {limit})")
        shown_sorted = [row.get(sort) for row in data]
        if not all(same(a, b) for a, b in zip(shown_sorted, ranked[:limit])):
            problems.append(f"top {sort}: chart {shown_sorted[:5]}..., facts {ranked[:5]}...")
        for row in data:
            group = tuple(row.get(c) for c in groupby)
            if group not in keyed:
                problems.append(f"{group}: in the chart, not in the facts")
                continue
            for name in metrics:
                compare(str(group), name, row.get(name), keyed[group][name])
    else:
        raise Unsupported(f"viz type {viz!r}")
    return problems


def call(path, token=None, body=None):
    return api_call(BASE, path, token, body)


def main() -> int:
    token = login(BASE, USER, PASSWORD)
    if token is None:
        return 1
    charts = dashboard_charts(BASE, token, "adjoin")
    if charts is None:
        return 1
    connection = psycopg2.connect(DATABASE_URL.replace("postgresql+psycopg2://", "postgresql://"))
    views = load_view_rows(connection)
    connection.close()
    impressions = sum(m["impressions"] for m in views["kpis_minute"].values())
    if not impressions:
        print("FAIL the fact tables hold no impressions; fill the database first")
        return 1
    datasets = {}
    failures = 0
    for chart in charts:
        name = chart["slice_name"]
        # The dataset's table name, from the chart's datasource ("<id>__table").
        datasource_id = chart["form_data"]["datasource"].split("__")[0]
        if datasource_id not in datasets:
            status, ds = call(f"/api/v1/dataset/{datasource_id}", token)
            datasets[datasource_id] = ds["result"]["table_name"] if status == 200 else None
        chart["dataset"] = datasets[datasource_id]
        now = dt.datetime.now(dt.timezone.utc)
        status, data = call(f"/api/v1/chart/{chart['id']}/data/", token)
        if status != 200:
            failures += 1
            print(f"FAIL {name}: data HTTP {status}")
            continue
        try:
            problems = check_chart(chart, data["result"][0], views, now)
        except Unsupported as unsupported:
            failures += 1
            print(f"FAIL {name}: the oracle cannot check {unsupported}")
            continue
        if problems:
            failures += 1
            print(f"FAIL {name}: {len(problems)} differences")
            for problem in problems[:10]:
                print(f"       {problem}")
        else:
            print(f"ok   {name}: {len(data['result'][0]['data'])} rows equal the facts")
    print(f"totals: {len(charts) - failures} charts equal the facts, {failures} differ")
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
