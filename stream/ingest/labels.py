"""Read label events into the label join, a batch at a time.

A batch of labels is scanned in one numba pass (:mod:`driftwire.stream.ingest.scan`, events of kind LABELS); the
labels it cannot read are decoded one by one (msgspec, then the reference check of
:func:`driftwire.stream.ingest.decode.check_label` for anything msgspec refuses, which raises the
precise error). Both become rows of the join (:mod:`driftwire.stream.join.batch`), in message order.
"""

from __future__ import annotations

import math
from typing import Annotated

import msgspec
import numpy as np

from driftwire.schemas.fields import MAX_NAME_LENGTH
from driftwire.stream.ingest import decode as dec
from driftwire.stream.ingest import scan as sc
from driftwire.stream.ingest.router import MAX_EVENT_TIME, MAX_SHAPES, EventIds
from driftwire.stream.join.table import LABELS

_Name = Annotated[str, msgspec.Meta(min_length=1, max_length=MAX_NAME_LENGTH)]


class _PlainLabel(msgspec.Struct):
    event_id: _Name
    model: _Name
    label: float | str | bool
    model_version: Annotated[str, msgspec.Meta(max_length=MAX_NAME_LENGTH)] = "unknown"
    timestamp: float | str | None = None


_LABEL = msgspec.json.Decoder(_PlainLabel)


def decode_label(value: bytes | None, max_bytes: int) -> dec.Label:
    """Bytes of one label message to a checked :class:`~driftwire.stream.ingest.decode.Label`."""
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
    """Reads one partition of the labels topic, a batch in one scan, into the join of the
    predictions partition with its number."""

    kind = dec.LABEL

    def __init__(self, max_bytes: int, allowed_models=frozenset()):
        self.max_bytes = max_bytes
        self.allowed_models = allowed_models
        #: labels taken in this batch per model, for the event counters
        self.counts: dict[str, int] = {}
        self._table = sc.ShapeTable()
        #: the model of each scanner shape id; None: the per-event path reads its labels
        self._models: list[str | None] = []
        #: the messages of the last batch the scan left to the per-event path
        self.read_one_by_one = 0

    def add_batch(self, values: list, indices: np.ndarray, offsets: np.ndarray, times: np.ndarray,
                  owner=None) -> list[tuple[int, dec.InvalidEvent]]:
        """Join ``values[k]`` (the label at ``offsets[k]``, message ``indices[k]`` of the batch
        whose record time is ``times[indices[k]]``) into the join of ``owner``, the monitor of
        the predictions partition; return ``(k, error)`` of the invalid ones. Without an owner
        or its join (the partition's predictions are consumed elsewhere) valid labels are only
        counted, and so are those of models the owner does not join (``labels.enabled: false``)."""
        if len(self._table) >= MAX_SHAPES:
            self._table.clear()
            self._models = []
        indices = np.asarray(indices, np.int64)
        buf, off = sc.pack(values, self.max_bytes)
        scanned = self._table.scan(buf, off, sc.LABELS, self.max_bytes)
        errors, slow = self._slow_path(values, scanned)
        fast = np.flatnonzero(scanned.status == sc.FAST)
        counts = np.bincount(scanned.ids[fast], minlength=len(self._models))
        for sid in np.flatnonzero(counts).tolist():
            model = self._models[sid]
            self.counts[model] = self.counts.get(model, 0) + int(counts[sid])
        for _, label in slow:
            self.counts[label.model] = self.counts.get(label.model, 0) + 1
        self._ids = EventIds(buf, scanned, indices, np.zeros(len(self._models), dtype=np.int64),
                             [(int(indices[k]), label.event_id) for k, label in slow])
        if owner is not None and owner.join is not None:
            self._join(owner, buf, scanned, fast, slow, indices, offsets, times)
        return errors

    def event_ids(self) -> EventIds:
        """The event ids of the last batch's messages."""
        return self._ids

    def _slow_path(self, values: list, scanned: sc.Scanned) -> tuple[list, list]:
        """(errors, (k, label) of valid labels) of the messages the scan did not take."""
        errors, slow = [], []
        self.read_one_by_one = 0
        status = scanned.status
        for k in np.flatnonzero(status != sc.FAST).tolist():
            if status[k] == sc.NEW:
                sid = int(scanned.ids[k])
                if sid >= self._table.resolved:
                    self._resolve(sid)
                if self._models[sid] is not None:
                    status[k] = sc.FAST
                    continue
            self.read_one_by_one += 1
            try:
                label = decode_label(values[k], self.max_bytes)
                if self.allowed_models and label.model not in self.allowed_models:
                    raise dec.InvalidEvent(dec.UNKNOWN_MODEL, f"model {label.model!r} is not in allowed_models")
            except dec.InvalidEvent as exc:
                errors.append((k, exc))
                continue
            except Exception as exc:  # noqa: BLE001 - one message must not take its batch down
                errors.append((k, dec.undecodable(exc)))
                continue
            slow.append((k, label))
        return errors, slow

    def _resolve(self, sid: int) -> None:
        model = sc.decode_canonical(self._table.canonical(sid))[0]
        allowed = not self.allowed_models or model in self.allowed_models
        empty = np.zeros(0, dtype=np.int64)
        self._table.resolve(sid, *((empty, empty) if allowed else (None, None)))
        self._models.append(model if allowed else None)

    def _join(self, owner, buf, scanned, fast, slow, indices, offsets, times) -> None:
        codes = owner.join_codes
        sids = scanned.ids[fast]
        model_codes = np.full(len(self._models), -1, dtype=np.int64)
        for sid in np.unique(sids).tolist():
            if owner.joins(self._models[sid]):
                model_codes[sid] = codes.model(self._models[sid])
        wanted = model_codes[sids] >= 0
        fast, sids = fast[wanted], sids[wanted]
        own = scanned.times[fast]
        clock = np.where(np.abs(own) < MAX_EVENT_TIME, own, times[indices[fast]])
        rows = codes.scanned_rows(buf, scanned, fast, scanned.vstart[fast], model_codes[sids], clock,
                                  indices[fast], LABELS)
        rows["offset"] = offsets[fast]
        events = [(int(indices[k]), label.model, label.model_version, label.event_id, label.label, None,
                   _label_time(label, times[indices[k]]), int(offsets[k]))
                  for k, label in slow if owner.joins(label.model)]
        if events:
            buf, more = codes.event_rows(buf, events, LABELS)
            rows = np.concatenate((rows, more))
            rows = rows[np.argsort(rows["message"], kind="stable")]
        if rows.size:
            owner.join.add_labels(buf, rows)


def _label_time(label: dec.Label, record_time: float) -> float:
    t = label.timestamp
    return t if t is not None and abs(t) < MAX_EVENT_TIME else float(record_time)
