"""Shared fixtures: one real embedded broker (Tansu) per test session, and helpers to use it."""

from __future__ import annotations

import contextlib
import threading
import time
import uuid

import pytest
from confluent_kafka import Consumer, TopicPartition

from driftwire.stream.broker import FAST_GROUP_CONFIG, EmbeddedBroker
from driftwire.stream.settings import DetectionConfig, Settings


@pytest.fixture(scope="session")
def broker():
    with EmbeddedBroker() as b:
        yield b


@pytest.fixture
def names():
    """Topic and group names of a test's own, so tests sharing the broker do not meet."""
    tag = uuid.uuid4().hex[:8]
    return {
        "group_id": f"g-{tag}",
        "predictions_topic": f"predictions-{tag}",
        "features_topic": f"features-{tag}",
        "labels_topic": f"labels-{tag}",
        "alerts_topic": f"alerts-{tag}",
        "dlq_topic": f"dlq-{tag}",
        "state_topic": f"state-{tag}",
    }


@pytest.fixture
def settings(broker, names):
    return Settings(bootstrap_servers=broker.bootstrap_servers, metrics_port=0, metrics_host="127.0.0.1",
                    batch_timeout=0.2, lag_interval=0.5, checkpoint_interval=1.0, **names)


def fast_config(**fields) -> DetectionConfig:
    """A detection config whose consumer joins its group in ~3 s on Tansu."""
    consumer = {k: str(v) for k, v in FAST_GROUP_CONFIG.items()}
    return DetectionConfig(consumer=consumer, **fields)


def wait_until(condition, timeout: float, interval: float = 0.1, what: str = "condition"):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = condition()
        if value:
            return value
        time.sleep(interval)
    raise AssertionError(f"timed out after {timeout}s waiting for {what}")


@contextlib.contextmanager
def running(service):
    """Run a DriftService in a thread for the duration of the block; re-raise its failure."""
    failure = []

    def target():
        try:
            service.run()
        except BaseException as exc:  # noqa: BLE001 - re-raised in the test thread
            failure.append(exc)

    thread = threading.Thread(target=target, daemon=True)
    service.start_metrics_server()
    thread.start()
    try:
        yield service
    finally:
        service.stop()
        thread.join(60)
        assert not thread.is_alive(), "service did not stop within 60 s"
        if failure:
            raise failure[0]


def read_topic(bootstrap: str, topic: str, expect: int | None = None, timeout: float = 30.0) -> list:
    """Every record of ``topic`` (from the start), once ``expect`` are there or the topic is idle."""
    consumer = Consumer({"bootstrap.servers": bootstrap, "group.id": f"reader-{uuid.uuid4().hex[:8]}",
                         "enable.auto.commit": False})
    meta = consumer.list_topics(topic, timeout=10).topics[topic]
    consumer.assign([TopicPartition(topic, p, 0) for p in meta.partitions])
    records = []
    deadline = time.monotonic() + timeout
    idle_since = time.monotonic()
    try:
        while time.monotonic() < deadline:
            batch = [m for m in consumer.consume(1000, 0.2) if m.error() is None]
            records += batch
            if batch:
                idle_since = time.monotonic()
            if expect is not None and len(records) >= expect:
                break
            if expect is None and time.monotonic() - idle_since > 2.0:
                break
    finally:
        consumer.close()
    return records


def committed_total(bootstrap: str, group: str, topics: list[str]) -> int:
    """Sum of the group's committed offsets over every partition of ``topics``."""
    consumer = Consumer({"bootstrap.servers": bootstrap, "group.id": group, "enable.auto.commit": False})
    try:
        tps = []
        for topic in topics:
            meta = consumer.list_topics(topic, timeout=10).topics[topic]
            tps += [TopicPartition(topic, p) for p in meta.partitions]
        return sum(max(tp.offset, 0) for tp in consumer.committed(tps, timeout=10))
    finally:
        consumer.close()
