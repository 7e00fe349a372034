"""The caps that bound what the service holds, whatever names arrive on the bus.

    models = ModelCap(max_models=1000)
    budget = SeriesBudget(max_series=6_000, models=models)
    models.admit("fraud-detector")    # True: tracked from now on
    budget.take()                     # True while a series has room

The first ``max_models`` distinct models seen are tracked; the events of any further model are
valid and counted (as model ``__other__``) but feed no detector, window, join or metric of its
own, so a flood of model names costs neither memory nor a per-model set-up. Series (model,
version, signal) are capped process-wide the same way. What each cap costs is in the README.
"""

from __future__ import annotations

import sys


class ModelCap:
    """The models tracked: the first ``max_models`` seen."""

    def __init__(self, max_models: int = sys.maxsize):
        self.max_models = max_models
        self._models: set[str] = set()

    def admit(self, model: str) -> bool:
        """Whether ``model`` is tracked, admitting it while there is room."""
        if model in self._models:
            return True
        if len(self._models) < self.max_models:
            self._models.add(model)
            return True
        return False

    def tracks(self, model: str) -> bool:
        return model in self._models

    def __len__(self) -> int:
        return len(self._models)


class SeriesBudget:
    """The process-wide cap on tracked series, shared by every partition's monitor, and the
    models they may belong to."""

    def __init__(self, max_series: int, models: ModelCap | None = None):
        self.max_series = max_series
        self.models = models if models is not None else ModelCap()
        self.used = 0

    def take(self) -> bool:
        if self.used >= self.max_series:
            return False
        self.used += 1
        return True

    def release(self, n: int) -> None:
        self.used -= n
