"""Recovery from a crash, measured: how long partitions go unread after a replica's SIGKILL.

Two ``driftwire run`` processes share a consumer group on the embedded broker while events
flow to every partition (``--rate`` events/s). Once both consume, one is killed with SIGKILL:

- ``restart``: it is started again at once (as Kubernetes restarts a crashed container);
  measured from the kill until the new process consumes, and until every partition is read
  again; with dynamic membership and with static membership (``group.instance.id``), at
  librdkafka's default session timeout (45 s), a short one, and one that leaves the restart
  time to come back;
- ``handover``: it stays dead (its node is gone); measured from the kill until the survivor
  holds and consumes every partition, at librdkafka's default session timeout (45 s) and at a
  short one, with the range and the cooperative-sticky assignor.

Beside each: the longest time the survivor consumed nothing in that span (a range rebalance
stops every member; a cooperative one only the partitions that move), and whether the survivor
gave up partitions at all. Figures are the embedded broker's (Tansu): its group coordinator
answers a JoinGroup after about half the session timeout and a static member's SyncGroup after
3 s more, where Kafka answers as soon as the group's members are in. Run:
``python -m load_tests.bench_recovery [--only restart|handover] [--session default|6|30]
[--repeat N]``; it starts the embedded broker unless ``--bootstrap-servers`` is given.
"""

from __future__ import annotations

import argparse
import contextlib
import signal
import sys
import threading
import time
import urllib.request
import uuid
from dataclasses import dataclass

from confluent_kafka import Producer
from prometheus_client.parser import text_string_to_metric_families

from driftwire.stream import simulate
from driftwire.stream.broker import bus, free_port
from driftwire.stream.service import ensure_topics
from driftwire.stream.settings import DetectionConfig, Settings

from .bench_service import driftwire_process

#: partitions of each input topic: with two replicas under the range assignor, each reads one
#: partition of each topic
PARTITIONS = 2
INPUT_TOPICS = 3
#: librdkafka's default session.timeout.ms
DEFAULT_SESSION_MS = 45_000


@dataclass(frozen=True)
class Scenario:
    kind: str  # restart or handover
    session_ms: int | None  # None: librdkafka's default
    static: bool = False
    strategy: str = "range"

    @property
    def session(self) -> str:
        ms = self.session_ms or DEFAULT_SESSION_MS
        return f"{ms / 1000:g} s" + (" (default)" if self.session_ms is None else "")

    def consumer(self) -> dict[str, str]:
        conf = {} if self.session_ms is None else {"session.timeout.ms": str(self.session_ms),
                                                   "heartbeat.interval.ms": "500"}
        if self.strategy != "range":
            conf["partition.assignment.strategy"] = self.strategy
        return conf


SCENARIOS = (
    Scenario("restart", None),
    Scenario("restart", None, static=True),
    Scenario("restart", 6_000),
    Scenario("restart", 6_000, static=True),
    Scenario("restart", 30_000),
    Scenario("restart", 30_000, static=True),
    Scenario("handover", None),
    Scenario("handover", 6_000),
    Scenario("handover", 6_000, strategy="cooperative-sticky"),
)


@dataclass
class Outcome:
    first_events: float | None = None  # restart: the new process consumes; handover: the survivor holds all
    all_partitions: float | None = None
    survivor_pause: float = 0.0
    survivor_revoked: bool = False


def produce_steadily(bootstrap: str, topic: str, rate: float, stop: threading.Event) -> None:
    """Events keyed by event_id (so every partition gets its share) at ``rate`` per second."""
    producer = Producer({"bootstrap.servers": bootstrap, "linger.ms": 20})
    simulator = simulate.Simulator(seed=3, start_time=1.7e9)
    simulate.run(producer, topic, simulator, total=None, rate=rate, stop=stop, batch=max(int(rate / 10), 1))
    producer.flush(10)


def sample(port: int) -> tuple[float, float] | None:
    """(events consumed, partitions assigned) of the process serving metrics on ``port``."""
    try:
        text = urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=1).read().decode()
    except OSError:
        return None
    found = {"driftwire_events_total": 0.0, "driftwire_assigned_partitions": 0.0}
    for family in text_string_to_metric_families(text):
        for s in family.samples:
            if s.name in found:
                found[s.name] += s.value
    return found["driftwire_events_total"], found["driftwire_assigned_partitions"]


def wait_for(condition, timeout: float, what: str, interval: float = 0.1):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = condition()
        if value:
            return value
        time.sleep(interval)
    raise TimeoutError(f"no {what} within {timeout:.0f} s")


def run_scenario(bootstrap: str, scenario: Scenario, rate: float, timeout: float) -> Outcome:
    tag = uuid.uuid4().hex[:8]
    topics = {k: f"{k}-{tag}" for k in ("predictions", "features", "labels", "alerts", "dlq", "state", "references")}
    names = {f"{k}_topic": v for k, v in topics.items()}
    ensure_topics(Settings(bootstrap_servers=bootstrap, topic_partitions=PARTITIONS, **names), DetectionConfig())
    total = PARTITIONS * INPUT_TOPICS
    config = {"consumer": scenario.consumer()}
    group = f"recovery-{tag}"

    def replica(name: str, port: int):
        env = {"DRIFTWIRE_GROUP_INSTANCE_ID": f"{group}-{name}"} if scenario.static else {}
        return driftwire_process(bootstrap, port, group, topics, config, **env)

    stop = threading.Event()
    producer = threading.Thread(target=produce_steadily, args=(bootstrap, topics["predictions"], rate, stop))
    producer.start()
    ports = {"survivor": free_port(), "victim": free_port()}
    try:
        with contextlib.ExitStack() as stack:
            stack.enter_context(replica("survivor", ports["survivor"]))
            victim = stack.enter_context(replica("victim", ports["victim"]))

            def shared_and_consuming() -> bool:
                samples = [sample(p) for p in ports.values()]
                return all(s and s[0] > 0 and s[1] > 0 for s in samples) and sum(s[1] for s in samples) == total

            wait_for(shared_and_consuming, timeout, "group of two consuming")
            time.sleep(2.0)  # both in their steady state
            victim.send_signal(signal.SIGKILL)
            victim.wait()
            killed = time.monotonic()
            if scenario.kind == "restart":
                ports["restarted"] = free_port()
                stack.enter_context(replica("victim", ports["restarted"]))
            return watch(ports, scenario.kind, killed, total, timeout)
    finally:
        stop.set()
        producer.join()


def watch(ports: dict[str, int], kind: str, killed: float, total: int, timeout: float) -> Outcome:
    """Poll the survivor (and the restarted process) until every partition is read again."""
    outcome = Outcome()
    before = sample(ports["survivor"])
    held, last_count, last_rise = before[1], before[0], killed
    holding = None  # the survivor's event count when it came to hold every partition
    deadline = killed + timeout
    while time.monotonic() < deadline:
        now = time.monotonic()
        survivor = sample(ports["survivor"])
        if survivor is None:
            raise RuntimeError("the survivor stopped serving its metrics")
        if survivor[0] > last_count:
            outcome.survivor_pause = max(outcome.survivor_pause, now - last_rise)
            last_count, last_rise = survivor[0], now
        outcome.survivor_revoked |= survivor[1] < held
        if kind == "restart":
            restarted = sample(ports["restarted"])
            if restarted and restarted[0] > 0 and outcome.first_events is None:
                outcome.first_events = now - killed
            if outcome.first_events is not None and restarted and survivor[1] + restarted[1] == total:
                outcome.all_partitions = now - killed
        elif survivor[1] != total:
            holding = None
        elif holding is None:
            holding = survivor[0]
        elif survivor[0] > holding:  # it holds every partition and reads on
            outcome.first_events = outcome.all_partitions = now - killed
        if outcome.all_partitions is not None:
            break
        time.sleep(0.1)
    outcome.survivor_pause = max(outcome.survivor_pause, time.monotonic() - last_rise)
    return outcome


def seconds(value: float | None) -> str:
    return "   -   " if value is None else f"{value:6.1f} s"


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--bootstrap-servers")
    parser.add_argument("--only", choices=["restart", "handover"])
    parser.add_argument("--rate", type=float, default=400.0, help="events/s produced while measuring")
    parser.add_argument("--timeout", type=float, default=180.0, help="seconds each phase may take at most")
    parser.add_argument("--session", action="append", choices=["default", "6", "30"],
                        help="only the scenarios at this session timeout (seconds; repeatable)")
    parser.add_argument("--repeat", type=int, default=1, help="runs of each scenario (a row each)")
    args = parser.parse_args(argv)
    sessions = {None if v == "default" else int(v) * 1000 for v in args.session or ()}
    scenarios = [s for s in SCENARIOS if args.only in (None, s.kind) and (not sessions or s.session_ms in sessions)]
    rows = []
    with bus(args.bootstrap_servers) as bootstrap:
        for scenario in scenarios:
            membership = "static" if scenario.static else "dynamic"
            for _ in range(args.repeat):
                print(f"{scenario.kind}: {membership} membership, {scenario.strategy}, session timeout "
                      f"{scenario.session} ...", flush=True)
                outcome = run_scenario(bootstrap, scenario, args.rate, args.timeout)
                rows.append((scenario, membership, outcome))
    print()
    print("after SIGKILL of one of two replicas (times from the kill)")
    print(f"{'scenario':9} {'membership':10} {'assignor':18} {'session timeout':16} {'consuming':>9} "
          f"{'all partitions':>14} {'survivor paused':>15} {'survivor revoked':>16}")
    for scenario, membership, o in rows:
        print(f"{scenario.kind:9} {membership:10} {scenario.strategy:18} {scenario.session:16} "
              f"{seconds(o.first_events):>9} {seconds(o.all_partitions):>14} {seconds(o.survivor_pause):>15} "
              f"{'yes' if o.survivor_revoked else 'no':>16}")
    print("consuming: restart, the new process's first events; handover, the survivor holds and reads every "
          "partition")
    return 0


if __name__ == "__main__":
    sys.exit(main())
