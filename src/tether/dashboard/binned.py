"""Metrics from score histograms: what the store sums per score bin is all they need.

ROC AUC from labeled rows counts pairs inside one bin as ties (half), so it is within
the share of same-bin pairs of the exact value; with 100 bins that is a few
thousandths on real scores. Confidence-based estimates (see `estimate`) take each
bin's rows as positives with probability equal to their mean score.

>>> positives = {90: 8, 70: 2, 30: 1}
>>> negatives = {70: 1, 30: 5, 10: 4}
>>> round(roc_auc_from_bins(positives, negatives), 4)
0.9591
>>> counts, sums = {90: 10, 20: 10}, {90: 9.0, 20: 2.0}
>>> {k: round(v, 3) for k, v in estimate_from_bins(counts, sums).items()}
{'accuracy': 0.85, 'precision': 0.9, 'recall': 0.818, 'f1': 0.857, 'roc_auc': 0.854}
"""

from __future__ import annotations

from collections.abc import Mapping

__all__ = ["ESTIMABLE_FROM_BINS", "estimate_from_bins", "roc_auc_from_bins"]

ESTIMABLE_FROM_BINS = frozenset({"accuracy", "precision", "recall", "f1", "roc_auc"})
_THRESHOLD_BIN = 50  # bins are 1/100 wide: bin 50 starts at score 0.5


def roc_auc_from_bins(positives: Mapping[int, float], negatives: Mapping[int, float],
                      ) -> float | None:
    """P(score of a positive > score of a negative), same-bin pairs counted half."""
    total_pos, total_neg = sum(positives.values()), sum(negatives.values())
    if total_pos <= 0 or total_neg <= 0:
        return None
    below = 0.0  # negatives in lower bins
    wins = 0.0
    for index in sorted(set(positives) | set(negatives)):
        pos, neg = positives.get(index, 0.0), negatives.get(index, 0.0)
        wins += pos * (below + neg / 2)
        below += neg
    return float(wins / (total_pos * total_neg))


def estimate_from_bins(counts: Mapping[int, int], score_sums: Mapping[int, float],
                       ) -> dict[str, float]:
    """Expected accuracy, precision, recall, F1 (threshold 0.5) and ROC AUC."""
    total = sum(counts.values())
    if total == 0:
        return {}
    tp = fp = fn = tn = 0.0
    expected_pos: dict[int, float] = {}
    expected_neg: dict[int, float] = {}
    for index, count in counts.items():
        pos = score_sums.get(index, 0.0)
        neg = count - pos
        expected_pos[index], expected_neg[index] = pos, neg
        if index >= _THRESHOLD_BIN:
            tp, fp = tp + pos, fp + neg
        else:
            fn, tn = fn + pos, tn + neg
    precision = tp / (tp + fp) if tp + fp > 0 else 0.0
    recall = tp / (tp + fn) if tp + fn > 0 else 0.0
    found = {
        "accuracy": (tp + tn) / total,
        "precision": precision,
        "recall": recall,
        "f1": 2 * precision * recall / (precision + recall) if precision + recall else 0.0,
    }
    auc = roc_auc_from_bins(expected_pos, expected_neg)
    if auc is not None:
        found["roc_auc"] = auc
    return {k: float(v) for k, v in found.items()}
