"""``driftwire profile``: a reference profile from training data in CSV, JSON Lines or Parquet.

Rows are either flat (one column per feature, plus ``prediction`` and ``score`` when present) or
events as driftwire reads them from the bus (``features`` an object, beside ``prediction`` and
``score``); both give one signal per feature. A column whose values are all numbers (in CSV: all
parse as numbers) is numeric; one with strings or booleans is categorical; empty values and nulls
(and Parquet's NaN) are missing. Parquet needs pyarrow (``pip install driftwire[parquet]``).

A file that does not read as what it claims to be is an error naming the file, the line (or row)
and the column, never a profile of guessed data:

- CSV is UTF-8 text (a byte-order mark is skipped) split by commas, or by ``delimiter`` (tabs for
  a .tsv). A header that is one column whose name holds another delimiter (``a;b;c``) is an
  error that names the delimiter to give; so are a header with an empty or a repeated name and a
  row with more or fewer fields than the header. Quotes are strict: a quote left open is
  reported at the line of the row that opened it.
- ``nan``, ``inf`` and ``-inf`` in a CSV column of numbers are an error: leave the field empty
  for a missing value. An infinite number from JSON Lines or Parquet is an error too.
- A byte that is not UTF-8 text (or a NUL) is reported with its byte offset; a JSON Lines line
  that is not one JSON object with its line number; values that are JSON objects or arrays are
  not signals.

The ground-truth label (the ``label`` key of an event-shaped row, or the column named by
``label_column``, ``label`` by default) becomes the profile's ``label``, the reference of label
drift: categorical class names for a classification, numeric for a regression, decided as the
service decides a model's task (:func:`driftwire.stream.detect.outcomes.infer_task`).
"""

from __future__ import annotations

import csv
import math
from array import array
from pathlib import Path

import orjson

from driftwire.detectors.profile import DEFAULT_BINS, DEFAULT_TOP_K, categorical_profile, numeric_profile
from driftwire.schemas import ReferenceProfile
from driftwire.stream.detect.outcomes import CLASSIFICATION, class_name, infer_task

#: columns of event-shaped rows that are not signals
_EVENT_KEYS = frozenset({"event_id", "model", "model_version", "timestamp", "features"})
_OUTPUTS = ("prediction", "score")
LABEL = "label"


def read_columns(path: str | Path, label_column: str = LABEL, delimiter: str = ",") -> tuple[dict[str, list], int]:
    """The columns of a data file (name -> values, None where missing) and its row count: its
    signals, and its labels under :data:`LABEL` when it has ``label_column``."""
    columns, lines = _read(Path(path), label_column, delimiter)
    return columns, len(lines)


def _read(path: Path, label_column: str, delimiter: str) -> tuple[dict[str, list], array]:
    """The columns of a data file and the line of each row (0 where a format has no lines), so
    that an error found later in a column can still say where its value is."""
    columns: dict[str, list] = {}
    lines = array("q")
    for line, row in _rows(path, delimiter):
        n = len(lines)
        for name, value in _signals(row, label_column):
            if isinstance(value, dict | list):
                kind = "object" if isinstance(value, dict) else "array"
                raise ValueError(f"{_place(path, line, n)}: column {name!r} holds a JSON {kind}: "
                                 "a signal is a number or a category")
            column = columns.get(name)
            if column is None:
                column = columns[name] = [None] * n
            column.append(value)
        lines.append(line)
        for column in columns.values():
            if len(column) <= n:
                column.append(None)
    if not lines:
        raise ValueError(f"{path}: no rows")
    return columns, lines


def _rows(path: Path, delimiter: str):
    """(line, row) of each row of the file, by its suffix."""
    suffix = path.suffix.lower()
    if suffix == ".csv":
        return _csv_rows(path, delimiter)
    if suffix == ".tsv":
        return _csv_rows(path, "\t")
    if suffix in (".jsonl", ".ndjson", ".json"):
        return _jsonl_rows(path)
    if suffix == ".parquet":
        return _parquet_rows(path)
    raise ValueError(f"{path}: unknown format {suffix!r} (use .csv, .tsv, .jsonl or .parquet)")


def _place(path: Path, line: int, row: int) -> str:
    return f"{path}:{line}" if line else f"{path}: row {row + 1}"


def _row(lines: array, row: int) -> str:
    return f"line {lines[row]}" if lines[row] else f"row {row + 1}"


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


def _csv_rows(path: Path, delimiter: str):
    with path.open("rb") as f:
        # strict: a stray quote is an error rather than a field that swallows the lines after it
        reader = csv.reader(_text_lines(path, f), delimiter=delimiter, strict=True)
        header = _csv_header(path, _csv_record(path, reader), delimiter)
        while (record := _csv_record(path, reader)) is not None:
            line, fields = record
            if not fields:
                continue  # a blank line
            if len(fields) != len(header):
                raise ValueError(f"{path}:{line}: {len(fields)} fields where the header has {len(header)}: "
                                 "every row needs one field per column (an empty one where the value is missing)")
            yield line, {name: _csv_value(text) for name, text in zip(header, fields)}


def _csv_record(path: Path, reader) -> tuple[int, list[str]] | None:
    """The line a record starts on and its fields; None at the end of the file."""
    line = reader.line_num + 1
    try:
        return line, next(reader)
    except StopIteration:
        return None
    except csv.Error as exc:
        if str(exc) == "unexpected end of data":
            raise ValueError(f"{path}:{line}: a quote opened in the row that starts on this line "
                             "is never closed") from None
        raise ValueError(f"{path}:{reader.line_num}: malformed CSV: {exc}") from None


_DELIMITERS = {",": "comma", ";": "semicolon", "\t": "tab", "|": "pipe"}


def _csv_header(path: Path, record, delimiter: str) -> list[str]:
    """The column names of the first line; a file that is not split by ``delimiter`` or whose
    names clash is an error rather than a profile of the wrong columns."""
    if record is None or not record[1]:
        raise ValueError(f"{path}:1: no header: the first line must name the columns")
    line, header = record
    if len(header) == 1:
        other = next((d for d in _DELIMITERS if d != delimiter and d in header[0]), None)
        if other is not None:
            raise ValueError(f"{path}:{line}: one column named {header[0]!r}: the file looks "
                             f"{_DELIMITERS[other]}-separated (driftwire profile --delimiter {_DELIMITERS[other]})")
    positions: dict[str, int] = {}
    for position, name in enumerate(header, 1):
        if not name.strip():
            raise ValueError(f"{path}:{line}: column {position} has no name")
        if name in positions:
            raise ValueError(f"{path}:{line}: columns {positions[name]} and {position} are both named {name!r}: "
                             "rename one")
        positions[name] = position
    return header


def _text_lines(path: Path, f):
    """The lines of a binary file as UTF-8 text; a byte that cannot be text stops it with its offset."""
    offset = 0
    for number, raw in enumerate(f, 1):
        nul = raw.find(b"\0")
        if nul >= 0:
            raise ValueError(f"{path}:{number}: a NUL byte at byte offset {offset + nul}: a binary file, not text")
        try:
            text = raw.decode("utf-8")
        except UnicodeDecodeError as exc:
            raise ValueError(f"{path}:{number}: byte {raw[exc.start]:#04x} at byte offset {offset + exc.start} is "
                             "not UTF-8: a binary file, or text in another encoding (save it as UTF-8)") from None
        offset += len(raw)
        yield text.removeprefix("\ufeff") if number == 1 else text  # a spreadsheet's byte-order mark


def _csv_value(text: str):
    """None for an empty field, a float for a finite number, else the text: ``nan`` or ``inf``
    stay text, so that a numeric column holding them is reported rather than counted as missing."""
    if text == "":
        return None
    try:
        value = float(text)
    except ValueError:
        return text
    return value if math.isfinite(value) else text


def _jsonl_rows(path: Path):
    with path.open("rb") as f:
        for number, line in enumerate(_text_lines(path, f), 1):
            if not line.strip():
                continue
            try:
                row = orjson.loads(line)
            except orjson.JSONDecodeError as exc:
                raise ValueError(f"{path}:{number}: not JSON ({exc.msg}): each line must be one JSON object") from None
            if not isinstance(row, dict):
                raise ValueError(f"{path}:{number}: a row must be a JSON object, not {type(row).__name__}")
            yield number, row


def _parquet_rows(path: Path):
    try:
        import pyarrow
        import pyarrow.parquet as pq
    except ImportError as exc:
        raise ValueError(f"{path}: reading Parquet needs pyarrow: pip install 'driftwire[parquet]'") from exc
    try:
        batches = pq.ParquetFile(path).iter_batches()
        for batch in batches:
            for row in batch.to_pylist():
                yield 0, row
    except pyarrow.ArrowException as exc:
        raise ValueError(f"{path}: not a readable Parquet file: {exc}") from None


def _is_number(v) -> bool:
    return isinstance(v, int | float) and not isinstance(v, bool)


def build_profile(path: str | Path, model: str, version: str = "unknown", bins: int = DEFAULT_BINS,
                  top_k: int = DEFAULT_TOP_K, label_column: str = LABEL, delimiter: str = ",") -> ReferenceProfile:
    """The reference profile of the data in ``path`` (``delimiter`` splits the fields of a .csv)."""
    path = Path(path)
    columns, lines = _read(path, label_column, delimiter)
    labels = columns.pop(LABEL, None)
    signals = {}
    for name, values in columns.items():
        present = [v for v in values if not _missing(v)]
        if not present:
            continue  # never has a value: nothing to compare a window with
        if all(_is_number(v) for v in present):
            _check_finite(path, lines, name, values)
            signals[name] = numeric_profile([math.nan if v is None else v for v in values], bins=bins)
        elif not any(_is_number(v) for v in present):
            signals[name] = categorical_profile(values, top_k=top_k)
        else:
            raise _mixed_types(path, lines, name, values)
    if not signals:
        raise ValueError(f"{path}: no column has a value")
    return ReferenceProfile(model=model, model_version=version, rows=len(lines), source=path.name, signals=signals,
                            label=_label_profile(path, lines, labels, bins, top_k))


def _first(values: list, test) -> int | None:
    return next((i for i, v in enumerate(values) if test(v)), None)


def _check_finite(path: Path, lines: array, name: str, values: list) -> None:
    """An infinity (from Parquet, or a huge number) would fall outside every bin: an error, not a missing value."""
    i = _first(values, lambda v: isinstance(v, float) and math.isinf(v))
    if i is not None:
        raise ValueError(f"{_place(path, lines[i], i)}: column {name!r} is {values[i]}, not a finite number: "
                         "leave it empty (null) where the value is missing")


def _mixed_types(path: Path, lines: array, name: str, values: list) -> ValueError:
    """The error of a column with numbers and categories, at a value of each kind."""
    text = _first(values, lambda v: isinstance(v, str) and _non_finite(v))
    if text is not None:
        return ValueError(f"{_place(path, lines[text], text)}: column {name!r} holds {values[text]!r}, not a finite "
                          "number: leave the field empty where the value is missing")
    number = _first(values, _is_number)
    other = _first(values, lambda v: not _missing(v) and not _is_number(v))
    shown = repr(values[other]) if len(repr(values[other])) <= 40 else repr(values[other])[:37] + "..."
    hint = ": a quoted field runs over several lines (is a quote left open?)" if "\n" in str(values[other]) else ""
    return ValueError(f"{path}: column {name!r} mixes numbers ({_row(lines, number)}: {values[number]!r}) "
                      f"and categories ({_row(lines, other)}: {shown}){hint}")


def _non_finite(text: str) -> bool:
    try:
        return not math.isfinite(float(text))
    except ValueError:
        return False


def _missing(v) -> bool:
    return v is None or (isinstance(v, float) and math.isnan(v))


def _label_profile(path: Path, lines: array, values: list | None, bins: int, top_k: int) -> dict | None:
    present = [v for v in values or () if not _missing(v)]
    if not present:
        return None
    if infer_task(*present) == CLASSIFICATION:
        return categorical_profile([None if _missing(v) else class_name(v) for v in values], top_k=top_k)
    if not all(_is_number(v) for v in present):
        raise ValueError(f"{path}: labels mix numbers with a fraction and categories")
    _check_finite(path, lines, LABEL, values)
    return numeric_profile([math.nan if _missing(v) else v for v in values], bins=bins)
