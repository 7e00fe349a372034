"""Fine bins of a reference: a window's sketch, updated in constant time per value.

A window is only ever compared with its reference, so it does not need a sketch of its own
distribution at a rank error of its own: it needs its counts between points where the
reference's CDF is known. The fine bins of a reference are its quantiles at ``i / resolution``
(``resolution`` = 256 by default) and at halves of ``1 / resolution`` towards both ends (so
that the widest bins of a heavy tail hold little), with its profile's bin edges, its minimum
and (just above) its maximum added, so that

- the profile's bins are unions of fine bins: the window's histogram over them is exact;
- the first fine bin holds the values below the reference's minimum and the last those above
  its maximum: the out-of-range counts are exact too;
- each inner fine bin holds at most about ``1 / resolution`` of the reference.

A window keeps its count and the sum of its values in each fine bin.

A value's bin is found in constant time: a table over equal cells of the inner range gives the
first edge of the value's cell, and one comparison (more only where a cell holds more than one
edge, as in a heavy tail) finds the bin. The result equals
``numpy.searchsorted(edges, x, side="right")``.

What the window's statistics against the reference lose, as error bounds:

- **Kolmogorov-Smirnov.** The gap between the CDFs is read at the fine edges, where both are
  exact, so the statistic is at most the gap against the reference's sketch, and falls short
  of it by at most the reference's largest mass in one fine bin (about ``1 / resolution``).
- **Wasserstein-1.** Each fine bin keeps the window's count and the sum of its values there,
  so the integral of the window's CDF over each bin is exact; the reference's is exact too,
  and so is the distance beyond the reference's range. Within a bin the gap between the CDFs
  is taken as piecewise linear with that exact integral: exact where the CDFs do not cross
  inside a bin, and off by at most the bin's width times the two shares in it where they do.
- **Quantiles of the window** (:func:`quantiles`). The counts say exactly which fine bin holds
  each rank, so a quantile is placed in the bins that hold the ranks numpy interpolates
  between (the window's min and max bound the open outer bins): it is off by at most their
  span, whatever the window holds.

>>> import numpy as np
>>> from driftwire.detectors.binning import FineBins
>>> rng = np.random.default_rng(0)
>>> reference = np.sort(rng.normal(0, 1, 10_000))
>>> bins = FineBins.from_sample(reference, np.ones(reference.size), coarse_edges=np.array([0.0]))
>>> window = rng.normal(0.5, 1, 10_000)
>>> counts = np.bincount(bins.locate(window), minlength=bins.size)
>>> bool(np.array_equal(bins.locate(window), np.searchsorted(bins.edges, window, side="right")))
True
>>> round(bins.ks(counts), 3)
0.194
>>> [round(float(v), 1) for v in quantiles(bins.edges, counts, window.min(), window.max(), [0.05, 0.5, 0.95])]
[-1.1, 0.5, 2.1]
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numba as nb
import numpy as np

from .profile import weighted_quantiles

#: fine bins per reference: a window's KS against its reference is low by at most ~1/RESOLUTION
RESOLUTION = 256
#: cells of the lookup table per fine bin: about one edge per cell in most distributions, and
#: a table small enough to stay in cache (2 KB at the default resolution)
CELLS_PER_BIN = 4
#: the outermost fine bins are split in halves of their share this many times on each side, so
#: that a heavy tail's last bin, wide as it is, holds little of the reference
TAIL_SPLITS = 10


def fine_edges(items: np.ndarray, weights: np.ndarray, coarse_edges: np.ndarray, lo: float, hi: float,
               resolution: int = RESOLUTION) -> np.ndarray:
    """Edges of the fine bins of a reference (a sorted weighted sample, its range ``lo..hi``):
    its quantiles at ``i / resolution`` and at halves of ``1 / resolution`` towards both ends,
    the coarse edges, ``lo`` and the float above ``hi``."""
    tail = 0.5 ** np.arange(1, TAIL_SPLITS + 1) / resolution
    q = np.concatenate((tail, np.arange(1, resolution) / resolution, 1.0 - tail))
    quantiles = weighted_quantiles(items, weights, q)
    return np.unique(np.concatenate((quantiles, coarse_edges, [lo, np.nextafter(hi, np.inf)])))


def lookup_table(edges: np.ndarray, cells: int) -> tuple[float, float, np.ndarray]:
    """``(start, cells per unit, table)`` over the edges but the outermost two: ``table[c + 1]``
    is the number of edges at or below the start of cell ``c``, less any within rounding of it
    (so a value is never put above its bin); ``table[0]`` is 0 (below every cell),
    ``table[cells + 1]`` that number at the end of the last cell (above every cell)."""
    m = edges.size
    table = np.zeros(cells + 2, dtype=np.int16 if m < 2**15 else np.int32)
    if m < 4 or not edges[m - 2] > edges[1]:
        return 0.0, 0.0, table  # every value starts from bin 0: at most m steps
    start, span = float(edges[1]), float(edges[m - 2] - edges[1])
    scale = cells / span
    # the cell of x, (x - start) * scale, and each cell's start carry rounding errors of a few
    # ulps of the values involved: start a cell's walk below any edge that close to it
    margin = 16.0 * np.finfo(np.float64).eps * (abs(start) + abs(start + span))
    table[1:] = np.searchsorted(edges, start + np.arange(cells + 1) / scale - margin, side="right")
    return start, scale, table


@nb.njit(cache=True, inline="always")
def locate(padded, table, row, start, scale, x):
    """Bin of ``x``: the number of edges <= x, with ``padded[row]`` the edges between a leading
    and a trailing NaN (no comparison with NaN holds, so no walk leaves the edges, even for an
    infinite ``x``) and ``table[row]`` from :func:`lookup_table`. NaN is put in bin 0. Rows of 2-D
    arrays rather than 1-D views: a view costs a reference count update per value."""
    c = (x - start) * scale
    cells = table.shape[1] - 2
    if c >= cells:
        index = cells + 1
    elif c >= 0.0:
        index = np.int64(c) + 1
    else:
        index = 0  # also NaN
    # unsigned indices: numba leaves out its check for a negative (from the end) index
    row, one = np.uint64(row), np.uint64(1)
    b = np.uint64(table[row, np.uint64(index)])  # at or below the bin of x
    b += np.uint64(padded[row, b + one] <= x)
    while padded[row, b + one] <= x:  # a cell with more than one edge
        b += one
    return np.int64(b)


@nb.njit(cache=True)
def _locate_many(padded, table, start, scale, values, out):
    for i in range(values.shape[0]):
        out[i] = locate(padded, table, 0, start, scale, values[i])


@nb.njit(cache=True)
def ks_kernel(counts, reference_cdf):
    """Largest gap between the window's CDF and the reference's at the fine edges:
    ``reference_cdf[b]`` is the reference's share below edge ``b``, ``counts`` the window's
    counts per fine bin (one more than edges)."""
    n = 0.0
    for b in range(counts.shape[0]):
        n += counts[b]
    if not n > 0.0:
        return math.nan
    per_value = 1.0 / n
    below = 0.0
    gap = 0.0
    for b in range(reference_cdf.shape[0]):
        below += counts[b]
        gap = max(gap, abs(below * per_value - reference_cdf[b]))
    return gap


@nb.njit(cache=True)
def _segment(u, v):
    """Integral over [0, 1] of |g| for g linear from u to v."""
    if (u >= 0.0) == (v >= 0.0) or u == v:
        return abs(u + v) / 2.0
    return (u * u + v * v) / (2.0 * abs(u - v))


@nb.njit(cache=True)
def wasserstein_kernel(edges, counts, sums, origin, reference_cdf, reference_area, first, last):
    """Wasserstein-1 distance between the window and the reference: the integral of the gap g
    between their CDFs. Below edge ``first`` (the reference's minimum) the reference's CDF is 0
    and above edge ``last`` (just above its maximum) it is 1: there the window's values give the
    integral exactly (``sums``: per bin, their summed distance to ``origin``). In each fine bin
    between, g is known at both ends and its integral is exact (the window's from its count and
    sum in the bin, the reference's from ``reference_area``); g is taken as linear from each end
    to a midpoint set by that integral. Exact where g keeps its sign within a bin."""
    n = 0.0
    for b in range(counts.shape[0]):
        n += counts[b]
    if not n > 0.0:
        return math.nan
    lo, hi = edges[first] - origin, edges[last] - origin
    below = 0.0  # the window's values below the current bin
    area = 0.0
    for b in range(first + 1):
        below += counts[b]
        area += counts[b] * lo - sums[b]
    for b in range(last + 1, counts.shape[0]):
        area += sums[b] - counts[b] * hi
    area /= n
    per_value = 1.0 / n
    for b in range(first + 1, last + 1):
        width = edges[b] - edges[b - 1]
        # the integral of the window's CDF over the bin: its share below the bin over the whole
        # width, and each value in the bin from where it is to the bin's end
        inside = counts[b] * (edges[b] - origin) - sums[b]
        integral = (below * width + inside) * per_value - reference_area[b]
        start = below * per_value - reference_cdf[b - 1]
        below += counts[b]
        end = below * per_value - reference_cdf[b]
        if width <= 1e-12 * max(abs(edges[b]), 1.0):
            area += abs(integral)  # a bin of a few ulps: a midpoint would be rounding noise
            continue
        middle = 2.0 * integral / width - (start + end) / 2.0
        area += width * (_segment(start, middle) + _segment(middle, end)) / 2.0
    return area


def _areas(items: np.ndarray, weights: np.ndarray, edges: np.ndarray, below: np.ndarray) -> np.ndarray:
    """Per bin, the integral of a weighted sample's CDF over it: a bin [a, b) takes the share
    below a over its width, and each item inside from where it is to b. ``below``: the items
    below each edge."""
    total = weights.sum()
    shifted = np.concatenate(([0.0], np.cumsum(weights * (items - items[0]))))  # small terms: no cancellation
    cumulative = np.concatenate(([0.0], np.cumsum(weights)))
    area = np.zeros(edges.size + 1)
    a, b = edges[:-1], edges[1:]
    i0, i1 = below[:-1], below[1:]
    inside = cumulative[i1] - cumulative[i0]
    area[1:-1] = (cumulative[i0] * (b - a) + inside * (b - items[0]) - (shifted[i1] - shifted[i0])) / total
    return area


def quantiles(edges: np.ndarray, counts, low: float, high: float, q) -> np.ndarray:
    """Quantiles ``q`` of a window known by its ``counts`` per fine bin and its range
    ``low..high``, as ``numpy.quantile`` would interpolate them: the rank ``q * (n - 1)`` falls
    in a bin, and is placed within the bin's span (cut to the range) by its place among the
    bin's values."""
    counts = np.asarray(counts, dtype=np.float64)
    q = np.asarray(q, dtype=np.float64)
    cumulative = np.cumsum(counts)
    n = cumulative[-1]
    if not n > 0:
        return np.full(q.shape, np.nan)
    rank = q * (n - 1.0)
    b = np.minimum(np.searchsorted(cumulative, rank, side="right"), counts.size - 1)
    bounds = np.concatenate(([low], np.clip(edges, low, high), [high]))
    lo, hi = bounds[b], bounds[b + 1]
    within = (rank - (cumulative[b] - counts[b]) + 0.5) / np.maximum(counts[b], 1.0)
    return lo + np.clip(within, 0.0, 1.0) * (hi - lo)


@dataclass(frozen=True)
class FineBins:
    """The fine bins of one reference and its CDF at their edges (see the module doc)."""

    edges: np.ndarray
    reference_cdf: np.ndarray  # the reference's share below each edge
    reference_area: np.ndarray  # per bin, the integral of the reference's CDF over it (0 for open bins)
    first: int  # the edge at the reference's minimum
    last: int  # the edge just above its maximum
    start: float
    scale: float
    table: np.ndarray

    @classmethod
    def from_sample(cls, items: np.ndarray, weights: np.ndarray, coarse_edges=(),
                    resolution: int = RESOLUTION, lo: float | None = None, hi: float | None = None) -> FineBins:
        """Fine bins of a sorted weighted sample (a sketch's sorted view, or data with weights 1)
        whose range is ``lo..hi`` (default: its first and last item; a sketch may have dropped
        its extremes)."""
        items = np.asarray(items, dtype=np.float64)
        weights = np.asarray(weights, dtype=np.float64)
        lo = items[0] if lo is None else lo
        hi = items[-1] if hi is None else hi
        edges = fine_edges(items, weights, np.asarray(coarse_edges, dtype=np.float64), lo, hi, resolution)
        cumulative = np.concatenate(([0.0], np.cumsum(weights)))
        below = np.searchsorted(items, edges, side="left")
        reference_cdf = cumulative[below] / cumulative[-1]
        first, last = np.searchsorted(edges, [lo, np.nextafter(hi, np.inf)]).tolist()
        start, scale, table = lookup_table(edges, CELLS_PER_BIN * resolution)
        return cls(edges, reference_cdf, _areas(items, weights, edges, below), first, last, start, scale, table)

    def wasserstein(self, values) -> float:
        """Wasserstein-1 distance of a window of ``values`` to the reference, from its counts and
        sums per fine bin, as a window computes it."""
        values = np.asarray(values, dtype=np.float64)
        bins = self.locate(values)
        counts = np.bincount(bins, minlength=self.size).astype(np.float64)
        sums = np.bincount(bins, weights=values, minlength=self.size)
        return float(wasserstein_kernel(self.edges, counts, sums, 0.0, self.reference_cdf, self.reference_area,
                                        self.first, self.last))

    @property
    def size(self) -> int:
        """Number of bins: one more than edges."""
        return self.edges.size + 1

    @property
    def padded(self) -> np.ndarray:
        return np.concatenate(([np.nan], self.edges, [np.nan]))

    def locate(self, values) -> np.ndarray:
        """Bin of each value (as ``numpy.searchsorted(edges, values, side="right")``)."""
        values = np.asarray(values, dtype=np.float64)
        out = np.empty(values.size, dtype=np.int64)
        _locate_many(self.padded[None, :], self.table[None, :], self.start, self.scale, values, out)
        return out

    def ks(self, counts) -> float:
        """KS statistic of a window with these counts per fine bin against the reference."""
        return float(ks_kernel(np.asarray(counts, dtype=np.float64), self.reference_cdf))
