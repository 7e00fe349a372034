"""Service throughput, measured side by side through one broker and one topic.

Four consumers read the same topic of prediction events with 10 numeric features each, each in
its own consumer group and its own process, one after another:

- ``bare``: a confluent-kafka consumer that only consumes (the ceiling);
- ``driftwire``: ``driftwire run`` at its defaults (online detectors and windows on every
  signal), its rate read from its own metrics;
- ``driftwire, windows off``: the same with ``windows: {enabled: false}``, online detectors only;
- ``river``: a consumer that decodes each event and calls river's ADWIN and PageHinkley once per
  value (what a team would write without driftwire).

The bare and river consumers (:mod:`load_tests.consumers`) import only what they use: in the
benchmark's own process, whose heap holds numba and more, the garbage collector's walks of
that heap would slow them down by a third.

All three use driftwire's librdkafka consumer settings and batch size, so they differ only in
what they do with a batch. Each rate is a steady rate: it leaves out the first ``START_UP`` share
of the events (group join, first fetches, per-series warm-up) and counts from there to the end.
driftwire's is read from its ``/metrics`` every 200 ms (a scrape costs it about 2 ms), between two
readings taken inside the run. The bare consumer and driftwire alternate for ``--rounds`` rounds
(within a round, windows on and off run back to back, each first in turn), and the ratios use
the median rates, because a shared machine's speed drifts from second to second; windows on
against off is also given as the median of each round's own ratio. Run:
``python -m load_tests.bench_service [--events N] [--rounds K]``; it starts the embedded broker
unless ``--bootstrap-servers`` is given.
"""

from __future__ import annotations

import argparse
import contextlib
import os
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.request
import uuid

import numpy as np
import orjson
from confluent_kafka import Producer
from confluent_kafka.admin import AdminClient, NewTopic
from prometheus_client.parser import text_string_to_metric_families

from driftwire.stream.broker import FAST_GROUP_CONFIG, bus, free_port
from driftwire.stream.service import client_config
from driftwire.stream.settings import DetectionConfig, Settings

FEATURES = 10


def produce(bootstrap: str, topic: str, n: int, partitions: int) -> None:
    admin = AdminClient({"bootstrap.servers": bootstrap})
    admin.create_topics([NewTopic(topic, partitions)])[topic].result()
    producer = Producer({"bootstrap.servers": bootstrap, "linger.ms": 20, "batch.num.messages": 10000})
    rng = np.random.default_rng(0)
    values = rng.normal(0.0, 1.0, (n, FEATURES)).round(6)
    for i in range(n):
        event = {
            "event_id": f"e{i}", "model": f"model-{i % 4}", "model_version": "v1", "timestamp": 1.7e9 + i / 1000,
            "features": {f"x{j}": v for j, v in enumerate(values[i].tolist())},
            "prediction": 1,
        }
        while True:
            try:
                producer.produce(topic, orjson.dumps(event), key=event["event_id"].encode())
                break
            except BufferError:
                producer.poll(0.05)
    assert producer.flush(120) == 0


#: the share of the events each rate leaves out: start-up (group join, the first fetches,
#: driftwire's per-series warm-up, river's detectors per key) is not the steady rate
START_UP = 0.2


def reference_rate(kind: str, bootstrap: str, topic: str, n: int) -> float:
    """Events/s of the ``bare`` or ``river`` consumer of :mod:`load_tests.consumers`, run in a
    process of its own and configured as ``driftwire run`` configures its consumer (DRIFTWIRE_*
    included), in a group of its own."""
    settings = Settings(bootstrap_servers=bootstrap)
    conf = client_config(settings, DetectionConfig(), "consumer")
    conf.update({"group.id": f"bench-{kind}-{uuid.uuid4().hex[:8]}", **FAST_GROUP_CONFIG})
    done = subprocess.run([sys.executable, "-m", "load_tests.consumers", kind, orjson.dumps(conf).decode(), topic,
                           str(n), str(settings.batch_size), str(int(START_UP * n))],
                          capture_output=True, text=True, check=True)
    return float(done.stdout.split()[-1])


@contextlib.contextmanager
def driftwire_process(bootstrap: str, port: int, group: str, topics: dict[str, str], config: dict | None = None,
                      **env: str):
    """``driftwire run`` in a process of its own, in ``group``, on ``topics`` (predictions,
    features, alerts, dlq, state -> topic name), its metrics on ``port``, joining its group fast
    on the embedded broker, with ``config`` added to its detection config; stopped (SIGTERM, then
    SIGKILL after 30 s) when the block ends."""
    detection = {"consumer": {k: str(v) for k, v in FAST_GROUP_CONFIG.items()}, **(config or {})}
    with tempfile.NamedTemporaryFile("w", suffix=".yaml", delete=False) as config_file:
        config_file.write(orjson.dumps(detection).decode())
    env = dict(os.environ, DRIFTWIRE_BOOTSTRAP_SERVERS=bootstrap, DRIFTWIRE_GROUP_ID=group,
               DRIFTWIRE_METRICS_PORT=str(port), **{f"DRIFTWIRE_{k.upper()}_TOPIC": v for k, v in topics.items()},
               **env)
    proc = subprocess.Popen([sys.executable, "-m", "driftwire.stream.cli", "--log-level", "WARNING", "run",
                             "--config", config_file.name], env=env)
    try:
        yield proc
    finally:
        proc.terminate()
        try:
            proc.wait(30)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(10)
        os.unlink(config_file.name)


def driftwire_rate(bootstrap: str, topic: str, n: int, config: dict | None = None) -> float:
    """Events/s of ``driftwire run`` in its own process, read from its /metrics."""
    port = free_port()
    tag = uuid.uuid4().hex[:8]
    topics = {"predictions": topic, **{k: f"{k}-{tag}" for k in ("features", "alerts", "dlq", "state", "references")}}
    with driftwire_process(bootstrap, port, f"bench-dw-{tag}", topics, config) as proc:
        readings = []  # (time, events counted) while the run is under way
        while True:
            count = _events_total(port)
            if count >= n:
                break
            if count >= START_UP * n:
                readings.append((time.perf_counter(), count))
            if proc.poll() is not None:
                raise RuntimeError(f"driftwire exited with {proc.returncode}")
            time.sleep(0.2)
        if len(readings) < 2:
            raise RuntimeError(f"driftwire took {n} events between two readings: give it more events")
        (t0, c0), (t1, c1) = readings[0], readings[-1]
        return (c1 - c0) / (t1 - t0)


def _events_total(port: int) -> float:
    try:
        text = urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=2).read().decode()
    except OSError:
        return 0.0
    return sum(s.value for f in text_string_to_metric_families(text) for s in f.samples
               if s.name == "driftwire_events_total")


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--bootstrap-servers")
    parser.add_argument("--events", type=int, default=1_000_000)
    parser.add_argument("--river-events", type=int, default=100_000,
                        help="the river baseline is slow: it reads this many of the events")
    parser.add_argument("--partitions", type=int, default=3)
    parser.add_argument("--rounds", type=int, default=5, help="rounds of bare consumer and driftwire, alternated")
    args = parser.parse_args(argv)
    with bus(args.bootstrap_servers) as bootstrap:
        topic = f"bench-{uuid.uuid4().hex[:8]}"
        print(f"producing {args.events} events ({FEATURES} numeric features each) to {topic} on {bootstrap}")
        produce(bootstrap, topic, args.events, args.partitions)
        bare, dw, off = [], [], []
        for round_ in range(1, args.rounds + 1):
            bare.append(reference_rate("bare", bootstrap, topic, args.events))
            # windows on and off one after the other, in turns first, so that a drift of the
            # machine's speed favours neither
            runs = [None, {"windows": {"enabled": False}}]
            rates = {}
            for config in runs if round_ % 2 else runs[::-1]:
                rates[config is None] = driftwire_rate(bootstrap, topic, args.events, config)
            dw.append(rates[True])
            off.append(rates[False])
            print(f"round {round_}: bare consumer {bare[-1]:10,.0f} events/s   driftwire run {dw[-1]:10,.0f} events/s"
                  f"   ({dw[-1] / bare[-1]:.2f}x)   windows off {off[-1]:10,.0f} events/s   ({dw[-1] / off[-1]:.2f}x)")
        river = reference_rate("river", bootstrap, topic, args.river_events)
        bare_rate, dw_rate, off_rate = statistics.median(bare), statistics.median(dw), statistics.median(off)
        print()
        print(f"bare consumer       {bare_rate:12,.0f} events/s  (median of {args.rounds})")
        print(f"driftwire run       {dw_rate:12,.0f} events/s  (median of {args.rounds})")
        print(f"  windows off       {off_rate:12,.0f} events/s  (median of {args.rounds})")
        print(f"river ADWIN+PH      {river:12,.0f} events/s  ({args.river_events} events)")
        print()
        print(f"driftwire / bare consumer: {dw_rate / bare_rate:6.2f}x   (target >= 0.5x)")
        print(f"driftwire / river:         {dw_rate / river:6.2f}x   (target >= 5x)")
        print(f"windows on / windows off:  {dw_rate / off_rate:6.2f}x   (target >= 0.75x; "
              f"median of the rounds' own ratios {statistics.median(a / b for a, b in zip(dw, off)):.2f}x)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
