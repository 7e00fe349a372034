"""Readiness follows the broker: a frozen broker (SIGSTOP) makes /readyz 503 and leaves /healthz 200."""

from __future__ import annotations

import math
import os
import signal
import time
import urllib.error
import urllib.request

import pytest

from busutil import metric_samples, produce_events, running, simulated, total, wait_until
from driftwire.stream.broker import EmbeddedBroker
from driftwire.stream.service import DriftService, ensure_topics, leader_idle
from driftwire.stream.settings import DetectionConfig, Settings

STALL_TIMEOUT = 3.0


def status(port: int, path: str) -> int:
    try:
        return urllib.request.urlopen(f"http://127.0.0.1:{port}{path}", timeout=2).status
    except urllib.error.HTTPError as err:
        return err.code


def events(port: int) -> float:
    return total(metric_samples(port), "driftwire_events_total")


@pytest.mark.broker
def test_a_frozen_broker_makes_readyz_503_and_leaves_healthz_200(names):
    # A broker of its own: freezing the session's shared one would stall every other test.
    broker = EmbeddedBroker().start()
    try:
        settings = Settings(bootstrap_servers=broker.bootstrap_servers, metrics_port=0, metrics_host="127.0.0.1",
                            batch_timeout=0.2, checkpoint_interval=1.0, fetch_stall_timeout=STALL_TIMEOUT,
                            **names)
        # A session timeout well above the freeze: the group must not rebalance meanwhile.
        config = DetectionConfig(consumer={"session.timeout.ms": "10000", "heartbeat.interval.ms": "500"})
        ensure_topics(settings, config)
        produce_events(settings.bootstrap_servers, settings.predictions_topic, simulated(2_000))
        with running(DriftService(settings, config)) as service:
            port = service.metrics_port
            wait_until(lambda: status(port, "/readyz") == 200, 30, what="ready")
            wait_until(lambda: events(port) >= 2_000, 30, what="the first events consumed")
            assert metric_samples(port)["driftwire_last_fetch_age_seconds"][()] < 1.5

            os.kill(broker.pid, signal.SIGSTOP)
            frozen = time.monotonic()
            try:
                wait_until(lambda: status(port, "/readyz") == 503, STALL_TIMEOUT + 3, interval=0.1,
                           what="/readyz to turn 503")
                noticed = time.monotonic() - frozen
                assert noticed >= STALL_TIMEOUT - 1.0, f"not ready after {noticed:.1f} s, before the stall timeout"
                assert status(port, "/healthz") == 200, "a stalled broker is no reason to restart the pod"
                assert metric_samples(port)["driftwire_last_fetch_age_seconds"][()] > STALL_TIMEOUT
            finally:
                os.kill(broker.pid, signal.SIGCONT)

            wait_until(lambda: status(port, "/readyz") == 200, 10, what="/readyz back to 200")
            produce_events(settings.bootstrap_servers, settings.predictions_topic, simulated(1_000, seed=2))
            wait_until(lambda: events(port) >= 3_000, 20, what="consumption to resume")
            assert status(port, "/healthz") == 200
    finally:
        if broker.running:
            os.kill(broker.pid, signal.SIGCONT)
        broker.stop()


def test_leader_idle_reads_the_leaders_of_the_assigned_partitions():
    stats = {
        "brokers": {
            "a:9092/1": {"nodeid": 1, "rxidle": 400_000},
            "b:9092/2": {"nodeid": 2, "rxidle": 9_000_000},
            "GroupCoordinator": {"nodeid": -1, "rxidle": 100},
        },
        "topics": {"p": {"partitions": {"0": {"leader": 2, "fetchq_cnt": 0}, "1": {"leader": 1, "fetchq_cnt": 0},
                                        "-1": {"leader": -1, "fetchq_cnt": 0}}}},
    }
    assert leader_idle(stats, {("p", 0)}) == 9.0  # the coordinator's connection says nothing of fetches
    assert leader_idle(stats, {("p", 0), ("p", 1)}) == 0.4
    stats["topics"]["p"]["partitions"]["0"]["fetchq_cnt"] = 5  # records still to consume: not stalled
    assert leader_idle(stats, {("p", 0)}) == 0.0
    stats["brokers"]["b:9092/2"]["rxidle"] = -1  # reconnected, nothing received yet
    stats["topics"]["p"]["partitions"]["0"]["fetchq_cnt"] = 0
    assert leader_idle(stats, {("p", 0)}) is None
    assert leader_idle(stats, set()) is None


def test_fetch_age_is_nan_without_partitions_and_stalls_only_past_the_timeout():
    from driftwire.stream.metrics import HealthState

    health = HealthState(fetch_stall_timeout=5.0)
    health.connected = True
    assert math.isnan(health.fetch_age()) and not health.ready
    health.assigned = True
    health.fetched(time.monotonic() - 2.0)
    assert health.ready and 2.0 <= health.fetch_age() < 3.0
    health.fetched(time.monotonic() - 10.0)  # older news: ignored
    assert health.ready
    health.last_fetch = time.monotonic() - 6.0
    assert health.stalled and not health.ready and "leaders" in health.why_not_ready()
    health.fetch_stall_timeout = 0.0
    assert health.ready
