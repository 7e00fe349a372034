"""Detector throughput and footprint, numba against river, measured side by side in one run.

1. Speed: every detector that river also has reads the same stream (N(0, 1) whose mean steps
   through 0, 1, 0, -1 for the real-valued ones; 0/1 errors whose rate steps between 0.1 and 0.3
   for the binary ones) through ``update_many`` and through river's per-value ``update`` loop.
   River's KSWIN, HDDM_A and HDDM_W cost hundreds of microseconds a value: they read a prefix.
   Both sides must find the same drifts on what river read, so the rates compare equal work.
2. Banks: 1,000 detectors in one ``DetectorBank`` fed values at random slots, against one
   detector fed the same values as one series.
3. ADWIN memory: histogram levels and checkpoint size as a stationary window grows to 10**7.
4. Start-up: importing the package and each detector's first ``update_many`` in a fresh
   process whose numba cache is warm.

Run: ``python -m load_tests.bench_detectors [--n N] [--river-max N] [--only NAME,...]
[--skip-memory]``.
"""

from __future__ import annotations

import argparse
import functools
import json
import math
import statistics
import subprocess
import sys
import time

import numpy as np
import orjson

from driftwire.detectors import make, make_bank

NAMES = ("adwin", "page_hinkley", "kswin", "cusum", "ddm", "eddm", "hddm_a", "hddm_w", "fhddm")
BINARY = {"ddm", "eddm", "hddm_a", "hddm_w", "fhddm"}
#: river.drift class of each detector; CUSUM has no river peer
RIVER = {
    "adwin": "ADWIN", "page_hinkley": "PageHinkley", "kswin": "KSWIN", "ddm": "binary.DDM",
    "eddm": "binary.EDDM", "hddm_a": "binary.HDDMA", "hddm_w": "binary.HDDMW", "fhddm": "binary.FHDDM",
}
SLOW_IN_RIVER = {"kswin", "hddm_a", "hddm_w"}
# Both KSWINs are seeded, but they draw their samples differently: their detections agree in
# distribution only, so they are counted, not compared.
PARAMS = {"kswin": {"seed": 42}}
SPEED_TARGET = {"kswin": 100.0}
DEFAULT_SPEED_TARGET = 20.0
BANK_TARGET = 2.0
BANK_SIZE = 1000
# Changes come every SEGMENT values, so that river's prefix holds some as well as the full stream.
SEGMENT = 25_000
REPEATS = 3


def stream(name: str, n: int, positions: np.ndarray | None = None) -> np.ndarray:
    """``n`` values; value ``i`` is drawn as at position ``positions[i]`` of the stream (default ``i``)."""
    rng = np.random.default_rng(0)
    segment = (np.arange(n) if positions is None else positions) // SEGMENT
    if name not in BINARY:
        return rng.normal(np.array([0.0, 1.0, 0.0, -1.0])[segment % 4], 1.0)
    errors = (rng.random(n) < np.where(segment % 2 == 0, 0.1, 0.3)).astype(np.float64)
    # FHDDM watches the rate of correct predictions fall: it reads 1 for a correct prediction
    return 1.0 - errors if name == "fhddm" else errors


def local_positions(slots: np.ndarray) -> np.ndarray:
    """For each value, how many values its slot received before it."""
    order = np.argsort(slots, kind="stable")
    counts = np.bincount(slots)
    positions = np.empty_like(slots)
    positions[order] = np.arange(len(slots)) - np.repeat(np.cumsum(counts) - counts, counts)
    return positions


def detector(name: str):
    return make(name, **PARAMS.get(name, {}))


def river_detector(name: str):
    from river import drift

    return functools.reduce(getattr, RIVER[name].split("."), drift)(**PARAMS.get(name, {}))


def numba_once(name: str, values: np.ndarray) -> tuple[float, np.ndarray]:
    """Seconds of one fresh detector's ``update_many`` over ``values``, and the drifts found."""
    det = detector(name)
    start = time.perf_counter()
    drifts = det.update_many(values)
    return time.perf_counter() - start, drifts


def numba_run(name: str, values: np.ndarray) -> tuple[float, np.ndarray]:
    """Median seconds of ``update_many`` over the whole stream, and the drifts found."""
    detector(name).update_many(values[:100])  # compiles, or loads numba's cache, outside the timing
    runs = [numba_once(name, values) for _ in range(REPEATS)]
    return statistics.median(seconds for seconds, _ in runs), runs[-1][1]


def river_run(name: str, values: np.ndarray) -> tuple[float, np.ndarray]:
    """Seconds of river's per-value loop (collecting drift positions, as update_many does)."""
    det = river_detector(name)
    xs = values.tolist()
    drifts = []
    start = time.perf_counter()
    for i, x in enumerate(xs):
        det.update(x)
        if det.drift_detected:
            drifts.append(i)
    return time.perf_counter() - start, np.array(drifts, dtype=np.int64)


def parity(name: str, numba_drifts: np.ndarray, river_drifts: np.ndarray, prefix: int) -> tuple[str, bool]:
    ours = numba_drifts[numba_drifts < prefix]
    if name == "kswin":
        return f"n/a ({len(ours)} vs {len(river_drifts)})", True
    if np.array_equal(ours, river_drifts):
        return f"yes ({len(ours)})", True
    return f"NO ({len(ours)} vs {len(river_drifts)})", False


def bench_speed(names, n: int, river_max: int) -> list[str]:
    print(f"1. update_many vs river's per-value update, {n:,} values (numba: median of {REPEATS} runs)")
    print(f"{'detector':13} {'numba upd/s':>12} {'river upd/s':>12} {'river read':>10} {'ratio':>7} "
          f"{'target':>7} {'same drifts':>13}")
    failures, parity_failures = [], []
    for name in names:
        values = stream(name, n)
        seconds, drifts = numba_run(name, values)
        rate = n / seconds
        if name not in RIVER:
            print(f"{name:13} {rate:12,.0f} {'(no river peer)':>23}")
            continue
        prefix = min(n, river_max) if name in SLOW_IN_RIVER else n
        river_seconds, river_drifts = river_run(name, values[:prefix])
        river_rate = prefix / river_seconds
        ratio = rate / river_rate
        target = SPEED_TARGET.get(name, DEFAULT_SPEED_TARGET)
        same, ok = parity(name, drifts, river_drifts, prefix)
        verdict = "PASS" if ratio >= target else "FAIL"
        print(f"{name:13} {rate:12,.0f} {river_rate:12,.0f} {prefix:10,} {ratio:6.1f}x {target:5.0f}x+ "
              f"{same:>13}  {verdict}")
        if ratio < target:
            failures.append(f"{name} {ratio:.1f}x < {target:.0f}x")
        if not ok:
            parity_failures.append(name)
    print(f"  river read: values river was fed; its rate is measured on that prefix "
          f"(--river-max {river_max:,} for {', '.join(sorted(SLOW_IN_RIVER))}).")
    print("  same drifts: numba's drift positions within that prefix equal river's (count in brackets);")
    print("  KSWIN draws its samples differently from river, so only the counts (numba vs river) are shown.")
    return [
        _summary("speed vs river (>= 20x, KSWIN >= 100x)", failures),
        _summary("identical drifts on river's prefix", parity_failures),
    ]


def bank_run(name: str, values: np.ndarray, slots: np.ndarray) -> tuple[float, int]:
    bank = make_bank(name, **PARAMS.get(name, {}))
    for _ in range(BANK_SIZE):
        bank.add()
    start = time.perf_counter()
    drifts, _ = bank.update(slots, values)
    return time.perf_counter() - start, len(drifts)


def bench_banks(names, n: int) -> list[str]:
    print(f"\n2. DetectorBank of {BANK_SIZE:,} detectors, {n:,} values at random slots in one update, "
          f"vs one detector on {n:,} values (median of {REPEATS})")
    print(f"{'detector':13} {'single ns/v':>12} {'bank ns/v':>10} {'ratio':>7} {'drifts single/bank':>19}")
    slots = np.random.default_rng(1).integers(0, BANK_SIZE, n)
    failures = []
    for name in names:
        single_values = stream(name, n)
        # Each bank detector reads the start of a stream like the single one's, in its own time:
        # dealing out the single series itself would show each detector a change every
        # SEGMENT / BANK_SIZE values, and constant resets are not the same work.
        values = stream(name, n, local_positions(slots))
        detector(name).update_many(values[:100])  # compile, or load numba's cache, outside the timing
        bank_run(name, values[:100], slots[:100])
        single_times, bank_times = [], []
        # interleaved, so that load from other processes falls on both alike
        for _ in range(REPEATS):
            seconds, single_drifts = numba_once(name, single_values)
            single_times.append(seconds)
            seconds, bank_drifts = bank_run(name, values, slots)
            bank_times.append(seconds)
        single = statistics.median(single_times) / n * 1e9
        bank = statistics.median(bank_times) / n * 1e9
        ratio = bank / single
        print(f"{name:13} {single:12.1f} {bank:10.1f} {ratio:6.2f}x {len(single_drifts):>9}/{bank_drifts:<9} "
              f"{'PASS' if ratio <= BANK_TARGET else 'FAIL'}")
        if ratio > BANK_TARGET:
            failures.append(f"{name} {ratio:.2f}x")
    print(f"  the single series changes every {SEGMENT:,} values; each bank detector reads ~{n // BANK_SIZE:,} values,")
    print("  the unchanged start of such a series: ADWIN's and KSWIN's windows stay shorter in the bank.")
    return [_summary(f"bank within {BANK_TARGET:.0f}x of one series", failures)]


def adwin_buckets(det) -> int:
    """Buckets in ADWIN's histogram: the level-0 buffer plus each upper level's count.

    Reads the state layout documented in detectors/adwin.py.
    """
    from driftwire.detectors.adwin import _COUNT0

    state = det._state
    upper, block = det._upper(), det._block()
    return int(state[_COUNT0] + sum(state[upper + i * block] for i in range(det.n_levels - 1)))


def bench_memory(top: int = 10**7, batch: int = 10**6) -> list[str]:
    print(f"\n3. ADWIN footprint on stationary N(0, 1), fed in batches of up to {batch:,}")
    print(f"{'values fed':>11} {'width':>11} {'log2 width':>10} {'levels':>6} {'buckets':>7} "
          f"{'ckpt floats':>11} {'JSON bytes':>10} {'state bytes':>11}")
    det = make("adwin")
    rng = np.random.default_rng(2)
    fed = drifts = 0
    logarithmic = True
    max_buckets = det.params["max_buckets"]
    for length in (10**k for k in range(3, int(math.log10(top)) + 1)):
        while fed < length:
            k = min(batch, length - fed)
            drifts += len(det.update_many(rng.normal(0.0, 1.0, k)))
            fed += k
        size = len(orjson.dumps(det.get_state()))
        print(f"{fed:11,} {det.width:11,} {math.log2(det.width):10.1f} {det.n_levels:6} {adwin_buckets(det):7} "
              f"{det.checkpoint_size:11} {size:10,} {det._state.nbytes:11,}")
        # levels ~ log2(width / max_buckets) + 1 in an exponential histogram
        logarithmic &= det.n_levels <= math.log2(det.width / max_buckets) + 2
    print(f"  drifts on the way: {drifts}; state bytes: the in-memory vector, sized for "
          f"{det.max_levels} levels up front.")
    return [_summary("ADWIN levels <= log2(width / max_buckets) + 2", [] if logarithmic else ["grows faster"])]


STARTUP = """
import json, sys, time
import numpy as np
start = time.perf_counter()
import driftwire.detectors as detectors
out = {"import": time.perf_counter() - start}
for name in sys.argv[1:]:
    t = time.perf_counter()
    detectors.make(name).update_many(np.zeros(64))
    out[name] = time.perf_counter() - t
print(json.dumps(out))
"""


def startup_run(names) -> tuple[dict, float]:
    start = time.perf_counter()
    done = subprocess.run([sys.executable, "-c", STARTUP, *names], capture_output=True, text=True, check=True)
    return json.loads(done.stdout), time.perf_counter() - start


def bench_startup(names) -> None:
    print("\n4. start-up in a fresh process, numba cache warm (numpy imported before the clock starts)")
    # Another process may have changed a detector module since this one compiled: a first
    # process rebuilds the cache if it has to, a second one is measured.
    warming, _ = startup_run(names)
    times, wall = startup_run(names)
    firsts = ", ".join(f"{name} {times[name] * 1e3:.0f}" for name in names)
    print(f"  import driftwire.detectors: {times['import'] * 1e3:.0f} ms")
    print(f"  make + first update_many, ms: {firsts}")
    print(f"  ({names[0]}'s time includes importing the module of compiled loops every detector uses;")
    print(f"  in the process that warmed the cache first, it took {warming[names[0]] * 1e3:,.0f} ms)")
    print(f"  total {sum(times.values()) * 1e3:.0f} ms; whole process including the interpreter {wall * 1e3:.0f} ms")


def _summary(what: str, failures: list[str]) -> str:
    return f"{'PASS' if not failures else 'FAIL'}  {what}" + (f": {'; '.join(failures)}" if failures else "")


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--n", type=int, default=10**6, help="values per stream")
    parser.add_argument("--river-max", type=int, default=30_000,
                        help=f"values river's slow detectors ({', '.join(sorted(SLOW_IN_RIVER))}) read")
    parser.add_argument("--only", help="comma-separated detector names")
    parser.add_argument("--skip-memory", action="store_true", help="skip the ADWIN footprint up to 10**7 values")
    args = parser.parse_args(argv)
    names = NAMES if not args.only else tuple(args.only.split(","))
    unknown = sorted(set(names) - set(NAMES))
    if unknown:
        parser.error(f"unknown detectors {unknown}; choose from {', '.join(NAMES)}")
    summary = bench_speed(names, args.n, args.river_max)
    summary += bench_banks(names, args.n)
    if "adwin" in names and not args.skip_memory:
        summary += bench_memory()
    bench_startup(names)
    print()
    print("\n".join(summary))
    return 0


if __name__ == "__main__":
    sys.exit(main())
