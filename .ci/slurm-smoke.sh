#!/usr/bin/env bash
# The Slurm smoke tests of `make test`: start a real one-node Slurm (munged, slurmctld, slurmd; .ci/slurm/), submit
# every slurm/*.sbatch in SMOKE mode under the configurations below, check that each job completes and that its
# output holds the expected result lines, stop Slurm (in a trap), and write "N passed, N failed" to
# RESULTS_DIR/slurm-smoke.counts, which .ci/summarize-tests adds to the closing lines.
#
#   .ci/slurm-smoke.sh RESULTS_DIR        (as root; `make slurm-smoke` installs the packages and builds first)
#
# Starting Slurm needs root. Not root: re-run through passwordless sudo when there is one. Where Slurm cannot run
# (neither root nor sudo, the Slurm packages missing) every job is counted as skipped, with the reason, in the
# closing lines. Slurm that does not start, a job that fails, times out or lacks its lines: each counts as a failure.
# Environment: SLURM_SMOKE_JOB_TIMEOUT (s per job, default 300), SLURM_SMOKE_KEEP=1 keeps the Slurm scratch dir.
set -euo pipefail
cd "$(dirname "$0")/.."
repo=$PWD
results=${1:?usage: .ci/slurm-smoke.sh RESULTS_DIR}
mkdir -p "$results"
results=$(cd "$results" && pwd)
counts=$results/slurm-smoke.counts
jobs_dir=$results/slurm
job_timeout=${SLURM_SMOKE_JOB_TIMEOUT:-300}

# ---- the configurations: NAME | sbatch script | sbatch arguments | expected outcome | lines the output must hold ----
# Every slurm/*.sbatch needs at least one, so a new script cannot go untested. Flavours covered: MPICH with
# srun --mpi=pmi2, Open MPI with srun --mpi=pmix, MPICH's mpiexec inside the allocation, and a job that must fail.
# Algorithms: psgd, local-sgd and a 2-stage pipeline (point-to-point between the stages instead of an Allreduce; the
# README advertises `train.sbatch --algo pipeline`, so it is submitted the way the README writes it).
# "ok" jobs must COMPLETE; "fail" jobs must end FAILED with a non-zero exit code, quickly, saying why.
configs=(
    "train-mpich-srun-pmi2|train.sbatch|-p gpu -N 1 -n 2 --gpus-per-node=2 -t 5 --export=ALL,SMOKE=1,MPI=mpich,LAUNCHER=srun|ok|^RESULT train ok algo=psgd ranks=2 device=cpu launcher=srun mpi=mpich steps=10 |^LAUNCH launcher=srun mpi=mpich srun_mpi=pmi2 |gpus_on_node=2"
    "train-openmpi-srun-pmix|train.sbatch|-N 1 -n 2 -t 5 --export=ALL,SMOKE=1,MPI=openmpi,LAUNCHER=srun|ok|^RESULT train ok algo=psgd ranks=2 device=cpu launcher=srun mpi=openmpi steps=10 |^LAUNCH launcher=srun mpi=openmpi srun_mpi=pmix mpiexec=mpirun.openmpi mpi_lib=libmpi.so.40 "
    "train-mpich-mpiexec-local-sgd|train.sbatch|-N 1 -n 2 -t 5 --export=ALL,SMOKE=1,MPI=mpich,LAUNCHER=mpiexec|ok|^RESULT train ok algo=local-sgd ranks=2 device=cpu launcher=mpiexec mpi=mpich steps=10 "
    "train-mpich-srun-pipeline|train.sbatch|-N 1 -n 2 -t 5 --export=ALL,SMOKE=1,MPI=mpich,LAUNCHER=srun|ok|^RESULT train ok algo=pipeline ranks=2 device=cpu launcher=srun mpi=mpich steps=10 |S = 2 stages x D = 1 replicas|^pipeline: 1f1b, M = 4 micro-batches "
    "train-bad-batch-fails|train.sbatch|-N 1 -n 2 -t 5 --export=ALL,SMOKE=1,MPI=mpich,LAUNCHER=srun|fail|must be divisible by the 2 workers|^RESULT train failed "
    "pprs-openmpi-srun-pmix|pprs.sbatch|-N 1 -n 2 -t 5 --export=ALL,SMOKE=1,MPI=openmpi,LAUNCHER=srun|ok|^RESULT pprs ok problem=nonsmooth delta=20 ranks=2 launcher=srun mpi=openmpi runs=4 "
    "scaling-mpich-srun|scaling.sbatch|-N 1 -n 2 -t 8 --export=ALL,SMOKE=1,MPI=mpich|ok|^RESULT scaling ok |^RESULT scaling point mode=strong ranks=1 |^RESULT scaling point mode=strong ranks=2 |^RESULT scaling point mode=weak ranks=2 |^RESULT scaling model Allreduce alpha "
)
# Extra arguments for the script itself (after the script name), and extra environment (reaching the job through
# --export=ALL), per configuration.
declare -A script_args=(["train-bad-batch-fails"]="--batch 63"
                         ["train-mpich-srun-pipeline"]="--algo pipeline --stages 2 --micro-batches 4")
declare -A job_env=(["train-mpich-mpiexec-local-sgd"]="TRAIN_ARGS=--algo local-sgd --tau 2")

# Where Slurm cannot run here, every job is reported as skipped, with the reason, in the closing lines.
skip_all() {
    echo "slurm smoke: NOT RUN - $1"
    printf '0 passed, 0 failed, %d skipped\nskipped: all %d slurm smoke jobs (%s)\n' \
        "${#configs[@]}" "${#configs[@]}" "$1" > "$counts"
    exit 0
}

if [ "$(id -u)" != 0 ]; then
    if sudo -n true 2>/dev/null; then
        echo "slurm smoke: not root; re-running through sudo"
        exec sudo -n --preserve-env=PATH,DOTNET_ROOT,HOME bash "$repo/.ci/slurm-smoke.sh" "$results"
    fi
    skip_all "a test Slurm needs root, and $(id -un) is not root and has no passwordless sudo; 'sudo make slurm-smoke' runs it"
fi

for tool in munged slurmctld slurmd sbatch srun scontrol; do
    command -v "$tool" >/dev/null ||
        skip_all "Slurm is not installed, $tool is missing; make slurm-deps installs slurmctld slurmd slurm-client munge"
done

passed=0; failed=0
write_counts() { echo "$passed passed, $failed failed" > "$counts"; }
pass() { passed=$((passed + 1)); echo "slurm smoke: PASS $1"; write_counts; }
fail() { failed=$((failed + 1)); echo "slurm smoke: FAIL $1"; write_counts; }
write_counts

# ---- a throw-away cluster: its own scratch dir and free ports, so it cannot meet another Slurm on this machine ----
export SLURM_BASE
SLURM_BASE=$(mktemp -d /tmp/mpipipe-slurm.XXXXXX)
# A TCP port nobody on this machine uses (looked up in /proc/net/tcp*, so no ss/netstat is needed).
free_port() {
    local port hex
    for _ in $(seq 50); do
        port=$((20000 + RANDOM % 20000)); hex=$(printf ':%04X ' "$port")
        grep -qi -- "$hex" /proc/net/tcp /proc/net/tcp6 2>/dev/null || { echo "$port"; return; }
    done
    echo 6817
}
SLURM_CTLD_PORT=$(free_port); SLURM_SLURMD_PORT=$(free_port)
[ "$SLURM_SLURMD_PORT" != "$SLURM_CTLD_PORT" ] || SLURM_SLURMD_PORT=$((SLURM_CTLD_PORT + 1))
# Two fake GPUs: jobs may ask for --gpus-per-node=2 as on a GPU cluster; mpipipe's --device auto falls back to CPU.
# A "gpu" partition besides the default one, so the README's `sbatch -p gpu ...` lines are accepted as written.
export SLURM_CTLD_PORT SLURM_SLURMD_PORT SLURM_FAKE_GPUS=2 SLURM_EXTRA_PARTITIONS=gpu
export SLURM_CONF=$SLURM_BASE/etc/slurm.conf

stop_slurm() {
    local rc=$?
    .ci/slurm/slurm-stop.sh > "$results/slurm-stop.log" 2>&1 || echo "slurm smoke: slurm-stop failed, see $results/slurm-stop.log"
    mkdir -p "$results/slurm-daemon-logs"
    cp "$SLURM_BASE"/log/* "$results/slurm-daemon-logs/" 2>/dev/null || true
    [ "${SLURM_SMOKE_KEEP:-0}" = 1 ] || rm -rf "$SLURM_BASE"
    # run through sudo: hand what we wrote back to the user, so that the next `make test` can remove it
    if [ -n "${SUDO_UID:-}" ]; then chown -R "$SUDO_UID:${SUDO_GID:-$SUDO_UID}" "$results" 2>/dev/null || true; fi
    exit "$rc"
}
trap stop_slurm EXIT
trap 'exit 130' INT TERM

t0=$(date +%s)
if ! .ci/slurm/slurm-start.sh > "$results/slurm-start.log" 2>&1; then
    fail "Slurm did not start (see $results/slurm-start.log and slurm-daemon-logs/)"
    tail -n 30 "$results/slurm-start.log" || true
    exit 1
fi
echo "slurm smoke: $(tail -n 1 "$results/slurm-start.log")"

mkdir -p "$jobs_dir"
declare -A covered=()
for config in "${configs[@]}"; do
    IFS='|' read -r _ script _ <<<"$config"
    covered[$script]=1
done
for path in slurm/*.sbatch; do
    name=$(basename "$path")
    [ -n "${covered[$name]:-}" ] || fail "$path has no smoke configuration in .ci/slurm-smoke.sh"
done

for config in "${configs[@]}"; do
    IFS='|' read -r name script sbatch_args expect patterns <<<"$config"
    IFS='|' read -ra lines <<<"$patterns"
    out="$jobs_dir/$name.out"
    rm -f "$out"
    start=$(date +%s)
    read -ra words <<<"$sbatch_args"
    read -ra extra <<<"${script_args[$name]:-}"
    set +e
    state=$(env RESULTS_DIR="$jobs_dir/$name" ${job_env[$name]:+"${job_env[$name]}"} \
        .ci/slurm/slurm-run-job.sh "$job_timeout" -J "smoke-$name" -o "$out" "${words[@]}" "slurm/$script" "${extra[@]}" 2>&1)
    rc=$?
    set -e
    seconds=$(( $(date +%s) - start ))
    problems=()
    if [ "$expect" = ok ]; then
        [ "$rc" = 0 ] || problems+=("the job did not complete: $state (exit $rc)")
    else
        if [ "$rc" = 0 ]; then problems+=("the job should have failed but completed")
        elif [ "$rc" = 124 ] || [ "$rc" = 2 ]; then problems+=("expected a quick failure, got: $state (exit $rc)"); fi
    fi
    for line in "${lines[@]}"; do
        grep -qE -- "$line" "$out" 2>/dev/null || problems+=("no line matching '$line' in the output")
    done
    if [ "${#problems[@]}" = 0 ]; then
        pass "$name (${seconds}s; $state)"
    else
        fail "$name (${seconds}s): $(IFS=';'; echo "${problems[*]}")"
        echo "----- $out (last 40 lines) -----"; tail -n 40 "$out" 2>/dev/null || echo "(no output file)"; echo "-----"
    fi
done

echo "slurm smoke: $passed passed, $failed failed in $(( $(date +%s) - t0 ))s (job outputs in $jobs_dir)"
[ "$failed" = 0 ]
