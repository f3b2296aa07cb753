#!/usr/bin/env bash
# Checks the sink's SQL against a real PostgreSQL and SQLite: migrations apply
# to empty databases; batches with repeats inside them and across them insert
# each fact once (first wins) and add only inserted rows to the rollups; a
# batch applied twice changes nothing but the duplicate counters; rejected
# rows fail with the SQLSTATE class the sink treats as "dead-letter the row";
# rollups equal GROUP BY over the facts; PostgreSQL and SQLite end up with the
# same rows. The SQLite half drives the per-row statements the way the Rust
# sink does (python3 plays the sink), so the cases can be ported one to one.
#
# Usage: services/sink/sql/check.sh
#   PGHOST / PGPORT / PGUSER   server to use (default 127.0.0.1 / 5432 / postgres)
#   CHECK_KEEP_DB=1            keep the databases and print where they are
# Exits 0 when every check passes, 1 on the first mismatch.
set -euo pipefail

here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
sink_dir="$(dirname "$here")"
export PGHOST="${PGHOST:-127.0.0.1}" PGPORT="${PGPORT:-5432}" PGUSER="${PGUSER:-postgres}"
# A session time zone that is not UTC: minutes must not depend on it.
export PGTZ="Asia/Kathmandu"

db="adjoin_sink_check_$$"
work="$(mktemp -d)"
cleanup() {
    if [[ "${CHECK_KEEP_DB:-}" == 1 ]]; then
        echo "kept: postgres database $db, sqlite file $work/check.sqlite"
    else
        dropdb --if-exists "$db" || true
        rm -rf "$work"
    fi
}
trap cleanup EXIT

createdb "$db"
# sqlx runs each migration in a transaction; so does this.
psql -X -q -v ON_ERROR_STOP=1 --single-transaction -d "$db" \
    -f "$sink_dir/migrations/postgres/0001_schema.sql"

CHECK_DB="$db" CHECK_SQLITE="$work/check.sqlite" CHECK_SINK_DIR="$sink_dir" python3 - <<'PY'
import collections
import datetime
import heapq
import os
import random
import sqlite3
import subprocess
import sys

DB = os.environ["CHECK_DB"]
SQLITE_PATH = os.environ["CHECK_SQLITE"]
SINK = os.environ["CHECK_SINK_DIR"]
PG_SQL = os.path.join(SINK, "sql", "postgres")
LITE_SQL = os.path.join(SINK, "sql", "sqlite")
GROUP = "adjoin-sink"
IMP_TOPIC, OUT_TOPIC = "impressions.keyed", "click-outcomes"
FIELD, RECORD, NULL = "\x1f", "\x1e", "<NULL>"

def check(condition, what):
    print(("ok   " if condition else "FAIL ") + what, flush=True)
    if not condition:
        sys.exit(1)


def read(path):
    with open(path, encoding="utf-8") as file:
        return file.read()


# ---------------------------------------------------------------- PostgreSQL

def psql(script, allow_error=False):
    """Runs a psql script; returns rows (lists of text, None for NULL)."""
    result = subprocess.run(
        ["psql", "-X", "-q", "-A", "-t", "-F", FIELD, "-R", RECORD, "-P", "null=" + NULL,
         "-v", "ON_ERROR_STOP=1", "-d", DB],
        input=script, capture_output=True, text=True)
    if result.returncode != 0 and not allow_error:
        print(result.stderr, file=sys.stderr)
        check(False, "psql script failed")
    # psql ends each result with a newline instead of RECORD; no test value
    # contains a newline.
    records = result.stdout.replace("\n", RECORD).split(RECORD)
    rows = [[None if value == NULL else value for value in record.split(FIELD)]
            for record in records if record]
    return rows, result


def prepare(name, file):
    # Every parameter is cast in the statement, so PREPARE infers its types,
    # as the server does for sqlx's unnamed prepared statements.
    return f"PREPARE {name} AS\n{read(os.path.join(PG_SQL, file))}\n"


PREPARES = (prepare("insert_impressions", "insert_impressions.sql")
            + prepare("insert_outcomes", "insert_outcomes.sql")
            + prepare("add_dead_letters", "add_dead_letters.sql")
            + prepare("upsert_offsets", "upsert_offsets.sql")
            + prepare("select_offsets", "select_offsets.sql"))


def literal(value):
    return "NULL" if value is None else "'" + str(value).replace("'", "''") + "'"


def array(values, sql_type):
    """An array literal, the psql stand-in for a bound Vec<T> / Vec<Option<T>>."""
    def element(value):
        if value is None:
            return "NULL"
        text = str(value).replace("\\", "\\\\").replace('"', '\\"')
        return '"' + text + '"'
    return literal("{" + ",".join(element(v) for v in values) + "}") + "::" + sql_type


def imp_params(imps):
    columns = list(zip(*imps)) if imps else [()] * 13
    types = ["text[]"] * 11 + ["int8[]", "int8[]"]
    return ", ".join(array(c, t) for c, t in zip(columns, types))


def out_params(outs):
    columns = list(zip(*outs)) if outs else [()] * 13
    types = ["text[]", "text[]", "int8[]", "int8[]", "int8[]", "text[]", "int8[]"] + ["text[]"] * 6
    return ", ".join(array(c, t) for c, t in zip(columns, types))


def pg_apply(batch):
    """One sink batch in one transaction, statements in the order the sink runs
    them; returns (impressions (inserted, skipped), outcomes (inserted, skipped))."""
    dead = list(zip(*batch["dead"])) if batch["dead"] else [(), (), ()]
    offsets = list(zip(*batch["offsets"])) if batch["offsets"] else [(), (), ()]
    rows, _ = psql(PREPARES + "BEGIN;\n"
                   + f"EXECUTE insert_impressions({imp_params(batch['imps'])});\n"
                   + f"EXECUTE insert_outcomes({out_params(batch['outs'])});\n"
                   + "EXECUTE add_dead_letters(" + ", ".join(
                       array(c, "int8[]") for c in dead) + ");\n"
                   + f"EXECUTE upsert_offsets({literal(GROUP)}, {array(offsets[0], 'text[]')}, "
                   + f"{array(offsets[1], 'int4[]')}, {array(offsets[2], 'int8[]')});\n"
                   + "COMMIT;\n")
    return tuple(int(x) for x in rows[0]), tuple(int(x) for x in rows[1])


PG_SNAPSHOT = {
    "impressions": "SELECT * FROM impressions ORDER BY impression_id",
    "clicks": "SELECT * FROM clicks ORDER BY click_id",
    "ad_stats_minute": "SELECT * FROM ad_stats_minute ORDER BY 1, 2, 3",
    "dimension_stats_minute": "SELECT * FROM dimension_stats_minute ORDER BY 1, 2, 3",
    "click_outcomes_minute": "SELECT * FROM click_outcomes_minute ORDER BY 1, 2",
    "sink_health_minute": "SELECT * FROM sink_health_minute ORDER BY 1",
    "adjoin_offsets": "SELECT * FROM adjoin_offsets ORDER BY 1, 2, 3",
}

# The same content in SQLite's units (epoch ms, micros), to compare backends.
MS = "(extract(epoch FROM {}) * 1000)::int8"
MICROS = "({} * 1000000)::int8"
PG_NORMALISED = {
    "impressions": "SELECT impression_id, user_id, session_id, ad_id, ad_category, device, os, "
                   f"browser, location, page_id, referrer, {MICROS.format('impression_cost')}, "
                   f"{MS.format('event_time')} FROM impressions",
    "clicks": "SELECT click_id, impression_id, click_position, "
              f"{MICROS.format('click_cost')}, {MS.format('event_time')}, outcome, "
              f"{MS.format('impression_time')}, ad_id, ad_category, device, os, browser, "
              "location FROM clicks",
    "ad_stats_minute": f"SELECT {MS.format('minute')}, ad_id, ad_category, impressions, clicks, "
                       f"{MICROS.format('impression_cost')}, {MICROS.format('click_cost')} "
                       "FROM ad_stats_minute",
    "dimension_stats_minute": f"SELECT dimension, {MS.format('minute')}, value, impressions, "
                              f"clicks, {MICROS.format('impression_cost')}, "
                              f"{MICROS.format('click_cost')} FROM dimension_stats_minute",
    "click_outcomes_minute": f"SELECT {MS.format('minute')}, outcome, clicks, "
                             f"{MICROS.format('click_cost')} FROM click_outcomes_minute",
    "sink_health_minute": f"SELECT {MS.format('minute')}, duplicate_impressions, "
                          "duplicate_clicks, dead_letter_impressions, dead_letter_clicks "
                          "FROM sink_health_minute",
    "adjoin_offsets": "SELECT consumer_group, topic, partition_id, next_offset FROM adjoin_offsets",
}


def pg_snapshot(queries=PG_SNAPSHOT):
    snapshot = {}
    for table, query in queries.items():
        rows, _ = psql(query + ";")
        snapshot[table] = sorted(tuple(r) for r in rows)
    return snapshot


def pg_check_rollups(label):
    rows, _ = psql(read(os.path.join(PG_SQL, "check_rollups.sql")))
    check(len(rows) == 3 and all(r[1] == "0" for r in rows),
          f"postgres {label}: rollups equal the facts {[(r[0], int(r[1])) for r in rows]}")


# -------------------------------------------------------------------- SQLite

def lite_sql(file):
    return read(os.path.join(LITE_SQL, file))


LITE = {name: lite_sql(name + ".sql") for name in (
    "insert_impression", "insert_outcome", "add_ad_stats", "add_dimension_stats",
    "add_click_outcomes", "add_sink_health", "upsert_offset", "select_offsets")}


def minute(ms):
    return ms - ms % 60000


def lite_apply(conn, batch):
    """What the Rust sink does on SQLite: per-row inserts, deltas summed in
    memory from the rows that were really inserted, one upsert per key."""
    ad = collections.defaultdict(lambda: [0, 0, 0, 0])
    dim = collections.defaultdict(lambda: [0, 0, 0, 0])
    outcome = collections.defaultdict(lambda: [0, 0])
    health = collections.defaultdict(lambda: [0, 0, 0, 0])
    counts = [0, 0, 0, 0]
    conn.execute("BEGIN IMMEDIATE")
    try:
        for imp in batch["imps"]:
            m = minute(imp[12])
            if conn.execute(LITE["insert_impression"], imp).rowcount == 1:
                counts[0] += 1
                ad[(m, imp[3], imp[4])][0] += 1
                ad[(m, imp[3], imp[4])][2] += imp[11]
                for dimension, value in zip(("ad_category", "device", "os", "browser", "location"),
                                            imp[4:9]):
                    dim[(dimension, m, value)][0] += 1
                    dim[(dimension, m, value)][2] += imp[11]
            else:
                counts[1] += 1
                health[m][0] += 1
        for out in batch["outs"]:
            m = minute(out[6] if out[6] is not None else out[4])
            if conn.execute(LITE["insert_outcome"], out).rowcount == 1:
                counts[2] += 1
                outcome[(m, out[5])][0] += 1
                outcome[(m, out[5])][1] += out[3]
                if out[5] == "matched":
                    ad[(m, out[7], out[8])][1] += 1
                    ad[(m, out[7], out[8])][3] += out[3]
                    for dimension, value in zip(("ad_category", "device", "os", "browser",
                                                 "location"), out[8:13]):
                        dim[(dimension, m, value)][1] += 1
                        dim[(dimension, m, value)][3] += out[3]
            else:
                counts[3] += 1
                health[m][1] += 1
        for time_ms, imps, clicks in batch["dead"]:
            health[minute(time_ms)][2] += imps
            health[minute(time_ms)][3] += clicks
        for key in sorted(ad):
            conn.execute(LITE["add_ad_stats"], (*key, *ad[key]))
        for key in sorted(dim):
            conn.execute(LITE["add_dimension_stats"], (*key, *dim[key]))
        for key in sorted(outcome):
            conn.execute(LITE["add_click_outcomes"], (*key, *outcome[key]))
        for key in sorted(health):
            conn.execute(LITE["add_sink_health"], (key, *health[key]))
        for topic, partition, offset in batch["offsets"]:
            conn.execute(LITE["upsert_offset"], (GROUP, topic, partition, offset))
        conn.execute("COMMIT")
    except BaseException:
        conn.execute("ROLLBACK")
        raise
    return (counts[0], counts[1]), (counts[2], counts[3])


LITE_TABLES = {
    "impressions": "impression_id", "clicks": "click_id", "ad_stats_minute": "1, 2, 3",
    "dimension_stats_minute": "1, 2, 3", "click_outcomes_minute": "1, 2",
    "sink_health_minute": "1", "adjoin_offsets": "1, 2, 3",
}
LITE_NORMALISED = {
    "impressions": "SELECT impression_id, user_id, session_id, ad_id, ad_category, device, os, "
                   "browser, location, page_id, referrer, impression_cost_micros, event_time_ms "
                   "FROM impressions",
    "clicks": "SELECT click_id, impression_id, click_position, click_cost_micros, event_time_ms, "
              "outcome, impression_time_ms, ad_id, ad_category, device, os, browser, location "
              "FROM clicks",
    "adjoin_offsets": "SELECT consumer_group, topic, partition_id, next_offset FROM adjoin_offsets",
}


def lite_snapshot(conn, normalised=False):
    snapshot = {}
    for table, order in LITE_TABLES.items():
        query = LITE_NORMALISED.get(table, f"SELECT * FROM {table}") if normalised \
            else f"SELECT * FROM {table} ORDER BY {order}"
        rows = conn.execute(query).fetchall()
        snapshot[table] = sorted(tuple(None if v is None else str(v) for v in r) for r in rows)
    return snapshot


def lite_check_rollups(conn, label):
    rows = conn.execute(lite_sql("check_rollups.sql")).fetchall()
    check(len(rows) == 3 and all(r[1] == 0 for r in rows),
          f"sqlite {label}: rollups equal the facts {rows}")


# ---------------------------------------------------------------- test data

T0 = int(datetime.datetime(2026, 11, 26, 16, 0, tzinfo=datetime.timezone.utc).timestamp()) * 1000


def imp(i, ad="ad-1", category="travel", device="mobile", os_="Android", browser="Chrome",
        location="DE", cost=1234, t=T0, referrer=""):
    return (f"imp-{i}", f"user-{i % 7}", f"session-{i % 11}", ad, category, device, os_,
            browser, location, f"page-{i % 5}", referrer, cost, t)


def matched(c, impression, cost=250_000, t=None, position=1):
    (_iid, _u, _s, ad, category, device, os_, browser, location, _p, _r, _c, imp_t) = impression
    return (f"click-{c}", impression[0], position, cost, imp_t + 30_000 if t is None else t,
            "matched", imp_t, ad, category, device, os_, browser, location)


def unmatched(c, impression_id, outcome, cost=100_000, t=T0, position=2):
    return (f"click-{c}", impression_id, position, cost, t, outcome) + (None,) * 7


def batch(imps=(), outs=(), dead=(), offsets=()):
    return {"imps": list(imps), "outs": list(outs), "dead": list(dead), "offsets": list(offsets)}


# Hand-made cases. Minute boundaries: 59.999 s stays in minute 0, 60.000 s is minute 1.
i1 = imp(1, t=T0 + 59_999, cost=100_000)
i1_again = imp(1, ad="ad-OTHER", t=T0 + 120_000, cost=999_999)  # a different repeat: first wins
i2 = imp(2, ad="ad-2", category="finance", device="desktop", os_="Windows", browser="Edge",
         location='São Paulo, "BR" {x}', t=T0 + 60_000, cost=2_500_000,
         referrer="https://example.com/a\\b?q='1'")
i3 = imp(3, t=T0 + 61_000, cost=0)
first = batch(imps=[i1, i2, i1_again, i3],
              offsets=[(IMP_TOPIC, 0, 3), (IMP_TOPIC, 1, 1)])
c1 = matched(1, i1, t=T0 + 5 * 60_000)       # counts at i1's minute, not the click's
c1_late_repeat = unmatched(1, "imp-1", "late", t=T0 + 5 * 60_000)  # same click, other outcome
c2 = unmatched(2, "imp-404", "no_impression", t=T0 + 2 * 60_000 + 1)
c3 = unmatched(3, "imp-405", "late", t=T0 + 3 * 60_000)
c4 = matched(4, i2, cost=2_100_000)
c5 = matched(5, imp(99, ad="ad-9", t=T0 + 600_000))  # impression not (yet) written: CTR NULL
second = batch(outs=[c1, c2, c1_late_repeat, c3, c4, c5],
               dead=[(T0 + 1_000, 1, 0), (T0 + 2_000, 0, 2), (T0 + 61_000, 1, 0)],
               offsets=[(OUT_TOPIC, 0, 6), (IMP_TOPIC, 0, 5)])
# Both kinds together, repeats of rows of earlier batches, and new rows.
third = batch(imps=[i3, imp(4, ad="ad-2", category="finance", t=T0 + 62_000)],
              outs=[c2, matched(6, imp(4, ad="ad-2", category="finance", t=T0 + 62_000))],
              offsets=[(IMP_TOPIC, 0, 7), (OUT_TOPIC, 0, 8)])
empty = batch(offsets=[(IMP_TOPIC, 2, 0)])


def random_batches(seed=42, num_imps=9000, batch_rows=1500):
    """A stream like the pipeline's: impressions over 40 minutes, about 1 in 12
    clicked, some unmatched clicks, ~3% repeats (some with another outcome)."""
    rng = random.Random(seed)
    ads = [(f"ad-{a}", rng.choice(["travel", "finance", "food", "games", "news", "auto"]))
           for a in range(40)]
    records = []
    for i in range(num_imps):
        ad, category = rng.choice(ads)
        impression = imp(10_000 + i, ad=ad, category=category,
                         device=rng.choice(["mobile", "desktop", "tablet"]),
                         os_=rng.choice(["Android", "iOS", "Windows", "macOS", "Linux"]),
                         browser=rng.choice(["Chrome", "Safari", "Firefox", "Edge", "Opera"]),
                         location=rng.choice(["DE", "FR", "US", "BR", "IN", "JP", "NG", "GB"]),
                         cost=rng.randrange(100, 9_000),
                         t=T0 + i * 40 * 60_000 // num_imps + rng.randrange(0, 30_000))
        records.append(("imp", impression))
        if rng.random() < 1 / 12:
            click = matched(10_000 + i, impression, cost=rng.randrange(50_000, 3_000_000),
                            t=impression[12] + rng.randrange(0, 15 * 60_000))
            records.append(("out", click))
        if rng.random() < 0.01:
            records.append(("out", unmatched(50_000 + i, f"imp-missing-{i}",
                                             rng.choice(["no_impression", "late"]),
                                             cost=rng.randrange(50_000, 3_000_000),
                                             t=T0 + rng.randrange(0, 40 * 60_000))))
    # Repeats come after the original, up to 300 records later (a producer
    # retry, or the join re-emitting around a hand-over, with another outcome).
    delivered, repeats = [], []
    for kind, row in records:
        delivered.append((kind, row))
        while repeats and repeats[0][0] <= len(delivered):
            delivered.append(heapq.heappop(repeats)[2])
        if rng.random() < 0.03:
            if kind == "out" and row[5] == "matched" and rng.random() < 0.5:
                row = (row[0],) + unmatched(0, row[1], "late", t=row[4])[1:]
            heapq.heappush(repeats, (len(delivered) + rng.randrange(0, 300), len(delivered),
                                     (kind, row)))
    delivered.extend(repeat for _, _, repeat in sorted(repeats))
    batches, offset = [], {IMP_TOPIC: 0, OUT_TOPIC: 0}
    for start in range(0, len(delivered), batch_rows):
        chunk = delivered[start:start + batch_rows]
        imps = [row for kind, row in chunk if kind == "imp"]
        outs = [row for kind, row in chunk if kind == "out"]
        offset[IMP_TOPIC] += len(imps)
        offset[OUT_TOPIC] += len(outs)
        dead = [(T0 + rng.randrange(0, 40 * 60_000), 1, 0) for _ in range(rng.randrange(0, 3))]
        batches.append(batch(imps, outs, dead,
                             [(IMP_TOPIC, 0, offset[IMP_TOPIC]),
                              (OUT_TOPIC, 0, offset[OUT_TOPIC])]))
    return batches


# ------------------------------------------------------------------- oracle

class Oracle:
    """What the tables must hold after a sequence of batches, computed the
    simplest way: records in order, first id wins."""

    def __init__(self):
        self.imps, self.outs, self.offsets = {}, {}, {}
        self.health = collections.defaultdict(lambda: [0, 0, 0, 0])

    def apply(self, b):
        counts = [0, 0, 0, 0]
        for row in b["imps"]:
            if row[0] in self.imps:
                counts[1] += 1
                self.health[minute(row[12])][0] += 1
            else:
                counts[0] += 1
                self.imps[row[0]] = row
        for row in b["outs"]:
            if row[0] in self.outs:
                counts[3] += 1
                self.health[minute(row[6] if row[6] is not None else row[4])][1] += 1
            else:
                counts[2] += 1
                self.outs[row[0]] = row
        for time_ms, imps, clicks in b["dead"]:
            self.health[minute(time_ms)][2] += imps
            self.health[minute(time_ms)][3] += clicks
        for topic, partition, offset in b["offsets"]:
            self.offsets[(topic, partition)] = offset
        return (counts[0], counts[1]), (counts[2], counts[3])

    def normalised(self):
        """Rows in SQLite's units, as text, like lite_snapshot(normalised=True)."""
        def text(rows):
            return sorted(tuple(None if v is None else str(v) for v in r) for r in rows)
        ad = collections.defaultdict(lambda: [0, 0, 0, 0])
        dim = collections.defaultdict(lambda: [0, 0, 0, 0])
        outcome = collections.defaultdict(lambda: [0, 0])
        dimensions = ("ad_category", "device", "os", "browser", "location")
        for r in self.imps.values():
            m = minute(r[12])
            ad[(m, r[3], r[4])][0] += 1
            ad[(m, r[3], r[4])][2] += r[11]
            for d, v in zip(dimensions, r[4:9]):
                dim[(d, m, v)][0] += 1
                dim[(d, m, v)][2] += r[11]
        for r in self.outs.values():
            m = minute(r[6] if r[6] is not None else r[4])
            outcome[(m, r[5])][0] += 1
            outcome[(m, r[5])][1] += r[3]
            if r[5] == "matched":
                ad[(m, r[7], r[8])][1] += 1
                ad[(m, r[7], r[8])][3] += r[3]
                for d, v in zip(dimensions, r[8:13]):
                    dim[(d, m, v)][1] += 1
                    dim[(d, m, v)][3] += r[3]
        return {
            "impressions": text(self.imps.values()),
            "clicks": text(self.outs.values()),
            "ad_stats_minute": text((*k, *v) for k, v in ad.items()),
            "dimension_stats_minute": text((*k, *v) for k, v in dim.items()),
            "click_outcomes_minute": text((*k, *v) for k, v in outcome.items()),
            "sink_health_minute": text((k, *v) for k, v in self.health.items()),
            "adjoin_offsets": text((GROUP, t, p, o) for (t, p), o in self.offsets.items()),
        }


def compare_all(label, conn, oracle):
    want = oracle.normalised()
    pg = pg_snapshot(PG_NORMALISED)
    lite = lite_snapshot(conn, normalised=True)
    for table in want:
        check(pg[table] == want[table], f"postgres {label}: {table} holds what it must "
                                        f"({len(want[table])} rows)")
        check(lite[table] == want[table], f"sqlite {label}: {table} holds what it must")
    pg_check_rollups(label)
    lite_check_rollups(conn, label)


def apply_both(label, b, conn, oracle, expect=None):
    want = oracle.apply(b)
    if expect is not None:
        check(want == expect, f"{label}: the oracle agrees with the hand count {expect}")
    got_pg = pg_apply(b)
    got_lite = lite_apply(conn, b)
    check(got_pg == want, f"postgres {label}: (inserted, skipped) = {got_pg}, want {want}")
    check(got_lite == want, f"sqlite {label}: (inserted, skipped) = {got_lite}, want {want}")


def replay_changes_only_duplicates(label, b, conn, oracle):
    """Applies b again: every row skipped, every table unchanged except the
    duplicate counters, which grow by exactly the batch's rows."""
    pg_before, lite_before = pg_snapshot(), lite_snapshot(conn)
    num_imps, num_outs = len(b["imps"]), len(b["outs"])
    replayed = dict(b, dead=[])  # dead letters are counted with their offsets, once
    apply_both(label + " again", replayed, conn, oracle,
               expect=((0, num_imps), (0, num_outs)))
    pg_after, lite_after = pg_snapshot(), lite_snapshot(conn)
    for table in PG_SNAPSHOT:
        if table != "sink_health_minute":
            check(pg_after[table] == pg_before[table],
                  f"postgres {label} again: {table} unchanged")
            check(lite_after[table] == lite_before[table],
                  f"sqlite {label} again: {table} unchanged")

    def duplicates(rows):
        return (sum(int(r[1]) for r in rows), sum(int(r[2]) for r in rows),
                sum(int(r[3]) for r in rows), sum(int(r[4]) for r in rows))
    for name, before, after in (("postgres", pg_before, pg_after),
                                ("sqlite", lite_before, lite_after)):
        b_, a_ = duplicates(before["sink_health_minute"]), duplicates(after["sink_health_minute"])
        check((a_[0] - b_[0], a_[1] - b_[1], a_[2:]) == (num_imps, num_outs, b_[2:]),
              f"{name} {label} again: only the duplicate counters grew, by the batch's rows")


# -------------------------------------------------------------------- cases

conn = sqlite3.connect(SQLITE_PATH, isolation_level=None)
conn.executescript(lite_sql("../../migrations/sqlite/0001_schema.sql"))
check(True, f"migrations applied (postgres {DB}, sqlite {sqlite3.sqlite_version})")
oracle = Oracle()

apply_both("impressions with a repeat inside the batch", first, conn, oracle,
           expect=((3, 1), (0, 0)))
rows, _ = psql("SELECT ad_id, impression_cost, event_time AT TIME ZONE 'UTC' FROM impressions "
               "WHERE impression_id = 'imp-1';")
check(rows == [["ad-1", "0.100000", "2026-11-26 16:00:59.999"]],
      f"postgres: the first of two repeats in one batch wins, to the millisecond {rows}")
replay_changes_only_duplicates("impressions batch", first, conn, oracle)

apply_both("outcomes: matched, unmatched, a repeat with another outcome", second, conn, oracle,
           expect=((0, 0), (5, 1)))
rows, _ = psql("SELECT outcome FROM clicks WHERE click_id = 'click-1';")
check(rows == [["matched"]], "postgres: the first outcome of a click wins")
check(conn.execute("SELECT outcome FROM clicks WHERE click_id = 'click-1'").fetchall()
      == [("matched",)], "sqlite: the first outcome of a click wins")
rows, _ = psql("SELECT to_char(minute AT TIME ZONE 'UTC', 'HH24:MI'), impressions, clicks, "
               "click_cost FROM ad_stats_minute WHERE ad_id = 'ad-1' ORDER BY minute;")
check(rows == [["16:00", "1", "1", "0.250000"], ["16:01", "1", "0", "0.000000"]],
      f"postgres: a matched click counts at its impression's minute {rows}")
rows, _ = psql("SELECT to_char(minute AT TIME ZONE 'UTC', 'HH24:MI'), outcome, clicks "
               "FROM click_outcomes_minute ORDER BY 1, 2;")
check(rows == [["16:00", "matched", "1"], ["16:01", "matched", "1"],
               ["16:02", "no_impression", "1"], ["16:03", "late", "1"],
               ["16:10", "matched", "1"]],
      f"postgres: unmatched clicks count at their own minute {rows}")
replay_changes_only_duplicates("outcomes batch", second, conn, oracle)
apply_both("impressions and outcomes, old and new", third, conn, oracle,
           expect=((1, 1), (1, 1)))
apply_both("a batch of only an offset", empty, conn, oracle, expect=((0, 0), (0, 0)))
compare_all("after the hand-made batches", conn, oracle)

# Views: NULL, not an error, where a denominator is 0.
rows, _ = psql("SELECT impressions, clicks, ctr, cpc, cpi FROM ad_kpis_minute "
               "WHERE ad_id = 'ad-9';")
check(rows == [["0", "1", None, "0.25", None]],
      f"postgres: ad_kpis_minute is NULL where it would divide by zero {rows}")
rows = conn.execute("SELECT impressions, clicks, ctr, cpc, cpi FROM ad_kpis_minute "
                    "WHERE ad_id = 'ad-9'").fetchall()
check(rows == [(0, 1, None, 0.25, None)], f"sqlite: the same {rows}")
rows, _ = psql("SELECT impressions, ctr, cpi FROM ad_kpis_minute WHERE ad_id = 'ad-3';")
check(rows == [], "postgres: no row where nothing happened")
for view in ("ad_kpis_minute", "dimension_kpis_minute", "kpis_minute", "data_health_minute"):
    pg_rows, _ = psql(f"SELECT count(*) FROM {view};")
    lite_rows = conn.execute(f"SELECT count(*) FROM {view}").fetchall()
    check(int(pg_rows[0][0]) == lite_rows[0][0] > 0,
          f"{view}: {lite_rows[0][0]} rows in both databases")
rows, _ = psql("SELECT to_char(minute AT TIME ZONE 'UTC', 'HH24:MI'), matched_clicks, "
               "no_impression_clicks, late_clicks, duplicate_impressions, duplicate_clicks, "
               "dead_letter_impressions, dead_letter_clicks FROM data_health_minute "
               "ORDER BY minute;")
lite_rows = conn.execute(
    "SELECT substr(minute, 12, 5), matched_clicks, no_impression_clicks, late_clicks, "
    "duplicate_impressions, duplicate_clicks, dead_letter_impressions, dead_letter_clicks "
    "FROM data_health_minute ORDER BY minute_ms").fetchall()
check([tuple(r[:1]) + tuple(int(x) for x in r[1:]) for r in rows] == lite_rows,
      f"data_health_minute agrees between the databases {lite_rows}")

# Offsets: set (not max), unmoved ones not rewritten, read per group and topic.
psql(PREPARES + f"EXECUTE upsert_offsets({literal(GROUP)}, "
     f"{array([IMP_TOPIC, OUT_TOPIC], 'text[]')}, {array([0, 0], 'int4[]')}, "
     f"{array([4, 8], 'int8[]')});")
rows, _ = psql(PREPARES + f"EXECUTE select_offsets({literal(GROUP)}, {literal(IMP_TOPIC)});")
check(rows == [["0", "4"], ["1", "1"], ["2", "0"]],
      f"postgres: offsets are set as given, even backwards {rows}")
for topic, partition, offset in ((IMP_TOPIC, 0, 4), (OUT_TOPIC, 0, 8)):
    conn.execute(LITE["upsert_offset"], (GROUP, topic, partition, offset))
rows = conn.execute(LITE["select_offsets"], (GROUP, IMP_TOPIC)).fetchall()
check(rows == [(0, 4), (1, 1), (2, 0)], f"sqlite: the same {rows}")
rows, _ = psql(PREPARES + f"EXECUTE select_offsets('another-group', {literal(IMP_TOPIC)});")
check(rows == [], "postgres: another group has no offsets")
oracle.offsets[(IMP_TOPIC, 0)] = 4

# Rejected rows: a failing statement changes nothing (the sink rolls back to a
# savepoint, finds the row, dead-letters it); the SQLSTATE class is 22 or 23,
# which StoreError::Rejected maps to "dead-letter the row".
before = pg_snapshot()
bad_rows = [
    ("a negative cost", "insert_impressions",
     imp_params([imp(7), imp(8, cost=-1)]), "23514"),
    ("a NUL byte in a text", "insert_impressions",
     imp_params([imp(7)]).replace("'{\"imp-7\"}'::text[]",
                                  "ARRAY[convert_from('\\x6100'::bytea, 'UTF8')]"), "22021"),
    ("matched without impression attributes", "insert_outcomes",
     out_params([unmatched(70, "imp-1", "matched")]), "23514"),
    ("an unmatched click with impression attributes", "insert_outcomes",
     out_params([matched(71, i1)[:5] + ("late",) + matched(71, i1)[6:]]), "23514"),
    ("an unknown outcome", "insert_outcomes",
     out_params([unmatched(72, "imp-1", "bogus")]), "23514"),
    ("a position beyond u32", "insert_outcomes",
     out_params([unmatched(73, "imp-1", "late", position=2**32)]), "23514"),
]
for what, statement, params, code in bad_rows:
    _, result = psql(PREPARES + "\\set VERBOSITY sqlstate\nBEGIN;\nSAVEPOINT batch;\n"
                     + f"EXECUTE {statement}({params});\n", allow_error=True)
    check(result.returncode != 0 and code in result.stderr,
          f"postgres: {what} is rejected with SQLSTATE {code} ({result.stderr.strip()})")
check(pg_snapshot() == before, "postgres: rejected statements changed nothing")
lite_before = lite_snapshot(conn)
for what, statement, row in (
        ("a negative cost", "insert_impression", imp(8, cost=-1)),
        ("matched without impression attributes", "insert_outcome",
         unmatched(70, "imp-1", "matched")),
        ("an unknown outcome", "insert_outcome", unmatched(72, "imp-1", "bogus")),
        ("a cost that is not an integer", "insert_impression", imp(9, cost=0.5))):
    conn.execute("BEGIN")
    conn.execute("SAVEPOINT row")
    try:
        conn.execute(LITE[statement], row)
        rejected = None
    except sqlite3.IntegrityError as error:
        rejected = str(error)
    conn.execute("ROLLBACK TO row")
    conn.execute("COMMIT")
    check(rejected is not None, f"sqlite: {what} is rejected ({rejected})")
check(lite_snapshot(conn) == lite_before, "sqlite: rejected rows changed nothing")

# A realistic stream in batches, then two of its batches delivered again.
batches = random_batches()
num_rows = sum(len(b["imps"]) + len(b["outs"]) for b in batches)
for index, b in enumerate(batches):
    apply_both(f"stream batch {index + 1}/{len(batches)} "
               f"({len(b['imps'])} impressions, {len(b['outs'])} outcomes)", b, conn, oracle)
compare_all(f"after a stream of {num_rows} rows", conn, oracle)
# The last batch again, as after a crash before the Kafka commit; then an
# older batch's rows delivered again (offsets where they are: replaying an old
# batch with its old offsets would move them back, by design).
replay_changes_only_duplicates("the last stream batch", batches[-1], conn, oracle)
replay_changes_only_duplicates("stream batch 3's rows", dict(batches[2], offsets=batches[-1]["offsets"]),
                               conn, oracle)
compare_all("after replaying stream batches", conn, oracle)

totals, _ = psql("SELECT count(*), sum(impression_cost) FROM impressions;")
rollup, _ = psql("SELECT sum(impressions), sum(impression_cost) FROM ad_stats_minute;")
check(totals == rollup, f"postgres: total impression cost is the same to the last digit "
                        f"in facts and rollups {totals[0]}")
print(f"all checks passed: postgres {DB}, sqlite {sqlite3.sqlite_version}")
PY
