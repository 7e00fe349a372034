"""Recovery options on the real broker: static group membership across a SIGKILL and restart of
`driftwire run`, and the cooperative-sticky assignor when a replica joins."""

from __future__ import annotations

import os
import subprocess
import sys
import threading
import time

import pytest
import yaml

from busutil import fast_config, metric_samples, produce_events, produce_paced, running, simulated, total, wait_until
from driftwire.stream.broker import FAST_GROUP_CONFIG, free_port
from driftwire.stream.service import DriftService, ensure_topics
from driftwire.stream.settings import DetectionConfig

pytestmark = pytest.mark.broker

#: Long enough for a restart to come back in: the embedded broker answers a static member's
#: JoinGroup after half of it and its SyncGroup 3 s later.
SESSION_MS = 28_000


@pytest.fixture
def processes():
    started: list[subprocess.Popen] = []
    yield started
    for proc in started:
        if proc.poll() is None:
            proc.kill()
            proc.wait(10)


def start(processes, settings, config_path, log_path, port: int, **env) -> subprocess.Popen:
    env = {**os.environ, "DRIFTWIRE_BOOTSTRAP_SERVERS": settings.bootstrap_servers,
           "DRIFTWIRE_GROUP_ID": settings.group_id, "DRIFTWIRE_METRICS_PORT": str(port),
           "DRIFTWIRE_CHECKPOINT_INTERVAL": "0.5",
           **{f"DRIFTWIRE_{t.upper()}_TOPIC": getattr(settings, f"{t}_topic")
              for t in ("predictions", "features", "labels", "alerts", "dlq", "state", "references", "retrain")},
           **env}
    with open(log_path, "ab") as log:
        proc = subprocess.Popen([sys.executable, "-m", "driftwire.stream.cli", "run", "--config", str(config_path)],
                                env=env, stdout=log, stderr=subprocess.STDOUT)
    processes.append(proc)
    return proc


def events(port: int) -> float:
    try:
        return total(metric_samples(port), "driftwire_events_total")
    except OSError:
        return -1.0


def test_a_static_member_killed_and_restarted_consumes_again_before_its_session_times_out(
        settings, tmp_path, processes):
    config_path = tmp_path / "driftwire.yaml"
    config_path.write_text(yaml.safe_dump({"consumer": {"session.timeout.ms": str(SESSION_MS),
                                                        "heartbeat.interval.ms": "500"}}))
    ensure_topics(settings, fast_config())
    produce_events(settings.bootstrap_servers, settings.predictions_topic, simulated(1_000))
    instance = {"DRIFTWIRE_GROUP_INSTANCE_ID": f"{settings.group_id}-0"}
    port = free_port()
    proc = start(processes, settings, config_path, tmp_path / "first.log", port, **instance)
    wait_until(lambda: events(port) >= 1_000, 45, interval=0.2, what="the first process to consume")

    proc.kill()
    proc.wait(10)
    killed = time.monotonic()
    produce_events(settings.bootstrap_servers, settings.predictions_topic, simulated(1_000, seed=2))
    port = free_port()
    start(processes, settings, config_path, tmp_path / "restarted.log", port, **instance)
    every = 3 * settings.topic_partitions

    def consuming_everything() -> bool:
        try:
            samples = metric_samples(port)
        except OSError:
            return False
        return total(samples, "driftwire_assigned_partitions") == every and total(
            samples, "driftwire_events_total") > 0

    wait_until(consuming_everything, SESSION_MS / 1000 + 20, interval=0.2,
               what="the restarted process to hold every partition and consume")
    took = time.monotonic() - killed
    print(f"the restarted static member consumed every partition {took:.1f} s after the kill")
    assert took < SESSION_MS / 1000, (
        f"consuming every partition again {took:.1f} s after the kill: the restart waited for the session "
        f"timeout ({SESSION_MS / 1000:.0f} s)")


def test_with_cooperative_sticky_a_joining_replica_takes_partitions_without_stopping_the_first(settings):
    config = DetectionConfig(consumer={**{k: str(v) for k, v in FAST_GROUP_CONFIG.items()},
                                       "partition.assignment.strategy": "cooperative-sticky"},
                             join={"enabled": False})
    ensure_topics(settings, config)
    events_ = simulated(8_000)
    produced = [0]
    producer = threading.Thread(target=produce_paced, args=(settings, events_, 4.0, produced))
    with running(DriftService(settings, config)) as first:
        wait_until(lambda: first.health.ready, 30, what="the first replica to be ready")
        held_alone = set(first.monitors)
        producer.start()
        least = len(held_alone)
        with running(DriftService(settings, config)) as second:
            deadline = time.monotonic() + 45
            while not (second.monitors and len(first.monitors) < len(held_alone)):
                assert time.monotonic() < deadline, "the partitions were not shared"
                least = min(least, len(first.monitors))
                time.sleep(0.02)
            producer.join()
            counted = lambda: sum(total(metric_samples(s.metrics_port), "driftwire_events_total")  # noqa: E731
                                  for s in (first, second))
            wait_until(lambda: counted() >= len(events_), 60, what="every event processed")
            time.sleep(1.0)
            assert counted() == len(events_), "an event was processed twice or lost in the hand-over"
            assert set(first.monitors).isdisjoint(second.monitors)
            assert set(first.monitors) | set(second.monitors) == held_alone
            assert set(first.monitors) < held_alone, "the first replica kept only partitions it had"
    assert least > 0, "the first replica gave up every partition: an eager, stop-the-world rebalance"
