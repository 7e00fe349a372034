"""EDDM: the Early Drift Detection Method, on the distances between errors."""

from __future__ import annotations

import math

import numba as nb
import numpy as np

from .base import HEADER, HOT, Detector, check_int

# hot slots (see base)
_N = HEADER
_LAST_ERROR = HEADER + 1
_N_ERRORS = HEADER + 2
_DIST_MEAN = HEADER + 3
_DIST_M2 = HEADER + 4  # sum of squared deviations of the distances (Welford)
_P2S_MAX = HEADER + 5
_SIZE = HEADER + HOT

# parameter vector
_P_WARM_START, _P_ALPHA, _P_BETA, _P_HALF = range(4)


@nb.njit(cache=True)
def _reset(state, params):
    state[_N] = 0.0
    state[_LAST_ERROR] = 0.0
    state[_N_ERRORS] = 0.0
    state[_DIST_MEAN] = 0.0
    state[_DIST_M2] = 0.0
    state[_P2S_MAX] = -1.0


@nb.njit(cache=True, inline="always")
def _mean_plus_two_sd(n_err, mean, m2, params):
    var = m2 / (n_err - 1.0) if n_err > 1.0 else 0.0
    # river takes the root as `var ** 0.5` (libm pow), which differs from sqrt in the last bit
    # for about one value in a thousand; a literal 0.5 would be folded into sqrt by LLVM.
    return mean + 2.0 * math.pow(var, params[_P_HALF])


@nb.njit(cache=True, inline="always", error_model="numpy")
def _step(hot, state, params, x, warning):
    n, last_error, n_err, mean, m2, p2s_max, pad0, pad1 = hot
    n += 1.0
    drift = False
    # Only errors move the distances; the warning flag stays as it was until the next one.
    if x == 1.0:
        n_err += 1.0
        dist = n - last_error
        old_mean = mean
        mean = old_mean + (1.0 / n_err) * (dist - old_mean)
        m2 += (dist - old_mean) * (dist - mean)
        last_error = n
        if n > params[_P_WARM_START]:
            p2s = _mean_plus_two_sd(n_err, mean, m2, params)
            if p2s > p2s_max:
                p2s_max = p2s
            elif n_err > params[_P_WARM_START]:
                level = p2s / p2s_max
                # A drift leaves the warning flag as it was, as river does.
                if level < params[_P_BETA]:
                    drift = True
                elif level < params[_P_ALPHA]:
                    warning = True
                else:
                    warning = False
    return (n, last_error, n_err, mean, m2, p2s_max, pad0, pad1), drift, warning


class EDDM(Detector):
    """Early Drift Detection Method: errors coming closer together than they used to.

    The input is a stream of bits, 1 for an error and 0 for a correct prediction. On every
    error EDDM updates the mean ``p'`` and sample standard deviation ``s'`` of the distance (in
    values) since the previous error, and remembers the largest ``p' + 2 s'`` seen. Once more
    than ``warm_start`` values and more than ``warm_start`` errors have been seen, with
    ``level = (p' + 2 s') / max(p' + 2 s')``:

    * ``level < alpha``: warning zone (it persists over correct predictions);
    * ``level < beta``: drift.

    A new maximum is recorded instead of tested. Catches gradual drift earlier than DDM, at the
    price of false alarms on stationary streams at the default ``alpha`` and ``beta``.

    Values other than 0 and 1: only a value equal to 1 is an error; anything else (0.5, 2, -1)
    counts as a correct prediction, as in river.

    :attr:`statistic` is the level ``(p' + 2 s') / max`` (1.0 until a maximum exists); drift
    is signalled when it falls below :attr:`threshold`, which is ``beta``.

    Parameters
    ----------
    warm_start
        Values, and errors, needed after a reset before warnings and drifts can be signalled.
    alpha
        Warning level, in (0, 1]; must be at least ``beta``.
    beta
        Drift level, in (0, 1].

    Examples
    --------
    >>> import numpy as np
    >>> from driftwire.detectors import EDDM
    >>> rng = np.random.default_rng(42)
    >>> errors = np.concatenate([rng.random(1000) < 0.1, rng.random(1000) < 0.4])
    >>> eddm = EDDM(alpha=0.8, beta=0.75)
    >>> drifts, warnings = eddm.update_many(errors, return_warnings=True)
    >>> drifts
    array([1244])
    >>> warnings[warnings >= 1000][:3]
    array([1186, 1187, 1188])

    At the default ``alpha`` and ``beta`` the same stream raises many more alarms:

    >>> EDDM().update_many(errors)[:3]
    array([1090, 1182, 1245])

    References
    ----------
    M. Baena-Garcia, J. del Campo-Avila, R. Fidalgo, A. Bifet, R. Gavalda, R. Morales-Bueno
    (2006). Early Drift Detection Method. Fourth International Workshop on Knowledge Discovery
    from Data Streams.
    """

    name = "eddm"
    reset_kernel = staticmethod(_reset)
    has_warning = True
    statistic_name = "distance_ratio"

    def __init__(self, warm_start: int = 30, alpha: float = 0.95, beta: float = 0.9):
        check_int("warm_start", warm_start, 0)
        if not 0 < beta <= 1:
            raise ValueError(f"beta must be in (0, 1], got {beta}")
        if not 0 < alpha <= 1:
            raise ValueError(f"alpha must be in (0, 1], got {alpha}")
        if alpha < beta:
            raise ValueError(f"alpha ({alpha}) must be greater than or equal to beta ({beta})")
        super().__init__(warm_start=warm_start, alpha=alpha, beta=beta)

    def _param_vector(self) -> np.ndarray:
        p = self.params
        return np.array([p["warm_start"], p["alpha"], p["beta"], 0.5], dtype=np.float64)

    def _state_size(self) -> int:
        return _SIZE

    @staticmethod
    def threshold_of(params) -> float:
        return float(params[_P_BETA])

    @staticmethod
    def statistic_of(state, params) -> float:
        """``(p' + 2 s') / max(p' + 2 s')``; 1.0 while no maximum has been recorded."""
        p2s_max = state[_P2S_MAX]
        if p2s_max <= 0:
            return 1.0
        return float(_mean_plus_two_sd(state[_N_ERRORS], state[_DIST_MEAN], state[_DIST_M2], params) / p2s_max)
