"""The label join under disorder: every prediction and label is joined, pending, or counted."""

from __future__ import annotations

import random

import orjson
import pytest

from driftwire.stream.join.store import OUTCOMES, JoinStore


def joined(store: JoinStore) -> list[tuple]:
    return [(p.model, p.version, p.event_id, p.prediction, p.label) for p in store.take_pairs()]


def test_a_label_before_its_prediction_joins_when_the_prediction_comes():
    store = JoinStore(ttl=100.0, max_pending=10)
    store.add_label("m", "e1", "cat", time=10.0, offset=3, message=0)
    assert store.take_pairs() == []
    assert store.pending_labels == 1
    store.add_prediction("m", "e1", "v1", "dog", 0.7, time=5.0, message=1)
    pairs = store.take_pairs()
    assert [(p.prediction, p.label, p.score, p.time, p.label_offset, p.message) for p in pairs] == [
        ("dog", "cat", 0.7, 5.0, 3, 1)]
    assert store.pending_labels == store.pending_predictions == 0
    assert store.take_counts() == {"joined": 1}


def test_a_prediction_waits_for_its_label_and_models_do_not_mix():
    store = JoinStore(ttl=100.0, max_pending=10)
    store.add_prediction("a", "e1", "v1", 1.0, None, time=1.0, message=0)
    store.add_label("b", "e1", 0.0, time=2.0, offset=0, message=1)  # same id, another model
    assert store.take_pairs() == []
    store.add_label("a", "e1", 0.0, time=3.0, offset=1, message=2)
    assert joined(store) == [("a", "v1", "e1", 1.0, 0.0)]
    assert store.pending_labels == 1  # model b's label still waits


def test_duplicates_are_counted_and_joined_once():
    store = JoinStore(ttl=100.0, max_pending=10)
    store.add_prediction("m", "e1", "v1", 1, None, time=1.0, message=0)
    store.add_prediction("m", "e1", "v1", 1, None, time=1.0, message=1)  # redelivered while pending
    store.add_label("m", "e1", 1, time=2.0, offset=0, message=2)
    store.add_label("m", "e1", 1, time=2.0, offset=1, message=3)  # redelivered after the join
    store.add_prediction("m", "e1", "v1", 1, None, time=1.0, message=4)  # redelivered after the join
    store.add_label("m", "e2", 0, time=3.0, offset=2, message=5)
    store.add_label("m", "e2", 0, time=3.0, offset=3, message=6)  # redelivered while pending
    assert len(store.take_pairs()) == 1
    assert store.take_counts() == {"joined": 1, "duplicate_prediction": 2, "duplicate_label": 2}


def test_shadow_versions_of_one_event_each_join_its_label():
    store = JoinStore(ttl=100.0, max_pending=10)
    store.add_prediction("m", "e1", "champion", "a", None, time=1.0, message=0)
    store.add_prediction("m", "e1", "challenger", "b", None, time=1.0, message=1)
    store.add_label("m", "e1", "a", time=5.0, offset=0, message=2)
    store.add_prediction("m", "e1", "canary", "a", None, time=1.5, message=3)  # after the label
    assert joined(store) == [("m", "champion", "e1", "a", "a"), ("m", "challenger", "e1", "b", "a"),
                             ("m", "canary", "e1", "a", "a")]
    assert store.take_counts() == {"joined": 3}


def test_entries_expire_when_the_other_side_has_moved_the_ttl_past_them():
    store = JoinStore(ttl=60.0, max_pending=10)
    store.add_prediction("m", "p1", "v1", 1, None, time=0.0, message=0)
    store.add_prediction("m", "p1", "v2", 1, None, time=0.0, message=1)
    store.add_label("m", "unknown", 1, time=10.0, offset=0, message=2)
    store.add_prediction("m", "p2", "v1", 1, None, time=59.0, message=3)
    store.add_prediction("m", "p8", "v1", 1, None, time=500.0, message=4)  # predictions run ahead
    assert store.take_counts() == {"label_expired": 1}  # "unknown" arrived at 10 < 500 - 60
    store.add_label("m", "x", 1, time=65.0, offset=1, message=5)  # labels reach 65 > 0 + 60
    assert store.take_counts() == {"prediction_expired": 2}  # both versions of p1; p2 and p8 wait
    store.add_label("m", "p2", 0, time=100.0, offset=2, message=6)  # p2 arrived at 59: until 119
    assert joined(store) == [("m", "v1", "p2", 1, 0)]


def test_a_topic_read_ahead_of_the_other_expires_nothing_too_early():
    store = JoinStore(ttl=60.0, max_pending=10**6)
    # a backlog of labels read first: they wait for predictions that are still to be read
    for i in range(1000):
        store.add_label("m", f"e{i}", 1, time=float(i) + 30.0, offset=i, message=i)
    for i in range(1000):
        store.add_prediction("m", f"e{i}", "v1", 1, None, time=float(i), message=i)
    assert len(store.take_pairs()) == 1000
    assert store.take_counts() == {"joined": 1000}


def test_an_old_event_time_does_not_move_a_clock_back():
    store = JoinStore(ttl=60.0, max_pending=10)
    store.add_label("m", "a", 1, time=100.0, offset=0, message=0)
    store.add_label("m", "b", 1, time=10.0, offset=1, message=1)  # arrives at label clock 100, not 10
    store.add_prediction("m", "p1", "v1", 1, None, time=150.0, message=2)
    assert store.take_counts() == {}
    store.add_prediction("m", "p2", "v1", 1, None, time=161.0, message=3)
    assert store.take_counts() == {"label_expired": 2}


def test_the_cap_evicts_the_oldest_and_counts_it():
    store = JoinStore(ttl=1e9, max_pending=3)
    for i in range(5):
        store.add_prediction("m", f"p{i}", "v1", 1, None, time=float(i), message=i)
        store.add_label("m", f"l{i}", 1, time=float(i), offset=i, message=i)
    assert store.pending_predictions == store.pending_labels == 3
    assert store.take_counts() == {"prediction_evicted": 2, "label_evicted": 2}
    store.add_label("m", "p0", 1, time=9.0, offset=9, message=9)  # p0 was evicted: the label waits
    store.add_label("m", "p4", 1, time=9.0, offset=10, message=10)
    assert [p.event_id for p in store.take_pairs()] == ["p4"]


def test_bad_parameters_are_refused():
    with pytest.raises(ValueError, match="ttl"):
        JoinStore(ttl=0.0, max_pending=1)
    with pytest.raises(ValueError, match="max_pending"):
        JoinStore(ttl=1.0, max_pending=0)


def disordered_stream(n_events: int, seed: int):
    """Predictions of two versions and labels of n events in random order, with redeliveries,
    labels of events never predicted and predictions never labelled; returns the operations."""
    rng = random.Random(seed)
    ops = []
    for i in range(n_events):
        t = float(i)
        versions = ["v1", "v2"] if rng.random() < 0.3 else ["v1"]
        if rng.random() < 0.9:
            for v in versions:
                ops.append((t + rng.uniform(0, 5), "p", f"e{i}", v))
        if rng.random() < 0.8:
            ops.append((t + rng.uniform(-5, 30), "l", f"e{i}", None))
        if rng.random() < 0.05:
            ops.append(ops[rng.randrange(len(ops))])  # a redelivery of anything seen so far
    rng.shuffle(ops[: len(ops) // 2])  # heavy disorder in the first half, mild in the second
    return ops


def run(store: JoinStore, ops, counts: dict, pairs: list, start: int = 0, shared: list | None = None) -> None:
    for k, (t, side, event_id, version) in enumerate(ops, start):
        if side == "p":
            store.add_prediction("m", event_id, version, 1, None, time=t, message=k)
        else:
            store.add_label("m", event_id, 0, time=t, offset=k, message=k)
        for outcome, n in store.take_counts().items():
            counts[outcome] = counts.get(outcome, 0) + n
        pairs += store.take_pairs()
        if shared is not None:
            shared += store.take_shared()


@pytest.mark.parametrize("ttl,cap", [(1e9, 10**9), (20.0, 10**9), (1e9, 50), (15.0, 40)])
def test_every_prediction_and_label_is_accounted_for(ttl, cap):
    ops = disordered_stream(3000, seed=int(ttl) % 97 + cap % 89)
    store = JoinStore(ttl=ttl, max_pending=cap)
    counts: dict[str, int] = {}
    pairs: list = []
    run(store, ops, counts, pairs)
    assert set(counts) <= set(OUTCOMES)
    predictions = sum(1 for op in ops if op[1] == "p")
    labels = sum(1 for op in ops if op[1] == "l")
    pending_predictions = sum(len(entry[1]) for entry in store._predictions.values())
    assert predictions == (counts.get("joined", 0) + counts.get("duplicate_prediction", 0) + pending_predictions
                           + counts.get("prediction_expired", 0) + counts.get("prediction_evicted", 0))
    labels_joined = len({p.event_id for p in pairs})
    assert labels == (labels_joined + counts.get("duplicate_label", 0) + store.pending_labels
                      + counts.get("label_expired", 0) + counts.get("label_evicted", 0))
    assert len(pairs) == counts.get("joined", 0)
    assert len({(p.event_id, p.version) for p in pairs}) == len(pairs)  # no pair twice
    if ttl == 1e9 and cap == 10**9:
        # nothing expires: every labelled event joined each version predicted
        predicted = {(e, v) for _, side, e, v in ops if side == "p"}
        labelled = {e for _, side, e, _ in ops if side == "l"}
        assert {(p.event_id, p.version) for p in pairs} == {(e, v) for e, v in predicted if e in labelled}


def test_a_restored_store_continues_as_the_original():
    ops = disordered_stream(2000, seed=5)
    half = len(ops) // 2
    original = JoinStore(ttl=20.0, max_pending=60)
    counts_a: dict = {}
    pairs_a: list = []
    run(original, ops, counts_a, pairs_a)

    first = JoinStore(ttl=20.0, max_pending=60)
    counts_b: dict = {}
    pairs_b: list = []
    run(first, ops[:half], counts_b, pairs_b)
    restored = JoinStore(ttl=20.0, max_pending=60)
    restored.set_state(orjson.loads(orjson.dumps(first.get_state())))
    run(restored, ops[half:], counts_b, pairs_b, start=half)
    assert counts_a == counts_b
    assert pairs_a == pairs_b


def test_memory_stays_within_the_cap_over_a_long_stream():
    store = JoinStore(ttl=1e9, max_pending=1000)
    for i in range(200_000):
        store.add_prediction("m", f"p{i}", "v1", 1, None, time=float(i), message=0)
        store.add_label("m", f"x{i}", 1, time=float(i), offset=i, message=0)
        if i % 3 == 0:
            store.add_label("m", f"p{i}", 1, time=float(i), offset=i, message=0)
    assert store.pending_predictions <= 1000 and store.pending_labels <= 1000 and len(store._joined) <= 1000


def test_a_model_with_labels_disabled_stays_out_of_the_join():
    import numpy as np

    from driftwire.stream.detect.monitor import PartitionMonitor, SeriesBudget
    from driftwire.stream.ingest import decode as dec
    from driftwire.stream.ingest.labels import LabelRouter
    from driftwire.stream.ingest.router import Router
    from driftwire.stream.settings import DetectionConfig

    config = DetectionConfig.model_validate({"models": {"quiet": {"labels": {"enabled": False}}}})
    monitor = PartitionMonitor("predictions", 0, config, SeriesBudget(100))
    monitor.enable_join(ttl=60.0, max_pending=100)
    predictions = [orjson.dumps({"event_id": "e1", "model": m, "model_version": "v1", "prediction": 1})
                   for m in ("quiet", "loud")]
    times = np.array([100.0, 100.0, 101.0, 101.0])
    router = Router(monitor, dec.PREDICTION, 1 << 20)
    assert router.add_batch(predictions, np.arange(2), times) == []
    monitor.join.add_predictions(*router.join_rows(monitor.joins, times))
    assert monitor.join.pending_predictions == 1  # only "loud" waits
    labels = [orjson.dumps({"event_id": "e1", "model": m, "label": 1}) for m in ("quiet", "loud")]
    label_router = LabelRouter(max_bytes=1 << 20)
    errors = label_router.add_batch(labels, np.arange(2, 4), np.arange(2), times, monitor)
    assert errors == []
    assert label_router.counts == {"quiet": 1, "loud": 1}  # both consumed and counted
    pairs = monitor.join.take_pairs()
    assert [(monitor.join_codes.model_names[m], pairs.event_id(i)) for i, m in enumerate(pairs.rows["model"])] == \
        [("loud", "e1")]
    assert monitor.join.pending_labels == 0


def run_batched(store: JoinStore, ops, seed: int) -> tuple[dict, list, list]:
    """``ops`` with each run of predictions given to add_predictions in batches of random size."""
    rng = random.Random(seed)
    counts: dict[str, int] = {}
    pairs, shared = [], []
    k = 0
    while k < len(ops):
        if ops[k][1] == "l":
            t, _, event_id, _ = ops[k]
            store.add_label("m", event_id, 0, time=t, offset=k, message=k)
            k += 1
        else:
            end = k
            while end < len(ops) and end - k < rng.randint(1, 300) and ops[end][1] == "p":
                end += 1
            batch = ops[k:end]
            store.add_predictions(["m"] * len(batch), [op[2] for op in batch], [op[3] for op in batch],
                                  [1] * len(batch), [None] * len(batch), [op[0] for op in batch],
                                  list(range(k, end)))
            k = end
        for outcome, n in store.take_counts().items():
            counts[outcome] = counts.get(outcome, 0) + n
        pairs += store.take_pairs()
        shared += store.take_shared()
    return counts, pairs, shared


@pytest.mark.parametrize("ttl,cap", [(1e9, 10**9), (20.0, 10**9), (1e9, 50), (15.0, 40)])
def test_predictions_added_in_batches_end_as_added_one_by_one(ttl, cap):
    ops = disordered_stream(3000, seed=11)
    ops.sort(key=lambda op: op[1] == "l" and op[0] < 1500)  # long runs of predictions, and labels first
    one = JoinStore(ttl=ttl, max_pending=cap)
    counts, pairs, shared = {}, [], []
    run(one, ops, counts, pairs, shared=shared)
    batched = JoinStore(ttl=ttl, max_pending=cap)
    assert run_batched(batched, ops, seed=3) == (counts, pairs, shared)
    assert batched.get_state() == one.get_state()
    assert counts.get("joined", 0) > 1000
