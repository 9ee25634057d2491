"""A challenge's results: one row per student with their best run, best first, as JSON and as
CSV.

A run counts while its job keeps to the challenge's locks (a job whose locked settings were
changed after it was made, through PATCH or the stream, counts no more). A student's best run
is the one that met the goal at the earliest epoch, else the one with the best value; rows
are ordered the same way (met first, by epoch, then by value; no value last).
"""

from __future__ import annotations

import csv
import io
import json
import math

from server.challenges import checks, rules

CSV_COLUMNS = ("student_id", "student", "best_job", "met", "met_epoch", "value", "runs",
               "setup")
FORMULA_START = ("=", "+", "-", "@", "\t", "\r")  # text a spreadsheet would run


def _rank(run: dict, op: str) -> tuple:
    value = run["best_value"]
    by_value = math.inf if value is None else (value if op == "<=" else -value)
    met = run["met_epoch"]
    return (met is None, met if met is not None else 0, by_value)


def rows(challenge: dict, runs: list[dict], jobs, datasets, removed) -> list[dict]:
    """The results rows (the JSON shape of GET /api/challenges/{id}/results).

    `jobs(job_id)` gives a stored job row or None (deleted); `removed(student_id)` says
    whether the teacher removed that student (their rows go)."""
    op = challenge["goal"]["op"]
    by_student: dict[str, list[dict]] = {}
    for run in runs:
        if removed(run["student_id"]):
            continue
        row = jobs(run["job_id"])
        run = {**run, "exists": row is not None}
        if row is not None:
            spec = checks.current_spec(row, datasets)
            if spec is None or rules.locked_change(challenge["spec"], spec,
                                                   challenge["editable"]) is not None:
                run.update(met_epoch=None, met_value=None, best_value=None, best_epoch=None)
            else:
                run["setup"] = rules.setup(challenge["spec"], spec)
        by_student.setdefault(run["student_id"], []).append(run)
    table = []
    for student_id, mine in by_student.items():
        best = min(mine, key=lambda r: (_rank(r, op), r["created_at"]))
        table.append(({
            "student_id": student_id,
            "student": next((r["student"] for r in mine if r["student"]), None),
            "best_job": best["job_id"] if best["exists"] else None,
            "met": best["met_epoch"] is not None,
            "met_epoch": best["met_epoch"],
            "value": best["best_value"],
            "runs": len(mine),
            "setup": best["setup"],
        }, _rank(best, op)))
    table.sort(key=lambda item: (item[1], (item[0]["student"] or "").casefold(),
                                 item[0]["student_id"]))
    return [row for row, _ in table]


def _cell(value) -> str:
    if value is None:
        return ""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, dict):
        return json.dumps(value, sort_keys=True, separators=(",", ":"))
    return str(value)


def to_csv(table: list[dict]) -> str:
    """The rows as CSV: a header, one line per student (setup as compact JSON); a name that
    a spreadsheet would read as a formula starts with an apostrophe."""
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\r\n")
    writer.writerow(CSV_COLUMNS)
    for row in table:
        cells = [_cell(row[c]) for c in CSV_COLUMNS]
        name = cells[1]
        if name.startswith(FORMULA_START):
            cells[1] = "'" + name
        writer.writerow(cells)
    return out.getvalue()
