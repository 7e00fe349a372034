"""Field types shared by the event and alert models.

Values are checked by type, not coerced: the string ``"1.5"`` is not a number and ``true`` is not
the number 1, as in JSON. Each check raises one error that says what the value should have been,
so a rejected event names its field and the reason. These are the rules the hot-path decoder in
``driftwire.stream.ingest.decode`` implements by hand.
"""

from __future__ import annotations

import sys
from datetime import UTC, datetime
from typing import Annotated

from pydantic import AfterValidator, AwareDatetime, BeforeValidator, Field, PlainValidator, StrictStr, WithJsonSchema

_MAX_FLOAT = sys.float_info.max

#: The model version of an event that gives none.
UNKNOWN_VERSION = "unknown"

#: The longest event id, model, model version or feature name: each is a key of the service's
#: state, and the names become metric label values.
MAX_NAME_LENGTH = 256

_JSON_TYPES = {bool: "boolean", int: "number", float: "number", str: "string", dict: "object",
               list: "array", tuple: "array", type(None): "null"}


def _json_type(v) -> str:
    return _JSON_TYPES.get(type(v), type(v).__name__)


def _number(v) -> int | float:
    # bool is an int in Python but not a number in JSON.
    if isinstance(v, bool) or not isinstance(v, (int, float)):
        raise ValueError(f"must be a number, got {_json_type(v)}")
    # The comparison is exact for ints too, so an integer beyond the float range is refused as well.
    if not -_MAX_FLOAT <= v <= _MAX_FLOAT:
        raise ValueError("must be a finite number (not NaN, infinity or beyond the float64 range)")
    return float(v) if isinstance(v, float) else int(v)


def _value(v) -> int | float | str | bool:
    if isinstance(v, (str, bool)):
        return v
    if isinstance(v, (int, float)):
        return _number(v)
    raise ValueError(f"must be a finite number, a string or a boolean, got {_json_type(v)}")


def _feature_value(v) -> int | float | str | bool | None:
    if v is None:
        return None
    if isinstance(v, (int, float, str)):
        return _value(v)
    raise ValueError(f"must be a finite number, a string, a boolean or null, got {_json_type(v)}")


def _epoch_seconds(v) -> float | None:
    if v is None:
        return None
    if isinstance(v, str):
        try:
            dt = datetime.fromisoformat(v)
        except ValueError:
            raise ValueError(f"{v!r} is not an RFC 3339 date-time") from None
        if dt.tzinfo is None:
            raise ValueError(f"{v!r} has no UTC offset (end it with Z or +HH:MM)")
        return dt.timestamp()
    if isinstance(v, (int, float)) and not isinstance(v, bool):
        return float(_number(v))
    raise ValueError(f"must be epoch seconds (a number) or an RFC 3339 string, got {_json_type(v)}")


def _model_version(v) -> str:
    if v is None:
        return UNKNOWN_VERSION
    if not isinstance(v, str):
        raise ValueError(f"must be a string, got {_json_type(v)}")
    if len(v) > MAX_NAME_LENGTH:
        raise ValueError(f"must be at most {MAX_NAME_LENGTH} characters")
    return v


def _to_utc(dt: datetime) -> datetime:
    return dt.astimezone(UTC)


_NUMBER_SCHEMA = {"type": "number"}
_VALUE_SCHEMA = {"anyOf": [_NUMBER_SCHEMA, {"type": "string"}, {"type": "boolean"}]}
_FEATURE_VALUE_SCHEMA = {"anyOf": [*_VALUE_SCHEMA["anyOf"], {"type": "null"}]}

#: A finite JSON number (int or float); bool and numeric strings are refused.
Number = Annotated[float, PlainValidator(_number), WithJsonSchema(_NUMBER_SCHEMA)]

#: A prediction or a label: a finite number, a string or a boolean.
Value = Annotated[int | float | str | bool, PlainValidator(_value), WithJsonSchema(_VALUE_SCHEMA)]

#: One feature's value: a finite number, a string, a boolean or null; never an object or an array.
FeatureValue = Annotated[
    int | float | str | bool | None, PlainValidator(_feature_value), WithJsonSchema(_FEATURE_VALUE_SCHEMA)
]

#: Model inputs by feature name.
Features = dict[Annotated[str, Field(max_length=MAX_NAME_LENGTH)], FeatureValue]

#: Model inputs by feature name; null stands for no features, like an absent field.
OptionalFeatures = Annotated[
    Features,
    BeforeValidator(lambda v: {} if v is None else v),
    WithJsonSchema({"anyOf": [{"type": "object", "additionalProperties": _FEATURE_VALUE_SCHEMA,
                               "propertyNames": {"maxLength": MAX_NAME_LENGTH}}, {"type": "null"}]}),
]

#: Event time in seconds since the Unix epoch, given as a number or an RFC 3339 string with offset.
Timestamp = Annotated[
    float | None,
    PlainValidator(_epoch_seconds),
    WithJsonSchema({"anyOf": [_NUMBER_SCHEMA, {"type": "string", "format": "date-time"}, {"type": "null"}]}),
]

#: A model version; null stands for "unknown", like an absent field.
ModelVersion = Annotated[
    str, PlainValidator(_model_version),
    WithJsonSchema({"anyOf": [{"type": "string", "maxLength": MAX_NAME_LENGTH}, {"type": "null"}]}),
]

#: A string of at least one character.
NonEmptyStr = Annotated[StrictStr, Field(min_length=1)]

#: An event id or a model name: one to MAX_NAME_LENGTH characters.
Name = Annotated[StrictStr, Field(min_length=1, max_length=MAX_NAME_LENGTH)]

#: A timezone-aware datetime, converted to UTC; serialized as RFC 3339 with a trailing Z.
UtcDatetime = Annotated[AwareDatetime, AfterValidator(_to_utc)]
