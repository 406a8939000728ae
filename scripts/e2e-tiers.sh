#!/usr/bin/env bash
# The end-to-end tiers beyond the host's containerd (which runs every scenario in
# `cargo test --workspace`): other containerd releases, crun, and the installer on containerd 2.
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

# What `run all` (CI) runs. crun-containerd-2 is defined but not run here: bookworm's crun 1.8.1
# refuses this host's hybrid cgroups ("cgroups in hybrid mode not supported" with 1.6, "unknown
# version specified" with 1.7 and 2.x); it belongs on a pure cgroup v2 node.
TIERS=(containerd-1.7 containerd-2 install-containerd-2)

# tier name -> "<pinned version prefix> <OCI runtime> <pod network> <filters...>"
# The pod network (UNDERTAKER_NETWORK): `host`, or `cni` (a namespace per pod through the CNI
# bridge plugin, from the host's containernetworking-plugins).
filters_of() {
    case $1 in
    containerd-1.7) echo "1.7. runc cni ${CORE[*]} ${ONLY_1_7[*]}" ;;
    containerd-2) echo "2. runc host ${CORE[*]} ${ONLY_2[*]}" ;;
    crun-containerd-2) echo "2. crun host ${CORE[*]}" ;;
    install-containerd-2) echo "2. runc host" ;;
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

run_tier() {
    local spec prefix runtime network filters dir
    spec=$(filters_of "$1")
    read -r prefix runtime network filters <<<"$spec"
    dir=$(scripts/containerd-versions.sh "$prefix")
    step "tier $1: $("$dir/containerd" --version | awk '{print $3}') from $dir, OCI runtime $runtime, $network network"
    # shellcheck disable=SC2086 # the filters are words
    if [ "$1" = install-containerd-2 ]; then
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
