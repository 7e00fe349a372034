"""Run a river detector value by value: the reference our detectors are compared with."""

from __future__ import annotations

import numpy as np


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
