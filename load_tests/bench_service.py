"""Service throughput, measured side by side through one broker.

The events, produced once, are those of ``--mix``:

- ``numeric`` (the default): one topic of prediction events with 10 numeric features each;
- ``realistic``: prediction events of 4 models with 6 numeric, 2 string (``country``, ``device``)
  and 1 boolean feature, a class prediction (``churn`` or ``stay``) and a ``score``, and a label
  for every prediction (the same class 85% of the time) sent 100-3,000 predictions after it, to a
  labels topic co-partitioned with the predictions topic (both keyed by ``event_id``). Every
  consumer reads both topics, and its rate counts predictions and labels alike.

Four consumers read them, each in its own consumer group and its own process, one after another:

- ``bare``: a confluent-kafka consumer that only consumes (the ceiling);
- ``driftwire``: ``driftwire run`` at its defaults (online detectors and windows on every
  signal; the label join once labels come), its rate read from its own metrics;
- ``driftwire, windows off`` (numeric mix only): the same with ``windows: {enabled: false}``,
  online detectors only;
- ``river``: a consumer that decodes each event and calls river's ADWIN and PageHinkley once per
  numeric feature value (what a team would write without driftwire).

The bare and river consumers (:mod:`load_tests.consumers`) import only what they use: in the
benchmark's own process, whose heap holds numba and more, the garbage collector's walks of
that heap would slow them down by a third.

All three use driftwire's librdkafka consumer settings and batch size, so they differ only in
what they do with a batch. Each rate is a steady rate: it leaves out the first ``START_UP`` share
of the events (group join, first fetches, per-series warm-up) and counts from there to the end.
driftwire's is read from its ``/metrics`` every 200 ms (a scrape costs it about 2 ms), between two
readings taken inside the run. The bare consumer and driftwire alternate for ``--rounds`` rounds
(within a round of the numeric mix, windows on and off run back to back, each first in turn),
and the ratios use the median rates, because a shared machine's speed drifts from second to
second; windows on against off is also given as the median of each round's own ratio. Run:
``python -m load_tests.bench_service [--mix {numeric,realistic}] [--events N] [--rounds K]`` (N
predictions); it starts the embedded broker unless ``--bootstrap-servers`` is given.
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

#: what the events of each ``--mix`` carry, as the output names them
MIXES = {
    "numeric": f"{FEATURES} numeric features, no labels",
    "realistic": "6 numeric, 2 string, 1 boolean feature, class prediction + score, every prediction labelled",
}
NUMERIC = 6
COUNTRIES = ("US", "GB", "DE", "FR", "IN", "BR", "JP", "CA", "ES", "MX")
COUNTRY_WEIGHTS = (0.30, 0.15, 0.12, 0.10, 0.09, 0.08, 0.06, 0.05, 0.03, 0.02)
DEVICES = ("mobile", "desktop", "tablet", "tv")
DEVICE_WEIGHTS = (0.55, 0.30, 0.12, 0.03)
#: a label is sent this many predictions (uniform, both ends included) after its prediction
LABEL_DELAY = (100, 3000)
#: the share of the labels equal to their prediction
AGREEMENT = 0.85


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


def produce_realistic(bootstrap: str, predictions: str, labels: str, n: int, partitions: int) -> None:
    """``n`` prediction events of the realistic mix to ``predictions`` and a label for each to
    ``labels``, ``LABEL_DELAY`` predictions later; both topics have ``partitions`` partitions and
    both kinds of record are keyed by ``event_id``, so a label lands in its prediction's partition.
    Event time runs at 1,000 predictions a second; a label's is the time it is sent."""
    admin = AdminClient({"bootstrap.servers": bootstrap})
    for f in admin.create_topics([NewTopic(predictions, partitions), NewTopic(labels, partitions)]).values():
        f.result()
    producer = Producer({"bootstrap.servers": bootstrap, "linger.ms": 20, "batch.num.messages": 10000})
    rng = np.random.default_rng(0)
    x = rng.normal(0.0, 1.0, (n, NUMERIC)).round(6).tolist()
    country = np.array(COUNTRIES)[rng.choice(len(COUNTRIES), n, p=COUNTRY_WEIGHTS)].tolist()
    device = np.array(DEVICES)[rng.choice(len(DEVICES), n, p=DEVICE_WEIGHTS)].tolist()
    returning = (rng.random(n) < 0.4).tolist()
    p_churn = rng.beta(2.0, 5.0, n)
    churn = p_churn >= 0.5
    predicted = np.where(churn, "churn", "stay")
    score = np.where(churn, p_churn, 1.0 - p_churn).round(4).tolist()  # the predicted class's probability
    label = np.where(rng.random(n) < AGREEMENT, predicted, np.where(churn, "stay", "churn")).tolist()
    predicted = predicted.tolist()
    due = (np.arange(n) + rng.integers(LABEL_DELAY[0], LABEL_DELAY[1] + 1, n)).tolist()
    order = sorted(range(n), key=due.__getitem__)  # the labels in the order they are sent
    names = [f"x{j}" for j in range(NUMERIC)]

    def send(topic: str, event: dict) -> None:
        while True:
            try:
                producer.produce(topic, orjson.dumps(event), key=event["event_id"].encode())
                return
            except BufferError:
                producer.poll(0.05)

    sent = 0  # labels sent
    for step in range(n + LABEL_DELAY[1] + 1):
        if step < n:
            send(predictions, {
                "event_id": f"e{step}", "model": f"model-{step % 4}", "model_version": "v1",
                "timestamp": 1.7e9 + step / 1000,
                "features": {**dict(zip(names, x[step])), "country": country[step], "device": device[step],
                             "is_returning": returning[step]},
                "prediction": predicted[step], "score": score[step]})
        while sent < n and due[order[sent]] <= step:
            i = order[sent]
            sent += 1
            send(labels, {"event_id": f"e{i}", "model": f"model-{i % 4}", "timestamp": 1.7e9 + step / 1000,
                          "label": label[i]})
    assert sent == n
    assert producer.flush(120) == 0


#: the share of the events each rate leaves out: start-up (group join, the first fetches,
#: driftwire's per-series warm-up, river's detectors per key) is not the steady rate
START_UP = 0.2


def reference_rate(kind: str, bootstrap: str, topic: str | list[str], n: int) -> float:
    """Events/s of the ``bare`` or ``river`` consumer of :mod:`load_tests.consumers` on ``topic``
    (or on several topics together, ``n`` counting the events of all), run in a process of its own
    and configured as ``driftwire run`` configures its consumer (DRIFTWIRE_* included), in a group
    of its own."""
    topics = topic if isinstance(topic, str) else ",".join(topic)
    settings = Settings(bootstrap_servers=bootstrap)
    conf = client_config(settings, DetectionConfig(), "consumer")
    conf.update({"group.id": f"bench-{kind}-{uuid.uuid4().hex[:8]}", **FAST_GROUP_CONFIG})
    done = subprocess.run([sys.executable, "-m", "load_tests.consumers", kind, orjson.dumps(conf).decode(), topics,
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


#: seconds without progress, once events are counted, after which a driftwire run is reported as stalled
STALL = 60.0


def driftwire_rate(bootstrap: str, topic: str, n: int, config: dict | None = None, labels: str | None = None,
                   one_by_one: list | None = None) -> float:
    """Events/s of ``driftwire run`` in its own process on the predictions ``topic`` and the
    ``labels`` topic (if none, a topic of its own that stays empty), read from its /metrics; ``n``
    counts the events of both. ``one_by_one`` gets the records its scanner left to the
    per-event path."""
    port = free_port()
    tag = uuid.uuid4().hex[:8]
    topics = {"predictions": topic, "labels": labels or f"labels-{tag}",
              **{k: f"{k}-{tag}" for k in ("features", "alerts", "dlq", "state", "references")}}
    with driftwire_process(bootstrap, port, f"bench-dw-{tag}", topics, config) as proc:
        readings = []  # (time, events counted) while the run is under way
        moved, last = time.monotonic(), 0.0
        while True:
            count = _events_total(port)
            if count >= n:
                break
            if count >= START_UP * n:
                readings.append((time.perf_counter(), count))
            if proc.poll() is not None:
                raise RuntimeError(f"driftwire exited with {proc.returncode}")
            if count != last:
                moved, last = time.monotonic(), count
            elif count and time.monotonic() - moved > STALL:
                raise RuntimeError(f"driftwire stopped at {count:,.0f} of {n:,} events for {STALL:.0f} s")
            time.sleep(0.2)
        if len(readings) < 2:
            raise RuntimeError(f"driftwire took {n} events between two readings: give it more events")
        if one_by_one is not None:
            one_by_one.append(_counter(port, "driftwire_events_read_one_by_one_total"))
        (t0, c0), (t1, c1) = readings[0], readings[-1]
        return (c1 - c0) / (t1 - t0)


def _events_total(port: int) -> float:
    return _counter(port, "driftwire_events_total")


def _counter(port: int, name: str) -> float:
    try:
        text = urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=2).read().decode()
    except OSError:
        return 0.0
    return sum(s.value for f in text_string_to_metric_families(text) for s in f.samples if s.name == name)


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--bootstrap-servers")
    parser.add_argument("--mix", choices=tuple(MIXES), default="numeric",
                        help="the events: numeric features only, or mixed features with every prediction labelled")
    parser.add_argument("--events", type=int, default=1_000_000, help="predictions (the realistic mix: as many labels)")
    parser.add_argument("--river-events", type=int, default=100_000,
                        help="the river baseline is slow: it reads this many of the events")
    parser.add_argument("--partitions", type=int, default=3)
    parser.add_argument("--rounds", type=int, default=5, help="rounds of bare consumer and driftwire, alternated")
    args = parser.parse_args(argv)
    mix = f"{args.mix} mix: {MIXES[args.mix]}"
    realistic = args.mix == "realistic"
    with bus(args.bootstrap_servers) as bootstrap:
        tag = uuid.uuid4().hex[:8]
        if realistic:
            topic, labels = f"bench-predictions-{tag}", f"bench-labels-{tag}"
            topics, n = [topic, labels], 2 * args.events
            print(f"producing {args.events:,} predictions and {args.events:,} labels ({mix}) to {topic} and {labels} "
                  f"on {bootstrap}")
            start = time.perf_counter()
            produce_realistic(bootstrap, topic, labels, args.events, args.partitions)
        else:
            topic, labels = f"bench-{tag}", None
            topics, n = [topic], args.events
            print(f"producing {args.events:,} events ({mix}) to {topic} on {bootstrap}")
            start = time.perf_counter()
            produce(bootstrap, topic, args.events, args.partitions)
        print(f"produced {n:,} events in {time.perf_counter() - start:.1f} s; each run reads all {n:,}")
        bare, dw, off, one_by_one = [], [], [], []
        for round_ in range(1, args.rounds + 1):
            bare.append(reference_rate("bare", bootstrap, topics, n))
            if realistic:  # windows on only
                dw.append(driftwire_rate(bootstrap, topic, n, labels=labels, one_by_one=one_by_one))
                print(f"round {round_} ({args.mix} mix): bare consumer {bare[-1]:10,.0f} events/s   "
                      f"driftwire run {dw[-1]:10,.0f} events/s   ({dw[-1] / bare[-1]:.2f}x)   "
                      f"read one by one {one_by_one[-1]:,.0f} of {n:,} ({one_by_one[-1] / n:.3%})")
                continue
            # windows on and off one after the other, in turns first, so that a drift of the
            # machine's speed favours neither
            runs = [None, {"windows": {"enabled": False}}]
            rates = {}
            for config in runs if round_ % 2 else runs[::-1]:
                rates[config is None] = driftwire_rate(bootstrap, topic, n, config)
            dw.append(rates[True])
            off.append(rates[False])
            print(f"round {round_} ({args.mix} mix): bare consumer {bare[-1]:10,.0f} events/s   "
                  f"driftwire run {dw[-1]:10,.0f} events/s   ({dw[-1] / bare[-1]:.2f}x)   "
                  f"windows off {off[-1]:10,.0f} events/s   ({dw[-1] / off[-1]:.2f}x)")
        river_events = min(args.river_events, n)
        river = reference_rate("river", bootstrap, topics, river_events)
        bare_rate, dw_rate = statistics.median(bare), statistics.median(dw)
        print()
        print(f"{mix}; events/s count {'predictions and labels' if realistic else 'predictions'}")
        print(f"bare consumer       {bare_rate:12,.0f} events/s  (median of {args.rounds})")
        print(f"driftwire run       {dw_rate:12,.0f} events/s  (median of {args.rounds})")
        if not realistic:
            print(f"  windows off       {statistics.median(off):12,.0f} events/s  (median of {args.rounds})")
        print(f"river ADWIN+PH      {river:12,.0f} events/s  ({river_events} events; numeric feature values only)")
        print()
        print(f"driftwire / bare consumer ({mix}): {dw_rate / bare_rate:.2f}x   (target >= 0.5x)")
        print(f"driftwire / river:         {dw_rate / river:6.2f}x   (target >= 5x)")
        if not realistic:
            off_rate = statistics.median(off)
            print(f"windows on / windows off:  {dw_rate / off_rate:6.2f}x   (target >= 0.75x; "
                  f"median of the rounds' own ratios {statistics.median(a / b for a, b in zip(dw, off)):.2f}x)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
