"""The join stage's columns: a batch's predictions and labels as join rows, joined rows as pairs.

    codes = JoinCodes()
    rows = codes.scanned_rows(scanned, buf, rows_of, ...)  # FAST events of a scan, no Python per event
    table.add_predictions(buf, rows)
    pairs = Pairs(table.take_pairs().rows, codes)          # columns for the outcome stage

A prediction or label value travels as ``(value, code)``: a number is ``(value, NUMBER)``; a
string or boolean is ``(NaN, id)`` of its bytes in the class vocabulary of its model, so that
``"churn"``, ``true`` and ``"true"`` compare as the classes :func:`~driftwire.stream.detect.outcomes.class_name` names.
"""

from __future__ import annotations

import math

import numpy as np

from driftwire.stream.detect.outcomes import class_name
from driftwire.stream.ingest import scan as sc
from driftwire.stream.ingest.vocabulary import OTHER, Vocabulary
from driftwire.stream.join.store import Pair, Shared
from driftwire.stream.join.table import LABELS, PAIR, PREDICTIONS, Records

#: the code of a value that is a number
NUMBER = -2
_SPAN_MASK = (1 << sc.SPAN_BITS) - 1
#: the class name of a value beyond its model's bound on class names
OTHER_CLASS = "<other>"


class JoinCodes:
    """Codes of what the join compares: model and version names, and class values per model."""

    def __init__(self):
        self._models: dict[str, int] = {}
        self.model_names: list[str] = []
        self._versions: dict[str, int] = {}
        self.version_names: list[str] = []
        self.classes = Vocabulary()

    def model(self, name: str) -> int:
        code = self._models.get(name)
        if code is None:
            code = self._models[name] = len(self.model_names)
            self.model_names.append(name)
        return code

    def version(self, name: str) -> int:
        code = self._versions.get(name)
        if code is None:
            code = self._versions[name] = len(self.version_names)
            self.version_names.append(name)
        return code

    def class_code(self, value, model: int = 0) -> int:
        """The code of a string or boolean value of one model (its class name's)."""
        return self.classes.code(model, _class_bytes(value).decode("utf-8", "surrogatepass"))

    def payload(self, value, model: int = 0) -> tuple[float, int]:
        """A prediction or label as the join carries it: ``(value, NUMBER)`` or ``(NaN, class code)``."""
        if isinstance(value, (str, bool)):
            return math.nan, self.class_code(value, model)
        return (math.nan if value is None else float(value)), NUMBER

    def get_state(self) -> dict:
        return {"models": self.model_names, "versions": self.version_names, "classes": self.classes.get_state()}

    def set_state(self, state: dict) -> None:
        self._models, self.model_names = {}, []
        self._versions, self.version_names = {}, []
        for name in state["models"]:
            self.model(name)
        for name in state["versions"]:
            self.version(name)
        self.classes.set_state(state["classes"])

    def value(self, value: float, code: int):
        """A value as the outcome stage takes it: a number, or its class name."""
        if code == NUMBER:
            return value
        return OTHER_CLASS if code == OTHER else self.classes.names[code]

    # -- rows ----------------------------------------------------------------------------
    def scanned_rows(self, buf: np.ndarray, scanned: sc.Scanned, fast: np.ndarray, columns: np.ndarray,
                     models: np.ndarray, times: np.ndarray, messages: np.ndarray, dtype) -> np.ndarray:
        """Rows of ``dtype`` (:data:`PREDICTIONS` or :data:`LABELS`) of the scanned messages
        ``fast``, whose extra columns (prediction or label, score, time, id) start at
        ``columns``; ``models`` their model codes, ``times`` and ``messages`` their event
        times and positions in the batch."""
        rows = np.empty(fast.size, dtype=dtype)
        ids = scanned.spans[columns + sc.C_ID]
        rows["id_start"] = ids >> sc.SPAN_BITS
        rows["id_len"] = ids & _SPAN_MASK
        rows["model"] = models
        self._values(buf, rows, scanned.vals[columns + sc.C_PREDICTION], scanned.spans[columns + sc.C_PREDICTION],
                     models)
        if dtype is PREDICTIONS:
            rows["score"] = scanned.vals[columns + sc.C_SCORE]
        rows["time"] = times
        rows["message"] = messages
        return rows

    def _values(self, buf, rows, values, spans, models) -> None:
        named = spans >= 0
        codes = np.full(values.size, NUMBER, dtype=np.int64)
        if named.any():
            codes[named] = self.classes.intern(buf, spans[named], models[named])
        rows["value"] = np.where(named, np.nan, values)
        rows["code"] = codes

    def event_rows(self, buf: np.ndarray, events: list, dtype) -> tuple[np.ndarray, np.ndarray]:
        """(buffer, rows) of events the per-event path decoded, each ``(message, model,
        version, event id, value, score, time, offset)``: their ids and class names are
        appended to ``buf``, to which the rows' spans point."""
        parts, at = [], buf.size
        rows = np.empty(len(events), dtype=dtype)
        spans = np.full(len(events), -1, dtype=np.int64)
        models = np.empty(len(events), dtype=np.int64)
        for k, (message, model, version, event_id, value, score, time, offset) in enumerate(events):
            raw = event_id.encode("utf-8", "surrogatepass")
            parts.append(raw)
            rows[k]["id_start"], rows[k]["id_len"] = at, len(raw)
            at += len(raw)
            models[k] = self.model(model)
            if isinstance(value, (str, bool)):
                name = _class_bytes(value)
                parts.append(name)
                spans[k] = (at << sc.SPAN_BITS) | len(name)
                at += len(name)
            rows[k]["message"], rows[k]["time"] = message, time
            if dtype is PREDICTIONS:
                rows[k]["version"], rows[k]["score"] = self.version(version), math.nan if score is None else score
            else:
                rows[k]["offset"] = offset
        buf = np.concatenate((buf, np.frombuffer(b"".join(parts), dtype=np.uint8))) if parts else buf
        rows["model"] = models
        values = np.array([v if s < 0 else math.nan for v, s in zip((e[4] for e in events), spans.tolist())],
                          dtype=np.float64)
        self._values(buf, rows, values, spans, models)
        return buf, rows

    # -- pairs ---------------------------------------------------------------------------
    def shared(self, records: Records) -> list[Shared]:
        models, value = self.model_names, self.value
        out = []
        for i, r in enumerate(records.rows.tolist()):
            row = dict(zip(records.rows.dtype.names, r))
            out.append(Shared(models[row["model"]], records.event_id(i), self._side(row, "first"),
                              self._side(row, "second"), row["met"],
                              value(row["label_value"], row["label_code"]) if row["labelled"] else None,
                              row["labelled"], row["message"], row["label_offset"]))
        return out

    def _side(self, row: dict, which: str) -> tuple:
        score = row[f"{which}_score"]
        return (self.version_names[row[f"{which}_version"]], self.value(row[f"{which}_value"], row[f"{which}_code"]),
                None if math.isnan(score) else score, row[f"{which}_time"])


class Pairs:
    """A batch's joined pairs as columns (:data:`~.table.PAIR` rows), with the class name
    of each prediction and label as an index into ``names``: the stages after the join
    compare, count and window classes without a Python call per pair."""

    def __init__(self, rows: np.ndarray, codes: JoinCodes):
        self.rows = rows
        self.codes = codes
        self.model = rows["model"]
        self.version = rows["version"]
        self.names: list[str] = []
        self._ids: dict[str, int] = {}
        self.predicted = self._name_ids(rows["value"], rows["code"])
        self.label = self._name_ids(rows["label_value"], rows["label_code"])
        #: which values are numbers (the rest are class names)
        self.predicted_number = rows["code"] == NUMBER
        self.label_number = rows["label_code"] == NUMBER

    @classmethod
    def of(cls, pairs: list[Pair], codes: JoinCodes) -> Pairs:
        """The columns of pairs given one by one (as :class:`~.store.JoinStore` gives them)."""
        rows = np.zeros(len(pairs), dtype=PAIR)
        for i, p in enumerate(pairs):
            model = codes.model(p.model)
            rows[i] = (model, codes.version(p.version), *codes.payload(p.prediction, model),
                       math.nan if p.score is None else p.score, *codes.payload(p.label, model), p.time, p.message,
                       p.label_offset, 0, 0)
        return cls(rows, codes)

    def __len__(self) -> int:
        return self.rows.size

    def _name_ids(self, values: np.ndarray, codes: np.ndarray) -> np.ndarray:
        """The class name of each value as an index into ``names``: a number is named by its
        value, a string or boolean by its code (a code names a class of its model)."""
        ids = np.empty(values.size, dtype=np.int64)
        number = codes == NUMBER
        if number.any():
            unique, inverse = np.unique(values[number], return_inverse=True)
            ids[number] = np.array([self._id(class_name(v)) for v in unique.tolist()], dtype=np.int64)[inverse]
        named = ~number
        if named.any():
            unique, inverse = np.unique((self.model[named] << 32) | (codes[named] - OTHER), return_inverse=True)
            value = self.codes.value
            names = [self._id(value(math.nan, int(k & 0xFFFFFFFF) + OTHER)) for k in unique.tolist()]
            ids[named] = np.array(names, dtype=np.int64)[inverse]
        return ids

    def _id(self, name) -> int:
        i = self._ids.get(name)
        if i is None:
            i = self._ids[name] = len(self.names)
            self.names.append(name)
        return i

    def groups(self) -> tuple[list[tuple[int, int]], np.ndarray]:
        """((model, version) of each group in the order it first comes, group of each pair)."""
        key = (self.model << 32) | self.version
        unique, first, inverse = np.unique(key, return_index=True, return_inverse=True)
        order = np.argsort(first, kind="stable")
        rank = np.empty(order.size, dtype=np.int64)
        rank[order] = np.arange(order.size)
        return [(int(k >> 32), int(k & 0xFFFFFFFF)) for k in unique[order].tolist()], rank[inverse.ravel()]

    def prediction(self, i: int):
        return self.codes.value(float(self.rows["value"][i]), int(self.rows["code"][i]))

    def label_value(self, i: int):
        return self.codes.value(float(self.rows["label_value"][i]), int(self.rows["label_code"][i]))

    def pair(self, i: int) -> Pair:
        r = self.rows[i]
        score = float(r["score"])
        return Pair(self.codes.model_names[r["model"]], self.codes.version_names[r["version"]], "",
                    self.prediction(i), None if math.isnan(score) else score, self.label_value(i), float(r["time"]),
                    int(r["message"]), int(r["label_offset"]))


def _class_bytes(value) -> bytes:
    if isinstance(value, bool):
        return b"true" if value else b"false"
    return value.encode("utf-8", "surrogatepass")


__all__ = ["LABELS", "NUMBER", "PREDICTIONS", "JoinCodes", "Pairs"]
