"""The retraining request driftwire publishes when a model needs retraining, keyed by model.

A request says why (the alerts that caused it) and with what (the labelled data that arrived
since the model's previous request, as offset ranges of the labels topic), so that a retraining
job can start from it without reading the alert history itself.
"""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict, Field, StrictInt

from .alerts import Kind, Severity
from .fields import NonEmptyStr, UtcDatetime

_CONFIG = ConfigDict(extra="ignore", json_schema_serialization_defaults_required=True)


class RetrainReason(BaseModel):
    """One alert that led to the request."""

    model_config = _CONFIG

    alert_id: NonEmptyStr = Field(description="alert_id of the DriftAlert on the alerts topic.")
    model_version: NonEmptyStr = Field(description="Model version the alert is about.")
    kind: Kind = Field(description="Kind of the alert.")
    signal: NonEmptyStr = Field(
        description="Signal of the alert (a feature, prediction, error, or a performance metric)."
    )
    detector: NonEmptyStr = Field(description="Detector or rule of the alert.")
    severity: Severity = Field(description="Severity of the alert.")
    event_time: UtcDatetime = Field(description="Event time of the alert, UTC.")


class OffsetRange(BaseModel):
    """Records ``[start_offset, end_offset)`` of one partition."""

    model_config = _CONFIG

    topic: NonEmptyStr = Field(description="Topic of the records (the labels topic).")
    partition: StrictInt = Field(ge=0, description="Partition of the records.")
    start_offset: StrictInt = Field(ge=0, description="Offset of the first record.")
    end_offset: StrictInt = Field(ge=0, description="Offset after the last record.")


class RetrainRequest(BaseModel):
    """A request to retrain a model. Published as JSON on the retrain-requests topic with the model
    name as key; at most one per model per configured interval from each driftwire replica."""

    model_config = _CONFIG

    request_id: NonEmptyStr = Field(
        description=(
            "Identifier of the request, derived (UUID5) from the model and the alerts that caused it: a "
            "request republished after a restart keeps its id."
        )
    )
    model: NonEmptyStr = Field(description="Name of the model to retrain.")
    model_versions: list[NonEmptyStr] = Field(description="Versions the alerts are about, sorted.")
    requested_at: UtcDatetime = Field(description="Wall-clock time of the request, UTC.")
    event_time: UtcDatetime = Field(description="Event time of the newest labelled prediction seen, UTC.")
    reasons: list[RetrainReason] = Field(
        min_length=1, description="The alerts that caused the request, oldest first (at most 100)."
    )
    labelled_events: StrictInt = Field(
        ge=0, description="Labelled predictions of the model joined since its previous request."
    )
    labels: list[OffsetRange] = Field(
        description="Where the labels of those predictions are: one offset range per labels partition."
    )
