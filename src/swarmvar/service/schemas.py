"""Request and response bodies of the HTTP API (pydantic, at the edge only).

Requests are strict: numbers must be JSON numbers (finite), dates ISO
``YYYY-MM-DD`` strings, and unknown fields are refused, so a typo is a 422
rather than a silently ignored value.
"""

from __future__ import annotations

import datetime as dt
from typing import Annotated, Literal

from pydantic import (
    AfterValidator,
    BaseModel,
    ConfigDict,
    Discriminator,
    Field,
    StringConstraints,
    Tag,
)

from ..data import MAX_ABS_RETURN
from .desk import MAX_HISTORY, MIN_HISTORY, DatedReturn


def _iso_date(text: str) -> str:
    dt.date.fromisoformat(text)  # ValueError -> 422 naming the field
    return text


IsoDate = Annotated[str, StringConstraints(pattern=r"^\d{4}-\d{2}-\d{2}$"),
                    AfterValidator(_iso_date)]
Finite = Annotated[float, Field(strict=True, allow_inf_nan=False)]


#: The rule for a new portfolio's history, as the schema states it (the app adds the number).
HISTORY_RULE = ("Dated returns, oldest first: at least the largest `min_observations` of the "
                f"portfolio's agents (each agent is fitted on it), never fewer than {MIN_HISTORY}.")


#: The rule for one return (the data layer's, which the agents apply: checked by the desk,
#: whose 422 names the row, its date, the value and the percent hint).
RETURN_RULE = ("A daily log return as a fraction (0.01 = 1%), finite, between "
               f"-{MAX_ABS_RETURN:g} and {MAX_ABS_RETURN:g} (beyond: a 422 naming the row, "
               "nothing stored; divide percent values by 100)")


#: The rule for an ingest batch, as the schema states it (the app adds this server's cap).
BATCH_RULE = ("Dated returns, oldest first, dates strictly increasing (else 422 naming the "
              "first pair out of order); stored all or nothing.")


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", populate_by_name=True)


class ReturnIn(_Strict):
    """One day's log return of the portfolio, as a fraction (0.01 = 1%)."""

    date: IsoDate = Field(examples=["2024-01-02"])
    value: Finite = Field(alias="return", examples=[-0.0123], description=RETURN_RULE,
                          json_schema_extra={"minimum": -MAX_ABS_RETURN,
                                             "maximum": MAX_ABS_RETURN})

    def dated(self) -> DatedReturn:
        return DatedReturn(dt.date.fromisoformat(self.date), self.value)


class ReturnBatch(_Strict):
    """Several days' returns, oldest first; stored all or nothing."""

    # the most a request may carry is the server's `--max-batch` (a 413 naming it, checked
    # by the route; the app states it in the schema as maxItems): no fixed bound here
    returns: list[ReturnIn] = Field(min_length=1, description=BATCH_RULE)


def _ingest_kind(body: object) -> str:
    """The member of :data:`IngestBody` a body means: a ``returns`` field is a batch."""
    if isinstance(body, ReturnBatch) or (isinstance(body, dict) and "returns" in body):
        return "ReturnBatch"
    return "ReturnIn"


#: The ingest body: one return or a batch. Told apart by its shape, so a refusal names
#: only that member's fields (not both members' complaints, interleaved).
IngestBody = Annotated[Annotated[ReturnIn, Tag("ReturnIn")]
                       | Annotated[ReturnBatch, Tag("ReturnBatch")],
                       Discriminator(_ingest_kind)]


class PortfolioIn(_Strict):
    """A new portfolio: its name and the history its swarm is fitted on."""

    name: str = Field(min_length=1, max_length=64, examples=["equity-book"])
    history: list[ReturnIn] = Field(
        min_length=1, max_length=MAX_HISTORY,
        description=HISTORY_RULE)
    agents: list[Annotated[str, StringConstraints(max_length=64)]] | None = Field(
        default=None, min_length=1, max_length=16,
        description="Agent names or aliases (omitted: the server's swarm).")


class PortfolioOut(BaseModel):
    name: str
    agents: list[str]
    alphas: list[float]
    horizon: int
    beats: int
    last_date: str
    created_by: str


class IngestedOut(BaseModel):
    date: str
    seq: int = Field(description="The beat the return drove (-1: older than the kept beats).")
    duplicate: bool = Field(description="Already recorded: nothing was changed.")


class IngestOut(BaseModel):
    portfolio: str
    stored: int
    duplicates: int
    message: str
    results: list[IngestedOut]


class LevelOut(BaseModel):
    alpha: float
    var: float
    es: float
    var_interval: tuple[float, float]
    es_interval: tuple[float, float]
    method: str
    weights: dict[str, float]
    available: int
    total: int
    degraded: bool


class RiskOut(BaseModel):
    portfolio: str
    seq: int
    as_of: str
    horizon: int
    levels: list[LevelOut]
    rejected: dict[str, str] = Field(description=(
        "Agents whose estimate did not count, and why (an agent without a forecast: since "
        "which beat, and its own refusal)"))
    detail: str = Field(default="", description=(
        "Why there is no consensus when `levels` is empty, else empty"))


class AgentOut(BaseModel):
    agent: str
    levels: list[dict[str, float | list[float]]]
    log_score: float | None
    breaches: list[bool]


class DecisionOut(BaseModel):
    seq: int
    action: str
    agents: list[str]
    threat: float
    reason: str
    signals: dict[str, float]
    weights: dict[str, float]


class LevelStatsOut(BaseModel):
    alpha: float
    days: int
    breaches: int
    expected: float
    kupiec_pvalue: float | None
    christoffersen_pvalue: float | None


class BacktestOut(BaseModel):
    portfolio: str
    window: int
    levels: list[LevelStatsOut]


class PointOut(BaseModel):
    seq: int
    date: str
    realized: float | None
    alphas: list[float]
    var: list[float]
    es: list[float]
    var_interval: list[tuple[float, float]]
    es_interval: list[tuple[float, float]]
    breaches: list[bool]


class EntryOut(BaseModel):
    index: int
    timestamp: str
    kind: str
    data: dict[str, object]
    previous_hash: str
    hash: str


class VerificationOut(BaseModel):
    ok: bool
    size: int
    first_bad: int | None
    reason: str | None
    root: str | None


class VariantOut(BaseModel):
    id: str
    agent_class: str
    status: str
    version: int
    parameters: dict[str, object]
    description: str


class ErrorBody(BaseModel):
    type: str
    status: int
    message: str
    request_id: str


class ErrorOut(BaseModel):
    error: ErrorBody


class Health(BaseModel):
    status: Literal["ok", "unavailable"]
    detail: str = ""
