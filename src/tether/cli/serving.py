"""serve: the model server on uvicorn."""

from __future__ import annotations

from typing import Any

import typer

from tether.cli._common import err_console, listen, port_option, project_of, run_app
from tether.errors import ConfigError

__all__ = ["register"]


def serve(
    ctx: typer.Context,
    host: str = typer.Option("127.0.0.1", "--host", envvar="TETHER_HOST",
                             help="Address to listen on."),
    port: int = port_option(8000, "TETHER_PORT"),
    workers: int = typer.Option(1, "--workers", min=1,
                                help="Worker processes; tether runs one per process."),
    no_poll: bool = typer.Option(False, "--no-poll",
                                 help="Do not poll the registry (reload via /admin/reload)."),
    model_path: str | None = typer.Option(None, "--model-path", envvar="MODEL_PATH",
                                          help="Serve this MLflow model folder, not the "
                                               "registry."),
    log_level: str = typer.Option("warning", "--log-level", help="uvicorn log level."),
) -> None:
    """Serve the champion (and any challenger) over HTTP: MLflow's protocol plus tether's."""
    if workers != 1:
        # metrics, batching, the prediction log and hot swaps live in one process: scale
        # out with more replicas (each scraped by Prometheus), not uvicorn workers
        raise ConfigError(f"--workers {workers}: tether serve runs one worker per process; "
                          "run more replicas behind a load balancer instead")
    from tether.dashboard import dashboard_routes
    from tether.serving import create_app

    project = project_of(ctx)
    holder: dict[str, Any] = {}

    async def reload_server() -> None:
        await holder["app"].state.server.reload()

    routes = dashboard_routes(project, on_registry_change=reload_server)
    app = create_app(project, poll=not no_poll, model_path=model_path, routes=routes)
    holder["app"] = app
    sock, url = listen(host, port)
    err_console.print(f"serving {project.model_name} on {url} "
                      f"({'model folder ' + model_path if model_path else 'registry'})")
    run_app(app, sock, log_level=log_level)


def register(app: typer.Typer) -> None:
    app.command("serve")(serve)
