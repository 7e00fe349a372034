"""HDDM_W: McDiarmid-bound drift detection on exponentially weighted means (W-test)."""

from __future__ import annotations

import math

import numba as nb
import numpy as np

from .base import HEADER, HOT, Detector, check_bool, check_confidence

# A weighted sample is three slots: its EWMA, whether it has seen a value, and its independent
# bound condition (ibc, the sum of the squared weights).
_EWMA, _INIT, _IBC = range(3)
_SAMPLE = 3

# State layout: five samples, then the two cut-point levels, all after the hot slots, which this
# detector leaves unused: a step touches a dozen of its slots, more than the hot tuple holds.
_TOTAL = HEADER + HOT
_S1_INCR = _TOTAL + _SAMPLE  # the stream up to the increase cut point
_S2_INCR = _S1_INCR + _SAMPLE  # the stream after it
_S1_DECR = _S2_INCR + _SAMPLE
_S2_DECR = _S1_DECR + _SAMPLE
_INCR_CUT = _S2_DECR + _SAMPLE
_DECR_CUT = _INCR_CUT + 1
_SIZE = _DECR_CUT + 1

# parameter vector: the derived constants are computed once, in Python, as river computes them
_P_LAMBDA, _P_LAMBDA_SQ, _P_C_LAMBDA_SQ, _P_LOG_DRIFT, _P_LOG_WARNING, _P_TWO_SIDED = range(6)


@nb.njit(cache=True, inline="always")
def _clear_sample(state, at):
    state[at + _EWMA] = 0.0
    state[at + _INIT] = 0.0
    state[at + _IBC] = 1.0


@nb.njit(cache=True, inline="always")
def _copy_sample(state, src, dst):
    for k in range(_SAMPLE):
        state[dst + k] = state[src + k]


@nb.njit(cache=True, inline="always")
def _update_sample(state, params, at, x):
    lam = params[_P_LAMBDA]
    # the first value is taken as it is, not weighted against the initial 0
    if state[at + _INIT] == 0.0:
        state[at + _EWMA] = x
    else:
        state[at + _EWMA] = lam * x + (1.0 - lam) * state[at + _EWMA]
    state[at + _INIT] = 1.0
    state[at + _IBC] = params[_P_LAMBDA_SQ] + params[_P_C_LAMBDA_SQ] * state[at + _IBC]


@nb.njit(cache=True)
def _reset(state, params):
    for at in (_TOTAL, _S1_INCR, _S2_INCR, _S1_DECR, _S2_DECR):
        _clear_sample(state, at)
    state[_INCR_CUT] = np.inf
    state[_DECR_CUT] = -np.inf


@nb.njit(cache=True, inline="always")
def _mcdiarmid(ibc, log_inv_conf):
    return math.sqrt(ibc * log_inv_conf / 2.0)


@nb.njit(cache=True, inline="always")
def _rose(state, before, after, log_inv_conf):
    """Whether the EWMA of sample ``after`` exceeds that of ``before`` by more than the bound."""
    if state[before + _INIT] == 0.0 or state[after + _INIT] == 0.0:
        return False
    bound = _mcdiarmid(state[before + _IBC] + state[after + _IBC], log_inv_conf)
    return state[after + _EWMA] - state[before + _EWMA] > bound


@nb.njit(cache=True, inline="always")
def _track_increase(state, params, x):
    level = state[_TOTAL + _EWMA] + _mcdiarmid(state[_TOTAL + _IBC], params[_P_LOG_DRIFT])
    if level < state[_INCR_CUT]:
        state[_INCR_CUT] = level
        _copy_sample(state, _TOTAL, _S1_INCR)
        _clear_sample(state, _S2_INCR)
    else:
        _update_sample(state, params, _S2_INCR, x)


@nb.njit(cache=True, inline="always")
def _track_decrease(state, params, x):
    level = state[_TOTAL + _EWMA] - _mcdiarmid(state[_TOTAL + _IBC], params[_P_LOG_DRIFT])
    if level > state[_DECR_CUT]:
        state[_DECR_CUT] = level
        _copy_sample(state, _TOTAL, _S1_DECR)
        _clear_sample(state, _S2_DECR)
    else:
        _update_sample(state, params, _S2_DECR, x)


@nb.njit(cache=True, inline="always", error_model="numpy")
def _step(hot, state, params, x, warning):
    _update_sample(state, params, _TOTAL, x)
    _track_increase(state, params, x)
    if _rose(state, _S1_INCR, _S2_INCR, params[_P_LOG_DRIFT]):
        drift = True
        warning = False
    else:
        drift = False
        warning = _rose(state, _S1_INCR, _S2_INCR, params[_P_LOG_WARNING])
    # The decrease samples are kept up to date even when only increases are tested.
    _track_decrease(state, params, x)
    if params[_P_TWO_SIDED] != 0.0:
        if _rose(state, _S2_DECR, _S1_DECR, params[_P_LOG_DRIFT]):
            drift = True
        elif _rose(state, _S2_DECR, _S1_DECR, params[_P_LOG_WARNING]):
            warning = True
    return hot, drift, warning


class HDDM_W(Detector):
    """HDDM_W: drift when a recent weighted mean rises significantly above an earlier one.

    The input is a stream of bits, 1 for an error and 0 for a correct prediction. HDDM_W keeps an
    exponentially weighted moving average (EWMA) of the stream, and splits it at a cut point:
    where the EWMA plus its McDiarmid bound was lowest. The EWMA up to the cut point is frozen,
    a fresh EWMA follows the values after it, and when the recent one exceeds the frozen one by
    more than the bound for both, at confidence ``drift_confidence``, drift is signalled; at
    ``warning_confidence``, a warning. With ``two_sided_test`` a mirrored split (where the EWMA
    minus its bound was highest) also catches decreases. Reacts faster than HDDM_A to recent
    changes; at the defaults it raises some false alarms on long stationary streams.

    Values other than 0 and 1: any real value is averaged as it is, as in river. The bounds
    assume values in ``[0, 1]``; on a wider range they are proportionally too tight. The first
    value of every EWMA is taken as its mean, as river's ``EWMean`` does.

    :attr:`statistic` is the recent EWMA minus the frozen one (with ``two_sided_test``, the
    larger of the increase and the decrease; 0.0 while there is no recent EWMA); the bound it
    is compared with depends on the weights, so :attr:`threshold` is None.

    Parameters
    ----------
    drift_confidence
        Confidence level of the drift test (the smaller, the more evidence is needed).
    warning_confidence
        Confidence level of the warning test.
    lambda_val
        Weight of the newest value in the EWMA, in (0, 1]: the larger, the faster it forgets.
    two_sided_test
        Also monitor decreases (by default only increases).

    Examples
    --------
    >>> import numpy as np
    >>> from driftwire.detectors import HDDM_W
    >>> rng = np.random.default_rng(42)
    >>> errors = np.concatenate([rng.random(1000) < 0.1, rng.random(1000) < 0.4])
    >>> hddm = HDDM_W()
    >>> drifts, warnings = hddm.update_many(errors, return_warnings=True)
    >>> drifts
    array([1053])
    >>> warnings[:3]
    array([1051, 1052, 1553])

    References
    ----------
    I. Frias-Blanco, J. del Campo-Avila, G. Ramos-Jimenez, R. Morales-Bueno, A. Ortiz-Diaz,
    Y. Caballero-Mota (2015). Online and Non-Parametric Drift Detection Methods Based on
    Hoeffding's Bounds. IEEE Transactions on Knowledge and Data Engineering 27(3), 810-823.
    """

    name = "hddm_w"
    reset_kernel = staticmethod(_reset)
    has_warning = True
    statistic_name = "ewma_increase"

    def __init__(
        self,
        drift_confidence: float = 0.001,
        warning_confidence: float = 0.005,
        lambda_val: float = 0.05,
        two_sided_test: bool = False,
    ):
        check_confidence("drift_confidence", drift_confidence)
        check_confidence("warning_confidence", warning_confidence)
        if not 0 < lambda_val <= 1:
            raise ValueError(f"lambda_val must be in (0, 1], got {lambda_val}")
        check_bool("two_sided_test", two_sided_test)
        super().__init__(
            drift_confidence=drift_confidence,
            warning_confidence=warning_confidence,
            lambda_val=lambda_val,
            two_sided_test=bool(two_sided_test),
        )

    def _param_vector(self) -> np.ndarray:
        p = self.params
        lam = p["lambda_val"]
        return np.array(
            [
                lam,
                lam * lam,
                (1 - lam) ** 2,
                math.log(1 / p["drift_confidence"]),
                math.log(1 / p["warning_confidence"]),
                1.0 if p["two_sided_test"] else 0.0,
            ],
            dtype=np.float64,
        )

    def _state_size(self) -> int:
        return _SIZE

    @staticmethod
    def statistic_of(state, params) -> float:
        """Recent EWMA minus the frozen one (and the reverse, two-sided); 0.0 when undefined."""
        stat = 0.0
        if state[_S2_INCR + _INIT] != 0.0:
            stat = state[_S2_INCR + _EWMA] - state[_S1_INCR + _EWMA]
        if params[_P_TWO_SIDED] != 0.0 and state[_S2_DECR + _INIT] != 0.0:
            stat = max(stat, state[_S1_DECR + _EWMA] - state[_S2_DECR + _EWMA])
        return float(stat)
