"""The `driftwire` command as a user runs it: broker, simulate, demo."""

from __future__ import annotations

import os
import re
import signal
import socket
import subprocess
import sys
import time
from importlib import metadata
from pathlib import Path

import pytest
from confluent_kafka.admin import AdminClient

from busutil import read_topic
from driftwire.stream.broker import EmbeddedBroker, free_port
from driftwire.stream.cli import CONNECT_TIMEOUT, build_parser, main

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


def test_demo_runs_end_to_end_and_reports_the_injected_drift(tmp_path):
    # stderr merged into stdout, in order: nothing may follow the summary
    result = subprocess.run([*DRIFTWIRE, "demo", "--duration", "35", "--drift-after", "8", "--metrics-port", "0"],
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, timeout=180,
                            env={**os.environ, "DRIFTWIRE_BOOTSTRAP_SERVERS": "", "TMPDIR": str(tmp_path)})
    out = result.stdout
    assert result.returncode == 0, out[-3000:]
    assert "starting the embedded Kafka-protocol broker" in out
    assert re.search(r"ALERT critical data_drift +model=fraud-detector@v3 signal=amount", out), out[-3000:]
    summary = out[out.index("summary after"):]
    assert re.search(r"\d+ x fraud-detector / amount / (adwin|page_hinkley)", summary)
    produced = int(re.search(r"produced (\d+) events", summary).group(1))
    consumed = int(re.search(r"consumed (\d+) valid", summary).group(1))
    assert produced > 50_000 and consumed > produced // 2, summary
    assert re.search(r"dead-lettered \d+ \(malformed events the demo injects on purpose\)", summary), summary
    # librdkafka's lines (%3|...|FAIL|...) come from clients left alive as the broker stops
    assert not re.search(r"^%\d\|", summary, re.MULTILINE), summary
    assert not list(tmp_path.glob("driftwire-tansu-*.log"))


def test_the_embedded_broker_removes_the_log_it_created_and_keeps_one_it_was_given(tmp_path):
    broker = EmbeddedBroker()
    with broker:
        created = Path(broker.log_path)
        assert created.exists()
    assert not created.exists() and "tansu" in broker.log_tail()
    given = tmp_path / "tansu.log"
    with EmbeddedBroker(log_path=str(given)):
        pass
    assert given.exists()


def one_line(result: subprocess.CompletedProcess, code: int) -> str:
    """The single stderr line of a command that failed with ``code``."""
    assert result.returncode == code, (result.returncode, result.stdout[-2000:], result.stderr[-3000:])
    lines = result.stderr.splitlines()
    assert len(lines) == 1, result.stderr[-3000:]
    return lines[0]


@pytest.mark.parametrize("command", ["run", "simulate", "demo"])
def test_an_unreachable_broker_is_one_line_within_the_connect_timeout(command):
    started = time.monotonic()
    result = run([command, "--bootstrap-servers", "127.0.0.1:1", "--connect-timeout", "2"], timeout=60)
    line = one_line(result, 3)
    assert line.startswith(f"driftwire {command}: cannot reach the Kafka broker at 127.0.0.1:1 within 2 s (")
    assert "Connection refused" in line and line.endswith("set --bootstrap-servers or DRIFTWIRE_BOOTSTRAP_SERVERS")
    assert time.monotonic() - started < 20


CONFIG_ERRORS = [
    ("bad.yaml", "defaults:\n  detectors: [\n", "bad.yaml:3:1: not valid YAML or JSON"),
    ("bad.json", '{"defaults": {"detectors": [}', "bad.json:1:29: not valid YAML or JSON"),
    ("extra.yaml", "defaults:\n  detectors:\n    - name: adwin\n      nme: 1\n",
     "extra.yaml: defaults.detectors.0.nme=1: Extra inputs are not permitted"),
    ("unknown.yaml", "defaults:\n  detectors:\n    - name: nosuch\n", "unknown.yaml: detector 'nosuch'"),
    ("list.json", "[1, 2]", "list.json: the config must be a mapping, got list"),
]


@pytest.mark.parametrize("name, text, expected", CONFIG_ERRORS, ids=[c[0] for c in CONFIG_ERRORS])
def test_a_bad_config_file_is_one_line_naming_it(tmp_path, name, text, expected):
    (tmp_path / name).write_text(text)
    result = run(["run", "--config", str(tmp_path / name), "--bootstrap-servers", "127.0.0.1:1"], timeout=60)
    assert expected in one_line(result, 2)


def test_a_missing_config_file_and_a_bad_setting_are_one_line():
    line = one_line(run(["run", "--config", "/no/such/config.yaml"]), 2)
    assert line == ("driftwire run: cannot read the config file /no/such/config.yaml: No such file or directory: "
                    "check --config (or DRIFTWIRE_CONFIG)")
    line = one_line(run(["simulate"], env={"DRIFTWIRE_METRICS_PORT": "many"}), 2)
    assert line.startswith("driftwire simulate: bad setting DRIFTWIRE_METRICS_PORT='many': ")
    line = one_line(run(["run"], env={"DRIFTWIRE_LOG_LEVEL": "chatty"}), 2)
    assert "unknown log level 'chatty'" in line
    line = one_line(run(["demo", "--config", "/no/such/config.yaml"]), 2)
    assert "cannot read the config file /no/such/config.yaml" in line


def test_a_taken_port_is_one_line(broker):
    result = run(["broker", "--port", broker.bootstrap_servers.rsplit(":", 1)[1]], timeout=60)
    assert "cannot listen on " in one_line(result, 2)
    with socket.socket() as taken:
        taken.bind(("0.0.0.0", 0))
        taken.listen()
        port = taken.getsockname()[1]
        result = run(["run", "--bootstrap-servers", broker.bootstrap_servers, "--metrics-port", str(port)])
    assert f"cannot serve metrics on 0.0.0.0:{port}" in one_line(result, 2)


def test_version(capsys):
    with pytest.raises(SystemExit) as exit_:
        main(["--version"])
    assert exit_.value.code == 0
    assert capsys.readouterr().out == f"driftwire {metadata.version('driftwire')}\n"


@pytest.mark.parametrize("command", ["run", "simulate", "demo", "broker", "profile", "warm-up"])
def test_every_command_help_shows_its_defaults(capsys, command):
    with pytest.raises(SystemExit) as exit_:
        build_parser().parse_args([command, "--help"])
    assert exit_.value.code == 0
    text = " ".join(capsys.readouterr().out.split())
    assert "exit status: 0 done" in text
    expected = {
        "run": [f"(default: {CONNECT_TIMEOUT})", "default: $DRIFTWIRE_BOOTSTRAP_SERVERS or localhost:9092"],
        "simulate": ["(default: 1000.0)", "(default: 0)", "(default: until Ctrl-C)"],
        "demo": ["seconds to run (default: 60.0)", "(default: 3000.0)", "(default: 20.0)"],
        "broker": ["address to listen on (default: 127.0.0.1)", "(default: 9092)"],
        "profile": ["(default: 10)", "(default: 20)", "(default: label)", "(default: ,)", "(default: unknown)"],
        "warm-up": [],
    }[command]
    for snippet in expected:
        assert snippet in text, (snippet, text)
