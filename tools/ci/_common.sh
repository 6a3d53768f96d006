# Sourced by the tools/ci scripts: strict mode, the paths, pip's cache, a clean
# environment, and the committed HEAD exported with git archive (never the work tree).
#
#   root   the checkout            cache  $PYRMSPROP_CI_CACHE (default /var/cache/pyrmsprop-ci)
#   work   a temporary directory, removed on exit; export_head puts HEAD in $work/src
set -euo pipefail
root=$(cd "$(dirname "${BASH_SOURCE[1]}")/../.." && pwd)
cache=${PYRMSPROP_CI_CACHE:-/var/cache/pyrmsprop-ci}
export PIP_CACHE_DIR="$cache/pip" PIP_DISABLE_PIP_VERSION_CHECK=1
mkdir -p "$PIP_CACHE_DIR"
unset PYRMSPROP_SIMD PYRMSPROP_NUM_THREADS PYTHONPATH

# pip's noise about the machine's unused local indexes
quiet() { { grep -v "^WARNING: Location '" || true; }; }

export_head() {   # export_head NAME
    work=$(mktemp -d "${TMPDIR:-/tmp}/pyrmsprop-$1.XXXXXX")
    trap 'rm -rf "$work"' EXIT
    mkdir "$work/src"
    git -C "$root" archive HEAD | tar -x -C "$work/src"
}
