#!/usr/bin/env bash
# Stops the fakesnow server `make fakesnow-up` started (by its pid file only).
set -uo pipefail
pidfile="$(dirname "$0")/../../var/fakesnow/pid"
if [ -f "$pidfile" ]; then
  pid=$(cat "$pidfile")
  kill "$pid" 2>/dev/null && echo "fakesnow (pid $pid) stopped"
  rm -f "$pidfile"
fi
exit 0
