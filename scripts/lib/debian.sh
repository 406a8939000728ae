# shellcheck shell=bash disable=SC2154 # prog and pins come from the sourcing script
# Fetching pinned .debs from the Debian archive apt already uses, without touching the host's apt
# setup: the suite's InRelease is checked with gpgv against the host's Debian keyring, Packages.xz
# against InRelease, the .deb against Packages.xz. Sourced by scripts/containerd-versions.sh and
# scripts/guest.sh, which set before calling:
#   prog    their name, for messages ("containerd-versions.sh")
#   pins    their pins file, named when a pinned version is gone from its suite
#
#   debian_need_tools [CMD:PACKAGE]...      installs (as root) what fetching needs, and more
#   base=$(debian_mirror)                   the archive's URI
#   debian_index BASE SUITE DIR             DIR/Packages: SUITE's verified main/binary-amd64 index
#   debian_deb BASE PACKAGES SUITE PACKAGE VERSION OUT
#                                           OUT: that .deb, verified against the index PACKAGES
#                                           (its pool path left in debian_file)

debian_keyring=/usr/share/keyrings/debian-archive-keyring.gpg

die() { echo "$prog: $*" >&2; exit 1; }

# Each argument "command:package" adds a tool beyond those fetching needs.
# shellcheck disable=SC2120 # the arguments are optional
debian_need_tools() {
    local missing=() tool
    command -v curl >/dev/null || missing+=(curl)
    command -v xz >/dev/null || missing+=(xz-utils)
    command -v gpgv >/dev/null || missing+=(gpgv)
    [ -r "$debian_keyring" ] || missing+=(debian-archive-keyring)
    for tool in "$@"; do
        command -v "${tool%%:*}" >/dev/null || missing+=("${tool#*:}")
    done
    [ ${#missing[@]} -eq 0 ] && return
    [ "$(id -u)" -eq 0 ] || die "missing ${missing[*]} (apt-get install them as root)"
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${missing[@]}" >&2
}

# The http(s) URI of the Debian archive in the host's apt sources (deb822 or one-line style).
debian_mirror() {
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
# (exact string comparison: versions hold regex characters such as `+`). With `$3` empty, prints
# the versions of `$2` the index has.
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

# Leaves in `$3`/Packages the main/binary-amd64 index of suite `$2` from archive `$1`, its
# InRelease signature and its sha256 checked (`$3`/InRelease, Release, Packages.xz stay beside it).
debian_index() {
    local base=$1 suite=$2 work=$3
    local index_sha
    mkdir -p "$work"
    curl -fsSL --retry 3 -o "$work/InRelease" "$base/dists/$suite/InRelease"
    gpgv --quiet --keyring "$debian_keyring" --output "$work/Release" "$work/InRelease" 2>"$work/gpgv.log" ||
        die "$base/dists/$suite/InRelease: bad signature: $(cat "$work/gpgv.log")"
    index_sha=$(release_sha256 "$work/Release" main/binary-amd64/Packages.xz)
    [ -n "$index_sha" ] || die "$suite's Release lists no main/binary-amd64/Packages.xz"
    curl -fsSL --retry 3 -o "$work/Packages.xz" "$base/dists/$suite/main/binary-amd64/Packages.xz"
    echo "$index_sha  $work/Packages.xz" | sha256sum --check --quiet ||
        die "$suite's Packages.xz does not match its Release"
    xz -dc "$work/Packages.xz" >"$work/Packages"
}

# Downloads package `$4` version `$5` as listed in the verified index `$2` of suite `$3` from
# archive `$1` to file `$6`, checking it against the index's sha256. Leaves its path in the
# archive (pool/...) in `debian_file`.
debian_deb() {
    local base=$1 index=$2 suite=$3 package=$4 version=$5 out=$6
    local entry sha
    entry=$(package_entry "$index" "$package" "$version")
    [ -n "$entry" ] || die "$suite has no $package $version any more (it has: $(
        package_entry "$index" "$package" "")); update $pins"
    read -r debian_file sha <<<"$entry"
    curl -fsSL --retry 3 -o "$out" "$base/$debian_file"
    echo "$sha  $out" | sha256sum --check --quiet ||
        die "$base/$debian_file does not match the sha256 of $suite's index ($sha)"
}
