"""Times Airflow's parse of one generated DAG folder (test/bench/scale, part dags).

usage: python parse.py DAG_FOLDER WARM_RUNS OUT_JSON

Writes one JSON object to OUT_JSON (Airflow logs to stdout): seconds to import
Airflow's DagBag; the first parse of the folder in this process (cold: it also imports
the operators and providers the DAG files use, as a DAG processor's fresh parse
process does) and the best of WARM_RUNS more (modules cached); import errors; and per
DAG its file, task count, KubernetesPodOperator task count and scheduled runs per hour.
Loaded as py/airflow/tests/conftest.py loads a folder: BundleDagBag, shardflow_tasks
purged first.
"""

from __future__ import annotations

import json
import os
import sys
import tempfile
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

os.environ.setdefault("AIRFLOW_HOME", tempfile.mkdtemp(prefix="shardflow-bench-airflow-"))
os.environ["AIRFLOW__CORE__LOAD_EXAMPLES"] = "False"


def runs_per_hour(dag) -> float | None:
    """Scheduled runs per hour of dag's timetable, averaged over one day (None: manual)."""
    tt = dag.timetable  # airflow.sdk timetables: .delta (DeltaTrigger), .expression (cron)
    delta = getattr(tt, "delta", None)
    if isinstance(delta, timedelta):
        return 3600 / delta.total_seconds()
    expr = getattr(tt, "expression", None)
    if not isinstance(expr, str):
        return None
    from croniter import croniter

    start = datetime(2026, 3, 10, tzinfo=UTC)
    it = croniter(expr, start)
    n = 0
    while it.get_next(datetime) <= start + timedelta(days=1):
        n += 1
    return n / 24


def parse(folder: str):
    from airflow.dag_processing.dagbag import BundleDagBag

    sys.modules.pop("shardflow_tasks", None)
    sys.path[:] = [p for p in sys.path if p != folder]
    st = time.perf_counter()
    bag = BundleDagBag(dag_folder=folder, bundle_path=Path(folder), bundle_name="dags-folder")
    return bag, time.perf_counter() - st


def main() -> None:
    folder, warm, out = sys.argv[1], int(sys.argv[2]), sys.argv[3]
    st = time.perf_counter()
    from airflow.dag_processing.dagbag import BundleDagBag  # noqa: F401

    imported = time.perf_counter() - st
    bag, cold = parse(folder)
    warms = [parse(folder)[1] for _ in range(warm)]
    try:
        from airflow.providers.cncf.kubernetes.operators.pod import KubernetesPodOperator
    except ImportError:
        KubernetesPodOperator = None  # noqa: N806
    dags = {}
    for dag_id, dag in sorted(bag.dags.items()):
        pods = 0
        if KubernetesPodOperator is not None:
            pods = sum(isinstance(t, KubernetesPodOperator) for t in dag.tasks)
        dags[dag_id] = {
            "file": Path(dag.fileloc).name,
            "tasks": len(dag.tasks),
            "pods": pods,
            "runs_per_hour": runs_per_hour(dag),
        }
    files = {Path(s.file).name: s.duration.total_seconds() for s in bag.dagbag_stats}
    result = {
        "import_seconds": imported,
        "cold_seconds": cold,
        "warm_seconds": min(warms) if warms else None,
        "import_errors": {Path(k).name: v for k, v in bag.import_errors.items()},
        "dags": dags,
        "file_seconds": files,
    }
    Path(out).write_text(json.dumps(result))


if __name__ == "__main__":
    main()
