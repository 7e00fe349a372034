"""Crash and shutdown: `driftwire run` as a real process, killed with SIGKILL or stopped with SIGTERM."""

from __future__ import annotations

import os
import random
import signal
import subprocess
import sys
import threading
import time
import urllib.request

import orjson
import pytest
import yaml

from busutil import (
    NUMERIC_MODEL,
    committed_total,
    fast_config,
    metric_samples,
    produce_events,
    produce_paced,
    read_topic,
    simulated,
    total,
    wait_until,
)
from driftwire.stream import simulate
from driftwire.stream.broker import FAST_GROUP_CONFIG, free_port
from driftwire.stream.service import ensure_topics

pytestmark = pytest.mark.broker


_STARTED: list[subprocess.Popen] = []


@pytest.fixture(autouse=True)
def _no_service_outlives_its_test():
    yield
    while _STARTED:
        proc = _STARTED.pop()
        if proc.poll() is None:
            proc.kill()
            proc.wait(10)


def start_service(settings, config_path, log_path, **env_overrides) -> subprocess.Popen:
    env = dict(os.environ)
    env.update({
        "DRIFTWIRE_BOOTSTRAP_SERVERS": settings.bootstrap_servers,
        "DRIFTWIRE_GROUP_ID": settings.group_id,
        "DRIFTWIRE_PREDICTIONS_TOPIC": settings.predictions_topic,
        "DRIFTWIRE_FEATURES_TOPIC": settings.features_topic,
        "DRIFTWIRE_ALERTS_TOPIC": settings.alerts_topic,
        "DRIFTWIRE_DLQ_TOPIC": settings.dlq_topic,
        "DRIFTWIRE_STATE_TOPIC": settings.state_topic,
        "DRIFTWIRE_LABELS_TOPIC": settings.labels_topic,
        "DRIFTWIRE_METRICS_PORT": "0",
        "DRIFTWIRE_CHECKPOINT_INTERVAL": "0.5",
        # Small batches, so a kill lands between checkpoints with work in flight.
        "DRIFTWIRE_BATCH_SIZE": "500",
        **env_overrides,
    })
    with open(log_path, "ab") as log:
        proc = subprocess.Popen([sys.executable, "-m", "driftwire.stream.cli", "run", "--config", str(config_path)],
                                env=env, stdout=log, stderr=subprocess.STDOUT)
    _STARTED.append(proc)
    return proc


def write_config(tmp_path, **extra):
    path = tmp_path / "driftwire.yaml"
    data = {"consumer": {k: str(v) for k, v in FAST_GROUP_CONFIG.items()}, **extra}
    path.write_text(yaml.safe_dump(data))
    return path


def alert_ids(settings) -> set[str]:
    return {orjson.loads(r.value())["alert_id"] for r in read_topic(settings.bootstrap_servers, settings.alerts_topic)}


def test_sigkill_mid_stream_and_restart_loses_no_alert(settings, names, tmp_path):
    # Every detection alerts (no cooldown), so the alerts are a deterministic function of the log.
    config_path = write_config(tmp_path, defaults={"cooldown": 0, "warmup": 300})
    ensure_topics(settings, fast_config())
    drifts = [simulate.Drift("pricing", "f1", start=4_000, shift=1.0),
              simulate.Drift("pricing", "f6", start=9_000, shift=-1.5, scale=2.0)]
    events = simulated(15_000, drifts=drifts, models=(NUMERIC_MODEL,))
    topics = [settings.predictions_topic]

    def committed():
        return committed_total(settings.bootstrap_servers, settings.group_id, topics)

    # The crashing run reads the stream while it is produced, and is killed twice mid-stream.
    produced = [0]
    producer = threading.Thread(target=produce_paced, args=(settings, events, 30.0, produced))

    def start_ready():
        port = free_port()
        proc = start_service(settings, config_path, tmp_path / "crash.log",
                             DRIFTWIRE_METRICS_PORT=str(port), DRIFTWIRE_CHECKPOINT_INTERVAL="2.0")
        wait_until(lambda: ready(port), 60, what="the service to be ready")
        return proc, port

    proc, port = start_ready()
    resumed_at = 0  # the committed offsets the running process started from
    producer.start()
    # at random points of the stream and of the checkpoint cycle, the same ones in every run
    pauses = random.Random(3).sample([0.3, 0.8, 1.3, 1.9, 2.6, 3.1], 2)
    for pause in pauses:
        time.sleep(pause)
        # Kill it with work done since its last checkpoint: processed, maybe alerted, not committed.
        wait_until(lambda p=port, r=resumed_at: r + _events_total(p) > committed() + 100, 30, interval=0.02,
                   what="processed but uncommitted events")
        proc.send_signal(signal.SIGKILL)
        proc.wait(10)
        assert produced[0] < len(events), "the stream should still be flowing"
        resumed_at = committed()  # nothing commits between the kill and the next start
        proc, port = start_ready()
    producer.join()
    try:
        wait_until(lambda: committed() == len(events), 120, interval=0.5, what="the last run to commit everything")
    finally:
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(30) == 0
    got = alert_ids(settings)

    # The reference: one uninterrupted run over the same log, in its own group.
    reference = settings.model_copy(update={"group_id": names["group_id"] + "-ref",
                                            "alerts_topic": names["alerts_topic"] + "-ref",
                                            "state_topic": names["state_topic"] + "-ref"})
    proc = start_service(reference, config_path, tmp_path / "reference.log")
    try:
        wait_until(lambda: committed_total(reference.bootstrap_servers, reference.group_id, topics) == len(events),
                   120, interval=0.5, what="the reference run to commit everything")
    finally:
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(30) == 0
    expected = alert_ids(reference)
    assert len(expected) >= 2, "the injected drifts should alert"
    missing = expected - got
    assert not missing, f"{len(missing)} of {len(expected)} alerts lost across SIGKILL + restart"
    assert got == expected, "a replay produces the same alert ids, never new ones"


def ready(port: int) -> bool:
    try:
        return urllib.request.urlopen(f"http://127.0.0.1:{port}/readyz", timeout=2).status == 200
    except OSError:
        return False


def test_sigterm_flushes_commits_what_was_processed_and_exits_0(settings, tmp_path):
    config_path = write_config(tmp_path)
    ensure_topics(settings, fast_config())
    events = simulated(5_000)
    produce_events(settings.bootstrap_servers, settings.predictions_topic, events)
    port = free_port()
    # No periodic checkpoint: the only commit is the one SIGTERM makes.
    proc = start_service(settings, config_path, tmp_path / "run.log",
                         DRIFTWIRE_CHECKPOINT_INTERVAL="3600", DRIFTWIRE_METRICS_PORT=str(port))
    topics = [settings.predictions_topic]
    try:
        wait_until(lambda: _events_total(port) == len(events), 60, interval=0.2, what="all events processed")
        assert committed_total(settings.bootstrap_servers, settings.group_id, topics) == 0
    finally:
        proc.send_signal(signal.SIGTERM)
        code = proc.wait(30)
    assert code == 0, (tmp_path / "run.log").read_text()[-3000:]
    assert committed_total(settings.bootstrap_servers, settings.group_id, topics) == len(events)


def _events_total(port: int) -> float:
    try:
        return total(metric_samples(port), "driftwire_events_total")
    except OSError:
        return -1.0
