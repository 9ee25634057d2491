"""Checking a challenge as the teacher makes it, and a student's job made on one.

`make(body, ...)` turns a validated create request into the challenge row (422 SpecError
naming the bad field and what is allowed: an unusable spec or data set, a metric the task
does not have, a goal value out of range, an editable or hidden entry that is no control or
spec path). `admit(...)` checks a new job on a challenge before it is stored: 404 for no such
challenge, 409 when it is closed, 422 naming the first locked field it changes or when the
model has more parameters than the goal allows; it gives the run to record. `normalized`
is a spec as compared: every default filled in, the data set's params too.
"""

from __future__ import annotations

import hashlib
import secrets
import time

from fastapi import HTTPException

from server.api.classroom import tokens
from server.api.deps import is_teacher
from server.challenges import rules
from server.challenges.storage import ChallengeStore
from server.config import Settings
from server.data.ownership import EVERYONE, Viewer
from server.data.registry import DataSetNotFound
from server.spec.errors import SpecError
from server.spec.job import JobSpec

NOT_FOUND = "Challenge not found; check the code your teacher gave."
CLOSED = "This challenge is closed; ask your teacher to reopen it."
CODE_ALPHABET = "ABCDEFGHJKLMNPQRSTUVWXYZ23456789"  # read aloud: no 0/O, 1/I
CODE_LENGTH = 6
# A joined student sees built-in data sets and the uploads the teacher shared (no own ones).
CLASS_VIEWER = Viewer(owner="challenge:class", name=None, everything=False, joined=True)


def normalized(spec: JobSpec, datasets) -> dict:
    """The spec as JSON with every default filled in (the data set's params too)."""
    out = spec.model_dump(mode="json")
    try:
        definition = datasets.definition(spec.dataset.name)
        out["dataset"]["params"] = datasets.params(
            definition, spec.dataset.params).model_dump(mode="json")
    except (DataSetNotFound, SpecError):
        pass  # the model check names it
    return out


def _model_report(spec: JobSpec, datasets, settings: Settings, viewer: Viewer):
    from server.api.jobs import _check_model  # the jobs module imports this one

    return _check_model(spec, datasets, settings, spec.training.batch_size, viewer)


def make(body, settings: Settings, datasets, store: ChallengeStore) -> dict:
    """The challenge row for a create request (see the module docstring for the 422s)."""
    spec: JobSpec = body.spec
    viewer = EVERYONE if settings.is_open else CLASS_VIEWER
    try:
        _model_report(spec, datasets, settings, viewer)
        shape = datasets.describe(spec.dataset, viewer)
    except SpecError as err:
        if any(e["loc"][:2] == ["dataset", "name"] for e in err.errors) and not settings.is_open:
            err = SpecError(("dataset", "name"), (
                f"{err} Students can use the built-in data sets and the uploads you shared; "
                "share the upload first (POST /api/datasets/{name}/share)."))
        raise err.prefixed("spec") from None
    title = " ".join(body.title.split())
    if not title:
        raise SpecError(("title",), "Give the challenge a title (1 to 120 characters).")
    goal = body.goal.model_dump()
    allowed = rules.metric_names(shape.task, shape.num_classes,
                                 spec.dataset.validation_fraction > 0)
    if goal["metric"] not in allowed:
        raise SpecError(("goal", "metric"), (
            f"{goal['metric']!r} is not a metric of this {shape.task} setup; choose one of: "
            f"{', '.join(allowed)}"))
    rules.check_goal_value(goal["metric"], goal["value"])
    if goal["max_epochs"] is not None and goal["max_epochs"] > settings.max_epochs:
        raise SpecError(("goal", "max_epochs"), (
            f"max_epochs is {goal['max_epochs']}; this server allows at most "
            f"{settings.max_epochs} epochs"))
    if goal["max_params"] is not None and goal["max_params"] > settings.max_parameters:
        raise SpecError(("goal", "max_params"), (
            f"max_params is {goal['max_params']}; this server allows at most "
            f"{settings.max_parameters} parameters per model"))
    base = normalized(spec, datasets)
    editable = rules.check_entries(base, body.editable, "editable")
    hidden = rules.check_entries(base, body.hidden, "hidden")
    both = [h for h in hidden if h in editable]
    if both:
        raise SpecError(("hidden", body.hidden.index(both[0])), (
            f"{both[0]!r} is also editable; a hidden control cannot be changed, so list it "
            "in one of editable or hidden"))
    code = _new_code(store)
    return {"id": secrets.token_hex(6), "code": code, "title": title,
            "instructions": body.instructions.strip(), "spec": base, "editable": editable,
            "hidden": hidden, "goal": goal, "task": shape.task, "metrics": allowed}


def _new_code(store: ChallengeStore) -> str:
    while True:
        code = "".join(secrets.choice(CODE_ALPHABET) for _ in range(CODE_LENGTH))
        if not store.code_taken(code):
            return code


def who(settings: Settings, token: str | None) -> tuple[str, str | None]:
    """(student key, name) of a caller: the student's id, "teacher", or a digest of the
    token of an API client without a class sign-in."""
    student_id = tokens.student_id_of(settings, token)
    if student_id is not None:
        return student_id, tokens.student_name(settings, token)
    if is_teacher(settings, token):
        return "teacher", None
    digest = hashlib.sha256((token or "").encode("utf-8", "surrogatepass")).hexdigest()[:12]
    return f"client-{digest}", None


def locked_error(challenge: dict, path: rules.Path) -> SpecError:
    dotted = ".".join(path)
    kept = rules.value_at(challenge["spec"], path)
    may = ", ".join(challenge["editable"]) or "nothing"
    return SpecError(path, (
        f"This challenge does not let you change {dotted} (it stays {kept!r}); "
        f"you may change: {may}"))


def admit(challenge: dict | None, spec: JobSpec, settings: Settings, datasets,
          token: str | None, viewer: Viewer) -> dict:
    """The run to record for a new job on `challenge` (see the module docstring)."""
    if challenge is None:
        raise HTTPException(404, NOT_FOUND)
    if challenge["state"] != "open":
        raise HTTPException(409, CLOSED)
    new = normalized(spec, datasets)
    path = rules.locked_change(challenge["spec"], new, challenge["editable"])
    if path is not None:
        raise locked_error(challenge, path)
    limit = challenge["goal"].get("max_params")
    if limit is not None:
        report = _model_report(spec, datasets, settings, viewer)
        if report.total_parameters > limit:
            raise SpecError(("model", "layers"), (
                f"This challenge allows at most {limit} parameters; this model has "
                f"{report.total_parameters}. Use fewer or smaller layers."))
    student_id, name = who(settings, token)
    return {"challenge_id": challenge["id"], "student_id": student_id, "student": name,
            "setup": rules.setup(challenge["spec"], new), "created_at": time.time()}


def current_spec(row: dict, datasets) -> dict | None:
    """A stored job's spec as compared (None when it no longer validates)."""
    try:
        return normalized(JobSpec.model_validate(row["spec"]), datasets)
    except ValueError:
        return None
