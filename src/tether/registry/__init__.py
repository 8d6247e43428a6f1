"""The one package that talks to MLflow: the registry holds all state.

Aliases `champion`, `challenger`, `previous`; version tags `tether.state`,
`tether.reason`, `tether.gate`; the model tag `tether.rollout`. Aliases are the truth,
tags follow them.

```
state.py        the state model: State, RolloutSpec, VersionInfo, RegistryState (pure)
invariants.py   what must hold: one table that names problems and plans repairs (pure)
transitions.py  promote, rollback, rollouts as ordered plans of writes (pure)
facade.py       Registry: reads the state, performs plans, opens runs, loads models
sqlite_state.py the state read from a SQLite registry file without MLflow (quick)
runs.py         training runs: log while training, register a candidate at the end
models.py       loading a version to predict; MLflow's own scoring of a model folder
client.py       MLflow clients and the translation of MLflow's errors into tether's
environment.py  MLflow's environment: quiet, and quick to fail
```

Registry writes take no lock here (this package knows no database); `tether.lifecycle`
runs each transition under the store's registry lease, checks the state it planned on,
and records the event.
"""

from typing import TYPE_CHECKING

from tether.lazy import exports
from tether.registry.environment import use_defaults

use_defaults()  # before anything imports mlflow

from tether.registry.invariants import (  # noqa: E402
    INVARIANTS,
    Evidence,
    Problem,
    find_problems,
    plan_repair,
)
from tether.registry.state import (  # noqa: E402
    CHALLENGER,
    CHAMPION,
    GATE_TAG,
    PREVIOUS,
    REASON_TAG,
    REFERENCE_DIR,
    ROLLOUT_TAG,
    STATE_TAG,
    RegistryState,
    RolloutSpec,
    State,
    VersionInfo,
)

if TYPE_CHECKING:
    from tether.registry.facade import Registry
    from tether.registry.models import (
        ColumnSpec,
        LoadedModel,
        ScoringResponse,
        load_model_dir,
        mlflow_scoring,
        mlflow_version,
    )
    from tether.registry.runs import TrainingRun

# what imports MLflow, imported when first used: reading a SQLite registry's state needs
# none of it (see sqlite_state)
_LAZY = {"Registry": "facade", "ColumnSpec": "models", "LoadedModel": "models",
         "ScoringResponse": "models", "load_model_dir": "models", "mlflow_scoring": "models",
         "mlflow_version": "models", "TrainingRun": "runs"}


__getattr__, __dir__ = exports(__name__, _LAZY)

__all__ = [
    "CHALLENGER",
    "CHAMPION",
    "GATE_TAG",
    "INVARIANTS",
    "PREVIOUS",
    "REASON_TAG",
    "REFERENCE_DIR",
    "ROLLOUT_TAG",
    "STATE_TAG",
    "ColumnSpec",
    "Evidence",
    "LoadedModel",
    "Problem",
    "Registry",
    "RegistryState",
    "RolloutSpec",
    "ScoringResponse",
    "State",
    "TrainingRun",
    "VersionInfo",
    "find_problems",
    "load_model_dir",
    "mlflow_scoring",
    "mlflow_version",
    "plan_repair",
]
