"""What every command shares: the project, output as text or JSON, errors as exit codes."""

from __future__ import annotations

import json
import socket
import sys
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

import typer
from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn
from rich.table import Table
from typer._click.exceptions import NoArgsIsHelpError, UsageError
from typer.core import TyperGroup, TyperOption
from typer.exceptions import TyperException

from tether.errors import ConfigError, TetherError

if TYPE_CHECKING:
    from tether.project import Project
    from tether.store import Event

__all__ = [
    "ACCESS_LOG_OPTION",
    "JSON_OPTION",
    "LOG_FORMAT_OPTION",
    "SERVER_LOG_LEVEL_OPTION",
    "Group",
    "Options",
    "announce",
    "check_output_file",
    "console",
    "emit",
    "err_console",
    "events_table",
    "listen",
    "port_option",
    "progress_bar",
    "project_of",
    "quiet_libraries",
    "run_app",
    "server_logging",
]

console = Console(highlight=False)
err_console = Console(stderr=True, highlight=False)

JSON_OPTION = typer.Option(False, "--json", help="Print one JSON document for scripts.")
LOG_FORMAT_OPTION = typer.Option("text", "--log-format", envvar="TETHER_LOG_FORMAT",
                                 help="Log lines for people (text) or one JSON object per "
                                      "line for a log pipeline (json).")
ACCESS_LOG_OPTION = typer.Option(True, "--access-log/--no-access-log",
                                 envvar="TETHER_ACCESS_LOG",
                                 help="Log every HTTP request: method, path, status, "
                                      "latency, model version and route (no bodies).")
SERVER_LOG_LEVEL_OPTION = typer.Option("info", "--log-level", envvar="TETHER_LOG_LEVEL",
                                       help="Level of tether's own log records.")

UNEXPECTED = 1
USAGE = 2


@dataclass
class Options:
    config: Path | None = None
    debug: bool = False


# options of the `tether` command that may also be written after the subcommand
ROOT_FLAGS = ("--debug",)
ARGS = "tether.args"  # the context's meta key for the command line as parsed


class Group(TyperGroup):
    """Turns tether's errors into one line on stderr and the error's exit code (a JSON
    document on stdout under `--json`); takes `--debug` after the subcommand too; shows
    flags without a type."""

    def get_command(self, ctx: Any, cmd_name: str) -> Any:
        command = super().get_command(ctx, cmd_name)
        if command is not None and command.short_help is None and command.help:
            # Typer's rich listing keeps a docstring's line breaks, which left one or two
            # words on a line of their own in `tether --help`
            first = command.help.split("\n\n")[0].partition("\f")[0]
            command.short_help = " ".join(first.split())
        return command

    def parse_args(self, ctx: Any, args: list[str]) -> list[str]:
        args = _root_flags_first(args)
        ctx.meta[ARGS] = list(args)
        try:
            return super().parse_args(ctx, args)
        except NoArgsIsHelpError:
            raise
        except UsageError as exc:
            _fail(ctx, _usage_message(exc), "UsageError", USAGE)
            raise  # pragma: no cover - _fail always exits

    def invoke(self, ctx: Any) -> Any:
        try:
            return super().invoke(ctx)
        except NoArgsIsHelpError:
            raise
        except UsageError as exc:
            _fail(ctx, _usage_message(exc), "UsageError", USAGE)
        except (typer.Exit, typer.Abort, TyperException, BrokenPipeError):
            raise  # a closed pipe (`tether ... | head`): Click ends quietly
        except TetherError as exc:
            if _debug(ctx):
                raise
            _fail(ctx, str(exc), type(exc).__name__, exc.exit_code)
        except Exception as exc:
            if _debug(ctx):
                raise
            message = str(exc).strip().splitlines()[0] if str(exc).strip() else ""
            _fail(ctx, f"unexpected {type(exc).__name__}: {message} (run with --debug for the "
                  "traceback)", type(exc).__name__, UNEXPECTED)


def _usage_message(exc: UsageError) -> str:
    """Click's usage error as one line: what was wrong, where the allowed values are.
    `Invalid value for '--to': Input should be a valid integer (see `tether rollback
    --help`)`."""
    message = " ".join(exc.format_message().split())
    # the program is `tether` however it was started (`python -m tether`, a test runner)
    words = exc.ctx.command_path.split()[1:] if exc.ctx is not None else []
    return f"{message} (see `{' '.join(['tether', *words])} --help`)"


def _fail(ctx: Any, message: str, kind: str, code: int) -> None:
    """One line on stderr; under `--json` also one JSON document on stdout, so a script
    reading stdout gets the error it can parse, with the exit code."""
    args = ctx.meta.get(ARGS, [])
    if "--json" in args[:args.index("--") if "--" in args else len(args)]:
        sys.stdout.write(json.dumps({"error": {"message": message, "type": kind,
                                               "exit_code": code}}) + "\n")
    err_console.print(f"[red]error:[/red] {message}", soft_wrap=True)
    raise typer.Exit(code) from None


def _root_flags_first(args: list[str]) -> list[str]:
    """`tether status --debug` as `tether --debug status` (nothing after `--` moves)."""
    end = args.index("--") if "--" in args else len(args)
    moved = [a for a in args[:end] if a in ROOT_FLAGS]
    if not moved:
        return args
    return [*moved, *(a for a in args[:end] if a not in ROOT_FLAGS), *args[end:]]


def _flag_type(self: TyperOption, ctx: Any) -> str | None:
    """No type beside a flag in the help: `--json`, not `--json <bool>`."""
    return None if self.is_flag else _option_type(self, ctx)


# Typer shows every option's type, `<bool>` for flags too, and builds the options (help's
# included) itself, so its option class is where the one exception can go.
_option_type = TyperOption.display_type_rich
TyperOption.display_type_rich = _flag_type  # type: ignore[method-assign]


def check_output_file(path: Path | None, option: str = "--html") -> None:
    """Refuse, before any work, an output file that could not be written: its folder
    missing or not writable, or the path itself a folder. ConfigError (exit 2)."""
    if path is None:
        return
    import os

    folder = path.parent if str(path.parent) else Path(".")
    if path.is_dir():
        raise ConfigError(f"{option} {path}: is a folder; pass a file path such as "
                          f"{path / 'report.html'}")
    if not folder.is_dir():
        raise ConfigError(f"{option} {path}: the folder {folder} does not exist; create it "
                          "or pass a path in an existing folder")
    if not os.access(folder, os.W_OK):
        raise ConfigError(f"{option} {path}: the folder {folder} is not writable; pass a "
                          "path in a folder you can write in")


def port_option(default: int, envvar: str) -> Any:
    return typer.Option(default, "--port", envvar=envvar, min=0, max=65535,
                        help="Port to listen on (0: any free port; the one taken is printed).")


def listen(host: str, port: int) -> tuple[socket.socket, str]:
    """The bound socket for `--host`/`--port` and the URL it answers on (the real port
    when `--port 0`)."""
    from tether.net import listening_socket

    sock = listening_socket(host, port)
    shown = "127.0.0.1" if host in ("0.0.0.0", "::", "") else host
    shown = f"[{shown}]" if ":" in shown else shown
    return sock, f"http://{shown}:{sock.getsockname()[1]}"


def run_app(app: Any, sock: socket.socket, **options: Any) -> None:
    """uvicorn on an already bound socket: no request log of its own (tether writes
    one), no proxy headers; `options` are uvicorn.Config's (keep-alive, logging)."""
    import uvicorn

    config = uvicorn.Config(app, **{"log_level": "warning", "access_log": False,
                                    "proxy_headers": False, **options})
    uvicorn.Server(config).run(sockets=[sock])


def quiet_libraries() -> None:
    """MLflow and friends log and warn freely; a CLI user wants tether's lines only."""
    import logging
    import warnings

    from tether.logs import quiet_retries_and_setup

    warnings.filterwarnings("ignore")
    quiet_retries_and_setup()
    for name in ("mlflow", "alembic", "urllib3", "git"):
        logging.getLogger(name).setLevel(logging.ERROR)


def announce(message: str, log_format: str) -> None:
    """A server's startup line: printed for people, a log record in a JSON log."""
    if log_format == "json":
        import logging

        logging.getLogger("tether.cli").warning(message)
    else:
        err_console.print(message, soft_wrap=True)


def server_logging(log_format: str, level: str, access_log: bool) -> dict[str, Any]:
    """Set up logging for a server process; returns uvicorn's logging arguments (its
    records then go through tether's handler, in the same format)."""
    from tether.logs import configure_logging

    configure_logging(log_format, level, access_log=access_log)
    return {"log_config": None, "log_level": level.lower(), "access_log": False}


def _debug(ctx: Any) -> bool:
    options = ctx.find_object(Options)
    return bool(options and options.debug)


def progress_bar() -> Progress:
    """A bar on stderr; on a terminal it redraws in place, elsewhere (CI logs, pipes) it
    prints a plain line whenever its description changes."""
    if err_console.is_terminal:
        return Progress(TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(),
                        TimeElapsedColumn(), console=err_console, transient=True)
    return _PlainProgress()


class _PlainProgress(Progress):
    def __init__(self) -> None:
        super().__init__(console=err_console, disable=True)
        self._said: dict[Any, str] = {}

    def update(self, task_id: Any, **fields: Any) -> None:
        super().update(task_id, **fields)
        description = fields.get("description")
        if description is not None and self._said.get(task_id) != description:
            self._said[task_id] = description
            err_console.print(description, soft_wrap=True)


def project_of(ctx: typer.Context) -> Project:
    from tether.project import Project

    options = ctx.find_object(Options) or Options()
    return Project.open(options.config)


def events_table(events: Iterable[Event], title: str | None = None) -> Table:
    """The event log as people read it: time, kind, version, reason."""
    table = Table(title=title)
    for column in ("#", "time (UTC)", "event", "version", "reason"):
        table.add_column(column)
    for event in events:
        table.add_row(str(event.id), datetime.fromtimestamp(event.ts, tz=UTC)
                      .strftime("%Y-%m-%d %H:%M:%S"), event.kind,
                      str(event.version) if event.version is not None else "-", event.reason)
    return table


def emit(data: Any, as_json: bool, render: Callable[[], None]) -> None:
    """JSON for scripts or the rendered view for people."""
    if as_json:
        sys.stdout.write(json.dumps(data, indent=2, sort_keys=True, default=str) + "\n")
    else:
        render()
