"""Service settings (environment, prefix ``DRIFTWIRE_``) and the detection config file.

Settings say where the bus is and how the service runs; the config file (``--config``, YAML or
JSON) says what to detect: which detectors, with which parameters, on which model and signal.

Any librdkafka property passes through to the clients, so driftwire runs on a secured cluster:

- in the environment, ``DRIFTWIRE_KAFKA_<PROPERTY>`` with dots written as underscores, e.g.
  ``DRIFTWIRE_KAFKA_SECURITY_PROTOCOL=SASL_SSL``, ``DRIFTWIRE_KAFKA_SASL_MECHANISM=SCRAM-SHA-512``;
- in the config file, under ``kafka:`` (both clients), ``consumer:`` or ``producer:`` with the
  property names as librdkafka spells them.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any, Literal

import yaml
from pydantic import BaseModel, ConfigDict, Field, field_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

from driftwire.detectors.window import WindowSpec

KAFKA_ENV_PREFIX = "DRIFTWIRE_KAFKA_"


class Settings(BaseSettings):
    """How the service connects and runs. Every field is also ``DRIFTWIRE_<FIELD>``."""

    model_config = SettingsConfigDict(env_prefix="DRIFTWIRE_", extra="ignore")

    bootstrap_servers: str = Field("localhost:9092", description="Kafka bootstrap servers")
    group_id: str = Field("driftwire", description="consumer group; replicas share it")
    group_instance_id: str | None = Field(
        None, description="static group membership (group.instance.id), unique per replica and stable across its "
        "restarts, e.g. a StatefulSet pod's name: a replica back within session.timeout.ms gets its partitions "
        "again without a rebalance; unset: dynamic membership"
    )
    predictions_topic: str = "predictions"
    features_topic: str = "features"
    labels_topic: str = "labels"
    retrain_topic: str = Field(
        "retrain-requests", description="topic of retraining requests (key = model), for retraining jobs"
    )
    alerts_topic: str = "drift-alerts"
    references_topic: str = Field(
        "drift-references", description="compacted topic of reference profiles, key = model/version"
    )
    dlq_topic: str = "drift-dlq"
    state_topic: str = Field(
        "driftwire-state", description="compacted topic of detector checkpoints, key = group/topic/partition"
    )
    metrics_host: str = "0.0.0.0"
    metrics_port: int = Field(9108, description="port of /metrics, /healthz and /readyz; 0 = any free port")
    config: Path | None = Field(None, description="detection config file (YAML or JSON)")

    # 2000 events of 10 values keep a batch's arrays within a core's L2 cache; 5000 measured
    # about a fifth slower end to end.
    batch_size: int = Field(2000, ge=1, description="most messages taken per consume call")
    batch_timeout: float = Field(0.5, gt=0, description="seconds a consume call waits for a batch")
    max_message_bytes: int = Field(
        1_048_576, ge=1, description="larger input messages are dead-lettered as oversized"
    )
    checkpoint_interval: float = Field(
        10.0, ge=0, description="seconds between detector checkpoints to the state topic; 0 = every batch"
    )
    lag_interval: float = Field(5.0, gt=0, description="seconds between consumer-lag readings")
    fetch_stall_timeout: float = Field(
        15.0, ge=0, description="seconds without an answer from the leaders of the assigned partitions after which "
        "/readyz turns 503 (a frozen or unreachable broker); keep it well above fetch.wait.max.ms; 0 = never"
    )
    # A tracked series holds ~115 KiB with windows on (~20 KiB off): at the default the service
    # stays within the chart's 2 GiB memory limit whatever arrives. See the README's caps.
    max_series: int = Field(
        6_000, ge=1, description="cap on tracked (model, version, signal) series; more are counted and dropped"
    )
    max_models: int = Field(
        1_000, ge=1, description="cap on tracked models; events of further models are counted as __other__ only"
    )
    auto_create_topics: bool = Field(True, description="create missing topics at start-up")
    topic_partitions: int = Field(3, ge=1, description="partitions of topics driftwire creates")

    @property
    def input_topics(self) -> list[str]:
        return [self.predictions_topic, self.features_topic, self.labels_topic]

    def kafka_properties(self) -> dict[str, str]:
        """librdkafka properties from ``DRIFTWIRE_KAFKA_*`` environment variables."""
        props = {}
        for key, value in os.environ.items():
            if key.startswith(KAFKA_ENV_PREFIX) and len(key) > len(KAFKA_ENV_PREFIX):
                props[key[len(KAFKA_ENV_PREFIX):].lower().replace("_", ".")] = value
        return props


class DetectorSpec(BaseModel):
    """One detector on a signal: a registry name (or ``river:<Class>``) and its parameters."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    name: str
    params: dict[str, Any] = Field(default_factory=dict)
    #: severity of its drift alerts; detectors with a warning zone also publish warnings.
    severity: str = "critical"

    @field_validator("severity")
    @classmethod
    def _severity(cls, v: str) -> str:
        if v not in ("warning", "critical"):
            raise ValueError("severity must be 'warning' or 'critical'")
        return v

    def key(self) -> tuple:
        """Identity of the detector bank this spec runs in."""
        return (self.name, tuple(sorted((k, repr(v)) for k, v in self.params.items())), self.severity)


# Defaults for standardized signals (zero mean, unit std after the warm-up), chosen so that a
# service watching thousands of series stays quiet on stationary data:
# - ADWIN at river's delta=0.002 raised about one false alarm per million values on the
#   simulator's mix of distributions; delta=0.0002 raised none and is at most ~15% slower.
# - Page-Hinkley with river's fading factor (alpha=0.9999) keeps its sums near a level whose
#   random swings exceed any fixed threshold given time (dozens of false alarms per 100k values);
#   the classic test (alpha=1) with delta=0.1 std and threshold=100 has an average run length
#   of ~10^10 values in control and catches a 0.5 std shift within ~300 values.
DEFAULT_DETECTORS = (
    DetectorSpec(name="adwin", params={"delta": 0.0002}),
    DetectorSpec(name="page_hinkley", params={"delta": 0.1, "threshold": 100.0, "alpha": 1.0}),
)


class DriftRules(BaseModel):
    """When a closed window's statistics make an alert. None turns a rule off.

    The defaults follow common practice: PSI 0.1 / 0.25 are the usual "moderate" / "significant"
    shift levels of credit-scoring practice; tests use p < 0.05. A test on a large window finds a
    difference too small to matter, and one signal tested every window at p < 0.05 alarms on one
    stationary window in twenty, so the Kolmogorov-Smirnov and chi-square rules also need an
    effect size (as river's KSWIN requires a statistic above 0.1): a KS statistic of 0.05 is a
    shift of about 0.12 standard deviations of a normal signal; a Jensen-Shannon distance of 0.05
    is a category gaining about 2% of the traffic from nothing.
    """

    model_config = ConfigDict(extra="forbid")

    psi_warning: float | None = 0.1
    psi_critical: float | None = 0.25
    ks_pvalue: float | None = 0.05
    ks_min_statistic: float = 0.05
    chi_square_pvalue: float | None = 0.05
    chi_square_min_js: float = 0.05
    unseen_rate: float | None = 0.05
    js_distance: float | None = None
    hellinger: float | None = None
    kl_divergence: float | None = None
    wasserstein_std: float | None = None
    #: values a window needs before any statistic rule applies
    min_samples: int = Field(100, ge=1)
    #: data quality: missing rate above the reference's by more than this
    missing_margin: float | None = 0.05
    #: data quality: share of values outside the reference's [min, max]
    out_of_range_rate: float | None = 0.05


class SignalConfig(BaseModel):
    """What runs on one signal. Fields left unset inherit from the model's, then the global defaults."""

    model_config = ConfigDict(extra="forbid")

    enabled: bool | None = None
    detectors: list[DetectorSpec] | None = None
    #: standardize with the warm-up's mean and std, so detector thresholds are in std units.
    standardize: bool | None = None
    #: values that build the reference mean/std before detection starts.
    warmup: int | None = Field(None, ge=2)
    #: seconds between two alerts of one (model, version, signal, detector).
    cooldown: float | None = Field(None, ge=0)
    #: rules on this signal's window statistics (:class:`DriftRules`); fields left out inherit.
    drift: dict[str, Any] | None = None

    @field_validator("drift")
    @classmethod
    def _drift(cls, v):
        if v is not None:
            DriftRules.model_validate(v)
        return v


class WindowConfig(BaseModel):
    """How a model version's windows run (the ``windows:`` section, global or per model).

    A window is ``size`` events or ``duration`` seconds of event time; ``slide`` > 1 makes it
    sliding, evaluated every 1/slide of it; ``lateness``: sub-windows a time window stays open
    for late events. With no reference profile, a model version's first ``reference_size``
    events are its reference, with ``bins`` quantile bins per numeric signal.
    """

    model_config = ConfigDict(extra="forbid")

    enabled: bool | None = None
    size: int | None = Field(None, ge=1)
    duration: float | None = Field(None, gt=0)
    slide: int | None = Field(None, ge=1)
    lateness: int | None = Field(None, ge=0)
    reference_size: int | None = Field(None, ge=1)
    bins: int | None = Field(None, ge=2, le=64)
    #: data quality: alert when a window's event rate drops below this fraction of the trailing
    #: average of the last ``volume_history`` windows
    volume_drop: float | None = Field(None, ge=0, le=1)
    volume_history: int | None = Field(None, ge=1)


class ResolvedWindowConfig(BaseModel):
    model_config = ConfigDict(frozen=True)

    enabled: bool = True
    size: int | None = 10_000
    duration: float | None = None
    slide: int = 1
    lateness: int = 1
    reference_size: int = 10_000
    bins: int = 10
    volume_drop: float | None = 0.5
    volume_history: int = 10

    def spec(self) -> WindowSpec:
        return WindowSpec(size=self.size, duration=self.duration, slide=self.slide, lateness=self.lateness,
                          reference_size=self.reference_size, reference_bins=self.bins)


class ResolvedSignalConfig(BaseModel):
    model_config = ConfigDict(frozen=True)

    enabled: bool
    detectors: tuple[DetectorSpec, ...]
    standardize: bool
    warmup: int
    cooldown: float
    drift: DriftRules


GLOBAL_DEFAULTS = ResolvedSignalConfig(
    enabled=True, detectors=DEFAULT_DETECTORS, standardize=True, warmup=1000, cooldown=300.0, drift=DriftRules()
)


# Defaults of the error signal (see LabelsConfig): DDM and HDDM_A on the raw 0/1
# misclassification bits (a bit has no scale to remove); ADWIN and Page-Hinkley, as on any
# numeric signal, on the standardized absolute error of a regression. At river's parameters
# both raise false alarms on a steady error rate: DDM's 30-value warm start can end with no
# error seen (its s_min is then 0 and the next error is a drift); on streams of 66,000 bits at
# error rates of 2%, 10% and 30%, DDM drifted 104 times in 60 streams and HDDM_A 3 times in 12.
# With the values below: no drift and 3 (DDM) and 0 (HDDM_A) warning onsets in 18 such
# streams, while a step from 10% to 25% errors was found within 140-1,200 labelled predictions.
CLASSIFICATION_DETECTORS = (
    DetectorSpec(name="ddm", params={"warm_start": 1000, "warning_threshold": 3.5, "drift_threshold": 4.0}),
    DetectorSpec(name="hddm_a", params={"drift_confidence": 2e-5, "warning_confidence": 1e-4}),
)
REGRESSION_DETECTORS = DEFAULT_DETECTORS

#: performance metrics whose relative change against the first full window is watched by
#: default. Not log loss: a few confident mistakes dominate it, and between two windows of
#: 1,000 steady predictions it moved by more than 10% (a limit on it is the better rule).
WATCHED_METRICS = ("accuracy", "f1", "f1_macro", "mae", "rmse")


class LabelsConfig(BaseModel):
    """What labelled predictions feed (the ``labels:`` section, global or per model).

    ``task``: ``auto`` takes a model whose first labelled prediction has a prediction or a label
    that is a non-integer number for a regression, any other for a classification. The error
    signal (``error``) is 0/1 misclassification or the absolute error, watched by
    ``classification_detectors`` or ``regression_detectors`` (a model's ``signals.error``
    overrides them like any signal). Performance windows hold ``window`` labelled predictions;
    at each close a metric alerts when it is worse than its ``limits`` entry (a floor for
    accuracy-like metrics, a ceiling for log loss and errors) or, for the metrics in ``watch``,
    worse than the version's first full window by more than the fraction ``max_drop``.
    ``positive_label``: the class whose precision, recall and F1 are reported (by default
    ``true`` or ``1`` when the classes are booleans or 0/1).
    """

    model_config = ConfigDict(extra="forbid")

    enabled: bool | None = None
    task: Literal["auto", "classification", "regression"] | None = None
    positive_label: str | None = None
    classification_detectors: list[DetectorSpec] | None = None
    regression_detectors: list[DetectorSpec] | None = None
    window: int | None = Field(None, ge=1)
    limits: dict[str, float] | None = None
    max_drop: float | None = Field(None, ge=0)
    watch: list[str] | None = None


class ResolvedLabelsConfig(BaseModel):
    model_config = ConfigDict(frozen=True)

    enabled: bool = True
    task: str = "auto"
    positive_label: str | None = None
    classification_detectors: tuple[DetectorSpec, ...] = CLASSIFICATION_DETECTORS
    regression_detectors: tuple[DetectorSpec, ...] = REGRESSION_DETECTORS
    window: int = 1000
    limits: dict[str, float] = Field(default_factory=dict)
    max_drop: float | None = 0.1
    watch: tuple[str, ...] = WATCHED_METRICS


class JoinConfig(BaseModel):
    """The label join (the ``join:`` section; see :mod:`driftwire.stream.join.store`): how long, in
    seconds of event time, a prediction waits for its label (and a label for its prediction),
    how many of each wait per input partition at most, and how far in event time one topic is
    read ahead of the other while both have records to read.

    ``enabled``: ``auto`` (the default) stores a partition's predictions for the join once its
    partition of the labels topic has a record, at assignment or when the first label comes, or
    once a second version of a model shows (versions are compared on shared events), so a
    deployment without labels or releases pays nothing for the join; ``true`` stores them from the first
    one (labels of predictions read before the first label exists are joined too); ``false``
    leaves the labels topic unread."""

    model_config = ConfigDict(extra="forbid")

    enabled: bool | Literal["auto"] = "auto"
    ttl: float = Field(86_400.0, gt=0)
    max_pending: int = Field(200_000, ge=1)
    #: seconds of event time one topic's partition may run ahead of its twin while the twin
    #: still has records to read: beyond, it is paused until the twin catches up (a backlog
    #: read faster on one side would otherwise fill the store and evict)
    max_skew: float = Field(30.0, gt=0)


class RetrainConfig(BaseModel):
    """When a retraining request is published (the ``retrain:`` section): at most one per model
    every ``interval`` seconds of event time, once a concept-drift or performance alert, or
    ``data_drift_alerts`` critical window alerts of data, prediction or label drift, came since the
    last request, and at least ``min_labels`` labelled predictions of the model arrived since."""

    model_config = ConfigDict(extra="forbid")

    enabled: bool = True
    interval: float = Field(3600.0, ge=0)
    min_labels: int = Field(1000, ge=0)
    data_drift_alerts: int = Field(3, ge=1)


class ComparisonConfig(BaseModel):
    """How versions of one model are compared (the ``comparison:`` section, global or per model;
    see :mod:`driftwire.stream.detect.compare`).

    ``champion``: the version the others are compared with; unnamed, the version that appeared
    first in the partition. Every ``every`` events of a challenger (predicted by the champion
    too, in shadow; labelled, in a canary) the comparison is evaluated. It recommends
    ``promote`` or ``rollback`` once ``min_labels`` labelled events back it and the
    ``confidence`` interval of the challenger's advantage (accuracy, or mean absolute error for
    a regression) lies wholly above ``tolerance`` or below ``-tolerance``. With
    ``min_agreement`` set, a challenger that agrees with the champion less often than that
    (the upper end of the agreement's interval is below it) is rolled back before labels
    decide. ``agreement_tolerance``: two regression predictions agree when they differ by at
    most this much (unset: no agreement for regressions).
    """

    model_config = ConfigDict(extra="forbid")

    enabled: bool | None = None
    champion: str | None = None
    every: int | None = Field(None, ge=1)
    min_labels: int | None = Field(None, ge=1)
    confidence: float | None = Field(None, gt=0, lt=1)
    tolerance: float | None = Field(None, ge=0)
    min_agreement: float | None = Field(None, ge=0, le=1)
    agreement_tolerance: float | None = Field(None, ge=0)


class ResolvedComparisonConfig(BaseModel):
    model_config = ConfigDict(frozen=True)

    enabled: bool = True
    champion: str | None = None
    every: int = 1000
    min_labels: int = 500
    confidence: float = 0.95
    tolerance: float = 0.0
    min_agreement: float | None = None
    agreement_tolerance: float | None = None


class ModelConfig(BaseModel):
    model_config = ConfigDict(extra="forbid")

    defaults: SignalConfig = Field(default_factory=SignalConfig)
    signals: dict[str, SignalConfig] = Field(default_factory=dict)
    windows: WindowConfig = Field(default_factory=WindowConfig)
    labels: LabelsConfig = Field(default_factory=LabelsConfig)
    comparison: ComparisonConfig = Field(default_factory=ComparisonConfig)


class DetectionConfig(BaseModel):
    """The ``--config`` file.

    Example (YAML)::

        defaults:
          detectors:
            - {name: adwin, params: {delta: 0.0002}}
            - {name: page_hinkley, params: {delta: 0.1, threshold: 100, alpha: 1.0}}
          warmup: 1000
          cooldown: 300
        models:
          fraud:
            signals:
              amount: {detectors: [{name: cusum, params: {h: 10}}]}
              user_id: {enabled: false}
        allowed_models: []          # empty: any model is watched
        kafka: {security.protocol: SASL_SSL}
    """

    model_config = ConfigDict(extra="forbid")

    defaults: SignalConfig = Field(default_factory=SignalConfig)
    models: dict[str, ModelConfig] = Field(default_factory=dict)
    windows: WindowConfig = Field(default_factory=WindowConfig)
    labels: LabelsConfig = Field(default_factory=LabelsConfig)
    join: JoinConfig = Field(default_factory=JoinConfig)
    comparison: ComparisonConfig = Field(default_factory=ComparisonConfig)
    retrain: RetrainConfig = Field(default_factory=RetrainConfig)
    #: reference profile files (``driftwire profile``), read at start-up
    references: list[Path] = Field(default_factory=list)
    #: when non-empty, events of other models are dead-lettered as unknown_model.
    allowed_models: list[str] = Field(default_factory=list)
    kafka: dict[str, str] = Field(default_factory=dict)
    consumer: dict[str, str] = Field(default_factory=dict)
    producer: dict[str, str] = Field(default_factory=dict)

    def resolve(self, model: str, signal: str) -> ResolvedSignalConfig:
        """The effective config of one signal: signal, then model defaults, then global defaults."""
        layers = [self.defaults]
        model_cfg = self.models.get(model)
        if model_cfg is not None:
            layers += [model_cfg.defaults, model_cfg.signals.get(signal, SignalConfig())]
        merged = GLOBAL_DEFAULTS.model_dump()
        drift = merged["drift"]
        for layer in layers:
            values = layer.model_dump(exclude_none=True)
            drift.update(values.pop("drift", {}))
            merged.update(values)
        merged["detectors"] = tuple(DetectorSpec.model_validate(d) for d in merged["detectors"])
        merged["drift"] = DriftRules.model_validate(drift)
        return ResolvedSignalConfig(**merged)

    def resolve_labels(self, model: str) -> ResolvedLabelsConfig:
        """What a model's labelled predictions feed: its own ``labels:``, then the global one."""
        return self._section(model, "labels", ResolvedLabelsConfig)

    def resolve_comparison(self, model: str) -> ResolvedComparisonConfig:
        """How a model's versions are compared: its own ``comparison:``, then the global one."""
        return self._section(model, "comparison", ResolvedComparisonConfig)

    def _section(self, model: str, name: str, resolved: type[BaseModel]):
        """A section set globally and per model: the model's fields over the global ones over the defaults."""
        merged = resolved().model_dump()
        model_cfg = self.models.get(model)
        for layer in [getattr(self, name), *([getattr(model_cfg, name)] if model_cfg else [])]:
            merged.update(layer.model_dump(exclude_none=True))
        return resolved.model_validate(merged)

    def resolve_error(self, model: str, task: str) -> ResolvedSignalConfig:
        """The config of a model's error signal for ``task``: the labels section's detectors, raw
        bits for a classification, then the model's ``signals.error``; cooldown as any signal's."""
        labels = self.resolve_labels(model)
        classification = task == "classification"
        merged = self.resolve(model, "error").model_dump()
        merged.update(detectors=labels.classification_detectors if classification else labels.regression_detectors,
                      standardize=not classification, warmup=2 if classification else merged["warmup"])
        model_cfg = self.models.get(model)
        own = model_cfg.signals.get("error") if model_cfg else None
        if own is not None:
            merged.update(own.model_dump(exclude_none=True, exclude={"drift"}))
        merged["detectors"] = tuple(DetectorSpec.model_validate(d) for d in merged["detectors"])
        return ResolvedSignalConfig(**merged)

    def resolve_windows(self, model: str) -> ResolvedWindowConfig:
        """The window config of a model: its own, then the global ``windows:``, then the defaults.
        A ``duration`` given at a layer replaces a ``size`` from the layers below, and the reverse."""
        merged = ResolvedWindowConfig().model_dump()
        model_cfg = self.models.get(model)
        for layer in [self.windows, *([model_cfg.windows] if model_cfg else [])]:
            values = layer.model_dump(exclude_none=True)
            if "duration" in values:
                merged["size"] = None
            if "size" in values:
                merged["duration"] = None
            merged.update(values)
        return ResolvedWindowConfig(**merged)

    def detector_specs(self) -> list[DetectorSpec]:
        """Every detector the config names, the global defaults included."""
        layers = [GLOBAL_DEFAULTS, self.defaults]
        for model_cfg in self.models.values():
            layers += [model_cfg.defaults, *model_cfg.signals.values()]
        specs = [spec for layer in layers for spec in layer.detectors or ()]
        for model in [None, *self.models]:
            labels = self.resolve_labels(model)
            specs += [*labels.classification_detectors, *labels.regression_detectors]
        return specs

    def check_windows(self) -> None:
        """Build every window spec once, so an impossible one fails at start-up."""
        for model in [None, *self.models]:
            try:
                self.resolve_windows(model).spec()
            except ValueError as exc:
                raise ValueError(f"windows of {model or 'the defaults'}: {exc}") from exc

    def check_detectors(self) -> None:
        """Build every configured detector once, so a bad name or parameter fails at start-up."""
        from driftwire.detectors import make

        for spec in self.detector_specs():
            try:
                make(spec.name, **spec.params)
            except Exception as exc:
                raise ValueError(f"detector {spec.name!r} with {spec.params}: {exc}") from exc


def load_config(path: str | Path | None) -> DetectionConfig:
    """Read a detection config file (YAML or JSON; JSON is YAML); None gives the defaults."""
    if path is None:
        return DetectionConfig()
    text = Path(path).read_text()
    data = yaml.safe_load(text) or {}
    if not isinstance(data, dict):
        raise ValueError(f"{path}: the config must be a mapping, got {type(data).__name__}")
    config = DetectionConfig.model_validate(data)
    config.check_detectors()
    config.check_windows()
    return config
