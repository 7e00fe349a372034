"""The reference profile of a model version: what its training data looked like, signal by signal.

``driftwire profile`` writes one from training data; a training job may also publish it to the
compacted ``drift-references`` topic (key ``model/version``) when it ships the model. driftwire
compares each window of live events with it (see :mod:`driftwire.detectors.window`).

A numeric signal keeps quantile bin edges with the training counts in each bin (the outer bins
are open-ended), its range and moments, and a mergeable KLL quantile sketch; a categorical signal
keeps the frequencies of its most frequent categories, the count of all others and their names.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, StrictInt, model_validator

from .fields import UNKNOWN_VERSION, NonEmptyStr, Number, UtcDatetime

_CONFIG = ConfigDict(extra="forbid")
#: the most bins of a numeric profile and top categories of a categorical one that windows take
MAX_BINS = 64
MAX_CATEGORIES = MAX_BINS - 2
Rate = Annotated[float, Field(ge=0.0, le=1.0)]


class NumericProfile(BaseModel):
    """A numeric signal of the training data."""

    model_config = _CONFIG

    type: Literal["numeric"] = Field("numeric", description="The kind of signal.")
    count: StrictInt = Field(ge=1, description="Rows with a number in this signal.")
    missing_rate: Rate = Field(description="Share of rows without a number here (absent, null or not a number).")
    min: Number = Field(description="Smallest value.")
    max: Number = Field(description="Largest value.")
    mean: Number = Field(description="Mean of the values.")
    std: Number = Field(ge=0.0, description="Sample standard deviation (ddof=1; 0 for a single row).")
    edges: list[Number] = Field(
        max_length=MAX_BINS - 1,
        description=(
            "Inner bin edges, increasing. Bin 0 is (-inf, edges[0]), bin i is [edges[i-1], edges[i]), the last "
            "bin is [edges[-1], +inf). Quantiles of the training data, so the bins hold about equal shares."
        )
    )
    counts: list[StrictInt] = Field(description="Training rows in each bin: one more entry than edges.")
    sketch: dict[str, Any] = Field(
        description="KLL quantile sketch of the values (driftwire.detectors.kll.QuantileSketch.to_dict)."
    )

    @model_validator(mode="after")
    def _consistent(self) -> NumericProfile:
        if len(self.counts) != len(self.edges) + 1:
            raise ValueError(f"{len(self.edges)} edges need {len(self.edges) + 1} counts, got {len(self.counts)}")
        if any(b <= a for a, b in zip(self.edges, self.edges[1:])):
            raise ValueError("edges must be strictly increasing")
        if sum(self.counts) != self.count:
            raise ValueError(f"counts sum to {sum(self.counts)}, not to count={self.count}")
        if not self.min <= self.mean <= self.max:
            raise ValueError("need min <= mean <= max")
        return self


class CategoricalProfile(BaseModel):
    """A categorical signal (strings or booleans) of the training data."""

    model_config = _CONFIG

    type: Literal["categorical"] = Field("categorical", description="The kind of signal.")
    count: StrictInt = Field(ge=1, description="Rows with a category in this signal.")
    missing_rate: Rate = Field(description="Share of rows without a category here (absent or null).")
    frequencies: dict[str, StrictInt] = Field(
        max_length=MAX_CATEGORIES,
        description="Rows of each of the most frequent categories (booleans as 'true' / 'false')."
    )
    other: StrictInt = Field(0, ge=0, description="Rows of every other category seen in training.")
    cardinality: StrictInt = Field(
        ge=1, description="Distinct categories in the training data (a lower bound when other_categories is null)."
    )
    other_categories: list[str] | None = Field(
        None,
        description=(
            "Names of every other category seen in training, most frequent first; null when they were not all "
            "kept. With the names, a window counts a category that is in neither list as unseen; without them, "
            "as other."
        ),
    )

    @model_validator(mode="after")
    def _consistent(self) -> CategoricalProfile:
        if sum(self.frequencies.values()) + self.other != self.count:
            raise ValueError("frequencies and other must sum to count")
        if not self.frequencies:
            raise ValueError("a categorical profile needs at least one category")
        if self.other_categories is not None:
            names = set(self.other_categories)
            if len(names) != len(self.other_categories) or names & self.frequencies.keys():
                raise ValueError("other_categories must be distinct and not among frequencies")
            if len(self.frequencies) + len(names) != self.cardinality:
                raise ValueError("frequencies and other_categories must name cardinality categories")
            if bool(names) != (self.other > 0):
                raise ValueError("other_categories must be empty exactly when other is 0")
        return self


SignalProfile = Annotated[NumericProfile | CategoricalProfile, Field(discriminator="type")]


class ReferenceProfile(BaseModel):
    """What one model version's inputs and outputs looked like in training. Published as JSON on
    the references topic, keyed ``model/model_version``."""

    model_config = _CONFIG

    model: NonEmptyStr = Field(description="Name of the model the profile describes.")
    model_version: NonEmptyStr = Field(
        UNKNOWN_VERSION, description='Version of the model; "*" applies to every version without a profile of its own.'
    )
    rows: StrictInt = Field(ge=1, description="Rows (events) the profile was built from.")
    created_at: UtcDatetime = Field(
        default_factory=lambda: datetime.now(UTC), description="When the profile was built, UTC."
    )
    source: str = Field("", description="Where the data came from (a file name, a table, 'live events').")
    signals: dict[str, SignalProfile] = Field(
        description="Feature names, and prediction and score when the data has them, to their profile."
    )
    label: SignalProfile | None = Field(
        None,
        description=(
            "The ground-truth labels of the data, when it has them: the reference of label drift. Categorical "
            "for a classification (classes named as a label's class: true/false, integral numbers without a "
            "fraction), numeric for a regression."
        ),
    )

    @property
    def key(self) -> str:
        """The message key on the references topic."""
        return f"{self.model}/{self.model_version}"
