"""Decode and check input events on the hot path.

The pydantic models in ``driftwire.schemas`` are the contract; validating every event through
them costs several microseconds, so this module checks the same rules by hand on the dict orjson
returns (tests keep both in agreement). An event that breaks a rule raises :class:`InvalidEvent`
with one of a fixed set of reasons, the label of ``driftwire_invalid_events_total``.
"""

from __future__ import annotations

import json
import logging
import math
from datetime import datetime

import msgspec
import orjson

from driftwire.schemas.fields import MAX_NAME_LENGTH

# The reasons an event is dead-lettered: a fixed set, so metric labels stay bounded.
MALFORMED_JSON = "malformed_json"
NOT_AN_OBJECT = "not_an_object"
MISSING_FIELD = "missing_field"
WRONG_TYPE = "wrong_type"
NON_FINITE = "non_finite"
INVALID_VALUE = "invalid_value"
OVERSIZED = "oversized"
UNKNOWN_MODEL = "unknown_model"
#: the decoder failed on the message in a way no other reason names (logged with its traceback)
UNDECODABLE = "undecodable"
REASONS = (
    MALFORMED_JSON, NOT_AN_OBJECT, MISSING_FIELD, WRONG_TYPE, NON_FINITE, INVALID_VALUE, OVERSIZED,
    UNKNOWN_MODEL, UNDECODABLE,
)

#: what msgspec raises on a message its fast decoders refuse; the reference check then says why.
#: RecursionError: nesting deeper than its stack allows, which orjson refuses as malformed.
REFUSED = (msgspec.DecodeError, UnicodeDecodeError, RecursionError)

PREDICTION = "prediction"
FEATURE = "feature"
LABEL = "label"

_MAX_FLOAT = 1.7976931348623157e308

log = logging.getLogger("driftwire")


class InvalidEvent(ValueError):
    def __init__(self, reason: str, message: str):
        super().__init__(message)
        self.reason = reason
        self.message = message


def undecodable(exc: Exception) -> InvalidEvent:
    """The dead letter's error for a message whose decoding raised ``exc``, not InvalidEvent:
    that message alone is refused, and the traceback is logged for a bug report."""
    log.warning("a message could not be decoded; it is dead-lettered as %s", UNDECODABLE, exc_info=exc)
    return InvalidEvent(UNDECODABLE, f"{type(exc).__name__}: {exc}"[:500])


def parse_json(value: bytes) -> object:
    """orjson's parse; on failure, say whether the text was JSON with NaN/Infinity or not JSON."""
    try:
        return orjson.loads(value)
    except orjson.JSONDecodeError as exc:
        raise InvalidEvent(_refusal_reason(value), f"not valid JSON: {exc}") from None


def _refusal_reason(value: bytes) -> str:
    """NON_FINITE when NaN, Infinity or an overflowing number is all that keeps ``value`` from
    being JSON; MALFORMED_JSON for anything else orjson refuses (bad UTF-8, a byte order mark,
    a lone surrogate escape, nesting deeper than 1024)."""
    found = []

    def non_finite(text):
        found.append(text)
        return 0.0

    def number(text):
        if not math.isfinite(float(text)):
            found.append(text)
        return 0.0

    try:
        # Python's json reads NaN, Infinity and overflowing numbers through these hooks, and
        # refuses a byte order mark in a str; it accepts lone surrogates, which orjson does not.
        json.loads(value.decode("utf-8"), parse_constant=non_finite, parse_float=number, parse_int=number)
    except (ValueError, RecursionError):
        return MALFORMED_JSON
    return NON_FINITE if found else MALFORMED_JSON


def _is_number(v) -> bool:
    t = type(v)
    return t is float or t is int


def _check_number(name: str, v) -> None:
    # bool is a subclass of int in Python, but not a number in JSON: type() excludes it.
    if not _is_number(v):
        raise InvalidEvent(WRONG_TYPE, f"{name} must be a number, got {type(v).__name__}")
    if not -_MAX_FLOAT <= v <= _MAX_FLOAT:
        raise InvalidEvent(NON_FINITE, f"{name} is not a finite number")


def _required_str(doc: dict, name: str) -> str:
    v = doc.get(name)
    if v is None:
        raise InvalidEvent(MISSING_FIELD, f"missing required field {name!r}")
    if type(v) is not str:
        raise InvalidEvent(WRONG_TYPE, f"{name} must be a string, got {type(v).__name__}")
    if not v:
        raise InvalidEvent(INVALID_VALUE, f"{name} must not be empty")
    return v


def name_error(event_id: str, model: str, version: str, features=()) -> InvalidEvent | None:
    """The error of an event id, model, version or feature name longer than MAX_NAME_LENGTH
    (they become keys of the service's state and metric label values), if any."""
    if max(len(event_id), len(model), len(version), max(map(len, features), default=0)) <= MAX_NAME_LENGTH:
        return None
    for what, name in (("event_id", event_id), ("model", model), ("model_version", version),
                       *(("feature name", f) for f in features)):
        if len(name) > MAX_NAME_LENGTH:
            return InvalidEvent(INVALID_VALUE, f"{what} of {len(name)} characters is longer than {MAX_NAME_LENGTH}: "
                                               f"{name[:40]!r}...")
    return None


def _check_names(event_id: str, model: str, version: str, features=()) -> None:
    error = name_error(event_id, model, version, features)
    if error is not None:
        raise error


def parse_timestamp(v) -> float | None:
    """Epoch seconds from a number or an RFC 3339 string (with offset); None when absent."""
    if v is None:
        return None
    if type(v) is str:
        try:
            dt = datetime.fromisoformat(v)
        except ValueError:
            raise InvalidEvent(INVALID_VALUE, f"timestamp {v!r} is not RFC 3339") from None
        if dt.tzinfo is None:
            raise InvalidEvent(INVALID_VALUE, f"timestamp {v!r} has no UTC offset")
        return dt.timestamp()
    _check_number("timestamp", v)
    return float(v)


def _label_value(name: str, v) -> None:
    t = type(v)
    if t is str or t is bool:
        return
    if v is None:
        raise InvalidEvent(MISSING_FIELD, f"missing required field {name!r}")
    _check_number(name, v)


#: types a feature value may have (JSON number, string, bool, null)
FEATURE_TYPES = frozenset((float, int, str, bool, type(None)))
NUMBER_TYPES = frozenset((float, int))


def feature_type_error(name: str, t: type) -> InvalidEvent | None:
    if t in FEATURE_TYPES:
        return None
    return InvalidEvent(WRONG_TYPE, f"feature {name!r} must be a number, string, bool or null, got {t.__name__}")


def check_feature_range(name: str, v) -> None:
    # orjson only yields finite floats; an integer can still be beyond float64.
    if not -_MAX_FLOAT <= v <= _MAX_FLOAT:
        raise InvalidEvent(NON_FINITE, f"feature {name!r} is not a finite number")


def check_features(features) -> dict:
    if type(features) is not dict:
        raise InvalidEvent(WRONG_TYPE, f"features must be an object, got {type(features).__name__}")
    for name, v in features.items():
        t = type(v)
        error = feature_type_error(name, t)
        if error is not None:
            raise error
        if t is int:
            check_feature_range(name, v)
    return features


class Event:
    """The fields of a valid prediction or feature event that detection uses."""

    __slots__ = ("event_id", "model", "model_version", "timestamp", "features", "prediction", "score")

    def __init__(self, event_id, model, model_version, timestamp, features, prediction, score):
        self.event_id = event_id
        self.model = model
        self.model_version = model_version
        self.timestamp = timestamp
        self.features = features
        self.prediction = prediction
        self.score = score


def check_event(doc, kind: str) -> Event:
    """Check a decoded prediction or feature event; raise :class:`InvalidEvent` if it breaks the contract."""
    event = check_header(doc, kind)
    check_features(event.features)
    return event


def check_header(doc, kind: str) -> Event:
    """Every rule of :func:`check_event` except those on the feature values, which the hot path
    checks once per event shape (see :mod:`driftwire.stream.ingest.router`)."""
    if type(doc) is not dict:
        raise InvalidEvent(NOT_AN_OBJECT, f"event must be a JSON object, got {type(doc).__name__}")
    event_id = _required_str(doc, "event_id")
    model = _required_str(doc, "model")
    version = doc.get("model_version", "unknown")
    if type(version) is not str:
        if version is None:
            version = "unknown"
        else:
            raise InvalidEvent(WRONG_TYPE, f"model_version must be a string, got {type(version).__name__}")
    timestamp = parse_timestamp(doc.get("timestamp"))
    features = doc.get("features")
    prediction = score = None
    if type(features) is not dict:
        if features is not None:
            raise InvalidEvent(WRONG_TYPE, f"features must be an object, got {type(features).__name__}")
        if kind != PREDICTION:
            raise InvalidEvent(MISSING_FIELD, "missing required field 'features'")
        features = {}
    _check_names(event_id, model, version, features)
    if kind == PREDICTION:
        if "prediction" not in doc:
            raise InvalidEvent(MISSING_FIELD, "missing required field 'prediction'")
        prediction = doc["prediction"]
        _label_value("prediction", prediction)
        score = doc.get("score")
        if score is not None:
            _check_number("score", score)
    return Event(event_id, model, version, timestamp, features, prediction, score)


class Label:
    """The fields of a valid label event."""

    __slots__ = ("event_id", "model", "model_version", "timestamp", "label")

    def __init__(self, event_id, model, model_version, timestamp, label):
        self.event_id = event_id
        self.model = model
        self.model_version = model_version
        self.timestamp = timestamp
        self.label = label


def check_label(doc) -> Label:
    """Check a decoded label event; raise :class:`InvalidEvent` if it breaks the contract."""
    if type(doc) is not dict:
        raise InvalidEvent(NOT_AN_OBJECT, f"event must be a JSON object, got {type(doc).__name__}")
    event_id = _required_str(doc, "event_id")
    model = _required_str(doc, "model")
    version = doc.get("model_version", "unknown")
    if type(version) is not str:
        if version is not None:
            raise InvalidEvent(WRONG_TYPE, f"model_version must be a string, got {type(version).__name__}")
        version = "unknown"
    _check_names(event_id, model, version)
    timestamp = parse_timestamp(doc.get("timestamp"))
    if "label" not in doc:
        raise InvalidEvent(MISSING_FIELD, "missing required field 'label'")
    _label_value("label", doc["label"])
    return Label(event_id, model, version, timestamp, doc["label"])


def check_size(value: bytes | None, max_bytes: int) -> None:
    if value is None:
        raise InvalidEvent(MALFORMED_JSON, "empty message (null value)")
    if len(value) > max_bytes:
        raise InvalidEvent(OVERSIZED, f"message of {len(value)} bytes exceeds max_message_bytes={max_bytes}")


def decode(value: bytes | None, kind: str, max_bytes: int) -> Event:
    """Bytes of one message to a checked :class:`Event`."""
    check_size(value, max_bytes)
    return check_event(parse_json(value), kind)
