#!/usr/bin/env bash
# The whole test suite, as CI runs it (as root, on a clean clone): packages, lints, build,
# unit tests, root tests and end-to-end tests against private containerd instances.
set -euo pipefail
cd "$(dirname "$0")/.."

step() { printf '\n==> %s\n' "$*" >&2; }

step "host packages"
scripts/deps.sh

step "format"
cargo fmt --all --check

step "build"
scripts/build.sh

step "clippy"
cargo clippy --all-targets -- -D warnings
RUSTFLAGS="-C linker=musl-gcc -C target-feature=+crt-static -C relocation-model=static" \
    cargo clippy -p undertaker-init --features static-bin --profile init \
    --target x86_64-unknown-linux-gnu -- -D warnings

step "tests (unit, root, end-to-end)"
cargo test --workspace --exclude undertaker-init-bench
