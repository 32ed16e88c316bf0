"""The local-target DAGs (dags/local) in a real Airflow DagBag: imports, task graphs,
pools, retries, and the subprocess factory's exit-code mapping on real processes."""

from __future__ import annotations

import os
import stat
from datetime import UTC, datetime, timedelta

import pytest
from airflow.sdk.exceptions import AirflowException, AirflowFailException, AirflowSkipException
from conftest import fleet, shard_ids, table_names


def dag(bag, kind):
    return bag.dags[f"{fleet()}__{kind}"]


def test_no_import_errors(local):
    bag, _ = local
    assert bag.import_errors == {}
    assert sorted(bag.dag_ids) == sorted(
        f"{fleet()}__{k}"
        for k in ("hourly", "finance_daily", "backfill", "cdc_microbatch", "retention_daily")
    )


def test_hourly_one_group_per_shard(local):
    bag, _ = local
    d = dag(bag, "hourly")
    groups = sorted(k for k, v in d.task_group.children.items() if hasattr(v, "children"))
    assert groups == sorted(shard_ids())
    tasks = {t.task_id: t for t in d.tasks}
    for shard in shard_ids():
        for table in table_names():
            ex, ld, dq = (tasks[f"{shard}.{s}_{table}"] for s in ("extract", "load", "dq"))
            assert ex.upstream_task_ids == {"window_closed"}
            assert ld.upstream_task_ids == {ex.task_id}
            assert dq.upstream_task_ids == {ld.task_id}
            assert "dbt_build" in dq.downstream_task_ids
            # no edge from one shard's group into another's
            assert all(
                u.startswith(shard + ".") or u == "window_closed" for u in ex.upstream_task_ids
            )
            assert ex.arguments[:4] == ["--shard", shard, "--table", table]
            assert ex.command == "extract-window" and ld.command == "load" and dq.command == "dq"
    assert tasks["dq_cross_shard"].upstream_task_ids == {"dbt_build"}
    # extract.start in shards.yaml: every window from it, also the missed ones
    assert d.max_active_runs == 4 and d.catchup is True
    assert d.start_date == datetime(2026, 12, 1, tzinfo=UTC)
    assert tasks["window_closed"].delta == timedelta(minutes=5)


def test_pools_serialise_duckdb_writers(local):
    bag, sf = local
    for t in dag(bag, "hourly").tasks:
        command = getattr(t, "command", None)
        if command in ("load", "dq", "dbt"):
            assert t.pool == sf.WRITER_POOL, t.task_id
        else:
            assert t.pool == "default_pool", t.task_id
    assert sf.WRITER_POOL == "shardflow_duckdb_writer"


def test_retries_only_on_75(local):
    bag, sf = local
    for t in dag(bag, "hourly").tasks:
        if getattr(t, "command", None):
            assert t.retries == 3 and t.retry_exponential_backoff == 2.0
    sf.raise_for_exit("load", 0)
    with pytest.raises(AirflowException) as retry:
        sf.raise_for_exit("load", 75)
    assert not isinstance(retry.value, AirflowFailException)
    for code in (1, 2, 3, 4):
        with pytest.raises(AirflowFailException):
            sf.raise_for_exit("load", code)
    with pytest.raises(AirflowSkipException):
        sf.raise_for_exit("extract-window", 99)  # the shard is paused


def test_a_paused_shard_skips_only_its_group(local):
    # extract-window of a paused shard exits 99 (skipped); load and dq follow it with
    # the default trigger rule, and the fleet's dbt build goes on without that group
    bag, _ = local
    tasks = {t.task_id: t for t in dag(bag, "hourly").tasks}
    shard = shard_ids()[0]
    for table in table_names():
        assert tasks[f"{shard}.load_{table}"].trigger_rule == "all_success"
        assert tasks[f"{shard}.dq_{table}"].trigger_rule == "all_success"
    assert tasks["dbt_build"].trigger_rule == "none_failed_min_one_success"


@pytest.mark.parametrize("code,fails_now", [(0, None), (75, False), (3, True), (2, True)])
def test_subprocess_exit_codes(local, tmp_path, monkeypatch, code, fails_now):
    """A real process: the factory runs var/bin/<command> and maps its exit code."""
    _, sf = local
    script = tmp_path / "load"
    script.write_text(f'#!/bin/sh\necho "args: $*"\necho "env: $SHARDFLOW_ENV"\nexit {code}\n')
    script.chmod(script.stat().st_mode | stat.S_IEXEC)
    monkeypatch.setenv("SHARDFLOW_BIN", str(tmp_path))
    op = sf.task("load_orders", "load", ["--all"], shards=["s00"])
    if fails_now is None:
        op.execute(context={})
        return
    with pytest.raises(AirflowException) as err:
        op.execute(context={})
    assert isinstance(err.value, AirflowFailException) is fails_now
    assert f"exited {code}" in str(err.value)


def test_finance_waits_for_every_shard(local):
    bag, sf = local
    d = dag(bag, "finance_daily")
    tasks = {t.task_id: t for t in d.tasks}
    waits = sorted(k for k in tasks if k.startswith("wait_"))
    assert waits == sorted(f"wait_{s}" for s in shard_ids())
    for s in shard_ids():
        w = tasks[f"wait_{s}"]
        assert w.external_task_group_id == s
        assert w.external_dag_id == f"{fleet()}__hourly"
        assert w.mode == "reschedule"
        assert w.timeout == 6 * 3600  # gives up at sla.finance_ready_by (06:00)
        day = datetime(2026, 11, 24, tzinfo=UTC)
        dates = w.execution_date_fn(day)
        assert len(dates) == 24 and dates[0] == day and dates[-1] == day + timedelta(hours=23)
    assert tasks["dbt_finance"].upstream_task_ids == set(waits)
    assert tasks["dbt_finance"].dbt_vars == {
        "finance_day_from": "{{ data_interval_start | ds }}",
        "finance_day_to": "{{ data_interval_start | ds }}",
    }
    # the deadline alert: the run of day D (logical date D 00:00) alerts at D+1 05:00
    alerts = d.deadline if isinstance(d.deadline, list) else [d.deadline]
    assert len(alerts) == 1
    assert alerts[0].interval == timedelta(days=1, hours=5)
    assert alerts[0].callback.path == "shardflow_tasks.finance_deadline_missed"


def test_backfill_windows(local):
    bag, sf = local
    d = dag(bag, "backfill")
    assert type(d.timetable).__name__ == "NullTimetable"
    assert set(d.params.keys()) == {"shard", "table", "from", "to"}
    now = datetime(2026, 11, 24, 12, 0, tzinfo=UTC)
    w, lag = timedelta(hours=1), timedelta(minutes=5)
    got = sf.backfill_windows(
        "orders",
        "2026-11-24T08:00Z",
        "2026-11-24T10:00:00+00:00",
        ["orders", "payments"],
        w,
        lag,
        now,
    )
    assert got == [
        {"table": "orders", "start": "2026-11-24T08:00:00Z", "end": "2026-11-24T09:00:00Z"},
        {"table": "orders", "start": "2026-11-24T09:00:00Z", "end": "2026-11-24T10:00:00Z"},
    ]
    assert (
        len(
            sf.backfill_windows(
                "all", "2026-11-24T08:00Z", "2026-11-24T10:00Z", ["a", "b"], w, lag, now
            )
        )
        == 4
    )
    for args, msg in [
        (("orders", "2026-11-24T08:30Z", "2026-11-24T10:00Z"), "not aligned"),
        (("orders", "2026-11-24T10:00Z", "2026-11-24T08:00Z"), "not after"),
        (("orders", "2026-11-24T08:00Z", "2026-11-24T12:00Z"), "last closed window"),
        (("nope", "2026-11-24T08:00Z", "2026-11-24T10:00Z"), "not one of"),
        (("orders", "2026-01-01T00:00Z", "2026-11-24T10:00Z"), "split the range"),
        (("orders", "yesterday", "2026-11-24T10:00Z"), "not an RFC 3339"),
    ]:
        with pytest.raises(AirflowFailException, match=msg):
            sf.backfill_windows(*args, ["orders", "payments"], w, lag, now)
    tasks = {t.task_id: t for t in d.tasks}
    assert tasks["dbt_build"].trigger_rule == "none_failed_min_one_success"
    for s in shard_ids():
        assert tasks[f"{s}.window.load"].upstream_task_ids == {f"{s}.plan", f"{s}.window.extract"}
        assert tasks[f"{s}.window.extract"].max_active_tis_per_dagrun == 2


def test_cdc_microbatch(local):
    bag, _ = local
    d = dag(bag, "cdc_microbatch")
    assert d.max_active_runs == 1
    # sla.cdc_freshness 10m: a run every 5m, killed past the budget
    assert d.timetable.delta == timedelta(minutes=5)
    assert d.dagrun_timeout == timedelta(minutes=10)
    tasks = {t.task_id: t for t in d.tasks}
    assert tasks["tokenize_cdc"].command == "tokenize"
    assert tasks["tokenize_cdc"].arguments == ["cdc", "--bounded"]
    assert tasks["load_cdc"].arguments == ["--all", "--source", "cdc", "--since", "48h"]
    assert tasks["load_cdc"].upstream_task_ids == {"tokenize_cdc"}
    assert tasks["dbt_incremental"].upstream_task_ids == {"load_cdc"}


def test_retention_daily(local):
    bag, _ = local
    d = dag(bag, "retention_daily")
    assert d.max_active_runs == 1 and not d.catchup
    (purge,) = d.tasks
    assert purge.command == "shardctl" and purge.arguments == ["retention", "purge"]
    # it writes the DuckDB warehouse: one writer at a time with load, dq and dbt
    assert purge.pool == "shardflow_duckdb_writer"


def test_finance_deadline_callback_names_the_run(local, caplog):
    # the scheduler hands a deadline callback the run as the REST API's JSON
    _, sf = local
    run = "scheduled__2026-11-24T00:00:00+00:00"
    sf.finance_deadline_missed(context={"dag_run": {"dag_run_id": run}}, alert_at="05:00")
    lines = [r.getMessage() for r in caplog.records if r.levelname == "ERROR"]
    assert len(lines) == 1
    assert lines[0].startswith(f"finance run {run} of {fleet()} not done at 05:00 UTC")


def test_local_dbt_runs_from_the_project(local, monkeypatch):
    bag, sf = local
    monkeypatch.setenv("SHARDFLOW_CODE_VERSION", "abc123")
    t = {t.task_id: t for t in dag(bag, "hourly").tasks}["dbt_build"]
    argv, env, cwd = t.argv()
    assert cwd == sf.REPO / "dbt"
    assert argv[0].endswith("var/venv/dbt/bin/dbt") or os.environ.get("SHARDFLOW_DBT")
    assert argv[1:4] == ["build", "--exclude", "path:models/marts/finance"]
    assert argv[-2:] == ["--vars", '{"code_version": "abc123"}']
    assert env["SHARDFLOW_DUCKDB_PATH"] == str(sf.REPO / "var" / "warehouse.duckdb")
