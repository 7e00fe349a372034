"""The hot-path event checks agree with the pydantic models that define the contract."""

from __future__ import annotations

import math

import orjson
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from pydantic import ValidationError

from driftwire.schemas import FeatureEvent, PredictionEvent
from driftwire.stream.ingest import decode as dec

scalars = st.one_of(
    st.none(), st.booleans(), st.integers(-(10**20), 10**20),
    st.floats(allow_nan=True, allow_infinity=True), st.text(max_size=5),
)
values = st.one_of(
    scalars, st.lists(st.integers(), max_size=2), st.dictionaries(st.text(max_size=2), st.integers(), max_size=2)
)
timestamps = st.one_of(
    st.none(), st.floats(allow_nan=True), st.integers(0, 2**40), st.booleans(),
    st.sampled_from(["2024-05-01T12:00:00Z", "2024-05-01T12:00:00+02:00", "2024-05-01T12:00:00",
                     "yesterday", "", "2024-13-01T00:00:00Z"]),
)
maybe = st.sampled_from([True, False])


@st.composite
def documents(draw):
    doc = {}
    if draw(maybe):
        doc["event_id"] = draw(st.one_of(st.text(max_size=4), st.integers(), st.none()))
    if draw(maybe):
        doc["model"] = draw(st.one_of(st.text(max_size=4), st.integers(), st.none()))
    if draw(maybe):
        doc["model_version"] = draw(st.one_of(st.text(max_size=4), st.integers(), st.none()))
    if draw(maybe):
        doc["timestamp"] = draw(timestamps)
    if draw(maybe):
        doc["features"] = draw(st.one_of(st.dictionaries(st.text(max_size=3), values, max_size=4), scalars))
    if draw(maybe):
        doc["prediction"] = draw(values)
    if draw(maybe):
        doc["score"] = draw(values)
    return doc


def pydantic_accepts(model, doc) -> bool:
    try:
        model.model_validate(doc)
        return True
    except ValidationError:
        return False


def fast_accepts(doc, kind) -> bool:
    try:
        dec.check_event(doc, kind)
        return True
    except dec.InvalidEvent as exc:
        assert exc.reason in dec.REASONS
        return False


@settings(max_examples=1500, deadline=None)
@given(documents())
def test_fast_checks_accept_exactly_what_the_models_accept(doc):
    assert fast_accepts(doc, dec.PREDICTION) == pydantic_accepts(PredictionEvent, doc), doc
    assert fast_accepts(doc, dec.FEATURE) == pydantic_accepts(FeatureEvent, doc), doc


@settings(max_examples=300, deadline=None)
@given(documents())
def test_accepted_events_carry_the_models_values(doc):
    if not pydantic_accepts(PredictionEvent, doc):
        return
    event = dec.check_event(doc, dec.PREDICTION)
    model = PredictionEvent.model_validate(doc)
    assert (event.event_id, event.model, event.model_version) == (model.event_id, model.model, model.model_version)
    assert event.features == model.features
    assert event.timestamp == model.timestamp or (event.timestamp is None and model.timestamp is None)


@pytest.mark.parametrize(
    ("raw", "reason"),
    [
        (b'{"event_id": "a", "model": "m", "prediction": NaN}', dec.NON_FINITE),
        (b'{"event_id": "a", "model": "m", "prediction": 1e999}', dec.NON_FINITE),
        (b'{"event_id": "a", "model": "m", "prediction": Infinity}', dec.NON_FINITE),
        (b'{"event_id": "a", "model": "m", "prediction": ', dec.MALFORMED_JSON),
        (b"\xff\xfe{}", dec.MALFORMED_JSON),
        (b'\xef\xbb\xbf{"event_id": "a", "model": "m", "prediction": 1}', dec.MALFORMED_JSON),
        (b'{"event_id": "\\ud800", "model": "m", "prediction": 1}', dec.MALFORMED_JSON),
        (b'{"event_id": "a", "model": "m", "prediction": 1, "x": "\\udc00"}', dec.MALFORMED_JSON),
        (b'{"event_id": "a", "model": "m", "prediction": 1, "x": ' + b"[" * 10_000 + b"]" * 10_000 + b"}",
         dec.MALFORMED_JSON),
        (b"{" * 5_000, dec.MALFORMED_JSON),
        (b'{"event_id": "a", "model": "m", "prediction": 1' + b"9" * 400 + b"}", dec.NON_FINITE),
        (b"42", dec.NOT_AN_OBJECT),
        (b'{"event_id": "a", "model": "m"}', dec.MISSING_FIELD),
        (b'{"event_id": "a", "model": "m", "prediction": {"a": 1}}', dec.WRONG_TYPE),
        (b'{"event_id": "a", "model": "m", "prediction": 1, "timestamp": "noon"}', dec.INVALID_VALUE),
    ],
)
def test_each_bad_input_has_its_reason(raw, reason):
    with pytest.raises(dec.InvalidEvent) as err:
        dec.decode(raw, dec.PREDICTION, max_bytes=1 << 20)
    assert err.value.reason == reason
    assert err.value.message


def test_oversized_messages_are_refused_before_parsing():
    raw = orjson.dumps({"event_id": "a", "model": "m", "prediction": 1, "features": {"x": "y" * 100}})
    with pytest.raises(dec.InvalidEvent) as err:
        dec.decode(raw, dec.PREDICTION, max_bytes=64)
    assert err.value.reason == dec.OVERSIZED
    assert dec.decode(raw, dec.PREDICTION, max_bytes=len(raw)).prediction == 1


def test_timestamps_become_epoch_seconds():
    ev = dec.decode(b'{"event_id": "a", "model": "m", "prediction": 1, "timestamp": "2024-05-01T12:00:00+02:00"}',
                    dec.PREDICTION, 10_000)
    assert math.isclose(ev.timestamp, 1714557600.0)
