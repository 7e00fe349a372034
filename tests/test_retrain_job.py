"""The example retraining job (examples/retrain_job.py): requests deduped and merged per model without
Kafka, then on the broker: a run reads exactly the labels its requests point to, and the job's offsets
on the requests topic advance only once the run that includes them is done."""

from __future__ import annotations

import importlib.util
import io
import json
import sys
import threading
from collections import Counter
from pathlib import Path

import pytest
from confluent_kafka import Producer
from confluent_kafka.admin import AdminClient, NewTopic

from busutil import committed_total, wait_until
from driftwire.schemas import RetrainRequest
from driftwire.stream.broker import FAST_GROUP_CONFIG

_SPEC = importlib.util.spec_from_file_location(
    "retrain_job", Path(__file__).resolve().parent.parent / "examples" / "retrain_job.py")
job = sys.modules["retrain_job"] = importlib.util.module_from_spec(_SPEC)  # registered first: dataclasses look it up
_SPEC.loader.exec_module(job)


def request(request_id: str, model: str, ranges, alerts=("a1",), version="v3", labels_topic="labels") -> RetrainRequest:
    return RetrainRequest.model_validate({
        "request_id": request_id, "model": model, "model_versions": [version],
        "requested_at": "2026-01-01T00:00:10Z", "event_time": "2026-01-01T00:00:09Z",
        "reasons": [{"alert_id": a, "model_version": version, "kind": "concept_drift", "signal": "label",
                     "detector": "ddm", "severity": "critical", "event_time": f"2026-01-01T00:00:0{i}Z"}
                    for i, a in enumerate(alerts)],
        "labelled_events": sum(end - start for _, start, end in ranges),
        "labels": [{"topic": labels_topic, "partition": p, "start_offset": start, "end_offset": end}
                   for p, start, end in ranges],
    })


def spans(ranges) -> list[tuple]:
    return [(r.topic, r.partition, r.start_offset, r.end_offset) for r in ranges]


# -- without Kafka ------------------------------------------------------------------------------------

def test_requests_of_two_replicas_merge_into_one_run_with_the_union_of_their_ranges():
    planner = job.RetrainPlanner(window=30)
    # replica A owns labels partitions 0 and 1, replica B saw 0 late, 1 adjacent, 2, and 3 with a gap
    a = request("r-a", "fraud", [(0, 10, 40), (1, 0, 20)], alerts=("a1", "a2"), version="v3")
    b = request("r-b", "fraud", [(0, 35, 50), (1, 20, 30), (2, 5, 9), (3, 0, 5), (3, 10, 15), (3, 7, 7)],
                alerts=("a2", "a3"), version="v4")
    other = request("r-c", "pricing", [(0, 0, 3)])
    assert planner.add(a, now=100.0, token=(0, 0))
    assert planner.add(b, now=110.0, token=(0, 1))
    assert not planner.add(a, now=112.0, token=(0, 2)), "a redelivered request is a duplicate"
    assert planner.add(other, now=115.0, token=(1, 0))

    assert planner.due(129.9) == []  # fraud's first request came 29.9 s ago
    [run] = planner.due(130.0)
    assert run.model == "fraud" and [r.request_id for r in run.requests] == ["r-a", "r-b"]
    assert run.tokens == [(0, 0), (0, 1)]
    assert run.versions == ["v3", "v4"]
    assert [r.alert_id for r in run.reasons] == ["a1", "a2", "a3"]  # a2 came in both: once
    assert spans(run.ranges) == [("labels", 0, 10, 50), ("labels", 1, 0, 30), ("labels", 2, 5, 9),
                                 ("labels", 3, 0, 5), ("labels", 3, 10, 15)]  # a gap is not read; empty dropped

    [run] = planner.due(145.0)
    assert run.model == "pricing" and spans(run.ranges) == [("labels", 0, 0, 3)]
    assert planner.due(1000.0) == []
    # a request redelivered after its run was done is still a duplicate; a new one starts a new run
    assert not planner.add(b, now=1000.0)
    assert planner.add(request("r-d", "fraud", [(0, 50, 60)]), now=1000.0)
    [run] = planner.due(1030.0)
    assert [r.request_id for r in run.requests] == ["r-d"]


def test_dedupe_memory_is_bounded_oldest_forgotten_first():
    planner = job.RetrainPlanner(window=0, remember=2)
    for rid in ("r1", "r2", "r3"):
        assert planner.add(request(rid, "fraud", [(0, 0, 1)]), now=0.0)
    assert not planner.add(request("r3", "fraud", [(0, 0, 1)]), now=0.0)
    assert planner.add(request("r1", "fraud", [(0, 0, 1)]), now=0.0), "r1 should have been forgotten"
    assert len(planner._seen) == 2


# -- on the broker ------------------------------------------------------------------------------------

VALUES = ["ok", "ok", "fraud", True, 1, "ok", 2.5]


def _labels(producer: Producer, topic: str) -> dict[tuple[int, int], dict | None]:
    """50 labels on partition 0 (a malformed record among them) and 30 on partition 1, every 10th of another
    model; returns (partition, offset) -> the label event (None for the malformed one) as delivered."""
    delivered = {}
    plan = [(0, i) for i in range(50)] + [(0, "bad")] + [(1, i) for i in range(30)]
    plan.insert(20, plan.pop(50))  # the malformed record at offset 20 of partition 0
    for partition, i in plan:
        if i == "bad":
            event, value = None, b'{"event_id": "e-bad", "model": "fraud"'
        else:
            event = {"event_id": f"e{partition}-{i}", "model": "pricing" if i % 10 == 5 else "fraud",
                     "model_version": "v3", "label": VALUES[i % len(VALUES)]}
            value = json.dumps(event).encode()

        def report(err, msg, event=event):
            assert err is None, err
            delivered[(msg.partition(), msg.offset())] = event

        producer.produce(topic, value, key=b"fraud", partition=partition, on_delivery=report)
        producer.flush(10)  # one at a time: the offsets of the plan, whatever the client batches
    return delivered


def _run_job(argv: list[str]):
    out, stop = io.StringIO(), threading.Event()
    failure = []

    def target():
        try:
            job.main(argv, stop_event=stop, out=out)
        except BaseException as exc:  # noqa: BLE001 - re-raised in the test thread
            failure.append(exc)

    thread = threading.Thread(target=target, daemon=True)
    thread.start()
    return out, stop, thread, failure


def _stop(stop, thread, failure):
    stop.set()
    thread.join(30)
    assert not thread.is_alive(), "the job did not stop within 30 s"
    if failure:
        raise failure[0]


@pytest.mark.broker
def test_a_run_reads_exactly_the_requested_labels_and_commits_only_after_it(broker, names, capsys):
    bootstrap, labels_topic, retrain_topic = broker.bootstrap_servers, names["labels_topic"], names["retrain_topic"]
    admin = AdminClient({"bootstrap.servers": bootstrap})
    for future in admin.create_topics([NewTopic(labels_topic, 2), NewTopic(retrain_topic, 1)]).values():
        future.result(10)
    producer = Producer({"bootstrap.servers": bootstrap})
    delivered = _labels(producer, labels_topic)
    # two replicas' requests, one redelivered, and a record that is not a request
    first = request("r-1", "fraud", [(0, 10, 40)], alerts=("a1",), labels_topic=labels_topic)
    second = request("r-2", "fraud", [(1, 0, 30)], alerts=("a2",), version="v4", labels_topic=labels_topic)
    for value in (first.model_dump_json(), second.model_dump_json(), first.model_dump_json(), "not a request"):
        producer.produce(retrain_topic, value.encode(), key=b"fraud")
    assert producer.flush(10) == 0

    argv = ["--bootstrap-servers", bootstrap, "--topic", retrain_topic, "--group-id", names["group_id"], "--json",
            *(f"--consumer-config={k}={v}" for k, v in FAST_GROUP_CONFIG.items())]
    # a window longer than the test: the requests are read but their run is not done, so nothing is committed
    out, stop, thread, failure = _run_job([*argv, "--window", "600"])
    err = ""
    try:
        def skipped():
            nonlocal err
            err += capsys.readouterr().err
            return "not a RetrainRequest" in err
        wait_until(skipped, timeout=30, what="the job to read every request")
    finally:
        _stop(stop, thread, failure)
    assert out.getvalue() == ""
    assert committed_total(bootstrap, names["group_id"], [retrain_topic]) == 0

    # restarted, the job reads the requests again (none was skipped) and does the run
    out, stop, thread, failure = _run_job([*argv, "--window", "0.5"])
    try:
        wait_until(lambda: out.getvalue().endswith("\n"), timeout=30, what="the run")
        wait_until(lambda: committed_total(bootstrap, names["group_id"], [retrain_topic]) == 4, timeout=10,
                   what="the commit after the run")
    finally:
        _stop(stop, thread, failure)
    [summary] = [json.loads(line) for line in out.getvalue().splitlines()]  # --json: nothing else

    expected = [e for (p, o), e in delivered.items() if e and e["model"] == "fraud"
                and (p == 0 and 10 <= o < 40 or p == 1 and o < 30)]
    assert len(expected) == 53  # 29 valid records in [10, 40) of partition 0, 30 of partition 1; 6 of pricing
    assert summary["labelled_events"] == 53 and summary["invalid_labels"] == 1
    assert summary["model"] == "fraud" and summary["model_versions"] == ["v3", "v4"]
    assert summary["request_ids"] == ["r-1", "r-2"]
    reasons = [(r["kind"], r["signal"], r["detector"]) for r in summary["reasons"]]
    assert reasons == [("concept_drift", "label", "ddm")] * 2
    ranges = [(r["partition"], r["start_offset"], r["end_offset"]) for r in summary["label_ranges"]]
    assert ranges == [(0, 10, 40), (1, 0, 30)]
    key = lambda v: (type(v) is bool, v)  # noqa: E731 - True and 1 are different labels
    assert {key(v): n for v, n in summary["label_counts"]} == Counter(key(e["label"]) for e in expected)
    assert len(summary["label_counts"]) == 5 and summary["label_counts"][0][0] == "ok"
