#!/usr/bin/env bash
# `make pythons`: the core test suite on the lowest and the highest Python billkit supports (README, "Python").
#
#   scripts/pythons.sh 3.10 3.13
#
# For each version: find its interpreter (pythonX.Y on PATH, else pyenv's build of it), make build/pyX.Y (a venv,
# remade when pyproject.toml changes), install '.[dev]' there and run pytest on everything but tests/reliability
# (the soak-sized suites, which `make pytest` runs on the project's own Python). Prints which interpreters ran and
# which were not found; fails when a suite fails, not when an interpreter is missing. BILLKIT_PYTHONS_REQUIRE=1
# makes a missing interpreter fail too.
set -uo pipefail
cd "$(dirname "$0")/.."

find_python() {  # the interpreter of version $1 (X.Y), or nothing
    local version=$1 candidate
    local candidates=("python$version")
    if command -v pyenv > /dev/null 2>&1; then
        local root
        root=$(pyenv root 2> /dev/null)
        # pyenv's shims answer only for the versions it has activated: ask for its build directly
        while IFS= read -r candidate; do
            candidates+=("$candidate")
        done < <(ls -d "$root"/versions/"$version".*/bin/python"$version" 2> /dev/null | sort -V -r)
    fi
    for candidate in "${candidates[@]}"; do
        if "$candidate" -c "import sys; sys.exit(sys.version_info[:2] != tuple(map(int, '$version'.split('.'))))" \
            > /dev/null 2>&1; then
            command -v "$candidate"
            return 0
        fi
    done
    return 1
}

ran=() missing=() failed=()
for version in "$@"; do
    python=$(find_python "$version") || { missing+=("$version"); echo "== Python $version: not found"; continue; }
    venv=build/py$version
    stamp=$venv/.installed
    echo "== Python $version: $python ($("$python" -c 'import platform; print(platform.python_version())'))"
    if [[ ! -f $stamp || pyproject.toml -nt $stamp ]]; then
        rm -rf "$venv"
        "$python" -m venv "$venv" \
            && "$venv/bin/python" -m pip install --quiet --upgrade pip \
            && "$venv/bin/python" -m pip install --quiet -e '.[dev]' \
            && touch "$stamp" \
            || { failed+=("$version (install)"); continue; }
    fi
    start=$SECONDS
    if "$venv/bin/python" -m pytest -p no:cacheprovider -q tests --ignore=tests/reliability; then
        ran+=("$version ($((SECONDS - start)) s)")
    else
        failed+=("$version ($((SECONDS - start)) s)")
    fi
done

echo "== pythons: passed on: ${ran[*]:-none}; failed on: ${failed[*]:-none}; not found: ${missing[*]:-none}"
if ((${#failed[@]})); then
    exit 1
fi
if ((${#missing[@]})) && [[ ${BILLKIT_PYTHONS_REQUIRE:-} == 1 ]]; then
    echo "BILLKIT_PYTHONS_REQUIRE=1: every one of $* must be found" >&2
    exit 1
fi
