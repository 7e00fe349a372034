"""The columnar path (scan, vocabulary, join table) against the per-event path (the reference
check of each event, then the per-event join store), on random batches mixing every event
shape, bad records and labels: the same dead letters, counts, join outcomes and pairs."""

from __future__ import annotations

import math

import numpy as np
import orjson
from hypothesis import given, settings
from hypothesis import strategies as st

from driftwire.stream.detect.monitor import PartitionMonitor, SeriesBudget
from driftwire.stream.detect.outcomes import class_name
from driftwire.stream.ingest import decode as dec
from driftwire.stream.ingest.labels import LabelRouter
from driftwire.stream.ingest.router import Router
from driftwire.stream.join.batch import Pairs
from driftwire.stream.join.store import JoinStore
from driftwire.stream.settings import DetectionConfig

TTL = 50.0

_VALUES = st.one_of(st.sampled_from(["fr", "de", "caf\u00e9", 'a"b']), st.booleans(), st.none(),
                    st.floats(-1e3, 1e3, allow_nan=False), st.integers(-5, 5))
_OUTPUTS = st.one_of(st.sampled_from(["churn", "stay", "true"]), st.booleans(), st.integers(0, 2),
                     st.floats(0, 2, allow_nan=False))


@st.composite
def prediction(draw, t: float):
    names = draw(st.lists(st.sampled_from(["x", "country", "returning"]), max_size=3, unique=True))
    event = {"event_id": f"e{draw(st.integers(0, 30))}", "model": draw(st.sampled_from(["m1", "m2"])),
             "model_version": draw(st.sampled_from(["v1", "v2", None])), "timestamp": t,
             "features": {name: draw(_VALUES) for name in names}, "prediction": draw(_OUTPUTS)}
    if draw(st.booleans()):
        event["score"] = draw(st.floats(0, 1))
    if event["model_version"] is None:
        del event["model_version"]
    return orjson.dumps(event)


@st.composite
def label(draw, t: float):
    event = {"event_id": f"e{draw(st.integers(0, 30))}", "model": draw(st.sampled_from(["m1", "m2"])),
             "label": draw(_OUTPUTS)}
    if draw(st.booleans()):
        event["timestamp"] = t
    return orjson.dumps(event)


_BAD = st.sampled_from([b'{"event_id":"e1","model":"m1"}', b"[1]", b'{"event_id":"","model":"m1","label":1}',
                        b"\xff", b'{"event_id":"e1","model":"m1","prediction":{"a":1}}'])


@st.composite
def batches(draw):
    out, t = [], 0.0
    for _ in range(draw(st.integers(1, 4))):
        batch = []
        for _ in range(draw(st.integers(1, 25))):
            t += draw(st.floats(0, 20))
            kind = draw(st.sampled_from(["prediction", "prediction", "label", "bad"]))
            raw = draw(prediction(t)) if kind == "prediction" else draw(label(t)) if kind == "label" else draw(_BAD)
            batch.append((draw(st.sampled_from(["predictions", "labels"])) if kind == "bad" else
                          ("labels" if kind == "label" else "predictions"), raw, t))
        out.append(batch)
    return out


def _reference(store: JoinStore, joins, topic: str, raw: bytes, index: int, offset: int,
               record_time: float) -> str | None:
    """The per-event path of one record: its refusal reason, or None once it is in the store
    (if ``joins`` its model)."""
    try:
        doc = dec.parse_json(raw)
        if topic == "labels":
            lab = dec.check_label(doc)
            t = lab.timestamp if lab.timestamp is not None else record_time
            if joins(lab.model):
                store.add_label(lab.model, lab.event_id, lab.label, t, offset, index)
            return None
        event = dec.check_event(doc, dec.PREDICTION)
    except dec.InvalidEvent as exc:
        return exc.reason
    t = dec.parse_timestamp(event.timestamp) if event.timestamp is not None else record_time
    if joins(event.model):
        store.add_prediction(event.model, event.event_id, event.model_version or "unknown", event.prediction,
                             event.score, t, index)
    return None


def _named(pairs: Pairs) -> list[tuple]:
    """Pairs by what they say, classes by name, for comparing the two paths."""
    out = []
    for i in range(len(pairs)):
        p = pairs.pair(i)
        score = None if p.score is None or math.isnan(p.score) else p.score
        out.append((p.model, p.version, _value(p.prediction), score, _value(p.label), p.time, p.message,
                    p.label_offset))
    return out


def _value(value):
    return value if isinstance(value, float) and not float(value).is_integer() else class_name(value)


@settings(max_examples=150, deadline=None)
@given(batches())
def test_the_columnar_path_joins_what_the_per_event_path_joins(stream):
    monitor = PartitionMonitor("predictions", 0, DetectionConfig(), SeriesBudget(1000))
    monitor.enable_join(TTL, 8)
    router = Router(monitor, dec.PREDICTION, 10_000)
    labels = LabelRouter(10_000)
    store = JoinStore(TTL, 8)
    oracle = PartitionMonitor("predictions", 0, DetectionConfig(), SeriesBudget(1000))
    offset = 0
    for batch in stream:
        times = np.array([t for _, _, t in batch])
        got, want = {}, {}
        # as the service takes a batch: its predictions, then its labels
        for topic in ("predictions", "labels"):
            at = [i for i, (tp, _, _) in enumerate(batch) if tp == topic]
            if not at:
                continue
            values = [batch[i][1] for i in at]
            indices = np.array(at, dtype=np.int64)
            offsets = np.arange(offset, offset + len(at), dtype=np.int64)
            offset += len(at)
            if topic == "predictions":
                errors = router.add_batch(values, indices, times)
                buf, rows = router.join_rows(monitor.joins, times)
                monitor.join.add_predictions(buf, rows)
                router.flush()
            else:
                errors = labels.add_batch(values, indices, offsets, times, monitor)
            got.update({int(indices[k]): exc.reason for k, exc in errors})
            for k, i in enumerate(at):
                # the same gate as the service's: only the models the partition tracks are joined
                reason = _reference(store, monitor.joins, topic, values[k], i, int(offsets[k]), float(times[i]))
                if reason is not None:
                    want[i] = reason
        assert got == want
        assert monitor.join.take_counts() == store.take_counts()
        assert _named(Pairs(monitor.join.take_pairs().rows, monitor.join_codes)) == \
            _named(Pairs.of(store.take_pairs(), oracle.join_codes))
        assert (monitor.join.pending_predictions, monitor.join.pending_labels) == \
            (store.pending_predictions, store.pending_labels)
        assert len(monitor.join.take_shared().rows) == len(store.take_shared())
