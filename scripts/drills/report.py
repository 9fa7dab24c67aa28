"""reports/drills/<UTC time>/: report.json (every figure, event and request), report.md (the summary
table beside the design's, then per drill its budget lines and timeline), and one chart per drill."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from scripts.drills.chart import draw


def _s(value: Any) -> str:
    if value is None:
        return "—"
    if isinstance(value, bool):
        return "yes" if value else "no"
    if isinstance(value, float):
        return f"{value:.2f}".rstrip("0").rstrip(".") if value else "0"
    return str(value)


def _pct(rate: float | None) -> str:
    return "—" if rate is None else f"{rate * 100:.2f} %"


def write(folder: Path, run: dict[str, Any]) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    for result in run["drills"]:
        result["chart"] = f"{result['scenario']}.png"
        draw(result, folder / result["chart"])
    (folder / "report.json").write_text(json.dumps(run, indent=1))
    (folder / "report.md").write_text(markdown(run))
    return folder / "report.md"


def markdown(run: dict[str, Any]) -> str:
    out = [
        f"# Drills of {run['deployment']} ({run['where']}), {run['started']}",
        "",
        f"Command: `{run['command']}`. Load through {run['entry_point']}: {run['load']}. "
        "Times are seconds after the fault.",
        "",
        "| scenario | design: detection / recovery / impact | detection | recovery | automatic | "
        "reads failed | writes failed | longest read / write gap | lost writes (RPO) | budget |",
        "|---|---|---|---|---|---|---|---|---|---|",
    ]
    for r in run["drills"]:
        design = r["design"]
        design_text = f"{design['detection']} / {design['recovery']} / {design['impact']}" if design else "—"
        rec = r["recovery"]
        recovery = rec["full_capacity_s"] if rec["full_capacity_s"] is not None else rec["recovered_s"]
        reads, writes = r["impact"]["read"], r["impact"]["write"]
        out.append(
            f"| {r['scenario']} | {design_text} | {_s(r['detection']['first'])} | {_s(recovery)} | "
            f"{_s(rec['automatic'])} | {reads['failed']}/{reads['total']} ({_pct(reads['error_rate'])}) | "
            f"{writes['failed']}/{writes['total']} ({_pct(writes['error_rate'])}) | "
            f"{_s(reads['longest_gap_s'])} / {_s(writes['longest_gap_s'])} | "
            f"{r['rpo']['lost_writes']} ({_s(r['rpo']['rpo_s'])} s) | {'met' if r['verdict']['met'] else 'NOT met'} |"
        )
    if run.get("site_check"):
        check = run["site_check"]
        changed = sum(check["changed"].values())
        out += ["", f"Afterwards `{check['command']}`: exit {check['exit']}, changed={changed} ({check['changed']})."]
        out += [f"- would change: {task}" for task in check["changed_tasks"]]
    for r in run["drills"]:
        out += _one(r)
    return "\n".join(out) + "\n"


def _one(r: dict[str, Any]) -> list[str]:
    det, rec = r["detection"], r["recovery"]
    out = [
        "",
        f"## {r['scenario']}: {r['title']}",
        "",
        f"![timeline]({r['chart']})",
        "",
        "Detection (first transition seen through the APIs): "
        + ", ".join(f"{k.replace('_', ' ')} {_s(v)} s" for k, v in det.items() if k not in ("first",) and v is not None)
        + (" (no notification seen)" if det["notification"] is None else ""),
        "",
        f"Recovery: first read back {_s(rec['first_read_s'])} s, first write back {_s(rec['first_write_s'])} s "
        "(— : never interrupted), "
        f"recovered {_s(rec['recovered_s'])} s, full capacity {_s(rec['full_capacity_s'])} s; "
        + ("automatic." if rec["automatic"] else "needed an operator step.")
        + "".join(
            f" Operator ({s['phase']}): {s['title']} from {s['start_s']:.1f} s to {s['end_s']:.1f} s (exit {s['exit']})."
            for s in rec["operator_steps"]
        ),
        "",
        "| budget | figure | bound | met |",
        "|---|---|---|---|",
    ]
    out += [f"| {x['what']} | {_s(x['figure'])} | {_s(x['bound'])} | {_s(x['met'])} |" for x in r["verdict"]["lines"]]
    if r.get("in_flight_at_fault"):
        flight = r["in_flight_at_fault"]
        out += ["", "Sent while the fault took hold, so under way on what crashed (shown, not counted: a crash loses "
                f"them on AWS too): reads {flight['read']['failed']} failed of {flight['read']['total']}, writes "
                f"{flight['write']['failed']} failed of {flight['write']['total']}."]  # fmt: skip
    if r.get("client_stalls"):
        lagged = sum(b - a for a, b in r["client_stalls"])
        out += ["", f"The load client lagged its schedule {len(r['client_stalls'])} time(s), {lagged:.1f} s in all "
                "(a starved machine): gaps there are the client's."]  # fmt: skip
    if r["problems_after"]:
        out += ["", "Not as deployed afterwards: " + "; ".join(r["problems_after"])]
    if r["rpo"]["lost_keys"]:
        out += ["", "Lost writes (keys): " + ", ".join(r["rpo"]["lost_keys"])]
    fault = r["marks"]["fault"]
    out += ["", "Timeline:", "", "```"]
    out += [
        f"{e['t'] - fault:+8.1f} s  {e['source']:<14} {e['what']}" + (f": {e['old']} -> {e['new']}" if e["new"] else "")
        for e in r["events"]
    ]
    out += ["```"]
    return out
