#!/usr/bin/env bash
# Writes a hostfile for mpiexec from the Slurm allocation this runs in (sbatch script, salloc shell):
#   hostfiles/from-slurm.sh mpich   > hosts.mpich      # host:slots      (mpiexec.mpich -f hosts.mpich -n N ...)
#   hostfiles/from-slurm.sh openmpi > hosts.openmpi    # host slots=N    (mpirun.openmpi --hostfile hosts.openmpi -n N ...)
# The hosts come from `scontrol show hostnames "$SLURM_JOB_NODELIST"`, the slots of each from SLURM_TASKS_PER_NODE
# ("4(x2),3" = 4 on the first two nodes, 3 on the third), falling back to SLURM_NTASKS_PER_NODE, then 1.
set -euo pipefail
flavor=${1:-}
case "$flavor" in
    mpich|openmpi) ;;
    *) echo "usage: $0 mpich|openmpi  (inside a Slurm allocation)" >&2; exit 2 ;;
esac
[ -n "${SLURM_JOB_NODELIST:-}" ] || { echo "$0: SLURM_JOB_NODELIST is unset: run inside a Slurm allocation (sbatch, salloc)" >&2; exit 1; }
mapfile -t hosts < <(scontrol show hostnames "$SLURM_JOB_NODELIST")
[ "${#hosts[@]}" -gt 0 ] || { echo "$0: scontrol gave no hosts for '$SLURM_JOB_NODELIST'" >&2; exit 1; }

# SLURM_TASKS_PER_NODE "4(x2),3" -> 4 4 3
slots=()
if [ -n "${SLURM_TASKS_PER_NODE:-}" ]; then
    IFS=, read -ra groups <<<"$SLURM_TASKS_PER_NODE"
    for g in "${groups[@]}"; do
        if [[ $g =~ ^([0-9]+)\(x([0-9]+)\)$ ]]; then
            for ((i = 0; i < BASH_REMATCH[2]; i++)); do slots+=("${BASH_REMATCH[1]}"); done
        elif [[ $g =~ ^[0-9]+$ ]]; then
            slots+=("$g")
        else
            echo "$0: cannot read SLURM_TASKS_PER_NODE='$SLURM_TASKS_PER_NODE'" >&2; exit 1
        fi
    done
fi

echo "# from the Slurm allocation of job ${SLURM_JOB_ID:-?} ($SLURM_JOB_NODELIST), written by hostfiles/from-slurm.sh $flavor"
for i in "${!hosts[@]}"; do
    n=${slots[$i]:-${SLURM_NTASKS_PER_NODE:-1}}
    if [ "$flavor" = mpich ]; then echo "${hosts[$i]}:$n"; else echo "${hosts[$i]} slots=$n"; fi
done
