"""Helpers for tests that talk to the embedded broker."""

from __future__ import annotations

import contextlib
import threading
import time
import urllib.request
import uuid

from confluent_kafka import Consumer, Producer, TopicPartition
from prometheus_client.parser import text_string_to_metric_families

from driftwire.stream import simulate
from driftwire.stream.broker import FAST_GROUP_CONFIG
from driftwire.stream.settings import DetectionConfig


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
    """Every record of ``topic`` (from the start), once ``expect`` are there or, by default, once
    as many as its watermarks held at the start were read and the topic is idle."""
    consumer = Consumer({"bootstrap.servers": bootstrap, "group.id": f"reader-{uuid.uuid4().hex[:8]}",
                         "enable.auto.commit": False})
    meta = consumer.list_topics(topic, timeout=10).topics[topic]
    tps = [TopicPartition(topic, p, 0) for p in meta.partitions]
    held = 0
    if expect is None:
        held = sum(high - low for low, high in (consumer.get_watermark_offsets(tp, timeout=10) for tp in tps))
    consumer.assign(tps)
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
            if expect is None and len(records) >= held and time.monotonic() - idle_since > 2.0:
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


NUMERIC_MODEL = simulate.ModelSpec("pricing", "v7", tuple(
    simulate.Feature(f"f{i}", dist, a, b) for i, (dist, a, b) in enumerate([
        ("normal", 0.0, 1.0), ("lognormal", 3.0, 0.6), ("exponential", 12.0, 0.0), ("poisson", 4.0, 0.0),
        ("uniform", 0.0, 1.0), ("normal", 50_000.0, 9_000.0), ("uniform", -5.0, 5.0), ("lognormal", 0.0, 0.3),
    ])
))


def produce_events(bootstrap: str, topic: str, events: list[dict]) -> None:
    producer = Producer({"bootstrap.servers": bootstrap, "linger.ms": 20})
    simulate.produce(producer, topic, events)
    assert producer.flush(60) == 0


def produce_paced(settings, events, seconds: float, produced: list) -> None:
    """Produce ``events`` evenly over ``seconds``, so a consumer is mid-stream while they flow;
    ``produced[0]`` counts those sent."""
    chunk = 250
    for start in range(0, len(events), chunk):
        produce_events(settings.bootstrap_servers, settings.predictions_topic, events[start:start + chunk])
        produced[0] = min(start + chunk, len(events))
        time.sleep(seconds * chunk / len(events))


def simulated(n: int, drifts=(), models=(NUMERIC_MODEL,), seed=1) -> list[dict]:
    sim = simulate.Simulator(models=models, drifts=tuple(drifts), seed=seed, start_time=1.7e9)
    return [e for _ in range(n // 1000) for e in sim.batch(1000)]


def metric_samples(port: int) -> dict:
    """name -> {labels tuple -> value}, parsed with prometheus_client's own parser."""
    text = urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=5).read().decode()
    out: dict = {}
    for family in text_string_to_metric_families(text):
        for s in family.samples:
            out.setdefault(s.name, {})[tuple(sorted(s.labels.items()))] = s.value
    return out


def total(samples: dict, name: str, **labels) -> float:
    return sum(v for k, v in samples.get(name, {}).items() if all((lk, lv) in k for lk, lv in labels.items()))


def caught_up(service, n: int):
    return lambda: total(metric_samples(service.metrics_port), "driftwire_events_total") >= n
