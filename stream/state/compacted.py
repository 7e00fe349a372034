"""Reading a compacted topic whole, as the state and references topics are read at start-up."""

from __future__ import annotations

import time

from confluent_kafka import OFFSET_BEGINNING, Consumer, TopicPartition


def read_to_end(consumer: Consumer, topic: str, take, timeout: float | None = None) -> bool:
    """Assign every partition of ``topic`` from its beginning and pass each record, errors
    included, to ``take`` until the high watermark each had at the start is reached (or
    ``timeout`` seconds pass). False when the topic does not exist; the consumer stays assigned,
    so that later records can be consumed after it."""
    meta = consumer.list_topics(topic, timeout=10).topics.get(topic)
    if meta is None or meta.error is not None:
        return False
    ends = {}
    for p in meta.partitions:
        low, high = consumer.get_watermark_offsets(TopicPartition(topic, p), timeout=10)
        if high > low:
            ends[p] = high
    consumer.assign([TopicPartition(topic, p, OFFSET_BEGINNING) for p in meta.partitions])
    deadline = None if timeout is None else time.monotonic() + timeout
    while ends and (deadline is None or time.monotonic() < deadline):
        for msg in consumer.consume(1000, 0.5):
            if msg.error() is None and msg.offset() + 1 >= ends.get(msg.partition(), 0):
                ends.pop(msg.partition(), None)
            take(msg)
    return True
