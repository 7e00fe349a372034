"""Page-Hinkley test for a change in the mean of a real-valued signal."""

from __future__ import annotations

import numba as nb
import numpy as np

from .base import HEADER, HOT, Detector

_MODES = {"up": 0.0, "down": 1.0, "both": 2.0}

# hot slots (see base)
_N = HEADER
_MEAN = HEADER + 1
_SUM_UP = HEADER + 2
_SUM_DOWN = HEADER + 3
_MIN_UP = HEADER + 4
_MAX_DOWN = HEADER + 5
_SIZE = HEADER + HOT

# parameter vector
_P_MIN_INSTANCES, _P_DELTA, _P_THRESHOLD, _P_ALPHA, _P_MODE = range(5)


@nb.njit(cache=True)
def _reset(state, params):
    state[_N] = 0.0
    state[_MEAN] = 0.0
    state[_SUM_UP] = 0.0
    state[_SUM_DOWN] = 0.0
    state[_MIN_UP] = np.inf
    # river starts the running maximum of the decrease sum at -1, not -inf; kept for parity.
    state[_MAX_DOWN] = -1.0


@nb.njit(cache=True, inline="always", error_model="numpy")
def _step(hot, state, params, x, warning):
    n, mean, s_up, s_down, min_up, max_down, pad0, pad1 = hot
    n += 1.0
    mean = mean + (1.0 / n) * (x - mean)
    dev = x - mean
    alpha = params[_P_ALPHA]
    delta = params[_P_DELTA]
    s_up = alpha * s_up + dev - delta
    s_down = alpha * s_down + dev + delta
    if s_up < min_up:
        min_up = s_up
    if s_down > max_down:
        max_down = s_down
    hit = False
    if n >= params[_P_MIN_INSTANCES]:
        up = s_up - min_up > params[_P_THRESHOLD]
        down = max_down - s_down > params[_P_THRESHOLD]
        mode = params[_P_MODE]
        if mode == 0.0:
            hit = up
        elif mode == 1.0:
            hit = down
        else:
            hit = up or down
    return (n, mean, s_up, s_down, min_up, max_down, pad0, pad1), hit, False


class PageHinkley(Detector):
    """Page-Hinkley test: a cumulative sum of deviations from the running mean.

    Each value updates the running mean (the value included), and its deviation from it feeds
    two fading sums, one for increases and one for decreases. Drift is signalled when a sum
    moves more than ``threshold`` away from its own extreme. Page-Hinkley has no warning zone.

    ``threshold`` and ``delta`` are in the units of the signal: on a standardized signal (zero
    mean, unit variance) ``delta`` is the smallest shift, in standard deviations, worth
    ignoring and ``threshold`` the accumulated evidence needed.

    Parameters
    ----------
    min_instances
        Observations needed after a reset before drift can be signalled.
    delta
        Magnitude of change tolerated without accumulating evidence.
    threshold
        The detection threshold (lambda).
    alpha
        Forgetting factor of the cumulative sums.
    mode
        ``"up"`` (increases only), ``"down"`` (decreases only) or ``"both"``.

    Examples
    --------
    >>> import numpy as np
    >>> from driftwire.detectors import PageHinkley
    >>> rng = np.random.default_rng(42)
    >>> stream = np.concatenate([rng.normal(0.0, 1.0, 1000), rng.normal(3.0, 1.0, 1000)])
    >>> ph = PageHinkley()
    >>> ph.update_many(stream)
    array([1011, 1920])

    References
    ----------
    E. S. Page (1954). Continuous Inspection Schemes. Biometrika 41(1/2), 100-115.

    D. V. Hinkley (1971). Inference about the change-point from cumulative sum tests.
    Biometrika 58(3), 509-523.
    """

    name = "page_hinkley"
    reset_kernel = staticmethod(_reset)
    statistic_name = "cumulative_deviation"

    def __init__(
        self,
        min_instances: int = 30,
        delta: float = 0.005,
        threshold: float = 50.0,
        alpha: float = 1 - 0.0001,
        mode: str = "both",
    ):
        if mode not in _MODES:
            raise ValueError(f"mode must be one of {sorted(_MODES)}, got {mode!r}")
        if threshold <= 0:
            raise ValueError(f"threshold must be positive, got {threshold}")
        if not 0 < alpha <= 1:
            raise ValueError(f"alpha must be in (0, 1], got {alpha}")
        super().__init__(
            min_instances=min_instances, delta=delta, threshold=threshold, alpha=alpha, mode=mode
        )

    def _param_vector(self) -> np.ndarray:
        p = self.params
        return np.array(
            [p["min_instances"], p["delta"], p["threshold"], p["alpha"], _MODES[p["mode"]]],
            dtype=np.float64,
        )

    def _state_size(self) -> int:
        return _SIZE

    @staticmethod
    def threshold_of(params) -> float:
        return float(params[_P_THRESHOLD])

    @staticmethod
    def statistic_of(state, params) -> float:
        """The larger of the two test values (increase, decrease), compared to ``threshold``."""
        up = state[_SUM_UP] - state[_MIN_UP] if np.isfinite(state[_MIN_UP]) else 0.0
        down = state[_MAX_DOWN] - state[_SUM_DOWN]
        mode = params[_P_MODE]
        if mode == 0.0:
            return up
        if mode == 1.0:
            return down
        return max(up, down)
