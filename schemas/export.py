"""JSON Schema export of the event models, and the committed ``<name>.schema.json`` files."""

from __future__ import annotations

import json
from pathlib import Path

from pydantic import BaseModel

from .alerts import DriftAlert
from .comparison import ModelComparison
from .events import FeatureEvent, LabelEvent, PredictionEvent
from .reference import ReferenceProfile
from .retrain import RetrainRequest

#: Bus event name -> model; the name is also the stem of the schema file.
EVENT_MODELS: dict[str, type[BaseModel]] = {
    "prediction_event": PredictionEvent,
    "feature_event": FeatureEvent,
    "label_event": LabelEvent,
    "drift_alert": DriftAlert,
    "reference_profile": ReferenceProfile,
    "retrain_request": RetrainRequest,
    "model_comparison": ModelComparison,
}

#: Where the committed schema files live: this package's folder.
SCHEMA_DIR = Path(__file__).resolve().parent

JSON_SCHEMA_DIALECT = "https://json-schema.org/draft/2020-12/schema"
SCHEMA_ID_PREFIX = "urn:driftwire:schema:"

# Producers write input events, so their schemas say what validation accepts; driftwire writes
# alerts, so the alert schema says what it publishes (every field present).
_PUBLISHED = (DriftAlert, RetrainRequest, ModelComparison)


def schema_file_name(name: str) -> str:
    return f"{name}.schema.json"


def json_schemas() -> dict[str, dict]:
    """File name -> JSON Schema (draft 2020-12) of every bus event."""
    schemas = {}
    for name, model in EVENT_MODELS.items():
        mode = "serialization" if model in _PUBLISHED else "validation"
        schema = model.model_json_schema(mode=mode)
        schemas[schema_file_name(name)] = {"$schema": JSON_SCHEMA_DIALECT, "$id": SCHEMA_ID_PREFIX + name, **schema}
    return schemas


def render(schema: dict) -> str:
    """The text of a schema file: stable, indented, one trailing newline."""
    return json.dumps(schema, indent=2, ensure_ascii=False) + "\n"


def write_json_schemas(directory: str | Path = SCHEMA_DIR) -> list[Path]:
    """Write every schema to ``directory`` (the package folder by default); return the paths."""
    directory = Path(directory)
    directory.mkdir(parents=True, exist_ok=True)
    paths = []
    for file_name, schema in json_schemas().items():
        path = directory / file_name
        path.write_text(render(schema), encoding="utf-8")
        paths.append(path)
    return paths
