"""Failure drills: `scripts/test-failover.sh` (`python -m scripts.drills`), `make drills`.

stack.py      the deployed stack through the AWS APIs: one snapshot, and "as deployed or not"
load.py       the steady client through the public entry point (reads, writes with unique keys)
watch.py      the timeline: every change of a watched fact, and the alerts sent
faults.py     the sandbox's fault commands, or AWS's own means (ECS, RDS, FIS)
scenarios.py  one drill per row of the design's failure table, with its budget
runner.py     one drill from start to end; undoes its fault whatever happens
measure.py    detection, recovery, impact, lost writes; the verdict against the budget
report.py     reports/drills/<UTC time>/report.md and report.json
chart.py      one timeline PNG per drill
"""
