#!/usr/bin/env bash
# Builds the image the DaemonSet in install/kubernetes/ runs, without a Docker engine: static
# (musl) release builds of the CLI and the shim, the static undertaker-init, the host's static
# busybox and bash and its CA bundle, as one OCI image-layout tarball
# (crates/testbed/src/installer_image.rs).
# Prints the tarball's path.
#
#   scripts/image.sh [--profile PROFILE] [OUT]
#
# PROFILE is the cargo profile of the CLI and the shim: release (the default, what a node gets)
# or image-test (unoptimised, built in a fraction of the time: what scripts/test.sh builds for
# the installer image's root test). OUT defaults to <target>/image/undertaker-image.tar.
#
# Load it into a node's containerd:  ctr -n k8s.io images import <tarball>
# or push it with any OCI tool (skopeo copy oci-archive:<tarball> docker://<registry>/...).
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/deps.sh

profile=release
if [ "${1:-}" = --profile ]; then
    profile="${2:?--profile needs a value}"
    shift 2
fi
target_dir="${CARGO_TARGET_DIR:-target}"
musl=x86_64-unknown-linux-musl
if ! rustup target list --installed 2>/dev/null | grep -qx "$musl"; then
    echo "image.sh: adding the Rust target $musl" >&2
    rustup target add "$musl"
fi
# The shim and the CLI link statically against musl; ring's C code builds with musl-gcc. Not
# as static PIEs (Rust's default for musl): a PIE's .data.rel.ro is relocated in every process,
# private memory in every pod's shim (docs/decisions.md, "The shim is not a PIE").
CC_x86_64_unknown_linux_musl=musl-gcc RUSTFLAGS="-C relocation-model=static" \
    cargo build --quiet --profile "$profile" --locked --target "$musl" -p undertaker -p undertaker-shim
scripts/build-init.sh >/dev/null
cargo build --quiet -p undertaker-testbed --bin undertaker-image

bins="$target_dir/image/bin"
mkdir -p "$bins"
cp -f "$target_dir/$musl/$profile/containerd-shim-undertaker-v2" \
      "$target_dir/$musl/$profile/undertaker" \
      "$target_dir/release/undertaker-init" "$bins/"
out="${1:-$target_dir/image/undertaker-image.tar}"
"$target_dir/debug/undertaker-image" --bin-dir "$bins" --bash /bin/bash-static \
    --ca-bundle /etc/ssl/certs/ca-certificates.crt --out "$out" >&2
realpath "$out"
