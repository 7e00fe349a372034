"""ADWIN against river.drift.ADWIN (river 0.26.1): identical drift positions and window statistics.

river's ADWIN is compiled code updated one value at a time; driftwire's keeps the same
exponential histogram but merges buffered values in batches. Every comparison below is exact:
drift positions, and the window's width, total and variance bit for bit.
"""

from __future__ import annotations

import math

import numpy as np
import orjson
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from river import drift

from driftwire.detectors import ADWIN, DetectorBank, from_state, make
from driftwire.detectors import adwin as adwin_module
from river_reference import REAL_KINDS, interleave, make_stream, split_detections

KINDS = REAL_KINDS


lengths = st.sampled_from([300, 1000, 3000, 6000]) | st.integers(20, 6000)
streams = st.builds(make_stream, st.sampled_from(KINDS), lengths, st.integers(0, 2**32 - 1))

params = st.fixed_dictionaries(
    {
        "delta": st.sampled_from([0.002, 1e-5, 0.05, 0.3]) | st.floats(1e-6, 0.9),
        "clock": st.sampled_from([32, 1, 2, 5]) | st.integers(1, 100),
        "max_buckets": st.integers(1, 9) | st.sampled_from([16, 40]),
        "min_window_length": st.integers(1, 40),
        "grace_period": st.integers(0, 300),
    }
)

default_or_params = st.just({}) | params


def river_run(values, **kw):
    """River's drift positions, its final detector, and how many values it took.

    With max_buckets=1 river 0.26.1 can leave an empty level on top of its histogram and
    panic on its next cut; the comparison then stops where river stopped.
    """
    det = drift.ADWIN(**kw)
    drifts = []
    for i, x in enumerate(values.tolist()):
        try:
            det.update(x)
        except BaseException as e:  # pyo3's PanicException derives from BaseException
            if type(e).__name__ != "PanicException" or kw.get("max_buckets") != 1:
                raise
            return np.array(drifts, dtype=np.int64), None, i
        if det.drift_detected:
            drifts.append(i)
    return np.array(drifts, dtype=np.int64), det, len(values)


def assert_same_window(ours: ADWIN, theirs) -> None:
    assert ours.width == theirs.width
    assert ours.total == theirs.total
    assert ours.variance == theirs.variance
    assert ours.estimation == theirs.estimation


def round_trip(det: ADWIN) -> ADWIN:
    return ADWIN.from_state(orjson.loads(orjson.dumps(det.get_state())))


# -- identical to river ---------------------------------------------------------------------


@settings(max_examples=2000, deadline=None)
@given(values=streams, kw=default_or_params)
def test_update_many_matches_river(values, kw):
    expected, theirs, stop = river_run(values, **kw)
    ours = ADWIN(**kw)
    assert np.array_equal(ours.update_many(values[:stop]), expected)
    if theirs is not None:
        assert_same_window(ours, theirs)


@settings(max_examples=300, deadline=None)
@given(values=streams, kw=default_or_params)
def test_update_matches_river(values, kw):
    expected, theirs, stop = river_run(values, **kw)
    ours = ADWIN(**kw)
    got = [i for i, x in enumerate(values[:stop].tolist()) if ours.update(x)]
    assert got == expected.tolist()
    # drift_detected holds for exactly the update that raised it, as in river
    assert ours.drift_detected == (stop - 1 in got)
    if theirs is not None:
        assert_same_window(ours, theirs)


@settings(max_examples=800, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(values=streams, kw=default_or_params, data=st.data())
def test_split_batches_with_checkpoints_match_river(values, kw, data):
    expected, theirs, stop = river_run(values, **kw)
    values = values[:stop]
    cuts = data.draw(st.lists(st.integers(0, len(values)), max_size=12))
    drifts, warnings = split_detections(ADWIN(**kw), values, cuts)
    assert np.array_equal(drifts, expected)
    assert warnings.size == 0


@pytest.mark.parametrize(
    "kw",
    [
        {},
        {"max_buckets": 2, "clock": 1},
        {"max_buckets": 7, "min_window_length": 30, "grace_period": 500},
        {"delta": 0.2, "clock": 17, "max_buckets": 3},
    ],
)
def test_long_streams_with_many_merges_match_river(kw):
    # 2**17 values reach level 15 of the histogram; the mean moves every 20k values
    rng = np.random.default_rng(len(kw))
    n = 2**17
    values = rng.normal(0, 1, n) + np.repeat(rng.normal(0, 0.3, n // 20_000 + 1), 20_000)[:n]
    expected, theirs, _ = river_run(values, **kw)
    ours = ADWIN(**kw)
    assert np.array_equal(ours.update_many(values), expected)
    assert_same_window(ours, theirs)
    drifts, _ = split_detections(ADWIN(**kw), values, [1, 77_777, 100_000])
    assert np.array_equal(drifts, expected)


@pytest.mark.slow
def test_million_values_match_river():
    rng = np.random.default_rng(2024)
    n = 10**6
    values = np.r_[
        rng.normal(0, 1, n // 2),
        rng.normal(0, 1, n // 4) + 0.05,
        rng.standard_t(3, n - n // 2 - n // 4),
    ]
    expected, theirs, _ = river_run(values)
    ours = ADWIN()
    assert np.array_equal(ours.update_many(values), expected)
    assert_same_window(ours, theirs)


def test_max_buckets_one_goes_on_where_river_fails():
    # river keeps an emptied level on top of its histogram and panics on the next cut
    rng = np.random.default_rng(5)
    values = np.r_[rng.normal(0, 1, 3000), rng.normal(4, 1, 3000), rng.normal(-4, 1, 3000)]
    kw = {"max_buckets": 1, "clock": 1, "min_window_length": 1, "grace_period": 0}
    expected, theirs, stop = river_run(values, **kw)
    assert theirs is None and stop < len(values)
    ours = ADWIN(**kw)
    assert np.array_equal(ours.update_many(values[:stop]), expected)
    assert ours.update_many(values[stop:]).size > 0
    assert ours.width == _bucket_sizes(ours).sum()


@settings(max_examples=60, deadline=None)
@given(values=streams, kw=params)
def test_screen_never_passes_a_window_with_a_cut(values, kw):
    # The screen that spares most clock ticks the exact scan must never rule out a cut that the
    # exact scan finds. Between ticks (clock 7) the window holds values no test has seen yet, so
    # some of the windows checked here do have cuts; the screen's cache is as the loops left it.
    det = ADWIN(**{**kw, "clock": 7, "grace_period": 0})
    for x in values[:1500].tolist():
        det.update(x)
        if adwin_module._no_cut(det._state.copy(), det._params):
            assert not adwin_module._find_cut(det._state.copy(), det._params)


# -- the frame's contracts ------------------------------------------------------------------


@settings(max_examples=150, deadline=None)
@given(values=streams, kw=default_or_params, data=st.data())
def test_non_finite_values_are_skipped(values, kw, data):
    spots = data.draw(st.lists(st.integers(0, len(values)), max_size=20))
    junk = data.draw(st.lists(st.sampled_from([math.nan, math.inf, -math.inf]), min_size=len(spots),
                              max_size=len(spots)))
    dirty = np.insert(values, spots, junk)
    clean_drifts = ADWIN(**kw).update_many(values)
    ours = ADWIN(**kw)
    dirty_drifts = ours.update_many(dirty)
    # positions in the dirty stream map back to the clean one
    finite = np.flatnonzero(np.isfinite(dirty))
    assert np.array_equal(np.searchsorted(finite, dirty_drifts), clean_drifts)
    assert ours.n_skipped == len(spots)
    reference = ADWIN(**kw)
    reference.update_many(values)
    assert (ours.width, ours.total, ours.variance) == (
        reference.width, reference.total, reference.variance,
    )


def test_bank_matches_independent_detectors():
    rng = np.random.default_rng(3)
    kinds = ["abrupt", "segments", "binary", "student_t", "constant_runs", "variance"]
    series = [make_stream(kinds[i % len(kinds)], 3000, i) for i in range(12)]
    bank = DetectorBank(ADWIN(clock=4, max_buckets=3), capacity=2)
    slots = [bank.add() for _ in series]
    order, values = interleave(series, rng)
    drifts, warnings = bank.update(np.array(slots)[order], values)
    assert warnings.size == 0
    for s, slot in enumerate(slots):
        mine = np.flatnonzero(order == s)
        expected = ADWIN(clock=4, max_buckets=3).update_many(series[s])
        assert np.array_equal(np.searchsorted(mine, drifts[np.isin(drifts, mine)]), expected)
        assert bank.statistic(slot) == bank.detector(slot).estimation
    assert sum(len(ADWIN(clock=4, max_buckets=3).update_many(x)) for x in series) == drifts.size


def test_checkpoint_grows_with_the_logarithm_of_the_window():
    det = ADWIN()
    rng = np.random.default_rng(0)
    block = 2 * 5 + 1
    for n in (10**3, 10**4, 10**5, 10**6):
        det.update_many(rng.normal(0, 1, n - det.width))
        assert det.width == n  # no false alarm on stationary data at river's defaults
        assert len(det.get_state()["state"]) == det.checkpoint_size
        # the buffer, then one block of 2 * max_buckets + 1 floats per level of the histogram
        assert det.n_levels <= math.log2(n / 5) + 2
        assert det.checkpoint_size <= adwin_module._BUFFER + 5 + adwin_module.PENDING_CAP + (
            det.n_levels - 1
        ) * block
    restored = round_trip(det)
    tail = rng.normal(0, 1, 5000) + 2
    assert np.array_equal(restored.update_many(tail), det.update_many(tail))


def test_read_outs():
    det = ADWIN()
    assert (det.width, det.estimation, det.variance, det.total) == (0, 0.0, 0.0, 0.0)
    assert det.statistic == 0.0 and det.threshold is None
    det.update_many([1.0, 2.0, 3.0, 4.0, 5.0])
    assert (det.width, det.estimation, det.variance, det.total) == (5, 3.0, 10.0, 15.0)
    assert det.statistic == det.estimation and det.statistic_name == "window_mean"


def test_registry_round_trip():
    det = make("adwin", delta=0.01, clock=8)
    det.update_many(np.arange(100.0))
    again = from_state(orjson.loads(orjson.dumps(det.get_state())))
    assert isinstance(again, ADWIN) and again.params == det.params
    assert again.get_state() == det.get_state()


# -- level capacity -------------------------------------------------------------------------


class SmallADWIN(ADWIN):
    max_levels = 6


def _bucket_sizes(det: ADWIN) -> np.ndarray:
    """Number of values summarized per bucket, oldest first, after merging the buffer."""
    state = det._state.copy()
    adwin_module._materialize(state, det._params)
    block = det._block()
    upper = det._upper()
    sizes = []
    for level in range(int(state[adwin_module._LEVELS]) - 1, 0, -1):
        sizes += [2**level] * int(state[upper + (level - 1) * block])
    sizes += [1] * int(state[adwin_module._COUNT0])
    return np.array(sizes)


@pytest.mark.parametrize("max_buckets", [1, 2, 5])
def test_full_histogram_forgets_its_oldest_buckets(max_buckets):
    rng = np.random.default_rng(max_buckets)
    values = rng.normal(0, 1, 20_000) + np.repeat(rng.normal(0, 5, 10), 2_000)
    det = SmallADWIN(max_buckets=max_buckets, clock=4)
    expected = det.update_many(values)
    assert expected.size > 0
    # at most max_buckets buckets of each of the 6 sizes, and the buffered values
    assert det.n_levels == 6
    assert det.width <= max_buckets * (2**6 - 1) + adwin_module.PENDING_CAP
    assert det.width == _bucket_sizes(det).sum()
    assert det.total == pytest.approx(values[-det.width :].sum(), abs=1e-9)
    drifts, _ = split_detections(SmallADWIN(max_buckets=max_buckets, clock=4), values, [3, 999, 12_345])
    assert np.array_equal(drifts, expected)


def test_max_levels_must_leave_room_for_merges():
    class Tiny(ADWIN):
        max_levels = 1

    with pytest.raises(ValueError, match="max_levels"):
        Tiny()


# -- validation -----------------------------------------------------------------------------


@pytest.mark.parametrize(
    "kw",
    [
        {"delta": 0.0},
        {"delta": 1.0},
        {"delta": -0.1},
        {"clock": 0},
        {"clock": 2.5},
        {"max_buckets": 0},
        {"max_buckets": True},
        {"min_window_length": 0},
        {"grace_period": -1},
    ],
)
def test_invalid_parameters(kw):
    with pytest.raises(ValueError):
        ADWIN(**kw)


def _corrupt(edit):
    det = ADWIN(max_buckets=3)
    det.update_many(np.random.default_rng(1).normal(0, 1, 777))
    d = orjson.loads(orjson.dumps(det.get_state()))
    edit(d["state"])
    return d


@pytest.mark.parametrize(
    "edit",
    [
        lambda s: s.pop(),
        lambda s: s.append(0.0),
        lambda s: s.__setitem__(adwin_module._LEVELS, 99.0),
        lambda s: s.__setitem__(adwin_module._LEVELS, 0.0),
        lambda s: s.__setitem__(adwin_module._COUNT0, 1.5),
        lambda s: s.__setitem__(adwin_module._PHASE, 32.0),
        # the bucket count of level 1, the first entry after the buffered values
        lambda s: s.__setitem__(adwin_module._BUFFER + int(s[adwin_module._COUNT0]), 4.0),
    ],
)
def test_corrupt_checkpoints_are_refused(edit):
    with pytest.raises(ValueError):
        ADWIN.from_state(_corrupt(edit))


def test_checkpoint_of_another_detector_is_refused():
    d = ADWIN().get_state()
    d["detector"] = "page_hinkley"
    with pytest.raises(ValueError):
        ADWIN.from_state(d)
