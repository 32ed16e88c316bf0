#!/usr/bin/env bash
# Stops every local service the harness may have started. Each area adds its own
# stop script as test/harness/stop-<area>.sh; this runs them all.
set -uo pipefail
cd "$(dirname "$0")"
for s in stop-*.sh; do
  [ "$s" = stop-all.sh ] && continue
  [ -f "$s" ] && bash "$s"
done
exit 0
