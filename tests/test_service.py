"""The service end to end on the real embedded broker: events in, alerts and dead letters out."""

from __future__ import annotations

import urllib.error
import urllib.request

import jsonschema
import orjson
import pytest
from confluent_kafka import Producer

from busutil import (
    caught_up,
    committed_total,
    fast_config,
    metric_samples,
    produce_events,
    read_topic,
    running,
    simulated,
    total,
    wait_until,
)
from driftwire.schemas import DriftAlert, json_schemas
from driftwire.stream import simulate
from driftwire.stream.alert.publish import DLQ_MAX_VALUE_BYTES, H_OFFSET, H_PARTITION, H_REASON, H_SIZE, H_TOPIC
from driftwire.stream.service import DriftService, ensure_topics

pytestmark = pytest.mark.broker


def test_drift_in_one_feature_raises_a_schema_valid_alert_for_that_feature(settings):
    config = fast_config()
    ensure_topics(settings, config)
    events = simulated(12_000, drifts=[simulate.Drift("pricing", "f5", start=6_000, shift=1.5)])
    produce_events(settings.bootstrap_servers, settings.predictions_topic, events)
    with running(DriftService(settings, config)) as service:
        wait_until(caught_up(service, len(events)), 90, what="all events consumed")
        alerts = read_topic(settings.bootstrap_servers, settings.alerts_topic, timeout=10)
    assert alerts, "no alert for a 1.5 std shift"
    schema = json_schemas()["drift_alert.schema.json"]
    signals = set()
    for record in alerts:
        body = orjson.loads(record.value())
        jsonschema.validate(body, schema)
        alert = DriftAlert.model_validate_json(record.value())
        assert record.key() == b"pricing"
        assert alert.model == "pricing" and alert.model_version == "v7"
        assert alert.kind == "data_drift" and alert.severity == "critical"
        assert alert.source.topic == settings.predictions_topic
        assert alert.event_time.timestamp() >= 1.7e9
        signals.add(alert.signal)
    assert signals == {"f5"}, f"alerts on {signals}, expected only the drifted feature f5"


def test_stationary_stream_of_100k_events_with_8_features_raises_no_alert(settings):
    config = fast_config()
    ensure_topics(settings, config)
    events = simulated(100_000, seed=7)
    produce_events(settings.bootstrap_servers, settings.predictions_topic, events)
    with running(DriftService(settings, config)) as service:
        wait_until(caught_up(service, len(events)), 240, what="all events consumed")
        samples = metric_samples(service.metrics_port)
    assert total(samples, "driftwire_drift_detections_total") == 0
    assert total(samples, "driftwire_drift_alerts_total") == 0
    # 8 features + prediction + score, in each of 3 partitions
    assert total(samples, "driftwire_series_tracked") == 30
    assert read_topic(settings.bootstrap_servers, settings.alerts_topic, timeout=3) == []


BAD_INPUTS = {
    "malformed_json": b'{"event_id": "x", "model": "pricing", ',
    "not_an_object": b"[1, 2, 3]",
    "missing_field": b'{"event_id": "x", "model": "pricing", "features": {"f0": 1.0}}',
    "wrong_type": b'{"event_id": "x", "model": "pricing", "prediction": 1, "features": {"f0": [1, 2]}}',
    "non_finite": b'{"event_id": "x", "model": "pricing", "prediction": 1, "features": {"f0": NaN}}',
    "invalid_value": b'{"event_id": "", "model": "pricing", "prediction": 1}',
    "oversized": orjson.dumps({"event_id": "x", "model": "pricing", "prediction": 1,
                               "features": {"blob": "x" * 5000}}),
}


def test_bad_inputs_are_dead_lettered_with_their_reason_and_valid_events_around_them_count(settings):
    settings = settings.model_copy(update={"max_message_bytes": 4096})
    config = fast_config()
    ensure_topics(settings, config)
    good = [orjson.dumps(e) for e in simulated(2_000)]
    stream, expected_reasons = [], []
    for i, (reason, raw) in enumerate(BAD_INPUTS.items()):
        stream += good[i * 200:(i + 1) * 200] + [raw]
        expected_reasons.append(reason)
    stream += good[len(BAD_INPUTS) * 200:]
    producer = Producer({"bootstrap.servers": settings.bootstrap_servers})
    for i, value in enumerate(stream):
        # One key for all: every record in one partition, so the order above is the log order.
        producer.produce(settings.predictions_topic, value=value, key=b"k", headers=[("trace", str(i).encode())])
    assert producer.flush(30) == 0

    with running(DriftService(settings, config)) as service:
        wait_until(caught_up(service, len(good)), 60, what="all valid events consumed")
        samples = metric_samples(service.metrics_port)
        dead = read_topic(settings.bootstrap_servers, settings.dlq_topic, expect=len(BAD_INPUTS))
    assert total(samples, "driftwire_events_total", topic=settings.predictions_topic, model="pricing") == len(good)
    for reason in expected_reasons:
        assert total(samples, "driftwire_invalid_events_total", reason=reason) == 1, reason
    assert len(dead) == len(BAD_INPUTS)
    by_reason = {}
    for record in dead:
        headers = {k: v.decode() for k, v in record.headers()}
        by_reason[headers[H_REASON]] = (record, headers)
        assert headers[H_TOPIC] == settings.predictions_topic
        assert "trace" in headers, "the original headers are kept"
    assert sorted(by_reason) == sorted(expected_reasons)
    for reason, (record, headers) in by_reason.items():
        assert record.value() == BAD_INPUTS[reason], "the original bytes are kept"
        position = int(headers["trace"])
        assert int(headers[H_OFFSET]) == position and headers[H_PARTITION].isdigit()


def test_metrics_parse_and_counters_match_what_was_sent(settings):
    config = fast_config()
    ensure_topics(settings, config)
    events = simulated(6_000)
    produce_events(settings.bootstrap_servers, settings.predictions_topic, events)
    produce_values(settings, [b"not json"] * 3)
    with running(DriftService(settings, config)) as service:
        wait_until(caught_up(service, len(events)), 60, what="all events consumed")
        wait_until(lambda: committed_total(settings.bootstrap_servers, settings.group_id,
                                           [settings.predictions_topic]) == len(events) + 3, 30,
                   what="offsets committed")
        wait_until(lambda: not any(metric_samples(service.metrics_port)["driftwire_consumer_lag"].values()), 10,
                   what="the lag gauges to reach 0")
        # Detector statistics are exported once a second.
        wait_until(lambda: "driftwire_drift_statistic" in metric_samples(service.metrics_port), 10,
                   what="the detector statistics")
        samples = metric_samples(service.metrics_port)
        health = urllib.request.urlopen(f"http://127.0.0.1:{service.metrics_port}/healthz", timeout=5)
        ready = urllib.request.urlopen(f"http://127.0.0.1:{service.metrics_port}/readyz", timeout=5)
        assert health.status == 200 and ready.status == 200
    assert total(samples, "driftwire_events_total", model="pricing") == len(events)
    assert total(samples, "driftwire_invalid_events_total", reason="malformed_json") == 3
    assert total(samples, "driftwire_batch_seconds_count") >= 1
    lag = {(dict(k)["topic"], dict(k)["partition"]): v for k, v in samples["driftwire_consumer_lag"].items()}
    assert {t for t, _ in lag} == {settings.predictions_topic, settings.features_topic, settings.labels_topic}
    assert len(lag) == 3 * settings.topic_partitions and not any(lag.values()), lag
    stats = samples["driftwire_drift_statistic"]
    assert {dict(k)["signal"] for k in stats} >= {f"f{i}" for i in range(8)} | {"prediction", "score"}
    assert {dict(k)["detector"] for k in stats} == {"adwin", "page_hinkley"}


def produce_values(settings, values) -> None:
    producer = Producer({"bootstrap.servers": settings.bootstrap_servers})
    for v in values:
        producer.produce(settings.predictions_topic, value=v)
    assert producer.flush(30) == 0


def test_readyz_is_503_until_partitions_are_assigned(settings):
    config = fast_config()
    service = DriftService(settings, config)
    port = service.start_metrics_server()
    try:
        with pytest.raises(urllib.error.HTTPError) as err:
            urllib.request.urlopen(f"http://127.0.0.1:{port}/readyz", timeout=5)
        assert err.value.code == 503
        assert urllib.request.urlopen(f"http://127.0.0.1:{port}/healthz", timeout=5).status == 200
    finally:
        service._http.stop()


def test_a_huge_message_is_dead_lettered_truncated_with_its_size(settings):
    config = fast_config()
    ensure_topics(settings, config)
    huge = orjson.dumps({"event_id": "x", "model": "pricing", "prediction": 1,
                         "features": {"blob": "x" * (2 * 1024 * 1024)}})
    good = [orjson.dumps(e) for e in simulated(1_000)]
    producer = Producer({"bootstrap.servers": settings.bootstrap_servers, "message.max.bytes": 8 * 1024 * 1024})
    for value in [*good[:500], huge, *good[500:]]:
        producer.produce(settings.predictions_topic, value=value, key=b"k")
    assert producer.flush(30) == 0
    with running(DriftService(settings, config)) as service:
        wait_until(caught_up(service, len(good)), 60, what="the valid events")
        dead = read_topic(settings.bootstrap_servers, settings.dlq_topic, expect=1)
        samples = metric_samples(service.metrics_port)
    assert total(samples, "driftwire_invalid_events_total", reason="oversized") == 1
    assert total(samples, "driftwire_events_total") == len(good)
    headers = {k: v.decode() for k, v in dead[0].headers()}
    assert headers[H_REASON] == "oversized" and int(headers[H_SIZE]) == len(huge)
    assert dead[0].value() == huge[:DLQ_MAX_VALUE_BYTES]
