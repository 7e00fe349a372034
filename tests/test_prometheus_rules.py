"""The Prometheus alerting rules: promtool's checks and unit tests, and a real Prometheus scraping driftwire."""

from __future__ import annotations

import json
import shutil
import subprocess
import urllib.parse
import urllib.request
from pathlib import Path

import pytest

from busutil import caught_up, fast_config, produce_events, running, simulated, wait_until
from driftwire.stream.broker import free_port
from driftwire.stream.service import DriftService, ensure_topics

ROOT = Path(__file__).resolve().parent.parent
RULES = ROOT / "helm" / "driftwire" / "files" / "prometheus-rules.yml"
RULE_TESTS = ROOT / "tests" / "prometheus" / "rules.test.yml"
ALERTS = {
    "DriftwireDriftDetected",
    "DriftwireCriticalDrift",
    "DriftwireConsumerLagGrowing",
    "DriftwireInvalidEventRatioHigh",
    "DriftwireModelStalled",
    "DriftwireDown",
    "DriftwireAbsent",
    "DriftwireChallengerRollback",
}


def _binary(name: str) -> str:
    path = shutil.which(name)
    if path is None:
        pytest.skip(f"{name} is not on PATH (Debian/Ubuntu: apt-get install prometheus)")
    return path


def _run(*args: str) -> subprocess.CompletedProcess:
    result = subprocess.run(args, cwd=ROOT, capture_output=True, text=True, timeout=120)
    print(result.stdout, result.stderr)
    return result


def test_promtool_accepts_the_rules_file():
    result = _run(_binary("promtool"), "check", "rules", str(RULES))
    assert result.returncode == 0, result.stdout + result.stderr
    assert f"SUCCESS: {len(ALERTS)} rules found" in result.stdout


def test_promtool_unit_tests_of_every_rule_pass():
    result = _run(_binary("promtool"), "test", "rules", str(RULE_TESTS.relative_to(ROOT)))
    assert result.returncode == 0, result.stdout + result.stderr
    tested = RULE_TESTS.read_text()
    for alert in ALERTS:
        assert f"alertname: {alert}" in tested, f"no unit test for {alert}"


def _api(port: int, path: str, **params) -> dict:
    url = f"http://127.0.0.1:{port}/api/v1/{path}"
    if params:
        url += "?" + urllib.parse.urlencode(params)
    with urllib.request.urlopen(url, timeout=5) as response:
        body = json.load(response)
    assert body["status"] == "success", body
    return body["data"]


def _query(port: int, expr: str) -> dict:
    """{frozenset of labels: value} of an instant query."""
    try:
        result = _api(port, "query", query=expr)["result"]
    except OSError:  # Prometheus still starting
        return {}
    return {frozenset(r["metric"].items()): float(r["value"][1]) for r in result}


@pytest.mark.broker
@pytest.mark.skipif(shutil.which("prometheus") is None, reason="prometheus is not on PATH (apt-get install prometheus)")
def test_a_real_prometheus_scrapes_driftwire_and_evaluates_the_rules(settings, tmp_path):
    prometheus = _binary("prometheus")
    config = fast_config()
    ensure_topics(settings, config)
    events = simulated(3_000)
    produce_events(settings.bootstrap_servers, settings.predictions_topic, events)

    with running(DriftService(settings, config)) as service:
        wait_until(caught_up(service, len(events)), 60, what="all events consumed")
        port = free_port()
        (tmp_path / "prometheus.yml").write_text(json.dumps({  # JSON is YAML
            "global": {"scrape_interval": "1s", "evaluation_interval": "1s"},
            "rule_files": [str(RULES)],
            "scrape_configs": [{
                "job_name": "driftwire",
                "static_configs": [{"targets": [f"127.0.0.1:{service.metrics_port}"]}],
            }],
        }))
        log = (tmp_path / "prometheus.log").open("w")
        server = subprocess.Popen(
            [prometheus, f"--config.file={tmp_path / 'prometheus.yml'}", f"--storage.tsdb.path={tmp_path / 'data'}",
             f"--web.listen-address=127.0.0.1:{port}"],
            stdout=log, stderr=subprocess.STDOUT,
        )
        try:
            def events_counted():
                counted = _query(port, f'sum(driftwire_events_total{{topic="{settings.predictions_topic}"}})')
                return list(counted.values()) == [len(events)]

            try:
                wait_until(events_counted, 20, interval=0.5, what="Prometheus to scrape driftwire_events_total")
            except AssertionError:
                print((tmp_path / "prometheus.log").read_text())
                raise
            by_model = _query(port, "driftwire_events_total")
            assert {dict(labels)["model"] for labels in by_model} == {"pricing"}
            assert all(dict(labels)["job"] == "driftwire" for labels in by_model)

            up = _query(port, 'up{job="driftwire"}')
            assert list(up.values()) == [1.0], up

            # Every rule loaded and evaluated without error against the live series.
            def rules_evaluated():
                groups = _api(port, "rules", type="alert")["groups"]
                rules = [r for g in groups for r in g["rules"]]
                return rules if rules and not any(r["lastEvaluation"].startswith("0001") for r in rules) else None

            rules = wait_until(rules_evaluated, 10, interval=0.5, what="the alerting rules to be evaluated")
            assert {r["name"] for r in rules} == ALERTS
            assert all(r["health"] == "ok" for r in rules), [(r["name"], r.get("lastError")) for r in rules]
            # A healthy, stationary stream: nothing fires (the stalled-model and lag rules need minutes of history).
            assert [r["name"] for r in rules if r["state"] == "firing"] == []
        finally:
            server.terminate()
            try:
                server.wait(10)
            except subprocess.TimeoutExpired:
                server.kill()
                server.wait()
            log.close()
