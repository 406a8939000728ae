#!/usr/bin/env bash
# Installs the Debian packages undertaker builds, tests and demos with, when missing.
# Idempotent; needs root (or sudo) only when something is missing.
set -euo pipefail

packages=(
    containerd runc            # the container stack the shim plugs into
    crun                       # the other OCI runtime the e2e tiers run (scripts/e2e-tiers.sh)
    containernetworking-plugins  # CNI bridge/host-local/loopback: the tiers with pod networks
    curl xz-utils gpgv debian-archive-keyring  # scripts/containerd-versions.sh
    busybox-static             # root filesystem of the test and demo images (and the installer image)
    bash-static                # /bin/bash of the installer image (scripts/image.sh)
    ca-certificates            # the installer image's CA bundle (scripts/image.sh)
    protobuf-compiler          # protoc, for the CRI bindings (k8s-cri)
    musl-tools                 # musl-gcc: links the static undertaker-init
    tini dumb-init catatonit   # the inits undertaker-init is measured against; tini -s supervises test containerds
    util-linux bsdutils        # unshare/nsenter (init tests), script
    iproute2 ca-certificates
)

missing=()
for p in "${packages[@]}"; do
    dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
if [ ${#missing[@]} -eq 0 ]; then
    exit 0
fi
echo "deps.sh: installing ${missing[*]}" >&2
sudo_cmd=()
[ "$(id -u)" -eq 0 ] || sudo_cmd=(sudo)
export DEBIAN_FRONTEND=noninteractive
"${sudo_cmd[@]}" apt-get update -qq || true
"${sudo_cmd[@]}" apt-get install -y -qq --no-install-recommends "${missing[@]}"
