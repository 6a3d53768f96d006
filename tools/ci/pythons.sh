#!/usr/bin/env bash
# The whole test suite on every other CPython the wheels claim that is on this machine
# (/root/.pyenv/versions/3.10*, 3.12*, 3.13*; 3.11 is the README commands' part).  For
# each: a fresh venv, the committed HEAD exported with git archive (not the work tree),
# `pip install "<export>[test]"`, then pytest from the export's root.  No torch: a
# torch==2.13.0 build lies on this disk for 3.11 only, and asking pip for any other
# torch downloads a CUDA build; the torch tests skip (conftest says why).
#
#     bash tools/ci/pythons.sh             # every interpreter found
#     bash tools/ci/pythons.sh 3.12        # only those whose version starts with 3.12
#
# The suite runs in two pytest-xdist workers (the machine's two cores; about 0.6x the
# time of one, same tests).
#
# pip's cache: $PYRMSPROP_CI_CACHE/pip (default /var/cache/pyrmsprop-ci/pip).
# Time, measured from a fresh clone on the 2-vCPU AMD EPYC (Zen 3) machine: see the
# budget in .ci/run (about 1.5x the cold time, pip's cache empty).
. "$(dirname "$0")/_common.sh"

if [ "$#" -gt 0 ]; then want=("$@"); else want=(3.10 3.12 3.13); fi
export_head pythons

summary=()
failed=0
for v in "${want[@]}"; do
    found=0
    for py in /root/.pyenv/versions/"$v"*/bin/python3; do
        [ -x "$py" ] || continue
        found=1
        version=$("$py" -c 'import sys; print("%d.%d.%d" % sys.version_info[:3])')
        printf '\n== CPython %s (%s)\n' "$version" "$py"
        start=$SECONDS
        venv="$work/venv-$version"
        "$py" -m venv "$venv"
        "$venv/bin/python" -m pip install -q --upgrade pip 2>&1 | quiet
        "$venv/bin/python" -m pip install -q "$work/src[test]" "pytest-xdist>=3" 2>&1 | quiet
        log="$work/pytest-$version.log"
        if (cd "$work/src" && "$venv/bin/python" -m pytest -q -p no:cacheprovider -n 2 tests) > "$log" 2>&1; then
            verdict=ok
        else
            verdict=FAILED
            failed=1
            tail -n 60 "$log"
        fi
        line=$(grep -E '^[0-9]+ (passed|failed)|^=+ .*(passed|failed).* =+$' "$log" | tail -n 1)
        summary+=("$(printf 'CPython %-8s %-6s %s (%d s)' "$version" "$verdict" "$line" $((SECONDS - start)))")
    done
    if [ "$found" -eq 0 ]; then
        echo "pythons.sh: no interpreter /root/.pyenv/versions/$v* on this machine" >&2
        summary+=("CPython $v* not found: FAILED")
        failed=1
    fi
done
printf '\npythons.sh summary:\n'
printf '  %s\n' "${summary[@]}"
exit "$failed"
