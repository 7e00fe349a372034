"""What a ``model_comparison`` alert says in its ``details``: the verdict on a challenger version
and the evidence behind it, for a deployment controller to act on.

The alert itself is a :class:`~driftwire.schemas.DriftAlert` of kind ``performance``, detector
``model_comparison``, signal ``prediction`` and ``model_version`` the challenger's; its severity
is ``critical`` for ``rollback`` and ``warning`` for ``promote``.
"""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, StrictInt

from .fields import NonEmptyStr, Number

Recommendation = Literal["promote", "rollback", "keep-testing"]
#: the ``detector`` of a model_comparison alert
COMPARISON_DETECTOR = "model_comparison"


class PredictionDistance(BaseModel):
    """How far apart the two versions' predictions are distributed over the latest evaluation's events."""

    model_config = ConfigDict(extra="ignore", json_schema_serialization_defaults_required=True)

    statistic: Literal["js_distance", "ks"] = Field(
        description="js_distance: Jensen-Shannon distance (base 2) of the class frequencies; ks: two-sample "
                    "Kolmogorov-Smirnov statistic of numeric predictions."
    )
    value: Number = Field(description="The statistic, in [0, 1].")
    pvalue: Number | None = Field(None, description="The KS test's p-value; null for js_distance.")
    champion_events: StrictInt = Field(ge=1, description="Champion predictions compared.")
    challenger_events: StrictInt = Field(ge=1, description="Challenger predictions compared.")


class ModelComparison(BaseModel):
    """The ``details`` of a model_comparison alert."""

    model_config = ConfigDict(extra="ignore", json_schema_serialization_defaults_required=True)

    champion: NonEmptyStr = Field(description="Version the challenger is compared with.")
    challenger: NonEmptyStr = Field(description="Version under test (the alert's model_version).")
    recommendation: Recommendation = Field(
        description=(
            "promote: the challenger is better beyond the tolerance at the confidence level; rollback: it is "
            "worse; keep-testing: neither is shown yet."
        )
    )
    basis: Literal["paired", "independent", "agreement", "insufficient"] = Field(
        description=(
            "What the recommendation rests on: paired, labelled events both versions predicted (shadow "
            "traffic); independent, each version's own labelled events (a traffic split); agreement, the "
            "versions' agreement below min_agreement before labels decide; insufficient: fewer labelled "
            "events than min_labels."
        )
    )
    metric: Literal["accuracy", "mae"] = Field(
        description="What is compared: accuracy for a classification, mean absolute error for a regression."
    )
    labelled_events: StrictInt = Field(
        ge=0, description="Labelled events behind the difference (paired: both versions; independent: the fewer)."
    )
    champion_value: Number | None = Field(None, description="The champion's metric on those events.")
    challenger_value: Number | None = Field(None, description="The challenger's metric on those events.")
    advantage: Number | None = Field(
        None,
        description=(
            "How much better the challenger is: accuracy minus the champion's, or the champion's MAE minus "
            "the challenger's; positive favours the challenger."
        ),
    )
    low: Number | None = Field(None, description="Lower end of the advantage's confidence interval.")
    high: Number | None = Field(None, description="Upper end of the advantage's confidence interval.")
    pvalue: Number | None = Field(
        None, description="Two-sided p-value of no difference (McNemar's exact test for paired accuracy)."
    )
    confidence: Number = Field(description="Level of the intervals.")
    tolerance: Number = Field(
        description="Advantage the interval must clear to promote (or its negative, to roll back)."
    )
    min_labels: StrictInt = Field(ge=0, description="Labelled events needed before promote or rollback on labels.")
    shared_events: StrictInt = Field(ge=0, description="Events both versions predicted.")
    agreement: Number | None = Field(None, description="Share of the shared events the versions predicted alike.")
    agreement_low: Number | None = Field(None, description="Wilson interval of the agreement, lower end.")
    agreement_high: Number | None = Field(None, description="Wilson interval of the agreement, upper end.")
    distance: PredictionDistance | None = Field(None, description="Distance between the versions' predictions.")
    evaluation: StrictInt = Field(ge=0, description="Number of this evaluation of the pair, from 0.")
