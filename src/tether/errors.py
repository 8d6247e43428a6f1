"""Every error tether raises on purpose.

```
TetherError                      exit 1, HTTP 500 unless a subclass says otherwise
├── ConfigError                  exit 2   bad tether.yaml, bad environment
├── DataError                    exit 2   missing or unreadable data
├── TrainingError                exit 3   the trainer failed or returned no model
├── RegistryError                exit 4   MLflow could not do what was asked
│   ├── RegistryUnavailable      exit 4   MLflow is not reachable
│   ├── ModelNotFound            exit 4   HTTP 404
│   ├── VersionNotFound          exit 4   HTTP 404
│   ├── InvalidTransition        exit 5   HTTP 409  e.g. promoting a rejected version
│   ├── NothingToRollBack        exit 5   HTTP 409
│   └── RegistryConflict         exit 7   HTTP 409  another write came first; retry
├── StoreError                   exit 6   the database failed
├── InputError                   exit 2   HTTP 400  bad request input (serving)
│   ├── UnsupportedMediaType     HTTP 415
│   └── InputRefused             HTTP 400  refused on every route, MLflow's protocol too
│       ├── PayloadTooLarge      HTTP 413  over the body, row or label limits
│       ├── PayloadTooDeep       HTTP 400  JSON nested deeper than the parser's bound
│       └── AmbiguousValue       HTTP 400  a value MLflow would silently misread
├── Unauthorized                 HTTP 401  missing or wrong credentials
├── RouteDisabled                HTTP 403  the route's credential is not configured
├── ControllerUnavailable        HTTP 503  no controller to hand a trigger to
└── ModelNotReady                HTTP 503  no model loaded yet
    └── PredictionFailed         HTTP 503  the champion's model call failed
```

The CLI maps these to exit codes, the server to HTTP responses; both read
`exit_code` and `status_code` from the class, so the table lives here.
"""

from __future__ import annotations

__all__ = [
    "AmbiguousValue",
    "ConfigError",
    "ControllerUnavailable",
    "DataError",
    "InputError",
    "InputRefused",
    "InvalidTransition",
    "ModelNotFound",
    "ModelNotReady",
    "NothingToRollBack",
    "PayloadTooDeep",
    "PayloadTooLarge",
    "PredictionFailed",
    "ReferenceMissing",
    "RegistryConflict",
    "RegistryError",
    "RegistryUnavailable",
    "RouteDisabled",
    "StoreError",
    "TetherError",
    "TrainingError",
    "Unauthorized",
    "UnsupportedMediaType",
    "VersionNotFound",
]


class TetherError(Exception):
    """Base of every error tether raises on purpose."""

    exit_code: int = 1
    status_code: int = 500

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message

    def __str__(self) -> str:
        return self.message

    def __repr__(self) -> str:
        return f"{type(self).__name__}({self.message!r})"


class ConfigError(TetherError):
    exit_code = 2
    status_code = 400


class DataError(TetherError):
    exit_code = 2
    status_code = 400


class ReferenceMissing(DataError):
    """A version has no reference artifact (profile, holdout): it was registered by plain
    MLflow and not adopted. What needs it degrades, and says so in one line."""


class TrainingError(TetherError):
    exit_code = 3


class RegistryError(TetherError):
    exit_code = 4
    status_code = 502


class RegistryUnavailable(RegistryError):
    status_code = 503


class ModelNotFound(RegistryError):
    status_code = 404


class VersionNotFound(RegistryError):
    status_code = 404


class InvalidTransition(RegistryError):
    exit_code = 5
    status_code = 409


class NothingToRollBack(RegistryError):
    exit_code = 5
    status_code = 409


class RegistryConflict(RegistryError):
    """The registry changed between the read a write was planned on and the write, or
    another write held the registry too long: nothing was written; run it again."""

    exit_code = 7
    status_code = 409


class StoreError(TetherError):
    exit_code = 6
    status_code = 503


class InputError(TetherError):
    exit_code = 2
    status_code = 400


class InputRefused(InputError):
    """Input tether answers itself on every route: never handed to MLflow's parser, which
    would crash on it or read it wrong."""


class PayloadTooLarge(InputRefused):
    status_code = 413


class PayloadTooDeep(InputRefused):
    pass


class AmbiguousValue(InputRefused):
    pass


class ModelNotReady(TetherError):
    status_code = 503


class UnsupportedMediaType(InputError):
    status_code = 415


class Unauthorized(TetherError):
    status_code = 401


class RouteDisabled(TetherError):
    status_code = 403


class ControllerUnavailable(TetherError):
    status_code = 503


class PredictionFailed(ModelNotReady):
    status_code = 503
