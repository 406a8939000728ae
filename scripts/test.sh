#!/usr/bin/env bash
# The whole test suite, as CI runs it (as root, on a clean clone): packages, lints, build,
# unit tests, root tests and end-to-end tests against private containerd instances: the host's
# containerd (every test), then the tiers of scripts/e2e-tiers.sh (containerd 1.7 and 2.x from
# Debian's archive, crun, the installer on containerd 2.x). docs/testing.md says how to run one.
set -euo pipefail
cd "$(dirname "$0")/.."

step() { printf '\n==> %s\n' "$*" >&2; }

# A clean clone builds everything once: incremental caches would only add gigabytes of disk.
if [ "${CI:-}" = "true" ]; then
    export CARGO_INCREMENTAL=0
fi

step "host packages"
scripts/deps.sh

step "format"
cargo fmt --all --check

step "build"
scripts/build.sh

step "installer image (scripts/image.sh --profile image-test: unoptimised static binaries)"
scripts/image.sh --profile image-test >/dev/null

step "clippy"
cargo clippy --all-targets -- -D warnings
RUSTFLAGS="-C linker=musl-gcc -C target-feature=+crt-static -C relocation-model=static" \
    cargo clippy -p undertaker-init --features static-bin --profile init \
    --target x86_64-unknown-linux-gnu -- -D warnings

step "containerd releases of the other tiers (scripts/containerd-versions.txt)"
scripts/containerd-versions.sh
scripts/e2e-tiers.sh check

step "tests (unit, root, end-to-end) on the host's $(containerd --version | awk '{print $3}'), OCI runtime runc"
cargo test --workspace --exclude undertaker-init-bench

scripts/e2e-tiers.sh run all
