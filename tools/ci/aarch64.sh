#!/usr/bin/env bash
# aarch64 Linux under emulation: the package built and tested in an arm64 Debian root
# run by qemu-user (NEON, the only aarch64 target), and the cross-architecture check:
# tools/trajectory_hashes.py's seeded trajectories must hash byte for byte the same on
# every x86-64 target of this machine and on NEON.
#
#     bash tools/ci/aarch64.sh
#
# Steps: (0) host tools (qemu-user-static, debootstrap, binfmt-support) and the
# qemu-aarch64 binfmt handler; (1) the arm64 root, cached; (2) the committed HEAD
# (git archive) built and installed in a venv in the root, with pytest, hypothesis and
# numpy; (3) the kernel, list, dispatch, validation and thread tests under emulation;
# (4) trajectory hashes inside (NEON) and on the host (every x86-64 target), compared.
#
# Cache: $PYRMSPROP_CI_CACHE (default /var/cache/pyrmsprop-ci):
#   arm64-root/      Debian bookworm arm64 (python3, python3-venv, python3-dev, gcc), built
#                    in a temporary folder and renamed when complete, so an interrupted
#                    build is never reused; rebuilt when its recipe ($root_key) changes
#   pip-arm64/       pip's cache inside the root (wheels: numpy, Cython, pytest, ...)
#   pip/             pip's cache for the host venv
#   aarch64-pytest.log, hashes-host.json, hashes-arm64.json: the last run's results
#
# Time, measured on the shared 2-core AMD EPYC (Zen 3) machine with other helpers' builds
# running (load average 4-6), step by step (not yet one run from a fresh clone):
#   debootstrap of the root (cold only)                      820 s
#   venv + pip install under qemu (extension built by gcc)   544 s  (pip cache warm)
#   the tests under qemu (814 passed, 9 torch skips)         736 s
#   trajectory hashes under qemu (320 cases, NEON; 360 since the 8-bit state) 218 s
#   host venv + install + hashes (baseline, avx2)            123 s
#   => cold about 2450 s (41 min), warm (root cached) about 1630 s (27 min).
#   Unloaded, by hand earlier: build ~3 min, the tests ~4 min.
# Budget: 3700 s (about 1.5x cold).
set -euo pipefail

repo=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
cache=${PYRMSPROP_CI_CACHE:-/var/cache/pyrmsprop-ci}
rootfs=$cache/arm64-root
suite=bookworm
mirror=${PYRMSPROP_DEBIAN_MIRROR:-http://deb.debian.org/debian}
packages=python3,python3-venv,python3-dev,gcc,libc6-dev,ca-certificates
# The root's recipe: a root built from another recipe is rebuilt.
root_key="debian-$suite-arm64-minbase:$packages:v1"
tests=(tests/test_kernels.py tests/test_multi.py tests/test_dispatch.py
       tests/test_validation.py tests/test_threads.py tests/test_trajectory_hashes.py
       tests/test_storage.py)
unset PYRMSPROP_SIMD PYRMSPROP_NUM_THREADS PYTHONPATH
export DEBIAN_FRONTEND=noninteractive
start=$SECONDS
step() { printf '\n== aarch64 [%4d s] %s\n' $((SECONDS - start)) "$*"; }

work=$(mktemp -d "${TMPDIR:-/tmp}/pyrmsprop-aarch64.XXXXXX")
trap 'rm -rf "$work"' EXIT
mkdir -p "$cache"

# ---- 0. Host tools and the binfmt handler ------------------------------------------------
step "host tools"
need=()
[ -x /usr/bin/qemu-aarch64-static ] || need+=(qemu-user-static)
command -v debootstrap >/dev/null || need+=(debootstrap)
command -v update-binfmts >/dev/null || need+=(binfmt-support)
if [ ${#need[@]} -gt 0 ]; then
    echo "installing ${need[*]}"
    { apt-get -o DPkg::Lock::Timeout=600 update -qq &&
      apt-get -o DPkg::Lock::Timeout=600 install -y -qq --no-install-recommends "${need[@]}"
    } >"$work/apt.log" 2>&1 || { tail -n 30 "$work/apt.log"; echo "aarch64: apt-get failed"; exit 1; }
fi
# The kernel runs arm64 binaries through qemu only with a registered binfmt handler.  In
# a container binfmt_misc may not be mounted (the package's postinst then registers
# nothing): mount it and register Debian's qemu-aarch64 entry (flag F: the interpreter is
# opened now, so the root needs no copy of qemu).
if [ ! -e /proc/sys/fs/binfmt_misc/status ]; then
    mount -t binfmt_misc binfmt_misc /proc/sys/fs/binfmt_misc
fi
if ! grep -qx enabled /proc/sys/fs/binfmt_misc/qemu-aarch64 2>/dev/null; then
    update-binfmts --enable qemu-aarch64 ||
        update-binfmts --import qemu-aarch64   # registered by hand when not yet imported
fi
grep -qx enabled /proc/sys/fs/binfmt_misc/qemu-aarch64 ||
    { echo "aarch64: the qemu-aarch64 binfmt handler is not enabled"; exit 1; }

# Run a command in the root, in a private mount namespace: /proc, /dev and the caches
# are mounted for it alone and vanish when it ends (nothing is left mounted inside the
# cached root, even when this script is killed).
in_root() {   # in_root ROOT COMMAND...
    local r=$1
    shift
    unshare --mount --propagation private -- bash -c '
        r=$1; shift
        mount -t proc proc "$r/proc"
        mount --rbind /dev "$r/dev"
        mkdir -p "$r/var/cache/pip-arm64"
        mount --bind "$CACHE/pip-arm64" "$r/var/cache/pip-arm64"
        exec chroot "$r" /usr/bin/env -i HOME=/root LANG=C.UTF-8 PATH=/usr/sbin:/usr/bin:/sbin:/bin \
            PIP_CACHE_DIR=/var/cache/pip-arm64 PIP_DISABLE_PIP_VERSION_CHECK=1 \
            PIP_DEFAULT_TIMEOUT=180 ${PIP_INDEX_URL:+PIP_INDEX_URL=$PIP_INDEX_URL} "$@"
    ' in_root "$r" "$@"
}
export CACHE=$cache
mkdir -p "$cache/pip-arm64" "$cache/pip"

# ---- 1. The arm64 root (cached) ------------------------------------------------------------
if [ -f "$rootfs/.pyrmsprop-root" ] && [ "$(cat "$rootfs/.pyrmsprop-root")" = "$root_key" ]; then
    step "arm64 root: cached ($rootfs)"
else
    step "arm64 root: building (debootstrap --arch=arm64 $suite)"
    # leftovers of interrupted builds (each was built in a namespace of its own, so no
    # mount is left inside: --one-file-system only guards against the unexpected)
    rm -rf --one-file-system "$cache"/arm64-root.tmp.* "$cache"/arm64-root.old.*
    tmp=$(mktemp -d "$cache/arm64-root.tmp.XXXXXX")
    # debootstrap mounts /proc etc. in the target for its second stage (run under qemu);
    # the private namespace takes those mounts away with it, however it ends
    if ! unshare --mount --propagation private -- debootstrap --arch=arm64 --variant=minbase \
            --include="$packages" "$suite" "$tmp" "$mirror" >"$work/debootstrap.log" 2>&1; then
        tail -n 40 "$work/debootstrap.log"
        [ -f "$tmp/debootstrap/debootstrap.log" ] && tail -n 40 "$tmp/debootstrap/debootstrap.log"
        echo "aarch64: debootstrap failed"
        exit 1
    fi
    # pip inside reaches PyPI through the host's DNS and CA bundle; the host's pip
    # configuration (cert, find-links and extra indexes on this disk, with x86-64 wheels
    # only) is not copied: only the CA bundle is needed
    cp /etc/resolv.conf "$tmp/etc/resolv.conf"
    cp /etc/ssl/certs/ca-certificates.crt "$tmp/etc/ssl/certs/ca-certificates.crt"
    printf '[global]\ncert = /etc/ssl/certs/ca-certificates.crt\n' >"$tmp/etc/pip.conf"
    rm -rf "$tmp/var/cache/apt/archives/"*.deb
    in_root "$tmp" /usr/bin/python3 -c 'import ensurepip, venv, sysconfig; print("python", sysconfig.get_platform())'
    echo "$root_key" >"$tmp/.pyrmsprop-root"
    # swap it in: the old root (if any) is moved aside first, then removed
    if [ -e "$rootfs" ]; then mv "$rootfs" "$cache/arm64-root.old.$$"; fi
    mv "$tmp" "$rootfs"
    rm -rf --one-file-system "$cache/arm64-root.old.$$"
fi
# Every run refreshes DNS and the CA bundle (the host's may have changed since).
cp /etc/resolv.conf "$rootfs/etc/resolv.conf"
cp /etc/ssl/certs/ca-certificates.crt "$rootfs/etc/ssl/certs/ca-certificates.crt"

# ---- 2. The committed HEAD, built in a fresh venv in the root ------------------------------
step "arm64: git archive HEAD, venv, pip install (builds the extension under qemu)"
rm -rf "$rootfs/work"
mkdir -p "$rootfs/work/src"
git -C "$repo" archive HEAD | tar -x -C "$rootfs/work/src"
in_root "$rootfs" /usr/bin/python3 -m venv /work/venv
in_root "$rootfs" /work/venv/bin/python -m pip install -q --upgrade pip
# the test extra's minimum (the rest of it, scikit-learn/matplotlib/mypy, is not needed by
# these tests and is slow to install under emulation)
in_root "$rootfs" /work/venv/bin/python -m pip install -q /work/src "pytest>=7" "hypothesis>=6" "ml_dtypes>=0.4"
in_root "$rootfs" /bin/sh -c 'cd /work && /work/venv/bin/python -c "import pyrmsprop; pyrmsprop.show_config()"' \
    | tee "$work/show_config.txt"
targets=$(in_root "$rootfs" /bin/sh -c 'cd /work && /work/venv/bin/python -c "import pyrmsprop; print(*pyrmsprop.simd_targets()); print(pyrmsprop.simd_target())"')
echo "arm64 simd_targets / in use: $(echo $targets)"
[ "$targets" = $'neon\nneon' ] || { echo "aarch64: expected NEON only and in use, got: $targets"; exit 1; }

# ---- 3. The tests under emulation -----------------------------------------------------------
step "arm64: pytest ${tests[*]}"
test_rc=0
in_root "$rootfs" /bin/sh -c "cd /work/src && /work/venv/bin/python -m pytest -q -p no:cacheprovider ${tests[*]}" \
    >"$work/pytest.log" 2>&1 || test_rc=$?
tail -n 15 "$work/pytest.log"
cp "$work/pytest.log" "$cache/aarch64-pytest.log" || true    # kept for a look after a failure
test_line=$(grep -E '^[0-9]+ (passed|failed)|^=+ .*(passed|failed|error).* =+$' "$work/pytest.log" | tail -n 1 || true)

# ---- 4. Trajectory hashes: NEON in the root, every x86-64 target on the host ---------------
step "arm64: trajectory hashes (NEON)"
hash_rc=0
in_root "$rootfs" /bin/sh -c 'cd /work && /work/venv/bin/python /work/src/tools/trajectory_hashes.py -o /work/hashes-arm64.json' \
    || hash_rc=$?
cp "$rootfs/work/hashes-arm64.json" "$work/" 2>/dev/null || true

step "host: venv, pip install, trajectory hashes (every x86-64 target)"
mkdir "$work/src"
git -C "$repo" archive HEAD | tar -x -C "$work/src"
python3 -m venv "$work/venv"
PIP_CACHE_DIR="$cache/pip" PIP_DISABLE_PIP_VERSION_CHECK=1 \
    "$work/venv/bin/python" -m pip install -q "$work/src" 2>&1 | { grep -v "^WARNING: Location '" || true; }
(cd "$work" && "$work/venv/bin/python" "$work/src/tools/trajectory_hashes.py" -o "$work/hashes-host.json") \
    || hash_rc=$?

cmp_rc=0
if [ -f "$work/hashes-arm64.json" ] && [ -f "$work/hashes-host.json" ]; then
    "$work/venv/bin/python" "$work/src/tools/trajectory_hashes.py" \
        --compare "$work/hashes-host.json" "$work/hashes-arm64.json" | tee "$work/compare.txt" \
        || cmp_rc=1
    # keep the last results beside the cache, for a look after a failure
    cp "$work/hashes-host.json" "$work/hashes-arm64.json" "$cache/" || true
else
    echo "aarch64: a trajectory hash run failed; nothing to compare" >"$work/compare.txt"
    cmp_rc=1
fi

# ---- Summary --------------------------------------------------------------------------------
printf '\naarch64.sh summary (%d s):\n' $((SECONDS - start))
printf '  arm64 tests (qemu, NEON): %s\n' "${test_line:-no pytest summary line}"
printf '  trajectory hashes: %s\n' "$(head -n 1 "$work/compare.txt" | head -c 300)"
if [ "$test_rc" -ne 0 ] || [ "$hash_rc" -ne 0 ] || [ "$cmp_rc" -ne 0 ]; then
    echo "aarch64.sh: FAILED (pytest exit $test_rc, hash runs $hash_rc, comparison $cmp_rc)"
    exit 1
fi
echo "aarch64.sh: ok"
