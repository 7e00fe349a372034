"""``driftwire demo``: broker, service and simulator in one process, with a live view.

With no bootstrap servers configured it starts the embedded broker; otherwise it uses the bus it
is given. The simulator produces three models' events; after ``--drift-after`` seconds the
``amount`` feature of ``fraud-detector`` shifts, and a few malformed events go out on the way so
the dead-letter path shows too.
"""

from __future__ import annotations

import gc
import logging
import os
import signal
import sys
import threading
import time
from collections import Counter

import orjson
from confluent_kafka import Consumer, Producer

from driftwire.stream import simulate
from driftwire.stream.broker import FAST_GROUP_CONFIG, bus
from driftwire.stream.service import DriftService, ensure_topics
from driftwire.stream.settings import Settings, load_config

BAD_EVENTS = (
    b'{"event_id": "bad-1", "model": "fraud-detector", "prediction": ',  # truncated JSON
    b'{"event_id": "bad-2", "model": "fraud-detector", "prediction": NaN}',  # not finite
    b'{"event_id": "bad-3", "prediction": 1}',  # no model
    b'["not", "an", "object"]',
)


def _out(line: str = "") -> None:
    print(line, flush=True)


def run_demo(args, config=None) -> int:
    """Run the demo with ``config`` (else the one ``args.config`` names); its exit status."""
    logging.getLogger("driftwire").setLevel(logging.WARNING)
    bootstrap = args.bootstrap_servers or os.environ.get("DRIFTWIRE_BOOTSTRAP_SERVERS")
    if not bootstrap:
        _out("starting the embedded Kafka-protocol broker (Tansu, in memory) ...")
    with bus(bootstrap) as servers:
        code = _demo(args, servers, config if config is not None else load_config(args.config))
        # The service's producer lives in a reference cycle: collect it while the broker still
        # serves, or it logs the broker going away after the summary.
        gc.collect()
        return code


def _demo(args, bootstrap: str, config) -> int:
    settings = Settings(
        bootstrap_servers=bootstrap,
        group_id=args.group_id or "driftwire-demo",
        metrics_port=args.metrics_port if args.metrics_port is not None else 9108,
        checkpoint_interval=5.0,
        lag_interval=1.0,
    )
    config.consumer = {**{k: str(v) for k, v in FAST_GROUP_CONFIG.items()}, **config.consumer}
    per_model = max(args.rate / len(simulate.DEFAULT_MODELS), 1.0)
    if config.windows.size is None and config.windows.duration is None:
        # windows of 5 s of each model's events after a 10 s reference, so that window alerts
        # show within a demo's minute (the service's defaults are 10,000 events each)
        config.windows.size = max(int(5 * per_model), 100)
    if config.windows.reference_size is None:
        config.windows.reference_size = max(int(min(10.0, args.drift_after / 2) * per_model), 100)
    ensure_topics(settings, config)
    service = DriftService(settings, config)
    try:
        port = service.start_metrics_server()
    except OSError:
        settings = settings.model_copy(update={"metrics_port": 0})
        service = DriftService(settings, config)
        port = service.start_metrics_server()
    _out("loading the detector loops and the event scanner (the first run compiles them, ~30 s) ...")
    _out(f"  ready in {service.warm_up():.1f}s")
    stop = threading.Event()
    signal.signal(signal.SIGINT, lambda *_: stop.set())
    signal.signal(signal.SIGTERM, lambda *_: stop.set())

    failure: list[BaseException] = []

    def serve():
        try:
            service.run()
        except BaseException as exc:  # noqa: BLE001 - reported by the main thread
            failure.append(exc)
            stop.set()

    service_thread = threading.Thread(target=serve, name="driftwire-service", daemon=True)
    service_thread.start()

    rate = args.rate
    drift_event = int(args.drift_after * rate / len(simulate.DEFAULT_MODELS))
    sim = simulate.Simulator(
        drifts=(simulate.Drift("fraud-detector", "amount", drift_event, shift=1.0),),
        events_per_second=rate,
    )
    producer = Producer({"bootstrap.servers": bootstrap, "linger.ms": 20})
    produced = [0]

    def produce_loop():
        def on_batch(sent):
            produced[0] = sent
            if sent % (50 * 500) == 0:  # now and then, a malformed event
                producer.produce(settings.predictions_topic, BAD_EVENTS[(sent // 25000) % len(BAD_EVENTS)])
        simulate.run(producer, settings.predictions_topic, sim, total=None, rate=rate, stop=stop,
                     on_batch=on_batch)

    producer_thread = threading.Thread(target=produce_loop, name="simulator", daemon=True)
    producer_thread.start()

    alerts = Consumer({"bootstrap.servers": bootstrap, "group.id": f"driftwire-demo-view-{os.getpid()}",
                       "auto.offset.reset": "earliest", **FAST_GROUP_CONFIG})
    alerts.subscribe([settings.alerts_topic])

    _out(f"driftwire demo on {bootstrap}: 3 models x 8 features at {rate:.0f} events/s for {args.duration:.0f}s")
    _out(f"  metrics:  http://127.0.0.1:{port}/metrics   health: /healthz  ready: /readyz")
    _out(f"  drift:    fraud-detector/amount shifts by 1 std after ~{args.drift_after:.0f}s; Ctrl-C ends early")
    _out()
    started = time.monotonic()
    seen: Counter = Counter()
    last_report = started
    last_events = 0.0
    def show_alerts(timeout: float) -> int:
        msgs = [m for m in alerts.consume(100, timeout) if m.error() is None]
        for msg in msgs:
            alert = orjson.loads(msg.value())
            seen[(alert["model"], alert["signal"], alert["detector"])] += 1
            _out(_alert_line(alert, time.monotonic() - started))
        return len(msgs)

    try:
        while not stop.is_set() and time.monotonic() - started < args.duration:
            show_alerts(0.5)
            now = time.monotonic()
            if now - last_report >= 5.0:
                events = _sum(service.metrics, "driftwire_events_total")
                _out(_status_line(service, now - started, (events - last_events) / (now - last_report), produced[0]))
                last_report, last_events = now, events
    finally:
        stop.set()
        service.stop()
        service_thread.join(30)
        producer_thread.join(10)
        producer.flush(10)
        # the alerts published as the service stopped, so the summary lists every alert it counts
        drain_until = time.monotonic() + 3.0
        while time.monotonic() < drain_until and show_alerts(0.5):
            pass
        alerts.close()
    _summary(service, seen, time.monotonic() - started, produced[0])
    if failure:
        _out(f"the service failed: {failure[0]!r}")
        return 1
    return 0


def _sum(metrics, name: str, **labels) -> float:
    total = 0.0
    for family in metrics.registry.collect():
        for s in family.samples:
            if s.name == name and all(s.labels.get(k) == v for k, v in labels.items()):
                total += s.value
    return total


def _alert_line(alert: dict, elapsed: float) -> str:
    stat = alert.get("statistic")
    stat_text = f"statistic={stat:.4g}" if isinstance(stat, (int, float)) else ""
    return (f"[{elapsed:6.1f}s] ALERT {alert['severity']:8} {alert['kind']:16} model={alert['model']}"
            f"@{alert['model_version']} signal={alert['signal']} detector={alert['detector']} {stat_text} "
            f"offset={alert['source']['topic']}[{alert['source']['partition']}]@{alert['source']['offset']}")


def _status_line(service, elapsed: float, rate: float, produced: int) -> str:
    m = service.metrics
    lag = _sum(m, "driftwire_consumer_lag")
    return (f"[{elapsed:6.1f}s] events/s={rate:8.0f}  consumed={_sum(m, 'driftwire_events_total'):9.0f}"
            f"  produced={produced:9d}  lag={lag:6.0f}  series={_sum(m, 'driftwire_series_tracked'):4.0f}"
            f"  alerts={_sum(m, 'driftwire_drift_alerts_total'):3.0f}"
            f"  dead-letters={_sum(m, 'driftwire_invalid_events_total'):3.0f}")


def _summary(service, seen: Counter, elapsed: float, produced: int) -> None:
    m = service.metrics
    _out()
    _out(f"summary after {elapsed:.0f}s: produced {produced} events, "
         f"consumed {_sum(m, 'driftwire_events_total'):.0f} valid, "
         f"dead-lettered {_sum(m, 'driftwire_invalid_events_total'):.0f} "
         "(malformed events the demo injects on purpose)")
    _out(f"  detections: {_sum(m, 'driftwire_drift_detections_total'):.0f}, "
         f"alerts published: {_sum(m, 'driftwire_drift_alerts_total'):.0f} "
         f"(suppressed by cooldown: {_sum(m, 'driftwire_drift_alerts_suppressed_total'):.0f})")
    for (model, signal_name, detector), n in sorted(seen.items()):
        _out(f"  {n:3d} x {model} / {signal_name} / {detector}")
    if not seen:
        _out("  no alert reached the alert topic")
    sys.stdout.flush()
