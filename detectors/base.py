"""The shared frame of every numba detector.

A detector is two numba kernels over a float64 state vector and a float64 parameter vector:

- ``reset(state, params)`` puts the detector-specific part of the state (``state[HEADER:]``)
  back to its initial values;
- ``step(hot, state, params, x, warning)`` feeds one finite observation and returns
  ``(hot, drift, warning)``. ``hot`` is the tuple of the ``HOT`` slots after the header
  (:func:`.kernels.load`): the loops keep it in registers across a batch and write it back
  (:func:`.kernels.store`) only at the end, so a step must read and write those slots through the tuple,
  never through ``state``, unless it stores and loads around the call that needs them there.
  ``warning`` is the flag of the previous observation, for detectors whose warning persists.

The loops in :mod:`.kernels` drive those kernels: one value, a batch for one detector, or a
batch for a bank of detectors that share parameters. Like river, a detector that signalled
drift rebuilds its state on the next observation, so ``drift_detected`` is true for exactly one
update. NaN and inf are not observations: the loops skip them and count them in
``state[SKIPPED]``.

Keeping state in plain arrays is what makes detectors cheap to batch, to bank (one row per
series) and to checkpoint (the row is the checkpoint).
"""

from __future__ import annotations

import math
from typing import Any, ClassVar

import numpy as np

DRIFT = 0
WARNING = 1
SKIPPED = 2
#: Number of slots at the start of every state vector that the loops own.
HEADER = 3
#: Slots after the header that a step reads and writes as a tuple (see the module docstring);
#: every state vector has at least ``HEADER + HOT`` slots.
HOT = 8

STATE_FORMAT = 2


def is_int(value) -> bool:
    """An integer parameter: Python or numpy int, not a bool."""
    return isinstance(value, (int, np.integer)) and not isinstance(value, bool)


def check_int(name: str, value, low: int) -> None:
    if not is_int(value) or value < low:
        raise ValueError(f"{name} must be an integer >= {low}, got {value!r}")


def check_confidence(name: str, value) -> None:
    if not 0 < value < 1:
        raise ValueError(f"{name} must be in (0, 1), got {value}")


def check_bool(name: str, value) -> None:
    if not isinstance(value, (bool, np.bool_)):
        raise ValueError(f"{name} must be a bool, got {value!r}")


def as_values(values) -> np.ndarray:
    """A batch as the contiguous float64 array the kernels take."""
    return np.ascontiguousarray(values, dtype=np.float64).reshape(-1)


def encode_floats(values) -> list:
    """Floats as JSON-safe items: non-finite values become the strings "inf", "-inf", "nan".

    orjson writes non-finite floats as null, which would lose e.g. Page-Hinkley's +inf minimum.
    """
    out = []
    for v in values:
        v = float(v)
        out.append(v if math.isfinite(v) else repr(v))
    return out


def decode_floats(items) -> np.ndarray:
    return np.array([float(v) for v in items], dtype=np.float64)


class Detector:
    """Base class of the numba detectors: holds parameters and one state vector.

    Subclasses set ``name`` (the registry name), ``reset_kernel`` (their module's ``_reset``;
    the generated loops of :mod:`.kernels` call the module's ``_step``), ``has_warning``, and implement
    :meth:`_param_vector`, :meth:`_state_size` and :attr:`statistic`.
    """

    name: ClassVar[str]
    reset_kernel: ClassVar[Any]
    has_warning: ClassVar[bool] = False
    #: What :attr:`statistic` reports, for metrics and alerts.
    statistic_name: ClassVar[str] = "statistic"

    def __init__(self, **params):
        self.params: dict[str, Any] = params
        self._params = self._param_vector()
        self._state = self.initial_state()

    # -- to be provided by each detector -------------------------------------------------
    def _param_vector(self) -> np.ndarray:
        raise NotImplementedError

    def _state_size(self) -> int:
        raise NotImplementedError

    @staticmethod
    def statistic_of(state: np.ndarray, params: np.ndarray) -> float:
        """The detector's current statistic, read from a state vector."""
        raise NotImplementedError

    @staticmethod
    def threshold_of(params: np.ndarray) -> float | None:
        """The value :meth:`statistic_of` is compared against, where there is one."""
        return None

    # -- state ---------------------------------------------------------------------------
    def initial_state(self) -> np.ndarray:
        state = np.zeros(self._state_size(), dtype=np.float64)
        self.reset_kernel(state, self._params)
        return state

    def _encode_state(self, state: np.ndarray) -> list:
        return encode_floats(state)

    def _decode_state(self, items: list) -> np.ndarray:
        state = decode_floats(items)
        if state.shape[0] != self._state_size():
            raise ValueError(
                f"{self.name}: state has {state.shape[0]} values, expected {self._state_size()}"
            )
        return state

    def get_state(self) -> dict:
        """Everything needed to resume this detector, as plain JSON-serializable data."""
        return {
            "detector": self.name,
            "format": STATE_FORMAT,
            "params": dict(self.params),
            "state": self._encode_state(self._state),
        }

    @classmethod
    def from_state(cls, d: dict) -> Detector:
        """Rebuild a detector from :meth:`get_state` output; it continues where that one was."""
        if d.get("detector") != cls.name:
            raise ValueError(f"state is for detector {d.get('detector')!r}, not {cls.name!r}")
        if d.get("format") != STATE_FORMAT:
            raise ValueError(f"unsupported state format {d.get('format')!r}")
        det = cls(**d["params"])
        det._state = det._decode_state(d["state"])
        return det

    # -- updates -------------------------------------------------------------------------
    @property
    def loops(self):
        """This detector's compiled loops (see :mod:`.kernels`)."""
        return _kernels().loops_of(self.name)

    def update(self, x: float) -> bool:
        """Feed one value; True when drift is detected on it."""
        return bool(self.loops.one(self._state, self._params, float(x)))

    def update_many(self, values, return_warnings: bool = False):
        """Feed a batch in one numba call.

        Returns the int64 positions, within ``values``, of the values on which drift was
        detected; with ``return_warnings=True``, a ``(drifts, warnings)`` pair.
        """
        values = as_values(values)
        drifts = np.empty(values.shape[0], dtype=np.int64)
        warnings = np.empty(values.shape[0], dtype=np.int64)
        n_drift, n_warn = self.loops.many(self._state, self._params, values, drifts, warnings)
        if return_warnings:
            return drifts[:n_drift].copy(), warnings[:n_warn].copy()
        return drifts[:n_drift].copy()

    # -- read-outs -----------------------------------------------------------------------
    @property
    def drift_detected(self) -> bool:
        return bool(self._state[DRIFT])

    @property
    def warning_detected(self) -> bool:
        return bool(self._state[WARNING])

    @property
    def n_skipped(self) -> int:
        """Values that were not observations (NaN, inf) and were skipped."""
        return int(self._state[SKIPPED])

    @property
    def statistic(self) -> float:
        return float(self.statistic_of(self._state, self._params))

    @property
    def threshold(self) -> float | None:
        return self.threshold_of(self._params)

    def __repr__(self) -> str:
        args = ", ".join(f"{k}={v!r}" for k, v in self.params.items())
        return f"{type(self).__name__}({args})"


def _kernels():
    # Imported on first use: the loops module imports every detector module, which import this one.
    from . import kernels

    return kernels
