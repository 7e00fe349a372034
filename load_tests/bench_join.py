"""Label join throughput and memory, through the broker, beside the service's plain event rate.

Prediction events (4 numeric features, a class-label prediction and a score) and their labels,
delayed by 0-30 s of event time, are produced to a predictions and a labels topic keyed by
``event_id`` (co-partitioned). 10% of the predictions never get a label and 10% of the labels
name an event never predicted, so that the join's store always holds expiring entries. Then,
one after another, each in its own process and consumer group:

- ``plain``: ``driftwire run`` on the predictions topic alone (the join off), its events/s;
- ``join``: ``driftwire run`` on both topics, its joined pairs/s (predictions and labels
  consumed, joined, fed to the error detectors and the performance windows).

Rates are steady rates (the first ``START_UP`` share of the events left out), read from the
processes' ``/metrics``. The join run's peak RSS (``VmHWM``) is read at half the pairs and at
the end: with the TTL (``--ttl`` seconds of event time) bounding what waits, the second half
adds little or nothing. Run: ``python -m load_tests.bench_join [--events N]``; it starts the
embedded broker unless ``--bootstrap-servers`` is given.
"""

from __future__ import annotations

import argparse
import sys
import time
import urllib.request
import uuid

import numpy as np
import orjson
from confluent_kafka import Producer
from confluent_kafka.admin import AdminClient, NewTopic
from prometheus_client.parser import text_string_to_metric_families

from driftwire.stream.broker import bus, free_port
from driftwire.stream.join.store import OUTCOMES

from .bench_service import START_UP, driftwire_process

FEATURES = 4
RATE = 1000.0  # events per second of event time


def produce(bootstrap: str, predictions: str, labels: str, n: int, partitions: int) -> tuple[int, int, int]:
    """Produce the two topics; returns (predictions, labels that have a prediction, labels)."""
    admin = AdminClient({"bootstrap.servers": bootstrap})
    for f in admin.create_topics([NewTopic(predictions, partitions), NewTopic(labels, partitions)]).values():
        f.result()
    producer = Producer({"bootstrap.servers": bootstrap, "linger.ms": 20, "batch.num.messages": 10000})
    rng = np.random.default_rng(0)
    x = rng.normal(0.0, 1.0, (n, FEATURES)).round(6)
    predicted = rng.random(n) < 0.3
    labelled = rng.random(n) >= 0.1
    delay = rng.uniform(0.0, 30.0, n).tolist()
    records = []
    for i in range(n):
        t = 1.7e9 + i / RATE
        records.append((t, predictions, f"e{i}", {
            "event_id": f"e{i}", "model": "churn", "model_version": "v1", "timestamp": t,
            "features": {f"x{j}": v for j, v in enumerate(x[i].tolist())},
            "prediction": bool(predicted[i]), "score": 0.8}))
        if labelled[i]:
            records.append((t + delay[i], labels, f"e{i}", {
                "event_id": f"e{i}", "model": "churn", "timestamp": t + delay[i], "label": bool(predicted[i])}))
        if i % 10 == 0:  # a label for an event never predicted
            records.append((t + delay[i], labels, f"u{i}", {
                "event_id": f"u{i}", "model": "churn", "timestamp": t + delay[i], "label": True}))
    records.sort(key=lambda r: r[0])
    for _, topic, key, event in records:
        while True:
            try:
                producer.produce(topic, orjson.dumps(event), key=key.encode())
                break
            except BufferError:
                producer.poll(0.05)
    assert producer.flush(300) == 0
    return n, int(labelled.sum()), len(records) - n


def metric(port: int, name: str, **labels) -> float:
    try:
        text = urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=2).read().decode()
    except OSError:
        return 0.0
    return sum(s.value for f in text_string_to_metric_families(text) for s in f.samples
               if s.name == name and all(s.labels.get(k) == v for k, v in labels.items()))


def peak_rss(pid: int) -> int:
    """Peak resident set size of a process, bytes (Linux ``VmHWM``)."""
    with open(f"/proc/{pid}/status") as status:
        for line in status:
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) * 1024
    raise RuntimeError("no VmHWM")


#: seconds without progress after which a run is reported as stalled
STALL = 60.0


def steady_rate(proc, port: int, target: float, name: str, **labels) -> tuple[float, list[tuple[float, int]]]:
    """Rate of the counter ``name`` from START_UP * target to target, and (count, peak RSS)
    readings along the way."""
    readings, memory = [], []
    moved, last = time.monotonic(), -1.0
    while True:
        count = metric(port, name, **labels)
        if proc.poll() is not None:
            raise RuntimeError(f"driftwire exited with {proc.returncode}")
        memory.append((count, peak_rss(proc.pid)))
        if count >= target:
            break
        if count != last:
            moved, last = time.monotonic(), count
        elif time.monotonic() - moved > STALL:
            raise RuntimeError(f"{name} stopped at {count:,.0f} of {target:,.0f} for {STALL:.0f} s")
        if count >= START_UP * target:
            readings.append((time.perf_counter(), count))
        time.sleep(0.05)
    if len(readings) < 2:
        raise RuntimeError("the run ended between two readings: give it more events")
    (t0, c0), (t1, c1) = readings[0], readings[-1]
    return (c1 - c0) / (t1 - t0), memory


def accounted(outcomes: dict, pending: dict, side: str, prefix: str) -> int:
    """Records of one side counted once: joined, expired, evicted, a duplicate, or waiting."""
    return outcomes["joined"] + pending[side] + sum(c for o, c in outcomes.items() if o.startswith(prefix))


def accounting(port: int, produced: dict, timeout: float = 30.0) -> tuple[dict, dict]:
    """The join's outcome counters and waiting gauges once they account for every record (the
    gauges follow the counters at the service's next report), or as they are at ``timeout``."""
    deadline = time.monotonic() + timeout
    while True:
        outcomes = {o: int(metric(port, "driftwire_join_events_total", outcome=o)) for o in OUTCOMES}
        pending = {s: int(metric(port, "driftwire_join_pending", side=s)) for s in produced}
        if time.monotonic() > deadline or all(accounted(outcomes, pending, side, prefix) == count
                                              for side, (count, prefix) in produced.items()):
            return outcomes, pending
        time.sleep(0.5)


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--bootstrap-servers")
    parser.add_argument("--events", type=int, default=1_000_000, help="predictions (labels: about as many)")
    parser.add_argument("--partitions", type=int, default=3)
    parser.add_argument("--ttl", type=float, default=60.0, help="join TTL, seconds of event time")
    args = parser.parse_args(argv)
    with bus(args.bootstrap_servers) as bootstrap:
        tag = uuid.uuid4().hex[:8]
        predictions, labels = f"bench-predictions-{tag}", f"bench-labels-{tag}"
        print(f"producing {args.events:,} predictions and their labels on {bootstrap}")
        n, joinable, produced_labels = produce(bootstrap, predictions, labels, args.events, args.partitions)
        outputs = {k: f"{k}-{tag}" for k in ("features", "alerts", "dlq", "state", "references", "retrain")}

        port = free_port()
        with driftwire_process(bootstrap, port, f"bench-plain-{tag}", {"predictions": predictions, **outputs,
                               "labels": f"unused-{tag}"}, {"join": {"enabled": False}}) as proc:
            plain, _ = steady_rate(proc, port, n, "driftwire_events_total")

        port = free_port()
        config = {"join": {"ttl": args.ttl}}
        with driftwire_process(bootstrap, port, f"bench-join-{tag}", {"predictions": predictions, "labels": labels,
                               **outputs}, config) as proc:
            pairs, memory = steady_rate(proc, port, joinable, "driftwire_join_events_total", outcome="joined")
            produced = {"predictions": (n, "prediction"), "labels": (produced_labels, "label")}
            outcomes, pending = accounting(port, produced)
        half = next(rss for count, rss in memory if count >= joinable / 2)
        end = memory[-1][1]
        print()
        print(f"plain events (join off)   {plain:12,.0f} events/s")
        print(f"joined pairs              {pairs:12,.0f} pairs/s   ({pairs / plain:.2f}x the plain event rate; "
              f"each pair is a prediction and a label)")
        print(f"joined {outcomes['joined']:,} of the {joinable:,} predictions with a label; other outcomes: "
              f"{ {o: c for o, c in outcomes.items() if o != 'joined'} }; waiting at the end: {pending}")
        for side, (count, prefix) in produced.items():
            counted = accounted(outcomes, pending, side, prefix)
            check = "" if counted == count else "  MISMATCH"
            print(f"{side:<26}{count:12,} produced, {counted:,} accounted for{check}")
        print(f"peak RSS of the join run: {half / 2**20:,.0f} MiB at half the pairs, {end / 2**20:,.0f} MiB at the end "
              f"(+{(end - half) / 2**20:,.1f} MiB over the second half)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
