#!/usr/bin/env bash
# Builds the static undertaker-init: `#![no_std]`, linked statically against musl with musl-gcc,
# profile `init` (size-optimised, panic=abort). Copies it to <target>/debug/undertaker-init and
# <target>/release/undertaker-init, where the shim's tests and the init's tests look for it, and
# prints the path.
set -euo pipefail

cd "$(dirname "$0")/.."
target_dir="${CARGO_TARGET_DIR:-target}"
triple=x86_64-unknown-linux-gnu

if ! command -v musl-gcc >/dev/null 2>&1; then
    echo "build-init.sh: musl-gcc not found; install it with: apt-get install -y musl-tools" >&2
    exit 1
fi

# --target keeps these flags away from build scripts and proc macros, which run on the host.
RUSTFLAGS="-C linker=musl-gcc -C target-feature=+crt-static -C relocation-model=static" \
    cargo build --quiet -p undertaker-init --features static-bin --profile init --target "$triple"

built="$target_dir/$triple/init/undertaker-init"
for profile in debug release; do
    mkdir -p "$target_dir/$profile"
    cp -f "$built" "$target_dir/$profile/undertaker-init"
done
realpath "$target_dir/debug/undertaker-init"
