"""Per-series standardization against a warm-up reference.

Real signals come in every scale (an income in tens of thousands, a ratio in [0, 1]); detector
thresholds such as Page-Hinkley's are in the units of the signal. Each series therefore learns a
reference mean and standard deviation from its first ``warmup`` values (Welford's algorithm),
and values are passed on as ``(x - mean) / std``, so one set of thresholds, in standard
deviations, fits every signal. The warm-up values are held back until the reference is complete
and then passed on first, standardized with it: detectors see the whole series, reference
included, so a change right after the warm-up still shows. A series whose warm-up was constant
gets scale 1 (its values pass on as ``x - mean``).

>>> import numpy as np
>>> from driftwire.detectors.standardize import WarmupStandardizer
>>> scaler = WarmupStandardizer(warmup=4)
>>> s = scaler.add()
>>> out = scaler.update(np.zeros(6, dtype=np.int64), np.array([1.0, 3.0, 1.0, 3.0, 5.0, 2.0]))
>>> out.positions         # the warm-up values are reported at the value that completed it
array([3, 3, 3, 3, 4, 5])
>>> out.values.round(3)
array([-0.866,  0.866, -0.866,  0.866,  2.598,  0.   ])
>>> scaler.reference(s)
{'count': 4, 'mean': 2.0, 'std': 1.1547005383792515}
"""

from __future__ import annotations

import math
from typing import NamedTuple

import numba as nb
import numpy as np

# one row per series: count, mean, sum of squared deviations, scale, warm-up length, standardize?
_N, _MEAN, _M2, _SCALE, _WARMUP, _SCALE_ON = range(6)
_WIDTH = 6


@nb.njit(cache=True)
def _standardize(refs, slots, values, passed, out, warming):
    n_passed = 0
    n_warming = 0
    for i in range(values.shape[0]):
        x = values[i]
        ref = refs[slots[i]]
        warmup = ref[_WARMUP]
        warming[i] = is_warming = ref[_N] < warmup
        n_warming += is_warming
        if not math.isfinite(x):
            continue
        if is_warming:
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
    return n_passed, n_warming


@nb.njit(cache=True, error_model="numpy")
def _standardize_warm(refs, slots, values, passed, out):
    """:func:`_standardize` for a batch whose series all have a complete reference. The same
    arithmetic without a branch on the values: the loop then runs several values at a time."""
    n_passed = 0
    for i in range(values.shape[0]):
        x = values[i]
        ref = refs[slots[i]]
        z = (x - ref[_MEAN]) / ref[_SCALE]
        passed[n_passed] = i
        out[n_passed] = z if ref[_SCALE_ON] != 0.0 else x
        n_passed += math.isfinite(x)  # a NaN or inf is overwritten by the next value
    return n_passed


class Standardized(NamedTuple):
    """What a batch passes on, in the order detectors must see it: held-back warm-up values of
    series whose reference completed in this batch first, then the batch's later values."""

    positions: np.ndarray  # batch position of each value (warm-up values: where it completed)
    slots: np.ndarray
    values: np.ndarray


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
        #: series whose reference is not complete yet
        self._warming = 0
        # warm-up values held back per series until its reference is complete
        self._held: dict[int, list[np.ndarray]] = {}

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
        self._warming += 1
        return slot

    def update(self, slots, values) -> Standardized:
        """Standardize a batch; ``values[i]`` belongs to series ``slots[i]``.

        NaN and inf are neither reference nor passed on.
        """
        values = np.ascontiguousarray(values, dtype=np.float64)
        slots = np.ascontiguousarray(slots, dtype=np.int64)
        passed = np.empty(values.shape[0], dtype=np.int64)
        out = np.empty(values.shape[0], dtype=np.float64)
        if not self._warming:
            # the usual batch, once every series has warmed up
            n = _standardize_warm(self._refs, slots, values, passed, out)
            return Standardized(passed[:n], slots if n == slots.shape[0] else slots[passed[:n]], out[:n])
        warming_before = np.empty(values.shape[0], dtype=np.bool_)
        n, n_warming = _standardize(self._refs, slots, values, passed, out, warming_before)
        self._count_warming()
        passed = passed[:n]
        if not n_warming:
            return Standardized(passed, slots if n == slots.shape[0] else slots[passed], out[:n])
        held = warming_before & np.isfinite(values)
        held[passed] = False
        released = self._hold(np.flatnonzero(held), slots, values)
        return Standardized(
            np.concatenate([released.positions, passed]),
            np.concatenate([released.slots, slots[passed]]),
            np.concatenate([released.values, out[:n]]),
        )

    def _hold(self, positions: np.ndarray, slots: np.ndarray, values: np.ndarray) -> Standardized:
        """Keep this batch's warm-up values; release those of series whose reference is complete."""
        out_positions, out_slots, out_values = [], [], []
        # the held positions grouped by series, each group in batch order
        held_slots = slots[positions]
        order = np.argsort(held_slots, kind="stable")
        grouped = held_slots[order]
        starts = np.flatnonzero(np.diff(grouped)) + 1
        firsts = grouped[np.r_[0, starts]].tolist() if grouped.size else []
        for mine, slot in zip(np.split(positions[order], starts), firsts):
            self._held.setdefault(slot, []).append(values[mine])
            ref = self._refs[slot]
            if ref[_N] < ref[_WARMUP]:
                continue
            x = np.concatenate(self._held.pop(slot))
            if ref[_SCALE_ON] != 0.0:
                x = (x - ref[_MEAN]) / ref[_SCALE]
            out_positions.append(np.full(x.shape[0], mine[-1], dtype=np.int64))
            out_slots.append(np.full(x.shape[0], slot, dtype=np.int64))
            out_values.append(x)
        if not out_values:
            empty = np.empty(0, dtype=np.int64)
            return Standardized(empty, empty, np.empty(0, dtype=np.float64))
        return Standardized(np.concatenate(out_positions), np.concatenate(out_slots), np.concatenate(out_values))

    def reference(self, slot: int) -> dict:
        """The reference of a series: values seen so far (up to ``warmup``), mean and std."""
        ref = self._refs[slot]
        n = int(ref[_N])
        std = math.sqrt(ref[_M2] / (n - 1)) if n > 1 else 0.0
        return {"count": n, "mean": float(ref[_MEAN]), "std": std}

    def get_state(self, slot: int) -> dict:
        held = self._held.get(slot)
        return {
            "reference": self._refs[slot].tolist(),
            "held": np.concatenate(held).tolist() if held else [],
        }

    def set_state(self, slot: int, state: dict) -> None:
        was_warming = self._refs[slot, _N] < self._refs[slot, _WARMUP]
        self._refs[slot] = state["reference"]
        self._warming += int(self._refs[slot, _N] < self._refs[slot, _WARMUP]) - int(was_warming)
        self._held.pop(slot, None)
        if state["held"]:
            self._held[slot] = [np.array(state["held"], dtype=np.float64)]

    def _count_warming(self) -> None:
        refs = self._refs[: self._size]
        self._warming = int(np.count_nonzero(refs[:, _N] < refs[:, _WARMUP]))


def warm_up() -> None:
    """Compile or load both standardizing loops before the first batch waits on them."""
    scaler = WarmupStandardizer(warmup=2)
    scaler.add()
    scaler.update(np.zeros(3, dtype=np.int64), np.array([1.0, 2.0, 3.0]))  # warming, then warm
    scaler.update(np.zeros(1, dtype=np.int64), np.array([4.0]))


def _check_warmup(warmup: int) -> int:
    if warmup < 2:
        raise ValueError(f"warmup must be at least 2, got {warmup}")
    return int(warmup)
