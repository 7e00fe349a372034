"""Pydantic models of every event on the bus, and their JSON Schemas.

Input events (one JSON object per Kafka message): :class:`PredictionEvent`, :class:`FeatureEvent`,
:class:`LabelEvent`. Output: :class:`DriftAlert`, with :class:`AlertWindow` and
:class:`AlertSource`. Reference profiles of model versions: :class:`ReferenceProfile`. Retraining requests:
:class:`RetrainRequest`, with :class:`RetrainReason` and :class:`OffsetRange`. The ``details`` of a
model_comparison alert: :class:`ModelComparison`, with :class:`PredictionDistance`.
The committed ``*.schema.json`` files next to this module are exported from
the models; ``python -m driftwire.schemas`` rewrites them after a model changes.
"""

from .alerts import AlertSource, AlertWindow, DriftAlert
from .comparison import ModelComparison, PredictionDistance
from .events import FeatureEvent, LabelEvent, PredictionEvent
from .export import EVENT_MODELS, SCHEMA_DIR, json_schemas, write_json_schemas
from .reference import CategoricalProfile, NumericProfile, ReferenceProfile
from .retrain import OffsetRange, RetrainReason, RetrainRequest

__all__ = [
    "EVENT_MODELS",
    "SCHEMA_DIR",
    "AlertSource",
    "AlertWindow",
    "CategoricalProfile",
    "DriftAlert",
    "FeatureEvent",
    "LabelEvent",
    "ModelComparison",
    "NumericProfile",
    "OffsetRange",
    "PredictionDistance",
    "PredictionEvent",
    "ReferenceProfile",
    "RetrainReason",
    "RetrainRequest",
    "json_schemas",
    "write_json_schemas",
]
