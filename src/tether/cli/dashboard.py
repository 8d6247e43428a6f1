"""dashboard: serve the web page and its JSON API on their own."""

from __future__ import annotations

import threading
import webbrowser

import typer

from tether.cli._common import console, project_of

__all__ = ["register"]

OPEN_TIMEOUT_SECONDS = 30.0


def dashboard(
    ctx: typer.Context,
    host: str = typer.Option("127.0.0.1", "--host", envvar="TETHER_DASHBOARD_HOST",
                             help="Interface to listen on."),
    port: int = typer.Option(8765, "--port", envvar="TETHER_DASHBOARD_PORT",
                             help="Port to listen on.", min=1, max=65535),
    open_browser: bool = typer.Option(False, "--open", help="Open the page in a browser."),
    poll_seconds: float = typer.Option(5.0, "--poll-seconds", min=1.0,
                                       help="How often the page refreshes."),
) -> None:
    """Serve the dashboard: versions, traffic, live and estimated metrics, drift, decisions."""
    import uvicorn

    from tether.dashboard.app import create_dashboard_app

    project = project_of(ctx)
    app = create_dashboard_app(project, admin_token=project.settings.admin_token,
                               poll_seconds=poll_seconds)
    shown_host = "127.0.0.1" if host in ("0.0.0.0", "::") else host
    url = f"http://{shown_host}:{port}/"
    console.print(f"dashboard for [bold]{project.model_name}[/bold] at {url}")
    if not project.settings.admin_token:
        console.print("read-only: set TETHER_ADMIN_TOKEN to enable roll back and retrain")
    if open_browser:
        threading.Thread(target=_open_when_up, args=(url,), daemon=True).start()
    uvicorn.run(app, host=host, port=port, log_level="warning")


def _open_when_up(url: str) -> None:
    """Open the page in a browser once the server answers (not if it never does)."""
    from tether.net import wait_http

    try:
        wait_http(url, timeout=OPEN_TIMEOUT_SECONDS)
    except TimeoutError:
        return
    webbrowser.open(url)


def register(app: typer.Typer) -> None:
    app.command()(dashboard)
