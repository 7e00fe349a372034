"""A synthetic producer: several models with numeric and categorical features, drift on a schedule.

``driftwire simulate`` points it at any bus; ``driftwire demo`` and the tests use it too. Every
model emits prediction events (features, prediction, score) keyed by ``event_id``. A drift
shifts one numeric feature of one model by a number of its standard deviations (and scales its
spread), starting at a given event count of that model; the model's score follows its inputs.
"""

from __future__ import annotations

import time
import uuid
from dataclasses import dataclass, field

import numpy as np
import orjson


@dataclass(frozen=True)
class Feature:
    name: str
    #: "normal", "lognormal", "exponential", "poisson", "uniform", or "categorical"
    dist: str
    a: float = 0.0
    b: float = 1.0
    categories: tuple[str, ...] = ()


@dataclass(frozen=True)
class ModelSpec:
    name: str
    version: str
    features: tuple[Feature, ...]


@dataclass(frozen=True)
class Drift:
    """From event ``start`` of ``model`` on, ``feature`` moves by ``shift`` of its std and its
    spread is multiplied by ``scale``."""

    model: str
    feature: str
    start: int
    shift: float = 1.0
    scale: float = 1.0


def _f(name, dist, a=0.0, b=1.0, categories=()):
    return Feature(name, dist, a, b, tuple(categories))


DEFAULT_MODELS = (
    ModelSpec("fraud-detector", "v3", (
        _f("amount", "lognormal", 3.5, 0.8),
        _f("account_age_days", "exponential", 400.0),
        _f("transactions_24h", "poisson", 4.0),
        _f("distance_km", "exponential", 12.0),
        _f("hour", "uniform", 0.0, 24.0),
        _f("card_present_ratio", "uniform", 0.0, 1.0),
        _f("merchant_category", "categorical", categories=("grocery", "travel", "electronics", "fuel", "dining")),
        _f("country", "categorical", categories=("DE", "FR", "US", "GB", "NL")),
    )),
    ModelSpec("churn-model", "2024-06", (
        _f("tenure_months", "exponential", 24.0),
        _f("monthly_charges", "normal", 70.0, 20.0),
        _f("support_calls", "poisson", 1.5),
        _f("data_usage_gb", "lognormal", 2.0, 0.6),
        _f("days_since_login", "exponential", 5.0),
        _f("discount_rate", "uniform", 0.0, 0.3),
        _f("plan", "categorical", categories=("basic", "plus", "premium")),
        _f("region", "categorical", categories=("north", "south", "east", "west")),
    )),
    ModelSpec("credit-scoring", "1.4.0", (
        _f("income", "lognormal", 10.8, 0.5),
        _f("debt_ratio", "uniform", 0.0, 0.8),
        _f("age", "normal", 41.0, 12.0),
        _f("open_accounts", "poisson", 6.0),
        _f("utilization", "uniform", 0.0, 1.0),
        _f("loan_amount", "lognormal", 9.5, 0.7),
        _f("employment", "categorical", categories=("salaried", "self-employed", "retired", "student")),
        _f("purpose", "categorical", categories=("car", "home", "education", "other")),
    )),
)


def _draw(rng: np.random.Generator, f: Feature, n: int) -> np.ndarray:
    if f.dist == "normal":
        return rng.normal(f.a, f.b, n)
    if f.dist == "lognormal":
        return rng.lognormal(f.a, f.b, n)
    if f.dist == "exponential":
        return rng.exponential(f.a, n)
    if f.dist == "poisson":
        return rng.poisson(f.a, n).astype(np.float64)
    if f.dist == "uniform":
        return rng.uniform(f.a, f.b, n)
    raise ValueError(f"unknown distribution {f.dist!r}")


def _std(f: Feature) -> float:
    if f.dist == "normal":
        return f.b
    if f.dist == "lognormal":
        return float(np.sqrt((np.exp(f.b**2) - 1) * np.exp(2 * f.a + f.b**2)))
    if f.dist == "exponential":
        return f.a
    if f.dist == "poisson":
        return float(np.sqrt(f.a))
    return (f.b - f.a) / np.sqrt(12.0)


@dataclass
class Simulator:
    """Generates events for ``models`` in round-robin, with ``drifts`` applied on schedule."""

    models: tuple[ModelSpec, ...] = DEFAULT_MODELS
    drifts: tuple[Drift, ...] = ()
    seed: int = 0
    start_time: float | None = None
    events_per_second: float = 1000.0
    _counts: dict[str, int] = field(default_factory=dict)

    def __post_init__(self):
        self._rng = np.random.default_rng(self.seed)
        self._t0 = time.time() if self.start_time is None else self.start_time
        self._emitted = 0
        names = {m.name: {f.name for f in m.features} for m in self.models}
        for d in self.drifts:
            if d.feature not in names.get(d.model, ()):
                raise ValueError(f"drift on unknown model/feature {d.model}/{d.feature}")

    def batch(self, n: int) -> list[dict]:
        """The next ``n`` events (spread evenly over the models)."""
        out: list[dict] = []
        per_model = [n // len(self.models) + (1 if i < n % len(self.models) else 0) for i in range(len(self.models))]
        for spec, k in zip(self.models, per_model):
            if k:
                out += self._model_batch(spec, k)
        order = self._rng.permutation(len(out))
        return [out[i] for i in order]

    def _model_batch(self, spec: ModelSpec, n: int) -> list[dict]:
        start = self._counts.get(spec.name, 0)
        self._counts[spec.name] = start + n
        index = np.arange(start, start + n)
        columns: dict[str, list] = {}
        signal = np.zeros(n)
        for f in spec.features:
            if f.dist == "categorical":
                columns[f.name] = self._rng.choice(f.categories, n).tolist()
                continue
            x = _draw(self._rng, f, n)
            for d in self.drifts:
                if d.model == spec.name and d.feature == f.name:
                    on = index >= d.start
                    mean = x[on].mean() if on.any() else 0.0
                    x[on] = mean + (x[on] - mean) * d.scale + d.shift * _std(f)
            columns[f.name] = x.tolist()
            signal += (x - x.mean()) / (_std(f) or 1.0)
        score = 1.0 / (1.0 + np.exp(-(signal / np.sqrt(len(spec.features)) - 1.0)))
        events = []
        names = list(columns)
        rows = zip(*(columns[k] for k in names))
        for row, s in zip(rows, score.tolist()):
            self._emitted += 1
            events.append({
                "event_id": uuid.UUID(int=int(self._rng.integers(0, 2**63)) << 64 | self._emitted).hex,
                "model": spec.name,
                "model_version": spec.version,
                "timestamp": round(self._t0 + self._emitted / self.events_per_second, 6),
                "features": dict(zip(names, row)),
                "prediction": int(s > 0.5),
                "score": round(s, 6),
            })
        return events


def send(producer, topic: str, value: bytes | None, key: bytes | None = None) -> None:
    """Produce one record, serving delivery reports while the local queue is full."""
    while True:
        try:
            producer.produce(topic, value=value, key=key)
            return
        except BufferError:
            producer.poll(0.05)


def produce(producer, topic: str, events: list[dict]) -> None:
    """Produce events keyed by event_id."""
    for event in events:
        send(producer, topic, orjson.dumps(event), event["event_id"].encode())
    producer.poll(0)


def run(producer, topic: str, simulator: Simulator, *, total: int | None, rate: float, stop=None,
        batch: int = 500, on_batch=None) -> int:
    """Produce ``total`` events (None: until ``stop`` is set) at ``rate`` events/s (0: flat out)."""
    sent = 0
    started = time.monotonic()
    while (total is None or sent < total) and not (stop is not None and stop.is_set()):
        n = batch if total is None else min(batch, total - sent)
        produce(producer, topic, simulator.batch(n))
        sent += n
        if on_batch:
            on_batch(sent)
        if rate > 0:
            ahead = sent / rate - (time.monotonic() - started)
            if ahead > 0:
                time.sleep(ahead)
    producer.flush(30)
    return sent
