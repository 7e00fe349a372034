"""The load-test harness runs ``driftwire run`` end to end against the embedded broker and reports
throughput, alert latency and detection delay that hold together."""

from __future__ import annotations

import json
import subprocess
import sys
from importlib.metadata import version
from pathlib import Path

import pytest

pytest.importorskip("matplotlib")

pytestmark = pytest.mark.broker

ROOT = Path(__file__).resolve().parents[1]
DURATION = 30.0


def test_harness_detects_every_injection_and_writes_its_report(broker, tmp_path):
    out = tmp_path / "results"
    done = subprocess.run(
        [sys.executable, "-m", "load_tests.harness", "--bootstrap-servers", broker.bootstrap_servers,
         "--rate", "2000", "--duration", str(DURATION), "--first-injection", "8", "--injection-every", "12",
         "--drain", "15", "--out", str(out)],
        cwd=ROOT, capture_output=True, text=True, timeout=120,
    )
    assert done.returncode == 0, done.stderr[-3000:]
    assert "driftwire load test" in done.stdout and "alert latency" in done.stdout

    for name in ("summary.json", "summary.md", "load-test.png"):
        assert (out / name).is_file(), name
    png = (out / "load-test.png").read_bytes()
    assert png[:8] == b"\x89PNG\r\n\x1a\n"
    assert len(png) > 20_000  # a drawn chart, not an empty canvas

    summary = json.loads((out / "summary.json").read_text())
    injections = summary["injections"]
    assert len(injections) == 2
    assert {(i["model"], i["feature"]) for i in injections} == {("fraud-detector", "amount"),
                                                                ("churn-model", "monthly_charges")}
    for inj in injections:
        assert inj["detected"], inj
        assert 0 < inj["latency_s"] < DURATION, inj
        assert inj["delay_events"] >= 0, inj
        assert inj["alert_arrived_s"] > inj["first_drifted_produced_s"]
        assert inj["alert_source"]["topic"] == summary["config"]["topics"]["predictions"]
    assert summary["missed"] == []
    assert summary["false_alarms"] == []
    assert summary["latency_s"]["count"] == 2 and 0 < summary["latency_s"]["p50"] <= summary["latency_s"]["p99"]

    thr = summary["throughput"]
    assert thr["consumed_events_per_s"] > 0
    assert 1000 < thr["produced_events_per_s"] < 3000  # the target rate, give or take a shared machine
    assert thr["consumed_total"] == thr["produced_total"]  # driftwire counted every event produced

    md = (out / "summary.md").read_text()
    facts = ("python -m load_tests.harness", "CPUs", "GiB RAM", "Python", f"driftwire {version('driftwire')}")
    for fact in facts:
        assert fact in md, fact
