"""The reference consumers of :mod:`load_tests.bench_service`, each run in a process of its own.

``python -m load_tests.consumers {bare,river} CONFIG_JSON TOPIC EVENTS BATCH_SIZE`` prints the
events/s of one consumer. This module imports only what such a consumer needs (confluent-kafka,
orjson, and river for the baseline), so the process, its heap and its garbage collector's work
are those of a consumer a team would write itself, not of the benchmark that starts it.
"""

from __future__ import annotations

import sys
import time

import orjson
from confluent_kafka import Consumer


def consume_rate(conf: dict, topic: str, n: int, batch_size: int, handle=None) -> float:
    """Events/s of a consumer that passes each batch to ``handle`` (or nothing), counted from
    its first batch, so that the group join is not."""
    consumer = Consumer(conf)
    consumer.subscribe([topic])
    seen = 0
    first = None
    try:
        while seen < n:
            batch = consumer.consume(batch_size, 1.0)
            if batch and first is None:
                first = (time.perf_counter(), len(batch))
            if handle is not None:
                handle(batch)
            seen += len(batch)
        return (seen - first[1]) / (time.perf_counter() - first[0])
    finally:
        consumer.close()


class RiverBaseline:
    """Per value river detectors, the way a consumer without driftwire would do it."""

    def __init__(self):
        from river import drift

        self._drift = drift
        self.detectors: dict = {}
        self.detections = 0

    def __call__(self, batch) -> None:
        for msg in batch:
            event = orjson.loads(msg.value())
            for name, x in event["features"].items():
                key = (event["model"], name)
                pair = self.detectors.get(key)
                if pair is None:
                    pair = self.detectors[key] = (self._drift.ADWIN(), self._drift.PageHinkley())
                for det in pair:
                    det.update(x)
                    self.detections += det.drift_detected


def main(argv: list[str]) -> int:
    kind, conf, topic, n, batch_size = argv
    handle = RiverBaseline() if kind == "river" else None
    print(consume_rate(orjson.loads(conf), topic, int(n), int(batch_size), handle))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
