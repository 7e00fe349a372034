"""The label join's two implementations on one generated stream: joined pairs/s of JoinTable and
JoinStore side by side, and the memory a waiting prediction costs.

    python -m load_tests.bench_jointable [--events 1000000] [--batch 5000]

The stream: predictions at 1,000/s of event time, each labelled 0-30 s later except 10%; 10% of
the labels name an event never predicted; event ids are UUID strings (36 bytes). Batches of
``--batch`` messages in time order, the predictions of a batch given first, then its labels, as
the service gives them; pairs, Shared records and counts are taken after every batch. Only the
join's calls are timed: JoinStore is given the lists the service decodes, JoinTable the columns
the batch pipeline gives.

Memory: predictions waiting (no label yet) with ids of 8 and 36 bytes: the table's bytes per
waiting prediction (its arrays' nbytes), tracemalloc's count of what building it kept as a
cross-check, and the same count for JoinStore.
"""

from __future__ import annotations

import argparse
import gc
import time
import tracemalloc
import uuid

import numpy as np

from driftwire.stream.join.store import OUTCOMES, JoinStore
from driftwire.stream.join.table import LABELS, PREDICTIONS, JoinTable, warm_up

RATE = 1000.0  # predictions per second of event time
TTL = 60.0
MAX_PENDING = 200_000


def stream(n: int, seed: int = 0) -> dict:
    """The events in time order: kind (0 prediction, 1 label), id, time, and per prediction its
    value and per label its value and offset."""
    rng = np.random.default_rng(seed)
    t = 1.7e9 + np.arange(n) / RATE
    ids = [str(uuid.UUID(bytes=rng.bytes(16))) for _ in range(n)]
    predicted = (rng.random(n) < 0.3).astype(float)
    labelled = rng.random(n) >= 0.1
    label_t = t + rng.uniform(0.0, 30.0, n)
    orphan = np.arange(0, n, 10)
    orphan_t = t[orphan] + rng.uniform(0.0, 30.0, orphan.size)
    orphan_ids = [f"{uuid.UUID(bytes=rng.bytes(16))}" for _ in range(orphan.size)]
    kind = np.concatenate([np.zeros(n, int), np.ones(int(labelled.sum()) + orphan.size, int)])
    times = np.concatenate([t, label_t[labelled], orphan_t])
    all_ids = ids + [ids[i] for i in np.flatnonzero(labelled)] + orphan_ids
    values = np.concatenate([predicted, predicted[labelled], np.ones(orphan.size)])
    order = np.argsort(times, kind="stable")
    return {"kind": kind[order], "ids": [all_ids[i] for i in order], "time": times[order], "value": values[order]}


def batches(events: dict, size: int) -> tuple[list, list]:
    """Per batch, JoinStore's input and JoinTable's."""
    raw = [i.encode() for i in events["ids"]]
    lengths = np.fromiter(map(len, raw), np.int64, len(raw))
    starts = np.concatenate([[0], np.cumsum(lengths)[:-1]])
    buf = np.frombuffer(b"".join(raw), np.uint8)
    store, table = [], []
    offset = 0
    for lo in range(0, len(raw), size):
        k = np.arange(lo, min(lo + size, len(raw)))
        kind = events["kind"][k]
        p, lab = k[kind == 0], k[kind == 1]
        ids = [events["ids"][i] for i in p]
        values, times = events["value"][p].tolist(), events["time"][p].tolist()
        messages = (p - lo).tolist()
        store_labels = [("churn", events["ids"][i], events["value"][i], events["time"][i], offset + j, int(i - lo))
                        for j, i in enumerate(lab.tolist())]
        store.append(((["churn"] * len(p), ids, ["v1"] * len(p), values, [0.8] * len(p), times, messages),
                      store_labels))
        prows = np.zeros(len(p), PREDICTIONS)
        prows["id_start"], prows["id_len"], prows["value"] = starts[p], lengths[p], values
        prows["score"], prows["time"], prows["message"] = 0.8, times, messages
        lrows = np.zeros(len(lab), LABELS)
        lrows["id_start"], lrows["id_len"], lrows["value"] = starts[lab], lengths[lab], events["value"][lab]
        lrows["time"], lrows["offset"], lrows["message"] = events["time"][lab], offset + np.arange(len(lab)), lab - lo
        offset += len(lab)
        table.append((buf, prows, lrows))
    return store, table


def run_store(inputs: list) -> tuple[float, int, dict]:
    store = JoinStore(TTL, MAX_PENDING)
    pairs, counts = 0, dict.fromkeys(OUTCOMES, 0)
    start = time.perf_counter()
    for predictions, labels in inputs:
        store.add_predictions(*predictions)
        for label in labels:
            store.add_label(*label)
        pairs += len(store.take_pairs())
        store.take_shared()
        for outcome, n in store.take_counts().items():
            counts[outcome] += n
    return time.perf_counter() - start, pairs, counts


def run_table(inputs: list) -> tuple[float, int, dict, tuple]:
    """Also what the table holds half way: its arrays' bytes, waiting predictions, waiting labels
    and joined keys remembered."""
    table = JoinTable(TTL, MAX_PENDING)
    pairs, counts = 0, dict.fromkeys(OUTCOMES, 0)
    elapsed = 0.0
    for k, (buf, predictions, labels) in enumerate(inputs):
        start = time.perf_counter()
        table.add_predictions(buf, predictions)
        table.add_labels(buf, labels)
        pairs += len(table.take_pairs().rows)
        table.take_shared()
        for outcome, n in table.take_counts().items():
            counts[outcome] += n
        elapsed += time.perf_counter() - start
        if k == len(inputs) // 2:
            half = (sum(table.memory().values()), table.pending_predictions, table.pending_labels, table.remembered)
    return elapsed, pairs, counts, half


def waiting(n: int, id_bytes: int) -> tuple[dict, int, int]:
    """Memory of ``n`` predictions waiting: the table's arrays by name, tracemalloc's count for
    the table and for a JoinStore."""
    raw = b"".join(_id(i, id_bytes).encode() for i in range(n))
    rows = np.zeros(n, PREDICTIONS)
    rows["id_start"], rows["id_len"] = np.arange(n) * id_bytes, id_bytes
    rows["time"], rows["score"], rows["message"] = 1.7e9 + np.arange(n) / RATE, 0.8, np.arange(n)
    buf = np.frombuffer(raw, np.uint8)
    kept = []
    # the store's event ids are made inside its measure: it keeps the strings it is given
    for build in (lambda: _fill_table(buf, rows), lambda: _fill_store(n, id_bytes, rows["time"].tolist())):
        gc.collect()
        tracemalloc.start()
        before = tracemalloc.get_traced_memory()[0]
        made = build()
        gc.collect()
        kept.append((made, tracemalloc.get_traced_memory()[0] - before))
        tracemalloc.stop()
    (table, table_bytes), (_, store_bytes) = kept
    assert table.pending_predictions == n
    return table.memory(), table_bytes, store_bytes


def _fill_table(buf, rows) -> JoinTable:
    table = JoinTable(TTL, MAX_PENDING * 10)
    for lo in range(0, len(rows), 5000):
        table.add_predictions(buf, rows[lo:lo + 5000])
    return table


def _fill_store(n: int, id_bytes: int, times: list) -> JoinStore:
    store = JoinStore(TTL, MAX_PENDING * 10)
    for lo in range(0, n, 5000):
        k = range(lo, min(lo + 5000, n))
        store.add_predictions(["churn"] * len(k), [_id(i, id_bytes) for i in k], ["v1"] * len(k), [0.0] * len(k),
                              [0.8] * len(k), times[lo:lo + 5000], list(k))
    return store


def _id(i: int, id_bytes: int) -> str:
    return f"{i:0{id_bytes}x}"[-id_bytes:]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--events", type=int, default=1_000_000, help="predictions in the stream")
    parser.add_argument("--batch", type=int, default=5000, help="messages per batch")
    parser.add_argument("--waiting", type=int, default=200_000, help="predictions waiting, for the memory")
    args = parser.parse_args()
    warm_up()
    events = stream(args.events)
    store_inputs, table_inputs = batches(events, args.batch)
    labels = int(events["kind"].sum())
    print(f"{args.events:,} predictions, {labels:,} labels ({args.events // 10:,} of events never predicted), "
          f"ids of 36 bytes, batches of {args.batch:,} messages, ttl {TTL:g} s, max_pending {MAX_PENDING:,}")
    store_s, store_pairs, store_counts = run_store(store_inputs)
    table_s, table_pairs, table_counts, (held, predictions, labels, joined) = run_table(table_inputs)
    assert (table_pairs, table_counts) == (store_pairs, store_counts), (table_counts, store_counts)
    print(f"\n{'':12}{'seconds':>10}{'pairs/s':>14}")
    print(f"{'JoinStore':12}{store_s:10.2f}{store_pairs / store_s:14,.0f}")
    print(f"{'JoinTable':12}{table_s:10.2f}{table_pairs / table_s:14,.0f}   ({store_s / table_s:.1f}x)")
    print(f"same outcomes: {table_counts}")
    entries = predictions + labels + joined
    print(f"half way, the table held {predictions:,} waiting predictions, {labels:,} waiting labels and {joined:,} "
          f"joined events remembered in {held / 2**20:.1f} MiB of arrays: {held / entries:.0f} bytes per entry")
    print(f"\nmemory with {args.waiting:,} predictions waiting (bytes per waiting prediction)")
    print(f"{'id bytes':>8}{'table arrays':>14}{'of which entries':>18}{'ids':>6}{'index':>7}"
          f"{'table tracemalloc':>19}{'JoinStore tracemalloc':>23}")
    for id_bytes in (8, 36):
        arrays, table_bytes, store_bytes = waiting(args.waiting, id_bytes)
        n = args.waiting
        print(f"{id_bytes:8}{sum(arrays.values()) / n:14.1f}{arrays['preds'] / n:18.1f}{arrays['ids'] / n:6.1f}"
              f"{(arrays['refs'] + arrays['ctl']) / n:7.1f}{table_bytes / n:19.1f}{store_bytes / n:23.1f}")


if __name__ == "__main__":
    main()
