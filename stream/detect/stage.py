"""The detect stage: a batch's values, windows and joined pairs through each partition's monitor,
and what they find to the alert stage.

    stage = DetectStage(settings, config, metrics, alerts, planner)
    stage.values(monitor, batch, series, values, messages)   # the online detectors
    stage.windows(key, monitor, batch, groups, events, series, values, messages, categories)
    stage.joined(key, monitor, batch)                        # what the partition's join completed

``batch`` is the :class:`Batch` being processed: its records, each record's event time and
offset, and a record's event id as its scan read it.
"""

from __future__ import annotations

import logging
import math
from collections import deque
from collections.abc import Callable
from typing import NamedTuple

import numpy as np

from driftwire.detectors.performance import KEEP_TESTING, PROMOTE, ROLLBACK
from driftwire.stream.alert.publish import comparison_finding
from driftwire.stream.alert.stage import AlertStage, Source, Subject, close_window
from driftwire.stream.detect import rules
from driftwire.stream.detect.monitor import PartitionMonitor
from driftwire.stream.join.batch import Pairs

log = logging.getLogger("driftwire")

_RECOMMENDATION_GAUGE = {PROMOTE: 1.0, KEEP_TESTING: 0.0, ROLLBACK: -1.0}


class Batch(NamedTuple):
    """The batch being processed, as the stages see it."""

    msgs: list
    #: each record's event time (its event's timestamp, else the record's) and offset
    times: np.ndarray
    offsets: np.ndarray
    event_id: Callable[[int], str | None]


class DetectStage:
    """Feeds a partition's monitor and turns what it finds into findings for the alert stage."""

    def __init__(self, settings, config, metrics, alerts: AlertStage, planner):
        self.settings = settings
        self.config = config
        self.metrics = metrics
        self.alerts = alerts
        self.planner = planner
        #: where retrain requests are produced (set with the producer)
        self.publisher = None
        #: event counts of each (partition, window group)'s recent windows, for the volume rule
        self._volumes: dict[tuple, deque] = {}

    def joined(self, key, monitor: PartitionMonitor, batch: Batch) -> None:
        """Concept drift and performance windows on the pairs the partition's join completed."""
        store = monitor.join
        for outcome, n in store.take_counts().items():
            self.metrics.join_events.labels(outcome).inc(n)
        codes = monitor.join_codes
        pairs, shared = Pairs(store.take_pairs().rows, codes), codes.shared(store.take_shared())
        if len(pairs):
            self._labelled(key, monitor, pairs, batch)
        if len(pairs) or shared:
            for evaluation in monitor.comparisons.observe(shared, pairs):
                self._compared(evaluation, batch)

    def _labelled(self, key, monitor: PartitionMonitor, pairs: Pairs, batch: Batch) -> None:
        tracker = monitor.outcomes
        errors = tracker.errors(pairs)
        unscorable = int(np.isnan(errors).sum())
        if unscorable:
            self.metrics.join_events.labels("unscorable").inc(unscorable)
        groups, of = pairs.groups()
        names, versions = monitor.join_codes.model_names, monitor.join_codes.version_names
        sids = np.array([monitor.error_series(names[m], versions[v], tracker.tasks[names[m]]) for m, v in groups],
                        dtype=np.int64)[of]
        positions = np.flatnonzero((sids >= 0) & ~np.isnan(errors))
        rows = pairs.rows
        if positions.size:
            self.values(monitor, batch, sids[positions], errors[positions], rows["message"][positions])
        labels_key = (self.settings.labels_topic, key[1])
        self._note_labels(key[1], monitor, rows)
        for close in tracker.observe(pairs):
            self._performance_closed(labels_key, close)
        # A pair counts in the label windows when its join completed: the later of its
        # prediction's event time and the time of the record that completed it.
        completed = np.maximum(rows["time"], batch.times[rows["message"]])
        for close in monitor.observe_labels(pairs, completed):
            self._window_closed(labels_key, monitor, close)
        for request in self.planner.due():
            self.publisher.produce(self.settings.retrain_topic, request.model_dump_json().encode(),
                                    request.model.encode())
            self.metrics.retrain_requests.labels(self.metrics.model_label(request.model)).inc()
            log.info("retrain request: model=%s versions=%s reasons=%d labelled=%d", request.model,
                     request.model_versions, len(request.reasons), request.labelled_events)

    def _note_labels(self, partition: int, monitor: PartitionMonitor, rows) -> None:
        """The retrain planner counts each model's labelled predictions and their label offsets."""
        models, where = np.unique(rows["model"], return_inverse=True)
        offsets, times = rows["label_offset"], rows["time"]
        for j, model in enumerate(models.tolist()):
            mine = where == j
            name = monitor.join_codes.model_names[model]
            clock = times[mine]
            clock = float(np.nanmax(clock)) if not np.isnan(clock).all() else math.nan
            self.planner.note_labels(name, partition, int(offsets[mine].min()), int(mine.sum()), clock)
            self.planner.note_labels(name, partition, int(offsets[mine].max()), 0, clock)

    def _compared(self, evaluation, batch: Batch) -> None:
        """Gauges of a challenger's evaluation, and an alert when its recommendation turned."""
        details = evaluation.details
        labels = (self.metrics.model_label(evaluation.model), evaluation.champion, evaluation.challenger)
        if details["agreement"] is not None:
            self.metrics.version_agreement.labels(*labels).set(details["agreement"])
        if details["advantage"] is not None:
            self.metrics.version_advantage.labels(*labels).set(details["advantage"])
        self.metrics.version_recommendation.labels(*labels).set(_RECOMMENDATION_GAUGE[evaluation.recommendation])
        if not evaluation.changed or evaluation.recommendation == KEEP_TESTING:
            return
        finding, window, details = comparison_finding(evaluation)
        msg = batch.msgs[evaluation.message]
        source = Source(msg.topic(), msg.partition(), msg.offset(), evaluation.end)
        self.alerts.emit(finding, Subject(evaluation.model, evaluation.challenger, "prediction"), source, details,
                         window=window, count_suppressed=False)

    def _performance_closed(self, source, close) -> None:
        model_label = self.metrics.model_label(close.model)
        self.metrics.performance_windows.labels(model_label).inc()
        for metric, value in close.metrics.items():
            if math.isfinite(value):
                self.metrics.model_performance.labels(model_label, close.version, metric).set(value)
        cooldown = self.config.resolve(close.model, "error").cooldown
        for metric, finding in close.findings:
            self._window_alert(source, close.model, close.version, metric, cooldown, finding, close, close.metrics)

    def values(self, monitor: PartitionMonitor, batch: Batch, series_ids, values, messages) -> None:
        """Values of the monitor's series through its online detectors; each detection an alert."""
        for d in monitor.observe(series_ids, values):
            message = int(messages[d.position])
            msg = batch.msgs[message]
            series = monitor.series[d.series]
            spec = monitor.specs[d.detector]
            details = {"event_id": batch.event_id(message), "detector_params": dict(spec.params),
                       "reference": monitor.reference(d.series), "standardized": series.config.standardize}
            finding = rules.Finding(spec.name, series.kind, d.severity, d.statistic, d.threshold)
            source = Source(msg.topic(), msg.partition(), msg.offset(), float(batch.times[message]))
            self.alerts.emit(finding, Subject(series.model, series.model_version, series.signal), source, details,
                             series.config.cooldown)

    # -- windows -------------------------------------------------------------------------
    def windows(self, key, monitor: PartitionMonitor, batch: Batch, groups, events, series, values, messages,
                categories) -> None:
        """A batch's events and values through the monitor's windows; each closed window checked."""
        closes = monitor.observe_windows(groups, batch.times[events], batch.offsets[events], events, series, values,
                                         messages, categories)
        for close in closes:
            self._window_closed(key, monitor, close)

    def _window_closed(self, key, monitor: PartitionMonitor, close) -> None:
        model, version, *_ = monitor.group_keys[close.group]
        config = monitor.group_configs[close.group]
        model_label = self.metrics.model_label(model)
        self.metrics.windows_closed.labels(model_label).inc()
        self.metrics.window_events.labels(model_label, version).set(close.events)
        if close.late:
            self.metrics.late_events.labels(model_label).inc(close.late)
        for ws, stats in close.series.items():
            series = monitor.window_series[ws]
            ref = monitor.windows.references[ws]
            self._gauge_window(model_label, version, series.signal, stats, series.config.drift)
            reference_missing = None if ref is None else ref.profile["missing_rate"]
            found = rules.quality_findings(stats, series.config.drift, reference_missing)
            if ref is not None:
                found += rules.drift_findings(stats, series.config.drift, series.kind)
            elif stats["count"] and (model, version, series.signal) not in monitor.new_fields:
                monitor.new_fields.add((model, version, series.signal))
                found.append(rules.Finding("new_field", "data_quality", "warning", stats["count"], 0.0))
            for finding in found:
                self._window_alert(key, model, version, series.signal, series.config.cooldown, finding, close, stats)
        for change in monitor.type_changes.pop(close.group, ()):
            finding = rules.Finding("type_change", "data_quality", "warning", math.nan, math.nan)
            stats = {"expected": change.expected, "got": change.got}
            self._window_alert(key, model, version, change.signal, 0.0, finding, close, stats)
        if config.duration is not None and not monitor.label_group(close.group):
            # Only a time window's volume says something: a count window holds the same number of
            # events whatever the traffic. Labels come as the labelling process sends them.
            history = self._volumes.setdefault((key, close.group), deque(maxlen=config.volume_history))
            finding = rules.volume_finding(close.events, list(history), config.volume_drop)
            if finding is not None:
                self._window_alert(key, model, version, "events", 0.0, finding, close, {"events": close.events})
            history.append(close.events)

    def _gauge_window(self, model_label: str, version: str, signal: str, stats: dict, drift) -> None:
        gauge = self.metrics.drift_statistic
        for name in rules.GAUGED:
            if name in stats:
                gauge.labels(model_label, version, signal, name).set(stats[name])
                threshold = rules.threshold_of(drift, name)
                if threshold is not None:
                    self.metrics.drift_threshold.labels(model_label, version, signal, name).set(threshold)
        self.metrics.missing_rate.labels(model_label, version, signal).set(stats["missing_rate"])
        if "out_of_range_rate" in stats:
            self.metrics.out_of_range_rate.labels(model_label, version, signal).set(stats["out_of_range_rate"])

    def _window_alert(self, key, model, version, signal, cooldown, finding, close, stats) -> None:
        details = {"statistics": stats, "window_number": close.number, "late_events": close.late}
        self.alerts.emit(finding, Subject(model, version, signal), Source(key[0], key[1], close.last_offset, close.end),
                         details, cooldown, window=close_window(close))
