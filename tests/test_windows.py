"""Window bank: each closed window's statistics against scipy and numpy on the same values."""

from __future__ import annotations

import json

import numpy as np
import pytest
from scipy import stats as sps

from driftwire.detectors import kll, window
from driftwire.detectors.kll import QuantileSketch
from driftwire.detectors.profile import categorical_profile, numeric_profile, quantile_edges
from driftwire.detectors.window import WindowBank, WindowSpec


def _feed(bank, group, series, values, times=None, present=None):
    """One event per value (all of ``group``); ``present[i]`` False leaves value i out (missing)."""
    n = values.size
    events = np.arange(n, dtype=np.int64)
    times = events * 1.0 if times is None else times
    keep = np.ones(n, bool) if present is None else present
    return bank.update(np.full(n, group, np.int64), times, events, np.full(int(keep.sum()), series, np.int64),
                       values[keep], events[keep])


def _bank_with_profile(reference, spec):
    bank = WindowBank()
    g = bank.add_group(spec, learn_reference=False)
    s = bank.add_series(g)
    bank.set_group_reference(g, {s: numeric_profile(reference)})
    return bank, g, s


def _shares(edges, values):
    return np.bincount(np.searchsorted(edges, values, side="right"), minlength=edges.size + 1) / values.size


def _assert_fine_statistics(got, bank, s, reference, win):
    """KS and Wasserstein of a window against scipy on the exact samples, within the bounds
    binning states: KS low by at most the reference's largest share in one fine bin;
    Wasserstein off by at most each inner fine bin's width times the window's and the
    reference's shares in it (summed: a loose bound, as the CDFs cross in few bins)."""
    edges = bank.references[s].fine.edges
    ref_share, win_share = _shares(edges, reference), _shares(edges, win)
    exact = sps.ks_2samp(reference, win).statistic
    assert -1e-12 <= exact - got["ks"] <= ref_share.max() + 1e-12
    assert ref_share.max() < 0.01  # the bound is tight: under 1% at these sizes
    en = reference.size * win.size / (reference.size + win.size)
    assert got["ks_pvalue"] == pytest.approx(sps.kstwobign.sf((en**0.5 + 0.12 + 0.11 / en**0.5) * got["ks"]), rel=1e-6)
    w1 = sps.wasserstein_distance(reference, win)
    bound = np.sum(np.diff(edges) * (ref_share[1:-1] + win_share[1:-1]))
    assert abs(got["wasserstein"] - w1) <= bound + 1e-12
    assert got["wasserstein"] == pytest.approx(w1, rel=0.02)  # in practice far inside the bound


def _psi(ref, win, edges, eps=1e-4):
    e = np.bincount(np.searchsorted(edges, ref, side="right"), minlength=edges.size + 1) / ref.size
    a = np.bincount(np.searchsorted(edges, win, side="right"), minlength=edges.size + 1) / win.size
    e, a = np.maximum(e, eps), np.maximum(a, eps)
    return float(np.sum((a - e) * np.log(a / e)))


def test_tumbling_windows_equal_scipy_and_numpy_on_exact_windows():
    rng = np.random.default_rng(1)
    reference = rng.normal(0, 1, 800)
    live = np.concatenate([rng.normal(0, 1, 1000), rng.normal(0.3, 1.5, 1000), rng.exponential(1, 1000)])
    present = rng.random(live.size) > 0.1
    bank, g, s = _bank_with_profile(reference, WindowSpec(size=1000))
    closes = _feed(bank, g, s, live, present=present)
    assert [c.number for c in closes] == [0, 1, 2]
    edges = np.array(numeric_profile(reference)["edges"])
    for c, chunk in zip(closes, np.split(np.arange(live.size), 3)):
        win = live[chunk][present[chunk]]
        got = c.series[s]
        assert c.events == 1000 and got["count"] == win.size
        assert got["missing_rate"] == pytest.approx(1 - win.size / 1000)
        _assert_fine_statistics(got, bank, s, reference, win)
        assert got["wasserstein_std"] == pytest.approx(got["wasserstein"] / reference.std(ddof=1), rel=1e-9)
        assert got["psi"] == pytest.approx(_psi(reference, win, edges), rel=1e-9)
        assert got["mean"] == pytest.approx(win.mean()) and got["std"] == pytest.approx(win.std(ddof=1))
        outside = np.mean((win < reference.min()) | (win > reference.max()))
        assert got["out_of_range_rate"] == pytest.approx(outside)
        assert c.start == chunk[0] and c.end == chunk[-1] and c.last_offset == chunk[-1]


def test_sliding_windows_are_the_last_slide_sub_windows_merged():
    rng = np.random.default_rng(2)
    reference = rng.normal(0, 1, 500)
    live = rng.normal(0, 1, 3000) + np.linspace(0, 1, 3000)
    bank, g, s = _bank_with_profile(reference, WindowSpec(size=1000, slide=4))
    closes = _feed(bank, g, s, live)
    # sub-windows of 250: the first full window ends with sub-window 3, then one per sub-window
    assert [c.number for c in closes] == list(range(3, 12))
    for c in closes:
        end = (c.number + 1) * 250
        win = live[end - 1000:end]
        assert c.events == 1000
        _assert_fine_statistics(c.series[s], bank, s, reference, win)


def test_time_windows_take_late_events_while_open_and_count_the_rest():
    reference = np.random.default_rng(3).normal(0, 1, 500)
    bank, g, s = _bank_with_profile(reference, WindowSpec(size=None, duration=10.0, lateness=1))
    times = np.array([1.0, 2.0, 12.0, 5.0, 25.0, 6.0, 31.0, 41.0])
    # 5.0 arrives in window [10, 20)'s time: window [0, 10) is still open (lateness 1) and takes it;
    # 6.0 arrives once [20, 30) has begun: [0, 10) has closed, so it is late.
    closes = _feed(bank, g, s, np.arange(times.size, dtype=float), times=times)
    assert [(c.number, c.events, c.late) for c in closes] == [(0, 3, 0), (1, 1, 1), (2, 1, 0)]
    assert closes[0].start == 1.0 and closes[0].end == 5.0


def test_a_group_without_profile_learns_its_reference_from_its_first_events():
    rng = np.random.default_rng(4)
    values = rng.lognormal(0, 1, 1500)
    bank = WindowBank(reference_k=1000)  # exact at this size
    g = bank.add_group(WindowSpec(size=500, reference_size=1000))
    s = bank.add_series(g)
    assert bank.learning(g)
    closes = _feed(bank, g, s, values)
    assert not bank.learning(g)
    ref = bank.references[s].profile
    first = values[:1000]
    assert ref["count"] == 1000 and ref["min"] == first.min() and ref["max"] == first.max()
    assert ref["edges"] == pytest.approx(quantile_edges(first, 10).tolist())
    assert ref["counts"] == numeric_profile(first)["counts"]
    assert [c.number for c in closes] == [0]
    _assert_fine_statistics(closes[0].series[s], bank, s, first, values[1000:])


@pytest.mark.parametrize("distribution", ["normal", "lognormal", "pareto", "integers"])
def test_fine_bins_keep_ks_and_wasserstein_within_their_bounds_on_large_windows(distribution):
    """A reference known through its KLL sketch (k=1000): KS within one fine bin's share plus
    the sketch's rank error (each side), whatever the distribution's tails or ties; Wasserstein
    within 2% of the distance to the sketch (which in a heavy tail is what the sketch keeps of
    the reference, not the reference)."""
    rng = np.random.default_rng(5)
    draw = {"normal": lambda n, shift: rng.normal(shift, 1.0 + shift, n),
            "lognormal": lambda n, shift: rng.lognormal(shift, 1.0, n),
            "pareto": lambda n, shift: rng.pareto(1.5 - shift, n),
            "integers": lambda n, shift: rng.poisson(3.0 + 10 * shift, n).astype(float)}[distribution]
    reference, live = draw(200_000, 0.0), draw(50_000, 0.1)
    bank, g, s = _bank_with_profile(reference, WindowSpec(size=50_000))
    (close,) = _feed(bank, g, s, live)
    got = close.series[s]
    exact = sps.ks_2samp(reference, live).statistic
    fine_share = _shares(bank.references[s].fine.edges, reference).max()
    assert -2 * kll.normalized_rank_error(1000) <= exact - got["ks"] <= fine_share + 2 * kll.normalized_rank_error(1000)
    items, weights = QuantileSketch.from_dict(bank.references[s].profile["sketch"]).sorted_view()
    assert got["wasserstein"] == pytest.approx(sps.wasserstein_distance(items, live, u_weights=weights), rel=0.02)
    if distribution == "normal":
        assert got["wasserstein"] == pytest.approx(sps.wasserstein_distance(reference, live), rel=0.02)
    assert got["psi"] == pytest.approx(_psi(reference, live, np.array(bank.references[s].profile["edges"])), rel=1e-9)


def test_a_restored_bank_continues_exactly():
    rng = np.random.default_rng(6)
    values = rng.normal(0, 1, 5000)
    spec = WindowSpec(size=1000, slide=2, reference_size=1000)

    def fresh():
        bank = WindowBank()
        g = bank.add_group(spec)
        return bank, g, bank.add_series(g)

    bank, g, s = fresh()
    whole = _feed(bank, g, s, values)
    bank, g, s = fresh()
    first = _feed(bank, g, s, values[:2700])
    restored = window.set_state(json.loads(json.dumps(window.get_state(bank))))
    rest = _feed(restored, g, s, values[2700:])
    assert [c.number for c in first + rest] == [c.number for c in whole]
    for a, b in zip(first + rest, whole):
        assert {k: v for k, v in a.series[s].items() if k != "top_bins"} == pytest.approx(
            {k: v for k, v in b.series[s].items() if k != "top_bins"})


def test_spec_is_checked():
    with pytest.raises(ValueError):
        WindowSpec(size=1000, duration=60.0)
    with pytest.raises(ValueError):
        WindowSpec(size=1000, slide=3)


def test_categorical_windows_equal_scipy_chi_square_and_jensen_shannon():
    from scipy.spatial.distance import jensenshannon

    rng = np.random.default_rng(7)
    names = np.array(["a", "b", "c", "d"])
    reference = rng.choice(names, 5000, p=[0.4, 0.3, 0.2, 0.1])
    live = np.concatenate([rng.choice(names, 1000, p=[0.4, 0.3, 0.2, 0.1]),
                           rng.choice(names, 1000, p=[0.25, 0.25, 0.25, 0.25])])
    bank = WindowBank()
    g = bank.add_group(WindowSpec(size=1000), learn_reference=False)
    s = bank.add_series(g, window.CATEGORICAL)
    bank.set_group_reference(g, {s: categorical_profile(reference.tolist())})
    closes = _feed(bank, g, s, bank.category_codes(s, live.tolist()))
    assert len(closes) == 2
    expected = np.array([np.sum(reference == n) for n in names])
    for c, win in zip(closes, np.split(live, 2)):
        got = c.series[s]
        actual = np.array([np.sum(win == n) for n in names])
        chi2, p, dof, _ = sps.chi2_contingency(np.vstack([expected, actual]))
        assert got["count"] == 1000 and got["unseen_rate"] == 0.0
        assert got["chi_square"] == pytest.approx(chi2, rel=1e-9)
        assert got["chi_square_pvalue"] == pytest.approx(p, rel=1e-6, abs=1e-300)
        assert got["chi_square_dof"] == dof
        js = jensenshannon(expected / expected.sum(), actual / actual.sum(), base=2)
        assert got["js_distance"] == pytest.approx(js, rel=1e-6)
    assert closes[0].series[s]["chi_square_pvalue"] > 0.01
    assert closes[1].series[s]["chi_square_pvalue"] < 1e-6
    assert closes[1].series[s]["top_categories"][0]["category"] == "d"  # 10% -> 25%


def test_a_category_never_seen_in_training_is_unseen_and_a_rare_one_is_other():
    # training: "a" and "b" are the top 2, "rare" is among the others
    profile = categorical_profile(["a"] * 600 + ["b"] * 390 + ["rare"] * 10, top_k=2)
    assert profile["other_categories"] == ["rare"]
    bank = WindowBank()
    g = bank.add_group(WindowSpec(size=100), learn_reference=False)
    s = bank.add_series(g, window.CATEGORICAL)
    bank.set_group_reference(g, {s: profile})
    live = ["a"] * 60 + ["b"] * 20 + ["rare"] * 8 + ["new"] * 12
    (close,) = _feed(bank, g, s, bank.category_codes(s, live))
    got = close.series[s]
    assert got["unseen_rate"] == pytest.approx(0.12)
    shares = {t["category"]: t["window"] for t in got["top_categories"]}
    assert shares["<unseen>"] == pytest.approx(0.12)
    # without the names of the others, a new category cannot be told from a rare one: other
    bank.set_group_reference(g, {s: {**profile, "other_categories": None}})
    (close,) = _feed(bank, g, s, bank.category_codes(s, live))
    assert close.series[s]["unseen_rate"] == 0.0


def test_a_categorical_reference_is_learnt_from_the_first_events():
    rng = np.random.default_rng(8)
    names = [f"c{i}" for i in range(30)]
    first = rng.choice(names, 1000).tolist()
    bank = WindowBank()
    g = bank.add_group(WindowSpec(size=500, reference_size=1000))
    s = bank.add_series(g, window.CATEGORICAL)
    _feed(bank, g, s, bank.category_codes(s, first))
    assert not bank.learning(g)
    learnt = bank.references[s].profile
    assert learnt == categorical_profile(first)  # same top 20, other count and other names
    later = ["c0"] * 250 + ["zzz"] * 250  # one known category and one never seen
    (close,) = _feed(bank, g, s, bank.category_codes(s, later))
    assert close.series[s]["unseen_rate"] == 0.5


def test_a_restored_bank_keeps_learning_categories():
    rng = np.random.default_rng(9)
    values = rng.choice(["x", "y", "z"], 3000).tolist()
    bank = WindowBank()
    g = bank.add_group(WindowSpec(size=500, reference_size=1000))
    s = bank.add_series(g, window.CATEGORICAL)
    _feed(bank, g, s, bank.category_codes(s, values[:600]))
    restored = window.set_state(json.loads(json.dumps(window.get_state(bank))))
    closes = _feed(restored, g, s, restored.category_codes(s, values[600:]))
    assert restored.references[s].profile == categorical_profile(values[:1000])
    assert len(closes) == 4 and all(c.series[s]["count"] == 500 for c in closes)


def test_a_learnt_reference_has_the_bins_its_spec_asks_for():
    values = np.random.default_rng(10).normal(0, 1, 2000)
    bank = WindowBank(reference_k=2000)
    g = bank.add_group(WindowSpec(size=500, reference_size=1000, reference_bins=4))
    s = bank.add_series(g)
    _feed(bank, g, s, values)
    assert bank.references[s].profile["edges"] == pytest.approx(quantile_edges(values[:1000], 4).tolist())
