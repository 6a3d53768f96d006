#!/usr/bin/env bash
# Free-threaded CPython (PEP 703, --disable-gil), built from Debian's source package
# python3.14 (or python3.13, see below) and cached, then:
#   1. the import check: with PYTHON_GIL unset, importing pyrmsprop must leave the GIL
#      off (the extension declares Py_MOD_GIL_NOT_USED; a module that did not would turn
#      the GIL back on with a RuntimeWarning, and the check fails on that warning too);
#   2. the whole test suite with PYTHON_GIL=0, tests/test_freethreading.py included
#      (many threads updating at once while others change the thread settings and the
#      SIMD target; results bit-identical to serial runs).
#
# The interpreter: the newest python3.14 orig tarball that Debian's sid, forky or trixie
# source index lists and deb.debian.org serves, else the newest python3.13 one (this
# machine's mirror lists python3.14 3.14.8-3.14.10 but answers 404 for their tarballs,
# while it serves python3.13 3.13.15), checked against the index's SHA-256, configured
# with --disable-gil and built with make -j$(nproc).  Cached in
# $PYRMSPROP_CI_CACHE/freethreaded (a .complete stamp marks a finished install; a cached
# interpreter is used without looking at the index again).  numpy, pytest and
# hypothesis come from PyPI as free-threaded wheels (--only-binary :all:, no source
# build); the test extra's scikit-learn/matplotlib/mypy and torch are left out (their
# tests skip, saying so).
#
# Time: see the budget in .ci/run (about 1.5x the cold time measured on this machine).
. "$(dirname "$0")/_common.sh"
export_head freethreaded
start=$SECONDS

ft="$cache/freethreaded"
py=$(ls -d "$ft"/cpython-*/.complete 2>/dev/null | sort -V | tail -n 1 || true)
[ -z "$py" ] || py=$(ls -d "${py%/.complete}"/bin/python3.1?t | head -n 1)
if [ -z "$py" ]; then
    mirror=http://deb.debian.org/debian
    tarball="" sha="" dl=""
    # The newest orig tarball the mirror serves: python3.14 first, then python3.13 (the
    # mirror here lists python3.14's source but serves 404 for it; see the README).
    for pkg in python3.14 python3.13; do
        for suite in sid forky trixie; do
            curl -fsSL "$mirror/dists/$suite/main/source/Sources.xz" | xz -d |
                awk -v pkg="$pkg" '/^Package: /{p = ($2 == pkg)} p' |
                grep -E "^ [0-9a-f]{64} [0-9]+ ${pkg}_[0-9.]+\.orig\.tar\.xz\$" || true
        done | sort -u -k3,3Vr > "$work/candidates"
        while read -r sum _ file; do
            if curl -fsSL -o "$work/$file" "$mirror/pool/main/p/$pkg/$file" 2>/dev/null; then
                tarball=$file sha=$sum dl="$work/$file"
                break
            fi
            echo "freethreaded.sh: $file is listed but not served by $mirror"
        done < "$work/candidates"
        [ -z "$tarball" ] || break
    done
    if [ -z "$tarball" ]; then
        echo "freethreaded.sh: no python3.14/python3.13 orig tarball served by $mirror" >&2
        exit 1
    fi
    echo "$sha  $dl" | sha256sum -c --quiet
    version=${tarball#*_}; version=${version%.orig.tar.xz}
    echo "freethreaded.sh: building CPython $version with --disable-gil (from $tarball)"
    rm -rf "$ft" && mkdir -p "$ft"
    tar -xJf "$dl" -C "$work"
    srcdir=$(find "$work" -mindepth 1 -maxdepth 1 -type d -name "Python-3.1*" | head -n 1)
    (cd "$srcdir" &&
        ./configure -q --disable-gil --with-ensurepip=install --disable-test-modules \
            --prefix="$ft/cpython-$version" > "$work/configure.log" 2>&1 &&
        make -s -j"$(nproc)" > "$work/make.log" 2>&1 &&
        make -s install > "$work/install.log" 2>&1) || {
        tail -n 40 "$work"/*.log
        echo "freethreaded.sh: the build failed" >&2
        exit 1
    }
    touch "$ft/cpython-$version/.complete"    # an interrupted build is never reused
    py=$(ls -d "$ft/cpython-$version"/bin/python3.1?t | head -n 1)
    echo "freethreaded.sh: built in $((SECONDS - start)) s"
fi
"$py" -c 'import sys, sysconfig; assert sysconfig.get_config_var("Py_GIL_DISABLED") == 1; print("freethreaded.sh:", sys.version)'

venv="$work/venv"
"$py" -m venv "$venv"
vpy="$venv/bin/python"
"$vpy" -m pip install -q --upgrade pip 2>&1 | quiet
"$vpy" -m pip install -q --only-binary :all: "numpy>=2.3" "pytest>=8" "hypothesis>=6" "ml_dtypes>=0.5" 2>&1 | quiet
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
