"""Route a partition's events to flat (series, value) arrays, one batch at a time.

Events of one model come in few *shapes*: the same feature names, each value of the same JSON
type. A shape is checked and resolved to series ids once. :meth:`Router.add_batch` scans a
whole batch in one numba call (:mod:`driftwire.stream.ingest.scan`) and gathers the values of every event of a known
shape in message order without per-event Python; the events the scanner is not sure about go
through :meth:`Router.add`, where an event costs a parse, a header check, a type signature and
one ``list.extend``. Both ways give the same result. This is the service's hot path.
"""

from __future__ import annotations

from typing import Annotated

import msgspec
import numpy as np

from driftwire.detectors.profile import category_name
from driftwire.schemas.fields import MAX_NAME_LENGTH
from driftwire.stream.detect.monitor import CAPPED, PartitionMonitor
from driftwire.stream.ingest import decode as dec
from driftwire.stream.ingest import scan as sc
from driftwire.stream.ingest.vocabulary import OTHER, Vocabulary
from driftwire.stream.join.table import PREDICTIONS

#: drop the shape cache when it grows past this (events with ever-changing keys)
MAX_SHAPES = 10_000
#: an event time (epoch seconds) at or beyond this, either side of 1970, is not used as a window
#: clock (the record's time is): years beyond 5000 are a unit mistake, not a time
MAX_EVENT_TIME = 1e11


class EventIds:
    """The event id of each message a router took in one run of a batch, read from its scan
    when it is asked for (an alert's trigger), never parsed again."""

    def __init__(self, buf: np.ndarray, scanned: sc.Scanned, indices: np.ndarray, features: np.ndarray, slow):
        self._buf, self._scanned, self._indices, self._features = buf, scanned, indices, features
        #: (message, event id) of the messages the per-event path took
        self._slow = slow

    def get(self, message: int) -> str | None:
        k = int(np.searchsorted(self._indices, message))
        if k >= self._indices.size or self._indices[k] != message:
            return None
        s = self._scanned
        if s.status[k] != sc.FAST:
            return next((event_id for m, event_id in self._slow if m == message), None)
        span = int(s.spans[s.vstart[k] + self._features[s.ids[k]] + sc.C_ID])
        start = span >> sc.SPAN_BITS
        return self._buf[start:start + (span & ((1 << sc.SPAN_BITS) - 1))].tobytes().decode("ascii")


class _Shape:
    """One (model, version, feature names, value types) combination, resolved once; with no
    monitor, a feature layout that feeds nothing (the events of models beyond the model cap)."""

    __slots__ = ("error", "names", "columns", "series", "int_columns", "capped", "direct", "values", "messages",
                 "group", "categories", "category_columns", "category_series")

    # A feature column holds a number, string, bool or null; the first bad type makes the shape
    # (and so every event of it) invalid, with the same error the reference check raises.

    def __init__(self, monitor: PartitionMonitor | None, model: str, version: str, names: tuple, types: tuple,
                 n_features: int):
        self.error = dec.name_error("", model, version, names[:n_features])
        self.names = names
        #: window group of the shape's model version (-1: none)
        self.group = -1
        self.values: list = []
        self.messages: list[int] = []
        #: (column, window series) of the categorical signals (strings and booleans) windowed
        self.categories: list[tuple[int, int]] = []
        columns, series, capped = [], [], 0
        if self.error is None and not dec.FEATURE_TYPES.issuperset(types[:n_features]):
            self.error = next(filter(None, map(dec.feature_type_error, names, types[:n_features])))
        ints = [column for column, t in enumerate(types) if t is int]
        tracked = self.error is None and monitor is not None
        if tracked:
            monitor.note_version(model, version)
            self.group = monitor.window_group(model, version)
        for column, (name, t) in enumerate(zip(names if tracked else (), types)):
            monitor.note_type(model, version, name, t)
            if t is not float and t is not int:
                # Outputs were checked with the header; a string or bool output is categorical.
                if (t is str or t is bool) and self.group >= 0:
                    ws = monitor.category_series(model, version, name)
                    if ws >= 0:
                        self.categories.append((column, ws))
                    elif ws == CAPPED:
                        capped += 1
                continue
            sid = monitor.series_id(model, version, name)
            if sid >= 0:
                columns.append(column)
                series.append(sid)
            elif sid == CAPPED:
                capped += 1
        self.columns = np.array(columns, dtype=np.int64)
        self.series = np.array(series, dtype=np.int64)
        self.category_columns = np.array([c for c, _ in self.categories], dtype=np.int64)
        self.category_series = np.array([ws for _, ws in self.categories], dtype=np.int64)
        self.int_columns = tuple(ints)
        self.capped = capped
        # Numbers and nulls only: numpy converts the values straight to float64 (null -> NaN,
        # in a column that is never selected). Strings and bools need the object route.
        self.direct = all(t is float or t is int or t is _NONE for t in types)


_OUTPUTS = ("prediction", "score")
_SCAN_KIND = {dec.FEATURE: sc.FEATURES, dec.PREDICTION: sc.PREDICTIONS, dec.LABEL: sc.LABELS}
_NONE = type(None)
_Name = Annotated[str, msgspec.Meta(min_length=1, max_length=MAX_NAME_LENGTH)]
_FeatureValue = float | str | bool | None


class _PlainPrediction(msgspec.Struct):
    """A prediction event in the plain form nearly every event has. msgspec parses and checks
    it in one C call; whatever it refuses goes through the reference check, which then raises
    the precise error or accepts the unusual form (so the two never disagree)."""

    event_id: _Name
    model: _Name
    prediction: float | str | bool
    model_version: Annotated[str, msgspec.Meta(max_length=MAX_NAME_LENGTH)] = "unknown"
    timestamp: float | str | None = None
    features: dict[str, _FeatureValue] = {}
    score: float | None = None


class _PlainFeatures(msgspec.Struct):
    event_id: _Name
    model: _Name
    features: dict[str, _FeatureValue]
    model_version: Annotated[str, msgspec.Meta(max_length=MAX_NAME_LENGTH)] = "unknown"
    timestamp: float | str | None = None
    prediction = None
    score = None


_DECODERS = {
    dec.PREDICTION: msgspec.json.Decoder(_PlainPrediction),
    dec.FEATURE: msgspec.json.Decoder(_PlainFeatures),
}


class Router:
    """Decodes one partition's messages and gathers their numeric signal values per batch."""

    def __init__(self, monitor: PartitionMonitor, kind: str, max_bytes: int, allowed_models=frozenset(),
                 hash_mask: int = sc.ALL_BITS):
        self.monitor = monitor
        self.kind = kind
        self.max_bytes = max_bytes
        self.allowed_models = allowed_models
        self._decoder = _DECODERS[kind]
        self._shapes: dict[tuple, _Shape] = {}
        #: shapes of the models beyond the model cap, by (feature names, value types)
        self._layouts: dict[tuple, _Shape] = {}
        self._active: list[_Shape] = []
        #: the scanner's shapes; entry i is the model and _Shape of scanner id i (None: slow path)
        self._table = sc.ShapeTable(hash_mask)
        #: ids of the categorical values the scanner reads, per window series, and each id's window code
        self._vocabulary = Vocabulary()
        self._codes = np.zeros(0)
        self._codes_state = None
        self._table_shapes: list[tuple[str, _Shape | None]] = []
        #: window group of each scanner shape id (-1: none or slow path)
        self._table_groups = np.zeros(0, dtype=np.int64)
        #: per scanner shape id: feature count, model and version codes of the join
        self._table_codes = np.zeros((0, 3), dtype=np.int64)
        #: the last batch as the join takes it: (buffer, scan, message positions), and the
        #: events the per-event path took, (message, model, version, event id, prediction, score)
        self._scanned = None
        self._slow_events: list = []
        #: the messages of the last batch the scan left to the per-event path
        self.read_one_by_one = 0
        self._stale_table = False
        #: (message positions, window groups) of this batch's events in a window group
        self._events: list[tuple[np.ndarray, np.ndarray]] = []
        #: (window series, category codes, messages) of this batch's categorical values
        self._categories: list[tuple[np.ndarray, np.ndarray, np.ndarray]] = []
        #: (series, values, messages) of the events add_batch took the fast way, and their capped values
        self._fast: list[tuple[np.ndarray, np.ndarray, np.ndarray]] = []
        self._fast_capped = 0
        #: events taken in this batch per model, for the event counters
        self.counts: dict[str, int] = {}

    def add(self, value: bytes | None, index: int, times: np.ndarray | None = None) -> str:
        """Take message ``index`` of the batch; return its model, or raise :class:`InvalidEvent`.
        The event's time, when it has a timestamp, goes to ``times[index]``."""
        event = self.decode(value)
        model = event.model
        if self.allowed_models and model not in self.allowed_models:
            raise dec.InvalidEvent(dec.UNKNOWN_MODEL, f"model {model!r} is not in allowed_models")
        features = event.features
        # Feature events carry prediction = score = None: two constant columns, never numeric.
        values = [*features.values(), event.prediction, event.score]
        key = (model, event.model_version, tuple(features), tuple(map(type, values)))
        shape = self._shapes.get(key)
        if shape is None:
            shape = self._new_shape(key)
        if shape.error is not None:
            # a new exception each time: the shape's own would keep the traceback of its last
            # raise, and with it the frame and arrays of that whole batch, for as long as it lives
            raise dec.InvalidEvent(shape.error.reason, shape.error.message)
        for column in shape.int_columns:
            dec.check_feature_range(shape.names[column], values[column])
        if not shape.messages:
            self._active.append(shape)
        shape.values += values
        shape.messages.append(index)
        if times is not None and event.timestamp is not None:
            t = dec.parse_timestamp(event.timestamp)
            if abs(t) < MAX_EVENT_TIME:
                times[index] = t
        self.counts[model] = self.counts.get(model, 0) + 1
        if self.kind == dec.PREDICTION:
            # plain values, not the event: tuples of them leave the garbage collector's watch
            self._slow_events.append((index, model, event.model_version or "unknown", event.event_id,
                                      event.prediction, event.score))
        return model

    def decode(self, value: bytes | None):
        """The event's header fields, checked (not its feature values: see _Shape)."""
        if value is None or len(value) > self.max_bytes:
            dec.check_size(value, self.max_bytes)
        try:
            event = self._decoder.decode(value)
            if type(event.timestamp) is str:
                dec.parse_timestamp(event.timestamp)
            # msgspec skips the fields it does not know without reading them: bad UTF-8 or a
            # number beyond float64 there is orjson's to refuse, as for any other message
            dec.parse_json(value)
        except dec.REFUSED:
            # msgspec raises UnicodeDecodeError for bad UTF-8 in a string it decodes; the
            # reference check then says malformed_json.
            event = dec.check_header(dec.parse_json(value), self.kind)
        return event

    def add_batch(self, values: list, indices: np.ndarray, times: np.ndarray | None = None
                  ) -> list[tuple[int, dec.InvalidEvent]]:
        """Take ``values[k]`` as message ``indices[k]`` of the batch, for every k (indices
        increasing); return ``(k, error)`` of the invalid ones, in order. The same as calling
        :meth:`add` on each, with one numba scan instead of a parse per event. The time of each
        valid event with a timestamp goes to ``times[indices[k]]``."""
        self._vocabulary.maybe_reset()
        # Shapes of models not allowed never reach _shapes: the table has its own bound.
        if self._stale_table or len(self._table) >= MAX_SHAPES:
            self._table.clear()
            self._table_shapes = []
            self._table_groups = np.zeros(0, dtype=np.int64)
            self._table_codes = np.zeros((0, 3), dtype=np.int64)
            self._stale_table = False
        buf, off = sc.pack(values, self.max_bytes)
        table = self._table
        scanned = table.scan(buf, off, _SCAN_KIND[self.kind], self.max_bytes)
        self._scanned = (buf, scanned, np.asarray(indices, np.int64))
        self._slow_events = []
        status, ids, event_times = scanned.status, scanned.ids, scanned.times
        errors = []
        self.read_one_by_one = 0
        # In message order, as add would meet them: new shapes then get their series ids (and
        # the series budget) in the same order.
        for k in np.flatnonzero(status != sc.FAST).tolist():
            if status[k] == sc.NEW:
                sid = int(ids[k])
                if sid >= table.resolved:
                    self._resolve(sid)
                if self._table_shapes[sid][1] is not None:
                    status[k] = sc.FAST
                    continue
            self.read_one_by_one += 1
            try:
                self.add(values[k], int(indices[k]), times)
            except dec.InvalidEvent as exc:
                errors.append((k, exc))
            except Exception as exc:  # noqa: BLE001 - one message must not take its batch down
                errors.append((k, dec.undecodable(exc)))
        indices = np.asarray(indices, np.int64)
        if times is not None:
            stamped = (status == sc.FAST) & (np.abs(event_times) < MAX_EVENT_TIME)
            times[indices[stamped]] = event_times[stamped]
        series, taken, messages, counts = table.gather(scanned, indices)
        if taken.size:
            self._fast.append((series, taken, messages))
        self._fast_categories(buf, scanned, indices)
        self._fast_events(status, ids, indices)
        for sid in np.flatnonzero(counts).tolist():
            model, shape = self._table_shapes[sid]
            n = int(counts[sid])
            self.counts[model] = self.counts.get(model, 0) + n
            self._fast_capped += shape.capped * n
        return errors

    def event_ids(self) -> EventIds:
        """The event ids of the last batch's messages."""
        buf, scanned, indices = self._scanned
        return EventIds(buf, scanned, indices, self._table_codes[:, 0].copy(),
                        [(event[0], event[3]) for event in self._slow_events])

    def join_rows(self, joins, times: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """(buffer, :data:`~driftwire.stream.join.table.PREDICTIONS` rows) of the last batch's valid predictions of
        the models for which ``joins(model)`` is true, in message order; ``times`` the event
        time of each message of the batch."""
        buf, scanned, indices = self._scanned
        codes = self.monitor.join_codes
        fast = np.flatnonzero(scanned.status == sc.FAST)
        sids = scanned.ids[fast]
        wanted = np.zeros(len(self._table_shapes), dtype=np.bool_)
        for sid in np.unique(sids).tolist():
            wanted[sid] = joins(self._table_shapes[sid][0])
        fast, sids = fast[wanted[sids]], sids[wanted[sids]]
        info = self._table_codes[sids]
        rows = codes.scanned_rows(buf, scanned, fast, scanned.vstart[fast] + info[:, 0], info[:, 1],
                                  times[indices[fast]], indices[fast], PREDICTIONS)
        rows["version"] = info[:, 2]
        slow = [(*event, times[event[0]], -1) for event in self._slow_events if joins(event[1])]
        if slow:
            buf, more = codes.event_rows(buf, slow, PREDICTIONS)
            rows = np.concatenate((rows, more))
            rows = rows[np.argsort(rows["message"], kind="stable")]
        return buf, rows

    def _fast_categories(self, buf, scanned, indices) -> None:
        """The window codes of the categorical values the scanner read."""
        ws, spans, messages = self._table.gather_categories(scanned, indices)
        if not ws.size:
            return
        ids = self._vocabulary.intern(buf, spans, ws)
        self._categories.append((ws, self._window_codes(ws, ids), messages))

    def _window_codes(self, ws: np.ndarray, ids: np.ndarray) -> np.ndarray:
        """The window code of each value (vocabulary id ``ids[i]`` of window series ``ws[i]``).
        A value's code is looked up once, by name, and kept until the windows change what
        codes mean; values beyond the vocabulary's bound take their series' 'other'."""
        windows = self.monitor.windows
        state = (id(windows), windows.generation, self._vocabulary.generation)
        names = self._vocabulary.names
        if state != self._codes_state:
            self._codes_state, self._codes = state, np.full(len(names), np.nan)
        elif self._codes.size < len(names):
            self._codes = np.concatenate((self._codes, np.full(len(names) - self._codes.size, np.nan)))
        named = ids != OTHER
        codes = np.empty(ids.size)
        codes[named] = self._codes[ids[named]]
        unknown = named & np.isnan(codes)
        if unknown.any():
            # in the order they first come: while a reference is learnt, that order gives the codes
            new, first = np.unique(ids[unknown], return_index=True)
            scopes = ws[unknown][first]
            for j in np.argsort(first, kind="stable").tolist():
                self._codes[new[j]] = windows.category_code(int(scopes[j]), names[int(new[j])])
            codes[unknown] = self._codes[ids[unknown]]
        if not named.all():
            other = ~named
            codes[other] = [windows.other_code(int(s)) for s in ws[other].tolist()]
        return codes

    def _fast_events(self, status, ids, indices) -> None:
        fast = np.flatnonzero(status == sc.FAST)
        if not fast.size:
            return
        groups = self._table_groups[ids[fast]]
        windowed = groups >= 0
        if windowed.all():
            self._events.append((indices[fast], groups))
        elif windowed.any():
            self._events.append((indices[fast][windowed], groups[windowed]))

    def _resolve(self, sid: int) -> None:
        """Scanner shape ``sid`` to its _Shape, made as add makes it; the slow path for a shape
        add would refuse or read differently (a model not allowed, a feature name twice)."""
        model, version, names, types = key = sc.decode_canonical(self._table.canonical(sid))
        shape = None
        if (not self.allowed_models or model in self.allowed_models) and len(set(names)) == len(names):
            shape = self._shapes.get(key) or self._new_shape(key)
            if shape.error is not None:
                shape = None
        if shape is None:
            self._table.resolve(sid, None, None)
        else:
            self._table.resolve(sid, shape.columns, shape.series, shape.category_columns, shape.category_series)
        self._table_shapes.append((model, shape))
        self._table_groups = np.append(self._table_groups, -1 if shape is None else shape.group)
        codes = self.monitor.join_codes
        self._table_codes = np.vstack((self._table_codes, [len(names), codes.model(model), codes.version(version)]))

    def _new_shape(self, key: tuple) -> _Shape:
        """The shape of ``key``. A model beyond the model cap gets the shape of its feature layout,
        shared by every such model and kept apart, so that a flood of model names costs one
        lookup an event and crowds no tracked model's shape out."""
        model, version, names, types = key
        layout = self._layouts.get((names, types))
        if layout is None:
            if len(self._layouts) >= MAX_SHAPES:
                self._layouts.clear()
            layout = self._layouts[names, types] = _Shape(None, "", "", names + _OUTPUTS, types, len(names))
        if layout.error is None and dec.name_error("", model, version) is None \
                and not self.monitor.budget.models.admit(model):
            return layout
        if len(self._shapes) >= MAX_SHAPES:
            self.forget_shapes()
        shape = self._shapes[key] = _Shape(self.monitor, model, version, names + _OUTPUTS, types, len(names))
        return shape

    def forget_shapes(self) -> None:
        """Resolve shapes again (series the cap turned away may fit now)."""
        self._shapes.clear()
        # Not at once: ids the current scan handed out stay valid until its batch is taken.
        self._stale_table = True

    def take_events(self) -> tuple[np.ndarray, np.ndarray]:
        """(message positions, window groups) of the events :meth:`flush` handed over, in message
        order: the clock of their windows (an event with no numeric value still counts)."""
        parts, self._events = self._events, []
        if not parts:
            return np.empty(0, dtype=np.int64), np.empty(0, dtype=np.int64)
        if len(parts) == 1:
            return parts[0]
        messages, groups = (np.concatenate(p) for p in zip(*parts))
        order = np.argsort(messages, kind="stable")
        return messages[order], groups[order]

    def _take_categories(self, shape: _Shape, n: int, width: int) -> None:
        windows = self.monitor.windows
        messages = np.array(shape.messages, dtype=np.int64)
        # a shape fixes each column's type: a categorical column holds only strings or only booleans
        for column, ws in shape.categories:
            names = map(category_name, shape.values[column::width])
            self._categories.append((np.full(n, ws, dtype=np.int64), windows.category_codes(ws, names), messages))

    def take_categories(self) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """(window series, category codes, message positions) of the categorical values
        :meth:`flush` handed over, by shape; the windows put them in message order with the
        numeric values (:meth:`PartitionMonitor.observe_windows`)."""
        parts, self._categories = self._categories, []
        if not parts:
            empty = np.empty(0, dtype=np.int64)
            return empty, np.empty(0), empty
        ws, codes, messages = (np.concatenate(p) for p in zip(*parts))
        return ws, codes, messages

    def flush(self) -> tuple[np.ndarray, np.ndarray, np.ndarray, int]:
        """The batch as (series ids, values, message index of each value, values the cap dropped),
        in message order, and start a new batch."""
        parts = self._fast
        capped = self._fast_capped
        self._fast = []
        self._fast_capped = 0
        for shape in self._active:
            n = len(shape.messages)
            if shape.group >= 0:
                self._events.append((np.array(shape.messages, dtype=np.int64), np.full(n, shape.group, np.int64)))
            width = len(shape.names)
            capped += shape.capped * n
            if shape.categories:
                self._take_categories(shape, n, width)
            if shape.columns.size:
                raw = np.array(shape.values, dtype=np.float64 if shape.direct else object)
                grid = raw.reshape(n, width)[:, shape.columns]
                parts.append((
                    np.broadcast_to(shape.series, grid.shape).ravel(),
                    grid.astype(np.float64, copy=False).ravel(),
                    np.repeat(np.array(shape.messages, dtype=np.int64), shape.columns.size),
                ))
            shape.values = []
            shape.messages = []
        self._active = []
        self._slow_events = []
        self.counts = {}
        if not parts:
            empty = np.empty(0, dtype=np.int64)
            return empty, np.empty(0, dtype=np.float64), empty, capped
        if len(parts) == 1:
            return (*parts[0], capped)
        series, values, messages = (np.concatenate(p) for p in zip(*parts))
        # A series can appear in several shapes, and a batch has fast and slow events: restore
        # message order (stable keeps column order; timsort merges the sorted runs in linear time).
        order = np.argsort(messages, kind="stable")
        return series[order], values[order], messages[order], capped
