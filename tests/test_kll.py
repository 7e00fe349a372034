"""KLL sketch: exact while small, within its documented rank error on 10**6 values, merges,
deterministic rows and checkpoints, a row width that always suffices."""

from __future__ import annotations

import json
import math

import numpy as np
import pytest

from driftwire.detectors import kll
from driftwire.detectors.kll import QuantileSketch, SketchBank, normalized_rank_error, row_width

N = 10**6
QS = np.arange(1, 1000) / 1000  # 999 quantiles


def make_values(kind: str, n: int = N, seed: int = 0) -> np.ndarray:
    rng = np.random.default_rng(seed)
    if kind == "normal":
        return rng.normal(size=n)
    if kind == "lognormal":
        return rng.lognormal(0.0, 2.0, size=n)
    if kind == "uniform":
        return rng.uniform(-1.0, 1.0, size=n)
    if kind == "exponential":
        return rng.exponential(size=n)
    if kind == "ties":
        return rng.integers(0, 10, size=n).astype(np.float64)
    if kind == "ascending":
        return np.sort(rng.normal(size=n))
    if kind == "descending":
        return np.sort(rng.normal(size=n))[::-1].copy()
    raise ValueError(kind)


KINDS = ["normal", "lognormal", "uniform", "exponential", "ties", "ascending", "descending"]


def quantile_errors(sorted_data: np.ndarray, qs: np.ndarray, answers: np.ndarray) -> np.ndarray:
    """Distance from each q to the true normalized rank interval [< v, <= v] of its answer v."""
    n = sorted_data.shape[0]
    below = np.searchsorted(sorted_data, answers, side="left") / n
    at_most = np.searchsorted(sorted_data, answers, side="right") / n
    return np.maximum(np.maximum(below - qs, qs - at_most), 0.0)


def cdf_errors(sorted_data: np.ndarray, sketch: QuantileSketch) -> np.ndarray:
    """|sketch CDF - empirical CDF| at the data's own quantiles (the distinct values, if few)."""
    n = sorted_data.shape[0]
    xs = np.unique(sorted_data[(QS * n).astype(np.int64)])
    exact = np.searchsorted(sorted_data, xs, side="right") / n
    return np.abs(sketch.cdf(xs) - exact)


def assert_within_bound(sketch: QuantileSketch, sorted_data: np.ndarray) -> None:
    bound = normalized_rank_error(sketch.k)
    q_err = quantile_errors(sorted_data, QS, sketch.quantile(QS))
    assert q_err.max() <= bound, f"quantile rank error {q_err.max():.5f} > {bound:.5f} at q={QS[q_err.argmax()]}"
    c_err = cdf_errors(sorted_data, sketch)
    assert c_err.max() <= bound, f"cdf error {c_err.max():.5f} > {bound:.5f}"


def check_invariants(sketch_row: np.ndarray, k: int) -> None:
    """Weights sum to n, the items fit the capacity of the levels in use and that fits the row."""
    items, weights = kll.sorted_view(sketch_row)
    assert weights.sum() == sketch_row[kll._N]
    num_levels = int(sketch_row[kll._NUM_LEVELS])
    retained = sketch_row.shape[0] - int(sketch_row[kll._LEVELS])
    assert retained == items.shape[0]
    assert retained <= sketch_row[kll._CAPACITY] == sum(kll.level_capacities(k, num_levels))
    assert sketch_row[kll._CAPACITY] <= row_width(k) - kll._ITEMS
    assert np.all(np.diff(sketch_row[kll._LEVELS : kll._LEVELS + num_levels + 1]) >= 0)


# -- exact while n <= k ------------------------------------------------------------------------


@pytest.mark.parametrize("k, n", [(200, 1), (200, 2), (200, 37), (200, 200), (8, 8), (50, 50)])
def test_exact_while_n_at_most_k(k, n):
    rng = np.random.default_rng(n)
    values = np.round(rng.normal(size=n), 1)  # ties included
    sketch = QuantileSketch(k=k)
    sketch.update_many(values)
    items, weights = sketch.sorted_view()
    np.testing.assert_array_equal(items, np.sort(values))
    np.testing.assert_array_equal(weights, np.ones(n))
    qs = np.concatenate([[0.0, 1.0], np.linspace(0.0, 1.0, 1001), rng.uniform(size=200)])
    np.testing.assert_array_equal(sketch.quantile(qs), np.quantile(values, qs, method="inverted_cdf"))
    for q in (0.0, 0.1, 0.25, 0.5, 1.0):
        assert sketch.quantile(q) == np.quantile(values, q, method="inverted_cdf")
    xs = np.concatenate([values, values + 0.05, [-np.inf, np.inf]])
    exact = np.searchsorted(np.sort(values), xs, side="right") / n
    np.testing.assert_array_equal(sketch.cdf(xs), exact)
    assert sketch.min == values.min() and sketch.max == values.max() and len(sketch) == n


def test_compaction_starts_after_k_values():
    sketch = QuantileSketch(k=200)
    sketch.update_many(np.arange(200.0))
    assert sketch.num_retained == 200
    sketch.update(200.0)
    assert sketch.num_retained < 201
    items, weights = sketch.sorted_view()
    assert weights.sum() == 201 and set(weights.tolist()) == {1.0, 2.0}
    assert sketch.quantile(0.0) == 0.0 and sketch.quantile(1.0) == 200.0


def test_empty_sketch():
    sketch = QuantileSketch()
    assert len(sketch) == 0 and math.isnan(sketch.min) and math.isnan(sketch.max)
    assert math.isnan(sketch.quantile(0.5)) and math.isnan(sketch.cdf(0.0))
    assert np.isnan(sketch.quantile([0.0, 1.0])).all()
    items, weights = sketch.sorted_view()
    assert items.shape == weights.shape == (0,)


# -- rank error --------------------------------------------------------------------------------


@pytest.mark.parametrize("kind", KINDS)
def test_rank_error_within_bound(kind):
    values = make_values(kind, seed=KINDS.index(kind))
    sketch = QuantileSketch(k=200, seed=11)
    assert sketch.update_many(values) == N
    sorted_data = np.sort(values)
    assert_within_bound(sketch, sorted_data)
    assert sketch.min == sorted_data[0] and sketch.max == sorted_data[-1] and len(sketch) == N
    assert sketch.quantile(0.0) == sorted_data[0] and sketch.quantile(1.0) == sorted_data[-1]
    check_invariants(sketch._row, 200)


@pytest.mark.parametrize("k", [50, 400])
def test_rank_error_other_k(k):
    values = make_values("lognormal", seed=k)
    sketch = QuantileSketch(k=k, seed=3)
    sketch.update_many(values)
    assert_within_bound(sketch, np.sort(values))


def test_quantile_scalar_and_array_agree():
    sketch = QuantileSketch(k=64)
    sketch.update_many(make_values("exponential", 50_000))
    qs = np.linspace(0.0, 1.0, 41)
    np.testing.assert_array_equal(sketch.quantile(qs), [sketch.quantile(float(q)) for q in qs])
    xs = sketch.quantile(qs)
    np.testing.assert_array_equal(sketch.cdf(xs), [sketch.cdf(float(x)) for x in xs])
    assert sketch.quantile(qs.reshape(41, 1)).shape == (41, 1)
    # the answer to q is the first item whose cumulative weight reaches q * n
    items, weights = sketch.sorted_view()
    cumulative = np.cumsum(weights)
    for q in qs[1:-1]:
        assert sketch.quantile(q) == items[np.searchsorted(cumulative, q * sketch.n)]
    with pytest.raises(ValueError):
        sketch.quantile(1.5)
    with pytest.raises(ValueError):
        sketch.quantile([0.5, np.nan])


def test_error_bound_function():
    bounds = [normalized_rank_error(k) for k in (8, 50, 200, 1000, 65535)]
    assert all(a > b > 0 for a, b in zip(bounds, bounds[1:]))
    assert QuantileSketch(k=200).normalized_rank_error == normalized_rank_error(200) < 0.02
    for k in (7, 65536, 200.0, True):
        with pytest.raises(ValueError):
            normalized_rank_error(k)
        with pytest.raises(ValueError):
            QuantileSketch(k=k)


# -- merge -------------------------------------------------------------------------------------


@pytest.mark.parametrize("kind", ["normal", "ties", "ascending"])
@pytest.mark.parametrize("equal_parts", [True, False])
def test_merge_within_bound(kind, equal_parts):
    values = make_values(kind, seed=5)
    if equal_parts:
        cuts = np.arange(1, 10) * (N // 10)
    else:
        cuts = np.sort(np.random.default_rng(9).choice(np.arange(1, N), size=9, replace=False))
        cuts[0] = 150  # one part small enough to be exact
        cuts = np.sort(cuts)
    parts = np.split(values, cuts)
    sketches = []
    for i, part in enumerate(parts):
        sketch = QuantileSketch(k=200, seed=100 + i)
        sketch.update_many(part)
        sketches.append(sketch)
    merged = QuantileSketch(k=200, seed=1)
    for sketch in sketches:
        merged.merge(sketch)
        check_invariants(merged._row, 200)
    assert len(merged) == N and merged.min == values.min() and merged.max == values.max()
    assert_within_bound(merged, np.sort(values))
    # the parts are unchanged
    assert [len(s) for s in sketches] == [len(p) for p in parts]


def test_merge_into_empty_gives_the_other():
    other = QuantileSketch(k=200, seed=4)
    other.update_many(make_values("lognormal", 123_457))
    empty = QuantileSketch(k=200, seed=8)
    empty.merge(other)
    for a, b in zip(empty.sorted_view(), other.sorted_view()):
        np.testing.assert_array_equal(a, b)
    mine, theirs = empty.to_dict(), other.to_dict()
    for key in ("n", "min", "max", "levels", "items"):
        assert mine[key] == theirs[key]
    # and merging an empty sketch changes nothing
    before = other.to_dict()
    other.merge(QuantileSketch(k=200))
    assert other.to_dict() == before


def test_merge_small_sketches_is_exact():
    a, b = QuantileSketch(k=100), QuantileSketch(k=100)
    a.update_many(np.arange(40.0))
    b.update_many(np.arange(40.0, 100.0))
    a.merge(b)
    items, weights = a.sorted_view()
    np.testing.assert_array_equal(items, np.arange(100.0))
    np.testing.assert_array_equal(weights, np.ones(100))


def test_merge_with_itself_doubles():
    sketch = QuantileSketch(k=50)
    sketch.update_many(make_values("normal", 10_000))
    sketch.merge(sketch)
    assert len(sketch) == 20_000
    check_invariants(sketch._row, 50)


def test_merge_requires_the_same_k():
    with pytest.raises(ValueError, match="different k"):
        QuantileSketch(k=200).merge(QuantileSketch(k=100))


# -- determinism and checkpoints ---------------------------------------------------------------


def test_same_input_same_seed_same_row():
    values = make_values("normal", 300_000)
    bank = SketchBank(k=200, seed=0)
    a, b = bank.add(), bank.add()
    bank.set_state(b, {**bank.get_state(b), "seed": bank.get_state(a)["seed"]})
    bank.update(np.full(values.shape[0], a), values)
    bank.update(np.full(values.shape[0], b), values)
    np.testing.assert_array_equal(bank.rows[a], bank.rows[b])
    c = bank.add()
    bank.update(np.full(values.shape[0], c), values)
    assert bank.get_state(c)["items"] != bank.get_state(a)["items"]  # another seed, other coins


def test_checkpoint_continues_identically():
    values = make_values("lognormal", 400_000)
    uninterrupted = QuantileSketch(k=200, seed=77)
    uninterrupted.update_many(values)
    first = QuantileSketch(k=200, seed=77)
    first.update_many(values[:123_457])
    restored = QuantileSketch.from_dict(json.loads(json.dumps(first.to_dict())))
    assert restored.to_dict() == first.to_dict()
    restored.update_many(values[123_457:])
    assert restored.to_dict() == uninterrupted.to_dict()
    row = uninterrupted._row
    low = int(row[kll._LEVELS])
    np.testing.assert_array_equal(restored._row[:low], row[:low])  # header and level starts
    np.testing.assert_array_equal(restored._row[low:], row[low:])  # items


def test_state_is_compact_and_checked():
    sketch = QuantileSketch(k=200)
    sketch.update_many(make_values("normal", 100_000))
    state = sketch.to_dict()
    assert len(state["items"]) == sketch.num_retained < 3 * 200 + 8 * 48
    assert state["levels"][0] == 0 and state["levels"][-1] == len(state["items"])
    assert set(state) == {"k", "n", "min", "max", "levels", "items", "seed", "flips"}
    bad = [
        {**state, "n": state["n"] + 1},
        {**state, "items": state["items"][:-1]},
        {**state, "levels": [0, *state["levels"][2:]]},
        {**state, "items": state["items"][:-2] + state["items"][-1:] + state["items"][-2:-1]},
        {**state, "min": None},
        {**state, "seed": -1},
    ]
    for broken in bad:
        with pytest.raises(ValueError):
            QuantileSketch.from_dict(broken)
    other = SketchBank(k=100)
    with pytest.raises(ValueError, match="k=200"):
        other.set_state(other.add(), state)
    empty = QuantileSketch(k=16).to_dict()
    assert empty["min"] is None and QuantileSketch.from_dict(json.loads(json.dumps(empty))).to_dict() == empty


# -- row width ---------------------------------------------------------------------------------


def test_row_width_is_header_levels_and_capacity():
    for k in (8, 9, 30, 200, 1000, 65535):
        assert row_width(k) == kll._ITEMS + sum(kll.level_capacities(k, kll.MAX_LEVELS))
    assert kll.level_capacities(200, 4) == [60, 89, 134, 200]
    assert kll.level_capacities(200, 12) == [8, 8, 8, 8, 12, 18, 27, 40, 60, 89, 134, 200]
    assert row_width(200) < 3 * 200 + 8 * kll.MAX_LEVELS + kll._ITEMS


@pytest.mark.parametrize("k, n", [(8, 10**7), (20, 4 * 10**6), (200, 4 * 10**6)])
def test_row_width_never_exceeded(k, n):
    sketch = QuantileSketch(k=k)
    values = make_values("normal", 2**16)
    done = 0
    most = 0
    while done < n:
        sketch.update_many(values)
        done += values.shape[0]
        check_invariants(sketch._row, k)
        most = max(most, sketch.num_retained)
    # the levels in use grow as log2(n / k)
    assert int(sketch._row[kll._NUM_LEVELS]) <= math.log2(n / k) + 4
    assert most <= row_width(k) - kll._ITEMS


def test_update_past_the_last_level_raises():
    # every level full up to the top, which holds the whole capacity: only a new level would help
    capacity = sum(kll.level_capacities(8, kll.MAX_LEVELS))
    top = kll.MAX_LEVELS - 1
    state = {
        "k": 8,
        "n": capacity << top,
        "min": 0.0,
        "max": 1.0,
        "seed": 0,
        "flips": 0,
        "levels": [0] * kll.MAX_LEVELS + [capacity],
        "items": np.linspace(0.0, 1.0, capacity).tolist(),
    }
    sketch = QuantileSketch.from_dict(state)
    assert 0.0 < sketch.quantile(0.5) < 1.0 and len(sketch) == capacity << top
    with pytest.raises(RuntimeError, match="all its levels"):
        sketch.update(0.5)


def test_merged_sketches_fit():
    bank = SketchBank(k=8)
    slots = [bank.add() for _ in range(40)]
    rng = np.random.default_rng(2)
    for slot in slots:
        size = int(rng.integers(1, 200_000))
        bank.update(np.full(size, slot), rng.normal(size=size))
    total = bank.merged(slots)
    check_invariants(total._row, 8)
    assert len(total) == sum(bank.n(s) for s in slots)


# -- bank --------------------------------------------------------------------------------------


def test_bank_equals_separate_sketches():
    rng = np.random.default_rng(3)
    bank = SketchBank(k=100, capacity=2)  # grows
    slots = [bank.add() for _ in range(7)]
    assert slots == list(range(7)) and len(bank) == 7
    slot_of = rng.integers(0, 7, size=200_000)
    values = rng.standard_cauchy(size=200_000)
    values[rng.integers(0, 200_000, size=100)] = np.nan
    finite = np.isfinite(values)
    for chunk in np.array_split(np.arange(values.shape[0]), 13):
        bank.update(slot_of[chunk], values[chunk])
    for slot in slots:
        alone = QuantileSketch(k=100, seed=bank.get_state(slot)["seed"])
        alone.update_many(values[slot_of == slot])
        assert bank.get_state(slot) == alone.to_dict()
        assert bank.n(slot) == np.count_nonzero(finite & (slot_of == slot))
        np.testing.assert_array_equal(bank.quantile(slot, QS), alone.quantile(QS))
        assert bank.cdf(slot, 0.5) == alone.cdf(0.5)
        for a, b in zip(bank.sorted_view(slot), alone.sorted_view()):
            np.testing.assert_array_equal(a, b)


def test_bank_merges():
    bank = SketchBank(k=50, seed=6)
    a, b, c = bank.add(), bank.add(), bank.add()
    rng = np.random.default_rng(4)
    for slot in (a, b, c):
        bank.update(np.full(30_000, slot), rng.normal(size=30_000))
    merged = bank.merged([a, b, c])
    scratch = np.empty(row_width(50))
    kll.reset(scratch, 50, 6)
    for slot in (a, b, c):
        bank.merge_into(scratch, slot)
    np.testing.assert_array_equal(kll.sorted_view(scratch)[0], merged.sorted_view()[0])
    assert kll.quantile(scratch, 0.5) == merged.quantile(0.5)
    before = bank.get_state(c)
    bank.merge(a, b)
    bank.merge(a, c)
    assert bank.n(a) == 90_000 and bank.get_state(c) == before
    np.testing.assert_array_equal(bank.sorted_view(a)[1].sum(), 90_000.0)
    bank.reset(a)
    assert bank.n(a) == 0 and math.isnan(bank.quantile(a, 0.5))
    with pytest.raises(ValueError):
        bank.merge_into(np.empty(10), a)
    with pytest.raises(IndexError):
        bank.update([3], [1.0])
    with pytest.raises(IndexError):
        bank.quantile(5, 0.5)
    with pytest.raises(ValueError):
        bank.update([0, 1], [1.0])


def test_bank_state_is_the_sketch_state():
    sketch = QuantileSketch(k=30, seed=5)
    sketch.update_many(make_values("uniform", 5_000))
    bank = SketchBank(k=30)
    slot = bank.add()
    bank.set_state(slot, json.loads(json.dumps(sketch.to_dict())))
    assert bank.get_state(slot) == sketch.to_dict()
    more = make_values("uniform", 5_000, seed=1)
    sketch.update_many(more)
    bank.update(np.full(more.shape[0], slot), more)
    assert bank.get_state(slot) == sketch.to_dict()


# -- NaN and inf -------------------------------------------------------------------------------


def test_nan_and_inf_are_skipped():
    sketch = QuantileSketch(k=16)
    assert sketch.update(np.nan) is False and sketch.update(np.inf) is False and sketch.update(-np.inf) is False
    assert sketch.update(1.0) is True
    values = np.array([2.0, np.nan, 3.0, np.inf, -np.inf, 4.0] * 10)
    assert sketch.update_many(values) == 30
    assert len(sketch) == 31 and sketch.min == 1.0 and sketch.max == 4.0
    assert np.isfinite(sketch.sorted_view()[0]).all()
    bank = SketchBank(k=16)
    slot = bank.add()
    assert bank.update(np.zeros(values.shape[0], dtype=np.int64), values) == 30
    assert bank.n(slot) == 30
    assert math.isnan(sketch.cdf(np.nan)) and sketch.cdf(np.inf) == 1.0 and sketch.cdf(-np.inf) == 0.0
