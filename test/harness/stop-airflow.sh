#!/usr/bin/env bash
# Stops the Airflow started by `make airflow` (var/airflow). Idempotent.
set -uo pipefail
cd "$(dirname "$0")/../.."
[ -d var/airflow ] || exit 0
bash test/harness/airflow/airflow.sh down
exit 0
