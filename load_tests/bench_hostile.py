"""What a hostile or broken bus costs: rates, accounting and peak memory, side by side.

Three streams, each on a topic of its own, read by a bare confluent-kafka consumer and by
``driftwire run`` (each in a process of its own, one after the other):

- ``valid``: the simulator's models (numeric and categorical features, class predictions);
- ``model flood``: the same events, each under a new model name (valid: beyond ``max_models``
  they are counted as ``__other__`` and feed nothing);
- ``hostile mix``: valid events and (up to 20,000, at most half) :mod:`driftwire.stream.hostile`
  messages of twenty kinds (deep nesting, huge numbers, bad UTF-8, over-long names, oversized, ...).

For each it prints the steady rates (records/s, valid and dead-lettered alike), their ratio, the
service's peak RSS, and checks the accounting: every record the contract accepts
(:func:`driftwire.schemas.accepts`) counted as an event, every other one dead-lettered. Run:
``python -m load_tests.bench_hostile [--events N]``.
"""

from __future__ import annotations

import argparse
import random
import sys
import time
import urllib.request
import uuid

import orjson
from confluent_kafka import Producer
from confluent_kafka.admin import AdminClient, NewTopic
from prometheus_client.parser import text_string_to_metric_families

from driftwire.schemas import PredictionEvent, accepts
from driftwire.stream import hostile, simulate
from driftwire.stream.broker import bus, free_port

from .bench_service import START_UP, driftwire_process, reference_rate


def streams(n: int, seed: int = 3) -> dict[str, list[bytes | None]]:
    rng = random.Random(seed)
    events = simulate.Simulator(seed=seed, start_time=1.7e9).batch(n)
    valid = [orjson.dumps(e) for e in events]
    flood = [orjson.dumps({**e, "model": f"flood-{i}"}) for i, e in enumerate(events)]
    # a twentieth of hostile messages are of 0.1-1 MiB: at most 20,000 keep the broker's memory in bounds
    bad = min(n // 2, 20_000)
    mix = valid[: n - bad] + hostile.messages(rng, valid[0], bad)
    rng.shuffle(mix)
    return {"valid": valid, "model flood": flood, "hostile mix": mix}


def produce(bootstrap: str, topic: str, records: list[bytes | None], partitions: int) -> None:
    admin = AdminClient({"bootstrap.servers": bootstrap})
    admin.create_topics([NewTopic(topic, partitions)])[topic].result()
    producer = Producer({"bootstrap.servers": bootstrap, "linger.ms": 20, "message.max.bytes": 4_000_000})
    for value in records:
        simulate.send(producer, topic, value)
    assert producer.flush(120) == 0


def counters(port: int) -> tuple[float, float]:
    """(valid events, dead letters) counted by the service on ``port`` so far."""
    try:
        text = urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=2).read().decode()
    except OSError:
        return 0.0, 0.0
    samples = [s for f in text_string_to_metric_families(text) for s in f.samples]
    return (sum(s.value for s in samples if s.name == "driftwire_events_total"),
            sum(s.value for s in samples if s.name == "driftwire_invalid_events_total"))


def peak_rss_mib(pid: int) -> float:
    with open(f"/proc/{pid}/status") as f:
        return next(int(line.split()[1]) for line in f if line.startswith("VmHWM:")) / 1024


def driftwire_run(bootstrap: str, topic: str, n: int, **env: str) -> tuple[float, float, tuple[float, float]]:
    """(records/s, peak RSS in MiB, (valid, dead-lettered)) of ``driftwire run`` on ``topic``,
    with ``env`` (DRIFTWIRE_* settings) added to its environment."""
    port = free_port()
    tag = uuid.uuid4().hex[:8]
    topics = {"predictions": topic, **{k: f"{k}-{tag}" for k in ("features", "labels", "alerts", "dlq", "state",
                                                                  "references")}}
    with driftwire_process(bootstrap, port, f"bench-hostile-{tag}", topics, **env) as proc:
        readings = []
        while sum(counts := counters(port)) < n:
            if sum(counts) >= START_UP * n:
                readings.append((time.perf_counter(), sum(counts)))
            if proc.poll() is not None:
                raise RuntimeError(f"driftwire exited with {proc.returncode}")
            time.sleep(0.05)
        peak = peak_rss_mib(proc.pid)
    if len(readings) < 2:
        raise RuntimeError(f"driftwire took {n} records between two readings: give it more records")
    (t0, c0), (t1, c1) = readings[0], readings[-1]
    return (c1 - c0) / (t1 - t0), peak, counts


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--bootstrap-servers")
    parser.add_argument("--events", type=int, default=200_000, help="records per stream")
    parser.add_argument("--partitions", type=int, default=3)
    args = parser.parse_args(argv)
    failed = False
    with bus(args.bootstrap_servers) as bootstrap:
        print(f"{'stream':<28} {'bare records/s':>15} {'driftwire':>12} {'ratio':>6} {'peak RSS':>9}  accounting")
        for name, records in streams(args.events).items():
            topic = f"bench-hostile-{uuid.uuid4().hex[:8]}"
            produce(bootstrap, topic, records, args.partitions)
            accepted = sum(accepts(PredictionEvent, v) for v in records)
            bare = reference_rate("bare", bootstrap, topic, len(records))
            # the flood again with room for 10 models: what an event beyond the caps costs, without
            # the cost of the 6,000 series the default caps let the first thousand models fill
            runs = [("", {}), *([(" (max_models 10)", {"DRIFTWIRE_MAX_MODELS": "10"})] if "flood" in name else [])]
            for label, env in runs:
                rate, peak, (valid, dead) = driftwire_run(bootstrap, topic, len(records), **env)
                exact = valid == accepted and dead == len(records) - accepted
                failed |= not exact
                print(f"{name + label:<28} {bare:15,.0f} {rate:12,.0f} {rate / bare:5.2f}x {peak:6,.0f} MiB  "
                      f"{valid:,.0f} counted / {accepted:,} valid, {dead:,.0f} dead-lettered"
                      f"{'' if exact else '  MISMATCH'}", flush=True)
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
