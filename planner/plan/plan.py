"""Plan: every section of a launchable run, typed; plan.yaml is its ``to_dict`` and its hash.

Conventions: the sections and their order are docs/CONTRACTS.md "plan.yaml"; ``plan_hash`` is the
SHA-256 of the canonical JSON of every section but ``meta`` (who made it, and when), so the same
plan made twice has the same hash and an edited plan a new one. The exporters (planner/export/)
read a Plan and nothing else.
"""
from __future__ import annotations

import copy
import hashlib
import json
from dataclasses import dataclass, field
from functools import partial
from pathlib import Path
from typing import Any

from planner import __version__
from planner.errors import UserError
from planner.io import read_yaml, to_json, to_yaml, write_yaml
from planner.parallel.layout import Layout
from planner.plan.budget import Budget
from planner.plan.summary import plan_summary
from planner.plan.joint_choice import JointChoice
from planner.plan.operations import Operations
from planner.plan.sensitivity import LawView
from planner.plan.serving_choice import ServingConstraint
from planner.plan.repetition_section import DataRepetition
from planner.plan.sections import (PLAN_FIX, LayoutOption, MemoryFit, Placement, PlanAllocation, ShapeOption, TimeCost,
                                   TrainingRecipe, check_data, check_phases, check_scalar, read_section,
                                   read_width_hparams, where)
from planner.resilience import CheckpointPlan
from planner.schema import MAX_STR, scalar
from planner.shape import ModelShape
from planner.width_hparams import WidthHParams

REQUIRED_SECTIONS = ("budget", "allocation", "shape", "tokens", "training", "layout")
OPTIONAL_SECTIONS = ("memory", "time_cost", "layout_options", "operations", "checkpoints", "serving", "choice", "sensitivity", "hparams", "candidates", "phases", "data", "data_repetition", "warnings", "preset", "meta")


def _check_meta(meta: Any) -> dict[str, Any]:
    """``meta``: who made the plan and when (scalars; free text such as the command is written to
    exports only through ``one_line``), and ``plan_hash`` (64 hex digits)."""
    if not isinstance(meta, dict):
        raise UserError(f"plan section meta must be a mapping, got {type(meta).__name__}; {PLAN_FIX}")
    for k, v in meta.items():
        if not isinstance(k, str) or (isinstance(v, str) and len(v) > MAX_STR):
            raise UserError(f"plan section meta has a bad key or an over-long value at {k!r}; {PLAN_FIX}")
        if not isinstance(v, str):
            scalar(v, f"plan section meta.{k}", PLAN_FIX)
    h = meta.get("plan_hash")
    if h is not None and not (isinstance(h, str) and len(h) == 64 and all(c in "0123456789abcdef" for c in h)):
        raise UserError(f"plan section meta.plan_hash must be 64 hex digits, got {h!r:.80}; {PLAN_FIX}")
    return meta


@dataclass
class Plan:
    """A compute budget turned into a launchable run (see planner/plan/__init__.py)."""

    budget: Budget
    allocation: PlanAllocation
    shape: ModelShape
    tokens: int
    training: TrainingRecipe
    placement: Placement  # plan.yaml section "layout"
    memory: MemoryFit | None = None
    time_cost: TimeCost | None = None
    layout_options: list[LayoutOption] = field(default_factory=list)  # the searched layouts, the plan's first
    operations: Operations | None = None  # log/eval/checkpoint cadence (planner/plan/operations.py)
    checkpoints: CheckpointPlan | None = None  # size, Young/Daly interval, disk, goodput (planner/resilience.py)
    serving: ServingConstraint | None = None  # --serve-on: the cap on N and its loss cost (serving_choice.py)
    choice: JointChoice | None = None  # the near-optimal band and its options (joint_choice.py)
    sensitivity: list[LawView] = field(default_factory=list)  # every published law's view (sensitivity.py)
    hparams: WidthHParams | None = None  # μP per-group values at the planned width
    candidates: list[ShapeOption] = field(default_factory=list)
    phases: list[dict[str, Any]] = field(default_factory=list)
    data: dict[str, Any] = field(default_factory=dict)  # launch placeholders the exporters write
    data_repetition: DataRepetition | None = None  # epochs per source, repetition penalty (data_mixture.py)
    warnings: list[str] = field(default_factory=list)
    preset: str | None = None
    meta: dict[str, Any] = field(default_factory=dict)
    #: The plan_hash stored in plan.yaml when it differs from the content's (the file was edited
    #: after `scaleplan plan` wrote it); None for a plan as made. Not part of plan.yaml.
    edited_from: str | None = field(default=None, compare=False)

    # -------------------------------------------------------------- derived views
    @property
    def model_shape(self) -> ModelShape:
        return self.shape

    @property
    def layout(self) -> Layout:
        return self.placement.layout

    @property
    def is_mup(self) -> bool:
        """True when the training recipe applies μP per-group values (hidden LR, decoupled LR, inits)."""
        return self.hparams is not None and self.hparams.is_mup and self.training.decoupled_lr is not None

    def validate_layout(self) -> list[str]:
        """Megatron-LM's rules for this plan's layout, shape and batch (empty list = valid)."""
        return self.placement.validate(self.shape, self.training.global_batch, self.training.seq_len)

    # -------------------------------------------------------------- plan.yaml
    def content(self) -> dict[str, Any]:
        """The hashed content: every section except ``meta``, as plain JSON values."""
        d = {"budget": self.budget.to_dict(), "allocation": self.allocation.to_dict(), "shape": self.shape.to_dict(),
             "tokens": self.tokens, "training": self.training.to_dict(), "layout": self.placement.to_dict(),
             "memory": self.memory.to_dict() if self.memory else {},
             "time_cost": self.time_cost.to_dict() if self.time_cost else {},
             **({"layout_options": [o.to_dict() for o in self.layout_options]} if self.layout_options else {}),
             **({"operations": self.operations.to_dict()} if self.operations else {}),
             **({"checkpoints": self.checkpoints.to_dict()} if self.checkpoints else {}),
             **({"serving": self.serving.to_dict()} if self.serving else {}),
             **({"choice": self.choice.to_dict()} if self.choice else {}),
             **({"sensitivity": [v.to_dict() for v in self.sensitivity]} if self.sensitivity else {}),
             "hparams": self.hparams.to_dict() if self.hparams else None,
             "candidates": [c.to_dict() for c in self.candidates], "phases": copy.deepcopy(self.phases),
             "data": copy.deepcopy(self.data),
             **({"data_repetition": self.data_repetition.to_dict()} if self.data_repetition else {}),
             "warnings": list(self.warnings), "preset": self.preset}
        return json.loads(to_json(d, indent=None))

    @property
    def plan_hash(self) -> str:
        canon = json.dumps(self.content(), sort_keys=True, separators=(",", ":"))
        return hashlib.sha256(canon.encode("utf-8")).hexdigest()

    def to_dict(self) -> dict[str, Any]:
        d = self.content()
        d["meta"] = {**copy.deepcopy(self.meta), "plan_hash": self.plan_hash, "scaleplan_version": __version__}
        return d

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> "Plan":
        """The plan in ``d`` (plan.yaml's mapping), every section checked (planner/plan/sections.py).

        A stored ``meta.plan_hash`` that differs from the content's hash sets :attr:`edited_from`
        (exporters refuse such a plan unless told otherwise) and adds a warning.
        """
        if not isinstance(d, dict):
            raise UserError(f"a plan must be a mapping, got {type(d).__name__}; pass a plan.yaml from `scaleplan plan`")
        missing = [k for k in REQUIRED_SECTIONS if k not in d]
        if missing:
            raise UserError(f"plan lacks {missing}; regenerate it with `scaleplan plan`")
        unknown = sorted(map(str, set(d) - set(REQUIRED_SECTIONS) - set(OPTIONAL_SECTIONS)))
        if unknown:
            raise UserError(f"unknown plan sections {unknown}; regenerate it with `scaleplan plan`")
        d = copy.deepcopy(d)
        meta = _check_meta(d.get("meta") or {})
        plan = cls(
            budget=read_section("budget", Budget.from_dict, d["budget"]),
            allocation=read_section("allocation", PlanAllocation.from_dict, d["allocation"]),
            shape=read_section("shape", lambda s: ModelShape.from_dict(s, "plan section shape", PLAN_FIX), d["shape"]),
            tokens=check_scalar(d["tokens"], int, "tokens", "positive"),
            training=read_section("training", TrainingRecipe.from_dict, d["training"]),
            placement=read_section("layout", Placement.from_dict, d["layout"]),
            memory=read_section("memory", MemoryFit.from_dict, d["memory"]) if d.get("memory") else None,
            time_cost=read_section("time_cost", TimeCost.from_dict, d["time_cost"]) if d.get("time_cost") else None,
            layout_options=[read_section(f"layout_options[{i}]", partial(LayoutOption.from_dict,
                                                                          name=f"layout_options[{i}]"), o)
                            for i, o in enumerate(check_scalar(d.get("layout_options") or [], list[object],
                                                               "layout_options"))],
            operations=(read_section("operations", Operations.from_dict, d["operations"])
                        if d.get("operations") else None),
            checkpoints=(read_section("checkpoints", lambda c: CheckpointPlan.from_dict(c, where("checkpoints"), PLAN_FIX),
                                      d["checkpoints"]) if d.get("checkpoints") else None),
            serving=read_section("serving", ServingConstraint.from_dict, d["serving"]) if d.get("serving") else None,
            choice=read_section("choice", JointChoice.from_dict, d["choice"]) if d.get("choice") else None,
            sensitivity=[read_section(f"sensitivity[{i}]", partial(LawView.from_dict, name=f"sensitivity[{i}]"), v)
                         for i, v in enumerate(check_scalar(d.get("sensitivity") or [], list[object], "sensitivity"))],
            hparams=read_section("hparams", read_width_hparams, d["hparams"]) if d.get("hparams") else None,
            candidates=[read_section(f"candidates[{i}]", partial(ShapeOption.from_dict, name=f"candidates[{i}]"), c)
                        for i, c in enumerate(check_scalar(d.get("candidates") or [], list[object], "candidates"))],
            phases=check_phases(d.get("phases") or []), data=check_data(d.get("data") or {}),
            data_repetition=(read_section("data_repetition", DataRepetition.from_dict, d["data_repetition"])
                             if d.get("data_repetition") else None),
            warnings=list(check_scalar(d.get("warnings") or [], list[str], "warnings")),
            preset=check_scalar(d.get("preset"), str | None, "preset"),
            meta={k: v for k, v in meta.items() if k not in ("plan_hash", "scaleplan_version")})
        stored = meta.get("plan_hash")
        if stored and stored != plan.plan_hash:
            plan.edited_from = stored
            plan.warnings = plan.warnings + [
                "plan content was edited after it was made (stored plan_hash differs); exports carry the new hash"]
        return plan

    def to_yaml(self) -> str:
        return to_yaml(self.to_dict())

    def write(self, path: str | Path) -> Path:
        return write_yaml(path, self.to_dict())

    @classmethod
    def read(cls, path: str | Path) -> "Plan":
        return cls.from_dict(read_yaml(path, "plan file"))

    def summary(self) -> str:
        return plan_summary(self)
