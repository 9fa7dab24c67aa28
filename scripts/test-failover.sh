#!/usr/bin/env bash
# Drill the design's failure scenarios and measure them: scripts/test-failover.sh --help
# (the sandbox by default; --domain D drills a real deployment). See docs/failover-testing.md.
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/bootstrap.sh >/dev/null
exec .venv/bin/python -m scripts.drills "$@"
