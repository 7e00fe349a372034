"""Pydantic models of every event on the bus, and their JSON Schemas.

Input events (one JSON object per Kafka message): :class:`PredictionEvent`, :class:`FeatureEvent`,
:class:`LabelEvent`. Output: :class:`DriftAlert`, with :class:`AlertWindow` and
:class:`AlertSource`. Reference profiles of model versions: :class:`ReferenceProfile`. Retraining requests:
:class:`RetrainRequest`, with :class:`RetrainReason` and :class:`OffsetRange`. The ``details`` of a
model_comparison alert: :class:`ModelComparison`, with :class:`PredictionDistance`.
The committed ``*.schema.json`` files next to this module are exported from
the models; ``python -m driftwire.schemas`` rewrites them after a model changes.
"""

from .accepts import accepts
from .alerts import AlertSource, AlertWindow, DriftAlert
from .comparison import ModelComparison, PredictionDistance
from .events import FeatureEvent, LabelEvent, PredictionEvent
from .export import EVENT_MODELS, SCHEMA_DIR, json_schemas, write_json_schemas
from .reference import CategoricalProfile, NumericProfile, ReferenceProfile
from .retrain import OffsetRange, RetrainReason, RetrainRequest

if __name__ != "driftwire.schemas":
    # Imported as a top-level package (from the repository's root folder), its models would be
    # other classes than those of driftwire.schemas, and isinstance checks between the two would fail.
    raise ImportError(f"import this package as driftwire.schemas, not {__name__}: run from outside the "
                      "repository's root folder, or as python -m driftwire...")

__all__ = [
    "accepts",
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
