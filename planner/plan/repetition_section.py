"""The plan.yaml ``data_repetition`` section (written by planner/plan/data_mixture.py): epochs per
source of the run's mixture and the data-constrained law's "second pass or fresh data?" comparison,
read back through the schema like every other section (planner/schema.py)."""
from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from typing import Any

from planner.errors import UserError
from planner.plan.sections import PLAN_FIX, where
from planner.schema import check_record, check_rule, check_value


@dataclass(frozen=True, kw_only=True)
class SourceRepetition:
    """One source of the run's mixture in the ``data_repetition`` section (planner/plan/data_mixture.py):
    its share of the run's tokens (``weight``), tokens drawn, unique tokens (None: not given, counted
    as fresh), ``epochs`` = tokens / unique_tokens, Muennighoff's effective tokens D'_i, and the
    predicted loss penalty (nats) of repeating this source alone; ``epochs_by_phase`` for phased plans."""

    name: str
    weight: float
    tokens: float
    unique_tokens: float | None = None
    epochs: float | None = None
    effective_tokens: float
    loss_penalty: float
    epochs_by_phase: dict[str, float] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        d = dataclasses.asdict(self)
        if not self.epochs_by_phase:
            del d["epochs_by_phase"]
        return d


@dataclass(frozen=True, kw_only=True)
class DataRepetition:
    """The ``data_repetition`` section: epochs per source and the data-constrained law's "second pass
    or fresh data?" comparison at the plan's parameters ``params`` and ``tokens`` (loss in nats:
    ``loss_repeated`` with the mixture's repetition, ``loss_fresh`` with the same tokens all unique,
    ``loss_penalty`` their difference); ``assumption`` states how sources are combined."""

    law: str
    assumption: str
    params: float
    tokens: float
    effective_tokens: float
    loss_fresh: float
    loss_repeated: float
    loss_penalty: float
    max_epochs: float
    sources: list[SourceRepetition]

    def to_dict(self) -> dict[str, Any]:
        d = {f.name: getattr(self, f.name) for f in dataclasses.fields(self) if f.name != "sources"}
        d["sources"] = [s.to_dict() for s in self.sources]
        return d

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> "DataRepetition":
        own = tuple(f.name for f in dataclasses.fields(cls) if f.name != "sources")
        w = where("data_repetition")
        kw = check_record(cls, {k: v for k, v in d.items() if k != "sources"}, w, fix=PLAN_FIX, fields=own,
                          rules={**dict.fromkeys(("params", "tokens", "effective_tokens", "loss_fresh",
                                                  "loss_repeated"), "positive"), "max_epochs": "nonneg"})
        sources = check_value(d.get("sources"), list[dict[str, object]], f"{w}.sources", PLAN_FIX)
        if not sources:
            raise UserError(f"{w}.sources must list at least one source; {PLAN_FIX}")
        rules = {**dict.fromkeys(("weight", "tokens", "unique_tokens", "effective_tokens"), "positive"),
                 "epochs": "nonneg"}
        out = []
        for i, s in enumerate(sources):
            ws = f"{w}.sources[{i}]"
            out.append(SourceRepetition(**check_record(SourceRepetition, s, ws, fix=PLAN_FIX, rules=rules)))
            for phase, e in out[-1].epochs_by_phase.items():
                check_rule(e, "nonneg", f"{ws}.epochs_by_phase.{phase}", PLAN_FIX)
        return cls(**kw, sources=out)
