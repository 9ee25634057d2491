"""ExportError: a model that cannot be exported in the format asked for (422, never a 500;
server/api/errors.py renders it)."""

from __future__ import annotations


class ExportError(ValueError):
    """The message is a sentence a user can act on: which format, which layer, what to do."""

    def __init__(self, msg: str, loc: tuple[str, ...] = ("query", "format")) -> None:
        super().__init__(msg)
        self.loc = loc
