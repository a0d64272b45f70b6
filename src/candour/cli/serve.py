"""``candour serve``: the web service (portal, transparency pages, JSON API) with uvicorn."""

from __future__ import annotations

from typing import Annotated

import typer

from candour.cli.common import HomeOption, console, settings


def serve(
    host: Annotated[str, typer.Option("--host", help="Address to listen on.")] = "127.0.0.1",
    port: Annotated[int, typer.Option("--port", help="Port to listen on.")] = 8000,
    home: HomeOption = None,
) -> None:
    """Serve the web app: public pages, transparency log (/log/), sign-in and /api/v1.

    Sign-in and cookies are configured with CANDOUR_* settings; see docs/web.md.
    """
    import uvicorn

    from candour.web import create_app

    app = create_app(settings(home))
    console.print(f"Serving Candour on http://{host}:{port}/ (Ctrl+C to stop)", highlight=False)
    # Access logs carry paths only: no page puts personal data in its URL.
    uvicorn.run(app, host=host, port=port, log_level="info", proxy_headers=True)
