"""A downstream retraining job: it reads driftwire's retraining requests and retrains with their labels.

A request (``driftwire.schemas.RetrainRequest``, keyed by model) says why a model should be
retrained (the alerts behind it) and with what: offset ranges of the labels topic that hold the
labels joined since the model's previous request. For each run the job reads exactly those ranges,
keeps the labels of the model, and "retrains": a real job would start a training pipeline with
them; this one prints one line per run (``--json``: only a JSON summary line per run).

Requests are delivered at least once, so the job drops a request_id it has seen (the last
``SEEN_IDS``). Each driftwire replica requests with the label ranges of its own partitions, so
requests of a model arriving within ``--window`` seconds are merged into one run. Offsets on the
requests topic are committed only once every run that includes a request is done: a crash or a
stop re-reads the requests of unfinished runs and retrains again, never skips one.

    python examples/retrain_job.py --bootstrap-servers localhost:9092
"""

from __future__ import annotations

import argparse
import json
import signal
import sys
import threading
import time
from collections import Counter, OrderedDict, defaultdict
from dataclasses import dataclass, field

from confluent_kafka import Consumer, KafkaError, KafkaException, TopicPartition
from pydantic import ValidationError

from driftwire.schemas import LabelEvent, OffsetRange, RetrainRequest

#: request ids remembered for deduplication (oldest forgotten first)
SEEN_IDS = 100_000


def merge_ranges(ranges) -> list[OffsetRange]:
    """The union of ``ranges`` per (topic, partition): overlapping or adjacent ones joined, gaps kept."""
    spans = sorted((r.topic, r.partition, r.start_offset, r.end_offset) for r in ranges
                   if r.end_offset > r.start_offset)
    out: list[OffsetRange] = []
    for topic, partition, start, end in spans:
        last = out[-1] if out else None
        if last and (last.topic, last.partition) == (topic, partition) and start <= last.end_offset:
            last.end_offset = max(last.end_offset, end)
        else:
            out.append(OffsetRange(topic=topic, partition=partition, start_offset=start, end_offset=end))
    return out


@dataclass
class Run:
    """Requests of one model gathered into one retraining; ``tokens`` say where they were read."""

    model: str
    started: float
    requests: list[RetrainRequest] = field(default_factory=list)
    tokens: list = field(default_factory=list)

    @property
    def versions(self) -> list[str]:
        return sorted({v for r in self.requests for v in r.model_versions})

    @property
    def reasons(self) -> list:
        unique = {reason.alert_id: reason for r in self.requests for reason in r.reasons}
        return sorted(unique.values(), key=lambda reason: reason.event_time)

    @property
    def ranges(self) -> list[OffsetRange]:
        return merge_ranges(rng for r in self.requests for rng in r.labels)


class RetrainPlanner:
    """Dedupes requests by id and gathers a model's requests for ``window`` seconds into a run. No Kafka."""

    def __init__(self, window: float, remember: int = SEEN_IDS):
        self.window, self.remember = window, remember
        self._seen: OrderedDict[str, None] = OrderedDict()
        self._runs: dict[str, Run] = {}

    def add(self, request: RetrainRequest, now: float, token=None) -> bool:
        """Take one request; False when its id was seen before (a redelivery)."""
        if request.request_id in self._seen:
            return False
        self._seen[request.request_id] = None
        if len(self._seen) > self.remember:
            self._seen.popitem(last=False)
        run = self._runs.setdefault(request.model, Run(request.model, now))
        run.requests.append(request)
        run.tokens.append(token)
        return True

    def due(self, now: float) -> list[Run]:
        """The runs whose first request came ``window`` seconds ago or more, removed from the planner."""
        return [self._runs.pop(m) for m, run in list(self._runs.items()) if now - run.started >= self.window]


def read_labels(consumer_conf: dict, ranges, model: str | None = None) -> tuple[list[LabelEvent], int]:
    """The valid label events (of ``model`` if given) in ``ranges``, and how many records were invalid."""
    # partition EOF ends a range that reaches past the log's end instead of waiting for records; a range
    # whose start was deleted by retention starts at the oldest record left
    consumer = Consumer({**consumer_conf, "enable.auto.commit": False, "enable.partition.eof": True,
                         "auto.offset.reset": "earliest"})
    labels, invalid = [], 0
    try:
        for rng in ranges:  # one range at a time: a partition can have several ranges after a merge
            tp = TopicPartition(rng.topic, rng.partition, rng.start_offset)
            consumer.assign([tp])
            done = False
            while not done:
                for msg in consumer.consume(500, 1.0):
                    if msg.error():
                        if msg.error().code() != KafkaError._PARTITION_EOF:
                            raise KafkaException(msg.error())  # crashing re-reads the request, never skips it
                        done = True
                    elif msg.offset() < rng.end_offset:
                        try:
                            event = LabelEvent.model_validate_json(msg.value())
                        except ValidationError:
                            invalid += 1
                        else:
                            if model is None or event.model == model:
                                labels.append(event)
                # the position, not the last offset, passes transaction markers and compacted gaps
                done = done or consumer.position([tp])[0].offset >= rng.end_offset
    finally:
        consumer.close()
    return labels, invalid


def summarize(run: Run, labels: list[LabelEvent], invalid: int) -> dict:
    # keyed with the type too: True == 1 in a Counter, but they are different labels
    counts = Counter((type(e.label) is bool, e.label) for e in labels)
    return {
        "model": run.model, "model_versions": run.versions,
        "request_ids": [r.request_id for r in run.requests],
        "reasons": [{"kind": r.kind, "signal": r.signal, "detector": r.detector, "model_version": r.model_version}
                    for r in run.reasons],
        "label_ranges": [r.model_dump() for r in run.ranges],
        "labelled_events": len(labels), "invalid_labels": invalid,
        "label_counts": [[value, n] for (_, value), n in counts.most_common(5)],
    }


def describe(s: dict) -> str:
    reasons = ", ".join(sorted({f"{r['kind']} {r['signal']}/{r['detector']}" for r in s["reasons"]}))
    top = ", ".join(f"{json.dumps(v)}: {n}" for v, n in s["label_counts"]) or "none"
    return (f"retrain {s['model']} (versions {', '.join(s['model_versions'])}; {len(s['request_ids'])} requests) "
            f"for {reasons}: {s['labelled_events']} labelled events ({s['invalid_labels']} invalid), labels {top}")


def main(argv=None, stop_event: threading.Event | None = None, out=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--bootstrap-servers", default="localhost:9092")
    parser.add_argument("--topic", default="retrain-requests")
    parser.add_argument("--group-id", default="retrain-job")
    parser.add_argument("--window", type=float, default=30.0, help="seconds to gather a model's requests")
    parser.add_argument("--json", action="store_true", help="print only one JSON summary line per run")
    parser.add_argument("--consumer-config", action="append", default=[], metavar="KEY=VALUE",
                        help="extra librdkafka setting for both consumers (repeatable)")
    args = parser.parse_args(argv)
    out = out or sys.stdout
    stop = stop_event or threading.Event()
    if threading.current_thread() is threading.main_thread():
        signal.signal(signal.SIGTERM, lambda *_: stop.set())
        signal.signal(signal.SIGINT, lambda *_: stop.set())
    extra = dict(kv.split("=", 1) for kv in args.consumer_config)
    base = {"bootstrap.servers": args.bootstrap_servers, **extra}
    label_conf = {**base, "group.id": f"{args.group_id}-labels"}  # assigned, never committed
    # offsets are committed by hand once the runs are done; a new group starts at the oldest request
    consumer = Consumer({**base, "group.id": args.group_id, "enable.auto.commit": False,
                         "auto.offset.reset": "earliest"})
    planner = RetrainPlanner(args.window)
    pending: defaultdict[int, set[int]] = defaultdict(set)  # partition -> offsets of requests not retrained yet
    consumed: dict[int, int] = {}  # partition -> offset after the last record read
    committed: dict[int, int] = {}

    def revoked(_, partitions):
        # their uncommitted requests go to the new owner (at least once); stop committing for them
        for tp in partitions:
            for offsets in (pending, consumed, committed):
                offsets.pop(tp.partition, None)

    consumer.subscribe([args.topic], on_revoke=revoked)
    if not args.json:
        print(f"retrain job: reading {args.topic} on {args.bootstrap_servers}", file=out, flush=True)
    try:
        while not stop.is_set():
            msg = consumer.poll(0.2)
            now = time.monotonic()
            if msg is not None and msg.error():
                if msg.error().fatal():
                    raise KafkaException(msg.error())
                print(f"consumer error: {msg.error()}", file=sys.stderr)
            elif msg is not None:
                consumed[msg.partition()] = msg.offset() + 1
                try:
                    request = RetrainRequest.model_validate_json(msg.value())
                except ValidationError as exc:
                    print(f"skipping a record that is not a RetrainRequest at {msg.topic()}/{msg.partition()}"
                          f"@{msg.offset()}: {exc}", file=sys.stderr)
                else:
                    if planner.add(request, now, token=(msg.partition(), msg.offset())):
                        pending[msg.partition()].add(msg.offset())
            # reading labels blocks polling: a real job hands the run to a pipeline and returns at once
            for run in planner.due(now):
                labels, invalid = read_labels(label_conf, run.ranges, run.model)
                summary = summarize(run, labels, invalid)
                if not args.json:
                    print(describe(summary), file=out, flush=True)
                print(json.dumps(summary, default=str), file=out, flush=True)
                for partition, offset in run.tokens:
                    pending[partition].discard(offset)
            # commit up to the oldest request still waiting for its run in each partition
            offsets = {p: min(pending[p], default=end) for p, end in consumed.items()}
            changed = [TopicPartition(args.topic, p, o) for p, o in offsets.items() if committed.get(p) != o]
            if changed:
                try:
                    consumer.commit(offsets=changed, asynchronous=False)
                    committed.update(offsets)
                except KafkaException as exc:  # e.g. during a rebalance: retried on the next round
                    print(f"commit failed: {exc}", file=sys.stderr)
    finally:
        consumer.close()
    return 0


if __name__ == "__main__":
    sys.exit(main())
