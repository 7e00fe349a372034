"""A bank of independent detectors of one kind and parameters, updated in one numba call.

A service watches thousands of series (model x signal x detector). Calling ``update_many`` once
per series per batch would spend most of its time crossing from Python into numba; a bank keeps
one state row per series and takes a whole batch, each value tagged with its row.

>>> import numpy as np
>>> from driftwire.detectors import PageHinkley, DetectorBank
>>> bank = DetectorBank(PageHinkley(threshold=10.0))
>>> a, b = bank.add(), bank.add()
>>> values = np.r_[np.zeros(100), np.full(100, 5.0)]
>>> slots = np.full(200, a)
>>> drifts, warnings = bank.update(slots, values)
>>> drifts
array([102])
>>> bank.detector(b).statistic
0.0
"""

from __future__ import annotations

import copy

import numpy as np

from .base import Detector, _kernels, as_values


class DetectorBank:
    """Independent copies of ``prototype``'s detector (same class and parameters), one per slot."""

    def __init__(self, prototype: Detector, capacity: int = 16):
        self.prototype = prototype
        self._initial = prototype.initial_state()
        self._states = np.zeros((max(capacity, 1), self._initial.shape[0]), dtype=np.float64)
        self._loops = prototype.loops
        self._size = 0

    def __len__(self) -> int:
        return self._size

    @property
    def name(self) -> str:
        return self.prototype.name

    def add(self) -> int:
        """A new detector in its initial state; returns its slot."""
        if self._size == self._states.shape[0]:
            grown = np.zeros((2 * self._size, self._states.shape[1]), dtype=np.float64)
            grown[: self._size] = self._states
            self._states = grown
        slot = self._size
        self._states[slot] = self._initial
        self._size += 1
        return slot

    def update(self, slots, values) -> tuple[np.ndarray, np.ndarray]:
        """Feed ``values[i]`` to the detector in ``slots[i]``, in order.

        Returns the positions (into ``values``) of drifts and of warnings.
        """
        values = as_values(values)
        slots = np.ascontiguousarray(slots, dtype=np.int64).reshape(-1)
        if slots.shape != values.shape:
            raise ValueError(f"{slots.shape[0]} slots for {values.shape[0]} values")
        if slots.size:
            lo, hi = _kernels().slot_bounds(slots)
            if lo < 0 or hi >= self._size:
                raise IndexError(f"slot out of range 0..{self._size - 1}")
        drifts = np.empty(values.shape[0], dtype=np.int64)
        warnings = np.empty(values.shape[0], dtype=np.int64)
        n_drift, n_warn = self._loops.bank(self._states, self.prototype._params, slots, values, drifts, warnings)
        return drifts[:n_drift].copy(), warnings[:n_warn].copy()

    def statistic(self, slot: int) -> float:
        return float(self.prototype.statistic_of(self._states[slot], self.prototype._params))

    @property
    def threshold(self) -> float | None:
        return self.prototype.threshold

    def detector(self, slot: int) -> Detector:
        """A standalone copy of the detector in ``slot``."""
        det = copy.copy(self.prototype)
        det._state = self._states[slot].copy()
        return det

    def get_state(self, slot: int) -> dict:
        return self.detector(slot).get_state()

    def set_state(self, slot: int, d: dict) -> None:
        """Load a detector's ``get_state()`` output into ``slot`` (same kind and parameters)."""
        det = type(self.prototype).from_state(d)
        if det.params != self.prototype.params:
            raise ValueError(f"state parameters {det.params} differ from the bank's {self.prototype.params}")
        self._states[slot] = det._state


class ObjectBank:
    """The same interface over detectors that are Python objects (river's), updated one by one."""

    def __init__(self, prototype):
        self.prototype = prototype
        self._detectors: list = []

    def __len__(self) -> int:
        return len(self._detectors)

    @property
    def name(self) -> str:
        return self.prototype.name

    @property
    def threshold(self) -> float | None:
        return self.prototype.threshold

    def add(self) -> int:
        self._detectors.append(self.prototype.clone())
        return len(self._detectors) - 1

    def update(self, slots, values) -> tuple[np.ndarray, np.ndarray]:
        values = as_values(values)
        drifts, warnings = [], []
        for i, (slot, x) in enumerate(zip(np.asarray(slots).tolist(), values.tolist())):
            det = self._detectors[slot]
            if det.update(x):
                drifts.append(i)
            if det.warning_detected:
                warnings.append(i)
        return np.array(drifts, dtype=np.int64), np.array(warnings, dtype=np.int64)

    def statistic(self, slot: int) -> float:
        return self._detectors[slot].statistic

    def detector(self, slot: int):
        return self._detectors[slot]

    def get_state(self, slot: int) -> dict:
        return self._detectors[slot].get_state()

    def set_state(self, slot: int, d: dict) -> None:
        self._detectors[slot] = type(self.prototype).from_state(d)


def make_bank(name: str, **params):
    """A bank for the detector ``make(name, **params)`` would build (river ones included)."""
    from .registry import make

    prototype = make(name, **params)
    if isinstance(prototype, Detector):
        return DetectorBank(prototype)
    return ObjectBank(prototype)
