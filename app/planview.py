"""Tables of a Plan for the Plan page (reshaping only: every value comes from the plan)."""
from __future__ import annotations

import pandas as pd

from app import fmt

MEMORY_KEYS = ("weights", "gradients", "optimizer", "activations", "overhead")
_ALIASES = {"weights": ("weights", "params", "parameters", "weight"), "gradients": ("gradients", "grads", "grad"),
            "optimizer": ("optimizer", "optimizer_states", "optim"), "activations": ("activations", "activation"),
            "overhead": ("overhead", "fixed_overhead", "other")}


def memory_components(memory: dict) -> dict[str, float]:
    """Bytes per GPU per component (weights, gradients, optimizer, activations, overhead) of a plan's
    memory section; components may sit at the top level or under ``components``/``bytes``, named
    ``X`` or ``X_bytes`` (GiB values ``X_gib`` are converted)."""
    if not memory:
        return {}
    pools = [memory] + [memory[k] for k in ("components", "bytes", "breakdown") if isinstance(memory.get(k), dict)]
    out = {}
    for key in MEMORY_KEYS:
        for alias in _ALIASES[key]:
            val = None
            for pool in pools:
                if isinstance(pool.get(f"{alias}_bytes"), (int, float)):
                    val = float(pool[f"{alias}_bytes"])
                elif isinstance(pool.get(alias), (int, float)):
                    val = float(pool[alias])
                elif isinstance(pool.get(f"{alias}_gib"), (int, float)):
                    val = float(pool[f"{alias}_gib"]) * 2**30
                if val is not None:
                    break
            if val is not None:
                out[key] = val
                break
    return out


def candidates_table(candidates: list[dict]) -> pd.DataFrame:
    """Chosen shape + runner-ups with ✓/✗ per divisibility rule."""
    rows = []
    for i, c in enumerate(candidates):
        row = {"": "chosen" if i == 0 else f"#{i + 1}", "params": fmt.human(c.get("total_params")),
               "layers": c.get("n_layers"), "d_model": c.get("d_model"), "ffn": c.get("d_ffn"),
               "heads": c.get("n_heads"), "kv heads": c.get("n_kv_heads"),
               "off target": f"{100 * c.get('rel_error', 0):+.1f}%"}
        for rule, ok in (c.get("rules") or {}).items():
            row[rule] = "✓" if ok else "✗"
        row["why"] = c.get("why", "")
        rows.append(row)
    return pd.DataFrame(rows)


def hparams_table(hp: dict) -> pd.DataFrame:
    """One row per parameter group: LR, init std, weight decay, forward multiplier."""
    rows = []
    for group, v in (hp.get("groups") or {}).items():
        rows.append({"group": group, "learning rate": f"{v.get('lr', float('nan')):.4g}",
                     "init std": f"{v.get('init_std', float('nan')):.4g}",
                     "weight decay": f"{v.get('weight_decay', float('nan')):.4g}",
                     "forward multiplier": f"{v.get('multiplier', float('nan')):.4g}"})
    att = hp.get("attention")
    if att:
        rows.append({"group": "attention logits", "learning rate": "", "init std": "", "weight decay": "",
                     "forward multiplier": f"{att.get('scale', float('nan')):.4g} ({att.get('rule', '')})"})
    return pd.DataFrame(rows)
