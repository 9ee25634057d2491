"""SpecError: a spec that is well-formed JSON but does not make sense (shape, limit, unknown name).

The API turns it into a 422 whose `detail` has FastAPI's shape:
`[{"loc": ["body", "model", "layers", 2], "msg": "...", "type": "value_error"}]`.
Nothing here imports FastAPI.
"""

from __future__ import annotations

Loc = tuple[str | int, ...]


class SpecError(ValueError):
    """One or more problems with a spec, each with the location of the bad field.

    `loc` is relative to the job spec (for example `("model", "layers", 2)`); the API prefixes
    `"body"`. `msg` is a sentence a student can act on.
    """

    def __init__(self, loc: Loc, msg: str, kind: str = "value_error") -> None:
        super().__init__(msg)
        self.errors: list[dict] = [{"loc": list(loc), "msg": msg, "type": kind}]

    @classmethod
    def many(cls, errors: list[dict]) -> SpecError:
        err = cls((), errors[0]["msg"] if errors else "invalid spec")
        err.errors = list(errors)
        return err

    def prefixed(self, *prefix: str | int) -> SpecError:
        """The same errors with `prefix` put in front of every location."""
        return SpecError.many([{**e, "loc": [*prefix, *e["loc"]]} for e in self.errors])

    def __str__(self) -> str:
        return "; ".join(e["msg"] for e in self.errors)
