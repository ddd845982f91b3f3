#!/bin/bash
# Submit one batch script and wait for it with a fast poll (sbatch --wait polls at 2 s, 8 s, 32 s, ...).
# Usage: slurm-run-job.sh TIMEOUT_S [sbatch args...] script.sbatch [script args...]
# Prints "job ID STATE ExitCode=E:S"; exit code = the job's exit code (124 on timeout, 2 when sbatch refused it).
# Adapted from ../shared/reference/slurm/slurm-run-job.sh.
set -euo pipefail
TMO=${1:?usage: slurm-run-job.sh TIMEOUT_S [sbatch args...] script.sbatch}; shift
jid=$(sbatch --parsable "$@") || exit 2
jid=${jid%%;*}; deadline=$(( $(date +%s) + TMO ))
st=""; info=""
while :; do
  info=$(scontrol -o show job "$jid" 2>/dev/null || true)
  st=$(grep -oP 'JobState=\K\S+' <<<"$info" || true)
  case "$st" in
    COMPLETED|FAILED|CANCELLED|TIMEOUT|NODE_FAIL|OUT_OF_MEMORY|BOOT_FAIL|DEADLINE|PREEMPTED) break;;
  esac
  if [ "$(date +%s)" -ge "$deadline" ]; then
    echo "job $jid: timeout after ${TMO}s in state ${st:-unknown}" >&2; scancel "$jid" 2>/dev/null || true; exit 124
  fi
  sleep 0.3
done
ec=$(grep -oP ' ExitCode=\K[0-9]+' <<<"$info" || true); sig=$(grep -oP ' ExitCode=[0-9]+:\K[0-9]+' <<<"$info" || true)
echo "job $jid $st ExitCode=${ec:-?}:${sig:-?}"
[ "$st" = COMPLETED ] && exit 0
[ "${ec:-0}" != 0 ] && exit "$ec"
exit 1
