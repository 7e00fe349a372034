"""Labels joined to predictions on the embedded broker: concept drift on the error, performance
windows and retraining requests, at the default settings."""

from __future__ import annotations

import numpy as np
import orjson
import pytest
from confluent_kafka import Producer

from busutil import fast_config, metric_samples, read_topic, running, total, wait_until
from driftwire.schemas import DriftAlert, ModelComparison, RetrainRequest
from driftwire.stream.service import DriftService, ensure_topics

pytestmark = pytest.mark.broker

START = 1.7e9
RATE = 100.0  # events per second of event time


def classifier_stream(n: int, error_rates: list[tuple[int, float]], seed: int, max_delay: float = 30.0,
                      challenger: tuple[float, float] | None = None, positive: list[tuple[int, float]] = ((0, 0.3),)):
    """Predictions of a binary classifier and their labels, delayed by 0-``max_delay`` s of event
    time; ``error_rates``: (first event, error rate from there); ``positive``: (first event, share
    of positive predictions from there). ``challenger``: (flip, fix), a
    shadow version v2 that predicts every event too, flipping a share ``flip`` of v1's
    predictions and correcting a share ``fix`` of its errors. Returns (time, topic, key, value)
    records in event-time order."""
    rng = np.random.default_rng(seed)
    rate, share = np.zeros(n), np.zeros(n)
    for first, r in error_rates:
        rate[first:] = r
    for first, r in positive:
        share[first:] = r
    predicted = rng.random(n) < share
    wrong = rng.random(n) < rate
    score = rng.uniform(0.55, 0.99, n)
    delay = rng.uniform(0.0, max_delay, n).tolist()
    flip, fix = challenger or (0.0, 0.0)
    shadow = (rng.random(n) < flip) | (wrong & (rng.random(n) < fix))
    records = []
    for i in range(n):
        t = START + i / RATE
        key = f"e{i}".encode()
        records.append((t, "predictions", key, orjson.dumps({
            "event_id": f"e{i}", "model": "churn", "model_version": "v1", "timestamp": t,
            "prediction": bool(predicted[i]), "score": float(score[i])})))
        if challenger is not None:
            records.append((t + 0.001, "predictions", key, orjson.dumps({
                "event_id": f"e{i}", "model": "churn", "model_version": "v2", "timestamp": t + 0.001,
                "prediction": bool(predicted[i] != shadow[i]), "score": float(score[i])})))
        records.append((t + delay[i], "labels", key, orjson.dumps({
            "event_id": f"e{i}", "model": "churn", "timestamp": t + delay[i],
            "label": bool(predicted[i] != wrong[i])})))
    records.sort(key=lambda r: r[0])
    return records


def produce(settings, records) -> None:
    topics = {"predictions": settings.predictions_topic, "labels": settings.labels_topic}
    producer = Producer({"bootstrap.servers": settings.bootstrap_servers, "linger.ms": 20})
    for _, topic, key, value in records:
        while True:
            try:
                producer.produce(topics[topic], value, key)
                break
            except BufferError:
                producer.poll(0.1)
    assert producer.flush(60) == 0


def run_stream(settings, records, timeout: float = 300.0, **config_fields):
    config = fast_config(**config_fields)
    ensure_topics(settings, config)
    produce(settings, records)
    with running(DriftService(settings, config)) as service:
        port = service.metrics_port
        wait_until(lambda: total(metric_samples(port), "driftwire_events_total") >= len(records), timeout,
                   interval=0.5, what="every prediction and label consumed")
        samples = metric_samples(port)
    alerts = [DriftAlert.model_validate_json(r.value()) for r in read_topic(
        settings.bootstrap_servers, settings.alerts_topic, timeout=5)]
    requests = [RetrainRequest.model_validate_json(r.value()) for r in read_topic(
        settings.bootstrap_servers, settings.retrain_topic, timeout=5)]
    return alerts, requests, samples


def test_a_rising_error_rate_raises_concept_drift_and_a_retrain_request(settings):
    n, change = 40_000, 20_000
    alerts, requests, samples = run_stream(settings, classifier_stream(n, [(0, 0.10), (change, 0.25)], seed=3))
    assert total(samples, "driftwire_join_events_total", outcome="joined") == n
    assert total(samples, "driftwire_join_events_total") == n  # nothing expired, evicted or duplicated
    concept = [a for a in alerts if a.kind == "concept_drift" and a.severity == "critical"]
    assert concept, f"no concept drift alert among {[(a.kind, a.signal, a.detector) for a in alerts]}"
    change_time = START + change / RATE
    assert all(a.signal == "error" and a.model == "churn" and a.model_version == "v1" for a in concept)
    assert all(a.detector in ("ddm", "hddm_a") for a in concept)
    assert min(a.event_time.timestamp() for a in concept) > change_time
    # a performance window (1,000 labelled predictions) after the change has accuracy ~0.75
    # against ~0.90 in the first: more than the default 10% drop
    performance = [a for a in alerts if a.kind == "performance"]
    assert any(a.signal == "accuracy" and a.detector == "max_drop" for a in performance)
    accuracy = total(samples, "driftwire_model_performance", model="churn", metric="accuracy")
    assert 0.70 < accuracy < 0.80  # the last closed window, at 25% errors
    assert len(requests) >= 1
    first = requests[0]
    assert first.model == "churn" and first.model_versions == ["v1"]
    assert first.labelled_events >= 1000
    ids = {a.alert_id for a in alerts}
    assert {r.alert_id for r in first.reasons} <= ids
    assert any(r.kind in ("concept_drift", "performance") for r in first.reasons)
    assert first.labels and all(r.topic == settings.labels_topic and r.end_offset > r.start_offset
                                for r in first.labels)
    # one request per model per hour of event time: the stream spans 400 s
    assert len({r.labels[0].partition for r in requests}) == len(requests) or len(requests) == 1


def test_a_constant_error_rate_raises_neither_over_200000_events(settings):
    n = 200_000
    alerts, requests, samples = run_stream(settings, classifier_stream(n, [(0, 0.10)], seed=4), timeout=600)
    assert total(samples, "driftwire_join_events_total", outcome="joined") == n
    assert [a for a in alerts if a.kind in ("concept_drift", "performance", "label_drift")] == []
    # label windows closed and were compared, at the default rules, without an alert
    assert {dict(k)["signal"] for k in samples["driftwire_drift_statistic"]} >= {"label", "prediction", "score"}
    assert requests == []
    assert total(samples, "driftwire_performance_windows_total") >= n // 1000 - 3


def test_predictions_waiting_for_labels_survive_a_restart(settings):
    records = classifier_stream(6000, [(0, 0.10)], seed=5)
    predictions = [r for r in records if r[1] == "predictions"]
    labels = [r for r in records if r[1] == "labels"]
    config = fast_config(join={"enabled": True})  # hold predictions before any label exists
    ensure_topics(settings, config)
    produce(settings, predictions)
    with running(DriftService(settings, config)) as service:
        port = service.metrics_port
        wait_until(lambda: total(metric_samples(port), "driftwire_events_total") >= len(predictions), 120,
                   what="the predictions consumed")
        wait_until(lambda: total(metric_samples(port), "driftwire_join_pending", side="predictions") == 6000, 30,
                   what="the predictions waiting")
    # stopped with every prediction waiting: its last checkpoint holds them; the labels come now
    produce(settings, labels)
    with running(DriftService(settings, config)) as service:
        port = service.metrics_port
        wait_until(lambda: total(metric_samples(port), "driftwire_join_events_total", outcome="joined") >= 6000,
                   120, what="every label joined")
        samples = metric_samples(port)
    assert total(samples, "driftwire_join_events_total") == 6000  # no label expired or duplicated
    assert total(samples, "driftwire_events_total", topic=settings.predictions_topic) == 0  # none read again
    assert total(samples, "driftwire_performance_windows_total") >= 3


def test_a_shift_of_the_class_balance_raises_label_drift_within_two_windows(settings):
    n, change, size = 40_000, 20_000, 2_000
    records = classifier_stream(n, [(0, 0.10)], seed=9, positive=[(0, 0.3), (change, 0.5)])
    # no cooldown: every window that breaks a rule alerts, whichever partition's window closes first
    alerts, requests, samples = run_stream(settings, records, windows={"size": size, "reference_size": 2 * size},
                                           defaults={"cooldown": 0})
    label = [a for a in alerts if a.kind == "label_drift"]
    assert label, f"no label drift alert among {[(a.kind, a.signal, a.detector) for a in alerts]}"
    assert all((a.signal, a.model, a.model_version) == ("label", "churn", "v1") for a in label)
    assert all(a.source.topic == settings.labels_topic for a in label)
    change_time = START + change / RATE
    # a window of one partition holds the labelled predictions of size * partitions events of the
    # stream; labels lag up to 30 s
    span = size * settings.topic_partitions / RATE
    first = min(label, key=lambda a: a.window.end)
    assert change_time < first.window.end.timestamp() < change_time + 2 * span + 30
    assert first.window.count == size
    chi_square = [a for a in label if a.detector == "chi_square"]
    assert chi_square and all(a.statistic < 0.05 and a.severity == "critical" for a in chi_square)
    # labels are true for 34% of the events before (30% predicted true, 10% errors), 50% after
    last = max(chi_square, key=lambda a: a.window.end).details["statistics"]["top_categories"]
    true = next(c for c in last if c["category"] == "true")
    assert true["reference"] == pytest.approx(0.34, abs=0.03) and true["window"] == pytest.approx(0.5, abs=0.04)
    assert total(samples, "driftwire_drift_statistic", signal="label", detector="chi_square_pvalue") < 0.05
    # before the change, label windows like the reference raised nothing
    assert not [a for a in label if a.window.end.timestamp() < change_time]


def test_predictions_are_held_for_the_join_once_their_labels_partition_has_a_record(settings):
    """join.enabled auto: with no label on the bus, nothing waits; once labels come, the
    predictions after them join."""
    records = classifier_stream(4000, [(0, 0.10)], seed=10)
    before = [r for r in records if r[1] == "predictions" and int(r[2][1:]) < 2000]
    labels = [r for r in records if r[1] == "labels" and int(r[2][1:]) >= 2000]
    after = [r for r in records if r[1] == "predictions" and int(r[2][1:]) >= 2000]
    config = fast_config()
    ensure_topics(settings, config)
    produce(settings, before)
    with running(DriftService(settings, config)) as service:
        port = service.metrics_port

        def consumed(topic, n):
            return lambda: total(metric_samples(port), "driftwire_events_total", topic=topic) >= n

        wait_until(consumed(settings.predictions_topic, 2000), 120, what="the first predictions consumed")
        samples = metric_samples(port)
        assert total(samples, "driftwire_join_pending", side="predictions") == 0
        assert total(samples, "driftwire_join_events_total") == 0
        produce(settings, labels)
        wait_until(consumed(settings.labels_topic, 2000), 60, what="the labels consumed")
        wait_until(lambda: total(metric_samples(port), "driftwire_join_pending", side="labels") == 2000, 30,
                   what="the labels waiting")
        produce(settings, after)
        wait_until(lambda: total(metric_samples(port), "driftwire_join_events_total", outcome="joined") >= 2000,
                   60, what="the later predictions joined")
        wait_until(lambda: total(metric_samples(port), "driftwire_join_pending", side="labels") == 0, 30,
                   what="no label left waiting")
        samples = metric_samples(port)
    assert total(samples, "driftwire_join_events_total") == 2000
    assert total(samples, "driftwire_join_pending", side="predictions") == 0


def test_a_shadow_version_without_labels_is_compared_on_agreement(settings):
    """join.enabled auto with no labels on the bus: the second version starts the join, and a
    shadow that agrees with its champion far less than comparison.min_agreement is rolled back."""
    records = [r for r in classifier_stream(9000, [(0, 0.10)], seed=12, challenger=(0.15, 0.0))
               if r[1] == "predictions"]
    alerts, _, samples = run_stream(settings, records, comparison={"min_agreement": 0.95, "every": 1000})
    compared = comparison_alerts(alerts)
    assert compared, f"no comparison alert among {[(a.kind, a.signal, a.detector) for a in alerts]}"
    for alert in compared:
        details = ModelComparison.model_validate(alert.details)
        assert (details.recommendation, details.basis, details.labelled_events) == ("rollback", "agreement", 0)
        assert details.agreement == pytest.approx(0.85, abs=0.04) and details.agreement_high < 0.95
    assert total(samples, "driftwire_version_agreement", challenger="v2") == pytest.approx(0.85, abs=0.04)
    assert total(samples, "driftwire_join_events_total", outcome="joined") == 0


def comparison_alerts(alerts) -> list[DriftAlert]:
    return [a for a in alerts if a.detector == "model_comparison"]


@pytest.mark.parametrize(("flip", "fix", "expected"), [(0.15, 0.0, "rollback"), (0.0, 0.5, "promote")],
                         ids=["flips-15-percent", "better-on-labels"])
def test_a_shadow_challenger_gets_a_comparison_alert(settings, flip, fix, expected):
    n = 20_000
    records = classifier_stream(n, [(0, 0.10)], seed=6, challenger=(flip, fix))
    alerts, requests, samples = run_stream(settings, records)
    assert total(samples, "driftwire_join_events_total", outcome="joined") == 2 * n
    compared = comparison_alerts(alerts)
    assert compared, f"no comparison alert among {[(a.kind, a.signal, a.detector) for a in alerts]}"
    assert {a.details["recommendation"] for a in compared} == {expected}
    for alert in compared:
        details = ModelComparison.model_validate(alert.details)
        assert (alert.kind, alert.model, alert.model_version) == ("performance", "churn", "v2")
        assert alert.severity == ("critical" if expected == "rollback" else "warning")
        assert (details.champion, details.challenger, details.basis) == ("v1", "v2", "paired")
        assert details.labelled_events >= details.min_labels
        assert (details.high < 0) if expected == "rollback" else (details.low > 0)
        assert alert.statistic == details.advantage
        if expected == "rollback":
            assert details.agreement == pytest.approx(0.85, abs=0.03)
    # the gauge holds the latest evaluation's verdict
    assert total(samples, "driftwire_version_recommendation", challenger="v2") == (-1 if expected == "rollback" else 1)
    advantage = total(samples, "driftwire_version_advantage", challenger="v2")
    assert advantage < 0 if expected == "rollback" else advantage > 0
    assert not [r for r in requests if any(reason.detector == "model_comparison" for reason in r.reasons)]


def test_a_backlog_of_labels_is_read_in_step_with_its_predictions(settings):
    """All labels are on the bus before any prediction: read freely, the labels run far ahead and
    overflow a small store (with ``max_skew`` 1e9 about 54,000 of the 60,000 events were evicted);
    aligned on event time at the default skew, every pair joins."""
    n = 60_000
    records = classifier_stream(n, [(0, 0.10)], seed=8)
    records.sort(key=lambda r: r[1] != "labels")  # every label first, then every prediction
    alerts, requests, samples = run_stream(settings, records,
                                           join={"max_pending": 6_000})
    lost = {k: v for k, v in samples.get("driftwire_join_events_total", {}).items()
            if dict(k)["outcome"] != "joined"}
    assert lost == {}
    assert total(samples, "driftwire_join_events_total", outcome="joined") == n
