"""The `driftwire` command as a user runs it: broker, simulate, demo."""

from __future__ import annotations

import os
import re
import signal
import subprocess
import sys

import pytest
from confluent_kafka.admin import AdminClient

from busutil import read_topic
from driftwire.stream.broker import free_port

pytestmark = pytest.mark.broker

DRIFTWIRE = [sys.executable, "-m", "driftwire.stream.cli"]


def run(args, env=None, timeout=120) -> subprocess.CompletedProcess:
    return subprocess.run([*DRIFTWIRE, *args], capture_output=True, text=True, timeout=timeout,
                          env={**os.environ, **(env or {})})


def test_broker_serves_until_interrupted_and_exits_0():
    port = free_port()
    proc = subprocess.Popen([*DRIFTWIRE, "broker", "--port", str(port)], stdout=subprocess.PIPE, text=True)
    try:
        assert f"127.0.0.1:{port}" in proc.stdout.readline()
        admin = AdminClient({"bootstrap.servers": f"127.0.0.1:{port}"})
        assert admin.list_topics(timeout=10).brokers
    finally:
        proc.send_signal(signal.SIGINT)
        assert proc.wait(20) == 0


def test_simulate_produces_the_events_it_says(broker, names):
    topic = names["predictions_topic"]
    result = run(["simulate", "--bootstrap-servers", broker.bootstrap_servers, "--topic", topic,
                  "--events", "1500", "--rate", "0", "--drift", "churn-model:tenure_months@200:2"])
    assert result.returncode == 0, result.stderr
    assert f"produced 1500 events to {topic}" in result.stdout
    assert len(read_topic(broker.bootstrap_servers, topic, expect=1500)) == 1500


def test_simulate_rejects_a_malformed_drift():
    result = run(["simulate", "--drift", "no-at-sign"])
    assert result.returncode == 2 and "MODEL:FEATURE@EVENT" in result.stderr


def test_demo_runs_end_to_end_and_reports_the_injected_drift():
    result = run(["demo", "--duration", "35", "--drift-after", "8", "--metrics-port", "0"], timeout=180,
                 env={"DRIFTWIRE_BOOTSTRAP_SERVERS": ""})
    out = result.stdout
    assert result.returncode == 0, out[-3000:] + result.stderr[-3000:]
    assert "starting the embedded Kafka-protocol broker" in out
    assert re.search(r"ALERT critical data_drift +model=fraud-detector@v3 signal=amount", out), out[-3000:]
    summary = out[out.index("summary after"):]
    assert re.search(r"\d+ x fraud-detector / amount / (adwin|page_hinkley)", summary)
    produced = int(re.search(r"produced (\d+) events", summary).group(1))
    consumed = int(re.search(r"consumed (\d+) valid", summary).group(1))
    assert produced > 50_000 and consumed > produced // 2, summary
