"""Windowed performance metrics and version comparison, against independent references.

Classification metrics are checked against a per-pair reference written here (scikit-learn's
conventions, labels=None, zero_division=0); McNemar p-values and Wilson intervals against scipy;
Newcombe's interval against one written here from scipy's Wilson intervals and against his published
example; the mean comparisons against scipy's Welch and paired t-tests on large samples.
"""

from __future__ import annotations

import json
import math

import numpy as np
import pytest
from scipy.stats import binomtest, chi2_contingency, norm, ttest_ind, ttest_rel

from driftwire.detectors.performance import (
    HIGHER_IS_BETTER,
    ClassificationWindow,
    RegressionWindow,
    agreement,
    binary_p_true,
    mean_difference,
    paired_difference,
    paired_mean_difference,
    proportion_difference,
    recommend,
)

# -- classification reference ------------------------------------------------------------


def reference_metrics(truth, predicted, positive=None) -> dict[str, float]:
    """One pair at a time, as scikit-learn defines the metrics (labels=None, zero_division=0)."""
    truth, predicted = [int(t) for t in truth], [int(p) for p in predicted]
    labels = sorted(set(truth) | set(predicted))
    per_class = {}
    for k in labels:
        tp = fp = fn = 0
        for t, p in zip(truth, predicted):
            if t == k and p == k:
                tp += 1
            elif p == k:
                fp += 1
            elif t == k:
                fn += 1
        precision = tp / (tp + fp) if tp + fp else 0.0
        recall = tp / (tp + fn) if tp + fn else 0.0
        f1 = 2 * precision * recall / (precision + recall) if precision + recall else 0.0
        per_class[k] = (precision, recall, f1)
    correct = sum(t == p for t, p in zip(truth, predicted))
    out = {
        "accuracy": correct / len(truth),
        "error_rate": 1 - correct / len(truth),
        "precision_macro": sum(v[0] for v in per_class.values()) / len(labels),
        "recall_macro": sum(v[1] for v in per_class.values()) / len(labels),
        "f1_macro": sum(v[2] for v in per_class.values()) / len(labels),
    }
    if positive is not None:
        out["precision"], out["recall"], out["f1"] = per_class.get(positive, (0.0, 0.0, 0.0))
    return out


def assert_metrics_close(got: dict, expected: dict, tol: float = 1e-12) -> None:
    assert set(got) == set(expected)
    for key, value in expected.items():
        assert got[key] == pytest.approx(value, rel=tol, abs=tol), key


def labels_5_classes(rng, size):
    """5 classes: class 3 is never predicted, class 4 never occurs in the truth."""
    truth = rng.integers(0, 4, size)  # 0..3
    predicted = rng.choice([0, 1, 2, 4], size)
    # Mostly right, so that precision and recall are far from one another and from chance.
    right = rng.random(size) < 0.6
    predicted = np.where(right & (truth != 3), truth, predicted)
    return truth, predicted


@pytest.mark.parametrize("seed", [0, 1, 2])
@pytest.mark.parametrize("positive", [None, 0, 1])
def test_binary_metrics_match_reference(seed, positive):
    rng = np.random.default_rng(seed)
    truth = rng.integers(0, 2, 300)
    predicted = np.where(rng.random(300) < 0.7, truth, 1 - truth)
    predicted[rng.random(300) < 0.2] = 1  # skewed, so precision != recall
    window = ClassificationWindow(2)
    window.update(truth, predicted)
    assert window.count == 300
    assert_metrics_close(window.metrics(positive=positive), reference_metrics(truth, predicted, positive))


@pytest.mark.parametrize("seed", [3, 4])
@pytest.mark.parametrize("positive", [None, 2, 3, 4])
def test_multiclass_metrics_match_reference(seed, positive):
    rng = np.random.default_rng(seed)
    truth, predicted = labels_5_classes(rng, 400)
    assert 3 not in set(predicted) and 4 not in set(truth)
    window = ClassificationWindow(5)
    window.update(truth, predicted)
    got = window.metrics(positive=positive)
    assert_metrics_close(got, reference_metrics(truth, predicted, positive))
    if positive == 3:  # in the truth, never predicted
        assert got["precision"] == 0.0 and got["recall"] == 0.0 and got["f1"] == 0.0
    if positive == 4:  # predicted, never in the truth
        assert got["recall"] == 0.0 and got["precision"] == 0.0


def test_class_absent_from_truth_and_predictions_is_not_averaged():
    rng = np.random.default_rng(5)
    truth, predicted = labels_5_classes(rng, 200)
    six = ClassificationWindow(6)  # class 5 never occurs at all
    six.update(truth, predicted)
    five = ClassificationWindow(5)
    five.update(truth, predicted)
    assert six.metrics() == five.metrics()
    assert_metrics_close(six.metrics(), reference_metrics(truth, predicted))
    assert six.metrics(positive=5)["f1"] == 0.0


def test_confusion_rows_are_truth():
    window = ClassificationWindow(3)
    window.update(np.array([0, 0, 2, 1]), np.array([1, 1, 0, 1]))
    expected = np.array([[0, 2, 0], [0, 1, 0], [1, 0, 0]])
    np.testing.assert_array_equal(window.confusion, expected)
    assert window.confusion.dtype == np.int64
    with pytest.raises(ValueError):
        window.confusion[0, 0] = 5  # a view of the window's counts, not to be written


def test_small_example_by_hand():
    window = ClassificationWindow(2)
    # tp(1) = 2, fp(1) = 1, fn(1) = 1, tn = 1
    window.update(np.array([1, 1, 1, 0, 0]), np.array([1, 1, 0, 1, 0]))
    m = window.metrics(positive=1)
    assert m["accuracy"] == pytest.approx(3 / 5)
    assert m["precision"] == pytest.approx(2 / 3)
    assert m["recall"] == pytest.approx(2 / 3)
    assert m["f1"] == pytest.approx(2 / 3)
    # class 0: precision 1/2, recall 1/2
    assert m["precision_macro"] == pytest.approx((2 / 3 + 1 / 2) / 2)


def test_log_loss_matches_numpy():
    rng = np.random.default_rng(6)
    size = 500
    truth = rng.integers(0, 3, size)
    predicted = rng.integers(0, 3, size)
    p_true = rng.random(size)
    p_true[rng.random(size) < 0.1] = np.nan
    p_true[:6] = [0.0, 1.0, np.inf, -np.inf, 1e-20, 1 - 1e-17]  # clipped, skipped, skipped, clipped, clipped
    window = ClassificationWindow(3)
    window.update(truth, predicted, p_true=p_true)
    finite = p_true[np.isfinite(p_true)]
    expected = np.mean(-np.log(np.clip(finite, 1e-15, 1 - 1e-15)))
    assert window.metrics()["log_loss"] == pytest.approx(expected, rel=1e-12)
    assert window.count == size  # pairs without p_true still count for the other metrics


def test_log_loss_by_hand_and_absent_without_probabilities():
    window = ClassificationWindow(2)
    window.update(np.array([0, 1]), np.array([0, 1]), p_true=np.array([0.5, 0.25]))
    assert window.metrics()["log_loss"] == pytest.approx((math.log(2) + math.log(4)) / 2)
    window.update(np.array([0]), np.array([0]), p_true=np.array([0.0]))
    assert window.metrics()["log_loss"] == pytest.approx((math.log(2) + math.log(4) + 15 * math.log(10)) / 3)
    no_probs = ClassificationWindow(2)
    no_probs.update(np.array([0, 1]), np.array([1, 1]))
    no_probs.update(np.array([0, 1]), np.array([1, 1]), p_true=np.array([np.nan, np.nan]))
    assert "log_loss" not in no_probs.metrics()
    assert no_probs.count == 4


def test_batches_equal_one_batch():
    rng = np.random.default_rng(7)
    truth, predicted = labels_5_classes(rng, 1000)
    p_true = rng.random(1000)
    whole = ClassificationWindow(5)
    whole.update(truth, predicted, p_true)
    parts = ClassificationWindow(5)
    for chunk in np.array_split(np.arange(1000), [0, 1, 17, 400, 999]):  # includes empty batches
        parts.update(truth[chunk], predicted[chunk], p_true[chunk])
    np.testing.assert_array_equal(parts.confusion, whole.confusion)
    assert_metrics_close(parts.metrics(positive=2), whole.metrics(positive=2))


def test_empty_window_and_reset():
    window = ClassificationWindow(3)
    assert window.count == 0 and window.metrics() == {} and window.metrics(positive=1) == {}
    window.update(np.array([0, 1]), np.array([0, 2]), np.array([0.3, 0.4]))
    assert window.metrics()
    window.reset()
    assert window.count == 0 and window.metrics() == {}
    window.update(np.array([], dtype=np.int64), np.array([], dtype=np.int64))
    assert window.metrics() == {}


def test_classification_state_round_trip():
    rng = np.random.default_rng(8)
    truth, predicted = labels_5_classes(rng, 300)
    p_true = rng.random(300)
    window = ClassificationWindow(5)
    window.update(truth[:200], predicted[:200], p_true[:200])
    restored = ClassificationWindow.from_state(json.loads(json.dumps(window.get_state())))
    assert restored.metrics(positive=1) == window.metrics(positive=1)
    for w in (window, restored):
        w.update(truth[200:], predicted[200:], p_true[200:])
    assert restored.metrics(positive=1) == window.metrics(positive=1)
    empty = ClassificationWindow.from_state(json.loads(json.dumps(ClassificationWindow(4).get_state())))
    assert empty.n_classes == 4 and empty.metrics() == {}
    with pytest.raises(ValueError):
        RegressionWindow.from_state(window.get_state())
    bad = window.get_state() | {"confusion": [[1, 2], [3, 4]]}
    with pytest.raises(ValueError):
        ClassificationWindow.from_state(bad)


def test_classification_input_checks():
    with pytest.raises(ValueError):
        ClassificationWindow(1)
    window = ClassificationWindow(3)
    with pytest.raises(ValueError):
        window.update(np.array([0, 3]), np.array([0, 1]))
    with pytest.raises(ValueError):
        window.update(np.array([0, -1]), np.array([0, 1]))
    with pytest.raises(ValueError):
        window.update(np.array([0, 1]), np.array([0]))
    with pytest.raises(TypeError):
        window.update(np.array([0.0, 1.0]), np.array([0, 1]))
    with pytest.raises(ValueError):
        window.update(np.array([0, 1]), np.array([0, 1]), p_true=np.array([0.5]))
    with pytest.raises(ValueError):
        window.metrics(positive=3)
    assert window.count == 0  # a refused batch adds nothing


# -- regression --------------------------------------------------------------------------


def test_regression_matches_numpy_and_skips_non_finite():
    rng = np.random.default_rng(9)
    truth = rng.normal(10.0, 3.0, 800)
    predicted = truth + rng.normal(0.4, 1.5, 800)
    truth[[3, 50]] = np.nan
    predicted[[50, 70, 71]] = [np.inf, np.nan, -np.inf]
    window = RegressionWindow()
    skipped = window.update(truth[:400], predicted[:400]) + window.update(truth[400:], predicted[400:])
    assert skipped == 4
    keep = np.isfinite(truth) & np.isfinite(predicted)
    error = predicted[keep] - truth[keep]
    assert window.count == 796
    expected = {"mae": np.mean(np.abs(error)), "rmse": np.sqrt(np.mean(error**2)), "bias": np.mean(error)}
    assert_metrics_close(window.metrics(), expected)
    assert window.metrics()["bias"] > 0.2  # the model over-predicts by ~0.4


def test_regression_by_hand_empty_and_round_trip():
    window = RegressionWindow()
    assert window.metrics() == {} and window.count == 0
    assert window.update(np.array([1.0, 2.0, 3.0]), np.array([2.0, 0.0, 3.0])) == 0
    assert window.metrics() == pytest.approx({"mae": 1.0, "rmse": math.sqrt(5 / 3), "bias": -1 / 3})
    restored = RegressionWindow.from_state(json.loads(json.dumps(window.get_state())))
    assert restored.metrics() == window.metrics() and restored.count == 3
    for w in (window, restored):
        w.update(np.array([5.0, np.nan]), np.array([4.5, 1.0]))
    assert restored.metrics() == window.metrics() and restored.count == 4
    window.reset()
    assert window.metrics() == {}
    assert window.update(np.array([np.nan]), np.array([1.0])) == 1
    assert window.metrics() == {}
    with pytest.raises(ValueError):
        window.update(np.array([1.0, 2.0]), np.array([1.0]))


def test_higher_is_better_covers_every_metric():
    window = ClassificationWindow(2)
    window.update(np.array([0, 1]), np.array([0, 0]), p_true=np.array([0.6, 0.3]))
    regression = RegressionWindow()
    regression.update(np.array([1.0]), np.array([2.0]))
    keys = set(window.metrics(positive=1)) | set(regression.metrics())
    assert set(HIGHER_IS_BETTER) == keys - {"bias"}
    assert not HIGHER_IS_BETTER["log_loss"] and not HIGHER_IS_BETTER["rmse"] and HIGHER_IS_BETTER["f1_macro"]


def test_binary_p_true():
    score = np.array([0.9, 0.9, 0.6, np.nan, 1.2, -0.1, 0.0, 1.0])
    correct = np.array([True, False, False, True, True, False, False, True])
    got = binary_p_true(score, correct)
    np.testing.assert_allclose(got, [0.9, 0.1, 0.4, np.nan, np.nan, np.nan, 1.0, 1.0])
    with pytest.raises(ValueError):
        binary_p_true(score, correct[:3])


# -- agreement: Wilson interval ----------------------------------------------------------


def test_wilson_hand_checked():
    # 8 of 10 at 95%: the published Wilson interval is 0.4902 to 0.9433.
    rate, low, high = agreement(8, 10)
    assert rate == 0.8
    assert low == pytest.approx(0.4902, abs=1e-4) and high == pytest.approx(0.9433, abs=1e-4)
    assert all(math.isnan(v) for v in agreement(0, 0))


@pytest.mark.parametrize("confidence", [0.8, 0.95, 0.99])
def test_wilson_matches_scipy(confidence):
    for same, shared in [(0, 1), (1, 1), (0, 7), (7, 7), (3, 7), (50, 51), (980, 1000), (12345, 20000)]:
        rate, low, high = agreement(same, shared, confidence)
        ci = binomtest(same, shared).proportion_ci(confidence_level=confidence, method="wilson")
        assert rate == same / shared
        assert low == pytest.approx(ci.low, rel=1e-12, abs=1e-15), (same, shared)
        assert high == pytest.approx(ci.high, rel=1e-12, abs=1e-15), (same, shared)


def test_agreement_checks():
    with pytest.raises(ValueError):
        agreement(5, 4)
    with pytest.raises(ValueError):
        agreement(1, 2, confidence=1.0)


# -- paired difference: McNemar and the interval ------------------------------------------


MCNEMAR_CASES = [(0, 0), (0, 1), (1, 0), (0, 5), (2, 9), (9, 2), (5, 5), (5, 6), (6, 5), (20, 35), (100, 130),
                 (3000, 3300), (3300, 3000), (3150, 3150), (0, 1000), (49_800, 50_500)]


@pytest.mark.parametrize("b,c", MCNEMAR_CASES)
def test_mcnemar_pvalue_matches_scipy(b, c):
    got = paired_difference(b, c, n=b + c + 1000)["pvalue"]
    expected = binomtest(b, b + c, 0.5).pvalue if b + c else 1.0
    assert got == pytest.approx(expected, rel=1e-9, abs=1e-300)


def test_mcnemar_pvalue_matches_scipy_on_a_grid():
    for b in range(0, 30):
        for c in range(0, 30):
            expected = binomtest(b, b + c, 0.5).pvalue if b + c else 1.0
            assert paired_difference(b, c, 100)["pvalue"] == pytest.approx(expected, rel=1e-11), (b, c)


def test_paired_difference_by_hand():
    # b = 10, c = 25, n = 200: difference 15/200; se = sqrt(35 - 15^2/200)/200 = 0.0291011...;
    # half-width 1.959964 * se + 1/200 = 0.0620367...
    d = paired_difference(10, 25, 200)
    assert d["difference"] == 0.075
    assert d["low"] == pytest.approx(0.0129633, abs=1e-6)
    assert d["high"] == pytest.approx(0.1370367, abs=1e-6)
    assert d["pvalue"] == pytest.approx(binomtest(10, 35).pvalue)
    flipped = paired_difference(25, 10, 200)  # A better: the mirror image
    assert flipped["difference"] == -0.075
    assert flipped["low"] == pytest.approx(-d["high"]) and flipped["high"] == pytest.approx(-d["low"])
    assert flipped["pvalue"] == pytest.approx(d["pvalue"])


def test_paired_difference_edges():
    assert all(math.isnan(v) for v in paired_difference(0, 0, 0).values())
    same = paired_difference(0, 0, 50)  # no disagreements: the interval is the correction alone
    assert same == {"difference": 0.0, "low": -0.02, "high": 0.02, "pvalue": 1.0}
    allb = paired_difference(0, 40, 40)
    assert allb["difference"] == 1.0 and allb["high"] == 1.0 and allb["low"] < 1.0
    assert paired_difference(10, 25, 200, confidence=0.99)["low"] < paired_difference(10, 25, 200)["low"]
    with pytest.raises(ValueError):
        paired_difference(10, 20, 25)
    with pytest.raises(ValueError):
        paired_difference(-1, 2, 25)


@pytest.mark.parametrize("p_b,p_c", [(0.10, 0.10), (0.08, 0.12)])
def test_paired_difference_coverage(p_b, p_c):
    # Exact coverage of this interval at n = 500 is about 0.960 for both (the correction errs wide).
    rng = np.random.default_rng(11)
    n, reps = 500, 4000
    counts = rng.multinomial(n, [p_b, p_c, 1 - p_b - p_c], size=reps)
    truth = p_c - p_b
    covered = 0
    for b, c, _ in counts:
        d = paired_difference(int(b), int(c), n)
        covered += d["low"] <= truth <= d["high"]
    assert 0.93 <= covered / reps <= 0.97


# -- recommendation ------------------------------------------------------------------------


def test_recommend():
    better = paired_difference(12, 31, 400)  # interval about (0.013, 0.082)
    worse = paired_difference(31, 12, 400)
    unsure = paired_difference(20, 25, 400)
    assert recommend(better, 0.89, min_events=300, n=400) == "promote"
    assert recommend(worse, 0.89, min_events=300, n=400) == "rollback"
    assert recommend(unsure, 0.89, min_events=300, n=400) == "keep-testing"
    # too few events yet, however clear the difference
    assert recommend(better, 0.89, min_events=500, n=400) == "keep-testing"
    assert recommend(worse, 0.89, min_events=500, n=400) == "keep-testing"
    # a tolerance wider than the interval's distance from 0 asks for more evidence
    assert recommend(better, 0.89, min_events=300, n=400, tolerance=0.02) == "keep-testing"
    assert recommend(worse, 0.89, min_events=300, n=400, tolerance=0.02) == "keep-testing"
    assert recommend(better, 0.89, min_events=300, n=400, tolerance=0.01) == "promote"
    assert recommend(paired_difference(0, 0, 0), math.nan, min_events=0, n=0) == "keep-testing"
    with pytest.raises(ValueError):
        recommend(better, 0.89, min_events=300, n=400, tolerance=-0.01)


# -- independent proportions: Newcombe's method 10 and the pooled z-test -------------------


def reference_newcombe(successes_a, n_a, successes_b, n_b, confidence):
    """Newcombe (1998), method 10, for p_b - p_a, from scipy's Wilson intervals."""
    a = binomtest(successes_a, n_a).proportion_ci(confidence_level=confidence, method="wilson")
    b = binomtest(successes_b, n_b).proportion_ci(confidence_level=confidence, method="wilson")
    p_a, p_b = successes_a / n_a, successes_b / n_b
    d = p_b - p_a
    low = d - math.sqrt((p_b - b.low) ** 2 + (a.high - p_a) ** 2)
    high = d + math.sqrt((b.high - p_b) ** 2 + (p_a - a.low) ** 2)
    return low, high


def reference_pooled_pvalue(successes_a, n_a, successes_b, n_b):
    pooled = (successes_a + successes_b) / (n_a + n_b)
    se = math.sqrt(pooled * (1 - pooled) * (1 / n_a + 1 / n_b))
    return 2 * norm.sf(abs(successes_b / n_b - successes_a / n_a) / se)


PROPORTION_CASES = [(0, 1, 1, 1), (0, 7, 7, 7), (3, 7, 5, 9), (7, 7, 6, 7), (0, 20, 3, 15), (48, 80, 56, 70),
                    (240, 300, 225, 300), (980, 1000, 990, 1200), (5000, 20000, 5400, 20000), (12, 400, 0, 35)]


@pytest.mark.parametrize("confidence", [0.8, 0.95, 0.99])
@pytest.mark.parametrize("case", PROPORTION_CASES)
def test_proportion_difference_matches_newcombe_from_scipy_wilson(case, confidence):
    got = proportion_difference(*case, confidence=confidence)
    low, high = reference_newcombe(*case, confidence)
    assert got["difference"] == pytest.approx(case[2] / case[3] - case[0] / case[1], rel=1e-15, abs=1e-15)
    assert got["low"] == pytest.approx(low, rel=1e-11, abs=1e-13)
    assert got["high"] == pytest.approx(high, rel=1e-11, abs=1e-13)
    assert -1.0 <= got["low"] <= got["difference"] <= got["high"] <= 1.0
    assert got["pvalue"] == pytest.approx(reference_pooled_pvalue(*case), rel=1e-9)


@pytest.mark.parametrize("case", [c for c in PROPORTION_CASES if 0 < c[0] + c[2] < c[1] + c[3]])
def test_proportion_pvalue_is_chi_square_without_correction(case):
    sa, na, sb, nb = case
    expected = chi2_contingency([[sa, na - sa], [sb, nb - sb]], correction=False).pvalue
    assert proportion_difference(*case)["pvalue"] == pytest.approx(expected, rel=1e-9)


# Newcombe (1998), "Interval estimation for the difference between independent proportions",
# Table II, method 10 (theta = p1 - p2; here p1 is B's, p2 is A's).
NEWCOMBE_TABLE_II = [
    ((48, 80, 56, 70), 0.2000, 0.0524, 0.3339),
    ((3, 10, 9, 10), 0.6000, 0.1705, 0.8090),
    ((0, 29, 5, 56), 0.0893, -0.0381, 0.1926),
]


@pytest.mark.parametrize("case,difference,low,high", NEWCOMBE_TABLE_II)
def test_proportion_difference_newcombe_table_ii(case, difference, low, high):
    got = proportion_difference(*case)
    assert got["difference"] == pytest.approx(difference, abs=5e-5)
    assert got["low"] == pytest.approx(low, abs=5e-5)
    assert got["high"] == pytest.approx(high, abs=5e-5)


def test_proportion_difference_is_b_minus_a():
    better_b = proportion_difference(240, 300, 270, 300)  # A 0.80, B 0.90
    assert better_b["difference"] == pytest.approx(0.1)
    assert better_b["low"] > 0 and better_b["pvalue"] < 0.01
    worse_b = proportion_difference(270, 300, 240, 300)
    assert worse_b["difference"] == pytest.approx(-0.1)
    assert worse_b["low"] == pytest.approx(-better_b["high"]) and worse_b["high"] == pytest.approx(-better_b["low"])
    assert worse_b["pvalue"] == pytest.approx(better_b["pvalue"])
    # unequal sizes: the interval is not symmetric about the difference, and swapping mirrors it
    d, swapped = proportion_difference(10, 40, 70, 100), proportion_difference(70, 100, 10, 40)
    assert d["high"] - d["difference"] != pytest.approx(d["difference"] - d["low"], abs=1e-3)
    assert swapped["low"] == pytest.approx(-d["high"]) and swapped["high"] == pytest.approx(-d["low"])


def test_proportion_difference_edges_and_checks():
    for case in [(0, 0, 3, 5), (3, 5, 0, 0), (0, 0, 0, 0)]:
        got = proportion_difference(*case)
        assert set(got) == {"difference", "low", "high", "pvalue"} and all(math.isnan(v) for v in got.values())
    none = proportion_difference(0, 10, 0, 20)  # pooled proportion 0: no evidence either way
    assert none["difference"] == 0.0 and none["pvalue"] == 1.0 and none["low"] < 0 < none["high"]
    everything = proportion_difference(10, 10, 20, 20)  # pooled proportion 1
    assert everything["difference"] == 0.0 and everything["pvalue"] == 1.0
    extreme = proportion_difference(0, 50, 50, 50)
    assert extreme["difference"] == 1.0 and extreme["high"] == 1.0 and 0.85 < extreme["low"] < 1.0
    assert proportion_difference(3, 7, 5, 9, confidence=0.99)["low"] < proportion_difference(3, 7, 5, 9)["low"]
    for bad in [(6, 5, 1, 5), (1, 5, 6, 5), (-1, 5, 1, 5), (1, -5, 1, 5), (1, 5, 1.0, 5), (1, 5, 1, True)]:
        with pytest.raises(ValueError):
            proportion_difference(*bad)
    with pytest.raises(ValueError):
        proportion_difference(1, 5, 1, 5, confidence=1.0)


def test_proportion_difference_coverage():
    # Method 10 at n = 300 per arm and p near 0.8 covers close to the nominal 95%.
    rng = np.random.default_rng(12)
    n, reps, p_a, p_b = 300, 2000, 0.80, 0.75
    successes_a, successes_b = rng.binomial(n, p_a, reps), rng.binomial(n, p_b, reps)
    covered = 0
    for sa, sb in zip(successes_a, successes_b):
        d = proportion_difference(int(sa), n, int(sb), n)
        covered += d["low"] <= p_b - p_a <= d["high"]
    assert 0.93 <= covered / reps <= 0.97


# -- mean differences: Welch and paired, normal approximation --------------------------------


def sums(x):
    return float(np.sum(x)), float(np.sum(np.square(x))), int(x.size)


# z for t moves a two-sided p-value by about (z^4 + 2 z^2) / (4 df) relatively, 6e-4 at z = 1.6 and
# 5000 degrees of freedom: the large-sample tests set the difference to put |z| below 1.6.


@pytest.mark.parametrize("seed,shift", [(13, 0.01), (14, 0.005), (15, 0.018), (16, -0.027)])
def test_mean_difference_matches_welch_on_large_samples(seed, shift):
    # Absolute errors of two versions: skewed, different spreads, different sizes; se is about 0.018.
    rng = np.random.default_rng(seed)
    a = rng.exponential(1.0, 5000)
    b = rng.exponential(0.8, 5500)
    b += a.mean() - b.mean() + shift
    got = mean_difference(*sums(a), *sums(b))
    assert got["difference"] == pytest.approx(b.mean() - a.mean(), rel=1e-12, abs=1e-14)
    se = math.sqrt(a.var(ddof=1) / a.size + b.var(ddof=1) / b.size)
    assert got["se"] == pytest.approx(se, rel=1e-9)
    welch = ttest_ind(b, a, equal_var=False)
    assert 0.1 < welch.pvalue
    assert got["pvalue"] == pytest.approx(welch.pvalue, rel=1e-3)
    assert math.copysign(1, got["difference"]) == math.copysign(1, welch.statistic)
    ci = welch.confidence_interval(0.95)  # Student's t with Welch's degrees of freedom
    assert (got["high"] - got["low"]) == pytest.approx(ci.high - ci.low, rel=1e-3)
    assert got["low"] == pytest.approx(got["difference"] - norm.ppf(0.975) * se, rel=1e-12)
    wide = mean_difference(*sums(a), *sums(b), confidence=0.99)
    assert wide["high"] - wide["low"] == pytest.approx(2 * norm.ppf(0.995) * se, rel=1e-9)


@pytest.mark.parametrize("seed,shift", [(17, -0.004), (18, 0.008), (19, -0.012)])
def test_paired_mean_difference_matches_paired_t_on_large_samples(seed, shift):
    rng = np.random.default_rng(seed)
    hardness = rng.exponential(1.0, 5000)  # shared by both versions: what pairing cancels
    a = hardness * rng.uniform(0.5, 1.5, 5000)
    b = hardness * rng.uniform(0.5, 1.5, 5000)
    b += a.mean() - b.mean() + shift  # se of the mean of d is about 0.008
    d = b - a
    got = paired_mean_difference(*sums(d))
    assert got["difference"] == pytest.approx(np.mean(d), rel=1e-12)
    assert got["se"] == pytest.approx(np.std(d, ddof=1) / math.sqrt(d.size), rel=1e-9)
    paired = ttest_rel(b, a)
    assert 0.1 < paired.pvalue
    assert got["pvalue"] == pytest.approx(paired.pvalue, rel=1e-3)
    assert math.copysign(1, got["difference"]) == math.copysign(1, paired.statistic)
    z = norm.ppf(0.975)
    assert got["low"] == pytest.approx(np.mean(d) - z * got["se"], rel=1e-12)
    assert got["high"] == pytest.approx(np.mean(d) + z * got["se"], rel=1e-12)
    # the same data taken as independent samples: same difference, a much wider interval
    independent = mean_difference(*sums(a), *sums(b))
    assert independent["difference"] == pytest.approx(got["difference"], rel=1e-9, abs=1e-12)
    assert independent["se"] > 1.5 * got["se"]


def test_mean_differences_are_b_minus_a():
    a = np.array([1.0, 2.0, 3.0, 4.0])
    b = np.array([5.0, 6.0, 8.0, 9.0])  # B's values larger: positive difference
    forward = mean_difference(*sums(a), *sums(b))
    assert forward["difference"] == 4.5 and forward["low"] > 0
    backward = mean_difference(*sums(b), *sums(a))
    assert backward["difference"] == -4.5 and backward["high"] < 0
    assert backward["low"] == pytest.approx(-forward["high"]) and backward["pvalue"] == pytest.approx(forward["pvalue"])
    # var_a = 5/3, var_b = 10/3: se = sqrt((5/3 + 10/3) / 4)
    assert forward["se"] == pytest.approx(math.sqrt(5 / 4))
    assert forward["pvalue"] == pytest.approx(2 * norm.sf(4.5 / math.sqrt(5 / 4)))
    paired = paired_mean_difference(*sums(b - a))  # d = 4, 4, 5, 5
    assert paired["difference"] == 4.5 and paired["se"] == pytest.approx(math.sqrt((1 / 3) / 4)) and paired["low"] > 0
    flipped = paired_mean_difference(*sums(a - b))
    assert flipped["difference"] == -4.5 and flipped["high"] == pytest.approx(-paired["low"])


def test_mean_difference_coverage():
    # Skewed values, 300 per arm: the normal interval covers close to 95%.
    rng = np.random.default_rng(20)
    reps, n = 2000, 300
    a, b = rng.exponential(1.0, (reps, n)), rng.exponential(0.9, (reps, n))
    covered = 0
    for row_a, row_b in zip(a, b):
        d = mean_difference(*sums(row_a), *sums(row_b))
        covered += d["low"] <= 0.9 - 1.0 <= d["high"]
    assert 0.93 <= covered / reps <= 0.97


def test_mean_differences_nan_below_two_values():
    for got in [mean_difference(1.0, 1.0, 1, 3.0, 5.0, 2), mean_difference(3.0, 5.0, 2, 0.0, 0.0, 0),
                mean_difference(0.0, 0.0, 0, 0.0, 0.0, 0), paired_mean_difference(1.0, 1.0, 1),
                paired_mean_difference(0.0, 0.0, 0)]:
        assert set(got) == {"difference", "se", "low", "high", "pvalue"}
        assert all(math.isnan(v) for v in got.values())
    assert not math.isnan(mean_difference(1.0, 1.0, 2, 3.0, 5.0, 2)["pvalue"])


def test_mean_differences_zero_standard_error():
    # every value 0.5 in A, 0.5 or 0.75 in B
    same = mean_difference(5.0, 2.5, 10, 10.0, 5.0, 20)
    assert same == {"difference": 0.0, "se": 0.0, "low": 0.0, "high": 0.0, "pvalue": 1.0}
    apart = mean_difference(5.0, 2.5, 10, 3.0, 2.25, 4)
    assert apart == {"difference": 0.25, "se": 0.0, "low": 0.25, "high": 0.25, "pvalue": 0.0}
    assert paired_mean_difference(0.0, 0.0, 7) == {"difference": 0.0, "se": 0.0, "low": 0.0, "high": 0.0, "pvalue": 1.0}
    assert paired_mean_difference(-1.0, 0.25, 4) == {"difference": -0.25, "se": 0.0, "low": -0.25, "high": -0.25,
                                                     "pvalue": 0.0}


def test_mean_differences_clip_rounding_below_zero_variance():
    # A sum of squares one ulp below sum^2 / n: impossible for exact data, possible after rounding.
    n, total = 3, 0.1 + 0.2 + 0.3
    total_sq = float(np.nextafter(total * (total / n), 0.0))
    got = mean_difference(total, total_sq, n, total, total_sq, n)
    assert got == {"difference": 0.0, "se": 0.0, "low": 0.0, "high": 0.0, "pvalue": 1.0}
    assert paired_mean_difference(total, total_sq, n)["se"] == 0.0


def test_mean_differences_checks():
    good = (1.0, 1.0, 2)
    for bad in [(1.0, 1.0, 2.0), (1.0, 1.0, -1), (1.0, 1.0, True), (math.nan, 1.0, 2), (1.0, math.inf, 2),
                (1.0, -0.5, 2)]:
        with pytest.raises(ValueError):
            mean_difference(*bad, *good)
        with pytest.raises(ValueError):
            mean_difference(*good, *bad)
        with pytest.raises(ValueError):
            paired_mean_difference(*bad)
    for confidence in (0.0, 1.0, 1.5):
        with pytest.raises(ValueError):
            mean_difference(*good, *good, confidence=confidence)
        with pytest.raises(ValueError):
            paired_mean_difference(*good, confidence=confidence)
