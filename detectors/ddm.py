"""DDM: the Drift Detection Method of Gama et al., on a stream of errors."""

from __future__ import annotations

import math

import numba as nb
import numpy as np

from .base import HEADER, HOT, Detector, check_int

# hot slots (see base)
_N = HEADER
_P = HEADER + 1
_P_MIN = HEADER + 2
_S_MIN = HEADER + 3
_PS_MIN = HEADER + 4
_SIZE = HEADER + HOT

# parameter vector
_P_WARM_START, _P_WARNING, _P_DRIFT = range(3)


@nb.njit(cache=True)
def _reset(state, params):
    state[_N] = 0.0
    state[_P] = 0.0
    # The minima are unset until the warm start is over; +inf makes every test on them fail.
    state[_P_MIN] = np.inf
    state[_S_MIN] = np.inf
    state[_PS_MIN] = np.inf


@nb.njit(cache=True, inline="always", error_model="numpy")
def _step(hot, state, params, x, warning):
    n, p, p_min, s_min, ps_min, pad0, pad1, pad2 = hot
    n += 1.0
    p = p + (1.0 / n) * (x - p)
    # NaN when p leaves [0, 1] (inputs outside [0, 1]): every comparison below is then false.
    s = math.sqrt(p * (1.0 - p) / n)
    drift = False
    # During the warm start the warning flag stays as it was, as in river.
    if n > params[_P_WARM_START]:
        if p + s <= ps_min:
            p_min = p
            s_min = s
            ps_min = p + s
        warning = p + s > p_min + params[_P_WARNING] * s_min
        if p + s > p_min + params[_P_DRIFT] * s_min:
            drift = True
            warning = False
    return (n, p, p_min, s_min, ps_min, pad0, pad1, pad2), drift, warning


class DDM(Detector):
    """Drift Detection Method: a rise of the error rate beyond its best level so far.

    The input is a stream of bits, 1 for an error (a wrong prediction) and 0 for a correct one.
    DDM keeps the running error rate ``p`` and its binomial standard deviation
    ``s = sqrt(p (1 - p) / n)``, and remembers ``p_min`` and ``s_min`` at the point where
    ``p + s`` was smallest. Once more than ``warm_start`` values have been seen:

    * ``p + s > p_min + warning_threshold * s_min``: warning zone;
    * ``p + s > p_min + drift_threshold * s_min``: drift (which clears the warning).

    Values other than 0 and 1: a value in ``[0, 1]`` counts as a fractional error (``p`` stays a
    rate) and gives river's result. Values outside ``[0, 1]`` are outside DDM's model: once they
    push ``p`` out of ``[0, 1]`` river raises a math domain error; here ``s`` is NaN then and no
    warning, drift or new minimum happens until ``p`` is back in ``[0, 1]``.

    :attr:`statistic` is ``p + s``; the level it is compared with depends on the state
    (``p_min + drift_threshold * s_min``), so :attr:`threshold` is None.

    Parameters
    ----------
    warm_start
        Values needed after a reset before warnings and drifts can be signalled.
    warning_threshold
        Multiple of ``s_min`` above ``p_min`` that enters the warning zone (2.0: about 95%
        confidence).
    drift_threshold
        Multiple of ``s_min`` above ``p_min`` that signals drift (3.0: about 99% confidence).

    Examples
    --------
    >>> import numpy as np
    >>> from driftwire.detectors import DDM
    >>> rng = np.random.default_rng(42)
    >>> errors = np.concatenate([rng.random(1000) < 0.1, rng.random(1000) < 0.4])
    >>> ddm = DDM()
    >>> drifts, warnings = ddm.update_many(errors, return_warnings=True)
    >>> drifts
    array([1172])
    >>> warnings[warnings >= 1000][:3]
    array([1049, 1050, 1051])

    A long error-free run leaves ``s_min`` at 0, so the first error afterwards is a drift:

    >>> DDM().update_many(np.r_[np.zeros(100), 1.0])
    array([100])

    References
    ----------
    J. Gama, P. Medas, G. Castillo, P. Rodrigues (2004). Learning with Drift Detection.
    SBIA 2004, LNCS 3171, 286-295.
    """

    name = "ddm"
    reset_kernel = staticmethod(_reset)
    has_warning = True
    statistic_name = "error_rate_plus_std"

    def __init__(
        self, warm_start: int = 30, warning_threshold: float = 2.0, drift_threshold: float = 3.0
    ):
        check_int("warm_start", warm_start, 0)
        for name, value in (("warning_threshold", warning_threshold), ("drift_threshold", drift_threshold)):
            if not (math.isfinite(value) and value >= 0):
                raise ValueError(f"{name} must be finite and non-negative, got {value}")
        super().__init__(
            warm_start=warm_start, warning_threshold=warning_threshold, drift_threshold=drift_threshold
        )

    def _param_vector(self) -> np.ndarray:
        p = self.params
        return np.array(
            [p["warm_start"], p["warning_threshold"], p["drift_threshold"]], dtype=np.float64
        )

    def _state_size(self) -> int:
        return _SIZE

    @staticmethod
    def statistic_of(state, params) -> float:
        """``p + s``, the error rate plus its standard deviation (0.0 before any value)."""
        n = state[_N]
        if n == 0:
            return 0.0
        p = state[_P]
        return float(p + math.sqrt(max(p * (1.0 - p), 0.0) / n))
