"""Exporters: a Plan -> launch files for Megatron-LM, torchtitan 0.3.0 or Hugging Face.

Each exporter reads only the :class:`planner.plan.Plan` (never the budget, the law or the
command line) and writes its files atomically, with a provenance header (version, plan hash,
command). ``export(plan, trainer, out_dir)`` dispatches.
"""
from __future__ import annotations

from pathlib import Path
from typing import Any

from planner.errors import UserError
from planner.plan import Plan

TRAINERS = ("megatron", "torchtitan", "hf")


def export(plan: Plan, trainer: str, out_dir: str | Path, *, command: str | None = None, **kw: Any) -> dict[str, Any]:
    """Write ``trainer``'s launch files for ``plan`` into ``out_dir``; returns {trainer, files, plan_hash}."""
    if trainer == "megatron":
        from planner.export.megatron import export_megatron

        return export_megatron(plan, out_dir, command=command, **kw)
    if trainer == "torchtitan":
        from planner.export.torchtitan import export_torchtitan

        return export_torchtitan(plan, out_dir, command=command)
    if trainer == "hf":
        from planner.export.hf import export_hf

        return export_hf(plan, out_dir, command=command)
    raise UserError(f"unknown trainer {trainer!r}; use one of {', '.join(TRAINERS)}")


__all__ = ["export", "TRAINERS"]
