"""ADWIN: adaptive windowing over an exponential histogram of the stream."""

from __future__ import annotations

import math
from typing import ClassVar

import numba as nb
import numpy as np

from .base import HEADER, HOT, Detector, check_int, decode_floats, encode_floats
from .kernels import load, raw, store

# hot slots (see base)
_WIDTH = HEADER
_TOTAL = HEADER + 1
_VARIANCE = HEADER + 2  # sum of squared deviations from the window mean
# updates since reset modulo clock; river counts them in an i32, the same below 2**31 updates
_PHASE = HEADER + 3
_LEVELS = HEADER + 4  # levels of the histogram in use, level 0 included
# values in the buffer, just before it: the histogram scan reads level 0 like a level block
_COUNT0 = HEADER + HOT - 1
# After the hot slots, the buffer: level 0's buckets (single values, whose variance is 0), oldest
# first, then the values not merged into the histogram yet; max_buckets + PENDING_CAP slots.
_BUFFER = HEADER + HOT
# Then what no checkpoint holds, laid out so that a clock tick reads one stretch of memory:
# - the screen's sums before each boundary (see _no_cut): the total of the values before it and
#   their number, the oldest boundary last, so that the boundaries in use end where the next
#   part starts;
# - two scratch areas of (totals, variances) where a batch of merges lays out each level's
#   sequence of buckets;
# - the rest of the screen's cache: how many of the oldest levels its sums still describe, a
#   width and the d of the cut test at that width, per level the index of its first boundary
#   and the sum of its buckets' absolute totals. A zeroed cache describes nothing.
# Then one block per level i >= 1 (from _upper on), for buckets of 2**i values:
# [count, totals, variances], each array max_buckets long, oldest first.

#: Values merged into the histogram in one batch, at the latest before a test.
PENDING_CAP = 32

# parameter vector
_P_DELTA, _P_CLOCK, _P_MAX_BUCKETS, _P_MIN_WINDOW, _P_GRACE, _P_MAX_LEVELS = range(6)

#: Level capacity of the histogram: a window of up to ``max_buckets * 2**48`` values.
MAX_LEVELS = 48

# The cut test divides four times and takes a square root; a division-free bound rejects the
# candidates that are clearly not cuts first. Its margins dwarf float rounding (~1e-16), so a
# candidate it rejects is never a cut in the exact test either.
_BOUND_SHRINK = 0.998
_BOUND_SLACK = 1e-13
_BOUND_MIN = 1e-200
_BOUND_MAX = 1e250

# Every kernel uses numba's "numpy" error model: float division by zero gives inf or nan as in
# river instead of raising, and a function that cannot raise is cheaper to call. Numba also
# reference-counts the state around each call that LLVM does not inline: the helpers are small
# enough to be inlined, and the long loops sit in the three functions that _step calls only
# once every few dozen values.


@nb.njit(cache=True, error_model="numpy")
def _reset(state, params):
    state[_WIDTH] = 0.0
    state[_TOTAL] = 0.0
    state[_VARIANCE] = 0.0
    state[_PHASE] = 0.0
    state[_LEVELS] = 1.0
    state[_COUNT0] = 0.0
    state[_cache_layout(params)] = 0.0


@nb.njit(cache=True, error_model="numpy")
def _room(mb):
    # Level 0 passes on at most (PENDING_CAP + 1) // 2 buckets, each level above at most half
    # of what it received plus one: a level's sequence, its own buckets before offset
    # max_buckets and the arrivals after it, fits in max_buckets + PENDING_CAP.
    return mb + PENDING_CAP


@nb.njit(cache=True, error_model="numpy")
def _layout(params):
    """max_buckets, the size of a level block, the offset of level 1's block, the offsets of the
    two scratch areas and the number of buckets each holds."""
    mb = int(params[_P_MAX_BUCKETS])
    block = 2 * mb + 1
    room = _room(mb)
    scratch = _BUFFER + mb + PENDING_CAP + 2 * _boundaries(params)
    upper = scratch + 4 * room + 3 + 2 * int(params[_P_MAX_LEVELS])
    return mb, block, upper, scratch, scratch + 2 * room, room


@nb.njit(cache=True, error_model="numpy")
def _boundaries(params):
    """The most boundaries between buckets a window can have: every bucket but the newest."""
    mb = int(params[_P_MAX_BUCKETS])
    return (int(params[_P_MAX_LEVELS]) - 1) * mb + mb + PENDING_CAP


@nb.njit(cache=True, error_model="numpy")
def _cache_layout(params):
    """The offset of the screen's cache, just after the scratch areas."""
    mb, block, upper, scratch, _, room = _layout(params)
    return scratch + 4 * room


@nb.njit(cache=True, error_model="numpy")
def _merge(t0, v0, t1, v1, n, inv):
    """Total and variance of two adjacent buckets of ``n`` values each, as river merges them."""
    # t / n is exactly t * (1 / n): n is a power of two
    mu0 = t0 * inv
    mu1 = t1 * inv
    return t0 + t1, v0 + v1 + n * 0.5 * (mu0 - mu1) * (mu0 - mu1)


@nb.njit(cache=True, error_model="numpy")
def _forget(state, n, inv, u, v):
    """Take a bucket of ``n`` values, total ``u`` and variance ``v``, out of the window."""
    mu = u * inv
    width = state[_WIDTH] - n
    total = state[_TOTAL] - u
    state[_WIDTH] = width
    state[_TOTAL] = total
    mu_window = total / width
    state[_VARIANCE] -= v + n * width * (mu - mu_window) * (mu - mu_window) / (n + width)


@nb.njit(cache=True, error_model="numpy")
def _merges(size, mb):
    # River merges a level's two oldest buckets whenever it holds max_buckets + 1. A batch of
    # arrivals therefore pairs up the level's sequence (its buckets, then the arrivals) from
    # the oldest until at most max_buckets are left.
    return max(0, (size - mb + 1) // 2)


@nb.njit(cache=True, error_model="numpy")
def _materialize(state, params):
    """Merge the buffered values into the histogram, one level after the other.

    A level's merges depend only on the sequence of buckets it receives, so the histogram ends
    exactly as river's updates, one value at a time, leave it. Each level's sequence (its own
    buckets, then those merged below) is laid out in one scratch area while it fills the other:
    a level's own buckets just before offset ``max_buckets``, the arrivals from it on.
    The loops stay in this one function: numba reference-counts the state around every call
    that LLVM does not inline, and these loops are too long to be inlined.
    """
    mb, block, upper, cur, nxt, room = _layout(params)
    cells = raw(state)
    size = int(cells[_COUNT0])
    merges = _merges(size, mb)
    if merges == 0:
        return
    # level 0, the buffer: its oldest values pair up into the arrivals of level 1
    for j in range(merges):
        t, v = _merge(cells[_BUFFER + 2 * j], 0.0, cells[_BUFFER + 2 * j + 1], 0.0, 1.0, 1.0)
        cells[cur + mb + j] = t
        cells[cur + room + mb + j] = v
    first = 2 * merges
    for r in range(size - first):
        cells[_BUFFER + r] = cells[_BUFFER + first + r]
    cells[_COUNT0] = size - first
    top = int(params[_P_MAX_LEVELS]) - 1
    level = 1
    n = 2.0
    inv = 0.5
    base = upper
    while True:
        if level == cells[_LEVELS]:
            cells[_LEVELS] = level + 1
            cells[base] = 0.0
        held = int(cells[base])
        seq = cur + mb - held
        for k in range(held):
            cells[seq + k] = cells[base + 1 + k]
            cells[seq + room + k] = cells[base + 1 + mb + k]
        size = held + merges
        if level == top:
            # The last level there is room for cannot merge: its oldest buckets leave the window.
            first = max(0, size - mb)
            for k in range(first):
                _forget(state, n, inv, cells[seq + k], cells[seq + room + k])
            merges = 0
        else:
            merges = _merges(size, mb)
            first = 2 * merges
            for j in range(merges):
                t, v = _merge(
                    cells[seq + 2 * j], cells[seq + room + 2 * j],
                    cells[seq + 2 * j + 1], cells[seq + room + 2 * j + 1], n, inv,
                )
                cells[nxt + mb + j] = t
                cells[nxt + room + mb + j] = v
        for r in range(size - first):
            cells[base + 1 + r] = cells[seq + first + r]
            cells[base + 1 + mb + r] = cells[seq + room + first + r]
        cells[base] = size - first
        if merges == 0:
            # the levels above this one are as the screen's cache last saw them
            fresh = _cache_layout(params)
            cells[fresh] = min(cells[fresh], cells[_LEVELS] - 1.0 - level)
            return
        cur, nxt = nxt, cur
        level += 1
        base += block
        n *= 2.0
        inv *= 0.5


@nb.njit(cache=True, error_model="numpy")
def _drop_oldest(state, params):
    """Remove the oldest bucket from the window, as river does on a cut."""
    state[_cache_layout(params)] = 0.0  # every boundary moves
    mb, block, upper, _, _, _ = _layout(params)
    last = int(state[_LEVELS]) - 1
    if last == 0:
        _forget(state, 1.0, 1.0, state[_BUFFER], 0.0)
        count = int(state[_COUNT0]) - 1
        for r in range(count):
            state[_BUFFER + r] = state[_BUFFER + 1 + r]
        state[_COUNT0] = count
        return
    base = upper + (last - 1) * block
    _forget(state, math.ldexp(1.0, last), math.ldexp(1.0, -last), state[base + 1], state[base + 1 + mb])
    count = int(state[base]) - 1
    for r in range(count):
        state[base + 1 + r] = state[base + 2 + r]
        state[base + 1 + mb + r] = state[base + 2 + mb + r]
    state[base] = count
    # With max_buckets=1 merges can empty a level below the top one; river 0.26.1 keeps such
    # a level on top and fails on its next cut, here the window goes on without it.
    while last > 0 and state[base] == 0.0:
        last -= 1
        base -= block
    state[_LEVELS] = last + 1


@nb.njit(cache=True, error_model="numpy")
def _is_cut(u0, u1, n0, n1, mwl, variance_w, dprime, bound):
    if bound > 0.0:
        # |u0/n0 - u1/n1| <= eps follows from this, since m >= 1/n0 + 1/n1 = W / (n0 n1)
        gap = abs(u0 * n1 - u1 * n0) + _BOUND_SLACK * (abs(u0) * n1 + abs(u1) * n0)
        if gap * gap <= bound * n0 * n1:
            return False
    delta_mean = u0 / n0 - u1 / n1
    m = 1.0 / (n0 - mwl + 1.0) + 1.0 / (n1 - mwl + 1.0)
    epsilon = math.sqrt(2.0 * m * variance_w * dprime) + 2.0 / 3.0 * dprime * m
    return abs(delta_mean) > epsilon


@nb.njit(cache=True, error_model="numpy")
def _cut_bound(width, variance_w, dprime):
    """Scale of the division-free pre-test of :func:`_is_cut`; 0.0 where it is not safe."""
    bound = _BOUND_SHRINK * 2.0 * width * variance_w * dprime
    if variance_w > 0.0 and dprime > 0.0 and _BOUND_MIN < bound < _BOUND_MAX:
        return bound
    return 0.0


@nb.njit(cache=True, error_model="numpy")
def _find_cut(state, params):
    """Whether some boundary between buckets splits the window into parts of different means.

    Boundaries are scanned from the oldest bucket on, as river does; the newest value is never
    one, and the scan stops once the recent part is shorter than ``min_window_length``.
    """
    mb, block, upper, _, _, _ = _layout(params)
    mwl = params[_P_MIN_WINDOW]
    width = state[_WIDTH]
    dprime = math.log(2.0 * math.log(width) / params[_P_DELTA])
    variance_w = state[_VARIANCE] / width
    bound = _cut_bound(width, variance_w, dprime)
    n0 = 0.0
    n1 = width
    u0 = 0.0
    u1 = state[_TOTAL]
    level = int(state[_LEVELS]) - 1
    n = math.ldexp(1.0, level)
    base = upper + (level - 1) * block
    while level >= 0:
        # level 0 is the buffer, whose count sits just before it like a block's
        if level == 0:
            base = _COUNT0
        count = int(state[base])
        for k in range(count):
            n0 += n
            n1 -= n
            t = state[base + 1 + k]
            u0 += t
            u1 -= t
            if (level == 0 and k == count - 1) or n1 < mwl:
                return False
            if n0 >= mwl and _is_cut(u0, u1, n0, n1, mwl, variance_w, dprime, bound):
                return True
        level -= 1
        base -= block
        n *= 0.5
    return False


#: Rounding allowance of the screen per term of a sum, relative to A + |U| (see _no_cut): 8 units of
#: rounding (2**-53 each).
_SCREEN_ULPS = 2.0**-50


@nb.njit(cache=True, error_model="numpy")
def _no_cut(state, params):
    """True when no boundary can pass the cut test: a screen of all of them at once.

    In exact arithmetic, with ``U`` and ``W`` the window's total and width and ``S0`` the total
    of the ``n0`` values before a boundary, ``u0/n0 - u1/n1 = W D / (n0 n1)`` where
    ``D = S0 - n0 U / W``. The test's ``eps`` is at least ``sqrt(2 m v d)`` with
    ``m >= 1/n0 + 1/n1 = W / (n0 n1)`` (as ``min_window_length >= 1``), so a cut needs
    ``D**2 > c n0 n1`` with ``c = 2 d v / W`` (``v`` = variance / W). The screen passes when
    ``(|D| + s)**2 <= c n0 n1`` at every boundary the test reads. ``s`` allows for rounding: the
    running sums of river's scan and of ``D`` add at most ``_boundaries`` terms, each rounded
    sum is within that many units of rounding (2**-53) of the sum of its terms' magnitudes, and
    those are at most ``|U|`` plus the buckets' absolute totals ``A``; all the rounding of river's
    ``u0``, ``u1``, ``u0/n0 - u1/n1`` and of ``D`` stays below ``(2 k + 8)`` units of
    ``A + |U|`` for ``k`` terms, and ``s`` is ``8 (_boundaries + 8)`` of them. ``c`` takes ``d``
    at a width no larger than the window's (``d`` grows with the width) and a factor
    ``_BOUND_SHRINK`` for the rounding of the remaining products. Where the screen passes, the
    exact scan finds no cut either; where it does not, the exact scan decides.

    The totals before each boundary are cached: a batch of merges changes the lowest levels
    only, so only their boundaries are summed again.
    """
    mb, block, upper, scratch, _, _ = _layout(params)
    fresh = _cache_layout(params)
    at_width = fresh + 1
    per_level = fresh + 3
    # boundary j at before - 2 j: the boundaries in use end next to the scratch areas
    before = scratch - 2
    cells = raw(state)
    levels = int(cells[_LEVELS])
    # the boundaries of the oldest levels, whose cached sums still hold, come first
    level = levels - 1 - int(cells[fresh])
    i = 0
    u0 = 0.0
    n0 = 0.0
    if level < levels - 1:
        i = int(cells[per_level + 2 * level])
        if i > 0:
            u0 = cells[before - 2 * i + 2]
            n0 = cells[before - 2 * i + 3]
    base = upper + (level - 1) * block
    n = math.ldexp(1.0, level)
    while level > 0:
        cells[per_level + 2 * level] = i
        a = 0.0
        for k in range(int(cells[base])):
            t = cells[base + 1 + k]
            u0 += t
            n0 += n
            a += abs(t)
            cells[before - 2 * i] = u0
            cells[before - 2 * i + 1] = n0
            i += 1
        cells[per_level + 2 * level + 1] = a
        level -= 1
        base -= block
        n *= 0.5
    # level 0: the newest value is not a boundary
    cells[per_level] = i
    count = int(cells[_COUNT0])
    for k in range(count - 1):
        t = cells[_BUFFER + k]
        u0 += t
        n0 += 1.0
        cells[before - 2 * i] = u0
        cells[before - 2 * i + 1] = n0
        i += 1
    a = 0.0
    for k in range(count):
        a += abs(cells[_BUFFER + k])
    cells[fresh] = levels - 1.0
    for level in range(1, levels):
        a += cells[per_level + 2 * level + 1]

    width = cells[_WIDTH]
    total = cells[_TOTAL]
    if not (0.0 < cells[at_width] <= width < 2.0 * cells[at_width]):
        cells[at_width] = width
        cells[at_width + 1] = math.log(2.0 * math.log(width) / params[_P_DELTA])
    dprime = cells[at_width + 1]
    inv = 1.0 / width
    scale = _BOUND_SHRINK * 2.0 * dprime * cells[_VARIANCE] * inv * inv
    if not (dprime > 0.0 and _BOUND_MIN < scale < _BOUND_MAX):
        return False
    mean = total * inv
    slack = (_boundaries(params) + 8.0) * _SCREEN_ULPS * (a + abs(total))
    # the boundaries the test reads: both parts at least min_window_length long
    mwl = params[_P_MIN_WINDOW]
    first = 0
    while first < i and cells[before - 2 * first + 1] < mwl:
        first += 1
    while i > first and width - cells[before - 2 * i + 3] < mwl:
        i -= 1
    failed = 0
    # no early exit: the loop is branch-free and vectorizes
    for j in range(first, i):
        n0 = cells[before - 2 * j + 1]
        gap = abs(cells[before - 2 * j] - n0 * mean) + slack
        failed += not gap * gap <= scale * n0 * (width - n0)
    return failed == 0


@nb.njit(cache=True, inline="always", error_model="numpy")
def _step(hot, state, params, x, warning):
    width, total, variance, phase, levels, pad0, pad1, count = hot
    width += 1.0
    if width > 1.0:
        dev = x - total / (width - 1.0)
        variance += (width - 1.0) * dev * dev / width
    total += x
    if count == params[_P_MAX_BUCKETS] + PENDING_CAP:
        store(state, (width, total, variance, phase, levels, pad0, pad1, count))
        _materialize(state, params)
        width, total, variance, phase, levels, pad0, pad1, count = load(state)
    raw(state)[_BUFFER + int(count)] = x
    count += 1.0
    phase += 1.0
    if phase == params[_P_CLOCK]:
        phase = 0.0
    hot = (width, total, variance, phase, levels, pad0, pad1, count)
    if phase != 0.0 or width <= params[_P_GRACE]:
        return hot, False, False
    # the histogram code works on the state vector
    store(state, hot)
    _materialize(state, params)
    drift = False
    if not _no_cut(state, params):
        while _find_cut(state, params):
            _drop_oldest(state, params)
            drift = True
    return load(state), drift, False


class ADWIN(Detector):
    """Adaptive Windowing: drift when two parts of a variable-length window differ in mean.

    ADWIN keeps a window of the recent values, compressed into an exponential histogram: up to
    ``max_buckets`` buckets per size 1, 2, 4, ... each holding the total and variance of the
    values it summarizes, so the window costs memory logarithmic in its length. Every
    ``clock`` updates it checks each boundary between buckets as a split of the window into an
    older part W0 and a recent part W1. When their means differ by more than a Hoeffding-style
    bound that depends on ``delta``, the sizes of both parts and the window variance, the oldest
    bucket is dropped, the check repeats, and drift is signalled. ADWIN has no warning zone.

    New values are merged into the histogram in batches of up to ``PENDING_CAP``, and always
    before a test, which leaves exactly the histogram river's one-at-a-time merges build: the
    detections, :attr:`width`, :attr:`estimation` and :attr:`variance` are river's to the bit.
    Checkpoints hold the values not merged yet and the histogram levels in use, so their size
    grows with the logarithm of the window length (:attr:`checkpoint_size`). The histogram has
    room for ``MAX_LEVELS`` levels, a window of ``max_buckets * (2**48 - 1)`` values (decades
    of a million values per second without drift); past that it forgets its oldest buckets,
    where river's window would keep growing.

    Parameters
    ----------
    delta
        Significance value of the cut test: smaller means fewer, surer detections.
    clock
        The cut test runs once every ``clock`` updates.
    max_buckets
        Buckets kept per bucket size before the two oldest are merged.
    min_window_length
        Values both sub-windows need before a split is tested.
    grace_period
        Values the window needs before any test runs.

    Examples
    --------
    >>> import numpy as np
    >>> from driftwire.detectors import ADWIN
    >>> rng = np.random.default_rng(7)
    >>> stream = np.concatenate([rng.normal(0.0, 1.0, 1000), rng.normal(1.0, 1.0, 1000)])
    >>> adwin = ADWIN()
    >>> adwin.update_many(stream)
    array([1055])
    >>> adwin.width, round(adwin.estimation, 2)
    (944, 1.0)

    References
    ----------
    A. Bifet and R. Gavalda (2007). Learning from time-changing data with adaptive windowing.
    Proceedings of the 2007 SIAM International Conference on Data Mining, 443-448.
    """

    name = "adwin"
    reset_kernel = staticmethod(_reset)
    statistic_name = "window_mean"
    #: Level capacity of the histogram (see the class docstring).
    max_levels: ClassVar[int] = MAX_LEVELS

    def __init__(
        self,
        delta: float = 0.002,
        clock: int = 32,
        max_buckets: int = 5,
        min_window_length: int = 5,
        grace_period: int = 10,
    ):
        if not 0 < delta < 1:
            raise ValueError(f"delta must be in (0, 1), got {delta!r}")
        check_int("clock", clock, 1)
        check_int("max_buckets", max_buckets, 1)
        check_int("min_window_length", min_window_length, 1)
        check_int("grace_period", grace_period, 0)
        if self.max_levels < 2:
            raise ValueError(f"max_levels must be at least 2, got {self.max_levels}")
        super().__init__(
            delta=delta,
            clock=clock,
            max_buckets=max_buckets,
            min_window_length=min_window_length,
            grace_period=grace_period,
        )

    def _param_vector(self) -> np.ndarray:
        p = self.params
        return np.array(
            [
                p["delta"],
                p["clock"],
                p["max_buckets"],
                p["min_window_length"],
                p["grace_period"],
                self.max_levels,
            ],
            dtype=np.float64,
        )

    def _block(self) -> int:
        return 2 * self.params["max_buckets"] + 1

    def _upper(self) -> int:
        mb = self.params["max_buckets"]
        boundaries = (self.max_levels - 1) * mb + mb + PENDING_CAP
        return _BUFFER + mb + PENDING_CAP + 2 * boundaries + 4 * _room(mb) + 3 + 2 * self.max_levels

    def _state_size(self) -> int:
        return self._upper() + (self.max_levels - 1) * self._block()

    def _encode_state(self, state: np.ndarray) -> list:
        # the buffered values and the levels in use: a size logarithmic in the window's
        count = int(state[_COUNT0])
        upper = self._upper()
        return encode_floats(
            np.concatenate(
                [
                    state[: _BUFFER + count],
                    state[upper : upper + (int(state[_LEVELS]) - 1) * self._block()],
                ]
            )
        )

    def _decode_state(self, items: list) -> np.ndarray:
        values = decode_floats(items)
        if values.shape[0] < _BUFFER:
            raise ValueError(f"{self.name}: state has only {values.shape[0]} values")
        mb = self.params["max_buckets"]
        count = self._checked_count(values[_COUNT0], 0, mb + PENDING_CAP, "buffered values")
        levels = self._checked_count(values[_LEVELS], 1, self.max_levels, "levels")
        self._checked_count(values[_PHASE], 0, self.params["clock"] - 1, "phase")
        block = self._block()
        expected = _BUFFER + count + (levels - 1) * block
        if values.shape[0] != expected:
            raise ValueError(f"{self.name}: state has {values.shape[0]} values, expected {expected}")
        state = np.zeros(self._state_size(), dtype=np.float64)
        state[: _BUFFER + count] = values[: _BUFFER + count]
        upper = self._upper()
        state[upper : upper + (levels - 1) * block] = values[_BUFFER + count :]
        for level in range(1, levels):
            self._checked_count(state[upper + (level - 1) * block], 0, mb, f"buckets at level {level}")
        return state

    def _checked_count(self, value: float, low: int, high: int, what: str) -> int:
        # the kernels index the state with these counts: out of range, they would write past it
        if not (low <= value <= high and value == int(value)):
            raise ValueError(f"{self.name}: state has {value!r} {what}, expected {low}..{high}")
        return int(value)

    @staticmethod
    def statistic_of(state, params) -> float:
        """The window mean (:attr:`estimation`)."""
        width = state[_WIDTH]
        return float(state[_TOTAL] / width) if width > 0 else 0.0

    @property
    def width(self) -> int:
        """Number of values in the window."""
        return int(self._state[_WIDTH])

    @property
    def total(self) -> float:
        """Sum of the values in the window."""
        return float(self._state[_TOTAL])

    @property
    def variance(self) -> float:
        """Sum of squared deviations from the window mean, as river reports it."""
        return float(self._state[_VARIANCE])

    @property
    def estimation(self) -> float:
        """Mean of the values in the window."""
        return self.statistic

    @property
    def n_levels(self) -> int:
        """Histogram levels in use: about log2(width / max_buckets) + 1."""
        return int(self._state[_LEVELS])

    @property
    def checkpoint_size(self) -> int:
        """Number of floats :meth:`get_state` writes for the current window."""
        return _BUFFER + int(self._state[_COUNT0]) + (self.n_levels - 1) * self._block()
