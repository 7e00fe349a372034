"""Build detectors by name: the numba ones, or any ``river.drift`` detector as ``river:<Class>``."""

from __future__ import annotations

import importlib

from .base import Detector

#: registry name -> (module in this package, class)
BUILTIN: dict[str, tuple[str, str]] = {
    "adwin": ("adwin", "ADWIN"),
    "page_hinkley": ("page_hinkley", "PageHinkley"),
    "kswin": ("kswin", "KSWIN"),
    "cusum": ("cusum", "CUSUM"),
    "ddm": ("ddm", "DDM"),
    "eddm": ("eddm", "EDDM"),
    "hddm_a": ("hddm_a", "HDDM_A"),
    "hddm_w": ("hddm_w", "HDDM_W"),
    "fhddm": ("fhddm", "FHDDM"),
}

RIVER_PREFIX = "river:"


def detector_class(name: str) -> type[Detector]:
    """The numba detector class registered under ``name``."""
    try:
        module, cls = BUILTIN[name]
    except KeyError:
        raise ValueError(
            f"unknown detector {name!r}; choose one of {sorted(BUILTIN)} "
            f"or '{RIVER_PREFIX}<ClassName>' for a river.drift detector"
        ) from None
    return getattr(importlib.import_module(f"{__package__}.{module}"), cls)


def make(name: str, **params):
    """A new detector: ``make("adwin", delta=0.01)`` or ``make("river:binary.DDM")``."""
    if name.startswith(RIVER_PREFIX):
        from .river_adapter import RiverDetector

        return RiverDetector(name[len(RIVER_PREFIX):], **params)
    return detector_class(name)(**params)


def from_state(d: dict):
    """Rebuild any detector, numba or river, from its ``get_state()`` output."""
    name = d.get("detector", "")
    if name.startswith(RIVER_PREFIX):
        from .river_adapter import RiverDetector

        return RiverDetector.from_state(d)
    return detector_class(name).from_state(d)


def available() -> list[str]:
    """Registry names of the numba detectors."""
    return sorted(BUILTIN)
