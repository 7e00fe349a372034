"""Router cost per event, message by message (``add``) against whole batches (``add_batch``).

100k prediction events with 10 numeric features each (the events ``bench_service`` produces),
routed in batches of 5000 and flushed after each batch, as the service does. Prints the best
and the median of several repeats, in microseconds per event. Run:
``python -m load_tests.bench_router [--events N] [--repeat R] [--baseline OLD_ROUTER_PY]``; with
``--baseline`` (e.g. ``git show REV:stream/ingest/router.py > /tmp/router_old.py``) the per-message
path of that version of the router is measured too.
"""

from __future__ import annotations

import argparse
import importlib.util
import statistics
import sys
import time

import numpy as np
import orjson

from driftwire.stream.detect.monitor import PartitionMonitor, SeriesBudget
from driftwire.stream.ingest import decode as dec
from driftwire.stream.ingest.router import Router
from driftwire.stream.settings import DetectionConfig

FEATURES = 10
BATCH = 5000


def events(n: int) -> list[bytes]:
    rng = np.random.default_rng(0)
    values = rng.normal(0.0, 1.0, (n, FEATURES)).round(6)
    return [orjson.dumps({
        "event_id": f"e{i}", "model": f"model-{i % 4}", "model_version": "v1", "timestamp": 1.7e9 + i / 1000,
        "features": {f"x{j}": v for j, v in enumerate(values[i].tolist())}, "prediction": 1,
    }) for i in range(n)]


def router(cls=Router) -> Router:
    return cls(PartitionMonitor("t", 0, DetectionConfig(), SeriesBudget(10_000)), dec.PREDICTION, 1 << 20)


def load_router(path: str) -> type:
    """The Router class of another version of router.py, importing this package's modules."""
    spec = importlib.util.spec_from_file_location("driftwire.stream._router_baseline", path)
    module = sys.modules[spec.name] = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module.Router


def one_by_one(r: Router, batch: list[bytes]) -> None:
    for i, value in enumerate(batch):
        r.add(value, i)
    r.flush()


def batched(r: Router, batch: list[bytes]) -> None:
    r.add_batch(batch, np.arange(len(batch)))
    r.flush()


def per_event(route, msgs: list[bytes], repeat: int, cls=Router) -> list[float]:
    r = router(cls)
    route(r, msgs[:BATCH])  # shapes, series and compiled code in place
    times = []
    for _ in range(repeat):
        started = time.perf_counter()
        for k in range(0, len(msgs), BATCH):
            route(r, msgs[k:k + BATCH])
        times.append((time.perf_counter() - started) / len(msgs) * 1e6)
    return times


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--events", type=int, default=100_000)
    parser.add_argument("--repeat", type=int, default=7)
    parser.add_argument("--baseline", help="another version of stream/ingest/router.py to measure add of")
    args = parser.parse_args(argv)
    msgs = events(args.events)
    print(f"{args.events} events, {FEATURES} numeric features each, batches of {BATCH}; us per event")
    runs = [("add (per message)", one_by_one, Router), ("add_batch", batched, Router)]
    if args.baseline:
        runs.insert(0, ("baseline add", one_by_one, load_router(args.baseline)))
    for name, route, cls in runs:
        times = per_event(route, msgs, args.repeat, cls)
        print(f"{name:20s} best {min(times):6.3f}  median {statistics.median(times):6.3f}  worst {max(times):6.3f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
