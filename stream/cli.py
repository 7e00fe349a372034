"""The ``driftwire`` command: run, simulate, demo, broker, warm-up, profile.

A failure the user can fix (a bad option, setting, config or data file, a bus out of reach) is
one line on stderr saying what failed, where, and how to fix it, and an exit status of
:data:`EXIT_USAGE` or :data:`EXIT_UNREACHABLE`, rather than a traceback.
"""

from __future__ import annotations

import argparse
import contextlib
import logging
import os
import re
import signal
import socket
import sys
import threading

from driftwire.schemas.reference import MAX_BINS, MAX_CATEGORIES
from driftwire.stream.broker import BrokerError

#: exit statuses besides 0, listed in ``driftwire --help``
EXIT_FAILED = 1
EXIT_USAGE = 2
EXIT_UNREACHABLE = 3
EXIT_STATUSES = ("exit status: 0 done; 1 the service or the embedded broker failed; 2 a bad option, setting, "
                 "config or data file; 3 the Kafka broker was out of reach or refused a request")
#: seconds a command waits for the Kafka broker at start-up before giving up
CONNECT_TIMEOUT = 10.0


class CommandError(Exception):
    """A failure the user can fix: one line on stderr (what, where, how to fix) and an exit status."""

    def __init__(self, message: str, code: int = EXIT_USAGE):
        super().__init__(message)
        self.code = code


def _settings(args):
    from driftwire.stream.settings import Settings

    overrides = {}
    for name in ("bootstrap_servers", "group_id", "metrics_port", "config"):
        value = getattr(args, name, None)
        if value is not None:
            overrides[name] = value
    try:
        return Settings(**overrides)
    except ValueError as exc:  # pydantic's ValidationError among them
        raise CommandError(f"bad setting {_problem(exc, env_prefix='DRIFTWIRE_')}: "
                           "fix that environment variable") from None


def _problem(exc: Exception, env_prefix: str = "") -> str:
    """The first problem of a validation error (or any error), on one line."""
    errors = getattr(exc, "errors", None)
    if not callable(errors):
        return " ".join(str(exc).split())
    errors = errors()
    first = errors[0]
    where = ".".join(str(part) for part in first["loc"])
    where = env_prefix + where.upper() if env_prefix else where
    value = first.get("input")
    shown = f"={value!r:.60}" if isinstance(value, str | int | float) else ""
    more = f" (and {len(errors) - 1} more)" if len(errors) > 1 else ""
    return f"{where}{shown}: {first['msg']}{more}"


def _load_config(path):
    """The detection config, or a one-line error naming the file and, for YAML, the line."""
    import yaml

    from driftwire.stream.settings import load_config

    try:
        return load_config(path)
    except OSError as exc:
        raise CommandError(f"cannot read the config file {path}: {exc.strerror or exc}: "
                           "check --config (or DRIFTWIRE_CONFIG)") from None
    except UnicodeDecodeError as exc:
        raise CommandError(f"{path}: byte offset {exc.start} is not UTF-8: the config must be YAML or JSON text") \
            from None
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f"{path}:{mark.line + 1}:{mark.column + 1}" if mark else str(path)
        raise CommandError(f"{where}: not valid YAML or JSON: {getattr(exc, 'problem', None) or exc}") from None
    except ValueError as exc:
        text = _problem(exc)
        raise CommandError(text if text.startswith(str(path)) else f"{path}: {text}") from None


def _silent_logger() -> logging.Logger:
    logger = logging.getLogger("driftwire.start-up-check")
    logger.propagate = False
    if not logger.handlers:
        logger.addHandler(logging.NullHandler())
    return logger


def _check_bus(conf: dict, timeout: float) -> None:
    """Ask the bus for its topics before any start-up work, so that a broker out of reach is one
    line within ``timeout`` seconds instead of librdkafka's retry lines and a traceback."""
    from confluent_kafka import KafkaException
    from confluent_kafka.admin import AdminClient

    from driftwire.stream.service import connection_config

    servers = conf.get("bootstrap.servers")
    if not servers:
        raise CommandError("no Kafka broker given: set --bootstrap-servers or DRIFTWIRE_BOOTSTRAP_SERVERS")
    errors: list = []
    with _kafka_errors(servers):
        # its log lines go to a logger that drops them; its errors to error_cb, for the reason
        admin = AdminClient({**connection_config(conf), "logger": _silent_logger(), "error_cb": errors.append})
    try:
        admin.list_topics(timeout=timeout)
    except KafkaException as exc:
        admin.poll(0)  # serves error_cb: refused, unresolved, TLS or authentication
        reason = _kafka_reason(errors[0] if errors else exc.args[0])
        raise CommandError(f"cannot reach the Kafka broker at {servers} within {timeout:g} s ({reason}): "
                           "set --bootstrap-servers or DRIFTWIRE_BOOTSTRAP_SERVERS", EXIT_UNREACHABLE) from None


def _kafka_reason(err) -> str:
    """A librdkafka error without its broker prefix and connection-state suffix."""
    text = err.str() if hasattr(err, "str") else str(err)
    text = re.sub(r"^\S+/\S+: ", "", text)
    return re.sub(r" \(after \d+ms in state \w+\)$", "", text)


@contextlib.contextmanager
def _kafka_errors(servers: str):
    """A Kafka client's failure (a bad property, a request refused or timed out) as one line."""
    from confluent_kafka import KafkaError, KafkaException

    try:
        yield
    except KafkaException as exc:
        err = exc.args[0] if exc.args else exc
        if getattr(err, "code", lambda: None)() == KafkaError._INVALID_ARG:
            raise CommandError(f"bad Kafka client property: {_kafka_reason(err)}: check DRIFTWIRE_KAFKA_* and "
                               "the config's kafka:, consumer: and producer: sections") from None
        raise CommandError(f"the Kafka broker at {servers} failed a request: {_kafka_reason(err)}",
                           EXIT_UNREACHABLE) from None


def _bounded(lo: int, hi: int):
    def parse(text: str) -> int:
        value = int(text)
        if not lo <= value <= hi:
            raise argparse.ArgumentTypeError(f"{value} is not between {lo} and {hi}")
        return value
    return parse


def _parse_drift(text: str):
    """MODEL:FEATURE@EVENT[:SHIFT[:SCALE]], e.g. fraud-detector:amount@20000:1.5"""
    from driftwire.stream.simulate import Drift

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
    from driftwire.stream.service import client_config

    settings = _settings(args)
    config = _load_config(settings.config)
    _check_bus(client_config(settings, config, "consumer"), args.connect_timeout)
    service = _service(settings, config, stop)
    with _kafka_errors(settings.bootstrap_servers):
        return service.run()


def _service(settings, config, stop):
    """The service with its metrics server listening, or a one-line error."""
    from driftwire.stream.service import DriftService

    try:
        service = DriftService(settings, config, stop=stop)
    except ValueError as exc:  # a reference profile file of the config
        raise CommandError(_problem(exc)) from None
    try:
        service.start_metrics_server()
    except OSError as exc:
        raise CommandError(f"cannot serve metrics on {settings.metrics_host}:{settings.metrics_port} "
                           f"({exc.strerror or exc}): set --metrics-port or DRIFTWIRE_METRICS_PORT "
                           "(0 = any free port)") from None
    return service


def cmd_simulate(args) -> int:
    from confluent_kafka import Producer

    from driftwire.stream import simulate

    settings = _settings(args)
    conf = {"bootstrap.servers": settings.bootstrap_servers, "linger.ms": 20, **settings.kafka_properties()}
    _check_bus(conf, args.connect_timeout)
    with _kafka_errors(settings.bootstrap_servers):
        producer = Producer(conf)
    sim = simulate.Simulator(drifts=tuple(args.drift), seed=args.seed,
                             events_per_second=args.rate or 1000.0)
    stop = _stop_on_signals()
    topic = args.topic or settings.predictions_topic
    with _kafka_errors(settings.bootstrap_servers):
        sent = simulate.run(producer, topic, sim, total=args.events, rate=args.rate, stop=stop)
    print(f"produced {sent} events to {topic} on {settings.bootstrap_servers}")
    return 0


def cmd_demo(args) -> int:
    from driftwire.stream.demo import run_demo

    settings = _settings(args)  # a bad DRIFTWIRE_* variable fails now, before a broker starts
    config = _load_config(settings.config)
    bootstrap = args.bootstrap_servers or os.environ.get("DRIFTWIRE_BOOTSTRAP_SERVERS")
    if bootstrap:
        _check_bus({"bootstrap.servers": bootstrap}, args.connect_timeout)
    with _kafka_errors(bootstrap or "the embedded broker"):
        return run_demo(args, config)


def _check_port(host: str, port: int) -> None:
    """Fail in one line when the broker's port is taken, rather than after the broker starts and dies."""
    with socket.socket() as s:
        # a port whose last connections are in TIME_WAIT is free to listen on
        s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            s.bind((host, port))
        except OSError as exc:
            raise CommandError(f"cannot listen on {host}:{port} ({exc.strerror or exc}): "
                               "choose another --port (0 = any free port) or --host") from None


def cmd_broker(args) -> int:
    from driftwire.stream.broker import EmbeddedBroker

    if args.port:
        _check_port(args.host, args.port)
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
    from driftwire.stream.service import warm_up_kernels

    print(f"numba kernels compiled or loaded in {warm_up_kernels():.1f} s")
    return 0


def cmd_profile(args) -> int:
    """Write the reference profile of a training data file (see :mod:`.profiling`)."""
    from driftwire.stream.profiling import build_profile

    try:
        profile = build_profile(args.data, args.model, args.model_version, bins=args.bins, top_k=args.top_k,
                                label_column=args.label_column, delimiter=args.delimiter)
    except OSError as exc:
        raise CommandError(f"{exc.filename or args.data}: {exc.strerror or exc}") from None
    except ValueError as exc:
        raise CommandError(_problem(exc)) from None
    text = profile.model_dump_json(indent=2)
    if args.out == "-":
        print(text)
    else:
        try:
            with open(args.out, "w", encoding="utf-8") as f:
                f.write(text + "\n")
        except OSError as exc:
            raise CommandError(f"cannot write {args.out}: {exc.strerror or exc}: check --out") from None
        kinds = [s.type for s in profile.signals.values()]
        print(f"{args.out}: {profile.key}, {profile.rows} rows, {kinds.count('numeric')} numeric and "
              f"{kinds.count('categorical')} categorical signals, "
              f"{'no labels' if profile.label is None else profile.label.type + ' labels'}")
    return 0


class _HelpFormatter(argparse.ArgumentDefaultsHelpFormatter):
    """Shows each option's default, unless it has none or its help tells it already."""

    def _get_help_string(self, action):
        default = action.default
        if default is None or default is False or default == [] or "default" in (action.help or ""):
            return action.help
        return super()._get_help_string(action)


PROFILE_HELP = """Build a reference profile from training data: CSV (UTF-8, comma-separated unless
--delimiter says otherwise; .tsv is tab-separated), JSON Lines (one object per line) or Parquet.
Broken data is an error naming the file, line and column, never a guessed profile: a row with
more or fewer fields than the header, a header of one column whose name holds another delimiter,
an empty or repeated column name, a quote left open, a byte that is not UTF-8, and nan or inf in a
column of numbers (leave a missing value empty) all stop it with exit status 2."""


def _version() -> str:
    from importlib import metadata

    try:
        return metadata.version("driftwire")
    except metadata.PackageNotFoundError:
        return "unknown (not installed)"


def _delimiter(text: str) -> str:
    names = {"comma": ",", "semicolon": ";", "tab": "\t", "pipe": "|", "\\t": "\t"}
    value = names.get(text.lower(), text)
    if len(value) != 1:
        raise argparse.ArgumentTypeError(f"{text!r}: give one character or comma, semicolon, tab, pipe")
    return value


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="driftwire", description="Streaming drift detection on a Kafka bus.",
                                     epilog=EXIT_STATUSES, formatter_class=_HelpFormatter)
    parser.add_argument("--version", action="version", version=f"driftwire {_version()}")
    parser.add_argument("--log-level", default=os.environ.get("DRIFTWIRE_LOG_LEVEL", "INFO"),
                        help="DEBUG, INFO, WARNING or ERROR (default: $DRIFTWIRE_LOG_LEVEL or INFO)")
    sub = parser.add_subparsers(dest="command", required=True)

    def command(name, summary, description=None):
        return sub.add_parser(name, help=summary, description=description or summary[0].upper() + summary[1:],
                              epilog=EXIT_STATUSES, formatter_class=_HelpFormatter)

    def bus_options(p, metrics=False):
        p.add_argument("--bootstrap-servers", help="default: $DRIFTWIRE_BOOTSTRAP_SERVERS or localhost:9092")
        p.add_argument("--connect-timeout", type=float, default=CONNECT_TIMEOUT, metavar="SECONDS",
                       help="how long to wait for the Kafka broker at start-up")
        if metrics:
            p.add_argument("--group-id", help="default: $DRIFTWIRE_GROUP_ID or driftwire")
            p.add_argument("--metrics-port", type=int, help="default: $DRIFTWIRE_METRICS_PORT or 9108")
            p.add_argument("--config", help="detection config file, YAML or JSON (default: $DRIFTWIRE_CONFIG or "
                                            "the built-in detectors)")

    p = command("run", "consume events, detect drift, publish alerts, serve metrics")
    bus_options(p, metrics=True)
    p.set_defaults(func=cmd_run)

    p = command("simulate", "produce synthetic prediction events, with drift on a schedule")
    bus_options(p)
    p.add_argument("--topic", help="default: the predictions topic")
    p.add_argument("--events", type=int, default=None, help="how many (default: until Ctrl-C)")
    p.add_argument("--rate", type=float, default=1000.0, help="events/s; 0 = as fast as possible")
    p.add_argument("--seed", type=int, default=0, help="seed of the simulated events")
    p.add_argument("--drift", type=_parse_drift, action="append", default=[],
                   metavar="MODEL:FEATURE@EVENT[:SHIFT[:SCALE]]",
                   help="shift FEATURE of MODEL by SHIFT stds (and scale its spread) from its EVENT-th event on")
    p.set_defaults(func=cmd_simulate)

    p = command("demo", "embedded broker + service + simulator, with a live view")
    bus_options(p, metrics=True)
    p.add_argument("--duration", type=float, default=60.0, help="seconds to run")
    p.add_argument("--rate", type=float, default=3000.0, help="simulated events/s")
    p.add_argument("--drift-after", type=float, default=20.0,
                   help="seconds until drift is injected into fraud-detector/amount")
    p.set_defaults(func=cmd_demo)

    p = command("broker", "run the embedded Kafka-protocol broker in the foreground")
    p.add_argument("--host", default="127.0.0.1", help="address to listen on")
    p.add_argument("--port", type=int, default=9092, help="port to listen on; 0 = any free port")
    p.set_defaults(func=cmd_broker)

    p = command("profile", "build a reference profile from training data (CSV, JSON Lines, Parquet)",
                description=PROFILE_HELP)
    p.add_argument("data", help="a .csv, .tsv, .jsonl or .parquet file")
    p.add_argument("--model", required=True, help="the model it describes")
    p.add_argument("--model-version", default="unknown", help='the version it describes; "*" for any version')
    p.add_argument("--out", default="-", help="output file (default: standard output)")
    p.add_argument("--bins", type=_bounded(2, MAX_BINS), default=10,
                   help=f"quantile bins per numeric signal, 2 to {MAX_BINS}")
    p.add_argument("--top-k", type=_bounded(1, MAX_CATEGORIES), default=20,
                   help=f"categories counted one by one per categorical signal, 1 to {MAX_CATEGORIES}")
    p.add_argument("--label-column", default="label",
                   help="the column of ground-truth labels in flat rows, the reference of label drift")
    p.add_argument("--delimiter", type=_delimiter, default=",",
                   help="field separator of a .csv: one character, or comma, semicolon, tab, pipe")
    p.set_defaults(func=cmd_profile)

    p = command("warm-up", "compile every numba kernel into the cache (for container images)")
    p.set_defaults(func=cmd_warm_up)
    return parser


def _log_level(name: str) -> int:
    level = logging.getLevelName(name.upper())
    if not isinstance(level, int):
        raise CommandError(f"unknown log level {name!r}: set --log-level or DRIFTWIRE_LOG_LEVEL to DEBUG, INFO, "
                           "WARNING or ERROR")
    return level


def _broker_problem(exc: BrokerError) -> str:
    """The telling line of the embedded broker's failure (its log's first error), not all its log."""
    lines = [re.sub(r"\x1b\[[0-9;]*m", "", line).strip() for line in str(exc).splitlines()]
    errors = [line for line in lines if "ERROR" in line or "panicked" in line]
    return errors[0] if errors else lines[0]


def main(argv=None) -> int:
    args = build_parser().parse_args(argv)
    try:
        logging.basicConfig(level=_log_level(args.log_level),
                            format="%(asctime)s %(levelname)s %(name)s: %(message)s")
        return args.func(args)
    except CommandError as exc:
        print(f"driftwire {args.command}: {exc}", file=sys.stderr)
        return exc.code
    except BrokerError as exc:
        print(f"driftwire {args.command}: the embedded broker failed: {_broker_problem(exc)}", file=sys.stderr)
        return EXIT_FAILED
    except KeyboardInterrupt:
        return 0


if __name__ == "__main__":
    sys.exit(main())
