"""The challenge routes, under /api (docs/JOBS_API.md, "Challenges").

Teacher only (401 without a token, 403 with a student's; anyone on an open server):
`POST /challenges` (201: the challenge with its `code` and `link`), `POST
/challenges/{id}/close` and `/reopen`, `DELETE /challenges/{id}`, `GET
/challenges/{id}/results` and `/results.csv`. Class members: `GET /challenges` (the teacher
all, a student the open ones), `GET /challenges/{id}` (by id or code), `GET
/challenges/{id}/mine` (the caller's own runs on it). A job is made on a challenge with
`POST /api/jobs?challenge=<id or code>` (jobs.py calls `admit` and `record`).
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Annotated, Literal

from fastapi import APIRouter, HTTPException, Request, Response
from fastapi.concurrency import run_in_threadpool
from pydantic import BaseModel, ConfigDict, Field

from server.api.classroom import tokens
from server.api.deps import DatasetsDep, SettingsDep, StoreDep, TokenDep, is_teacher
from server.challenges import checks, results, rules
from server.challenges.progress import board_of
from server.config import Settings
from server.data.ownership import Viewer
from server.spec.job import JobSpec

router = APIRouter(tags=["challenges"])

TEACHER_ONLY = "Only the teacher can do this; sign in on the teacher page."
JOIN_FIRST = "Join the class first (open the playground and enter the class code)."

Entry = Annotated[str, Field(min_length=1, max_length=200)]


class Goal(BaseModel):
    """What a run must reach: `metric` `op` `value`, with at most `max_params` parameters,
    within `max_epochs` epochs (null: no limit)."""

    model_config = ConfigDict(extra="forbid", strict=True, allow_inf_nan=False)
    metric: str = Field(min_length=1, max_length=60, description=(
        "A metric of the setup's task: test_loss, test_accuracy, test_f1, test_r2, ..."))
    op: Literal["<=", ">="]
    value: float
    max_params: int | None = Field(None, ge=1)
    max_epochs: int | None = Field(None, ge=1)


class ChallengeCreate(BaseModel):
    """Body of POST /api/challenges."""

    model_config = ConfigDict(extra="forbid", strict=True)
    title: str = Field(min_length=1, max_length=120)
    instructions: str = Field("", max_length=4000)
    spec: JobSpec
    editable: list[Entry] = Field(default_factory=list, max_length=64, description=(
        "Controls (learning_rate, layers, ...) or spec paths students may change."))
    hidden: list[Entry] = Field(default_factory=list, max_length=64, description=(
        "Controls or spec paths the page hides."))
    goal: Goal


def _iso(t: float | None) -> str | None:
    return None if t is None else datetime.fromtimestamp(t, UTC).isoformat()


def view(challenge: dict) -> dict:
    """A challenge as the API shows it (also to students: the page needs the spec)."""
    locked_controls = [c for c in rules.CONTROLS
                       if c not in rules.controls_touching(challenge["editable"])]
    return {
        "id": challenge["id"], "code": challenge["code"],
        "link": f"/join?challenge={challenge['code']}",
        "title": challenge["title"], "instructions": challenge["instructions"],
        "spec": challenge["spec"], "editable": challenge["editable"],
        "hidden": challenge["hidden"], "goal": challenge["goal"], "task": challenge["task"],
        "metrics": challenge["metrics"], "state": challenge["state"],
        "created_at": _iso(challenge["created_at"]), "closed_at": _iso(challenge["closed_at"]),
        "controls": {"editable": [c for c in rules.CONTROLS if c not in locked_controls],
                     "locked": locked_controls,
                     "hidden": rules.controls_touching(challenge["hidden"])},
    }


def _teacher(settings: Settings, token: str | None) -> None:
    if not (settings.is_open or is_teacher(settings, token)):
        raise HTTPException(401 if token is None else 403, TEACHER_ONLY)


def _member(settings: Settings, token: str | None) -> bool:
    """True for the teacher (or anyone on an open server); 401 for a stranger."""
    if settings.is_open or is_teacher(settings, token):
        return True
    if tokens.student_name(settings, token) is None:
        raise HTTPException(401, JOIN_FIRST)
    return False


def _find(request: Request, ref: str) -> dict:
    challenge = board_of(request.app).store.get(ref) if len(ref) <= 64 else None
    if challenge is None:
        raise HTTPException(404, checks.NOT_FOUND)
    return challenge


@router.post("/challenges", status_code=201)
def create_challenge(body: ChallengeCreate, request: Request, settings: SettingsDep,
                     datasets: DatasetsDep, token: TokenDep) -> dict:
    """Make a challenge from a setup (teacher only); 422 names a bad field."""
    _teacher(settings, token)
    board = board_of(request.app)
    challenge = board.store.add(checks.make(body, settings, datasets, board.store))
    board.added(challenge)
    return view(challenge)


@router.get("/challenges")
def list_challenges(request: Request, settings: SettingsDep, token: TokenDep) -> dict:
    """Every challenge for the teacher; the open ones for a student."""
    teacher = _member(settings, token)
    found = board_of(request.app).store.all()
    return {"challenges": [view(c) for c in found if teacher or c["state"] == "open"]}


@router.get("/challenges/{ref}")
def get_challenge(ref: str, request: Request, settings: SettingsDep, token: TokenDep) -> dict:
    """One challenge, by its id or its code."""
    _member(settings, token)
    return view(_find(request, ref))


def _set_state(ref: str, request: Request, settings: Settings, token: str | None,
               state: str) -> dict:
    _teacher(settings, token)
    challenge = _find(request, ref)
    board_of(request.app).store.set_state(challenge["id"], state)
    return view(_find(request, challenge["id"]))


@router.post("/challenges/{ref}/close")
def close_challenge(ref: str, request: Request, settings: SettingsDep, token: TokenDep) -> dict:
    """No new runs on it (runs already made go on and still count)."""
    return _set_state(ref, request, settings, token, "closed")


@router.post("/challenges/{ref}/reopen")
def reopen_challenge(ref: str, request: Request, settings: SettingsDep,
                     token: TokenDep) -> dict:
    return _set_state(ref, request, settings, token, "open")


@router.delete("/challenges/{ref}", status_code=204)
def delete_challenge(ref: str, request: Request, settings: SettingsDep,
                     token: TokenDep) -> Response:
    """Delete the challenge and its results (the students' jobs stay)."""
    _teacher(settings, token)
    board_of(request.app).deleted(_find(request, ref)["id"])
    return Response(status_code=204)


def _table(ref: str, request: Request, settings: Settings, store, datasets,
           token: str | None) -> tuple[dict, list[dict]]:
    _teacher(settings, token)
    challenge = _find(request, ref)
    roster = tokens.roster(settings)
    table = results.rows(challenge, board_of(request.app).runs_of(challenge["id"]),
                         store.get_job, datasets, roster.is_removed)
    return challenge, table


@router.get("/challenges/{ref}/results")
def challenge_results(ref: str, request: Request, settings: SettingsDep, store: StoreDep,
                      datasets: DatasetsDep, token: TokenDep) -> dict:
    """Each student's best run, best first (teacher only)."""
    challenge, table = _table(ref, request, settings, store, datasets, token)
    return {"challenge": view(challenge), "rows": table}


@router.get("/challenges/{ref}/results.csv")
def challenge_results_csv(ref: str, request: Request, settings: SettingsDep, store: StoreDep,
                          datasets: DatasetsDep, token: TokenDep) -> Response:
    """The results as a CSV file (teacher only)."""
    challenge, table = _table(ref, request, settings, store, datasets, token)
    return Response(results.to_csv(table), media_type="text/csv; charset=utf-8", headers={
        "Content-Disposition": f'attachment; filename="challenge-{challenge["code"]}.csv"'})


@router.get("/challenges/{ref}/mine")
def my_runs(ref: str, request: Request, settings: SettingsDep, token: TokenDep) -> dict:
    """The caller's own runs on the challenge with how each stands against the goal."""
    _member(settings, token)
    challenge = _find(request, ref)
    key, _ = checks.who(settings, token)
    runs = [r for r in board_of(request.app).runs_of(challenge["id"]) if r["student_id"] == key]
    fields = ("job_id", "met_epoch", "met_value", "best_value", "best_epoch", "latest_value",
              "latest_epoch", "setup")
    return {"challenge_id": challenge["id"], "state": challenge["state"],
            "runs": [{**{f: r[f] for f in fields}, "met": r["met_epoch"] is not None}
                     for r in runs]}


# -- the create path of POST /api/jobs (jobs.py) ---------------------------------------------

async def admit(request: Request, ref: str, spec: JobSpec, token: str | None,
                viewer: Viewer) -> dict:
    """Check a new job on challenge `ref` (404, 409, 422); the run to `record` once stored."""
    app = request.app
    board = board_of(app)
    challenge = board.store.get(ref) if len(ref) <= 64 else None
    return await run_in_threadpool(checks.admit, challenge, spec, app.state.settings,
                                   app.state.datasets, token, viewer)


async def record(request: Request, run: dict, job_id: str) -> None:
    """Keep the run of a stored job (before the engine trains it: no epoch is missed)."""
    await run_in_threadpool(board_of(request.app).add_run, {**run, "job_id": job_id})
