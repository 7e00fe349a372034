"""The Grafana dashboard shipped with the Helm chart: a well-formed model, and every metric its
queries use is one a running driftwire exports."""

from __future__ import annotations

import json
import re
from pathlib import Path

import orjson
import pytest
from confluent_kafka import Producer

from busutil import caught_up, fast_config, metric_samples, produce_events, running, simulated, total, wait_until
from driftwire.stream import simulate
from driftwire.stream.service import DriftService, ensure_topics

DASHBOARD = Path(__file__).resolve().parents[1] / "helm" / "driftwire" / "files" / "grafana-dashboard.json"
DATASOURCE = {"type": "prometheus", "uid": "${datasource}"}
METRIC_NAME = re.compile(r"(?<![A-Za-z0-9_:])driftwire_[A-Za-z0-9_:]*")


def load() -> dict:
    return json.loads(DASHBOARD.read_text())


def all_panels(dashboard: dict) -> list[dict]:
    """Every panel, rows' nested panels (collapsed rows) included."""
    out = []
    for panel in dashboard["panels"]:
        out.append(panel)
        out += panel.get("panels", [])
    return out


def queries(dashboard: dict) -> list[str]:
    """The PromQL of every panel target and of every query template variable."""
    exprs = [t["expr"] for p in all_panels(dashboard) for t in p.get("targets", [])]
    for var in dashboard["templating"]["list"]:
        if var["type"] == "query":
            q = var["query"]
            exprs.append(q["query"] if isinstance(q, dict) else q)
    return exprs


def metric_names(exprs) -> set[str]:
    """The driftwire_* identifiers in PromQL expressions."""
    return {name for expr in exprs for name in METRIC_NAME.findall(expr)}


# -- the model itself ------------------------------------------------------------------------
def test_dashboard_is_json_with_the_expected_identity_and_variables():
    dashboard = load()
    assert dashboard["uid"] == "driftwire" and dashboard["title"] == "driftwire"
    assert dashboard["tags"] and dashboard["refresh"] == "30s"
    assert dashboard["time"] == {"from": "now-6h", "to": "now"}
    assert dashboard["schemaVersion"] >= 36
    variables = {v["name"]: v for v in dashboard["templating"]["list"]}
    assert variables["datasource"]["type"] == "datasource" and variables["datasource"]["query"] == "prometheus"
    for name in ("model", "topic"):
        var = variables[name]
        assert var["type"] == "query" and var["datasource"] == DATASOURCE
        assert var["multi"] and var["includeAll"]
        assert var["query"]["query"].startswith("label_values(") and f", {name})" in var["query"]["query"]


def test_panel_ids_are_unique_and_every_panel_queries_the_datasource_variable():
    panels = all_panels(load())
    ids = [p["id"] for p in panels]
    assert len(ids) == len(set(ids)), f"duplicate panel ids: {sorted(i for i in ids if ids.count(i) > 1)}"
    for panel in panels:
        if panel["type"] == "row":
            assert not panel.get("targets"), panel["title"]
            continue
        assert panel["datasource"] == DATASOURCE, panel["title"]
        assert panel["targets"], f"{panel['title']}: no targets"
        for target in panel["targets"]:
            assert target.get("datasource", DATASOURCE) == DATASOURCE, panel["title"]
            assert isinstance(target.get("expr"), str) and target["expr"].strip(), f"{panel['title']}: empty expr"
        assert panel["fieldConfig"]["defaults"].get("unit") or panel["type"] == "table", panel["title"]


def test_rows_group_the_panels_in_order():
    rows = [p["title"] for p in load()["panels"] if p["type"] == "row"]
    assert rows == ["Throughput", "Drift", "Distribution", "Model performance", "Health"]


def test_metric_names_are_extracted_from_promql():
    exprs = [
        'sum by (topic) (rate(driftwire_events_total{model=~"$model"}[$__rate_interval]))',
        "histogram_quantile(0.9, sum by (le) (rate(driftwire_batch_seconds_bucket[5m])))",
        "driftwire_drift_statistic / on(signal) driftwire_drift_threshold",
        'label_values(driftwire_events_total, model)',
        'up{job="not_driftwire_x"} + rate(my_driftwire_thing[1m])',
    ]
    assert metric_names(exprs) == {"driftwire_events_total", "driftwire_batch_seconds_bucket",
                                   "driftwire_drift_statistic", "driftwire_drift_threshold"}
    names = metric_names(queries(load()))
    assert {"driftwire_events_total", "driftwire_batch_seconds_bucket", "driftwire_drift_threshold",
            "driftwire_last_drift_timestamp_seconds", "driftwire_publish_errors_total"} <= names


# -- against a running service -----------------------------------------------------------------
@pytest.mark.broker
def test_every_metric_the_dashboard_queries_is_exported_by_a_running_service(settings):
    # The service dead-letters to a topic that does not exist, with automatic topic creation off:
    # the broker refuses the dead letters, which the service counts as publish errors.
    # windows small enough to close within the events, so the window metrics are exported
    config = fast_config(producer={"allow.auto.create.topics": "false", "message.timeout.ms": "3000",
                                   "topic.metadata.propagation.max.ms": "1000"},
                         windows={"size": 1000, "reference_size": 1000},
                         comparison={"every": 500, "min_labels": 200, "agreement_tolerance": 0.5})
    ensure_topics(settings, config)
    service_settings = settings.model_copy(update={"dlq_topic": f"{settings.dlq_topic}-missing",
                                                   "auto_create_topics": False})
    events = simulated(12_000, drifts=[simulate.Drift("pricing", "f5", start=6_000, shift=2.0),
                                       simulate.Drift("pricing", "f0", start=6_000, shift=2.0)])
    # a shadow version predicting the first events too, so the champion/challenger gauges are exported
    shadow = [{**e, "model_version": "v8", "prediction": e["prediction"] + 0.25} for e in events[:3000]]
    produce_events(settings.bootstrap_servers, settings.predictions_topic, events + shadow)
    # labels for every prediction, so the join and performance metrics are exported
    labels = [{"event_id": e["event_id"], "model": e["model"], "timestamp": e["timestamp"] + 1.0,
               "label": e["prediction"] + 0.5} for e in events]
    produce_events(settings.bootstrap_servers, settings.labels_topic, labels)
    producer = Producer({"bootstrap.servers": settings.bootstrap_servers})
    for value in [b"not json", b"[1, 2, 3]", orjson.dumps({"event_id": "x", "model": "pricing"})]:
        producer.produce(settings.predictions_topic, value=value)
    assert producer.flush(30) == 0

    with running(DriftService(service_settings, config)) as service:
        port = service.metrics_port
        wait_until(caught_up(service, 2 * len(events) + len(shadow)), 60, what="all events and labels consumed")
        wait_until(lambda: {"driftwire_model_performance", "driftwire_join_pending", "driftwire_version_agreement",
                            "driftwire_version_advantage", "driftwire_version_recommendation"}
                   <= set(metric_samples(port)), 10, what="the performance, join and version metrics")
        wait_until(lambda: total(metric_samples(port), "driftwire_invalid_events_total") == 3, 30,
                   what="the invalid events")
        wait_until(lambda: total(metric_samples(port), "driftwire_publish_errors_total") >= 1, 30,
                   what="the refused dead letters")
        wait_until(lambda: {"driftwire_drift_statistic", "driftwire_consumer_lag", "driftwire_window_events",
                            "driftwire_missing_rate"} <= set(metric_samples(port)),
                   10, what="the detector statistics, lag and window gauges")
        wait_until(lambda: total(metric_samples(port), "driftwire_checkpoints_total", outcome="ok") >= 1, 10,
                   what="a checkpoint")
        exported = set(metric_samples(port))

    queried = metric_names(queries(load()))
    assert len(queried) >= 15, sorted(queried)
    missing = queried - exported
    assert not missing, f"the dashboard queries metrics the service does not export: {sorted(missing)}"
    # The comparison can fail: a made-up name, or a histogram's family name, is reported.
    made_up = metric_names(["rate(driftwire_made_up_total[5m]) + driftwire_batch_seconds"])
    assert made_up - exported == {"driftwire_made_up_total", "driftwire_batch_seconds"}
