"""What the teacher sees and does to the class: every job with its student's name, the
students who joined, removing a student (their token revoked, their jobs deleted).

Routes (teacher only: 401 without a token, 403 with another's): `GET /api/class/jobs`, `GET
/api/class/students`, `DELETE /api/class/students/{id}`.
"""

from __future__ import annotations

from fastapi import APIRouter, HTTPException, Request
from fastapi.concurrency import run_in_threadpool

from server.api.classroom import tokens
from server.api.deps import SettingsDep, StoreDep, TokenDep, is_teacher
from server.api.errors import engine_answer
from server.api.jobs import _iso, job_view
from server.config import Settings
from server.engine.engine import JobNotFound

router = APIRouter(tags=["classroom"])

TEACHER_ONLY = "Only the teacher can see this; sign in on the teacher page."
STUDENT_NOT_FOUND = "Student not found"


@router.get("/class/jobs")
def class_jobs(request: Request, settings: SettingsDep, store: StoreDep,
               token: TokenDep) -> dict:
    """Every job with its student's name and id (`null` for the teacher's or an API
    client's)."""
    if not is_teacher(settings, token):
        raise HTTPException(401 if token is None else 403, TEACHER_ONLY)
    progress = request.app.state.engine.progress_all()
    jobs = []
    for row in store.list_jobs():
        view = job_view(row, progress.get(row["id"]))
        view["student"] = tokens.student_name(settings, row["token"], revoked_too=True)
        view["student_id"] = tokens.student_id_of(settings, row["token"], revoked_too=True)
        jobs.append(view)
    return {"jobs": jobs}


def _teacher_only(settings: Settings, token: str | None) -> None:
    if not is_teacher(settings, token):
        raise HTTPException(401 if token is None else 403, TEACHER_ONLY)


def _students(settings: Settings, store) -> dict[str, dict]:
    """Every student not removed, by id: who joined (the roster) and whoever owns a job under
    a student token (tokens made before the roster kept one), with their job counts."""
    found: dict[str, dict] = {}
    roster = tokens.roster(settings)
    for entry in roster.students():
        found[entry["id"]] = {**entry, "jobs": 0, "active_jobs": 0}
    for row in store.list_jobs():
        student_id = tokens.student_id_of(settings, row["token"], revoked_too=True)
        if student_id is None or roster.is_removed(student_id):
            continue
        entry = found.setdefault(student_id, {
            "id": student_id, "name": tokens.student_name(settings, row["token"], True),
            "token": row["token"], "address": row.get("address"),
            "joined_at": row["created_at"], "seen_at": row["created_at"],
            "state": "left" if roster.is_revoked(student_id) else "joined",
            "jobs": 0, "active_jobs": 0})
        entry["jobs"] += 1
        entry["active_jobs"] += row["status"] in ("queued", "running")
    return found


@router.get("/class/students")
def class_students(settings: SettingsDep, store: StoreDep, token: TokenDep) -> dict:
    """The students who joined (teacher only): id, name, the address they joined from, when,
    and how many jobs they keep (and how many run)."""
    _teacher_only(settings, token)
    students = sorted(_students(settings, store).values(), key=lambda e: e["joined_at"])
    return {"students": [
        {"id": e["id"], "name": e["name"], "address": e["address"], "state": e["state"],
         "joined_at": _iso(e["joined_at"]), "jobs": e["jobs"], "active_jobs": e["active_jobs"]}
        for e in students]}


@router.delete("/class/students/{student_id}")
async def remove_student(student_id: str, request: Request, settings: SettingsDep,
                         store: StoreDep, token: TokenDep) -> dict:
    """Remove a student (teacher only): their token stops working at once (the page sends them
    back to the join page) and every job they made is deleted with its files."""
    _teacher_only(settings, token)
    entry, rows = await run_in_threadpool(_remove_from_roster, settings, store, student_id)
    engine = request.app.state.engine
    deleted = 0
    for row in rows:
        try:
            await engine_answer(engine.delete(row["id"]))  # 503 when the engine cannot answer
            deleted += 1
        except JobNotFound:  # deleted meanwhile
            pass
    return {"id": student_id, "name": entry["name"], "deleted_jobs": deleted}


def _remove_from_roster(settings: Settings, store, student_id: str) -> tuple[dict, list[dict]]:
    """Revoke a student (404 when there is none): their roster entry and their jobs' rows."""
    entry = _students(settings, store).get(student_id)
    if entry is None:
        raise HTTPException(404, STUDENT_NOT_FOUND)
    tokens.roster(settings).remove(student_id, entry["name"] or "", entry["token"])
    return entry, store.list_jobs(token=entry["token"])


@router.get("/class/cluster")
def class_cluster(request: Request, settings: SettingsDep, token: TokenDep) -> dict:
    """Where the class trains (issue 15): `enabled` false on one server; on a Ray cluster each
    engine actor (node address, device, jobs, running jobs, steps/s) and the jobs waiting for
    one (docs/CLUSTER.md). Teacher only, except on an open server (the teacher page then runs
    without a sign-in)."""
    if not settings.is_open:
        _teacher_only(settings, token)
    cluster = getattr(request.app.state.engine, "cluster", None)
    if cluster is None:
        return {"enabled": False, "actors": [], "waiting": 0}
    return {"enabled": True, **cluster()}
