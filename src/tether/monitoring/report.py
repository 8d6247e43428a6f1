"""Self-contained HTML reports: figures are matplotlib PNGs embedded as base64 (no CDN,
no scripts), so a report opens offline and can be attached to a ticket.

>>> import numpy as np, pandas as pd
>>> from tether.monitoring.drift import detect_drift
>>> from tether.monitoring.profile import build_profile
>>> rng = np.random.default_rng(0)
>>> profile = build_profile(pd.DataFrame({"x": rng.normal(size=2000)}))
>>> current = pd.DataFrame({"x": rng.normal(1, 1, 500)})
>>> page = drift_html(detect_drift(profile, current), profile, current)
>>> page.startswith("<!doctype html>"), page.count("data:image/png;base64,"), "http" in page
(True, 1, False)
"""

from __future__ import annotations

import base64
import html
import io
from typing import TYPE_CHECKING, Any

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt
import numpy as np
import pandas as pd

from tether.monitoring.drift import DriftReport, FeatureDrift
from tether.monitoring.profile import (
    CategoricalProfile,
    Column,
    NumericProfile,
    Profile,
    category_counts,
    numeric_values,
)

if TYPE_CHECKING:
    from tether.tables import Columns

__all__ = ["backtest_html", "drift_html"]

STYLE = """
body{font-family:system-ui,sans-serif;margin:2em;color:#222;max-width:1100px}
table{border-collapse:collapse;margin:1em 0}td,th{border:1px solid #ccc;padding:4px 8px;
text-align:left}th{background:#f3f3f3}.bad{color:#b00020;font-weight:600}.ok{color:#1b5e20}
.muted{color:#777}figure{display:inline-block;margin:0.5em}
"""
PLOT_BINS = 40


def _png(figure: Any) -> str:
    buffer = io.BytesIO()
    figure.savefig(buffer, format="png", dpi=80, bbox_inches="tight")
    plt.close(figure)
    return "data:image/png;base64," + base64.b64encode(buffer.getvalue()).decode()


def _page(title: str, body: str) -> str:
    return (f"<!doctype html><html><head><meta charset='utf-8'><title>{html.escape(title)}"
            f"</title><style>{STYLE}</style></head><body><h1>{html.escape(title)}</h1>"
            f"{body}</body></html>")


def _fmt(value: float | None, digits: int = 4) -> str:
    return "-" if value is None or not np.isfinite(value) else f"{value:.{digits}g}"


def _numeric_plot(name: str, profile: NumericProfile, current: Column) -> str:
    values, _, _ = numeric_values(current)
    low = min(float(np.interp(0.005, profile.cdf, profile.edges)),
              float(np.quantile(values, 0.005)) if len(values) else np.inf)
    high = max(float(np.interp(0.995, profile.cdf, profile.edges)),
               float(np.quantile(values, 0.995)) if len(values) else -np.inf)
    bins = np.linspace(low, high, PLOT_BINS + 1) if high > low else np.array([low - 1, low + 1])
    reference_cdf = np.interp(bins, profile.edges, profile.cdf, left=0.0, right=1.0)
    reference = np.diff(reference_cdf)
    counts, _ = np.histogram(values, bins=bins)
    current_share = counts / max(len(values), 1)
    figure, axes = plt.subplots(figsize=(5, 3))
    centres = (bins[:-1] + bins[1:]) / 2
    width = bins[1] - bins[0]
    axes.bar(centres, reference, width=width, alpha=0.5, label="reference")
    axes.bar(centres, current_share, width=width, alpha=0.5, label="current")
    axes.set_title(name)
    axes.set_ylabel("share of rows")
    axes.legend()
    return _png(figure)


def _categorical_plot(name: str, profile: CategoricalProfile, current: Column) -> str:
    observed, _ = category_counts(current, profile.numeric)
    keys = sorted(set(profile.counts) | set(observed))[:30]
    total = max(sum(profile.counts.values()), 1)
    present = max(sum(observed.values()), 1)
    reference = [profile.counts.get(k, 0) / total for k in keys]
    now = [observed.get(k, 0) / present for k in keys]
    figure, axes = plt.subplots(figsize=(5, 3))
    positions = np.arange(len(keys))
    axes.bar(positions - 0.2, reference, width=0.4, label="reference")
    axes.bar(positions + 0.2, now, width=0.4, label="current")
    axes.set_xticks(positions, keys, rotation=45, ha="right")
    axes.set_title(name)
    axes.set_ylabel("share of rows")
    axes.legend()
    return _png(figure)


def _feature_row(f: FeatureDrift) -> str:
    verdict = ("<span class='muted'>no verdict</span>" if f.drifted is None
               else "<span class='bad'>drift</span>" if f.drifted
               else "<span class='ok'>ok</span>")
    p = _fmt(f.p_adjusted if f.p_adjusted is not None else f.p_value)
    return (f"<tr><td>{html.escape(f.name)}</td><td>{f.kind}</td><td>{f.method}</td>"
            f"<td>{_fmt(f.score)}</td><td>{p}</td><td>{_fmt(f.threshold)}</td>"
            f"<td>{verdict}</td><td>{html.escape(f.reason or '')}</td></tr>")


def drift_html(report: DriftReport, profile: Profile, current: pd.DataFrame | Columns,
               title: str = "tether drift report") -> str:
    """A table of every column and one plot per drifted column (reference vs current)."""
    share = ("not enough data" if report.share_drifted is None
             else f"{report.share_drifted:.0%} of columns drifted")
    verdict = "DRIFT" if report.drifted else "no drift"
    body = [f"<p><b>{verdict}</b>: {share} (threshold {report.share_threshold:.0%}); "
            f"{report.rows_reference} reference rows, {report.rows_current} current rows; "
            f"tests at alpha {report.alpha} with Benjamini-Hochberg correction.</p>"]
    if report.reason:
        body.append(f"<p class='muted'>{html.escape(report.reason)}</p>")
    for label, names in (("missing from the current data", report.missing_columns),
                         ("not in the reference", report.extra_columns)):
        if names:
            body.append(f"<p>Columns {label}: {html.escape(', '.join(names))}</p>")
    body.append("<table><tr><th>column</th><th>kind</th><th>method</th><th>score</th>"
                "<th>p-value (adjusted)</th><th>threshold</th><th>verdict</th><th>note</th>"
                "</tr>")
    body.extend(_feature_row(f) for f in report.features)
    body.append("</table>")
    drifted = [f for f in report.features if f.drifted]
    if drifted:
        body.append("<h2>Drifted columns</h2>")
    for f in drifted:
        feature = profile.features[f.name]
        image = (_numeric_plot(f.name, feature, current[f.name])
                 if isinstance(feature, NumericProfile)
                 else _categorical_plot(f.name, feature, current[f.name]))
        body.append(f"<figure><img alt='{html.escape(f.name)}' src='{image}'></figure>")
    return _page(title, "".join(body))


def _alarms(alarms: list[dict[str, Any]]) -> str:
    return ", ".join(f"{a['stream']} at row {a['row']}" for a in alarms)


def backtest_html(result: dict[str, Any], title: str = "tether backtest") -> str:
    """Per chunk: realized vs estimated metrics, share of drifted columns, alarms."""
    chunks = result["chunks"]
    x = [c["index"] for c in chunks]
    figure, (top, bottom) = plt.subplots(2, 1, figsize=(9, 5.5), sharex=True)
    for metric in ("accuracy", "roc_auc", "rmse"):
        realized = [c["realized"].get(metric) for c in chunks]
        estimated = [c["estimated"].get(metric) for c in chunks]
        if any(v is not None for v in realized):
            top.plot(x, [np.nan if v is None else v for v in realized], marker="o",
                     label=f"{metric} (realized)")
        if any(v is not None for v in estimated):
            top.plot(x, [np.nan if v is None else v for v in estimated], marker="x",
                     linestyle="--", label=f"{metric} (estimated)")
    top.set_ylabel("metric")
    if top.get_legend_handles_labels()[0]:
        top.legend(fontsize="small")
    shares = [c["drift"]["share_drifted"] for c in chunks]
    bottom.bar(x, [0 if s is None else s for s in shares], color="tab:orange")
    bottom.axhline(result["settings"]["share_threshold"], color="grey", linestyle=":")
    bottom.set_ylabel("share drifted")
    bottom.set_xlabel("chunk")
    for alarm in result["alarms"]:
        for axes in (top, bottom):
            axes.axvline(alarm["chunk"], color="red", alpha=0.4)
    image = _png(figure)
    rows = "".join(
        f"<tr><td>{c['index']}</td><td>{c['start_row']}-{c['end_row'] - 1}</td>"
        f"<td>{c['labels']}</td>"
        f"<td>{_fmt(c['realized'].get('accuracy', c['realized'].get('rmse')))}</td>"
        f"<td>{_fmt(c['estimated'].get('accuracy'))}</td>"
        f"<td>{_fmt(c['drift']['share_drifted'], 3)}</td>"
        f"<td>{'yes' if c['drift']['drifted'] else 'no'}</td>"
        f"<td>{html.escape(_alarms(c['alarms']))}</td>"
        "</tr>" for c in chunks)
    body = (f"<p>{result['analysis_rows']} analysis rows in {len(chunks)} chunks of "
            f"{result['chunk_size']}; {len(result['alarms'])} alarm(s).</p>"
            f"<figure><img alt='backtest' src='{image}'></figure>"
            "<table><tr><th>chunk</th><th>rows</th><th>labels</th><th>realized</th>"
            "<th>estimated accuracy</th><th>share drifted</th><th>drift</th><th>alarms</th>"
            f"</tr>{rows}</table>")
    return _page(title, body)
