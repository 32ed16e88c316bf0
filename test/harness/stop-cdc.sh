#!/usr/bin/env bash
# Stops the local CDC stack (var/cdc/stack): the Connect worker, then Kafka; and what
# `KEEP=1 make demo-cdc` left running (var/cdc-demo: its stack and its shard fleet).
# Data is kept; `make clean` deletes it. Idempotent.
set -uo pipefail
cd "$(dirname "$0")/../.."
[ -d var/cdc/stack ] && bash test/harness/cdc/stack.sh down
if [ -d var/cdc-demo/stack ]; then
  CDC_DIR=var/cdc-demo/stack bash test/harness/cdc/stack.sh down
  FLEET_DIR=var/cdc-demo/fleet bash test/harness/stop-fleet.sh
fi
exit 0
