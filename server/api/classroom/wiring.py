"""How the classroom plugs into the app: its routers (`router` under /api, `pages`) and
`install`, which adds the checks of checks.py and limits.py in the order a request meets them
and the counts they keep (`app.state.guard`). The sweeper is started by main.py's lifespan.
"""

from __future__ import annotations

from fastapi import APIRouter, FastAPI

from server.api.classroom import sessions, teacher, wall
from server.api.classroom.checks import (
    BadToken,
    DocsSwitch,
    HostOrigin,
    JoinFirst,
    SafetyHeaders,
    SignedOut,
)
from server.api.classroom.limits import BodyLimit, IdleStreams, RateLimit, StreamLimits
from server.api.classroom.refusals import GuardState
from server.api.classroom.sweeper import sweep
from server.challenges import routes as challenge_routes

__all__ = ["CHECKS", "install", "pages", "router", "sweep"]

router = APIRouter()
router.include_router(sessions.router)
router.include_router(teacher.router)
router.include_router(challenge_routes.router)  # /api/challenges (server/challenges/)
pages = APIRouter()
pages.include_router(sessions.pages)  # /teacher, /join
pages.include_router(wall.pages)  # /teacher/wall (the class wall)

# Outermost first: the order a request meets them.
CHECKS = (SafetyHeaders, HostOrigin, BadToken, DocsSwitch, RateLimit, SignedOut, BodyLimit,
          JoinFirst, StreamLimits, IdleStreams)


def install(app: FastAPI) -> None:
    """Add the checks (outside every other middleware: call it last) and their counts
    (`app.state.guard`, read by /metrics). The sweeper is started by the app's lifespan."""
    app.state.guard = GuardState(app.state.settings)
    for middleware in reversed(CHECKS):
        app.add_middleware(middleware)
