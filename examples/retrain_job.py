"""A downstream retraining job: it reads driftwire's drift alerts and decides what to retrain.

Alerts are delivered at least once, so the job deduplicates them by ``alert_id``. It commits its
offsets only after an alert has been handled, so a restart re-reads, never skips. Critical
alerts of a model within ``--window`` seconds are gathered into one retraining decision, which
here is printed; a real job would start a pipeline run with the model, version and signals.

    python examples/retrain_job.py --bootstrap-servers localhost:9092
"""

from __future__ import annotations

import argparse
import signal
import sys
import time
from collections import OrderedDict, defaultdict

from confluent_kafka import Consumer, KafkaException
from pydantic import ValidationError

from driftwire.schemas import DriftAlert

#: alert ids remembered for deduplication (oldest forgotten first)
SEEN_IDS = 100_000


class RetrainPlanner:
    """Gathers critical alerts per (model, version) and says when a model is due for retraining."""

    def __init__(self, window: float):
        self.window = window
        self._seen: OrderedDict[str, None] = OrderedDict()
        self._pending: dict[tuple[str, str], list[DriftAlert]] = defaultdict(list)
        self._first: dict[tuple[str, str], float] = {}

    def add(self, alert: DriftAlert, now: float) -> bool:
        """Take one alert; False when it was seen before (a redelivery) or is not critical."""
        if alert.alert_id in self._seen:
            return False
        self._seen[alert.alert_id] = None
        if len(self._seen) > SEEN_IDS:
            self._seen.popitem(last=False)
        if alert.severity != "critical":
            return False
        key = (alert.model, alert.model_version)
        self._pending[key].append(alert)
        self._first.setdefault(key, now)
        return True

    def due(self, now: float) -> list[tuple[str, str, list[DriftAlert]]]:
        """(model, version, alerts) of each model whose alerts have gathered for ``window`` seconds."""
        ready = [key for key, first in self._first.items() if now - first >= self.window]
        out = []
        for key in ready:
            del self._first[key]
            out.append((*key, self._pending.pop(key)))
        return out


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--bootstrap-servers", default="localhost:9092")
    parser.add_argument("--topic", default="drift-alerts")
    parser.add_argument("--group-id", default="retrain-job")
    parser.add_argument("--window", type=float, default=30.0, help="seconds to gather a model's alerts")
    args = parser.parse_args(argv)

    stop = False

    def request_stop(*_):
        nonlocal stop
        stop = True

    signal.signal(signal.SIGTERM, request_stop)
    signal.signal(signal.SIGINT, request_stop)
    consumer = Consumer({"bootstrap.servers": args.bootstrap_servers, "group.id": args.group_id,
                         "enable.auto.commit": False, "auto.offset.reset": "earliest"})
    consumer.subscribe([args.topic])
    planner = RetrainPlanner(args.window)
    print(f"retrain job: reading {args.topic} on {args.bootstrap_servers}", flush=True)
    try:
        while not stop:
            msg = consumer.poll(1.0)
            now = time.monotonic()
            if msg is not None:
                if msg.error():
                    if msg.error().fatal():
                        raise KafkaException(msg.error())
                    print(f"consumer error: {msg.error()}", file=sys.stderr)
                    continue
                try:
                    alert = DriftAlert.model_validate_json(msg.value())
                except ValidationError as exc:
                    print(f"skipping a record that is not a DriftAlert at offset {msg.offset()}: {exc}",
                          file=sys.stderr)
                else:
                    if planner.add(alert, now):
                        print(f"alert: {alert.model} {alert.model_version} {alert.signal} "
                              f"{alert.detector} {alert.kind} at {alert.event_time.isoformat()}", flush=True)
                consumer.commit(message=msg, asynchronous=False)
            for model, version, alerts in planner.due(now):
                signals = sorted({a.signal for a in alerts})
                print(f"retrain {model} (version {version}): {len(alerts)} critical alerts on "
                      f"{', '.join(signals)}", flush=True)
    finally:
        consumer.close()
    return 0


if __name__ == "__main__":
    sys.exit(main())
