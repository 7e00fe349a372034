"""KLL quantile sketch: approximate quantiles and ranks of a stream in a few hundred numbers.

A KLL sketch keeps a hierarchy of levels. Level ``h`` holds items that each stand for ``2**h``
values of the stream, levels ``h >= 1`` sorted. New values go to level 0. When the sketch is
full, the lowest level holding at least its capacity is compacted: sorted if it is level 0, then
every other item is kept, starting at a random offset 0 or 1, and the kept items are merged into
the level above with twice the weight. The capacity of a level shrinks geometrically with its
depth below the top level, ``max(ceil(k * (2/3)**depth), 8)``, so most of the space goes to the
upper levels, whose items carry the most weight. Compaction is lazy, as in Apache DataSketches'
KLL: nothing is compacted until all the levels together hold their total capacity, and then
only one level is, which keeps as many items as the space allows.

Until the sketch has seen more than ``k`` values nothing has been compacted and the sketch is
exact: :meth:`QuantileSketch.sorted_view` returns exactly the values inserted, each with weight
1, and :meth:`QuantileSketch.quantile` equals ``numpy.quantile(values, q,
method="inverted_cdf")``. The minimum and maximum are always exact.

Rank error. For a query ``q`` the sketch returns a retained item ``v``; the error is the
distance from ``q`` to the interval ``[fraction of values < v, fraction of values <= v]`` (an
interval, so that ties count as exact). :func:`normalized_rank_error` is ``3 / k``, 1.5% for
``k = 200``: a bound with a margin of about 1.5 on what was measured for all the quantiles of
a grid at once, not only one. The measurement: shuffled samples of 10**6 values (ranks do not
depend on the distribution), one sketch per seed (100 to 400 seeds per ``k``, 40 for 3200),
the error at each of ``q = 0.01, 0.02, ..., 0.99``; per ``k``, the 99th percentile over the
sketches of the error at one ``q`` (the largest over the q's), of the largest error over all
99 q's of a sketch, and the largest error seen at all:

=====  ===========  ============  ==========  ============
k      one q, 99%   all q, 99%    worst seen  ``3 / k``
=====  ===========  ============  ==========  ============
8      9.0%         9.7%          10.1%       37.5%
16     7.0%         8.5%          9.0%        18.8%
32     4.4%         4.9%          5.1%        9.4%
50     3.1%         3.6%          4.5%        6.0%
100    1.6%         1.8%          2.4%        3.0%
200    0.91%        0.98%         1.06%       1.5%
400    0.41%        0.50%         0.51%       0.75%
800    0.23%        0.24%         0.28%       0.38%
1600   0.11%        0.12%         0.15%       0.19%
3200   0.060%       0.064%        0.066%      0.094%
=====  ===========  ============  ==========  ============

With ``k = 200`` the error does not grow with the length of the stream (all q, 99%: 0.70% at
10**3 values, 0.91% at 10**4, 0.94% at 10**5, 0.98% at 10**6, 0.81% at 10**7), and sorted
input is easier than shuffled (0.54% ascending, 0.40% descending). The estimated CDF,
:meth:`QuantileSketch.cdf`, measured at the true quantiles, has the same errors. For
comparison, Apache DataSketches documents 1.33% for one rank and 1.65% for a PMF at 99%
confidence for its KLL sketch with ``k = 200``.

NaN and inf are never inserted: the kernels skip them and :func:`update_bank` returns how many
values it inserted, so that a caller can count the others.

The state of one sketch is one fixed-width float64 row, so that a bank of sketches (one per
series and window) is a 2-D array ``rows[slot, :]`` and a checkpoint is a copy of the row.
The row holds a header, the level boundaries and the items::

    [0]  n               values inserted (exact up to 2**53)
    [1]  min, [2] max    exact extremes (+inf, -inf while empty)
    [3]  levels          number of levels in use
    [4]  capacity        total capacity of those levels: the sketch is full when it retains that many
    [5]  seed            seed of the coin flips (an integer below 2**53)
    [6]  flips           coin flips so far (the coin of flip i is a hash of seed and i)
    [7 : 7 + MAX_LEVELS + 1]
         start column of each level, then the row's width: level h is row[start[h]:start[h + 1]]
    [7 + MAX_LEVELS + 1 :]
         items, packed against the end of the row; level 0 grows down into the free space

The width, :func:`row_width`, is fixed by ``k``: the total capacity of ``MAX_LEVELS`` levels. A
sketch needs its ``MAX_LEVELS``-th level only after ``k * 2**46`` values (at least ``2**49``),
and an update raises only past ``k * 2**47``. The coin of every compaction comes from the seed
and the flip count in the row, so the same values in the same order give the same row, and a
restored checkpoint continues exactly as the original would have.

>>> import numpy as np
>>> from driftwire.detectors.kll import QuantileSketch
>>> sketch = QuantileSketch(k=200)
>>> sketch.update_many(np.array([3.0, 1.0, 4.0, 1.0, 5.0, 9.0, 2.0, 6.0]))
8
>>> sketch.quantile([0.0, 0.5, 1.0])  # exact: nothing compacted yet
array([1., 3., 9.])
>>> sketch.cdf(4.0)
0.625

Past ``k`` values the sketch compacts, and its answers are approximate:

>>> data = np.random.default_rng(7).normal(size=100_000)
>>> big = QuantileSketch(k=200)
>>> big.update_many(data)
100000
>>> big.num_retained
588
>>> big.quantile([0.05, 0.95]).round(3), np.quantile(data, [0.05, 0.95]).round(3)
(array([-1.675,  1.637]), array([-1.653,  1.638]))
>>> float(big.cdf(1.0)), float(np.mean(data <= 1.0))
(0.84374, 0.84165)

References
----------
Z. Karnin, K. Lang, E. Liberty (2016). Optimal Quantile Approximation in Streams. IEEE 57th
Annual Symposium on Foundations of Computer Science (FOCS), 71-78.

N. Ivkin, E. Liberty, K. Lang, Z. Karnin, V. Braverman (2022). Streaming Quantiles Algorithms
with Small Space and Update Time. Sensors 22(24), 9612; arXiv:1907.00236 (lazy compaction).
"""

from __future__ import annotations

import math

import numba as nb
import numpy as np

#: Smallest capacity of a level (the paper's ``m``) and smallest ``k``.
MIN_K = 8
#: Largest ``k`` (level capacities are computed in exact integer arithmetic up to it).
MAX_K = 65535
#: Levels a row has room for: enough for ``k * 2**47`` values, at least ``2**50``.
MAX_LEVELS = 48
DEFAULT_K = 200
DEFAULT_SEED = 0
#: Seeds are stored exactly in a float64 slot.
MAX_SEED = 2**53 - 1

_M = MIN_K
_INSERTION_SORT_MAX = 32

_N, _MIN, _MAX, _NUM_LEVELS, _CAPACITY, _SEED, _FLIPS = range(7)
_LEVELS = 7
_ITEMS = _LEVELS + MAX_LEVELS + 1

# splitmix64: the Weyl increment and the two multipliers of its finalizer
_GAMMA = np.uint64(0x9E3779B97F4A7C15)
_MIX1 = np.uint64(0xBF58476D1CE4E5B9)
_MIX2 = np.uint64(0x94D049BB133111EB)

# normalized_rank_error(k) = _ERROR_BOUND / k (see the module docstring)
_ERROR_BOUND = 3.0


# -- capacities --------------------------------------------------------------------------------


@nb.njit(cache=True)
def _depth_capacity(k, depth):
    """``max(ceil(k * (2/3)**depth), m)`` in integers: no rounding can put a level off by one."""
    num = k
    den = 1
    for _ in range(depth):
        num *= 2
        den *= 3
        # below m it stays below: stop before 3**depth overflows
        if num <= _M * den:
            return _M
    return max((num + den - 1) // den, _M)


@nb.njit(cache=True)
def _total_capacity(k, num_levels):
    total = 0
    for depth in range(num_levels):
        total += _depth_capacity(k, depth)
    return total


def level_capacities(k: int, num_levels: int) -> list[int]:
    """Capacity of each level, bottom (level 0) first, of a sketch with ``num_levels`` levels."""
    _check_k(k)
    return [int(_depth_capacity(k, num_levels - 1 - h)) for h in range(num_levels)]


def row_width(k: int) -> int:
    """Width of the float64 row of one sketch: header, level starts and the most items a sketch
    with this ``k`` can retain (the total capacity of ``MAX_LEVELS`` levels, about ``3k + 8 *
    MAX_LEVELS``)."""
    _check_k(k)
    return _ITEMS + int(_total_capacity(k, MAX_LEVELS))


# -- coin flips --------------------------------------------------------------------------------


@nb.njit(cache=True)
def _mix64(z):
    z = (z ^ (z >> np.uint64(30))) * _MIX1
    z = (z ^ (z >> np.uint64(27))) * _MIX2
    return z ^ (z >> np.uint64(31))


@nb.njit(cache=True)
def _coin(row):
    # flip i of a seed is splitmix64's output i: a counter in the row is the whole generator state
    i = np.uint64(row[_FLIPS])
    row[_FLIPS] += 1.0
    z = _mix64(np.uint64(row[_SEED]) + (i + np.uint64(1)) * _GAMMA)
    return np.int64(z >> np.uint64(63))


@nb.njit(cache=True)
def _derive_seed(seed, index):
    return np.int64(_mix64(np.uint64(seed) ^ (np.uint64(index) * _GAMMA)) >> np.uint64(11))


# -- compaction --------------------------------------------------------------------------------


@nb.njit(cache=True)
def _merge_sorted(a, a_beg, a_len, b, b_beg, b_len, out, out_beg):
    """Merge two sorted runs into ``out[out_beg:]``. Safe in place when ``out`` is the array of
    both runs and the output starts right after run a, which ends at most where run b begins:
    the output never overtakes an unread item."""
    i = 0
    j = 0
    o = out_beg
    while i < a_len and j < b_len:
        x = a[a_beg + i]
        y = b[b_beg + j]
        if x <= y:
            out[o] = x
            i += 1
        else:
            out[o] = y
            j += 1
        o += 1
    while i < a_len:
        out[o] = a[a_beg + i]
        i += 1
        o += 1
    while j < b_len:
        out[o] = b[b_beg + j]
        j += 1
        o += 1


@nb.njit(cache=True)
def _sort(a, beg, end):
    # A full sketch compacts level 0 every few values, with a dozen items in it: numba's sort
    # costs more to set up than an insertion sort takes.
    if end - beg > _INSERTION_SORT_MAX:
        a[beg:end].sort()
        return
    for i in range(beg + 1, end):
        x = a[i]
        j = i - 1
        while j >= beg and a[j] > x:
            a[j + 1] = a[j]
            j -= 1
        a[j + 1] = x


@nb.njit(cache=True)
def _compact(row, h):
    """Halve level ``h`` into level ``h + 1`` (which must exist) and close the gap below."""
    beg = int(row[_LEVELS + h])
    end = int(row[_LEVELS + h + 1])
    top = int(row[_LEVELS + h + 2])
    # an odd item stays behind; at level 0 it is the newest value, still unsorted
    adj = beg + ((end - beg) & 1)
    half = (end - adj) >> 1
    if h == 0:
        _sort(row, adj, end)
    src = adj + _coin(row)
    for j in range(half):
        row[adj + j] = row[src + 2 * j]
    _merge_sorted(row, adj, half, row, end, top - end, row, adj + half)
    # the kept half now starts level h + 1 at end - half; the levels below move up into the gap
    low = int(row[_LEVELS])
    for j in range(adj - 1, low - 1, -1):
        row[j + half] = row[j]
    for i in range(h + 1):
        row[_LEVELS + i] += half
    row[_LEVELS + h + 1] = end - half


@nb.njit(cache=True)
def _compress(row, k):
    """Compact the lowest level that holds at least its capacity; if that is the top level, add
    an empty level above it first (which raises every level's capacity)."""
    num_levels = int(row[_NUM_LEVELS])
    h = 0
    while row[_LEVELS + h + 1] - row[_LEVELS + h] < _depth_capacity(k, num_levels - 1 - h):
        h += 1
        if h == num_levels:
            raise RuntimeError("KLL: no level is full")
    if h == num_levels - 1:
        if num_levels == MAX_LEVELS:
            raise RuntimeError("KLL: the sketch has used all its levels")
        row[_LEVELS + num_levels + 1] = row.shape[0]
        num_levels += 1
        row[_NUM_LEVELS] = num_levels
        row[_CAPACITY] = _total_capacity(k, num_levels)
    _compact(row, h)


# -- kernels -----------------------------------------------------------------------------------


@nb.njit(cache=True)
def reset(row, k, seed):
    """Make ``row`` an empty sketch whose coin flips come from ``seed`` (an integer below 2**53)."""
    row[:] = 0.0
    row[_MIN] = np.inf
    row[_MAX] = -np.inf
    row[_NUM_LEVELS] = 1.0
    row[_CAPACITY] = _total_capacity(k, 1)
    row[_SEED] = seed
    row[_LEVELS] = row.shape[0]
    row[_LEVELS + 1] = row.shape[0]


@nb.njit(cache=True, inline="always")
def _insert(row, k, x):
    row[_N] += 1.0
    if x < row[_MIN]:
        row[_MIN] = x
    if x > row[_MAX]:
        row[_MAX] = x
    low = int(row[_LEVELS])
    if row.shape[0] - low >= row[_CAPACITY]:
        _compress(row, k)
        low = int(row[_LEVELS])
    low -= 1
    row[low] = x
    row[_LEVELS] = low


@nb.njit(cache=True)
def update(row, k, x):
    """Insert one value; NaN and inf are not inserted (returns whether ``x`` was)."""
    if not math.isfinite(x):
        return False
    _insert(row, k, x)
    return True


@nb.njit(cache=True)
def update_many(row, k, values):
    """Insert the finite ``values`` into one sketch, in order; returns how many were inserted."""
    inserted = 0
    for i in range(values.shape[0]):
        x = values[i]
        if math.isfinite(x):
            _insert(row, k, x)
            inserted += 1
    return inserted


@nb.njit(cache=True)
def update_bank(rows, k, slots, values):
    """Insert ``values[i]`` into the sketch ``rows[slots[i]]``, in order, skipping NaN and inf;
    returns how many values were inserted. Slots are not checked."""
    inserted = 0
    for i in range(values.shape[0]):
        x = values[i]
        if math.isfinite(x):
            _insert(rows[slots[i]], k, x)
            inserted += 1
    return inserted


@nb.njit(cache=True)
def merge(dst, src, k):
    """Make ``dst`` the sketch of both streams; ``src`` is left as it was (it may be ``dst``).

    Level by level the items of both are put together (levels above 0 by a sorted merge), then
    levels are compacted as in an update until the items fit the capacity of the levels.
    """
    if src[_N] == 0.0:
        return
    dst_levels = int(dst[_NUM_LEVELS])
    src_levels = int(src[_NUM_LEVELS])
    num_levels = max(dst_levels, src_levels)
    dst_width = dst.shape[0]
    src_width = src.shape[0]
    width = _ITEMS + (dst_width - int(dst[_LEVELS])) + (src_width - int(src[_LEVELS]))
    work = np.zeros(width)
    work[:_LEVELS] = dst[:_LEVELS]
    work[_N] = dst[_N] + src[_N]
    work[_MIN] = min(dst[_MIN], src[_MIN])
    work[_MAX] = max(dst[_MAX], src[_MAX])
    work[_NUM_LEVELS] = num_levels
    work[_CAPACITY] = _total_capacity(k, num_levels)
    # both sketches' levels, packed against the end of the work row, top level first
    end = width
    work[_LEVELS + num_levels] = end
    for h in range(num_levels - 1, -1, -1):
        d_beg = d_len = s_beg = s_len = 0
        if h < dst_levels:
            d_beg = int(dst[_LEVELS + h])
            d_len = int(dst[_LEVELS + h + 1]) - d_beg
        if h < src_levels:
            s_beg = int(src[_LEVELS + h])
            s_len = int(src[_LEVELS + h + 1]) - s_beg
        beg = end - d_len - s_len
        if h == 0:
            work[beg : beg + d_len] = dst[d_beg : d_beg + d_len]
            work[beg + d_len : end] = src[s_beg : s_beg + s_len]
        else:
            _merge_sorted(dst, d_beg, d_len, src, s_beg, s_len, work, beg)
        work[_LEVELS + h] = beg
        end = beg
    while width - work[_LEVELS] > work[_CAPACITY]:
        _compress(work, k)
    # back into dst, packed against its end
    num_levels = int(work[_NUM_LEVELS])
    shift = dst_width - width
    low = int(work[_LEVELS])
    dst[:_LEVELS] = work[:_LEVELS]
    for h in range(num_levels + 1):
        dst[_LEVELS + h] = work[_LEVELS + h] + shift
    dst[low + shift : dst_width] = work[low:width]


@nb.njit(cache=True)
def sorted_view(row):
    """The retained items in ascending order and their weights (``2**level``; they sum to n)."""
    num_levels = int(row[_NUM_LEVELS])
    low = int(row[_LEVELS])
    items = row[low:].copy()
    weights = np.empty(items.shape[0])
    for h in range(num_levels):
        weights[int(row[_LEVELS + h]) - low : int(row[_LEVELS + h + 1]) - low] = 2.0**h
    order = np.argsort(items, kind="mergesort")
    return items[order], weights[order]


@nb.njit(cache=True)
def _quantile_of(items, cumulative, n, q, lowest, highest):
    if not (0.0 <= q <= 1.0) or n == 0.0:
        return np.nan
    if q == 0.0:
        return lowest
    if q == 1.0:
        return highest
    # the smallest item whose cumulative weight reaches q * n
    i = np.searchsorted(cumulative, q * n, side="left")
    return items[min(i, items.shape[0] - 1)]


@nb.njit(cache=True)
def quantile(row, q):
    """The smallest retained item whose cumulative weight is at least ``q * n``; the exact min
    for ``q = 0`` and max for ``q = 1``; NaN for an empty sketch or ``q`` outside [0, 1]."""
    items, weights = sorted_view(row)
    return _quantile_of(items, np.cumsum(weights), row[_N], q, row[_MIN], row[_MAX])


@nb.njit(cache=True)
def quantiles(row, qs):
    """:func:`quantile` of each of ``qs``, from one sorted view."""
    items, weights = sorted_view(row)
    cumulative = np.cumsum(weights)
    out = np.empty(qs.shape[0])
    for i in range(qs.shape[0]):
        out[i] = _quantile_of(items, cumulative, row[_N], qs[i], row[_MIN], row[_MAX])
    return out


@nb.njit(cache=True)
def rank(row, x):
    """Normalized rank of ``x``: the fraction of the weight on items ``<= x`` (NaN if empty)."""
    n = row[_N]
    if n == 0.0 or math.isnan(x):
        return np.nan
    below = 0.0
    for h in range(int(row[_NUM_LEVELS])):
        count = 0
        for j in range(int(row[_LEVELS + h]), int(row[_LEVELS + h + 1])):
            count += row[j] <= x
        below += count * 2.0**h
    return below / n


@nb.njit(cache=True)
def ranks(row, xs):
    """:func:`rank` of each of ``xs``, from one sorted view."""
    items, weights = sorted_view(row)
    cumulative = np.cumsum(weights)
    n = row[_N]
    out = np.empty(xs.shape[0])
    for i in range(xs.shape[0]):
        x = xs[i]
        if n == 0.0 or math.isnan(x):
            out[i] = np.nan
            continue
        j = np.searchsorted(items, x, side="right")
        out[i] = cumulative[j - 1] / n if j > 0 else 0.0
    return out


# -- error bound -------------------------------------------------------------------------------


def normalized_rank_error(k: int) -> float:
    """Bound on the normalized rank error of a sketch with this ``k``, ``3 / k``: measured, with a
    margin, for all the quantiles of a query grid at once (see the module docstring)."""
    return _ERROR_BOUND / _check_k(k)


# -- Python interface --------------------------------------------------------------------------


def _check_k(k) -> int:
    if isinstance(k, bool) or not isinstance(k, (int, np.integer)) or not MIN_K <= k <= MAX_K:
        raise ValueError(f"k must be an integer in [{MIN_K}, {MAX_K}], got {k!r}")
    return int(k)


def _check_seed(seed) -> int:
    if isinstance(seed, bool) or not isinstance(seed, (int, np.integer)) or not 0 <= seed <= MAX_SEED:
        raise ValueError(f"seed must be an integer in [0, 2**53), got {seed!r}")
    return int(seed)


def _as_values(values) -> np.ndarray:
    return np.ascontiguousarray(values, dtype=np.float64).reshape(-1)


def _quantiles(row: np.ndarray, q):
    qs = np.asarray(q, dtype=np.float64)
    if np.any(~((qs >= 0.0) & (qs <= 1.0))):
        raise ValueError(f"quantiles must be in [0, 1], got {q!r}")
    if qs.ndim == 0:
        return float(quantile(row, float(qs)))
    return quantiles(row, np.ascontiguousarray(qs.reshape(-1))).reshape(qs.shape)


def _ranks(row: np.ndarray, x):
    xs = np.asarray(x, dtype=np.float64)
    if xs.ndim == 0:
        return float(rank(row, float(xs)))
    return ranks(row, np.ascontiguousarray(xs.reshape(-1))).reshape(xs.shape)


def _state(row: np.ndarray, k: int) -> dict:
    num_levels = int(row[_NUM_LEVELS])
    starts = row[_LEVELS : _LEVELS + num_levels + 1].astype(np.int64)
    empty = row[_N] == 0.0
    return {
        "k": k,
        "n": int(row[_N]),
        "min": None if empty else float(row[_MIN]),
        "max": None if empty else float(row[_MAX]),
        "levels": (starts - starts[0]).tolist(),
        "items": row[starts[0] :].tolist(),
        "seed": int(row[_SEED]),
        "flips": int(row[_FLIPS]),
    }


def _load_state(row: np.ndarray, k: int, state: dict) -> None:
    """Write ``state`` (as from :func:`_state`) into ``row`` after checking that it is a sketch."""
    if state["k"] != k:
        raise ValueError(f"the state is of a sketch with k={state['k']}, not {k}")
    levels = np.asarray(state["levels"], dtype=np.int64)
    items = np.asarray(state["items"], dtype=np.float64).reshape(-1)
    n = int(state["n"])
    num_levels = levels.shape[0] - 1
    sizes = np.diff(levels)
    if (
        not 1 <= num_levels <= MAX_LEVELS
        or levels[0] != 0
        or levels[-1] != items.shape[0]
        or np.any(sizes < 0)
        or items.shape[0] > _total_capacity(k, num_levels)
        or not np.all(np.isfinite(items))
        or any(np.any(np.diff(items[levels[h] : levels[h + 1]]) < 0) for h in range(1, num_levels))
        or sum(int(size) << h for h, size in enumerate(sizes.tolist())) != n
    ):
        raise ValueError("not the state of a KLL sketch: levels, items and n do not agree")
    if (n == 0) != (state["min"] is None) or (n == 0) != (state["max"] is None):
        raise ValueError("not the state of a KLL sketch: min and max must be given exactly when n > 0")
    reset(row, k, _check_seed(state["seed"]))
    width = row.shape[0]
    low = width - items.shape[0]
    row[_N] = n
    if n:
        row[_MIN] = state["min"]
        row[_MAX] = state["max"]
    row[_NUM_LEVELS] = num_levels
    row[_CAPACITY] = _total_capacity(k, num_levels)
    row[_FLIPS] = int(state["flips"])
    row[_LEVELS : _LEVELS + num_levels + 1] = levels + low
    row[low:] = items


class QuantileSketch:
    """KLL sketch of one stream: approximate quantiles and CDF in ``row_width(k)`` float64s.

    Parameters
    ----------
    k
        Accuracy parameter: the sketch retains about ``3 * k`` items; the rank error falls
        about as ``1 / k`` (:func:`normalized_rank_error`). Between 8 and 65535.
    seed
        Seed of the compactions' coin flips (an integer below 2**53).
    """

    def __init__(self, k: int = DEFAULT_K, seed: int = DEFAULT_SEED):
        self._k = _check_k(k)
        self._row = np.empty(row_width(self._k), dtype=np.float64)
        reset(self._row, self._k, _check_seed(seed))

    def __len__(self) -> int:
        return self.n

    def __repr__(self) -> str:
        return f"QuantileSketch(k={self._k}, n={self.n}, retained={self.num_retained})"

    def update(self, x: float) -> bool:
        """Insert one value; NaN and inf are not inserted (returns whether ``x`` was)."""
        return bool(update(self._row, self._k, float(x)))

    def update_many(self, values) -> int:
        """Insert values in order, skipping NaN and inf; returns how many were inserted."""
        return int(update_many(self._row, self._k, _as_values(values)))

    def merge(self, other: QuantileSketch) -> None:
        """Make this the sketch of both streams; ``other`` is unchanged."""
        if not isinstance(other, QuantileSketch):
            raise TypeError(f"can only merge a QuantileSketch, got {type(other).__name__}")
        if other._k != self._k:
            raise ValueError(f"cannot merge sketches with different k: {self._k} and {other._k}")
        merge(self._row, other._row, self._k)

    def quantile(self, q):
        """The value at normalized rank ``q`` (float or array-like in [0, 1]): the smallest retained
        item whose cumulative weight is at least ``q * n``, exact min and max at 0 and 1; NaN while
        empty."""
        return _quantiles(self._row, q)

    def cdf(self, x):
        """Estimated fraction of the values ``<= x`` (float or array-like); NaN while empty."""
        return _ranks(self._row, x)

    def sorted_view(self) -> tuple[np.ndarray, np.ndarray]:
        """The retained items ascending and their weights, which sum to ``n``."""
        return sorted_view(self._row)

    @property
    def k(self) -> int:
        return self._k

    @property
    def n(self) -> int:
        """Values inserted."""
        return int(self._row[_N])

    @property
    def min(self) -> float:
        """Smallest value inserted (NaN while empty)."""
        return float(self._row[_MIN]) if self._row[_N] else math.nan

    @property
    def max(self) -> float:
        """Largest value inserted (NaN while empty)."""
        return float(self._row[_MAX]) if self._row[_N] else math.nan

    @property
    def num_retained(self) -> int:
        return int(self._row.shape[0] - self._row[_LEVELS])

    @property
    def normalized_rank_error(self) -> float:
        return normalized_rank_error(self._k)

    def to_dict(self) -> dict:
        """JSON-able state: k, n, min, max, level starts, the retained items and the coin state."""
        return _state(self._row, self._k)

    @classmethod
    def from_dict(cls, state: dict) -> QuantileSketch:
        sketch = cls(k=state["k"])
        _load_state(sketch._row, sketch._k, state)
        return sketch


class SketchBank:
    """Many KLL sketches with one ``k``, one row each of a 2-D array that grows as slots are added.

    Parameters
    ----------
    k
        Accuracy parameter of every sketch (see :class:`QuantileSketch`).
    capacity
        Rows allocated at first.
    seed
        Each slot's coin flips are seeded from this seed and the slot number.
    """

    def __init__(self, k: int = DEFAULT_K, capacity: int = 16, seed: int = DEFAULT_SEED):
        self._k = _check_k(k)
        self._seed = _check_seed(seed)
        self._rows = np.zeros((max(int(capacity), 1), row_width(self._k)), dtype=np.float64)
        self._size = 0

    def __len__(self) -> int:
        return self._size

    @property
    def k(self) -> int:
        return self._k

    @property
    def rows(self) -> np.ndarray:
        """The rows of the slots in use (a view)."""
        return self._rows[: self._size]

    def add(self) -> int:
        """A new, empty sketch; returns its slot."""
        if self._size == self._rows.shape[0]:
            self._rows = np.concatenate([self._rows, np.zeros_like(self._rows)])
        slot = self._size
        reset(self._rows[slot], self._k, int(_derive_seed(self._seed, slot)))
        self._size += 1
        return slot

    def reset(self, slot: int) -> None:
        """Empty a sketch; its coin flips start again from its seed."""
        row = self._row(slot)
        reset(row, self._k, int(row[_SEED]))

    def update(self, slots, values) -> int:
        """Insert ``values[i]`` into sketch ``slots[i]``, in order, skipping NaN and inf; returns
        how many values were inserted."""
        values = _as_values(values)
        slots = np.ascontiguousarray(slots, dtype=np.int64).reshape(-1)
        if slots.shape != values.shape:
            raise ValueError(f"{slots.shape[0]} slots for {values.shape[0]} values")
        if slots.size and (slots.min() < 0 or slots.max() >= self._size):
            raise IndexError(f"slots must be in [0, {self._size})")
        return int(update_bank(self._rows, self._k, slots, values))

    def merge(self, dst_slot: int, src_slot: int) -> None:
        """Make sketch ``dst_slot`` the sketch of both streams."""
        merge(self._row(dst_slot), self._row(src_slot), self._k)

    def merge_into(self, row: np.ndarray, slot: int) -> None:
        """Merge sketch ``slot`` into ``row``, a float64 row of width ``row_width(k)`` made a sketch
        by :func:`reset`: several slots can be merged into one scratch row this way."""
        if row.dtype != np.float64 or row.shape != (self._rows.shape[1],):
            raise ValueError(f"row must be a float64 array of shape ({self._rows.shape[1]},)")
        merge(row, self._row(slot), self._k)

    def merged(self, slots) -> QuantileSketch:
        """A new sketch of the streams of all ``slots``."""
        sketch = QuantileSketch(self._k, self._seed)
        for slot in np.asarray(slots, dtype=np.int64).reshape(-1).tolist():
            merge(sketch._row, self._row(slot), self._k)
        return sketch

    def sorted_view(self, slot: int) -> tuple[np.ndarray, np.ndarray]:
        return sorted_view(self._row(slot))

    def quantile(self, slot: int, q):
        return _quantiles(self._row(slot), q)

    def cdf(self, slot: int, x):
        return _ranks(self._row(slot), x)

    def n(self, slot: int) -> int:
        return int(self._row(slot)[_N])

    def get_state(self, slot: int) -> dict:
        """The state of one sketch, in the format of :meth:`QuantileSketch.to_dict`."""
        return _state(self._row(slot), self._k)

    def set_state(self, slot: int, state: dict) -> None:
        _load_state(self._row(slot), self._k, state)

    def _row(self, slot: int) -> np.ndarray:
        if not 0 <= slot < self._size:
            raise IndexError(f"slot {slot} not in [0, {self._size})")
        return self._rows[slot]


def warm_up() -> None:
    """Compile or load the kernels before the first batch waits on them."""
    bank = SketchBank(k=MIN_K, capacity=2)
    a, b = bank.add(), bank.add()
    bank.update(np.array([a, b] * 20), np.arange(40.0))
    bank.merge(a, b)
    bank.quantile(a, 0.5)
    bank.quantile(a, [0.5])
    bank.cdf(a, 1.0)
    bank.cdf(a, [1.0])
    sketch = QuantileSketch(k=MIN_K)
    sketch.update(1.0)
    sketch.update_many(np.arange(3.0))
