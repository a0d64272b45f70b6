"""``/log/``: the transparency log's C2SP static files, served exactly as they are on disk.

Only canonical tlog-tiles paths and ``checkpoint`` are served, so path traversal, hidden files
and the appender's temporary files can never be reached. Full tiles never change and are
cached forever; partial tiles and the checkpoint change as the log grows.
"""

from __future__ import annotations

from pathlib import Path

from fastapi import APIRouter, HTTPException
from fastapi.responses import RedirectResponse, Response

from candour.home import Home
from candour.ledger import public_dir
from candour.ledger.log import CHECKPOINT
from candour.ledger.tiles import TILE_WIDTH, TileError, parse_path
from candour.web.deps import SettingsDep

router = APIRouter(include_in_schema=False)

FULL_TILE_CACHE = "public, max-age=31536000, immutable"
PARTIAL_TILE_CACHE = "public, max-age=60"
# Public data, meant to be fetched by verifiers anywhere, including from other origins.
OPEN = {"Access-Control-Allow-Origin": "*"}


def _read(root: Path, relative: str) -> bytes:
    path = (root / relative).resolve()
    # Defence in depth behind the canonical-path check: never follow a link out of the log.
    if not path.is_relative_to(root.resolve()) or not path.is_file():
        raise HTTPException(status_code=404)
    try:
        return path.read_bytes()
    except OSError:
        raise HTTPException(status_code=404) from None


@router.api_route("/log/checkpoint", methods=["GET", "HEAD"])
def checkpoint(settings: SettingsDep) -> Response:
    """The latest signed (and cosigned) checkpoint, as a signed note."""
    data = _read(public_dir(Home(settings.home)), CHECKPOINT)
    return Response(
        data,
        media_type="text/plain; charset=utf-8",
        headers={"Cache-Control": "no-cache", **OPEN},
    )


@router.api_route("/log/tile/{path:path}", methods=["GET", "HEAD"])
def tile(path: str, settings: SettingsDep) -> Response:
    """A hash tile or entry bundle, by its tlog-tiles path."""
    try:
        ref = parse_path(f"tile/{path}")
    except TileError:
        raise HTTPException(status_code=404) from None
    data = _read(public_dir(Home(settings.home)), ref.path)
    cache = FULL_TILE_CACHE if ref.width == TILE_WIDTH else PARTIAL_TILE_CACHE
    return Response(
        data,
        media_type="application/octet-stream",
        headers={"Cache-Control": cache, **OPEN},
    )


@router.get("/log")
@router.get("/log/")
def log_index() -> RedirectResponse:
    """People who open the log's address in a browser get the page that explains it."""
    return RedirectResponse("/transparency", status_code=303)
