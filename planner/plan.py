"""The Plan: a compute budget turned into a launchable pretraining run.

``make_plan`` goes budget -> allocation (N*, D*) -> a divisibility-aware shape near N* -> tokens
for that exact shape -> batch and LR (DeepSeek laws, or μP-transferred tuned values) -> schedule
-> parallel layout and memory per GPU -> time and cost -> warnings. The resulting :class:`Plan` is
the only input of the exporters (planner/export/).

Conventions (stated once):

* Budget C is in *model FLOPs as Megatron-LM counts them* (``ModelShape.flops_per_token_megatron``:
  causal attention, logits at the padded vocab). The plan's tokens are
  ``D = C / flops_per_token_megatron`` of the chosen shape, so that the time at a given MFU is
  exactly ``C / (n_gpus * peak * MFU)`` and a GPU-hour budget round-trips. The scaling-law
  allocation itself uses C = 6·N·D with total N (Hoffmann et al. 2022's convention), so N*, D*
  are the law's answer and ``tokens`` is the plan's answer for the chosen shape.
* ``global_batch`` is in sequences of ``seq_len`` tokens; ``train_iters = ceil(tokens /
  (global_batch * seq_len))``.
* ``lr_decay_iters`` follows Megatron's semantics (shared/notes/megatron-and-planning.md §1b):
  counted from step 0, *including* warmup. Our own plans decay to ``min_lr`` exactly at the last
  step (``lr_decay_iters = train_iters``); presets keep their published value.
* Loss is natural-log cross-entropy per token (nats).
"""
from __future__ import annotations

import copy
import hashlib
import json
import math
import time
from dataclasses import dataclass, field, asdict
from pathlib import Path
from typing import Any

from planner import __version__
from planner.errors import UserError
from planner.hparams import HParams, load_hparams
from planner.io import to_json, to_yaml, read_yaml, write_yaml
from planner.shape import ModelShape, preset_shape

# Warmup 2000 steps (Llama 2 §2.2; DeepSeek LLM §2.3 uses 2000 too), never more than 5% of the run.
DEFAULT_WARMUP_ITERS = 2000
MAX_WARMUP_FRAC = 0.05
# Cosine to 10% of the peak (Hoffmann et al. 2022 §4; Llama 2 §2.2).
MIN_LR_RATIO = 0.1
# WSD: stable, then decay over the last 20% (Hägele et al. 2024, arXiv:2405.18392, find a 20%
# cooldown matches cosine).
WSD_DECAY_FRAC = 0.2
# Muennighoff et al. 2023: up to ~4 epochs of repeated data are almost as good as unique data.
MAX_GOOD_EPOCHS = 4.0


# ---------------------------------------------------------------------------------- budget
@dataclass
class Budget:
    """Training compute. ``flops`` is authoritative; the other fields say how it was derived."""

    flops: float
    gpu: str | None = None
    n_gpus: int | None = None
    days: float | None = None
    gpu_hours: float | None = None
    mfu: float | None = None
    how: str = "flops"

    def __post_init__(self) -> None:
        if not isinstance(self.flops, (int, float)) or not math.isfinite(self.flops) or self.flops <= 0:
            raise UserError(f"budget must be a positive number of FLOPs, got {self.flops!r}")
        self.flops = float(self.flops)

    @classmethod
    def from_flops(cls, flops: float) -> "Budget":
        return cls(flops=flops)

    @classmethod
    def from_gpu_hours(cls, gpu_hours: float, gpu: str, mfu: float | None = None) -> "Budget":
        from planner.hardware import get_gpu

        g = get_gpu(gpu)
        mfu = _check_mfu(mfu if mfu is not None else g.default_mfu)
        if not math.isfinite(gpu_hours) or gpu_hours <= 0:
            raise UserError(f"GPU-hours must be positive, got {gpu_hours!r}")
        return cls(flops=gpu_hours * 3600.0 * g.peak_bf16_flops * mfu, gpu=g.name, gpu_hours=float(gpu_hours),
                   mfu=mfu, how="gpu_hours")

    @classmethod
    def from_gpu_days(cls, n_gpus: int, days: float, gpu: str, mfu: float | None = None) -> "Budget":
        if not isinstance(n_gpus, int) or n_gpus <= 0:
            raise UserError(f"number of GPUs must be a positive integer, got {n_gpus!r}")
        if not math.isfinite(days) or days <= 0:
            raise UserError(f"days must be positive, got {days!r}")
        b = cls.from_gpu_hours(n_gpus * days * 24.0, gpu, mfu)
        b.n_gpus, b.days, b.how = n_gpus, float(days), "gpus_days"
        return b

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def _check_mfu(mfu: float) -> float:
    if not isinstance(mfu, (int, float)) or not (0 < mfu <= 1):
        raise UserError(f"MFU must be a fraction in (0, 1], got {mfu!r} (e.g. 0.4 for 40%)")
    return float(mfu)


# ---------------------------------------------------------------------------------- the plan
@dataclass
class Plan:
    """Everything needed to launch a run. Sections are plain dicts so the YAML reads naturally.

    ``shape`` is a ModelShape dict; ``training`` holds batch, schedule and optimizer settings;
    ``hparams`` the per-group μP values at the target width (or None); ``layout`` the parallelism;
    ``memory`` bytes per GPU; ``time_cost`` duration and price; ``data`` the launch placeholders
    (data path, tokenizer, checkpoints) the exporters write into scripts.
    """

    budget: dict[str, Any]
    allocation: dict[str, Any]
    shape: dict[str, Any]
    tokens: int
    training: dict[str, Any]
    layout: dict[str, Any]
    memory: dict[str, Any] = field(default_factory=dict)
    time_cost: dict[str, Any] = field(default_factory=dict)
    hparams: dict[str, Any] | None = None
    candidates: list[dict[str, Any]] = field(default_factory=list)
    phases: list[dict[str, Any]] = field(default_factory=list)
    data: dict[str, Any] = field(default_factory=dict)
    warnings: list[str] = field(default_factory=list)
    preset: str | None = None
    meta: dict[str, Any] = field(default_factory=dict)

    # -------------------------------------------------------------- derived views
    @property
    def model_shape(self) -> ModelShape:
        return ModelShape.from_dict(self.shape)

    def content(self) -> dict[str, Any]:
        """The hashed content: everything except ``meta`` (which records who made it, and when)."""
        d = asdict(self)
        d.pop("meta", None)
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
        if not isinstance(d, dict):
            raise UserError(f"a plan must be a mapping, got {type(d).__name__}; pass a plan.yaml from `scaleplan plan`")
        known = {f for f in cls.__dataclass_fields__}
        missing = [k for k in ("budget", "allocation", "shape", "tokens", "training", "layout") if k not in d]
        if missing:
            raise UserError(f"plan lacks {missing}; regenerate it with `scaleplan plan`")
        unknown = sorted(set(d) - known)
        if unknown:
            raise UserError(f"unknown plan sections {unknown}; regenerate it with `scaleplan plan`")
        d = copy.deepcopy(d)
        meta = d.pop("meta", {}) or {}
        plan = cls(**d, meta={k: v for k, v in meta.items() if k not in ("plan_hash",)})
        ModelShape.from_dict(plan.shape)  # validates
        stored = meta.get("plan_hash")
        if stored and stored != plan.plan_hash:
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

    # -------------------------------------------------------------- human summary
    def summary(self) -> str:
        s, t, lay, mem, tc = self.model_shape, self.training, self.layout, self.memory, self.time_cost
        lines = [
            f"plan {self.plan_hash[:12]}" + (f" (preset {self.preset})" if self.preset else ""),
            f"  budget     {self.budget['flops']:.3e} FLOPs ({self.budget.get('how')})",
        ]
        a = self.allocation
        if a.get("N") is not None:
            ci = a.get("ci") or {}
            band = f" [CI N {ci['N'][0]:.3g}..{ci['N'][1]:.3g}]" if "N" in ci else ""
            lines.append(f"  law        {a.get('law')}: N* {a['N']:.4g}, D* {a['D']:.4g}"
                         + (f", loss {a['loss']:.4f} nats" if a.get("loss") is not None else "") + band)
        lines += [
            f"  model      {s.total_params:,} params ({s.non_embedding_params:,} non-embedding): "
            f"{s.n_layers} layers, d_model {s.d_model}, ffn {s.d_ffn}, heads {s.n_heads}/{s.n_kv_heads} kv, "
            f"vocab {s.vocab_size}->{s.padded_vocab}, seq {s.seq_len}",
            f"  tokens     {self.tokens:,} ({self.tokens / s.total_params:.1f} tokens/param)",
            f"  batch      {t['global_batch']} x {t['seq_len']} = {t['global_batch'] * t['seq_len']:,} tokens/step, "
            f"{t['train_iters']:,} steps, micro-batch {lay.get('micro_batch')}",
            f"  schedule   {t['schedule']}: lr {t['lr']:.3g} -> {t['min_lr']:.3g}, warmup {t['warmup_iters']}, "
            f"decay iters {t['lr_decay_iters']} (LR from {t.get('lr_source')})",
            f"  optimizer  AdamW betas {tuple(t['betas'])}, eps {t['eps']:g}, wd {t['weight_decay']:g}, "
            f"clip {t['clip_grad']:g}, init std {t['init_std']:.4g}",
        ]
        if self.hparams:
            g = self.hparams["groups"]
            lines.append(f"  μP         m_d {self.hparams['m_d']:.3g}: hidden lr {g['hidden']['lr']:.3g}, "
                         f"embedding/readout lr {g['embedding']['lr']:.3g}, hidden init {g['hidden']['init_std']:.3g}, "
                         f"output mult {g['readout']['multiplier']:.3g}")
        lines.append(f"  layout     {lay['n_gpus']} x {lay['gpu']}: TP {lay['tp']} PP {lay['pp']} CP {lay['cp']} "
                     f"DP {lay['dp']} ({lay.get('sharding')}), recompute {lay.get('recompute') or 'none'}")
        if mem:
            lines.append(f"  memory     {mem.get('total_gib', float('nan')):.1f} GiB per GPU of "
                         f"{mem.get('capacity_gib', float('nan')):.1f} ({'fits' if mem.get('fits') else 'DOES NOT FIT'})")
        if tc:
            lines.append(f"  time       {tc.get('days', float('nan')):.1f} days at MFU {tc.get('mfu', float('nan')):.0%}, "
                         f"{tc.get('gpu_hours', float('nan')):,.0f} GPU-hours, "
                         f"${tc.get('cost', float('nan')):,.0f} at ${tc.get('price_per_gpu_hour', float('nan')):.2f}/GPU-h")
        for w in self.warnings:
            lines.append(f"  warning    {w}")
        return "\n".join(lines)


# ---------------------------------------------------------------------------------- steps
def _law_step(budget: Budget | None, law_spec, *, inference_tokens: float, unique_tokens: float | None,
              target_loss: float | None) -> tuple[dict[str, Any], Any]:
    """N*, D* from the law: plain Chinchilla, inference-aware (Sardana), data-constrained or target loss."""
    from planner import laws

    law = laws.load_law(law_spec)
    out: dict[str, Any] = {"law": law.name or str(law_spec), "law_source": law.source, "mode": "compute-optimal",
                           "flops_convention": "6ND (total N)"}
    if target_loss is not None:
        a = law.optimal_for_loss(target_loss)
        out["mode"] = "target-loss"
    elif inference_tokens:
        from planner.inference_aware import inference_optimal_for_budget

        a = inference_optimal_for_budget(law, budget.flops, inference_tokens)
        out["mode"] = "inference-aware (Sardana et al. 2024): same loss as Chinchilla at C, least train+inference"
        out["train_flops"] = a.train_flops
    elif unique_tokens:
        from planner.data_constrained import data_constrained_law

        a = data_constrained_law(law if law.name != "muennighoff2023" else None).optimal(budget.flops, unique_tokens)
        out["mode"] = "data-constrained (Muennighoff et al. 2023)"
        out["epochs"] = a.epochs
    else:
        a = law.optimal(budget.flops)
    ad = a.to_dict() if hasattr(a, "to_dict") else dict(a)
    for k in ("N", "D", "C", "loss", "tokens_per_param"):
        out[k] = ad.get(k)
    out["ci"] = ad.get("ci") or {}
    return out, law


# A fitted law is trusted this far (in N and in D) beyond its largest run before the plan warns.
EXTRAPOLATION_WARN_FACTOR = 100.0


def _law_warnings(law, allocation: dict[str, Any]) -> list[str]:
    """Carry a fitted law's own warnings into the plan, and flag far extrapolation beyond its runs."""
    meta = getattr(law, "meta", None) or {}
    out = [f"law: {w}" for w in meta.get("warnings", []) or []]
    for key, label in (("n_range", "N"), ("d_range", "D")):
        rng = meta.get(key)
        val = allocation.get(label)
        if not rng or not val:
            continue
        ratio = float(val) / float(rng[1])
        if ratio > EXTRAPOLATION_WARN_FACTOR:
            out.append(f"{label}* = {float(val):.3g} is {ratio:.3g}x the largest {label} the law was fitted on "
                       f"({float(rng[1]):.3g}): a {math.log10(ratio):.1f}-decade extrapolation; check the fit's held-out "
                       "error, or plan with a published law (--law hoffmann2022)")
    return out


def _shape_step(n_target: float, *, vocab: int, seq_len: int, tp: int, top: int = 5
                ) -> tuple[ModelShape, list[dict[str, Any]]]:
    from planner.shape_search import search_shapes

    try:
        cands = search_shapes(n_target, vocab_size=vocab, pad_vocab_to=128, tp=tp, seq_len=seq_len, top=top)
    except UserError as e:
        raise UserError(f"no model shape near N* = {n_target:.3g} parameters (vocab {vocab}, TP {tp}): {e}. "
                        "Raise the budget, or use a smaller --vocab") from None
    rows = []
    for c in cands:
        rows.append({"n_layers": c.shape.n_layers, "d_model": c.shape.d_model, "d_ffn": c.shape.d_ffn,
                     "n_heads": c.shape.n_heads, "n_kv_heads": c.shape.n_kv_heads,
                     "total_params": c.shape.total_params, "rel_error": c.rel_error, "score": c.score,
                     "rules": dict(c.rules), "why": c.why})
    return cands[0].shape, rows


def deepseek_batch_lr(shape: ModelShape, tokens: float) -> tuple[float, float]:
    """(B_opt tokens, eta_opt) from DeepSeek LLM eq. 1 at their C = M D (planner.batch_lr)."""
    from planner.batch_lr import DEEPSEEK2024

    r = DEEPSEEK2024.for_model(shape.n_layers, shape.d_model, shape.seq_len, tokens)
    return r["batch_tokens"], r["lr"]


def _round_batch(seqs: float, multiple: int) -> int:
    """Nearest multiple of ``multiple`` (>= 1 multiple), in sequences."""
    return max(multiple, int(round(seqs / multiple)) * multiple)


def _schedule(train_iters: int, schedule: str, warmup_iters: int | None, lr_decay_iters: int | None,
              warmup_frac: float | None) -> dict[str, Any]:
    if schedule not in ("cosine", "wsd"):
        raise UserError(f"unknown schedule {schedule!r}; use cosine or wsd")
    if warmup_iters is None:
        if warmup_frac:
            warmup_iters = int(round(warmup_frac * train_iters))
        else:
            warmup_iters = min(DEFAULT_WARMUP_ITERS, int(MAX_WARMUP_FRAC * train_iters))
    warmup_iters = max(0, min(int(warmup_iters), train_iters - 1))
    out = {"schedule": schedule, "warmup_iters": warmup_iters,
           "lr_decay_iters": int(lr_decay_iters if lr_decay_iters is not None else train_iters)}
    if schedule == "wsd":
        out["wsd_decay_iters"] = max(1, int(round(WSD_DECAY_FRAC * train_iters)))
        out["wsd_decay_style"] = "linear"
    return out


def _layout_step(shape: ModelShape, *, gpu: str, n_gpus: int, global_batch: int, seq_len: int,
                 tp: int | None, pp: int | None, cp: int | None, micro_batch: int | None,
                 recompute: str | None, sharding: str | None, distributed_optimizer: bool,
                 gpus_per_node: int | None, mfu: float | None
                 ) -> tuple[dict[str, Any], dict[str, Any], list[str], float | None]:
    """Parallel layout + memory per GPU (planner.parallel).

    Fully pinned (tp, pp, micro_batch given): that layout, validated with Megatron's rules (a
    broken rule is a UserError). Otherwise the fastest layout that fits (``search_layouts``),
    restricted to the pinned values. ``sharding``: ``dist-opt`` (Megatron distributed optimizer,
    default), ``ddp``, ``fsdp`` (full shard) or ``fsdp-hybrid`` (shard within a node, replicate
    across nodes). Returns (layout dict, memory dict, warnings, estimated MFU or None).
    """
    from planner.hardware import get_gpu
    from planner.parallel.layout import Layout
    from planner.parallel.search import search_layouts
    from planner.parallel.memory import memory_per_gpu

    g = get_gpu(gpu)
    gpn = int(gpus_per_node or min(g.nvlink_domain, n_gpus))
    sharding = sharding or ("dist-opt" if distributed_optimizer else "ddp")
    if sharding not in ("dist-opt", "ddp", "fsdp", "fsdp-hybrid"):
        raise UserError(f"unknown sharding {sharding!r}; use dist-opt, ddp, fsdp or fsdp-hybrid")
    shard_kw = {"dist-opt": dict(zero_stage=1), "ddp": dict(zero_stage=0), "fsdp": dict(zero_stage=3, fsdp=True),
                "fsdp-hybrid": dict(zero_stage=3, fsdp=True, shard_group=gpn)}[sharding]
    warnings: list[str] = []
    s = shape.replace(seq_len=seq_len)
    est_mfu = None
    if tp is not None and pp is not None and micro_batch is not None:
        cp = cp or 1
        if n_gpus % (tp * pp * cp):
            raise UserError(f"{n_gpus} GPUs are not divisible by TP*PP*CP = {tp * pp * cp}; choose other --tp/--gpus")
        dp = n_gpus // (tp * pp * cp)
        accum = max(1, global_batch // (micro_batch * dp))
        lay = Layout(tp=tp, pp=pp, cp=cp, dp=dp, micro_batch=micro_batch, grad_accum=accum,
                     sequence_parallel=tp > 1, recompute=recompute or "selective", **shard_kw)
        lay.check(s, n_gpus, global_batch, seq_len)
        mem = memory_per_gpu(s, lay)
    else:
        if tp is not None:
            if s.n_heads % tp or s.d_ffn % tp:
                raise UserError(f"TP {tp} does not divide heads {s.n_heads} / ffn {s.d_ffn}; choose a TP that divides both")
        try:
            res = search_layouts(s, g, n_gpus, global_batch, seq_len, max_tp=tp or None,
                                 recompute=(recompute,) if recompute else ("none", "selective", "full"),
                                 zero_stages=(shard_kw["zero_stage"],) if not shard_kw.get("fsdp") else (1,),
                                 allow_fsdp=bool(shard_kw.get("fsdp")), top=50)
            items = [c for c in res
                     if (tp is None or c.layout.tp == tp) and (pp is None or c.layout.pp == pp)
                     and (micro_batch is None or c.layout.micro_batch == micro_batch)
                     and (not shard_kw.get("fsdp") or (c.layout.fsdp and c.layout.shard_group == shard_kw.get("shard_group")))]
            if not items:
                raise UserError("no layout matches the pinned --tp/--pp/--micro-batch/sharding")
            best = items[0]
            lay, mem, est_mfu = best.layout, best.memory, best.mfu
        except UserError as e:
            if tp is not None or pp is not None or micro_batch is not None:
                raise UserError(f"no valid layout with the pinned --tp/--pp/--micro-batch on {n_gpus} GPUs "
                                f"({e}); change or drop the pinned values, or the GPU count") from None
            warnings.append(f"layout infeasible: {e}")
            lay = Layout(tp=tp or 1, pp=pp or 1, cp=cp or 1, dp=max(1, n_gpus // ((tp or 1) * (pp or 1) * (cp or 1))),
                         micro_batch=micro_batch or 1, recompute=recompute or "full", sequence_parallel=(tp or 1) > 1,
                         **shard_kw)
            lay = lay.replace(grad_accum=max(1, global_batch // (lay.micro_batch * lay.dp)))
            if lay.validate(s, n_gpus, global_batch, seq_len):
                raise UserError(f"no valid layout for {n_gpus} GPUs and global batch {global_batch}: {e}") from None
            mem = memory_per_gpu(s, lay)
    layout = lay.to_dict()
    layout.update(gpu=g.name, gpus_per_node=gpn, n_nodes=max(1, math.ceil(n_gpus / gpn)), sharding=sharding,
                  recompute=None if lay.recompute == "none" else lay.recompute, n_gpus=n_gpus)
    memory = mem.to_dict()
    memory.update(capacity_gib=g.memory_gib, fits=bool(mem.fits(g)))
    if not memory["fits"]:
        warnings.append(f"memory {mem.total_gib:.1f} GiB per GPU exceeds the {g.name}'s {g.memory_gib:.1f} GiB; "
                        "use more GPUs, higher TP/PP, full recompute or a smaller micro-batch")
    return layout, memory, warnings, est_mfu


def _warnings(plan_bits: dict[str, Any]) -> list[str]:
    w: list[str] = []
    tpp = plan_bits["tokens"] / plan_bits["params"]
    if tpp < 10:
        w.append(f"only {tpp:.1f} tokens per parameter (< 10): the model is undertrained for its size "
                 "(Hoffmann et al. 2022 optimum is ~20); consider a smaller model")
    elif tpp > 200 and not plan_bits.get("inference"):
        w.append(f"{tpp:.0f} tokens per parameter is far above the compute-optimal ~20 (Hoffmann et al. 2022); "
                 "fine if inference cost matters (Sardana et al. 2024), else a larger model gets a lower loss")
    b_opt = plan_bits.get("b_opt_tokens")
    if b_opt:
        ratio = plan_bits["batch_tokens"] / b_opt
        if ratio > 4:
            w.append(f"global batch {plan_bits['batch_tokens']:,} tokens is {ratio:.1f}x the DeepSeek-optimal "
                     f"{b_opt:,.0f} tokens: far above the critical batch, extra tokens per step are wasted")
    u = plan_bits.get("unique_tokens")
    if u:
        epochs = plan_bits["tokens"] / u
        if epochs > MAX_GOOD_EPOCHS:
            w.append(f"{epochs:.1f} epochs over {u:,.0f} unique tokens: beyond ~4 epochs repeated data is worth "
                     "much less than new data (Muennighoff et al. 2023); get more data or train a larger model less")
        elif epochs > 1:
            w.append(f"unique data is repeated {epochs:.2f} times (<= 4 epochs is nearly as good as unique data, "
                     "Muennighoff et al. 2023)")
    return w


def make_plan(budget: Budget | float | None = None, *, law: Any = "hoffmann2022", hparams: Any = None,
              gpu: str = "h100", n_gpus: int | None = None, inference_tokens: float = 0.0,
              unique_tokens: float | None = None, target_loss: float | None = None, seq_len: int | None = None,
              vocab: int | None = None, tp: int | None = None, pp: int | None = None, cp: int | None = None,
              micro_batch: int | None = None, mfu: float | None = None, price_per_gpu_hour: float | None = None,
              global_batch: int | None = None, schedule: str | None = None, preset: str | None = None,
              tokens: int | None = None, lr: float | None = None, min_lr: float | None = None,
              warmup_iters: int | None = None, recompute: str | None = None, sharding: str | None = None,
              gpus_per_node: int | None = None, data: dict[str, Any] | None = None,
              phases: list[dict[str, Any]] | None = None, command: str | None = None) -> Plan:
    """Budget (or preset, or target loss) -> :class:`Plan`. See the module docstring for conventions.

    LR choice, in order: an explicit ``lr``; the preset's published LR; μP hparams transferred to
    the target width (hidden-matrix LR = base lr / m_d; the exporters map the groups); SP hparams
    as is (warned: no transfer guarantee); else DeepSeek LLM's eta_opt(C).
    """
    from planner.hardware import get_gpu, DEFAULT_PRICE_PER_GPU_HOUR
    from planner.cost import estimate_time

    g = get_gpu(gpu)
    hp: HParams | None = load_hparams(hparams)
    warnings: list[str] = []
    recipe = None
    if preset is not None:
        from planner.recipes import get_recipe

        recipe = get_recipe(preset)
    if budget is not None and not isinstance(budget, Budget):
        budget = Budget.from_flops(budget)

    seq_len = int(seq_len or (recipe.seq_len if recipe else 4096))
    tp_for_vocab = tp or (recipe.tp if recipe and recipe.tp else 1)
    candidates: list[dict[str, Any]] = []
    if recipe is not None:
        shape = preset_shape(recipe.shape_preset, seq_len=seq_len,
                             **({"tp": tp_for_vocab} if preset_shape(recipe.shape_preset).pad_vocab_to else {}))
        if vocab:
            shape = shape.replace(vocab_size=int(vocab))
        allocation = {"law": None, "mode": f"preset {recipe.name}", "N": None, "D": None,
                      "source": recipe.source}
    else:
        if budget is None and target_loss is None:
            raise UserError("give a budget (--flops, --gpu-hours or --gpus/--days), a --target-loss, or a --preset")
        allocation, _law = _law_step(budget, law, inference_tokens=inference_tokens, unique_tokens=unique_tokens,
                                     target_loss=target_loss)
        if budget is None:  # target loss: the law's compute becomes the budget
            budget = Budget(flops=float(allocation["C"]), how="target_loss")
        if allocation.get("train_flops"):
            warnings.append(f"inference-aware allocation trains with {allocation['train_flops']:.3g} FLOPs, "
                            f"{allocation['train_flops'] / budget.flops:.2f}x the budget, to reach the Chinchilla "
                            "loss of the budget with a smaller, cheaper-to-serve model")
            budget = Budget(flops=float(allocation["train_flops"]), how=f"inference-aware (budget {budget.flops:.3g})",
                            gpu=budget.gpu, n_gpus=budget.n_gpus, mfu=budget.mfu)
        warnings += _law_warnings(_law, allocation)
        shape, candidates = _shape_step(allocation["N"], vocab=int(vocab or 32000), seq_len=seq_len,
                                        tp=tp_for_vocab)
    fpt = shape.flops_per_token_megatron

    # ---- tokens, batch, LR
    b_opt_tokens = None
    if recipe is not None:
        gbs = int(global_batch or recipe.global_batch)
        if tokens is None:
            tokens = int(budget.flops / fpt) if budget is not None else recipe.tokens
        train_iters = math.ceil(tokens / (gbs * seq_len))
        if budget is None:
            budget = Budget(flops=tokens * fpt, how="preset tokens x Megatron FLOPs/token")
        base_lr, lr_source = recipe.lr, f"preset {recipe.name} ({recipe.source})"
        lr_min = recipe.min_lr
        sched_name = schedule or recipe.schedule
        warm = warmup_iters if warmup_iters is not None else recipe.warmup_iters
        decay = None
        if recipe.train_iters and train_iters == recipe.train_iters and sched_name == recipe.schedule:
            decay = recipe.train_iters - recipe.warmup_iters  # the published Megatron value
        betas, eps, wd, clip, init_std = list(recipe.betas), recipe.eps, recipe.weight_decay, recipe.clip_grad, \
            recipe.init_std
    else:
        if tokens is None:
            tokens = int(budget.flops / fpt)
        b_opt_tokens, lr_deepseek = deepseek_batch_lr(shape, tokens)
        n_planned = n_gpus or budget.n_gpus or _default_gpu_count(budget.flops, g, mfu)
        # a multiple of the GPU count when the batch is large enough (any DP divides it), else of 8
        mult = n_planned if b_opt_tokens / seq_len >= n_planned else 8
        gbs = int(global_batch) if global_batch else _round_batch(b_opt_tokens / seq_len, mult)
        train_iters = math.ceil(tokens / (gbs * seq_len))
        sched_name = schedule or "cosine"
        warm, decay = warmup_iters, None
        betas, eps, wd, clip, init_std = [0.9, 0.95], 1e-8, 0.1, 1.0, 0.02
        if hp is not None:
            base_lr, lr_source = hp.lr, f"hparams ({hp.parameterization}, base width {hp.base_width})"
            betas, eps = list(hp.betas), hp.eps
            wd, init_std = hp.weight_decay, hp.init_std
            if warm is None and hp.warmup_frac:
                warm = int(round(hp.warmup_frac * train_iters))
        else:
            base_lr, lr_source = lr_deepseek, "DeepSeek LLM eq. 1: eta_opt = 0.3118 C^-0.125 (C = M D)"
        lr_min = None
    if lr is not None:
        base_lr, lr_source = float(lr), "given"
    if train_iters < 2:
        raise UserError(f"the run is only {train_iters} step(s) at global batch {gbs} x {seq_len}; "
                        "raise the budget or lower the batch")

    # ---- μP transfer
    hp_view = None
    if hp is not None:
        hp_view = hp.at_width(shape.d_model, shape.n_layers, shape.head_dim)
        warnings += hp_view["warnings"]
        if recipe is not None:
            warnings.append(f"hparams given with preset {recipe.name}: the published recipe's LR is used; "
                            "the hparams are reported per group but not applied")
        elif hp.parameterization == "mup" and lr is None:
            lr_source += f"; Megatron --lr is the hidden-matrix LR lr/m_d = {hp_view['groups']['hidden']['lr']:.4g}"
            ds = deepseek_batch_lr(shape, tokens)[1]
            hidden = hp_view["groups"]["hidden"]["lr"]
            if not (ds / 10 <= hidden <= ds * 10):
                warnings.append(f"μP hidden LR {hidden:.3g} differs from DeepSeek's eta_opt {ds:.3g} by more than 10x; "
                                "check the proxy sweep (base width, LR horizon)")
        if hp.parameterization == "sp" and recipe is None:
            warnings.append("hparams are SP (standard parameterization): they were tuned at another width and "
                            "carry no transfer guarantee; prefer μP hparams (`scaleplan sweep` with --param mup)")
    sched = _schedule(train_iters, sched_name, warm, decay, None)
    # In μP the base lr is the embedding/readout LR; hidden matrices use lr / m_d (the "main" LR).
    main_lr = hp_view["groups"]["hidden"]["lr"] if (hp_view and hp.parameterization == "mup" and recipe is None
                                                   and lr is None) else base_lr
    if hp_view and hp.parameterization == "mup" and recipe is None and lr is None:
        init_std = hp_view["groups"]["hidden"]["init_std"]
    training = {
        "global_batch": gbs, "seq_len": seq_len, "train_iters": int(train_iters),
        "lr": float(main_lr), "min_lr": float(lr_min if lr_min is not None else MIN_LR_RATIO * main_lr),
        "lr_source": lr_source, **sched, "betas": [float(b) for b in betas], "eps": float(eps),
        "weight_decay": float(wd), "clip_grad": float(clip), "init_std": float(init_std), "precision": "bf16",
        "optimizer": "adamw", "flops_per_token": fpt, "flops_convention": "megatron",
        "deepseek_batch_tokens": b_opt_tokens,
    }
    if hp_view and hp.parameterization == "mup" and recipe is None and lr is None:
        training["decoupled_lr"] = hp_view["groups"]["embedding"]["lr"]
        training["decoupled_min_lr"] = MIN_LR_RATIO * hp_view["groups"]["embedding"]["lr"]
        training["embedding_init_std"] = hp_view["groups"]["embedding"]["init_std"]
        if hp.wd_rule == "mup":
            training["weight_decay"] = float(hp_view["groups"]["hidden"]["weight_decay"])
    if recipe is not None and recipe.megatron_extra:
        training["megatron_extra"] = dict(recipe.megatron_extra)
    if training["min_lr"] > training["lr"]:
        raise UserError(f"min lr {training['min_lr']:g} exceeds the peak lr {training['lr']:g}; lower --min-lr")
    if min_lr is not None:
        training["min_lr"] = float(min_lr)

    # ---- layout, memory, time, cost
    n = n_gpus or (recipe.n_gpus if recipe and recipe.n_gpus else None) or budget.n_gpus
    if n is None:
        n = _default_gpu_count(budget.flops, g, mfu)
    layout, memory, lw, est_mfu = _layout_step(
        shape, gpu=g.name, n_gpus=int(n), global_batch=gbs, seq_len=seq_len,
        tp=tp if tp is not None else (recipe.tp if recipe else None),
        pp=pp if pp is not None else (recipe.pp if recipe else None),
        cp=cp if cp is not None else (recipe.cp if recipe else None),
        micro_batch=micro_batch if micro_batch is not None else (recipe.micro_batch if recipe else None),
        recompute=recompute if recompute is not None else (recipe.recompute if recipe else None),
        sharding=sharding, distributed_optimizer=recipe.distributed_optimizer if recipe else True,
        gpus_per_node=gpus_per_node, mfu=mfu)
    warnings += lw
    use_mfu = mfu if mfu is not None else budget.mfu if budget.mfu is not None else est_mfu
    est = estimate_time(train_iters * gbs * seq_len * fpt, g, int(n), use_mfu,
                        price_per_gpu_hour=price_per_gpu_hour if price_per_gpu_hour is not None
                        else DEFAULT_PRICE_PER_GPU_HOUR)
    time_cost = est.to_dict()
    time_cost["price_is_placeholder"] = price_per_gpu_hour is None
    if price_per_gpu_hour is None:
        warnings.append(f"cost uses the placeholder price ${DEFAULT_PRICE_PER_GPU_HOUR:.2f}/GPU-hour; pass --price")

    warnings += _warnings({"tokens": tokens, "params": shape.total_params, "inference": inference_tokens,
                           "b_opt_tokens": b_opt_tokens or deepseek_batch_lr(shape, tokens)[0],
                           "batch_tokens": gbs * seq_len, "unique_tokens": unique_tokens})
    if hp is None and recipe is None:
        warnings.append("no --hparams: LR from DeepSeek's fit (SP-trained models); tune μP hparams on a proxy "
                        "for a better LR")

    meta = {"command": command or "make_plan(...)", "created": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())}
    return Plan(budget=budget.to_dict(), allocation=allocation, shape=shape.to_dict(), tokens=int(tokens),
                training=training, layout=layout, memory=memory, time_cost=time_cost,
                hparams=hp_view, candidates=candidates, phases=list(phases or []), data=dict(data or {}),
                warnings=warnings, preset=recipe.name if recipe else None, meta=meta)


def _default_gpu_count(flops: float, gpu, mfu: float | None, target_days: float = 30.0) -> int:
    """GPUs (a multiple of 8) that finish ``flops`` in about ``target_days`` at the MFU prior."""
    m = mfu if mfu is not None else gpu.default_mfu
    n = flops / (target_days * 86400.0 * gpu.peak_bf16_flops * m)
    return max(8, int(math.ceil(n / 8.0)) * 8)
