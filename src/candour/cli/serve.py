"""``candour serve``: the web service (portal, transparency pages, JSON API) with uvicorn."""

from __future__ import annotations

import os
from contextlib import ExitStack
from typing import Annotated, Any

import typer
from rich.table import Table

from candour.cli.common import HomeOption, console, settings
from candour.config import Settings
from candour.errors import CandourError

# How a worker process (uvicorn --workers) receives the exact settings of the parent: the demo
# sign-in changes settings in the parent, which the environment alone would not carry.
_WORKER_SETTINGS = "_CANDOUR_SERVE_SETTINGS"


def worker_app() -> Any:
    """The app of one uvicorn worker process, built from the settings its parent passed on."""
    from candour.web import create_app

    text = os.environ.get(_WORKER_SETTINGS)
    if not text:
        raise CandourError(f"{_WORKER_SETTINGS} is not set; start workers with `candour serve`")
    return create_app(Settings.model_validate_json(text))


def serve(
    host: Annotated[str, typer.Option("--host", help="Address to listen on.")] = "127.0.0.1",
    port: Annotated[int, typer.Option("--port", help="Port to listen on.")] = 8000,
    workers: Annotated[
        int,
        typer.Option(
            "--workers",
            min=1,
            max=64,
            help="Worker processes. Each builds its own caches and identity index; about one "
            "per core.",
        ),
    ] = 1,
    demo_sign_in: Annotated[
        bool,
        typer.Option(
            "--demo-sign-in",
            help="Demo homes only (refused elsewhere): start a local test identity provider "
            "whose users are synthetic residents, and sign residents in with it. `candour "
            "demo` uses it.",
        ),
    ] = False,
    home: HomeOption = None,
) -> None:
    """Serve the web app: public pages, transparency log (/log/), sign-in and /api/v1.

    Sign-in and cookies are configured with CANDOUR_* settings; see docs/web.md.
    """
    config = settings(home)
    base_url = f"http://{_browser_host(host)}:{port}"
    with ExitStack() as stack:
        matcher = None
        if demo_sign_in:
            from candour.web.demo_identity import BANNER
            from candour.web.demo_identity import demo_sign_in as start_demo_sign_in
            from candour.workflows.identity_match import VaultMatcher

            # One matcher both chooses the residents and serves sign-in, so its index is warm.
            matcher = VaultMatcher(config)
            with console.status("Starting the demo sign-in (test identities) ..."):
                config, provider = stack.enter_context(
                    start_demo_sign_in(config, base_url, matcher=matcher)
                )
            table = Table(title=f"{BANNER}: sign in as any of these", title_justify="left")
            for column in ("sign in as", "name", "date of birth", "postcode"):
                table.add_column(column)
            for resident in provider.residents:
                table.add_row(
                    resident.sub,
                    f"{resident.given_name} {resident.family_name}",
                    resident.birthdate,
                    resident.postcode,
                )
            console.print(table)
            console.print(
                f"Open {base_url}/sign-in, continue to the test provider ({provider.issuer}) "
                "and choose a resident.",
                highlight=False,
            )
        _run(config, host, port, workers, matcher)


def _browser_host(host: str) -> str:
    # A wildcard address is where the server listens, not an address a browser can open.
    return "127.0.0.1" if host in ("0.0.0.0", "::", "") else host


def _run(config: Settings, host: str, port: int, workers: int, matcher: Any) -> None:
    import uvicorn

    from candour.web import create_app

    console.print(
        f"Serving Candour on http://{_browser_host(host)}:{port}/ (Ctrl+C to stop)",
        highlight=False,
    )
    # Access logs carry paths only: no page puts personal data in its URL.
    options: dict[str, Any] = {
        "host": host,
        "port": port,
        "log_level": "info",
        "proxy_headers": True,
    }
    if workers == 1:
        uvicorn.run(create_app(config, matcher=matcher), **options)
        return
    # Fail here, with a one-line error, rather than in every worker.
    create_app(config)
    os.environ[_WORKER_SETTINGS] = config.model_dump_json()
    try:
        # A worker imports the app and builds it before it answers health checks; on a busy
        # machine that can take longer than uvicorn's 5 s default, which would restart it.
        uvicorn.run(
            f"{__name__}:worker_app",
            factory=True,
            workers=workers,
            timeout_worker_healthcheck=120,
            **options,
        )
    finally:
        os.environ.pop(_WORKER_SETTINGS, None)
