"""Label drift: the labels of each model version's joined predictions in windows of their own,
compared with the profile's labels or with the first labels."""

from __future__ import annotations

import json

import numpy as np
import pytest
from scipy.stats import chi2_contingency, ks_2samp

from driftwire.schemas import ReferenceProfile
from driftwire.stream.alert.publish import alert_id
from driftwire.stream.cli import main as cli_main
from driftwire.stream.detect.monitor import PartitionMonitor, SeriesBudget
from driftwire.stream.join.batch import Pairs
from driftwire.stream.join.store import Pair
from driftwire.stream.profiling import build_profile
from driftwire.stream.settings import DetectionConfig

WINDOW = 1000


def config(**fields) -> DetectionConfig:
    return DetectionConfig.model_validate({"windows": {"size": WINDOW, "reference_size": 2 * WINDOW}, **fields})


def monitor_of(cfg: DetectionConfig, profiles=None) -> PartitionMonitor:
    monitor = PartitionMonitor("predictions", 0, cfg, SeriesBudget(100), profiles)
    monitor.enable_join(ttl=60.0, max_pending=10_000)
    return monitor


def pairs_of(labels, version: str = "v1", first: int = 0) -> list[Pair]:
    """Pairs of model churn whose prediction is always right, one per second from ``first``."""
    return [Pair("churn", version, f"e{first + i}", label, None, label, float(first + i), i, first + i)
            for i, label in enumerate(labels)]


def feed(monitor, pairs, batch: int = 333) -> list:
    closes = []
    for start in range(0, len(pairs), batch):
        chunk = pairs[start:start + batch]
        closes += monitor.observe_labels(Pairs.of(chunk, monitor.join_codes), np.array([p.time for p in chunk]))
    return closes


def binary_labels(rng, n: int, positive: float) -> list[bool]:
    return (rng.random(n) < positive).tolist()


def test_a_shift_of_the_class_balance_shows_in_the_label_windows_of_its_version():
    rng = np.random.default_rng(1)
    labels = binary_labels(rng, 4 * WINDOW, 0.3) + binary_labels(rng, 2 * WINDOW, 0.5)
    monitor = monitor_of(config())
    closes = feed(monitor, pairs_of(labels))
    # the first 2,000 labels are the reference; then four windows of 1,000
    assert [c.events for c in closes] == [WINDOW] * 4
    ws = monitor.label_series("churn", "v1", "classification")
    series = monitor.window_series[ws]
    assert (series.signal, series.kind, series.model_version) == ("label", "label_drift", "v1")
    assert all(monitor.label_group(c.group) for c in closes)
    assert [c.last_offset for c in closes] == [2999, 3999, 4999, 5999]  # the labels' offsets
    pvalues = [c.series[ws]["chi_square_pvalue"] for c in closes]
    reference = np.bincount(labels[:2 * WINDOW], minlength=2)
    for close, start in zip(closes, range(2 * WINDOW, 6 * WINDOW, WINDOW)):
        window = np.bincount(labels[start:start + WINDOW], minlength=2)
        expected = chi2_contingency(np.array([reference, window])).pvalue  # Yates, as scipy
        assert close.series[ws]["chi_square_pvalue"] == pytest.approx(expected, rel=1e-6, abs=1e-12)
    assert min(pvalues[:2]) > 0.01 and max(pvalues[2:]) < 1e-10
    # the feature windows of the same version are another group, untouched by labels
    assert monitor.window_group("churn", "v1") not in {c.group for c in closes}


def test_each_version_has_its_own_label_windows():
    rng = np.random.default_rng(2)
    labels = binary_labels(rng, 3 * WINDOW, 0.3)
    monitor = monitor_of(config())
    pairs = [p for pair in zip(pairs_of(labels, "v1"), pairs_of(labels, "v2")) for p in pair]
    closes = feed(monitor, pairs)
    v1 = monitor.label_series("churn", "v1", "classification")
    v2 = monitor.label_series("churn", "v2", "classification")
    assert v1 != v2
    assert sorted(monitor.group_keys[c.group][1] for c in closes) == ["v1", "v2"]


def test_regression_labels_are_numeric_and_compared_as_the_feature_windows_are():
    rng = np.random.default_rng(3)
    labels = rng.normal(10, 2, 3 * WINDOW).tolist() + rng.normal(11, 2, WINDOW).tolist()
    monitor = monitor_of(config())
    closes = feed(monitor, pairs_of(labels))
    ws = monitor.label_series("churn", "v1", "regression")
    assert monitor.windows.kind[ws] == 0  # numeric
    stats = [c.series[ws] for c in closes]
    assert stats[0]["ks_pvalue"] > 0.01 and stats[1]["ks_pvalue"] < 1e-10
    exact = ks_2samp(labels[:2 * WINDOW], labels[3 * WINDOW:])
    # the reference is a quantile sketch: the statistic within its rank error
    assert stats[1]["ks"] == pytest.approx(exact.statistic, abs=0.02)


def test_a_profile_with_labels_is_the_reference_from_the_first_label(tmp_path):
    data = tmp_path / "train.csv"
    rng = np.random.default_rng(4)
    rows = ["x,target"] + [f"{x:.3f},{int(y)}" for x, y in zip(rng.normal(size=3000), rng.random(3000) < 0.3)]
    data.write_text("\n".join(rows) + "\n")
    profile = build_profile(data, "churn", "v1", label_column="target")
    assert set(profile.signals) == {"x"}
    assert profile.label.type == "categorical" and set(profile.label.frequencies) == {"0", "1"}
    monitor = monitor_of(config(), {("churn", "v1"): profile})
    labels = [int(v) for v in binary_labels(rng, WINDOW, 0.3) + binary_labels(rng, WINDOW, 0.6)]
    closes = feed(monitor, pairs_of(labels))
    ws = monitor.label_series("churn", "v1", "classification")
    assert [c.events for c in closes] == [WINDOW, WINDOW]  # no learning: windows from the first label
    assert closes[0].series[ws]["chi_square_pvalue"] > 0.01
    assert closes[1].series[ws]["chi_square_pvalue"] < 1e-10
    assert closes[1].series[ws]["unseen_rate"] == 0.0  # integral labels are the classes "0" and "1"


def test_a_profile_whose_labels_are_of_the_other_task_is_not_used(tmp_path, caplog):
    rng = np.random.default_rng(5)
    data = tmp_path / "rows.jsonl"
    data.write_text("".join(json.dumps({"event_id": str(i), "features": {"x": 1.0}, "label": v}) + "\n"
                            for i, v in enumerate(rng.normal(size=500).tolist())))
    profile = build_profile(data, "churn", "*")
    assert profile.label.type == "numeric"
    monitor = monitor_of(config(), {("churn", "*"): profile})
    closes = feed(monitor, pairs_of(binary_labels(rng, 3 * WINDOW, 0.3)))
    assert "learn their reference from live labels" in caplog.text
    assert [c.events for c in closes] == [WINDOW]  # after 2,000 labels of reference


def test_label_windows_follow_the_config():
    rng = np.random.default_rng(6)
    pairs = pairs_of(binary_labels(rng, 3 * WINDOW, 0.3))
    off = monitor_of(config(models={"churn": {"signals": {"label": {"enabled": False}}}}))
    assert feed(off, pairs) == [] and off.label_series("churn", "v1", "classification") == -1
    no_windows = monitor_of(config(models={"churn": {"windows": {"enabled": False}}}))
    assert feed(no_windows, pairs) == []
    other_model = monitor_of(config(models={"fraud": {"signals": {"label": {"enabled": False}}}}))
    assert len(feed(other_model, pairs)) == 1


def test_a_restored_monitor_continues_its_label_windows_exactly():
    rng = np.random.default_rng(7)
    labels = binary_labels(rng, 2 * WINDOW + 2500, 0.3) + binary_labels(rng, 2000, 0.45)
    pairs = pairs_of(labels)
    whole = monitor_of(config())
    expected = feed(whole, pairs)
    first = monitor_of(config())
    cut = 2 * WINDOW + 1700
    got = feed(first, pairs[:cut])
    restored = monitor_of(config())
    restored.set_state(json.loads(json.dumps(first.get_state())))
    got += feed(restored, pairs[cut:])
    ws = restored.label_series("churn", "v1", "classification")
    assert restored.window_series[ws].kind == "label_drift"
    assert [(c.number, c.events, c.last_offset) for c in got] == [(c.number, c.events, c.last_offset)
                                                                   for c in expected]
    assert [c.series[ws]["chi_square"] for c in got] == [c.series[ws]["chi_square"] for c in expected]


def test_window_alerts_of_two_versions_on_one_label_record_have_their_own_ids():
    rng = np.random.default_rng(8)
    labels = binary_labels(rng, 3 * WINDOW, 0.3)
    monitor = monitor_of(config())
    closes = feed(monitor, [p for pair in zip(pairs_of(labels, "v1"), pairs_of(labels, "v2")) for p in pair])
    ids = {alert_id("labels", 0, c.last_offset, monitor.group_keys[c.group][1], "label", "chi_square", "critical")
           for c in closes}
    assert closes[0].last_offset == closes[1].last_offset
    assert len(ids) == 2


def test_the_profile_command_writes_the_labels_of_event_shaped_rows(tmp_path, capsys):
    data = tmp_path / "events.jsonl"
    rows = [{"event_id": str(i), "features": {"x": i * 0.5}, "prediction": i % 3 == 0, "label": ["a", "b", "c"][i % 3]}
            for i in range(300)]
    data.write_text("".join(json.dumps(r) + "\n" for r in rows))
    out = tmp_path / "ref.json"
    assert cli_main(["profile", str(data), "--model", "m", "--out", str(out)]) == 0
    assert "categorical labels" in capsys.readouterr().out
    profile = ReferenceProfile.model_validate_json(out.read_text())
    assert set(profile.signals) == {"x", "prediction"}
    assert profile.label.frequencies == {"a": 100, "b": 100, "c": 100}
    flat = tmp_path / "flat.csv"
    flat.write_text("x,y\n1.5,0.25\n2.5,0.75\n")
    assert cli_main(["profile", str(flat), "--model", "m", "--label-column", "y", "--out", str(out)]) == 0
    profile = ReferenceProfile.model_validate_json(out.read_text())
    assert set(profile.signals) == {"x"} and profile.label.type == "numeric" and profile.label.count == 2
    assert cli_main(["profile", str(flat), "--model", "m", "--out", str(out)]) == 0
    assert ReferenceProfile.model_validate_json(out.read_text()).label is None
