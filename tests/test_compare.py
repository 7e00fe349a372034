"""Champion/challenger comparison over the join: shadow (shared events) and canary (split traffic)."""

from __future__ import annotations

import json

import jsonschema
import numpy as np
import pytest

from driftwire.schemas import SCHEMA_DIR, ModelComparison
from driftwire.stream.detect.compare import ComparisonTracker
from driftwire.stream.detect.outcomes import OutcomeTracker
from driftwire.stream.join.batch import JoinCodes, Pairs
from driftwire.stream.join.store import JoinStore
from driftwire.stream.settings import DetectionConfig

#: codes of the models, versions and classes of the pairs fed to the trackers
_CODES = JoinCodes()


def tracker(**comparison) -> ComparisonTracker:
    config = DetectionConfig.model_validate({"comparison": comparison})
    return ComparisonTracker(config, OutcomeTracker(config))


def feed(tracker, store, events, label_lag=0):
    """events: (event_id, label, {version: prediction}); labels come ``label_lag`` events later."""
    evaluations = []
    pending = []
    for i, (event_id, label, predictions) in enumerate(events):
        for version, prediction in predictions.items():
            store.add_prediction("m", event_id, version, prediction, None, time=float(i), message=0)
        pending.append((event_id, label, i))
        while pending and pending[0][2] <= i - label_lag:
            eid, lab, t = pending.pop(0)
            if lab is not None:
                store.add_label("m", eid, lab, time=float(t), offset=t, message=0)
        evaluations += tracker.observe(store.take_shared(), Pairs.of(store.take_pairs(), _CODES))
    for eid, lab, t in pending:
        if lab is not None:
            store.add_label("m", eid, lab, time=float(t), offset=t, message=0)
    return evaluations + tracker.observe(store.take_shared(), Pairs.of(store.take_pairs(), _CODES))


def shadow(n, champion_error, flip, fix=0.0, seed=0, labelled=True):
    """A binary champion wrong on ``champion_error`` of the events; the challenger flips ``flip``
    of the champion's predictions at random and corrects ``fix`` of its errors."""
    rng = np.random.default_rng(seed)
    events = []
    for i in range(n):
        label = bool(rng.random() < 0.5)
        a = label if rng.random() >= champion_error else not label
        b = (not a) if rng.random() < flip else a
        if a != label and rng.random() < fix:
            b = label
        events.append((f"e{i}", label if labelled else None, {"v1": a, "v2": b}))
    return events


def store():
    return JoinStore(ttl=1e9, max_pending=100_000)


def test_a_challenger_that_flips_15_percent_of_the_predictions_is_rolled_back():
    t = tracker(every=1000, min_labels=500)
    evaluations = feed(t, store(), shadow(6000, 0.10, 0.15), label_lag=30)
    last = evaluations[-1]
    assert (last.champion, last.challenger) == ("v1", "v2")
    assert last.recommendation == "rollback"
    details = ModelComparison.model_validate(last.details)
    assert details.basis == "paired" and details.metric == "accuracy"
    assert details.shared_events == 6000
    assert 5900 < details.labelled_events <= 6000  # the last labels come after the last evaluation
    assert details.agreement == pytest.approx(0.85, abs=0.015)
    assert details.agreement_low < details.agreement < details.agreement_high
    # flipping 15%: 13.5% of the events go from right to wrong, 1.5% from wrong to right
    assert details.advantage == pytest.approx(-0.12, abs=0.015)
    assert details.high < 0 and details.pvalue < 1e-6
    assert details.champion_value == pytest.approx(0.90, abs=0.015)
    assert details.challenger_value - details.champion_value == pytest.approx(details.advantage)
    # the alert goes out once: the first evaluation that turned to rollback
    turned = [e for e in evaluations if e.changed]
    assert [e.recommendation for e in turned] == ["rollback"]


def test_a_challenger_better_on_labels_is_promoted():
    evaluations = feed(tracker(every=1000, min_labels=500), store(), shadow(6000, 0.10, 0.0, fix=0.5), label_lag=30)
    last = evaluations[-1]
    assert last.recommendation == "promote"
    assert last.details["basis"] == "paired"
    assert last.details["low"] > 0
    assert last.details["advantage"] == pytest.approx(0.05, abs=0.01)


def test_identical_versions_keep_testing_and_raise_nothing():
    evaluations = feed(tracker(every=1000, min_labels=500), store(), shadow(6000, 0.10, 0.0))
    assert len(evaluations) >= 6
    assert {e.recommendation for e in evaluations} == {"keep-testing"}
    assert not any(e.changed for e in evaluations)
    assert evaluations[-1].details["agreement"] == 1.0
    assert evaluations[-1].details["distance"]["value"] == pytest.approx(0.0, abs=1e-12)


def test_before_min_labels_the_recommendation_waits_unless_agreement_is_below_its_floor():
    events = shadow(3000, 0.10, 0.15, labelled=False)
    waiting = feed(tracker(every=1000, min_labels=500), store(), events)
    assert {e.details["basis"] for e in waiting} == {"insufficient"}
    assert {e.recommendation for e in waiting} == {"keep-testing"}
    assert waiting[-1].details["labelled_events"] == 0 and waiting[-1].details["advantage"] is None
    floored = feed(tracker(every=1000, min_labels=500, min_agreement=0.95), store(), events)
    assert floored[0].recommendation == "rollback" and floored[0].details["basis"] == "agreement"
    assert floored[0].details["agreement_high"] < 0.95


def test_a_canary_on_split_traffic_is_judged_on_each_versions_own_labels():
    rng = np.random.default_rng(3)
    events = []
    for i in range(20_000):
        label = bool(rng.random() < 0.5)
        version = "v2" if rng.random() < 0.2 else "v1"  # a 20% canary
        error = 0.25 if version == "v2" else 0.10
        prediction = label if rng.random() >= error else not label
        events.append((f"e{i}", label, {version: prediction}))
    t = tracker(every=500, min_labels=500, champion="v1")
    evaluations = feed(t, store(), events, label_lag=10)
    last = evaluations[-1]
    assert last.details["basis"] == "independent" and last.details["shared_events"] == 0
    assert last.details["agreement"] is None
    assert last.recommendation == "rollback"
    assert last.details["champion_value"] == pytest.approx(0.90, abs=0.01)
    assert last.details["challenger_value"] == pytest.approx(0.75, abs=0.02)
    assert last.details["labelled_events"] == pytest.approx(4000, rel=0.1)  # the canary's share


def test_a_regression_challenger_is_compared_on_paired_absolute_errors():
    rng = np.random.default_rng(5)
    events = []
    for i in range(4000):
        y = float(rng.normal(10.0, 3.0))
        events.append((f"e{i}", y, {"v1": y + float(rng.normal(0, 1.0)), "v2": y + float(rng.normal(0, 1.3))}))
    evaluations = feed(tracker(every=1000, min_labels=500), store(), events, label_lag=20)
    last = evaluations[-1]
    assert last.details["metric"] == "mae" and last.details["basis"] == "paired"
    assert last.recommendation == "rollback"
    # E|N(0, s)| = s sqrt(2/pi)
    assert last.details["champion_value"] == pytest.approx(0.798, rel=0.05)
    assert last.details["challenger_value"] == pytest.approx(1.3 * 0.798, rel=0.05)
    assert last.details["advantage"] == pytest.approx(last.details["champion_value"] - last.details["challenger_value"])
    assert last.details["agreement"] is None  # no agreement_tolerance
    assert last.details["distance"]["statistic"] == "ks"


def test_a_label_between_the_two_predictions_still_pairs_them():
    t = tracker(every=1, min_labels=1)
    s = store()
    s.add_prediction("m", "e1", "v1", "cat", None, time=1.0, message=0)
    s.add_label("m", "e1", "dog", time=2.0, offset=0, message=1)
    s.add_prediction("m", "e1", "v2", "dog", None, time=3.0, message=2)
    (evaluation,) = t.observe(s.take_shared(), Pairs.of(s.take_pairs(), _CODES))
    assert evaluation.details["shared_events"] == 1 and evaluation.details["labelled_events"] == 1
    assert evaluation.details["agreement"] == 0.0
    assert evaluation.details["challenger_value"] == 1.0 and evaluation.details["champion_value"] == 0.0


def test_a_restored_tracker_continues_where_the_checkpoint_left_it():
    events = shadow(6000, 0.10, 0.15, seed=9)
    whole = feed(tracker(every=1000, min_labels=500), store(), events)
    first, s = tracker(every=1000, min_labels=500), store()
    feed(first, s, events[:3000])
    second = tracker(every=1000, min_labels=500)
    second.outcomes.set_state(first.outcomes.get_state())
    second.set_state(first.get_state())
    resumed = feed(second, s, events[3000:])
    strip = lambda e: {k: v for k, v in e.details.items() if k != "distance"}  # noqa: E731
    assert strip(resumed[-1]) == strip(whole[-1])
    assert [e.changed for e in resumed] == [e.changed for e in whole[-len(resumed):]]


def test_comparison_can_be_turned_off_per_model():
    config = DetectionConfig.model_validate({"models": {"m": {"comparison": {"enabled": False}}}})
    t = ComparisonTracker(config, OutcomeTracker(config))
    assert feed(t, store(), shadow(3000, 0.1, 0.15)) == []


def test_the_details_of_every_evaluation_match_the_published_schema():
    schema = json.loads((SCHEMA_DIR / "model_comparison.schema.json").read_text())
    validator = jsonschema.Draft202012Validator(schema)
    evaluations = feed(tracker(every=500, min_labels=500), store(), shadow(3000, 0.10, 0.15), label_lag=600)
    kinds = {e.details["basis"] for e in evaluations}
    assert kinds == {"insufficient", "paired"}  # labels trail by 600 events: the first evaluation has too few
    for evaluation in evaluations:
        doc = json.loads(ModelComparison.model_validate(evaluation.details).model_dump_json())
        validator.validate(doc)
        assert set(doc) == set(schema["required"])
