"""The `tether` command: a thin shell over the library."""

from __future__ import annotations

from pathlib import Path

import typer

from tether import __version__
from tether.cli import (
    control,
    dashboard,
    demo,
    federated,
    lifecycle,
    monitoring,
    replay,
    serving,
)
from tether.cli._common import LOG_FORMAT_OPTION, Group, Options, console, quiet_libraries

__all__ = ["app", "main"]

app = typer.Typer(
    cls=Group,
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
    help="Keeps a production ML model healthy on its own.",
)


def _version(value: bool) -> None:
    if value:
        console.print(f"tether {__version__}")
        raise typer.Exit()


@app.callback()
def _root(
    ctx: typer.Context,
    config: Path | None = typer.Option(None, "--config", "-c", envvar="TETHER_CONFIG",
                                       help="Policy file (default ./tether.yaml)."),
    debug: bool = typer.Option(False, "--debug", envvar="TETHER_DEBUG",
                               help="Show tracebacks."),
    version: bool = typer.Option(False, "--version", callback=_version, is_eager=True,
                                 help="Print the version and exit."),
    log_format: str = LOG_FORMAT_OPTION,
) -> None:
    from tether.logs import configure_logging

    ctx.obj = Options(config=config, debug=debug)
    configure_logging(log_format, "debug" if debug else "warning", access_log=False)
    if not debug:
        quiet_libraries()


lifecycle.register(app)
control.register(app)
demo.register(app)
monitoring.register(app)
serving.register(app)
dashboard.register(app)
federated.register(app)
replay.register(app)


def main() -> None:
    app()
