#!/bin/bash
# Start a throw-away single-node Slurm (munged + slurmctld + slurmd) without systemd.
# Everything lives under $SLURM_BASE; PIDs of what we start go to $SLURM_BASE/pids.
# Usage: SLURM_BASE=$(mktemp -d) ./slurm-start.sh ; then: export SLURM_CONF=$SLURM_BASE/etc/slurm.conf
# Adapted from ../shared/reference/slurm/slurm-start.sh (measured on Debian 12, Slurm 22.05.8, munge 0.5.15); the
# repository keeps its own copy so CI needs nothing beside the clone. Used by .ci/slurm-smoke.sh.
# Optional: SLURM_CTLD_PORT / SLURM_SLURMD_PORT (6817 / 6818), SLURM_FAKE_CPUS, SLURM_FAKE_GPUS,
# SLURM_NODE_FEATURES, SLURM_EXTRA_PARTITIONS, SLURM_START_TIMEOUT (60 s), SLURM_CGROUP_PLUGIN (cgroup/v1).
set -euo pipefail
BASE=${SLURM_BASE:?set SLURM_BASE to an empty scratch directory}
CTLD_PORT=${SLURM_CTLD_PORT:-6817}
SLURMD_PORT=${SLURM_SLURMD_PORT:-6818}
WAIT_S=${SLURM_START_TIMEOUT:-60}
NODE=$(hostname -s)
NCPU=$(nproc)
[ "$(id -u)" = 0 ] || { echo "must run as root" >&2; exit 1; }

if [ -s "$BASE/pids" ]; then echo "already started? ($BASE/pids exists)" >&2; exit 1; fi
mkdir -p "$BASE"/{etc,munge,log,state,spool}
chmod 755 "$BASE"; chmod 711 "$BASE/munge"   # 711: non-root job users can still reach the socket
mkdir -p "$BASE/spool/slurmd"; rm -f "$BASE"/log/*
t0=$(date +%s.%N)
# on any failure: stop whatever we already started (only our recorded PIDs)
trap 'rc=$?; [ $rc = 0 ] || { echo "slurm-start failed (rc=$rc), stopping" >&2; "$(dirname "$0")/slurm-stop.sh" >&2; }' EXIT

# ---- munge -----------------------------------------------------------------
KEY=$BASE/munge/munge.key
[ -s "$KEY" ] || { dd if=/dev/urandom of="$KEY" bs=1024 count=1 status=none; }
chown root:root "$KEY"; chmod 400 "$KEY"
SOCK=$BASE/munge/munge.socket
munged -F --force --key-file="$KEY" --socket="$SOCK" --pid-file="$BASE/munge/munged.pid" \
       --log-file="$BASE/log/munged.log" --seed-file="$BASE/munge/munged.seed" \
       </dev/null >>"$BASE/log/munged.out" 2>&1 &
echo "munged $!" >> "$BASE/pids"
for _ in $(seq 50); do [ -S "$SOCK" ] && break; sleep 0.1; done
munge -n --socket="$SOCK" | unmunge --socket="$SOCK" >/dev/null || { echo "munge self-test failed" >&2; cat "$BASE/log/munged.log" >&2; exit 1; }

# ---- slurm.conf --------------------------------------------------------------
# node line from slurmd -C (real topology), RealMemory lowered 10% so it never looks "low memory"
HW=$(slurmd -C | head -n1)
MEM=$(sed -n 's/.*RealMemory=\([0-9]*\).*/\1/p' <<<"$HW"); MEM=$(( MEM * 9 / 10 ))
TOPO=$(grep -oE '(Boards|SocketsPerBoard|CoresPerSocket|ThreadsPerCore)=[0-9]+' <<<"$HW" | tr '\n' ' ')
HWCPU=$(sed -n 's/.*CPUs=\([0-9]*\).*/\1/p' <<<"$HW")
[ "$HWCPU" = "$NCPU" ] || echo "note: slurmd -C says CPUs=$HWCPU, nproc says $NCPU" >&2
# Optional: SLURM_FAKE_CPUS=N advertises N CPUs (oversubscribes the real cores; needs config_overrides)
# Optional: SLURM_FAKE_GPUS=N advertises N gres/gpu with no device files, so '--gres=gpu:1' jobs are accepted
# Optional: SLURM_NODE_FEATURES=a100,bigmem lets '-C a100' jobs in
FEATURES=${SLURM_NODE_FEATURES:+Features=$SLURM_NODE_FEATURES}
EXTRA=""; NODE_EXTRA=""; rm -f "$BASE/etc/gres.conf"
if [ -n "${SLURM_FAKE_CPUS:-}" ]; then
  NCPU=$SLURM_FAKE_CPUS; TOPO="Boards=1 SocketsPerBoard=1 CoresPerSocket=$NCPU ThreadsPerCore=1"
  EXTRA+="SlurmdParameters=config_overrides"$'\n'
fi
if [ -n "${SLURM_FAKE_GPUS:-}" ]; then
  EXTRA+="GresTypes=gpu"$'\n'; NODE_EXTRA="Gres=gpu:${SLURM_FAKE_GPUS}"
  # gres/gpu drops File-less GPUs and wants char devices: use symlinks to /dev/null
  mkdir -p "$BASE/dev"; rm -f "$BASE"/dev/gpu*
  for i in $(seq 0 $((SLURM_FAKE_GPUS-1))); do ln -s /dev/null "$BASE/dev/gpu$i"; done
  printf 'AutoDetect=off\nNodeName=%s Name=gpu File=%s/dev/gpu[0-%s]\n' "$NODE" "$BASE" "$((SLURM_FAKE_GPUS-1))" > "$BASE/etc/gres.conf"
fi
# slurmd 22.05 always initialises a cgroup plugin (autodetect), even with linuxproc/task none; autodetect
# can be fatal ("Hybrid mode is not supported", cgroup/v2 needing dbus/systemd). Pin v1: nothing here uses it.
printf 'CgroupPlugin=%s\nCgroupAutomount=no\n' "${SLURM_CGROUP_PLUGIN:-cgroup/v1}" > "$BASE/etc/cgroup.conf"
cat > "$BASE/etc/slurm.conf" <<EOF
ClusterName=ci
SlurmctldHost=${NODE}(127.0.0.1)
SlurmctldPort=${CTLD_PORT}
SlurmdPort=${SLURMD_PORT}
SlurmUser=root
SlurmdUser=root
AuthType=auth/munge
CredType=cred/munge
AuthInfo=socket=${SOCK}
StateSaveLocation=${BASE}/state
SlurmdSpoolDir=${BASE}/spool/slurmd
SlurmctldPidFile=${BASE}/slurmctld.pid
SlurmdPidFile=${BASE}/slurmd.pid
SlurmctldLogFile=${BASE}/log/slurmctld.log
SlurmdLogFile=${BASE}/log/slurmd.log
SlurmctldDebug=info
SlurmdDebug=info
ProctrackType=proctrack/linuxproc
TaskPlugin=task/none
JobAcctGatherType=jobacct_gather/none
AccountingStorageType=accounting_storage/none
JobCompType=jobcomp/none
SwitchType=switch/none
MpiDefault=none
SchedulerType=sched/backfill
EnforcePartLimits=ALL
MailProg=/bin/true
SelectType=select/cons_tres
SelectTypeParameters=CR_Core
ReturnToService=2
SlurmdTimeout=300
InactiveLimit=0
KillWait=5
MinJobAge=300
${EXTRA}NodeName=${NODE} NodeAddr=127.0.0.1 CPUs=${NCPU} ${TOPO} RealMemory=${MEM} ${NODE_EXTRA} ${FEATURES} State=UNKNOWN
PartitionName=debug Nodes=ALL Default=YES MaxTime=INFINITE State=UP OverSubscribe=NO
EOF
# Optional: SLURM_EXTRA_PARTITIONS="gpu long" adds partitions (same node) that project scripts name with -p
for p in ${SLURM_EXTRA_PARTITIONS:-}; do echo "PartitionName=$p Nodes=ALL MaxTime=INFINITE State=UP" >> "$BASE/etc/slurm.conf"; done
export SLURM_CONF=$BASE/etc/slurm.conf

# ---- daemons (foreground mode, backgrounded by us, so $! is the real daemon PID)
slurmctld -D -c -i -f "$SLURM_CONF" </dev/null >>"$BASE/log/slurmctld.out" 2>&1 &
echo "slurmctld $!" >> "$BASE/pids"
slurmd -D -N "$NODE" -f "$SLURM_CONF" </dev/null >>"$BASE/log/slurmd.out" 2>&1 &
echo "slurmd $!" >> "$BASE/pids"

# ---- wait for the node to be idle ---------------------------------------------
deadline=$(( $(date +%s) + WAIT_S ))
until [ "$(sinfo -h -n "$NODE" -o %t 2>/dev/null)" = idle ]; do
  if [ "$(date +%s)" -ge "$deadline" ]; then
    echo "Slurm not idle after ${WAIT_S}s" >&2; sinfo -N -l >&2 || true
    tail -n 20 "$BASE"/log/*.log >&2 || true; exit 1
  fi
  # a node left DOWN/DRAIN from an earlier run: resume it
  case "$(sinfo -h -n "$NODE" -o %t 2>/dev/null)" in down*|drain*) scontrol update nodename="$NODE" state=resume 2>/dev/null || true;; esac
  sleep 0.5
done
t1=$(date +%s.%N)
echo "slurm up: node $NODE idle after $(awk "BEGIN{printf \"%.1f\", $t1 - $t0}") s; export SLURM_CONF=$SLURM_CONF"
