"""Routes for the catalogue (being written) and /api/health."""

from fastapi import APIRouter

from server import __version__
from server.api.deps import EngineDep

router = APIRouter()


@router.get("/health")
def health(engine: EngineDep) -> dict:
    return {"status": "ok", "device": str(engine.device), "version": __version__}
