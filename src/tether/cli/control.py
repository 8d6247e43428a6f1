"""controller, trigger."""

from __future__ import annotations

import os

import typer

from tether.cli._common import (
    ACCESS_LOG_OPTION,
    JSON_OPTION,
    LOG_FORMAT_OPTION,
    SERVER_LOG_LEVEL_OPTION,
    announce,
    console,
    emit,
    listen,
    port_option,
    project_of,
    run_app,
    server_logging,
)
from tether.control.github import DEFAULT_API_URL
from tether.events import EventKind

__all__ = ["register"]


def controller(
    ctx: typer.Context,
    host: str = typer.Option("127.0.0.1", "--host", envvar="TETHER_HOST"),
    port: int = port_option(8001, "TETHER_CONTROLLER_PORT"),
    servers: str = typer.Option("", "--servers", envvar="TETHER_SERVER_URLS",
                                help="Comma-separated server URLs to push reloads to."),
    interval: float | None = typer.Option(None, "--interval", min=0.05,
                                          help="Seconds between passes."),
    once: bool = typer.Option(False, "--once", help="Run one pass, print it, exit (after "
                                                    "any retrain it started)."),
    lock_ttl: float = typer.Option(15.0, "--lock-ttl", envvar="TETHER_LOCK_TTL", min=1.0,
                                   help="Seconds another controller waits after this one "
                                        "dies before taking over."),
    log_level: str = SERVER_LOG_LEVEL_OPTION,
    log_format: str = LOG_FORMAT_OPTION,
    access_log: bool = ACCESS_LOG_OPTION,
) -> None:
    """Run the controller alone: it drives the registry; servers follow it."""
    from tether import apps

    logging_args = server_logging(log_format, log_level, access_log) if not once else {}
    project = project_of(ctx)
    urls = [url.strip() for url in servers.split(",") if url.strip()]
    process = apps.controller(project, servers=urls, interval=interval, lock_ttl=lock_ttl)
    if once:
        assert process.controller is not None
        for line in process.controller.once().lines() or ["nothing to do"]:
            console.print(line, soft_wrap=True)
        return
    sock, url = listen(host, port)
    announce(f"controller for {project.model_name} on {url} (hooks, /trigger, "
             f"/controller/status, /metrics); pushing to "
             f"{', '.join(urls) or 'no servers (they poll)'}", log_format)
    run_app(process.app, sock, timeout_keep_alive=project.policy.serving.keep_alive_seconds,
            **logging_args)


def up(
    ctx: typer.Context,
    host: str = typer.Option("127.0.0.1", "--host", envvar="TETHER_HOST"),
    port: int = port_option(8000, "TETHER_PORT"),
    interval: float | None = typer.Option(None, "--interval", min=0.05,
                                          help="Seconds between controller passes."),
    log_level: str = SERVER_LOG_LEVEL_OPTION,
    log_format: str = LOG_FORMAT_OPTION,
    access_log: bool = ACCESS_LOG_OPTION,
) -> None:
    """Server and controller in one process: the whole loop on the embedded default."""
    from tether import apps

    logging_args = server_logging(log_format, log_level, access_log)
    project = project_of(ctx)
    # the port opens at once; /ready says when the model is there
    process = apps.up(project, interval=interval, wait_for_model=False)
    sock, url = listen(host, port)
    announce(f"tether up: {project.model_name} on {url} "
             "(predict, feedback, metrics, dashboard at /, hooks at /hooks/*)", log_format)
    run_app(process.app, sock, timeout_keep_alive=project.policy.serving.keep_alive_seconds,
            **logging_args)


def trigger(
    ctx: typer.Context,
    github: str = typer.Option(..., "--github", help="OWNER/REPO whose workflow retrains."),
    reason: str = typer.Option("manual", "--reason"),
    event_type: str = typer.Option("model-performance-drop", "--event-type"),
    api_url: str = typer.Option(DEFAULT_API_URL, "--api-url", envvar="TETHER_GITHUB_API_URL"),
    as_json: bool = JSON_OPTION,
) -> None:
    """Send GitHub's repository_dispatch so a CI workflow retrains (the workflow in
    deploy/github/workflows/ listens for it)."""
    from tether.control.github import dispatch

    project = project_of(ctx)
    payload = {"model_name": project.model_name, "trigger_reason": reason}
    dispatch(github, os.environ.get("TETHER_GITHUB_TOKEN") or os.environ.get("GITHUB_TOKEN"),
             event_type, payload, api_url=api_url)
    project.record(EventKind.DISPATCHED, f"{event_type} to {github}: {reason}",
                   data={"repo": github, "event_type": event_type, "client_payload": payload})
    emit({"repo": github, "event_type": event_type, "client_payload": payload}, as_json,
         lambda: console.print(f"sent {event_type} to {github}"))


def register(app: typer.Typer) -> None:
    app.command()(controller)
    app.command()(up)
    app.command()(trigger)
