#!/usr/bin/env bash
# Stops what `make monitoring` started (var/monitoring). Data is kept; `make clean`
# deletes it. Idempotent.
set -uo pipefail
cd "$(dirname "$0")/../.."
[ -d var/monitoring ] && bash test/harness/monitoring/stack.sh down
exit 0
