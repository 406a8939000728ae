#!/usr/bin/env bash
# Runs one command as root in a pure cgroup v2 QEMU guest (TCG: KVM does not work on these
# machines) that sees the host's filesystem read-only at the same paths, and exits with the
# command's exit code. For what the host is not: cgroup v2 only, systemd as PID 1 (--systemd).
#
#   scripts/guest.sh fetch
#       fetches the pins of scripts/guest-versions.txt (qemu, its firmware and libraries, the
#       kernel) from the Debian archive apt already uses, checked as scripts/lib/debian.sh does,
#       unpacks them into ${UNDERTAKER_GUEST_CACHE:-/var/cache/undertaker/guest}/<pins hash>,
#       extracts vmlinux and builds the initramfs there; all re-used when present. Prints the dir.
#   scripts/guest.sh run [--systemd] [--timeout SECS] [--env NAME]... -- CMD [ARGS]...
#       fetches if needed, boots the guest, runs CMD in the current directory (the same path in
#       the guest) with stdin /dev/null, PATH, HOME=/root and the host's values of the --env
#       variables (unset ones are left out); streams CMD's stdout and stderr to stdout; exits
#       with CMD's exit code. Boot and run times go to stderr. If the guest is not done within
#       --timeout seconds (default 1200, boot included), or stops without CMD's exit code, qemu
#       is killed, the end of the guest's console goes to stderr and the exit code is 124
#       (timeout) or 125. Nothing is left behind: qemu killed, temp dirs removed, also on Ctrl-C.
#
# The guest: Debian's generic kernel with cgroup_no_v1=all systemd.unified_cgroup_hierarchy=1,
# `-accel tcg -cpu max -m 2048 -smp 1`, no NIC (loopback only), serial console to a file. A
# busybox initramfs loads virtio-pci, 9p and overlay, mounts the host's / read-only over 9p under
# a tmpfs overlay (writes work and vanish with the guest; 9p cache=loose, so files the host
# changes while the guest runs may look stale in it) and switches into it. /tmp, /run,
# /var/lib (and /var/run unless it links to /run) are fresh tmpfs: containerd's overlayfs
# snapshotter refuses an upper dir on overlay-on-9p; a run from under /tmp or /var/lib has its
# directory bound back in (the host's view, below the overlay). A second, read-write 9p share (a temp dir
# on the host, at /run/guest in the guest) carries CMD's output and exit code back. The kernel's
# modules are at /lib/modules/<version> with busybox as the kernel's modprobe, so `modprobe` and
# autoloading (veth, bridge, nf_tables...) work. Without --systemd, PID 1 is a shell that mounts
# proc, sysfs, cgroup2, devtmpfs, devpts, shm, mqueue, runs CMD in the root cgroup and powers
# off. With --systemd, the host's /lib/systemd/systemd is PID 1 (with the host's dbus) and CMD
# runs as guest.service (Delegate=yes) once the system is up (`systemctl is-system-running
# --wait`); units that are slow or pointless in the guest are masked (tmpfiles-setup, which walks
# /tmp over 9p for minutes, udev, getty, timers, network waits). The guest powers off when CMD
# ends. Measured on 2 shared cores with a cargo build beside: boot (qemu start to CMD start)
# 10-16 s without --systemd, 20-30 s with it; poweroff 0.2 s and 1-3 s.
#
# Environment: UNDERTAKER_GUEST_CACHE (see above), UNDERTAKER_GUEST_MEMORY (MiB, default 2048),
# UNDERTAKER_GUEST_CPUS (default 1: faster than 2 under TCG while the host is busy),
# UNDERTAKER_GUEST_CONSOLE (a file that receives the whole guest console log after the run).
set -euo pipefail
LC_ALL=C # EPOCHREALTIME with a decimal point

repo=$(cd "$(dirname "$0")/.." && pwd)
prog=guest.sh
pins=$repo/scripts/guest-versions.txt
cache=${UNDERTAKER_GUEST_CACHE:-/var/cache/undertaker/guest}
# shellcheck source=scripts/lib/debian.sh
. "$repo/scripts/lib/debian.sh"

# What the initramfs loads (modules.dep brings their dependencies).
initrd_modules=(virtio_pci 9pnet_virtio 9p overlay)
# Units the --systemd guest must not start.
masked_units=(
    systemd-tmpfiles-setup.service systemd-tmpfiles-clean.service systemd-tmpfiles-clean.timer
    getty.target getty@tty1.service serial-getty@ttyS0.service console-getty.service
    systemd-udevd.service systemd-udevd-control.socket systemd-udevd-kernel.socket
    systemd-udev-trigger.service systemd-udev-settle.service
    systemd-networkd-wait-online.service NetworkManager-wait-online.service networking.service
    systemd-timesyncd.service timers.target
    systemd-remount-fs.service systemd-hwdb-update.service ldconfig.service
    systemd-firstboot.service systemd-pstore.service systemd-repart.service
    systemd-journal-catalog-update.service systemd-update-done.service
    systemd-machine-id-commit.service systemd-journal-flush.service systemd-sysusers.service
    systemd-update-utmp.service systemd-random-seed.service
)
# Generators the --systemd guest keeps (the others are masked: they read /etc/init.d, fstab,
# GPT partitions... over 9p); the debug generator serves systemd.mask= on the kernel command line.
kept_generators=(systemd-debug-generator)
# Where the packages put qemu's modules (QEMU_MODULE_DIR for the unpacked qemu).
qemu_modules=usr/lib/x86_64-linux-gnu/qemu
guest_path=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin

note() { echo "guest.sh: $*" >&2; }

usage() {
    sed -n '/^#   scripts/,/^#$/p' "$0" | sed 's/^#//' >&2
    exit 2
}

# --- cleanup: whatever this run started or created goes, however it ends -------------------
pids=()
tmp_dirs=()
# TERM, then KILL after 3 s, and reap.
stop_pid() {
    local pid=$1 i
    if kill -TERM "$pid" 2>/dev/null; then
        for i in 1 2 3 4 5 6 7 8 9 10; do
            kill -0 "$pid" 2>/dev/null || break
            sleep 0.3
        done
        kill -KILL "$pid" 2>/dev/null || true
    fi
    wait "$pid" 2>/dev/null || true
}
cleanup() {
    local pid
    for pid in "${pids[@]}"; do stop_pid "$pid"; done
    pids=()
    [ ${#tmp_dirs[@]} -eq 0 ] || rm -rf "${tmp_dirs[@]}"
    tmp_dirs=()
}
trap cleanup EXIT
trap 'note "interrupted"; exit 130' INT
trap 'note "terminated"; exit 143' TERM
trap 'note "hung up"; exit 129' HUP

# --- fetch ------------------------------------------------------------------------------------

# Writes vmlinux (ELF) from bzImage `$1` to `$2`: the payload located by the boot protocol
# header (setup_sects, payload_offset, payload_length), xz as Debian's amd64 kernels are. The
# last 4 bytes of the payload are the decompressed size, not xz.
extract_vmlinux() {
    local bz=$1 out=$2 setup offset length
    u() { od -An -tu"$2" -j "$1" -N "$2" "$bz" | tr -d ' '; }
    [ "$(od -An -c -j $((0x202)) -N 4 "$bz" | tr -d ' ')" = HdrS ] || die "$bz: not a bzImage"
    setup=$(u $((0x1f1)) 1)
    [ "$setup" -ne 0 ] || setup=4
    offset=$(u $((0x248)) 4)
    length=$(u $((0x24c)) 4)
    offset=$(((setup + 1) * 512 + offset))
    [ "$(od -An -tx1 -j "$offset" -N 6 "$bz" | tr -d ' ')" = fd377a585a00 ] ||
        die "$bz: payload is not xz"
    dd if="$bz" iflag=skip_bytes,count_bytes skip="$offset" count=$((length - 4)) bs=1M status=none |
        xz -dc >"$out"
    [ "$(head -c 4 "$out" | od -An -c | tr -d ' ')" = 177ELF ] || die "$bz: no ELF in its payload"
}

# Fetches and unpacks every pin into the new dir `$1`.
fetch_pins() {
    local dest=$1 base work suite package version kernels
    debian_need_tools dpkg:dpkg
    base=$(debian_mirror)
    [ -n "$base" ] || die "no Debian archive URI in /etc/apt/sources.list*"
    work=$(mktemp -d "$cache/.fetch-XXXXXX")
    tmp_dirs+=("$work")
    chmod 755 "$work"
    mkdir "$work/root" "$work/deb"
    while read -r suite package version; do
        case $suite in '' | '#'*) continue ;; esac
        if [ ! -e "$work/index-$suite/Packages" ]; then
            note "fetching the $suite index from $base"
            debian_index "$base" "$suite" "$work/index-$suite"
        fi
        note "fetching $package $version ($suite)"
        debian_deb "$base" "$work/index-$suite/Packages" "$suite" "$package" "$version" "$work/deb/$package.deb"
        dpkg -x "$work/deb/$package.deb" "$work/root"
    done <"$pins"
    rm -rf "$work/deb" "$work"/index-*

    local qemu=$work/root/usr/bin/qemu-system-x86_64 tcg=$work/root/$qemu_modules/accel-tcg-x86_64.so missing
    [ -x "$qemu" ] || die "no usr/bin/qemu-system-x86_64 in the packages of $pins"
    [ -e "$tcg" ] || die "no $qemu_modules/accel-tcg-x86_64.so in the packages of $pins"
    missing=$(LD_LIBRARY_PATH=$(qemu_libs "$work") ldd "$qemu" "$tcg" | awk '/not found/ { print $1 }' |
        sort -u | tr '\n' ' ')
    [ -z "$missing" ] || die "qemu-system-x86_64 needs $missing- add their bookworm packages to $pins"
    LD_LIBRARY_PATH=$(qemu_libs "$work") "$qemu" --version | sed -n 1p >&2

    kernels=$(cd "$work/root/boot" 2>/dev/null && echo vmlinuz-*)
    case $kernels in
        vmlinuz-\* | '' | *' '*) die "need exactly one linux-image in $pins (boot/: ${kernels:-nothing})" ;;
    esac
    local kver=${kernels#vmlinuz-}
    note "extracting vmlinux of $kver"
    extract_vmlinux "$work/root/boot/$kernels" "$work/vmlinux"
    note "indexing the modules of $kver (busybox depmod)"
    /bin/busybox depmod -b "$work/root" "$kver"
    echo "$kver" >"$work/kernel-version"
    # The guest kernel's modprobe (/proc/sys/kernel/modprobe): busybox picks the applet by name.
    ln -s /bin/busybox "$work/modprobe"
    touch "$work/.complete"
    rm -rf "$dest"
    mv "$work" "$dest"
}

# LD_LIBRARY_PATH for the unpacked qemu in dir `$1`.
qemu_libs() { echo "$1/root/usr/lib/x86_64-linux-gnu:$1/root/lib/x86_64-linux-gnu"; }

# The initramfs' /init (busybox sh): modules, the host's / read-only over 9p under a tmpfs
# overlay, /run and the result share, then the run's stage 2 (from the share) as PID 1.
initrd_init() {
    cat <<EOF
#!/bin/busybox sh
# Built by scripts/guest.sh.
/bin/busybox mount -t devtmpfs devtmpfs /dev
exec </dev/console >/dev/console 2>&1
fail() { echo "guest.sh initramfs: \$*"; /bin/busybox poweroff -f; }
/bin/busybox mount -t proc proc /proc || fail "mount /proc"
/bin/busybox --install -s /bin
export PATH=/bin
mount -t sysfs sysfs /sys || fail "mount /sys"
for m in ${initrd_modules[*]}; do modprobe "\$m" || fail "modprobe \$m"; done
opts=trans=virtio,version=9p2000.L,msize=262144
mount -t 9p -o "\$opts,ro,cache=loose" hostroot /lower || fail "mount the host's / (9p)"
mount -t tmpfs -o mode=755 tmpfs /upper || fail "mount the overlay's tmpfs"
mkdir /upper/data /upper/work
mount -t overlay -o lowerdir=/lower,upperdir=/upper/data,workdir=/upper/work overlay /newroot ||
    fail "mount the overlay"
mount -t tmpfs -o mode=755,nosuid,nodev tmpfs /newroot/run || fail "mount /run"
mkdir /newroot/run/guest
mount -t 9p -o "\$opts" guestio /newroot/run/guest || fail "mount the result share (9p)"
[ -x /newroot/bin/bash ] || fail "the host has no /bin/bash"
umount /proc /sys
echo "guest.sh initramfs: switching to the host's /"
exec switch_root /newroot /bin/bash /run/guest/stage2
EOF
}

# Sets initrd: `$1`/initrd-<id>.cpio (uncompressed: faster to boot under TCG), built unless there.
build_initramfs() {
    local dir=$1 kver id stage out mdep line f files=() m
    kver=$(cat "$dir/kernel-version")
    id=$({ initrd_init; sha256sum </bin/busybox; } | sha256sum | cut -c1-16)
    out=$dir/initrd-$id.cpio
    if [ ! -e "$out" ]; then
        stage=$(mktemp -d "$cache/.initrd-XXXXXX")
        tmp_dirs+=("$stage")
        mkdir -p "$stage"/{bin,dev,proc,sys,lower,upper,newroot} "$stage/lib/modules/$kver"
        cp /bin/busybox "$stage/bin/busybox"
        mdep=$dir/root/lib/modules/$kver/modules.dep
        for m in "${initrd_modules[@]}"; do
            line=$(grep -E "(^|/)$m\\.ko:" "$mdep") || die "$kver has no module $m"
            # shellcheck disable=SC2206 # the module paths hold no blanks
            files+=(${line%%:*} ${line#*:})
        done
        for f in $(printf '%s\n' "${files[@]}" | sort -u); do
            mkdir -p "$stage/lib/modules/$kver/$(dirname "$f")"
            cp "$dir/root/lib/modules/$kver/$f" "$stage/lib/modules/$kver/$f"
            grep -E "^$f:" "$mdep" >>"$stage/lib/modules/$kver/modules.dep"
        done
        initrd_init >"$stage/init"
        chmod 755 "$stage/init"
        (cd "$stage" && find . | /bin/busybox cpio -o -H newc -R 0:0 2>/dev/null) >"$out.tmp"
        mv "$out.tmp" "$out"
        rm -rf "$stage"
        # Those of earlier versions of this script (not of a run that is just starting).
        find "$dir" -maxdepth 1 -name 'initrd-*.cpio' ! -name "${out##*/}" -mmin +60 -delete
    fi
    initrd=$out
}

# Sets guest_dir (the cache dir of the current pins) and initrd, fetching and building as needed.
guest_fetch() {
    local key
    [ -x /bin/busybox ] || die "no /bin/busybox: install busybox-static (scripts/deps.sh)"
    key=$(grep -vE '^[[:space:]]*(#|$)' "$pins" | awk '{ print $1, $2, $3 }' | sha256sum | cut -c1-16)
    guest_dir=$cache/$key
    mkdir -p "$cache"
    # One fetch at a time per cache (other jobs on this machine may run this too).
    exec 9>"$cache/.lock"
    flock 9
    [ -e "$guest_dir/.complete" ] || fetch_pins "$guest_dir"
    build_initramfs "$guest_dir"
    exec 9>&-
}

# --- run ----------------------------------------------------------------------------------------

# The run's stage 2, PID 1 after switch_root (host's bash, in the guest's overlay root).
write_stage2() {
    local mode=$1 kver=$2 modules=$3 modprobe=$4 keep=$5
    {
        echo '#!/bin/bash'
        printf 'mode=%q kver=%q modules=%q modprobe=%q keep=%q\n' "$mode" "$kver" "$modules" "$modprobe" "$keep"
        cat <<'EOF'
set -u
io=/run/guest
say() { echo "guest.sh stage 2: $*"; }
fail() {
    say "$*"
    echo "$*" >"$io/error"
    sync
    exec /bin/busybox poweroff -f
}
mount -t proc proc /proc || fail "mount /proc"
mount -t sysfs sysfs /sys || fail "mount /sys"
mount -t devtmpfs devtmpfs /dev || fail "mount /dev"
exec </dev/null >/dev/console 2>&1
# The run's directory, when it lies under /tmp or /var/lib (a clone in /tmp, say), is bound
# back into the fresh tmpfs: the host's view of it, read-only below the overlay.
if [ -n "$keep" ]; then
    mkdir -p /run/guest-keep && mount --bind "$keep" /run/guest-keep || fail "keep $keep"
fi
mount -t tmpfs -o mode=1777,nosuid,nodev tmpfs /tmp || fail "mount /tmp"
mount -t tmpfs -o mode=755 tmpfs /var/lib || fail "mount /var/lib"
if [ ! -L /var/run ]; then
    mount -t tmpfs -o mode=755,nosuid,nodev tmpfs /var/run || fail "mount /var/run"
fi
if [ -n "$keep" ]; then
    mkdir -p "$keep" && mount --move /run/guest-keep "$keep" || fail "move $keep back"
fi
# systemd takes a /.dockerenv for a container (and then ignores the kernel command line).
rm -f /.dockerenv /run/.containerenv
echo undertaker-guest >/proc/sys/kernel/hostname
echo undertaker-guest >/etc/hostname
if [ -n "$modules" ] && [ -d "$modules" ]; then
    mkdir -p "/lib/modules/$kver" && mount --bind "$modules" "/lib/modules/$kver" &&
        echo "$modprobe" >/proc/sys/kernel/modprobe || say "no kernel modules beyond the initramfs'"
fi
if [ "$mode" = systemd ]; then
    mkdir -p /etc/systemd/system
    mkdir -p /etc/systemd/system-generators
    cp -a "$io/systemd/." /etc/systemd/system/ || fail "install the guest's units"
    cp -a "$io/systemd-generators/." /etc/systemd/system-generators/ || fail "mask the generators"
    say "starting systemd"
    exec /lib/systemd/systemd
fi
mount -t cgroup2 -o nsdelegate cgroup2 /sys/fs/cgroup || fail "mount /sys/fs/cgroup (cgroup2)"
mkdir -p /dev/pts /dev/shm /dev/mqueue
mount -t devpts -o mode=620,ptmxmode=666,gid=5 devpts /dev/pts || fail "mount /dev/pts"
mount -t tmpfs -o mode=1777,nosuid,nodev tmpfs /dev/shm || fail "mount /dev/shm"
mount -t mqueue mqueue /dev/mqueue || fail "mount /dev/mqueue"
ln -sfn /proc/self/fd /dev/fd
ln -sf /proc/self/fd/0 /dev/stdin
ln -sf /proc/self/fd/1 /dev/stdout
ln -sf /proc/self/fd/2 /dev/stderr
/bin/busybox ip link set lo up
say "running the command"
/bin/bash "$io/runner"
sync
exec /bin/busybox poweroff -f
EOF
    }
}

# The runner: CMD in its directory with its environment; its output and exit code to the share.
write_runner() {
    local mode=$1 cwd=$2
    shift 2
    local i=0 envs=()
    while [ $# -gt 0 ] && [ "$1" != -- ]; do
        envs+=("$1")
        shift
    done
    shift
    {
        echo '#!/bin/bash'
        printf 'mode=%q cwd=%q\n' "$mode" "$cwd"
        printf 'envs=('
        for i in "${envs[@]}"; do printf ' %q' "$i"; done
        printf ' )\ncmd=('
        for i in "$@"; do printf ' %q' "$i"; done
        printf ' )\n'
        cat <<'EOF'
io=/run/guest
exec </dev/null >"$io/output" 2>&1
if [ "$mode" = systemd ]; then
    systemctl is-system-running --wait >"$io/system-state" 2>&1
    systemctl list-units --failed --plain --no-legend --no-pager >"$io/failed-units" 2>&1
fi
if cd "$cwd"; then
    : >"$io/started"
    env -i "${envs[@]}" "${cmd[@]}"
    rc=$?
else
    rc=125
fi
echo "$rc" >"$io/rc.tmp" && mv -f "$io/rc.tmp" "$io/rc"
sync
EOF
    }
}

# The --systemd guest's units: guest.target (the default target: basic.target and the command)
# and guest.service, plus the masks, written to dir `$1` for /etc/systemd/system (and the
# generators' masks to `$1`/../systemd-generators for /etc/systemd/system-generators).
write_units() {
    local dir=$1 unit
    mkdir -p "$dir"
    cat >"$dir/guest.target" <<'EOF'
[Unit]
Description=scripts/guest.sh: the command's boot target
Requires=basic.target guest.service
After=basic.target
AllowIsolate=yes
EOF
    cat >"$dir/guest.service" <<'EOF'
[Unit]
Description=scripts/guest.sh: the command
After=basic.target dbus.socket
Wants=dbus.service
SuccessAction=poweroff-force
FailureAction=poweroff-force

[Service]
Type=exec
ExecStart=/bin/bash /run/guest/runner
Delegate=yes
StandardInput=null
TimeoutStartSec=infinity
EOF
    ln -s guest.target "$dir/default.target"
    for unit in "${masked_units[@]}"; do ln -s /dev/null "$dir/$unit"; done
    mkdir -p "$dir/../systemd-generators"
    for unit in /lib/systemd/system-generators/*; do
        [[ " ${kept_generators[*]} " == *" ${unit##*/} "* ]] || ln -s /dev/null "$dir/../systemd-generators/${unit##*/}"
    done
}

# Seconds (one decimal) from EPOCHREALTIME `$1` to `$2`.
secs() { awk -v a="$1" -v b="$2" 'BEGIN { printf "%.1f", b - a }'; }

console_tail() {
    local console=$1
    echo "guest.sh: --- last 60 lines of the guest console ---" >&2
    tail -n 60 "$console" 2>/dev/null | tr -d '\r' >&2 || true
    echo "guest.sh: --- end of the guest console ---" >&2
}

run() {
    local systemd='' timeout=1200 envs=("PATH=$guest_path" HOME=/root USER=root LOGNAME=root) name
    while [ $# -gt 0 ]; do
        case $1 in
            --systemd) systemd=1 ;;
            --timeout)
                [[ ${2:-} =~ ^[1-9][0-9]*$ ]] || die "--timeout needs a number of seconds"
                timeout=$2
                shift
                ;;
            --env)
                name=${2:-}
                [[ $name =~ ^[A-Za-z_][A-Za-z0-9_]*$ ]] || die "--env needs a variable name"
                if [ -n "${!name+set}" ]; then
                    envs+=("$name=${!name}")
                else
                    note "--env $name: not set here, left out"
                fi
                shift
                ;;
            --) shift; break ;;
            *) usage ;;
        esac
        shift
    done
    [ $# -gt 0 ] || usage
    local cwd=$PWD mode=busybox keep=
    [ -z "$systemd" ] || mode=systemd
    case $cwd/ in
        /tmp/* | /var/lib/*) keep=$cwd ;;
        /run/* | /var/run/* | /proc/* | /sys/* | /dev/*)
            die "the guest has its own ${cwd#/}: run from a directory elsewhere (cwd: $cwd)" ;;
    esac
    if [ "$mode" = systemd ] && [ ! -x /lib/systemd/systemd ]; then
        die "--systemd needs the host's systemd (/lib/systemd/systemd): apt-get install systemd"
    fi

    guest_fetch
    local kver modules
    kver=$(cat "$guest_dir/kernel-version")
    modules=$guest_dir/root/lib/modules/$kver
    case $guest_dir/ in
        /tmp/* | /run/* | /var/lib/* | /var/run/*)
            note "the cache $cache is hidden in the guest: no kernel modules beyond the initramfs'"
            modules= ;;
    esac

    local tmp share console
    tmp=$(mktemp -d "${TMPDIR:-/tmp}/undertaker-guest.XXXXXX")
    tmp_dirs+=("$tmp")
    share=$tmp/share
    console=$tmp/console.log
    mkdir "$share"
    write_stage2 "$mode" "$kver" "$modules" "$guest_dir/modprobe" "$keep" >"$share/stage2"
    write_runner "$mode" "$cwd" "${envs[@]}" -- "$@" >"$share/runner"
    [ "$mode" = busybox ] || write_units "$share/systemd"
    : >"$share/output"
    : >"$console"

    local cmdline="console=ttyS0 panic=-1 mitigations=off cgroup_no_v1=all systemd.unified_cgroup_hierarchy=1"
    # shellcheck disable=SC2054 # commas inside qemu's option values
    local qemu_args=(
        -nodefaults -no-user-config -display none -monitor none -serial "file:$console"
        -accel tcg -cpu max -m "${UNDERTAKER_GUEST_MEMORY:-2048}" -smp "${UNDERTAKER_GUEST_CPUS:-1}"
        -no-reboot
        -L "$guest_dir/root/usr/share/qemu" -L "$guest_dir/root/usr/share/seabios"
        -kernel "$guest_dir/vmlinux" -initrd "$initrd" -append "$cmdline"
        -virtfs "local,path=/,mount_tag=hostroot,security_model=none,readonly=on,multidevs=remap"
        -virtfs "local,path=$share,mount_tag=guestio,security_model=none,multidevs=remap"
    )
    local t0 t_up='' t_end='' t_stop deadline qemu_pid tail_pid timed_out='' qemu_rc=0
    note "booting the guest ($mode as PID 1, timeout ${timeout} s)"
    t0=$EPOCHREALTIME
    LD_LIBRARY_PATH=$(qemu_libs "$guest_dir") QEMU_MODULE_DIR=$guest_dir/root/$qemu_modules \
        "$guest_dir/root/usr/bin/qemu-system-x86_64" "${qemu_args[@]}" \
        </dev/null >"$tmp/qemu.log" 2>&1 &
    qemu_pid=$!
    pids+=("$qemu_pid")
    # CMD's output as it comes; tail ends (after a last read) once qemu has.
    tail -n +1 -f --pid="$qemu_pid" "$share/output" &
    tail_pid=$!
    pids+=("$tail_pid")
    deadline=$((${t0%.*} + timeout))
    while kill -0 "$qemu_pid" 2>/dev/null; do
        if [ -z "$t_up" ] && [ -e "$share/started" ]; then
            t_up=$EPOCHREALTIME
            note "guest up in $(secs "$t0" "$t_up") s ($mode); running: $*"
            if [ -s "$share/failed-units" ]; then
                note "systemd is $(cat "$share/system-state"), failed units: $(tr -s ' \n' ' ' <"$share/failed-units")"
            fi
        fi
        if [ -z "$t_end" ] && [ -e "$share/rc" ]; then t_end=$EPOCHREALTIME; fi
        if [ "${EPOCHREALTIME%.*}" -ge "$deadline" ]; then
            timed_out=1
            break
        fi
        sleep 0.2
    done
    if [ -n "$timed_out" ]; then
        stop_pid "$qemu_pid"
    else
        wait "$qemu_pid" || qemu_rc=$?
    fi
    t_stop=$EPOCHREALTIME
    wait "$tail_pid" || true
    pids=()
    [ -z "$t_up" ] && [ -e "$share/started" ] && t_up=$t_stop
    [ -z "$t_end" ] && [ -e "$share/rc" ] && t_end=$t_stop
    [ -z "${UNDERTAKER_GUEST_CONSOLE:-}" ] || tr -d '\r' <"$console" >"$UNDERTAKER_GUEST_CONSOLE" || true

    if [ -n "$timed_out" ]; then
        if [ -n "$t_up" ]; then
            note "timed out after ${timeout} s: the guest came up in $(secs "$t0" "$t_up") s, the command ran $(secs "$t_up" "$t_stop") s; qemu killed"
        else
            note "timed out after ${timeout} s: the guest never came up; qemu killed"
        fi
        console_tail "$console"
        exit 124
    fi
    if [ -z "$t_end" ]; then
        note "the guest stopped after $(secs "$t0" "$t_stop") s without the command's exit code (qemu exit $qemu_rc)"
        [ ! -s "$share/error" ] || note "guest: $(cat "$share/error")"
        [ ! -s "$tmp/qemu.log" ] || { note "qemu said:"; cat "$tmp/qemu.log" >&2; }
        console_tail "$console"
        exit 125
    fi
    local rc
    rc=$(cat "$share/rc")
    note "boot $(secs "$t0" "$t_up") s, command $(secs "$t_up" "$t_end") s (exit $rc), poweroff $(secs "$t_end" "$t_stop") s"
    exit "$rc"
}

case ${1:-} in
    fetch)
        [ $# -eq 1 ] || usage
        guest_fetch
        echo "$guest_dir"
        ;;
    run)
        shift
        run "$@"
        ;;
    *) usage ;;
esac
