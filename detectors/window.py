"""Windowed distribution drift: each window of a stream compared with a reference profile.

Series (one signal of one model version) are grouped by the stream they come from, a *group*
(one model version): a group's events advance its window clock, and every series of the group
closes its window at the same event. Per series, the open window keeps

- numeric: the counts per fine bin of the reference (:mod:`driftwire.detectors.binning`: its
  quantiles at 1/256 steps with its profile's edges, range and a constant-time lookup), the
  window's sketch, from which its histogram over the profile's bins, its out-of-range counts,
  KS and Wasserstein distance to the reference follow; count, sum and sum of squares (about
  the first value), min and max, and the summed distance of the values beyond the reference's
  range on either side;
- categorical: the counts per category code;

all updated for a whole batch in one numba call, at a constant cost per value. Values missing
from an event (absent, null, of another type) are the group's events minus the series' values.

Windows are tumbling (``slide=1``) or sliding: ``slide`` sub-windows, merged when the newest
closes, so a window of ``size`` events is evaluated every ``size / slide`` events. The clock is
the event count (``size``) or event time (``duration`` seconds, windows aligned to multiples of
the sub-window length since the epoch). In event time a sub-window stays open for ``lateness``
more sub-windows, so a late event still lands in its own window; an event older than every open
window is counted as late and left out. A group that starts without a reference learns one from
its first ``reference_size`` events (:func:`driftwire.detectors.profile.numeric_profile_from_sketch`).

At each close, :meth:`WindowBank.update` returns a :class:`WindowClose` with, per series, the
statistics against the reference: PSI, Jensen-Shannon distance, KL divergence, Hellinger
distance (profile bins, :mod:`driftwire.detectors.statistics`), Kolmogorov-Smirnov statistic
and p-value, Wasserstein-1 raw and in reference standard deviations (fine bins, within the
bounds :mod:`driftwire.detectors.binning` states), chi-square (categories), and the data-quality
rates. Deciding what is drift is the caller's (thresholds differ per signal).

>>> import numpy as np
>>> from driftwire.detectors.window import WindowBank, WindowSpec
>>> bank = WindowBank()
>>> g = bank.add_group(WindowSpec(size=1000, reference_size=1000))
>>> s = bank.add_series(g)
>>> rng = np.random.default_rng(7)
>>> x = np.concatenate([rng.normal(0, 1, 2000), rng.normal(1, 1, 1000)])
>>> events = np.arange(x.size)
>>> closes = bank.update(np.zeros(x.size, np.int64), events * 0.01, events, np.full(x.size, s), x, events)
>>> [round(c.series[s]["ks"], 2) for c in closes]
[0.05, 0.42]
"""

from __future__ import annotations

import base64
import math
import zlib
from dataclasses import dataclass, field

import numba as nb
import numpy as np

from . import binning, kll, statistics
from .profile import (
    DEFAULT_BINS,
    DEFAULT_TOP_K,
    REFERENCE_SKETCH_K,
    QuantileSketch,
    categorical_profile_from_counts,
    numeric_profile_from_sketch,
)

NUMERIC, CATEGORICAL = 0, 1
#: distinct categories a reference learnt from live events names; later ones count as unnamed
LEARN_CATEGORIES = 1024

# group state: int64 columns
_G_PHASE, _G_REF_TARGET, _G_REF_EVENTS, _G_SEQ, _G_STARTED, _G_CUR, _G_CLOSED, _G_FIRST = range(8)
_G_LATE, _G_RING, _G_BASE, _G_LATENESS, _G_TIME, _G_CUR_R = range(8, 14)
_G_WIDTH = 14
# ring of sub-windows of a group: int64 columns, float64 columns
_R_NUM, _R_EVENTS, _R_LAST_OFFSET = range(3)
_R_FIRST_T, _R_LAST_T = range(2)
# moments of a numeric series per instance: sum and sum of squares about the series' first
# value, min and max (the count is the sum of the instance's bin counts)
_M_SUM, _M_SUM2, _M_MIN, _M_MAX = range(4)
_M_WIDTH = 4
# per instance and bin: the count and (numeric) the values' sum about the series' shift
_H_COUNT, _H_SUM = 0, 1
#: the layout of :func:`get_state`; a state of another layout is refused
STATE_FORMAT = 2
#: fine bins per reference at most: bin numbers fit the 16-bit lookup tables
MAX_RESOLUTION = 16_384

# why the update kernel stopped
_DONE, _REFERENCE_DONE, _CLOSE = 0, 1, 2
# an event's place when it is in no window: its group learns a reference, or it came late
_LEARN, _SKIP = -1, -2


@dataclass(frozen=True)
class WindowSpec:
    """How one group's windows run.

    size: events per window (count clock), or None with ``duration`` seconds (event-time clock).
    slide: sub-windows per window; 1 = tumbling, k > 1 = a window evaluated every 1/k of it.
    lateness: event time only: sub-windows a window stays open after its end for late events.
    reference_size: events that become the reference when none is given.
    reference_bins: quantile bins of each numeric signal of that learnt reference.
    """

    size: int | None = 10_000
    duration: float | None = None
    slide: int = 1
    lateness: int = 1
    reference_size: int = 10_000
    reference_bins: int = DEFAULT_BINS

    def __post_init__(self):
        if (self.size is None) == (self.duration is None):
            raise ValueError("a window has either a size (events) or a duration (seconds)")
        if self.slide < 1 or self.reference_size < 1 or self.lateness < 0 or self.reference_bins < 2:
            raise ValueError("slide and reference_size must be >= 1, lateness >= 0, reference_bins >= 2")
        if self.size is not None and self.size % self.slide:
            raise ValueError(f"size {self.size} must be a multiple of slide {self.slide}")
        if self.duration is not None and not self.duration > 0:
            raise ValueError("duration must be > 0")

    @property
    def sub_length(self) -> float:
        return (self.size if self.size is not None else self.duration) / self.slide

    @property
    def ring(self) -> int:
        """Sub-windows a group keeps: the ``slide`` of a window plus those open for late events."""
        return self.slide + (self.lateness if self.duration is not None else 0) + 1


@dataclass
class WindowClose:
    """One closed window of a group: its extent, and the statistics of each series."""

    group: int
    number: int  # sub-window number of the newest sub-window
    start: float  # event time of the first and last event (NaN when empty)
    end: float
    events: int
    late: int  # events left out as late since the previous close
    last_offset: int  # of the last event in the window (-1 when empty)
    series: dict[int, dict] = field(default_factory=dict)


@nb.njit(cache=True)
def _mean_m2(n, shift, total, squares):
    """Mean and sum of squared deviations of ``n`` values with this sum and sum of squares
    about ``shift``."""
    return shift + total / n, max(squares - total * total / n, 0.0)


@nb.njit(cache=True)
def _empty_moments(m):
    m[:] = 0.0
    m[_M_MIN] = np.inf
    m[_M_MAX] = -np.inf


@nb.njit(cache=True)
def _clear_instance(inst, hist, mom):
    hist[inst] = 0.0
    _empty_moments(mom[inst])


@nb.njit(cache=True)
def _open(g, w, gint, ring_i, ring_f, gser_off, gser, inst_base, hist, mom):
    """Sub-windows after the group's newest up to ``w`` start empty."""
    size = gint[g, _G_RING]
    first = w - size + 1
    if gint[g, _G_STARTED] and gint[g, _G_CUR] + 1 > first:
        first = gint[g, _G_CUR] + 1
    for nw in range(first, w + 1):
        r = nw % size
        slot = gint[g, _G_BASE] + r
        ring_i[slot, _R_NUM] = nw
        ring_i[slot, _R_EVENTS] = 0
        ring_i[slot, _R_LAST_OFFSET] = -1
        ring_f[slot, _R_FIRST_T] = np.inf
        ring_f[slot, _R_LAST_T] = -np.inf
        for j in range(gser_off[g], gser_off[g + 1]):
            _clear_instance(inst_base[gser[j]] + r, hist, mom)
    gint[g, _G_CUR] = w
    gint[g, _G_CUR_R] = w % size



@nb.njit(cache=True)
def _assign(start, groups, times, offsets, messages, gint, gsub, ring_i, ring_f, gser_off, gser, inst_base, hist,
            mom, slots):
    """The ring position of each event from ``start`` in its group's windows into ``slots`` at
    its message (_LEARN while its group learns a reference, _SKIP when late), up to where
    Python is needed: after the event that completes a group's reference or a count clock's
    sub-window, before an event whose window needs an earlier one closed. Returns (reason,
    first event not assigned, group)."""
    for i in range(start, groups.shape[0]):
        g = groups[i]
        if gint[g, _G_PHASE] == 0:
            slots[messages[i]] = _LEARN
            gint[g, _G_REF_EVENTS] += 1
            if gint[g, _G_REF_EVENTS] >= gint[g, _G_REF_TARGET]:
                return _REFERENCE_DONE, i + 1, g
            continue
        sub = gsub[g]
        if gint[g, _G_TIME]:
            w = np.int64(math.floor(times[i] / sub))
        else:
            # a count clock moves to its next sub-window only after a stop: divide only then
            w = gint[g, _G_CUR]
            if not gint[g, _G_STARTED] or gint[g, _G_SEQ] >= (w + 1) * np.int64(sub):
                w = gint[g, _G_SEQ] // np.int64(sub)
        if not gint[g, _G_STARTED]:
            _open(g, w, gint, ring_i, ring_f, gser_off, gser, inst_base, hist, mom)
            gint[g, _G_STARTED] = 1
            gint[g, _G_CLOSED] = w - 1
            gint[g, _G_FIRST] = w
        elif w <= gint[g, _G_CLOSED]:
            gint[g, _G_LATE] += 1
            slots[messages[i]] = _SKIP
            continue
        elif w > gint[g, _G_CUR]:
            if w - gint[g, _G_LATENESS] - 1 > gint[g, _G_CLOSED]:
                return _CLOSE, i, g
            _open(g, w, gint, ring_i, ring_f, gser_off, gser, inst_base, hist, mom)
        gint[g, _G_SEQ] += 1
        r = gint[g, _G_CUR_R] if w == gint[g, _G_CUR] else w % gint[g, _G_RING]
        slots[messages[i]] = r
        slot = gint[g, _G_BASE] + r
        ring_i[slot, _R_EVENTS] += 1
        ring_i[slot, _R_LAST_OFFSET] = max(ring_i[slot, _R_LAST_OFFSET], offsets[i])
        ring_f[slot, _R_FIRST_T] = min(ring_f[slot, _R_FIRST_T], times[i])
        ring_f[slot, _R_LAST_T] = max(ring_f[slot, _R_LAST_T], times[i])
        if not gint[g, _G_TIME] and gint[g, _G_SEQ] == (w + 1) * np.int64(sub):
            # a full sub-window of a count clock closes at once, not when the next event comes
            return _CLOSE, i + 1, g
    return _DONE, groups.shape[0], -1


@nb.njit(cache=True)
def _observe(v_start, start, stop, messages, slots, v_series, v_values, v_messages, keys, grouped, fill, touched,
             kind, fine, table, cell, shift, inst_base, inst_series, hist, mom, ref_slot, ref_rows, ref_mom,
             ref_cat, ref_k):
    """Each value of events ``start..stop - 1`` (from value ``v_start``) into its window or the
    reference its group learns; returns the first value after them.

    The values arrive event by event, their series interleaved; they are first grouped by
    window instance (a counting sort into ``grouped``), so that each instance then takes its
    values in one loop with its bins at hand and its moments in registers. ``keys``,
    ``grouped``: scratch per value; ``fill`` (zero), ``touched``: scratch per instance."""
    if stop <= start:
        return v_start
    end = v_start + np.searchsorted(v_messages[v_start:], messages[stop - 1], side="right")
    n_touched = 0
    learning = False
    # indices are cast to unsigned where they cannot be negative: numba then leaves out the
    # check for a negative (from the end) index, a good share of these loops' work
    for j in range(v_start, end):
        r = slots[np.uint64(v_messages[j])]
        if r >= 0:
            inst = np.uint64(inst_base[np.uint64(v_series[j])] + r)
            keys[j] = inst
            if fill[inst] == 0:
                touched[n_touched] = inst
                n_touched += 1
            fill[inst] += 1
        else:
            keys[j] = r
            learning |= r == _LEARN
    # fill[inst] becomes where the instance's values start in ``grouped``, then where they end
    total = 0
    for t in range(n_touched):
        count = fill[touched[t]]
        fill[touched[t]] = total
        total += count
    for j in range(v_start, end):
        inst = keys[j]
        if inst >= 0:
            inst = np.uint64(inst)
            grouped[np.uint64(fill[inst])] = v_values[j]
            fill[inst] += 1
    first = 0
    for t in range(n_touched):
        inst = touched[t]
        last = fill[inst]
        fill[inst] = 0
        _observe_instance(inst, inst_series[inst], grouped[first:last], kind, fine, table, cell, shift, hist, mom)
        first = last
    if learning:
        for j in range(v_start, end):
            if keys[j] == _LEARN:
                _learn_value(v_series[j], v_values[j], kind, shift, ref_slot, ref_rows, ref_mom, ref_cat, ref_k)
    return end


@nb.njit(cache=True, inline="always")
def _observe_instance(inst, s, values, kind, fine, table, cell, shift, hist, mom):
    """Values of series ``s`` into its window instance ``inst``: count and sum per fine bin
    (about the series' shift), moments."""
    if kind[s] != NUMERIC:
        last_code = hist.shape[1] - 1
        for x in values:
            hist[inst, min(np.int64(x), last_code), _H_COUNT] += 1.0
        return
    if shift[s] != shift[s]:
        shift[s] = values[0]
    start, scale, d0 = cell[s, 0], cell[s, 1], shift[s]
    total = squares = 0.0
    low, high = np.inf, -np.inf
    row, count, total_of = np.uint64(inst), np.uint64(_H_COUNT), np.uint64(_H_SUM)  # unsigned: see _observe
    for x in values:
        b = np.uint64(binning.locate(fine, table, s, start, scale, x))
        d = x - d0
        hist[row, b, count] += 1.0
        hist[row, b, total_of] += d
        total += d
        squares += d * d
        low = min(low, x)
        high = max(high, x)
    _add_moments(mom, inst, total, squares, low, high)


@nb.njit(cache=True, inline="always")
def _add_moments(mom, row, total, squares, low, high):
    mom[row, _M_SUM] += total
    mom[row, _M_SUM2] += squares
    mom[row, _M_MIN] = min(mom[row, _M_MIN], low)
    mom[row, _M_MAX] = max(mom[row, _M_MAX], high)


@nb.njit(cache=True)
def _learn_value(s, x, kind, shift, ref_slot, ref_rows, ref_mom, ref_cat, ref_k):
    """Value ``x`` of series ``s`` into the reference it learns."""
    learn = ref_slot[s]
    if learn < 0:
        return
    if kind[s] != NUMERIC:
        ref_cat[learn, min(np.int64(x), ref_cat.shape[1] - 1)] += 1.0
        return
    kll.update(ref_rows[learn], ref_k, x)
    if shift[s] != shift[s]:
        shift[s] = x
    d = x - shift[s]
    _add_moments(ref_mom, learn, d, d * d, x, x)


@nb.njit(cache=True)
def _update(start, v_start, groups, times, offsets, messages, v_series, v_values, v_messages, slots, keys, grouped,
            fill, touched, gint, gsub, ring_i, ring_f, gser_off, gser, inst_base, inst_series, kind, fine, table, cell,
            shift, hist, mom, ref_slot, ref_rows, ref_mom, ref_cat, ref_k, out):
    """Feed events ``start..`` and their values (from ``v_start``) to their groups' windows.

    Event i is of group ``groups[i]``, at ``times[i]``, record ``offsets[i]``, message
    ``messages[i]``; value j belongs to the event with message ``v_messages[j]`` (both in message
    order). Stops where Python is needed (see _assign). ``out`` gets [reason, next event, next
    value, group]."""
    reason, stop, g = _assign(start, groups, times, offsets, messages, gint, gsub, ring_i, ring_f, gser_off, gser,
                              inst_base, hist, mom, slots)
    j = _observe(v_start, start, stop, messages, slots, v_series, v_values, v_messages, keys, grouped, fill, touched,
                 kind, fine, table, cell, shift, inst_base, inst_series, hist, mom, ref_slot, ref_rows,
                 ref_mom, ref_cat, ref_k)
    out[0], out[1], out[2], out[3] = reason, stop, j, g


def _grow(a: np.ndarray, rows: int, fill=0) -> np.ndarray:
    if rows <= a.shape[0]:
        return a
    b = np.full((max(rows, 2 * a.shape[0]), *a.shape[1:]), fill, dtype=a.dtype)
    b[: a.shape[0]] = a
    return b


@dataclass
class _Reference:
    """What a series' windows are compared with."""

    profile: dict
    counts: np.ndarray  # per bin (numeric) or per code (categorical: known categories, other)
    bounds: list[float] | None = None  # numeric: the bins' bounds, -inf, edges..., inf
    fine: binning.FineBins | None = None  # numeric: the windows' bins
    codes: dict[str, int] | None = None  # category -> code (categorical)
    others: frozenset | None = None  # names of every 'other' category, when the profile has them all


class WindowBank:
    """Windows of many series in a few arrays, updated a batch at a time (see the module doc).

    resolution: fine bins of a numeric reference (:mod:`driftwire.detectors.binning`).
    max_bins: bins of a numeric reference's profile, or categories + 2 (other, unseen) of a
    categorical one.
    reference_k: KLL parameter of the sketches of references learnt from events.
    reference_top_k: top categories of a categorical reference learnt from events.

    A categorical series takes category codes as values (:meth:`category_codes`).
    """

    def __init__(self, resolution: int = binning.RESOLUTION, max_bins: int = 64,
                 reference_k: int = REFERENCE_SKETCH_K, seed: int = 0, reference_top_k: int = DEFAULT_TOP_K):
        if reference_top_k + 2 > max_bins:
            raise ValueError(f"reference_top_k {reference_top_k}: at most max_bins - 2 = {max_bins - 2}")
        if not 2 <= resolution <= MAX_RESOLUTION:
            raise ValueError(f"resolution {resolution}: 2 to {MAX_RESOLUTION}")
        self.resolution = resolution
        self.ref_k = reference_k
        self.reference_top_k = reference_top_k
        self.max_bins = max_bins
        self.seed = seed
        self.specs: list[WindowSpec] = []
        self.gint = np.zeros((4, _G_WIDTH), dtype=np.int64)
        self.gsub = np.zeros(4)
        self.ring_i = np.zeros((8, 3), dtype=np.int64)
        self.ring_f = np.zeros((8, 2))
        self.group_series: list[list[int]] = []
        self._gser_off = np.zeros(1, dtype=np.int64)
        self._gser = np.zeros(0, dtype=np.int64)
        # per series
        self.kind = np.zeros(8, dtype=np.int8)
        self.group_of: list[int] = []
        self.inst_base = np.zeros(8, dtype=np.int64)
        # fine edges: resolution - 1 quantiles, max_bins - 1 profile edges, min and max
        fine_edges = resolution + max_bins
        self.fine = np.full((8, fine_edges + 2), np.nan)
        self.table = np.zeros((8, binning.CELLS_PER_BIN * resolution + 2), dtype=np.int16)
        self.cell = np.zeros((8, 2))
        self.shift = np.full(8, np.nan)  # the series' first value (see _moments)
        # numeric references, for closes: counts per profile bin, profile bin of each fine bin,
        # share below each fine edge, and (fine edges, profile bins, first and last fine edge
        # of the range, count, std)
        self.ref_expected = np.zeros((8, max_bins))
        self.coarse_of = np.zeros((8, fine_edges + 1), dtype=np.int64)
        self.ref_cdf = np.zeros((8, fine_edges))
        self.ref_area = np.zeros((8, fine_edges + 1))
        self.ref_info = np.zeros((8, 6))
        self.ref_slot = np.full(8, -1, dtype=np.int64)
        self.references: list[_Reference | None] = []
        # per instance (series x ring slot)
        self.instances = 0
        self.inst_series = np.zeros(8, dtype=np.int64)
        # per instance and bin: the count, and (numeric) the values' sum about the series' shift,
        # side by side: one cache line takes both updates
        self.hist = np.zeros((8, fine_edges + 1, 2))
        self.mom = np.zeros((8, _M_WIDTH))
        # reference learning
        self.ref_sketches = kll.SketchBank(reference_k, seed=seed)
        self.ref_mom = np.zeros((8, _M_WIDTH))
        # counts per learning code of a categorical series (the last column: unnamed categories)
        self.ref_cat = np.zeros((8, LEARN_CATEGORIES + 1))
        self._learning_codes: list[dict[str, int] | None] = []
        #: counts the changes of what category codes mean (references set, learning started):
        #: codes looked up before a change may not hold after it
        self.generation = 0
        self._free_ref: list[int] = []
        self._out = np.zeros(4, dtype=np.int64)
        # scratch of update_messages, kept from batch to batch: fresh large arrays cost a page
        # fault per 4 KB on first touch
        self._scratch: dict[str, np.ndarray] = {}

    # -- structure -----------------------------------------------------------------------
    def add_group(self, spec: WindowSpec, learn_reference: bool = True) -> int:
        """A new group; it learns its reference from its first events unless one is set."""
        g = len(self.specs)
        self.specs.append(spec)
        self.gint = _grow(self.gint, g + 1)
        self.gsub = _grow(self.gsub, g + 1)
        base = int(self.gint[g - 1, _G_BASE] + self.gint[g - 1, _G_RING]) if g else 0
        self.ring_i = _grow(self.ring_i, base + spec.ring)
        self.ring_f = _grow(self.ring_f, base + spec.ring)
        row = self.gint[g]
        row[:] = 0
        row[_G_PHASE] = 0 if learn_reference else 1
        row[_G_REF_TARGET] = spec.reference_size
        row[_G_RING] = spec.ring
        row[_G_BASE] = base
        row[_G_TIME] = spec.duration is not None
        row[_G_LATENESS] = spec.lateness if spec.duration is not None else 0
        self.gsub[g] = spec.sub_length
        self.group_series.append([])
        self._index_groups()
        return g

    def add_series(self, group: int, kind: int = NUMERIC) -> int:
        """A new series of ``group``: its windows start empty at the group's current one."""
        s = len(self.group_of)
        self.group_of.append(group)
        self.references.append(None)
        self._learning_codes.append(None)
        ring = self.specs[group].ring
        self._grow_series(s + 1)
        self.kind[s] = kind
        self.inst_base[s] = self.instances
        self._clear_bins(s)
        self.ref_slot[s] = -1
        self.hist = _grow(self.hist, self.instances + ring)
        self.mom = _grow(self.mom, self.instances + ring)
        self.inst_series = _grow(self.inst_series, self.instances + ring)
        self.inst_series[self.instances : self.instances + ring] = s
        for inst in range(self.instances, self.instances + ring):
            _clear_instance(inst, self.hist, self.mom)
        self.instances += ring
        self.group_series[group].append(s)
        self._index_groups()
        if self.gint[group, _G_PHASE] == 0:
            self._learn(s)
        return s

    def _grow_series(self, n: int) -> None:
        for name in ("kind", "inst_base", "cell", "table", "ref_expected", "coarse_of", "ref_cdf", "ref_area",
                     "ref_info"):
            setattr(self, name, _grow(getattr(self, name), n))
        self.fine = _grow(self.fine, n, np.nan)
        self.shift = _grow(self.shift, n, np.nan)
        self.ref_slot = _grow(self.ref_slot, n, -1)

    def _clear_bins(self, s: int) -> None:
        """No reference: every value in bin 0, nothing out of range."""
        self.fine[s] = np.nan
        self.table[s] = 0
        self.cell[s] = 0.0
        self.ref_info[s] = 0.0

    def _learn(self, s: int) -> None:
        slot = self._free_ref.pop() if self._free_ref else self.ref_sketches.add()
        self.ref_sketches.reset(slot)
        self.ref_mom = _grow(self.ref_mom, slot + 1)
        _empty_moments(self.ref_mom[slot])
        if self.kind[s] == CATEGORICAL:
            self.ref_cat = _grow(self.ref_cat, slot + 1)
            self.ref_cat[slot] = 0.0
            self._learning_codes[s] = {}
            self.generation += 1
        self.ref_slot[s] = slot

    def _index_groups(self) -> None:
        sizes = [len(ss) for ss in self.group_series]
        self._gser_off = np.concatenate(([0], np.cumsum(sizes))).astype(np.int64)
        self._gser = np.array([s for ss in self.group_series for s in ss], dtype=np.int64)

    # -- references ----------------------------------------------------------------------
    def set_reference(self, s: int, profile: dict) -> None:
        """Compare series ``s`` with ``profile`` (a signal of a ReferenceProfile, as a dict)."""
        if profile["type"] == "numeric":
            if self.kind[s] != NUMERIC:
                raise ValueError("a numeric profile for a categorical series")
            edges = np.asarray(profile["edges"], dtype=np.float64)
            if edges.size > self.max_bins - 1:
                raise ValueError(f"{edges.size + 1} bins; at most {self.max_bins}")
            fine = self._numeric_reference(s, profile, edges)
            ref = _Reference(profile, np.asarray(profile["counts"], dtype=np.float64),
                             bounds=[-math.inf, *profile["edges"], math.inf], fine=fine)
        else:
            if self.kind[s] != CATEGORICAL:
                raise ValueError("a categorical profile for a numeric series")
            names = list(profile["frequencies"])
            if len(names) + 2 > self.max_bins:
                raise ValueError(f"{len(names)} categories; at most {self.max_bins - 2}")
            counts = np.array([*profile["frequencies"].values(), profile["other"]], dtype=np.float64)
            others = profile.get("other_categories")
            ref = _Reference(profile, counts, codes={name: code for code, name in enumerate(names)},
                             others=None if others is None else frozenset(others))
        self.references[s] = ref
        self.generation += 1

    def _numeric_reference(self, s: int, profile: dict, edges: np.ndarray) -> binning.FineBins:
        """Series ``s``'s fine bins of ``profile``, set up with what its closes need of the profile."""
        items, weights = QuantileSketch.from_dict(profile["sketch"]).sorted_view()
        # the profile's range, not the sketch's, bounds the reference (they agree for profiles
        # driftwire writes); both ends are fine edges, so out-of-range counts are bins
        lo, hi = float(profile["min"]), float(profile["max"])
        fine = binning.FineBins.from_sample(np.clip(items, lo, hi), weights, edges, self.resolution, lo, hi)
        m = fine.edges.size
        self.fine[s] = np.nan
        self.fine[s, : m + 2] = fine.padded
        self.table[s] = fine.table
        self.cell[s] = (fine.start, fine.scale)
        self.ref_expected[s] = 0.0
        self.ref_expected[s, : edges.size + 1] = profile["counts"]
        # fine bin b > 0 starts at fine edge b - 1, and no profile edge falls inside it
        self.coarse_of[s] = 0
        self.coarse_of[s, : m + 1] = np.searchsorted(edges, np.append(-np.inf, fine.edges), side="right")
        self.ref_cdf[s] = 0.0
        self.ref_cdf[s, :m] = fine.reference_cdf
        self.ref_area[s] = 0.0
        self.ref_area[s, : m + 1] = fine.reference_area
        self.ref_info[s] = (m, edges.size + 1, fine.first, fine.last, profile["count"], profile["std"])
        return fine

    def category_code(self, s: int, name: str) -> int:
        """Code of category ``name`` in series ``s``'s windows: its reference category; else
        'other' when the reference had it among its other categories, or cannot tell (it did not
        keep their names); else 'unseen'. While the reference is learnt, the category's
        learning code."""
        ref = self.references[s]
        if ref is None:
            learning = self._learning_codes[s]
            if learning is None:
                return self.max_bins - 1
            code = learning.get(name)
            if code is None:
                code = len(learning)
                if code < LEARN_CATEGORIES:
                    learning[name] = code
            return code
        code = ref.codes.get(name)
        if code is not None:
            return code
        known = len(ref.codes)
        return known if ref.others is None or name in ref.others else known + 1

    def other_code(self, s: int) -> int:
        """The code of a category of series ``s`` left unnamed (beyond a bound on the names
        kept): the learning codes' last, or the reference's 'other'."""
        ref = self.references[s]
        if ref is None:
            return self.max_bins - 1 if self._learning_codes[s] is None else LEARN_CATEGORIES
        return len(ref.codes)

    def category_codes(self, s: int, names) -> np.ndarray:
        """:meth:`category_code` of each name, as the values of series ``s``."""
        code = self.category_code
        return np.fromiter((code(s, name) for name in names), dtype=np.float64)

    def set_group_reference(self, group: int, profiles: dict[int, dict]) -> None:
        """Use these profiles (series -> profile) from now on; series without one have none."""
        for s in self.group_series[group]:
            self._drop_learning(s)
            self._learning_codes[s] = None
            self.references[s] = None
            self._clear_bins(s)
        self.generation += 1
        for s, profile in profiles.items():
            self.set_reference(s, profile)
        self.gint[group, _G_PHASE] = 1
        # windows binned with the previous reference's edges start again
        self.gint[group, _G_STARTED] = 0
        self.gint[group, _G_SEQ] = 0

    def _drop_learning(self, s: int) -> None:
        if self.ref_slot[s] >= 0:
            self._free_ref.append(int(self.ref_slot[s]))
            self.ref_slot[s] = -1

    def _reference_done(self, g: int) -> None:
        rows = int(self.gint[g, _G_REF_EVENTS])
        profiles = {}
        for s in self.group_series[g]:
            slot = int(self.ref_slot[s])
            if slot < 0:
                continue
            if self.kind[s] == CATEGORICAL:
                counts = self.ref_cat[slot]
                if not counts.any():
                    continue
                names = self._learning_codes[s]
                profiles[s] = categorical_profile_from_counts(
                    {name: int(counts[code]) for name, code in names.items() if counts[code] > 0}, rows,
                    self.reference_top_k, unnamed=int(counts[LEARN_CATEGORIES]))
                continue
            n = self.ref_sketches.n(slot)
            if n == 0:
                continue
            moments = self.ref_mom[slot]
            mean, m2 = _mean_m2(n, self.shift[s], moments[_M_SUM], moments[_M_SUM2])
            sketch = QuantileSketch.from_dict(self.ref_sketches.get_state(slot))
            std = math.sqrt(m2 / (n - 1.0)) if n > 1 else 0.0
            profiles[s] = numeric_profile_from_sketch(sketch, rows, mean, std, self.specs[g].reference_bins)
        self.set_group_reference(g, profiles)

    def learning(self, group: int) -> bool:
        return self.gint[group, _G_PHASE] == 0

    # -- the batch -----------------------------------------------------------------------
    def update(self, groups, times, offsets, series, values, value_events) -> list[WindowClose]:
        """Feed a batch: event i of ``groups[i]`` at event time ``times[i]`` (seconds) with record
        ``offsets[i]``; value j of ``series[j]`` belongs to event ``value_events[j]``, an event
        index (both arrays in event order). Returns the windows that closed, in order."""
        messages = np.arange(groups.shape[0], dtype=np.int64)
        return self.update_messages(groups, times, offsets, messages, series, values, value_events)

    def update_messages(self, groups, times, offsets, messages, series, values, value_messages):
        """:meth:`update` with events and values matched by message number instead of event
        index: a service passes the positions of its records in the consumed batch. Message
        numbers are non-negative and increasing; a table as long as the largest is made, so
        they should be small (positions, not offsets)."""
        closes: list[WindowClose] = []
        i = j = 0
        out = self._out
        # the place of each message's event (a value of no event is skipped)
        last = max(int(messages[-1]) if messages.size else -1, int(value_messages[-1]) if value_messages.size else -1)
        slots = self._scratch_array("slots", last + 1, np.int64)
        slots[:] = _SKIP
        keys = self._scratch_array("keys", series.shape[0], np.int64)
        grouped = self._scratch_array("grouped", series.shape[0], np.float64)
        fill = self._scratch_array("fill", self.instances + 1, np.int64)
        fill[:] = 0
        touched = self._scratch_array("touched", self.instances + 1, np.int64)
        while True:
            _update(i, j, groups, times, offsets, messages, series, values, value_messages, slots, keys, grouped,
                    fill, touched, self.gint, self.gsub, self.ring_i, self.ring_f, self._gser_off, self._gser,
                    self.inst_base, self.inst_series, self.kind, self.fine, self.table, self.cell, self.shift,
                    self.hist, self.mom, self.ref_slot, self.ref_sketches.rows, self.ref_mom,
                    self.ref_cat, self.ref_k, out)
            reason, i, j, g = (int(v) for v in out)
            if reason == _DONE:
                return closes
            if reason == _REFERENCE_DONE:
                self._reference_done(g)
            elif self.gint[g, _G_TIME]:
                closes += self._close_before(g, math.floor(times[i] / self.gsub[g]))
            else:
                closes += self._close_before(g, int(self.gint[g, _G_SEQ] // int(self.gsub[g])))

    def _scratch_array(self, name: str, size: int, dtype) -> np.ndarray:
        """A scratch array of at least ``size`` elements (its first ``size``)."""
        a = self._scratch.get(name)
        if a is None or a.shape[0] < size:
            a = self._scratch[name] = np.empty(max(size, 1024), dtype=dtype)
        return a[:size]

    def _close_before(self, g: int, w: int) -> list[WindowClose]:
        """Close the open sub-windows an event of sub-window ``w`` leaves behind."""
        last = w - int(self.gint[g, _G_LATENESS]) - 1
        closes = []
        for c in range(int(self.gint[g, _G_CLOSED]) + 1, min(last, int(self.gint[g, _G_CUR])) + 1):
            result = self.close(g, c)
            if result is not None:
                closes.append(result)
        self.gint[g, _G_CLOSED] = last
        return closes

    # -- closing -------------------------------------------------------------------------
    def close(self, g: int, c: int) -> WindowClose | None:
        """The window of group ``g`` ending with sub-window ``c``; None until it is complete
        (a sliding window needs ``slide`` sub-windows) or when it saw no event."""
        spec = self.specs[g]
        if c - int(self.gint[g, _G_FIRST]) + 1 < spec.slide:
            return None
        ring, base = int(self.gint[g, _G_RING]), int(self.gint[g, _G_BASE])
        held = [n % ring for n in range(c - spec.slide + 1, c + 1) if self.ring_i[base + n % ring, _R_NUM] == n]
        slots = [base + r for r in held]
        events = int(self.ring_i[slots, _R_EVENTS].sum())
        if events == 0:
            return None
        result = WindowClose(
            group=g, number=c,
            start=float(self.ring_f[slots, _R_FIRST_T].min()), end=float(self.ring_f[slots, _R_LAST_T].max()),
            events=events, late=int(self.gint[g, _G_LATE]), last_offset=int(self.ring_i[slots, _R_LAST_OFFSET].max()),
        )
        self.gint[g, _G_LATE] = 0
        series = self.group_series[g]
        numeric = np.array([s for s in series if self.kind[s] == NUMERIC], dtype=np.int64)
        if numeric.size:
            result.series.update(self._numeric_statistics(numeric, np.array(held, dtype=np.int64), events))
        for s in series:
            if self.kind[s] == CATEGORICAL:
                result.series[s] = self._categorical(s, [int(self.inst_base[s]) + r for r in held], events)
        return result

    def _numeric_statistics(self, series: np.ndarray, held: np.ndarray, events: int) -> dict[int, dict]:
        stats = np.empty((series.size, len(_NUMERIC_COLUMNS)))
        top = np.zeros((series.size, TOP_BINS, 4))
        _close_numeric(series, held, self.inst_base, self.hist, self.mom, self.shift, self.ref_info,
                       self.fine, self.ref_expected, self.coarse_of, self.ref_cdf, self.ref_area,
                       statistics.DEFAULT_EPSILON, stats, top)
        out = {}
        for s, values, tops in zip(series.tolist(), stats.tolist(), top.tolist()):
            row = dict(zip(_NUMERIC_COLUMNS, values))
            n = row["count"]
            row["count"] = int(n)
            row["missing_rate"] = max(0.0, 1.0 - n / events)
            ref = self.references[s]
            if n == 0:
                row = {"count": 0, "missing_rate": row["missing_rate"]}
            elif ref is None:
                row = {key: row[key] for key in ("count", "missing_rate", "mean", "std", "min", "max")}
            else:
                bounds = ref.bounds
                row["top_bins"] = [{"bin": bounds[int(b) : int(b) + 2], "reference": e, "window": a, "psi": psi}
                                   for b, e, a, psi in tops if b >= 0]
            out[s] = row
        return out

    def _categorical(self, s: int, insts: list[int], events: int) -> dict:
        counts = self.hist[insts, :, _H_COUNT].sum(axis=0)
        n = float(counts.sum())
        out = {"count": int(n), "missing_rate": max(0.0, 1.0 - n / events)}
        ref = self.references[s]
        if ref is not None and n > 0:
            out.update(_categorical_statistics(ref, counts, n))
        return out


# ref_info columns: fine edges, profile bins, fine edge at the reference's min and just above
# its max, its count and std
_I_FINE, _I_COARSE, _I_FIRST, _I_LAST, _I_COUNT, _I_STD = range(6)

_NUMERIC_COLUMNS = ("count", "mean", "std", "min", "max", "out_of_range_rate", "psi", "js_distance",
                    "kl_divergence", "hellinger", "ks", "ks_pvalue", "wasserstein", "wasserstein_std")


#: profile bins an alert names, those that moved PSI most
TOP_BINS = 3


@nb.njit(cache=True)
def _top(contributions, expected, window, top):
    """The ``top.shape[0]`` bins of largest PSI term (the first of equal ones first), as rows
    (bin, reference share, window share, PSI term); bin -1 past the last bin."""
    taken = np.zeros(contributions.shape[0], dtype=np.bool_)
    e_total = max(expected.sum(), 1e-300)
    a_total = max(window.sum(), 1.0)
    for t in range(top.shape[0]):
        best = -1
        for b in range(contributions.shape[0]):
            if not taken[b] and (best < 0 or contributions[b] > contributions[best]):
                best = b
        top[t, 0] = best
        if best >= 0:
            taken[best] = True
            top[t, 1] = expected[best] / e_total
            top[t, 2] = window[best] / a_total
            top[t, 3] = contributions[best]


@nb.njit(cache=True)
def _close_numeric(series, held, inst_base, hist, mom, shift, ref_info, fine, ref_expected, coarse_of,
                   ref_cdf, ref_area, eps, stats, top):
    """Row k of ``stats`` (see _NUMERIC_COLUMNS) and ``top`` (see _top) for numeric series
    ``series[k]``, over its instances in ring slots ``held``: the kernels of :mod:`.statistics`
    and :mod:`.binning`."""
    fine_counts = np.empty(hist.shape[1])
    fine_sums = np.empty(hist.shape[1])
    window = np.empty(ref_expected.shape[1])
    for k in range(series.shape[0]):
        s = series[k]
        row = stats[k]
        row[:] = np.nan
        bins = np.int64(ref_info[s, _I_FINE]) + 1
        fine_counts[:bins] = 0.0
        fine_sums[:bins] = 0.0
        total = squares = 0.0
        lo, hi = np.inf, -np.inf
        for r in held:
            inst = inst_base[s] + r
            for b in range(bins):
                fine_counts[b] += hist[inst, b, _H_COUNT]
                fine_sums[b] += hist[inst, b, _H_SUM]
            total += mom[inst, _M_SUM]
            squares += mom[inst, _M_SUM2]
            lo = min(lo, mom[inst, _M_MIN])
            hi = max(hi, mom[inst, _M_MAX])
        n = fine_counts[:bins].sum()
        row[0], row[3], row[4] = n, lo, hi
        if n == 0.0:
            continue
        # the sums are about one shift for all of the series' windows: they add up as they are
        mean, m2 = _mean_m2(n, shift[s], total, squares)
        row[1] = mean
        row[2] = math.sqrt(m2 / (n - 1.0)) if n > 1.0 else 0.0
        if bins == 1:
            continue  # no reference
        coarse = np.int64(ref_info[s, _I_COARSE])
        first, last = np.int64(ref_info[s, _I_FIRST]), np.int64(ref_info[s, _I_LAST])
        window[:coarse] = 0.0
        outside = 0.0
        for b in range(bins):
            window[coarse_of[s, b]] += fine_counts[b]
            if b <= first or b > last:
                outside += fine_counts[b]
        expected = ref_expected[s, :coarse]
        counts = window[:coarse]
        row[5] = outside / n
        contributions = statistics.psi_contributions_kernel(expected, counts, eps)
        _top(contributions, expected, counts, top[k])
        row[6] = contributions.sum()
        row[7] = statistics.js_distance_kernel(expected, counts)
        row[8] = statistics.kl_divergence_kernel(expected, counts, eps)
        row[9] = statistics.hellinger_kernel(expected, counts)
        cdf = ref_cdf[s, : bins - 1]
        row[10] = binning.ks_kernel(fine_counts[:bins], cdf)
        row[11] = statistics.ks_pvalue(row[10], ref_info[s, _I_COUNT], n)
        edges = fine[s, 1:bins]
        row[12] = binning.wasserstein_kernel(edges, fine_counts[:bins], fine_sums[:bins], shift[s], cdf,
                                             ref_area[s, :bins], first, last)
        std = ref_info[s, _I_STD]
        row[13] = row[12] / std if std > 0.0 else (0.0 if row[12] == 0.0 else np.inf)


def _categorical_statistics(ref: _Reference, counts, n: float) -> dict:
    known = len(ref.codes)
    # window counts of the reference's categories and 'other'; unseen = categories the
    # reference never had (only possible when it kept no 'other' count)
    window = counts[: known + 1].copy()
    unseen = float(counts[known + 1 :].sum())
    expected = np.append(ref.counts, 0.0)
    actual = np.append(window, unseen)
    stat, p, dof = statistics.chi_square(expected, actual)
    contributions = statistics.psi_contributions(expected, actual)
    names = [*ref.codes, "<other>", "<unseen>"]
    order = np.argsort(-contributions, kind="stable")[:3].tolist()
    e, a = expected / expected.sum(), actual / actual.sum()
    return {
        "chi_square": stat, "chi_square_pvalue": p, "chi_square_dof": dof,
        "psi": float(contributions.sum()),
        "js_distance": statistics.js_distance(expected, actual),
        "hellinger": statistics.hellinger(expected, actual),
        "unseen_rate": unseen / n,
        "top_categories": [{"category": names[c], "reference": float(e[c]), "window": float(a[c]),
                            "psi": float(contributions[c])} for c in order],
    }


# the fine bins and what closes need of a reference follow from the references
_STATE_ARRAYS = ("gint", "gsub", "ring_i", "ring_f", "kind", "inst_base", "inst_series", "ref_slot", "shift", "hist",
                 "mom", "ref_mom", "ref_cat")


def _pack(a: np.ndarray) -> dict:
    # Mostly zeros (bins no value reached, rows not yet used): compressed, a checkpoint of
    # thousands of series is a few MB instead of hundreds, and takes a fraction of the time.
    data = base64.b64encode(zlib.compress(a.tobytes(), 1)).decode()
    return {"dtype": a.dtype.str, "shape": list(a.shape), "codec": "zlib", "data": data}


def _unpack(d: dict) -> np.ndarray:
    raw = base64.b64decode(d["data"])
    if d.get("codec") == "zlib":
        raw = zlib.decompress(raw)
    return np.frombuffer(raw, dtype=d["dtype"]).reshape(d["shape"]).copy()


def get_state(bank: WindowBank) -> dict:
    """Everything a bank holds, as JSON-ready data; :func:`set_state` continues exactly from it."""
    return {
        "format": STATE_FORMAT, "resolution": bank.resolution, "reference_k": bank.ref_k, "max_bins": bank.max_bins,
        "seed": bank.seed, "instances": bank.instances, "reference_top_k": bank.reference_top_k,
        "specs": [vars(spec) for spec in bank.specs],
        "group_series": bank.group_series, "group_of": bank.group_of,
        "references": [None if r is None else r.profile for r in bank.references],
        "free_ref": bank._free_ref, "learning_codes": bank._learning_codes,
        "arrays": {name: _pack(getattr(bank, name)) for name in _STATE_ARRAYS},
        "ref_sketches": _pack(bank.ref_sketches.rows),
    }


def set_state(state: dict) -> WindowBank:
    """The bank :func:`get_state` described; ValueError for a state of another layout."""
    if state.get("format") != STATE_FORMAT:
        raise ValueError(f"window state of format {state.get('format', 1)}; this version reads {STATE_FORMAT}")
    bank = WindowBank(state["resolution"], state["max_bins"], state["reference_k"], state["seed"],
                      state["reference_top_k"])
    bank.specs = [WindowSpec(**spec) for spec in state["specs"]]
    bank.group_series = [list(ss) for ss in state["group_series"]]
    bank.group_of = list(state["group_of"])
    bank.instances = state["instances"]
    bank._free_ref = list(state["free_ref"])
    bank._learning_codes = list(state["learning_codes"])
    for name, packed in state["arrays"].items():
        setattr(bank, name, _unpack(packed))
    rows = _unpack(state["ref_sketches"])
    for _ in range(rows.shape[0]):
        bank.ref_sketches.add()
    bank.ref_sketches.rows[:] = rows
    bank._grow_series(len(bank.group_of))
    bank.references = [None] * len(bank.group_of)
    for s, profile in enumerate(state["references"]):
        if profile is not None:
            bank.set_reference(s, profile)
    bank._index_groups()
    return bank


def warm_up() -> None:
    """Compile or load the kernels before the first batch waits on them: a group learns its
    reference from its first events, numeric and categorical, then a window closes against it."""
    bank = WindowBank()
    g = bank.add_group(WindowSpec(size=4, reference_size=4))
    numeric, categorical = bank.add_series(g), bank.add_series(g, CATEGORICAL)
    events = np.arange(8, dtype=np.int64)
    codes = bank.category_codes(categorical, ["a", "b", "a", "c"] * 2)
    values = np.column_stack((np.arange(8.0), codes)).ravel()
    closes = bank.update(np.zeros(8, dtype=np.int64), events * 1.0, events, np.tile([numeric, categorical], 8),
                         values, np.repeat(events, 2))
    if len(closes) != 1:
        raise RuntimeError(f"window warm-up closed {len(closes)} windows, not 1")
