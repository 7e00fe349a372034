"""Windowed distribution drift end to end on the embedded broker, at the default window settings:
a reference learnt from the first 10,000 events of a model version, tumbling windows of 10,000
events, the default rules."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import numpy as np
import orjson
import pytest
from confluent_kafka import Producer

from busutil import fast_config, metric_samples, read_topic, running, total, wait_until
from driftwire.detectors.profile import categorical_profile, numeric_profile
from driftwire.schemas import DriftAlert, ReferenceProfile
from driftwire.stream import simulate
from driftwire.stream.service import DriftService, ensure_topics

pytestmark = pytest.mark.broker

WINDOW = 10_000
REFERENCE = 10_000
PLANS = ["free", "basic", "pro", "team"]
PLAN_SHARES = [0.5, 0.3, 0.15, 0.05]


def _value(v):
    """A column's value as the event has it: None (NaN) leaves the feature out."""
    if isinstance(v, str):
        return v
    return None if np.isnan(v) else float(v)


def _events(model: str, columns: dict[str, np.ndarray], start: int = 0) -> list[bytes]:
    """Prediction events of ``model``; a NaN in a column leaves that feature out of the event."""
    n = len(next(iter(columns.values())))
    out = []
    for i in range(n):
        features = {name: v for name, col in columns.items() if (v := _value(col[i])) is not None}
        out.append(orjson.dumps({"event_id": f"{model}-{start + i}", "model": model, "model_version": "v1",
                                 "timestamp": 1.7e9 + (start + i) * 0.01, "prediction": 0.5,
                                 "features": features}))
    return out


def _produce(bootstrap: str, topic: str, values: list[bytes]) -> None:
    producer = Producer({"bootstrap.servers": bootstrap, "linger.ms": 20})
    for v in values:
        simulate.send(producer, topic, v)
    assert producer.flush(60) == 0


def _scenario(kind: str, rng, before: int, after: int) -> dict[str, np.ndarray]:
    """Feature x changes after ``before`` events as ``kind`` says; y never changes."""
    y = rng.normal(10.0, 2.0, before + after)
    x = rng.normal(0.0, 1.0, before + after)
    if kind == "new_category":
        x = rng.choice(PLANS, before + after, p=PLAN_SHARES).astype(object)
        x[before:][rng.random(after) < 0.10] = "enterprise"  # a plan training never had
    elif kind == "mean_shift":
        x[before:] += 0.25
    elif kind == "variance":
        x[before:] *= np.sqrt(2.0)
    elif kind == "missing":
        x[rng.random(before + after) < np.where(np.arange(before + after) < before, 0.01, 0.20)] = np.nan
    return {"x": x, "y": y}


def _alerts(bootstrap: str, topic: str) -> list[DriftAlert]:
    return [DriftAlert.model_validate_json(r.value()) for r in read_topic(bootstrap, topic, timeout=5)]


def _run(settings, values: list[bytes], windows: int, config=None) -> tuple[list[DriftAlert], dict]:
    """Alerts and metrics once every event is counted and ``windows`` windows have closed (a
    batch's events are counted before its windows close)."""
    config = config or fast_config()
    ensure_topics(settings, config)
    _produce(settings.bootstrap_servers, settings.predictions_topic, values)
    with running(DriftService(settings, config)) as service:
        port = service.metrics_port
        wait_until(lambda: total(metric_samples(port), "driftwire_events_total") >= len(values),
                   240, what="all events consumed")
        wait_until(lambda: total(metric_samples(port), "driftwire_windows_closed_total") >= windows, 30,
                   what=f"{windows} windows closed")
        samples = metric_samples(port)
    return _alerts(settings.bootstrap_servers, settings.alerts_topic), samples


def test_each_change_raises_its_alert_within_two_windows(settings):
    settings = settings.model_copy(update={"topic_partitions": 1})
    rng = np.random.default_rng(11)
    before = REFERENCE + 2 * WINDOW  # the reference, then two windows like it
    after = 2 * WINDOW
    values = []
    for kind in ("mean_shift", "variance", "missing", "new_category"):
        values += _events(kind, _scenario(kind, rng, before, after))
    alerts, samples = _run(settings, values, windows=16)
    # the windows each model version closed: 2 before the change and 2 after
    assert total(samples, "driftwire_windows_closed_total") == 16
    by_model = {}
    for a in alerts:
        by_model.setdefault(a.model, []).append(a)
    expected = {"mean_shift": ("data_drift", "ks"), "variance": ("data_drift", "ks"),
                "missing": ("data_quality", "missing_rate"), "new_category": ("data_quality", "unseen_rate")}
    for model, (kind, statistic) in expected.items():
        found = by_model.get(model, [])
        assert {(a.signal, a.kind, a.detector) for a in found} >= {("x", kind, statistic)}, (model, found)
        assert all(a.signal == "x" for a in found), f"{model}: alerts on the unchanged signal y: {found}"
        windowed = [a for a in found if a.window is not None]  # the online detectors alert too
        first = min(windowed, key=lambda a: a.source.offset)
        assert first.window.count == WINDOW
        assert first.details["window_number"] <= 3, f"{model}: first alert in window {first.details['window_number']}"
        assert first.window.start.timestamp() >= 1.7e9 + before * 0.01 - 1e-6, f"{model}: alert before the change"
    missing = next(a for a in by_model["missing"] if a.detector == "missing_rate")
    assert 0.17 < missing.statistic < 0.23 and missing.threshold == pytest.approx(0.06, abs=0.005)
    new = [a for a in by_model["new_category"] if a.window is not None]
    unseen = next(a for a in new if a.detector == "unseen_rate")
    assert 0.08 < unseen.statistic < 0.12 and unseen.threshold == 0.05
    assert unseen.details["statistics"]["top_categories"][0]["category"] == "<unseen>"
    # the plan mix moved too: the chi-square test on the categories sees it
    assert "chi_square" in {a.detector for a in new}


def test_fifty_stationary_windows_raise_no_alert(settings):
    settings = settings.model_copy(update={"topic_partitions": 1})
    rng = np.random.default_rng(5)
    n = REFERENCE + 50 * WINDOW
    columns = {
        "normal": rng.normal(0.0, 1.0, n),
        "lognormal": rng.lognormal(3.0, 0.6, n),
        "counts": rng.poisson(4.0, n).astype(float),
        "uniform": rng.uniform(-5.0, 5.0, n),
    }
    columns["normal"][rng.random(n) < 0.02] = np.nan  # a steady 2% missing
    columns["plan"] = rng.choice(PLANS, n, p=PLAN_SHARES).astype(object)
    alerts, samples = _run(settings, _events("calm", columns), windows=50)
    assert total(samples, "driftwire_windows_closed_total") == 50
    assert alerts == [], [(a.signal, a.detector, a.statistic) for a in alerts]
    psi = [v for k, v in samples["driftwire_drift_statistic"].items() if ("detector", "psi") in k]
    assert len(psi) == 6 and max(psi) < 0.02  # five features and the prediction
    chi2 = [k for k in samples["driftwire_drift_statistic"] if ("detector", "chi_square") in k]
    assert [dict(k)["signal"] for k in chi2] == ["plan"]
    # the thresholds the rules compare with, for dashboards to draw
    thresholds = {dict(k)["detector"]: v for k, v in samples["driftwire_drift_threshold"].items()
                  if ("signal", "plan") in k}
    assert thresholds == {"psi": 0.1, "chi_square_pvalue": 0.05}


def test_a_profile_file_is_the_reference_from_the_first_event(settings, tmp_path):
    settings = settings.model_copy(update={"topic_partitions": 1})
    rng = np.random.default_rng(3)
    train = rng.normal(0.0, 1.0, 100_000)
    profile = ReferenceProfile(model="scored", model_version="v1", rows=train.size, source="train",
                               signals={"x": numeric_profile(train)})
    path = tmp_path / "scored.json"
    path.write_text(profile.model_dump_json())
    live = {"x": rng.normal(0.5, 1.0, WINDOW)}  # shifted from the very first event
    config = fast_config(references=[path])
    alerts, samples = _run(settings, _events("scored", live), windows=1, config=config)
    assert total(samples, "driftwire_windows_closed_total") == 1
    found = {(a.signal, a.detector, a.severity) for a in alerts}
    assert ("x", "ks", "critical") in found and {f for f in found if f[:2] == ("x", "psi")}, found
    # the profile has no prediction: a field the reference does not know
    assert ("prediction", "new_field", "warning") in found


def test_a_profile_on_the_references_topic_replaces_the_learnt_reference(settings):
    settings = settings.model_copy(update={"topic_partitions": 1})
    rng = np.random.default_rng(4)
    train = rng.normal(3.0, 1.0, 50_000)  # the training data is far from what the stream shows
    profile = ReferenceProfile(model="shipped", model_version="v1", rows=train.size, source="train",
                               signals={"x": numeric_profile(train)})
    config = fast_config()
    ensure_topics(settings, config)
    producer = Producer({"bootstrap.servers": settings.bootstrap_servers})
    producer.produce(settings.references_topic, profile.model_dump_json().encode(), profile.key.encode())
    producer.produce(settings.references_topic, b'{"model": "broken"}', b"broken/v1")
    producer.flush(10)
    alerts, samples = _run(settings, _events("shipped", {"x": rng.normal(0.0, 1.0, WINDOW)}), windows=1,
                           config=config)
    assert total(samples, "driftwire_reference_profiles_total", outcome="ok") == 1
    assert total(samples, "driftwire_reference_profiles_total", outcome="invalid") == 1
    assert ("x", "psi", "critical") in {(a.signal, a.detector, a.severity) for a in alerts}


def test_categorical_profile_and_a_type_change(settings, tmp_path):
    """A profile with a categorical signal windows the strings of that signal against it; numbers
    turning into strings in a numeric signal raise a type change."""
    settings = settings.model_copy(update={"topic_partitions": 1})
    rng = np.random.default_rng(12)
    train = {"x": rng.normal(0.0, 1.0, 20_000), "plan": rng.choice(PLANS, 20_000, p=PLAN_SHARES).tolist()}
    profile = ReferenceProfile(model="typed", model_version="v1", rows=20_000, source="train",
                               signals={"x": numeric_profile(train["x"]), "plan": categorical_profile(train["plan"])})
    path = tmp_path / "typed.json"
    path.write_text(profile.model_dump_json())
    n = 3 * 2000
    x = rng.normal(0.0, 1.0, n).astype(object)
    x[4000:][rng.random(2000) < 0.02] = "n/a"  # the last window: an upstream job writes a string
    live = {"x": x, "plan": rng.choice(PLANS, n, p=PLAN_SHARES).astype(object)}
    config = fast_config(references=[path], windows={"size": 2000})
    alerts, samples = _run(settings, _events("typed", live), windows=3, config=config)
    found = [(a.signal, a.kind, a.detector, a.details["window_number"]) for a in alerts if a.window is not None]
    assert [f for f in found if f[0] != "prediction"] == [("x", "data_quality", "type_change", 2)], found
    change = next(a for a in alerts if a.detector == "type_change")
    assert change.details["statistics"] == {"expected": "number", "got": "string"}
    plan = [k for k in samples["driftwire_drift_statistic"] if ("signal", "plan") in k]
    assert {dict(k)["detector"] for k in plan} >= {"chi_square", "chi_square_pvalue", "psi", "js_distance"}


def test_time_windows_run_on_the_events_own_timestamps(settings):
    """Events stamped in 2020 (RFC 3339) and produced now: windows of one minute of event time."""
    settings = settings.model_copy(update={"topic_partitions": 1})
    rng = np.random.default_rng(13)
    start = datetime(2020, 3, 1, tzinfo=UTC)
    n = 7200  # 20 events a second for 360 s of event time
    x = rng.normal(0.0, 1.0, n)
    x[3600:] += 2.0  # from 180 s on
    values = [orjson.dumps({"event_id": f"t-{i}", "model": "timed", "model_version": "v1",
                            "timestamp": (start + timedelta(seconds=i * 0.05)).isoformat().replace("+00:00", "Z"),
                            "prediction": 0.5, "features": {"x": float(x[i])}}) for i in range(n)]
    config = fast_config(windows={"duration": 60, "reference_size": 1000})
    # windows close once an event is a window (the lateness) past their end: the reference takes
    # the first 50 s, then [50 s, 60 s) ... [180 s, 240 s) close
    alerts, samples = _run(settings, values, windows=4, config=config)
    assert total(samples, "driftwire_windows_closed_total") == 4
    shifted = [a for a in alerts if a.window is not None and a.signal == "x" and a.detector == "ks"]
    assert shifted, alerts
    first = min(shifted, key=lambda a: a.window.start)
    # the window of event time [180 s, 240 s): closed by an event past its end and lateness
    assert first.window.start == start + timedelta(seconds=180)
    assert first.window.end == start + timedelta(seconds=240 - 0.05)
    assert first.window.count == 1200
