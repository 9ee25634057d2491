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
