"""The input events: predictions, features and labels, one JSON object per Kafka message.

Conventions common to the three:

- ``timestamp`` is validated to float seconds since the Unix epoch (an RFC 3339 string is
  converted), or None, which means "use the Kafka message timestamp". A string must carry a UTC
  offset; it is read with :meth:`datetime.datetime.fromisoformat`, as the hot-path decoder does.
- Unknown fields are accepted and dropped: producers add fields over time, and an event stays
  valid for driftwire as long as the fields below are right.
- Numbers must be finite. Standard JSON has no NaN or Infinity, but some encoders write them and
  Python objects can hold them; such an event is invalid.
"""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict, Field

from .fields import (
    UNKNOWN_VERSION,
    Features,
    ModelVersion,
    Name,
    Number,
    OptionalFeatures,
    Timestamp,
    Value,
)

_EVENT_CONFIG = ConfigDict(extra="ignore", json_schema_extra={"additionalProperties": True})


class _Event(BaseModel):
    model_config = _EVENT_CONFIG

    event_id: Name = Field(
        description=(
            "Producer-assigned identifier of the event, unique for its model. A label is matched to "
            "its prediction by (model, event_id). 1 to 256 characters."
        )
    )
    model: Name = Field(
        description=(
            "Name of the model the event belongs to; detection state and alerts are kept per model. "
            "1 to 256 characters."
        )
    )
    model_version: ModelVersion = Field(
        UNKNOWN_VERSION,
        description=(
            'Version of the model; detection state is kept per (model, model_version). Absent or null means "unknown". '
            "At most 256 characters."
        ),
    )
    timestamp: Timestamp = Field(
        None,
        description=(
            "Event time: seconds since the Unix epoch (a finite number, fractions allowed), or an RFC 3339 "
            "date-time with a UTC offset such as 2024-05-01T12:00:00Z or 2024-05-01T14:00:00+02:00. "
            "Absent or null means the Kafka message timestamp is used."
        ),
    )


class PredictionEvent(_Event):
    """One prediction of a model, with the inputs it was made from. Published on the predictions topic;
    its features feed data-drift detection, its prediction and score prediction-drift detection.
    Fields not listed here are allowed and ignored."""

    features: OptionalFeatures = Field(
        {},
        description=(
            "Model inputs by feature name. Each value is a finite number, a string, a boolean or null "
            "(a missing value); nested objects and arrays are not allowed. Absent or null means no features."
        ),
    )
    prediction: Value = Field(
        description=(
            "The model's output: a finite number (regression value or class index), a string or a boolean "
            "(class label)."
        )
    )
    score: Number | None = Field(
        None,
        description=(
            "The model's confidence in this prediction, a finite number (for instance the predicted class "
            "probability); absent or null when the model gives none."
        ),
    )


class FeatureEvent(_Event):
    """The inputs of one model invocation, without a prediction. Published on the features topic;
    feeds data-drift detection. Fields not listed here are allowed and ignored."""

    features: Features = Field(
        description=(
            "Model inputs by feature name. Each value is a finite number, a string, a boolean or null "
            "(a missing value); nested objects and arrays are not allowed. Required; may be empty."
        )
    )


class LabelEvent(_Event):
    """The ground truth for an earlier prediction, matched to it by (model, event_id). Published on the
    labels topic, possibly long after the prediction; feeds concept-drift and performance detection.
    Fields not listed here are allowed and ignored."""

    label: Value = Field(
        description=(
            "The true outcome: a finite number, a string or a boolean, comparable with the prediction it labels."
        )
    )
