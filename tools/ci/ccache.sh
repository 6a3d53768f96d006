# Sourced by .ci/run: ccache in front of gcc for every part, so that a part building
# the same sources with the same flags as an earlier one (the README's second install,
# the wheel, the memcheck build and the aarch64 lane's host build all repeat the
# README's first, CPython 3.13 and the free-threaded build repeat 3.12's kernel
# libraries) gets the objects instead of compiling them again.  The cache lives in
# $PYRMSPROP_CI_CACHE/ccache (default /var/cache/pyrmsprop-ci/ccache), so a warm run
# reuses a previous one's; builds whose flags differ (sanitizers, the cross-compile
# checks) miss and compile as before.  Objects are keyed by the preprocessed source
# and the flags, not by the build folder (CCACHE_NOHASHDIR: pip builds in a new
# temporary folder each time; the debug info then names the first one's folder).
# Without ccache (apt-get failed) everything still builds, only slower.
#
# Cost: apt-get update + install ~15 s cold; a miss adds the preprocessing (~1 s a
# file).  Measured gain: see .ci/run's header.
if ! command -v ccache >/dev/null; then
    DEBIAN_FRONTEND=noninteractive timeout 600 bash -c '
        apt-get -o DPkg::Lock::Timeout=300 update -qq &&
        apt-get -o DPkg::Lock::Timeout=300 install -y -qq --no-install-recommends ccache' \
        >/tmp/pyrmsprop-ccache-apt.log 2>&1 || echo "ccache: apt-get failed (building without it)"
fi
if [ -d /usr/lib/ccache ] && command -v ccache >/dev/null; then
    export PATH="/usr/lib/ccache:$PATH"
    export CCACHE_DIR="$PYRMSPROP_CI_CACHE/ccache" CCACHE_NOHASHDIR=1 CCACHE_MAXSIZE=4G
    mkdir -p "$CCACHE_DIR"
    ccache --zero-stats >/dev/null
    echo "ccache: $(command -v gcc) -> $CCACHE_DIR"
fi
