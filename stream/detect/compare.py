"""Champion and challenger: versions of one model compared on the same traffic.

A challenger version runs beside the champion either in **shadow** (both predict every event:
the join sees two versions' predictions of one ``event_id``) or as a **canary** (the traffic is
split: each event has one version's prediction). Per partition and per pair (champion,
challenger) the tracker keeps, from the moment the challenger appears:

- the **agreement**: of the events both predicted, the share they predicted alike (classes
  compared by name; regressions only when ``agreement_tolerance`` is set), with a Wilson
  interval;
- the **distance** between their predictions over the latest evaluation's events: the
  Jensen-Shannon distance of class frequencies, or the two-sample Kolmogorov-Smirnov statistic
  of numeric predictions;
- the **advantage** of the challenger once labels arrive: on shared labelled events, paired
  (the accuracy difference with McNemar's exact test, or the mean of the paired differences of
  absolute errors); without shared events, each version's own labelled events, independent
  (Newcombe's interval for the accuracy difference, Welch's for the mean absolute errors).

Every ``every`` events of the challenger (shared with the champion in shadow, labelled in a
canary) the comparison is evaluated and a recommendation made
(:func:`driftwire.detectors.performance.recommend`): ``promote`` or ``rollback`` once
``min_labels`` labelled events back an interval that lies wholly on one side of the tolerance,
otherwise ``keep-testing``. The service publishes a ``model_comparison`` alert each time the
recommendation turns to ``promote`` or ``rollback``; its ``details`` follow
:class:`driftwire.schemas.ModelComparison`.

The champion is the version ``comparison.champion`` names, or else the first version of the
model this partition saw. Name it when versions roll over (after a promotion the old champion
would otherwise stay the reference until a restart without state).
"""

from __future__ import annotations

import math
from collections import deque
from dataclasses import dataclass, field

import numpy as np

from driftwire.detectors.performance import (
    KEEP_TESTING,
    ROLLBACK,
    agreement,
    mean_difference,
    paired_difference,
    paired_mean_difference,
    proportion_difference,
    recommend,
)
from driftwire.detectors.statistics import js_distance, ks_2samp
from driftwire.stream.alert.publish import finite_or_none
from driftwire.stream.detect.outcomes import CLASSIFICATION, OutcomeTracker, class_name, error, is_number
from driftwire.stream.join.batch import Pairs
from driftwire.stream.join.store import Pair, Shared
from driftwire.stream.settings import DetectionConfig, ResolvedComparisonConfig


@dataclass
class Evaluation:
    """One evaluation of a challenger against its champion."""

    model: str
    champion: str
    challenger: str
    #: event times of the earliest and latest observation since the previous evaluation
    start: float
    end: float
    events: int
    #: position in the batch of the record that completed the evaluation
    message: int
    recommendation: str
    #: the alert's details (:class:`driftwire.schemas.ModelComparison`)
    details: dict
    #: the recommendation differs from the one the previous alert of this pair carried
    changed: bool


@dataclass
class _Contest:
    """What is known of one challenger against the champion, since the challenger appeared."""

    task: str
    shared: int = 0
    same: int = 0
    # paired, labelled shared events: classification counts, or sums of d = |e_champion| - |e_challenger|
    paired: int = 0
    both_right: int = 0
    champion_only: int = 0  # McNemar's b: the champion right, the challenger wrong
    challenger_only: int = 0  # c
    sum_d: float = 0.0
    sum_sq_d: float = 0.0
    paired_errors: list = field(default_factory=lambda: [0.0, 0.0])  # summed |e| of champion, challenger
    # independent, each version's own labelled events: [n, correct or sum |e|, sum e^2]
    own: dict = field(default_factory=lambda: {"champion": [0, 0.0, 0.0], "challenger": [0, 0.0, 0.0]})
    number: int = 0
    since: int = 0
    start: float = math.inf
    end: float = -math.inf
    published: str = KEEP_TESTING
    # the latest predictions of each, for the distance (not checkpointed: refilled within one evaluation)
    recent: dict = field(default_factory=dict)

    def get_state(self) -> dict:
        state = {k: getattr(self, k) for k in _STATE_FIELDS}
        state["start"], state["end"] = finite_or_none(self.start), finite_or_none(self.end)
        return state

    @classmethod
    def from_state(cls, state: dict) -> _Contest:
        contest = cls(**{k: state[k] for k in _STATE_FIELDS})
        contest.start = math.inf if state["start"] is None else state["start"]
        contest.end = -math.inf if state["end"] is None else state["end"]
        return contest


_STATE_FIELDS = ("task", "shared", "same", "paired", "both_right", "champion_only", "challenger_only", "sum_d",
                 "sum_sq_d", "paired_errors", "own", "number", "since", "published")


class ComparisonTracker:
    """Challengers against champions, over the shared and labelled predictions of one partition."""

    def __init__(self, config: DetectionConfig, outcomes: OutcomeTracker):
        self.config = config
        #: the partition's tracker of labelled predictions, which fixes each model's task
        self.outcomes = outcomes
        self.champions: dict[str, str] = {}
        self._contests: dict[tuple[str, str], _Contest] = {}
        self._configs: dict[str, ResolvedComparisonConfig] = {}

    def comparison_config(self, model: str) -> ResolvedComparisonConfig:
        cfg = self._configs.get(model)
        if cfg is None:
            cfg = self._configs[model] = self.config.resolve_comparison(model)
        return cfg

    def observe(self, shared: list[Shared], pairs: Pairs) -> list[Evaluation]:
        """Take a batch's shared records and labelled pairs (each list in order); return the
        evaluations that came due."""
        due = []
        for record in shared:
            found = self._contest(record.model, record.first[0], record.second[0], record.first[1])
            if found is not None:
                self._shared(found, record, due)
        for i in self._contested(pairs).tolist():
            pair = pairs.pair(i)
            found = self._contest(pair.model, pair.version, None, pair.prediction)
            if found is not None:
                self._labelled(found, pair, due)
        return due

    def _contested(self, pairs: Pairs) -> np.ndarray:
        """The pairs that may count in a contest, in order: those of models compared whose batch
        has a challenger's pairs or that have a contest already. For the others (one version,
        the champion, nothing to compare it with) a contest would only name the champion."""
        names, versions = pairs.codes.model_names, pairs.codes.version_names
        taken = []
        for model in np.unique(pairs.model).tolist():
            name = names[model]
            cfg = self.comparison_config(name)
            if not cfg.enabled:
                continue
            mine = np.flatnonzero(pairs.model == model)
            seen = np.unique(pairs.version[mine])
            champion = self.champions.setdefault(name, cfg.champion or versions[int(pairs.version[mine[0]])])
            if seen.size == 1 and versions[int(seen[0])] == champion and not any(m == name for m, _ in self._contests):
                continue
            taken.append(mine)
        return np.sort(np.concatenate(taken)) if taken else np.zeros(0, dtype=np.int64)

    # -- contests ------------------------------------------------------------------------
    def _contest(self, model: str, version: str, other: str | None, prediction):
        """(contest, champion, challenger, the role of ``version``) for a record of ``version``
        (and ``other``, for a shared one); None when it involves no challenger of the champion."""
        cfg = self.comparison_config(model)
        if not cfg.enabled:
            return None
        champion = self.champions.setdefault(model, cfg.champion or version)
        if other is None:
            if version == champion:
                return [(c, champion, m[1], "champion") for m, c in self._contests.items() if m[0] == model] or None
            challenger, role = version, "challenger"
        elif champion in (version, other):
            challenger, role = (other if version == champion else version), None
        else:
            return None
        key = (model, challenger)
        contest = self._contests.get(key)
        if contest is None:
            contest = self._contests[key] = _Contest(self.outcomes.task(model, prediction))
        return [(contest, champion, challenger, role)]

    def _shared(self, found: list, record: Shared, due: list) -> None:
        (contest, champion, challenger, _), = found
        mine, theirs = (record.first, record.second) if record.first[0] == champion else (record.second, record.first)
        if contest.shared == 0:
            contest.recent.clear()  # shadow traffic: the distance is taken on shared events only
        if record.met:
            contest.shared += 1
            contest.same += self._agree(record.model, contest.task, mine[1], theirs[1])
            self._remember(contest, "champion", mine[1], record.model)
            self._remember(contest, "challenger", theirs[1], record.model)
        if record.labelled:
            self._paired(contest, mine[1], theirs[1], record.label)
        if record.met:
            self._tick(contest, record.model, champion, challenger, theirs[3], record.message, due)

    def _labelled(self, found: list, pair: Pair, due: list) -> None:
        e = error(found[0][0].task, pair.prediction, pair.label)
        for contest, champion, challenger, role in found:
            if not math.isnan(e):
                own = contest.own[role]
                own[0] += 1
                own[1] += (1.0 - e) if contest.task == CLASSIFICATION else e
                own[2] += e * e
            if contest.shared:
                continue  # shadow traffic: the shared records count
            self._remember(contest, role, pair.prediction, pair.model)
            if role == "challenger":
                self._tick(contest, pair.model, champion, challenger, pair.time, pair.message, due)

    def _paired(self, contest: _Contest, champion_prediction, challenger_prediction, label) -> None:
        a = error(contest.task, champion_prediction, label)
        b = error(contest.task, challenger_prediction, label)
        if math.isnan(a) or math.isnan(b):
            return
        contest.paired += 1
        if contest.task == CLASSIFICATION:
            contest.both_right += a == 0.0 and b == 0.0
            contest.champion_only += a == 0.0 and b == 1.0
            contest.challenger_only += a == 1.0 and b == 0.0
        else:
            d = a - b
            contest.paired_errors[0] += a
            contest.paired_errors[1] += b
            contest.sum_d += d
            contest.sum_sq_d += d * d

    def _agree(self, model: str, task: str, a, b) -> bool:
        if task == CLASSIFICATION:
            return class_name(a) == class_name(b)
        tolerance = self.comparison_config(model).agreement_tolerance
        return tolerance is not None and is_number(a) and is_number(b) and abs(a - b) <= tolerance

    def _remember(self, contest: _Contest, role: str, prediction, model: str) -> None:
        recent = contest.recent.get(role)
        if recent is None:
            recent = contest.recent[role] = deque(maxlen=self.comparison_config(model).every)
        recent.append(prediction)

    def _tick(self, contest: _Contest, model, champion, challenger, time, message, due: list) -> None:
        contest.since += 1
        if time is not None and math.isfinite(time):
            contest.start, contest.end = min(contest.start, time), max(contest.end, time)
        if contest.since >= self.comparison_config(model).every:
            due.append(self._evaluate(contest, model, champion, challenger, message))

    # -- evaluation ----------------------------------------------------------------------
    def _evaluate(self, contest: _Contest, model, champion, challenger, message) -> Evaluation:
        cfg = self.comparison_config(model)
        details = {"champion": champion, "challenger": challenger, "confidence": cfg.confidence,
                   "tolerance": cfg.tolerance, "min_labels": cfg.min_labels, "shared_events": contest.shared,
                   "evaluation": contest.number,
                   "metric": "accuracy" if contest.task == CLASSIFICATION else "mae"}
        rate, low, high = self._agreement(contest, cfg)
        details.update(agreement=finite_or_none(rate), agreement_low=finite_or_none(low),
                       agreement_high=finite_or_none(high))
        details["distance"] = _distance(contest)
        basis, n, values, diff = _advantage(contest, cfg.confidence)
        recommendation = recommend(diff, rate, cfg.min_labels, n, cfg.tolerance)
        if n < cfg.min_labels:
            basis = "insufficient"
            if cfg.min_agreement is not None and math.isfinite(high) and high < cfg.min_agreement:
                basis, recommendation = "agreement", ROLLBACK
        details.update(recommendation=recommendation, basis=basis, labelled_events=n,
                       champion_value=finite_or_none(values[0]), challenger_value=finite_or_none(values[1]),
                       advantage=finite_or_none(diff["difference"]), low=finite_or_none(diff["low"]),
                       high=finite_or_none(diff["high"]), pvalue=finite_or_none(diff["pvalue"]))
        changed = recommendation != contest.published
        evaluation = Evaluation(model, champion, challenger, contest.start, contest.end, contest.since, message,
                                recommendation, details, changed)
        contest.published = recommendation
        contest.number += 1
        contest.since = 0
        contest.start, contest.end = math.inf, -math.inf
        return evaluation

    def _agreement(self, contest: _Contest, cfg: ResolvedComparisonConfig) -> tuple[float, float, float]:
        if contest.task != CLASSIFICATION and cfg.agreement_tolerance is None:
            return math.nan, math.nan, math.nan
        return agreement(contest.same, contest.shared, cfg.confidence)

    # -- checkpoint ----------------------------------------------------------------------
    def get_state(self) -> dict:
        return {"champions": self.champions,
                "contests": [[m, v, c.get_state()] for (m, v), c in self._contests.items()]}

    def set_state(self, state: dict) -> None:
        self.champions = dict(state["champions"])
        self._contests = {(m, v): _Contest.from_state(c) for m, v, c in state["contests"]}


def _advantage(contest: _Contest, confidence: float) -> tuple[str, int, tuple[float, float], dict]:
    """(basis, labelled events, (champion's metric, challenger's), the challenger's advantage
    with its interval): paired when the versions shared labelled events, else independent."""
    classification = contest.task == CLASSIFICATION
    if contest.paired:
        n = contest.paired
        if classification:
            diff = paired_difference(contest.champion_only, contest.challenger_only, n, confidence)
            right = contest.both_right
            values = ((right + contest.champion_only) / n, (right + contest.challenger_only) / n)
        else:
            diff = paired_mean_difference(contest.sum_d, contest.sum_sq_d, n, confidence)
            values = (contest.paired_errors[0] / n, contest.paired_errors[1] / n)
        return "paired", n, values, diff
    (n_a, s_a, q_a), (n_b, s_b, q_b) = contest.own["champion"], contest.own["challenger"]
    values = (s_a / n_a if n_a else math.nan, s_b / n_b if n_b else math.nan)
    if classification:
        return "independent", min(n_a, n_b), values, proportion_difference(int(s_a), n_a, int(s_b), n_b, confidence)
    diff = mean_difference(s_a, q_a, n_a, s_b, q_b, n_b, confidence)
    # a lower error is better: the advantage is the champion's MAE minus the challenger's
    flipped = {"difference": -diff["difference"], "low": -diff["high"], "high": -diff["low"], "pvalue": diff["pvalue"]}
    return "independent", min(n_a, n_b), values, flipped


def _distance(contest: _Contest) -> dict | None:
    a, b = contest.recent.get("champion"), contest.recent.get("challenger")
    if not a or not b:
        return None
    sizes = {"champion_events": len(a), "challenger_events": len(b)}
    if contest.task == CLASSIFICATION:
        names = sorted({class_name(v) for v in (*a, *b)}, key=str)
        codes = {name: i for i, name in enumerate(names)}
        counts = np.zeros((2, len(names)))
        for row, values in enumerate((a, b)):
            for v in values:
                counts[row, codes[class_name(v)]] += 1
        return {"statistic": "js_distance", "value": js_distance(counts[0], counts[1]), "pvalue": None, **sizes}
    u = np.array([float(v) for v in a if is_number(v) and math.isfinite(v)])
    v = np.array([float(x) for x in b if is_number(x) and math.isfinite(x)])
    if not (u.size and v.size):
        return None
    d, p = ks_2samp(u, None, v, None)
    return {"statistic": "ks", "value": d, "pvalue": p, "champion_events": int(u.size),
            "challenger_events": int(v.size)}
