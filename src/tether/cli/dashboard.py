"""dashboard: serve the web page and its JSON API on their own."""

from __future__ import annotations

import threading
import webbrowser

import typer

from tether.cli._common import console, listen, port_option, project_of, run_app

__all__ = ["register"]

OPEN_TIMEOUT_SECONDS = 30.0


def dashboard(
    ctx: typer.Context,
    host: str = typer.Option("127.0.0.1", "--host", envvar="TETHER_DASHBOARD_HOST",
                             help="Interface to listen on."),
    port: int = port_option(8765, "TETHER_DASHBOARD_PORT"),
    open_browser: bool = typer.Option(False, "--open", help="Open the page in a browser."),
    poll_seconds: float = typer.Option(5.0, "--poll-seconds", min=1.0,
                                       help="How often the page refreshes."),
) -> None:
    """Serve the dashboard: versions, traffic, live and estimated metrics, drift, decisions."""
    from tether import apps

    project = project_of(ctx)
    process = apps.dashboard(project, poll_seconds=poll_seconds)
    sock, address = listen(host, port)
    url = f"{address}/"
    console.print(f"dashboard for [bold]{project.model_name}[/bold] at {url}")
    if not project.settings.admin_token:
        console.print("read-only: set TETHER_ADMIN_TOKEN to enable roll back and retrain")
    if open_browser:
        threading.Thread(target=_open_when_up, args=(url,), daemon=True).start()
    run_app(process.app, sock)


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
