#!/usr/bin/env bash
# The fuzz harness (tests/test_fuzz.py) with a larger, random budget:
# PYRMSPROP_FUZZ_EXAMPLES examples per test (default 1000; the normal suite runs 50,
# derandomized).  Interpreter: ${PYTHON:-python3}; if it cannot import pyrmsprop (or
# pytest/hypothesis), a venv is made in ${FUZZ_VENV:-.venv-fuzz} and the checkout is
# installed into it (a plain build).  A sanitizer build runs it as
#   PYTHON=/path/to/asan-venv/bin/python tools/ci/fuzz.sh
# (with that interpreter's LD_PRELOAD/ASAN_OPTIONS set by the caller).
#
# Time, measured from a fresh clone on the 2-core machine (plain build, no venv yet):
# 126 s in all: 68 s to create the venv and install, 58 s for the tests (1000 examples
# for each of the 5 property tests, plus tests/test_binding_safety.py).  Budget: 300 s.
set -euo pipefail
cd "$(dirname "$0")/../.."
PY=${PYTHON:-python3}
EXAMPLES=${PYRMSPROP_FUZZ_EXAMPLES:-1000}

if ! (cd /tmp && "$PY" -c "import pyrmsprop._core, pytest, hypothesis") 2>/dev/null; then
    VENV=${FUZZ_VENV:-.venv-fuzz}
    echo "fuzz.sh: $PY lacks pyrmsprop/pytest/hypothesis; installing into $VENV" >&2
    "$PY" -m venv "$VENV"
    "$VENV/bin/python" -m pip install -q . pytest hypothesis
    PY="$VENV/bin/python"
fi

start=$(date +%s)
PYRMSPROP_FUZZ_EXAMPLES=$EXAMPLES "$PY" -m pytest -q -p no:cacheprovider tests/test_fuzz.py \
    tests/test_binding_safety.py "$@"
echo "fuzz.sh: $EXAMPLES examples per property test in $(( $(date +%s) - start )) s"
