"""FHDDM: the Fast Hoeffding Drift Detection Method, on a sliding window."""

from __future__ import annotations

import math

import numba as nb
import numpy as np

from .base import HEADER, HOT, Detector, is_int

# hot slots (see base); the ring buffer of the window follows them
_HEAD = HEADER  # ring position of the oldest value
_COUNT = HEADER + 1  # values in the ring
_SUM = HEADER + 2  # running sum of the ring, added to and subtracted from as river does
_U = HEADER + 3  # window mean at the last test (for the statistic)
_U_MAX = HEADER + 4
_U_SHORT_MAX = HEADER + 5
_RING = HEADER + HOT

# parameter vector; short window 0 means none
_P_WINDOW, _P_SHORT, _P_EPSILON, _P_EPSILON_SHORT = range(4)


@nb.njit(cache=True)
def _reset(state, params):
    for i in range(HEADER, _RING):
        state[i] = 0.0


@nb.njit(cache=True, inline="always")
def _short_mean(state, head, window, short):
    # Summed oldest first from 0.0 on every test, like river's sum over the window's tail, so
    # non-binary values give the same rounding.
    total = 0.0
    for j in range(window - short, window):
        total += state[_RING + _wrap(head + j, window)]
    return total / short


@nb.njit(cache=True, inline="always")
def _wrap(position, window):
    # A ring index below 2 * window: one compare-and-subtract, several times cheaper than a float %.
    return int(position - window if position >= window else position)


@nb.njit(cache=True, inline="always", error_model="numpy")
def _step(hot, state, params, x, warning):
    head, count, total, u, u_max, u_short_max, pad0, pad1 = hot
    window = params[_P_WINDOW]
    state[_RING + _wrap(head + count, window)] = x
    count += 1.0
    total += x
    drift = False
    if count < window:
        return (head, count, total, u, u_max, u_short_max, pad0, pad1), drift, False
    u = total / window
    if u_max < u:
        u_max = u
    drift = u_max - u > params[_P_EPSILON]
    short = params[_P_SHORT]
    if short > 0.0:
        u_s = _short_mean(state, head, window, short)
        if u_short_max < u_s:
            u_short_max = u_s
        drift = drift or u_short_max - u_s > params[_P_EPSILON_SHORT]
    # The oldest value leaves right after the test, so the window is full only while testing.
    total -= state[_RING + int(head)]
    head = float(_wrap(head + 1.0, window))
    return (head, count - 1.0, total, u, u_max, u_short_max, pad0, pad1), drift, False


class FHDDM(Detector):
    """Fast Hoeffding Drift Detection Method: a drop of the windowed mean below its best level.

    FHDDM slides a window of ``sliding_window_size`` values and, once it is full, compares the
    window mean ``u`` with the largest window mean ``u_max`` seen since the last reset: drift
    when ``u_max - u`` exceeds the Hoeffding bound ``sqrt(ln(1 / confidence_level) / (2 n))``.
    With ``short_window_size`` (the stacking variant), the mean of the newest
    ``short_window_size`` values is tested the same way against its own maximum and bound, which
    catches abrupt drops sooner. FHDDM has no warning zone.

    The signal is a *drop* of the mean: feed 1 for a correct prediction and 0 for an error to
    catch a rising error rate (feeding errors as 1 catches a falling error rate instead).

    Values other than 0 and 1: any real value is averaged as it is, as in river. The bound
    assumes values in ``[0, 1]``; on a wider range it is proportionally too tight.

    :attr:`statistic` is ``u_max - u`` of the long window at its last test, and
    :attr:`threshold` its bound; the short window, when there is one, has its own, larger bound.

    Parameters
    ----------
    sliding_window_size
        Values in the window; no test happens before it is full.
    confidence_level
        The probability of error ``delta`` in Hoeffding's inequality.
    short_window_size
        Size of the short window of the stacking variant, at most ``sliding_window_size``; None
        for the original method.

    Examples
    --------
    >>> import numpy as np
    >>> from driftwire.detectors import FHDDM
    >>> rng = np.random.default_rng(42)
    >>> correct = np.concatenate([rng.random(500) < 0.9, rng.random(500) < 0.3])
    >>> FHDDM().update_many(correct)
    array([539])
    >>> FHDDM(short_window_size=20).update_many(correct)
    array([516])

    References
    ----------
    A. Pesaranghader, H. L. Viktor (2016). Fast Hoeffding Drift Detection Method for Evolving
    Data Streams. ECML PKDD 2016, LNCS 9852, 96-111.

    A. Pesaranghader, H. Viktor, E. Paquet (2018). Reservoir of Diverse Adaptive Learners and
    Stacking Fast Hoeffding Drift Detection Methods for Evolving Data Streams. Machine Learning
    107, 1711-1743.
    """

    name = "fhddm"
    reset_kernel = staticmethod(_reset)
    statistic_name = "mean_drop"

    def __init__(
        self,
        sliding_window_size: int = 100,
        confidence_level: float = 0.000001,
        short_window_size: int | None = None,
    ):
        if not is_int(sliding_window_size) or sliding_window_size < 1:
            raise ValueError(
                f"sliding_window_size must be a positive integer, got {sliding_window_size!r}"
            )
        if not 0 < confidence_level < 1:
            raise ValueError(f"confidence_level must be in (0, 1), got {confidence_level}")
        if short_window_size is not None and not (
            is_int(short_window_size) and 1 <= short_window_size <= sliding_window_size
        ):
            raise ValueError(
                "short_window_size must be None or an integer in [1, sliding_window_size], "
                f"got {short_window_size!r}"
            )
        super().__init__(
            sliding_window_size=sliding_window_size,
            confidence_level=confidence_level,
            short_window_size=short_window_size,
        )

    @staticmethod
    def _epsilon(confidence_level: float, n: int) -> float:
        return math.sqrt(math.log(1 / confidence_level) / (2 * n))

    def _param_vector(self) -> np.ndarray:
        p = self.params
        window = p["sliding_window_size"]
        short = p["short_window_size"]
        eps_short = 0.0 if short is None else self._epsilon(p["confidence_level"], short)
        return np.array(
            [window, short or 0, self._epsilon(p["confidence_level"], window), eps_short],
            dtype=np.float64,
        )

    def _state_size(self) -> int:
        return _RING + self.params["sliding_window_size"]

    @staticmethod
    def threshold_of(params) -> float:
        return float(params[_P_EPSILON])

    @staticmethod
    def statistic_of(state, params) -> float:
        """``u_max - u`` for the long window at its last test (0.0 before the window fills)."""
        return float(state[_U_MAX] - state[_U])
