"""Hugging Face export: ``config.json`` (LlamaConfig) for the planned shape.

The config comes from ``ModelShape.to_hf_config`` (vocab_size = the padded vocabulary, the real
row count of the embedding), so ``LlamaForCausalLM(config)`` has exactly ``shape.total_params``
parameters. A ``scaleplan`` block records provenance (transformers keeps unknown keys as
attributes and ignores them otherwise).
"""
from __future__ import annotations

from pathlib import Path
from typing import Any

from planner import __version__
from planner.export.common import edited_note, json_text, one_line, write_export
from planner.plan import Plan


def hf_config(plan: Plan, command: str | None = None) -> dict[str, Any]:
    cfg = plan.shape.to_hf_config()
    cfg["scaleplan"] = {"version": __version__, "plan_hash": plan.plan_hash,
                        "command": one_line(command or plan.meta.get("command", "")),
                        "total_params": plan.shape.total_params}
    if edited_note(plan):
        cfg["scaleplan"]["warning"] = edited_note(plan)
    return cfg


def render_hf(plan: Plan, *, command: str | None = None) -> dict[str, str]:
    return {"config.json": json_text(hf_config(plan, command))}


def export_hf(plan: Plan, out_dir: str | Path, *, command: str | None = None) -> dict[str, Any]:
    """Write :func:`render_hf`'s config.json into ``out_dir``."""
    return write_export("hf", plan, out_dir, render_hf(plan, command=command))
