"""Per-site drift from the sites' own data summaries: counts per bin, never rows.

Every `federated.summary_interval_seconds` (6 h by default, as often as the blueprint
checks drift) the sites are asked, through a Flower run, for a summary of their recent
data and of the data they train on: for each numeric feature, how many values fall in
each of the champion profile's decile bins (the bins PSI uses). tether stores the
summaries and judges each site against itself (hospitals differ from each other and from
the pooled profile, so a site is never judged against the others): its recent counts
against its training counts, with the same tests and thresholds as the served traffic
(`chi2` on up to 1000 rows, Jensen-Shannon above; Benjamini-Hochberg across features;
drift when the share of drifted features passes `monitoring.drift_share_threshold`). A
summary without training counts is judged against the profile's shares. A site whose
recent data drifted fires a drift trigger scoped to it, on the rising edge, so one
wildfire season at one hospital asks for one retrain.

>>> import numpy as np, pandas as pd
>>> from tether.monitoring.profile import build_profile
>>> rng = np.random.default_rng(0)
>>> profile = build_profile(pd.DataFrame({"pm25": rng.gamma(4, 3, 5000)}))
>>> edges = summary_bins(profile)
>>> def counts(values):
...     index = np.searchsorted(edges["pm25"], values, side="left")
...     return np.bincount(index, minlength=len(edges["pm25"]) + 1).tolist()
>>> city = rng.gamma(4, 5, 2000)  # a site with more pollution than the pooled profile
>>> def summary(recent):
...     return SiteSummary("m", "h1", len(recent), 1, edges, {"pm25": counts(recent)},
...                        reference={"pm25": counts(city)})
>>> site_drift(profile, summary(rng.gamma(4, 5, 400))).drifted
False
>>> site_drift(profile, summary(rng.gamma(4, 9, 400))).drifted
True
"""

from __future__ import annotations

import json
import logging
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd

from tether.control.triggers import Trigger, TriggerKind
from tether.errors import DataError, TetherError
from tether.monitoring.drift import DriftReport, detect_drift
from tether.monitoring.profile import CategoricalProfile, NumericProfile, Profile
from tether.monitoring.reference import PROFILE_FILE
from tether.project import Project
from tether.registry import RegistryState
from tether.store import SiteSummary

__all__ = ["SiteWatcher", "champion_profile", "collect_summaries", "site_drift", "summary_bins",
           "with_site_drift"]

log = logging.getLogger("tether.federated")

SUMMARY_EVENT = "site_summaries"
SUMMARY_FAILED_EVENT = "site_summaries_failed"


def summary_bins(profile: Profile) -> dict[str, list[float]]:
    """The bins sites count their recent data in: each numeric feature's decile edges."""
    return {name: list(feature.coarse) for name, feature in profile.features.items()
            if isinstance(feature, NumericProfile) and feature.coarse}


def site_drift(profile: Profile, summary: SiteSummary, *, alpha: float = 0.05,
               share_threshold: float = 0.5) -> DriftReport:
    """One site's recent counts against its own training counts (or, without them, the
    profile's shares), feature by feature (each bin a category: `chi2`, PSI and
    Jensen-Shannon as for a categorical column)."""
    features: dict[str, CategoricalProfile] = {}
    current: dict[str, pd.Series] = {}
    for name, counts in summary.counts.items():
        reference = profile.features.get(name)
        if not isinstance(reference, NumericProfile) or \
                list(reference.coarse) != list(summary.edges.get(name, [])):
            continue  # the site counted on other bins (another champion's): not comparable
        shares = reference.coarse_shares
        if len(counts) != len(shares):
            continue
        labels = [f"bin {i}" for i in range(len(shares))]
        baseline = summary.reference.get(name)
        expected = (np.asarray(baseline, dtype=int) if baseline is not None
                    and len(baseline) == len(shares)
                    else np.round(shares * reference.count).astype(int))
        features[name] = CategoricalProfile(
            count=int(expected.sum()), missing=0,
            counts={label: int(n) for label, n in zip(labels, expected, strict=True) if n})
        current[name] = pd.Series(np.repeat(labels, np.asarray(counts, dtype=int)))
    binned = Profile(rows=profile.rows, features=dict(features))
    return detect_drift(binned, pd.DataFrame(current), alpha=alpha,
                        share_threshold=share_threshold)


def collect_summaries(project: Project) -> list[SiteSummary]:
    """Ask every site for its summary (one Flower run), store and return them.

    Raises DataError when there is no champion to bin against, TrainingError when the
    run fails (both one line)."""
    from tether.federated.driver import policy_of, report_receiver, start_run, wait_for

    federated = policy_of(project)
    state = project.registry.state()
    if state.champion is None:
        raise DataError(f"{project.model_name} has no champion yet: site summaries are "
                        "binned on the champion's training profile")
    profile = champion_profile(project, state.champion)
    bins = summary_bins(profile)

    received: dict[str, Any] = {}
    with report_receiver(federated) as receiver:
        flower, run_id = start_run(project, receiver, "summarize",
                                   {"summary-bins": json.dumps(bins)})

        def handle(report: dict[str, Any]) -> bool:
            if report["kind"] == "summaries":
                received.update(report)
                return True
            return False

        wait_for(receiver, flower, run_id, time.monotonic() + federated.run_timeout_seconds,
                 handle)
    now = time.time()
    summaries = [
        SiteSummary(model_name=project.model_name, site=site, rows=int(data["rows"]),
                    version=state.champion, edges=bins, ts=now,
                    counts={k: [int(v) for v in counts]
                            for k, counts in (data.get("counts") or {}).items() if k in bins},
                    reference={k: [int(v) for v in counts]
                               for k, counts in (data.get("reference") or {}).items()
                               if k in bins})
        for site, data in sorted((received.get("sites") or {}).items())]
    project.store.record_site_summaries(summaries)
    project.record(SUMMARY_EVENT, f"{len(summaries)} site(s) reported a summary of their "
                   f"recent data (flower run {run_id})", version=state.champion,
                   data={"sites": {s.site: s.rows for s in summaries},
                         "unanswered": received.get("unanswered", 0), "flower_run_id": run_id})
    return summaries


_profiles: dict[tuple[str, int], Profile] = {}


def champion_profile(project: Project, version: int) -> Profile:
    """The training profile of `version` (read once per process)."""
    key = (project.registry.tracking_uri + project.model_name, version)
    if key not in _profiles:
        path = project.registry.reference_artifact(version, PROFILE_FILE)
        _profiles[key] = Profile.from_dict(json.loads(path.read_text()))
    return _profiles[key]


@dataclass
class SiteWatcher:
    """Per-site drift triggers from the stored summaries; call it once per controller pass.

    When the latest summaries are older than `federated.summary_interval_seconds`, it
    collects new ones in a background thread (the pass never waits for a Flower run).
    """

    project: Project
    collect: Callable[[Project], Any] = collect_summaries
    _firing: dict[str, bool] = field(default_factory=dict)
    _worker: threading.Thread | None = None
    last: dict[str, DriftReport] = field(default_factory=dict)

    def __call__(self, state: RegistryState, now: float) -> list[Trigger]:
        federated = self.project.policy.federated
        if federated is None or not federated.site_drift or state.champion is None:
            return []
        self._maybe_collect(now, federated.summary_interval_seconds)
        if state.rollout is not None:
            return []
        champion = state.version(state.champion)
        since = champion.created_at if champion is not None else None
        summaries = [s for s in self.project.store.site_summaries(self.project.model_name,
                                                                  since=since)
                     if s.version == state.champion]
        if not summaries:
            return []
        try:
            profile = champion_profile(self.project, state.champion)
        except TetherError as exc:
            log.warning("no profile for version %s: %s", state.champion, exc)
            return []
        monitoring = self.project.policy.monitoring
        found = []
        for summary in summaries:
            report = site_drift(profile, summary, alpha=monitoring.drift_alpha,
                                share_threshold=monitoring.drift_share_threshold)
            self.last[summary.site] = report
            drifted = report.enough_data and report.drifted
            if drifted and not self._firing.get(summary.site, False):
                share = report.share_drifted or 0.0
                features = [f.name for f in report.features if f.drifted]
                found.append(Trigger(
                    TriggerKind.DRIFT,
                    f"site {summary.site}: drift share {share:.2f} > "
                    f"{monitoring.drift_share_threshold:.2f} in its summary of "
                    f"{summary.rows} recent rows ({', '.join(features)})",
                    data={"site": summary.site, "share_drifted": share,
                          "features": features, "rows": summary.rows,
                          "summary_ts": summary.ts}, ts=now))
            self._firing[summary.site] = drifted
        return found

    def _maybe_collect(self, now: float, interval: float) -> None:
        if self._worker is not None and self._worker.is_alive():
            return
        store = self.project.store
        last = store.events(self.project.model_name,
                            kinds=[SUMMARY_EVENT, SUMMARY_FAILED_EVENT], limit=1)
        if last and now - last[0].ts < interval:
            return
        self._worker = threading.Thread(target=self._collect, name="tether-site-summaries",
                                        daemon=True)
        self._worker.start()

    def _collect(self) -> None:
        try:
            self.collect(self.project)
        except TetherError as exc:
            log.warning("site summaries failed: %s", exc)
            try:
                self.project.record(SUMMARY_FAILED_EVENT, str(exc))
            except TetherError:
                log.exception("cannot record the failed summaries")


Watch = Callable[[RegistryState, float], list[Trigger]]


def with_site_drift(project: Project, watch: Watch | None) -> Watch | None:
    """`watch` plus the per-site drift triggers when the policy has a federated trainer
    with `site_drift` on; `watch` unchanged otherwise."""
    federated = project.policy.federated
    if federated is None or not federated.site_drift:
        return watch
    sites = SiteWatcher(project)
    if watch is None:
        return sites

    def both(state: RegistryState, now: float) -> list[Trigger]:
        # a site's trigger first: it names where the data moved
        return [*sites(state, now), *watch(state, now)]

    return both
