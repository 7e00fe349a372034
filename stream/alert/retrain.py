"""When to ask for a model to be retrained, and with what.

The planner hears every alert the service publishes and every labelled prediction it joins. A
model becomes due when, since its previous request, a concept-drift or performance alert came
(any severity of concept drift is a fact about the model; warnings are not), or
``data_drift_alerts`` critical alerts of data, prediction or label drift came; and at least
``min_labels`` labelled predictions of it were joined; and ``interval`` seconds of event time
passed since its previous request. Event time, so that a replay makes the same decisions.

The clock is per replica: with several replicas, each one requests from what its partitions
saw, and a retraining job merges requests of a model that arrive within its interval.
"""

from __future__ import annotations

import math
import time
import uuid
from dataclasses import dataclass, field

from driftwire.schemas import DriftAlert, OffsetRange, RetrainReason, RetrainRequest
from driftwire.schemas.comparison import COMPARISON_DETECTOR
from driftwire.stream.alert.publish import utc
from driftwire.stream.settings import RetrainConfig

REQUEST_NAMESPACE = uuid.UUID("0b8e2d4a-61c3-4f5e-a7d9-3c1f8b2e6a57")
#: reasons kept per request: the first ones, which started the decay
MAX_REASONS = 100
_DRIFT_KINDS = ("data_drift", "prediction_drift", "label_drift")


@dataclass
class _ModelState:
    last_request: float = -math.inf
    reasons: list[RetrainReason] = field(default_factory=list)
    #: critical data or prediction drift alerts among the reasons
    drift_alerts: int = 0
    #: concept-drift or performance alerts among the reasons
    model_alerts: int = 0
    labelled: int = 0
    #: partition -> [first offset, offset after the last] of the labels joined since the last request
    ranges: dict[int, list[int]] = field(default_factory=dict)


class RetrainPlanner:
    """Gathers reasons and labelled data per model; :meth:`due` turns them into requests."""

    def __init__(self, config: RetrainConfig, labels_topic: str):
        self.config = config
        self.labels_topic = labels_topic
        self.clock = -math.inf
        self._models: dict[str, _ModelState] = {}

    def _state(self, model: str) -> _ModelState:
        state = self._models.get(model)
        if state is None:
            state = self._models[model] = _ModelState()
        return state

    def note_alert(self, alert: DriftAlert) -> None:
        if alert.detector == COMPARISON_DETECTOR:
            return  # a verdict on a release, which a deployment acts on, not a sign of decay
        model_alert = alert.kind in ("concept_drift", "performance") and (
            alert.kind == "performance" or alert.severity == "critical")
        drift_alert = alert.kind in _DRIFT_KINDS and alert.severity == "critical"
        if not (model_alert or drift_alert):
            return
        state = self._state(alert.model)
        state.model_alerts += model_alert
        state.drift_alerts += drift_alert
        if len(state.reasons) < MAX_REASONS:
            state.reasons.append(RetrainReason(
                alert_id=alert.alert_id, model_version=alert.model_version, kind=alert.kind, signal=alert.signal,
                detector=alert.detector, severity=alert.severity, event_time=alert.event_time))

    def note_labels(self, model: str, partition: int, offset: int, count: int, event_time: float) -> None:
        """``count`` predictions of ``model`` were joined to labels up to ``offset`` of ``partition``."""
        state = self._state(model)
        state.labelled += count
        span = state.ranges.get(partition)
        if span is None:
            state.ranges[partition] = [offset, offset + 1]
        else:
            span[0], span[1] = min(span[0], offset), max(span[1], offset + 1)
        if event_time > self.clock:
            self.clock = event_time

    def due(self) -> list[RetrainRequest]:
        """The requests due now; each resets its model's reasons and labelled data."""
        if not self.config.enabled:
            return []
        out = []
        for model, state in self._models.items():
            caused = state.model_alerts > 0 or state.drift_alerts >= self.config.data_drift_alerts
            if (caused and state.labelled >= self.config.min_labels
                    and self.clock - state.last_request >= self.config.interval):
                out.append(self._request(model, state))
                self._models[model] = _ModelState(last_request=self.clock)
        return out

    def _request(self, model: str, state: _ModelState) -> RetrainRequest:
        ids = ",".join(r.alert_id for r in state.reasons)
        return RetrainRequest(
            request_id=str(uuid.uuid5(REQUEST_NAMESPACE, f"{model}/{ids}")),
            model=model,
            model_versions=sorted({r.model_version for r in state.reasons}),
            requested_at=utc(time.time()),
            event_time=utc(self.clock),
            reasons=state.reasons,
            labelled_events=state.labelled,
            labels=[OffsetRange(topic=self.labels_topic, partition=p, start_offset=a, end_offset=b)
                    for p, (a, b) in sorted(state.ranges.items())],
        )

    # -- checkpoint ----------------------------------------------------------------------
    def get_state(self) -> dict:
        """When each model was last requested (what a restart must not forget: the rate limit)."""
        return {m: s.last_request for m, s in self._models.items() if math.isfinite(s.last_request)}

    def restore(self, state: dict) -> None:
        for model, last in state.items():
            own = self._state(model)
            own.last_request = max(own.last_request, last)
