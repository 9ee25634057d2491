"""The page at `/`: the playground's HTML skeleton (web/templates/index.html).

The skeleton holds no option lists: layer types, activations, data sets and optimizers are filled
in by the page from GET /api/catalog and GET /api/datasets, so adding one on the server adds it
to the page.
"""

from __future__ import annotations

from pathlib import Path

from fastapi import APIRouter, Request
from fastapi.responses import HTMLResponse
from fastapi.templating import Jinja2Templates

from server import __version__

TEMPLATES_DIR = Path(__file__).resolve().parent.parent.parent / "web" / "templates"
templates = Jinja2Templates(directory=TEMPLATES_DIR)

router = APIRouter()


@router.get("/", response_class=HTMLResponse, include_in_schema=False)
def index(request: Request) -> HTMLResponse:
    return templates.TemplateResponse(request, "index.html", {"version": __version__})


# The job view is read-only (no controls), so any page may frame it: a notebook on another
# port (Jupyter) or in an editor (VS Code's webviews) shows it with job.show(). The token is in
# the URL's fragment, which no server sees. With frame-ancestors, browsers ignore the
# X-Frame-Options that the guard adds to every answer.
JOB_VIEW_HEADERS = {"Content-Security-Policy": "frame-ancestors * vscode-webview:",
                    "Cache-Control": "no-store"}


@router.get("/jobs/{job_id}/view", response_class=HTMLResponse, include_in_schema=False)
def job_view(request: Request, job_id: str) -> HTMLResponse:
    """One job's live view (network, boundary, curves) without the page's controls, for
    notebooks (playground's job.show()); web/templates/job_view.html."""
    return templates.TemplateResponse(request, "job_view.html",
                                      {"version": __version__, "job_id": job_id},
                                      headers=JOB_VIEW_HEADERS)
