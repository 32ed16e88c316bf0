"""The k8s-target DAGs (dags/production): KubernetesPodOperator pod specs built without a
cluster (build_pod_request_obj), checked for image, entrypoint, args, secret references
and the absence of any secret value; the exit-code mapping of the pod operator; and the
task image (docker/Dockerfile) against the entrypoints the pods name."""

from __future__ import annotations

import re

import pytest
from airflow.sdk.exceptions import AirflowException, AirflowFailException, AirflowSkipException
from conftest import ROOT, fleet, registry, shard_ids, table_names
from kubernetes.client import models as k8s


def tasks(bag, kind):
    return {t.task_id: t for t in bag.dags[f"{fleet()}__{kind}"].tasks}


def production():
    return registry()["environments"]["production"]


def test_no_import_errors(prod):
    bag, _ = prod
    assert bag.import_errors == {}
    assert len(bag.dag_ids) == 5


def test_extract_pod_spec(prod):
    bag, sf = prod
    reg = registry()
    for shard in reg["shards"]:
        t = tasks(bag, "hourly")[f"{shard['id']}.extract_orders"]
        pod = t.build_pod_request_obj(dry_run=True)
        (c,) = pod.spec.containers
        assert c.image == production()["airflow"]["image"]
        assert pod.metadata.namespace == production()["airflow"]["namespace"]
        assert c.command == ["/usr/local/bin/extract-window"]
        assert c.args[:4] == ["--shard", shard["id"], "--table", "orders"]
        env = {e.name: e for e in c.env}
        assert env["SHARDFLOW_ENV"].value == "production"
        assert env["SHARDFLOW_REGISTRY"].value == "/etc/shardflow/shards.yaml"
        ref = shard["connection"]["extract"]
        dsn = env[ref["env"]]
        assert dsn.value is None
        assert dsn.value_from.secret_key_ref.name == ref["k8s_secret"]
        assert dsn.value_from.secret_key_ref.key == ref["k8s_key"]
        key = env[reg["tokenizer"]["key"]["env"]]
        assert key.value_from.secret_key_ref.name == reg["tokenizer"]["key"]["k8s_secret"]
        # only this shard's DSN: no other shard's secret in its pod
        others = {s["connection"]["extract"]["env"] for s in reg["shards"]} - {ref["env"]}
        assert not others & set(env)
        labels = pod.metadata.labels
        assert labels["shardflow.io/shard"] == shard["id"]
        assert labels["shardflow.io/table"] == "orders"
        assert labels["shardflow.io/fleet"] == fleet()
        assert labels["app.kubernetes.io/component"] == "extract-window"
        assert c.resources.requests == {"cpu": "500m", "memory": "512Mi"}
        assert c.resources.limits == {"cpu": "2", "memory": "2Gi"}
        assert pod.spec.security_context.run_as_non_root is True
        assert c.security_context.read_only_root_filesystem is True
        mounts = {m.mount_path: m for m in c.volume_mounts}
        assert mounts["/etc/shardflow"].read_only is True


def test_no_secret_values_in_any_pod(prod):
    bag, _ = prod
    for kind in ("hourly", "finance_daily", "backfill", "cdc_microbatch", "retention_daily"):
        for t in tasks(bag, kind).values():
            if not hasattr(t, "build_pod_request_obj"):
                continue
            pod = t.build_pod_request_obj(dry_run=True)
            text = repr(pod.to_dict()).lower()
            for bad in ("postgres://", "password", "private_key", "snowflake://"):
                assert bad not in text, (t.task_id, bad)
            for e in pod.spec.containers[0].env or []:
                if e.name.startswith("SHARDFLOW_") and e.name.endswith(("_DSN", "_KEY")):
                    assert e.value is None and e.value_from.secret_key_ref, (t.task_id, e.name)


def test_dq_and_load_and_dbt_pods(prod):
    bag, _ = prod
    hourly = tasks(bag, "hourly")
    wh = production()["warehouse"]["dsn"]
    load = hourly["s01.load_payments"].build_pod_request_obj(dry_run=True).spec.containers[0]
    assert load.command == ["/usr/local/bin/load"]
    assert {e.name for e in load.env} == {"SHARDFLOW_ENV", "SHARDFLOW_REGISTRY", wh["env"]}
    cross = hourly["dq_cross_shard"].build_pod_request_obj(dry_run=True).spec.containers[0]
    envs = {e.name for e in cross.env}
    assert all(s["connection"]["extract"]["env"] in envs for s in registry()["shards"])
    dbt = hourly["dbt_build"]
    assert dbt.pool == "shardflow_dbt"
    spec = dbt.build_pod_request_obj(dry_run=True).spec.containers[0]
    assert spec.command == ["/opt/shardflow/venv/bin/dbt"]
    assert spec.args[-1] == '{"code_version": "0.1.0"}'
    assert [f.secret_ref.name for f in spec.env_from] == [wh["k8s_secret"]]
    fin = tasks(bag, "finance_daily")["dbt_finance"]
    assert '"finance_day_from": "{{ data_interval_start | ds }}"' in fin.arguments[-1]


def test_retention_pod(prod):
    bag, _ = prod
    purge = tasks(bag, "retention_daily")["retention_purge"]
    c = purge.build_pod_request_obj(dry_run=True).spec.containers[0]
    assert c.command == ["/usr/local/bin/shardctl"] and c.args == ["retention", "purge"]
    # the warehouse DSN only: the bucket through the service account, no shard, no key
    wh = production()["warehouse"]["dsn"]
    assert {e.name for e in c.env} == {"SHARDFLOW_ENV", "SHARDFLOW_REGISTRY", wh["env"]}


def test_tokenize_pod(prod):
    bag, _ = prod
    c = tasks(bag, "cdc_microbatch")["tokenize_cdc"].build_pod_request_obj(dry_run=True)
    c = c.spec.containers[0]
    assert c.command == ["/usr/local/bin/tokenize"] and c.args == ["cdc", "--bounded"]
    # every shard's extract DSN (a pending move's fence rows), and never the tokenizer
    # key: the Connect transform tokenized before Kafka, the consumer is out of PCI scope
    env = {e.name: e for e in c.env if e.value_from}
    assert {s["connection"]["extract"]["env"] for s in registry()["shards"]} <= set(env)
    assert registry()["tokenizer"]["key"]["env"] not in env


def pod_with_exit(code):
    term = k8s.V1ContainerStateTerminated(exit_code=code)
    status = k8s.V1ContainerStatus(
        name="base",
        image="x",
        image_id="x",
        ready=False,
        restart_count=0,
        state=k8s.V1ContainerState(terminated=term),
    )
    return k8s.V1Pod(status=k8s.V1PodStatus(phase="Failed", container_statuses=[status]))


@pytest.mark.parametrize("code,fails_now", [(75, False), (3, True), (1, True), (None, False)])
def test_pod_exit_code_mapping(prod, monkeypatch, code, fails_now):
    """The pod operator reads the base container's exit code from the pod status (the
    field skip_on_exit_code reads) when the pod failed: 75 is retried, others fail now."""
    _, sf = prod
    from airflow.providers.cncf.kubernetes.operators.pod import KubernetesPodOperator

    def failed_cleanup(self, *args, **kwargs):
        raise AirflowException("Pod shardflow-load returned a failure.")

    monkeypatch.setattr(KubernetesPodOperator, "cleanup", failed_cleanup)
    op = sf.task("load_orders", "load", ["--all"], shards=["s00"])
    remote = pod_with_exit(code) if code is not None else k8s.V1Pod(status=k8s.V1PodStatus())
    assert sf.container_exit_code(remote, "base") == code
    with pytest.raises(AirflowException) as err:
        op.cleanup(pod=remote, remote_pod=remote)
    assert isinstance(err.value, AirflowFailException) is fails_now
    assert not isinstance(err.value, AirflowSkipException)


def test_pod_of_a_paused_shard_is_skipped(prod, monkeypatch):
    """extract-window exits 99 when its shard is paused: the task is skipped."""
    _, sf = prod
    from airflow.providers.cncf.kubernetes.operators.pod import KubernetesPodOperator

    def failed_cleanup(self, *args, **kwargs):
        raise AirflowException("Pod shardflow-extract returned a failure.")

    monkeypatch.setattr(KubernetesPodOperator, "cleanup", failed_cleanup)
    op = sf.task("extract_orders", "extract-window", ["--shard", "s00"], shards=["s00"])
    remote = pod_with_exit(99)
    with pytest.raises(AirflowSkipException):
        op.cleanup(pod=remote, remote_pod=remote)


def test_entrypoints_are_task_binaries_in_the_image(prod):
    """Every pod entrypoint is a binary built from tasks/ (or dbt), and docker/Dockerfile
    builds and copies each of them to that path."""
    _, sf = prod
    built = {p.name for p in (ROOT / "tasks").iterdir() if (p / "main.go").exists()}
    dockerfile = (ROOT / "docker" / "Dockerfile").read_text()
    for command, path in sf.ENTRYPOINTS.items():
        if command == "dbt":
            assert path.startswith("/opt/shardflow/venv/")
            assert "/opt/shardflow/venv" in dockerfile
            continue
        assert command in built, f"{command}: no tasks/{command}/main.go"
        assert path == f"/usr/local/bin/{command}"
        assert re.search(
            rf"COPY --from=build\S* /out/{command} /usr/local/bin/{command}", dockerfile
        ), command
    assert re.search(r"^USER 65532", dockerfile, re.M), "the image runs as non-root"
    assert "ARG IMAGE_TAG" in dockerfile
    for secret in ("SHARDFLOW_TOKEN_KEY", "_DSN=", "password"):
        assert secret not in dockerfile.replace("# ", ""), secret
    assert table_names() and shard_ids()
