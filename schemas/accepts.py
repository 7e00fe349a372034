"""Whether a message's bytes are an event the contract accepts.

    from driftwire.schemas import PredictionEvent, accepts
    accepts(PredictionEvent, b'{"event_id": "1", "model": "m", "prediction": 1}')   # True

Strict JSON (UTF-8 without a byte order mark, no NaN or Infinity, numbers within float64,
nesting within 1024 levels) of at most ``max_bytes``, valid for the event model. The service's
decoder gives the same verdict, faster; tests compare the two.
"""

from __future__ import annotations

import orjson
from pydantic import BaseModel, ValidationError


def accepts(model: type[BaseModel], raw: bytes | None, max_bytes: int = 1_048_576) -> bool:
    if raw is None or len(raw) > max_bytes:
        return False
    try:
        model.model_validate(orjson.loads(raw))
    except (orjson.JSONDecodeError, ValidationError):
        return False
    return True
