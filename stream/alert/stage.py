"""One path from a detection to a published alert: metrics, cooldown, the alert, the retrain planner.

    alerts = AlertStage(publisher, cooldown, planner, metrics)
    alerts.emit(Finding("adwin", "data_drift", "critical", 0.31, 0.002), Subject(model, version, signal),
                Source(topic, partition, offset, event_time), details={...}, cooldown=600.0)

An online detector's drift, a rule a closed window broke and a challenger's turned
recommendation all come here as a :class:`~driftwire.stream.detect.rules.Finding` about a :class:`Subject`, at the
record that triggered it (:class:`Source`); what differs between them is only the details they
carry and their window.
"""

from __future__ import annotations

import logging
import math
import time
from typing import NamedTuple

from driftwire.schemas import AlertSource, AlertWindow, DriftAlert
from driftwire.stream.alert.publish import Cooldown, Publisher, alert_id, finite_or_none, utc
from driftwire.stream.detect.rules import Finding

log = logging.getLogger("driftwire")


class Subject(NamedTuple):
    """What a finding is about."""

    model: str
    version: str
    signal: str


class Source(NamedTuple):
    """The record that triggered a finding and its event time (the cooldown's clock)."""

    topic: str
    partition: int
    offset: int
    time: float


class AlertStage:
    """Turns findings into alerts on the alerts topic, each counted, cooled down and planned."""

    def __init__(self, publisher: Publisher, cooldown: Cooldown, planner, metrics):
        self.publisher = publisher
        self.cooldown = cooldown
        self.planner = planner
        self.metrics = metrics

    def emit(self, finding: Finding, subject: Subject, source: Source, details: dict, cooldown: float = 0.0,
             window: AlertWindow | None = None, count_suppressed: bool = True) -> DriftAlert | None:
        """Publish the alert of ``finding`` unless its (subject, detector, severity) cools down;
        ``details["suppressed_since_last_alert"]`` counts the findings the cooldown held back
        (``count_suppressed``). Returns the alert, or None when it was held back."""
        model, version, signal = subject
        model_label = self.metrics.model_label(model)
        self.metrics.drift_detections.labels(model_label, signal, finding.statistic, finding.kind,
                                             finding.severity).inc()
        if finding.severity == "critical" and math.isfinite(source.time):
            self.metrics.last_drift.labels(model_label, version, signal, finding.statistic).set(source.time)
        suppressed = self.cooldown.allow((model, version, signal, finding.statistic, finding.severity), source.time,
                                         cooldown)
        if suppressed is None:
            self.metrics.alerts_suppressed.labels(model_label, signal, finding.statistic).inc()
            return None
        if count_suppressed:
            details = {**details, "suppressed_since_last_alert": suppressed}
        alert = DriftAlert(
            alert_id=alert_id(source.topic, source.partition, source.offset, version, signal, finding.statistic,
                              finding.severity),
            model=model,
            model_version=version,
            signal=signal,
            kind=finding.kind,
            detector=finding.statistic,
            severity=finding.severity,
            statistic=finite_or_none(finding.value),
            threshold=finite_or_none(finding.threshold),
            event_time=utc(source.time if math.isfinite(source.time) else time.time()),
            detected_at=utc(time.time()),
            window=window,
            source=AlertSource(topic=source.topic, partition=source.partition, offset=source.offset),
            details=details,
        )
        self.publisher.alert(alert)
        self.planner.note_alert(alert)
        self.metrics.drift_alerts.labels(model_label, signal, finding.statistic, finding.kind).inc()
        log.info("alert: model=%s version=%s signal=%s detector=%s kind=%s severity=%s value=%.4g threshold=%.4g "
                 "source=%s[%d]@%d", model, version, signal, finding.statistic, finding.kind, finding.severity,
                 finding.value, finding.threshold, source.topic, source.partition, source.offset)
        return alert


def close_window(close) -> AlertWindow:
    """The window of an alert on a closed window (or performance window)."""
    return AlertWindow(start=utc(close.start), end=utc(close.end), count=close.events)
