"""What joined (prediction, label) pairs say about a model: its error signal and its performance.

For each pair of a model version the tracker gives the **error**: 1.0 or 0.0 for a
misclassification, the absolute error for a regression (see ``LabelsConfig.task``). The service
feeds it to the concept-drift detectors of the series ``(model, version, "error")``.

It also keeps **performance windows**: per model version, every ``window`` pairs, the metrics of
:mod:`driftwire.detectors.performance` (accuracy, precision, recall, F1, log loss when scores
come; MAE, RMSE for a regression). A closed window is checked against the configured limits
and against the version's first full window (its baseline).

Classes are named as profiles name categories (``true``/``false``, strings as they are) and
numbers by their value (``1`` for 1 and 1.0); a model keeps up to ``MAX_CLASSES - 1`` class
names, later ones share the last code.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

import numpy as np

from driftwire.detectors.performance import (
    HIGHER_IS_BETTER,
    ClassificationWindow,
    RegressionWindow,
    binary_p_true,
)
from driftwire.stream.alert.publish import finite_or_none
from driftwire.stream.detect.rules import Finding
from driftwire.stream.settings import DetectionConfig, ResolvedLabelsConfig

if TYPE_CHECKING:
    from driftwire.stream.join.batch import Pairs

MAX_CLASSES = 64
CLASSIFICATION, REGRESSION = "classification", "regression"
#: class names taken as the positive class when the config names none
_POSITIVE = ("true", "1")


def class_name(value) -> str | None:
    """The class of a prediction or label: booleans as JSON writes them, integral numbers
    without a fraction (1 and 1.0 are one class), other values as ``str`` gives them."""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, float) and value.is_integer() and abs(value) < 2**53:
        return str(int(value))
    return None if value is None else str(value)


def is_number(value) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool)


def infer_task(*values) -> str:
    """A regression when one of a model's values (its prediction, its label) is a number with a
    fraction, else a classification."""
    for value in values:
        if is_number(value) and not float(value).is_integer():
            return REGRESSION
    return CLASSIFICATION


def error(task: str, prediction, label) -> float:
    """A prediction's error: 0/1 misclassification, or the absolute error of a regression; NaN
    when a regression's prediction or label is not a number."""
    if task == CLASSIFICATION:
        return float(class_name(prediction) != class_name(label))
    if is_number(prediction) and is_number(label):
        return abs(float(prediction) - float(label))
    return math.nan


@dataclass
class PerformanceClose:
    """A closed performance window of one model version; fields named as a window close's,
    so that alerts are built the same way."""

    model: str
    version: str
    number: int
    start: float  # event time of the earliest and latest prediction in the window
    end: float
    events: int
    last_offset: int  # label offset of the window's last pair
    metrics: dict[str, float]
    #: (metric, finding) of each rule the window broke
    findings: list[tuple[str, Finding]] = field(default_factory=list)
    late: int = 0


class _VersionWindow:
    def __init__(self, task: str):
        self.task = task
        self.window = ClassificationWindow(MAX_CLASSES) if task == CLASSIFICATION else RegressionWindow()
        self.number = 0
        self.baseline: dict[str, float] | None = None
        self.start = math.inf
        self.end = -math.inf
        self.last_offset = -1

    def get_state(self) -> dict:
        return {"task": self.task, "window": self.window.get_state(), "number": self.number,
                "baseline": self.baseline, "start": finite_or_none(self.start), "end": finite_or_none(self.end),
                "last_offset": self.last_offset}

    @classmethod
    def from_state(cls, state: dict) -> _VersionWindow:
        self = cls(state["task"])
        kind = ClassificationWindow if self.task == CLASSIFICATION else RegressionWindow
        self.window = kind.from_state(state["window"])
        self.number, self.baseline, self.last_offset = state["number"], state["baseline"], state["last_offset"]
        self.start = math.inf if state["start"] is None else state["start"]
        self.end = -math.inf if state["end"] is None else state["end"]
        return self


class OutcomeTracker:
    """Error values and performance windows of the labelled predictions of one partition."""

    def __init__(self, config: DetectionConfig):
        self.config = config
        #: task of each model, fixed by its config or its first pair
        self.tasks: dict[str, str] = {}
        #: class name -> code, per model
        self.classes: dict[str, dict[str, int]] = {}
        self._windows: dict[tuple[str, str], _VersionWindow] = {}
        self._labels_config: dict[str, ResolvedLabelsConfig] = {}

    def labels_config(self, model: str) -> ResolvedLabelsConfig:
        cfg = self._labels_config.get(model)
        if cfg is None:
            cfg = self._labels_config[model] = self.config.resolve_labels(model)
        return cfg

    def joins(self, model: str) -> bool:
        """Whether the model's predictions and labels are joined (its ``labels.enabled``)."""
        return self.labels_config(model).enabled

    def task(self, model: str, *values) -> str:
        """The task of a model, fixed by its config or else by the first values seen (see :func:`infer_task`)."""
        task = self.tasks.get(model)
        if task is None:
            configured = self.labels_config(model).task
            task = self.tasks[model] = infer_task(*values) if configured == "auto" else configured
        return task

    def tasks_of(self, pairs: Pairs) -> np.ndarray:
        """Whether each pair's model is a classification (its task fixed by the first pair of the model)."""
        models = np.unique(pairs.model)
        classification = np.zeros(int(models.max()) + 1 if models.size else 0, dtype=np.bool_)
        for model in models.tolist():
            i = int(np.flatnonzero(pairs.model == model)[0])
            name = pairs.codes.model_names[model]
            classification[model] = self.task(name, pairs.prediction(i), pairs.label_value(i)) == CLASSIFICATION
        return classification[pairs.model]

    def errors(self, pairs: Pairs) -> np.ndarray:
        """The error of each pair: 0/1 misclassification or absolute error; NaN when the pair
        cannot be scored (a regression with a string or boolean)."""
        rows = pairs.rows
        numbers = pairs.predicted_number & pairs.label_number
        regression = np.where(numbers, np.abs(rows["value"] - rows["label_value"]), np.nan)
        return np.where(self.tasks_of(pairs), (pairs.predicted != pairs.label).astype(np.float64), regression)

    def observe(self, pairs: Pairs) -> list[PerformanceClose]:
        """Add pairs (in order) to their versions' windows; return the windows that closed."""
        closes = []
        groups, of = pairs.groups()
        for g, (model_code, version_code) in enumerate(groups):
            mine = np.flatnonzero(of == g)
            model, version = pairs.codes.model_names[model_code], pairs.codes.version_names[version_code]
            size = self.labels_config(model).window
            vw = self._windows.get((model, version))
            if vw is None:
                task = self.task(model, pairs.prediction(mine[0]), pairs.label_value(mine[0]))
                vw = self._windows[(model, version)] = _VersionWindow(task)
            start = 0
            while start < mine.size:
                take = min(mine.size - start, size - vw.window.count)
                self._update(model, vw, pairs, mine[start:start + take])
                start += take
                if vw.window.count >= size:
                    closes.append(self._close(model, version, vw))
        return closes

    def _update(self, model: str, vw: _VersionWindow, pairs: Pairs, at: np.ndarray) -> None:
        rows = pairs.rows[at]
        vw.start, vw.end = min(vw.start, float(rows["time"].min())), max(vw.end, float(rows["time"].max()))
        vw.last_offset = int(rows["label_offset"][-1])
        if vw.task == REGRESSION:
            # a pair with a non-number is left out
            truth = np.where(pairs.label_number[at], rows["label_value"], np.nan)
            predicted = np.where(pairs.predicted_number[at], rows["value"], np.nan)
            vw.window.update(truth, predicted)
            return
        truth = self._codes(model, pairs.names, pairs.label[at])
        predicted = self._codes(model, pairs.names, pairs.predicted[at])
        p_true = None
        if len(self.classes[model]) <= 2:
            p_true = binary_p_true(rows["score"], truth == predicted)
        vw.window.update(truth, predicted, p_true)

    def _codes(self, model: str, names: list, ids: np.ndarray) -> np.ndarray:
        """The class code of each class name ``names[ids[i]]`` of a model; new names get codes in
        the order they first come."""
        classes = self.classes.setdefault(model, {})
        unique, first, inverse = np.unique(ids, return_index=True, return_inverse=True)
        codes = np.empty(unique.size, dtype=np.int64)
        for j in np.argsort(first, kind="stable").tolist():
            name = names[unique[j]]
            code = classes.get(name)
            if code is None:
                code = min(len(classes), MAX_CLASSES - 1)
                if len(classes) < MAX_CLASSES - 1:
                    classes[name] = code
            codes[j] = code
        return codes[inverse.ravel()]

    def _positive(self, model: str) -> int | None:
        classes = self.classes.get(model, {})
        wanted = self.labels_config(model).positive_label
        for name in (wanted,) if wanted is not None else _POSITIVE:
            if name in classes:
                return classes[name]
        return None

    def _close(self, model: str, version: str, vw: _VersionWindow) -> PerformanceClose:
        if vw.task == CLASSIFICATION:
            metrics = vw.window.metrics(positive=self._positive(model))
        else:
            metrics = vw.window.metrics()
        close = PerformanceClose(model, version, vw.number, vw.start, vw.end, vw.window.count, vw.last_offset,
                                 metrics)
        close.findings = performance_findings(metrics, vw.baseline, self.labels_config(model))
        if vw.baseline is None:
            vw.baseline = metrics
        vw.number += 1
        vw.window.reset()
        vw.start, vw.end = math.inf, -math.inf
        return close

    # -- checkpoint ----------------------------------------------------------------------
    def get_state(self) -> dict:
        return {"tasks": self.tasks, "classes": self.classes,
                "windows": [[m, v, vw.get_state()] for (m, v), vw in self._windows.items()]}

    def set_state(self, state: dict) -> None:
        self.tasks = dict(state["tasks"])
        self.classes = {m: dict(c) for m, c in state["classes"].items()}
        self._windows = {(m, v): _VersionWindow.from_state(s) for m, v, s in state["windows"]}


def performance_findings(metrics: dict, baseline: dict | None, cfg: ResolvedLabelsConfig
                         ) -> list[tuple[str, Finding]]:
    """(metric, finding) of the limits a window's metrics broke (detector ``limit``), and of the
    watched metrics worse than the baseline by more than ``max_drop``, a fraction of the
    baseline's value (detector ``max_drop``)."""
    found = []
    for name, value in metrics.items():
        higher = HIGHER_IS_BETTER.get(name)
        if higher is None or not math.isfinite(value):
            continue
        limit = cfg.limits.get(name)
        if limit is not None and (value < limit if higher else value > limit):
            found.append((name, Finding("limit", "performance", "critical", value, limit)))
        if cfg.max_drop is None or baseline is None or name not in cfg.watch or name not in baseline:
            continue
        bound = baseline[name] * (1.0 - cfg.max_drop if higher else 1.0 + cfg.max_drop)
        if value < bound if higher else value > bound:
            found.append((name, Finding("max_drop", "performance", "critical", value, bound)))
    return found
