#!/usr/bin/env bash
# The end-to-end tiers beyond the host's containerd (which runs every scenario in
# `cargo test --workspace`): other containerd releases, crun, CNI pod networks, the installer on
# containerd 2, and a pure cgroup v2 QEMU guest (scripts/guest.sh), with systemd's cgroup driver.
# The ONE place that says which scenarios run where (see docs/testing.md).
#
#   scripts/e2e-tiers.sh list            the tiers and their test filters
#   scripts/e2e-tiers.sh check           every e2e scenario runs on 1.7 or 2.x (or is a named
#                                        known failure), the core on all
#   scripts/e2e-tiers.sh run <tier>...   run tiers (as root; CI=true makes skips failures)
#   scripts/e2e-tiers.sh run all         the tiers CI runs (not crun-containerd-2, see TIERS)
set -euo pipefail
cd "$(dirname "$0")/.."

# Test-name filters (libtest substring matches on `<module>::<scenario>::<handler>`).
# The core: what undertaker is for, on every containerd and with crun.
CORE=(
    pods::sandbox_run_stop_remove
    pods::network_namespace_as_configured
    zombies::
    stop::stop_a_workload
    leaks::
    events_cli::
    exec::
    containers::stdout_and_stderr_reach_the_log
)
# Every other scenario runs on exactly one of 1.7 and 2.x (CI's 60 minutes).
ONLY_1_7=(
    containers::container_exit_code
    resources::
    annotations::
)
# Scenarios that fail on containerd 1.7/2.x because of a shim bug these tiers found; they run
# on the host's 1.6 only until it is fixed (check lists them on every run). None now:
# unkillable:: failed on 1.7 and 2.1 (their CRI waits for the container's output to end before
# it deletes the task, and the frozen process held stdout) until the shim ended the init's stdio
# copies when something unkillable outlives the init.
KNOWN_FAILING=()
ONLY_2=(
    unkillable::
    scale::
    ctr_run::
    restart::
)

# The pure cgroup v2 guest (scripts/guest.sh: QEMU TCG, Debian's kernel with
# cgroup_no_v1=all), containerd 2.x: what cgroup v2 changes (cgroup.kill, the v2 freezer,
# memory.events' OOM kills, v2 stats) and `undertaker scan` (package undertaker's
# scan_containerd test). TCG runs a test in ~30 s: a focused set, not the suite. Not here:
# `unkillable::`, whose unkillable process is a v1-frozen one; on cgroup v2 the freezer lets
# fatal signals through (cgroup-v2.rst: frozen processes can be killed), so v2 has no such
# process to make (a D-state one needs a hung FUSE or NFS server).
GUEST_V2=(
    pods::sandbox_run_stop_remove
    zombies::
    stop::stop_a_workload
    leaks::main_exit_kills_its_daemons::
    leaks::stop_kills_children_that_ignore_term::
    resources::
    scan_counts_zombies_exactly
)
# The same guest with systemd as PID 1 and the systemd cgroup driver (SystemdCgroup = true for
# both handlers; pods below a slice, containers in cri-containerd-<id>.scope units).
GUEST_SYSTEMD=(
    pods::sandbox_run_stop_remove
    zombies::
    stop::stop_a_workload
    leaks::main_exit_kills_its_daemons::
    leaks::stop_kills_children_that_ignore_term::
)
# The same guest with crun (bookworm's 1.8.1) as `BinaryName` of both handlers, on the host's
# containerd 1.6: crun 1.8.1 refuses hybrid cgroups ("cgroups in hybrid mode not supported"),
# and rejects the OCI spec 1.1/1.2 that containerd 1.7 and 2.x write ("unknown version
# specified"; crun accepts them from 1.14.3 on), so 1.6 on pure cgroup v2 is where it runs. The
# core scenarios (the pod lifecycle and the tty exec run in the other tiers).
GUEST_CRUN=(
    zombies::
    stop::stop_a_workload
    leaks::main_exit_kills_its_daemons::
    leaks::stop_kills_children_that_ignore_term::
    exec::exec_sync_output_and_exit_code
    exec::exec_leaves_a_background_process
    events_cli::
    containers::stdout_and_stderr_reach_the_log
)

# What `run all` (CI) runs. crun-containerd-2 is defined but not run here: bookworm's crun 1.8.1
# refuses this host's hybrid cgroups, and containerd 2's OCI spec version (see GUEST_CRUN).
TIERS=(containerd-1.7 containerd-2 install-containerd-2 guest-v2 guest-v2-systemd guest-v2-crun)

# tier name -> "<pinned version prefix, or host> <OCI runtime> <pod network> <filters...>"
# The pod network (UNDERTAKER_NETWORK): `host`, or `cni` (a namespace per pod through the CNI
# bridge plugin, from the host's containernetworking-plugins).
filters_of() {
    case $1 in
    containerd-1.7) echo "1.7. runc cni ${CORE[*]} ${ONLY_1_7[*]}" ;;
    containerd-2) echo "2. runc host ${CORE[*]} ${ONLY_2[*]}" ;;
    crun-containerd-2) echo "2. crun host ${CORE[*]}" ;;
    install-containerd-2) echo "2. runc host" ;;
    guest-v2) echo "2. runc host ${GUEST_V2[*]}" ;;
    guest-v2-systemd) echo "2. runc host ${GUEST_SYSTEMD[*]}" ;;
    guest-v2-crun) echo "host crun host ${GUEST_CRUN[*]}" ;;
    *)
        echo "e2e-tiers.sh: no tier $1 (tiers: ${TIERS[*]})" >&2
        return 1
        ;;
    esac
}

step() { printf '\n==> %s\n' "$*" >&2; }

e2e_tests() {
    cargo test -q -p undertaker-e2e -- --list 2>/dev/null | sed -n 's/: test$//p'
}

matches_any() {
    local name=$1 filter
    shift
    for filter in "$@"; do
        [[ $name == *"$filter"* ]] && return 0
    done
    return 1
}

check() {
    local tests uncovered=() empty=() name filter
    mapfile -t tests < <(e2e_tests)
    [ ${#tests[@]} -gt 0 ] || { echo "e2e-tiers.sh: cargo test --list found no e2e tests" >&2; return 1; }
    for name in "${tests[@]}"; do
        matches_any "$name" "${CORE[@]}" "${ONLY_1_7[@]}" "${ONLY_2[@]}" "${KNOWN_FAILING[@]}" ||
            uncovered+=("$name")
    done
    for filter in "${CORE[@]}" "${ONLY_1_7[@]}" "${ONLY_2[@]}" "${KNOWN_FAILING[@]}"; do
        local hit=
        for name in "${tests[@]}"; do [[ $name == *"$filter"* ]] && hit=1 && break; done
        [ -n "$hit" ] || empty+=("$filter")
    done
    if [ ${#uncovered[@]} -gt 0 ] || [ ${#empty[@]} -gt 0 ]; then
        echo "e2e-tiers.sh: scenarios no tier beyond the host's runs: ${uncovered[*]:-none};" \
            "filters matching no test: ${empty[*]:-none} (edit scripts/e2e-tiers.sh)" >&2
        return 1
    fi
    echo "e2e-tiers.sh: all ${#tests[@]} e2e tests run on containerd 1.7 or 2.x, the core on both," \
        "except the known failures (host tier only): ${KNOWN_FAILING[*]}" >&2
}

# The test executables (absolute paths) of the e2e package and of package undertaker's
# scan_containerd test, built on the host: the guest sees the host's filesystem read-only and
# cannot build.
guest_test_binaries() {
    { cargo test -q -p undertaker-e2e --no-run --message-format=json 2>/dev/null
      cargo test -q -p undertaker --test scan_containerd --no-run --message-format=json 2>/dev/null; } |
        grep '"kind":\["test"\]' | grep -o '"executable":"[^"]*"' | sed 's/^"executable":"//; s/"$//'
}

# Runs tier $1's filters with every test binary in the guest, one test at a time (the guest has
# one CPU); fails when any binary fails.
run_guest_tier() {
    local tier=$1 dir=$2 runtime=$3 filters=$4 systemd=() driver=cgroupfs bins
    [ "$tier" = guest-v2-systemd ] && systemd=(--systemd) && driver=systemd
    mapfile -t bins < <(guest_test_binaries)
    [ ${#bins[@]} -ge 3 ] || { echo "e2e-tiers.sh: test binaries not found (${bins[*]})" >&2; return 1; }
    # The test images are built on the host: the guest cannot write the image cache.
    cargo test -q -p undertaker-e2e --test e2e -- pods::sandbox_run_stop_remove::runc >/dev/null
    # shellcheck disable=SC2016 # $bin and $rc expand in the guest
    local script='rc=0; for bin in '"${bins[*]}"'; do echo "==> $bin"; "$bin" --test-threads 1 '"$filters"' || rc=1; done; exit $rc'
    UNDERTAKER_CONTAINERD=$dir UNDERTAKER_CGROUP_DRIVER=$driver UNDERTAKER_OCI_RUNTIME=$runtime \
        scripts/guest.sh run "${systemd[@]}" --timeout "${UNDERTAKER_GUEST_TIMEOUT:-1200}" \
        --env UNDERTAKER_CONTAINERD --env UNDERTAKER_CGROUP_DRIVER --env UNDERTAKER_OCI_RUNTIME --env CI --env RUST_BACKTRACE \
        -- sh -c "$script"
}

run_tier() {
    local spec prefix runtime network filters dir
    spec=$(filters_of "$1")
    read -r prefix runtime network filters <<<"$spec"
    # "host": the host's own containerd (bookworm's 1.6, scripts/deps.sh).
    if [ "$prefix" = host ]; then
        dir=$(dirname "$(command -v containerd)")
    else
        dir=$(scripts/containerd-versions.sh "$prefix")
    fi
    step "tier $1: $("$dir/containerd" --version | awk '{print $3}') from $dir, OCI runtime $runtime, $network network"
    # shellcheck disable=SC2086 # the filters are words
    if [[ $1 == guest-* ]]; then
        run_guest_tier "$1" "$dir" "$runtime" "$filters"
    elif [ "$1" = install-containerd-2 ]; then
        UNDERTAKER_CONTAINERD=$dir UNDERTAKER_OCI_RUNTIME=$runtime \
            cargo test -p undertaker --test install_containerd
    else
        UNDERTAKER_CONTAINERD=$dir UNDERTAKER_OCI_RUNTIME=$runtime UNDERTAKER_NETWORK=$network \
            cargo test -p undertaker-e2e -- $filters
    fi
}

case ${1:-} in
list)
    for tier in "${TIERS[@]}" crun-containerd-2; do printf '%-22s %s\n' "$tier" "$(filters_of "$tier")"; done
    printf '%-22s %s\n' "known failures" "${KNOWN_FAILING[*]} (host tier only)"
    ;;
check) check ;;
run)
    shift
    [ $# -gt 0 ] || set -- all
    [ "$1" != all ] || set -- "${TIERS[@]}"
    for tier in "$@"; do run_tier "$tier"; done
    ;;
*)
    sed -n '2,10s/^# \{0,1\}//p' "$0" >&2
    exit 2
    ;;
esac
