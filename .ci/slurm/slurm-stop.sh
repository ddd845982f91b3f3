#!/bin/bash
# Stop what slurm-start.sh started: only the PIDs recorded in $SLURM_BASE/pids (never by name).
# Adapted from ../shared/reference/slurm/slurm-stop.sh. Best effort: every step tolerates what is already gone.
set -euo pipefail
BASE=${SLURM_BASE:?set SLURM_BASE to an empty scratch directory}
export SLURM_CONF=$BASE/etc/slurm.conf
[ -s "$BASE/pids" ] || { echo "nothing recorded in $BASE/pids"; exit 0; }
# alive = exists, not a zombie (PID 1 here reaps orphans late), and still the program we started
alive() { local st; st=$(cat "/proc/$1/stat" 2>/dev/null) || return 1
          [ "$(cat "/proc/$1/comm" 2>/dev/null)" = "$2" ] && [ "$(awk '{print $1}' <<<"${st##*)}")" != Z ]; }
stop_one() { local name=$1 pid=$2
  alive "$pid" "$name" || { echo "$name ($pid) already gone"; return; }
  kill -TERM "$pid" 2>/dev/null || true
  for _ in $(seq 100); do alive "$pid" "$name" || break; sleep 0.1; done
  alive "$pid" "$name" && { echo "$name ($pid) still alive after 10s, SIGKILL"; kill -KILL "$pid" 2>/dev/null || true; }
  echo "stopped $name ($pid)"; }
# cancel remaining jobs first (only if our slurmctld still runs: clients retry for ~20s otherwise)
ctld=$(awk '$1=="slurmctld"{print $2}' "$BASE/pids")
if [ -n "$ctld" ] && alive "$ctld" slurmctld; then
  timeout 10 squeue -h -o %i 2>/dev/null | xargs -r timeout 10 scancel 2>/dev/null || true
  for _ in $(seq 40); do [ -z "$(timeout 5 squeue -h 2>/dev/null || true)" ] && break; sleep 0.25; done
fi
# stop in reverse start order: slurmd, slurmctld, munged
tac "$BASE/pids" | while read -r name pid; do stop_one "$name" "$pid"; done
rm -f "$BASE/pids"
