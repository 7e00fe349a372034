"""Join delayed labels to their predictions, one input partition at a time.

A label (``LabelEvent``) is matched to the predictions with the same ``(model, event_id)``,
whichever arrives first. Several versions of a model may predict the same event (a shadow or
canary release): a label joins every version's prediction of its event, which is what lets
driftwire compare versions on the same outcomes.

Co-partitioning rule: the join runs inside one partition number, so a label must land in the
partition of the labels topic with the number of its prediction's partition in the predictions
topic. Producers key both topics by ``event_id`` with the default partitioner, and both topics
have the same number of partitions; driftwire's consumers use the range assignor (librdkafka's
default), which gives partition ``p`` of both topics to one replica. The service warns at
start-up when the partition counts differ.

What waits is bounded, and what leaves without a match is counted:

- a prediction waits for its label until the labels have moved ``ttl`` seconds of event time
  past it (the latest label time seen is more than ``ttl`` after the prediction's arrival), and
  a label waits until the predictions have moved ``ttl`` past it; then it counts as
  ``prediction_expired`` or ``label_expired`` (a label for an event never predicted is one of
  those). Each side's clock is the other's latest event time, so a topic read ahead of the
  other (a backlog of predictions, labels caught up first) expires nothing too early, and a
  replay expires the same entries. While no label comes at all, predictions only leave by the
  cap;
- each side holds at most ``max_pending`` events; beyond, the oldest is evicted and counted as
  ``prediction_evicted`` or ``label_evicted``;
- a joined event is remembered (within the same bounds) so that a redelivered prediction or
  label counts as a duplicate rather than a new event, and the prediction of a version that
  arrives after the label still joins it. A duplicate is counted and dropped.

When two versions of a model predict the same event, the store also gives a :class:`Shared`
record: once when the second prediction meets the first (what the versions' agreement counts),
and once when the event's label is known for both (what their paired comparison counts); a
second version arriving after the label gives one record that is both.

>>> store = JoinStore(ttl=60.0, max_pending=1000)
>>> store.add_label("fraud", "e1", True, time=105.0, offset=7, message=0)
>>> store.add_prediction("fraud", "e1", "v2", True, 0.9, time=100.0, message=1)
>>> [(p.version, p.prediction, p.label, p.label_offset) for p in store.take_pairs()]
[('v2', True, True, 7)]
>>> store.add_label("fraud", "e1", True, time=106.0, offset=8, message=2)  # redelivered
>>> store.take_counts()
{'joined': 1, 'duplicate_label': 1}
>>> store.add_prediction("fraud", "e1", "v3", False, 0.4, time=101.0, message=3)  # a shadow version
>>> [(s.first[0], s.first[1], s.second[0], s.second[1], s.met, s.label) for s in store.take_shared()]
[('v2', True, 'v3', False, True, True)]
"""

from __future__ import annotations

import math
from collections import OrderedDict
from dataclasses import dataclass

import numpy as np

from driftwire.stream.alert.publish import finite_or_none

#: what can become of an event in the join, the label of ``driftwire_join_events_total``
OUTCOMES = (
    "joined", "duplicate_prediction", "duplicate_label", "prediction_expired", "label_expired",
    "prediction_evicted", "label_evicted",
)


@dataclass(frozen=True, slots=True)
class Pair:
    """A prediction of one model version with its label."""

    model: str
    version: str
    event_id: str
    prediction: object
    score: float | None
    label: object
    #: event time of the prediction
    time: float
    #: position in the batch of the record that completed the pair (the later of the two)
    message: int
    #: offset of the label's record in its partition of the labels topic
    label_offset: int


#: the label of a :class:`Shared` record whose event has none yet
NO_LABEL = None


@dataclass(frozen=True, slots=True)
class Shared:
    """The predictions of two versions of a model for one event; ``first`` is the version whose
    prediction arrived first. Each is ``(version, prediction, score, time)``."""

    model: str
    event_id: str
    first: tuple
    second: tuple
    #: the two predictions just met (a record of their agreement); False: the label came to
    #: predictions that had met before
    met: bool
    #: the event's label, or ``None`` (:data:`NO_LABEL`) while it has none
    label: object
    labelled: bool
    #: position in the batch of the record that made this one
    message: int
    label_offset: int = -1


def join_bounds(ttl: float, max_pending: int) -> tuple[float, int]:
    """A join's TTL and cap, checked."""
    if not ttl > 0:
        raise ValueError(f"ttl must be positive, got {ttl}")
    if max_pending < 1:
        raise ValueError(f"max_pending must be at least 1, got {max_pending}")
    return float(ttl), int(max_pending)


class JoinStore:
    """Predictions waiting for labels and labels waiting for predictions, of one partition."""

    def __init__(self, ttl: float, max_pending: int):
        self.ttl, self.max_pending = join_bounds(ttl, max_pending)
        #: whether the partition's predictions are taken (``join.enabled: auto`` leaves them out
        #: until its labels partition has a record; the service sets it)
        self.active = True
        #: latest event time of a prediction and of a label seen: the clocks of the TTL
        self.prediction_clock = -math.inf
        self.label_clock = -math.inf
        # Each side is in the order of its own clock at arrival, which only rises: the oldest
        # entry is first.
        # Entries are tuples of strings and numbers only: the garbage collector stops tracking
        # such tuples, so hundreds of thousands of waiting entries cost its full collections nothing.
        #: (model, event_id) -> (prediction clock at arrival, ((version, prediction, score, time), ...))
        self._predictions: OrderedDict[tuple[str, str], tuple] = OrderedDict()
        #: (model, event_id) -> (label clock at arrival, label, offset)
        self._labels: OrderedDict[tuple[str, str], tuple] = OrderedDict()
        #: (model, event_id) -> (the lower clock at the join, label, offset,
        #: ((version, prediction, score, time), ...) of the versions joined)
        self._joined: OrderedDict[tuple[str, str], tuple] = OrderedDict()
        self._pairs: list[Pair] = []
        self._shared: list[Shared] = []
        self._counts: dict[str, int] = {}
        #: per side (by id), a clock at or below its oldest entry's: no entry expires before the
        #: horizon passes it, so most events skip looking
        self._oldest: dict[int, float] = {}

    @property
    def pending_predictions(self) -> int:
        """Events with at least one prediction waiting for its label."""
        return len(self._predictions)

    @property
    def pending_labels(self) -> int:
        return len(self._labels)

    # -- input ---------------------------------------------------------------------------
    def add_prediction(self, model: str, event_id: str, version: str, prediction, score, time: float,
                       message: int) -> None:
        if time > self.prediction_clock:  # also refuses NaN
            self.prediction_clock = time
            self._expire(self._labels, time - self.ttl, "label_expired")
            self._forget()
        key = (model, event_id)
        mine = (version, prediction, score, time)
        joined = self._joined.get(key)
        if joined is not None:
            if any(v[0] == version for v in joined[3]):
                self._count("duplicate_prediction")
            else:
                self._joined[key] = (*joined[:3], (*joined[3], mine))
                self._pair(key, mine, joined[1], joined[2], message)
                for other in joined[3]:
                    self._shared.append(Shared(model, event_id, other, mine, True, joined[1], True, message,
                                               joined[2]))
            return
        label = self._labels.pop(key, None)
        if label is not None:
            self._pair(key, mine, label[1], label[2], message)
            self._remember(key, label[1], label[2], (mine,))
            return
        entry = self._predictions.get(key)
        if entry is None:
            self._predictions[key] = (self.prediction_clock, (mine,))
            self._bound(self._predictions, "prediction_evicted")
        elif any(v[0] == version for v in entry[1]):
            self._count("duplicate_prediction")
        else:
            self._predictions[key] = (entry[0], (*entry[1], mine))
            for other in entry[1]:
                self._shared.append(Shared(model, event_id, other, mine, True, NO_LABEL, False, message))

    def add_predictions(self, models: list, event_ids: list, versions: list, predictions: list, scores: list,
                        times: list, messages: list) -> None:
        """:meth:`add_prediction` of each event in order. The runs of events whose key nothing in
        the store holds, and no earlier event of the batch has, go in at once: they only wait,
        so the store ends as it would one by one, and they are nearly all of a stream."""
        keys = list(zip(models, event_ids))
        held = (self._predictions.keys() & keys) | (self._labels.keys() & keys) | (self._joined.keys() & keys)
        slow = []
        if held or len(set(keys)) < len(keys):
            seen = set()
            for i, key in enumerate(keys):
                if key in held or key in seen:
                    slow.append(i)
                seen.add(key)
        start = 0
        for i in (*slow, len(keys)):
            if i > start:
                self._wait(keys[start:i], versions[start:i], predictions[start:i], scores[start:i], times[start:i])
            if i < len(keys):
                self.add_prediction(models[i], event_ids[i], versions[i], predictions[i], scores[i], times[i],
                                    messages[i])
            start = i + 1

    def _wait(self, keys, versions, predictions, scores, times) -> None:
        """Predictions of new keys, in order, to wait for their labels."""
        # each entry's clock is the clock after its own event (fmax: a NaN time leaves it)
        clocks = np.fmax.accumulate(np.array([self.prediction_clock, *times]))[1:].tolist()
        self._predictions.update(zip(keys, zip(clocks, zip(zip(versions, predictions, scores, times)))))
        if clocks[-1] > self.prediction_clock:
            self.prediction_clock = clocks[-1]
            self._expire(self._labels, self.prediction_clock - self.ttl, "label_expired")
            self._forget()
        for _ in range(len(self._predictions) - self.max_pending):
            _, entry = self._predictions.popitem(last=False)
            self._count("prediction_evicted", len(entry[1]))

    def add_label(self, model: str, event_id: str, label, time: float, offset: int, message: int) -> None:
        if time > self.label_clock:
            self.label_clock = time
            self._expire(self._predictions, time - self.ttl, "prediction_expired")
            self._forget()
        key = (model, event_id)
        if key in self._joined or key in self._labels:
            self._count("duplicate_label")
            return
        entry = self._predictions.pop(key, None)
        if entry is None:
            self._labels[key] = (self.label_clock, label, offset)
            self._bound(self._labels, "label_evicted")
            return
        versions = entry[1]
        for prediction in versions:
            self._pair(key, prediction, label, offset, message)
        for i, first in enumerate(versions):
            for second in versions[i + 1:]:
                self._shared.append(Shared(model, event_id, first, second, False, label, True, message, offset))
        self._remember(key, label, offset, versions)

    # -- output --------------------------------------------------------------------------
    def take_pairs(self) -> list[Pair]:
        """The pairs joined since the last call, in the order they were completed."""
        pairs, self._pairs = self._pairs, []
        return pairs

    def take_shared(self) -> list[Shared]:
        """The :class:`Shared` records made since the last call, in order."""
        shared, self._shared = self._shared, []
        return shared

    def take_counts(self) -> dict[str, int]:
        """Events per outcome (see :data:`OUTCOMES`) since the last call; a joined event with
        several versions counts once per version."""
        counts, self._counts = self._counts, {}
        return counts

    # -- bookkeeping ---------------------------------------------------------------------
    def _pair(self, key, prediction, label, offset, message) -> None:
        version, value, score, time = prediction
        self._pairs.append(Pair(key[0], version, key[1], value, score, label, time, message, offset))
        self._count("joined")

    def _remember(self, key, label, offset, versions: tuple) -> None:
        self._joined[key] = (min(self.prediction_clock, self.label_clock), label, offset, versions)
        if len(self._joined) > self.max_pending:
            self._joined.popitem(last=False)  # only dedup memory: nothing waits on it

    def _count(self, outcome: str, n: int = 1) -> None:
        self._counts[outcome] = self._counts.get(outcome, 0) + n

    def _bound(self, side: OrderedDict, outcome: str) -> None:
        if len(side) > self.max_pending:
            _, entry = side.popitem(last=False)
            self._count(outcome, len(entry[1]) if outcome == "prediction_evicted" else 1)

    def _forget(self) -> None:
        self._expire(self._joined, min(self.prediction_clock, self.label_clock) - self.ttl, None)

    def _expire(self, side: OrderedDict, horizon: float, outcome: str | None) -> None:
        if horizon <= self._oldest.get(id(side), -math.inf):
            return
        while side:
            key = next(iter(side))
            entry = side[key]
            if entry[0] >= horizon:
                self._oldest[id(side)] = entry[0]
                return
            del side[key]
            if outcome is not None:
                self._count(outcome, len(entry[1]) if outcome == "prediction_expired" else 1)
        self._oldest[id(side)] = -math.inf

    # -- checkpoint ----------------------------------------------------------------------
    def get_state(self) -> dict:
        return {
            "active": self.active,
            "clocks": [finite_or_none(self.prediction_clock), finite_or_none(self.label_clock)],
            "predictions": [[m, e, t, [list(p) for p in versions]]
                            for (m, e), (t, versions) in self._predictions.items()],
            "labels": [[m, e, t, label, offset] for (m, e), (t, label, offset) in self._labels.items()],
            "joined": [[m, e, t, label, offset, [list(p) for p in versions]]
                       for (m, e), (t, label, offset, versions) in self._joined.items()],
        }

    def set_state(self, state: dict) -> None:
        self._oldest = {}
        self.active = state.get("active", True)
        self.prediction_clock, self.label_clock = (-math.inf if t is None else t for t in state["clocks"])
        self._predictions = OrderedDict(((m, e), (t, tuple(map(tuple, versions))))
                                        for m, e, t, versions in state["predictions"])
        self._labels = OrderedDict(((m, e), (t, label, offset)) for m, e, t, label, offset in state["labels"])
        self._joined = OrderedDict(((m, e), (t, label, offset, tuple(map(_prediction, versions))))
                                   for m, e, t, label, offset, versions in state["joined"])


def _prediction(saved) -> tuple:
    """A joined version as a checkpoint holds it; checkpoints before versions kept their
    predictions hold only its name."""
    return (saved, None, None, None) if isinstance(saved, str) else tuple(saved)
