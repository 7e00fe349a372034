"""The drift alert driftwire publishes, as JSON keyed by model, when a detector fires.

Times are timezone-aware UTC datetimes in Python and RFC 3339 strings ending in ``Z`` in JSON
(``2024-05-01T12:00:00Z``, with ``.ffffff`` when there are microseconds). An aware datetime in any
zone is accepted and converted to UTC; a naive one is refused. Unknown fields are ignored when an
alert is read, so consumers keep working when fields are added.
"""

from __future__ import annotations

import uuid
from datetime import UTC, datetime
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, StrictInt, model_validator

from .fields import NonEmptyStr, Number, UtcDatetime

_ALERT_CONFIG = ConfigDict(extra="ignore", json_schema_serialization_defaults_required=True)

Kind = Literal["data_drift", "prediction_drift", "label_drift", "concept_drift", "data_quality", "performance"]
Severity = Literal["warning", "critical"]


class AlertWindow(BaseModel):
    """The values the detector's decision rests on: the event times of the first and the last and
    how many there are."""

    model_config = _ALERT_CONFIG

    start: UtcDatetime = Field(description="Event time of the first value in the window, UTC.")
    end: UtcDatetime = Field(description="Event time of the last value in the window, UTC; not before start.")
    count: StrictInt = Field(ge=1, description="Number of values in the window.")

    @model_validator(mode="after")
    def _ordered(self) -> AlertWindow:
        if self.end < self.start:
            raise ValueError(f"window end {self.end.isoformat()} is before its start {self.start.isoformat()}")
        return self


class AlertSource(BaseModel):
    """Where the event that triggered the alert is on the bus."""

    model_config = _ALERT_CONFIG

    topic: NonEmptyStr = Field(description="Kafka topic of the triggering event.")
    partition: StrictInt = Field(ge=0, description="Partition of the triggering event.")
    offset: StrictInt = Field(ge=0, description="Offset of the triggering event in its partition.")


class DriftAlert(BaseModel):
    """A detector found a change in one signal of one model version. Published as JSON on the alerts
    topic with the model name as message key."""

    model_config = _ALERT_CONFIG

    alert_id: NonEmptyStr = Field(
        default_factory=lambda: str(uuid.uuid4()),
        description=(
            "Identifier of this alert. driftwire derives it (UUID5) from the triggering record, the model "
            "version, the signal and the detector, so an alert republished after a restart keeps its id: "
            "deduplicate on it."
        ),
    )
    model: NonEmptyStr = Field(description="Name of the model whose signal changed.")
    model_version: NonEmptyStr = Field(description='Version of that model ("unknown" when its events gave none).')
    signal: NonEmptyStr = Field(
        description=(
            "What changed: the name of a feature, or prediction, score, label, or error (the model's error "
            "on labelled predictions)."
        )
    )
    kind: Kind = Field(
        description=(
            "Kind of change: data_drift (a feature's distribution), prediction_drift (the distribution of "
            "predictions or scores), label_drift (the distribution of ground-truth labels), concept_drift (the "
            "relation between inputs and labels, seen in the error), data_quality (missing or malformed values), "
            "performance (a quality metric computed from labels)."
        )
    )
    detector: NonEmptyStr = Field(
        description="Registry name of the detector that fired, such as adwin or page_hinkley, or river:<Class>."
    )
    severity: Severity = Field(
        description="warning: the detector entered its warning zone; critical: the detector signalled a change."
    )
    statistic: Number | None = Field(
        None, description="The detector's statistic when it fired, a finite number; null when it has none."
    )
    threshold: Number | None = Field(
        None,
        description=(
            "The value the statistic was compared with, a finite number; null when the detector has no "
            "single threshold."
        ),
    )
    event_time: UtcDatetime = Field(
        description=(
            "Event time of the triggering event, UTC: its timestamp field, or its Kafka message timestamp "
            "when it has none."
        )
    )
    detected_at: UtcDatetime = Field(
        default_factory=lambda: datetime.now(UTC),
        description="Wall-clock time at which the alert was raised, UTC.",
    )
    window: AlertWindow | None = Field(
        None, description="The values the detection rests on; null when the detector does not track them."
    )
    source: AlertSource = Field(description="Where the triggering event is on the bus.")
    details: dict[str, Any] = Field(
        default_factory=dict,
        description="Detector-specific facts about the change (for instance the means before and after it); free-form.",
    )
