"""Run a river detector value by value: the reference our detectors are compared with."""

from __future__ import annotations

import numpy as np

#: kinds of real-valued test stream: shifts, spread changes, heavy tails, flat runs, odd scales
REAL_KINDS = [
    "abrupt", "segments", "gradual", "variance", "student_t", "cauchy", "constant",
    "constant_runs", "binary", "ties", "offset", "tiny", "wide_range",
]


def river_detections(detector, values) -> tuple[np.ndarray, np.ndarray]:
    """Positions where a river detector signalled drift, and where it was in its warning zone."""
    drifts, warnings = [], []
    for i, x in enumerate(np.asarray(values, dtype=np.float64).tolist()):
        detector.update(x)
        if detector.drift_detected:
            drifts.append(i)
        if getattr(detector, "warning_detected", False):
            warnings.append(i)
    return np.array(drifts, dtype=np.int64), np.array(warnings, dtype=np.int64)


def split_detections(detector, values, cuts) -> tuple[np.ndarray, np.ndarray]:
    """Feed ``values`` to one of our detectors in batches split at ``cuts``, with a state
    round trip (get_state -> orjson -> from_state) at every cut; return batch-global positions.
    """
    import orjson

    drifts, warnings = [], []
    start = 0
    for end in [*sorted(cuts), len(values)]:
        d, w = detector.update_many(values[start:end], return_warnings=True)
        drifts.append(d + start)
        warnings.append(w + start)
        detector = type(detector).from_state(orjson.loads(orjson.dumps(detector.get_state())))
        start = end
    return np.concatenate(drifts), np.concatenate(warnings)


def make_stream(kind: str, n: int, seed: int) -> np.ndarray:
    """A reproducible stream of one of :data:`REAL_KINDS`, changing halfway where it changes."""
    rng = np.random.default_rng(seed)
    half = n // 2
    if kind == "abrupt":
        return np.r_[rng.normal(0, 1, half), rng.normal(rng.uniform(-3, 3), 1, n - half)]
    if kind == "segments":
        means = rng.normal(0, 2, 12)
        return rng.normal(0, 1, n) + means[np.sort(rng.integers(0, 12, n))]
    if kind == "gradual":
        return rng.normal(0, 1, n) + np.clip(np.linspace(-1, 3, n), 0, None)
    if kind == "variance":
        return np.r_[rng.normal(0, 1, half), rng.normal(0, rng.uniform(2, 10), n - half)]
    if kind == "student_t":
        return rng.standard_t(rng.uniform(1, 3), n) + (np.arange(n) >= half) * rng.uniform(0, 3)
    if kind == "cauchy":
        return rng.standard_cauchy(n)
    if kind == "constant":
        return np.full(n, rng.normal())
    if kind == "constant_runs":
        return np.repeat(rng.normal(0, 3, n // 50 + 1), 50)[:n]
    if kind == "binary":
        rates = rng.uniform(0, 1, 4)
        return (rng.random(n) < rates[np.arange(n) * 4 // n]).astype(float)
    if kind == "ties":
        return rng.integers(0, 4, n).astype(float) + (np.arange(n) >= half) * 2
    if kind == "offset":
        return 1e6 + rng.normal(0, 1, n) + (np.arange(n) >= half) * 0.5
    if kind == "tiny":
        return 1e-9 * (rng.normal(0, 1, n) + (np.arange(n) >= half))
    # values whose magnitudes span 10**-100 .. 10**100
    return rng.normal(0, 1, n) * 10.0 ** rng.integers(-100, 100, n)


def interleave(series: list[np.ndarray], rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
    """The values of equally long ``series`` in one random interleaving, each series keeping its
    own order: ``(order, values)`` where ``order[i]`` is the series ``values[i]`` comes from."""
    order = rng.permutation(np.repeat(np.arange(len(series)), len(series[0])))
    values = np.empty(order.size)
    for s, x in enumerate(series):
        values[order == s] = x
    return order, values
