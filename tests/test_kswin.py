"""KSWIN against scipy's KS test and river.drift.KSWIN.

River draws its older sample with Python's ``random``, driftwire with its own generator, so
detections are compared value for value only where the draw is forced (``window_size ==
2 * stat_size``: the whole older half is the sample); elsewhere every test is checked against
scipy on the exact samples it used, and the detection behaviour against river in distribution.
"""

from __future__ import annotations

import math

import numpy as np
import orjson
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from river import drift
from scipy import stats

from driftwire.detectors import KSWIN, DetectorBank
from driftwire.detectors.kswin import DEFAULT_SEED, ks_statistic, p_value_table
from river_reference import interleave, make_stream, river_detections, split_detections

# scipy warns when its exact p-value fails and it falls back to the asymptotic one
pytestmark = pytest.mark.filterwarnings("ignore:ks_2samp:RuntimeWarning")

KINDS = ["abrupt", "gradual", "variance", "student_t", "cauchy", "constant_runs", "ties", "binary"]


streams = st.builds(
    make_stream, st.sampled_from(KINDS), st.integers(150, 450), st.integers(0, 2**32 - 1)
)


def river_run(det, values):
    """River's drift positions and its p-value after every update."""
    drifts, p_values = [], []
    for i, x in enumerate(values.tolist()):
        det.update(x)
        if det.drift_detected:
            drifts.append(i)
        p_values.append(det.p_value)
    return np.array(drifts, dtype=np.int64), np.array(p_values)


def our_run(det, values):
    drifts, p_values = [], []
    for i, x in enumerate(values.tolist()):
        if det.update(x):
            drifts.append(i)
        p_values.append(det.p_value)
    return np.array(drifts, dtype=np.int64), np.array(p_values)


# -- the KS test itself ---------------------------------------------------------------------

samples = st.lists(
    st.one_of(st.integers(-3, 3).map(float), st.floats(-1e6, 1e6)), min_size=1, max_size=60
)


@settings(max_examples=300, deadline=None)
@given(samples, samples)
def test_ks_statistic_equals_scipy(a, b):
    a, b = np.array(a), np.array(b)
    assert ks_statistic(a, b) == stats.ks_2samp(a, b).statistic


def test_ks_statistic_equals_scipy_on_large_samples():
    # above 10,000 values per sample scipy reports the raw float gap instead of h / lcm
    rng = np.random.default_rng(3)
    for n1, n2 in [(10001, 12000), (20000, 20000), (5, 10001), (10000, 10000)]:
        a = np.round(rng.normal(0, 1, n1), 1)
        b = np.round(rng.normal(0.05, 1, n2), 1)
        assert ks_statistic(a, b) == stats.ks_2samp(a, b).statistic


@pytest.mark.parametrize("n", [1, 2, 7, 30, 64])
def test_p_value_table_is_scipy_p_value_of_each_statistic(n):
    rng = np.random.default_rng(n)
    table = p_value_table(n)
    assert len(table) == n + 1
    assert table[0] == 1.0
    assert all(table[k] >= table[k + 1] for k in range(n))
    # any two samples whose statistic is k / n have the table's p-value
    for _ in range(20):
        a, b = rng.integers(0, 6, n).astype(float), rng.integers(0, 8, n).astype(float)
        res = stats.ks_2samp(a, b, method="auto")
        assert table[round(res.statistic * n)] == res.pvalue


@settings(max_examples=12, deadline=None)
@given(
    streams,
    st.sampled_from([(100, 30), (50, 10), (41, 20), (120, 7)]),
    st.integers(0, 2**40),
)
def test_every_test_is_scipys_on_the_exact_samples(values, sizes, seed):
    window_size, stat_size = sizes
    det = KSWIN(alpha=0.01, window_size=window_size, stat_size=stat_size, seed=seed)
    window: list[float] = []
    tests = 0
    for x in values.tolist():
        drift_before = det.drift_detected
        hit = det.update(x)
        window = ([] if drift_before else window[-(window_size - 1):]) + [x]
        if len(window) < window_size:
            assert not hit and det.p_value == 0.0 and det.statistic == 0.0
            continue
        older, recent = det.tested_samples()
        np.testing.assert_array_equal(recent, np.sort(window[-stat_size:]))
        pool = list(window[: window_size - stat_size])
        for v in older.tolist():  # drawn without replacement from the older positions
            pool.remove(v)
        res = stats.ks_2samp(older, recent, method="auto")
        assert det.statistic == res.statistic
        assert det.p_value == res.pvalue
        assert hit == (res.pvalue <= 0.01 and res.statistic > 0.1)
        tests += 1
    assert tests > 0 or len(values) < window_size


# -- value-for-value parity with river where the draw is forced -----------------------------

forced = st.sampled_from(
    [
        dict(),
        dict(alpha=0.05, window_size=20, stat_size=10),
        dict(alpha=0.001, window_size=100, stat_size=50),
        dict(alpha=0.2, window_size=8, stat_size=4),
        dict(alpha=1.0, window_size=40, stat_size=20),
    ]
)


def forced_params(params):
    # with window_size == 2 * stat_size river's draw is a permutation of the older half
    return {"window_size": 60, "stat_size": 30, **params}


@settings(max_examples=25, deadline=None)
@given(streams, forced, st.lists(st.integers(1, 449), max_size=6))
def test_identical_to_river_when_the_draw_is_forced(values, params, cuts):
    params = forced_params(params)
    expected, river_p = river_run(drift.KSWIN(seed=7, **params), values)
    drifts, p_values = our_run(KSWIN(**params), values)
    np.testing.assert_array_equal(drifts, expected)
    np.testing.assert_array_equal(p_values, river_p)
    np.testing.assert_array_equal(KSWIN(**params).update_many(values), expected)
    cuts = [c for c in cuts if c < len(values)]
    split, warnings = split_detections(KSWIN(seed=123, **params), values, cuts)
    np.testing.assert_array_equal(split, expected)
    assert warnings.size == 0


def test_identical_to_river_with_an_initial_window():
    rng = np.random.default_rng(5)
    start = rng.normal(0, 1, 70).tolist()
    values = np.r_[rng.normal(0, 1, 100), rng.normal(2, 1, 300)]
    for window in (start, start[:25]):
        river_det = drift.KSWIN(window_size=60, stat_size=30, window=window)
        expected, _ = river_detections(river_det, values)
        ours = KSWIN(window_size=60, stat_size=30, window=window)
        np.testing.assert_array_equal(ours.update_many(values), expected)
        assert expected.size > 0


# -- state, batching, banks -----------------------------------------------------------------


@settings(max_examples=30, deadline=None)
@given(
    streams,
    st.sampled_from(
        [
            dict(),
            dict(alpha=0.05, window_size=50, stat_size=10),
            dict(alpha=0.02, window_size=33, stat_size=16),
        ]
    ),
    st.integers(0, 2**32 - 1),
    st.lists(st.integers(1, 449), max_size=8),
)
def test_batches_and_state_round_trips_continue_identically(values, params, seed, cuts):
    expected, _ = our_run(KSWIN(seed=seed, **params), values)
    np.testing.assert_array_equal(KSWIN(seed=seed, **params).update_many(values), expected)
    cuts = [c for c in cuts if c < len(values)]
    split, _ = split_detections(KSWIN(seed=seed, **params), values, cuts)
    np.testing.assert_array_equal(split, expected)


def test_round_trip_restores_the_generator_and_samples():
    values = make_stream("abrupt", 400, 1)
    det = KSWIN(seed=99)
    det.update_many(values[:250])
    copy = KSWIN.from_state(orjson.loads(orjson.dumps(det.get_state())))
    np.testing.assert_array_equal(copy._state, det._state)
    for x in values[250:]:
        assert copy.update(x) == det.update(x)
        assert copy.tested_samples()[0].tolist() == det.tested_samples()[0].tolist()


@settings(max_examples=20, deadline=None)
@given(
    streams,
    st.lists(
        st.tuples(st.integers(0, 449), st.sampled_from([math.nan, math.inf, -math.inf])),
        max_size=20,
    ),
)
def test_nan_and_inf_are_skipped(values, inserts):
    dirty = values.tolist()
    for pos, bad in sorted(inserts, reverse=True):
        dirty.insert(min(pos, len(dirty)), bad)
    dirty = np.array(dirty)
    clean_det, dirty_det = KSWIN(alpha=0.02, seed=4), KSWIN(alpha=0.02, seed=4)
    clean = clean_det.update_many(values)
    finite_positions = np.flatnonzero(np.isfinite(dirty))
    np.testing.assert_array_equal(finite_positions[clean], dirty_det.update_many(dirty))
    assert dirty_det.n_skipped == len(inserts)
    np.testing.assert_array_equal(clean_det._state[3:], dirty_det._state[3:])
    assert KSWIN().update(math.nan) is False


def test_bank_matches_independent_detectors():
    rng = np.random.default_rng(8)
    params = dict(alpha=0.01, window_size=50, stat_size=15, seed=3)
    kinds = KINDS[:6]
    series = [make_stream(kind, 700, i) for i, kind in enumerate(kinds)]
    bank = DetectorBank(KSWIN(**params), capacity=2)
    slot_ids = [bank.add() for _ in series]
    order, values = interleave(series, rng)
    slots = np.array(slot_ids)[order]
    drifts, warnings = bank.update(slots, values)
    assert warnings.size == 0
    for s, slot in enumerate(slot_ids):
        mine = np.flatnonzero(order == s)
        expected = KSWIN(**params).update_many(series[s])
        alone = KSWIN(**params)
        np.testing.assert_array_equal(alone.update_many(series[s]), expected)
        mine_drifts = drifts[slots[drifts] == slot]
        np.testing.assert_array_equal(np.searchsorted(mine, mine_drifts), expected)
        assert bank.statistic(slot) == alone.statistic
        np.testing.assert_array_equal(bank.detector(slot)._state, alone._state)


# -- behaviour in distribution, against river -----------------------------------------------


def test_false_alarms_match_river_in_distribution():
    # The same stationary data for both; river with a few seeds, driftwire with many, so that
    # the spread of driftwire's counts over seeds calibrates the tolerance.
    rng = np.random.default_rng(2024)
    data = [rng.normal(0, 1, 10_000), rng.standard_t(3, 10_000)]
    ours = np.array(
        [sum(len(KSWIN(seed=s).update_many(x)) for x in data) for s in range(200)], dtype=float
    )
    river_counts = [
        len(river_detections(drift.KSWIN(seed=s), x)[0]) for s, x in zip([1, 2], data)
    ]
    river_total = sum(river_counts)
    per_10k = ours.mean() / 2
    assert 5 < per_10k < 25, per_10k  # river's own rate: 28 per 20,000 on N(0, 1)
    # 4 standard deviations of the seed-to-seed spread, on 20,000 values
    assert abs(river_total - ours.mean()) <= 4 * ours.std(), (river_counts, ours.mean(), ours.std())


def first_detection_after(det_update, values, change):
    for i, x in enumerate(values.tolist()):
        if det_update(x) and i >= change:
            return i - change
    return len(values) - change


def test_detection_delay_matches_river_in_distribution():
    change, after, n_streams = 200, 120, 30
    rng = np.random.default_rng(77)
    data = [np.r_[rng.normal(0, 1, change), rng.normal(1, 1, after)] for _ in range(n_streams)]

    def river_update(det):
        def update(x):
            det.update(x)
            return det.drift_detected

        return update

    river_delays = np.array(
        [
            first_detection_after(river_update(drift.KSWIN(seed=i)), x, change)
            for i, x in enumerate(data)
        ]
    )

    def ours_delay(seed, x):
        d = KSWIN(seed=seed).update_many(x)
        d = d[d >= change]
        return d[0] - change if d.size else after

    ours_means = np.array([np.mean([ours_delay(s, x) for x in data]) for s in range(200)])
    assert 10 < ours_means.mean() < 60, ours_means.mean()
    assert abs(river_delays.mean() - ours_means.mean()) <= 4 * ours_means.std(), (
        river_delays.mean(),
        ours_means.mean(),
        ours_means.std(),
    )


# -- parameters, seeds, read-outs -----------------------------------------------------------


def test_seeds():
    values = make_stream("student_t", 3000, 3)
    default = KSWIN(alpha=0.05).update_many(values)
    assert np.array_equal(default, KSWIN(alpha=0.05, seed=DEFAULT_SEED).update_many(values))
    runs = {tuple(KSWIN(alpha=0.05, seed=s).update_many(values)) for s in range(5)}
    assert len(runs) > 1
    a, b = KSWIN(seed=1), KSWIN(seed=1)
    assert np.array_equal(a.update_many(values), b.update_many(values))


def test_reset_after_drift_starts_from_an_empty_window():
    det = KSWIN()
    values = np.r_[np.zeros(100), np.ones(100)]
    for x in values:
        if det.update(x):
            break
    assert det.p_value <= 0.005 and det.statistic > 0.1
    # river cuts its window to the recent values on drift but empties it on the next update:
    # no test runs until the window has filled again
    for x in values[:99]:
        assert not det.update(x)
        assert det.p_value == 0.0 and det.statistic == 0.0
    det.update(0.0)
    assert det.p_value == 1.0


@pytest.mark.parametrize("alpha", [0.0, 1e-9, 0.005, 0.05, 1.0])
@pytest.mark.parametrize("stat_size", [5, 30, 50])
def test_threshold_is_the_smallest_statistic_that_signals(alpha, stat_size):
    det = KSWIN(alpha=alpha, window_size=2 * stat_size, stat_size=stat_size)
    table = p_value_table(stat_size)
    signalling = [
        k / stat_size for k in range(stat_size + 1) if table[k] <= alpha and k / stat_size > 0.1
    ]
    assert det.threshold == (signalling[0] if signalling else None)
    # every statistic at or above the threshold signals
    if signalling:
        statistics = [k / stat_size for k in range(stat_size + 1)]
        at_or_above = [d for d in statistics if d >= det.threshold]
        assert signalling == at_or_above


@pytest.mark.parametrize(
    "params",
    [
        dict(alpha=-0.1),
        dict(alpha=1.5),
        dict(stat_size=0),
        dict(stat_size=2.5),
        dict(window_size=59),
        dict(window_size=10.0),
        dict(seed=1.5),
        dict(window=[1.0, math.nan]),
    ],
)
def test_invalid_parameters(params):
    with pytest.raises(ValueError):
        KSWIN(**params)


def test_state_of_another_size_is_rejected():
    state = KSWIN().get_state()
    state["params"]["window_size"] = 61
    with pytest.raises(ValueError):
        KSWIN.from_state(state)


def test_read_outs_and_registry():
    from driftwire.detectors import make

    det = make("kswin", alpha=0.01, seed=5)
    assert isinstance(det, KSWIN) and det.name == "kswin" and not det.has_warning
    assert det.statistic == 0.0 and det.p_value == 0.0
    det.update_many(make_stream("abrupt", 400, 2))
    assert 0.0 <= det.statistic <= 1.0 and 0.0 <= det.p_value <= 1.0
    assert det.statistic_name == "ks_statistic"


@pytest.mark.slow
def test_long_stream():
    rng = np.random.default_rng(6)
    means = rng.uniform(-3, 3, 20)
    values = np.concatenate([rng.normal(m, 1, 50_000) for m in means])
    expected = KSWIN(seed=11).update_many(values)
    cuts = np.sort(rng.choice(np.arange(1, values.size), 30, replace=False)).tolist()
    np.testing.assert_array_equal(split_detections(KSWIN(seed=11), values, cuts)[0], expected)
    det = KSWIN(seed=11)
    one_by_one = [i for i, x in enumerate(values.tolist()) if det.update(x)]
    np.testing.assert_array_equal(one_by_one, expected)
    # every level change of at least one sigma is caught, unless a false alarm just before it
    # emptied the window: the window then holds no value from before the change
    for i in np.flatnonzero(np.abs(np.diff(means)) >= 1.0):
        start = (i + 1) * 50_000
        if ((expected >= start - 100) & (expected < start)).any():
            continue
        assert ((expected >= start) & (expected < start + 100)).any(), start
    # false alarms stay at the stationary rate (about 1.3 per 1,000 values)
    assert expected.size < 1.3e-3 * values.size * 1.5
