"""The ServerApp: runs on the platform, next to the SuperLink; never sees a row.

tether starts it with `flwr run` and a run config that says what to do (`mode`):

- `train`: wait for the sites (`expected-sites` within `join-timeout`), pool feature
  statistics, then `num-server-rounds` rounds of FedAvg (McMahan et al. 2017,
  https://arxiv.org/abs/1602.05629). After every round it reports the global arrays and
  each site's numbers to tether; at the end, the final arrays. A round in which fewer
  than `min-sites` sites return an update fails the run with a one-line reason that
  names the sites that dropped.
- `summarize`: ask every connected site for a binned summary of its recent data and of
  the data it trains on (counts per bin of the champion's bins) and report them, for
  tether's per-site drift check.
"""

from __future__ import annotations

import time
from collections.abc import Iterable

import numpy as np
from flwr.app import Array, ArrayRecord, ConfigRecord, Context, Message, MessageType, RecordDict
from flwr.serverapp import Grid, ServerApp
from flwr.serverapp.strategy import FedAvg

from health_fl.model import initial_arrays
from health_fl.report import Reporter, encode_arrays

app = ServerApp()

POLL_SECONDS = 0.5
MIN_SCALE = 1e-9


class FederationError(RuntimeError):
    """The run cannot go on; the message is the one line tether reports."""


def _site_of(reply: Message, sites: dict[int, str]) -> str:
    content = reply.content if not reply.has_error() else None
    if content is not None and "site" in content:
        return str(content["site"]["site"])
    return sites.get(reply.metadata.src_node_id, f"node-{reply.metadata.src_node_id}")


def _metrics(reply: Message) -> dict[str, float]:
    record = reply.content["metrics"]
    return {key: float(value) for key, value in record.items()
            if isinstance(value, int | float)}


class ReportingFedAvg(FedAvg):
    """FedAvg that checks participation each round and reports every site's numbers."""

    def __init__(self, *, sites: dict[int, str], rounds: int, min_sites: int,
                 reporter: Reporter,
                 **kwargs) -> None:
        super().__init__(**kwargs)
        self.sites = sites
        self.rounds = rounds
        self.min_sites = min_sites
        self.reporter = reporter
        self.sampled: list[int] = []
        self.dropped: dict[str, str] = {}
        self.round_sites: list[dict] = []
        self.arrays: ArrayRecord | None = None

    def configure_train(self, server_round: int, arrays: ArrayRecord, config: ConfigRecord,
                        grid: Grid) -> Iterable[Message]:
        # only the sites still in the federation: one that left is not asked again
        messages = [m for m in super().configure_train(server_round, arrays, config, grid)
                    if self.sites.get(m.metadata.dst_node_id) not in self.dropped]
        self.sampled = [m.metadata.dst_node_id for m in messages]
        return messages

    def configure_evaluate(self, server_round: int, arrays: ArrayRecord,
                           config: ConfigRecord, grid: Grid) -> Iterable[Message]:
        # each train reply scores the global model it received; only the final model
        # needs its own evaluation round
        if server_round < self.rounds:
            return []
        return [m for m in super().configure_evaluate(server_round, arrays, config, grid)
                if self.sites.get(m.metadata.dst_node_id) not in self.dropped]

    def aggregate_train(self, server_round: int, replies: Iterable[Message]):
        replies = list(replies)
        answered = {r.metadata.src_node_id for r in replies if not r.has_error()}
        for reply in replies:
            if reply.has_error():
                self.dropped[_site_of(reply, self.sites)] = (
                    f"round {server_round}: {reply.error.reason}")
        for node in self.sampled:
            site = self.sites.get(node, f"node-{node}")
            if node not in answered and site not in self.dropped:
                self.dropped[site] = f"round {server_round}: no reply within the round timeout"
        if len(answered) < self.min_sites:
            names = sorted(self.sites.get(n, f"node-{n}") for n in answered)
            raise FederationError(
                f"round {server_round}: {len(answered)} of {len(self.sampled)} sites returned "
                f"an update ({', '.join(names) or 'none'}), fewer than min_sites "
                f"{self.min_sites}; dropped: {', '.join(sorted(self.dropped))}")
        self.round_sites = [
            {"site": _site_of(r, self.sites), "phase": "train", **_metrics(r)}
            for r in replies if not r.has_error()]
        arrays, metrics = super().aggregate_train(server_round, replies)
        self.arrays = arrays
        return arrays, metrics

    def aggregate_evaluate(self, server_round: int, replies: Iterable[Message]):
        replies = list(replies)
        if not replies and server_round < self.rounds:
            self._report(server_round, [])
            return None
        evaluated = [{"site": _site_of(r, self.sites), "phase": "evaluate", **_metrics(r)}
                     for r in replies if not r.has_error()]
        metrics = super().aggregate_evaluate(server_round, replies) if evaluated else None
        self._report(server_round, evaluated)
        return metrics

    def _report(self, server_round: int, evaluated: list[dict]) -> None:
        assert self.arrays is not None
        self.reporter.send({
            "kind": "round", "round": server_round,
            "sites": self.round_sites + evaluated,
            "dropped": self.dropped,
            "arrays": encode_arrays({k: v.numpy() for k, v in self.arrays.items()}),
        })


def _wait_for_sites(grid: Grid, expected: int, minimum: int, timeout: float) -> list[int]:
    deadline = time.monotonic() + timeout
    while True:
        nodes = sorted(grid.get_node_ids())
        if len(nodes) >= expected or time.monotonic() >= deadline:
            break
        time.sleep(POLL_SECONDS)
    if len(nodes) < minimum:
        raise FederationError(f"{len(nodes)} site(s) connected within {timeout:g} s, fewer "
                              f"than min_sites {minimum}")
    return nodes


def _query(grid: Grid, nodes: list[int], config: dict, timeout: float) -> list[Message]:
    messages = [Message(content=RecordDict({"config": ConfigRecord(config)}),
                        message_type=MessageType.QUERY, dst_node_id=node) for node in nodes]
    return list(grid.send_and_receive(messages, timeout=timeout))


def _pooled_statistics(replies: list[Message], features: int) -> tuple[np.ndarray, np.ndarray]:
    total = 0.0
    sums = np.zeros(features)
    squares = np.zeros(features)
    for reply in replies:
        metrics = reply.content["metrics"]
        total += float(metrics["num-examples"])
        sums += np.asarray(metrics["sum"], dtype=np.float64)
        squares += np.asarray(metrics["sumsq"], dtype=np.float64)
    mean = sums / total
    variance = np.maximum(squares / total - mean**2, 0.0)
    return mean, np.maximum(np.sqrt(variance), MIN_SCALE)


def _train(grid: Grid, config: dict, reporter: Reporter) -> None:
    min_sites = int(config["min-sites"])
    timeout = float(config["round-timeout"])
    expected = max(int(config.get("expected-sites", min_sites)), min_sites)
    nodes = _wait_for_sites(grid, expected, min_sites, float(config.get("join-timeout", 60.0)))
    features = str(config["features"]).split(",")
    replies = _query(grid, nodes, {"action": "stats"}, timeout)
    answered = [r for r in replies if not r.has_error()]
    sites = {r.metadata.src_node_id: _site_of(r, {}) for r in answered}
    if len(answered) < min_sites:
        raise FederationError(f"{len(answered)} of {len(nodes)} sites answered the statistics "
                              f"query, fewer than min_sites {min_sites}")
    reporter.send({"kind": "sites", "sites": sorted(sites.values())})
    mean, scale = _pooled_statistics(answered, len(features))
    start = ArrayRecord({name: Array(np.ascontiguousarray(value))
                         for name, value in initial_arrays(mean, scale).items()})
    strategy = ReportingFedAvg(
        sites=sites, rounds=int(config["num-server-rounds"]), min_sites=min_sites,
        reporter=reporter,
        fraction_train=1.0, fraction_evaluate=1.0, min_train_nodes=min_sites,
        min_evaluate_nodes=min_sites, min_available_nodes=min_sites)
    result = strategy.start(grid=grid, initial_arrays=start,
                            num_rounds=int(config["num-server-rounds"]), timeout=timeout)
    reporter.send({"kind": "final", "rounds": int(config["num-server-rounds"]),
                   "dropped": strategy.dropped,
                   "arrays": encode_arrays({k: v.numpy() for k, v in result.arrays.items()})})


def _summarize(grid: Grid, config: dict, reporter: Reporter) -> None:
    timeout = float(config["round-timeout"])
    expected = int(config.get("expected-sites", 1))
    nodes = _wait_for_sites(grid, expected, 1, float(config.get("join-timeout", 60.0)))
    replies = _query(grid, nodes, {"action": "summary", "bins": str(config["summary-bins"])},
                     timeout)
    summaries = {}
    for reply in replies:
        if reply.has_error():
            continue
        metrics = reply.content["metrics"]
        summaries[_site_of(reply, {})] = {
            "rows": int(metrics["rows"]),
            "counts": {key.split("/", 1)[1]: [int(v) for v in value]
                       for key, value in metrics.items() if key.startswith("counts/")},
            "reference": {key.split("/", 1)[1]: [int(v) for v in value]
                          for key, value in metrics.items() if key.startswith("reference/")},
        }
    reporter.send({"kind": "summaries", "sites": summaries,
                   "unanswered": len(nodes) - len(summaries)})


@app.main()
def main(grid: Grid, context: Context) -> None:
    config = dict(context.run_config)
    reporter = Reporter(str(config.get("report-url", "")), str(config.get("report-token", "")))
    try:
        if config.get("mode") == "summarize":
            _summarize(grid, config, reporter)
        else:
            _train(grid, config, reporter)
    except FederationError as exc:
        reporter.send({"kind": "failed", "reason": str(exc)})
        raise
    except Exception as exc:
        reporter.send({"kind": "failed", "reason": f"{type(exc).__name__}: {exc}"})
        raise
