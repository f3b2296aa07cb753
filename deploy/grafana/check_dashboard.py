#!/usr/bin/env python3
"""Checks the Grafana dashboards and Prometheus configuration in deploy/ against
docs/metrics.md. Standard library only; PyYAML and promtool are used when present.

    python3 deploy/grafana/check_dashboard.py [dashboard.json ...]

With no argument it checks every deploy/grafana/dashboards/*.json. For each dashboard:
  - the JSON parses, panel ids are unique and every panel has a gridPos inside the
    24-column grid that overlaps no other panel;
  - every panel, every query target and every templating variable uses the
    Prometheus datasource uid provisioned in provisioning/datasources/prometheus.yml;
  - every metric name (an identifier starting with `adjoin_`) in a PromQL expression
    or variable query is in docs/metrics.md: counters as documented (`..._total`),
    histograms as `_bucket`, `_sum` or `_count`, gauges as named;
  - every label in a selector, a `by (...)`/`without (...)`/`on (...)`/`ignoring (...)`
    clause, a `label_values(...)` call or a `{{label}}` legend is a label of one of the
    metrics the expression uses (or `le`, `job`, `instance`, added by Prometheus).
Then every deploy/prometheus/*.yml must parse as YAML (when PyYAML is importable; and
prometheus.yml must have the jobs ingest, join and sink) and pass `promtool check config`
(when promtool is on PATH).

Exits 1 listing every problem, 0 when there is none.
"""

import glob
import json
import os
import re
import shutil
import subprocess
import sys

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(os.path.dirname(HERE))
METRICS_DOC = os.path.join(ROOT, "docs", "metrics.md")
DASHBOARDS = os.path.join(HERE, "dashboards")
DATASOURCES = os.path.join(HERE, "provisioning", "datasources", "prometheus.yml")
PROMETHEUS = os.path.join(ROOT, "deploy", "prometheus", "prometheus.yml")
PROMETHEUS_ALL = os.path.join(ROOT, "deploy", "prometheus", "*.yml")

# Labels Prometheus adds itself: the target's, and `le` on histogram buckets.
TARGET_LABELS = {"job", "instance"}
# Series that are not adjoin's but may appear in expressions, with their labels.
OTHER_METRICS = {"up": set()}
PROMQL_WORDS = {
    "sum", "min", "max", "avg", "count", "stddev", "stdvar", "topk", "bottomk",
    "quantile", "count_values", "group", "by", "without", "on", "ignoring",
    "group_left", "group_right", "and", "or", "unless", "offset", "bool",
}

ROW_RE = re.compile(r"^\|\s*`(adjoin_[a-z0-9_]+)`\s*\|\s*(\w+)\s*\|([^|]*)\|")
METRIC_RE = re.compile(r"\badjoin_[A-Za-z0-9_:]+")
SELECTOR_RE = re.compile(r"\b([A-Za-z_:][A-Za-z0-9_:]*)\s*\{([^}]*)\}")
MATCHER_RE = re.compile(r"([A-Za-z_][A-Za-z0-9_]*)\s*(=~|!~|!=|=)")
GROUPING_RE = re.compile(r"\b(by|without|on|ignoring|group_left|group_right)\s*\(([^)]*)\)")
LABEL_VALUES_RE = re.compile(r"label_values\(\s*(?:[^,()]*(?:\{[^}]*\})?\s*,\s*)?([A-Za-z_][A-Za-z0-9_]*)\s*\)")
LEGEND_RE = re.compile(r"\{\{\s*([A-Za-z_][A-Za-z0-9_]*)\s*\}\}")


def documented_metrics(path):
    """{exposed series name: set of labels} from the tables of docs/metrics.md."""
    names = {}
    with open(path, encoding="utf-8") as f:
        for line in f:
            m = ROW_RE.match(line.strip())
            if not m:
                continue
            name, kind, labels = m.group(1), m.group(2), m.group(3)
            labels = set(re.findall(r"`([A-Za-z_][A-Za-z0-9_]*)`", labels))
            if kind == "histogram":
                names[name + "_bucket"] = labels | {"le"}
                names[name + "_sum"] = set(labels)
                names[name + "_count"] = set(labels)
            elif kind == "counter" and not name.endswith("_total"):
                names[name + "_total"] = labels
            else:
                names[name] = labels
    return names


def datasource_uid(path, problems):
    try:
        text = open(path, encoding="utf-8").read()
    except OSError as e:
        problems.append(f"{path}: {e}")
        return None
    try:
        import yaml  # noqa: PLC0415
    except ImportError:
        m = re.search(r"^\s*uid:\s*([A-Za-z0-9_-]+)\s*$", text, re.M)
        return m.group(1) if m else None
    try:
        doc = yaml.safe_load(text)
        sources = [d for d in doc.get("datasources", []) if d.get("type") == "prometheus"]
        if len(sources) != 1:
            problems.append(f"{path}: expected one prometheus datasource, found {len(sources)}")
            return None
        return sources[0].get("uid")
    except Exception as e:  # noqa: BLE001
        problems.append(f"{path}: does not parse as YAML: {e}")
        return None


def all_panels(panels):
    for p in panels:
        yield p
        yield from all_panels(p.get("panels", []))


def check_expr(where, expr, legend, metrics, problems):
    used = set(METRIC_RE.findall(expr))
    labels = set(TARGET_LABELS)
    for name in sorted(used):
        if name not in metrics:
            problems.append(f"{where}: metric {name} is not in docs/metrics.md")
        else:
            labels |= metrics[name]
    for name, extra in OTHER_METRICS.items():
        if re.search(rf"\b{name}\b", expr):
            used.add(name)
            labels |= extra
    if not used:
        problems.append(f"{where}: expression uses no known metric: {expr!r}")
    for metric, body in SELECTOR_RE.findall(expr):
        if metric in PROMQL_WORDS or (metric not in metrics and metric not in OTHER_METRICS):
            continue  # an unknown metric is reported above
        allowed = metrics.get(metric, OTHER_METRICS.get(metric, set())) | TARGET_LABELS
        for label, _op in MATCHER_RE.findall(body):
            if label not in allowed:
                problems.append(f"{where}: {metric} has no label {label!r}")
    grouped = set()
    if not labels - TARGET_LABELS and used - metrics.keys() - OTHER_METRICS.keys():
        return  # nothing known to check the labels against
    for word, body in GROUPING_RE.findall(expr):
        for label in (s.strip() for s in body.split(",")):
            if not label:
                continue
            if label not in labels:
                problems.append(f"{where}: {word} ({label}) names a label none of {sorted(used)} has")
            if word in ("by", "on"):
                grouped.add(label)
    for label in LABEL_VALUES_RE.findall(expr):
        if label not in labels:
            problems.append(f"{where}: label_values of {label!r}, a label none of {sorted(used)} has")
    for label in LEGEND_RE.findall(legend or ""):
        if label not in labels:
            problems.append(f"{where}: legend {{{{{label}}}}} is not a label of {sorted(used)}")
        elif grouped and label not in grouped and " by (" in expr:
            problems.append(f"{where}: legend {{{{{label}}}}} is aggregated away (by {sorted(grouped)})")


def check_dashboard(path, metrics, uid, problems):
    try:
        with open(path, encoding="utf-8") as f:
            dash = json.load(f)
    except (OSError, ValueError) as e:
        problems.append(f"{path}: {e}")
        return
    name = os.path.basename(path)
    if not dash.get("uid"):
        problems.append(f"{name}: no dashboard uid")
    expected_ds = {"type": "prometheus", "uid": uid}

    seen_ids = {}
    boxes = []
    for p in all_panels(dash.get("panels", [])):
        title = p.get("title", "?")
        pid = p.get("id")
        where = f"{name}: panel {pid} {title!r}"
        if not isinstance(pid, int):
            problems.append(f"{where}: id is not an integer")
        elif pid in seen_ids:
            problems.append(f"{where}: id also used by {seen_ids[pid]!r}")
        else:
            seen_ids[pid] = title
        if p.get("datasource") != expected_ds:
            problems.append(f"{where}: datasource {p.get('datasource')!r}, not {expected_ds!r}")
        g = p.get("gridPos")
        if not isinstance(g, dict) or not all(isinstance(g.get(k), int) for k in "xywh"):
            problems.append(f"{where}: gridPos missing or incomplete")
        elif g["x"] < 0 or g["w"] <= 0 or g["h"] <= 0 or g["x"] + g["w"] > 24:
            problems.append(f"{where}: gridPos {g} is outside the 24-column grid")
        else:
            for other_where, o in boxes:
                if (g["x"] < o["x"] + o["w"] and o["x"] < g["x"] + g["w"]
                        and g["y"] < o["y"] + o["h"] and o["y"] < g["y"] + g["h"]):
                    problems.append(f"{where}: overlaps {other_where}")
            boxes.append((where, g))
        targets = p.get("targets", [])
        if p.get("type") not in ("row", "text") and not targets:
            problems.append(f"{where}: no query")
        for t in targets:
            twhere = f"{where} target {t.get('refId')}"
            if t.get("datasource") != expected_ds:
                problems.append(f"{twhere}: datasource {t.get('datasource')!r}, not {expected_ds!r}")
            expr = t.get("expr", "")
            if not expr.strip():
                problems.append(f"{twhere}: empty expr")
                continue
            check_expr(twhere, expr, t.get("legendFormat", ""), metrics, problems)

    variables = {v.get("name"): v for v in dash.get("templating", {}).get("list", [])}
    for v in variables.values():
        where = f"{name}: variable ${v.get('name')}"
        if v.get("type") != "query":
            continue
        if v.get("datasource") != expected_ds:
            problems.append(f"{where}: datasource {v.get('datasource')!r}, not {expected_ds!r}")
        q = v.get("query")
        q = q.get("query", "") if isinstance(q, dict) else (q or "")
        check_expr(where, q, "", metrics, problems)
    # Every $variable an expression uses must be defined (or be one of Grafana's own).
    builtins = {"__rate_interval", "__interval", "__range", "__interval_ms", "__range_s", "__all"}
    text = json.dumps(dash.get("panels", []))
    for ref in sorted(set(re.findall(r"\$\{?([A-Za-z_][A-Za-z0-9_]*)", text))):
        if ref not in variables and ref not in builtins:
            problems.append(f"{name}: ${ref} is used but not defined")


def check_prometheus(path, problems, jobs_required=()):
    try:
        import yaml  # noqa: PLC0415
    except ImportError:
        print(f"skipped: {os.path.relpath(path, ROOT)} YAML check (PyYAML not installed)")
        yaml = None
    if yaml is not None:
        try:
            with open(path, encoding="utf-8") as f:
                doc = yaml.safe_load(f)
            jobs = {j.get("job_name") for j in doc.get("scrape_configs", [])}
            for job in jobs_required:
                if job not in jobs:
                    problems.append(f"{path}: no scrape job {job!r}")
        except Exception as e:  # noqa: BLE001
            problems.append(f"{path}: does not parse as YAML: {e}")
    promtool = shutil.which("promtool")
    if promtool:
        run = subprocess.run([promtool, "check", "config", path], capture_output=True, text=True)
        if run.returncode != 0:
            problems.append(f"{path}: promtool check config failed:\n{run.stdout}{run.stderr}")
    else:
        print(f"skipped: promtool check config {os.path.relpath(path, ROOT)} (promtool not on PATH)")


def main(argv):
    problems = []
    metrics = documented_metrics(METRICS_DOC)
    if not metrics:
        problems.append(f"{METRICS_DOC}: no metric table rows found")
    uid = datasource_uid(DATASOURCES, problems)
    if not uid:
        problems.append(f"{DATASOURCES}: no datasource uid")
    paths = argv[1:] or sorted(glob.glob(os.path.join(DASHBOARDS, "*.json")))
    if not paths:
        problems.append(f"{DASHBOARDS}: no dashboards")
    for path in paths:
        check_dashboard(path, metrics, uid, problems)
    for path in sorted(glob.glob(PROMETHEUS_ALL)):
        required = ("ingest", "join", "sink") if path == PROMETHEUS else ()
        check_prometheus(path, problems, required)
    if problems:
        for p in problems:
            print(p)
        print(f"{len(problems)} problem(s)")
        return 1
    print(f"ok: {len(paths)} dashboard(s), {len(metrics)} documented series, datasource uid {uid}")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
