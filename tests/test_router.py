"""The hot path (per-shape routing) agrees with the reference event check and keeps order."""

from __future__ import annotations

import json

import numpy as np
import orjson
from hypothesis import given, settings
from hypothesis import strategies as st
from test_decode import documents

from driftwire.stream.detect.monitor import PartitionMonitor, SeriesBudget
from driftwire.stream.ingest import decode as dec
from driftwire.stream.ingest.router import Router
from driftwire.stream.settings import DetectionConfig


def router(kind=dec.PREDICTION, max_bytes=10_000, **kw) -> Router:
    return Router(PartitionMonitor("t", 0, DetectionConfig(), SeriesBudget(10_000)), kind, max_bytes, **kw)


def strict_json(raw: bytes) -> bool:
    try:
        orjson.loads(raw)
        return True
    except orjson.JSONDecodeError:
        return False


def reference_values(doc, kind, monitor) -> list[tuple[int, float]]:
    """(series, value) of an event as the contract defines them: numeric features, then outputs."""
    event = dec.check_event(doc, kind)
    items = list(event.features.items())
    if kind == dec.PREDICTION:
        items += [("prediction", event.prediction), ("score", event.score)]
    return [(monitor.series_id(event.model, event.model_version, k), float(v))
            for k, v in items if type(v) in (int, float)]


@settings(max_examples=1500, deadline=None)
@given(st.lists(documents(), min_size=1, max_size=6), st.sampled_from([dec.PREDICTION, dec.FEATURE]))
def test_router_accepts_what_the_reference_accepts_and_yields_the_same_values_in_order(docs, kind):
    r = router(kind)
    expected = []
    for i, doc in enumerate(docs):
        # Python's json writes NaN, Infinity and integers of any size, as producers may.
        raw = json.dumps(doc).encode()
        try:
            want = reference_values(doc, kind, r.monitor)
        except dec.InvalidEvent as ref_error:
            try:
                r.add(raw, i)
            except dec.InvalidEvent as error:
                # NaN, Infinity or a number beyond float64 make the text itself unparsable,
                # which is what the bus sees first.
                assert error.reason in (ref_error.reason, dec.NON_FINITE if not strict_json(raw) else None)
                continue
            raise AssertionError(f"router accepted what the reference refuses: {doc}") from None
        r.add(raw, i)
        expected += [(sid, v, i) for sid, v in want]
    series, values, messages, capped = r.flush()
    assert capped == 0
    assert list(zip(series.tolist(), values.tolist(), messages.tolist())) == expected


def test_events_of_several_shapes_come_out_in_message_order():
    r = router()
    docs = [
        {"event_id": "1", "model": "m", "features": {"a": 1.0, "b": 2}, "prediction": 0.5},
        {"event_id": "2", "model": "m", "features": {"a": 3.0, "c": "x"}, "prediction": "yes", "score": 0.9},
        {"event_id": "3", "model": "m", "features": {"b": 4, "a": 5.0}, "prediction": 0.1},
    ]
    for i, doc in enumerate(docs):
        r.add(orjson.dumps(doc), i)
    series, values, messages, _ = r.flush()
    sid = {name: r.monitor.series_id("m", "unknown", name) for name in ("a", "b", "prediction", "score")}
    assert list(zip(series.tolist(), values.tolist(), messages.tolist())) == [
        (sid["a"], 1.0, 0), (sid["b"], 2.0, 0), (sid["prediction"], 0.5, 0),
        (sid["a"], 3.0, 1), (sid["score"], 0.9, 1),
        (sid["b"], 4.0, 2), (sid["a"], 5.0, 2), (sid["prediction"], 0.1, 2),
    ]
    assert r.flush()[1].size == 0, "a flush starts a new batch"


def test_unknown_models_and_oversized_messages_are_refused():
    r = router(allowed_models=frozenset({"m"}))
    ok = orjson.dumps({"event_id": "1", "model": "m", "prediction": 1})
    assert r.add(ok, 0) == "m"
    other = orjson.dumps({"event_id": "1", "model": "x", "prediction": 1})
    for raw, reason in ((other, dec.UNKNOWN_MODEL), (b"x" * 20_000, dec.OVERSIZED), (None, dec.MALFORMED_JSON)):
        try:
            r.add(raw, 1)
        except dec.InvalidEvent as error:
            assert error.reason == reason
        else:
            raise AssertionError(f"{reason} accepted")
    assert np.array_equal(r.flush()[2], [0])


def test_bad_utf8_in_a_string_is_malformed_json():
    r = router()
    for raw in (b'{"event_id": "\x8a", "model": "m", "prediction": 1}',
                b'{"event_id": "a", "model": "m", "prediction": 1, "features": {"\xff": 1}}'):
        try:
            r.add(raw, 0)
        except dec.InvalidEvent as error:
            assert error.reason == dec.MALFORMED_JSON
        else:
            raise AssertionError(f"{raw!r} accepted")


def test_a_poison_message_in_a_batch_is_refused_alone():
    """Nesting deeper than any parser's stack, at the top or in an unknown field, a byte order
    mark and a lone surrogate: each is refused with its reason, and the valid events around
    them are all taken, in order."""
    deep = b"[" * 10_000 + b"]" * 10_000
    poison = [
        deep,
        b'{"event_id": "p", "model": "m", "prediction": 1, "extra": ' + deep + b"}",
        b'{"event_id": "p", "model": "m", "prediction": 1, "extra": ' + b'{"a":' * 10_000 + b"1" + b"}" * 10_001,
        b'\xef\xbb\xbf{"event_id": "p", "model": "m", "prediction": 1}',
        b'{"event_id": "\\ud800", "model": "m", "prediction": 1}',
    ]
    valid = [orjson.dumps({"event_id": str(i), "model": "m", "prediction": 1, "features": {"x": i}})
             for i in range(10)]
    values = valid[:5] + poison + valid[5:]
    r = router(max_bytes=1 << 20)
    errors = r.add_batch(values, np.arange(len(values)))
    assert [(k, e.reason) for k, e in errors] == [(5 + i, dec.MALFORMED_JSON) for i in range(len(poison))]
    _, taken, messages, _ = r.flush()
    # two values an event (x, then the prediction), in message order
    assert messages[::2].tolist() == [*range(5), *range(10, 15)]
    assert taken[::2].tolist() == list(map(float, range(10)))


def test_an_unexpected_decoder_failure_refuses_that_message_alone(monkeypatch):
    """Whatever a decoder raises on one message, that message is dead-lettered as undecodable
    and the batch goes on."""
    r = router()
    real = r.decode

    def decode(value):
        if b'"boom"' in value:
            raise KeyError("boom")
        return real(value)

    monkeypatch.setattr(r, "decode", decode)
    # a template the scanner does not take (a nested value), so every event goes through decode
    values = [orjson.dumps({"event_id": e, "model": "m", "prediction": 1, "x": [1]}) for e in ("a", "boom", "c")]
    errors = r.add_batch(values, np.arange(3))
    assert [(k, e.reason) for k, e in errors] == [(1, dec.UNDECODABLE)]
    assert "KeyError" in errors[0][1].message
    assert r.flush()[2].tolist() == [0, 2]


_CATEGORY_VALUES = st.one_of(st.sampled_from(["fr", "de", "us", "a b", ""]), st.booleans(), st.none(),
                             st.floats(-5, 5, allow_nan=False).map(lambda x: round(x, 3)))


@st.composite
def categorical_events(draw):
    """Prediction events whose features and prediction are strings, booleans, numbers or nulls."""
    names = draw(st.lists(st.sampled_from(["country", "device", "returning", "x"]), max_size=3, unique=True))
    event = {"event_id": f"e{draw(st.integers(0, 50))}", "model": draw(st.sampled_from(["m1", "m2"])),
             "features": {name: draw(_CATEGORY_VALUES) for name in names},
             "prediction": draw(st.one_of(st.sampled_from(["churn", "stay"]), st.booleans(), st.integers(0, 2)))}
    if draw(st.booleans()):
        event["timestamp"] = 1.7e9 + draw(st.integers(0, 100))
    return orjson.dumps(event)


def _category_names(r: Router) -> list[tuple[int, int, str]]:
    """(message, window series, category name) of the categorical values routed, in order."""
    ws, codes, messages = r.take_categories()
    windows = r.monitor.windows
    named = []
    for s, c, m in zip(ws.tolist(), codes.tolist(), messages.tolist()):
        names = {code: name for name, code in (windows._learning_codes[s] or {}).items()}
        named.append((m, s, names.get(int(c), f"code {int(c)}")))
    return sorted(named)


@settings(max_examples=200, deadline=None)
@given(st.lists(st.lists(categorical_events(), min_size=1, max_size=12), min_size=1, max_size=3))
def test_the_scanner_reads_categories_as_the_event_path_does(batches):
    """Strings and booleans read by the batch path give the windows the same categories, per
    series and message, as the per-event path."""
    fast, slow = router(), router()
    for batch in batches:
        indices = np.arange(len(batch), dtype=np.int64)
        assert fast.add_batch(batch, indices) == []
        for i, raw in enumerate(batch):
            slow.add(raw, i)
        for a, b in zip(fast.flush(), slow.flush()):
            assert np.array_equal(a, b)
        assert all(np.array_equal(a, b) for a, b in zip(fast.take_events(), slow.take_events()))
        assert _category_names(fast) == _category_names(slow)
        assert fast.monitor.window_series == slow.monitor.window_series


def test_categorical_events_take_the_scanner():
    """Events with string and boolean features and a class prediction are read in the batch,
    not one by one, once their shape is known."""
    r = router()
    batch = [orjson.dumps({"event_id": f"e{i}", "model": "m", "features": {"x": i / 8, "country": ["fr", "de"][i % 2],
                                                                        "returning": i % 3 == 0},
                           "prediction": ["churn", "stay"][i % 2], "score": 0.5}) for i in range(200)]
    calls = []
    original = r.add
    r.add = lambda *a, **k: calls.append(a) or original(*a, **k)
    r.add_batch(batch, np.arange(200, dtype=np.int64))
    r.flush()
    r.take_events()
    ws, codes, messages = r.take_categories()
    assert calls == [] and r.read_one_by_one == 0
    assert ws.size == 3 * 200  # country, returning, prediction
    assert np.array_equal(np.bincount(messages), np.full(200, 3))
    # an escaped string is the per-event path's to read, and counted
    escaped = batch[0].replace(b'"fr"', b'"f\\u0072"')
    r.add_batch([escaped, batch[1]], np.arange(2, dtype=np.int64))
    assert len(calls) == 1 and r.read_one_by_one == 1
