"""`job.show()`: the job's live view in Jupyter, a progress bar elsewhere.

In a Jupyter kernel it returns an `IPython.display.IFrame` of `GET /jobs/{id}/view` (the page's
network, boundary and curves for that one job, read-only, following its stream; the token
travels in the URL's fragment, which is never sent to a server). In a plain terminal it follows
the job with the progress bar until it ends and returns its final state.
"""

from __future__ import annotations

import sys
from typing import Any


def in_notebook() -> bool:
    """Whether this code runs in a Jupyter kernel (not a terminal IPython or plain Python)."""
    shell = sys.modules.get("IPython")
    if shell is None:
        return False
    try:
        ip = shell.get_ipython()
    except AttributeError:
        return False
    return ip is not None and "IPKernelApp" in getattr(ip, "config", {})


def show(job: Any, *, height: int = 560, width: str = "100%") -> Any:
    if in_notebook():
        from IPython.display import IFrame

        return IFrame(job.view_url, width=width, height=height)
    from playground.progress import final_table, watch

    info, last = watch(job)
    final_table(info, last)
    return info
