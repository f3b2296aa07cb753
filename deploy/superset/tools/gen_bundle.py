#!/usr/bin/env python3
"""Writes deploy/superset/bundle/ (the Superset 6 dashboard export) from the
definitions below.

The YAML files in bundle/ are what provision.sh imports and what is reviewed; this
script is how they are kept consistent (UUIDs, metric names, layout, and the saved
query context of every chart). Edit here, run, commit both:

    python3 deploy/superset/tools/gen_bundle.py          # needs PyYAML

Every UUID is fixed: re-importing the bundle updates the same objects instead of
creating new ones. Never change one that has been released.

Each chart carries a `query_context`: the query the Superset 6.1 frontend builds
from the chart's params (buildQuery of its plugin). The dashboard does not need it
(the browser rebuilds it), but /api/v1/chart/<id>/data/, cache warm-up and reports
do, and answer "Chart has no query context saved" without it. query_context() below
mirrors the frontend for the five viz types used here; tools/check_render.cjs
compares it with what the real frontend sends.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

import yaml

HERE = Path(__file__).resolve().parent
BUNDLE = HERE.parent / "bundle"

DATABASE_UUID = "8ad0bf8f-6c6b-43ff-be20-1e375284503c"
DASHBOARD_UUID = "f34ed751-ca10-41da-8c8a-def3a9c0a909"
# Replaced by provision.sh with the JSON-quoted SQLAlchemy URI.
URI_PLACEHOLDER = "__ADJOIN_SQLALCHEMY_URI__"

TS = "TIMESTAMP WITH TIME ZONE"
# numeric(24,6) columns of the rollups; sums over them (and the kpis_minute /
# data_health_minute view columns) are unconstrained numeric.
NUM6 = "NUMERIC(24, 6)"
NUM = "NUMERIC"
BIGINT = "BIGINT"
TEXT = "TEXT"
FLOAT = "DOUBLE PRECISION"

# --------------------------------------------------------------------------------
# Metrics. Ratios are ratios of sums (docs/schema.md: "sum counts and costs first
# and divide after"), never averages of the per-minute ratio columns.


def metric(name, verbose, expression, d3format, description):
    return {
        "metric_name": name,
        "verbose_name": verbose,
        "metric_type": None,
        "expression": expression,
        "description": description,
        "d3format": d3format,
        "currency": None,
        "extra": None,
        "warning_text": None,
    }


KPI_METRICS = [
    metric("impressions_sum", "Impressions", "SUM(impressions)", ",d",
           "Distinct impressions shown."),
    metric("clicks_sum", "Clicks", "SUM(clicks)", ",d",
           "Matched clicks on those impressions, counted at the impression's minute."),
    metric("impression_cost_sum", "Impression cost", "SUM(impression_cost)", ",.2f",
           "Sum of impression costs."),
    metric("click_cost_sum", "Click cost", "SUM(click_cost)", ",.2f",
           "Sum of matched clicks' costs."),
    metric("spend", "Spend", "SUM(impression_cost) + SUM(click_cost)", ",.2f",
           "Impression cost plus matched click cost (unmatched clicks' cost is in "
           "data health)."),
    metric("ctr_agg", "CTR", "SUM(clicks)::float8 / NULLIF(SUM(impressions), 0)", ".2%",
           "Clicks / impressions over the group (a ratio of sums)."),
    metric("cpc_agg", "CPC", "(SUM(click_cost) / NULLIF(SUM(clicks), 0))::float8", ",.4f",
           "Click cost / clicks over the group (a ratio of sums)."),
    metric("cpi_agg", "CPI",
           "(SUM(impression_cost) / NULLIF(SUM(impressions), 0))::float8", ",.6f",
           "Impression cost / impressions over the group (a ratio of sums)."),
]

HEALTH_METRICS = [
    metric("matched_clicks_sum", "Matched clicks", "SUM(matched_clicks)", ",d",
           "Clicks joined to their impression."),
    metric("no_impression_clicks_sum", "No-impression clicks",
           "SUM(no_impression_clicks)", ",d",
           "Clicks whose impression was never seen (at the click's minute)."),
    metric("late_clicks_sum", "Late clicks", "SUM(late_clicks)", ",d",
           "Clicks that arrived after the join window (at the click's minute)."),
    metric("unmatched_clicks", "Unmatched clicks",
           "SUM(no_impression_clicks) + SUM(late_clicks)", ",d",
           "No-impression plus late clicks."),
    metric("unmatched_click_cost_sum", "Unmatched click cost", "SUM(unmatched_click_cost)",
           ",.2f", "Cost of unmatched clicks (not in spend)."),
    metric("duplicate_impressions_sum", "Duplicate impressions",
           "SUM(duplicate_impressions)", ",d",
           "Impressions delivered again and skipped by the sink."),
    metric("duplicate_clicks_sum", "Duplicate clicks", "SUM(duplicate_clicks)", ",d",
           "Click outcomes delivered again and skipped by the sink."),
    metric("duplicates", "Duplicates", "SUM(duplicate_impressions) + SUM(duplicate_clicks)",
           ",d", "All records the sink skipped as duplicates."),
    metric("dead_letter_impressions_sum", "Dead-letter impressions",
           "SUM(dead_letter_impressions)", ",d", "Impression records sent to sink.dlq."),
    metric("dead_letter_clicks_sum", "Dead-letter clicks", "SUM(dead_letter_clicks)", ",d",
           "Click-outcome records sent to sink.dlq."),
    metric("dead_letters", "Dead letters (DLQ)",
           "SUM(dead_letter_impressions) + SUM(dead_letter_clicks)", ",d",
           "All records sent to sink.dlq."),
    metric("match_rate_agg", "Match rate",
           "SUM(matched_clicks)::float8 / NULLIF(SUM(matched_clicks) + "
           "SUM(no_impression_clicks) + SUM(late_clicks), 0)",
           ".2%", "Matched / all distinct clicks over the group (a ratio of sums)."),
]

# --------------------------------------------------------------------------------
# Datasets: the rollup views of services/sink/migrations/postgres/0001_schema.sql.

MINUTE = ("minute", TS, "Minute (UTC)",
          "UTC minute; for impressions and matched clicks the impression's minute.")
RATIOS = [
    ("ctr", FLOAT, "CTR of the row", "clicks / impressions of this row only."),
    ("cpc", FLOAT, "CPC of the row", "click_cost / clicks of this row only."),
    ("cpi", FLOAT, "CPI of the row", "impression_cost / impressions of this row only."),
]

# The measures of the per-ad and per-dimension views (bigint counts, numeric(24,6)
# costs), each row's own ratios after them.
BREAKDOWN_KPIS = [
    ("impressions", BIGINT, None, None),
    ("clicks", BIGINT, None, None),
    ("impression_cost", NUM6, None, None),
    ("click_cost", NUM6, None, None),
    ("total_cost", NUM, None, None),
    *RATIOS,
]

DATASETS = {
    "kpis_minute": {
        "uuid": "edefd02f-6de7-4a7c-8060-9a422547d3b6",
        "description": "Whole-pipeline totals per minute.",
        "columns": [
            MINUTE,
            ("impressions", NUM, None, None),
            ("clicks", NUM, None, None),
            ("impression_cost", NUM, None, None),
            ("click_cost", NUM, None, None),
            ("total_cost", NUM, None, None),
            *RATIOS,
        ],
        "metrics": KPI_METRICS,
    },
    "ad_kpis_minute": {
        "uuid": "8e3813ac-cee0-4e90-956d-f9a2764bfdc9",
        "description": "Per impression minute and ad.",
        "columns": [
            MINUTE,
            ("ad_id", TEXT, "Ad", None),
            ("ad_category", TEXT, "Category", None),
            *BREAKDOWN_KPIS,
        ],
        "metrics": KPI_METRICS,
    },
    "dimension_kpis_minute": {
        "uuid": "02f2eeb2-0446-47f1-8e68-6d85b2ee2a4c",
        "description": "Per impression minute and value of one attribute "
        "(dimension: ad_category, device, os, browser or location). Always filter "
        "on one dimension: every impression counts once under each.",
        "columns": [
            MINUTE,
            ("dimension", TEXT, "Dimension", None),
            ("value", TEXT, "Value", None),
            *BREAKDOWN_KPIS,
        ],
        "metrics": KPI_METRICS,
    },
    "data_health_minute": {
        "uuid": "0058b074-0f88-4ad4-9bb5-be5f555a9e68",
        "description": "Clicks by outcome next to what the sink skipped, per minute.",
        "columns": [
            MINUTE,
            ("matched_clicks", NUM, None, None),
            ("no_impression_clicks", NUM, None, None),
            ("late_clicks", NUM, None, None),
            ("matched_click_cost", NUM, None, None),
            ("unmatched_click_cost", NUM, None, None),
            ("duplicate_impressions", BIGINT, None, None),
            ("duplicate_clicks", BIGINT, None, None),
            ("dead_letter_impressions", BIGINT, None, None),
            ("dead_letter_clicks", BIGINT, None, None),
            ("match_rate", FLOAT, "Match rate of the row", None),
        ],
        "metrics": HEALTH_METRICS,
    },
}


def dataset_yaml(name: str, spec: dict) -> dict:
    columns = []
    for column_name, type_, verbose, description in spec["columns"]:
        columns.append({
            "column_name": column_name,
            "verbose_name": verbose,
            "is_dttm": type_ == TS,
            "is_active": True,
            "type": type_,
            "advanced_data_type": None,
            "groupby": True,
            "filterable": True,
            "expression": None,
            "description": description,
            "python_date_format": None,
            "extra": None,
        })
    return {
        "table_name": name,
        "main_dttm_col": "minute",
        "description": spec["description"],
        "default_endpoint": None,
        "offset": 0,
        "cache_timeout": None,
        "catalog": None,
        # None: the connection's search_path (public unless the URL says otherwise).
        "schema": None,
        "sql": None,
        "params": None,
        "template_params": None,
        "filter_select_enabled": True,
        "fetch_values_predicate": None,
        "extra": None,
        "normalize_columns": False,
        "always_filter_main_dttm": False,
        "uuid": spec["uuid"],
        "metrics": spec["metrics"],
        "columns": columns,
        "version": "1.0.0",
        "database_uuid": DATABASE_UUID,
    }


# --------------------------------------------------------------------------------
# Chart params (the form data the Superset 6.1 explore view saves).

# Every chart's own time range: the last 24 hours, relative to now. (Superset's
# "Last day" means yesterday, midnight to midnight, and "No filter" lets a
# one-minute series run into the 10,000-row limit after about a week.) The
# dashboard's Time range filter overrides it.
TIME_RANGE = 'DATEADD(DATETIME("now"), -24, hour) : now'
TIME_FILTER = {
    "clause": "WHERE",
    "comparator": TIME_RANGE,
    "expressionType": "SIMPLE",
    "operator": "TEMPORAL_RANGE",
    "subject": "minute",
}


def where_eq(column: str, value: str, option: str) -> dict:
    return {
        "clause": "WHERE",
        "comparator": value,
        "datasourceWarning": False,
        "expressionType": "SIMPLE",
        "filterOptionName": option,
        "isExtra": False,
        "isNew": False,
        "operator": "==",
        "operatorId": "EQUALS",
        "sqlExpression": None,
        "subject": column,
    }


def where_in(column: str, values: list[str], option: str) -> dict:
    return {**where_eq(column, "", option), "comparator": values, "operator": "IN",
            "operatorId": "IN"}


def having_sql(sql: str, option: str) -> dict:
    return {
        "clause": "HAVING",
        "comparator": None,
        "datasourceWarning": False,
        "expressionType": "SQL",
        "filterOptionName": option,
        "isExtra": False,
        "isNew": False,
        "operator": None,
        "sqlExpression": sql,
        "subject": None,
    }


def timeseries(viz, metrics, y_format, groupby=(), filters=(), **extra):
    params = {
        "viz_type": viz,
        "x_axis": "minute",
        "time_grain_sqla": "PT1M",
        "x_axis_sort_asc": True,
        "x_axis_sort_series": "name",
        "x_axis_sort_series_ascending": True,
        "metrics": list(metrics),
        "groupby": list(groupby),
        "adhoc_filters": [TIME_FILTER, *filters],
        "order_desc": True,
        "row_limit": 10000,
        "truncate_metric": True,
        "show_empty_columns": True,
        "comparison_type": "values",
        "annotation_layers": [],
        "forecastPeriods": 10,
        "forecastInterval": 0.8,
        "x_axis_title_margin": 15,
        "y_axis_title_margin": 15,
        "y_axis_title_position": "Left",
        "sort_series_type": "sum",
        "color_scheme": "supersetColors",
        "only_total": True,
        "show_legend": True,
        "legendType": "scroll",
        "legendOrientation": "top",
        "x_axis_time_format": "smart_date",
        "rich_tooltip": True,
        "tooltipTimeFormat": "smart_date",
        "y_axis_format": y_format,
        "truncateXAxis": True,
        "y_axis_bounds": [None, None],
        "extra_form_data": {},
    }
    if viz == "echarts_timeseries_line":
        # Markers, so that a minute with no neighbours still shows as a point.
        params.update({"seriesType": "line", "markerEnabled": True, "markerSize": 4,
                       "opacity": 0.2})
    else:
        params.update({"orientation": "vertical", "stack": "Stack"})
    params.update(extra)
    return params


def big_number(metric_name, y_format, subheader):
    return {
        "viz_type": "big_number_total",
        "metric": metric_name,
        "adhoc_filters": [TIME_FILTER],
        "header_font_size": 0.4,
        "subheader": subheader,
        "subheader_font_size": 0.15,
        "y_axis_format": y_format,
        "time_format": "smart_date",
        "force_timestamp_formatting": False,
        "annotation_layers": [],
        "extra_form_data": {},
    }


def table(groupby, metrics, sort_metric, row_limit, filters=()):
    return {
        "viz_type": "table",
        "query_mode": "aggregate",
        "groupby": list(groupby),
        "metrics": list(metrics),
        "all_columns": [],
        "percent_metrics": [],
        "adhoc_filters": [TIME_FILTER, *filters],
        "timeseries_limit_metric": sort_metric,
        "order_desc": True,
        "order_by_cols": [],
        "row_limit": row_limit,
        "server_page_length": 10,
        "server_pagination": False,
        "include_time": False,
        "show_totals": False,
        "table_timestamp_format": "smart_date",
        "show_cell_bars": True,
        "color_pn": True,
        "allow_rearrange_columns": False,
        "conditional_formatting": [],
        "annotation_layers": [],
        "extra_form_data": {},
    }


def pie(metric_name, filters):
    return {
        "viz_type": "pie",
        "groupby": ["value"],
        "metric": metric_name,
        "adhoc_filters": [TIME_FILTER, *filters],
        "row_limit": 100,
        "sort_by_metric": True,
        "color_scheme": "supersetColors",
        "show_labels_threshold": 5,
        # No legend: in a quarter-width chart 6.x's horizontal legend (with its
        # All/Inv buttons) is clipped or paged, and a vertical one shrinks the pie.
        # The slices carry their names instead.
        "show_legend": False,
        "legendType": "scroll",
        "legendOrientation": "top",
        "label_type": "key_percent",
        "number_format": "SMART_NUMBER",
        "date_format": "smart_date",
        "show_labels": True,
        "labels_outside": False,
        "outerRadius": 80,
        "innerRadius": 30,
        "donut": False,
        "show_total": False,
        "annotation_layers": [],
        "extra_form_data": {},
    }


# --------------------------------------------------------------------------------
# Charts, in dashboard order: (uuid, file stem, title, dataset, params, width,
# height, description). Rows are lists of these.

K, A, D, H = "kpis_minute", "ad_kpis_minute", "dimension_kpis_minute", "data_health_minute"


def dim_filter(dimension):
    return where_eq("dimension", dimension, f"filter_dimension_{dimension}")


ROWS = [
    [
        ("d525f2e4-1874-422f-bd18-45578ea2dd91", "impressions_total", "Impressions", K,
         big_number("impressions_sum", ",d", "impressions shown"), 3, 30,
         "Distinct impressions shown in the time range (default: last 24 hours)."),
        ("ee11c937-051f-42ef-957b-61a5be6e589c", "clicks_total", "Clicks", K,
         big_number("clicks_sum", ",d", "matched clicks on those impressions"), 3, 30,
         "Matched clicks on the impressions of the time range."),
        ("5d30ca4d-8b0a-4972-9e2c-2b4386303cc3", "ctr_total", "CTR", K,
         big_number("ctr_agg", ".2%", "clicks / impressions"), 3, 30,
         "Share of the time range's impressions that were clicked."),
        ("1f2bb7be-5cbb-4501-a60d-ceaa4a12b346", "spend_total", "Spend", K,
         big_number("spend", ",.2f", "impression + matched click cost"), 3, 30,
         "Impression cost plus matched click cost."),
    ],
    [
        ("054c835d-7a9e-411a-b5db-1ea49cc6c48c", "impressions_clicks_over_time",
         "Impressions and clicks per minute", K,
         timeseries("echarts_timeseries_line", ["impressions_sum", "clicks_sum"],
                    "SMART_NUMBER"), 6, 50,
         "Impressions per minute, and the matched clicks on them (counted at the "
         "impression's minute, so recent minutes still grow for up to the join window)."),
        ("961fa04d-f806-4375-8e2f-e162819f8fa2", "ctr_by_category_over_time",
         "CTR by ad category", D,
         timeseries("echarts_timeseries_line", ["ctr_agg"], ".2%", groupby=["value"],
                    filters=[dim_filter("ad_category")]), 6, 50,
         "CTR per minute and ad category."),
    ],
    [
        ("45c147c2-4452-497f-85f4-6a4021678207", "cpc_over_time", "CPC per minute", K,
         timeseries("echarts_timeseries_line", ["cpc_agg"], ",.4f"), 6, 50,
         "Cost per matched click."),
        ("48a405f4-0d4c-4f17-b9ec-8139a35a4e9f", "cpi_over_time", "CPI per minute", K,
         timeseries("echarts_timeseries_line", ["cpi_agg"], ",.6f"), 6, 50,
         "Cost per impression."),
    ],
    [
        ("d1dfda91-ef29-4cc6-ba13-264b9cd85280", "top_ads_by_ctr", "Top ads by CTR", A,
         table(["ad_id", "ad_category"], ["impressions_sum", "clicks_sum", "ctr_agg"],
               "ctr_agg", 10,
               filters=[having_sql("SUM(impressions) >= 100", "filter_min_impressions")]),
         6, 50, "The ten ads with the highest CTR in the time range, among ads with "
         "at least 100 impressions."),
        ("5a176ddb-75a1-41f2-8cbe-0ac3216eac2e", "top_ads_by_spend", "Top ads by spend", A,
         table(["ad_id", "ad_category"],
               ["spend", "impression_cost_sum", "click_cost_sum", "cpc_agg", "cpi_agg"],
               "spend", 10), 6, 50,
         "The ten ads with the highest spend in the time range."),
    ],
    [
        ("92ce50fc-d60a-4eb9-9a61-ed9d557575bb", "impressions_by_device",
         "Impressions by device", D, pie("impressions_sum", [dim_filter("device")]), 3, 50,
         "Share of impressions per device."),
        ("828cd44c-7e15-4865-9703-67b8bb610cb5", "impressions_by_os", "Impressions by OS",
         D, pie("impressions_sum", [dim_filter("os")]), 3, 50,
         "Share of impressions per operating system."),
        ("9c3b5d42-bd8f-45f6-ad4a-34b243e6953c", "impressions_by_browser",
         "Impressions by browser", D, pie("impressions_sum", [dim_filter("browser")]), 3,
         50, "Share of impressions per browser."),
        ("d1dd90ee-1805-4206-9bea-c496b4efb025", "impressions_by_location",
         "Impressions by location", D, pie("impressions_sum", [dim_filter("location")]),
         3, 50, "Share of impressions per location."),
    ],
    [
        ("d540b6c1-d431-4136-ae8b-ca058e6b7986", "kpis_by_dimension",
         "KPIs by device, OS, browser and location", D,
         table(["dimension", "value"],
               ["impressions_sum", "clicks_sum", "ctr_agg", "cpc_agg", "cpi_agg", "spend"],
               "impressions_sum", 500,
               filters=[where_in("dimension", ["device", "os", "browser", "location"],
                                 "filter_breakdown_dimensions")]),
         12, 50, "Impressions, clicks, CTR, CPC, CPI and spend per value of each "
         "attribute. Each attribute's rows add up to the totals."),
    ],
    [
        ("1536e0a3-0e34-4de7-a2a8-f9aa894940f7", "match_rate_total", "Click match rate", H,
         big_number("match_rate_agg", ".2%", "matched / all distinct clicks"), 3, 30,
         "Share of distinct clicks that were joined to their impression."),
        ("0c47c833-c360-440f-a6b8-abcbbc295ac2", "unmatched_clicks_total",
         "Unmatched clicks", H,
         big_number("unmatched_clicks", ",d", "no impression + late"), 3, 30,
         "Clicks without an impression, or later than the join window."),
        ("ebc223c3-e0d9-4d30-93e6-7cd51c3556ec", "duplicates_total", "Duplicates skipped",
         H, big_number("duplicates", ",d", "impressions + click outcomes delivered again"),
         3, 30, "Records the sink skipped because it had stored them already."),
        ("fad76111-8eb3-4d51-82ba-4b39e8b2a2dd", "dead_letters_total", "Dead letters (DLQ)",
         H, big_number("dead_letters", ",d", "records sent to sink.dlq"), 3, 30,
         "Records the sink could not read or the database rejected."),
    ],
    [
        ("db48087c-0a29-455d-92f5-beb0ae829359", "unmatched_clicks_over_time",
         "Unmatched clicks per minute", H,
         timeseries("echarts_timeseries_bar",
                    ["no_impression_clicks_sum", "late_clicks_sum"], "SMART_NUMBER"),
         6, 50, "No-impression and late clicks, at the click's own minute."),
        ("9ef573d8-2323-4c0f-9012-c0230f631b95", "duplicates_dlq_over_time",
         "Duplicates and dead letters per minute", H,
         timeseries("echarts_timeseries_bar",
                    ["duplicate_impressions_sum", "duplicate_clicks_sum",
                     "dead_letter_impressions_sum", "dead_letter_clicks_sum"],
                    "SMART_NUMBER"),
         6, 50, "Records skipped as duplicates and records sent to the DLQ."),
    ],
]

INTRO = """\
### adjoin: ads in real time
From the sink's rollups in PostgreSQL, **last 24 hours** unless the *Time range*
filter says otherwise (Advanced: `DATEADD(DATETIME("now"), -3, hour) : now` for three
hours); refreshed every minute. A click counts at its **impression's** minute, so the
CTR of recent minutes still rises for up to the join window. Ratios are ratios of sums
over each point, never averages of per-minute ratios. Unmatched clicks appear only
under data health, at the bottom."""


# --------------------------------------------------------------------------------
# Query context: what the Superset 6.1 frontend posts to /api/v1/chart/data for
# these params (buildQueryContext + each plugin's buildQuery).


def _filters(params):
    """processFilters: SIMPLE WHERE filters become `filters`; SQL WHERE and HAVING
    filters are ANDed into extras.where and extras.having (always present)."""
    filters, where, having = [], [], []
    for f in params.get("adhoc_filters", []):
        if f["expressionType"] == "SIMPLE" and f["clause"] == "WHERE":
            filters.append({"col": f["subject"], "op": f["operator"],
                            "val": f["comparator"]})
        elif f["clause"] == "WHERE":
            where.append(f"({f['sqlExpression']})")
        else:
            having.append(f"({f['sqlExpression']})")
    return filters, {"having": " AND ".join(having), "where": " AND ".join(where)}


def _query(params, columns, metrics, **fields):
    filters, extras = _filters(params)
    extras.update(fields.pop("extras", {}))
    query = {
        "filters": filters,
        "extras": extras,
        "applied_time_extras": {},
        "columns": columns,
        "metrics": metrics,
        "annotation_layers": [],
        "series_limit": 0,
        "order_desc": params.get("order_desc", True),
        "group_others_when_limit_reached": False,
        "url_params": {},
        "custom_params": {},
        "custom_form_data": {},
    }
    query.update(fields)
    return query


def query_context(params: dict) -> dict:
    viz = params["viz_type"]
    if viz in ("echarts_timeseries_line", "echarts_timeseries_bar"):
        x_axis = {
            "timeGrain": params["time_grain_sqla"],
            "columnType": "BASE_AXIS",
            "sqlExpression": params["x_axis"],
            "label": params["x_axis"],
            "expressionType": "SQL",
            "isColumnReference": True,
        }
        metrics, groupby = params["metrics"], params["groupby"]
        post_processing = [
            {"operation": "pivot", "options": {
                "index": [params["x_axis"]],
                "columns": groupby,
                "aggregates": {m: {"operator": "mean"} for m in metrics},
                "drop_missing_columns": False,
            }},
        ]
        if len(metrics) == 1 and groupby:
            # renameOperator: one metric split by a dimension -> series named by value.
            post_processing.append({"operation": "rename", "options": {
                "columns": {metrics[0]: None}, "level": 0, "inplace": True}})
        post_processing.append({"operation": "flatten"})
        query = _query(params, [x_axis, *groupby], metrics,
                       extras={"time_grain_sqla": params["time_grain_sqla"]},
                       orderby=[[metrics[0], False]],
                       row_limit=params["row_limit"],
                       series_columns=groupby,
                       time_offsets=[],
                       post_processing=post_processing)
    elif viz == "big_number_total":
        query = _query(params, [], [params["metric"]])
    elif viz == "pie":
        metric_name = params["metric"]
        query = _query(params, params["groupby"], [metric_name],
                       orderby=[[metric_name, False]] if params["sort_by_metric"] else [],
                       row_limit=params["row_limit"],
                       post_processing=[{"operation": "contribution", "options": {
                           "columns": [metric_name],
                           "rename_columns": [f"{metric_name}__contribution"]}}])
    elif viz == "table":
        sort = params["timeseries_limit_metric"]
        query = _query(params, params["groupby"], params["metrics"],
                       orderby=[[sort, not params["order_desc"]]],
                       series_limit_metric=sort,
                       row_limit=params["row_limit"],
                       time_offsets=[],
                       post_processing=[])
    else:
        raise ValueError(f"no query_context builder for {viz}")
    return {
        # The importer replaces the datasource id with the imported dataset's.
        "datasource": {"id": 0, "type": "table"},
        "force": False,
        "queries": [query],
        "form_data": params,
        "result_format": "json",
        "result_type": "full",
    }


# --------------------------------------------------------------------------------


def chart_yaml(uuid, title, dataset, params, description):
    return {
        "slice_name": title,
        "description": description,
        "certified_by": None,
        "certification_details": None,
        "viz_type": params["viz_type"],
        "params": params,
        "query_context": json.dumps(query_context(params), separators=(",", ":")),
        "cache_timeout": None,
        "uuid": uuid,
        "version": "1.0.0",
        "dataset_uuid": DATASETS[dataset]["uuid"],
    }


def dashboard_yaml(chart_ids: dict[str, int]) -> dict:
    position = {
        "DASHBOARD_VERSION_KEY": "v2",
        "ROOT_ID": {"children": ["GRID_ID"], "id": "ROOT_ID", "type": "ROOT"},
        "GRID_ID": {"children": [], "id": "GRID_ID", "parents": ["ROOT_ID"],
                    "type": "GRID"},
        "HEADER_ID": {"id": "HEADER_ID", "meta": {"text": "adjoin"}, "type": "HEADER"},
    }

    def add_row(row_id, children):
        position["GRID_ID"]["children"].append(row_id)
        position[row_id] = {
            "children": children, "id": row_id,
            "meta": {"background": "BACKGROUND_TRANSPARENT"},
            "parents": ["ROOT_ID", "GRID_ID"], "type": "ROW",
        }

    add_row("ROW-intro", ["MARKDOWN-intro"])
    position["MARKDOWN-intro"] = {
        "children": [], "id": "MARKDOWN-intro",
        "meta": {"code": INTRO, "height": 18, "width": 12},
        "parents": ["ROOT_ID", "GRID_ID", "ROW-intro"], "type": "MARKDOWN",
    }
    for n, row in enumerate(ROWS, start=1):
        row_id = f"ROW-{n}"
        children = []
        for uuid, stem, title, _dataset, _params, width, height, _desc in row:
            chart_id = f"CHART-{stem}"
            children.append(chart_id)
            position[chart_id] = {
                "children": [], "id": chart_id,
                "meta": {"chartId": chart_ids[uuid], "height": height,
                         "sliceName": title, "uuid": uuid, "width": width},
                "parents": ["ROOT_ID", "GRID_ID", row_id], "type": "CHART",
            }
        add_row(row_id, children)

    def native_filter(filter_id, name, filter_type, targets, default=None):
        mask = {"extraFormData": {}, "filterState": {}, "ownState": {}}
        if default is not None:
            mask = {"extraFormData": {"time_range": default},
                    "filterState": {"value": default}, "ownState": {}}
        return {
            "id": filter_id, "name": name, "filterType": filter_type,
            "type": "NATIVE_FILTER", "targets": targets,
            "controlValues": {"enableEmptyFilter": False},
            "defaultDataMask": mask,
            "cascadeParentIds": [], "description": "",
            "scope": {"rootPath": ["ROOT_ID"], "excluded": []},
        }

    return {
        "dashboard_title": "adjoin: ads in real time",
        "description": None,
        "css": "",
        "slug": "adjoin",
        "certified_by": "",
        "certification_details": "",
        "published": True,
        "uuid": DASHBOARD_UUID,
        "version": "1.0.0",
        "position": position,
        "metadata": {
            "color_scheme": "supersetColors",
            "label_colors": {},
            "shared_label_colors": [],
            "map_label_colors": {},
            "color_scheme_domain": [],
            "cross_filters_enabled": False,
            "expanded_slices": {},
            "default_filters": "{}",
            "refresh_frequency": 60,
            "timed_refresh_immune_slices": [],
            "chart_configuration": {},
            "global_chart_configuration": {},
            "native_filter_configuration": [
                # Shows the charts' own default, and applies it when changed.
                native_filter("NATIVE_FILTER-adjoin-time-range", "Time range",
                              "filter_time", [{}], default=TIME_RANGE),
                native_filter("NATIVE_FILTER-adjoin-time-grain", "Time grain",
                              "filter_timegrain",
                              [{"datasetUuid": DATASETS[K]["uuid"]}]),
            ],
        },
    }


HEADER = (
    "# adjoin Superset bundle (Superset 6 export format). Written by\n"
    "# deploy/superset/tools/gen_bundle.py: edit that, not this file.\n"
)


def dump(path: Path, data: dict) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    text = yaml.safe_dump(data, sort_keys=True, default_flow_style=False,
                          allow_unicode=True, width=1_000_000)
    path.write_text(HEADER + text)


def main() -> int:
    for old in BUNDLE.rglob("*.yaml"):
        old.unlink()
    dump(BUNDLE / "metadata.yaml", {
        "version": "1.0.0", "type": "Dashboard",
        "timestamp": "2026-11-30T00:00:00+00:00",
    })
    database = {
        "database_name": "adjoin",
        "sqlalchemy_uri": URI_PLACEHOLDER,
        "cache_timeout": None,
        "expose_in_sqllab": True,
        "allow_run_async": False,
        "allow_ctas": False,
        "allow_cvas": False,
        "allow_dml": False,
        "allow_csv_upload": False,
        "impersonate_user": False,
        "extra": {
            "allows_virtual_table_explore": True,
            "cancel_query_on_windows_unload": True,
            "metadata_params": {},
            "engine_params": {},
            "schemas_allowed_for_csv_upload": [],
        },
        "uuid": DATABASE_UUID,
        "version": "1.0.0",
    }
    dump(BUNDLE / "databases" / "adjoin.yaml", database)
    for name, spec in DATASETS.items():
        dump(BUNDLE / "datasets" / "adjoin" / f"{name}.yaml", dataset_yaml(name, spec))
    chart_ids = {}
    for row in ROWS:
        for uuid, stem, title, dataset, params, _w, _h, description in row:
            chart_ids[uuid] = len(chart_ids) + 1
            dump(BUNDLE / "charts" / f"{stem}.yaml",
                 chart_yaml(uuid, title, dataset, params, description))
    dump(BUNDLE / "dashboards" / "adjoin.yaml", dashboard_yaml(chart_ids))
    uuids = [DATABASE_UUID, DASHBOARD_UUID, *(d["uuid"] for d in DATASETS.values()),
             *chart_ids]
    assert len(uuids) == len(set(uuids)), "duplicate UUID"
    print(f"wrote {BUNDLE}: 1 database, {len(DATASETS)} datasets, "
          f"{len(chart_ids)} charts, 1 dashboard")
    return 0


if __name__ == "__main__":
    sys.exit(main())
