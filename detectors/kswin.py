"""KSWIN: Kolmogorov-Smirnov windowing, a distribution-free test on a sliding window."""

from __future__ import annotations

import functools
import math
import warnings

import numba as nb
import numpy as np

from .base import HEADER, HOT, Detector, is_int

#: scipy's ks_2samp computes exact p-values (and reports the statistic rounded to the lattice
#: h / lcm(n1, n2)) when both samples have at most this many values; above it, asymptotic ones.
_SCIPY_MAX_EXACT_N = 10000

#: The statistic must also exceed this, as in river, before a small p-value counts as drift.
_MIN_STATISTIC = 0.1

#: Seed used when ``seed`` is None, so that every detector is reproducible from its state.
DEFAULT_SEED = 0

# drand48's linear congruential generator: 48-bit state, exact in a float64 slot.
_LCG_MULT = 0x5DEECE66D
_LCG_INC = 0xB
_MASK24 = (1 << 24) - 1
_MASK48 = (1 << 48) - 1
_SEED_LOW = 0x330E

# State layout, after the hot slots, which this detector leaves unused: its cost is the test.
_COUNT = HEADER + HOT
_HEAD = _COUNT + 1
_RNG = _COUNT + 2
_P_VALUE = _COUNT + 3
_STATISTIC = _COUNT + 4
# then: the ring buffer (window_size), the older part sorted (window_size - stat_size), the
# recent part sorted (stat_size), the last drawn sample (stat_size)
_RING = _COUNT + 5

# parameter vector; the p-value table (one entry per statistic k / stat_size) ends it
_P_ALPHA, _P_WINDOW_SIZE, _P_STAT_SIZE, _P_SEED_STATE, _P_EXACT, _P_TABLE = range(6)


@nb.njit(cache=True)
def _lcg_next(x):
    # a * x mod 2**48 split in 24-bit halves, so no int64 product overflows
    lo = x & _MASK24
    hi = x >> 24
    y = _LCG_MULT * lo + (((_LCG_MULT * hi) & _MASK24) << 24) + _LCG_INC
    return y & _MASK48


@nb.njit(cache=True)
def _ks_sorted(a, b, exact):
    """Two-sample KS statistic over sorted samples, as scipy's ``ks_2samp`` reports it: ``(h, d)``.

    ``h`` is the largest gap between the two ECDFs in units of ``1 / lcm(n1, n2)`` (an exact
    integer). ``d`` is the statistic: ``h / lcm`` when ``exact`` (scipy's exact method rounds
    it so), otherwise the largest of scipy's float gaps ``count_a / n1 - count_b / n2``.
    """
    n1 = a.shape[0]
    n2 = b.shape[0]
    i = 0
    j = 0
    gap_max = 0
    gap_min = 0
    d_max = 0.0
    d_min = 0.0
    while i < n1 or j < n2:
        if j == n2 or (i < n1 and a[i] <= b[j]):
            v = a[i]
        else:
            v = b[j]
        # ECDFs are right-continuous: step past every copy of v in both samples
        while i < n1 and a[i] == v:
            i += 1
        while j < n2 and b[j] == v:
            j += 1
        gap = i * n2 - j * n1
        gap_max = max(gap_max, gap)
        gap_min = min(gap_min, gap)
        if not exact:
            diff = i / n1 - j / n2
            d_max = max(d_max, diff)
            d_min = min(d_min, diff)
    g = math.gcd(n1, n2)
    h = max(gap_max, -gap_min) // g
    if exact:
        return h, h * 1.0 / ((n1 // g) * n2)
    return h, max(-d_min, d_max)


@nb.njit(cache=True)
def ks_statistic(a, b):
    """The two-sample Kolmogorov-Smirnov statistic of ``a`` and ``b`` (finite values).

    Equal, float for float, to ``scipy.stats.ks_2samp(a, b).statistic``.
    """
    exact = max(a.shape[0], b.shape[0]) <= _SCIPY_MAX_EXACT_N
    return _ks_sorted(np.sort(a), np.sort(b), exact)[1]


@nb.njit(cache=True)
def _reset(state, params):
    state[_COUNT] = 0.0
    state[_HEAD] = 0.0
    state[_RNG] = params[_P_SEED_STATE]
    state[_P_VALUE] = 0.0
    state[_STATISTIC] = 0.0
    state[_RING:] = 0.0


@nb.njit(cache=True)
def _insert_sorted(arr, n, x):
    """Insert ``x`` into the sorted ``arr[:n]`` (``arr`` has room for it)."""
    i = n
    while i > 0 and arr[i - 1] > x:
        arr[i] = arr[i - 1]
        i -= 1
    arr[i] = x


@nb.njit(cache=True)
def _replace_sorted(arr, n, out, x):
    """Replace one copy of ``out`` in the sorted ``arr[:n]`` by ``x``, keeping it sorted."""
    i = np.searchsorted(arr[:n], out)
    if x >= out:
        while i + 1 < n and arr[i + 1] < x:
            arr[i] = arr[i + 1]
            i += 1
    else:
        while i > 0 and arr[i - 1] > x:
            arr[i] = arr[i - 1]
            i -= 1
    arr[i] = x


@nb.njit(cache=True)
def _push(state, w, s, x):
    """Append ``x`` to the window and keep its older part and its recent part sorted.

    Sorted parts make the KS test cheap: drawing positions of the sorted older part in
    increasing order gives an already sorted sample, and no sample is ever sorted.
    """
    count = int(state[_COUNT])
    head = int(state[_HEAD])
    older = state[_RING + w:_RING + 2 * w - s]
    recent = state[_RING + 2 * w - s:_RING + 2 * w]
    if count >= s:
        # the oldest of the recent values joins the older part
        moving = state[_RING + (head + count - s) % w]
        if count == w:
            _replace_sorted(older, w - s, state[_RING + head], moving)
        else:
            _insert_sorted(older, count - s, moving)
        _replace_sorted(recent, s, moving, x)
    else:
        _insert_sorted(recent, count, x)
    if count == w:
        state[_RING + head] = x
        state[_HEAD] = (head + 1) % w
    else:
        state[_RING + (head + count) % w] = x
        state[_COUNT] = count + 1


@nb.njit(cache=True)
def _draw_sample(state, w, s, sample):
    """Draw ``s`` distinct values of the older part, in sorted order (Knuth's algorithm S).

    Any ``s`` of the ``w - s`` older values are equally likely, as with river's draw of
    window positions; walking the sorted copy instead of the window gives them sorted.
    """
    m = w - s
    rng = int(state[_RNG])
    needed = s
    t = 0
    while needed > 0:
        rng = _lcg_next(rng)
        # keep value t with probability needed / (m - t), on the top 32 bits of the LCG;
        # written unconditionally (a rejected value is overwritten) since the branch is a coin flip
        sample[s - needed] = state[_RING + w + t]
        needed -= (m - t) * (rng >> 16) < (needed << 32)
        t += 1
    state[_RNG] = rng


@nb.njit(cache=True)
def _load(state, params, values):
    """Fill the window with ``values`` without testing (river's ``window`` argument)."""
    w = int(params[_P_WINDOW_SIZE])
    s = int(params[_P_STAT_SIZE])
    for x in values:
        _push(state, w, s, x)


@nb.njit(cache=True, inline="always", error_model="numpy")
def _step(hot, state, params, x, warning):
    w = int(params[_P_WINDOW_SIZE])
    s = int(params[_P_STAT_SIZE])
    _push(state, w, s, x)
    if state[_COUNT] < w:
        return hot, False, False
    # the drawn sample is kept in the state: with the recent part, it is the test's evidence
    sample = state[_RING + 2 * w:_RING + 2 * w + s]
    _draw_sample(state, w, s, sample)
    recent = state[_RING + 2 * w - s:_RING + 2 * w]
    h, statistic = _ks_sorted(sample, recent, params[_P_EXACT] != 0.0)
    p_value = params[_P_TABLE + h]
    state[_STATISTIC] = statistic
    state[_P_VALUE] = p_value
    # river cuts its window to the recent values on drift, but rebuilds it empty on the next
    # update anyway; the loops' reset after a drift does the same here.
    return hot, p_value <= params[_P_ALPHA] and statistic > _MIN_STATISTIC, False


@functools.lru_cache(maxsize=16)
def p_value_table(stat_size: int) -> tuple[float, ...]:
    """scipy's two-sided ``ks_2samp`` p-value of each statistic ``k / stat_size``, k = 0..stat_size.

    With two samples of ``stat_size`` values the statistic only takes these values, and the
    p-value depends on nothing else, so one table replaces a scipy call per update.
    """
    from scipy import stats  # imported here: it is slow to import and only tables need it

    base = np.arange(stat_size, dtype=np.float64)
    with warnings.catch_warnings():
        # ks_2samp warns when it falls back from the exact to the asymptotic p-value
        warnings.simplefilter("ignore", category=RuntimeWarning)
        return tuple(
            float(stats.ks_2samp(base, base + k, method="auto").pvalue)
            for k in range(stat_size + 1)
        )


def _seed_state(seed: int | None) -> float:
    seed = DEFAULT_SEED if seed is None else seed
    # drand48's seeding: the low 32 bits of the seed on top of a fixed 16-bit pattern
    return float(((seed % (1 << 32)) << 16) | _SEED_LOW)


class KSWIN(Detector):
    r"""Kolmogorov-Smirnov Windowing (KSWIN): a two-sample KS test on a sliding window.

    KSWIN keeps the last ``window_size`` values. Once the window is full, every update draws
    ``stat_size`` values without replacement from its ``window_size - stat_size`` oldest
    positions and compares them with the ``stat_size`` newest values by a two-sample
    Kolmogorov-Smirnov test. Drift is signalled when the p-value is at most ``alpha`` and the
    statistic (the largest gap between the two empirical distribution functions) exceeds 0.1.
    The detector then starts over from an empty window. KSWIN makes no assumption about the
    distribution of the values and has no warning zone.

    The statistic and p-value are those of ``scipy.stats.ks_2samp(older, recent)``: the
    statistic is computed in numba, and since two samples of ``stat_size`` values can only be
    ``k / stat_size`` apart, the exact p-value of each ``k`` is computed once with scipy at
    construction (cached per ``stat_size``; about a second for ``stat_size=1000``). Above
    10,000 values per sample scipy switches to asymptotic p-values of its float statistic,
    which the table can match only to the last bit.

    The draws come from drand48's 48-bit linear congruential generator, whose state is part of
    the detector state: a detector restored with :meth:`from_state` draws exactly the same
    samples as one that never stopped. The generator is seeded from ``seed`` (its low 32 bits;
    ``None`` means :data:`DEFAULT_SEED`) and, as in river, reseeded at every reset. River uses
    Python's ``random.Random(seed)`` (fresh OS entropy when ``seed`` is None), so the drawn
    samples, and thus the detections, agree with river in distribution, not value for value,
    except when ``window_size == 2 * stat_size``: then the whole older half is the sample and
    the detections are identical.

    Parameters
    ----------
    alpha
        Significance level of the KS test. Keep it small (below 0.01): a test runs on every
        update, so the false alarm rate is driven by alpha.
    window_size
        Size of the sliding window; at least ``2 * stat_size`` (river accepts smaller windows
        but fails when the first full window is tested).
    stat_size
        Size of the two samples compared.
    seed
        Seed of the sampling generator.
    window
        Values to start with instead of an empty window (the last ``window_size`` are kept).
        Resets after a drift start from an empty window.

    Attributes
    ----------
    p_value
        p-value of the last test (0.0 before the first one after a reset).
    statistic
        KS statistic of the last test (0.0 before the first one after a reset).

    Examples
    --------
    >>> import numpy as np
    >>> from driftwire.detectors import KSWIN
    >>> rng = np.random.default_rng(12345)
    >>> stream = np.concatenate([rng.integers(0, 2, 1000), rng.integers(4, 8, 1000)])
    >>> kswin = KSWIN(alpha=0.0001, seed=42)
    >>> kswin.update_many(stream)
    array([1016])

    The statistic of the last test, and the smallest one that signals drift at this alpha:

    >>> round(kswin.statistic, 4), round(kswin.threshold, 4)
    (0.1333, 0.5667)

    References
    ----------
    Christoph Raab, Moritz Heusinger, Frank-Michael Schleif (2020). Reactive Soft Prototype
    Computing for Concept Drift Streams. Neurocomputing 416, 340-351.
    """

    name = "kswin"
    reset_kernel = staticmethod(_reset)
    statistic_name = "ks_statistic"

    def __init__(
        self,
        alpha: float = 0.005,
        window_size: int = 100,
        stat_size: int = 30,
        seed: int | None = None,
        window=None,
    ):
        if not 0 <= alpha <= 1:
            raise ValueError(f"alpha must be in [0, 1], got {alpha}")
        if not is_int(stat_size) or stat_size < 1:
            raise ValueError(f"stat_size must be a positive integer, got {stat_size!r}")
        if not is_int(window_size) or not 2 * stat_size <= window_size < 2**30:
            raise ValueError(
                f"window_size must be an integer from 2 * stat_size ({2 * stat_size}) "
                f"to 2**30, got {window_size!r}"
            )
        if seed is not None and not is_int(seed):
            raise ValueError(f"seed must be an integer or None, got {seed!r}")
        if window is not None:
            window = [float(v) for v in window][-window_size:]
            if not all(math.isfinite(v) for v in window):
                raise ValueError("window must hold finite values only")
        super().__init__(
            alpha=float(alpha),
            window_size=int(window_size),
            stat_size=int(stat_size),
            seed=None if seed is None else int(seed),
            window=window,
        )

    def _param_vector(self) -> np.ndarray:
        p = self.params
        head = [
            p["alpha"],
            p["window_size"],
            p["stat_size"],
            _seed_state(p["seed"]),
            1.0 if p["stat_size"] <= _SCIPY_MAX_EXACT_N else 0.0,
        ]
        return np.array(head + list(p_value_table(p["stat_size"])), dtype=np.float64)

    def _state_size(self) -> int:
        p = self.params
        return _RING + 2 * p["window_size"] + p["stat_size"]

    def initial_state(self) -> np.ndarray:
        state = super().initial_state()
        if self.params["window"]:
            _load(state, self._params, np.array(self.params["window"], dtype=np.float64))
        return state

    @property
    def p_value(self) -> float:
        return float(self._state[_P_VALUE])

    def tested_samples(self) -> tuple[np.ndarray, np.ndarray]:
        """The two samples of the last test, sorted: (drawn from the older part, most recent)."""
        w, s = self.params["window_size"], self.params["stat_size"]
        end = _RING + 2 * w
        return self._state[end:end + s].copy(), self._state[end - s:end].copy()

    @staticmethod
    def statistic_of(state, params) -> float:
        """The KS statistic of the last test."""
        return float(state[_STATISTIC])

    @staticmethod
    def threshold_of(params) -> float | None:
        """The smallest KS statistic that signals drift, or None when none can."""
        alpha = params[_P_ALPHA]
        s = int(params[_P_STAT_SIZE])
        for k in range(s + 1):
            if params[_P_TABLE + k] <= alpha and k / s > _MIN_STATISTIC:
                return k / s
        return None
