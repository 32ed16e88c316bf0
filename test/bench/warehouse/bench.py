"""The warehouse benchmark (`make bench` → bench-warehouse): does the cost of the CDC
micro-batch's dbt build and of the hourly dq run follow the change set, or the history?

For raw history of 1x and 10x size (DuckDB, the contract shape of docs/contracts.md §6,
every row owned by its shard), it builds the project once, loads the same small change
set (new versions of existing orders, new orders, their lines), and times

  - `dbt build --exclude path:models/marts/finance tag:full_history` (what the CDC
    micro-batch runs), and
  - `dq --cross-shard` (the hourly DAG's warehouse checks; its PCI scan reads the files
    loaded since its last clean scan),

then prints each figure at 1x and 10x and the ratio (goal: at most 1.2; history grows,
the change set does not). Not in CI: it measures, it does not judge.

    var/venv/dbt/bin/python test/bench/warehouse/bench.py --dir var/bench/warehouse
"""
import argparse
import os
import shutil
import subprocess
import sys
import time
from pathlib import Path

import duckdb
import yaml

ROOT = Path(__file__).resolve().parents[3]
sys.path.insert(0, str(ROOT / "test" / "fixtures" / "dbt"))
from build_fixture import create_raw  # noqa: E402

FILE_ROWS = 1000


def history(con):
    con.execute("""INSERT INTO raw._load_history
        SELECT _file, split_part(_file, '/', 2), _shard, 'batch', count(*), '0', md5(_file), max(_loaded_at)
        FROM (SELECT _file, _shard, _loaded_at FROM raw.orders UNION ALL SELECT _file, _shard, _loaded_at FROM raw.order_items
              UNION ALL SELECT _file, _shard, _loaded_at FROM raw.payments) AS r
        WHERE _file NOT IN (SELECT file_key FROM raw._load_history)
        GROUP BY _file, _shard""")


def lineage(file_expr):
    # s00 owns buckets 0-1023 and s01 1024-2047 in every epoch of shards.yaml
    return f"""CASE WHEN bucket < 1024 THEN 's00' ELSE 's01' END AS _shard, 'batch' AS _source, 'r' AS _op,
        1 AS _registry_epoch, NULL AS _window_start, NULL AS _window_end, updated_at AS _commit_ts, NULL AS _lsn,
        NULL AS _txid, {file_expr} AS _file, now() AS _loaded_at"""


def add_orders(con, lo, hi, version, tag):
    """Orders lo..hi-1 at version, two lines each, one payment each, in files of FILE_ROWS."""
    base = "TIMESTAMPTZ '2026-11-01 00:00:00+00'"
    con.execute(f"""INSERT INTO raw.orders BY NAME
        SELECT * EXCLUDE (i), {lineage(f"'landing/orders/{tag}/' || (CASE WHEN bucket < 1024 THEN 's00' ELSE 's01' END) || '/' || (i // {FILE_ROWS})")}
        FROM (SELECT i, printf('01900000-0000-7000-8000-%012d', i) AS order_id, i AS customer_id, (i % 2048)::INTEGER AS bucket,
                     CASE {version} WHEN 1 THEN 'placed' ELSE 'paid' END AS status, 'EUR' AS currency, 'eu-west' AS region,
                     (1000 + i % 5000)::BIGINT AS total_cents, 0::BIGINT AS refunded_cents, false AS deleted,
                     {base} + to_seconds(i % 2000000) AS created_at, {base} + to_seconds(i % 2000000 + {version}) AS updated_at,
                     {version}::BIGINT AS row_version
              FROM range({lo}, {hi}) AS t(i))""")
    con.execute(f"""INSERT INTO raw.order_items BY NAME
        SELECT * EXCLUDE (i), {lineage(f"'landing/order_items/{tag}/' || (CASE WHEN bucket < 1024 THEN 's00' ELSE 's01' END) || '/' || (i // {FILE_ROWS})")}
        FROM (SELECT i, printf('01900000-0000-7000-8000-%012d', i) AS order_id, l::INTEGER AS line_no, i AS customer_id,
                     (i % 2048)::INTEGER AS bucket, 'SKU-' || l AS sku, 2::INTEGER AS quantity, 500::BIGINT AS unit_price_cents,
                     false AS deleted, {base} + to_seconds(i % 2000000) AS created_at,
                     {base} + to_seconds(i % 2000000 + {version}) AS updated_at, {version}::BIGINT AS row_version
              FROM range({lo}, {hi}) AS t(i), range(1, 3) AS u(l))""")
    con.execute(f"""INSERT INTO raw.payments BY NAME
        SELECT * EXCLUDE (i), {lineage(f"'landing/payments/{tag}/' || (CASE WHEN bucket < 1024 THEN 's00' ELSE 's01' END) || '/' || (i // {FILE_ROWS})")}
        FROM (SELECT i, printf('01900000-0000-7000-9000-%012d', i) AS payment_id, printf('01900000-0000-7000-8000-%012d', i) AS order_id,
                     i AS customer_id, (i % 2048)::INTEGER AS bucket, 'charge' AS kind, 'captured' AS status,
                     (1000 + i % 5000)::BIGINT AS amount_cents, 'EUR' AS currency, 'tok_k1_' || md5(i::VARCHAR) AS card_number,
                     'tok_k1_' || md5('h' || i::VARCHAR) AS card_holder, '4242' AS card_last4, false AS deleted,
                     {base} + to_seconds(i % 2000000) AS created_at, {base} + to_seconds(i % 2000000 + {version}) AS updated_at,
                     {version}::BIGINT AS row_version
              FROM range({lo}, {hi}) AS t(i))""")
    history(con)


def checkpoint(db):
    """Seconds to fold the WAL into the database file."""
    t0 = time.monotonic()
    con = duckdb.connect(str(db))
    con.execute("CHECKPOINT")
    con.close()
    return time.monotonic() - t0


def timed(cmd, env, cwd):
    t0 = time.monotonic()
    p = subprocess.run(cmd, cwd=cwd, env=env, capture_output=True, text=True)
    dt = time.monotonic() - t0
    if p.returncode not in (0, 3, 75):  # dq: 3 a FAIL, 75 the shards unreachable (not connected here)
        sys.exit(f"bench-warehouse: {' '.join(cmd[:3])} exited {p.returncode}\n{p.stdout[-3000:]}\n{p.stderr[-3000:]}")
    return dt


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--dir", default=str(ROOT / "var/bench/warehouse"))
    ap.add_argument("--orders", type=int, default=100_000, help="orders of the 1x history")
    ap.add_argument("--growth", type=int, default=10)
    ap.add_argument("--change", type=int, default=2000, help="orders in the change set (half updated, half new)")
    ap.add_argument("--dbt", default=str(ROOT / "var/venv/dbt/bin/dbt"))
    ap.add_argument("--dq", default=str(ROOT / "var/bin/dq"))
    a = ap.parse_args()
    work = Path(a.dir).resolve()
    shutil.rmtree(work, ignore_errors=True)
    reg = yaml.safe_load(open(ROOT / "shards.yaml"))
    tables = {t["name"]: t for t in reg["tables"]}
    figures = {}
    for scale in (1, a.growth):
        d = work / f"x{scale}"
        d.mkdir(parents=True)
        db = d / "warehouse.duckdb"
        n = a.orders * scale
        con = duckdb.connect(str(db))
        create_raw(con, tables)
        add_orders(con, 0, n, 1, "history")
        con.close()
        # the bench's registry: shards.yaml with the local warehouse at this file
        line = "warehouse: {kind: duckdb, path: var/warehouse.duckdb}"
        text = (ROOT / "shards.yaml").read_text()
        if line not in text:
            sys.exit(f"bench-warehouse: shards.yaml has no line {line!r} to point at the bench's warehouse")
        regfile = d / "shards.yaml"
        regfile.write_text(text.replace(line, f"warehouse: {{kind: duckdb, path: {db}}}"))
        env = dict(os.environ, SHARDFLOW_DUCKDB_PATH=str(db), SHARDFLOW_REGISTRY=str(regfile), SHARDFLOW_ENV="local",
                   DBT_SEND_ANONYMOUS_USAGE_STATS="false")
        for sh in reg["shards"]:  # no shard runs here: dq times its warehouse checks only
            env[sh["connection"]["extract"]["env"]] = "postgres://bench@127.0.0.1:1/none?connect_timeout=1"
        dbt = [a.dbt, "build", "--exclude", "path:models/marts/finance", "tag:full_history", "--profiles-dir", ".",
               "--target-path", str(d / "target"), "--log-path", str(d / "logs")]
        dq = [a.dq, "--cross-shard", "--run-id", "bench", "--freshness-sla", "1000000h"]
        # DuckDB writes a transaction to its WAL and folds it into the file at a checkpoint,
        # which the next process to open the file would pay: each writer's figure
        # includes the checkpoint of its own writes (a CHECKPOINT right after it)
        full = timed(dbt, env, ROOT / "dbt") + checkpoint(db)
        timed(dq, env, ROOT)  # the first dq run scans every file (its ledger is empty)
        checkpoint(db)
        # the change set: half new versions of existing orders, half new orders
        con = duckdb.connect(str(db))
        add_orders(con, n - a.change // 2, n, 2, "change")
        add_orders(con, n, n + a.change // 2, 1, "change-new")
        con.execute("CHECKPOINT")
        con.close()
        inc = timed(dbt, env, ROOT / "dbt") + checkpoint(db)
        dqt = timed(dq, env, ROOT) + checkpoint(db)
        figures[scale] = (full, inc, dqt)
        print(f"bench-warehouse: {n} orders ({3 * n} lines and payments) at {scale}x: full build {full:.1f}s, "
              f"micro-batch build {inc:.1f}s, dq {dqt:.1f}s", file=sys.stderr)
    one, big = figures[1], figures[a.growth]
    print(f"\nwarehouse: the same change set ({a.change} orders, {2 * a.change} lines, {a.change} payments) on raw history "
          f"of {a.orders} orders (1x) and {a.orders * a.growth} ({a.growth}x), DuckDB")
    print(f"{'figure':<46}{'1x':>10}{str(a.growth) + 'x':>10}{'ratio':>8}  goal")
    for i, name in [(1, "dbt micro-batch build (exclude finance)"), (2, "dq --cross-shard (warehouse checks)"), (0, "dbt full build (reference)")]:
        goal = "≤ 1.2" if i else "grows with history"
        print(f"{name:<46}{one[i]:>9.1f}s{big[i]:>9.1f}s{big[i] / one[i]:>8.2f}  {goal}")


if __name__ == "__main__":
    main()
