"""``driftwire profile``: a reference profile from training data in CSV, JSON Lines or Parquet.

Rows are either flat (one column per feature, plus ``prediction`` and ``score`` when present) or
events as driftwire reads them from the bus (``features`` an object, beside ``prediction`` and
``score``); both give one signal per feature. A column whose values are all numbers (in CSV: all
parse as numbers) is numeric; one with strings or booleans is categorical; empty values and nulls
are missing. Parquet needs pyarrow (``pip install driftwire[parquet]``).

The ground-truth label (the ``label`` key of an event-shaped row, or the column named by
``label_column``, ``label`` by default) becomes the profile's ``label``, the reference of label
drift: categorical class names for a classification, numeric for a regression, decided as the
service decides a model's task (:func:`driftwire.stream.outcomes.infer_task`).
"""

from __future__ import annotations

import csv
import math
from pathlib import Path

import orjson

from driftwire.detectors.profile import DEFAULT_BINS, DEFAULT_TOP_K, categorical_profile, numeric_profile
from driftwire.schemas import ReferenceProfile

from .outcomes import CLASSIFICATION, class_name, infer_task

#: columns of event-shaped rows that are not signals
_EVENT_KEYS = frozenset({"event_id", "model", "model_version", "timestamp", "features"})
_OUTPUTS = ("prediction", "score")
LABEL = "label"


def read_columns(path: str | Path, label_column: str = LABEL) -> tuple[dict[str, list], int]:
    """The columns of a data file (name -> values, None where missing) and its row count: its
    signals, and its labels under :data:`LABEL` when it has ``label_column``."""
    path = Path(path)
    suffix = path.suffix.lower()
    if suffix == ".csv":
        rows = _csv_rows(path)
    elif suffix in (".jsonl", ".ndjson", ".json"):
        rows = _jsonl_rows(path)
    elif suffix == ".parquet":
        rows = _parquet_rows(path)
    else:
        raise ValueError(f"{path}: unknown format {suffix!r} (use .csv, .jsonl or .parquet)")
    columns: dict[str, list] = {}
    n = 0
    for row in rows:
        for name, value in _signals(row, label_column):
            column = columns.get(name)
            if column is None:
                column = columns[name] = [None] * n
            column.append(value)
        n += 1
        for column in columns.values():
            if len(column) < n:
                column.append(None)
    if n == 0:
        raise ValueError(f"{path}: no rows")
    return columns, n


def _signals(row: dict, label_column: str):
    if isinstance(row.get("features"), dict):
        yield from row["features"].items()
        for name in (*_OUTPUTS, LABEL):
            if name in row:
                yield name, row[name]
        return
    for name, value in row.items():
        if name == label_column:
            yield LABEL, value
        elif name not in _EVENT_KEYS and name != LABEL:
            yield name, value


def _csv_rows(path: Path):
    with path.open(newline="", encoding="utf-8") as f:
        for row in csv.DictReader(f):
            yield {k: _csv_value(v) for k, v in row.items() if k is not None}


def _csv_value(text: str | None):
    if text is None or text == "":
        return None
    try:
        return float(text)
    except ValueError:
        return text


def _jsonl_rows(path: Path):
    with path.open("rb") as f:
        for number, line in enumerate(f, 1):
            if not line.strip():
                continue
            try:
                row = orjson.loads(line)
            except orjson.JSONDecodeError as exc:
                raise ValueError(f"{path}:{number}: not JSON: {exc}") from exc
            if not isinstance(row, dict):
                raise ValueError(f"{path}:{number}: a row must be a JSON object")
            yield row


def _parquet_rows(path: Path):
    try:
        import pyarrow.parquet as pq
    except ImportError as exc:
        raise ValueError("reading Parquet needs pyarrow: pip install 'driftwire[parquet]'") from exc
    for batch in pq.ParquetFile(path).iter_batches():
        yield from batch.to_pylist()


def _is_number(v) -> bool:
    return isinstance(v, int | float) and not isinstance(v, bool)


def build_profile(path: str | Path, model: str, version: str = "unknown", bins: int = DEFAULT_BINS,
                  top_k: int = DEFAULT_TOP_K, label_column: str = LABEL) -> ReferenceProfile:
    """The reference profile of the data in ``path``."""
    columns, rows = read_columns(path, label_column)
    labels = columns.pop(LABEL, None)
    signals = {}
    for name, values in columns.items():
        present = [v for v in values if not _missing(v)]
        if not present:
            continue  # never has a value: nothing to compare a window with
        if all(_is_number(v) for v in present):
            signals[name] = numeric_profile([math.nan if v is None else v for v in values], bins=bins)
        elif not any(_is_number(v) for v in present):
            signals[name] = categorical_profile(values, top_k=top_k)
        else:
            raise ValueError(f"{path}: column {name!r} mixes numbers and categories")
    if not signals:
        raise ValueError(f"{path}: no column has a value")
    return ReferenceProfile(model=model, model_version=version, rows=rows, source=Path(path).name, signals=signals,
                            label=_label_profile(path, labels, bins, top_k))


def _missing(v) -> bool:
    return v is None or (isinstance(v, float) and math.isnan(v))


def _label_profile(path, values: list | None, bins: int, top_k: int) -> dict | None:
    present = [v for v in values or () if not _missing(v)]
    if not present:
        return None
    if infer_task(*present) == CLASSIFICATION:
        return categorical_profile([None if _missing(v) else class_name(v) for v in values], top_k=top_k)
    if not all(_is_number(v) for v in present):
        raise ValueError(f"{path}: labels mix numbers with a fraction and categories")
    return numeric_profile([math.nan if _missing(v) else v for v in values], bins=bins)
