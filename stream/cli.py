"""The ``driftwire`` command: run, simulate, demo, broker, warm-up, profile."""

from __future__ import annotations

import argparse
import logging
import os
import signal
import sys
import threading

from driftwire.schemas.reference import MAX_BINS, MAX_CATEGORIES


def _settings(args):
    from .settings import Settings

    overrides = {}
    for name in ("bootstrap_servers", "group_id", "metrics_port", "config"):
        value = getattr(args, name, None)
        if value is not None:
            overrides[name] = value
    return Settings(**overrides)


def _bounded(lo: int, hi: int):
    def parse(text: str) -> int:
        value = int(text)
        if not lo <= value <= hi:
            raise argparse.ArgumentTypeError(f"{value} is not between {lo} and {hi}")
        return value
    return parse


def _parse_drift(text: str):
    """MODEL:FEATURE@EVENT[:SHIFT[:SCALE]], e.g. fraud-detector:amount@20000:1.5"""
    from .simulate import Drift

    try:
        target, schedule = text.split("@", 1)
        model, feature = target.split(":", 1)
        start, *rest = schedule.split(":")
        shift = float(rest[0]) if rest else 1.0
        scale = float(rest[1]) if len(rest) > 1 else 1.0
        return Drift(model, feature, int(start), shift, scale)
    except ValueError:
        raise argparse.ArgumentTypeError(
            f"bad drift {text!r}: expected MODEL:FEATURE@EVENT[:SHIFT[:SCALE]]"
        ) from None


def _stop_on_signals() -> threading.Event:
    """An event set by SIGTERM or SIGINT, installed before any slow start-up work."""
    stop = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: stop.set())
    signal.signal(signal.SIGINT, lambda *_: stop.set())
    return stop


def cmd_run(args) -> int:
    stop = _stop_on_signals()
    from .service import DriftService
    from .settings import load_config

    settings = _settings(args)
    config = load_config(settings.config)
    return DriftService(settings, config, stop=stop).run()


def cmd_simulate(args) -> int:
    from confluent_kafka import Producer

    from . import simulate

    settings = _settings(args)
    producer = Producer({"bootstrap.servers": settings.bootstrap_servers, "linger.ms": 20,
                         **settings.kafka_properties()})
    sim = simulate.Simulator(drifts=tuple(args.drift), seed=args.seed,
                             events_per_second=args.rate or 1000.0)
    stop = _stop_on_signals()
    topic = args.topic or settings.predictions_topic
    sent = simulate.run(producer, topic, sim, total=args.events, rate=args.rate, stop=stop)
    print(f"produced {sent} events to {topic} on {settings.bootstrap_servers}")
    return 0


def cmd_demo(args) -> int:
    from .demo import run_demo

    return run_demo(args)


def cmd_broker(args) -> int:
    from .broker import EmbeddedBroker

    stop = _stop_on_signals()
    broker = EmbeddedBroker(host=args.host, port=args.port)
    with broker:
        print(f"Kafka-protocol broker (Tansu, in memory) on {broker.bootstrap_servers}; Ctrl-C stops it")
        print(f"  export DRIFTWIRE_BOOTSTRAP_SERVERS={broker.bootstrap_servers}", flush=True)
        while not stop.wait(0.5):
            if not broker.running:
                print(f"broker exited: {broker.log_tail()}", file=sys.stderr)
                return 1
    return 0


def cmd_warm_up(args) -> int:
    """Compile every numba kernel into numba's cache (an image build runs this once), so that
    ``driftwire run`` starts in seconds whatever detectors its config names."""
    from .service import warm_up_kernels

    print(f"numba kernels compiled or loaded in {warm_up_kernels():.1f} s")
    return 0


def cmd_profile(args) -> int:
    """Write the reference profile of a training data file (see :mod:`.profiling`)."""
    from .profiling import build_profile

    try:
        profile = build_profile(args.data, args.model, args.model_version, bins=args.bins, top_k=args.top_k,
                                label_column=args.label_column)
    except (OSError, ValueError) as exc:
        print(f"driftwire profile: {exc}", file=sys.stderr)
        return 2
    text = profile.model_dump_json(indent=2)
    if args.out == "-":
        print(text)
    else:
        with open(args.out, "w", encoding="utf-8") as f:
            f.write(text + "\n")
        kinds = [s.type for s in profile.signals.values()]
        print(f"{args.out}: {profile.key}, {profile.rows} rows, {kinds.count('numeric')} numeric and "
              f"{kinds.count('categorical')} categorical signals, "
              f"{'no labels' if profile.label is None else profile.label.type + ' labels'}")
    return 0


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="driftwire", description="Streaming drift detection on a Kafka bus.")
    parser.add_argument("--log-level", default=os.environ.get("DRIFTWIRE_LOG_LEVEL", "INFO"))
    sub = parser.add_subparsers(dest="command", required=True)

    def bus_options(p, metrics=False):
        p.add_argument("--bootstrap-servers", help="default: $DRIFTWIRE_BOOTSTRAP_SERVERS or localhost:9092")
        if metrics:
            p.add_argument("--group-id", help="default: $DRIFTWIRE_GROUP_ID or driftwire")
            p.add_argument("--metrics-port", type=int, help="default: $DRIFTWIRE_METRICS_PORT or 9108")
            p.add_argument("--config", help="detection config file (YAML or JSON)")

    p = sub.add_parser("run", help="consume events, detect drift, publish alerts, serve metrics")
    bus_options(p, metrics=True)
    p.set_defaults(func=cmd_run)

    p = sub.add_parser("simulate", help="produce synthetic prediction events, with drift on a schedule")
    bus_options(p)
    p.add_argument("--topic", help="default: the predictions topic")
    p.add_argument("--events", type=int, default=None, help="how many (default: until Ctrl-C)")
    p.add_argument("--rate", type=float, default=1000.0, help="events/s; 0 = as fast as possible")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--drift", type=_parse_drift, action="append", default=[],
                   metavar="MODEL:FEATURE@EVENT[:SHIFT[:SCALE]]",
                   help="shift FEATURE of MODEL by SHIFT stds (and scale its spread) from its EVENT-th event on")
    p.set_defaults(func=cmd_simulate)

    p = sub.add_parser("demo", help="embedded broker + service + simulator, with a live view")
    bus_options(p, metrics=True)
    p.add_argument("--duration", type=float, default=60.0, help="seconds to run (default 60)")
    p.add_argument("--rate", type=float, default=3000.0, help="simulated events/s (default 3000)")
    p.add_argument("--drift-after", type=float, default=20.0,
                   help="seconds until drift is injected into fraud-detector/amount (default 20)")
    p.set_defaults(func=cmd_demo)

    p = sub.add_parser("broker", help="run the embedded Kafka-protocol broker in the foreground")
    p.add_argument("--host", default="127.0.0.1")
    p.add_argument("--port", type=int, default=9092)
    p.set_defaults(func=cmd_broker)

    p = sub.add_parser("profile", help="build a reference profile from training data (CSV, JSON Lines, Parquet)")
    p.add_argument("data", help="a .csv, .jsonl or .parquet file")
    p.add_argument("--model", required=True)
    p.add_argument("--model-version", default="unknown", help='the version it describes; "*" for any version')
    p.add_argument("--out", default="-", help="output file (default: standard output)")
    p.add_argument("--bins", type=_bounded(2, MAX_BINS), default=10,
                   help=f"quantile bins per numeric signal, 2 to {MAX_BINS} (default 10)")
    p.add_argument("--top-k", type=_bounded(1, MAX_CATEGORIES), default=20,
                   help=f"categories counted one by one per categorical signal, 1 to {MAX_CATEGORIES} (default 20)")
    p.add_argument("--label-column", default="label",
                   help="the column of ground-truth labels in flat rows, the reference of label drift (default label)")
    p.set_defaults(func=cmd_profile)

    p = sub.add_parser("warm-up", help="compile every numba kernel into the cache (for container images)")
    p.set_defaults(func=cmd_warm_up)
    return parser


def main(argv=None) -> int:
    args = build_parser().parse_args(argv)
    logging.basicConfig(level=args.log_level.upper(), format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    try:
        return args.func(args)
    except KeyboardInterrupt:
        return 0


if __name__ == "__main__":
    sys.exit(main())
