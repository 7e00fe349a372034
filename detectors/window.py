"""Windowed distribution drift: each window of a stream compared with a reference profile.

Series (one signal of one model version) are grouped by the stream they come from, a *group*
(one model version): a group's events advance its window clock, and every series of the group
closes its window at the same event. Per series, the open window keeps

- the counts per bin of the reference's bins (numeric) or per category code (categorical),
- a KLL quantile sketch of the values (numeric; :mod:`driftwire.detectors.kll`),
- count, mean and M2 (Welford), min and max, and how many values fall outside the reference's
  range,

all updated for a whole batch in one numba call. Values missing from an event (absent, null, of
another type) are the group's events minus the series' values.

Windows are tumbling (``slide=1``) or sliding: ``slide`` sub-windows, merged when the newest
closes, so a window of ``size`` events is evaluated every ``size / slide`` events. The clock is
the event count (``size``) or event time (``duration`` seconds, windows aligned to multiples of
the sub-window length since the epoch). In event time a sub-window stays open for ``lateness``
more sub-windows, so a late event still lands in its own window; an event older than every open
window is counted as late and left out. A group that starts without a reference learns one from
its first ``reference_size`` events (:func:`driftwire.detectors.profile.numeric_profile_from_sketch`).

At each close, :meth:`WindowBank.update` returns a :class:`WindowClose` with, per series, the
statistics of :mod:`driftwire.detectors.statistics` against the reference: PSI, Jensen-Shannon
distance, KL divergence, Hellinger distance (bins), Kolmogorov-Smirnov statistic and p-value,
Wasserstein-1 raw and in reference standard deviations (sketches), chi-square (categories), and
the data-quality rates. Deciding what is drift is the caller's (thresholds differ per signal).

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
[0.05, 0.43]
"""

from __future__ import annotations

import base64
import math
from dataclasses import dataclass, field

import numba as nb
import numpy as np

from . import kll, statistics
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
_G_LATE, _G_RING, _G_BASE, _G_LATENESS, _G_TIME = range(8, 13)
_G_WIDTH = 13
# ring of sub-windows of a group: int64 columns, float64 columns
_R_NUM, _R_EVENTS, _R_LAST_OFFSET = range(3)
_R_FIRST_T, _R_LAST_T = range(2)
# series moments per instance: count, mean, M2, min, max, below the reference's min, above its max
_M_N, _M_MEAN, _M_M2, _M_MIN, _M_MAX, _M_BELOW, _M_ABOVE = range(7)
_M_WIDTH = 7

# why the update kernel stopped
_DONE, _REFERENCE_DONE, _CLOSE = 0, 1, 2


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
def _bin(edges, n_edges, x):
    """Bin of x: the number of edges <= x (binary search)."""
    lo, hi = 0, n_edges
    while lo < hi:
        mid = (lo + hi) >> 1
        if edges[mid] <= x:
            lo = mid + 1
        else:
            hi = mid
    return lo


@nb.njit(cache=True)
def _moments(m, x, ref_min, ref_max):
    n = m[_M_N] + 1.0
    delta = x - m[_M_MEAN]
    m[_M_MEAN] += delta / n
    m[_M_M2] += delta * (x - m[_M_MEAN])
    m[_M_N] = n
    m[_M_MIN] = min(m[_M_MIN], x)
    m[_M_MAX] = max(m[_M_MAX], x)
    if x < ref_min:
        m[_M_BELOW] += 1.0
    elif x > ref_max:
        m[_M_ABOVE] += 1.0


@nb.njit(cache=True)
def _empty_moments(m):
    m[:] = 0.0
    m[_M_MIN] = np.inf
    m[_M_MAX] = -np.inf


@nb.njit(cache=True)
def _clear_instance(inst, hist, mom, rows, k, seed):
    hist[inst, :] = 0.0
    _empty_moments(mom[inst])
    kll.reset(rows[inst], k, seed + inst)


@nb.njit(cache=True)
def _open(g, w, gint, ring_i, ring_f, gser_off, gser, inst_base, hist, mom, rows, k, seed):
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
            _clear_instance(inst_base[gser[j]] + r, hist, mom, rows, k, seed)
    gint[g, _G_CUR] = w



@nb.njit(cache=True)
def _update(start, v_start, groups, times, offsets, messages, v_series, v_values, v_messages,
            gint, gsub, ring_i, ring_f, gser_off, gser, inst_base, kind, edges, n_edges, ref_range,
            hist, mom, rows, k, ref_slot, ref_rows, ref_mom, ref_cat, ref_k, seed, out):
    """Feed events ``start..`` and their values (from ``v_start``) to their groups' windows.

    Event i is of group ``groups[i]``, at ``times[i]``, record ``offsets[i]``, message
    ``messages[i]``; value j belongs to the event with message ``v_messages[j]`` (both in message
    order). Stops where Python is needed: after the event that completes a group's reference,
    before an event whose window needs an earlier one closed. ``out`` gets [reason, next event,
    next value, group]."""
    j = v_start
    nv = v_series.shape[0]
    hist_width = hist.shape[1]
    for i in range(start, groups.shape[0]):
        g = groups[i]
        msg = messages[i]
        while j < nv and v_messages[j] < msg:
            j += 1
        if gint[g, _G_PHASE] == 0:
            while j < nv and v_messages[j] == msg:
                s = v_series[j]
                r = ref_slot[s]
                if r >= 0 and kind[s] == NUMERIC:
                    kll.update(ref_rows[r], ref_k, v_values[j])
                    _moments(ref_mom[r], v_values[j], -np.inf, np.inf)
                elif r >= 0:
                    ref_cat[r, min(np.int64(v_values[j]), ref_cat.shape[1] - 1)] += 1.0
                    ref_mom[r, _M_N] += 1.0
                j += 1
            gint[g, _G_REF_EVENTS] += 1
            if gint[g, _G_REF_EVENTS] >= gint[g, _G_REF_TARGET]:
                out[0], out[1], out[2], out[3] = _REFERENCE_DONE, i + 1, j, g
                return
            continue
        if gint[g, _G_TIME]:
            w = np.int64(math.floor(times[i] / gsub[g]))
        else:
            w = gint[g, _G_SEQ] // np.int64(gsub[g])
        if not gint[g, _G_STARTED]:
            _open(g, w, gint, ring_i, ring_f, gser_off, gser, inst_base, hist, mom, rows, k, seed)
            gint[g, _G_STARTED] = 1
            gint[g, _G_CLOSED] = w - 1
            gint[g, _G_FIRST] = w
        elif w <= gint[g, _G_CLOSED]:
            gint[g, _G_LATE] += 1
            while j < nv and v_messages[j] == msg:
                j += 1
            continue
        elif w > gint[g, _G_CUR]:
            if w - gint[g, _G_LATENESS] - 1 > gint[g, _G_CLOSED]:
                out[0], out[1], out[2], out[3] = _CLOSE, i, j, g
                return
            _open(g, w, gint, ring_i, ring_f, gser_off, gser, inst_base, hist, mom, rows, k, seed)
        gint[g, _G_SEQ] += 1
        r = w % gint[g, _G_RING]
        slot = gint[g, _G_BASE] + r
        ring_i[slot, _R_EVENTS] += 1
        ring_i[slot, _R_LAST_OFFSET] = max(ring_i[slot, _R_LAST_OFFSET], offsets[i])
        ring_f[slot, _R_FIRST_T] = min(ring_f[slot, _R_FIRST_T], times[i])
        ring_f[slot, _R_LAST_T] = max(ring_f[slot, _R_LAST_T], times[i])
        while j < nv and v_messages[j] == msg:
            s = v_series[j]
            inst = inst_base[s] + r
            x = v_values[j]
            if kind[s] == NUMERIC:
                hist[inst, _bin(edges[s], n_edges[s], x)] += 1.0
                _moments(mom[inst], x, ref_range[s, 0], ref_range[s, 1])
                kll.update(rows[inst], k, x)
            else:
                hist[inst, min(np.int64(x), hist_width - 1)] += 1.0
                mom[inst, _M_N] += 1.0
            j += 1
        if not gint[g, _G_TIME] and gint[g, _G_SEQ] % np.int64(gsub[g]) == 0:
            # a full sub-window of a count clock closes at once, not when the next event comes
            out[0], out[1], out[2], out[3] = _CLOSE, i + 1, j, g
            return
    out[0], out[1], out[2], out[3] = _DONE, groups.shape[0], j, -1


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
    items: np.ndarray | None = None  # the sketch's sorted view (numeric)
    weights: np.ndarray | None = None
    codes: dict[str, int] | None = None  # category -> code (categorical)
    others: frozenset | None = None  # names of every 'other' category, when the profile has them all


class WindowBank:
    """Windows of many series in a few arrays, updated a batch at a time (see the module doc).

    max_bins: bins of a numeric reference, or categories + 2 (other, unseen) of a categorical one.
    sketch_k: KLL parameter of window sketches; reference sketches use their own.
    reference_top_k: top categories of a categorical reference learnt from events.

    A categorical series takes category codes as values (:meth:`category_codes`).
    """

    def __init__(self, sketch_k: int = 200, max_bins: int = 64, reference_k: int = REFERENCE_SKETCH_K,
                 seed: int = 0, reference_top_k: int = DEFAULT_TOP_K):
        if reference_top_k + 2 > max_bins:
            raise ValueError(f"reference_top_k {reference_top_k}: at most max_bins - 2 = {max_bins - 2}")
        self.k = sketch_k
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
        self.edges = np.full((8, max_bins - 1), np.inf)
        self.n_edges = np.zeros(8, dtype=np.int64)
        self.ref_range = np.tile([-np.inf, np.inf], (8, 1))
        self.ref_slot = np.full(8, -1, dtype=np.int64)
        self.references: list[_Reference | None] = []
        # per instance (series x ring slot)
        self.instances = 0
        self.hist = np.zeros((8, max_bins))
        self.mom = np.zeros((8, _M_WIDTH))
        self.sketches = kll.SketchBank(sketch_k)
        # reference learning
        self.ref_sketches = kll.SketchBank(reference_k)
        self.ref_mom = np.zeros((8, _M_WIDTH))
        # counts per learning code of a categorical series (the last column: unnamed categories)
        self.ref_cat = np.zeros((8, LEARN_CATEGORIES + 1))
        self._learning_codes: list[dict[str, int] | None] = []
        self._free_ref: list[int] = []
        self._out = np.zeros(4, dtype=np.int64)

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
        for name in ("kind", "inst_base", "n_edges"):
            setattr(self, name, _grow(getattr(self, name), s + 1))
        self.edges = _grow(self.edges, s + 1, np.inf)
        self.ref_range = _grow(self.ref_range, s + 1, np.inf)
        self.ref_range[s] = (-np.inf, np.inf)
        self.ref_slot = _grow(self.ref_slot, s + 1, -1)
        self.kind[s] = kind
        self.inst_base[s] = self.instances
        self.n_edges[s] = 0
        self.ref_slot[s] = -1
        self.hist = _grow(self.hist, self.instances + ring)
        self.mom = _grow(self.mom, self.instances + ring)
        for _ in range(ring):
            self.sketches.add()
        for inst in range(self.instances, self.instances + ring):
            _clear_instance(inst, self.hist, self.mom, self.sketches.rows, self.k, self.seed)
        self.instances += ring
        self.group_series[group].append(s)
        self._index_groups()
        if self.gint[group, _G_PHASE] == 0:
            self._learn(s)
        return s

    def _learn(self, s: int) -> None:
        slot = self._free_ref.pop() if self._free_ref else self.ref_sketches.add()
        self.ref_sketches.reset(slot)
        self.ref_mom = _grow(self.ref_mom, slot + 1)
        _empty_moments(self.ref_mom[slot])
        if self.kind[s] == CATEGORICAL:
            self.ref_cat = _grow(self.ref_cat, slot + 1)
            self.ref_cat[slot] = 0.0
            self._learning_codes[s] = {}
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
            self.edges[s] = np.inf
            self.edges[s, : edges.size] = edges
            self.n_edges[s] = edges.size
            self.ref_range[s] = (profile["min"], profile["max"])
            items, weights = QuantileSketch.from_dict(profile["sketch"]).sorted_view()
            ref = _Reference(profile, np.asarray(profile["counts"], dtype=np.float64), items, weights)
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
            self.n_edges[s] = 0
            self.ref_range[s] = (-np.inf, np.inf)
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
            if slot < 0 or self.ref_mom[slot, _M_N] == 0:
                continue
            if self.kind[s] == CATEGORICAL:
                counts = self.ref_cat[slot]
                names = self._learning_codes[s]
                profiles[s] = categorical_profile_from_counts(
                    {name: int(counts[code]) for name, code in names.items() if counts[code] > 0}, rows,
                    self.reference_top_k, unnamed=int(counts[LEARN_CATEGORIES]))
                continue
            n, mean, m2 = self.ref_mom[slot, [_M_N, _M_MEAN, _M_M2]]
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
        """:meth:`update` with events and values matched by message number (increasing) instead
        of event index: a service passes the positions of its records in the consumed batch."""
        closes: list[WindowClose] = []
        i = j = 0
        out = self._out
        while True:
            _update(i, j, groups, times, offsets, messages, series, values, value_messages,
                    self.gint, self.gsub, self.ring_i, self.ring_f, self._gser_off, self._gser, self.inst_base,
                    self.kind, self.edges, self.n_edges, self.ref_range, self.hist, self.mom,
                    self.sketches.rows, self.k, self.ref_slot, self.ref_sketches.rows, self.ref_mom, self.ref_cat,
                    self.ref_k, self.seed, out)
            reason, i, j, g = (int(v) for v in out)
            if reason == _DONE:
                return closes
            if reason == _REFERENCE_DONE:
                self._reference_done(g)
            elif self.gint[g, _G_TIME]:
                closes += self._close_before(g, math.floor(times[i] / self.gsub[g]))
            else:
                closes += self._close_before(g, int(self.gint[g, _G_SEQ] // int(self.gsub[g])))

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
        for s in self.group_series[g]:
            result.series[s] = self._series_statistics(s, [int(self.inst_base[s]) + r for r in held], events)
        return result

    def _series_statistics(self, s: int, insts: list[int], events: int) -> dict:
        counts = self.hist[insts].sum(axis=0)
        n = float(self.mom[insts, _M_N].sum())
        out = {"count": int(n), "missing_rate": max(0.0, 1.0 - n / events)}
        ref = self.references[s]
        if self.kind[s] == NUMERIC:
            out.update(self._numeric(s, insts, counts, n, ref))
        elif ref is not None and n > 0:
            out.update(_categorical_statistics(ref, counts, n))
        return out

    def _numeric(self, s: int, insts: list[int], counts: np.ndarray, n: float, ref: _Reference | None) -> dict:
        if n == 0:
            return {}
        m = _merged_moments(self.mom[insts])
        out = {"mean": float(m[_M_MEAN]), "std": math.sqrt(m[_M_M2] / (n - 1.0)) if n > 1 else 0.0,
               "min": float(m[_M_MIN]), "max": float(m[_M_MAX])}
        if ref is None:
            return out
        out["out_of_range_rate"] = float(m[_M_BELOW] + m[_M_ABOVE]) / n
        if len(insts) == 1:
            items, weights = self.sketches.sorted_view(insts[0])
        else:
            items, weights = self.sketches.merged(insts).sorted_view()
        out.update(_numeric_statistics(ref, counts[: int(self.n_edges[s]) + 1], items, weights, n))
        return out


def _merged_moments(rows: np.ndarray) -> np.ndarray:
    """Moments of the union of the instances (Chan et al.'s pairwise combination)."""
    total = np.zeros(_M_WIDTH)
    total[_M_MIN], total[_M_MAX] = np.inf, -np.inf
    for row in rows:
        n = total[_M_N] + row[_M_N]
        if row[_M_N] == 0:
            continue
        delta = row[_M_MEAN] - total[_M_MEAN]
        total[_M_M2] += row[_M_M2] + delta * delta * total[_M_N] * row[_M_N] / n
        total[_M_MEAN] += delta * row[_M_N] / n
        total[_M_N] = n
        total[_M_MIN] = min(total[_M_MIN], row[_M_MIN])
        total[_M_MAX] = max(total[_M_MAX], row[_M_MAX])
        total[_M_BELOW] += row[_M_BELOW]
        total[_M_ABOVE] += row[_M_ABOVE]
    return total


@nb.njit(cache=True)
def _numeric_kernel(expected, counts, ref_items, ref_weights, ref_n, items, weights, n, contributions, out):
    """The statistics of a numeric window into ``out`` (see _NUMERIC_STATISTICS), each bin's
    PSI term into ``contributions``: the kernels of :mod:`.statistics` in one call, on inputs
    that are valid by construction (sorted sketch views, non-negative counts)."""
    eps = statistics.DEFAULT_EPSILON
    contributions[:] = statistics.psi_contributions_kernel(expected, counts, eps)
    out[0] = contributions.sum()
    out[1] = statistics.js_distance_kernel(expected, counts)
    out[2] = statistics.kl_divergence_kernel(expected, counts, eps)
    out[3] = statistics.hellinger_kernel(expected, counts)
    out[4], out[5] = statistics.ks_2samp_kernel(ref_items, ref_weights, items, weights, ref_n, n)
    out[6] = statistics.wasserstein_kernel(ref_items, ref_weights, items, weights)


_NUMERIC_STATISTICS = ("psi", "js_distance", "kl_divergence", "hellinger", "ks", "ks_pvalue", "wasserstein")


def _numeric_statistics(ref: _Reference, counts, items, weights, n: float) -> dict:
    expected = ref.counts
    std = ref.profile["std"]
    contributions = np.empty(expected.shape[0])
    values = np.empty(len(_NUMERIC_STATISTICS))
    _numeric_kernel(expected, counts, ref.items, ref.weights, float(ref.profile["count"]), items, weights, n,
                    contributions, values)
    out = dict(zip(_NUMERIC_STATISTICS, values.tolist()))
    w1 = out["wasserstein"]
    out["wasserstein_std"] = w1 / std if std > 0 else (0.0 if w1 == 0 else math.inf)
    out["top_bins"] = _top_bins(contributions, expected, counts, ref.profile["edges"])
    return out


def _top_bins(contributions, expected, actual, edges, top: int = 3) -> list[dict]:
    """The bins that moved PSI most, with their share in the reference and in the window."""
    bounds = [-math.inf, *edges, math.inf]
    e, a = expected / expected.sum(), actual / max(actual.sum(), 1.0)
    order = np.argsort(-contributions, kind="stable")[:top]
    return [{"bin": [bounds[b], bounds[b + 1]], "reference": float(e[b]), "window": float(a[b]),
             "psi": float(contributions[b])} for b in order.tolist()]


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


_STATE_ARRAYS = ("gint", "gsub", "ring_i", "ring_f", "kind", "inst_base", "edges", "n_edges", "ref_range",
                 "ref_slot", "hist", "mom", "ref_mom", "ref_cat")


def _pack(a: np.ndarray) -> dict:
    return {"dtype": a.dtype.str, "shape": list(a.shape), "data": base64.b64encode(a.tobytes()).decode()}


def _unpack(d: dict) -> np.ndarray:
    return np.frombuffer(base64.b64decode(d["data"]), dtype=d["dtype"]).reshape(d["shape"]).copy()


def get_state(bank: WindowBank) -> dict:
    """Everything a bank holds, as JSON-ready data; :func:`set_state` continues exactly from it."""
    return {
        "k": bank.k, "reference_k": bank.ref_k, "max_bins": bank.max_bins,
        "seed": bank.seed, "instances": bank.instances, "reference_top_k": bank.reference_top_k,
        "specs": [vars(spec) for spec in bank.specs],
        "group_series": bank.group_series, "group_of": bank.group_of,
        "references": [None if r is None else r.profile for r in bank.references],
        "free_ref": bank._free_ref, "learning_codes": bank._learning_codes,
        "arrays": {name: _pack(getattr(bank, name)) for name in _STATE_ARRAYS},
        "sketches": _pack(bank.sketches.rows), "ref_sketches": _pack(bank.ref_sketches.rows),
    }


def set_state(state: dict) -> WindowBank:
    """The bank :func:`get_state` described."""
    bank = WindowBank(state["k"], state["max_bins"], state["reference_k"], state["seed"], state["reference_top_k"])
    bank.specs = [WindowSpec(**spec) for spec in state["specs"]]
    bank.group_series = [list(ss) for ss in state["group_series"]]
    bank.group_of = list(state["group_of"])
    bank.instances = state["instances"]
    bank._free_ref = list(state["free_ref"])
    bank._learning_codes = list(state["learning_codes"])
    for name, packed in state["arrays"].items():
        setattr(bank, name, _unpack(packed))
    for sketches, packed in ((bank.sketches, state["sketches"]), (bank.ref_sketches, state["ref_sketches"])):
        rows = _unpack(packed)
        for _ in range(rows.shape[0]):
            sketches.add()
        sketches.rows[:] = rows
    bank.references = [None] * len(bank.group_of)
    for s, profile in enumerate(state["references"]):
        if profile is not None:
            bank.set_reference(s, profile)
    bank._index_groups()
    return bank
