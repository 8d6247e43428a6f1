"""The federated trainer backend: tether drives a Flower run and registers its model.

Flower (SuperLink, SuperNodes, `flwr`) lives in its own environment; this package only
runs its commands and listens for the ServerApp's reports, so nothing here imports
`flwr`. What a trainer calls:

- `run_federated(ctx, build)`: one training run across the sites, every round logged into
  the candidate's MLflow run; returns `build(final arrays)`.
- `summarize_sites(project)`: every site's binned summary of its recent data, stored for
  the per-site drift trigger (`SiteWatcher`).
- `LocalFederation`: a SuperLink and SuperNodes on this machine (demo, tests, benchmarks).
"""

from tether.federated.driver import FederatedResult, run_federated
from tether.federated.environment import find_flower_bin
from tether.federated.local import LocalFederation

__all__ = ["FederatedResult", "LocalFederation", "find_flower_bin", "run_federated"]
