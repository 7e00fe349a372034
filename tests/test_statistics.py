"""The two-sample drift statistics against scipy and against direct numpy formulas.

Tolerances, all relative unless said otherwise: Wasserstein 1e-9; KS statistic 1e-12 absolute
(scipy's exact method rounds it to its lattice); KS p-value the bounds stated in
``statistics.ks_2samp``; PSI, KL, chi-square statistic 1e-10; chi-square p-value and
``chi2_sf`` 1e-10 (where > 1e-300); ``kolmogorov_sf`` 1e-12; JS and Hellinger 1e-9 on the
distances and 1e-14 absolute on their squares (a square root turns rounding near 0 into 1e-8).
"""

from __future__ import annotations

import math
import warnings

import numba as nb
import numpy as np
import pytest
from scipy import stats
from scipy.spatial.distance import jensenshannon

from driftwire.detectors import statistics as ds

# scipy's exact KS p-value falls back to the asymptotic one, with a warning, when it cannot converge
pytestmark = pytest.mark.filterwarnings("ignore:ks_2samp:RuntimeWarning")


# -- inputs ---------------------------------------------------------------------------------


def sample_pair(rng, kind, n, m):
    """Two samples of sizes n and m: same law, shifted, rescaled, rounded (ties) or integer."""
    u = rng.normal(0.0, 1.0, n)
    if kind == "same":
        v = rng.normal(0.0, 1.0, m)
    elif kind == "shifted":
        v = rng.normal(rng.uniform(0.0, 3.0) / math.sqrt(min(n, m)), 1.0, m)
    elif kind == "scaled":
        v = rng.normal(0.0, rng.uniform(0.5, 2.0), m)
    elif kind == "ties":
        u = np.round(u, 1)
        v = np.round(rng.normal(0.2, 1.0, m), 1)
    elif kind == "integer":
        u = rng.integers(0, 10, n).astype(np.float64)
        v = (rng.integers(0, 10, m) + (rng.random(m) < 0.1)).astype(np.float64)
    elif kind == "offset":
        # large values, small spread: differences of the values lose digits
        u = 1e6 + rng.normal(0.0, 1.0, n)
        v = 1e6 + rng.normal(0.5, 3.0, m)
    else:
        raise ValueError(kind)
    return u, v


KINDS = ["same", "shifted", "scaled", "ties", "integer", "offset"]


def sample_cases(seed, count, low=10, high=20000, equal_every=5):
    """``count`` pairs with sizes log-uniform in [low, high]; every ``equal_every``-th of equal sizes."""
    rng = np.random.default_rng(seed)
    for k in range(count):
        n, m = np.exp(rng.uniform(math.log(low), math.log(high), 2)).astype(int)
        if k % equal_every == 0:
            m = n
        yield (*sample_pair(rng, KINDS[k % len(KINDS)], n, m), rng)


def histogram_cases(seed, count):
    """Pairs of count vectors over 1 to 60 bins: same or drifted proportions, sparse ones with
    empty bins, integer and float counts."""
    rng = np.random.default_rng(seed)
    for k in range(count):
        bins = int(rng.integers(1, 61))
        p = rng.dirichlet(np.full(bins, rng.choice([0.3, 1.0, 10.0])))
        q = p if k % 3 == 0 else rng.dirichlet(np.full(bins, 1.0))
        e = rng.multinomial(int(rng.integers(50, 100_000)), p)
        a = rng.multinomial(int(rng.integers(20, 100_000)), q)
        if e.sum() == 0 or a.sum() == 0:
            continue
        if k % 4 == 1:
            e = e * rng.uniform(0.1, 3.0)  # float counts (a weighted or decayed histogram)
        yield e, a


def clip(counts, epsilon):
    return np.maximum(counts / counts.sum(), epsilon)


# -- special functions ----------------------------------------------------------------------


def test_chi2_sf_matches_scipy():
    xs = np.concatenate([np.geomspace(1e-6, 3000.0, 300), np.linspace(0.0, 400.0, 201)])
    dofs = [*range(1, 201), 0.5, 2.5, 7.3, 123.4]
    worst = 0.0
    for dof in dofs:
        grid = np.concatenate([xs, [dof - 1.0, dof, dof + 1.0, dof + 2.0, 2.0 * dof]])
        ref = stats.chi2.sf(grid, dof)
        got = np.array([ds.chi2_sf(x, float(dof)) for x in grid])
        keep = ref > 1e-300
        assert np.all(got[~keep] < 1e-290)
        worst = max(worst, np.max(np.abs(got[keep] - ref[keep]) / ref[keep]))
    assert worst < 1e-10


def test_chi2_sf_limits():
    assert ds.chi2_sf(0.0, 3.0) == 1.0
    assert ds.chi2_sf(-1.0, 3.0) == 1.0
    assert ds.chi2_sf(math.inf, 3.0) == 0.0
    assert math.isnan(ds.chi2_sf(1.0, 0.0))
    assert math.isnan(ds.chi2_sf(math.nan, 2.0))
    assert ds.gamma_q(1.0, 2.0) == pytest.approx(math.exp(-2.0), rel=1e-15)


def test_kolmogorov_sf_matches_scipy():
    lam = np.concatenate([np.linspace(0.0, 12.0, 6001), np.geomspace(1e-3, 30.0, 500)])
    ref = stats.kstwobign.sf(lam)
    got = np.array([ds.kolmogorov_sf(x) for x in lam])
    keep = ref > 1e-300
    np.testing.assert_allclose(got[keep], ref[keep], rtol=1e-12, atol=0.0)
    assert np.all(got[~keep] < 1e-290)
    assert ds.kolmogorov_sf(0.0) == 1.0
    assert ds.kolmogorov_sf(-1.0) == 1.0
    assert ds.kolmogorov_sf(math.inf) == 0.0


# -- Wasserstein ----------------------------------------------------------------------------


def test_wasserstein_plain_matches_scipy():
    for u, v, _ in sample_cases(1, 240):
        ref = stats.wasserstein_distance(u, v)
        got = ds.wasserstein(u, None, v, None)
        assert got == pytest.approx(ref, rel=1e-9, abs=1e-300), (len(u), len(v))


def test_wasserstein_weighted_matches_scipy():
    for k, (u, v, rng) in enumerate(sample_cases(2, 240)):
        if k % 2:
            uw, vw = rng.uniform(0.05, 5.0, u.size), rng.uniform(0.05, 5.0, v.size)
        else:
            # a KLL sketch's weights: powers of two
            uw, vw = 2.0 ** rng.integers(0, 12, u.size), 2.0 ** rng.integers(0, 12, v.size)
        ref = stats.wasserstein_distance(u, v, uw, vw)
        got = ds.wasserstein(u, uw, v, vw)
        assert got == pytest.approx(ref, rel=1e-9), (len(u), len(v))


def test_wasserstein_kernel_on_sorted_input_equals_wrapper():
    rng = np.random.default_rng(3)
    u, v = rng.normal(size=300), rng.exponential(size=200)
    uw, vw = rng.uniform(0.5, 2.0, 300), rng.uniform(0.5, 2.0, 200)
    iu, iv = np.argsort(u), np.argsort(v)
    kernel = ds.wasserstein_kernel(u[iu], uw[iu], v[iv], vw[iv])
    assert ds.wasserstein(u, uw, v, vw) == kernel
    assert kernel == pytest.approx(stats.wasserstein_distance(u, v, uw, vw), rel=1e-12)


def test_wasserstein_shift_and_disjoint_supports():
    u = np.array([0.0, 1.0, 2.0])
    assert ds.wasserstein(u, None, u + 5.0, None) == pytest.approx(5.0, rel=1e-15)
    assert ds.wasserstein([0.0], None, [3.0], None) == 3.0


# -- Kolmogorov-Smirnov ---------------------------------------------------------------------


def test_ks_statistic_matches_scipy():
    for u, v, _ in sample_cases(4, 300):
        # the exact method rounds the statistic to h / lcm(n, m); the asymptotic one does not
        method = "exact" if max(u.size, v.size) <= 2000 else "asymp"
        ref = stats.ks_2samp(u, v, method=method).statistic
        assert abs(ds.ks_2samp(u, None, v, None).statistic - ref) <= 1e-12, (len(u), len(v), method)


def test_ks_weighted_by_repetition_matches_plain_samples():
    for u, v, _ in sample_cases(5, 150, high=5000):
        u = np.round(u, 1)  # plenty of repeated values
        uu, uc = np.unique(u, return_counts=True)
        vv, vc = np.unique(v, return_counts=True)
        weighted = ds.ks_2samp(uu, uc, vv, vc)
        plain = ds.ks_2samp(u, None, v, None)
        assert abs(weighted.statistic - stats.ks_2samp(u, v, method="asymp").statistic) <= 1e-12
        assert weighted.statistic == plain.statistic
        assert weighted.p_value == pytest.approx(plain.p_value, rel=1e-12, abs=1e-300)
        # a sketch's weights, normalized, with the true sizes passed on
        scaled = ds.ks_2samp(uu, uc / uc.sum(), vv, vc / vc.sum(), n=u.size, m=v.size)
        assert abs(scaled.statistic - plain.statistic) <= 1e-12
        assert scaled.p_value == pytest.approx(plain.p_value, rel=1e-9, abs=1e-300)


def stated_bound(en, p_ours, p_ref, scale, tail_scale):
    """The agreement stated in ``ks_2samp``'s docstring: ``scale / sqrt(en)``, and
    ``tail_scale / sqrt(en)`` where either p-value is below 0.05."""
    return (tail_scale if min(p_ours, p_ref) < 0.05 else scale) / math.sqrt(en)


def test_ks_pvalue_matches_scipy_asymptotic():
    # sizes 10 to 20,000 here and 5 to 100 below, where the differences are largest
    cases = [*sample_cases(6, 300), *sample_cases(7, 200, low=5, high=100, equal_every=2)]
    for u, v, _ in cases:
        n, m = u.size, v.size
        en = n * m / (n + m)
        p = ds.ks_2samp(u, None, v, None).p_value
        ref = stats.ks_2samp(u, v, method="asymp").pvalue
        assert abs(p - ref) <= stated_bound(en, p, ref, 0.21, 0.093), (n, m, p, ref)


def test_ks_pvalue_matches_scipy_exact():
    cases = [*sample_cases(8, 250, high=3000), *sample_cases(9, 200, low=5, high=100, equal_every=2)]
    for u, v, _ in cases:
        n, m = u.size, v.size
        en = n * m / (n + m)
        p = ds.ks_2samp(u, None, v, None).p_value
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", RuntimeWarning)
            ref = stats.ks_2samp(u, v, method="exact").pvalue
        assert abs(p - ref) <= stated_bound(en, p, ref, 0.34, 0.075), (n, m, p, ref)


def test_ks_pvalue_formula():
    d, n, m = 0.1, 300.0, 200.0
    en = n * m / (n + m)
    lam = (math.sqrt(en) + 0.12 + 0.11 / math.sqrt(en)) * d
    assert ds.ks_pvalue(d, n, m) == pytest.approx(stats.kstwobign.sf(lam), rel=1e-12)
    assert math.isnan(ds.ks_pvalue(d, 0.0, m))


def test_ks_identical_and_disjoint():
    u = np.array([3.0, 1.0, 2.0, 2.0])
    assert ds.ks_2samp(u, None, u, None) == (0.0, 1.0)
    d, p = ds.ks_2samp(np.arange(50.0), None, np.arange(50.0) + 100.0, None)
    assert d == 1.0
    assert p == pytest.approx(stats.kstwobign.sf(math.sqrt(25) + 0.12 + 0.11 / math.sqrt(25)), rel=1e-12)
    assert p < 1e-9


def test_unsorted_samples_are_sorted_with_their_weights():
    rng = np.random.default_rng(10)
    u, v = rng.normal(size=100), rng.normal(0.5, 1.0, 80)
    uw, vw = rng.uniform(0.1, 2.0, 100), rng.uniform(0.1, 2.0, 80)
    iu, iv = np.argsort(u), np.argsort(v)
    assert ds.ks_2samp(u, uw, v, vw) == ds.ks_2samp(u[iu], uw[iu], v[iv], vw[iv])
    assert ds.wasserstein(u, uw, v, vw) == ds.wasserstein(u[iu], uw[iu], v[iv], vw[iv])


# -- histograms -----------------------------------------------------------------------------


def numpy_psi_terms(e, a, epsilon):
    pe, pa = clip(e, epsilon), clip(a, epsilon)
    return (pa - pe) * np.log(pa / pe)


def test_psi_matches_numpy_formula():
    for e, a in histogram_cases(11, 400):
        for epsilon in (1e-4, 1e-3, 1e-6):
            terms = numpy_psi_terms(e, a, epsilon)
            got = ds.psi_contributions(e, a, epsilon)
            np.testing.assert_allclose(got, terms, rtol=1e-10, atol=1e-300)
            assert ds.psi(e, a, epsilon) == pytest.approx(terms.sum(), rel=1e-10, abs=1e-300)
            assert np.all(got >= 0.0)


def test_psi_is_symmetric_sum_of_kl_divergences_without_empty_bins():
    rng = np.random.default_rng(12)
    for _ in range(50):
        e, a = rng.integers(1, 1000, 20), rng.integers(1, 1000, 20)
        both = ds.kl_divergence(e, a, 0.0) + ds.kl_divergence(a, e, 0.0)
        assert ds.psi(e, a, 0.0) == pytest.approx(both, rel=1e-10)
        assert ds.psi(e, a) == pytest.approx(ds.psi(a, e), rel=1e-12)


def test_kl_divergence_matches_scipy_entropy():
    for e, a in histogram_cases(13, 400):
        for epsilon in (1e-4, 1e-2):
            ref = stats.entropy(clip(a, epsilon), clip(e, epsilon))
            assert ds.kl_divergence(e, a, epsilon) == pytest.approx(ref, rel=1e-10, abs=1e-15)
        if np.all(e > 0):
            # no floor: bins empty in the window contribute 0, as in scipy
            assert ds.kl_divergence(e, a, 0.0) == pytest.approx(stats.entropy(a, e), rel=1e-10, abs=1e-15)


def test_kl_divergence_direction_and_unbounded_cases():
    e, a = np.array([50, 50, 0]), np.array([40, 40, 20])
    assert ds.kl_divergence(e, a, 0.0) == math.inf  # the window has mass where the reference has none
    assert ds.kl_divergence(a, e, 0.0) == pytest.approx(stats.entropy(e, a), rel=1e-12)
    assert ds.psi(e, a, 0.0) == math.inf
    assert math.isfinite(ds.kl_divergence(e, a))


def assert_same_distance(got, ref):
    """A distance in [0, 1] equal to its reference: compared on its square too, where the square
    root turns rounding near 0 into errors of about 1e-8."""
    assert got**2 == pytest.approx(ref**2, rel=1e-9, abs=1e-14)
    if ref > 1e-6:
        assert got == pytest.approx(ref, rel=1e-9)
    assert 0.0 <= got <= 1.0


def test_js_distance_matches_scipy():
    for e, a in histogram_cases(14, 400):
        assert_same_distance(ds.js_distance(e, a), jensenshannon(a / a.sum(), e / e.sum(), base=2))


def numpy_hellinger(e, a):
    p, q = a / a.sum(), e / e.sum()
    return math.sqrt(max(0.0, 1.0 - np.sum(np.sqrt(p * q))))


def test_hellinger_matches_numpy_formula():
    for e, a in histogram_cases(15, 400):
        assert_same_distance(ds.hellinger(e, a), numpy_hellinger(e, a))


def scipy_chi_square(e, a):
    """``chi2_contingency`` on the table without its empty columns (it rejects zero expected counts)."""
    table = np.vstack([e, a]).astype(np.float64)
    return stats.chi2_contingency(table[:, table.sum(axis=0) > 0])


def check_chi_square(e, a):
    ref = scipy_chi_square(e, a)
    got = ds.chi_square(e, a)
    assert got.dof == ref.dof
    assert got.statistic == pytest.approx(ref.statistic, rel=1e-10, abs=1e-12)
    assert got.p_value == pytest.approx(ref.pvalue, rel=1e-10 if ref.pvalue > 1e-300 else 1.0, abs=1e-300)


def test_chi_square_matches_scipy():
    for e, a in histogram_cases(16, 400):
        check_chi_square(e, a)


def test_chi_square_one_degree_of_freedom_uses_yates():
    rng = np.random.default_rng(17)
    for _ in range(200):
        size = int(rng.choice([5, 30, 1000]))
        e = rng.multinomial(size, [0.5, 0.5])
        a = rng.multinomial(int(rng.integers(1, 2 * size)), [0.3, 0.7])
        if e.sum() and a.sum():
            check_chi_square(e, a)
    # with |O - E| < 0.5 the correction stops at E: the statistic is 0
    assert ds.chi_square([10, 11], [11, 10]).statistic == 0.0
    check_chi_square(np.array([10, 11]), np.array([11, 10]))


def test_chi_square_with_empty_columns():
    check_chi_square(np.array([10, 0, 25, 0, 7]), np.array([12, 0, 20, 0, 15]))
    check_chi_square(np.array([0, 30, 0, 12]), np.array([0, 18, 0, 40]))  # dof 1 after dropping
    check_chi_square(np.array([30, 0, 5]), np.array([0, 20, 5]))  # a column empty in one row only
    assert ds.chi_square([0, 30, 0], [0, 18, 0]) == (0.0, 1.0, 0)


# -- edge cases -----------------------------------------------------------------------------


HISTOGRAM_WRAPPERS = [ds.psi, ds.psi_contributions, ds.kl_divergence, ds.js_distance, ds.hellinger, ds.chi_square]


@pytest.mark.parametrize("counts", [[5, 0, 7, 12], [3.5, 1e-3, 0.0, 2.0], [1000]])
def test_identical_histograms_give_zero(counts):
    c = np.array(counts)
    for scale in (1, 3):
        assert ds.psi(c, scale * c) == pytest.approx(0.0, abs=1e-15)
        assert ds.kl_divergence(c, scale * c) == pytest.approx(0.0, abs=1e-15)
        assert ds.js_distance(c, scale * c) == pytest.approx(0.0, abs=1e-7)
        assert ds.hellinger(c, scale * c) == pytest.approx(0.0, abs=1e-7)
    assert ds.psi(c, c) == 0.0
    assert ds.kl_divergence(c, c) == 0.0
    assert ds.js_distance(c, c) == 0.0
    assert ds.hellinger(c, c) == 0.0
    statistic, p_value, dof = ds.chi_square(c, c)
    assert (statistic, p_value) == (0.0, 1.0)
    assert dof == np.count_nonzero(c) - 1


def test_single_bin_histograms():
    e, a = np.array([40]), np.array([7])
    assert ds.psi(e, a) == 0.0
    assert ds.psi_contributions(e, a).tolist() == [0.0]
    assert ds.kl_divergence(e, a) == 0.0
    assert ds.js_distance(e, a) == 0.0
    assert ds.hellinger(e, a) == 0.0
    assert ds.chi_square(e, a) == (0.0, 1.0, 0)
    check_chi_square(e, a)


def test_disjoint_histograms():
    e, a = np.array([10, 20, 0, 0]), np.array([0, 0, 5, 5])
    assert ds.js_distance(e, a) == 1.0
    assert ds.hellinger(e, a) == 1.0
    eps = 1e-4
    assert ds.psi(e, a, eps) == pytest.approx(numpy_psi_terms(e, a, eps).sum(), rel=1e-12)
    assert ds.kl_divergence(e, a, eps) == pytest.approx(stats.entropy(clip(a, eps), clip(e, eps)), rel=1e-12)
    check_chi_square(e, a)


@pytest.mark.parametrize(
    "expected, actual",
    [
        ([], []),  # no bins
        ([0, 0, 0], [1, 2, 3]),  # an empty reference
        ([1, 2, 3], [0, 0, 0]),  # an empty window
        ([1, 2], [1, 2, 3]),  # different bins
        ([1, -1, 3], [1, 2, 3]),
        ([1, np.nan, 3], [1, 2, 3]),
        ([[1, 2]], [[1, 2]]),
    ],
)
def test_invalid_histograms_raise(expected, actual):
    for statistic in HISTOGRAM_WRAPPERS:
        with pytest.raises(ValueError):
            statistic(expected, actual)


def test_invalid_epsilon_raises():
    with pytest.raises(ValueError):
        ds.psi([1, 2], [2, 1], epsilon=-1e-4)
    with pytest.raises(ValueError):
        ds.kl_divergence([1, 2], [2, 1], epsilon=math.nan)


@pytest.mark.parametrize(
    "u, uw, v, vw",
    [
        ([], None, [1.0], None),  # no values
        ([1.0], None, [], None),
        ([1.0, 2.0], [0.0, 0.0], [1.0], None),  # weighs nothing
        ([1.0, 2.0], [1.0, -1.0], [1.0], None),
        ([1.0, 2.0], [1.0], [1.0], None),  # one weight short
        ([1.0, np.nan], None, [1.0], None),
        ([1.0, np.inf], None, [1.0], None),
    ],
)
def test_invalid_samples_raise(u, uw, v, vw):
    with pytest.raises(ValueError):
        ds.wasserstein(u, uw, v, vw)
    with pytest.raises(ValueError):
        ds.ks_2samp(u, uw, v, vw)


def test_invalid_sample_sizes_raise():
    with pytest.raises(ValueError):
        ds.ks_2samp([1.0], None, [2.0], None, n=0)
    with pytest.raises(ValueError):
        ds.ks_2samp([1.0], None, [2.0], None, m=math.inf)


def test_kernels_return_nan_on_empty_input():
    empty, one = np.empty(0), np.ones(1)
    zero = np.zeros(3)
    three = np.ones(3)
    for kernel in (ds.js_distance_kernel, ds.hellinger_kernel):
        assert math.isnan(kernel(empty, empty))
        assert math.isnan(kernel(zero, three))
    assert math.isnan(ds.psi_kernel(zero, three, 1e-4))
    assert math.isnan(ds.kl_divergence_kernel(three, zero, 1e-4))
    assert np.all(np.isnan(ds.psi_contributions_kernel(zero, three, 1e-4)))
    statistic, p_value, dof = ds.chi_square_kernel(zero, three)
    assert math.isnan(statistic) and math.isnan(p_value) and dof == 2
    assert math.isnan(ds.wasserstein_kernel(empty, empty, one, one))
    d, p = ds.ks_2samp_kernel(one, one, empty, empty, 1.0, 1.0)
    assert math.isnan(d) and math.isnan(p)


# -- from other numba code ------------------------------------------------------------------


@nb.njit(cache=True)
def _all_statistics(expected, actual, u, uw, v, vw):
    out = np.empty(11)
    out[0] = ds.psi_kernel(expected, actual, 1e-4)
    out[1] = ds.kl_divergence_kernel(expected, actual, 1e-4)
    out[2] = ds.js_distance_kernel(expected, actual)
    out[3] = ds.hellinger_kernel(expected, actual)
    statistic, p_value, dof = ds.chi_square_kernel(expected, actual)
    out[4] = statistic
    out[5] = p_value
    out[6] = dof
    out[7] = ds.wasserstein_kernel(u, uw, v, vw)
    d, p = ds.ks_2samp_kernel(u, uw, v, vw, 1000.0, 800.0)
    out[8] = d
    out[9] = p
    out[10] = ds.psi_contributions_kernel(expected, actual, 1e-4).max() + ds.chi2_sf(3.0, 2.0)
    return out


def test_kernels_compose_in_numba():
    rng = np.random.default_rng(18)
    e, a = rng.integers(0, 100, 12).astype(np.float64), rng.integers(0, 100, 12).astype(np.float64)
    u, v = np.sort(rng.normal(size=50)), np.sort(rng.normal(size=40))
    uw, vw = rng.uniform(1.0, 3.0, 50), rng.uniform(1.0, 3.0, 40)
    got = _all_statistics(e, a, u, uw, v, vw)
    chi = ds.chi_square(e, a)
    assert got.tolist() == [
        ds.psi(e, a),
        ds.kl_divergence(e, a),
        ds.js_distance(e, a),
        ds.hellinger(e, a),
        chi.statistic,
        chi.p_value,
        chi.dof,
        ds.wasserstein(u, uw, v, vw),
        *ds.ks_2samp(u, uw, v, vw, n=1000, m=800),
        ds.psi_contributions(e, a).max() + ds.chi2_sf(3.0, 2.0),
    ]
