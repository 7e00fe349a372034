"""Scaling out: a second replica joins the group mid-stream and detector state moves with partitions."""

from __future__ import annotations

import threading
import time

import orjson
import pytest

from busutil import (
    NUMERIC_MODEL,
    fast_config,
    metric_samples,
    produce_paced,
    read_topic,
    running,
    simulated,
    total,
    wait_until,
)
from driftwire.stream import simulate
from driftwire.stream.service import DriftService, ensure_topics

pytestmark = pytest.mark.broker


def alert_ids(settings, topic) -> set[str]:
    return {orjson.loads(r.value())["alert_id"] for r in read_topic(settings.bootstrap_servers, topic)}


def test_a_joining_replica_takes_over_partitions_with_their_state(settings, names):
    config = fast_config(defaults={"cooldown": 0, "warmup": 300})
    ensure_topics(settings, config)
    drifts = [simulate.Drift("pricing", "f2", start=3_000, shift=1.0),
              simulate.Drift("pricing", "f7", start=9_000, shift=1.5)]
    events = simulated(15_000, drifts=drifts, models=(NUMERIC_MODEL,))

    produced = [0]
    producer = threading.Thread(target=produce_paced, args=(settings, events, 12.0, produced))
    with running(DriftService(settings, config)) as first:
        wait_until(lambda: first.health.ready, 60, what="the first replica to be ready")
        producer.start()
        wait_until(lambda: produced[0] >= 4_000, 60, what="a third of the stream")
        held_alone = len(first.monitors)
        with running(DriftService(settings, config)) as second:
            wait_until(lambda: second.monitors and len(first.monitors) < held_alone, 60,
                       what="the partitions to be shared")
            producer.join()
            counted = lambda: sum(total(metric_samples(s.metrics_port), "driftwire_events_total")  # noqa: E731
                                  for s in (first, second))
            wait_until(lambda: counted() >= len(events), 90, what="every event processed")
            time.sleep(1.0)
            assert counted() == len(events), "an event was processed twice or lost in the hand-over"
            assert set(first.monitors).isdisjoint(second.monitors)
            restored_series = sum(len(m.series) for m in second.monitors.values())
            assert restored_series > 0
    got = alert_ids(settings, settings.alerts_topic)

    # The same log through one replica that never hands anything over.
    reference = settings.model_copy(update={"group_id": names["group_id"] + "-ref",
                                            "alerts_topic": names["alerts_topic"] + "-ref",
                                            "state_topic": names["state_topic"] + "-ref"})
    ensure_topics(reference, config)
    with running(DriftService(reference, config)) as single:
        wait_until(lambda: total(metric_samples(single.metrics_port), "driftwire_events_total") >= len(events), 90,
                   what="the reference replica to process everything")
    expected = alert_ids(reference, reference.alerts_topic)
    assert len(expected) >= 2
    assert got == expected, "detections changed when partitions moved between replicas"
