"""Per-series standardization against a warm-up reference.

Real signals come in every scale (an income in tens of thousands, a ratio in [0, 1]); detector
thresholds such as Page-Hinkley's are in the units of the signal. Each series therefore learns a
reference mean and standard deviation from its first ``warmup`` values (Welford's algorithm),
and every later value is passed on as ``(x - mean) / std``, so one set of thresholds, in
standard deviations, fits every signal. The warm-up values themselves are the reference: they
are not passed on. A series whose warm-up was constant gets scale 1 (its values pass on as
``x - mean``), so any later change still shows.

>>> import numpy as np
>>> from driftwire.detectors.standardize import WarmupStandardizer
>>> scaler = WarmupStandardizer(warmup=4)
>>> s = scaler.add()
>>> passed, z = scaler.update(np.zeros(6, dtype=np.int64), np.array([1.0, 3.0, 1.0, 3.0, 5.0, 2.0]))
>>> passed
array([4, 5])
>>> z
array([2.59807621, 0.        ])
>>> scaler.reference(s)
{'count': 4, 'mean': 2.0, 'std': 1.1547005383792515}
"""

from __future__ import annotations

import math

import numba as nb
import numpy as np

# one row per series: count, mean, sum of squared deviations, scale, warm-up length, standardize?
_N, _MEAN, _M2, _SCALE, _WARMUP, _SCALE_ON = range(6)
_WIDTH = 6


@nb.njit(cache=True)
def _standardize(refs, slots, values, passed, out):
    n_passed = 0
    for i in range(values.shape[0]):
        x = values[i]
        if not math.isfinite(x):
            continue
        ref = refs[slots[i]]
        warmup = ref[_WARMUP]
        if ref[_N] < warmup:
            n = ref[_N] + 1.0
            delta = x - ref[_MEAN]
            ref[_MEAN] += delta / n
            ref[_M2] += delta * (x - ref[_MEAN])
            ref[_N] = n
            if n == warmup:
                std = math.sqrt(ref[_M2] / (n - 1.0)) if n > 1.0 else 0.0
                ref[_SCALE] = std if std > 0.0 else 1.0
            continue
        passed[n_passed] = i
        if ref[_SCALE_ON] != 0.0:
            out[n_passed] = (x - ref[_MEAN]) / ref[_SCALE]
        else:
            out[n_passed] = x
        n_passed += 1
    return n_passed


class WarmupStandardizer:
    """Reference mean/std per series from a warm-up, then standardized values.

    Parameters
    ----------
    warmup
        Default number of values per series that form its reference (at least 2).
    """

    def __init__(self, warmup: int = 1000):
        self.warmup = _check_warmup(warmup)
        self._refs = np.zeros((16, _WIDTH), dtype=np.float64)
        self._size = 0

    def __len__(self) -> int:
        return self._size

    def add(self, standardize: bool = True, warmup: int | None = None) -> int:
        """A new series; with ``standardize=False`` it still warms up but passes raw values."""
        if self._size == self._refs.shape[0]:
            self._refs = np.concatenate([self._refs, np.zeros_like(self._refs)])
        slot = self._size
        self._refs[slot] = 0.0
        self._refs[slot, _WARMUP] = _check_warmup(self.warmup if warmup is None else warmup)
        self._refs[slot, _SCALE_ON] = 1.0 if standardize else 0.0
        self._size += 1
        return slot

    def update(self, slots, values) -> tuple[np.ndarray, np.ndarray]:
        """Positions of the values past their series' warm-up, and those values standardized.

        NaN and inf are neither reference nor passed on.
        """
        values = np.ascontiguousarray(values, dtype=np.float64)
        slots = np.ascontiguousarray(slots, dtype=np.int64)
        passed = np.empty(values.shape[0], dtype=np.int64)
        out = np.empty(values.shape[0], dtype=np.float64)
        n = _standardize(self._refs, slots, values, passed, out)
        return passed[:n].copy(), out[:n].copy()

    def ready(self, slot: int) -> bool:
        return self._refs[slot, _N] >= self._refs[slot, _WARMUP]

    def reference(self, slot: int) -> dict:
        """The reference of a series: values seen so far (up to ``warmup``), mean and std."""
        ref = self._refs[slot]
        n = int(ref[_N])
        std = math.sqrt(ref[_M2] / (n - 1)) if n > 1 else 0.0
        return {"count": n, "mean": float(ref[_MEAN]), "std": std}

    def get_state(self, slot: int) -> list:
        return self._refs[slot].tolist()

    def set_state(self, slot: int, state: list) -> None:
        self._refs[slot] = state


def _check_warmup(warmup: int) -> int:
    if warmup < 2:
        raise ValueError(f"warmup must be at least 2, got {warmup}")
    return int(warmup)
