"""HDDM_A: Hoeffding-bound drift detection on the running mean (A-test)."""

from __future__ import annotations

import math

import numba as nb
import numpy as np

from .base import HEADER, HOT, Detector, check_bool, check_confidence

# hot slots (see base): three running means (count, mean) -- the whole stream, the cut point
# for increases, the cut point for decreases
_Z_N = HEADER
_Z_MEAN = HEADER + 1
_MIN_N = HEADER + 2
_MIN_MEAN = HEADER + 3
_MAX_N = HEADER + 4
_MAX_MEAN = HEADER + 5
_SIZE = HEADER + HOT

# parameter vector: the logarithms are computed once, in Python, as river computes them
_P_LOG_DRIFT_1, _P_LOG_DRIFT_2, _P_LOG_WARNING_2, _P_TWO_SIDED = range(4)


@nb.njit(cache=True)
def _reset(state, params):
    for i in range(HEADER, _SIZE):
        state[i] = 0.0


@nb.njit(cache=True, inline="always")
def _hoeffding(n, log_inv_conf):
    return math.sqrt(1.0 / (2.0 * n) * log_inv_conf)


@nb.njit(cache=True, inline="always")
def _gap_bound(n_cut, n_all, log_two_over_conf):
    """Bound on the difference between the mean up to the cut and the mean of everything."""
    m = (n_all - n_cut) / n_cut * (1.0 / n_all)
    return math.sqrt(m / 2.0 * log_two_over_conf)


@nb.njit(cache=True, inline="always")
def _departed(n_cut, gap, n_all, log_two_over_conf):
    """Whether the mean moved ``gap`` away from the cut point's, beyond the bound."""
    if n_cut == n_all:
        return False
    return gap >= _gap_bound(n_cut, n_all, log_two_over_conf)


@nb.njit(cache=True, inline="always", error_model="numpy")
def _step(hot, state, params, x, warning):
    z_n, z, min_n, min_mean, max_n, max_mean, pad0, pad1 = hot
    z_n += 1.0
    z += (1.0 / z_n) * (x - z)
    # move the cut points
    if min_n == 0.0:
        min_n = z_n
        min_mean = z
    if max_n == 0.0:
        max_n = z_n
        max_mean = z
    log_drift_1 = params[_P_LOG_DRIFT_1]
    eps_z = _hoeffding(z_n, log_drift_1)
    if min_mean + _hoeffding(min_n, log_drift_1) >= z + eps_z:
        min_n = z_n
        min_mean = z
    if max_mean - _hoeffding(max_n, log_drift_1) <= z - eps_z:
        max_n = z_n
        max_mean = z
    if _departed(min_n, z - min_mean, z_n, params[_P_LOG_DRIFT_2]):
        drift = True
        warning = False
    else:
        drift = False
        warning = _departed(min_n, z - min_mean, z_n, params[_P_LOG_WARNING_2])
    # The decrease test only adds signals: a drift here can come with an increase warning.
    if params[_P_TWO_SIDED] != 0.0:
        if _departed(max_n, max_mean - z, z_n, params[_P_LOG_DRIFT_2]):
            drift = True
        elif _departed(max_n, max_mean - z, z_n, params[_P_LOG_WARNING_2]):
            warning = True
    return (z_n, z, min_n, min_mean, max_n, max_mean, pad0, pad1), drift, warning


class HDDM_A(Detector):
    """HDDM_A: drift when the running mean rises significantly above an earlier cut point.

    The input is a stream of bits, 1 for an error and 0 for a correct prediction. HDDM_A keeps
    the mean of everything since the last reset and a snapshot of that mean (the cut point)
    taken where the mean plus its Hoeffding bound was lowest. When the current mean exceeds the
    snapshot by more than a Hoeffding bound on the difference, at confidence
    ``drift_confidence``, drift is signalled; at ``warning_confidence``, a warning. With
    ``two_sided_test`` a second cut point, where the mean minus its bound was highest, also
    catches decreases.

    Values other than 0 and 1: any real value is averaged as it is, as in river. The bounds
    assume values in ``[0, 1]``; on a wider range they are proportionally too tight.

    :attr:`statistic` is the estimated increase of the mean since the cut point (with
    ``two_sided_test``, the larger of increase and decrease); the bound it is compared with
    depends on the counts, so :attr:`threshold` is None.

    Parameters
    ----------
    drift_confidence
        Confidence level of the drift test (the smaller, the more evidence is needed).
    warning_confidence
        Confidence level of the warning test.
    two_sided_test
        Also monitor decreases of the mean (by default only increases).

    Examples
    --------
    >>> import numpy as np
    >>> from driftwire.detectors import HDDM_A
    >>> rng = np.random.default_rng(42)
    >>> errors = np.concatenate([rng.random(1000) < 0.1, rng.random(1000) < 0.4])
    >>> hddm = HDDM_A()
    >>> drifts, warnings = hddm.update_many(errors, return_warnings=True)
    >>> drifts
    array([1053])
    >>> warnings
    array([1049, 1051, 1052])

    References
    ----------
    I. Frias-Blanco, J. del Campo-Avila, G. Ramos-Jimenez, R. Morales-Bueno, A. Ortiz-Diaz,
    Y. Caballero-Mota (2015). Online and Non-Parametric Drift Detection Methods Based on
    Hoeffding's Bounds. IEEE Transactions on Knowledge and Data Engineering 27(3), 810-823.
    """

    name = "hddm_a"
    reset_kernel = staticmethod(_reset)
    has_warning = True
    statistic_name = "mean_increase"

    def __init__(
        self,
        drift_confidence: float = 0.001,
        warning_confidence: float = 0.005,
        two_sided_test: bool = False,
    ):
        check_confidence("drift_confidence", drift_confidence)
        check_confidence("warning_confidence", warning_confidence)
        check_bool("two_sided_test", two_sided_test)
        super().__init__(
            drift_confidence=drift_confidence,
            warning_confidence=warning_confidence,
            two_sided_test=bool(two_sided_test),
        )

    def _param_vector(self) -> np.ndarray:
        p = self.params
        return np.array(
            [
                math.log(1.0 / p["drift_confidence"]),
                math.log(2.0 / p["drift_confidence"]),
                math.log(2.0 / p["warning_confidence"]),
                1.0 if p["two_sided_test"] else 0.0,
            ],
            dtype=np.float64,
        )

    def _state_size(self) -> int:
        return _SIZE

    @staticmethod
    def statistic_of(state, params) -> float:
        """The mean now minus the mean at the increase cut point (and the reverse, two-sided)."""
        stat = state[_Z_MEAN] - state[_MIN_MEAN]
        if params[_P_TWO_SIDED] != 0.0:
            stat = max(stat, state[_MAX_MEAN] - state[_Z_MEAN])
        return float(stat)
