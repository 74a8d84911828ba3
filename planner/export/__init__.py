"""Exporters: a Plan -> launch files for Megatron-LM, torchtitan 0.3.0 or Hugging Face.

Each exporter reads only the :class:`planner.plan.Plan` (never the budget, the law or the
command line) and renders ``{filename: text}``, every file with a provenance header (version, plan
hash, command). ``render(plan, trainer)`` returns the files; ``export(plan, trainer, out_dir)``
renders and writes them atomically (shell scripts executable). Both refuse a plan whose content no
longer matches its stored hash unless ``allow_edited_plan`` (the files then carry a warning).
"""
from __future__ import annotations

from pathlib import Path
from typing import Any

from planner.errors import UserError
from planner.export.common import check_not_edited
from planner.export.hf import export_hf, render_hf
from planner.export.megatron import export_megatron, render_megatron
from planner.export.torchtitan import export_torchtitan, render_torchtitan
from planner.plan import Plan

TRAINERS = ("megatron", "torchtitan", "hf")
_RENDERERS = {"megatron": render_megatron, "torchtitan": render_torchtitan, "hf": render_hf}
_EXPORTERS = {"megatron": export_megatron, "torchtitan": export_torchtitan, "hf": export_hf}


def _check_trainer(trainer: str) -> None:
    if trainer not in TRAINERS:
        raise UserError(f"unknown trainer {trainer!r}; use one of {', '.join(TRAINERS)}")


def render(plan: Plan, trainer: str, *, command: str | None = None, allow_edited_plan: bool = False,
           **kw: Any) -> dict[str, str]:
    """``{filename: text}`` of ``trainer``'s launch files for ``plan`` (``kw``: Megatron's ``mup_mode``,
    ``flags_json_path``). A plan edited after it was made is refused unless ``allow_edited_plan``."""
    _check_trainer(trainer)
    check_not_edited(plan, allow_edited_plan)
    return _RENDERERS[trainer](plan, command=command, **kw)


def export(plan: Plan, trainer: str, out_dir: str | Path, *, command: str | None = None,
           allow_edited_plan: bool = False, **kw: Any) -> dict[str, Any]:
    """Render and write ``trainer``'s files into ``out_dir``; returns {trainer, files, plan_hash} (torchtitan:
    also module and config, the names torchtitan's ``--module``/``--config`` take). A plan edited after
    it was made (``Plan.edited_from``) is refused, nothing written, unless ``allow_edited_plan``."""
    _check_trainer(trainer)
    check_not_edited(plan, allow_edited_plan)
    return _EXPORTERS[trainer](plan, out_dir, command=command, **kw)


__all__ = ["export", "render", "TRAINERS"]
