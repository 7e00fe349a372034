"""End-to-end load test of ``driftwire run``: throughput, alert latency and detection delay.

It starts ``driftwire run`` as a subprocess on fresh topics, waits until it is ready (partitions
assigned), then produces prediction events with the synthetic producer of
:mod:`driftwire.stream.simulate` at ``--rate`` events/s (0: as fast as it can) for ``--duration``
seconds. Every ``--injection-every`` seconds a drift starts on another (model, feature) pair: from
the model's next event on, that feature moves by ``--shift`` of its standard deviations. Meanwhile
a consumer reads the alerts topic as alerts arrive and driftwire's ``driftwire_events_total`` is
read from its /metrics once a second.

Reported:

- sustained produced and consumed events/s over the steady part of the run (from the first
  reading at which driftwire has counted events plus ``--warmup`` seconds, to the end of production);
- per injection, the end-to-end alert latency: wall time from the first drifted event being handed
  to the producer to the first alert on that model and feature arriving on the alerts topic;
- per injection, the detection delay in events: events of that model from the first drifted one to
  the one that triggered the alert (the alert's ``details.event_id``; the simulator numbers events
  in the low 64 bits of their ids);
- missed injections (no alert) and false alarms (alerts that match no injection: on a feature that
  was not drifted, or before its drift began). Alerts on the prediction or score of a drifted model
  after its drift began follow from the drift and are counted apart.

Output in ``--out``: ``summary.json``, ``summary.md`` and ``load-test.png``. Run:
``python -m load_tests.harness [--bootstrap-servers HOST:PORT] [--rate 5000] [--duration 120]
[--out load_tests/results]``; it starts the embedded broker unless ``--bootstrap-servers`` is given.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import subprocess
import sys
import threading
import time
import urllib.request
import uuid
from dataclasses import dataclass, field
from datetime import UTC, datetime
from importlib.metadata import version as package_version
from pathlib import Path

import numpy as np
import orjson
from confluent_kafka import Consumer, Producer

from driftwire.stream import simulate
from driftwire.stream.broker import FAST_GROUP_CONFIG, bus, free_port
from load_tests.bench_service import _events_total, driftwire_process

#: (model, numeric feature) pairs drifted in turn
PAIRS = (
    ("fraud-detector", "amount"),
    ("churn-model", "monthly_charges"),
    ("credit-scoring", "age"),
    ("fraud-detector", "distance_km"),
    ("churn-model", "tenure_months"),
    ("credit-scoring", "income"),
)
#: signals of a model that follow from a drift of its features
DERIVED_SIGNALS = {"prediction", "score"}
#: seconds over which the chart's rates are taken
SMOOTH = 5


@dataclass
class Injection:
    model: str
    feature: str
    shift: float
    planned_s: float  # seconds into production at which it is due
    start_event: int = -1  # index, among the model's events, of the first drifted one
    produced_s: float | None = None  # when the batch holding that event was handed to the producer
    alert_s: float | None = None  # when its first alert arrived
    alert: dict | None = None
    trigger_event: int | None = None  # index, among the model's events, of the triggering one

    @property
    def latency_s(self) -> float | None:
        return None if self.alert_s is None or self.produced_s is None else self.alert_s - self.produced_s

    @property
    def delay_events(self) -> int | None:
        return None if self.trigger_event is None else self.trigger_event - self.start_event


@dataclass
class Recorder:
    """What happened during the run, in seconds since production started (``t0``)."""

    t0: float = 0.0
    produced: int = 0
    #: per model: the simulator's global numbers of its events, in order (a model's k-th event is [k])
    numbers: dict[str, list[np.ndarray]] = field(default_factory=dict)
    samples: list[tuple[float, int, float]] = field(default_factory=list)  # (t, produced, consumed)
    alerts: list[tuple[float, dict]] = field(default_factory=list)

    def now(self) -> float:
        return time.monotonic() - self.t0


class RecordingSimulator(simulate.Simulator):
    """The simulator, keeping the last batch so the harness can see which events it produced."""

    last: list[dict] = ()

    def batch(self, n: int) -> list[dict]:
        self.last = super().batch(n)
        return self.last


def _number(event_id: str) -> int:
    """The simulator's running number of an event: the low 64 bits of its id."""
    return int(event_id[-16:], 16)


def _model_counts(sim: simulate.Simulator) -> dict[str, int]:
    return dict(sim._counts)


class Harness:
    def __init__(self, bootstrap: str, rate: float, duration: float, injection_every: float, first_injection: float,
                 shift: float, warmup: float, drain: float, seed: int = 0):
        self.bootstrap, self.rate, self.duration = bootstrap, rate, duration
        self.warmup, self.drain = warmup, drain
        tag = uuid.uuid4().hex[:8]
        self.topics = {k: f"{k}-{tag}" for k in ("predictions", "features", "alerts", "dlq", "state")}
        self.group = f"load-{tag}"
        times = np.arange(first_injection, duration - 5.0, injection_every)
        self.injections = [Injection(*PAIRS[i % len(PAIRS)], shift=shift, planned_s=float(t))
                           for i, t in enumerate(times)]
        self.sim = RecordingSimulator(seed=seed, events_per_second=rate or 20_000.0)
        self.rec = Recorder()
        self.stop = threading.Event()
        self.done = threading.Event()
        self.port = free_port()
        self.proc: subprocess.Popen | None = None
        self._flat: dict[str, tuple[int, np.ndarray]] = {}  # per model: (arrays joined, their concatenation)

    # -- driftwire ------------------------------------------------------------------------
    def wait_until_ready(self, timeout: float = 60.0) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(f"driftwire exited with {self.proc.returncode} while starting")
            try:
                if urllib.request.urlopen(f"http://127.0.0.1:{self.port}/readyz", timeout=2).status == 200:
                    return
            except OSError:
                pass
            time.sleep(0.2)
        raise RuntimeError(f"driftwire not ready after {timeout:.0f} s")

    # -- background readers -----------------------------------------------------------------
    def read_alerts(self, ready: threading.Event) -> None:
        consumer = Consumer({"bootstrap.servers": self.bootstrap, "group.id": f"{self.group}-alerts",
                             "auto.offset.reset": "earliest", "enable.auto.commit": False, **FAST_GROUP_CONFIG})
        consumer.subscribe([self.topics["alerts"]], on_assign=lambda c, parts: ready.set())
        try:
            while not self.done.is_set():
                msg = consumer.poll(0.05)
                if msg is None:
                    continue
                if msg.error():
                    continue
                self.rec.alerts.append((self.rec.now(), orjson.loads(msg.value())))
        finally:
            consumer.close()

    def sample(self) -> None:
        next_at = time.monotonic()
        while not self.done.is_set():
            consumed = _events_total(self.port)
            self.rec.samples.append((self.rec.now(), self.rec.produced, consumed))
            next_at += 1.0
            self.done.wait(max(0.0, next_at - time.monotonic()))

    # -- production ------------------------------------------------------------------------
    def on_batch(self, sent: int) -> None:
        now = self.rec.now()
        counts_after = _model_counts(self.sim)
        by_model: dict[str, list[int]] = {}
        for event in self.sim.last:
            by_model.setdefault(event["model"], []).append(_number(event["event_id"]))
        for model, numbers in by_model.items():
            self.rec.numbers.setdefault(model, []).append(np.sort(np.array(numbers, dtype=np.int64)))
        for inj in self.injections:
            if inj.start_event >= 0 and inj.produced_s is None and counts_after[inj.model] > inj.start_event:
                inj.produced_s = now
        self.rec.produced = sent
        # injections due start with the model's next event
        due = [inj for inj in self.injections if inj.start_event < 0 and now >= inj.planned_s]
        for inj in due:
            inj.start_event = counts_after.get(inj.model, 0)
            self.sim.drifts = (*self.sim.drifts, simulate.Drift(inj.model, inj.feature, inj.start_event, inj.shift))
        if now >= self.duration:
            self.stop.set()

    def run(self) -> dict:
        with driftwire_process(self.bootstrap, self.port, self.group, self.topics,
                               DRIFTWIRE_METRICS_HOST="127.0.0.1") as self.proc:
            self.wait_until_ready()
            alerts_ready = threading.Event()
            threads = [threading.Thread(target=self.read_alerts, args=(alerts_ready,), daemon=True),
                       threading.Thread(target=self.sample, daemon=True)]
            try:
                threads[0].start()
                alerts_ready.wait(30)
                producer = Producer({"bootstrap.servers": self.bootstrap, "linger.ms": 5,
                                     "queue.buffering.max.messages": 200_000, "log_level": 4})
                self.rec.t0 = time.monotonic()
                threads[1].start()
                batch = 500 if self.rate == 0 else max(1, min(500, int(self.rate / 20)))
                simulate.run(producer, self.topics["predictions"], self.sim, total=None, rate=self.rate,
                             stop=self.stop, batch=batch, on_batch=self.on_batch)
                self.production_end = self.rec.now()
                # let driftwire catch up and the last injections be detected
                deadline = time.monotonic() + self.drain
                while time.monotonic() < deadline:
                    caught_up = bool(self.rec.samples) and self.rec.samples[-1][2] >= self.rec.produced
                    self._match()
                    if caught_up and all(inj.alert is not None for inj in self.injections):
                        break
                    if self.proc.poll() is not None:
                        raise RuntimeError(f"driftwire exited with {self.proc.returncode} during the run")
                    time.sleep(0.5)
                time.sleep(1.1)  # one more reading
            finally:
                self.done.set()
                for t in threads:
                    t.join(10)
        self._match()
        return self.summary()

    # -- analysis --------------------------------------------------------------------------
    def _index(self, model: str, number: int) -> int | None:
        """Index among ``model``'s events of the event with running number ``number``."""
        arrays = self.rec.numbers.get(model)
        if not arrays:
            return None
        if self._flat.get(model, (0,))[0] != len(arrays):
            self._flat[model] = (len(arrays), np.concatenate(arrays))
        flat = self._flat[model][1]
        k = int(np.searchsorted(flat, number))
        return k if k < len(flat) and flat[k] == number else None

    def _match(self) -> None:
        """Assign alerts to injections: the first alert on each drifted (model, feature) at or after
        its first drifted event. The others are classified in ``summary``."""
        for inj in self.injections:
            if inj.alert is not None or inj.start_event < 0:
                continue
            for arrived, alert in list(self.rec.alerts):
                if alert["model"] != inj.model or alert["signal"] != inj.feature:
                    continue
                k = self._index(inj.model, _number(alert["details"]["event_id"]))
                if k is not None and k >= inj.start_event:
                    inj.alert, inj.alert_s, inj.trigger_event = alert, arrived, k
                    break

    def _classify(self) -> tuple[list[dict], list[dict]]:
        follow_on, false_alarms = [], []
        for arrived, alert in self.rec.alerts:
            k = self._index(alert["model"], _number(alert["details"]["event_id"]))
            drifted = [inj for inj in self.injections
                       if inj.model == alert["model"] and inj.start_event >= 0 and k is not None
                       and k >= inj.start_event]
            entry = {"arrived_s": round(arrived, 3), "model": alert["model"], "signal": alert["signal"],
                     "detector": alert["detector"], "severity": alert["severity"], "model_event": k,
                     "source": alert["source"]}
            if any(inj.feature == alert["signal"] for inj in drifted):
                continue  # detection of an injection (its first alert, or a later one)
            if drifted and alert["signal"] in DERIVED_SIGNALS:
                follow_on.append(entry)
            else:
                false_alarms.append(entry)
        return follow_on, false_alarms

    def _rates(self) -> dict:
        samples = self.rec.samples
        started = next((t for t, _, c in samples if c > 0), None)
        steady = [s for s in samples if started is not None and started + self.warmup <= s[0] <= self.production_end]
        if len(steady) < 2:
            raise RuntimeError("too short a run for a steady rate: lengthen --duration or shorten --warmup")
        (t0, p0, c0), (t1, p1, c1) = steady[0], steady[-1]
        return {"steady_from_s": round(t0, 2), "steady_to_s": round(t1, 2),
                "produced_events_per_s": round((p1 - p0) / (t1 - t0), 1),
                "consumed_events_per_s": round((c1 - c0) / (t1 - t0), 1)}

    def summary(self) -> dict:
        follow_on, false_alarms = self._classify()
        injections = []
        for inj in self.injections:
            if inj.start_event < 0:
                continue
            injections.append({
                "model": inj.model, "feature": inj.feature, "shift_std": inj.shift,
                "first_drifted_event": inj.start_event,
                "first_drifted_produced_s": None if inj.produced_s is None else round(inj.produced_s, 3),
                "detected": inj.alert is not None,
                "alert_arrived_s": None if inj.alert_s is None else round(inj.alert_s, 3),
                "latency_s": None if inj.latency_s is None else round(inj.latency_s, 3),
                "delay_events": inj.delay_events,
                "detector": inj.alert and inj.alert["detector"], "severity": inj.alert and inj.alert["severity"],
                "alert_source": inj.alert and inj.alert["source"],
            })
        latencies = [i["latency_s"] for i in injections if i["latency_s"] is not None]
        delays = [i["delay_events"] for i in injections if i["delay_events"] is not None]
        final = self.rec.samples[-1] if self.rec.samples else (0, 0, 0)
        return {
            "config": {"bootstrap_servers": self.bootstrap, "rate": self.rate, "duration_s": self.duration,
                       "warmup_s": self.warmup, "topics": self.topics},
            "throughput": {**self._rates(), "produced_total": self.rec.produced, "consumed_total": int(final[2]),
                           "production_s": round(self.production_end, 2)},
            "latency_s": _percentiles(latencies),
            "delay_events": _percentiles(delays),
            "injections": injections,
            "missed": [f"{i['model']}/{i['feature']}" for i in injections if not i["detected"]],
            "false_alarms": false_alarms,
            "follow_on_alerts": len(follow_on),
            "alerts_total": len(self.rec.alerts),
            "samples": [{"t": round(t, 3), "produced": p, "consumed": c} for t, p, c in self.rec.samples],
        }


def _percentiles(values: list[float]) -> dict:
    if not values:
        return {"count": 0, "p50": None, "p99": None, "max": None}
    arr = np.asarray(values, dtype=float)
    return {"count": len(values), "p50": round(float(np.percentile(arr, 50)), 3),
            "p99": round(float(np.percentile(arr, 99)), 3), "max": round(float(arr.max()), 3)}


# -- output ----------------------------------------------------------------------------------
def machine() -> dict:
    cpu = platform.processor() or platform.machine()
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    ram = None
    try:
        ram = round(os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES") / 2**30, 1)
    except (ValueError, OSError, AttributeError):
        pass
    return {"platform": platform.platform(), "cpu": cpu, "cpus": os.cpu_count(), "ram_gib": ram,
            "python": platform.python_version(), "driftwire": package_version("driftwire")}


def plot(summary: dict, path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    s = summary["samples"]
    t = np.array([x["t"] for x in s])
    produced = np.array([x["produced"] for x in s], dtype=float)
    consumed = np.array([x["consumed"] for x in s], dtype=float)
    fig, ax = plt.subplots(figsize=(12, 5.5), dpi=110)
    # driftwire counts a whole batch at once: per-second rates jump by a batch, so the lines are the
    # rates over the last SMOOTH seconds and the per-second rates are drawn faint behind them
    for counts, color, label in ((produced, "tab:blue", "produced"),
                                 (consumed, "tab:orange", "consumed (driftwire_events_total)")):
        if len(t) > 1:
            ax.plot(t[1:], np.diff(counts) / np.diff(t), color=color, lw=0.6, alpha=0.3)
        k = min(SMOOTH, len(t) - 1)
        if k > 0:
            ax.plot(t[k:], (counts[k:] - counts[:-k]) / (t[k:] - t[:-k]), color=color, lw=1.6,
                    label=f"{label} events/s ({k} s window; faint: per second)")
    thr = summary["throughput"]
    ax.axvspan(thr["steady_from_s"], thr["steady_to_s"], color="0.92", zorder=0, label="steady part")
    top = ax.get_ylim()[1] or 1.0
    for n, inj in enumerate(summary["injections"]):
        if inj["first_drifted_produced_s"] is None:
            continue
        x0 = inj["first_drifted_produced_s"]
        ax.axvline(x0, color="tab:red", ls="--", lw=1)
        y = top * (0.93 - 0.09 * (n % 4))
        if inj["detected"]:
            x1 = inj["alert_arrived_s"]
            ax.axvline(x1, color="tab:green", ls="-", lw=1)
            ax.annotate("", xy=(x1, y), xytext=(x0, y), arrowprops={"arrowstyle": "->", "color": "k", "lw": 0.8})
            text = f"{inj['model']}/{inj['feature']}\n{inj['latency_s']:.2f} s, {inj['delay_events']} events"
        else:
            text = f"{inj['model']}/{inj['feature']}\nMISSED"
        ax.text(x0, y, " " + text, fontsize=7, va="bottom", ha="left")
    ax.plot([], [], color="tab:red", ls="--", lw=1, label="drift injected (first drifted event produced)")
    ax.plot([], [], color="tab:green", lw=1, label="first alert arrived")
    ax.set_ylim(0, top * 1.08)
    ax.set_xlabel("seconds since production started")
    ax.set_ylabel("events/s")
    lat = summary["latency_s"]
    title = (f"driftwire load test: {thr['produced_events_per_s']:,.0f} produced / "
             f"{thr['consumed_events_per_s']:,.0f} consumed events/s (steady)")
    if lat["count"]:
        title += f"; alert latency p50 {lat['p50']:.2f} s, p99 {lat['p99']:.2f} s"
    ax.set_title(title, fontsize=10)
    ax.legend(loc="lower left", fontsize=7)
    ax.grid(alpha=0.3)
    fig.tight_layout()
    fig.savefig(path)
    plt.close(fig)


def markdown(summary: dict) -> str:
    thr, lat, delay, m = summary["throughput"], summary["latency_s"], summary["delay_events"], summary["machine"]
    lines = [
        "# driftwire load test",
        "",
        f"Command: `{summary['command']}`  ",
        f"Run at: {summary['started_at']}",
        "",
        f"Machine: {m['platform']}; {m['cpu']} x {m['cpus']} CPUs; {m['ram_gib']} GiB RAM; "
        f"Python {m['python']}; driftwire {m['driftwire']}",
        "",
        "| | |",
        "|---|---|",
        f"| produced (steady) | {thr['produced_events_per_s']:,.0f} events/s |",
        f"| consumed by driftwire (steady) | {thr['consumed_events_per_s']:,.0f} events/s |",
        f"| steady part | {thr['steady_from_s']:.1f} s to {thr['steady_to_s']:.1f} s |",
        f"| events produced / counted by driftwire | {thr['produced_total']:,} / {thr['consumed_total']:,} |",
        f"| alert latency p50 / p99 / max | {_fmt(lat['p50'])} / {_fmt(lat['p99'])} / {_fmt(lat['max'])} s |",
        f"| detection delay p50 / p99 / max | {_fmt(delay['p50'], 0)} / {_fmt(delay['p99'], 0)} / "
        f"{_fmt(delay['max'], 0)} events of the model |",
        f"| injections detected | {lat['count']} of {len(summary['injections'])} |",
        f"| missed | {', '.join(summary['missed']) or 'none'} |",
        f"| false alarms | {len(summary['false_alarms'])} |",
        f"| alerts (all, incl. follow-on on prediction/score) | {summary['alerts_total']} "
        f"({summary['follow_on_alerts']} follow-on) |",
        "",
        "| injection | shift | first drifted event | produced at | alert at | latency | delay (events) | detector |",
        "|---|---|---|---|---|---|---|---|",
    ]
    for i in summary["injections"]:
        lines.append(f"| {i['model']}/{i['feature']} | {i['shift_std']} std | {i['first_drifted_event']} | "
                     f"{_fmt(i['first_drifted_produced_s'])} s | {_fmt(i['alert_arrived_s'])} s | "
                     f"{_fmt(i['latency_s'])} s | {_fmt(i['delay_events'], 0)} | "
                     f"{i['detector'] or '-'} ({i['severity'] or '-'}) |")
    lines += ["", "![events/s and alerts](load-test.png)", ""]
    return "\n".join(lines)


def _fmt(value, digits: int = 2) -> str:
    return "-" if value is None else f"{value:,.{digits}f}"


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--bootstrap-servers", help="default: start the embedded broker")
    parser.add_argument("--rate", type=float, default=5000.0, help="events/s to produce; 0 = as fast as possible")
    parser.add_argument("--duration", type=float, default=120.0, help="seconds of production")
    parser.add_argument("--out", type=Path, default=Path("load_tests/results"))
    parser.add_argument("--injection-every", type=float, default=25.0, help="seconds between drift injections")
    parser.add_argument("--first-injection", type=float, default=15.0, help="seconds before the first injection")
    parser.add_argument("--shift", type=float, default=2.0, help="drift size, in standard deviations of the feature")
    parser.add_argument("--warmup", type=float, default=5.0,
                        help="seconds after driftwire's first counted events left out of the steady rates")
    parser.add_argument("--drain", type=float, default=30.0,
                        help="most seconds to wait after production for driftwire to catch up and alert")
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args(argv)
    started_at = datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
    with bus(args.bootstrap_servers) as bootstrap:
        harness = Harness(bootstrap, args.rate, args.duration, args.injection_every, args.first_injection,
                          args.shift, args.warmup, args.drain, args.seed)
        print(f"driftwire load test: {args.rate:g} events/s for {args.duration:g} s, "
              f"{len(harness.injections)} drift injections, bus {bootstrap}", flush=True)
        summary = harness.run()
    summary = {"command": " ".join(["python -m load_tests.harness", *(argv if argv is not None else sys.argv[1:])]),
               "started_at": started_at, "machine": machine(), **summary}
    args.out.mkdir(parents=True, exist_ok=True)
    (args.out / "summary.json").write_text(json.dumps(summary, indent=2) + "\n")
    plot(summary, args.out / "load-test.png")
    text = markdown(summary)
    (args.out / "summary.md").write_text(text)
    print(text)
    return 0


if __name__ == "__main__":
    sys.exit(main())
