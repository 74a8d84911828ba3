"""Tables of a Plan for the Plan page (reshaping only: every value comes from the plan's sections)."""
from __future__ import annotations

import pandas as pd

from app import fmt


def memory_components(memory) -> dict[str, float]:
    """Bytes per GPU per component (weights, gradients, optimizer, activations, overhead) of a plan's
    memory section (``plan.memory``, a MemoryFit; None: no memory estimate)."""
    return memory.breakdown.components() if memory is not None else {}


def candidates_table(candidates) -> pd.DataFrame:
    """Chosen shape + runner-ups (``plan.candidates``) with ✓/✗ per divisibility rule."""
    rows = []
    for i, c in enumerate(candidates):
        row = {"": "chosen" if i == 0 else f"#{i + 1}", "params": fmt.human(c.total_params),
               "layers": c.n_layers, "d_model": c.d_model, "ffn": c.d_ffn, "heads": c.n_heads,
               "kv heads": c.n_kv_heads, "off target": f"{100 * c.rel_error:+.1f}%"}
        for rule, ok in c.rules.items():
            row[rule] = "✓" if ok else "✗"
        row["why"] = c.why
        rows.append(row)
    return pd.DataFrame(rows)


def hparams_table(hp) -> pd.DataFrame:
    """One row per parameter group of ``plan.hparams`` (a WidthHParams): LR, init std, weight decay,
    forward multiplier; then the attention-logit scale."""
    rows = [{"group": group, "learning rate": f"{v.lr:.4g}", "init std": f"{v.init_std:.4g}",
             "weight decay": f"{v.weight_decay:.4g}", "forward multiplier": f"{v.multiplier:.4g}"}
            for group, v in hp.groups.items()]
    rows.append({"group": "attention logits", "learning rate": "", "init std": "", "weight decay": "",
                 "forward multiplier": f"{hp.attention.scale:.4g} ({hp.attention.rule})"})
    return pd.DataFrame(rows)
