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
* :data:`REPLANNED` (K2-65B, IBM 7B FSDP, Amber 7B, DMaS-LLaMa-Lite 1.7B): each recipe's ``source``
  names the launch script and config it was read from; ``caveats`` list the assumptions and what
  the planner or an exporter cannot represent (CPU offload, quadratic warmup, hybrid sharding on
  Megatron, unstated hardware).
* μP: a recipe that published its μP carries it as ``hparams`` (planner/hparams.py HParams, applied
  per parameter group at the shape's width); only crystal-7b does (:data:`CRYSTAL_MUP`, from its
  params.yaml). Its plan's LR, and its phases' LRs, are then the hidden-matrix LR (planner/plan/
  presets.py ``phases_in_plan_lr``).
"""
from __future__ import annotations

from dataclasses import dataclass, field, asdict
from typing import Any

from planner.hparams import HParams


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
    sharding: str | None = None  # dist-opt | ddp | fsdp | fsdp-hybrid; None: from distributed_optimizer
    gpus_per_node: int | None = None  # when the run's nodes differ from the GPU's usual NVLink domain
    z_loss: float = 0.0  # coefficient of the z-loss term (log Z)^2 added to the LM loss (0: none)
    # What the run did that the planner or an exporter cannot represent, and the assumptions made.
    caveats: tuple[str, ...] = ()
    # Published phases (planner/plan/phases.py PhaseSpec mappings), their lengths adding up to ``tokens``.
    phases: tuple[dict[str, Any], ...] = ()
    # Published μP base hyperparameters (planner/hparams.py), applied per parameter group at the
    # shape's width; None: standard parameterization, one LR for every group.
    hparams: HParams | None = None

    @property
    def plan_sharding(self) -> str:
        """The PlanRequest sharding name of the published run."""
        return self.sharding or ("dist-opt" if self.distributed_optimizer else "ddp")

    def to_dict(self) -> dict[str, Any]:
        d = asdict(self)
        d["betas"] = list(self.betas)
        d["caveats"] = list(self.caveats)
        d["phases"] = [dict(p) for p in self.phases]
        d["hparams"] = self.hparams.to_dict() if self.hparams is not None else None
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

# Published runs re-planned end to end (issue 15). Each value is read from the run's own launch
# script or config (file named in ``source``); ``caveats`` say what was assumed or cannot be
# represented. Token counts are steps x global batch x sequence where the source gives steps.
REPLANNED: dict[str, Recipe] = {
    "k2-65b": Recipe(
        name="k2-65b", shape_preset="k2-65b", tokens=338_760 * 2040 * 2048, seq_len=2048, global_batch=2040,
        lr=1.5e-4, min_lr=1.5e-5, warmup_iters=2000, schedule="cosine", betas=(0.9, 0.95), eps=1e-8,
        weight_decay=0.1, clip_grad=1.0, init_std=0.02, n_gpus=480, tp=8, pp=4, cp=1, micro_batch=4,
        recompute="none", distributed_optimizer=False,
        megatron_extra={"log_interval": 1, "save_interval": 941},
        source="LLM360/k2-train scripts/pretrain_65b.sh (commit 869fbb9): 80 x 8192, ffn 22016, 64 heads, vocab "
               "32032, seq 2048, TP8 PP4 --sequence-parallel, micro-batch 4, global batch 2040, 338,760 iterations, "
               "cosine 1.5e-4 -> 1.5e-5 (lr-decay-iters unset = train-iters), warmup 2000, wd 0.1, clip 1.0, "
               "Adam 0.9/0.95, no --use-distributed-optimizer, no recompute; LLM360/K2 model card (1.4T tokens)",
        caveats=(
            "GPU type and node count are not in k2-train: 480 GPUs (60 nodes x 8) is TP8 x PP4 x DP15, the only DP "
            "that divides global batch 2040 into micro-batches of 4 (34 per step); A100 or H100 is unconfirmed, "
            "so the plan uses --gpu (default h100)",
            "stage 1 only: the K2 model card says 2 stages; pretrain_65b.sh is stage 1 (1.415T tokens), stage 2 "
            "is not in the repository",
            "k2-train reads 360 pre-shuffled chunks with its own main.py (--data-base-path, --n-chunks); upstream "
            "Megatron-LM needs --data-path prefixes instead",
            "vocab 32,032 is unpadded (k2-train's LLaMATokenizer path); the export sets "
            "--make-vocab-size-divisible-by so that upstream Megatron keeps 32,032 rows at TP 8",
        ),
    ),
    "ibm-7b-fsdp": Recipe(
        name="ibm-7b-fsdp", shape_preset="llama-2-7b", tokens=2_000_000_000_000, seq_len=4096, global_batch=256,
        lr=3e-4, min_lr=3e-5, warmup_iters=2000, schedule="cosine", betas=(0.9, 0.95), eps=1e-8,
        weight_decay=0.1, clip_grad=1.0, init_std=0.02, gpu="a100", n_gpus=128, gpus_per_node=8, tp=1, pp=1,
        cp=1, micro_batch=2, recompute="none", distributed_optimizer=False, sharding="fsdp-hybrid",
        source="foundation-model-stack/fms-fsdp (commit 5a296af): docs/train_details.md (FSDP hybrid shard within "
               "a node, data parallel across nodes, no activation recomputation, per-GPU batch 2 = 1M tokens/step, "
               "AdamW 0.9/0.95, wd 0.1, 3e-4 -> 3e-5 cosine over 2T tokens), fms_fsdp/config/training.py "
               "(seq 4096, llama2_7b, grad clip 1.0), scripts/train.sh (--sharding_strategy=hsdp, batch 2, no AC), "
               "README (128 A100 80GB = 16 nodes x 8)",
        caveats=(
            "fms-fsdp warms up quadratically (1 - (1 - step/2000)^2) and runs its cosine from step 0 to num_steps "
            "(main_training_llama.py); the plan and its exports use a linear warmup and Megatron's cosine over the "
            "steps after warmup (the two differ by under 1% of the peak LR after step 2000)",
            "2T tokens is the schedule length of docs/train_details.md; the README says the model was trained to "
            "2.2T tokens (the later 0.2T are not in the plan)",
            "Megatron-LM has no hybrid shard: its export is refused with the nearest options and their cost",
        ),
    ),
    "amber-7b": Recipe(
        name="amber-7b", shape_preset="amber-7b", tokens=274_320 * 2240 * 2048, seq_len=2048, global_batch=2240,
        lr=3e-4, min_lr=3e-5, warmup_iters=2000, schedule="cosine", betas=(0.9, 0.95), eps=1e-8,
        weight_decay=0.1, clip_grad=1.0, init_std=0.02, gpu="a100", n_gpus=224, gpus_per_node=4, tp=1, pp=1, cp=1,
        micro_batch=10, recompute="full", distributed_optimizer=False, sharding="fsdp",
        source="LLM360/amber-train (commit 64bc595): main.py (lr 3e-4 -> 3e-5 cosine over total_steps, warmup 2000 "
               "steps, clip 1.0, wd 0.1, Adam 0.9/0.95, per-device batch 10, accumulate 1, bf16-mixed, Lightning "
               "FSDPStrategy with activation checkpointing of every LlamaDecoderLayer and cpu_offload=True; "
               "total_steps = 1,706,976 // 2240 x 360 chunks = 274,320), run.sh (56 nodes x 4 GPUs), README "
               "(LLaMA-7B shape, RMSNorm eps 1e-6, seq 2048, data mix 1,259.13B tokens)",
        caveats=(
            "CPU offload (FSDPStrategy cpu_offload=True: parameters, gradients and Adam state live in host memory): "
            "the memory model has no host offload, so its GPU memory counts them on the GPU (an overestimate), and "
            "the time model does not charge the host-device copies or the CPU optimizer step",
            "bf16-mixed keeps fp32 parameters (Lightning autocasts the compute to bf16); FSDP full shard over all "
            "224 GPUs, activation checkpointing of every decoder layer = recompute full",
            "GPU type is not stated in amber-train (run.sh: partition gpumid, 4 GPUs per node); A100 80GB assumed",
            "torchtitan/Megatron exports cannot express CPU offload; the exports run the same schedule and layout "
            "on GPU memory only",
        ),
    ),
    "dmas-llama-lite-1.7b": Recipe(
        name="dmas-llama-lite-1.7b", shape_preset="dmas-llama-lite-1.7b", tokens=20_000_000_000, seq_len=1024,
        global_batch=512, lr=6e-4, min_lr=6e-5, warmup_iters=715, schedule="cosine", betas=(0.9, 0.95), eps=1e-8,
        weight_decay=0.1, clip_grad=1.0, init_std=0.02, tp=1, pp=1, cp=1, recompute="none",
        distributed_optimizer=False, sharding="ddp",
        source="Li, Fung and Huang 2024, arXiv 2412.13335 (DMaS-LLaMa-Lite, ~20B tokens of FineWeb-Edu); "
               "McGill-DMaS/DMaS-LLaMa-Lite-Training-Code presets.py llama '2b' (36 x 2048, ffn 5120, 32 heads, "
               "8 kv heads, vocab 50304, seq 1024) and train.py defaults (total batch 524,288 tokens = 512 x 1024, "
               "cosine 6e-4 -> 6e-5, warmup 715, clip 1.0, wd 0.1, DDP, no activation checkpointing)",
        caveats=(
            "tokens = 20e9 (the paper's 'approximately 20 billion'); steps = ceil(20e9 / 524,288) = 38,147",
            "LR, warmup and batch are train.py's defaults: the exact launch arguments of the published run are not "
            "in the repository, and the paper reports restarts from checkpoints (one without the optimizer state) "
            "that a single schedule does not represent",
            "GPU type and count are not stated: the planner chooses them (about 30 days) unless --gpu/--gpus are given",
        ),
    ),
}
RECIPES.update(REPLANNED)


# ---- multi-phase published runs (planner/plan/phases.py), each phase's values from its source file
#: LLM-jp v3 1.7B/1.8B, two phases on one Megatron counter. exp2: llm-jp/scripts
#: pretrain/scripts/v3-1.8b-exp2-sakura/train.sh (PR #42, merged edd968b): --train-iters 988240,
#: --lr-warmup-iters 2000, --lr-decay-iters 986240 (a 984,240-step cosine, then min-lr). Its second
#: epoch: branch v3-1.7b-2nd-epoch (PR #36, a3bae267, 2024-09-09)
#: pretrain/scripts/v3-1.7b-exp2-cpt-2epoch-sakura/train.sh: --load a copy of the exp2 checkpoint
#: (optimizer and scheduler kept, no --finetune), --override-opt_param-scheduler, --lr-decay-iters
#: 988240, --train-iters (2000 + 988240) x 2 = 1,980,480 (its comment says 1976480 = 988240 x 2; bash
#: runs the expression), the same data, --use-z-loss (LLM-jp's fork: 1e-4 x log(Z)^2), 4 nodes x 8 H100.
#: The decay ended at step 986,240 < 988,240, so the second epoch runs at min-lr 3e-5 throughout.
LLMJP_EXP2_PHASES = (
    dict(name="exp2", train_iters=988_240, lr=3e-4, min_lr=3e-5, warmup_iters=2000, decay_iters=984_240,
         decay_style="cosine"),
    dict(name="exp2-cpt-2epoch", train_iters=992_240, mode="continue", decay_iters=986_240),
)
#: LLM360 CrystalCoder (Crystal 7B), LLM360/crystalcoder-train pretrain/params/phase{1,2,3}/params.yaml
#: (03efa544): global batch 2112 x 2048 in every phase; optimizer.learning_rate is a warmup segment
#: then a Linear decay; runconfig.max_steps ends each phase. Phase 1: 0 -> 0.012 over 86 steps, then
#: 0.012 -> 0.00012408 over decay_steps 294,337, stopped at max_steps 79,721 (mid-decay). Phase 2
#: (is_pretrained_checkpoint false: weights and optimizer state loaded; its schedule restarts at step
#: 0): 0 -> 0.0087825 over 86, then -> 0.00013679 over 214,301, max_steps 214,387. Phase 3
#: (is_pretrained_checkpoint true: Cerebras loads only the weights and starts at step 0): 0 -> 0.002
#: over 276, then -> 0.0002 over 27,452, max_steps 27,728. Mixtures (train_input.mixture): SlimPajama
#: part 0 (phase 1); part 1 + StarCoder FIM (phase 2); four code languages + 10% SlimPajama subsets +
#: StarCoder FIM (phase 3); prefixes are the params' data_dir names (Cerebras HDF5 folders: tokenise
#: them for Megatron first).
_SLIMPAJAMA = ("ArXiv", "Book", "C4", "CommonCrawl", "Github", "StackExchange", "Wikipedia")


def _mix(prefixes, weights) -> list[dict[str, Any]]:
    return [dict(prefix=p, weight=w) for p, w in zip(prefixes, weights, strict=True)]


CRYSTAL_PHASES = (
    dict(name="phase1", train_iters=79_721, lr=0.012, min_lr=0.00012408, warmup_iters=86, decay_iters=294_337,
         decay_style="linear", data=_mix([f"SlimPajama/{s}_train_packed_part0of2" for s in _SLIMPAJAMA], (
             0.043251179622600486, 0.0413121881861869, 0.2665010054745754, 0.5334581653397988,
             0.04962588209760537, 0.03168034115317788, 0.03417123812605512))),
    dict(name="phase2", train_iters=214_387, mode="rewarm", lr=0.0087825, min_lr=0.00013679, warmup_iters=86,
         decay_iters=214_301, decay_style="linear", data=_mix(
             [f"SlimPajama/{s}_train_packed_part1of2" for s in _SLIMPAJAMA] + ["StarCoder_fim_shuffled"], (
                 0.016083857723861224, 0.015358576352403003, 0.09909981505117808, 0.1983897689052003,
                 0.018454606218343703, 0.011784941022274698, 0.012710859995188247, 0.6281175747315507))),
    dict(name="phase3", train_iters=27_728, mode="reset", lr=0.002, min_lr=0.0002, warmup_iters=276,
         decay_iters=27_452, decay_style="linear", data=_mix(
             [f"stage3_fim_0.3/train_shuffled_correct_ratio/{s}" for s in ("css", "javascript", "html", "python")]
             + [f"SlimPajama/{s}_train_packed" for s in ("ArXiv", "Book", "C4", "CommonCrawl", "StackExchange",
                                                          "Wikipedia")] + ["StarCoder_fim_train_shuffled"], (
                 0.08792775542527535, 0.18370762129027085, 0.18536747298179254, 0.34270089587947816,
                 0.016663255966286664, 0.00831444671835677, 0.01685693658811707, 0.058282893778895735,
                 0.008379821974060706, 0.05835852419497722, 0.0334403752024888))),
)


def _phase_steps(phases: tuple[dict[str, Any], ...]) -> int:
    return sum(int(p["train_iters"]) for p in phases)


RECIPES["llm-jp-3-1.8b-exp2"] = Recipe(
    name="llm-jp-3-1.8b-exp2", shape_preset="llm-jp-3-1.8b", tokens=_phase_steps(LLMJP_EXP2_PHASES) * 512 * 4096,
    seq_len=4096, global_batch=512, lr=3e-4, min_lr=3e-5, warmup_iters=2000, schedule="cosine", eps=1e-8,
    weight_decay=0.1, clip_grad=1.0, init_std=0.02, gpu="h100", n_gpus=32, tp=1, pp=1, cp=1, micro_batch=4,
    recompute="selective", distributed_optimizer=True, train_iters=_phase_steps(LLMJP_EXP2_PHASES),
    megatron_extra=dict(RECIPES["llm-jp-3-1.8b"].megatron_extra), z_loss=1e-4, phases=LLMJP_EXP2_PHASES,
    caveats=("the second epoch started from a copy of exp2's last checkpoint in its own folder; the export "
             "continues in one folder", "--use-z-loss is LLM-jp's fork flag (coefficient fixed at 1e-4): stock "
             "Megatron-LM has no LM-loss z-loss"),
    source="llm-jp/scripts PR #42 v3-1.8b-exp2-sakura/train.sh then PR #36 (a3bae267) "
           "v3-1.7b-exp2-cpt-2epoch-sakura/train.sh: a second epoch with optimizer state kept, LR at min 3e-5",
)
#: Crystal's μP, the same in all three params.yaml (LLM360/crystalcoder-train 03efa544, model: and
#: optimizer:). Width multiplier 16: ``optimizer.adjust_learning_rate.decoder_kernel`` 0.0625 = 1/16
#: and ``output_logits_scale`` 0.13875 = 2.22/16 (the HF port's config.json: ``mup_width_scale``
#: 0.0625, ``mup_output_alpha`` 2.22), so the proxy width is 4096/16 = 256. Per group at width 4096
#: (planner/width_hparams.py): embedding ``embedding_initializer.std`` 0.073 (the base std),
#: ``embeddings_scale`` 14.6 (alpha_in), LR 0.012 (``learning_rate``, unadjusted); hidden matrices
#: ``initializer.std`` 0.01825 = 0.073/sqrt(16), LR 0.012 x 0.0625 = 0.00075; attention
#: ``scale_qk_dot_by_d``: q.k/d_head (attn_mult 1); the readout is the embedding
#: (``share_embedding_weights``): its init 0.073 and LR 0.012 are the embedding's, neither zero
#: (readout/query zero-init off), and the logits are multiplied by alpha_out/m = 0.13875. AdamW eps
#: 1e-9 and wd 0.1 for every group: the hidden LR x 1/16 with wd unchanged makes the hidden decay per
#: step lr x wd / 16 (``wd_rule: unscaled``; the HF port's ``get_mup_param_groups`` also keeps wd
#: unscaled with decoupled decay). Not in HParams (stated in the caveats): the residual output
#: projections' ``output_layer_initializer.std`` 0.00228125 = 0.073/sqrt(2 x 16 x 32) (GPT-2 depth
#: scaling, as Megatron's ``output_layer_init_method``), truncated normals at +-2 std, biases (zero
#: init, base LR, no decay in the HF port's groups).
CRYSTAL_MUP = HParams(
    parameterization="mup", base_width=256, base_head_dim=128, lr=0.012, init_std=0.073, alpha_in=14.6,
    alpha_out=2.22, attn_mult=1.0, warmup_frac=86 / 294_423, weight_decay=0.1, wd_rule="unscaled",
    readout_zero_init=False, query_zero_init=False, betas=(0.9, 0.95), eps=1e-9, vocab_size=32_032,
    source={"published": "LLM360/crystalcoder-train pretrain/params/phase1/params.yaml (03efa544)",
            "width_mult": 16})
RECIPES["crystal-7b"] = Recipe(
    name="crystal-7b", shape_preset="crystal-7b", tokens=_phase_steps(CRYSTAL_PHASES) * 2112 * 2048, seq_len=2048,
    global_batch=2112, lr=0.012, min_lr=0.00012408, warmup_iters=86, schedule="cosine", eps=1e-9,
    weight_decay=0.1, clip_grad=1.0, init_std=0.01825, train_iters=_phase_steps(CRYSTAL_PHASES), gpu="h100",
    n_gpus=64, phases=CRYSTAL_PHASES, hparams=CRYSTAL_MUP,
    caveats=("trained on 16 Cerebras CS-2 (no GPU layout published): 64 H100 (2112 = 64 x 33 sequences per step) "
             "and the layout are planned, not published",
             "μP (params.yaml): the plan's LR and its phases' LRs are the hidden-matrix LR (Megatron --lr under "
             "--use-mup's own division, params.yaml learning_rate x decoder_kernel 0.0625); embedding and tied "
             "readout train at 16x that (the published 0.012 -> 0.00012408, 0.0087825 -> 0.00013679, 0.002 -> 0.0002)",
             "phase 2 re-warms up with Adam state kept; Megatron-LM can express that exactly only with one LR "
             "for every parameter group (planner/export/megatron_phases.py): the --use-mup export refuses it unless "
             "--allow-approximate-schedule, which continues phase 1's decay instead (at most 0.0104% off the "
             "published LR after phase 2's 86-step warmup; those 86 steps run at about 0.0088 instead of 0 -> 0.0088)",
             "Megatron's --use-mup divides Adam's eps by 16 for hidden matrices (1e-9/16); Crystal used 1e-9 for "
             "every group",
             "Cerebras draws every init from a normal truncated at +-2 std (std 0.88x the nominal one); Megatron and "
             "the plan use untruncated normals of the nominal std (0.073 embedding, 0.01825 hidden, 0.00228125 "
             "output projections)",
             "--use-mup with tied embeddings: the one embedding matrix serves input and output, at the embedding's "
             "init 0.073 and LR, the logits times 2.22/16, as Crystal; launch.sh's per-group table compares the "
             "output projections' depth-scaled init (0.073/sqrt(2 x 16 x 32), Crystal's and Megatron's) against "
             "the plan's hidden std, which has no depth factor (init ratio 0.125)"),
    source="LLM360/crystalcoder-train pretrain/params/phase{1,2,3}/params.yaml (03efa544): 3 phases, "
           "321,836 steps x 2112 x 2048 = 1.39T tokens",
)


def list_recipes() -> list[dict[str, Any]]:
    return [r.to_dict() for r in RECIPES.values()]
