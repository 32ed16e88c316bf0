#!/usr/bin/env bash
# Stops the local CDC stack (var/cdc/stack): the Connect worker, then Kafka. Data is kept;
# `make clean` deletes it. Idempotent.
set -uo pipefail
cd "$(dirname "$0")/../.."
[ -d var/cdc/stack ] || exit 0
bash test/harness/cdc/stack.sh down
exit 0
