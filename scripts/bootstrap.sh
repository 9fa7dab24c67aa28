#!/usr/bin/env bash
# Set-up for every make target: a virtualenv in .venv with the pinned dependencies, and the
# system packages the project needs. Quick and silent when everything is already in place; otherwise
# a line per step (and per package pip fetches), so a first run of a few minutes is not a silent one.
set -euo pipefail

cd "$(dirname "$0")/.."
VENV=.venv
LOCK=requirements/lock.txt
STAMP=$VENV/.lock.sha256
PYTHON=${PYTHON:-python3}

need_python() {
  "$PYTHON" - <<'PY' || { echo "bootstrap: $PYTHON is not Python 3.11 or 3.12: install python3.11 (the ansible 12 line needs 3.11+; ansible-core 2.19 supports up to 3.13)" >&2; exit 1; }
import sys
sys.exit(0 if (3, 11) <= sys.version_info[:2] < (3, 14) else 1)
PY
}

if [ ! -x "$VENV/bin/python" ]; then
  need_python
  echo "bootstrap: creating the virtualenv $VENV with $("$PYTHON" --version)"
  "$PYTHON" -m venv "$VENV"
fi

want=$(sha256sum "$LOCK" | cut -d' ' -f1)
if [ "$(cat "$STAMP" 2>/dev/null)" != "$want" ]; then
  echo "bootstrap: installing the $(grep -c '==' "$LOCK") pinned Python packages of $LOCK (2-3 minutes on a fresh machine)"
  # --no-compile: pip would byte-compile every file it installs, most of them the `ansible` package's
  # collections that no play here imports (74 s to install the lock, 49 s without it, measured on two
  # cores); Python compiles what is imported on first use and keeps it in __pycache__.
  "$VENV/bin/pip" install --no-compile --progress-bar off --disable-pip-version-check -r "$LOCK" 2>&1 \
    | awk '/^(Collecting|Installing collected)/ { print "bootstrap:   " substr($0, 1, 100); fflush() }
           /^ERROR/ { print; fflush() }' || true
  # pip's exit status is lost in the pipe above; check that the install really happened.
  "$VENV/bin/python" -c "import ansible, moto, boto3, fastapi, psycopg" \
    || { echo "bootstrap: installing $LOCK failed; see the pip output above" >&2; exit 1; }
  echo "$want" > "$STAMP"
  echo "bootstrap: Python packages ready"
fi

# A start-up hook for every Python of the virtualenv: botocore shares one data loader per process, so the
# modules Mitogen runs in one interpreter stop parsing botocore's JSON once per task (the why and the figures:
# scripts/venv/botocore_shared_loader.py). The module is copied into the virtualenv, not named by its path in
# this checkout: a copy of the checkout that shares the virtualenv (the tests make some) must not leave every
# Python pointing at a folder that is gone. Delete hawa-venv-hooks.pth to turn it off.
SITE="$("$VENV/bin/python" -c 'import sysconfig; print(sysconfig.get_paths()["purelib"])')"
cmp -s scripts/venv/botocore_shared_loader.py "$SITE/hawa_botocore_shared_loader.py" \
  || cp scripts/venv/botocore_shared_loader.py "$SITE/hawa_botocore_shared_loader.py"
[ "$(cat "$SITE/hawa-venv-hooks.pth" 2>/dev/null)" = "import hawa_botocore_shared_loader" ] \
  || echo "import hawa_botocore_shared_loader" > "$SITE/hawa-venv-hooks.pth"

# PostgreSQL server binaries: the sandbox's Aurora and the web app's tests run real PostgreSQL.
pg_bin() {
  for dir in /usr/lib/postgresql/*/bin; do
    [ -x "$dir/pg_ctl" ] && { echo "$dir"; return 0; }
  done
  command -v pg_ctl >/dev/null 2>&1 && { dirname "$(command -v pg_ctl)"; return 0; }
  return 1
}
if ! pg_bin >/dev/null; then
  if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then
    echo "bootstrap: installing the Debian package 'postgresql' (server binaries)"
    apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends postgresql >/dev/null
    # The package starts a cluster of its own on 5432; the project never uses it.
    (service postgresql stop || true) >/dev/null 2>&1
  else
    echo "bootstrap: PostgreSQL server binaries (pg_ctl, initdb) not found: install the 'postgresql' package (Debian/Ubuntu: sudo apt-get install postgresql; Fedora: sudo dnf install postgresql-server)" >&2
    exit 1
  fi
fi

# Java 17 or later: ansible-rulebook (the automatic failover controller, docs/automatic-failover.md) runs its
# rules engine on the JVM.
java_major() {
  command -v java >/dev/null 2>&1 || return 1
  java -version 2>&1 | awk -F '"' '/version/ { split($2, v, "."); print (v[1] == 1 ? v[2] : v[1]); exit }'
}
if [ "$(java_major || echo 0)" -lt 17 ]; then
  if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then
    echo "bootstrap: installing the Debian package 'openjdk-17-jre-headless' (Java 17 for ansible-rulebook)"
    apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends openjdk-17-jre-headless >/dev/null
  else
    echo "bootstrap: Java 17 or later not found (ansible-rulebook needs it): install 'openjdk-17-jre-headless' (Debian/Ubuntu: sudo apt-get install openjdk-17-jre-headless; Fedora: sudo dnf install java-17-openjdk-headless)" >&2
    exit 1
  fi
fi
