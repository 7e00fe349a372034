"""CUSUM against a plain-Python transcription of the tabular CUSUM equations.

river has no CUSUM: the reference below is written from Page (1954) and Montgomery's tabular
form, with river's conventions (reset on the update after a drift).
"""

from __future__ import annotations

import math

import numpy as np
import orjson
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from driftwire.detectors import CUSUM, DetectorBank
from river_reference import interleave, make_stream, split_detections


class ReferenceCUSUM:
    """Standardized two-sided tabular CUSUM, one value at a time, in plain Python."""

    def __init__(self, target=None, k=0.5, h=10.0, sigma=None, min_instances=30, mode="both"):
        self.target, self.k, self.h, self.sigma = target, k, h, sigma
        self.min_instances, self.mode = min_instances, mode
        self.drift_detected = False
        self._reset()

    def _reset(self):
        self.n, self.mean, self.m2 = 0, 0.0, 0.0
        self.mu, self.sd = self.target, self.sigma
        self.c_up = self.c_down = 0.0

    def update(self, x):
        if self.drift_detected:
            self._reset()
        self.drift_detected = False
        self.n += 1
        if self.mu is None or self.sd is None or self.n <= self.min_instances:
            self._reference(x)
            return
        z = (x - self.mu) / self.sd
        self.c_up = max(0.0, self.c_up + z - self.k)
        self.c_down = max(0.0, self.c_down - z - self.k)
        up, down = self.c_up > self.h, self.c_down > self.h
        self.drift_detected = {"up": up, "down": down, "both": up or down}[self.mode]

    def _reference(self, x):
        # Welford's running mean and sum of squares (ddof=1 standard deviation)
        delta = x - self.mean
        self.mean = self.mean + delta / self.n
        self.m2 += delta * (x - self.mean)
        if self.n < self.min_instances:
            return
        if self.sigma is None:
            sd = math.sqrt(self.m2 / (self.n - 1))
            if sd == 0.0:
                return
            self.sd = sd
        if self.target is None:
            self.mu = self.mean


def reference_detections(params, values):
    det = ReferenceCUSUM(**params)
    out = []
    for i, x in enumerate(values.tolist()):
        det.update(x)
        if det.drift_detected:
            out.append(i)
    return np.array(out, dtype=np.int64)


KINDS = ["abrupt", "gradual", "variance", "student_t", "cauchy", "constant_runs", "ties", "binary"]


streams = st.one_of(
    st.builds(make_stream, st.sampled_from(KINDS), st.integers(1, 3000), st.integers(0, 2**32 - 1)),
    st.lists(st.sampled_from([0.0, 1.0, -2.5, 3.0]), max_size=300).map(np.array),
)


@st.composite
def parameters(draw):
    target = draw(st.one_of(st.none(), st.floats(-2, 2)))
    sigma = draw(st.one_of(st.none(), st.floats(0.1, 5)))
    needed = 2 if sigma is None else 1 if target is None else 0
    return dict(
        target=target,
        sigma=sigma,
        k=draw(st.sampled_from([0.0, 0.25, 0.5, 1.0, 1.5])),
        h=draw(st.sampled_from([0.5, 2.0, 4.0, 5.0, 8.0, 10.0])),
        min_instances=draw(st.integers(needed, 60)),
        mode=draw(st.sampled_from(["up", "down", "both"])),
    )


# -- identical to the reference -------------------------------------------------------------


@settings(max_examples=300, deadline=None)
@given(streams, parameters(), st.lists(st.integers(1, 2999), max_size=8))
def test_identical_to_reference(values, params, cuts):
    expected = reference_detections(params, values)
    det = CUSUM(**params)
    np.testing.assert_array_equal(
        np.flatnonzero([det.update(x) for x in values.tolist()]), expected
    )
    np.testing.assert_array_equal(CUSUM(**params).update_many(values), expected)
    cuts = [c for c in cuts if c < len(values)]
    drifts, warnings = split_detections(CUSUM(**params), values, cuts)
    np.testing.assert_array_equal(drifts, expected)
    assert warnings.size == 0


@settings(max_examples=50, deadline=None)
@given(streams, parameters())
def test_state_matches_reference_after_every_update(values, params):
    ref, det = ReferenceCUSUM(**params), CUSUM(**params)
    for x in values.tolist()[:300]:
        ref.update(x)
        det.update(x)
        assert det.drift_detected == ref.drift_detected
        up_down = {"up": ref.c_up, "down": ref.c_down, "both": max(ref.c_up, ref.c_down)}
        assert det.statistic == up_down[params["mode"]]
        for ours, theirs in ((det.estimated_target, ref.mu), (det.estimated_sigma, ref.sd)):
            assert (math.isnan(ours) and theirs is None) or ours == theirs


def test_reference_sample_estimates():
    values = np.random.default_rng(1).normal(5.0, 2.0, 100)
    det = CUSUM(min_instances=40)
    det.update_many(values[:39])
    assert math.isnan(det.estimated_target) and math.isnan(det.estimated_sigma)
    det.update(values[39])
    assert det.estimated_target == pytest.approx(values[:40].mean(), rel=1e-12)
    assert det.estimated_sigma == pytest.approx(values[:40].std(ddof=1), rel=1e-12)
    assert det.statistic == 0.0
    known = CUSUM(target=1.0, sigma=3.0, min_instances=0)
    assert known.estimated_target == 1.0 and known.estimated_sigma == 3.0


def test_constant_reference_sample_is_extended():
    det = CUSUM(min_instances=10, h=2.0)
    assert det.update_many(np.zeros(500)).size == 0
    assert math.isnan(det.estimated_sigma)
    det.update(1.0)  # the first spread ends the reference sample, and is part of it
    assert det.estimated_sigma == pytest.approx(np.r_[np.zeros(500), 1.0].std(ddof=1))
    assert det.update_many(np.ones(5)).size > 0
    # with sigma given, a constant reference sample is fine
    det = CUSUM(sigma=1.0, min_instances=10, h=2.0)
    assert det.update_many(np.r_[np.zeros(20), np.ones(10)]).tolist() == [24]


def test_known_parameters_keep_signalling_while_off_target():
    det = CUSUM(target=0.0, sigma=1.0, min_instances=0, k=0.5, h=5.0, mode="up")
    # each value adds 1.5 to C+: drift on the 4th value of every run of 4
    assert det.update_many(np.full(12, 2.0)).tolist() == [3, 7, 11]
    assert CUSUM(target=0.0, sigma=1.0, min_instances=0, h=5.0, mode="down").update_many(
        np.full(12, 2.0)
    ).size == 0
    assert CUSUM(target=0.0, sigma=1.0, min_instances=0, h=5.0, mode="down").update_many(
        np.full(12, -2.0)
    ).tolist() == [3, 7, 11]


# -- NaN, batches, banks --------------------------------------------------------------------


@settings(max_examples=50, deadline=None)
@given(
    streams,
    parameters(),
    st.lists(
        st.tuples(st.integers(0, 3000), st.sampled_from([math.nan, math.inf, -math.inf])),
        max_size=20,
    ),
)
def test_nan_and_inf_are_skipped(values, params, inserts):
    dirty = values.tolist()
    for pos, bad in sorted(inserts, reverse=True):
        dirty.insert(min(pos, len(dirty)), bad)
    dirty = np.array(dirty)
    clean_det, dirty_det = CUSUM(**params), CUSUM(**params)
    clean = clean_det.update_many(values)
    finite_positions = np.flatnonzero(np.isfinite(dirty))
    np.testing.assert_array_equal(finite_positions[clean], dirty_det.update_many(dirty))
    assert dirty_det.n_skipped == len(inserts)
    np.testing.assert_array_equal(clean_det._state[3:], dirty_det._state[3:])


def test_bank_matches_independent_detectors():
    rng = np.random.default_rng(4)
    params = dict(k=0.5, h=4.0, min_instances=20)
    series = [make_stream(kind, 2000, i) for i, kind in enumerate(KINDS)]
    bank = DetectorBank(CUSUM(**params), capacity=3)
    slot_ids = [bank.add() for _ in series]
    order, values = interleave(series, rng)
    slots = np.array(slot_ids)[order]
    drifts, warnings = bank.update(slots, values)
    assert warnings.size == 0 and drifts.size > 0
    for s, slot in enumerate(slot_ids):
        alone = CUSUM(**params)
        expected = alone.update_many(series[s])
        mine = np.flatnonzero(order == s)
        mine_drifts = drifts[slots[drifts] == slot]
        np.testing.assert_array_equal(np.searchsorted(mine, mine_drifts), expected)
        np.testing.assert_array_equal(bank.detector(slot)._state, alone._state)
        assert bank.statistic(slot) == alone.statistic
        restored = CUSUM.from_state(orjson.loads(orjson.dumps(bank.get_state(slot))))
        np.testing.assert_array_equal(restored._state, alone._state)


# -- run lengths ----------------------------------------------------------------------------


def siegmund_arl(k: float, h: float, shift: float) -> float:
    """Siegmund's approximation of a one-sided CUSUM's average run length."""
    delta = shift - k
    b = h + 1.166
    if delta == 0:
        return b * b
    return (math.exp(-2 * delta * b) + 2 * delta * b - 1) / (2 * delta * delta)


def false_alarms(det, n_values, seed, chunk=1_000_000):
    rng = np.random.default_rng(seed)
    return sum(det.update_many(rng.normal(0, 1, chunk)).size for _ in range(n_values // chunk))


@pytest.mark.parametrize("h, n_values", [(5.0, 2_000_000), (10.0, 20_000_000)])
def test_false_alarm_rate_with_known_parameters(h, n_values):
    # two-sided ARL0: 1 / ARL = 1 / ARL+ + 1 / ARL-; about 470 at h=5, 70,700 at h=10
    arl0 = siegmund_arl(0.5, h, 0.0) / 2
    count = false_alarms(CUSUM(target=0.0, sigma=1.0, min_instances=0, h=h), n_values, seed=int(h))
    expected = n_values / arl0
    # run lengths are about geometric: the count's sd is about sqrt(expected); 4 sd, plus 3%
    # for the approximation
    assert abs(count - expected) <= 4 * math.sqrt(expected) + 0.03 * expected, (count, expected)


def test_false_alarms_with_estimated_parameters():
    # A fresh detector at the defaults, 1,000 values after its 30-value reference sample:
    # estimating target and sigma from 30 values makes about 28% of them false-alarm
    # (4,000 detectors in one bank).
    n_det, length = 4000, 1030
    bank = DetectorBank(CUSUM(), capacity=n_det)
    for _ in range(n_det):
        bank.add()
    rng = np.random.default_rng(3)
    values = rng.normal(0, 1, n_det * length)
    slots = np.tile(np.arange(n_det), length)
    drifts, _ = bank.update(slots, values)
    share = np.unique(slots[drifts]).size / n_det
    assert 0.22 < share < 0.34, share
    # and the long-run rate stays low: fewer than 50 per 10**6 values
    assert false_alarms(CUSUM(), 5_000_000, seed=5) < 250


def detection_delays(params, n_trials, seed, before=200, after=200):
    rng = np.random.default_rng(seed)
    delays = []
    for _ in range(n_trials):
        values = np.r_[rng.normal(0, 1, before), rng.normal(1, 1, after)]
        d = CUSUM(**params).update_many(values)
        d = d[d >= before]
        delays.append(d[0] - before + 1 if d.size else after + 1)
    return np.array(delays)


def test_detection_delay_after_a_one_sigma_shift():
    # known parameters: Siegmund's ARL1 for a one-sigma shift at k=0.5, h=10 is about 20.3
    delays = detection_delays(dict(target=0.0, sigma=1.0, min_instances=0), 1000, seed=1)
    assert abs(delays.mean() - siegmund_arl(0.5, 10.0, 1.0)) < 1.5, delays.mean()
    assert np.median(delays) < 22
    # estimated from 30 values (the defaults): a little slower, with a longer tail
    delays = detection_delays({}, 1000, seed=2)
    assert 20 < delays.mean() < 32, delays.mean()
    assert np.median(delays) < 25 and np.mean(delays > 200) < 0.01


# -- parameters and read-outs ---------------------------------------------------------------


@pytest.mark.parametrize(
    "params",
    [
        dict(mode="sideways"),
        dict(target=math.nan),
        dict(sigma=0.0),
        dict(sigma=-1.0),
        dict(sigma=math.inf),
        dict(k=-0.1),
        dict(h=0.0),
        dict(h=math.inf),
        dict(min_instances=1),
        dict(min_instances=0, sigma=1.0),
        dict(min_instances=2.5),
        dict(min_instances=True),
    ],
)
def test_invalid_parameters(params):
    with pytest.raises(ValueError):
        CUSUM(**params)


def test_minimal_reference_samples_are_accepted():
    CUSUM(min_instances=2)
    CUSUM(min_instances=1, sigma=1.0)
    CUSUM(min_instances=0, sigma=1.0, target=0.0)


def test_read_outs_and_registry():
    from driftwire.detectors import make

    det = make("cusum", h=4.0, mode="up")
    assert isinstance(det, CUSUM) and det.name == "cusum" and not det.has_warning
    assert det.threshold == 4.0 and det.statistic == 0.0
    assert det.statistic_name == "cumulative_sum"
    det.update_many(make_stream("abrupt", 500, 3))
    assert 0.0 <= det.statistic
    state = orjson.loads(orjson.dumps(det.get_state()))
    assert CUSUM.from_state(state).statistic == det.statistic


@pytest.mark.slow
def test_long_stream():
    rng = np.random.default_rng(9)
    means = rng.uniform(-3, 3, 20)
    values = np.concatenate([rng.normal(m, 1, 50_000) for m in means])
    values[rng.choice(values.size, 1000, replace=False)] = np.nan
    params = dict(h=8.0, min_instances=50)
    expected = CUSUM(**params).update_many(values)
    clean = values[np.isfinite(values)]
    np.testing.assert_array_equal(
        np.flatnonzero(np.isfinite(values))[reference_detections(params, clean)], expected
    )
    cuts = np.sort(rng.choice(np.arange(1, values.size), 30, replace=False)).tolist()
    np.testing.assert_array_equal(split_detections(CUSUM(**params), values, cuts)[0], expected)
    # every level change of at least one sigma is caught within 100 values, unless a false
    # alarm just before it put values from both sides into the reference sample
    for i in np.flatnonzero(np.abs(np.diff(means)) >= 1.0):
        start = (i + 1) * 50_000
        if ((expected >= start - 50) & (expected < start)).any():
            continue
        assert ((expected >= start) & (expected < start + 100)).any(), start
