"""Shared fixtures: the generated DAG folders loaded into a real Airflow DagBag.

Each dags/<environment>/ has its own task factory module named shardflow_tasks, so a
folder is loaded with that module purged first (one Airflow loads one folder).
"""

from __future__ import annotations

import os
import sys
import tempfile
from pathlib import Path

import pytest
import yaml

ROOT = Path(__file__).resolve().parents[3]
DAGS = ROOT / "dags"
os.environ.setdefault("AIRFLOW_HOME", tempfile.mkdtemp(prefix="shardflow-airflow-home-"))
os.environ["AIRFLOW__CORE__LOAD_EXAMPLES"] = "False"


def registry() -> dict:
    return yaml.safe_load((ROOT / "shards.yaml").read_text())


def shard_ids() -> list[str]:
    return [s["id"] for s in registry()["shards"] if s["state"] != "retired"]


def table_names() -> list[str]:
    return [t["name"] for t in registry()["tables"]]


def fleet() -> str:
    return registry()["fleet"]


def load(env: str):
    """DagBag of dags/<env> and its shardflow_tasks module."""
    from airflow.dag_processing.dagbag import BundleDagBag

    folder = str(DAGS / env)
    sys.modules.pop("shardflow_tasks", None)
    sys.path[:] = [p for p in sys.path if not p.startswith(str(DAGS))]
    bag = BundleDagBag(dag_folder=folder, bundle_path=Path(folder), bundle_name="dags-folder")
    return bag, sys.modules.get("shardflow_tasks")


@pytest.fixture(scope="module")
def local():
    return load("local")


@pytest.fixture(scope="module")
def prod():
    return load("production")
