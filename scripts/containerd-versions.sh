#!/usr/bin/env bash
# Fetches the containerd releases pinned in scripts/containerd-versions.txt from the Debian
# archive apt already uses and unpacks each into a cache directory, re-used when present:
#   ${UNDERTAKER_CONTAINERD_CACHE:-/var/cache/undertaker/containerd}/<version>/usr/bin
# (containerd, ctr, containerd-shim-runc-v2). The suite's InRelease is checked with gpgv against
# the host's Debian keyring, Packages.xz against InRelease, the .deb against Packages.xz. The
# host's apt setup is never touched.
#
#   scripts/containerd-versions.sh            fetch every pinned version; print "<version> <bin dir>"
#   scripts/containerd-versions.sh 2.         the bin dir of the pinned version starting with "2."
set -euo pipefail
cd "$(dirname "$0")/.."

pins=scripts/containerd-versions.txt
cache=${UNDERTAKER_CONTAINERD_CACHE:-/var/cache/undertaker/containerd}
keyring=/usr/share/keyrings/debian-archive-keyring.gpg

die() { echo "containerd-versions.sh: $*" >&2; exit 1; }

need_tools() {
    local missing=()
    command -v curl >/dev/null || missing+=(curl)
    command -v xz >/dev/null || missing+=(xz-utils)
    command -v gpgv >/dev/null || missing+=(gpgv)
    [ -r "$keyring" ] || missing+=(debian-archive-keyring)
    [ ${#missing[@]} -eq 0 ] && return
    [ "$(id -u)" -eq 0 ] || die "missing ${missing[*]} (apt-get install them as root)"
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${missing[@]}" >&2
}

# The http(s) URI of the Debian archive in the host's apt sources (deb822 or one-line style).
mirror() {
    local uri
    uri=$(cat /etc/apt/sources.list /etc/apt/sources.list.d/*.list /etc/apt/sources.list.d/*.sources 2>/dev/null |
        grep -oE 'https?://[^ ]*/debian/?( |$)' | grep -v -- '-security' | head -1 | tr -d ' ') || true
    echo "${uri%/}"
}

# sha256 of the file named `$2` in the `SHA256:` section of the Release text in file `$1`.
release_sha256() {
    awk -v name="$2" '/^SHA256:/ { in_sha = 1; next } /^[^ ]/ { in_sha = 0 }
        in_sha && $3 == name { print $1; exit }' "$1"
}

# Prints "<Filename> <SHA256>" of package `$2` version `$3` from the Packages text in file `$1`
# (exact string comparison: versions hold regex characters such as `+`).
package_entry() {
    awk -v RS= -F '\n' -v pkg="$2" -v ver="$3" '{
        name = version = file = sha = ""
        for (i = 1; i <= NF; i++) {
            if ($i ~ /^Package: /) name = substr($i, 10)
            else if ($i ~ /^Version: /) version = substr($i, 10)
            else if ($i ~ /^Filename: /) file = substr($i, 11)
            else if ($i ~ /^SHA256: /) sha = substr($i, 9)
        }
        if (name == pkg && ver == "") printf "%s ", version
        else if (name == pkg && version == ver) { print file, sha; exit }
    }' "$1"
}

# Fetches and unpacks one pinned package unless the cache has it; prints its bin dir.
fetch() {
    local suite=$1 package=$2 version=$3
    local dest=$cache/$version
    if [ -e "$dest/.complete" ]; then
        echo "$dest/usr/bin"
        return
    fi
    need_tools
    local base work
    base=$(mirror)
    [ -n "$base" ] || die "no Debian archive URI in /etc/apt/sources.list*"
    mkdir -p "$cache"
    work=$(mktemp -d "$cache/.fetch-XXXXXX")
    # Expanded now: the trap runs after this function's locals are gone.
    # shellcheck disable=SC2064
    trap "rm -rf '$work'" EXIT
    echo "containerd-versions.sh: fetching $package $version ($suite) from $base" >&2
    curl -fsSL --retry 3 -o "$work/InRelease" "$base/dists/$suite/InRelease"
    gpgv --quiet --keyring "$keyring" --output "$work/Release" "$work/InRelease" 2>"$work/gpgv.log" ||
        die "$base/dists/$suite/InRelease: bad signature: $(cat "$work/gpgv.log")"
    local index_sha
    index_sha=$(release_sha256 "$work/Release" main/binary-amd64/Packages.xz)
    [ -n "$index_sha" ] || die "$suite's Release lists no main/binary-amd64/Packages.xz"
    curl -fsSL --retry 3 -o "$work/Packages.xz" "$base/dists/$suite/main/binary-amd64/Packages.xz"
    echo "$index_sha  $work/Packages.xz" | sha256sum --check --quiet ||
        die "$suite's Packages.xz does not match its Release"
    xz -dc "$work/Packages.xz" >"$work/Packages"
    local entry file sha
    entry=$(package_entry "$work/Packages" "$package" "$version")
    [ -n "$entry" ] || die "$suite has no $package $version any more (it has: $(
        package_entry "$work/Packages" "$package" "")); update $pins"
    read -r file sha <<<"$entry"
    curl -fsSL --retry 3 -o "$work/package.deb" "$base/$file"
    echo "$sha  $work/package.deb" | sha256sum --check --quiet ||
        die "$base/$file does not match the sha256 of $suite's index ($sha)"
    dpkg -x "$work/package.deb" "$work/root"
    [ -x "$work/root/usr/bin/containerd" ] || die "$file holds no usr/bin/containerd"
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
