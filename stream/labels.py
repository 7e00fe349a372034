"""Decode label events, and take the fields of predictions that the label join needs.

Labels are few beside predictions and carry no features: each is decoded on its own (msgspec,
then the reference check of :func:`driftwire.stream.decode.check_label` for anything msgspec
refuses, which raises the precise error).
"""

from __future__ import annotations

import math
from typing import Annotated

import msgspec
import numpy as np

from driftwire.schemas.fields import MAX_NAME_LENGTH

from . import decode as dec
from .join import JoinStore
from .router import MAX_EVENT_TIME

_Name = Annotated[str, msgspec.Meta(min_length=1, max_length=MAX_NAME_LENGTH)]


class _PlainLabel(msgspec.Struct):
    event_id: _Name
    model: _Name
    label: float | str | bool
    model_version: Annotated[str, msgspec.Meta(max_length=MAX_NAME_LENGTH)] = "unknown"
    timestamp: float | str | None = None


class _JoinFields(msgspec.Struct):
    """What the join keeps of a prediction that the router has already checked."""

    event_id: str
    model: str
    prediction: float | str | bool
    model_version: str | None = "unknown"
    score: float | None = None


_LABEL = msgspec.json.Decoder(_PlainLabel)
_JOIN = msgspec.json.Decoder(_JoinFields)
_JOIN_BATCH = msgspec.json.Decoder(list[_JoinFields])


def decode_label(value: bytes | None, max_bytes: int) -> dec.Label:
    """Bytes of one label message to a checked :class:`~driftwire.stream.decode.Label`."""
    if value is None or len(value) > max_bytes:
        dec.check_size(value, max_bytes)
    try:
        doc = _LABEL.decode(value)
        if type(doc.label) is float and not math.isfinite(doc.label):
            raise msgspec.DecodeError("non-finite label")
        dec.parse_json(value)  # what msgspec skips unread (see Router.decode)
        timestamp = dec.parse_timestamp(doc.timestamp) if type(doc.timestamp) is str else doc.timestamp
        return dec.Label(doc.event_id, doc.model, doc.model_version, timestamp, doc.label)
    except dec.REFUSED:
        return dec.check_label(dec.parse_json(value))


class LabelRouter:
    """Decodes one partition of the labels topic into its join store."""

    kind = dec.LABEL

    def __init__(self, max_bytes: int, allowed_models=frozenset()):
        self.max_bytes = max_bytes
        self.allowed_models = allowed_models
        #: labels taken in this batch per model, for the event counters
        self.counts: dict[str, int] = {}
        #: offset after the last record taken (-1: none yet), after the last one whose batch was
        #: processed in full, and that of the last checkpoint
        self.taken_offset = -1
        self.next_offset = -1
        self.checkpointed_offset = -1
        self.dirty = False

    def add_batch(self, values: list, indices: np.ndarray, offsets: np.ndarray, times: np.ndarray,
                  store: JoinStore | None, joins=None) -> list[tuple[int, dec.InvalidEvent]]:
        """Join ``values[k]`` (the label at ``offsets[k]``, message ``indices[k]`` of the batch
        whose record time is ``times[indices[k]]``) into ``store``; return ``(k, error)`` of
        the invalid ones. With no store (the partition's predictions are consumed elsewhere)
        valid labels are only counted, and so are those of models for which ``joins(model)``
        is false (``labels.enabled: false``)."""
        errors = []
        for k, value in enumerate(values):
            try:
                label = decode_label(value, self.max_bytes)
                if self.allowed_models and label.model not in self.allowed_models:
                    raise dec.InvalidEvent(dec.UNKNOWN_MODEL, f"model {label.model!r} is not in allowed_models")
            except dec.InvalidEvent as exc:
                errors.append((k, exc))
                continue
            except Exception as exc:  # noqa: BLE001 - one message must not take its batch down
                errors.append((k, dec.undecodable(exc)))
                continue
            index = int(indices[k])
            t = label.timestamp
            time = t if t is not None and abs(t) < MAX_EVENT_TIME else float(times[index])
            self.counts[label.model] = self.counts.get(label.model, 0) + 1
            if store is not None and (joins is None or joins(label.model)):
                store.add_label(label.model, label.event_id, label.label, time, int(offsets[k]), index)
        return errors


def join_predictions(store: JoinStore, values: list, indices: np.ndarray, invalid: set[int],
                     times: np.ndarray, joins) -> None:
    """Put the valid predictions among ``values`` (message ``indices[k]``, event time
    ``times[indices[k]]``) of the models for which ``joins(model)`` is true into ``store``;
    ``invalid``: the k the router refused."""
    if invalid:
        keep = [k for k in range(len(values)) if k not in invalid]
        values, indices = [values[k] for k in keep], indices[keep]
    if not values:
        return
    docs = _join_fields(values)
    models = [p.model for p in docs]
    wanted = {model: joins(model) for model in set(models)}
    if not all(wanted.values()):
        keep = [i for i, model in enumerate(models) if wanted[model]]
        docs, models, indices = [docs[i] for i in keep], [models[i] for i in keep], indices[keep]
    if docs:
        store.add_predictions(models, [p.event_id for p in docs], [p.model_version or "unknown" for p in docs],
                              [p.prediction for p in docs], [p.score for p in docs], times[indices].tolist(),
                              indices.tolist())


def _join_fields(values: list) -> list:
    """The join's fields of each of a batch of valid predictions: in one call as a JSON array,
    else one by one."""
    try:
        return _JOIN_BATCH.decode(b"[" + b",".join(values) + b"]")
    except dec.REFUSED:
        return [_join_fields_of(value) for value in values]


def _join_fields_of(value: bytes) -> _JoinFields:
    try:
        return _JOIN.decode(value)
    except dec.REFUSED:
        # valid for the router, but in a form msgspec refuses (an integer beyond float64)
        doc = dec.check_header(dec.parse_json(value), dec.PREDICTION)
        return _JoinFields(doc.event_id, doc.model, doc.prediction, doc.model_version, doc.score)
