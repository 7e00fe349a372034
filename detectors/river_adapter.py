"""Any ``river.drift`` detector behind driftwire's detector interface.

>>> from driftwire.detectors import make
>>> det = make("river:binary.DDM")
>>> det.update_many([0] * 100 + [1], return_warnings=True)
(array([100]), array([], dtype=int64))
"""

from __future__ import annotations

import base64
import copy
import math
import pickle

import numpy as np

from .base import STATE_FORMAT, as_values

RIVER_PREFIX = "river:"

# What to report as the statistic, by river class, where it has a natural one.
_STATISTIC_ATTRS = ("width", "estimation")


def _river_class(path: str):
    import river.drift

    obj = river.drift
    for part in path.split("."):
        obj = getattr(obj, part, None)
        if obj is None:
            raise ValueError(f"river.drift has no detector {path!r}")
    if not (isinstance(obj, type) and hasattr(obj, "update") and hasattr(obj, "drift_detected")):
        raise ValueError(f"river.drift.{path} is not a drift detector")
    return obj


class RiverDetector:
    """A river drift detector, called once per value from Python.

    Parameters
    ----------
    river_class
        Path under ``river.drift``: ``"ADWIN"``, ``"binary.DDM"``, ``"KSWIN"``...
    **params
        Passed to the river constructor.
    """

    def __init__(self, river_class: str, **params):
        self.river_class = river_class
        self.params = params
        self.name = RIVER_PREFIX + river_class
        self._detector = _river_class(river_class)(**params)
        self.n_skipped = 0

    @property
    def has_warning(self) -> bool:
        return hasattr(self._detector, "warning_detected")

    @property
    def drift_detected(self) -> bool:
        return bool(self._detector.drift_detected)

    @property
    def warning_detected(self) -> bool:
        return bool(getattr(self._detector, "warning_detected", False))

    @property
    def statistic(self) -> float:
        for attr in _STATISTIC_ATTRS:
            value = getattr(self._detector, attr, None)
            if isinstance(value, (int, float)):
                return float(value)
        return math.nan

    @property
    def threshold(self) -> float | None:
        return None

    def update(self, x: float) -> bool:
        x = float(x)
        if not math.isfinite(x):
            self.n_skipped += 1
            return False
        self._detector.update(x)
        return self.drift_detected

    def update_many(self, values, return_warnings: bool = False):
        drifts, warnings = [], []
        for i, x in enumerate(as_values(values).tolist()):
            if not math.isfinite(x):
                self.n_skipped += 1
                continue
            self._detector.update(x)
            if self._detector.drift_detected:
                drifts.append(i)
            if self.warning_detected:
                warnings.append(i)
        drifts = np.array(drifts, dtype=np.int64)
        if return_warnings:
            return drifts, np.array(warnings, dtype=np.int64)
        return drifts

    def clone(self) -> RiverDetector:
        return RiverDetector(self.river_class, **copy.deepcopy(self.params))

    def get_state(self) -> dict:
        # river detectors have no state API; the pickled object is the checkpoint.
        blob = base64.b64encode(pickle.dumps(self._detector)).decode("ascii")
        return {
            "detector": self.name,
            "format": STATE_FORMAT,
            "params": dict(self.params),
            "state": {"pickle": blob, "n_skipped": self.n_skipped},
        }

    @classmethod
    def from_state(cls, d: dict) -> RiverDetector:
        name = d["detector"]
        if not name.startswith(RIVER_PREFIX):
            raise ValueError(f"state is for {name!r}, not a river detector")
        det = cls(name[len(RIVER_PREFIX):], **d["params"])
        det._detector = pickle.loads(base64.b64decode(d["state"]["pickle"]))
        det.n_skipped = int(d["state"]["n_skipped"])
        return det

    def __repr__(self) -> str:
        args = ", ".join(f"{k}={v!r}" for k, v in self.params.items())
        return f"RiverDetector({self.river_class!r}{', ' if args else ''}{args})"
