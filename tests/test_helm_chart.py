"""The Helm chart in helm/driftwire: lint, render offline, validate the manifests.

Needs ``helm-python-sdk`` (Helm's Go library behind a Python API, no helm binary or cluster)
and ``kubernetes-validate`` (Kubernetes OpenAPI schemas); skipped when either is missing.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import yaml

helm = pytest.importorskip(
    "helm_python",
    reason="helm-python-sdk is not installed or cannot load (pip install helm-python-sdk): chart tests skipped",
    exc_type=ImportError,
)
kubernetes_validate = pytest.importorskip(
    "kubernetes_validate",
    reason="kubernetes-validate is not installed (pip install kubernetes-validate): chart tests skipped",
    exc_type=ImportError,
)

from driftwire.stream.settings import DetectionConfig  # noqa: E402

try:  # the wheel bundles Helm's native library; it is loaded on first use
    helm.helm_sdk_version()
except helm.HelmLibraryError as e:
    pytest.skip(f"helm-python-sdk cannot load its native library: {e}", allow_module_level=True)

ROOT = Path(__file__).resolve().parent.parent
CHART = ROOT / "helm" / "driftwire"
ALL_OPTIONS = Path(__file__).resolve().parent / "helm" / "all-options.yaml"
RULES_FILE = CHART / "files" / "prometheus-rules.yml"
DASHBOARD_FILE = CHART / "files" / "grafana-dashboard.json"
RELEASE = "dw"
NAMESPACE = "ml"
KUBE_VERSION = "1.30.0"

# Kinds the chart renders from CRDs: not in kubernetes-validate's schemas, checked structurally.
CRD_KINDS = {"ServiceMonitor", "PrometheusRule", "ScaledObject"}


def all_options() -> dict:
    return yaml.safe_load(ALL_OPTIONS.read_text())


def render(values: dict | None = None) -> dict[str, str]:
    with helm.Chart.load(CHART) as chart:
        return chart.render(values, name=RELEASE, namespace=NAMESPACE, is_install=True)


def objects(values: dict | None = None) -> list[dict]:
    """Rendered Kubernetes objects (NOTES.txt and empty documents left out)."""
    docs = []
    for path, text in sorted(render(values).items()):
        if path.endswith("NOTES.txt"):
            continue
        docs += [d for d in yaml.safe_load_all(text) if d]
    return docs


def by_kind(docs: list[dict]) -> dict[str, list[dict]]:
    kinds: dict[str, list[dict]] = {}
    for d in docs:
        kinds.setdefault(d["kind"], []).append(d)
    return kinds


def only(docs: list[dict], kind: str) -> dict:
    found = by_kind(docs).get(kind, [])
    assert len(found) == 1, f"expected one {kind}, got {len(found)}"
    return found[0]


def container(docs: list[dict]) -> dict:
    (c,) = only(docs, "Deployment")["spec"]["template"]["spec"]["containers"]
    return c


def env_of(docs: list[dict]) -> dict[str, dict]:
    return {e["name"]: e for e in container(docs)["env"]}


def need_chart_files(*paths: Path) -> None:
    missing = [str(p.relative_to(CHART)) for p in paths if not p.exists()]
    if missing:
        pytest.skip(f"chart files not present yet: {', '.join(missing)}")


# --- lint ---------------------------------------------------------------------------------


@pytest.mark.parametrize("values_name", ["defaults", "all-options"])
def test_lint_passes(values_name):
    if values_name == "all-options":
        need_chart_files(RULES_FILE, DASHBOARD_FILE)
    values = all_options() if values_name == "all-options" else None
    report = helm.lint(CHART, values, strict=True, namespace=NAMESPACE, kube_version=f"v{KUBE_VERSION}")
    problems = [m for m in report["messages"] if m["severity"] >= 2]
    assert report["total_charts_linted"] == 1
    assert not report["errors"], report["errors"]
    assert not problems, problems


def test_chart_metadata():
    chart = yaml.safe_load((CHART / "Chart.yaml").read_text())
    assert chart["apiVersion"] == "v2"
    assert chart["name"] == "driftwire"
    assert chart["version"] == "0.1.0"
    assert str(chart["appVersion"]) == "0.1.0"


# --- what is rendered ---------------------------------------------------------------------


def test_defaults_render_the_core_objects():
    """Defaults: Deployment, Service, PodDisruptionBudget and ServiceAccount; no ConfigMap (no detector config)."""
    kinds = by_kind(objects())
    assert sorted(kinds) == ["Deployment", "PodDisruptionBudget", "Service", "ServiceAccount"]
    assert all(len(v) == 1 for v in kinds.values())

    docs = objects()
    deploy = only(docs, "Deployment")
    assert deploy["spec"]["replicas"] == 1
    pod = deploy["spec"]["template"]["spec"]
    assert pod["serviceAccountName"] == only(docs, "ServiceAccount")["metadata"]["name"]
    assert pod["terminationGracePeriodSeconds"] == 30
    c = container(docs)
    assert c["command"] == ["driftwire"] and c["args"] == ["run"]
    assert c["ports"] == [{"name": "metrics", "containerPort": 9108, "protocol": "TCP"}]
    assert c["livenessProbe"]["httpGet"] == {"path": "/healthz", "port": "metrics"}
    assert c["readinessProbe"]["httpGet"] == {"path": "/readyz", "port": "metrics"}
    env = env_of(docs)
    assert env["DRIFTWIRE_BOOTSTRAP_SERVERS"]["value"] == "kafka:9092"
    assert env["DRIFTWIRE_GROUP_ID"]["value"] == "driftwire"
    assert env["DRIFTWIRE_METRICS_PORT"]["value"] == "9108"
    assert not any(name.startswith("DRIFTWIRE_KAFKA_") for name in env)

    svc = only(docs, "Service")
    assert svc["spec"]["type"] == "ClusterIP"
    assert svc["spec"]["ports"] == [{"name": "metrics", "port": 9108, "targetPort": "metrics", "protocol": "TCP"}]
    assert svc["spec"]["selector"] == deploy["spec"]["selector"]["matchLabels"]

    pdb = only(docs, "PodDisruptionBudget")
    assert pdb["spec"] == {"maxUnavailable": 1, "selector": deploy["spec"]["selector"]}


def test_all_options_render_every_object():
    need_chart_files(RULES_FILE, DASHBOARD_FILE)
    kinds = by_kind(objects(all_options()))
    assert sorted(kinds) == [
        "ConfigMap", "Deployment", "PodDisruptionBudget", "PrometheusRule", "ScaledObject",
        "Service", "ServiceAccount", "ServiceMonitor",
    ]
    assert len(kinds["ConfigMap"]) == 2  # detector config and Grafana dashboard
    assert "HorizontalPodAutoscaler" not in kinds


def test_prometheus_rule_holds_the_rules_file():
    need_chart_files(RULES_FILE)
    rules = yaml.safe_load(RULES_FILE.read_text())
    rule = only(objects(all_options()), "PrometheusRule")
    assert rule["apiVersion"] == "monitoring.coreos.com/v1"
    assert rule["metadata"]["labels"]["release"] == "kube-prometheus-stack"
    assert rule["spec"]["groups"] == rules["groups"]
    assert rule["spec"]["groups"], "files/prometheus-rules.yml has no groups"


def test_grafana_dashboard_configmap_holds_the_dashboard():
    need_chart_files(DASHBOARD_FILE)
    values = all_options()
    cms = [d for d in objects(values) if d["kind"] == "ConfigMap" and "grafana_dashboard" in d["metadata"]["labels"]]
    assert len(cms) == 1
    cm = cms[0]
    assert cm["metadata"]["labels"]["grafana_dashboard"] == "1"
    assert cm["metadata"]["annotations"] == {"grafana_folder": "ML"}
    (payload,) = cm["data"].values()
    assert json.loads(payload) == json.loads(DASHBOARD_FILE.read_text())

    values["grafanaDashboard"].update(label="grafana_dashboard_ml", labelValue="yes")
    cm = next(d for d in objects(values) if "grafana_dashboard_ml" in d["metadata"]["labels"])
    assert cm["metadata"]["labels"]["grafana_dashboard_ml"] == "yes"


def test_service_monitor_scrapes_the_metrics_port():
    need_chart_files(RULES_FILE, DASHBOARD_FILE)
    docs = objects(all_options())
    sm = only(docs, "ServiceMonitor")
    assert sm["apiVersion"] == "monitoring.coreos.com/v1"
    assert sm["metadata"]["labels"]["release"] == "kube-prometheus-stack"
    (endpoint,) = sm["spec"]["endpoints"]
    assert endpoint["port"] == "metrics" and endpoint["path"] == "/metrics" and endpoint["interval"] == "15s"
    assert sm["spec"]["selector"]["matchLabels"] == only(docs, "Service")["spec"]["selector"]
    assert sm["spec"]["namespaceSelector"] == {"matchNames": [NAMESPACE]}


def test_scaled_object_scales_on_consumer_lag():
    need_chart_files(RULES_FILE, DASHBOARD_FILE)
    docs = objects(all_options())
    so = only(docs, "ScaledObject")
    deploy = only(docs, "Deployment")
    assert so["apiVersion"] == "keda.sh/v1alpha1"
    assert so["spec"]["scaleTargetRef"] == {"apiVersion": "apps/v1", "kind": "Deployment",
                                            "name": deploy["metadata"]["name"]}
    assert (so["spec"]["minReplicaCount"], so["spec"]["maxReplicaCount"]) == (1, 6)
    assert [t["metadata"]["topic"] for t in so["spec"]["triggers"]] == ["ml.predictions", "ml.features"]
    for trigger in so["spec"]["triggers"]:
        assert trigger["type"] == "kafka"
        md = trigger["metadata"]
        assert md["consumerGroup"] == "driftwire-prod"
        assert md["bootstrapServers"] == "kafka-0.kafka:9093,kafka-1.kafka:9093"
        assert md["lagThreshold"] == "5000"
        assert all(isinstance(v, str) for v in md.values())  # KEDA wants string metadata
        assert trigger["authenticationRef"] == {"name": "driftwire-kafka-trigger-auth"}
    # The autoscaler owns the replica count.
    assert "replicas" not in deploy["spec"]


def test_hpa_is_the_cpu_alternative():
    docs = objects({"autoscaling": {"enabled": True, "minReplicas": 2, "maxReplicas": 4}})
    hpa = only(docs, "HorizontalPodAutoscaler")
    assert hpa["spec"]["scaleTargetRef"]["name"] == only(docs, "Deployment")["metadata"]["name"]
    assert hpa["spec"]["metrics"][0]["resource"]["name"] == "cpu"
    assert "replicas" not in only(docs, "Deployment")["spec"]
    assert "ScaledObject" not in by_kind(docs)
    validate_core(docs)


def test_detector_config_is_mounted_with_a_checksum():
    values = all_options()
    docs = objects(values)
    cm = next(d for d in docs if d["kind"] == "ConfigMap" and "config.yaml" in d.get("data", {}))
    config = yaml.safe_load(cm["data"]["config.yaml"])
    assert config == values["detectorConfig"]
    DetectionConfig.model_validate(config)  # driftwire accepts it

    c = container(docs)
    assert c["args"] == ["run", "--config", "/etc/driftwire/config.yaml"]
    mount = next(m for m in c["volumeMounts"] if m["mountPath"] == "/etc/driftwire/config.yaml")
    volumes = {v["name"]: v for v in only(docs, "Deployment")["spec"]["template"]["spec"]["volumes"]}
    assert volumes[mount["name"]]["configMap"]["name"] == cm["metadata"]["name"]

    def checksum(v):
        return only(objects(v), "Deployment")["spec"]["template"]["metadata"]["annotations"]["checksum/config"]

    changed = all_options()
    changed["detectorConfig"]["defaults"]["warmup"] = 2000
    assert checksum(values) != checksum(changed)


def test_env_from_values():
    docs = objects(all_options())
    env = env_of(docs)
    expected = {
        "DRIFTWIRE_BOOTSTRAP_SERVERS": "kafka-0.kafka:9093,kafka-1.kafka:9093",
        "DRIFTWIRE_GROUP_ID": "driftwire-prod",
        "DRIFTWIRE_PREDICTIONS_TOPIC": "ml.predictions",
        "DRIFTWIRE_FEATURES_TOPIC": "ml.features",
        "DRIFTWIRE_LABELS_TOPIC": "ml.labels",
        "DRIFTWIRE_ALERTS_TOPIC": "ml.drift-alerts",
        "DRIFTWIRE_DLQ_TOPIC": "ml.drift-dlq",
        "DRIFTWIRE_STATE_TOPIC": "ml.driftwire-state",
        "DRIFTWIRE_AUTO_CREATE_TOPICS": "false",
        "DRIFTWIRE_BATCH_SIZE": "5000",
        "DRIFTWIRE_CHECKPOINT_INTERVAL": "30",
        "DRIFTWIRE_MAX_SERIES": "50000",
        "DRIFTWIRE_KAFKA_SECURITY_PROTOCOL": "SASL_SSL",
        "DRIFTWIRE_KAFKA_SASL_MECHANISM": "SCRAM-SHA-512",
        "DRIFTWIRE_KAFKA_SSL_CA_LOCATION": "/etc/driftwire/kafka-tls/ca.crt",
        "DRIFTWIRE_KAFKA_CLIENT_RACK": "eu-west-1a",
        "DRIFTWIRE_KAFKA_FETCH_WAIT_MAX_MS": "100",
        "DRIFTWIRE_LAG_INTERVAL": "10",
        "NUMBA_CACHE_DIR": "/var/cache/numba",
    }
    assert {k: env[k].get("value") for k in expected} == expected
    assert container(docs)["resources"] == all_options()["resources"]


def test_sasl_and_tls_come_from_secret_references():
    docs = objects(all_options())
    env = env_of(docs)
    for name, key in (("DRIFTWIRE_KAFKA_SASL_USERNAME", "user"), ("DRIFTWIRE_KAFKA_SASL_PASSWORD", "pass")):
        assert "value" not in env[name]
        assert env[name]["valueFrom"] == {"secretKeyRef": {"name": "driftwire-kafka-credentials", "key": key}}
    pod = only(docs, "Deployment")["spec"]["template"]["spec"]
    tls = next(v for v in pod["volumes"] if "secret" in v)
    assert tls["secret"]["secretName"] == "kafka-cluster-ca"
    mount = next(m for m in container(docs)["volumeMounts"] if m["name"] == tls["name"])
    assert mount["mountPath"] == "/etc/driftwire/kafka-tls" and mount["readOnly"] is True


def test_no_secret_is_rendered():
    for values in (None, all_options()):
        rendered = render(values)
        docs = objects(values)
        assert "Secret" not in by_kind(docs)
        text = "\n".join(rendered.values())
        assert "kind: Secret" not in text
        for d in docs:
            if d["kind"] == "Deployment":
                for e in d["spec"]["template"]["spec"]["containers"][0]["env"]:
                    if "PASSWORD" in e["name"] or "USERNAME" in e["name"]:
                        assert "value" not in e, e
    # values.yaml has no place for a secret value: only Secret names and keys.
    defaults = yaml.safe_load((CHART / "values.yaml").read_text())
    assert set(defaults["kafka"]["sasl"]) == {"enabled", "mechanism", "existingSecret", "usernameKey", "passwordKey"}


@pytest.mark.parametrize("values_name", ["defaults", "all-options"])
def test_pod_runs_as_non_root_with_read_only_root(values_name):
    docs = objects(all_options() if values_name == "all-options" else None)
    pod = only(docs, "Deployment")["spec"]["template"]["spec"]
    assert pod["securityContext"]["runAsNonRoot"] is True
    assert pod["securityContext"]["runAsUser"] == 10001
    assert pod["securityContext"]["seccompProfile"] == {"type": "RuntimeDefault"}
    sc = container(docs)["securityContext"]
    assert sc["runAsNonRoot"] is True and sc["runAsUser"] == 10001
    assert sc["readOnlyRootFilesystem"] is True
    assert sc["allowPrivilegeEscalation"] is False
    assert sc["capabilities"]["drop"] == ["ALL"]
    assert sc["seccompProfile"] == {"type": "RuntimeDefault"}
    assert pod["automountServiceAccountToken"] is False
    # Writable paths are emptyDirs: /tmp and the numba cache.
    volumes = {v["name"]: v for v in pod["volumes"]}
    mounts = {m["mountPath"]: m["name"] for m in container(docs)["volumeMounts"]}
    env = env_of(docs)
    for path in ("/tmp", env["NUMBA_CACHE_DIR"]["value"]):
        assert "emptyDir" in volumes[mounts[path]], path
    # The init container seeding the numba cache is locked down the same way.
    for init in pod.get("initContainers", []):
        assert init["securityContext"] == container(docs)["securityContext"]


# --- schema validation of the manifests ---------------------------------------------------


def validate_core(docs: list[dict]) -> None:
    for d in docs:
        if d["kind"] in CRD_KINDS:
            continue
        kubernetes_validate.validate(d, KUBE_VERSION, strict=True)


@pytest.mark.parametrize("values_name", ["defaults", "all-options"])
def test_core_objects_validate_strictly(values_name):
    if values_name == "all-options":
        need_chart_files(RULES_FILE, DASHBOARD_FILE)
    docs = objects(all_options() if values_name == "all-options" else None)
    core = [d for d in docs if d["kind"] not in CRD_KINDS]
    assert core
    try:
        validate_core(docs)
    except kubernetes_validate.ValidationError as e:
        pytest.fail(f"{e.path}: {e.message}")
    for d in docs:
        assert d["metadata"]["namespace"] == NAMESPACE
        assert d["metadata"]["labels"]["app.kubernetes.io/instance"] == RELEASE


def test_crd_objects_are_well_formed():
    """ServiceMonitor, PrometheusRule and ScaledObject: not in kubernetes-validate's schemas."""
    need_chart_files(RULES_FILE, DASHBOARD_FILE)
    crds = [d for d in objects(all_options()) if d["kind"] in CRD_KINDS]
    assert sorted(d["kind"] for d in crds) == sorted(CRD_KINDS)
    api = {"ServiceMonitor": "monitoring.coreos.com/v1", "PrometheusRule": "monitoring.coreos.com/v1",
           "ScaledObject": "keda.sh/v1alpha1"}
    for d in crds:
        assert set(d) == {"apiVersion", "kind", "metadata", "spec"}
        assert d["apiVersion"] == api[d["kind"]]
        assert d["metadata"]["name"] and len(d["metadata"]["name"]) <= 63
        assert all(isinstance(v, str) for v in d["metadata"]["labels"].values())
    rule = next(d for d in crds if d["kind"] == "PrometheusRule")
    for group in rule["spec"]["groups"]:
        assert isinstance(group["name"], str) and group["rules"]
        for r in group["rules"]:
            assert ("alert" in r) != ("record" in r) and isinstance(r["expr"], str | int)


# --- values that are refused --------------------------------------------------------------


def test_schema_rejects_unknown_top_level_key():
    with helm.Chart.load(CHART) as chart:
        chart.validate_schema(all_options())
        with pytest.raises(helm.HelmError, match="replicas"):
            chart.validate_schema({"replicas": 3})
    with pytest.raises(helm.HelmError):
        render({"replicas": 3})
    report = helm.lint(CHART, {"replicas": 3})
    assert report["errors"] or any(m["severity"] == 3 for m in report["messages"])


def test_schema_rejects_bad_types():
    with helm.Chart.load(CHART) as chart:
        for bad in ({"replicaCount": "two"}, {"kafka": {"sasl": {"password": "hunter2"}}},
                    {"image": {"pullPolicy": "Sometimes"}}):
            with pytest.raises(helm.HelmError):
                chart.validate_schema(bad)


def test_keda_and_hpa_together_fail():
    with pytest.raises(helm.HelmError, match="mutually exclusive"):
        render({"keda": {"enabled": True}, "autoscaling": {"enabled": True}})


@pytest.mark.parametrize(
    "values, message",
    [
        ({"kafka": {"sasl": {"enabled": True}}}, "existingSecret"),
        ({"kafka": {"tls": {"enabled": True}}}, "caSecret"),
    ],
)
def test_secured_cluster_needs_secret_names(values, message):
    with pytest.raises(helm.HelmError, match=message):
        render(values)


def test_notes_say_how_to_reach_metrics_and_about_partitions():
    notes = render()["driftwire/templates/NOTES.txt"]
    assert "port-forward svc/dw-driftwire 9108:metrics" in notes
    assert "/metrics" in notes
    assert "partition count" in notes


# --- static membership and the StatefulSet ------------------------------------------------


def instance_id_env(workload: dict) -> dict | None:
    (c,) = workload["spec"]["template"]["spec"]["containers"]
    return next((e for e in c["env"] if e["name"] == "DRIFTWIRE_GROUP_INSTANCE_ID"), None)


def test_deployment_joins_as_a_dynamic_member_by_default():
    docs = objects()
    assert "StatefulSet" not in by_kind(docs)
    assert instance_id_env(only(docs, "Deployment")) is None


def test_statefulset_pods_join_as_static_members_named_after_the_pod():
    docs = objects({"workloadKind": "StatefulSet", "replicaCount": 3})
    assert "Deployment" not in by_kind(docs)
    sts = only(docs, "StatefulSet")
    assert sts["spec"]["replicas"] == 3
    assert sts["spec"]["serviceName"] == only(docs, "Service")["metadata"]["name"]
    assert sts["spec"]["podManagementPolicy"] == "Parallel"
    assert instance_id_env(sts)["valueFrom"] == {"fieldRef": {"fieldPath": "metadata.name"}}
    assert only(docs, "PodDisruptionBudget")["spec"]["selector"] == sts["spec"]["selector"]
    validate_core(docs)


@pytest.mark.parametrize("kind, static, expected", [
    ("Deployment", True, True), ("StatefulSet", False, False), ("StatefulSet", None, True),
])
def test_static_membership_can_be_set_either_way(kind, static, expected):
    docs = objects({"workloadKind": kind, "staticMembership": static})
    assert (instance_id_env(only(docs, kind)) is not None) == expected
    validate_core(docs)


def test_autoscalers_target_the_statefulset():
    docs = objects({"workloadKind": "StatefulSet", "autoscaling": {"enabled": True}})
    assert only(docs, "HorizontalPodAutoscaler")["spec"]["scaleTargetRef"]["kind"] == "StatefulSet"
    assert "replicas" not in only(docs, "StatefulSet")["spec"]
    values = all_options()
    values["workloadKind"] = "StatefulSet"
    docs = objects(values)
    assert only(docs, "ScaledObject")["spec"]["scaleTargetRef"] == {
        "apiVersion": "apps/v1", "kind": "StatefulSet", "name": only(docs, "StatefulSet")["metadata"]["name"]}


def test_fetch_stall_timeout_is_passed_on():
    assert "DRIFTWIRE_FETCH_STALL_TIMEOUT" not in env_of(objects())
    env = env_of(objects({"settings": {"fetchStallTimeout": 30}}))
    assert env["DRIFTWIRE_FETCH_STALL_TIMEOUT"]["value"] == "30"


def test_schema_rejects_an_unknown_workload_kind():
    with helm.Chart.load(CHART) as chart:
        for bad in ({"workloadKind": "DaemonSet"}, {"staticMembership": "yes"}):
            with pytest.raises(helm.HelmError):
                chart.validate_schema(bad)


def test_statefulset_lints():
    report = helm.lint(CHART, {"workloadKind": "StatefulSet", "replicaCount": 2}, strict=True, namespace=NAMESPACE,
                       kube_version=f"v{KUBE_VERSION}")
    assert not report["errors"], report["errors"]
    assert not [m for m in report["messages"] if m["severity"] >= 2]
