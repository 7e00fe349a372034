"""Reference profiles: the distribution of each signal in a model's training (or first) data.

A numeric signal is summarized by quantile bin edges and the counts in each bin (10 bins by
default: deciles, so each holds about a tenth of the data; the outer bins are open-ended, so
later values beyond the training range still fall in a bin), its range and moments, and a KLL
quantile sketch, which keeps the whole distribution at a documented rank error and merges with
others. A categorical signal keeps the counts of its ``top_k`` most frequent categories and one
count for all the others, with their names (up to ``MAX_OTHER_NAMES``) so that a category that
never occurred in training can be told from a rare one. Missing values (NaN, None) are counted, not profiled.

The result is plain data in the form of :class:`driftwire.schemas.ReferenceProfile`'s signals.

>>> import numpy as np
>>> from driftwire.detectors.profile import numeric_profile, categorical_profile
>>> p = numeric_profile(np.array([1.0, 2.0, 3.0, 4.0, np.nan]), bins=2)
>>> p["edges"], p["counts"], round(p["missing_rate"], 3)
([2.5], [2, 2], 0.2)
>>> c = categorical_profile(["a", "b", "a", None, "c"], top_k=2)
>>> c["frequencies"], c["other"], c["cardinality"]
({'a': 2, 'b': 1}, 1, 3)
"""

from __future__ import annotations

import math
from collections import Counter

import numpy as np

from .kll import QuantileSketch

#: KLL parameter of reference sketches: references are few and long-lived, so they get a
#: finer sketch than a window's (see :mod:`driftwire.detectors.kll` for the error bound).
REFERENCE_SKETCH_K = 1000
DEFAULT_BINS = 10
DEFAULT_TOP_K = 20
#: names of categories beyond the top K a profile keeps (see :func:`categorical_profile_from_counts`)
MAX_OTHER_NAMES = 10_000


def quantile_edges(values: np.ndarray, bins: int) -> np.ndarray:
    """Inner edges splitting finite ``values`` into ``bins`` bins of about equal counts (numpy's
    default, interpolated quantiles, so an edge falls between two values where it can); fewer
    when values repeat: edges are strictly increasing and above the minimum, so no bin is empty
    by construction."""
    if values.size == 0 or bins < 2:
        return np.empty(0)
    edges = np.unique(np.quantile(values, np.arange(1, bins) / bins))
    return edges[edges > values.min()]


def bin_counts(edges: np.ndarray, values: np.ndarray) -> np.ndarray:
    """Counts of ``values`` per bin: bin i holds edges[i-1] <= x < edges[i] (open outer bins)."""
    return np.bincount(np.searchsorted(edges, values, side="right"), minlength=edges.size + 1)


def numeric_profile(values, bins: int = DEFAULT_BINS, sketch_k: int = REFERENCE_SKETCH_K) -> dict:
    """Profile of a numeric column; NaN and infinities count as missing."""
    values = np.asarray(values, dtype=np.float64)
    finite = values[np.isfinite(values)]
    if finite.size == 0:
        raise ValueError("a numeric signal needs at least one finite value")
    sketch = QuantileSketch(k=sketch_k)
    sketch.update_many(finite)
    edges = quantile_edges(finite, bins)
    return _numeric(finite.size, values.size, float(finite.min()), float(finite.max()), float(finite.mean()),
                    float(finite.std(ddof=1)) if finite.size > 1 else 0.0, edges, bin_counts(edges, finite), sketch)


def numeric_profile_from_sketch(sketch: QuantileSketch, rows: int, mean: float, std: float,
                                bins: int = DEFAULT_BINS) -> dict:
    """Profile of a signal seen only through its sketch and moments (a reference learnt from
    live events). Edges are the sketch's quantiles and counts follow its ranks, so both carry
    the sketch's rank error; exact while the sketch is (up to ``k`` values)."""
    n = sketch.n
    if n == 0:
        raise ValueError("a numeric signal needs at least one finite value")
    items, weights = sketch.sorted_view()
    edges = quantile_edges_weighted(items, weights, bins)
    # rank of each edge: weight strictly below it, as bin_counts' side="right" rule puts a value
    # equal to an edge in the bin above
    below = np.concatenate(([0.0], np.cumsum(weights)))[np.searchsorted(items, edges, side="left")]
    cuts = np.concatenate(([0], np.rint(below).astype(np.int64), [n]))
    return _numeric(n, rows, sketch.min, sketch.max, mean, std, edges, np.diff(cuts), sketch)


def quantile_edges_weighted(items: np.ndarray, weights: np.ndarray, bins: int) -> np.ndarray:
    """:func:`quantile_edges` of a weighted sample (sorted items with their weights), read as
    the sample with each item repeated by its weight: the same edges for unit weights."""
    if items.size == 0 or bins < 2:
        return np.empty(0)
    edges = np.unique(weighted_quantiles(items, weights, np.arange(1, bins) / bins))
    return edges[edges > items[0]]


def weighted_quantiles(items: np.ndarray, weights: np.ndarray, q: np.ndarray) -> np.ndarray:
    """numpy's default (interpolated) quantiles ``q`` of a weighted sample, read as the sample
    with each item repeated by its weight."""
    cum = np.cumsum(weights)
    position = (cum[-1] - 1.0) * q
    below = np.floor(position)

    def item(rank):  # the item at 0-based rank ``rank`` of the repeated sample
        return items[np.minimum(np.searchsorted(cum, rank, side="right"), items.size - 1)]

    return item(below) + (position - below) * (item(below + 1) - item(below))


def _numeric(count, rows, lo, hi, mean, std, edges, counts, sketch) -> dict:
    lo, hi, mean, std = float(lo), float(hi), float(mean), float(std)
    return {
        "type": "numeric",
        "count": int(count),
        "missing_rate": 1.0 - count / rows,
        "min": lo,
        "max": hi,
        # a mean rounded just outside a constant column's range would fail min <= mean <= max
        "mean": min(max(mean, lo), hi),
        "std": std if math.isfinite(std) else 0.0,
        "edges": [float(e) for e in edges],
        "counts": [int(c) for c in counts],
        "sketch": sketch.to_dict(),
    }


def category_name(value) -> str | None:
    """The category of a value as profiles and windows name it: booleans as 'true'/'false'
    (as JSON writes them), strings as they are; None for a missing value."""
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return None
    if isinstance(value, bool):
        return "true" if value else "false"
    return str(value)


def categorical_profile(values, top_k: int = DEFAULT_TOP_K) -> dict:
    """Profile of a categorical column: counts of the ``top_k`` most frequent categories (ties
    by name, for a stable result), the count of the rest; None and NaN count as missing."""
    names = [category_name(v) for v in values]
    counts = Counter(n for n in names if n is not None)
    return categorical_profile_from_counts(counts, len(names), top_k)


def categorical_profile_from_counts(counts: dict[str, int], rows: int, top_k: int = DEFAULT_TOP_K,
                                    unnamed: int = 0) -> dict:
    """Profile of a categorical signal from its category counts over ``rows`` rows; ``unnamed``
    rows had a category whose name was not kept (a reference learnt from live events keeps a
    bounded number). The names of the categories beyond the top K are kept too, up to
    ``MAX_OTHER_NAMES``, so that a window can tell a rare training category from one never seen."""
    count = sum(counts.values()) + unnamed
    if count == 0:
        raise ValueError("a categorical signal needs at least one category")
    ranked = sorted(counts.items(), key=lambda kv: (-kv[1], kv[0]))
    top = dict(ranked[:top_k])
    others = [name for name, _ in ranked[top_k:]]
    complete = unnamed == 0 and len(others) <= MAX_OTHER_NAMES
    return {
        "type": "categorical",
        "count": int(count),
        "missing_rate": 1.0 - count / rows,
        "frequencies": {name: int(c) for name, c in top.items()},
        "other": int(count - sum(top.values())),
        "cardinality": len(counts) + (1 if unnamed else 0),
        "other_categories": others if complete else None,
    }
