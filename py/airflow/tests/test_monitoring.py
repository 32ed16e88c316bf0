"""What an operator sees of the DAGs in Airflow's UI (documentation and runbook links on
every DAG, task group and task), and the callbacks against a real Alertmanager and a
real Pushgateway (Debian's packages, `make deps-apt`): a task that failed for good and
a missed finance deadline are posted as alerts, a published finance day is pushed."""

from __future__ import annotations

import json
import os
import shutil
import socket
import subprocess
import tempfile
import time
import urllib.request
from datetime import UTC, datetime
from types import SimpleNamespace

import pytest
from airflow.sdk.exceptions import AirflowFailException
from conftest import ROOT, fleet, registry, shard_ids


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _get(url: str):
    with urllib.request.urlopen(url, timeout=5) as resp:
        return json.load(resp)


def _serve(binary: str, args: list[str], ready: str):
    if shutil.which(binary) is None:
        msg = f"{binary} is not installed: run `make deps-apt`"
        if os.environ.get("CI"):
            pytest.fail(msg)
        pytest.skip(msg)
    proc = subprocess.Popen([binary, *args], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    for _ in range(100):
        try:
            urllib.request.urlopen(ready, timeout=1).read()
            return proc
        except OSError:
            time.sleep(0.1)
    proc.kill()
    pytest.fail(f"{binary} not ready at {ready}")


@pytest.fixture(scope="module")
def alertmanager():
    port, data = _free_port(), tempfile.mkdtemp(prefix="shardflow-am-")
    url = f"http://127.0.0.1:{port}"
    proc = _serve(
        "prometheus-alertmanager",
        [
            f"--config.file={ROOT / 'monitoring' / 'alertmanager' / 'alertmanager.yml'}",
            f"--storage.path={data}",
            f"--web.listen-address=127.0.0.1:{port}",
            "--cluster.listen-address=",
        ],
        f"{url}/-/ready",
    )
    yield url
    proc.kill()
    proc.wait()
    shutil.rmtree(data, ignore_errors=True)


@pytest.fixture(scope="module")
def pushgateway():
    port = _free_port()
    url = f"http://127.0.0.1:{port}"
    proc = _serve(
        "prometheus-pushgateway", [f"--web.listen-address=127.0.0.1:{port}"], f"{url}/-/ready"
    )
    yield url
    proc.kill()
    proc.wait()


def _runbooks() -> str:
    return (registry().get("monitoring") or {})["runbooks"]


@pytest.mark.parametrize("env", ["local", "production"])
def test_every_dag_group_and_task_links_its_runbook(env, request):
    bag, _ = request.getfixturevalue("local" if env == "local" else "prod")
    runbooks = _runbooks()
    for dag_id, d in bag.dags.items():
        assert runbooks in (d.doc_md or ""), f"{dag_id}: no runbook link in its doc_md"
        for t in d.tasks:
            assert t.doc_md and runbooks in t.doc_md, f"{dag_id}.{t.task_id}: no runbook link"
        for gid, g in d.task_group.get_task_group_dict().items():
            if gid and g.tooltip is not None and gid in {s["id"] for s in registry()["shards"]}:
                assert runbooks in g.tooltip, f"{dag_id} group {gid}: no runbook link"
        for t in d.tasks:
            assert t.on_failure_callback, f"{dag_id}.{t.task_id}: failures are not alerted"


def _received(url: str, name: str) -> list[dict]:
    return [a for a in _get(f"{url}/api/v2/alerts") if a["labels"]["alertname"] == name]


def test_task_failure_reaches_alertmanager(local, alertmanager, monkeypatch):
    monkeypatch.setenv("SHARDFLOW_ALERTMANAGER_URL", alertmanager)
    bag, sf = local
    shard = shard_ids()[1]
    task = {t.task_id: t for t in bag.dags[f"{fleet()}__hourly"].tasks}[f"{shard}.extract_orders"]
    ti = SimpleNamespace(dag_id=task.dag_id, task_id=task.task_id, run_id="scheduled__x")
    exc = AirflowFailException("extract-window exited 4: a permanent failure, not retried\nmore")
    # the callback the DAG gives the task, as Airflow calls it
    task.on_failure_callback[0]({"ti": ti, "exception": exc})
    alerts = _received(alertmanager, "ShardflowAirflowTaskFailed")
    assert len(alerts) == 1
    a = alerts[0]
    assert a["labels"] == {
        "alertname": "ShardflowAirflowTaskFailed",
        "fleet": fleet(),
        "severity": "critical",
        "dag_id": f"{fleet()}__hourly",
        "task_id": f"{shard}.extract_orders",
        "shard": shard,
    }
    assert a["annotations"]["runbook_url"] == f"{_runbooks()}/alerts.md#shardflowairflowtaskfailed"
    assert "exited 4" in a["annotations"]["description"]
    assert "more" not in a["annotations"]["description"]  # the first line only
    assert a["status"]["state"] == "active"


def test_finance_deadline_reaches_alertmanager(local, alertmanager, monkeypatch):
    _, sf = local
    monkeypatch.setenv("SHARDFLOW_ALERTMANAGER_URL", alertmanager)
    run = "scheduled__2026-11-24T00:00:00+00:00"
    sf.finance_deadline_missed(
        context={"dag_run": {"dag_run_id": run}}, alert_at="05:00", ready_by="06:00"
    )
    alerts = _received(alertmanager, "ShardflowFinanceDeadline")
    assert [a["labels"]["run_id"] for a in alerts] == [run]
    assert "not done at 05:00 UTC" in alerts[0]["annotations"]["summary"]


def test_unreachable_alertmanager_never_fails_the_callback(local, monkeypatch, caplog):
    _, sf = local
    monkeypatch.setenv("SHARDFLOW_ALERTMANAGER_URL", f"http://127.0.0.1:{_free_port()}")
    assert sf.post_alert("ShardflowAirflowTaskFailed", {}, "s", "d") is False
    assert any("not posted" in r.getMessage() for r in caplog.records)


def test_finance_day_pushed_and_never_moves_back(local, pushgateway, monkeypatch):
    _, sf = local
    monkeypatch.setenv("SHARDFLOW_PUSHGATEWAY_URL", pushgateway)

    def pushed() -> float:
        for g in _get(f"{pushgateway}/api/v1/metrics")["data"]:
            if g["labels"] == {"job": "finance", "fleet": fleet()}:
                return float(g[sf.FINANCE_READY_DAY]["metrics"][0]["value"])
        return -1

    day = datetime(2026, 11, 24, tzinfo=UTC)
    sf.finance_published({"data_interval_start": day})
    assert pushed() == day.timestamp()
    # a rerun of an older day leaves the newest
    sf.finance_published({"data_interval_start": datetime(2026, 11, 20, tzinfo=UTC)})
    assert pushed() == day.timestamp()
    sf.finance_published({"data_interval_start": datetime(2026, 11, 25, 0, tzinfo=UTC)})
    assert pushed() == datetime(2026, 11, 25, tzinfo=UTC).timestamp()
