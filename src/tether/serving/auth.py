"""Who may call what: one authentication backend for every protected route of every app.

Modelled on Starlette's `AuthenticationBackend` + `requires`: `TokenBackend` is an
`AuthenticationBackend`; the app's middleware (`auth_middleware`) puts the scopes the
request's bearer token grants on `request.auth` once per request; a protected endpoint
is decorated with `@requires(ADMIN)` (or another scope), and a refusal is a typed error
the app's one exception table answers as `{"error": ..., "message": ...}`.

```
scope          credential                                  routes
admin          Bearer TETHER_ADMIN_TOKEN                   /admin/*, /reload-model, /trigger,
                                                           /api/auth
alertmanager   Bearer TETHER_ALERTMANAGER_TOKEN            /hooks/alertmanager
               (TETHER_ADMIN_TOKEN while that is unset)
feedback       Bearer TETHER_FEEDBACK_TOKEN; open to       /feedback
               anyone while that is unset
(signature)    X-Hub-Signature-256: HMAC-SHA256 of the     /hooks/github
               body with TETHER_GITHUB_WEBHOOK_SECRET
```

A scope whose credential is not configured refuses with 403 (`RouteDisabled`, naming the
variable to set); a missing or wrong credential gets 401 (`Unauthorized`). GitHub's
signature covers the body, so `Grants.signed_body` reads it (at most `limit` bytes,
refusing on Content-Length first) and checks the signature before anything parses it.

>>> from starlette.applications import Starlette
>>> from starlette.middleware import Middleware
>>> from starlette.responses import PlainTextResponse
>>> from starlette.routing import Route
>>> from starlette.testclient import TestClient
>>> from tether.serving.http import error_handlers
>>> @requires(ADMIN)
... async def reload(request):
...     return PlainTextResponse("reloaded")
>>> app = Starlette(routes=[Route("/admin/reload", reload, methods=["POST"])],
...                 middleware=[auth_middleware(TokenBackend(admin="s3cret"))],
...                 exception_handlers=error_handlers())
>>> client = TestClient(app)
>>> client.post("/admin/reload", headers={"Authorization": "Bearer s3cret"}).text
'reloaded'
>>> answer = client.post("/admin/reload", headers={"Authorization": "Bearer guess"})
>>> answer.status_code, answer.json()["error"]
(401, 'Unauthorized')
"""

from __future__ import annotations

import functools
import hashlib
import hmac
import inspect
import re
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any, TypeVar

from starlette.authentication import (
    AuthCredentials,
    AuthenticationBackend,
    BaseUser,
    SimpleUser,
    UnauthenticatedUser,
)
from starlette.middleware import Middleware
from starlette.requests import HTTPConnection, Request
from starlette.responses import Response
from starlette.types import ASGIApp, Receive, Scope, Send

from tether.config import Settings
from tether.errors import RouteDisabled, TetherError, Unauthorized
from tether.serving.http import read_body

__all__ = [
    "ADMIN",
    "ALERTMANAGER",
    "FEEDBACK",
    "Grants",
    "TokenAuthentication",
    "TokenBackend",
    "auth_middleware",
    "grants_of",
    "requires",
    "sign",
]

ADMIN = "admin"
ALERTMANAGER = "alertmanager"
FEEDBACK = "feedback"

SIGNATURE_HEADER = "x-hub-signature-256"
_SIGNATURE = re.compile(r"sha256=[0-9a-f]{64}")

Endpoint = TypeVar("Endpoint", bound=Callable[..., Awaitable[Response]])


def sign(secret: str, body: bytes) -> str:
    """The X-Hub-Signature-256 value GitHub sends for `body`.

    >>> sign("s3cret", b'{"a": 1}')[:20]
    'sha256=1a9fab6cd4b8c'
    """
    return "sha256=" + hmac.new(secret.encode(), body, hashlib.sha256).hexdigest()


@dataclass(frozen=True, slots=True)
class _Token:
    """One bearer-token scope: the token in effect and the variables that configure it."""

    scope: str
    token: str | None
    setting: str  # the variable to set to enable the scope
    source: str  # the variable whose value the token must match
    what: str  # how messages name the credential
    open_when_unset: bool = False


class TokenBackend(AuthenticationBackend):
    """Bearer tokens to scopes, compared in constant time; never raises, so routes that
    need no credentials are unaffected by whatever `Authorization` header a client sends."""

    def __init__(self, *, admin: str | None = None, alertmanager: str | None = None,
                 feedback: str | None = None, github_secret: str | None = None) -> None:
        self.tokens = (
            _Token(ADMIN, admin, "TETHER_ADMIN_TOKEN", "TETHER_ADMIN_TOKEN", "admin token"),
            _Token(ALERTMANAGER, alertmanager or admin, "TETHER_ALERTMANAGER_TOKEN",
                   "TETHER_ALERTMANAGER_TOKEN" if alertmanager else "TETHER_ADMIN_TOKEN",
                   "alertmanager token"),
            _Token(FEEDBACK, feedback, "TETHER_FEEDBACK_TOKEN", "TETHER_FEEDBACK_TOKEN",
                   "feedback token", open_when_unset=True),
        )
        self.github_secret = github_secret
        self._open = [t.scope for t in self.tokens if t.token is None and t.open_when_unset]
        self._anonymous = Grants(self, list(self._open), presented=False)

    @classmethod
    def from_settings(cls, settings: Settings) -> TokenBackend:
        return cls(admin=settings.admin_token, alertmanager=settings.alertmanager_token,
                   feedback=settings.feedback_token,
                   github_secret=settings.github_webhook_secret)

    async def authenticate(self, conn: HTTPConnection) -> tuple[Grants, BaseUser]:
        return self.credentials(conn.headers.get("authorization"))

    def credentials(self, authorization: str | None) -> tuple[Grants, BaseUser]:
        grants = self.grants(authorization)
        return grants, (_ADMIN_USER if ADMIN in grants.scopes else _ANONYMOUS)

    def grants(self, authorization: str | None) -> Grants:
        """The scopes an `Authorization` header value grants."""
        if not authorization:
            return self._anonymous
        scheme, _, given = authorization.partition(" ")
        if scheme.lower() != "bearer" or not given.strip():
            return self._anonymous
        presented = given.strip().encode()
        scopes = list(self._open)
        for token in self.tokens:
            if token.token is not None and hmac.compare_digest(presented, token.token.encode()):
                scopes.append(token.scope)
        return Grants(self, scopes, presented=True)

    def token(self, scope: str) -> _Token:
        for token in self.tokens:
            if token.scope == scope:
                return token
        raise ValueError(f"unknown scope {scope!r}; known: "
                         + ", ".join(t.scope for t in self.tokens))


_ANONYMOUS = UnauthenticatedUser()
_ADMIN_USER = SimpleUser(ADMIN)


class Grants(AuthCredentials):
    """What one request may do (`scopes`), and why not when it may not."""

    def __init__(self, backend: TokenBackend, scopes: list[str], *, presented: bool) -> None:
        super().__init__(scopes)
        self.backend = backend
        self.presented = presented

    def require(self, scope: str) -> None:
        """Return quietly when `scope` is granted, else raise the refusal."""
        if scope not in self.scopes:
            raise self.refusal(scope)

    def refusal(self, scope: str) -> TetherError:
        token = self.backend.token(scope)
        if token.token is None:
            return RouteDisabled(f"{token.what.removesuffix(' token')} routes are disabled: "
                                 f"set {token.setting} to enable them")
        if not self.presented:
            return Unauthorized(f"missing {token.what}: send 'Authorization: Bearer <token>' "
                                f"with the value of {token.source}")
        return Unauthorized(f"wrong {token.what}: it does not match {token.source}")

    async def signed_body(self, request: Request, limit: int) -> bytes:
        """The body of a GitHub webhook, once its X-Hub-Signature-256 is proven.

        Checked in order, each before any more work: a secret is configured (else 403),
        the header is well formed (else 401), Content-Length is within `limit` (else 413),
        then at most `limit` bytes are read and the HMAC compared (else 401). Nothing
        parses the body before this returns.
        """
        secret = self.backend.github_secret
        if secret is None:
            raise RouteDisabled("the GitHub webhook is disabled: set "
                                "TETHER_GITHUB_WEBHOOK_SECRET to enable it")
        signature = request.headers.get(SIGNATURE_HEADER, "")
        if not _SIGNATURE.fullmatch(signature):
            raise Unauthorized("missing or malformed X-Hub-Signature-256: GitHub signs the "
                               "body with the webhook secret (sha256=<64 hex digits>)")
        body = await read_body(request, limit)
        if not hmac.compare_digest(signature.encode(), sign(secret, body).encode()):
            raise Unauthorized("wrong X-Hub-Signature-256: the body was not signed with "
                               "TETHER_GITHUB_WEBHOOK_SECRET")
        return body


def grants_of(request: Request) -> Grants:
    grants = request.scope.get("auth")
    if not isinstance(grants, Grants):
        raise RuntimeError("no tether authentication on this app: build it with "
                           "tether.auth.auth_middleware(...)")
    return grants


def requires(scope: str) -> Callable[[Endpoint], Endpoint]:
    """Starlette's `requires`, answering refusals through the app's error table: 401
    without the right credential, 403 when the scope's credential is not configured."""

    def decorate(endpoint: Endpoint) -> Endpoint:
        names = list(inspect.signature(endpoint).parameters)
        if "request" not in names:
            raise TypeError(f"{endpoint.__qualname__} has no 'request' parameter")
        index = names.index("request")

        @functools.wraps(endpoint)
        async def guarded(*args: Any, **kwargs: Any) -> Response:
            request = kwargs.get("request", args[index] if index < len(args) else None)
            assert isinstance(request, Request)
            grants_of(request).require(scope)
            return await endpoint(*args, **kwargs)

        return guarded  # type: ignore[return-value]

    return decorate


class TokenAuthentication:
    """Starlette's `AuthenticationMiddleware` for a `TokenBackend`, on the hot path of every
    request: the raw `Authorization` header goes straight to the backend, without building
    a connection object, and a request without one shares one anonymous grant (with the
    body limit, 2.4-3.8 us a request where Starlette's middleware took 6.8-7.1 us:
    benchmarks/serving/edge.py).
    """

    def __init__(self, app: ASGIApp, backend: TokenBackend) -> None:
        self.app = app
        self.backend = backend

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] in ("http", "websocket"):
            header = None
            for name, value in scope["headers"]:
                if name == b"authorization":
                    header = value.decode("latin-1")
                    break
            scope["auth"], scope["user"] = self.backend.credentials(header)
        await self.app(scope, receive, send)


def auth_middleware(backend: TokenBackend) -> Middleware:
    """The middleware every tether app installs, with `backend` deciding the scopes."""
    return Middleware(TokenAuthentication, backend=backend)
