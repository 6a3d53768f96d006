#!/usr/bin/env bash
# Free-threaded CPython 3.14 (PEP 703, --disable-gil), built from Debian's source package
# python3.14 and cached, then:
#   1. the import check: with PYTHON_GIL unset, importing pyrmsprop must leave the GIL
#      off (the extension declares Py_MOD_GIL_NOT_USED; a module that did not would turn
#      the GIL back on with a RuntimeWarning, and the check fails on that warning too);
#   2. the whole test suite with PYTHON_GIL=0, tests/test_freethreading.py included
#      (many threads updating at once while others change the thread settings and the
#      SIMD target; results bit-identical to serial runs).
#
# The interpreter: the newest python3.14 orig tarball that Debian's forky or sid source
# index lists (deb.debian.org, the machine's apt mirror), checked against the index's
# SHA-256, configured with --disable-gil and built with make -j$(nproc).  It is cached in
# $PYRMSPROP_CI_CACHE/py314t (built in a temporary directory, renamed when complete);
# a cached interpreter is used without looking at the index again.  numpy, pytest and
# hypothesis come from PyPI as cp314t wheels (--only-binary: no source builds); the
# test extra's scikit-learn/matplotlib/mypy are left out (their tests skip, saying so).
#
# Time: see the budget in .ci/run (about 1.5x the cold time measured on this machine).
. "$(dirname "$0")/_common.sh"
export_head freethreaded
start=$SECONDS

ft="$cache/py314t"
py=$(ls -d "$ft"/cpython-*/bin/python3.14t 2>/dev/null | sort -V | tail -n 1 || true)
if [ -z "$py" ]; then
    mirror=http://deb.debian.org/debian
    tarball="" sha=""
    for suite in forky sid; do
        entry=$(curl -fsSL "$mirror/dists/$suite/main/source/Sources.xz" | xz -d |
            awk '/^Package: /{p = ($2 == "python3.14")} p' ) || continue
        # the Checksums-Sha256 lines of every python3.14 entry: " <sha> <size> <file>"
        line=$(printf '%s\n' "$entry" | grep -E '^ [0-9a-f]{64} [0-9]+ python3\.14_[0-9.]+\.orig\.tar\.xz$' |
            sort -k3,3V | tail -n 1) || continue
        sha=$(echo "$line" | awk '{print $1}')
        tarball=$(echo "$line" | awk '{print $3}')
        dl="$work/$tarball"
        if curl -fsSL -o "$dl" "$mirror/pool/main/p/python3.14/$tarball"; then break; fi
        tarball=""
    done
    if [ -z "$tarball" ]; then
        echo "freethreaded.sh: no python3.14 orig tarball found in Debian's forky/sid source index" >&2
        exit 1
    fi
    echo "$sha  $dl" | sha256sum -c --quiet
    version=${tarball#python3.14_}; version=${version%.orig.tar.xz}
    echo "freethreaded.sh: building CPython $version with --disable-gil (from $tarball)"
    mkdir -p "$ft"
    rm -rf "$ft/cpython-$version.tmp"
    tar -xJf "$dl" -C "$work"
    srcdir=$(ls -d "$work"/Python-3.14* "$work"/python3.14-* 2>/dev/null | head -n 1)
    (cd "$srcdir" &&
        ./configure -q --disable-gil --with-ensurepip=install --disable-test-modules \
            --prefix="$ft/cpython-$version" > "$work/configure.log" 2>&1 &&
        make -s -j"$(nproc)" > "$work/make.log" 2>&1 &&
        make -s install > "$work/install.log" 2>&1) || {
        tail -n 40 "$work"/*.log
        echo "freethreaded.sh: the build failed" >&2
        exit 1
    }
    py="$ft/cpython-$version/bin/python3.14t"
    echo "freethreaded.sh: built in $((SECONDS - start)) s"
fi
"$py" -c 'import sys, sysconfig; assert sysconfig.get_config_var("Py_GIL_DISABLED") == 1; print("freethreaded.sh:", sys.version)'

venv="$work/venv"
"$py" -m venv "$venv"
vpy="$venv/bin/python"
"$vpy" -m pip install -q --upgrade pip 2>&1 | quiet
"$vpy" -m pip install -q --only-binary numpy "numpy>=2.3" "pytest>=8" "hypothesis>=6" 2>&1 | quiet
"$vpy" -m pip install -q "$work/src" 2>&1 | quiet
echo "freethreaded.sh: interpreter and venv ready in $((SECONDS - start)) s"

cd "$work/src"
env -u PYTHON_GIL "$vpy" -W error::RuntimeWarning -c '
import sys, pyrmsprop, numpy
assert not sys._is_gil_enabled(), "importing pyrmsprop turned the GIL on"
print("freethreaded.sh: GIL still disabled after import (pyrmsprop", pyrmsprop.__version__,
      "numpy", numpy.__version__ + ")")'

step=$SECONDS
log="$work/pytest.log"
status=0
PYTHON_GIL=0 "$vpy" -m pytest -q -p no:cacheprovider tests > "$log" 2>&1 || status=1
[ "$status" -eq 0 ] || tail -n 80 "$log"
grep -E '^(SKIPPED|FAILED)' "$log" | grep -v "could not import 'torch'" | head -n 20 || true
echo "freethreaded.sh: suite with PYTHON_GIL=0 in $((SECONDS - step)) s: $(tail -n 1 "$log")"
echo "freethreaded.sh: $((SECONDS - start)) s in all"
exit "$status"
