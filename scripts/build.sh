#!/usr/bin/env bash
# Builds every binary: the shim, the node CLI, the test/demo programs (dev profile, or
# release with --release) and the static undertaker-init next to them.
set -euo pipefail
cd "$(dirname "$0")/.."
profile_args=()
[ "${1:-}" = "--release" ] && profile_args=(--release)
cargo build "${profile_args[@]}" --workspace --exclude undertaker-init --bins
scripts/build-init.sh >/dev/null
