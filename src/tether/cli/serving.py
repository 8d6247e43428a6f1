"""serve: the model server on uvicorn."""

from __future__ import annotations

from pathlib import Path

import typer

from tether.cli._common import (
    ACCESS_LOG_OPTION,
    LOG_FORMAT_OPTION,
    SERVER_LOG_LEVEL_OPTION,
    Options,
    announce,
    listen,
    port_option,
    project_of,
    run_app,
    server_logging,
)
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
                                               "registry; no policy file needed."),
    model_name: str | None = typer.Option(None, "--model-name", envvar="TETHER_MODEL_NAME",
                                          help="With --model-path and no policy file: the "
                                               "name predictions are logged under "
                                               "(default: the folder's name)."),
    log_level: str = SERVER_LOG_LEVEL_OPTION,
    log_format: str = LOG_FORMAT_OPTION,
    access_log: bool = ACCESS_LOG_OPTION,
) -> None:
    """Serve the champion (and any challenger) over HTTP: MLflow's protocol plus tether's."""
    if workers != 1:
        # metrics, batching, the prediction log and hot swaps live in one process: scale
        # out with more replicas (each scraped by Prometheus), not uvicorn workers
        raise ConfigError(f"--workers {workers}: tether serve runs one worker per process; "
                          "run more replicas behind a load balancer instead")
    from tether import apps
    from tether.config import policy_path
    from tether.project import Project

    logging_args = server_logging(log_format, log_level, access_log)
    options = ctx.find_object(Options) or Options()
    if model_path and not policy_path(options.config).is_file():
        # no policy file: serve the folder alone (no registry, so no dashboard and no
        # monitoring against a training profile)
        folder = Path(model_path)
        project = Project.for_model_folder(folder, model_name or _folder_name(folder))
        process = apps.serve_folder(project, model_path)
    else:
        project = project_of(ctx)
        # the port opens at once; /ready says when the model is there
        process = apps.serve(project, poll=not no_poll, model_path=model_path,
                             wait_for_model=False)
    sock, url = listen(host, port)
    announce(f"serving {project.model_name} on {url} "
             f"({'model folder ' + model_path if model_path else 'registry'})", log_format)
    run_app(process.app, sock, timeout_keep_alive=project.policy.serving.keep_alive_seconds,
            **logging_args)


def _folder_name(folder: Path) -> str:
    name = folder.resolve().name
    return name if name and name[0].isalnum() else "model"


def register(app: typer.Typer) -> None:
    app.command("serve")(serve)
