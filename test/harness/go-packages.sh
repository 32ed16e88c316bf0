#!/usr/bin/env bash
# Lists the Go packages of one stage of `make test`, one per line:
#   integration  the packages whose test binary depends on a harness that starts a real
#                service (PostgreSQL clusters, Kafka + Connect, versitygw, fakesnow, Airflow)
#   unit         every other package of ./... (tests or not), so that the two stages
#                together run `go test ./...`, each package exactly once
# A new package lands in the right stage by what its tests import; nothing to list here
# but the harnesses.
set -euo pipefail
cd "$(dirname "$0")/../.."

stage=${1:-}
module=$(go list -m)
harnesses="internal/fleet/fleettest internal/cdc/cdctest internal/objstore/s3/s3test
  internal/warehouse/snowflake/snowflaketest internal/airflow/airflowtest
  internal/metrics/promtest"

integration=$(go list -test -f '{{if .ForTest}}{{.ForTest}} {{join .Deps " "}}{{end}}' ./... |
  awk -v module="$module" -v harnesses="$harnesses" '
    BEGIN { n = split(harnesses, h, " "); for (i = 1; i <= n; i++) uses[module "/" h[i]] = 1 }
    { for (i = 2; i <= NF; i++) if ($i in uses) { print $1; next } }' | sort -u)

case "$stage" in
integration) printf '%s\n' "$integration" ;;
unit) go list ./... | sort | comm -23 - <(printf '%s\n' "$integration") ;;
*) echo "usage: $0 unit|integration" >&2; exit 2 ;;
esac
