"""Fine bins: the constant-time lookup against numpy, and the window statistics they give
against scipy on exact samples, within the bounds the module states."""

from __future__ import annotations

import numpy as np
import pytest
from scipy import stats as sps

from driftwire.detectors.binning import RESOLUTION, FineBins, quantiles

DISTRIBUTIONS = {
    "normal": lambda rng, n, shift: rng.normal(shift, 1.0, n),
    "lognormal": lambda rng, n, shift: rng.lognormal(shift, 1.0, n),
    "pareto": lambda rng, n, shift: rng.pareto(1.5 - shift, n),
    "integers": lambda rng, n, shift: rng.poisson(3.0 + 10 * shift, n).astype(float),
    "two points": lambda rng, n, shift: rng.choice([0.0, 1.0 + shift], n),
    "far from zero": lambda rng, n, shift: 1.7e9 + rng.normal(shift * 1e-3, 1e-3, n),
}


def _bins(reference: np.ndarray, coarse=()) -> FineBins:
    reference = np.sort(reference)
    return FineBins.from_sample(reference, np.ones(reference.size), np.asarray(coarse, dtype=float))


def _shares(bins: FineBins, values: np.ndarray) -> np.ndarray:
    """Share of ``values`` in each fine bin."""
    return np.bincount(bins.locate(values), minlength=bins.size) / values.size


def _reference_and_window(distribution: str, seed: int) -> tuple[np.ndarray, np.ndarray, FineBins]:
    """20,000 values of ``distribution``, a window of 5,000 shifted by 0.1, the reference's bins."""
    rng = np.random.default_rng(seed)
    draw = DISTRIBUTIONS[distribution]
    reference, window = draw(rng, 20_000, 0.0), draw(rng, 5_000, 0.1)
    return reference, window, _bins(reference)


@pytest.mark.parametrize("distribution", DISTRIBUTIONS)
def test_a_value_lands_in_the_bin_numpy_searchsorted_gives(distribution):
    rng = np.random.default_rng(1)
    draw = DISTRIBUTIONS[distribution]
    bins = _bins(draw(rng, 20_000, 0.0), coarse=[0.5, 2.0])
    edges = bins.edges
    # values of the reference's kind, far outside it, on and just beside every edge and every
    # cell of the lookup table, infinities
    cells = bins.start + np.arange(bins.table.size - 1) / bins.scale if bins.scale else np.zeros(1)
    near = np.concatenate([edges, cells])
    values = np.concatenate([draw(rng, 20_000, 0.3), rng.normal(0, 1e6, 100), near, np.nextafter(near, -np.inf),
                             np.nextafter(near, np.inf), [np.inf, -np.inf, 1e308, -1e308]])
    assert np.array_equal(bins.locate(values), np.searchsorted(edges, values, side="right"))
    assert bins.locate([np.nan]).tolist() == [0]


def test_the_fine_edges_hold_the_coarse_edges_and_the_range():
    reference = np.random.default_rng(2).normal(0, 1, 5000)
    bins = _bins(reference, coarse=[-0.5, 0.25])
    assert {-0.5, 0.25, reference.min(), np.nextafter(reference.max(), np.inf)} <= set(bins.edges.tolist())
    share = _shares(bins, reference)
    assert share[0] == 0 and share[-1] == 0  # nothing of the reference beyond its range
    assert share.max() <= 1.0 / RESOLUTION + 2.0 / reference.size


@pytest.mark.parametrize("distribution", DISTRIBUTIONS)
def test_ks_is_low_by_at_most_the_references_largest_share_in_one_fine_bin(distribution):
    reference, window, bins = _reference_and_window(distribution, 3)
    counts = np.bincount(bins.locate(window), minlength=bins.size)
    exact = sps.ks_2samp(reference, window).statistic
    assert -1e-12 <= exact - bins.ks(counts) <= _shares(bins, reference).max() + 1e-12


@pytest.mark.parametrize("distribution", DISTRIBUTIONS)
def test_wasserstein_is_within_its_bound_and_two_percent_of_scipy(distribution):
    reference, window, bins = _reference_and_window(distribution, 4)
    exact = sps.wasserstein_distance(reference, window)
    got = bins.wasserstein(window)
    ref_share, win_share = _shares(bins, reference), _shares(bins, window)
    bound = np.sum(np.diff(bins.edges) * (ref_share[1:-1] + win_share[1:-1]))
    assert abs(got - exact) <= bound + 1e-12
    assert got == pytest.approx(exact, rel=0.02)


def test_a_window_beyond_the_reference_is_measured_exactly_there():
    reference = np.random.default_rng(5).uniform(0, 1, 1000)
    window = np.array([5.0, 7.0, -3.0])
    bins = _bins(reference)
    # the distance lies almost all beyond the reference's range; inside, only the two bins where
    # the reference's CDF crosses the window's (1/3, 2/3) are approximated
    assert bins.wasserstein(window) == pytest.approx(sps.wasserstein_distance(reference, window), rel=1e-6)
    assert bins.ks(np.bincount(bins.locate(window), minlength=bins.size)) == pytest.approx(
        sps.ks_2samp(reference, window).statistic, abs=1e-12)  # 2/3: the gap between 1 and 5


@pytest.mark.parametrize("distribution", DISTRIBUTIONS)
@pytest.mark.parametrize("shift", [0.0, 0.3])
def test_window_quantiles_lie_in_the_bins_that_hold_their_ranks_on_a_million_values(distribution, shift):
    """The documented bound against numpy.quantile on 10^6 values: each quantile lies between
    the lower bound of the bin holding rank floor(q (n-1)) and the upper bound of the bin
    holding rank ceil(q (n-1)); for a window like its reference that span holds at most about
    two fine bins' share of the window."""
    rng = np.random.default_rng(6)
    draw = DISTRIBUTIONS[distribution]
    bins = _bins(draw(rng, 100_000, 0.0))
    window = np.sort(draw(rng, 1_000_000, shift))
    counts = np.bincount(bins.locate(window), minlength=bins.size)
    q = np.linspace(0.0, 1.0, 201)
    got = quantiles(bins.edges, counts, window[0], window[-1], q)
    exact = np.quantile(window, q)
    rank = q * (window.size - 1)
    bounds = np.concatenate(([window[0]], np.clip(bins.edges, window[0], window[-1]), [window[-1]]))
    lo = bounds[bins.locate(window[np.floor(rank).astype(int)])]
    hi = bounds[bins.locate(window[np.ceil(rank).astype(int)]) + 1]
    assert np.all((lo <= exact) & (exact <= hi))
    assert np.all((lo <= got) & (got <= hi))
    if shift == 0.0 and distribution not in ("integers", "two points"):
        between = np.abs(np.searchsorted(window, got) - np.searchsorted(window, exact)) / window.size
        assert between.max() <= 2.0 / RESOLUTION + 0.002
