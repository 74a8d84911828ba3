"""Named reference training recipes: a published shape plus its published training settings.

A recipe pins what the paper or model card states. planner/plan/presets.py registers each one as
a preset (the PlanRequest of the published run), so ``make_plan(PlanRequest(preset=...))`` uses
its shape, batch, schedule and optimizer instead of the scaling-law allocation and the shape
search. Values not published are left ``None`` (the planner then chooses them and says so). Each
recipe carries its source.

Token counts and batches:
* llm-jp-3-1.8b: llm-jp/scripts pretrain/scripts/v3-1.8b-exp2-sakura/train.sh (shared/data/
  references/llmjp_v3_1p8b_megatron.json) and the model card: 2,072,488,058,295 training tokens,
  global batch 512 x 4096, 988,240 iterations (2,000 warmup + 986,240 decay).
* Llama 2 (Touvron et al. 2023b, §2.2 and Table 1): 2T tokens, global batch 4M tokens, AdamW
  beta (0.9, 0.95), eps 1e-5, wd 0.1, clip 1.0, cosine to 10% of peak, warmup 2000 steps,
  peak LR 3e-4 (7B, 13B) and 1.5e-4 (70B), context 4096.
* Llama 1 65B (Touvron et al. 2023a, §2.2 and Table 2): 1.4T tokens, batch 4M tokens, lr 1.5e-4,
  same optimizer and schedule, context 2048.
"""
from __future__ import annotations

from dataclasses import dataclass, field, asdict
from typing import Any



@dataclass(frozen=True)
class Recipe:
    """A published training recipe (shape preset + optimizer + schedule + batch)."""

    name: str
    shape_preset: str  # key of planner.shape.PRESETS
    tokens: int
    seq_len: int
    global_batch: int  # sequences per optimizer step
    lr: float
    min_lr: float
    warmup_iters: int
    schedule: str = "cosine"
    betas: tuple[float, float] = (0.9, 0.95)
    eps: float = 1e-8
    weight_decay: float = 0.1
    clip_grad: float = 1.0
    init_std: float = 0.02
    gpu: str | None = None
    n_gpus: int | None = None
    tp: int | None = None
    pp: int | None = None
    cp: int | None = None
    micro_batch: int | None = None
    recompute: str | None = None  # selective | full | None
    distributed_optimizer: bool = True
    train_iters: int | None = None  # when the source states it exactly
    # Settings a Megatron launch of the published run used that are not planning decisions.
    megatron_extra: dict[str, Any] = field(default_factory=dict)
    source: str = ""

    def to_dict(self) -> dict[str, Any]:
        d = asdict(self)
        d["betas"] = list(self.betas)
        return d


RECIPES: dict[str, Recipe] = {
    "llm-jp-3-1.8b": Recipe(
        name="llm-jp-3-1.8b", shape_preset="llm-jp-3-1.8b", tokens=2_072_488_058_295, seq_len=4096,
        global_batch=512, lr=3e-4, min_lr=3e-5, warmup_iters=2000, schedule="cosine", betas=(0.9, 0.95),
        eps=1e-8, weight_decay=0.1, clip_grad=1.0, init_std=0.02, gpu="h100", n_gpus=64, tp=1, pp=1, cp=1,
        micro_batch=4, recompute="selective", distributed_optimizer=True, train_iters=988_240,
        megatron_extra={
            "tokenizer_type": "Llama2Tokenizer", "split": "1,0,0", "log_interval": 1, "eval_iters": 0,
            "masked_softmax_fusion": False, "attention_softmax_in_fp32": True,
            "transformer_impl": "transformer_engine", "log_throughput": True,
        },
        source="llm-jp/scripts PR #42 pretrain/scripts/v3-1.8b-exp2-sakura/train.sh; llm-jp-3 model card",
    ),
    "llama-2-7b": Recipe(
        name="llama-2-7b", shape_preset="llama-2-7b", tokens=2_000_000_000_000, seq_len=4096,
        global_batch=1024, lr=3e-4, min_lr=3e-5, warmup_iters=2000, eps=1e-5,
        source="Touvron et al. 2023, Llama 2, §2.2 (4M-token batch = 1024 x 4096), Table 1",
    ),
    "llama-2-13b": Recipe(
        name="llama-2-13b", shape_preset="llama-2-13b", tokens=2_000_000_000_000, seq_len=4096,
        global_batch=1024, lr=3e-4, min_lr=3e-5, warmup_iters=2000, eps=1e-5,
        source="Touvron et al. 2023, Llama 2, §2.2, Table 1",
    ),
    "llama-2-70b": Recipe(
        name="llama-2-70b", shape_preset="llama-2-70b", tokens=2_000_000_000_000, seq_len=4096,
        global_batch=1024, lr=1.5e-4, min_lr=1.5e-5, warmup_iters=2000, eps=1e-5,
        source="Touvron et al. 2023, Llama 2, §2.2, Table 1",
    ),
    "llama-65b": Recipe(
        name="llama-65b", shape_preset="llama-65b", tokens=1_400_000_000_000, seq_len=2048,
        global_batch=2048, lr=1.5e-4, min_lr=1.5e-5, warmup_iters=2000, eps=1e-5,  # eps: as Llama 2 (not stated in 2023a)
        source="Touvron et al. 2023a, LLaMA, §2.2 and Table 2 (4M-token batch = 2048 x 2048)",
    ),
}


def list_recipes() -> list[dict[str, Any]]:
    return [r.to_dict() for r in RECIPES.values()]
