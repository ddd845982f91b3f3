# shellcheck shell=bash
# Shared by slurm/*.sbatch (sourced, not submitted): where mpipipe is, which MPI and launcher, how to start N ranks.
#
# Settings (environment; pass them with `sbatch --export=ALL,NAME=value,...` or export them before sbatch):
#   MPI=mpich|openmpi       the MPI mpipipe loads and the launcher belongs to (default mpich)
#   LAUNCHER=srun|mpiexec   srun (default): `srun --mpi=$SRUN_MPI`; mpiexec: the MPI's own launcher inside the
#                           allocation, with a hostfile built from it (hostfiles/from-slurm.sh)
#   SRUN_MPI                srun's PMI plugin (default pmi2 for mpich, pmix for openmpi; `srun --mpi=list` shows
#                           what the site has)
#   SRUN_ARGS, MPIEXEC_ARGS extra launcher flags (e.g. SRUN_ARGS="--cpu-bind=cores")
#   MPIEXEC                 the launcher program (default mpiexec.mpich / mpirun.openmpi; e.g. a site's mpiexec)
#   MPIPIPE_MPI_LIB         the MPI library mpipipe loads (path or soname). Default here: libmpi.so.40 with
#                           MPI=openmpi under srun (srun --mpi=pmix does not say which MPI it serves); otherwise the
#                           program's own probing. Sites set it: libmpi.so.12 (Intel MPI, upstream MPICH),
#                           /opt/cray/.../libmpi_cray.so.12 (Cray MPICH), a module's libmpi.so.40 (Open MPI).
#   MPIPIPE                 the mpipipe program (default: the Release build in the repository)
#   MPIPIPE_REPO            the repository (default: $SLURM_SUBMIT_DIR, i.e. submit from the repository root)
#   RESULTS_DIR             where results go (default: $MPIPIPE_REPO/results/slurm-$SLURM_JOB_ID)
#   SMOKE=1                 shrink the problem (CI: a few steps of the small model)

die() { echo "ERROR: $*" >&2; exit 1; }

# Resolves the repository, the program, MPI and launcher settings; fails with a clear message on bad input.
mpipipe_setup() {
    [ -n "${SLURM_JOB_ID:-}" ] || die "not inside a Slurm job (SLURM_JOB_ID unset): submit with sbatch, or run inside salloc"
    MPIPIPE_REPO=${MPIPIPE_REPO:-${SLURM_SUBMIT_DIR:-$PWD}}
    [ -f "$MPIPIPE_REPO/MpiPipeline.sln" ] ||
        die "MPIPIPE_REPO=$MPIPIPE_REPO is not the MpiPipeline repository: submit from the repository root or set MPIPIPE_REPO"
    MPIPIPE=${MPIPIPE:-$MPIPIPE_REPO/src/MpiPipeline.Cli/bin/Release/net10.0/mpipipe}
    [ -x "$MPIPIPE" ] || die "mpipipe not found at $MPIPIPE: run 'make build' first (or set MPIPIPE)"
    MPI=${MPI:-mpich}
    LAUNCHER=${LAUNCHER:-srun}
    case "$MPI" in
        mpich)   SRUN_MPI=${SRUN_MPI:-pmi2}; MPIEXEC=${MPIEXEC:-mpiexec.mpich} ;;
        openmpi) SRUN_MPI=${SRUN_MPI:-pmix}; MPIEXEC=${MPIEXEC:-mpirun.openmpi}
                 [ "$LAUNCHER" = srun ] && export MPIPIPE_MPI_LIB=${MPIPIPE_MPI_LIB:-libmpi.so.40} ;;
        *) die "MPI must be mpich or openmpi (got '$MPI')" ;;
    esac
    case "$LAUNCHER" in
        srun) command -v srun >/dev/null || die "LAUNCHER=srun but srun is not on PATH" ;;
        mpiexec) command -v "$MPIEXEC" >/dev/null || die "LAUNCHER=mpiexec but $MPIEXEC is not on PATH (set MPIEXEC)" ;;
        *) die "LAUNCHER must be srun or mpiexec (got '$LAUNCHER')" ;;
    esac
    RESULTS_DIR=${RESULTS_DIR:-$MPIPIPE_REPO/results/slurm-$SLURM_JOB_ID}
    mkdir -p "$RESULTS_DIR"
    NTASKS=${SLURM_NTASKS:-1}
    export MPIPIPE MPIPIPE_REPO MPI LAUNCHER SRUN_MPI MPIEXEC RESULTS_DIR NTASKS
    # Open MPI ranks get a pty from mpirun: .NET then prints escape codes unless TERM is dumb.
    export TERM=dumb
    echo "JOB id=$SLURM_JOB_ID nodes=${SLURM_JOB_NUM_NODES:-1} ($(scontrol show hostnames "${SLURM_JOB_NODELIST:-$(hostname -s)}" 2>/dev/null | paste -sd, -)) ntasks=$NTASKS" \
         "gpus_on_node=${SLURM_GPUS_ON_NODE:-0} cuda_visible_devices=${CUDA_VISIBLE_DEVICES:-unset}"
    echo "LAUNCH launcher=$LAUNCHER mpi=$MPI srun_mpi=$SRUN_MPI mpiexec=$MPIEXEC mpi_lib=${MPIPIPE_MPI_LIB:-auto} mpipipe=$MPIPIPE"
}

# mpipipe_launch N ARGS...: runs `mpipipe ARGS` on N ranks with the chosen launcher.
mpipipe_launch() {
    local n=$1; shift
    case "$LAUNCHER" in
        srun)
            # --kill-on-bad-exit: one failing rank ends the step (mpipipe also calls MPI_Abort on any error).
            # shellcheck disable=SC2086
            srun --mpi="$SRUN_MPI" -n "$n" --kill-on-bad-exit=1 ${SRUN_ARGS:-} "$MPIPIPE" "$@" ;;
        mpiexec)
            local hosts="$RESULTS_DIR/hosts.$MPI.$SLURM_JOB_ID" flags=()
            bash "$MPIPIPE_REPO/hostfiles/from-slurm.sh" "$MPI" > "$hosts"
            if [ "$MPI" = mpich ]; then
                flags=(-f "$hosts")
                # hydra hangs on a hostname that does not resolve; on one node the loopback interface avoids it
                [ "${SLURM_JOB_NUM_NODES:-1}" = 1 ] && export HYDRA_IFACE=${HYDRA_IFACE:-lo}
            else
                flags=(--hostfile "$hosts")
                [ "$(id -u)" = 0 ] && flags+=(--allow-run-as-root)
            fi
            # shellcheck disable=SC2086
            "$MPIEXEC" "${flags[@]}" -n "$n" ${MPIEXEC_ARGS:-} "$MPIPIPE" "$@" ;;
    esac
}

# json_value FILE KEY: the first scalar value of "KEY" in an indented JSON file (no jq needed on the cluster).
json_value() {
    sed -n 's/^ *"'"$2"'": *"\{0,1\}\([^",]*\)"\{0,1\},\{0,1\} *$/\1/p' "$1" | head -n 1
}

# merge_args DEFAULTS... -- USER...: sets the array MERGED to the default option-value pairs whose option the user's
# arguments do not give (as --opt or --opt=value), followed by the user's arguments. mpipipe refuses an option given
# twice, so this is how a script's defaults give way to the command line.
merge_args() {
    local defaults=() user=() in_user=0 i
    for a in "$@"; do
        if [ "$in_user" = 0 ] && [ "$a" = -- ]; then in_user=1; continue; fi
        if [ "$in_user" = 0 ]; then defaults+=("$a"); else user+=("$a"); fi
    done
    MERGED=()
    for ((i = 0; i + 1 < ${#defaults[@]}; i += 2)); do
        has_option "${defaults[$i]}" "${user[@]}" || MERGED+=("${defaults[$i]}" "${defaults[$((i + 1))]}")
    done
    MERGED+=("${user[@]}")
}

# has_option OPT ARGS...: whether ARGS give OPT (as OPT VALUE or OPT=VALUE).
has_option() {
    local opt=$1 a; shift
    for a in "$@"; do
        if [ "$a" = "$opt" ] || [[ $a == "$opt="* ]]; then return 0; fi
    done
    return 1
}

# option_value OPT ARGS...: the value ARGS give OPT (the last one), empty when absent.
option_value() {
    local opt=$1 value="" previous=""; shift
    for a in "$@"; do
        if [ "$previous" = "$opt" ]; then value=$a; fi
        if [[ $a == "$opt="* ]]; then value=${a#"$opt="}; fi
        previous=$a
    done
    echo "$value"
}
