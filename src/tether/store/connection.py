"""Opening the database and speaking to it: engines, connections whose errors come out as
StoreError, chunked IN lists."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import sqlalchemy as sa
from sqlalchemy.exc import SQLAlchemyError
from sqlalchemy.pool import StaticPool

from tether.errors import StoreError

__all__ = ["CHUNK", "Database", "Translated", "first_line", "in_chunks", "open_engine",
           "paramstyle_marker", "safe_url"]

CHUNK = 500  # ids per IN (...) list


def open_engine(url: str) -> sa.Engine:
    if url.startswith("sqlite"):
        in_memory = url in ("sqlite://", "sqlite:///:memory:")
        engine = sa.create_engine(
            url,
            connect_args={"check_same_thread": False, "timeout": 30},
            poolclass=StaticPool if in_memory else None,
        )

        @sa.event.listens_for(engine, "connect")
        def _pragmas(dbapi_connection: Any, _record: Any) -> None:
            cursor = dbapi_connection.cursor()
            if not in_memory:
                cursor.execute("PRAGMA journal_mode=WAL")
            cursor.execute("PRAGMA synchronous=NORMAL")
            cursor.close()

        return engine
    return sa.create_engine(url, pool_pre_ping=True)


class Database:
    """One opened database, as every part of the store uses it."""

    def __init__(self, url: str) -> None:
        self.url = url
        try:
            self.engine = open_engine(url)
        except (SQLAlchemyError, ImportError) as exc:
            raise StoreError(f"store {safe_url(url)}: cannot open ({exc.__class__.__name__}: "
                             f"{first_line(exc)})") from exc

    def connect(self) -> Translated:
        """A connection for reads."""
        return Translated(self.engine, begin=False, url=self.url)

    def begin(self) -> Translated:
        """A connection inside one transaction, committed when the block ends."""
        return Translated(self.engine, begin=True, url=self.url)

    @property
    def dialect(self) -> str:
        return str(self.engine.dialect.name)


class Translated:
    """A connection whose SQLAlchemy errors come out as StoreError."""

    def __init__(self, engine: sa.Engine, *, begin: bool, url: str) -> None:
        self._engine = engine
        self._begin = begin
        self._url = url
        self._context: Any = None

    def __enter__(self) -> sa.Connection:
        try:
            self._context = self._engine.begin() if self._begin else self._engine.connect()
            return self._context.__enter__()
        except SQLAlchemyError as exc:
            raise StoreError(f"store {safe_url(self._url)}: {first_line(exc)}") from exc

    def __exit__(self, exc_type: Any, exc: Any, tb: Any) -> None:
        try:
            self._context.__exit__(exc_type, exc, tb)
        except SQLAlchemyError as error:
            raise StoreError(f"store {safe_url(self._url)}: {first_line(error)}") from error
        if isinstance(exc, SQLAlchemyError):
            raise StoreError(f"store {safe_url(self._url)}: {first_line(exc)}") from exc


def in_chunks(items: list[Any]) -> Iterator[list[Any]]:
    for start in range(0, len(items), CHUNK):
        yield items[start:start + CHUNK]


def paramstyle_marker(engine: sa.Engine) -> str:
    style = engine.dialect.paramstyle
    if style == "qmark":
        return "?"
    if style in ("format", "pyformat"):
        return "%s"
    raise StoreError(f"store: the {engine.dialect.name} driver's parameter style "
                     f"{style!r} is not supported; use SQLite or PostgreSQL (psycopg)")


def first_line(exc: BaseException) -> str:
    return (str(exc).strip().splitlines() or [type(exc).__name__])[0]


def safe_url(url: str) -> str:
    """The URL without its password, for messages."""
    try:
        return sa.make_url(url).render_as_string(hide_password=True)
    except sa.exc.ArgumentError:
        return "<invalid url>"
