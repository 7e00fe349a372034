"""Window throughput and memory: the numba window bank against numpy recomputing each window.

Both sides read the same stream the way the service hands it over: batches of interleaved
(series, value) pairs, ``--series`` numeric signals of one model version, every event carrying
each signal. At every window evaluation both produce the window's histogram over the
reference's bins and its quantiles:

- ``numba``: :class:`driftwire.detectors.window.WindowBank` updates each series' counts and
  sums over the reference's fine bins (its quantiles at 1/256 steps and its profile's edges;
  the window's sketch) and moments value by value in one call per batch; at each close it also computes
  PSI, JS, KL, Hellinger, KS with its p-value and Wasserstein against the reference (more work
  than the numpy side does at a close);
- ``numpy``: groups each batch by series (a stable argsort), keeps the raw values of the open
  sub-windows per series, and at each evaluation concatenates the window and calls
  ``numpy.histogram`` and ``numpy.quantile`` (99 percentiles) on it.

Tumbling windows (slide 1) are evaluated once per window; a sliding window of ``slide``
sub-windows is evaluated at the end of every sub-window, where numpy reads the whole window
again and the bank sums ``slide`` sub-windows' counts. Rates are values per second (events times
series), best of ``--repeat`` runs, measured side by side in this process. Memory is what one
series holds for its windows: its fine-bin counts and sums and moments against the raw values
(the fine bins and their lookup table, shared by all of a series' windows, are not counted).

Run: ``python -m load_tests.bench_windows [--series N] [--events N] [--window N] [--slides 1,4,12]``.
"""

from __future__ import annotations

import argparse
import sys
import time

import numpy as np

from driftwire.detectors.profile import numeric_profile
from driftwire.detectors.window import WindowBank, WindowSpec

QUANTILES = np.arange(1, 100) / 100
TARGET = 10.0


def stream(series: int, events: int, batch: int, seed: int = 0):
    """Batches of (event numbers, series ids, values, message of each value), as a router flushes."""
    rng = np.random.default_rng(seed)
    values = rng.normal(0.0, 1.0, (events, series))
    values += np.linspace(0.0, 0.5, events)[:, None]  # a slow drift, so windows differ
    out = []
    for start in range(0, events, batch):
        stop = min(start + batch, events)
        ev = np.arange(start, stop, dtype=np.int64)
        out.append((ev, np.tile(np.arange(series, dtype=np.int64), ev.size), values[start:stop].ravel(),
                    np.repeat(ev, series)))
    return out


def run_numba(batches, series: int, window: int, slide: int, profile: dict) -> tuple[float, int, WindowBank]:
    bank = WindowBank()
    g = bank.add_group(WindowSpec(size=window, slide=slide), learn_reference=False)
    ws = [bank.add_series(g) for _ in range(series)]
    bank.set_group_reference(g, {s: profile for s in ws})
    closes = 0
    started = time.perf_counter()
    for ev, sids, values, messages in batches:
        groups = np.zeros(ev.size, dtype=np.int64)
        closes += len(bank.update_messages(groups, ev * 1.0, ev, ev, sids, values, messages))
    return time.perf_counter() - started, closes, bank


def run_numpy(batches, series: int, window: int, slide: int, edges: np.ndarray) -> tuple[float, int, int]:
    """Seconds, evaluations and the most bytes of raw values one series held."""
    sub = window // slide
    bins = np.concatenate(([-np.inf], edges, [np.inf]))
    open_parts: list[list[np.ndarray]] = [[] for _ in range(series)]  # current sub-window, per series
    subs: list[list[np.ndarray]] = [[] for _ in range(series)]  # the last ``slide`` closed sub-windows
    filled = evaluations = held = 0
    started = time.perf_counter()
    for ev, sids, values, _messages in batches:
        start = 0
        while start < ev.size:
            stop = min(ev.size, start + sub - filled)
            part = slice(start * series, stop * series)
            order = np.argsort(sids[part], kind="stable")
            grouped = values[part][order]
            cuts = np.searchsorted(sids[part][order], np.arange(1, series))
            for s, chunk in enumerate(np.split(grouped, cuts)):
                open_parts[s].append(chunk)
            filled += stop - start
            start = stop
            if filled < sub:
                continue
            filled = 0
            for s in range(series):
                subs[s].append(np.concatenate(open_parts[s]))
                open_parts[s] = []
                if len(subs[s]) > slide:
                    subs[s].pop(0)
                if len(subs[s]) == slide:
                    x = np.concatenate(subs[s])
                    np.histogram(x, bins=bins)
                    np.quantile(x, QUANTILES)
                    evaluations += 1
                    held = max(held, x.nbytes)
    return time.perf_counter() - started, evaluations, held


def bank_bytes_per_series(bank: WindowBank) -> int:
    """Bytes one series' windows take in the bank: its instances' counts and sums per fine bin,
    and moments."""
    ring = bank.specs[0].ring
    return ring * (bank.hist[0].size + bank.mom.shape[1]) * 8


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--series", type=int, default=20)
    parser.add_argument("--events", type=int, default=240_000)
    parser.add_argument("--window", type=int, default=12_000)
    parser.add_argument("--batch", type=int, default=10_000, help="events per batch (the service's batch size)")
    parser.add_argument("--slides", default="1,4,12", help="sub-windows per window to compare (1: tumbling)")
    parser.add_argument("--repeat", type=int, default=5)
    args = parser.parse_args(argv)
    slides = [int(s) for s in args.slides.split(",")]
    bad = [s for s in slides if args.window % s]
    if bad:
        parser.error(f"--window {args.window} is not a multiple of slide {bad}")
    profile = numeric_profile(np.random.default_rng(1).normal(0.0, 1.0, 100_000))
    edges = np.asarray(profile["edges"])
    batches = stream(args.series, args.events, args.batch)
    values = args.events * args.series
    run_numba(batches[:2], args.series, args.window, 1, profile)  # compile or load the kernels
    print(f"{args.series} series x {args.events:,} events = {values:,} values; windows of {args.window:,} events; "
          f"batches of {args.batch:,} events; best of {args.repeat}")
    print()
    print(f"{'slide':>5}  {'evaluations':>11}  {'numba values/s':>15}  {'numpy values/s':>15}  {'ratio':>7}  "
          f"{'numba bytes':>11}  {'numpy bytes':>11}  {'ratio':>7}")
    ratios = {}
    for slide in slides:
        numba_s, closes, bank = min((run_numba(batches, args.series, args.window, slide, profile)
                                     for _ in range(args.repeat)), key=lambda r: r[0])
        numpy_s, evaluations, held = min((run_numpy(batches, args.series, args.window, slide, edges)
                                          for _ in range(args.repeat)), key=lambda r: r[0])
        if closes * args.series != evaluations:
            raise RuntimeError(f"slide {slide}: the bank closed {closes} windows, numpy evaluated "
                               f"{evaluations / args.series:g}")
        ratio = numpy_s / numba_s
        ratios[slide] = ratio
        mem = bank_bytes_per_series(bank)
        print(f"{slide:>5}  {closes:>11}  {values / numba_s:>15,.0f}  {values / numpy_s:>15,.0f}  {ratio:>6.2f}x  "
              f"{mem:>11,}  {held:>11,}  {held / mem:>6.2f}x")
    print()
    for slide, ratio in ratios.items():
        verdict = "PASS" if ratio >= TARGET else "FAIL"
        print(f"{verdict}  numba / numpy at slide {slide}: {ratio:.2f}x  (target >= {TARGET:g}x)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
