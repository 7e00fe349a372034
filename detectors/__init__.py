"""Online drift detectors in numba: river-identical detections, batch updates, checkpoints.

Every detector has ``update(x) -> bool``, ``update_many(values) -> positions``,
``drift_detected``, ``get_state()`` / ``from_state()``; build one by class or by name:

>>> from driftwire import detectors
>>> det = detectors.make("page_hinkley", threshold=25.0)
>>> det.update(1.0)
False
"""

from __future__ import annotations

import importlib

from .bank import DetectorBank, make_bank
from .base import Detector
from .numba_cache import tolerate_unreadable_entries
from .registry import BUILTIN, available, from_state, make

if __name__ != "driftwire.detectors":
    # Imported as a top-level package (from the repository's root folder), numba would cache
    # its kernels under that module name, and every later run of the installed one would fail.
    raise ImportError(f"import this package as driftwire.detectors, not {__name__}: run from outside the "
                      "repository's root folder, or as python -m driftwire...")

tolerate_unreadable_entries()

_CLASSES = {cls: module for module, cls in BUILTIN.values()}

__all__ = [
    "Detector",
    "DetectorBank",
    "available",
    "from_state",
    "make",
    "make_bank",
    *sorted(_CLASSES),
    "RiverDetector",
]


def __getattr__(name: str):
    # Detector modules are imported on first use, so that importing the package stays cheap.
    if name in _CLASSES:
        return getattr(importlib.import_module(f"{__name__}.{_CLASSES[name]}"), name)
    if name == "RiverDetector":
        from .river_adapter import RiverDetector

        return RiverDetector
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
