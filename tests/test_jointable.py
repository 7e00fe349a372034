"""JoinTable against JoinStore, its specification: the same events give the same pairs, Shared
records, counts, waiting entries and clocks, batch after batch, across checkpoints."""

from __future__ import annotations

import json
import math
from unittest import mock

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from driftwire.stream.join import table as jointable
from driftwire.stream.join.store import OUTCOMES, JoinStore
from driftwire.stream.join.table import LABELS, PREDICTIONS, JoinTable, id_spans

MODELS = ("fraud", "churn")
VERSIONS = ("v1", "v2", "v3")
IDS = ("a", "b", "c", "0123456789abcdef-a-longer-id", "é", "x" * 300)


def prediction_rows(events: list[tuple]) -> tuple[np.ndarray, np.ndarray]:
    """A batch of (model, event_id, version, value, code, score, time, message)."""
    buf, starts, lengths = id_spans([e[1] for e in events])
    rows = np.zeros(len(events), PREDICTIONS)
    rows["id_start"], rows["id_len"] = starts, lengths
    for name, k in (("model", 0), ("version", 2), ("value", 3), ("code", 4), ("time", 6), ("message", 7)):
        rows[name] = [e[k] for e in events]
    rows["score"] = [math.nan if e[5] is None else e[5] for e in events]
    return buf, rows


def label_rows(events: list[tuple]) -> tuple[np.ndarray, np.ndarray]:
    """A batch of (model, event_id, value, code, time, offset, message)."""
    buf, starts, lengths = id_spans([e[1] for e in events])
    rows = np.zeros(len(events), LABELS)
    rows["id_start"], rows["id_len"] = starts, lengths
    for name, k in (("model", 0), ("value", 2), ("code", 3), ("time", 4), ("offset", 5), ("message", 6)):
        rows[name] = [e[k] for e in events]
    return buf, rows


def same(x):
    """A value to compare: NaN and None (no score) are one."""
    return "nan" if x is None or (isinstance(x, float) and math.isnan(x)) else x


def store_pairs(store: JoinStore) -> list[tuple]:
    # a checkpoint of the store gives its predictions and labels back as lists: tuples here
    return [(p.model, p.version, p.event_id, tuple(p.prediction), same(p.score), tuple(p.label), same(p.time),
             p.message, p.label_offset) for p in store.take_pairs()]


def table_pairs(table: JoinTable) -> list[tuple]:
    taken = table.take_pairs()
    return [(MODELS[r["model"]], VERSIONS[r["version"]], taken.event_id(i), (r["value"], r["code"]), same(r["score"]),
             (r["label_value"], r["label_code"]), same(r["time"]), r["message"], r["label_offset"])
            for i, r in enumerate(taken.rows)]


def store_shared(store: JoinStore) -> list[tuple]:
    def side(s):
        return s[0], tuple(s[1]), same(s[2]), same(s[3])
    return [(s.model, s.event_id, side(s.first), side(s.second), s.met, s.labelled,
             None if s.label is None else tuple(s.label), s.message, s.label_offset) for s in store.take_shared()]


def table_shared(table: JoinTable) -> list[tuple]:
    taken = table.take_shared()

    def side(r, which):
        return (VERSIONS[r[f"{which}_version"]], (r[f"{which}_value"], r[f"{which}_code"]), same(r[f"{which}_score"]),
                same(r[f"{which}_time"]))
    return [(MODELS[r["model"]], taken.event_id(i), side(r, "first"), side(r, "second"), bool(r["met"]),
             bool(r["labelled"]), (r["label_value"], r["label_code"]) if r["labelled"] else None, r["message"],
             r["label_offset"]) for i, r in enumerate(taken.rows)]


def payload(saved) -> tuple[float, int]:
    return (math.nan, -1) if saved is None else (float(saved[0]), int(saved[1]))


class Both:
    """A JoinStore given the events one by one and a JoinTable given them by batches."""

    def __init__(self, ttl: float, max_pending: int):
        self.store = JoinStore(ttl, max_pending)
        self.table = JoinTable(ttl, max_pending)
        #: the outcomes met so far
        self.outcomes: set[str] = set()

    def batch(self, predictions: list[tuple], labels: list[tuple]) -> None:
        # within a batch the predictions first, then the labels, as the service gives them
        for m, e, v, value, code, score, time, message in predictions:
            self.store.add_prediction(MODELS[m], e, VERSIONS[v], (value, code), score, time, message)
        for m, e, value, code, time, offset, message in labels:
            self.store.add_label(MODELS[m], e, (value, code), time, offset, message)
        self.table.add_predictions(*prediction_rows(predictions))
        self.table.add_labels(*label_rows(labels))
        self.check()

    def check(self) -> None:
        assert table_pairs(self.table) == store_pairs(self.store)
        assert table_shared(self.table) == store_shared(self.store)
        counts = self.store.take_counts()
        assert self.table.take_counts() == counts
        self.outcomes |= counts.keys()
        assert self.table.pending_predictions == self.store.pending_predictions
        assert self.table.pending_labels == self.store.pending_labels
        assert self.table.prediction_clock == self.store.prediction_clock
        assert self.table.label_clock == self.store.label_clock

    def restore_table(self) -> None:
        state = json.loads(json.dumps(self.table.get_state()))
        self.table = JoinTable(self.table.ttl, self.table.max_pending)
        self.table.set_state(state)

    def table_from_store(self) -> None:
        """Both go on from the store's checkpoint (which keeps no infinite clock)."""
        state = json.loads(json.dumps(self.store.get_state()))
        self.store.set_state(state)
        self.table = JoinTable.from_store_state(state, MODELS.index, VERSIONS.index, payload,
                                                ttl=self.store.ttl, max_pending=self.store.max_pending)


times = st.one_of(st.integers(0, 12).map(float), st.sampled_from([math.nan, math.inf]))
predictions = st.tuples(st.integers(0, 1), st.sampled_from(IDS), st.integers(0, 2), st.integers(0, 2).map(float),
                        st.integers(-1, 1), st.one_of(st.none(), st.sampled_from([0.25, 0.5])), times)
labels = st.tuples(st.integers(0, 1), st.sampled_from(IDS), st.integers(0, 1).map(float), st.integers(0, 1), times)
batches = st.lists(st.tuples(st.lists(predictions, max_size=7), st.lists(labels, max_size=7)), min_size=1,
                   max_size=10)


@settings(max_examples=400, deadline=None)
@given(batches, st.sampled_from([0.5, 2.0, 5.0, math.inf]), st.integers(1, 4), st.integers(0, 10),
       st.sampled_from(["none", "table", "store"]))
def test_batches_give_what_events_one_by_one_give(sequence, ttl, max_pending, restart_at, restart):
    both = Both(ttl, max_pending)
    offset = 0
    # arrays of one entry to start with: every batch grows, compacts or rehashes something
    with mock.patch.object(jointable, "_MIN", 1):
        for k, (preds, labs) in enumerate(sequence):
            if k == restart_at and restart == "table":
                both.restore_table()
            elif k == restart_at and restart == "store" and math.inf not in (both.store.prediction_clock,
                                                                              both.store.label_clock):
                # (a store's checkpoint gives an infinite clock back as -inf, and then its
                # shortcut past entries that cannot expire yet no longer holds)
                both.table_from_store()
            both.batch([(*p, i) for i, p in enumerate(preds)],
                       [(*lab, offset + i, 100 + i) for i, lab in enumerate(labs)])
            offset += len(labs)


def stream(seed: int, n: int, shadow: float) -> list[tuple[list, list]]:
    """Batches of a stream like a real one: labels 0-30 s after their prediction, 10% never come,
    10% name an event never predicted, some redelivered, some events predicted by a second
    version; events slightly out of order."""
    rng = np.random.default_rng(seed)
    events = []
    for i in range(n):
        t = i / 100 + rng.uniform(0, 0.5)
        e = f"{rng.integers(1 << 60):x}-{i}"
        events.append((t, 0, (0, e, 0, float(i % 3), i % 2, 0.5, t)))
        if rng.random() < shadow:
            events.append((t + 0.01, 0, (0, e, 1, 1.0, 1, None, t)))
        if rng.random() < 0.02:
            events.append((t + rng.uniform(0, 5), 0, (0, e, 0, float(i % 3), i % 2, 0.5, t)))
        if rng.random() < 0.9:
            lt = t + rng.uniform(0, 30)
            events.append((lt, 1, (0, e, float(i % 2), 0, lt)))
            if rng.random() < 0.02:
                events.append((lt + 1, 1, (0, e, float(i % 2), 0, lt + 1)))
        if rng.random() < 0.1:
            lt = t + rng.uniform(0, 30)
            events.append((lt, 1, (1 - (i % 5 == 0), f"u{i}", 1.0, 1, lt)))
    events.sort(key=lambda ev: ev[0])
    out, offset = [], 0
    for start in range(0, len(events), 700):
        chunk = events[start:start + 700]
        preds = [(*ev, i) for i, (_, kind, ev) in enumerate(chunk) if kind == 0]
        labs = [(*ev, offset + i, i) for i, (_, kind, ev) in enumerate(chunk) if kind == 1]
        offset += len(labs)
        out.append((preds, labs))
    return out


@pytest.mark.parametrize(("ttl", "max_pending", "shadow", "evicted"),
                         [(40.0, 100_000, 0.1, False), (10.0, 500, 0.3, True)])
def test_a_long_stream_matches_the_store(ttl, max_pending, shadow, evicted):
    both = Both(ttl, max_pending)
    batches = stream(7, 12_000, shadow)
    for k, (preds, labs) in enumerate(batches):
        if k == len(batches) // 2:
            both.restore_table()
        both.batch(preds, labs)
    assert both.outcomes == set(OUTCOMES) - (set() if evicted else {"prediction_evicted", "label_evicted"})


def test_the_store_example():
    table = JoinTable(ttl=60.0, max_pending=1000)
    table.add_labels(*label_rows([(0, "e1", 1.0, 1, 105.0, 7, 0)]))
    table.add_predictions(*prediction_rows([(0, "e1", 1, 1.0, 1, 0.9, 100.0, 1)]))
    pairs = table.take_pairs()
    assert pairs.rows[["version", "value", "label_value", "label_offset"]].tolist() == [(1, 1.0, 1.0, 7)]
    assert pairs.event_id(0) == "e1"
    table.add_labels(*label_rows([(0, "e1", 1.0, 1, 106.0, 8, 2)]))
    assert table.take_counts() == {"joined": 1, "duplicate_label": 1}
    table.add_predictions(*prediction_rows([(0, "e1", 2, 0.0, 0, 0.4, 101.0, 3)]))
    shared = table.take_shared()
    assert shared.rows[["first_version", "second_version", "met", "labelled"]].tolist() == [(1, 2, True, True)]


def test_an_old_checkpoint_of_joined_version_names_restores():
    store = JoinStore(ttl=60.0, max_pending=10)
    store.add_prediction("fraud", "e1", "v1", (1.0, 1), 0.9, 100.0, 0)
    store.add_label("fraud", "e1", (1.0, 1), 105.0, 7, 0)
    store.take_pairs()
    state = store.get_state()
    state["joined"][0][5] = ["v1"]  # as checkpoints before versions kept their predictions
    table = JoinTable.from_store_state(state, MODELS.index, VERSIONS.index, payload, ttl=60.0, max_pending=10)
    store.set_state(state)
    for t in (store, table):
        if t is store:
            t.add_prediction("fraud", "e1", "v2", (0.0, 0), None, 101.0, 1)
        else:
            t.add_predictions(*prediction_rows([(0, "e1", 1, 0.0, 0, None, 101.0, 1)]))
    assert table_pairs(table) == store_pairs(store)
    first = table.take_shared().rows[["first_version", "first_value", "first_code", "first_score", "first_time"]]
    assert store.take_shared()[0].first == ("v1", None, None, None)
    assert first.tolist() == [(0, pytest.approx(math.nan, nan_ok=True), -1, pytest.approx(math.nan, nan_ok=True),
                               pytest.approx(math.nan, nan_ok=True))]


def test_refusals():
    for ttl, max_pending in ((0.0, 1), (math.nan, 1), (1.0, 0)):
        with pytest.raises(ValueError) as table_error:
            JoinTable(ttl, max_pending)
        with pytest.raises(ValueError) as store_error:
            JoinStore(ttl, max_pending)
        assert str(table_error.value) == str(store_error.value)
    table = JoinTable(1.0, 1)
    buf, rows = prediction_rows([(0, "e1", 0, 0.0, 0, None, 1.0, 0)])
    with pytest.raises(ValueError, match="spans"):
        table.add_predictions(buf[:1], rows)
    with pytest.raises(TypeError):
        table.add_labels(buf, rows)
    rows["version"] = 1 << 40
    with pytest.raises(ValueError, match="32 bits"):
        table.add_predictions(buf, rows)


def test_memory_is_given_back_after_a_burst():
    both = Both(ttl=1.0, max_pending=100_000)
    burst = [(0, f"burst-{i}", 0, 0.0, 0, None, 0.0, i) for i in range(6000)]
    both.batch(burst, [(0, e, 1.0, 1, 1.0, i, i) for i, (_, e, *_) in enumerate(burst)])
    peak = both.table.memory()
    for k in range(150):
        t = 2.0 + k / 10
        preds = [(0, f"e{k}-{i}", 0, 0.0, 0, None, t, i) for i in range(40)]
        both.batch(preds, [(0, e, 1.0, 1, t, 6000 + 40 * k + i, i) for i, (_, e, *_) in enumerate(preds)])
    now = both.table.memory()
    assert all(now[name] <= peak[name] / 4 for name in ("preds", "joined", "ids", "refs", "pairs")), (peak, now)
