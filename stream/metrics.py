"""Prometheus metrics and the HTTP endpoints SREs scrape: /metrics, /healthz, /readyz.

Labels that come from the bus (model, version, signal) are unbounded in principle: a cap on
distinct models and on tracked series keeps the exposition bounded, and what the cap turns away
is counted in ``driftwire_series_dropped_total``.
"""

from __future__ import annotations

import math
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

from prometheus_client import (
    CONTENT_TYPE_LATEST,
    CollectorRegistry,
    Counter,
    Gauge,
    Histogram,
    disable_created_metrics,
)
from prometheus_client.exposition import generate_latest

from driftwire.stream.detect.caps import ModelCap

#: the model label value used once ``max_models`` distinct models have been seen.
OTHER_MODEL = "__other__"


class Metrics:
    """All of driftwire's metrics, in their own registry."""

    def __init__(self, max_models: int = 1000, registry: CollectorRegistry | None = None):
        # *_created samples double the series count and say nothing an SRE pages on.
        disable_created_metrics()
        self.registry = registry or CollectorRegistry()
        #: the models with label values of their own: the ones the service tracks
        self.models = ModelCap(max_models)
        r = self.registry
        self.events = Counter(
            "driftwire_events", "Valid events consumed, by topic and model.", ["topic", "model"], registry=r
        )
        self.events_read_one_by_one = Counter(
            "driftwire_events_read_one_by_one",
            "Records the batch scanner could not read, decoded one at a time (the invalid ones included), by topic.",
            ["topic"],
            registry=r,
        )
        self.invalid_events = Counter(
            "driftwire_invalid_events",
            "Events dead-lettered, by topic and reason.",
            ["topic", "reason"],
            registry=r,
        )
        self.drift_detections = Counter(
            "driftwire_drift_detections",
            "Drift detections, including those a cooldown kept from the alert topic.",
            ["model", "signal", "detector", "kind", "severity"],
            registry=r,
        )
        self.drift_alerts = Counter(
            "driftwire_drift_alerts",
            "Drift alerts published to the alert topic.",
            ["model", "signal", "detector", "kind"],
            registry=r,
        )
        self.alerts_suppressed = Counter(
            "driftwire_drift_alerts_suppressed",
            "Detections not published because their (model, version, signal, detector) was cooling down.",
            ["model", "signal", "detector"],
            registry=r,
        )
        self.drift_statistic = Gauge(
            "driftwire_drift_statistic",
            "Current statistic of a detector on a signal (ADWIN window mean, Page-Hinkley test value, ...), or a "
            "window statistic at the last window close (detector = psi, ks, ks_pvalue, wasserstein, ...).",
            ["model", "model_version", "signal", "detector"],
            registry=r,
        )
        self.drift_threshold = Gauge(
            "driftwire_drift_threshold",
            "The value driftwire_drift_statistic is compared with, where the detector has one.",
            ["model", "model_version", "signal", "detector"],
            registry=r,
        )
        self.last_drift = Gauge(
            "driftwire_last_drift_timestamp_seconds",
            "Unix time of the last drift detection.",
            ["model", "model_version", "signal", "detector"],
            registry=r,
        )
        self.batch_seconds = Histogram(
            "driftwire_batch_seconds",
            "Time to process one consumed batch (decode, detect, publish, commit).",
            buckets=(0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0),
            registry=r,
        )
        self.batch_events = Histogram(
            "driftwire_batch_events",
            "Messages per consumed batch.",
            buckets=(1, 10, 100, 500, 1000, 2500, 5000, 10000, 50000),
            registry=r,
        )
        self.consumer_lag = Gauge(
            "driftwire_consumer_lag",
            "Messages between the consumer position and the end of the partition.",
            ["topic", "partition"],
            registry=r,
        )
        self.series_tracked = Gauge(
            "driftwire_series_tracked", "(model, version, signal) series with detector state.", registry=r
        )
        self.series_dropped = Counter(
            "driftwire_series_dropped",
            "Values of series not tracked because the series cap (max_series) was reached.",
            registry=r,
        )
        self.checkpoints = Counter(
            "driftwire_checkpoints", "Detector checkpoints written, by outcome.", ["outcome"], registry=r
        )
        self.publish_errors = Counter(
            "driftwire_publish_errors", "Records the broker did not acknowledge, by topic.", ["topic"], registry=r
        )
        self.assigned_partitions = Gauge(
            "driftwire_assigned_partitions", "Input partitions assigned to this replica.", registry=r
        )
        self.last_fetch_age = Gauge(
            "driftwire_last_fetch_age_seconds",
            "Seconds since a leader of this replica's partitions last answered it (a fetch is answered at least "
            "every fetch.wait.max.ms); NaN while none is assigned.",
            registry=r,
        )
        self.window_events = Gauge(
            "driftwire_window_events", "Events in the last closed window of a model version.",
            ["model", "model_version"], registry=r,
        )
        self.windows_closed = Counter(
            "driftwire_windows_closed", "Windows closed and compared with their reference.", ["model"], registry=r
        )
        self.late_events = Counter(
            "driftwire_window_late_events",
            "Events older than every open window of their model version, left out of the windows.",
            ["model"], registry=r,
        )
        self.missing_rate = Gauge(
            "driftwire_missing_rate", "Share of the last window's events without a value for the signal.",
            ["model", "model_version", "signal"], registry=r,
        )
        self.out_of_range_rate = Gauge(
            "driftwire_out_of_range_rate",
            "Share of the last window's values outside the reference's [min, max].",
            ["model", "model_version", "signal"], registry=r,
        )
        self.references = Counter(
            "driftwire_reference_profiles", "Reference profiles loaded, by source (file, topic) and outcome.",
            ["source", "outcome"], registry=r,
        )
        self.join_events = Counter(
            "driftwire_join_events",
            "Predictions and labels by what became of them in the label join: joined (once per model version), "
            "duplicate_prediction, duplicate_label, prediction_expired, label_expired (no prediction within the "
            "TTL: an unknown event), prediction_evicted, label_evicted (over max_pending), unscorable, "
            "no_predictions_partition (the partition's predictions are consumed by another replica).",
            ["outcome"], registry=r,
        )
        self.join_pending = Gauge(
            "driftwire_join_pending", "Predictions waiting for their label, and labels for their prediction.",
            ["side"], registry=r,
        )
        self.model_performance = Gauge(
            "driftwire_model_performance",
            "A performance metric of a model version (accuracy, precision, recall, f1, f1_macro, log_loss, mae, "
            "rmse, ...) over its last closed window of labelled predictions.",
            ["model", "model_version", "metric"], registry=r,
        )
        self.performance_windows = Counter(
            "driftwire_performance_windows", "Windows of labelled predictions closed.", ["model"], registry=r
        )
        self.retrain_requests = Counter(
            "driftwire_retrain_requests", "Retraining requests published.", ["model"], registry=r
        )
        versions = ["model", "champion", "challenger"]
        self.version_agreement = Gauge(
            "driftwire_version_agreement",
            "Share of the events both a challenger version and its champion predicted on which they agreed.",
            versions, registry=r,
        )
        self.version_advantage = Gauge(
            "driftwire_version_advantage",
            "The challenger's advantage over its champion on labelled events: accuracy difference, or the "
            "champion's mean absolute error minus the challenger's; positive favours the challenger.",
            versions, registry=r,
        )
        self.version_recommendation = Gauge(
            "driftwire_version_recommendation",
            "The latest recommendation for a challenger version: 1 promote, 0 keep testing, -1 roll back.",
            versions, registry=r,
        )

    def model_label(self, model: str) -> str:
        """``model``, or ``__other__`` for a model beyond the ``max_models`` tracked."""
        return model if self.models.admit(model) else OTHER_MODEL

    def render(self) -> bytes:
        return generate_latest(self.registry)


class HealthState:
    """What /healthz and /readyz report; the service loop keeps it current.

    Liveness is whether the service runs, readiness whether it consumes: connected, with
    partitions, and answered by their leaders within ``fetch_stall_timeout`` seconds (0: not
    checked). A frozen or unreachable broker makes a replica not ready but leaves it alive,
    since restarting the pod does not bring the broker back, and restarting every replica at
    once only adds rebalances to the outage.
    """

    def __init__(self, fetch_stall_timeout: float = 0.0):
        self.alive = True
        self.connected = False
        self.assigned = False
        self.fetch_stall_timeout = fetch_stall_timeout
        #: monotonic time at which a leader of an assigned partition last answered
        self.last_fetch: float | None = None

    def fetched(self, at: float) -> None:
        """A leader answered at monotonic time ``at`` (never moves the time back)."""
        if self.last_fetch is None or at > self.last_fetch:
            self.last_fetch = at

    def fetch_age(self) -> float:
        """Seconds since a leader of an assigned partition last answered; NaN with none assigned."""
        if not self.assigned or self.last_fetch is None:
            return math.nan
        return max(time.monotonic() - self.last_fetch, 0.0)

    @property
    def stalled(self) -> bool:
        # NaN compares false: a replica without partitions is not stalled, only unassigned
        return self.fetch_stall_timeout > 0 and self.fetch_age() > self.fetch_stall_timeout

    @property
    def ready(self) -> bool:
        return self.alive and self.connected and self.assigned and not self.stalled

    def why_not_ready(self) -> str:
        if not self.connected:
            return "not connected"
        if not self.assigned:
            return "no partitions assigned"
        if self.stalled:
            return f"no answer from the partitions' leaders for {self.fetch_age():.0f} s"
        return "stopping"


class MetricsServer:
    """A small threaded HTTP server: /metrics (Prometheus text format), /healthz, /readyz."""

    def __init__(self, metrics: Metrics, health: HealthState, host: str = "0.0.0.0", port: int = 9108):
        handler = _make_handler(metrics, health)
        self._server = ThreadingHTTPServer((host, port), handler)
        self._server.daemon_threads = True
        self._thread = threading.Thread(target=self._server.serve_forever, name="metrics-http", daemon=True)

    @property
    def port(self) -> int:
        return self._server.server_address[1]

    def start(self) -> MetricsServer:
        self._thread.start()
        return self

    def stop(self) -> None:
        self._server.shutdown()
        self._server.server_close()


def _make_handler(metrics: Metrics, health: HealthState):
    class Handler(BaseHTTPRequestHandler):
        def do_GET(self):  # noqa: N802 - http.server's naming
            path = self.path.split("?", 1)[0]
            if path == "/metrics":
                self._send(200, metrics.render(), CONTENT_TYPE_LATEST)
            elif path == "/healthz":
                ok = health.alive
                self._send(200 if ok else 503, b"ok\n" if ok else b"stopping\n")
            elif path == "/readyz":
                if health.ready:
                    self._send(200, b"ready\n")
                else:
                    self._send(503, f"not ready: {health.why_not_ready()}\n".encode())
            else:
                self._send(404, b"not found: try /metrics, /healthz, /readyz\n")

        def _send(self, code: int, body: bytes, ctype: str = "text/plain; charset=utf-8"):
            self.send_response(code)
            self.send_header("Content-Type", ctype)
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, format, *args):  # noqa: A002 - silence per-request logging
            pass

    return Handler
