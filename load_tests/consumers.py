"""The reference consumers of :mod:`load_tests.bench_service`, each run in a process of its own.

``python -m load_tests.consumers {bare,river} CONFIG_JSON TOPICS EVENTS BATCH_SIZE SKIP`` prints
the events/s of one consumer of TOPICS (a topic, or several comma-separated, read together; EVENTS
counts the events of all of them) after its first SKIP events. This module imports only what such
a consumer needs (confluent-kafka, orjson, and river for the baseline), so the process, its heap
and its garbage collector's work are those of a consumer a team would write itself, not of the
benchmark that starts it.
"""

from __future__ import annotations

import sys
import time

import orjson
from confluent_kafka import Consumer


def consume_rate(conf: dict, topics: list[str], n: int, batch_size: int, skip: int, handle=None) -> float:
    """Events/s of a consumer of ``topics`` that passes each batch to ``handle`` (or nothing),
    counted from the batch that takes it past ``skip`` events, so that start-up is not counted."""
    consumer = Consumer(conf)
    consumer.subscribe(topics)
    seen = 0
    start = None
    try:
        while seen < n:
            batch = consumer.consume(batch_size, 1.0)
            if handle is not None:
                handle(batch)
            seen += len(batch)
            if start is None and seen >= skip:
                start = (time.perf_counter(), seen)
        return (seen - start[1]) / (time.perf_counter() - start[0])
    finally:
        consumer.close()


class RiverBaseline:
    """Per value river detectors, the way a consumer without driftwire would do it: on each
    numeric feature value (strings, booleans and nulls are skipped, and so are events without
    features, such as labels)."""

    def __init__(self):
        from river import drift

        self._drift = drift
        self.detectors: dict = {}
        self.detections = 0

    def __call__(self, batch) -> None:
        for msg in batch:
            event = orjson.loads(msg.value())
            for name, x in (event.get("features") or {}).items():
                if type(x) is not float and type(x) is not int:  # bool is a subclass of int
                    continue
                key = (event["model"], name)
                pair = self.detectors.get(key)
                if pair is None:
                    pair = self.detectors[key] = (self._drift.ADWIN(), self._drift.PageHinkley())
                for det in pair:
                    det.update(x)
                    self.detections += det.drift_detected


def main(argv: list[str]) -> int:
    kind, conf, topics, n, batch_size, skip = argv
    handle = RiverBaseline() if kind == "river" else None
    print(consume_rate(orjson.loads(conf), topics.split(","), int(n), int(batch_size), int(skip), handle))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
