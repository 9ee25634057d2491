"""A challenge's rules: which parts of the job spec students may change (controls and spec
paths), which differences a student's spec has from the challenge's, which metrics a goal may
name for a task, and whether a metric value meets the goal.

Vocabulary: `editable` and `hidden` hold control names (the page's controls, the keys of
CONTROLS) or dotted spec paths (`training.optimizer.learning_rate`, `model.layers.0.units`,
`model.layers.*.activation`: `*` stands for any list index). A student's spec may differ from
the challenge's only at paths an editable entry covers (the entry is a prefix of the path).
Nothing here touches HTTP or SQLite.
"""

from __future__ import annotations

import math
from typing import Any

from server.spec.errors import SpecError

# The page's controls (web/static/js/store.js, PROPS) and the spec paths each one sets.
CONTROLS: dict[str, tuple[str, ...]] = {
    "dataset": ("dataset.name",),
    "params": ("dataset.params",),
    "features": ("dataset.features",),
    "train_fraction": ("dataset.train_fraction",),
    "validation_fraction": ("dataset.validation_fraction",),
    "data_seed": ("dataset.seed",),
    "layers": ("model.layers",),
    "activation": ("model.layers.*.activation",),
    "init": ("model.init",),
    "init_std": ("model.init_std",),
    "loss": ("training.loss",),
    "learning_rate": ("training.optimizer.learning_rate",),
    "optimizer": ("training.optimizer.name",),
    "momentum": ("training.optimizer.momentum",),
    "schedule": ("training.schedule.name",),
    "batch_size": ("training.batch_size",),
    "regularization": ("training.regularization.kind",),
    "regularization_rate": ("training.regularization.rate",),
    "epochs": ("training.epochs",),
    "early_stopping": ("training.early_stopping",),
    "seed": ("training.seed",),
}
FREE = ("name", "start")  # a job's label and whether it starts: never part of the setup

# Metric names per task (the trainer's record keys, server/train/trainer.py: evaluate).
LOWER_IS_BETTER = ("loss", "mae")
CLASSIFICATION = ("loss", "accuracy", "precision", "recall", "f1", "auc")
REGRESSION = ("loss", "mae", "r2")
BOUNDED = ("accuracy", "precision", "recall", "f1", "auc")  # between 0 and 1

Path = tuple[str, ...]


def split(path: str) -> Path:
    return tuple(path.split("."))


def paths_of(entry: str) -> tuple[Path, ...]:
    """The spec paths an `editable` or `hidden` entry stands for."""
    return tuple(split(p) for p in CONTROLS.get(entry, (entry,)))


def _resolve(spec: Any, path: Path) -> bool:
    """Whether `path` names something in `spec` (`*` matching every index of a list)."""
    if not path:
        return True
    head, rest = path[0], path[1:]
    if isinstance(spec, dict):
        return head in spec and _resolve(spec[head], rest)
    if isinstance(spec, list):
        if head == "*":
            return bool(spec) and all(_resolve(item, rest) for item in spec)
        return head.isdigit() and int(head) < len(spec) and _resolve(spec[int(head)], rest)
    return False


def check_entries(spec: dict, entries: list[str], field: str) -> list[str]:
    """`entries` without repeats, each a control or a path in `spec`; SpecError naming the
    first that is neither (`field` is "editable" or "hidden")."""
    seen: list[str] = []
    for i, entry in enumerate(entries):
        ok = isinstance(entry, str) and 0 < len(entry) <= 200 and (
            entry in CONTROLS or (entry.split(".")[0] not in FREE
                                  and _resolve(spec, split(entry))))
        if not ok:
            raise SpecError((field, i), (
                f"{entry!r} is neither a control nor a path in the challenge's spec; controls: "
                f"{', '.join(CONTROLS)}; or a dotted spec path such as "
                "training.optimizer.learning_rate or model.layers.0.units"))
        if entry not in seen:
            seen.append(entry)
    return seen


def covers(pattern: Path, path: Path) -> bool:
    """Whether `pattern` (an editable path) covers a change at `path`."""
    return len(pattern) <= len(path) and all(
        p in ("*", q) for p, q in zip(pattern, path[:len(pattern)], strict=True))


def overlaps(pattern: Path, path: Path) -> bool:
    """Whether one of the two paths lies under the other (a control touching an entry)."""
    n = min(len(pattern), len(path))
    return all(p in ("*", q) or q == "*" for p, q in zip(pattern[:n], path[:n], strict=True))


def differences(base: Any, new: Any, at: Path = ()) -> list[Path]:
    """The paths where `new` differs from `base`: the first level where they part."""
    if isinstance(base, dict) and isinstance(new, dict):
        found: list[Path] = []
        for key in list(base) + [k for k in new if k not in base]:
            if at == () and key in FREE:
                continue
            if key not in base or key not in new:
                found.append((*at, str(key)))
            else:
                found += differences(base[key], new[key], (*at, str(key)))
        return found
    if isinstance(base, list) and isinstance(new, list):
        found = []
        for i in range(max(len(base), len(new))):
            if i >= len(base) or i >= len(new):
                found.append((*at, str(i)))
            else:
                found += differences(base[i], new[i], (*at, str(i)))
        return found
    same = base == new and type(base) is type(new) or (
        isinstance(base, int | float) and isinstance(new, int | float)
        and not isinstance(base, bool) and not isinstance(new, bool) and base == new)
    return [] if same else [at]


def value_at(spec: Any, path: Path) -> Any:
    for part in path:
        if isinstance(spec, dict):
            spec = spec.get(part)
        elif isinstance(spec, list) and part.isdigit() and int(part) < len(spec):
            spec = spec[int(part)]
        else:
            return None
    return spec


def locked_change(base: dict, new: dict, editable: list[str]) -> Path | None:
    """The first path where `new` changes what the challenge locks, or None."""
    patterns = [p for entry in editable for p in paths_of(entry)]
    for path in differences(base, new):
        if not any(covers(p, path) for p in patterns):
            return path
    return None


def setup(base: dict, new: dict) -> dict[str, Any]:
    """What a student changed: {dotted path: their value} for every difference."""
    return {".".join(p): value_at(new, p) for p in differences(base, new)}


def controls_touching(entries: list[str]) -> list[str]:
    """The page's controls that an entry list reaches (for the page: editable, hidden)."""
    wanted = [p for entry in entries for p in paths_of(entry)]
    return [name for name, paths in CONTROLS.items()
            if any(overlaps(w, split(p)) for w in wanted for p in paths)]


# -- goals ------------------------------------------------------------------------------------

def metric_names(task: str, num_classes: int | None, validation: bool) -> list[str]:
    """The metrics a goal may name for a task: `<split>_<metric>`."""
    names = CLASSIFICATION if task == "classification" else REGRESSION
    if task == "classification" and (num_classes or 2) > 2:
        names = tuple(n for n in names if n != "auc")
    splits = ("test", "train") + (("validation",) if validation else ())
    return [f"{s}_{n}" for s in splits for n in names]


def check_goal_value(metric: str, value: float) -> None:
    kind = metric.split("_", 1)[1]
    if kind in BOUNDED and not 0.0 <= value <= 1.0:
        raise SpecError(("goal", "value"), f"{metric} lies between 0 and 1; got {value}")
    if kind in LOWER_IS_BETTER and value < 0:
        raise SpecError(("goal", "value"), f"{metric} is never negative; got {value}")
    if kind == "r2" and value > 1:
        raise SpecError(("goal", "value"), f"{metric} is at most 1; got {value}")


def meets(value: float | None, op: str, target: float) -> bool:
    if value is None or not math.isfinite(value):
        return False
    return value <= target if op == "<=" else value >= target


def better(a: float | None, b: float | None, op: str) -> bool:
    """Whether value `a` is better than `b` for a goal with `op` (None is worst)."""
    if a is None:
        return False
    if b is None:
        return True
    return a < b if op == "<=" else a > b
