"""Routes for stream (being written)."""

from fastapi import APIRouter

router = APIRouter()
