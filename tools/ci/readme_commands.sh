#!/usr/bin/env bash
# The README's two commands, word for word, as a new user runs them: a fresh clone
# of this checkout's HEAD (committed work only), a fresh virtual environment, the
# clone's root as the working directory, each line of the README's block given to
# bash exactly as written.  Fails if either command fails.
#
#     bash tools/ci/readme_commands.sh            # both lines
#     bash tools/ci/readme_commands.sh --print    # only show what would run
#
# Measured on a 2-vCPU AMD EPYC (Zen 5) VM, pip's cache warm, other jobs running:
# main job ~60 s (build 25 s + bench --quick), tests ~5 min (install ~90 s + pytest).
# Budget: 20 minutes for both (the caller's `timeout`).
set -euo pipefail

root=$(cd "$(dirname "$0")/../.." && pwd)
readme="$root/README.md"
marker='<!-- the two commands: tools/ci/readme_commands.sh runs these lines word for word -->'

# The fenced block right after the marker: its non-empty lines, in order.
mapfile -t commands < <(awk -v m="$marker" '
    $0 == m { found = 1; next }
    found == 1 && /^```/ { if (inside) exit; inside = 1; next }
    inside && NF { print }
' "$readme")
if [ "${#commands[@]}" -ne 2 ]; then
    echo "readme_commands: expected 2 commands after the marker in README.md, found ${#commands[@]}" >&2
    exit 1
fi
if [ "${1:-}" = "--print" ]; then
    printf '%s\n' "${commands[@]}"
    exit 0
fi

work=$(mktemp -d "${TMPDIR:-/tmp}/pyrmsprop-readme.XXXXXX")
trap 'rm -rf "$work"' EXIT
git clone -q "$root" "$work/clone"
python3 -m venv "$work/venv"
# shellcheck disable=SC1091
. "$work/venv/bin/activate"
python -m pip install -q --disable-pip-version-check --upgrade pip 2>&1 | { grep -v "^WARNING: Location '" || true; }
cd "$work/clone"
names=("main job" "tests")
summary=()
for i in 0 1; do
    printf '\n== README command %d (%s), from %s:\n$ %s\n' "$((i + 1))" "${names[$i]}" "$PWD" "${commands[$i]}"
    start=$SECONDS
    if ! bash -c "${commands[$i]}"; then
        echo "readme_commands: FAILED: ${commands[$i]}" >&2
        exit 1
    fi
    summary+=("${names[$i]}: ok in $((SECONDS - start)) s")
done
printf '\nreadme_commands: %s; %s\n' "${summary[0]}" "${summary[1]}"
