"""make demo-cdc's measurements on the demo warehouse (DuckDB, read only).

  freshness.py sample DB STATE        after a micro-batch: every order version newly
                                      visible in analytics.fact_orders is a sample of
                                      (now - its commit time on the shard, raw._commit_ts);
                                      prints one line
  freshness.py report STATE           p50 / p95 / max of the samples beside the target
  freshness.py check DB N|CENTS|SUM.. fact_orders against the shards' live orders, given
                                      per shard as "count|sum(total_cents)|checksum"
                                      (docs/contracts.md §5 row checksum); exit 3 if not equal

Runs with the dbt venv's Python (it has duckdb).
"""

import json
import os
import sys
from datetime import datetime, timezone

import duckdb

TARGET_S = 600  # sla.cdc_freshness

VERSIONS = """
select f.order_id, f.order_version, min(o._commit_ts)
from analytics.fact_orders f
join raw.orders o on o.order_id = f.order_id and o.row_version = f.order_version
group by f.order_id, f.order_version
"""

# landing.ChecksumSQL(DuckDB, [order_id], order_version)
FACT = """
select count(*), count(distinct order_id), coalesce(sum(total_cents), 0)::bigint,
  cast(coalesce(sum(cast(('0x' || substr(md5(cast(order_id as varchar) || '|' || cast(order_version as varchar)), 1, 15)) as ubigint)::hugeint), 0) as varchar)
from analytics.fact_orders
"""


def load(path):
    if os.path.exists(path):
        with open(path) as f:
            return json.load(f)
    return {"seen": {}, "samples": []}


def pct(xs, p):
    return xs[min(len(xs) - 1, len(xs) * p // 100)]


def sample(db, state_path):
    st = load(state_path)
    now = datetime.now(timezone.utc)
    con = duckdb.connect(db, read_only=True)
    new = []
    rows = con.execute(VERSIONS).fetchall()
    for order_id, version, commit_ts in rows:
        if st["seen"].get(order_id) == version:
            continue
        st["seen"][order_id] = version
        new.append((now - commit_ts).total_seconds())
    con.close()
    st["samples"].extend(new)
    with open(state_path, "w") as f:
        json.dump(st, f)
    if new:
        new.sort()
        print(f"fact_orders {len(rows)} orders, {len(new)} new versions, commit -> fact_orders p50 {pct(new, 50):.1f}s max {new[-1]:.1f}s")
    else:
        print(f"fact_orders {len(rows)} orders, no new versions")


def report(state_path):
    xs = sorted(load(state_path)["samples"])
    if not xs:
        print("freshness: no samples")
        return 1
    print(f"freshness commit -> fact_orders over {len(xs)} order versions:")
    print(f"  {'p50':>8} {'p95':>8} {'max':>8}   target")
    print(f"  {pct(xs, 50):7.1f}s {pct(xs, 95):7.1f}s {xs[-1]:7.1f}s   < {TARGET_S // 60}m")
    return 0 if xs[-1] < TARGET_S else 3


def check(db, shards):
    n = cents = chk = 0
    for s in shards:
        a, b, c = s.split("|")
        n, cents, chk = n + int(a), cents + int(b), chk + int(c)
    con = duckdb.connect(db, read_only=True)
    fn, fdistinct, fcents, fchk = con.execute(FACT).fetchone()
    con.close()
    print(f"  shards (live orders): {n} orders, total_cents {cents}, checksum {chk}")
    print(f"  fact_orders:          {fn} orders ({fdistinct} distinct order_id), total_cents {fcents}, checksum {fchk}")
    if (fn, fdistinct, fcents, int(fchk)) == (n, n, cents, chk):
        print("  equal: fact_orders is the union of the shards, no duplicates")
        return 0
    print("  NOT EQUAL")
    return 3


if __name__ == "__main__":
    cmd, args = sys.argv[1], sys.argv[2:]
    if cmd == "sample":
        sample(*args)
    elif cmd == "report":
        sys.exit(report(*args))
    elif cmd == "check":
        sys.exit(check(args[0], args[1:]))
    else:
        sys.exit(f"usage: {sys.argv[0]} sample DB STATE | report STATE | check DB N|CENTS|SUM...")
