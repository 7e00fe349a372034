r"""Model performance from labelled predictions, and the comparison of two model versions.

Once labels arrive and are joined to the predictions they judge, each window holds pairs
``(truth, predicted)``. Everything here is plain numpy and arithmetic: no state beyond the
counts and sums below, which :meth:`get_state` returns as JSON-able data.

**Classification** (:class:`ClassificationWindow`): classes are the codes ``0 .. n_classes - 1``.
The window keeps the confusion matrix ``C`` (rows: truth, columns: prediction). For class ``k``,
``tp = C[k, k]``, the precision is ``tp / (column k's total)``, the recall ``tp / (row k's total)``
and the F1 ``2 tp / (row total + column total)`` (the harmonic mean of the two). The conventions are
scikit-learn's ``precision_recall_fscore_support`` with ``labels=None, zero_division=0``:

- ``accuracy``: share of pairs on the diagonal; ``error_rate``: ``1 - accuracy``;
- ``precision_macro``, ``recall_macro``, ``f1_macro``: unweighted means over the classes that occur
  in the window, in the truth or in the predictions; a class that is never predicted has
  precision 0, one that never occurs in the truth has recall 0 (a 0 denominator counts as 0);
- ``precision``, ``recall``, ``f1``: those of the class ``positive``, when one is named;
- ``log_loss``: mean of ``-ln(clip(p_true, 1e-15, 1 - 1e-15))`` over the pairs that came with a
  finite ``p_true``, the probability the model gave to the true class (only when there was one;
  :func:`binary_p_true` derives it from a binary classifier's score).

**Regression** (:class:`RegressionWindow`): ``mae`` (mean absolute error), ``rmse`` (root mean
squared error) and ``bias`` (mean of ``predicted - truth``: positive when the model over-predicts),
over the pairs where both values are finite.

An empty window has no metrics (an empty dict), rather than zeros that would read as a verdict.
:data:`HIGHER_IS_BETTER` tells which way each metric improves.

**Comparing versions** (canary / shadow deployments). In a shadow deployment both versions predict
the same events, so their results come in pairs; in a canary each event goes to one version, so the
two samples are independent. Pairing cancels what both versions share (the hard events are hard for
both), so a paired comparison is usually much narrower than one that treats the pairs as independent.

- :func:`agreement`: the share of the events both predicted on which they predicted the same,
  with a Wilson (1927) score interval, which unlike the Wald interval keeps its coverage near 0 and
  1, where two close versions sit.
- :func:`paired_difference`: on ``n`` labelled events both predicted, ``b`` that A got right and B
  wrong, ``c`` that A got wrong and B right; the accuracy of B minus that of A is ``(c - b) / n``.
  Its p-value is McNemar's (1947) exact test: under "same accuracy" each discordant event is
  equally likely to fall in ``b`` or ``c``, so ``b`` is binomial(``b + c``, 1/2).
  The interval is the Wald interval for paired proportions with a continuity correction
  (Fleiss, Levin and Paik 2003, ch. 13):
  :math:`(c - b)/n \pm (z \sqrt{b + c - (c - b)^2/n} / n + 1/n)`, clipped to [-1, 1].
  Newcombe's (1998a) method 10, built from the Wilson intervals of both accuracies, covers better
  with few discordant events, but it needs each version's own accuracy (how the ``n - b - c``
  concordant events split into both right and both wrong, which also sets its phi correction),
  and this function is given only ``b``, ``c`` and ``n``. The Wald interval needs nothing else.
  Its usual fault, too narrow an interval when ``b + c`` is small, is what the correction of
  ``1/n`` (half a step: moving one event from ``b`` to ``c`` moves the difference by ``2/n``)
  offsets; it errs wide there, towards "keep testing". With no discordant events it is
  ``[-1/n, 1/n]``, not a single point.
- :func:`proportion_difference`: the canary's accuracy (or any share of successes) of B minus that
  of A, from two independent samples. The interval is Newcombe's (1998b) method 10, built from the
  Wilson intervals :math:`(l_a, u_a)` and :math:`(l_b, u_b)` of both proportions:
  :math:`p_b - p_a - \sqrt{(p_b - l_b)^2 + (u_a - p_a)^2}` to
  :math:`p_b - p_a + \sqrt{(u_b - p_b)^2 + (p_a - l_a)^2}`. It keeps the Wilson interval's coverage
  near 0 and 1 and never leaves [-1, 1]. The p-value is the pooled two-proportion z-test (Pearson's
  chi-square test of the 2x2 table, without continuity correction). The two are different methods
  and can disagree at the margin: an interval that just excludes 0 beside a p-value just above
  ``1 - confidence``.
- :func:`mean_difference`: for regression, the canary's mean absolute error of B minus that of A
  (or the mean of any other per-event value), from each sample's sum, sum of squares and count; a
  :class:`RegressionWindow`'s ``abs_error_sum``, ``squared_error_sum`` and ``count`` are exactly
  these, as :math:`|e|^2 = e^2`. The interval is the difference :math:`\pm z` times Welch's standard
  error :math:`\sqrt{s_a^2/n_a + s_b^2/n_b}`, and the p-value is two-sided normal: Welch's test
  with the normal quantile in place of Student's t. It is meant for the hundreds of events a
  comparison waits for (``min_events``), where the two barely differ: at 200 degrees of freedom the
  t quantile is 1.972 against 1.960, so a 95% interval covers 94.9% and the p-values come out a
  little small; at 30 it would cover 94.1%. Absolute errors are skewed, which at small samples
  weighs on the normal approximation more than z for t does.
- :func:`paired_mean_difference`: the shadow counterpart, from the sum and sum of squares of the
  paired differences :math:`d_i = |e_{B,i}| - |e_{A,i}|` on the same ``n`` events: the mean of
  ``d`` :math:`\pm z \sqrt{s_d^2/n}`, the paired t-test with the same z for t.

  Both take a sample variance from sums as :math:`(\sum x^2 - (\sum x)^2/n)/(n - 1)`, clipped at 0.
  When the spread is tiny next to the mean, the subtraction cancels most digits: rounding may leave
  it slightly negative (hence the clip), or a tiny positive residue where exact data would give 0. A
  zero standard error means the difference is known exactly: the interval is that single point and
  the p-value 1 if it is 0, else 0. Errors are better low, so a difference of errors favours B
  when its interval lies below 0; :func:`recommend` reads it the other way round, so give it A minus
  B: swap the two samples' sums in :func:`mean_difference`, negate ``sum_d`` in
  :func:`paired_mean_difference`.
- :func:`recommend`: promote B when the whole interval is above ``tolerance``, roll back when it is
  below ``-tolerance``, else keep testing.

>>> import numpy as np
>>> from driftwire.detectors.performance import (ClassificationWindow, paired_difference, proportion_difference,
...     recommend)
>>> window = ClassificationWindow(n_classes=3)
>>> window.update(np.array([0, 0, 1, 1, 2, 2]), np.array([0, 1, 1, 1, 2, 0]),
...               p_true=np.array([0.9, 0.4, 0.8, np.nan, 0.7, 0.2]))
>>> window.confusion
array([[1, 1, 0],
       [0, 2, 0],
       [1, 0, 1]])
>>> {k: round(v, 4) for k, v in window.metrics(positive=1).items()}  # doctest: +NORMALIZE_WHITESPACE
{'accuracy': 0.6667, 'error_rate': 0.3333, 'precision_macro': 0.7222, 'recall_macro': 0.6667,
 'f1_macro': 0.6556, 'precision': 0.6667, 'recall': 1.0, 'f1': 0.8, 'log_loss': 0.6422}
>>> diff = paired_difference(b=12, c=31, n=400)
>>> {k: round(v, 4) for k, v in diff.items()}
{'difference': 0.0475, 'low': 0.0132, 'high': 0.0818, 'pvalue': 0.0054}
>>> recommend(diff, agreement_rate=0.89, min_events=300, n=400)
'promote'
>>> {k: round(v, 4) for k, v in proportion_difference(48, 80, 56, 70).items()}  # Newcombe (1998b), Table II
{'difference': 0.2, 'low': 0.0524, 'high': 0.3339, 'pvalue': 0.008}

References
----------
Q. McNemar (1947). Note on the Sampling Error of the Difference Between Correlated Proportions or
Percentages. Psychometrika 12(2), 153-157.

E. B. Wilson (1927). Probable Inference, the Law of Succession, and Statistical Inference.
Journal of the American Statistical Association 22(158), 209-212.

R. G. Newcombe (1998a). Improved Confidence Intervals for the Difference Between Binomial
Proportions Based on Paired Data. Statistics in Medicine 17(22), 2635-2650.

R. G. Newcombe (1998b). Interval Estimation for the Difference Between Independent Proportions:
Comparison of Eleven Methods. Statistics in Medicine 17(8), 873-890.

B. L. Welch (1947). The Generalization of "Student's" Problem when Several Different Population
Variances are Involved. Biometrika 34(1-2), 28-35.

J. L. Fleiss, B. Levin and M. C. Paik (2003). Statistical Methods for Rates and Proportions,
3rd ed., Wiley, chapter 13 (matched samples: the paired difference and its interval).
"""

from __future__ import annotations

import math
from statistics import NormalDist

import numpy as np

from .base import check_confidence, check_int

#: Whether a higher value of a metric is better; ``bias`` is best at 0, so it is not here.
HIGHER_IS_BETTER: dict[str, bool] = {
    "accuracy": True,
    "precision_macro": True,
    "recall_macro": True,
    "f1_macro": True,
    "precision": True,
    "recall": True,
    "f1": True,
    "log_loss": False,
    "error_rate": False,
    "mae": False,
    "rmse": False,
}

PROMOTE = "promote"
ROLLBACK = "rollback"
KEEP_TESTING = "keep-testing"

# scikit-learn's clip: a confident miss costs ~34.5 nats instead of infinity
_LOG_LOSS_EPS = 1e-15
_STATE_FORMAT = 1


def _pairs(truth, predicted, dtype=None) -> tuple[np.ndarray, np.ndarray]:
    truth = np.asarray(truth, dtype=dtype)
    predicted = np.asarray(predicted, dtype=dtype)
    if truth.ndim != 1 or truth.shape != predicted.shape:
        raise ValueError(f"truth and predicted must be 1-D and of one length, got {truth.shape} and {predicted.shape}")
    return truth, predicted


def _codes(values: np.ndarray, n_classes: int, name: str) -> np.ndarray:
    # Floats are refused rather than truncated: 1.7 is a bug upstream, not class 1.
    if values.dtype.kind not in "biu":
        raise TypeError(f"{name} must hold integer class codes, got dtype {values.dtype}")
    values = values.astype(np.int64, copy=False)
    if values.size and (values.min() < 0 or values.max() >= n_classes):
        raise ValueError(f"{name} has codes outside [0, {n_classes})")
    return values


def _check_state(state: dict, kind: str) -> None:
    if state.get("kind") != kind:
        raise ValueError(f"state is for {state.get('kind')!r}, not {kind!r}")
    if state.get("format") != _STATE_FORMAT:
        raise ValueError(f"unsupported state format {state.get('format')!r}")


def _ratio(numerator: np.ndarray, denominator: np.ndarray) -> np.ndarray:
    """numerator / denominator, 0 where the denominator is 0 (scikit-learn's zero_division=0)."""
    out = np.zeros(numerator.shape, dtype=np.float64)
    np.divide(numerator, denominator, out=out, where=denominator > 0)
    return out


class ClassificationWindow:
    """Confusion counts of one window of labelled class predictions; classes are small ints 0..n_classes-1."""

    def __init__(self, n_classes: int):
        check_int("n_classes", n_classes, 2)
        self.n_classes = int(n_classes)
        self.reset()

    def reset(self) -> None:
        self._confusion = np.zeros((self.n_classes, self.n_classes), dtype=np.int64)
        self._log_loss_sum = 0.0
        self._log_loss_count = 0

    @property
    def count(self) -> int:
        """Pairs in the window."""
        return int(self._confusion.sum())

    @property
    def confusion(self) -> np.ndarray:
        """Rows: truth, columns: prediction (a read-only view)."""
        view = self._confusion.view()
        view.flags.writeable = False
        return view

    def update(self, truth: np.ndarray, predicted: np.ndarray, p_true: np.ndarray | None = None) -> None:
        """Add pairs; ``p_true`` (optional) is the probability given to the true class, NaN where unknown."""
        truth, predicted = _pairs(truth, predicted)
        n = self.n_classes
        truth = _codes(truth, n, "truth")
        predicted = _codes(predicted, n, "predicted")
        if p_true is not None:
            p_true = np.asarray(p_true, dtype=np.float64)
            if p_true.shape != truth.shape:
                raise ValueError(f"p_true must have the shape of truth {truth.shape}, got {p_true.shape}")
        # One bincount over the flattened cell index counts the whole batch.
        self._confusion += np.bincount(truth * n + predicted, minlength=n * n).reshape(n, n)
        if p_true is not None:
            known = p_true[np.isfinite(p_true)]
            self._log_loss_sum += float(-np.log(np.clip(known, _LOG_LOSS_EPS, 1.0 - _LOG_LOSS_EPS)).sum())
            self._log_loss_count += int(known.size)

    def metrics(self, positive: int | None = None) -> dict[str, float]:
        """The window's metrics (see the module docstring); {} when the window is empty."""
        if positive is not None and not (0 <= positive < self.n_classes):
            raise ValueError(f"positive must be a class in [0, {self.n_classes}), got {positive!r}")
        c = self._confusion
        total = int(c.sum())
        if total == 0:
            return {}
        correct = int(np.trace(c))
        tp = np.diag(c).astype(np.float64)
        truth_totals, predicted_totals = c.sum(axis=1), c.sum(axis=0)
        precision = _ratio(tp, predicted_totals)
        recall = _ratio(tp, truth_totals)
        f1 = _ratio(2.0 * tp, truth_totals + predicted_totals)
        # Classes absent from both truth and predictions say nothing about the model.
        present = (truth_totals + predicted_totals) > 0
        out = {
            "accuracy": correct / total,
            "error_rate": (total - correct) / total,
            "precision_macro": float(precision[present].mean()),
            "recall_macro": float(recall[present].mean()),
            "f1_macro": float(f1[present].mean()),
        }
        if positive is not None:
            out.update(precision=float(precision[positive]), recall=float(recall[positive]), f1=float(f1[positive]))
        if self._log_loss_count:
            out["log_loss"] = self._log_loss_sum / self._log_loss_count
        return out

    def get_state(self) -> dict:
        return {
            "kind": "classification_window",
            "format": _STATE_FORMAT,
            "n_classes": self.n_classes,
            "confusion": self._confusion.tolist(),
            "log_loss_sum": self._log_loss_sum,
            "log_loss_count": self._log_loss_count,
        }

    @classmethod
    def from_state(cls, state: dict) -> ClassificationWindow:
        _check_state(state, "classification_window")
        window = cls(state["n_classes"])
        confusion = np.asarray(state["confusion"], dtype=np.int64)
        if confusion.shape != window._confusion.shape or (confusion < 0).any():
            raise ValueError(f"confusion must be a non-negative {window.n_classes}x{window.n_classes} matrix")
        window._confusion = confusion
        window._log_loss_sum = float(state["log_loss_sum"])
        window._log_loss_count = int(state["log_loss_count"])
        return window


class RegressionWindow:
    """Error sums of one window of labelled numeric predictions."""

    def __init__(self):
        self.reset()

    def reset(self) -> None:
        self._count = 0
        self._abs_sum = 0.0
        self._squared_sum = 0.0
        self._error_sum = 0.0

    @property
    def count(self) -> int:
        """Pairs in the window (finite ones only)."""
        return self._count

    def update(self, truth: np.ndarray, predicted: np.ndarray) -> int:
        """Add pairs; returns how many were skipped because a value was NaN or infinite."""
        truth, predicted = _pairs(truth, predicted, dtype=np.float64)
        finite = np.isfinite(truth) & np.isfinite(predicted)
        error = predicted[finite] - truth[finite]
        self._count += int(error.size)
        self._abs_sum += float(np.abs(error).sum())
        self._squared_sum += float(np.square(error).sum())
        self._error_sum += float(error.sum())
        return int(truth.size - error.size)

    def metrics(self) -> dict[str, float]:
        """``mae``, ``rmse`` and ``bias`` (mean of predicted - truth); {} when the window is empty."""
        n = self._count
        if n == 0:
            return {}
        return {"mae": self._abs_sum / n, "rmse": math.sqrt(self._squared_sum / n), "bias": self._error_sum / n}

    def get_state(self) -> dict:
        return {
            "kind": "regression_window",
            "format": _STATE_FORMAT,
            "count": self._count,
            "abs_error_sum": self._abs_sum,
            "squared_error_sum": self._squared_sum,
            "error_sum": self._error_sum,
        }

    @classmethod
    def from_state(cls, state: dict) -> RegressionWindow:
        _check_state(state, "regression_window")
        window = cls()
        check_int("count", state["count"], 0)
        window._count = int(state["count"])
        window._abs_sum = float(state["abs_error_sum"])
        window._squared_sum = float(state["squared_error_sum"])
        window._error_sum = float(state["error_sum"])
        return window


def binary_p_true(score: np.ndarray, correct: np.ndarray) -> np.ndarray:
    """The probability given to the true class by a binary classifier whose score is the probability of its
    predicted class: score where the prediction was right, 1 - score where wrong; NaN where score is NaN
    or outside [0, 1]."""
    score = np.asarray(score, dtype=np.float64)
    correct = np.asarray(correct, dtype=bool)
    if score.shape != correct.shape:
        raise ValueError(f"score and correct must have one shape, got {score.shape} and {correct.shape}")
    valid = (score >= 0.0) & (score <= 1.0)  # False for NaN as well
    return np.where(valid, np.where(correct, score, 1.0 - score), np.nan)


def _z(confidence: float) -> float:
    check_confidence("confidence", confidence)
    return NormalDist().inv_cdf(0.5 + confidence / 2.0)


def _wilson(successes: int, n: int, z: float) -> tuple[float, float]:
    p = successes / n
    shrink = 1.0 + z * z / n
    center = (p + z * z / (2.0 * n)) / shrink
    half = z / shrink * math.sqrt(p * (1.0 - p) / n + z * z / (4.0 * n * n))
    # At 0 and n the bound is exactly 0 or 1; the formula would leave rounding noise there.
    low = 0.0 if successes == 0 else max(0.0, center - half)
    high = 1.0 if successes == n else min(1.0, center + half)
    return low, high


def agreement(same: int, shared: int, confidence: float = 0.95) -> tuple[float, float, float]:
    """Agreement rate of two model versions on the events both predicted, with a Wilson score interval:
    (rate, low, high). shared == 0 -> (nan, nan, nan)."""
    check_int("shared", shared, 0)
    check_int("same", same, 0)
    if same > shared:
        raise ValueError(f"same ({same}) cannot exceed shared ({shared})")
    z = _z(confidence)
    if shared == 0:
        return math.nan, math.nan, math.nan
    low, high = _wilson(same, shared, z)
    return same / shared, low, high


def _binomial_half_pvalue(k: int, m: int) -> float:
    """Two-sided exact p-value of k successes in m trials with p = 1/2 (as scipy.stats.binomtest)."""
    k = min(k, m - k)
    if 2 * k == m:  # the mode itself, or m == 0: every outcome is at least as extreme
        return 1.0
    # The distribution is symmetric, so the two-sided p-value is 2 P(X <= k). Below the mode
    # pmf(x - 1) / pmf(x) = x / (m - x + 1) < 1: summing the ratios from x = k down keeps every
    # term in range and lets the sum stop once the terms no longer change it, and pmf(k) is
    # taken once in log space, where it cannot underflow before the product does.
    log_pmf_k = math.lgamma(m + 1) - math.lgamma(k + 1) - math.lgamma(m - k + 1) - m * math.log(2.0)
    term = total = 1.0
    for x in range(k, 0, -1):
        term *= x / (m - x + 1)
        total += term
        if term < total * 1e-17:
            break
    return min(1.0, 2.0 * math.exp(log_pmf_k + math.log(total)))


def paired_difference(b: int, c: int, n: int, confidence: float = 0.95) -> dict[str, float]:
    """Accuracy of version B minus accuracy of version A on the same ``n`` labelled events.

    ``b``: events A got right and B got wrong; ``c``: events A got wrong and B got right. Returns
    ``difference`` = (c - b) / n, ``low`` and ``high``, the Wald interval with continuity correction (see
    the module docstring for why not Newcombe's), and ``pvalue``, McNemar's exact test (two-sided binomial
    test of b out of b + c with p = 1/2; 1.0 when b + c == 0). n == 0: all NaN.
    """
    for name, value in (("b", b), ("c", c), ("n", n)):
        check_int(name, value, 0)
    if b + c > n:
        raise ValueError(f"b + c ({b + c}) cannot exceed n ({n})")
    z = _z(confidence)
    if n == 0:
        return {"difference": math.nan, "low": math.nan, "high": math.nan, "pvalue": math.nan}
    difference = (c - b) / n
    # max(): b + c >= (c - b)^2 / n always, but rounding may leave a tiny negative
    se = math.sqrt(max(0.0, b + c - (c - b) ** 2 / n)) / n
    half = z * se + 1.0 / n
    return {
        "difference": difference,
        "low": max(-1.0, difference - half),
        "high": min(1.0, difference + half),
        "pvalue": _binomial_half_pvalue(b, b + c),
    }


def _normal_pvalue(z: float) -> float:
    """Two-sided p-value of a standard normal statistic: P(|Z| >= |z|)."""
    return math.erfc(abs(z) / math.sqrt(2.0))


def proportion_difference(
    successes_a: int, n_a: int, successes_b: int, n_b: int, confidence: float = 0.95
) -> dict[str, float]:
    """Proportion of successes of version B minus that of version A, from two independent samples.

    Returns ``difference`` = p_b - p_a, ``low`` and ``high``, Newcombe's (1998b) method 10 interval built from
    the Wilson intervals of p_a and p_b, and ``pvalue``, the two-sided pooled two-proportion z-test (1.0 when
    the pooled proportion is 0 or 1). n_a == 0 or n_b == 0: all NaN.
    """
    for name, value in (("successes_a", successes_a), ("n_a", n_a), ("successes_b", successes_b), ("n_b", n_b)):
        check_int(name, value, 0)
    for side, successes, n in (("a", successes_a, n_a), ("b", successes_b, n_b)):
        if successes > n:
            raise ValueError(f"successes_{side} ({successes}) cannot exceed n_{side} ({n})")
    z = _z(confidence)
    if n_a == 0 or n_b == 0:
        return {"difference": math.nan, "low": math.nan, "high": math.nan, "pvalue": math.nan}
    p_a, p_b = successes_a / n_a, successes_b / n_b
    low_a, high_a = _wilson(successes_a, n_a, z)
    low_b, high_b = _wilson(successes_b, n_b, z)
    difference = p_b - p_a
    pooled = (successes_a + successes_b) / (n_a + n_b)
    se = math.sqrt(pooled * (1.0 - pooled) * (1.0 / n_a + 1.0 / n_b))
    return {
        "difference": difference,
        "low": difference - math.hypot(p_b - low_b, high_a - p_a),
        "high": difference + math.hypot(high_b - p_b, p_a - low_a),
        "pvalue": _normal_pvalue(difference / se) if se > 0.0 else 1.0,
    }


def _mean_and_variance(total: float, total_sq: float, n: int) -> tuple[float, float]:
    """Mean and sample variance (ddof=1) from a sum and a sum of squares; n >= 2."""
    mean = total / n
    # total_sq - total * mean is >= 0 for real data; cancellation may leave a tiny negative.
    return mean, max(0.0, (total_sq - total * mean) / (n - 1))


def _check_sums(total: float, total_sq: float, n: int, names: tuple[str, str, str]) -> None:
    sum_name, sum_sq_name, n_name = names
    check_int(n_name, n, 0)
    if not (math.isfinite(total) and math.isfinite(total_sq)):
        raise ValueError(f"{sum_name} and {sum_sq_name} must be finite, got {total!r} and {total_sq!r}")
    if total_sq < 0.0:
        raise ValueError(f"{sum_sq_name} must be >= 0, got {total_sq!r}")


_MEAN_KEYS = ("difference", "se", "low", "high", "pvalue")


def _normal_difference(difference: float, se: float, z: float) -> dict[str, float]:
    if se == 0.0:  # no spread in the values: the difference is known exactly
        return {
            "difference": difference,
            "se": 0.0,
            "low": difference,
            "high": difference,
            "pvalue": 1.0 if difference == 0.0 else 0.0,
        }
    return {
        "difference": difference,
        "se": se,
        "low": difference - z * se,
        "high": difference + z * se,
        "pvalue": _normal_pvalue(difference / se),
    }


def mean_difference(
    sum_a: float, sum_sq_a: float, n_a: int, sum_b: float, sum_sq_b: float, n_b: int, confidence: float = 0.95
) -> dict[str, float]:
    """Mean of version B minus mean of version A, from two independent samples given as sums, sums of squares
    and counts.

    Returns ``difference`` = mean_b - mean_a, ``se``, Welch's standard error sqrt(var_a/n_a + var_b/n_b)
    (sample variances, ddof=1), ``low`` and ``high``, the normal interval difference -/+ z se, and ``pvalue``,
    two-sided normal (Welch's test with z for t: see the module docstring). n_a < 2 or n_b < 2: all NaN.
    """
    _check_sums(sum_a, sum_sq_a, n_a, ("sum_a", "sum_sq_a", "n_a"))
    _check_sums(sum_b, sum_sq_b, n_b, ("sum_b", "sum_sq_b", "n_b"))
    z = _z(confidence)
    if n_a < 2 or n_b < 2:
        return dict.fromkeys(_MEAN_KEYS, math.nan)
    mean_a, var_a = _mean_and_variance(sum_a, sum_sq_a, n_a)
    mean_b, var_b = _mean_and_variance(sum_b, sum_sq_b, n_b)
    return _normal_difference(mean_b - mean_a, math.sqrt(var_a / n_a + var_b / n_b), z)


def paired_mean_difference(sum_d: float, sum_sq_d: float, n: int, confidence: float = 0.95) -> dict[str, float]:
    """Mean of the paired differences d_i = b_i - a_i of versions B and A on the same ``n`` events, given the
    sum and the sum of squares of d.

    Returns ``difference`` = mean of d, ``se`` = sqrt(var(d, ddof=1) / n), ``low`` and ``high``, the normal
    interval difference -/+ z se, and ``pvalue``, two-sided normal (the paired t-test with z for t). n < 2:
    all NaN.
    """
    _check_sums(sum_d, sum_sq_d, n, ("sum_d", "sum_sq_d", "n"))
    z = _z(confidence)
    if n < 2:
        return dict.fromkeys(_MEAN_KEYS, math.nan)
    mean, var = _mean_and_variance(sum_d, sum_sq_d, n)
    return _normal_difference(mean, math.sqrt(var / n), z)


def recommend(diff: dict, agreement_rate: float, min_events: int, n: int, tolerance: float = 0.0) -> str:
    """'promote' when the interval's low end > tolerance, 'rollback' when its high end < -tolerance,
    else 'keep-testing'; 'keep-testing' when n < min_events.

    ``diff`` is :func:`paired_difference`'s result. ``agreement_rate`` does not enter the decision: the
    interval already reflects how often the versions disagree (only discordant events move it). A NaN
    interval (no labelled events) keeps testing.
    """
    check_int("min_events", min_events, 0)
    check_int("n", n, 0)
    if not tolerance >= 0.0:
        raise ValueError(f"tolerance must be >= 0, got {tolerance}")
    if not (math.isnan(agreement_rate) or 0.0 <= agreement_rate <= 1.0):
        raise ValueError(f"agreement_rate must be in [0, 1] or NaN, got {agreement_rate}")
    if n < min_events:
        return KEEP_TESTING
    if diff["low"] > tolerance:
        return PROMOTE
    if diff["high"] < -tolerance:
        return ROLLBACK
    return KEEP_TESTING
