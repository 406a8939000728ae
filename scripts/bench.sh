#!/usr/bin/env bash
# Builds the release shim, the static init and the benchmark, then runs the benchmark
# (undertaker vs containerd's runc shim on one private containerd; needs root). Prints a
# Markdown table; writes docs/bench/results.json and docs/bench/shim-vs-runc.svg.
# Extra arguments go to undertaker-bench (see `undertaker-bench --help`), e.g.
#   scripts/bench.sh --pods 10 --stop-runs 3
set -euo pipefail

cd "$(dirname "$0")/.."
target_dir="${CARGO_TARGET_DIR:-target}"

# Separate invocations: built together, cargo would unify the dependencies' features of the
# shim and the benchmark, and the measured shim would not be the one that ships.
cargo build --quiet --release -p undertaker-shim
cargo build --quiet --release -p undertaker-bench
scripts/build-init.sh >/dev/null

exec "$target_dir/release/undertaker-bench" \
    --bin-dir "$target_dir/release" \
    --json docs/bench/results.json \
    --chart docs/bench/shim-vs-runc.svg \
    "$@"
