#!/usr/bin/env bash
# The demo of undertaker's main job: installs what is missing (deps.sh), builds everything
# (build.sh), then runs the same misbehaving pod under runc and under undertaker in a private
# containerd and prints what each left behind. Needs root (uses sudo when not root). About a
# minute after the build; everything it starts is removed at the end and on Ctrl-C.
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/deps.sh
scripts/build.sh
demo="${CARGO_TARGET_DIR:-target}/debug/undertaker-demo"
if [ "$(id -u)" -eq 0 ]; then
    exec "$demo" "$@"
else
    exec sudo "$demo" "$@"
fi
