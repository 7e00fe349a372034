"""At-least-once under failure: whatever raises at whichever stage of the pipeline, the records
of the failed batch (and every one after the last checkpoint) are processed again by the next
owner of their partitions; none is skipped."""

from __future__ import annotations

import random
import signal
from pathlib import Path

import orjson
import pytest
import yaml
from confluent_kafka import Producer
from test_labels import classifier_stream, produce
from test_restart import ready, start_service, write_config

from busutil import fast_config, metric_samples, read_topic, running, simulated, total, wait_until
from driftwire.schemas import LabelEvent, PredictionEvent, accepts
from driftwire.stream import hostile, simulate
from driftwire.stream.alert.publish import Publisher
from driftwire.stream.broker import free_port
from driftwire.stream.detect.monitor import PartitionMonitor
from driftwire.stream.detect.stage import DetectStage
from driftwire.stream.ingest import decode as dec
from driftwire.stream.ingest.router import Router
from driftwire.stream.join.table import JoinTable
from driftwire.stream.service import DriftService, ensure_topics
from driftwire.stream.state.checkpoints import Checkpoints

pytestmark = pytest.mark.broker


class Injected(RuntimeError):
    """The failure a test injects, told apart from any other."""


#: stage -> (the object whose method fails, its name, the call that fails)
STAGES = {
    "decode": (Router, "add_batch", 3),
    "detect": (PartitionMonitor, "observe", 3),
    "window close": (DetectStage, "_window_closed", 2),
    "join": (JoinTable, "add_predictions", 3),
    "publish": (Publisher, "alert", 1),
    "checkpoint": (Checkpoints, "write", 1),
}

BAD = [b'{"event_id": "x", "model": "churn", ', b"[" * 5000 + b"]" * 5000, b"\xef\xbb\xbf{}"]


def fail_at(monkeypatch, owner, name: str, call: int) -> list:
    """Make ``owner.name`` raise :class:`Injected` on its ``call``-th call; returns the call count."""
    real = getattr(owner, name)
    calls = [0]

    def failing(*args, **kwargs):
        calls[0] += 1
        if calls[0] == call:
            raise Injected(f"{owner.__name__}.{name} failed on call {call}")
        return real(*args, **kwargs)

    monkeypatch.setattr(owner, name, failing)
    return calls


@pytest.mark.parametrize("stage", list(STAGES))
def test_a_failure_at_any_stage_loses_no_record(settings, monkeypatch, stage):
    records = classifier_stream(6_000, [(0, 0.1), (3_000, 0.45)], seed=11, max_delay=5.0)
    config = fast_config(join={"enabled": True}, windows={"size": 500, "reference_size": 500},
                         defaults={"cooldown": 0})
    ensure_topics(settings, config)
    # Bad records among the first ones: they are dead-lettered by whichever run processes them.
    produce(settings, records[:100] + [(0, "predictions", b"bad", raw) for raw in BAD] + records[100:])
    valid = len(records)
    settings = settings.model_copy(update={"batch_size": 500, "checkpoint_interval": 3600.0})
    if stage == "checkpoint":
        settings = settings.model_copy(update={"checkpoint_interval": 1.0})

    owner, name, call = STAGES[stage]
    calls = fail_at(monkeypatch, owner, name, call)
    with pytest.raises(Injected), running(DriftService(settings, config)) as failing:
        wait_until(lambda: failing._failed, 120, what=f"the injected failure at {stage}")
    assert calls[0] == call
    monkeypatch.undo()

    with running(DriftService(settings, config)) as service:
        port = service.metrics_port
        wait_until(lambda: total(metric_samples(port), "driftwire_events_total") >= valid, 120, interval=0.5,
                   what="every record consumed by the next run")
        wait_until(lambda: total(metric_samples(port), "driftwire_invalid_events_total") >= len(BAD), 30,
                   what="every bad record dead-lettered by the next run")
        samples = metric_samples(port)
    # Nothing of the failed run was checkpointed: the next run processes every record itself.
    assert total(samples, "driftwire_events_total") == valid
    assert total(samples, "driftwire_invalid_events_total") == len(BAD)
    assert total(samples, "driftwire_invalid_events_total", reason="malformed_json") == len(BAD)
    alerts = [orjson.loads(r.value()) for r in read_topic(settings.bootstrap_servers, settings.alerts_topic)]
    assert any(a["kind"] == "concept_drift" for a in alerts), "the rise of the error rate should alert"


# -- hostile traffic -------------------------------------------------------------------------

def chart_memory_limit_mib() -> float:
    values = yaml.safe_load((Path(__file__).parent.parent / "helm/driftwire/values.yaml").read_text())
    limit = values["resources"]["limits"]["memory"]
    assert limit.endswith("Gi"), limit
    return float(limit[:-2]) * 1024


def peak_rss_mib(pid: int) -> float:
    """The highest resident set size process ``pid`` has had."""
    with open(f"/proc/{pid}/status") as f:
        return next(int(line.split()[1]) for line in f if line.startswith("VmHWM:")) / 1024


def test_hostile_traffic_is_dead_lettered_message_by_message_and_every_valid_event_counts(settings, tmp_path):
    """10^4 hostile messages of twenty kinds among 10^4 valid events, on predictions and labels:
    the service stays up, counts exactly the events the contract accepts and dead-letters every
    other one with its reason, and its memory stays within its caps."""
    rng = random.Random(7)
    valid = [orjson.dumps(e) for e in simulated(10_000, seed=5)]
    bad = hostile.messages(rng, valid[0], 9_000)
    label = orjson.dumps({"event_id": "e1", "model": "pricing", "label": 1.0})
    bad_labels = hostile.messages(rng, label, 1_000)
    predictions = valid + bad
    rng.shuffle(predictions)
    ensure_topics(settings, fast_config())
    producer = Producer({"bootstrap.servers": settings.bootstrap_servers, "linger.ms": 20,
                         "message.max.bytes": 4_000_000})
    for topic, records in ((settings.predictions_topic, predictions), (settings.labels_topic, bad_labels)):
        for value in records:
            simulate.send(producer, topic, value)
    assert producer.flush(60) == 0
    accepted = sum(accepts(PredictionEvent, v, settings.max_message_bytes) for v in predictions)
    accepted += sum(accepts(LabelEvent, v, settings.max_message_bytes) for v in bad_labels)
    refused = len(predictions) + len(bad_labels) - accepted
    assert refused > 8_000  # most hostile messages break the contract; some are valid on purpose
    port = free_port()

    proc = start_service(settings, write_config(tmp_path), tmp_path / "service.log", DRIFTWIRE_METRICS_PORT=str(port),
                         DRIFTWIRE_BATCH_SIZE="2000", DRIFTWIRE_CHECKPOINT_INTERVAL="10")
    try:
        wait_until(lambda: ready(port), 60, what="the service to be ready")
        wait_until(lambda: total(metric_samples(port), "driftwire_events_total")
                   + total(metric_samples(port), "driftwire_invalid_events_total") >= accepted + refused,
                   240, interval=0.5, what="every message counted or dead-lettered")
        samples = metric_samples(port)
        peak = peak_rss_mib(proc.pid)
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(30) == 0, "the service should stop cleanly after the flood"
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait(10)
    assert total(samples, "driftwire_events_total") == accepted
    assert total(samples, "driftwire_invalid_events_total") == refused
    assert total(samples, "driftwire_invalid_events_total", reason="undecodable") == 0, "a decoder raised"
    letters = read_topic(settings.bootstrap_servers, settings.dlq_topic, expect=refused, timeout=60)
    assert len(letters) == refused
    reasons = {dict(m.headers())["driftwire.error.reason"].decode() for m in letters}
    assert reasons <= set(dec.REASONS)
    assert {dec.MALFORMED_JSON, dec.NON_FINITE, dec.INVALID_VALUE, dec.WRONG_TYPE, dec.OVERSIZED} <= reasons
    # The flood fills the default caps (models and series): the service stays within the memory
    # limit the chart gives it.
    print(f"peak RSS {peak:.0f} MiB; series tracked {total(samples, 'driftwire_series_tracked')}")
    assert peak < chart_memory_limit_mib(), f"peak RSS {peak:.0f} MiB"
