"""The batch scanner agrees with the per-message path: same flush, same errors, exact numbers."""

from __future__ import annotations

import math

import numpy as np
import orjson
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from driftwire.stream.detect.monitor import PartitionMonitor, SeriesBudget
from driftwire.stream.ingest import decode as dec
from driftwire.stream.ingest import scan as sc
from driftwire.stream.ingest.router import Router
from driftwire.stream.settings import DetectionConfig

# -- raw JSON text of events, valid ones of many forms and corrupted ones ---------------------

good_ws = st.sampled_from(["", "", "", " ", "\n", "\t", "\r\n ", "  "])
ws = st.one_of(good_ws, good_ws, good_ws, st.sampled_from(["\x0c", "\xa0", "\x00"]))
plain_text = st.text(st.characters(min_codepoint=0x20, max_codepoint=0x7E, exclude_characters='"\\'), max_size=6)
any_text = st.text(max_size=4)
exact_number_text = st.one_of(
    st.integers(-(10**6), 10**6).map(str),
    st.floats(-1e6, 1e6).map(lambda x: f"{x:.6f}"),
    st.builds(lambda m, e: f"{m}e{e}", st.integers(-(2**53) + 1, 2**53 - 1), st.integers(-22, 22)),
    st.sampled_from(["-0", "-0.0", "0.0", "-0e0", "1e22", "1e-22", "9007199254740991", "1.5E+3", "4.35"]),
)
number_text = st.one_of(
    exact_number_text,
    st.integers(-(2**63), 2**63).map(str),
    st.sampled_from([2**53 - 1, 2**53, 2**53 + 1, -(2**53) + 1, -(2**53), 10**30]).map(str),
    st.floats(allow_nan=False, allow_infinity=False).map(repr),
    st.builds(lambda m, e, c: f"{m}{c}{e}", st.integers(-(10**17), 10**17), st.integers(-30, 30),
              st.sampled_from(["e", "E", "e+", "E-"])),
    st.sampled_from(["0e400", "1e400", "-1e400", "1e-400", "1e308", "1.7976931348623157e308", "1e23", "1e-23",
                     "9007199254740991e22", "0.1", "1.0000000000000000001",
                     "01", "1.", ".5", "+1", "-", "1e", "1e+", "NaN", "Infinity", "-Infinity", "0x10", "1_0"]),
)


def quoted(s: str) -> str:
    return '"' + s + '"'


plain_string = plain_text.map(quoted)
string_text = st.one_of(
    plain_string, plain_string, any_text.map(lambda s: orjson.dumps(s).decode()),
    st.sampled_from(['"a\\"b"', '"\\u00e9"', '"\\n"', '"é"', '"\x01"', '"\\ud800"', '"unterminated']),
)
literal_text = st.sampled_from(["true", "false", "null", "tru", "nul", "True"])
good_scalar = st.one_of(exact_number_text, number_text, plain_string, st.sampled_from(["true", "false", "null"]))
scalar_text = st.one_of(number_text, string_text, literal_text)
nested_text = st.sampled_from(["[]", "[1, 2]", '{"a": 1}', "{}", '[{"b": [null]}]', '{"a": {"b": 1}}'])
value_text = st.one_of(scalar_text, scalar_text, scalar_text, nested_text)
good_timestamps = st.sampled_from([
    "2024-05-01T12:00:00Z", "2024-05-01T12:00:00+02:00", "2024-05-01T12:00:00.123456-23:59", "2024-02-29T00:00:00Z",
    "0001-01-01T00:00:00+23:59", "2024-05-01T12:00:00.5Z"]).map(quoted)
timestamp_text = st.one_of(
    number_text, literal_text, good_timestamps,
    st.sampled_from(["2023-02-29T00:00:00Z", "2024-05-01T12:00:00", "2024-05-01T24:00:00Z",
                     "2024-05-01T12:00:00.1234567Z", "2024-05-01 12:00:00Z", "0000-01-01T00:00:00Z",
                     "2024-05-01T12:00:00+24:00", "yesterday", ""]).map(quoted),
)
feature_names = st.sampled_from(["a", "b", "x0", "x1", "", "a b", "é", 'c\\"'])
good_feature_names = st.sampled_from(["a", "b", "x0", "x1", "", "a b", "model"])

# (good, any) value texts of each field: a valid event draws from the first, a corrupted field from the second
FIELDS = {
    "event_id": (plain_text.filter(bool).map(quoted), st.one_of(string_text, number_text, literal_text)),
    "model": (st.sampled_from(["m", "m", "m2", "mv"]).map(quoted), st.one_of(string_text, number_text, literal_text)),
    "model_version": (st.one_of(st.sampled_from(["v1", "1", "unknown", ""]).map(quoted), st.just("null")),
                      st.one_of(string_text, number_text, literal_text, nested_text)),
    "timestamp": (st.one_of(exact_number_text, number_text, good_timestamps, st.just("null")), timestamp_text),
    "prediction": (st.one_of(exact_number_text, plain_string, st.sampled_from(["true", "false"])), value_text),
    "score": (st.one_of(exact_number_text, st.just("null")), st.one_of(scalar_text, nested_text)),
    "extra": (good_scalar, value_text),
}


@st.composite
def objects(draw, members, spaces):
    """A JSON object from (key, value) texts, formatted with drawn whitespace."""
    pad = draw(spaces)
    body = ("," + pad).join(f"{draw(spaces)}{k}{draw(spaces)}:{draw(spaces)}{v}{draw(spaces)}" for k, v in members)
    return "{" + pad + body + "}"


@st.composite
def features_text(draw, good):
    names = draw(st.lists(good_feature_names if good else feature_names, max_size=6))
    values = good_scalar if good else value_text
    return draw(objects([(quoted(n), draw(values)) for n in names], good_ws if good else ws))


@st.composite
def event_text(draw):
    """Most events valid (in the scanner's subset or not), the rest with a wrong field or a
    corruption of the text."""
    good = draw(st.integers(0, 3)) > 0
    members = []
    for name in ["event_id", "model", "model_version", "timestamp", "features", "prediction", "score", "extra"]:
        fine = good or draw(st.integers(0, 3)) > 0
        if name == "features":
            values = features_text(True) if fine else st.one_of(features_text(False), value_text)
        else:
            values = FIELDS[name][0 if fine else 1]
        # Most events have the fields they need; some lack them, a few repeat them.
        for _ in range(draw(st.sampled_from([1, 1, 1, 1, 0] if fine else [1, 1, 0, 2]))):
            members.append((quoted(name), draw(values)))
    members = draw(st.permutations(members))
    spaces = good_ws if good else ws
    text = (draw(spaces) + draw(objects(members, spaces)) + draw(spaces)).encode()
    cut = draw(st.sampled_from(["none"] * 12 + ["truncate", "append", "flip", "empty", "null"]))
    if cut == "truncate":
        text = text[:draw(st.integers(0, len(text)))]
    elif cut == "append":
        text += draw(st.sampled_from([b"x", b"}", b" {}", b"\x00", b",", b"\xff"]))
    elif cut == "flip":
        i = draw(st.integers(0, len(text) - 1))
        text = text[:i] + bytes([draw(st.integers(0, 255))]) + text[i + 1:]
    elif cut == "empty":
        text = b""
    elif cut == "null":
        return None
    return text


def valid_event(i: int, model: str = "m") -> bytes:
    return orjson.dumps({"event_id": f"e{i}", "model": model, "features": {"a": i / 8, "b": i}, "prediction": 1})


# -- helpers --------------------------------------------------------------------------------


def router(kind=dec.PREDICTION, budget=10_000, **kw) -> Router:
    return Router(PartitionMonitor("t", 0, DetectionConfig(), SeriesBudget(budget)), kind, 2_000, **kw)


def one_by_one(r: Router, batch: list, first: int, times=None) -> list:
    errors = []
    for k, value in enumerate(batch):
        try:
            r.add(value, first + k, times)
        except dec.InvalidEvent as exc:
            errors.append((k, exc.reason, exc.message))
    return errors


def assert_batches_agree(reference: Router, fast: Router, batches: list) -> None:
    """``fast`` takes each batch with add_batch as ``reference`` takes it message by message."""
    first = 0
    for batch in batches:
        want_times, got_times = np.full(first + len(batch), np.nan), np.full(first + len(batch), np.nan)
        want = one_by_one(reference, batch, first, want_times)
        got = fast.add_batch(batch, np.arange(first, first + len(batch)), got_times)
        assert [(k, e.reason, e.message) for k, e in got] == want
        # event times: the scanner's as Python's own, to the microsecond (RFC 3339's resolution)
        np.testing.assert_allclose(got_times, want_times, rtol=1e-15, atol=1e-6)
        assert fast.counts == reference.counts
        assert bits(fast.flush()) == bits(reference.flush())
        first += len(batch)


def bits(flushed) -> list:
    series, values, messages, capped = flushed
    return [series.tolist(), values.view(np.int64).tolist(), messages.tolist(), capped]


def scan_one(text: bytes, kind=dec.PREDICTION, table=None):
    table = table or sc.ShapeTable()
    buf, off = sc.pack([text])
    status, ids, vstart, vals, _, _ = table.scan(buf, off, kind == dec.PREDICTION, 10_000)
    return int(status[0]), table, int(ids[0]), vals[vstart[0]:]


# -- the scanner and router against the per-message path ------------------------------------


@settings(max_examples=1000, deadline=None)
@given(st.lists(st.lists(event_text(), max_size=8), min_size=1, max_size=3),
       st.sampled_from([dec.PREDICTION, dec.FEATURE]), st.sampled_from([sc.ALL_BITS, 0]),
       st.sampled_from([10_000, 3]), st.sampled_from([frozenset(), frozenset({"m", "mv"})]))
def test_batches_give_what_messages_one_by_one_give(batches, kind, hash_mask, budget, allowed):
    reference = router(kind, budget, allowed_models=allowed)
    fast = router(kind, budget, allowed_models=allowed, hash_mask=hash_mask)
    assert_batches_agree(reference, fast, batches)


@settings(max_examples=1000, deadline=None)
@given(st.lists(event_text(), min_size=1, max_size=8), st.sampled_from([dec.PREDICTION, dec.FEATURE]))
def test_fast_messages_read_as_orjson_and_the_router_read_them(batch, kind):
    table = sc.ShapeTable()
    r = router(kind)
    buf, off = sc.pack(batch)
    status, ids, vstart, vals, _, _ = table.scan(buf, off, kind == dec.PREDICTION, r.max_bytes)
    for k in np.flatnonzero(status != sc.SLOW):
        model, version, names, types = sc.decode_canonical(table.canonical(ids[k]))
        if len(set(names)) < len(names):
            continue  # a feature name twice: the router sends the shape the slow way
        doc = orjson.loads(batch[k])
        event = r.decode(batch[k])  # the reference path: valid, and this is how it reads it
        columns = [*event.features.values(), event.prediction, event.score]
        assert (model, version, names) == (event.model, event.model_version, tuple(event.features))
        assert types == tuple(map(type, columns))
        features = doc.get("features") or {}
        assert names == tuple(features)
        assert [float(v) if type(v) in (int, float) else v for v in features.values()] == [
            float(v) if type(v) in (int, float) else v for v in columns[:len(names)]]
        for got, value in zip(vals[vstart[k]:vstart[k] + len(columns)], columns):
            if type(value) in (int, float):
                assert np.float64(got).view(np.int64) == np.float64(float(value)).view(np.int64)
            else:
                assert math.isnan(got)


def test_the_common_event_is_fast_and_unusual_valid_forms_are_left_to_the_slow_path():
    assert scan_one(valid_event(1))[0] == sc.NEW
    for text in (b'{"event_id":"a","model":"m","prediction":1,"prediction":2}',
                 b'{"event_id":"a","model":"\\u006d","prediction":1}',
                 b'{"event_id":"a","model":"m","prediction":0.300000000000000000004}',
                 b'{"event_id":"a","model":"m","prediction":1,"extra":[1]}',
                 b'{"event_id":"a","model":"m","prediction":1} x'):
        assert scan_one(text)[0] == sc.SLOW, text
    # A feature name twice is a shape of its own, which the router leaves to the slow path.
    twice = b'{"event_id":"a","model":"m","prediction":1,"features":{"a":1,"a":2}}'
    r = router()
    r.add_batch([twice, twice], np.arange(2))
    assert r._table_shapes == [("m", None)] and r.flush()[1].tolist() == [2.0, 1.0, 2.0, 1.0]


# -- exact numbers -------------------------------------------------------------------------


def read_number(text: str):
    status, _, _, vals = scan_one(b'{"event_id":"a","model":"m","prediction":%s}' % text.encode())
    return None if status == sc.SLOW else vals[0]


@pytest.mark.parametrize("text", [
    "9007199254740991", "-9007199254740991", "0", "1e22", "1e-22", "9007199254740991e22", "9007199254740991e-22",
    "0.1", "0.3", "123.456e-5", "-0.0", "-0e0", "1.5E+3", "4.35", "0.000001", "8.5e-15",
    # Python's repr of a float: up to 17 significant digits
    "0.30000000000000004", "-1.2345678901234567e-05", "123.45678901234568", "2.2250738585072014e-308",
    "1e23", "1e-23", "9007199254740992e0", "1.0000000000000000", "1e-400", "0e23",
])
def test_numbers_within_the_exact_fast_path_are_read_as_python_reads_them(text):
    got = read_number(text)
    assert got is not None, text
    assert np.float64(got).view(np.int64) == np.float64(float(text)).view(np.int64)


def test_an_integer_has_no_negative_zero():
    assert np.float64(read_number("-0")).view(np.int64) == 0


@pytest.mark.parametrize("text", [
    "9007199254740992", "-9007199254740992", "12345678901234567890.5", "1e400", "01", "1.", ".5", "+1", "-", "1e",
    "NaN", "Infinity",
])
def test_numbers_beyond_the_exact_fast_path_are_slow(text):
    assert read_number(text) is None


@settings(max_examples=2000, deadline=None)
@given(st.integers(0, 2**53 - 1), st.integers(-22, 22), st.booleans())
def test_every_mantissa_and_exponent_of_the_fast_path_rounds_as_python_does(m, e, negative):
    text = f"{'-' if negative else ''}{m}e{e}"
    assert np.float64(read_number(text)).view(np.int64) == np.float64(float(text)).view(np.int64)


@settings(max_examples=500, deadline=None)
@given(st.integers(0, 2**53 - 1), st.integers(0, 22))
def test_decimal_points_are_read_as_python_reads_them(m, point):
    digits = str(m).rjust(point + 1, "0")
    text = digits[:len(digits) - point] + ("." + digits[len(digits) - point:] if point else "")
    assert np.float64(read_number(text)).view(np.int64) == np.float64(float(text)).view(np.int64)


# -- timestamps ------------------------------------------------------------------------------


@settings(max_examples=1000, deadline=None)
@given(st.datetimes(timezones=st.timezones()), st.sampled_from(["seconds", "milliseconds", "microseconds"]),
       st.sampled_from([None, 1, 2, 4, 7]))
def test_fast_timestamps_are_those_python_accepts(dt, spec, mangle):
    text = dt.isoformat(timespec=spec).replace("+00:00", "Z")
    if mangle is not None and len(text) > mangle:
        text = text[:mangle] + str(int(text[mangle]) + 1 if text[mangle].isdigit() else 0) + text[mangle + 1:]
    raw = b'{"event_id":"a","model":"m","prediction":1,"timestamp":"%s"}' % text.encode()
    status = scan_one(raw)[0]
    try:
        dec.parse_timestamp(text)
    except dec.InvalidEvent:
        assert status == sc.SLOW, text
        return
    # Offsets with seconds and other rare forms may be slow; the common one is not.
    if len(text) in (20, 24, 27, 25, 29, 32) and text[10] == "T" and dt.utcoffset().seconds % 60 == 0:
        assert status == sc.NEW, text
    if status != sc.SLOW:
        buf, off = sc.pack([raw])
        times = sc.ShapeTable().scan(buf, off, True, 10_000).times
        assert times[0] == pytest.approx(dec.parse_timestamp(text), rel=1e-15, abs=1e-6), text


# -- the shape table -------------------------------------------------------------------------


def test_shapes_stay_apart_when_every_hash_collides():
    texts = [
        b'{"event_id":"a","model":"m","prediction":1,"features":{"ab":1}}',
        b'{"event_id":"a","model":"m","prediction":1,"features":{"a":1,"b":2}}',
        b'{"event_id":"a","model":"m","prediction":1,"features":{"a":"x","b":2}}',
        b'{"event_id":"a","model":"mv","model_version":"1","prediction":1}',
        b'{"event_id":"a","model":"m","model_version":"v1","prediction":1}',
        b'{"event_id":"a","model":"m","prediction":1,"score":0.5}',
        b'{"event_id":"a","model":"m","prediction":1}',
        b'{"event_id":"a","model":"m","model_version":"unknown","prediction":1}',
    ]
    table = sc.ShapeTable(hash_mask=0)
    buf, off = sc.pack(texts * 2)
    status, ids, *_ = table.scan(buf, off, True, 10_000)
    assert (status == sc.NEW).all()
    assert len(table) == 7 and ids[:8].tolist() == [0, 1, 2, 3, 4, 5, 6, 6], "absent version is 'unknown'"
    assert ids[8:].tolist() == ids[:8].tolist()
    keys = {sc.decode_canonical(table.canonical(i)) for i in range(7)}
    assert len(keys) == 7


def test_a_colliding_router_routes_as_the_reference_does():
    batch = [valid_event(i, f"m{i % 5}") for i in range(40)]
    batch[7] = b'{"event_id":"a","model":"m1","prediction":1,"features":{"b":2,"a":1.0}}'
    reference, colliding = router(), router(hash_mask=0)
    one_by_one(reference, batch, 0)
    colliding.add_batch(batch, np.arange(40))
    assert bits(colliding.flush()) == bits(reference.flush())
    colliding.add_batch(batch, np.arange(40))
    one_by_one(reference, batch, 0)
    assert bits(colliding.flush()) == bits(reference.flush())


def test_the_table_grows_past_its_first_size():
    batch = [valid_event(i, f"model-{i}") for i in range(300)]
    reference, fast = router(), router()
    one_by_one(reference, batch, 0)
    assert fast.add_batch(batch, np.arange(300)) == []
    assert len(fast._table) == 300
    assert bits(fast.flush()) == bits(reference.flush())


def test_forgotten_shapes_resolve_again():
    reference, fast = router(budget=2), router(budget=2)
    batch = [valid_event(i) for i in range(3)]
    for _ in range(2):
        one_by_one(reference, batch, 0)
        fast.add_batch(batch, np.arange(3))
        assert bits(fast.flush()) == bits(reference.flush())
        assert reference.flush()[3] == 0
        reference.forget_shapes()
        fast.forget_shapes()
    assert len(fast._table) == 1, "cleared, then the one shape again"


# -- templates: events of a few layouts, matched without the full scan -----------------------

# Four layouts, as four producers would write them: model, version, key order, spacing, and
# the type of each value (features in order, then timestamp, prediction, score).
LAYOUTS = [
    ("m", "v1", ["event_id", "model", "model_version", "timestamp", "features", "prediction"], "",
     {"x0": "num", "x1": "num", "x2": "str"}, "num", "num", None),
    ("m2", "v1", ["model", "event_id", "features", "prediction", "score", "timestamp"], "",
     {"a": "num", "b": "bool"}, "time", "str", "num"),
    ("mv", "1", ["event_id", "timestamp", "model", "model_version", "prediction", "features"], " ",
     {"x0": "num"}, "null", "bool", None),
    ("m", "v2", ["features", "event_id", "model", "model_version", "prediction", "score"], "",
     {"x0": "num", "x1": "null", "x2": "num"}, None, "num", "null"),
]
GOOD = {"num": exact_number_text, "str": plain_string, "bool": st.sampled_from(["true", "false"]),
        "null": st.just("null"), "time": good_timestamps, "id": plain_text.filter(bool).map(quoted)}
# A value of another type than the layout's (a number becoming a string or null), or not valid.
other_value = st.one_of(number_text, string_text, literal_text, nested_text,
                        st.sampled_from(['""', "{}", '"2024-05-01T12:00:00"', "1e23", "-0"]))


@st.composite
def layout_event(draw):
    """An event of one of the LAYOUTS, its values drawn; now and then one value of another type,
    a byte of the text changed (in a literal part or a value), the text cut short, keys added
    after the layout's last one or a space added."""
    model, version, order, pad, features, timestamp, prediction, score = draw(st.sampled_from(LAYOUTS))
    kinds = {"event_id": "id", "timestamp": timestamp, "prediction": prediction, "score": score,
             **{f"features.{n}": k for n, k in features.items()}}
    odd = draw(st.sampled_from([None] * 4 + list(kinds)))
    value = {slot: draw(other_value if slot == odd else GOOD[kind]) for slot, kind in kinds.items() if kind}
    sep, colon = "," + pad, ":" + pad
    members = []
    for key in order:
        if key == "model" or key == "model_version":
            text = quoted(model if key == "model" else version)
        elif key == "features":
            text = "{" + sep.join(f'"{n}"{colon}{value["features." + n]}' for n in features) + "}"
        elif key in value:
            text = value[key]
        else:
            continue
        members.append(f'"{key}"{colon}{text}')
    text = ("{" + sep.join(members) + "}").encode()
    cut = draw(st.sampled_from(["none"] * 10 + ["flip", "truncate", "extra", "extra", "space"]))
    if cut == "flip":
        i = draw(st.integers(0, len(text) - 1))
        byte = draw(st.one_of(st.sampled_from(b'0123456789-.eE",:{} x\\'), st.integers(0, 255)))
        text = text[:i] + bytes([byte]) + text[i + 1:]
    elif cut == "truncate":
        text = text[:draw(st.integers(0, len(text) - 1))]
    elif cut == "extra":
        key = draw(st.sampled_from(["extra", "score", "event_id", "features", "x0"]))
        text = text[:-1] + f',"{key}":{draw(st.one_of(good_scalar, nested_text))}}}'.encode()
    elif cut == "space":
        i = draw(st.integers(1, len(text) - 1))
        text = text[:i] + b" " + text[i:]
    return text


def scan_each_alone(batches: list, kind) -> list:
    """(slow, id, values) of every message, each scanned by the full scan (no templates left
    for it), the shape ids counting up as in one table."""
    table = sc.ShapeTable()
    out = []
    for text in (t for batch in batches for t in batch):
        table.tstate[sc.T_COUNT] = 0
        buf, off = sc.pack([text])
        status, ids, vstart, vals, _, _ = table.scan(buf, off, kind == dec.PREDICTION, 10_000)
        out.append(read_back(table, status, ids, vstart, vals, 0))
    return out


def read_back(table, status, ids, vstart, vals, k):
    if status[k] == sc.SLOW:
        return (True, None, None)
    width = len(sc.decode_canonical(table.canonical(ids[k]))[2]) + sc.EXTRA  # with the event time
    return (False, int(ids[k]), vals[vstart[k]:vstart[k] + width].view(np.int64).tolist())


@settings(max_examples=500, deadline=None)
@given(st.lists(st.lists(layout_event(), max_size=30), min_size=1, max_size=4),
       st.sampled_from([dec.PREDICTION, dec.FEATURE]))
def test_templates_give_what_the_full_scan_gives(batches, kind):
    table = sc.ShapeTable()
    got = []
    for batch in batches:
        buf, off = sc.pack(batch)
        status, ids, vstart, vals, _, _ = table.scan(buf, off, kind == dec.PREDICTION, 10_000)
        got += [read_back(table, status, ids, vstart, vals, k) for k in range(len(batch))]
    assert got == scan_each_alone(batches, kind)
    assert table.tstate[sc.T_COUNT] <= sc.MAX_TEMPLATES


@settings(max_examples=300, deadline=None)
@given(st.lists(st.lists(layout_event(), max_size=30), min_size=1, max_size=3),
       st.sampled_from([dec.PREDICTION, dec.FEATURE]), st.sampled_from([10_000, 3]))
def test_templated_batches_give_what_messages_one_by_one_give(batches, kind, budget):
    assert_batches_agree(router(kind, budget), router(kind, budget), batches)


def templated(text: str, timestamp: str | None = None) -> bytes:
    """An event with ``text`` as its feature and (unless given) its timestamp."""
    return b'{"event_id":"a","model":"m","timestamp":%s,"features":{"a":%s},"prediction":1}' % (
        (text if timestamp is None else timestamp).encode(), text.encode())


def read_templated(text: str):
    """The feature value of an event in a slot of a template of its layout: None if not FAST."""
    table = sc.ShapeTable()
    buf, off = sc.pack([templated("1"), templated("2.5"), templated(text)])
    status, ids, vstart, vals, _, _ = table.scan(buf, off, True, 10_000)
    assert table.tstate[sc.T_COUNT] == 1
    return None if status[2] == sc.SLOW else vals[vstart[2]]


@settings(max_examples=2000, deadline=None)
@given(st.one_of(st.integers(0, 2**53 - 1), st.integers(0, 10**16)), st.integers(0, 17), st.booleans(),
       st.sampled_from(["", "", "e5", "E-3", "e+22", "x"]))
def test_numbers_in_template_slots_are_read_as_the_full_scan_reads_them(m, point, negative, tail):
    digits = str(m).rjust(point + 1, "0")
    text = ("-" if negative else "") + digits[:len(digits) - point]
    text += ("." + digits[len(digits) - point:] if point else "") + tail
    got = read_templated(text)
    want = read_number(text)
    assert (got is None) == (want is None), text
    if got is not None:
        assert np.float64(got).view(np.int64) == np.float64(want).view(np.int64), text


@pytest.mark.parametrize("text", [
    "0", "-0", "-0.0", "0.5", "-0.000001", "123456789012345", "1234567890123456", "12345678.12345678",
    "9007199254740991", "1.7e9", "01", "1.", ".5", "-", "+1", "1e", "0x10", "1.5.5", "--1", "1e400",
])
def test_edge_numbers_in_template_slots_are_read_as_the_full_scan_reads_them(text):
    got, want = read_templated(text), read_number(text)
    assert (got is None) == (want is None), text
    if got is not None:
        assert np.float64(got).view(np.int64) == np.float64(want).view(np.int64), text


def slotted(**fields) -> bytes:
    values = {"event_id": '"a"', "timestamp": "1", "x": "1", "prediction": "1", "score": "null", **fields}
    return ('{{"event_id":{event_id},"model":"m","timestamp":{timestamp},"features":{{"x":{x}}},'
            '"prediction":{prediction},"score":{score}}}').format(**values).encode()


@pytest.mark.parametrize("field, value", [
    ("event_id", '""'), ("event_id", "1"), ("event_id", '"a\\"b"'), ("event_id", '"\x01"'),
    ("timestamp", '"2024-05-01T12:00:00Z"'), ("timestamp", '"2024-05-01T12:00:00"'),
    ("timestamp", '"2023-02-29T00:00:00Z"'),
    ("timestamp", "1e23"), ("timestamp", "1e400"), ("timestamp", "true"), ("timestamp", "null"),
    ("x", '""'), ("x", "1e23"), ("x", "9007199254740993"), ("x", "-0"), ("x", "true"), ("x", "[1]"),
    ("prediction", '""'), ("prediction", "null"), ("prediction", "1e23"), ("prediction", "false"),
    ("score", "1"), ("score", "1e23"), ("score", '"s"'), ("score", "true"),
])
def test_each_slot_checks_its_value_as_the_full_scan_does(field, value):
    # Templates with each slot a number, a string and null where the field can be.
    for other in ("1", '"2024-05-01T12:00:00Z"' if field == "timestamp" else '"a"', "null"):
        table = sc.ShapeTable()
        base = slotted(**{field: other})
        buf, off = sc.pack([base, base, slotted(**{field: value})])
        status, ids, vstart, vals, _, _ = table.scan(buf, off, True, 10_000)
        alone = sc.ShapeTable()
        alone.scan(*sc.pack([base]), True, 10_000)
        want_status, _, want_id, want_vals = scan_one(slotted(**{field: value}), table=alone)
        assert (status[2] == sc.SLOW) == (want_status == sc.SLOW), (field, value, other)
        if status[2] != sc.SLOW:
            assert ids[2] == want_id
            assert vals[vstart[2]:vstart[2] + 3].view(np.int64).tolist() == want_vals[:3].view(np.int64).tolist()


def test_a_slot_whose_type_changes_takes_the_full_scan_and_its_own_shape():
    events = [templated(v, "1") for v in ["1", "2", "3", '"x"', "null", "4"]]
    table = sc.ShapeTable()
    buf, off = sc.pack(events)
    status, ids, vstart, vals, _, _ = table.scan(buf, off, True, 10_000)
    assert (status != sc.SLOW).all()
    assert ids.tolist() == [0, 0, 0, 1, 2, 0]
    assert sc.decode_canonical(table.canonical(1))[3][0] is str
    assert sc.decode_canonical(table.canonical(2))[3][0] is type(None)
    assert vals[vstart[5]] == 4.0


def test_a_template_prefix_with_more_keys_after_it_is_the_full_scan_s():
    base = b'{"event_id":"a","model":"m","features":{"a":1},"prediction":1}'
    events = [base, base, base[:-1] + b',"extra":1}', base[:-1] + b',"prediction":2}', base[:-1], base + b" x"]
    table = sc.ShapeTable()
    buf, off = sc.pack(events)
    status, ids, *_ = table.scan(buf, off, True, 10_000)
    assert status.tolist() == [sc.NEW, sc.NEW, sc.NEW, sc.SLOW, sc.SLOW, sc.SLOW]
    assert ids[:3].tolist() == [0, 0, 0]


def test_templates_are_bounded_and_cleared_with_the_table():
    table = sc.ShapeTable()
    batch = [valid_event(i, f"model-{i % 40}") for i in range(400)]
    for _ in range(2):
        buf, off = sc.pack(batch)
        status, *_ = table.scan(buf, off, True, 10_000)
        assert (status != sc.SLOW).all()
    assert table.tstate[sc.T_COUNT] == sc.MAX_TEMPLATES
    table.clear()
    assert table.tstate[sc.T_COUNT] == 0 and len(table) == 0
    buf, off = sc.pack(batch[:3])
    status, ids, *_ = table.scan(buf, off, True, 10_000)
    assert ids.tolist() == [0, 1, 2]


def test_models_taking_turns_each_keep_a_template():
    batch = [valid_event(i, f"model-{i % 4}") for i in range(40)]
    table = sc.ShapeTable()
    buf, off = sc.pack(batch)
    table.scan(buf, off, True, 10_000)
    assert table.tstate[sc.T_COUNT] == 4
    assert sorted(table.meta[:4, sc.M_SID].tolist()) == [0, 1, 2, 3]


@pytest.mark.parametrize("text", ["1.1137271124000367e-07", "1.7000000001234567e9", "17000000001234567.5e-7",
                                  "1E+09", "9.99999999999999999e-05", "-1.7000000001234567E+009"])
def test_event_times_beyond_the_exact_fast_path_are_read_closely(text):
    raw = b'{"event_id":"a","model":"m","prediction":1,"timestamp":%s}' % text.encode()
    buf, off = sc.pack([raw])
    status, *_, times = sc.ShapeTable().scan(buf, off, True, 10_000)
    assert status[0] == sc.NEW
    assert times[0] == pytest.approx(float(text), rel=1e-15), text
