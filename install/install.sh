#!/usr/bin/env bash
# The one command a node operator runs: builds undertaker (or takes prebuilt binaries), then
# runs `undertaker install` with the remaining arguments (see `undertaker install --help`).
#
#   install/install.sh                              # build, install, restart containerd, verify
#   install/install.sh --dry-run                    # build, show the changes as a diff
#   install/install.sh --prebuilt DIR [flags...]    # install the three binaries found in DIR
#   install/install.sh uninstall [flags...]         # undo it (binaries found as above)
#
# Building needs cargo and musl-gcc (apt-get install -y musl-tools); run as root to install.
set -euo pipefail

repo="$(cd "$(dirname "$0")/.." && pwd)"
command=install
if [[ "${1:-}" == uninstall ]]; then
    command=uninstall
    shift
fi

bin_dir=
if [[ "${1:-}" == --prebuilt ]]; then
    bin_dir="${2:?--prebuilt needs a directory}"
    shift 2
else
    cd "$repo"
    echo "install.sh: building release binaries (cargo build --release)" >&2
    cargo build --release --locked -p undertaker -p undertaker-shim
    # Puts undertaker-init into <target>/release beside the other two.
    scripts/build-init.sh >/dev/null
    target_dir="${CARGO_TARGET_DIR:-target}"
    bin_dir="$(cd "$target_dir/release" && pwd)"
fi

for binary in containerd-shim-undertaker-v2 undertaker undertaker-init; do
    if [[ ! -x "$bin_dir/$binary" ]]; then
        echo "install.sh: $bin_dir/$binary is missing or not executable" >&2
        exit 1
    fi
done

if [[ "$command" == install ]]; then
    exec "$bin_dir/undertaker" install --from "$bin_dir" "$@"
fi
exec "$bin_dir/undertaker" uninstall "$@"
