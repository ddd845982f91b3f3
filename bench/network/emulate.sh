#!/usr/bin/env bash
# Runs a command inside an emulated network: a private network namespace (`unshare -n`) whose only interface, its own
# loopback `lo`, is shaped to a bandwidth (tbf) and optionally a one-way latency (netem). Both MPIs are told to go over
# TCP on that `lo` (environment below), so `mpiexec.mpich`, `mpirun.openmpi` and everything that starts them (the
# rank tests' MpiLauncher, `mpipipe scaling`) run unchanged inside and their messages cross the shaped link.
#
#   bench/network/emulate.sh --rate 1gbit [--delay 50us] [--quiet] -- CMD [ARGS...]
#   bench/network/emulate.sh --rate 10gbit --check        set up, verify and describe the network; run nothing
#
#   --rate   RATE    tbf rate in tc's words: a number (decimals allowed) and kbit, mbit, gbit or tbit (1gbit, 2.5gbit);
#                    `none`: no shaping, plain TCP loopback (still off shared memory)
#   --delay  DELAY   one-way latency added to every packet: a number and us or ms (50us); needs netem in the kernel
#   --quiet          do not print the one line that describes the network (stderr)
#
# Topology: one shaped `lo` is ONE link that every rank on the machine shares (an aggregate RATE, like all ranks
# behind one switch port), not a link per node: n ranks sending at once share RATE between them. A link per node would
# need a namespace per node joined by shaped veth pairs (not done here). Reports that use this say so.
# Traffic of other processes on the machine is untouched: the shaping exists only inside the namespace.
#
# Exit codes: the command's own, or
#   64  bad arguments (a --rate or --delay that is not one of the forms above, no command)
#   69  a needed program or kernel feature is missing (unshare, ip or tc not installed: Debian's util-linux and
#       iproute2; or the kernel lacks the tbf / netem queueing discipline)
#   70  the shaping was set up but `tc qdisc show dev lo` does not show it
#   77  not permitted: making a network namespace and shaping it needs root or CAP_SYS_ADMIN + CAP_NET_ADMIN
#
# Environment set inside (the command inherits it):
#   Open MPI: OMPI_MCA_pml=ob1 OMPI_MCA_btl=tcp,self OMPI_MCA_btl_tcp_if_include=lo (TCP, not shared memory), and
#             OMPI_ALLOW_RUN_AS_ROOT(_CONFIRM)=1 when root
#   MPICH (Debian's ch4:ucx): UCX_TLS=tcp,self UCX_NET_DEVICES=lo MPIR_CVAR_NOLOCAL=1, HYDRA_IFACE=lo
#   MPIPIPE_NETWORK: the network in words (rate, delay, topology), for reports
set -euo pipefail

readonly EX_USAGE=64 EX_UNAVAILABLE=69 EX_SOFTWARE=70 EX_NOPERM=77
me=${0##*/}
fail() { local code=$1; shift; echo "$me: $*" >&2; exit "$code"; }
usage() { fail $EX_USAGE "$* (usage: $me --rate RATE|none [--delay DELAY] [--quiet] (--check | -- CMD [ARGS...]))"; }

rate="" delay="" quiet=0 check=0 inside=0
while [ $# -gt 0 ]; do
    case "$1" in
        --rate)  [ $# -ge 2 ] || usage "--rate needs a value"; rate=$2; shift 2 ;;
        --rate=*) rate=${1#*=}; shift ;;
        --delay) [ $# -ge 2 ] || usage "--delay needs a value"; delay=$2; shift 2 ;;
        --delay=*) delay=${1#*=}; shift ;;
        --quiet) quiet=1; shift ;;
        --check) check=1; shift ;;
        --inside) inside=1; shift ;;   # the second half of this script, run by unshare below
        --) shift; break ;;
        *) usage "unknown argument '$1'" ;;
    esac
done

[ -n "$rate" ] || usage "--rate is required (e.g. --rate 1gbit, or --rate none for unshaped TCP loopback)"
shopt -s nocasematch
if [ "$rate" != none ] && ! [[ "$rate" =~ ^[0-9]+(\.[0-9]+)?(k|m|g|t)?bit$ ]] || [[ "$rate" =~ ^0+(\.0+)?[kmgt]?bit$ ]]; then
    fail $EX_USAGE "--rate '$rate' is not a rate: a positive number and kbit, mbit, gbit or tbit (e.g. 1gbit, 2.5gbit, 100mbit), or none"
fi
if [ -n "$delay" ] && ! [[ "$delay" =~ ^[0-9]+(\.[0-9]+)?(us|ms)$ ]]; then
    fail $EX_USAGE "--delay '$delay' is not a latency: a number and us or ms (e.g. 50us, 1ms)"
fi
shopt -u nocasematch
rate=${rate,,} delay=${delay,,}
if [ $check = 0 ] && [ $# -eq 0 ]; then
    usage "no command to run"
fi

describe() {
    local link
    if [ "$rate" = none ]; then link="TCP loopback, unshaped"; else link="loopback shaped to $rate"; fi
    [ -n "$delay" ] && link+=", $delay one-way delay"
    echo "$link; one link shared by all ranks on this machine (aggregate), not a link per node"
}

if [ $inside = 0 ]; then
    for tool in unshare ip tc; do
        command -v "$tool" >/dev/null 2>&1 || [ -x "/usr/sbin/$tool" ] || [ -x "/sbin/$tool" ] ||
            fail $EX_UNAVAILABLE "'$tool' is not installed (Debian: apt-get install util-linux iproute2); the emulated network needs it"
    done
    if ! unshare -n true 2>/dev/null; then
        fail $EX_NOPERM "cannot create a network namespace (unshare -n): the emulated network needs root or CAP_SYS_ADMIN and CAP_NET_ADMIN; run it as root (e.g. sudo) or where those capabilities are granted"
    fi
    again=(--inside --rate "$rate")
    [ -n "$delay" ] && again+=(--delay "$delay")
    [ $quiet = 1 ] && again+=(--quiet)
    [ $check = 1 ] && again+=(--check)
    exec unshare -n -- "$(readlink -f "$0")" "${again[@]}" -- "$@"
fi

# Inside the new namespace: bring lo up, shape it, verify, export the MPI settings, run the command.
export PATH="$PATH:/usr/sbin:/sbin"
# A fresh namespace has lo alone; anything else means --inside was given by hand, which would shape this machine's lo.
if ip -o link show | grep -qv ': lo:'; then
    fail $EX_USAGE "--inside is for the script's own use, in the private namespace it makes (this one has other interfaces)"
fi
ip link set lo up || fail $EX_NOPERM "cannot bring up lo in the new namespace (needs CAP_NET_ADMIN)"
# Unknown to this kernel or not permitted: tc says which; keep its words in the one message.
qdisc() {
    local what=$1; shift
    local out
    if ! out=$(tc qdisc add dev lo "$@" 2>&1); then
        case "$out" in
            *"unknown"*|*"not supported"*|*"No such file"*)
                fail $EX_UNAVAILABLE "the kernel has no '$what' queueing discipline (tc: ${out//$'\n'/ }); ${what} is needed for $( [ "$what" = netem ] && echo "--delay (leave --delay out to shape bandwidth only)" || echo "--rate")" ;;
            *"ermission"*|*"not permitted"*)
                fail $EX_NOPERM "not permitted to shape lo (tc: ${out//$'\n'/ }): the emulated network needs root or CAP_NET_ADMIN" ;;
            *) fail $EX_SOFTWARE "tc qdisc add dev lo $* failed: ${out//$'\n'/ }" ;;
        esac
    fi
}
# tbf: the burst must hold at least one loopback packet (64 KiB with GSO) and enough for the timer's resolution at
# high rates (1 ms of traffic); `latency` bounds the queue (packets waiting longer are dropped, TCP backs off).
burst_for() {
    awk -v r="$1" 'BEGIN { n = r + 0; u = tolower(r); sub(/^[0-9.]+/, "", u);
        m = (u == "kbit") ? 1e3 : (u == "mbit") ? 1e6 : (u == "gbit") ? 1e9 : (u == "tbit") ? 1e12 : 1;
        b = n * m / 8 / 1000; if (b < 262144) b = 262144; printf "%d\n", b }'
}
if [ "$rate" != none ]; then
    tbf=(tbf rate "$rate" burst "$(burst_for "$rate")" latency 100ms)
    if [ -n "$delay" ]; then
        # netem delays every packet, then hands it to tbf (its child) for the rate: both on the one egress of lo.
        qdisc netem root handle 1: netem delay "$delay" limit 1000000
        qdisc tbf parent 1: handle 2: "${tbf[@]}"
    else
        qdisc tbf root handle 1: "${tbf[@]}"
    fi
elif [ -n "$delay" ]; then
    qdisc netem root handle 1: netem delay "$delay" limit 1000000
fi

shown=$(tc qdisc show dev lo)
if { [ "$rate" != none ] && ! grep -q "qdisc tbf .* rate " <<<"$shown"; } ||
   { [ -n "$delay" ] && ! grep -q "qdisc netem .* delay " <<<"$shown"; }; then
    fail $EX_SOFTWARE "the shaping did not take: tc qdisc show dev lo says: ${shown//$'\n'/ | }"
fi

export MPIPIPE_NETWORK
MPIPIPE_NETWORK=$(describe)
[ $quiet = 1 ] || echo "$me: network: $MPIPIPE_NETWORK [tc: ${shown//$'\n'/ | }]" >&2

export OMPI_MCA_pml=ob1 OMPI_MCA_btl=tcp,self OMPI_MCA_btl_tcp_if_include=lo OMPI_MCA_oob_tcp_if_include=lo
if [ "$(id -u)" = 0 ]; then
    export OMPI_ALLOW_RUN_AS_ROOT=1 OMPI_ALLOW_RUN_AS_ROOT_CONFIRM=1
fi
export UCX_TLS=tcp,self UCX_NET_DEVICES=lo MPIR_CVAR_NOLOCAL=1 HYDRA_IFACE=lo

[ $check = 1 ] && exit 0
exec "$@"
