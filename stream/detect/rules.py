"""From a closed window's statistics to findings: which rule of :class:`DriftRules` a signal broke.

Each finding becomes one alert (see :class:`driftwire.stream.alert.stage.AlertStage`); its
``statistic`` is the alert's ``detector`` field, so a window alert reads like a detector's.
"""

from __future__ import annotations

from dataclasses import dataclass

from driftwire.stream.settings import DriftRules

#: window statistics exported as driftwire_drift_statistic (detector label = the statistic)
GAUGED = ("psi", "js_distance", "kl_divergence", "hellinger", "ks", "ks_pvalue", "wasserstein", "wasserstein_std",
          "chi_square", "chi_square_pvalue")


#: the rule field a gauged statistic is compared with (PSI: its warning level)
_THRESHOLDS = {"psi": "psi_warning", "ks_pvalue": "ks_pvalue", "chi_square_pvalue": "chi_square_pvalue",
               "js_distance": "js_distance", "hellinger": "hellinger", "kl_divergence": "kl_divergence",
               "wasserstein_std": "wasserstein_std"}


def threshold_of(rules: DriftRules, statistic: str) -> float | None:
    """The threshold a window statistic is compared with, for driftwire_drift_threshold; None
    when no rule reads it or the rule is off."""
    field = _THRESHOLDS.get(statistic)
    return None if field is None else getattr(rules, field)


@dataclass(frozen=True)
class Finding:
    statistic: str
    kind: str  # data_drift, prediction_drift or data_quality
    severity: str
    value: float
    threshold: float


def drift_findings(stats: dict, rules: DriftRules, kind: str) -> list[Finding]:
    """Distribution rules on one signal's window (``kind``: data_drift or prediction_drift)."""
    if stats.get("count", 0) < rules.min_samples or ("psi" not in stats):
        return []
    found = []
    psi = stats["psi"]
    if rules.psi_critical is not None and psi >= rules.psi_critical:
        found.append(Finding("psi", kind, "critical", psi, rules.psi_critical))
    elif rules.psi_warning is not None and psi >= rules.psi_warning:
        found.append(Finding("psi", kind, "warning", psi, rules.psi_warning))
    if ("ks" in stats and rules.ks_pvalue is not None and stats["ks_pvalue"] < rules.ks_pvalue
            and stats["ks"] >= rules.ks_min_statistic):
        found.append(Finding("ks", kind, "critical", stats["ks_pvalue"], rules.ks_pvalue))
    if ("chi_square" in stats and rules.chi_square_pvalue is not None
            and stats["chi_square_pvalue"] < rules.chi_square_pvalue
            and stats["js_distance"] >= rules.chi_square_min_js):
        found.append(Finding("chi_square", kind, "critical", stats["chi_square_pvalue"], rules.chi_square_pvalue))
    for name in ("js_distance", "hellinger", "kl_divergence", "wasserstein_std"):
        threshold = getattr(rules, name)
        if threshold is not None and name in stats and stats[name] >= threshold:
            found.append(Finding(name, kind, "warning", stats[name], threshold))
    return found


def quality_findings(stats: dict, rules: DriftRules, reference_missing_rate: float | None) -> list[Finding]:
    """Data-quality rules on one signal's window: missing values, values out of range, unseen
    categories. A signal missing from every event of the window is critical."""
    found = []
    missing = stats["missing_rate"]
    if reference_missing_rate is not None and rules.missing_margin is not None:
        limit = reference_missing_rate + rules.missing_margin
        if missing > limit:
            severity = "critical" if stats["count"] == 0 else "warning"
            found.append(Finding("missing_rate", "data_quality", severity, missing, limit))
    if stats.get("count", 0) < rules.min_samples:
        return found
    if rules.out_of_range_rate is not None and stats.get("out_of_range_rate", 0.0) > rules.out_of_range_rate:
        found.append(Finding("out_of_range_rate", "data_quality", "warning", stats["out_of_range_rate"],
                             rules.out_of_range_rate))
    if rules.unseen_rate is not None and stats.get("unseen_rate", 0.0) > rules.unseen_rate:
        found.append(Finding("unseen_rate", "data_quality", "warning", stats["unseen_rate"], rules.unseen_rate))
    return found


def volume_finding(events: int, history: list[int], drop: float | None) -> Finding | None:
    """The events of a time window against the trailing average of earlier ones (at least three)."""
    if drop is None or len(history) < 3:
        return None
    average = sum(history) / len(history)
    if events < drop * average:
        return Finding("volume", "data_quality", "critical", events, drop * average)
    return None
