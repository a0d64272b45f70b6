"""Where GOV.UK Frontend's compiled assets are, and a clear error when they are missing.

The npm package is installed by ``scripts/setup-web.sh`` into ``node_modules/`` and never
committed; the app serves its ``dist/govuk`` files directly, so there is no copy to go stale.
"""

from __future__ import annotations

import json
from pathlib import Path

from candour.config import Settings
from candour.errors import CandourError

# src/candour/web/assets.py -> the checkout's root, where package.json and node_modules live.
CHECKOUT = Path(__file__).resolve().parents[3]
DIST = Path("node_modules") / "govuk-frontend" / "dist" / "govuk"
REQUIRED = ("govuk-frontend.min.css", "govuk-frontend.min.js", "assets/fonts", "assets/images")
SUPPORTED_MAJOR = 6


class AssetsMissing(CandourError):
    """GOV.UK Frontend is not installed where the app looks for it."""


def _candidates(settings: Settings) -> list[Path]:
    if settings.web_assets_dir is not None:
        return [settings.web_assets_dir.expanduser().resolve()]
    return [CHECKOUT / DIST, Path.cwd() / DIST]


def _version(dist: Path) -> str | None:
    try:
        package = json.loads((dist.parent.parent / "package.json").read_text())
    except (OSError, ValueError):
        return None
    version = package.get("version") if isinstance(package, dict) else None
    return version if isinstance(version, str) else None


def govuk_frontend_dir(settings: Settings) -> Path:
    """The ``dist/govuk`` folder of an installed GOV.UK Frontend 6, or raise :class:`AssetsMissing`.

    Checked at start-up so that a missing ``npm ci`` is one clear line, not unstyled pages.
    """
    looked: list[str] = []
    for candidate in _candidates(settings):
        looked.append(str(candidate))
        if not all((candidate / name).exists() for name in REQUIRED):
            continue
        version = _version(candidate)
        if version is not None and not version.startswith(f"{SUPPORTED_MAJOR}."):
            raise AssetsMissing(
                f"GOV.UK Frontend {version} is installed at {candidate}, but Candour needs "
                f"version {SUPPORTED_MAJOR}.x; run `make setup` (scripts/setup-web.sh)"
            )
        return candidate
    raise AssetsMissing(
        "GOV.UK Frontend is not installed (looked in "
        + ", ".join(looked)
        + "); run `make setup` (scripts/setup-web.sh runs `npm ci`), "
        "or set CANDOUR_WEB_ASSETS_DIR to its dist/govuk folder"
    )
