"""What driftwire writes to the bus: drift alerts and dead letters.

Alerts are keyed by model, so every alert of a model lands in one partition, in order. Their ids
are derived from the triggering record (topic, partition, offset) and the detector, so a batch
replayed after a crash republishes the same ids: consumers deduplicate on ``alert_id``.
"""

from __future__ import annotations

import logging
import math
import uuid
from dataclasses import dataclass, field
from datetime import UTC, datetime

from driftwire.detectors.performance import ROLLBACK
from driftwire.schemas import AlertWindow, DriftAlert, ModelComparison
from driftwire.schemas.comparison import COMPARISON_DETECTOR
from driftwire.stream.detect.rules import Finding

log = logging.getLogger("driftwire")

#: namespace of the uuid5 alert ids
ALERT_NAMESPACE = uuid.UUID("6f0d5c1e-8a3b-4f7e-9c2d-1b5e7a9d3c40")

# Headers of a dead letter, beside the original record's own headers.
H_TOPIC = "driftwire.source.topic"
H_PARTITION = "driftwire.source.partition"
H_OFFSET = "driftwire.source.offset"
H_TIMESTAMP = "driftwire.source.timestamp"
H_REASON = "driftwire.error.reason"
H_MESSAGE = "driftwire.error.message"
H_SIZE = "driftwire.source.size"  # set when the dead letter holds only the first bytes

#: Dead letters keep at most this much of the original value: brokers refuse records above
#: about 1 MB by default, and a dead letter the broker refuses would be lost anyway.
DLQ_MAX_VALUE_BYTES = 512 * 1024


def utc(seconds: float) -> datetime:
    return datetime.fromtimestamp(seconds, tz=UTC)


def alert_id(topic: str, partition: int, offset: int, version: str, signal: str, detector: str, severity: str) -> str:
    # The version is part of it: one label record completes a pair of every version that saw
    # its event, and each may alert on it.
    return str(uuid.uuid5(ALERT_NAMESPACE, f"{topic}/{partition}/{offset}/{version}/{signal}/{detector}/{severity}"))


@dataclass
class Cooldown:
    """Keeps one (model, version, signal, detector, severity) from alerting more than once per
    ``seconds`` of event time; event time, so a replay suppresses what the first run did.

    Partitions are consumed in no fixed interleaving, so a detection may carry an event time
    before the last alert's: it is within the cooldown if it is within ``seconds`` either way.
    """

    last: dict[tuple, float] = field(default_factory=dict)
    suppressed: dict[tuple, int] = field(default_factory=dict)

    def allow(self, key: tuple, event_time: float, seconds: float) -> int | None:
        """None when ``key`` is cooling down; else how many detections it suppressed since its last alert."""
        previous = self.last.get(key)
        if previous is not None and abs(event_time - previous) < seconds:
            self.suppressed[key] = self.suppressed.get(key, 0) + 1
            return None
        self.last[key] = event_time if previous is None else max(previous, event_time)
        return self.suppressed.pop(key, 0)

    def get_state(self, series) -> list:
        """The entries of ``series`` (model, version, signal), for a partition's checkpoint."""
        mine = {(s.model, s.model_version, s.signal) for s in series}
        return [[list(k), t] for k, t in self.last.items() if k[:3] in mine]

    def restore(self, entries: list) -> None:
        for key, t in entries:
            key = tuple(key)
            self.last[key] = max(t, self.last.get(key, t))


class Publisher:
    """Produces alerts, dead letters and checkpoints, and tracks what the broker has not acknowledged.

    An alert or checkpoint the broker refuses stops the next commit (see :meth:`flush`); a
    refused dead letter is counted and logged, and the service goes on.
    """

    def __init__(self, producer, alerts_topic: str, dlq_topic: str, metrics):
        self.producer = producer
        self.alerts_topic = alerts_topic
        self.dlq_topic = dlq_topic
        self.metrics = metrics
        self.failed: list[str] = []

    def _delivered(self, err, msg) -> None:
        if err is None:
            return
        self.metrics.publish_errors.labels(msg.topic()).inc()
        if msg.topic() == self.dlq_topic:
            log.error("dead letter refused by the broker (%s), dropped: %s", err, dict(msg.headers() or []))
        else:
            self.failed.append(f"{msg.topic()}: {err}")

    def alert(self, alert: DriftAlert) -> None:
        self.produce(self.alerts_topic, alert.model_dump_json().encode(), alert.model.encode(), None)

    def dead_letter(self, msg, reason: str, message: str) -> None:
        _, timestamp = msg.timestamp()
        headers = list(msg.headers() or [])
        headers += [
            (H_TOPIC, msg.topic().encode()),
            (H_PARTITION, str(msg.partition()).encode()),
            (H_OFFSET, str(msg.offset()).encode()),
            (H_TIMESTAMP, str(timestamp).encode()),
            (H_REASON, reason.encode()),
            (H_MESSAGE, message[:1000].encode("utf-8", "replace")),
        ]
        value = msg.value()
        if value is not None and len(value) > DLQ_MAX_VALUE_BYTES:
            headers.append((H_SIZE, str(len(value)).encode()))
            value = value[:DLQ_MAX_VALUE_BYTES]
        self.produce(self.dlq_topic, value, msg.key(), headers)

    def produce(self, topic: str, value, key, headers=None) -> None:
        while True:
            try:
                self.producer.produce(topic, value=value, key=key, headers=headers, on_delivery=self._delivered)
                return
            except BufferError:
                # The local queue is full: serve delivery reports until there is room.
                self.producer.poll(0.1)

    def flush(self, timeout: float = 30.0) -> None:
        """Wait until every record is acknowledged; raise if any was not."""
        remaining = self.producer.flush(timeout)
        if remaining:
            raise PublishError(f"{remaining} records not acknowledged within {timeout}s")
        if self.failed:
            failed, self.failed = self.failed, []
            raise PublishError(f"{len(failed)} records failed: {failed[:3]}")


class PublishError(RuntimeError):
    pass


def finite_or_none(v) -> float | None:
    """``v`` as a JSON number: None for None, NaN and the infinities."""
    return None if v is None or not math.isfinite(v) else float(v)


def comparison_finding(evaluation) -> tuple[Finding, AlertWindow | None, dict]:
    """(finding, window, details) of a challenger's evaluation whose recommendation turned: its
    statistic is the challenger's advantage, its threshold the bound the interval cleared."""
    details = ModelComparison.model_validate(evaluation.details)
    rollback = evaluation.recommendation == ROLLBACK
    window = None
    if math.isfinite(evaluation.start) and math.isfinite(evaluation.end) and evaluation.events > 0:
        window = AlertWindow(start=utc(evaluation.start), end=utc(evaluation.end), count=evaluation.events)
    finding = Finding(COMPARISON_DETECTOR, "performance", "critical" if rollback else "warning",
                      math.nan if details.advantage is None else details.advantage,
                      -details.tolerance if rollback else details.tolerance)
    return finding, window, details.model_dump(mode="json")
