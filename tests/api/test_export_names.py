"""A job name with a NUL or other control character (issue 12, item 9): refused by the spec
(tests/classroom/test_sessions.py), and escaped when a stored name already holds one, so the
exported Python file is always valid source."""

from __future__ import annotations

from server.export import export_model
from tests.export.models import CASES, trained_like


def test_python_export_of_a_name_with_control_characters_compiles():
    _, model, data = CASES[0]
    name = "nul\x00here\x01bell\x07 tab\t and a lone \ud800 surrogate"
    source_bytes = export_model("python", trained_like(model, data), {"name": name})[0]
    source = source_bytes.decode("utf-8")  # valid UTF-8: the surrogate did not stay
    assert "\x00" not in source and "\x07" not in source
    namespace: dict = {"__name__": "model"}
    exec(compile(source, "model.py", "exec"), namespace)
    assert namespace["SPEC"]["name"] == name  # kept exactly, escaped, in the SPEC literal
    assert source.startswith('"""nul here bell tab and a lone surrogate: a network')
