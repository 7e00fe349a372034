"""The loops that drive every detector's kernels over batches, in one compiled function each.

Numba cannot cache a function that takes other jitted functions as arguments (the cache key
holds process-local objects), so the loops dispatch on a small integer, the detector's kind,
instead. The branch is perfectly predictable within a batch and costs next to nothing; the dispatch
functions are inlined into the loops, which saves a call per value (half the cost of the
cheapest detectors) at the price of a longer first compile.

Numba's cache of a function is invalidated only by a change to that function's own file, not to
the kernels it calls; :func:`_drop_stale_cache` therefore keys this module's cache on the
sources of every detector module too.
"""

from __future__ import annotations

import hashlib
import math
from pathlib import Path

import numba as nb
import numpy as np

from . import adwin, base, cusum, ddm, eddm, fhddm, hddm_a, hddm_w, kswin, page_hinkley
from .base import DRIFT, SKIPPED, WARNING

_MODULES = (base, adwin, page_hinkley, kswin, cusum, ddm, eddm, hddm_a, hddm_w, fhddm)


def _drop_stale_cache() -> None:
    """Remove this module's cached machine code when any detector kernel's source changed."""
    digest = hashlib.sha256()
    for module in _MODULES:
        digest.update(Path(module.__file__).read_bytes())
    cache_dir = Path(__file__).parent / "__pycache__"
    stamp = cache_dir / "kernels.sources"
    try:
        if stamp.read_text() == digest.hexdigest():
            return
    except OSError:
        pass
    try:
        cache_dir.mkdir(exist_ok=True)
        for cached in cache_dir.glob("kernels.*.nb[ic]"):
            cached.unlink(missing_ok=True)
        stamp.write_text(digest.hexdigest())
    except OSError:
        pass  # a read-only install: numba then keeps its cache in NUMBA_CACHE_DIR or not at all


_drop_stale_cache()

#: registry name -> kind number used by the loops
KINDS = {
    name: i
    for i, name in enumerate(
        ("adwin", "page_hinkley", "kswin", "cusum", "ddm", "eddm", "hddm_a", "hddm_w", "fhddm")
    )
}


@nb.njit(cache=True, inline="always")
def _reset(kind, state, params):
    if kind == 0:
        adwin._reset(state, params)
    elif kind == 1:
        page_hinkley._reset(state, params)
    elif kind == 2:
        kswin._reset(state, params)
    elif kind == 3:
        cusum._reset(state, params)
    elif kind == 4:
        ddm._reset(state, params)
    elif kind == 5:
        eddm._reset(state, params)
    elif kind == 6:
        hddm_a._reset(state, params)
    elif kind == 7:
        hddm_w._reset(state, params)
    else:
        fhddm._reset(state, params)


@nb.njit(cache=True, inline="always")
def _step(kind, state, params, x):
    if kind == 0:
        adwin._step(state, params, x)
    elif kind == 1:
        page_hinkley._step(state, params, x)
    elif kind == 2:
        kswin._step(state, params, x)
    elif kind == 3:
        cusum._step(state, params, x)
    elif kind == 4:
        ddm._step(state, params, x)
    elif kind == 5:
        eddm._step(state, params, x)
    elif kind == 6:
        hddm_a._step(state, params, x)
    elif kind == 7:
        hddm_w._step(state, params, x)
    else:
        fhddm._step(state, params, x)


@nb.njit(cache=True, inline="always")
def _observe(kind, state, params, x):
    if not math.isfinite(x):
        state[SKIPPED] += 1.0
        return False
    if state[DRIFT] != 0.0:
        state[DRIFT] = 0.0
        state[WARNING] = 0.0
        _reset(kind, state, params)
    _step(kind, state, params, x)
    return True


def warm_up_banks() -> None:
    """Load (or, on a cold cache, compile) the bank loop now rather than on the first real batch."""
    from .page_hinkley import PageHinkley

    detector = PageHinkley()
    out = np.empty(1, dtype=np.int64)
    run_bank(detector.kind, detector._state.copy().reshape(1, -1), detector._params, np.zeros(1, dtype=np.int64),
             np.zeros(1), out, out.copy())


@nb.njit(cache=True)
def run_one(kind, state, params, x):
    """Feed one value; return True when it is an observation that raised drift."""
    return _observe(kind, state, params, x) and state[DRIFT] != 0.0


@nb.njit(cache=True)
def run_many(kind, state, params, values, drifts, warnings):
    """Feed a batch to one detector.

    Writes the batch positions of drifts and warnings into ``drifts`` and ``warnings`` (each at
    least ``len(values)`` long) and returns how many of each were written.
    """
    n_drift = 0
    n_warn = 0
    for i in range(values.shape[0]):
        if not _observe(kind, state, params, values[i]):
            continue
        if state[DRIFT] != 0.0:
            drifts[n_drift] = i
            n_drift += 1
        if state[WARNING] != 0.0:
            warnings[n_warn] = i
            n_warn += 1
    return n_drift, n_warn


@nb.njit(cache=True)
def run_bank(kind, states, params, slots, values, drifts, warnings):
    """Feed a batch spread over a bank: value ``i`` goes to the detector in row ``slots[i]``.

    Same outputs as :func:`run_many`; positions index the batch.
    """
    n_drift = 0
    n_warn = 0
    for i in range(values.shape[0]):
        state = states[slots[i]]
        if not _observe(kind, state, params, values[i]):
            continue
        if state[DRIFT] != 0.0:
            drifts[n_drift] = i
            n_drift += 1
        if state[WARNING] != 0.0:
            warnings[n_warn] = i
            n_warn += 1
    return n_drift, n_warn
