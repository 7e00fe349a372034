"""Detection state of one input partition: its series, their references and detector banks.

A series is one (model, model_version, signal). Each gets a warm-up reference (mean and std,
see :mod:`driftwire.detectors.standardize`) and a slot in the bank of every detector its config
names. Values arrive as flat arrays (series id, value) per batch; one numba call per bank runs
them all. State is per partition so that it can be checkpointed and handed over on rebalance.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass

import numpy as np

from driftwire.detectors import make_bank, window
from driftwire.detectors.standardize import WarmupStandardizer
from driftwire.detectors.window import CATEGORICAL, NUMERIC, WindowBank, WindowClose
from driftwire.stream.detect.caps import SeriesBudget
from driftwire.stream.detect.compare import ComparisonTracker
from driftwire.stream.detect.outcomes import CLASSIFICATION, REGRESSION, OutcomeTracker
from driftwire.stream.join.batch import JoinCodes, Pairs
from driftwire.stream.join.table import JoinTable
from driftwire.stream.settings import DetectionConfig, DetectorSpec, ResolvedSignalConfig, ResolvedWindowConfig

log = logging.getLogger(__name__)

#: series id of a signal that is disabled in the config, and of one the series cap turned away
DISABLED = -1
CAPPED = -2

#: signals that are model outputs; every other signal is a feature.
OUTPUT_SIGNALS = ("prediction", "score")
#: the signal of a model's error on labelled predictions (see :mod:`driftwire.stream.detect.outcomes`), and the signal
#: of the labels themselves; the series of both are keyed apart (a feature may be named so too)
ERROR_SIGNAL = "error"
LABEL_SIGNAL = "label"
_JOINED = "\x00"
_ERROR_KEY = _JOINED + ERROR_SIGNAL


def signal_kind(signal: str) -> str:
    return "prediction_drift" if signal in OUTPUT_SIGNALS else "data_drift"


#: JSON types of a signal's values by the window path they take (null is a missing value)
NUMERIC_TYPES = ("number",)
CATEGORICAL_TYPES = ("string", "boolean")
_JSON_TYPE = {float: "number", int: "number", str: "string", bool: "boolean"}


@dataclass(frozen=True)
class TypeChange:
    """A signal's values arrived with a JSON type of the other path than its reference's (or
    than its first values', without a reference): numbers where categories were, or back."""

    signal: str
    expected: str  # "number", or "string/boolean"
    got: str


@dataclass(frozen=True)
class Series:
    model: str
    model_version: str
    signal: str
    config: ResolvedSignalConfig
    #: a signal of labelled predictions (the error, the label), not of the model's events
    joined: bool = False

    @property
    def kind(self) -> str:
        if self.joined:
            return "label_drift" if self.signal == LABEL_SIGNAL else "concept_drift"
        return signal_kind(self.signal)

    @property
    def key(self) -> tuple[str, str, str]:
        return (self.model, self.model_version, _JOINED + self.signal if self.joined else self.signal)


@dataclass(frozen=True)
class Detection:
    """A detector fired on the value at ``position`` of the batch."""

    position: int
    series: int
    detector: int  # index into PartitionMonitor.specs
    severity: str
    statistic: float
    threshold: float | None


class _BankSlots:
    """A detector bank plus, per series, the slot it holds there (-1: not on that series)."""

    def __init__(self, spec: DetectorSpec):
        self.spec = spec
        self.bank = make_bank(spec.name, **spec.params)
        self.slot_of = np.full(16, -1, dtype=np.int64)
        #: whether series i holds slot i for every series so far (series ids are then slots)
        self.identity = True
        self.in_warning: dict[int, bool] = {}

    def attach(self, series: int) -> int:
        if series >= self.slot_of.shape[0]:
            grown = np.full(max(2 * self.slot_of.shape[0], series + 1), -1, dtype=np.int64)
            grown[: self.slot_of.shape[0]] = self.slot_of
            self.slot_of = grown
        slot = self.bank.add()
        self.slot_of[series] = slot
        self.identity &= slot == series
        return slot


class PartitionMonitor:
    """Series, references and detectors of one (topic, partition), and the windows of its model
    versions (see :mod:`driftwire.detectors.window`)."""

    def __init__(self, topic: str, partition: int, config: DetectionConfig, budget: SeriesBudget,
                 profiles=None):
        self.topic = topic
        self.partition = partition
        self.config = config
        self.budget = budget
        self.series: list[Series] = []
        self._ids: dict[tuple[str, str, str], int] = {}
        self.refs = WarmupStandardizer()
        self.specs: list[DetectorSpec] = []
        self._banks: list[_BankSlots] = []
        self._bank_of_spec: dict[tuple, int] = {}
        #: reference profiles by (model, version); version "*" for any version (DriftService.profiles)
        self.profiles = profiles if profiles is not None else {}
        self.windows = WindowBank()
        #: window group of each (model, version) (-1: windows off), and its key and config; the
        #: label windows of a model version are a group of their own, keyed (model, version, label)
        self._groups: dict[tuple, int] = {}
        self.group_keys: list[tuple] = []
        self.group_configs: list[ResolvedWindowConfig] = []
        #: window series of each series (-1: none); (model, version, signal) -> window series,
        #: numeric or categorical; the Series of each window series
        self._win_of = np.full(16, -1, dtype=np.int64)
        self._win_ids: dict[tuple[str, str, str], int] = {}
        self.window_series: list[Series] = []
        #: window series without a detector series (categorical, labels): they count against the
        #: budget too
        self._window_only = 0
        #: label window series turned off by the config
        self._labels_off: set[tuple[str, str]] = set()
        #: versions seen per model
        self._versions: dict[str, set[str]] = {}
        #: (model, version, signal) already reported as a field the reference does not have
        self.new_fields: set[tuple[str, str, str]] = set()
        #: per (model, version, signal): the value types it is expected to have, and the type
        #: changes seen per window group since its last window closed
        self._field_types: dict[tuple[str, str, str], tuple[str, ...]] = {}
        self.type_changes: dict[int, list[TypeChange]] = {}
        #: the label join of this partition and what its pairs feed (predictions partitions only)
        self.join: JoinTable | None = None
        #: codes of the models, versions and class values the join compares
        self.join_codes = JoinCodes()
        self.outcomes: OutcomeTracker | None = None
        self.comparisons: ComparisonTracker | None = None

    # -- series --------------------------------------------------------------------------
    def series_id(self, model: str, version: str, signal: str) -> int:
        """Id of a series, created on first sight; DISABLED, or CAPPED when over the series cap."""
        key = (model, version, signal)
        sid = self._ids.get(key)
        if sid is not None:
            return sid
        config = self.config.resolve(model, signal)
        if not config.enabled:
            self._ids[key] = DISABLED
            return DISABLED
        if not self.budget.take():
            # Not remembered: the series may get room once a partition is revoked.
            return CAPPED
        return self._add_series(Series(model, version, signal, config))

    def error_series(self, model: str, version: str, task: str) -> int:
        """Id of the error series of a model version whose labelled predictions are a ``task``
        (classification or regression); DISABLED or CAPPED as :meth:`series_id`."""
        key = (model, version, _ERROR_KEY)
        sid = self._ids.get(key)
        if sid is not None:
            return sid
        config = self.config.resolve_error(model, task)
        if not config.enabled:
            self._ids[key] = DISABLED
            return DISABLED
        if not self.budget.take():
            return CAPPED
        return self._add_series(Series(model, version, ERROR_SIGNAL, config, joined=True))

    def joins(self, model: str) -> bool:
        """Whether the predictions and labels of ``model`` are joined: a tracked model whose
        ``labels.enabled`` is on."""
        return self.budget.models.tracks(model) and self.outcomes.joins(model)

    def note_version(self, model: str, version: str) -> None:
        """Events of ``model`` came with ``version``. A second version of a model starts the join
        if it waits for labels (``join.enabled: auto``): versions that predict the same events are
        compared on them with or without labels."""
        versions = self._versions.setdefault(model, set())
        versions.add(version)
        if len(versions) > 1 and self.join is not None and not self.join.active:
            self.join.active = True
            log.info("%s[%d]: model %s has versions %s: its predictions join from now on to compare them",
                     self.topic, self.partition, model, sorted(versions))

    def enable_join(self, ttl: float, max_pending: int) -> None:
        self.join = JoinTable(ttl, max_pending)
        self.outcomes = OutcomeTracker(self.config)
        self.comparisons = ComparisonTracker(self.config, self.outcomes)

    def _add_series(self, series: Series) -> int:
        sid = len(self.series)
        self.series.append(series)
        self._ids[series.key] = sid
        self.refs.add(standardize=series.config.standardize, warmup=series.config.warmup)
        for spec in series.config.detectors:
            self._bank(spec).attach(sid)
        if not series.joined:  # errors come with labels, not with the model's events
            self._attach_window(sid, series)
        return sid

    # -- windows -------------------------------------------------------------------------
    def window_group(self, model: str, version: str) -> int:
        """The window group of a model version, made on first sight with its reference profile
        when there is one (else it learns one from its first events); -1 when windows are off."""
        key = (model, version)
        g = self._groups.get(key)
        if g is not None:
            return g
        config = self.config.resolve_windows(model)
        if not config.enabled:
            self._groups[key] = -1
            return -1
        profile = self.profile_of(model, version)
        g = self._groups[key] = self.windows.add_group(config.spec(), learn_reference=profile is None)
        self.group_keys.append(key)
        self.group_configs.append(config)
        if profile is not None:
            self.use_profile(g, profile)
        return g

    def note_type(self, model: str, version: str, signal: str, t: type) -> None:
        """A new shape has values of type ``t`` in ``signal``: a type change when numbers come
        where categories are expected, or categories where numbers are."""
        got = _JSON_TYPE.get(t)
        if got is None:
            return
        key = (model, version, signal)
        expected = self._field_types.setdefault(key, NUMERIC_TYPES if got == "number" else CATEGORICAL_TYPES)
        g = self._groups.get((model, version), -1)
        if got not in expected and g >= 0:
            change = TypeChange(signal, "/".join(expected), got)
            pending = self.type_changes.setdefault(g, [])
            if change not in pending:
                pending.append(change)

    def category_series(self, model: str, version: str, signal: str) -> int:
        """The categorical window series of a signal with string or boolean values, made on first
        sight; -1 when windows are off for the model, the signal is disabled, or the signal is
        numeric in the reference; CAPPED when over the series cap."""
        key = (model, version, signal)
        g = self.window_group(model, version)  # making the group may make the series, from its profile
        ws = self._win_ids.get(key)
        if ws is not None:
            return ws if self.windows.kind[ws] == CATEGORICAL else -1
        if g < 0:
            return -1
        profile = self.profile_of(model, version)
        if profile is not None and signal in profile.signals and profile.signals[signal].type != "categorical":
            return -1
        config = self.config.resolve(model, signal)
        if not config.enabled:
            return -1
        if not self.budget.take():
            return CAPPED
        self._window_only += 1
        ws = self._win_ids[key] = self.windows.add_series(g, CATEGORICAL)
        self.window_series.append(Series(model, version, signal, config))
        return ws

    def profile_of(self, model: str, version: str):
        return self.profiles.get((model, version)) or self.profiles.get((model, "*"))

    def use_profile(self, g: int, profile) -> None:
        """Compare group ``g``'s windows with ``profile`` (a ReferenceProfile) from now on."""
        if self.label_group(g):
            ws = self.windows.group_series[g][0]
            reference = self._label_reference(profile, self.windows.kind[ws])
            if reference is not None:
                self.windows.set_group_reference(g, {ws: reference.model_dump()})
            return
        model, version = self.group_keys[g]
        chosen = {}
        for signal, sp in profile.signals.items():
            self._field_types[(model, version, signal)] = NUMERIC_TYPES if sp.type == "numeric" else CATEGORICAL_TYPES
            if sp.type == "numeric":
                sid = self.series_id(model, version, signal)
                if sid < 0:
                    continue
                self._attach_window(sid, self.series[sid])
                ws = int(self._win_of[sid])
            else:
                ws = self.category_series(model, version, signal)
            if ws >= 0 and (self.windows.kind[ws] == CATEGORICAL) == (sp.type == "categorical"):
                chosen[ws] = sp.model_dump()
        self.windows.set_group_reference(g, chosen)

    def profile_published(self, profile) -> None:
        """A profile came from the references topic: the groups whose profile it now is use it."""
        for g, (model, version, *_) in enumerate(self.group_keys):
            if model == profile.model and self.profile_of(model, version) is profile:
                self.use_profile(g, profile)

    # -- label windows -------------------------------------------------------------------
    def label_group(self, g: int) -> bool:
        """Whether window group ``g`` holds the labels of a model version (see :meth:`label_series`)."""
        return len(self.group_keys[g]) == 3

    def label_series(self, model: str, version: str, task: str) -> int:
        """The window series of a model version's labels, in a group of its own whose events are
        the version's labelled predictions: categorical for a classification, numeric for a
        regression. Its reference is the ``label`` of the version's profile, else its first
        ``reference_size`` labels. -1 when windows or the ``label`` signal are off for the
        model; CAPPED when over the series cap."""
        key = (model, version, _JOINED + LABEL_SIGNAL)
        ws = self._win_ids.get(key)
        if ws is not None:
            return ws
        if (model, version) in self._labels_off:
            return -1
        windows = self.config.resolve_windows(model)
        config = self.config.resolve(model, LABEL_SIGNAL)
        if not (windows.enabled and config.enabled):
            self._labels_off.add((model, version))
            return -1
        if not self.budget.take():
            return CAPPED
        kind = CATEGORICAL if task == CLASSIFICATION else NUMERIC
        profile = self.profile_of(model, version)
        reference = None if profile is None else self._label_reference(profile, kind)
        g = self._groups[(model, version, LABEL_SIGNAL)] = self.windows.add_group(
            windows.spec(), learn_reference=reference is None)
        self.group_keys.append((model, version, LABEL_SIGNAL))
        self.group_configs.append(windows)
        ws = self._win_ids[key] = self.windows.add_series(g, kind)
        self.window_series.append(Series(model, version, LABEL_SIGNAL, config, joined=True))
        self._window_only += 1
        if reference is not None:
            self.windows.set_group_reference(g, {ws: reference.model_dump()})
        return ws

    def _label_reference(self, profile, kind: int):
        """The profile's labels, when they are of the kind the version's task makes them."""
        reference = profile.label
        if reference is None:
            return None
        if (reference.type == "categorical") != (kind == CATEGORICAL):
            log.warning("profile %s: its labels are %s, but the model's labelled predictions make it a %s; "
                        "the label windows learn their reference from live labels", profile.key, reference.type,
                        CLASSIFICATION if kind == CATEGORICAL else REGRESSION)
            return None
        return reference

    def observe_labels(self, pairs: Pairs, times: np.ndarray) -> list[WindowClose]:
        """Feed labelled pairs to the label windows of their model versions, each at ``times[i]``
        (the time its join completed), in time order; return the windows that closed."""
        order = np.argsort(times, kind="stable")
        classification = self.outcomes.tasks_of(pairs)
        groups, of = pairs.groups()
        names, versions = self.join_codes.model_names, self.join_codes.version_names
        ws_of = np.array([self.label_series(names[m], versions[v], CLASSIFICATION if classification[of == g][0]
                                            else REGRESSION) for g, (m, v) in enumerate(groups)], dtype=np.int64)
        ws = ws_of[of][order]
        keep = ws >= 0
        if not keep.any():
            return []
        order, ws = order[keep], ws[keep]
        values = self._label_values(pairs, order, ws)
        valued = np.flatnonzero(~np.isnan(values))  # else a missing value of the event
        groups = np.asarray(self.windows.group_of, dtype=np.int64)[ws]
        return self.windows.update(groups, times[order], pairs.rows["label_offset"][order], ws[valued],
                                   values[valued], valued)

    def _label_values(self, pairs: Pairs, order: np.ndarray, ws: np.ndarray) -> np.ndarray:
        """The value of each label (pairs in ``order``) in its window series ``ws``: a category
        code, a number, or NaN for a value the series cannot take."""
        categorical = self.windows.kind[ws] == CATEGORICAL
        number = pairs.label_number[order]
        values = np.where(number, pairs.rows["label_value"][order], np.nan)
        if categorical.any():
            at = np.flatnonzero(categorical)
            keys = (ws[at] << 32) | pairs.label[order][at]
            unique, first, inverse = np.unique(keys, return_index=True, return_inverse=True)
            codes = np.empty(unique.size)
            for j in np.argsort(first, kind="stable").tolist():
                codes[j] = self.windows.category_code(int(unique[j] >> 32), pairs.names[int(unique[j] & 0xFFFFFFFF)])
            values[at] = codes[inverse.ravel()]
        return values

    def _restore_join(self, state: dict) -> None:
        if "table" in state:
            self.join_codes.set_state(state["codes"])
            self.join.set_state(state["table"])
            return
        # a checkpoint of the per-event join store
        codes = self.join_codes
        self.join = JoinTable.from_store_state(state["store"], codes.model, codes.version, codes.payload,
                                               ttl=self.join.ttl, max_pending=self.join.max_pending)

    def _attach_window(self, sid: int, series: Series) -> None:
        if sid >= self._win_of.shape[0]:
            self._win_of = np.concatenate([self._win_of, np.full(self._win_of.shape[0], -1, dtype=np.int64)])
        key = (series.model, series.model_version, series.signal)
        ws = self._win_ids.get(key)
        if ws is None:
            # making the group may attach this series already, with the group's profile
            g = self.window_group(series.model, series.model_version)
            ws = self._win_ids.get(key)
        if ws is None:
            if g < 0:
                return
            ws = self._win_ids[key] = self.windows.add_series(g)
            self.window_series.append(series)
        if self.windows.kind[ws] != CATEGORICAL:
            self._win_of[sid] = ws

    def observe_windows(self, groups, times, offsets, event_messages, series_ids, values, messages,
                        categories=None) -> list[WindowClose]:
        """Feed a batch's events (group, event time, offset, message position) and values to the
        windows, with ``categories`` (window series, category codes, message positions) of the
        categorical signals; return the windows that closed."""
        ws = self._win_of[series_ids]
        keep = ws >= 0
        if not keep.all():
            ws, values, messages = ws[keep], values[keep], messages[keep]
        if categories is not None and categories[0].size:
            ws, values, messages = (np.concatenate(p) for p in zip((ws, values, messages), categories))
            order = np.argsort(messages, kind="stable")
            ws, values, messages = ws[order], values[order], messages[order]
        return self.windows.update_messages(groups, times, offsets, event_messages, ws, values, messages)

    def _bank(self, spec: DetectorSpec) -> _BankSlots:
        key = spec.key()
        index = self._bank_of_spec.get(key)
        if index is None:
            index = len(self._banks)
            self._bank_of_spec[key] = index
            self._banks.append(_BankSlots(spec))
            self.specs.append(spec)
        return self._banks[index]

    def close(self) -> None:
        """Give this partition's series back to the budget (partition revoked)."""
        self.budget.release(len(self.series) + self._window_only)
        self.series = []
        self._ids = {}
        self._window_only = 0

    # -- detection -----------------------------------------------------------------------
    def observe(self, series_ids: np.ndarray, values: np.ndarray) -> list[Detection]:
        """Feed one batch; ``series_ids[i]`` names the series of ``values[i]`` (all >= 0)."""
        positions, sids, z = self.refs.update(series_ids, values)
        if positions.size == 0:
            return []
        detections: list[Detection] = []
        for index, bank in enumerate(self._banks):
            share = self._share(bank, sids)
            if share is None:
                continue
            mine, slots = share
            drifts, warnings = bank.bank.update(slots, z if mine is None else z[mine])
            at, of = (positions, sids) if mine is None else (positions[mine], sids[mine])
            for j in drifts.tolist():
                detections.append(self._detection(bank, index, at[j], of[j], bank.spec.severity))
            if warnings.size:
                detections += self._warning_onsets(bank, index, at, of, slots, warnings)
        detections.sort(key=lambda d: d.position)
        return detections

    def _share(self, bank: _BankSlots, sids: np.ndarray):
        """(positions into the batch, or None for all; slots) of the values this bank takes; None
        when it takes none."""
        if bank.identity and len(bank.bank) == len(self.series):
            return None, sids  # the usual case: every series has the detector, slot = series id
        slots = bank.slot_of[sids]
        mine = np.flatnonzero(slots >= 0)
        if mine.size == 0:
            return None
        if mine.size == slots.size:
            return None, slots
        return mine, slots[mine]

    def _detection(self, bank: _BankSlots, index: int, position: int, sid: int, severity: str) -> Detection:
        slot = int(bank.slot_of[sid])
        return Detection(
            position=int(position), series=int(sid), detector=index, severity=severity,
            statistic=bank.bank.statistic(slot), threshold=bank.bank.threshold,
        )

    def _warning_onsets(self, bank, index, positions, sids, slots, warnings) -> list[Detection]:
        """Warnings as alerts only where a series enters its warning zone, not on every value in it."""
        flagged = np.zeros(slots.shape[0], dtype=np.bool_)
        flagged[warnings] = True
        onsets = []
        for i, (slot, warn) in enumerate(zip(slots.tolist(), flagged.tolist())):
            was = bank.in_warning.get(slot, False)
            if warn and not was:
                onsets.append(self._detection(bank, index, positions[i], sids[i], "warning"))
            bank.in_warning[slot] = warn
        return onsets

    def statistics(self):
        """(series, spec, statistic, threshold) for every detector on every series."""
        for bank in self._banks:
            threshold = bank.bank.threshold
            for sid in np.flatnonzero(bank.slot_of[: len(self.series)] >= 0).tolist():
                yield self.series[sid], bank.spec, bank.bank.statistic(int(bank.slot_of[sid])), threshold

    def reference(self, sid: int) -> dict:
        return self.refs.reference(sid)

    # -- checkpoint ----------------------------------------------------------------------
    def get_state(self) -> dict:
        """Plain data for the checkpoint topic: series, references, detector states."""
        detectors = []
        for bank in self._banks:
            spec = bank.spec.model_dump()
            for sid in np.flatnonzero(bank.slot_of[: len(self.series)] >= 0).tolist():
                detectors.append([sid, spec, bank.bank.get_state(int(bank.slot_of[sid]))])
        return {
            "join": None if self.join is None else {"table": self.join.get_state(),
                                                    "codes": self.join_codes.get_state(),
                                                    "outcomes": self.outcomes.get_state(),
                                                    "comparisons": self.comparisons.get_state()},
            "series": [list(s.key) for s in self.series],
            "references": [self.refs.get_state(i) for i in range(len(self.series))],
            "detectors": detectors,
            "windows": {
                "bank": window.get_state(self.windows),
                "groups": [list(k) for k in self.group_keys],
                "series": [[*k, ws] for k, ws in self._win_ids.items()],
            },
        }

    def set_state(self, state: dict) -> None:
        """Load a checkpoint into a fresh monitor. Series get today's config; detectors whose
        spec still applies resume, the others start fresh."""
        if "windows" in state:
            try:
                bank = window.set_state(state["windows"]["bank"])
            except ValueError as err:
                # a checkpoint of another version's window layout: the windows start again
                log.warning("%s[%d]: windows not restored from the checkpoint (%s); they start again, and "
                            "references without a profile are learnt again", self.topic, self.partition, err)
            else:
                self._restore_windows(state["windows"], bank)
        if state.get("join") and self.join is not None:
            self._restore_join(state["join"])
            self.outcomes.set_state(state["join"]["outcomes"])
            if "comparisons" in state["join"]:
                self.comparisons.set_state(state["join"]["comparisons"])
        tasks = self.outcomes.tasks if self.outcomes is not None else {}
        for (model, version, signal), ref in zip(state["series"], state["references"]):
            if signal == _ERROR_KEY:
                if model not in tasks:
                    continue
                sid = self.error_series(model, version, tasks[model])
            else:
                sid = self.series_id(model, version, signal)
            if sid >= 0:
                self.refs.set_state(sid, ref)
        restored = {}
        for old_sid, spec, det_state in state["detectors"]:
            model, version, signal = state["series"][old_sid]
            restored[(model, version, signal, DetectorSpec.model_validate(spec).key())] = det_state
        for bank in self._banks:
            for sid in np.flatnonzero(bank.slot_of[: len(self.series)] >= 0).tolist():
                det_state = restored.get((*self.series[sid].key, bank.spec.key()))
                if det_state is not None:
                    bank.bank.set_state(int(bank.slot_of[sid]), det_state)

    def _restore_windows(self, state: dict, bank: WindowBank) -> None:
        self.windows = bank
        self.group_keys = [tuple(k) for k in state["groups"]]
        self._groups = {k: g for g, k in enumerate(self.group_keys)}
        self.group_configs = [self.config.resolve_windows(model) for model, *_ in self.group_keys]
        self._win_ids = {(m, v, s): ws for m, v, s, ws in state["series"]}
        self.window_series = [None] * len(self._win_ids)
        for (model, version, signal), ws in self._win_ids.items():
            joined = signal.startswith(_JOINED)
            signal = signal.removeprefix(_JOINED)
            self.window_series[ws] = Series(model, version, signal, self.config.resolve(model, signal), joined)
            if joined or self.windows.kind[ws] == CATEGORICAL:
                self.budget.used += 1  # even over the cap: its state is here already
                self._window_only += 1
