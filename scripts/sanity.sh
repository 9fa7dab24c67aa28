#!/usr/bin/env bash
# `ansible-test sanity` on the collection as an execution environment installs it: build the artifact
# (galaxy.yml's build_ignore applies), install it under a temporary ansible_collections/hawa/platform
# (ansible-test runs only from such a path) and run the tests that need no container, with the
# controller's Python 3.11.
set -euo pipefail
cd "$(dirname "$0")/.."
BIN="$PWD/.venv/bin"
work="$(mktemp -d)"
trap 'rm -rf "$work"' EXIT

"$BIN/ansible-galaxy" collection build --output-path "$work" >/dev/null
"$BIN/ansible-galaxy" collection install --force --no-deps -p "$work" "$work"/hawa-platform-*.tar.gz >/dev/null 2>&1
# Its dependencies (galaxy.yml) beside it, as the `ansible` package in .venv ships them: ansible-test
# finds other collections only in the same ansible_collections/ directory.
shipped="$("$BIN/python" -c 'import ansible_collections.amazon as a, pathlib; print(pathlib.Path(list(a.__path__)[0]).parent)')"
for namespace in amazon community; do
    ln -s "$shipped/$namespace" "$work/ansible_collections/$namespace"
done

# ansible-test gives each sanity test a virtualenv of its own and bootstraps pip into it with a
# get-pip.py it downloads from a host outside the package registries. Its cache stands in for that
# download: the Python's bundled pip (ensurepip), then pip installs the version ansible-test asks
# for from the package index. The tests' own requirements come from the package index as usual.
cache="$HOME/.ansible/test/cache"
mkdir -p "$cache"
version="$(grep -o "pip='[0-9.]*'" "$BIN"/../lib/python3.11/site-packages/ansible_test/_internal/python_requirements.py \
    | grep -o "[0-9][0-9.]*")"
stand_in="$cache/get_pip_${version//./_}.py"
cat >"$stand_in" <<'PY'
"""Stand-in for get-pip.py (written by scripts/sanity.sh): get-pip's own options say not to add
setuptools or wheel; every other argument is a pip install argument."""
import subprocess
import sys

# ensurepip in a process of its own: it points PIP_CONFIG_FILE at /dev/null in its own environment,
# which would hide the machine's pip configuration (index, certificates) from the install below.
subprocess.check_call([sys.executable, "-m", "ensurepip"])
arguments = [arg for arg in sys.argv[1:] if arg not in ("--no-setuptools", "--no-wheel")]
sys.exit(subprocess.call([sys.executable, "-m", "pip", "install", *arguments]))
PY

cd "$work/ansible_collections/hawa/platform"
# Skipped, each for a reason: pylint (ruff checks the same code in make lint; pylint's pins are large),
# pslint and shellcheck (no PowerShell or shell in plugins/), changelog (no changelogs/ fragments kept).
PATH="$BIN:$PATH" "$BIN/ansible-test" sanity --local --python 3.11 --color no \
    --skip-test pylint --skip-test pslint --skip-test shellcheck --skip-test changelog "$@"
