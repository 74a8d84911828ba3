"""Attention-degeneracy ("lazy layer") diagnostic of a proxy model: per layer and head, how much of
each attention row sits on one column, and how low the rank of the attention matrix is.

Background: Sanyal et al., "Inheritune" / "When Attention Collapses" (arXiv:2404.08634, §2-3 of
v3/v4): in deeper layers of trained decoders many attention matrices collapse to near rank-1,
single-column patterns (every row puts its mass on one key, often the first token); the paper
measures this with an approximate rank (the number of singular values needed for a fraction
tau = 0.90 of the spectrum) and calls such layers "lazy".

What is computed, for a model and a fixed batch of sequences (``val_windows``: evenly spaced val
windows, the same for every run on the same data):
* A[h] = softmax(scale * q_h k_h^T + causal mask) per head, recomputed in float32 from the layer's
  own projections, RoPE (``proxy_train.model.apply_rope``) and scale (``Attention.scale``); the
  rows are checked against the layer's own output (A @ v equals its pre-``o_proj`` tensor, tests).
* Rows with fewer than ``min_keys`` visible keys (query positions 0..min_keys-2) are left out of
  every statistic: a row that sees 1 key puts mass 1 on it whatever the model learned.
* ``row_max``: mean over kept rows of max_j A[i, j] (1 = each row on a single key; uniform causal
  attention gives the mean of 1/(i+1)).
* ``frac_rows_concentrated``: share of kept rows with max_j A[i, j] >= ``threshold`` (0.9).
* ``first_token_mass``: mean over kept rows of A[i, 0] (the "attention sink" column).
* ``top_column_mass``: mean over kept rows of A[i, j*], j* the column with the largest total mass
  over the kept rows (1 = a single-column matrix, the paper's collapse pattern).
* ``effective_rank``: entropy effective rank of the kept rows' matrix (Roy & Vetterli 2007, EUSIPCO,
  Def. 1): exp(H(p)), p_k = sigma_k / sum(sigma) over its singular values (1 = rank 1).
* ``approx_rank``: smallest k with sum_{i<=k} sigma_i^2 >= tau * sum sigma^2, tau = 0.90 (squared
  singular values, i.e. the share of the Frobenius energy; our reading of the paper's k*).
Per head these are averaged over the sequences; per layer also over the heads (``heads`` keeps
the per-head values).
"""
from __future__ import annotations

import math

import numpy as np
import torch

from proxy_train.model import Transformer, apply_rope

MIN_KEYS = 8
THRESHOLD = 0.9
RANK_TAU = 0.90
N_SEQUENCES = 4
MAX_SEQ_LEN = 256  # longer windows are cut to this (keeps the SVDs cheap on long-context runs)
METRICS = ("row_max", "frac_rows_concentrated", "first_token_mass", "top_column_mass",
           "effective_rank", "approx_rank")
DEFINITIONS = {
    "row_max": "mean over rows of the largest attention probability in the row",
    "frac_rows_concentrated": f"share of rows whose largest probability is >= {THRESHOLD}",
    "first_token_mass": "mean attention probability on the first token of the window",
    "top_column_mass": "mean probability on the single most-attended column",
    "effective_rank": "exp(entropy of normalised singular values), Roy & Vetterli 2007",
    "approx_rank": f"singular values needed for {RANK_TAU:.0%} of the squared spectrum (Inheritune k*)",
    "rows": f"rows with fewer than {MIN_KEYS} visible keys are left out",
}


def effective_rank(sigma: np.ndarray) -> float:
    """exp(-sum p log p), p = sigma / sum(sigma) (Roy & Vetterli 2007, Def. 1); zero sigmas ignored."""
    s = np.asarray(sigma, dtype=np.float64)
    s = s[s > 0]
    if s.size == 0:
        return 0.0
    p = s / s.sum()
    return float(math.exp(-(p * np.log(p)).sum()))


def approx_rank(sigma: np.ndarray, tau: float = RANK_TAU) -> int:
    """Smallest k whose k largest squared singular values hold a share >= tau of the total."""
    e = np.sort(np.asarray(sigma, dtype=np.float64) ** 2)[::-1]
    if e.sum() <= 0:
        return 0
    share = np.cumsum(e) / e.sum()
    return int(np.searchsorted(share, tau - 1e-12) + 1)


def matrix_stats(probs: torch.Tensor, min_keys: int = MIN_KEYS, threshold: float = THRESHOLD) -> dict:
    """The METRICS of one causal attention matrix ``probs`` (T, T), rows i >= min_keys - 1 only."""
    rows = probs[min_keys - 1:].double()
    if rows.shape[0] == 0:
        raise ValueError(f"window of {probs.shape[0]} tokens has no row with {min_keys} visible keys")
    row_max = rows.max(dim=1).values
    top_col = int(rows.sum(dim=0).argmax())
    sigma = torch.linalg.svdvals(rows).numpy()
    return {"row_max": float(row_max.mean()),
            "frac_rows_concentrated": float((row_max >= threshold).double().mean()),
            "first_token_mass": float(rows[:, 0].mean()),
            "top_column_mass": float(rows[:, top_col].mean()),
            "effective_rank": effective_rank(sigma),
            "approx_rank": approx_rank(sigma)}


@torch.no_grad()
def causal_probs(attn, x: torch.Tensor, cos: torch.Tensor, sin: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """(probs (B, H, T, T), v (B, H, T, hd)) of ``attn`` (a ``proxy_train.model.Attention``) on its
    input ``x``, as its forward computes them (same projections, RoPE and scale), in float32."""
    B, T, _ = x.shape
    shape = (B, T, attn.n_heads, attn.head_dim)
    x = x.float()
    q = attn.q_proj(x).view(shape).transpose(1, 2)
    k = attn.k_proj(x).view(shape).transpose(1, 2)
    v = attn.v_proj(x).view(shape).transpose(1, 2)
    q, k = apply_rope(q, cos, sin), apply_rope(k, cos, sin)
    logits = (q @ k.transpose(-2, -1)) * attn.scale
    mask = torch.ones(T, T, dtype=torch.bool, device=x.device).tril()
    return torch.softmax(logits.masked_fill(~mask, float("-inf")), dim=-1), v


@torch.no_grad()
def layer_probs(model: Transformer, tokens: torch.Tensor) -> list[torch.Tensor]:
    """Per layer, the attention probabilities (B, H, T, T) of ``model`` on ``tokens`` (B, T): each
    layer's input is captured by a forward pre-hook during one ordinary forward pass."""
    inputs: list[tuple] = []
    hooks = [b.attn.register_forward_pre_hook(lambda m, args: inputs.append(args)) for b in model.blocks]
    was_training = model.training
    try:
        model.eval()
        model(tokens)
    finally:
        for h in hooks:
            h.remove()
        model.train(was_training)
    return [causal_probs(b.attn, *args)[0] for b, args in zip(model.blocks, inputs)]


def _mean(rows: list[dict]) -> dict:
    return {m: float(np.mean([r[m] for r in rows])) for m in METRICS}


def diagnose(model: Transformer, tokens: torch.Tensor, *, min_keys: int = MIN_KEYS,
             threshold: float = THRESHOLD) -> list[dict]:
    """Per layer: ``{"layer", METRICS averaged over heads and sequences, "heads": [per-head METRICS]}``."""
    out = []
    for i, probs in enumerate(layer_probs(model, tokens)):
        probs = probs.cpu()
        heads = []
        for h in range(probs.shape[1]):
            per_seq = [matrix_stats(probs[b, h], min_keys, threshold) for b in range(probs.shape[0])]
            heads.append({"head": h, **_mean(per_seq)})
        out.append({"layer": i, **_mean(heads), "heads": heads})
    return out


def val_windows(data, seq_len: int, n: int = N_SEQUENCES) -> torch.Tensor:
    """``n`` evenly spaced val windows of ``seq_len`` tokens (``TokenData.val_starts``): the same
    sequences for every run on the same data."""
    x, _ = data.windows("val", data.val_starts(n, seq_len), seq_len)
    return torch.from_numpy(x).long()


def lazy_layers(layers: list[dict], row_max_at_least: float = THRESHOLD) -> list[int]:
    """Layers whose mean row maximum reaches ``row_max_at_least`` (near single-column attention)."""
    return [r["layer"] for r in layers if r["row_max"] >= row_max_at_least]


def record(model: Transformer, data, seq_len: int, n: int = N_SEQUENCES) -> dict | None:
    """The run.json ``attention_diagnostic`` block: settings, definitions and the per-layer list
    (None for windows shorter than ``2 * MIN_KEYS`` tokens: too few rows to say anything)."""
    if seq_len < 2 * MIN_KEYS:
        return None
    tokens = val_windows(data, seq_len, n).to(next(model.parameters()).device)
    layers = diagnose(model, tokens)
    return {"n_sequences": int(tokens.shape[0]), "seq_len": int(tokens.shape[1]), "min_keys": MIN_KEYS,
            "threshold": THRESHOLD, "rank_tau": RANK_TAU, "source": "val windows (TokenData.val_starts)",
            "definitions": DEFINITIONS, "lazy_layers": lazy_layers(layers), "layers": layers}


def summary_line(block: dict) -> str:
    """One line for the CLI: per layer row_max / effective rank."""
    parts = [f"L{r['layer']} {r['row_max']:.2f}/{r['effective_rank']:.1f}" for r in block["layers"]]
    return "attention (row max / effective rank): " + ", ".join(parts)
