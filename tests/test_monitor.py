"""A partition's detection state without Kafka: routing, warm-up, detections, checkpoints."""

from __future__ import annotations

import logging

import numpy as np
import orjson
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from driftwire.detectors import window
from driftwire.stream.detect.monitor import CAPPED, DISABLED, PartitionMonitor, SeriesBudget
from driftwire.stream.settings import DetectionConfig


def config(**defaults) -> DetectionConfig:
    return DetectionConfig.model_validate({"defaults": {"warmup": 50, **defaults}})


def stream(seed: int, n: int = 3000, signals: int = 4):
    """Interleaved values of ``signals`` series, one of them shifting halfway."""
    rng = np.random.default_rng(seed)
    sids = rng.integers(0, signals, n)
    values = rng.normal(10.0, 3.0, n)
    values[(sids == 1) & (np.arange(n) > n // 2)] += 6.0
    return sids, values


def feed(monitor, sids, values, names) -> list[tuple]:
    ids = np.array([monitor.series_id("m", "v1", names[s]) for s in sids], dtype=np.int64)
    return [(d.position, monitor.series[d.series].signal, monitor.specs[d.detector].name, d.severity)
            for d in monitor.observe(ids, values)]


@settings(max_examples=25, deadline=None)
@given(seed=st.integers(0, 10_000), cut=st.integers(1, 2999))
def test_a_monitor_restored_from_its_checkpoint_detects_exactly_like_an_uninterrupted_one(seed, cut):
    names = ["a", "b", "c", "d"]
    sids, values = stream(seed)
    whole = PartitionMonitor("t", 0, config(), SeriesBudget(100))
    expected = feed(whole, sids, values, names)

    first = PartitionMonitor("t", 0, config(), SeriesBudget(100))
    got = feed(first, sids[:cut], values[:cut], names)
    snapshot = orjson.loads(orjson.dumps(first.get_state()))
    second = PartitionMonitor("t", 0, config(), SeriesBudget(100))
    second.set_state(snapshot)
    got += [(p + cut, *rest) for p, *rest in feed(second, sids[cut:], values[cut:], names)]
    assert got == expected


def test_the_shifted_series_alerts_and_the_others_do_not():
    sids, values = stream(3, n=20_000)
    monitor = PartitionMonitor("t", 0, config(), SeriesBudget(100))
    hits = feed(monitor, sids, values, ["a", "b", "c", "d"])
    assert {signal for _, signal, _, _ in hits} == {"b"}
    assert {detector for _, _, detector, _ in hits} == {"adwin", "page_hinkley"}


def test_warmup_values_form_the_reference_and_reach_the_detectors_once_it_is_complete():
    monitor = PartitionMonitor("t", 0, config(), SeriesBudget(100))
    sid = monitor.series_id("m", "v1", "x")
    ids = np.full(49, sid, dtype=np.int64)
    monitor.observe(ids, np.full(49, 5.0))
    assert monitor.reference(sid) == {"count": 49, "mean": 5.0, "std": 0.0}
    assert not monitor.observe(np.array([sid]), np.array([5.0])), "the reference itself raises nothing"
    # A jump right after the warm-up: the detectors saw the reference values first, so it shows.
    hits = monitor.observe(np.full(200, sid, dtype=np.int64), np.full(200, 50.0))
    assert {monitor.specs[d.detector].name for d in hits} == {"adwin", "page_hinkley"}


def test_disabled_signals_and_the_series_cap():
    cfg = DetectionConfig.model_validate({"models": {"m": {"signals": {"user_id": {"enabled": False}}}}})
    budget = SeriesBudget(2)
    monitor = PartitionMonitor("t", 0, cfg, budget)
    assert monitor.series_id("m", "v1", "user_id") == DISABLED
    assert monitor.series_id("m", "v1", "a") == 0
    assert monitor.series_id("m", "v1", "b") == 1
    assert monitor.series_id("m", "v1", "c") == CAPPED
    monitor.close()
    assert budget.used == 0


@pytest.mark.parametrize("detector", ["kswin", "cusum", "river:PageHinkley"])
def test_any_registered_detector_runs_in_a_monitor(detector):
    sids, values = stream(5, n=6000, signals=2)
    monitor = PartitionMonitor("t", 0, config(detectors=[{"name": detector}]), SeriesBudget(10))
    hits = feed(monitor, sids, values, ["a", "b"])
    assert hits and {signal for _, signal, _, _ in hits} <= {"a", "b"}
    restored = PartitionMonitor("t", 0, config(detectors=[{"name": detector}]), SeriesBudget(10))
    restored.set_state(orjson.loads(orjson.dumps(monitor.get_state())))
    assert len(restored.series) == len(monitor.series)


@settings(max_examples=40, deadline=None)
@given(seed=st.integers(0, 10_000), cuts=st.lists(st.integers(1, 399), max_size=6))
def test_the_standardizer_passes_each_series_the_same_values_however_the_stream_is_batched(seed, cuts):
    from driftwire.detectors.standardize import WarmupStandardizer

    rng = np.random.default_rng(seed)
    slots = rng.integers(0, 3, 400)
    values = rng.normal(100.0, 20.0, 400)
    values[rng.random(400) < 0.05] = np.nan
    values[rng.random(400) < 0.02] = np.inf

    def run(bounds):
        scaler = WarmupStandardizer(warmup=30)
        for _ in range(3):
            scaler.add()
        passed = []
        for a, b in zip(bounds[:-1], bounds[1:]):
            out = scaler.update(slots[a:b], values[a:b])
            passed += zip(out.slots.tolist(), (out.positions + a).tolist(), out.values.tolist())
        # Series are independent: what must not change is each series' sequence of values.
        return sorted(passed, key=lambda p: p[0])

    whole = run([0, 400])
    assert len(whole) == int(np.isfinite(values).sum())
    assert run(sorted({0, 400, *cuts})) == whole
    assert run(list(range(401))) == whole


def test_once_warm_the_standardizer_passes_finite_values_scaled_or_raw_as_each_series_asks():
    from driftwire.detectors.standardize import WarmupStandardizer

    scaler = WarmupStandardizer(warmup=4)
    scaled, raw = scaler.add(), scaler.add(standardize=False)
    warmup = np.array([1.0, 3.0, 1.0, 3.0])
    scaler.update(np.array([scaled] * 4 + [raw] * 4), np.concatenate([warmup, warmup + 10.0]))
    values = np.array([5.0, np.nan, 7.0, np.inf, -1.0, 20.0])
    slots = np.array([scaled, scaled, raw, raw, scaled, raw])
    out = scaler.update(slots, values)
    std = np.std(warmup, ddof=1)
    assert out.positions.tolist() == [0, 2, 4, 5]
    assert out.slots.tolist() == [scaled, raw, scaled, raw]
    assert out.values.tolist() == [(5.0 - 2.0) / std, 7.0, (-1.0 - 2.0) / std, 20.0]

    # a series restored warm takes the same path as one that warmed up here
    restored = WarmupStandardizer(warmup=4)
    restored.add()
    restored.add(standardize=False)
    restored.set_state(scaled, scaler.get_state(scaled))
    restored.set_state(raw, scaler.get_state(raw))
    again = restored.update(slots, values)
    assert again.values.tolist() == out.values.tolist()


def test_a_detector_chosen_for_some_signals_sees_exactly_their_values():
    # "b" shifts; "c" keeps the defaults, "a" and "b" add CUSUM: the CUSUM bank holds some series only.
    cfg = DetectionConfig.model_validate({
        "defaults": {"warmup": 50},
        "models": {"m": {"signals": {s: {"detectors": [{"name": "page_hinkley"}, {"name": "cusum"}]}
                                     for s in ("a", "b")}}},
    })
    sids, values = stream(11, n=8000, signals=3)
    monitor = PartitionMonitor("t", 0, cfg, SeriesBudget(10))
    order = ["c", "a", "b"]  # series ids 0, 1, 2: CUSUM holds slots 0 and 1 for series 1 and 2
    hits = feed(monitor, sids, values, order)

    expected = []
    for k, signal in enumerate(order):
        alone = PartitionMonitor("t", 0, cfg, SeriesBudget(10))
        at = np.flatnonzero(sids == k)
        expected += [(int(at[p]), *rest) for p, *rest in feed(alone, np.zeros(at.size, np.int64), values[at], [signal])]
    assert sorted(hits) == sorted(expected)
    assert {(s, d) for _, s, d, _ in hits} >= {("b", "cusum"), ("b", "page_hinkley")}
    assert not any(s == "c" and d == "cusum" for _, s, d, _ in hits)


def test_a_checkpoint_of_another_window_layout_restores_the_detectors_and_starts_the_windows_again(caplog):
    names = ["a", "b", "c", "d"]
    sids, values = stream(4)
    whole = PartitionMonitor("t", 0, config(), SeriesBudget(100))
    expected = feed(whole, sids, values, names)
    first = PartitionMonitor("t", 0, config(), SeriesBudget(100))
    got = feed(first, sids[:1500], values[:1500], names)
    snapshot = orjson.loads(orjson.dumps(first.get_state()))
    snapshot["windows"]["bank"]["format"] = window.STATE_FORMAT - 1
    second = PartitionMonitor("t", 0, config(), SeriesBudget(100))
    with caplog.at_level(logging.WARNING):
        second.set_state(snapshot)
    assert "t[0]: windows not restored from the checkpoint (window state of format" in caplog.text
    got += [(p + 1500, *rest) for p, *rest in feed(second, sids[1500:], values[1500:], names)]
    assert got == expected
    # the new windows take events: the group learns its reference again from its first events
    g = second.window_group("m", "v1")
    ids = np.array([second.series_id("m", "v1", "a")] * 3, dtype=np.int64)
    events = np.arange(3, dtype=np.int64)
    second.observe_windows(np.full(3, g), events * 1.0, events, events, ids, np.ones(3), events)
    assert second.windows.learning(g) and second.windows.gint[g, window._G_REF_EVENTS] == 3
