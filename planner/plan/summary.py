"""The human summary of a Plan that `scaleplan plan` prints: one line per section.

Conventions: FLOPs in scientific notation, loss in nats, memory in GiB (2**30 bytes), time in days,
cost in US$; ``plan <hash[:12]>`` names the plan as the exporters' headers do.
"""
from __future__ import annotations


def plan_summary(plan) -> str:
    """Budget, law, model, tokens, batch, schedule, optimizer, μP, layout, memory, time, warnings."""
    s, t, place = plan.shape, plan.training, plan.placement
    lay = place.layout
    lines = [
        f"plan {plan.plan_hash[:12]}" + (f" (preset {plan.preset})" if plan.preset else ""),
        f"  budget     {plan.budget.flops:.3e} FLOPs ({plan.budget.how})",
    ]
    a = plan.allocation
    if a.N is not None:
        band = f" [CI N {a.ci['N'][0]:.3g}..{a.ci['N'][1]:.3g}]" if "N" in a.ci else ""
        lines.append(f"  law        {a.law}: N* {a.N:.4g}, D* {a.D:.4g}"
                     + (f", loss {a.loss:.4f} nats" if a.loss is not None else "") + band)
    lines += [
        f"  model      {s.total_params:,} params ({s.non_embedding_params:,} non-embedding): "
        f"{s.n_layers} layers, d_model {s.d_model}, ffn {s.d_ffn}, heads {s.n_heads}/{s.n_kv_heads} kv, "
        f"vocab {s.vocab_size}->{s.padded_vocab}, seq {s.seq_len}",
        f"  tokens     {plan.tokens:,} ({plan.tokens / s.total_params:.1f} tokens/param)",
        f"  batch      {t.global_batch} x {t.seq_len} = {t.batch_tokens:,} tokens/step, "
        f"{t.train_iters:,} steps, micro-batch {lay.micro_batch}",
        (f"  schedule   {len(plan.phases)} phases, one line each below (LR from {t.lr_source})" if plan.phases else
         f"  schedule   {t.schedule}: lr {t.lr:.3g} -> {t.min_lr:.3g}, warmup {t.warmup_iters}, "
         f"decay iters {t.lr_decay_iters} (LR from {t.lr_source})"),
        f"  optimizer  AdamW betas {tuple(t.betas)}, eps {t.eps:g}, wd {t.weight_decay:g}, "
        f"clip {t.clip_grad:g}, init std {t.init_std:.4g}",
    ]
    lines += _phase_lines(plan) + _data_lines(plan)
    hp = plan.hparams
    if hp is not None:
        lines.append(f"  μP         m_d {hp.m_d:.3g}: hidden lr {hp.hidden.lr:.3g}, "
                     f"embedding/readout lr {hp.embedding.lr:.3g}, hidden init {hp.hidden.init_std:.3g}, "
                     f"output mult {hp.readout.multiplier:.3g}")
    if hp is not None and hp.horizon is not None:
        lines.append(f"  horizon    {_horizon_text(hp.horizon)}")
    lines.append(f"  layout     {place.n_gpus} x {place.gpu}: TP {lay.tp} PP {lay.pp} CP {lay.cp} "
                 f"DP {lay.dp} ({place.sharding}), recompute {lay.recompute}")
    if plan.memory is not None:
        m = plan.memory
        use = m.breakdown.total_gib / m.capacity_gib
        lines.append(f"  memory     {m.breakdown.total_gib:.1f} GiB per GPU of {m.capacity_gib:.1f} ({use:.0%}; "
                     f"{'fits' if m.fits else 'DOES NOT FIT'} under {1 - m.margin:.0%})")
    if plan.time_cost is not None:
        e = plan.time_cost.estimate
        lines.append(f"  time       {e.days:.1f} days at MFU {e.mfu:.0%}, {e.gpu_hours:,.0f} GPU-hours, "
                     f"${e.cost:,.0f} at ${e.price_per_gpu_hour:.2f}/GPU-h")
    lines += _run_lines(plan) + _choice_lines(plan)
    for w in plan.warnings:
        lines.append(f"  warning    {w}")
    return "\n".join(lines)


def _phase_lines(plan) -> list[str]:
    """One line per schedule phase (a phased plan's schedule line above is only its first segment)."""
    if not plan.phases:
        return []
    from planner.plan.phases import describe_phases, resolve_plan_phases

    return [f"  phase      {line}" for line in describe_phases(resolve_plan_phases(plan))]


def _data_lines(plan) -> list[str]:
    """The mixture's repetition: the repeated-vs-fresh comparison, then epochs per source."""
    if getattr(plan, "data_repetition", None) is None:
        return []
    from planner.plan.data_mixture import describe_repetition

    first, *rest = describe_repetition(plan.data_repetition)
    return [f"  data       {first}"] + [f"  source     {line}" for line in rest]


def _run_lines(plan) -> list[str]:
    """Checkpoints, failures and the eval cadence."""
    out = []
    c = plan.checkpoints
    if c is not None and plan.time_cost is not None:
        out.append(f"  wall time  {plan.time_cost.estimate.days / c.goodput:.1f} days with expected failures, "
                   "restarts and checkpoint writes")
    if c is not None:
        out.append(f"  checkpoint {c.checkpoint_bytes / 1e9:,.0f} GB every {c.interval_steps:,} steps "
                   f"({c.interval_seconds / 3600:.1f} h, Young/Daly at job MTBF {c.job_mtbf_hours:,.0f} h), "
                   f"write {c.write_seconds:,.0f} s, disk {c.disk_needed_bytes / 1e12:.1f} TB for keep {c.keep}; "
                   f"goodput {c.goodput:.1%} ({c.expected_failures:.1f} failures expected)")
    o = plan.operations
    if o is not None:
        end = f"; predicted final loss {o.predicted_loss:.4f} nats" if o.predicted_loss else ""
        out.append(f"  eval       every {o.eval_interval:,} steps, {o.eval_iters} batches "
                   f"({o.eval_tokens / 1e6:.1f}M tokens){end}")
    return out


def _choice_lines(plan) -> list[str]:
    """The near-optimal band, the serving cap and every published law's view."""
    out = []
    ch = plan.choice
    if ch is not None:
        out.append(f"  band       N in [{ch.band[0]:.3g}, {ch.band[1]:.3g}] within {ch.tolerance:.2%} of L*; "
                   f"{len(ch.options)} shape x layout options, {ch.objective}: {ch.why}")
    sv = plan.serving
    if sv is not None:
        state = (f"caps N at {sv.n_max:.3g} (N* {sv.n_opt:.3g}), +{sv.penalty:.2%} loss" if sv.binding
                 else f"allows up to {sv.n_max:.3g} params: not binding")
        out.append(f"  serving    {sv.target} at context {sv.context} x batch {sv.batch} {state}")
    for v in plan.sensitivity:
        out.append(f"  law view   {v.law:<16} N* {v.N:.3g}, {v.tokens_per_param:.0f} tokens/param; "
                   f"this plan's (N, D) costs {v.penalty:+.2%} loss")
    return out


def _horizon_text(h: dict) -> str:
    """The training-horizon LR correction in one line (planner/horizon.py)."""
    if not h.get("applied"):
        return f"no LR correction: {h.get('reason', '')}"
    lo, hi = h["factor_ci_low"], h["factor_ci_high"]
    span = (f", measured on {h['measured_min_tokens']:.3g}..{h['measured_max_tokens']:.3g} tokens"
            if h.get("measured_min_tokens") else "")
    extra = (f" ({h['extrapolation_octaves']:.1f} octaves beyond the measured span)"
             if h.get("extrapolation_octaves") else "")
    return (f"LR x {h['factor']:.3g} (95% CI {lo:.3g}..{hi:.3g}) = ({h['t_target_tokens']:.3g} / "
            f"{h['t_proxy_tokens']:.3g} tokens)^b, b = {h['exponent']:.3g} [{h['exponent_ci_low']:.3g}, "
            f"{h['exponent_ci_high']:.3g}]{span}{extra}")
