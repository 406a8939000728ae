#!/usr/bin/env bash
# Fetches the containerd releases pinned in scripts/containerd-versions.txt from the Debian
# archive apt already uses and unpacks each into a cache directory, re-used when present:
#   ${UNDERTAKER_CONTAINERD_CACHE:-/var/cache/undertaker/containerd}/<version>/usr/bin
# (containerd, ctr, containerd-shim-runc-v2). The suite's InRelease is checked with gpgv against
# the host's Debian keyring, Packages.xz against InRelease, the .deb against Packages.xz. The
# host's apt setup is never touched (the fetching and checking is scripts/lib/debian.sh).
#
#   scripts/containerd-versions.sh            fetch every pinned version; print "<version> <bin dir>"
#   scripts/containerd-versions.sh 2.         the bin dir of the pinned version starting with "2."
set -euo pipefail
cd "$(dirname "$0")/.."

pins=scripts/containerd-versions.txt
cache=${UNDERTAKER_CONTAINERD_CACHE:-/var/cache/undertaker/containerd}
prog=containerd-versions.sh
# shellcheck source=scripts/lib/debian.sh
. scripts/lib/debian.sh

# Fetches and unpacks one pinned package unless the cache has it; prints its bin dir.
fetch() {
    local suite=$1 package=$2 version=$3
    local dest=$cache/$version
    if [ -e "$dest/.complete" ]; then
        echo "$dest/usr/bin"
        return
    fi
    debian_need_tools
    local base work
    base=$(debian_mirror)
    [ -n "$base" ] || die "no Debian archive URI in /etc/apt/sources.list*"
    mkdir -p "$cache"
    work=$(mktemp -d "$cache/.fetch-XXXXXX")
    # Expanded now: the trap runs after this function's locals are gone.
    # shellcheck disable=SC2064
    trap "rm -rf '$work'" EXIT
    echo "containerd-versions.sh: fetching $package $version ($suite) from $base" >&2
    debian_index "$base" "$suite" "$work"
    debian_deb "$base" "$work/Packages" "$suite" "$package" "$version" "$work/package.deb"
    dpkg -x "$work/package.deb" "$work/root"
    [ -x "$work/root/usr/bin/containerd" ] || die "$debian_file holds no usr/bin/containerd"
    touch "$work/root/.complete"
    rm -rf "$dest"
    mv "$work/root" "$dest"
    rm -rf "$work"
    trap - EXIT
    echo "$dest/usr/bin"
}

want=${1:-}
mkdir -p "$cache"
# One fetch at a time per cache (other jobs on this machine may run this too).
exec 9>"$cache/.lock"
flock 9
found=
while read -r suite package version; do
    case $suite in '' | '#'*) continue ;; esac
    if [ -z "$want" ]; then
        dir=$(fetch "$suite" "$package" "$version")
        printf '%s %s\n' "$version" "$dir"
    elif [[ $version == "$want"* ]]; then
        fetch "$suite" "$package" "$version"
        found=1
    fi
done <"$pins"
[ -z "$want" ] || [ -n "$found" ] || die "no pinned version starts with $want (see $pins)"
