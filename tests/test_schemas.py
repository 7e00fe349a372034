"""The event models accept the contract's events, refuse the rest by field, and match their JSON Schemas."""

from __future__ import annotations

import json
import math
import re
import subprocess
import sys
import uuid
from datetime import UTC, datetime, timedelta, timezone

import jsonschema
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from pydantic import ValidationError

from driftwire.schemas import (
    EVENT_MODELS,
    SCHEMA_DIR,
    AlertSource,
    AlertWindow,
    DriftAlert,
    FeatureEvent,
    LabelEvent,
    ModelComparison,
    PredictionEvent,
    ReferenceProfile,
    RetrainRequest,
    json_schemas,
    write_json_schemas,
)

REGENERATE = "run `python -m driftwire.schemas` to regenerate the schema files"
SCHEMA_OF = {model: json_schemas()[f"{name}.schema.json"] for name, model in EVENT_MODELS.items()}
RFC3339_UTC = re.compile(r"^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}(\.\d+)?Z$")

BASE = {"event_id": "e-1", "model": "churn"}


def schema_validator(model) -> jsonschema.Draft202012Validator:
    return jsonschema.Draft202012Validator(SCHEMA_OF[model])


def error_fields(exc: ValidationError) -> set:
    return {e["loc"][0] for e in exc.errors() if e["loc"]}


# ---------------------------------------------------------------------------------------- schema files


def test_committed_schema_files_match_the_models():
    committed = {p.name for p in SCHEMA_DIR.glob("*.schema.json")}
    exported = json_schemas()
    assert committed == set(exported), f"schema files differ from the models' list: {REGENERATE}"
    for file_name, schema in exported.items():
        on_disk = json.loads((SCHEMA_DIR / file_name).read_text(encoding="utf-8"))
        assert on_disk == schema, f"{file_name} is out of date: {REGENERATE}"


def test_module_entry_point_writes_the_committed_files(tmp_path):
    subprocess.run([sys.executable, "-m", "driftwire.schemas", str(tmp_path)], check=True, capture_output=True)
    for file_name in json_schemas():
        assert (tmp_path / file_name).read_text(encoding="utf-8") == (SCHEMA_DIR / file_name).read_text(
            encoding="utf-8"
        ), f"{file_name}: {REGENERATE}"


def test_write_json_schemas_returns_the_paths(tmp_path):
    paths = write_json_schemas(tmp_path / "out")
    assert sorted(p.name for p in paths) == sorted(json_schemas())
    assert all(p.is_file() for p in paths)


@pytest.mark.parametrize("file_name", sorted(json_schemas()))
def test_schemas_are_valid_documented_2020_12(file_name):
    schema = json_schemas()[file_name]
    jsonschema.Draft202012Validator.check_schema(schema)
    assert schema["$schema"] == "https://json-schema.org/draft/2020-12/schema"
    assert schema["$id"].endswith(file_name.removesuffix(".schema.json"))
    assert schema["title"] and schema["description"]
    subschemas = [schema, *schema.get("$defs", {}).values()]
    for sub in subschemas:
        for field, prop in sub["properties"].items():
            assert prop.get("description"), f"{file_name}: field {field!r} has no description"


def test_event_models_names():
    assert EVENT_MODELS == {
        "prediction_event": PredictionEvent,
        "feature_event": FeatureEvent,
        "label_event": LabelEvent,
        "drift_alert": DriftAlert,
        "reference_profile": ReferenceProfile,
        "retrain_request": RetrainRequest,
        "model_comparison": ModelComparison,
    }


# ---------------------------------------------------------------------------------------- valid events

VALID = [
    (PredictionEvent, {**BASE, "prediction": 1}),
    (PredictionEvent, {**BASE, "prediction": "churn", "score": 0.87, "model_version": "v3"}),
    (PredictionEvent, {**BASE, "prediction": True, "score": 1, "timestamp": 1714564800}),
    (PredictionEvent, {**BASE, "prediction": -2.5e-3, "timestamp": 1714564800.125, "features": None}),
    (
        PredictionEvent,
        {
            **BASE,
            "prediction": 0,
            "timestamp": "2024-05-01T12:00:00Z",
            "features": {"age": 41, "income": 5.2e4, "plan": "pro", "active": False, "region": None},
        },
    ),
    (PredictionEvent, {**BASE, "prediction": 0, "model_version": None, "score": None, "timestamp": None}),
    (PredictionEvent, {**BASE, "prediction": 0, "trace_id": "abc", "extra": {"nested": [1, 2]}}),
    (FeatureEvent, {**BASE, "features": {}}),
    (FeatureEvent,
     {**BASE, "features": {"x": 1.5, "": "empty names are names"}, "timestamp": "2024-05-01T14:00:00+02:00"}),
    (LabelEvent, {**BASE, "label": "churn"}),
    (LabelEvent, {**BASE, "label": 3, "model_version": "v3", "timestamp": "2024-05-01T12:00:00.5-03:00"}),
    (LabelEvent, {**BASE, "label": False, "source_system": "crm"}),
]


@pytest.mark.parametrize(("model", "doc"), VALID)
def test_valid_events_validate(model, doc):
    from_python = model.model_validate(doc)
    from_json = model.model_validate_json(json.dumps(doc))
    assert from_python == from_json
    schema_validator(model).validate(doc)


@pytest.mark.parametrize(("model", "doc"), VALID)
def test_unknown_fields_are_dropped(model, doc):
    event = model.model_validate({**doc, "added_later": 1})
    assert "added_later" not in event.model_dump()


def test_defaults_and_nulls():
    event = PredictionEvent.model_validate({**BASE, "prediction": 1, "model_version": None, "features": None})
    assert event.model_version == "unknown"
    assert event.features == {}
    assert event.timestamp is None and event.score is None
    assert PredictionEvent.model_validate({**BASE, "prediction": 1}).model_version == "unknown"
    assert LabelEvent.model_validate({**BASE, "label": 1}).model_version == "unknown"


def test_features_default_is_not_shared():
    a = PredictionEvent.model_validate({**BASE, "prediction": 1})
    a.features["x"] = 1.0
    assert PredictionEvent.model_validate({**BASE, "prediction": 1}).features == {}


def test_values_keep_their_json_type():
    event = PredictionEvent.model_validate(
        {**BASE, "prediction": 1, "score": 1, "features": {"i": 2, "f": 2.0, "b": True, "s": "2", "n": None}}
    )
    assert type(event.prediction) is int
    assert [type(v) for v in event.features.values()] == [int, float, bool, str, type(None)]


@pytest.mark.parametrize(
    ("timestamp", "epoch"),
    [
        (1714564800, 1714564800.0),
        (-1.5, -1.5),
        ("2024-05-01T12:00:00Z", 1714564800.0),
        ("2024-05-01T12:00:00+00:00", 1714564800.0),
        ("2024-05-01T14:00:00+02:00", 1714564800.0),
        ("2024-05-01T12:00:00.250Z", 1714564800.25),
    ],
)
def test_timestamp_becomes_epoch_seconds(timestamp, epoch):
    event = LabelEvent.model_validate({**BASE, "label": 1, "timestamp": timestamp})
    assert type(event.timestamp) is float
    assert event.timestamp == epoch


# ---------------------------------------------------------------------------------------- invalid events

# (model, document, field the error must name, whether the JSON Schema can see the fault too)
INVALID = [
    (PredictionEvent, {"model": "m", "prediction": 1}, "event_id", True),
    (PredictionEvent, {"event_id": "e", "prediction": 1}, "model", True),
    (PredictionEvent, {**BASE}, "prediction", True),
    (FeatureEvent, {**BASE}, "features", True),
    (LabelEvent, {**BASE}, "label", True),
    (PredictionEvent, {**BASE, "event_id": "", "prediction": 1}, "event_id", True),
    (PredictionEvent, {**BASE, "model": "", "prediction": 1}, "model", True),
    (PredictionEvent, {**BASE, "event_id": 7, "prediction": 1}, "event_id", True),
    (PredictionEvent, {**BASE, "model": None, "prediction": 1}, "model", True),
    (PredictionEvent, {**BASE, "model_version": 2, "prediction": 1}, "model_version", True),
    (PredictionEvent, {**BASE, "prediction": None}, "prediction", True),
    (PredictionEvent, {**BASE, "prediction": [1]}, "prediction", True),
    (PredictionEvent, {**BASE, "prediction": {"class": 1}}, "prediction", True),
    (PredictionEvent, {**BASE, "prediction": 1, "score": "0.9"}, "score", True),
    (PredictionEvent, {**BASE, "prediction": 1, "score": True}, "score", True),
    (PredictionEvent, {**BASE, "prediction": 1, "features": [1, 2]}, "features", True),
    (PredictionEvent, {**BASE, "prediction": 1, "features": {"a": {"b": 1}}}, "features", True),
    (PredictionEvent, {**BASE, "prediction": 1, "features": {"a": [1, 2]}}, "features", True),
    (FeatureEvent, {**BASE, "features": None}, "features", True),
    (FeatureEvent, {**BASE, "features": {"ok": 1, "bad": []}}, "features", True),
    (LabelEvent, {**BASE, "label": None}, "label", True),
    (LabelEvent, {**BASE, "label": [0]}, "label", True),
    (LabelEvent, {**BASE, "label": 1, "timestamp": True}, "timestamp", True),
    (LabelEvent, {**BASE, "label": 1, "timestamp": [1714564800]}, "timestamp", True),
    # Date-time formats are not asserted by default JSON Schema validation, only by the models.
    (LabelEvent, {**BASE, "label": 1, "timestamp": "yesterday"}, "timestamp", False),
    (LabelEvent, {**BASE, "label": 1, "timestamp": "1714564800"}, "timestamp", False),
    (LabelEvent, {**BASE, "label": 1, "timestamp": "2024-05-01T12:00:00"}, "timestamp", False),
    (LabelEvent, {**BASE, "label": 1, "timestamp": "2024-13-01T12:00:00Z"}, "timestamp", False),
    (LabelEvent, {**BASE, "label": 1, "timestamp": ""}, "timestamp", False),
]


@pytest.mark.parametrize(("model", "doc", "field", "schema_sees_it"), INVALID)
def test_invalid_events_are_refused_naming_the_field(model, doc, field, schema_sees_it):
    for validate in (lambda: model.model_validate(doc), lambda: model.model_validate_json(json.dumps(doc))):
        with pytest.raises(ValidationError) as exc:
            validate()
        assert error_fields(exc.value) == {field}
        assert field in str(exc.value)
    assert schema_validator(model).is_valid(doc) is not schema_sees_it


NON_FINITE = [math.nan, math.inf, -math.inf, 10**309, -(10**309)]
NON_FINITE_JSON = ["NaN", "Infinity", "-Infinity", "1e999", "-1e400"]


@pytest.mark.parametrize(
    ("model", "field", "make"),
    [
        (PredictionEvent, "prediction", lambda v: {**BASE, "prediction": v}),
        (PredictionEvent, "score", lambda v: {**BASE, "prediction": 1, "score": v}),
        (PredictionEvent, "features", lambda v: {**BASE, "prediction": 1, "features": {"x": 1, "y": v}}),
        (FeatureEvent, "features", lambda v: {**BASE, "features": {"y": v}}),
        (LabelEvent, "label", lambda v: {**BASE, "label": v}),
        (LabelEvent, "timestamp", lambda v: {**BASE, "label": 1, "timestamp": v}),
    ],
)
def test_non_finite_numbers_are_refused(model, field, make):
    for value in NON_FINITE:
        with pytest.raises(ValidationError, match="finite number") as exc:
            model.model_validate(make(value))
        assert error_fields(exc.value) == {field}
    for literal in NON_FINITE_JSON:
        text = json.dumps(make("__value__")).replace('"__value__"', literal)
        with pytest.raises(ValidationError, match="finite number") as exc:
            model.model_validate_json(text)
        assert error_fields(exc.value) == {field}


def test_feature_error_names_the_feature():
    with pytest.raises(ValidationError) as exc:
        FeatureEvent.model_validate({**BASE, "features": {"ok": 1, "bad": {"x": 1}}})
    (error,) = exc.value.errors()
    assert error["loc"] == ("features", "bad")
    assert "got object" in error["msg"]


def test_event_must_be_an_object():
    for text in ("[1, 2]", '"event"', "3", "null"):
        with pytest.raises(ValidationError):
            PredictionEvent.model_validate_json(text)


# ---------------------------------------------------------------------------------------- random events

names = st.text(min_size=1, max_size=12)
finite = st.floats(allow_nan=False, allow_infinity=False) | st.integers(-(2**70), 2**70)
values = finite | st.text(max_size=8) | st.booleans()
feature_values = values | st.none()
timestamps = st.none() | finite | st.datetimes(
    min_value=datetime(1970, 1, 2), max_value=datetime(2200, 1, 1), timezones=st.sampled_from(
        [UTC, timezone(timedelta(hours=5, minutes=30)), timezone(timedelta(hours=-8))]
    )
).map(lambda d: d.isoformat().replace("+00:00", "Z"))


@st.composite
def prediction_docs(draw):
    doc = {"event_id": draw(names), "model": draw(names), "prediction": draw(values)}
    optional = {
        "model_version": st.none() | names,
        "timestamp": timestamps,
        "features": st.none() | st.dictionaries(st.text(max_size=8), feature_values, max_size=6),
        "score": st.none() | finite,
        "unknown_extra": st.integers(),
    }
    for key, strategy in optional.items():
        if draw(st.booleans()):
            doc[key] = draw(strategy)
    return doc


@settings(max_examples=150, deadline=None)
@given(prediction_docs())
def test_random_valid_events_validate_everywhere(doc):
    event = PredictionEvent.model_validate(doc)
    assert PredictionEvent.model_validate_json(json.dumps(doc)) == event
    schema_validator(PredictionEvent).validate(doc)
    assert event.prediction == doc["prediction"]
    assert event.features == (doc.get("features") or {})


@settings(max_examples=100, deadline=None)
@given(prediction_docs(), st.sampled_from([math.nan, math.inf, -math.inf]), st.text(max_size=8))
def test_one_non_finite_feature_spoils_the_event(doc, bad, name):
    doc["features"] = {**(doc.get("features") or {}), name: bad}
    with pytest.raises(ValidationError) as exc:
        PredictionEvent.model_validate(doc)
    assert error_fields(exc.value) == {"features"}


# ---------------------------------------------------------------------------------------- alerts


def make_alert(**overrides) -> DriftAlert:
    fields = dict(
        model="churn",
        model_version="v3",
        signal="income",
        kind="data_drift",
        detector="adwin",
        severity="critical",
        statistic=0.31,
        threshold=0.002,
        event_time=datetime(2024, 5, 1, 14, 0, 0, 250000, tzinfo=timezone(timedelta(hours=2))),
        window=AlertWindow(
            start=datetime(2024, 5, 1, 9, tzinfo=UTC), end="2024-05-01T12:00:00.25Z", count=1200
        ),
        source=AlertSource(topic="predictions", partition=2, offset=981),
        details={"mean_before": 0.1, "mean_after": 0.4, "width": 1200},
    )
    fields.update(overrides)
    return DriftAlert(**fields)


def test_alert_round_trips_through_json():
    alert = make_alert()
    text = alert.model_dump_json()
    assert DriftAlert.model_validate_json(text) == alert
    assert DriftAlert.model_validate(json.loads(text)) == alert


def test_alert_times_are_rfc3339_utc():
    doc = json.loads(make_alert().model_dump_json())
    times = [doc["event_time"], doc["detected_at"], doc["window"]["start"], doc["window"]["end"]]
    for t in times:
        assert RFC3339_UTC.match(t), t
        assert datetime.fromisoformat(t).utcoffset() == timedelta(0)
    assert doc["event_time"] == "2024-05-01T12:00:00.250000Z"
    assert doc["window"]["start"] == "2024-05-01T09:00:00Z"


def test_alert_datetimes_are_utc_in_python():
    alert = make_alert()
    for t in (alert.event_time, alert.detected_at, alert.window.start, alert.window.end):
        assert t.utcoffset() == timedelta(0)
    assert alert.event_time == datetime(2024, 5, 1, 12, 0, 0, 250000, tzinfo=UTC)


def test_alert_defaults():
    before = datetime.now(UTC)
    a, b = make_alert(), make_alert(window=None, statistic=None, threshold=None, details={})
    assert uuid.UUID(a.alert_id).version == 4 and a.alert_id != b.alert_id
    assert before <= a.detected_at <= datetime.now(UTC)
    assert json.loads(b.model_dump_json())["window"] is None


def test_alert_json_matches_its_schema():
    validator = schema_validator(DriftAlert)
    for alert in (make_alert(), make_alert(window=None, statistic=None, threshold=None, severity="warning")):
        doc = json.loads(alert.model_dump_json())
        validator.validate(doc)
        assert set(doc) == set(SCHEMA_OF[DriftAlert]["required"])


@pytest.mark.parametrize(
    ("overrides", "field"),
    [
        ({"kind": "drift"}, "kind"),
        ({"severity": "info"}, "severity"),
        ({"model": ""}, "model"),
        ({"signal": ""}, "signal"),
        ({"detector": None}, "detector"),
        ({"statistic": math.nan}, "statistic"),
        ({"threshold": math.inf}, "threshold"),
        ({"statistic": "0.3"}, "statistic"),
        ({"event_time": datetime(2024, 5, 1, 12)}, "event_time"),
        ({"event_time": "2024-05-01T12:00:00"}, "event_time"),
        ({"detected_at": "not a time"}, "detected_at"),
        ({"window": {"start": "2024-05-01T12:00:00Z", "end": "2024-05-01T11:00:00Z", "count": 3}}, "window"),
        ({"window": {"start": "2024-05-01T11:00:00Z", "end": "2024-05-01T12:00:00Z", "count": 0}}, "window"),
        ({"source": {"topic": "predictions", "partition": -1, "offset": 0}}, "source"),
        ({"source": {"topic": "predictions", "partition": 0}}, "source"),
        ({"source": None}, "source"),
    ],
)
def test_invalid_alerts_are_refused_naming_the_field(overrides, field):
    with pytest.raises(ValidationError) as exc:
        make_alert(**overrides)
    assert error_fields(exc.value) == {field}


def test_alert_ignores_unknown_fields():
    doc = {**json.loads(make_alert().model_dump_json()), "added_later": True}
    assert "added_later" not in DriftAlert.model_validate(doc).model_dump()


def test_a_retrain_request_round_trips_and_matches_its_schema():
    alert = make_alert()
    request = RetrainRequest(
        request_id="r1", model=alert.model, model_versions=[alert.model_version],
        requested_at=alert.detected_at, event_time=alert.event_time,
        reasons=[{"alert_id": alert.alert_id, "model_version": alert.model_version, "kind": "concept_drift",
                  "signal": "error", "detector": "ddm", "severity": "critical", "event_time": alert.event_time}],
        labelled_events=1500, labels=[{"topic": "labels", "partition": 2, "start_offset": 10, "end_offset": 1510}])
    text = request.model_dump_json()
    assert RetrainRequest.model_validate_json(text) == request
    doc = json.loads(text)
    schema_validator(RetrainRequest).validate(doc)
    assert set(doc) == set(SCHEMA_OF[RetrainRequest]["required"])
    with pytest.raises(ValidationError):
        RetrainRequest.model_validate({**doc, "reasons": []})  # a request always has a cause
