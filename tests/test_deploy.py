"""The container image and the compose stack, checked without a Docker engine: every file they
name exists, every driftwire command and setting they use is one driftwire accepts, and the
pieces point at each other (topics, ports, paths). The example retraining job runs on the broker."""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from driftwire.stream.cli import build_parser
from driftwire.stream.settings import Settings

ROOT = Path(__file__).resolve().parent.parent
COMPOSE = yaml.safe_load((ROOT / "docker-compose.yml").read_text())
SERVICES = COMPOSE["services"]
DRIFTWIRE_IMAGE_SERVICES = ["driftwire", "simulator", "retrain-job"]


def test_every_service_has_an_image_and_builds_come_with_a_dockerfile():
    for name, service in SERVICES.items():
        assert service.get("image") or service.get("build"), f"{name} has neither image nor build"
        if "build" in service:
            context = service["build"] if isinstance(service["build"], str) else service["build"]["context"]
            assert (ROOT / context / "Dockerfile").is_file(), name
        if "image" in service and "build" not in service:
            assert re.fullmatch(r"[\w./-]+:[\w.-]+", service["image"]), f"{name}: pin a tag, not latest"


def test_mounted_host_files_exist():
    for name, service in SERVICES.items():
        for volume in service.get("volumes", []):
            source = volume.split(":")[0]
            if source.startswith("."):
                assert (ROOT / source).exists(), f"{name} mounts missing {source}"


def test_start_order_waits_on_health_checks_that_exist():
    conditions = {"service_started", "service_healthy", "service_completed_successfully"}
    for name, service in SERVICES.items():
        depends = service.get("depends_on", {})
        items = depends.items() if isinstance(depends, dict) else ((d, {}) for d in depends)
        for other, how in items:
            assert other in SERVICES, f"{name} depends on unknown {other}"
            condition = how.get("condition", "service_started")
            assert condition in conditions
            if condition == "service_healthy":
                check = SERVICES[other].get("healthcheck", {})
                assert check.get("test") and not check.get("disable"), f"{other} has no health check"


def test_driftwire_commands_and_settings_are_ones_driftwire_accepts():
    parser = build_parser()
    fields = {f"DRIFTWIRE_{name.upper()}" for name in Settings.model_fields}
    for name in DRIFTWIRE_IMAGE_SERVICES:
        service = SERVICES[name]
        if service.get("entrypoint"):
            continue  # the retraining job is a script of its own: tested below
        args = parser.parse_args(service["command"])  # exits (SystemExit) on an unknown option
        assert args.func is not None
        for var in service.get("environment", {}):
            assert var in fields or var.startswith("DRIFTWIRE_KAFKA_"), f"{name}: {var} is not a setting"
    env = {k: str(v) for k, v in SERVICES["driftwire"]["environment"].items()}
    settings = Settings.model_validate({k.removeprefix("DRIFTWIRE_").lower(): v for k, v in env.items()})
    assert settings.bootstrap_servers == "kafka:9092" and not settings.auto_create_topics


def test_created_topics_are_the_ones_driftwire_reads_and_writes():
    script = (ROOT / "deploy/kafka/create-topics.sh").read_text()
    created = set(re.findall(r"--topic (\S+)", script))
    defaults = Settings()
    assert created == {defaults.predictions_topic, defaults.features_topic, defaults.labels_topic,
                       defaults.alerts_topic, defaults.dlq_topic, defaults.state_topic, defaults.references_topic,
                       defaults.retrain_topic}
    for compacted in (defaults.state_topic, defaults.references_topic):
        assert re.search(rf"--topic {compacted} .*\n.*cleanup\.policy=compact", script), compacted


def test_prometheus_scrapes_driftwire_and_loads_the_rules_file():
    config = yaml.safe_load((ROOT / "deploy/prometheus/prometheus.yml").read_text())
    port = SERVICES["driftwire"]["environment"]["DRIFTWIRE_METRICS_PORT"]
    jobs = {job["job_name"]: job for job in config["scrape_configs"]}
    assert jobs["driftwire"]["static_configs"][0]["targets"] == [f"driftwire:{port}"]
    mounts = dict(v.split(":")[:2] for v in SERVICES["prometheus"]["volumes"])
    rules_in_container = mounts["./helm/driftwire/files/prometheus-rules.yml"]
    assert any(Path(rules_in_container).match(pattern) for pattern in config["rule_files"])


def test_prometheus_config_passes_promtool(tmp_path):
    promtool = shutil.which("promtool")
    if promtool is None:
        pytest.skip("promtool not installed (Debian package prometheus)")
    config = yaml.safe_load((ROOT / "deploy/prometheus/prometheus.yml").read_text())
    config["rule_files"] = [str(ROOT / "helm/driftwire/files/prometheus-rules.yml")]
    path = tmp_path / "prometheus.yml"
    path.write_text(yaml.safe_dump(config))
    result = subprocess.run([promtool, "check", "config", str(path)], capture_output=True, text=True)
    assert result.returncode == 0, result.stdout + result.stderr


def test_grafana_is_provisioned_with_the_datasource_and_the_dashboard():
    provisioning = ROOT / "deploy/grafana/provisioning"
    source = yaml.safe_load((provisioning / "datasources/prometheus.yml").read_text())["datasources"][0]
    assert source["type"] == "prometheus" and source["url"] == "http://prometheus:9090"
    provider = yaml.safe_load((provisioning / "dashboards/driftwire.yml").read_text())["providers"][0]
    mounts = dict(v.split(":")[:2] for v in SERVICES["grafana"]["volumes"])
    dashboard = mounts["./helm/driftwire/files/grafana-dashboard.json"]
    assert Path(dashboard).parent == Path(provider["options"]["path"])
    assert mounts["./deploy/grafana/provisioning"] == "/etc/grafana/provisioning"


def test_image_runs_as_non_root_with_the_kernels_compiled_at_build_time():
    dockerfile = (ROOT / "Dockerfile").read_text()
    user = re.findall(r"^USER (\S+)", dockerfile, re.M)
    assert user and user[-1].split(":")[0] not in ("0", "root")
    assert "driftwire warm-up" in dockerfile and "NUMBA_CACHE_DIR=" in dockerfile
    port = SERVICES["driftwire"]["environment"]["DRIFTWIRE_METRICS_PORT"]
    assert re.search(rf"^EXPOSE {port}$", dockerfile, re.M)
    for source in re.findall(r"^COPY (.+) \S+$", dockerfile, re.M):
        for path in source.split():
            assert (ROOT / path).exists(), f"COPY of missing {path}"


def test_warm_up_fills_an_empty_numba_cache_so_the_next_start_compiles_nothing(tmp_path):
    env = {**os.environ, "NUMBA_CACHE_DIR": str(tmp_path)}
    command = [sys.executable, "-m", "driftwire.stream.cli", "warm-up"]
    cold = subprocess.run(command, env=env, capture_output=True, text=True, timeout=600)
    assert cold.returncode == 0, cold.stderr
    assert list(tmp_path.rglob("*.nbi")), "no numba index files written"
    warm = subprocess.run(command, env=env, capture_output=True, text=True, timeout=120)
    assert warm.returncode == 0, warm.stderr
    seconds = [float(re.search(r"in ([\d.]+) s", r.stdout).group(1)) for r in (cold, warm)]
    # compiling takes tens of seconds, loading one or two: a tenth leaves room for a slow machine
    assert seconds[1] < seconds[0] / 10, seconds
