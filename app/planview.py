"""The Plan page's pieces: tables of a Plan (reshaping only: every value comes from the plan's
sections), the inputs of the band, serving and checkpoint options, and the sections that show the
plan's choices (the near-optimal band, law sensitivity, layout alternatives, eval cadence,
checkpoints and goodput, serving), and the hparams checkbox's gate verdict (:func:`hparams_gate`);
the per-group table of μP as each trainer applies it is app/trainer_table.py. app/views/plan.py lays
them out.
"""
from __future__ import annotations

from dataclasses import dataclass

import pandas as pd
import streamlit as st

from app import fmt
from app.figures import band_figure, layout_figure, layout_label, sensitivity_figure
from planner.errors import UserError

NO_SERVING_CAP = "(no cap)"


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


@dataclass(frozen=True)
class GateView:
    """The quality gate's verdict on a study's hparams.yaml for the Plan page's checkbox."""

    passes: bool
    caption: str


def hparams_gate(path) -> GateView:
    """:func:`planner.hparams_gate.hparams_quality` of the hparams.yaml at ``path`` with its width-independent
    checks (no target width: the plan's width is not known before the checkbox, and a plan never
    trains at the proxy's width), as the planner's own gate (planner/plan/training.py
    ``gated_hparams``) applies it. An unreadable file fails with its error."""
    from planner.hparams import HParams
    from planner.hparams_gate import hparams_quality

    try:
        report = hparams_quality(HParams.read(path))
    except UserError as e:
        return GateView(False, f"Not preselected: the file cannot be read: {e}")
    if report.passes:
        return GateView(True, "Preselected: the file passes the transfer quality gate (enough trials, optima "
                              "inside the search ranges, a μTransfer check over >= 3 widths).")
    return GateView(False, "Not preselected: the transfer quality gate fails (" + "; ".join(report.reasons())
                    + "); the plan uses the published LR/batch laws unless ticked.")


def hparams_stated(path, target_width: int) -> str:
    """The gate's stated (not required) checks of the hparams.yaml at ``path`` for the plan's width:
    how far the values are extrapolated and whether the proxy met TP V's minimum scale."""
    from planner.hparams import HParams
    from planner.hparams_gate import hparams_quality

    report = hparams_quality(HParams.read(path), target_width)
    return "Transfer: " + "; ".join(f"{c.name}: {c.detail}" for c in report.checks if not c.required)


def band_table(choice) -> pd.DataFrame:
    """One row per option of ``plan.choice`` (a JointChoice), the chosen first, then by days."""
    opts = sorted(choice.options, key=lambda o: (not o.chosen, o.days))
    return pd.DataFrame([{"": "chosen" if o.chosen else ("baseline" if o.baseline else ""),
                          "params": fmt.human(o.total_params), "layers": o.n_layers, "d_model": o.d_model,
                          "ffn": o.d_ffn, "heads": f"{o.n_heads}/{o.n_kv_heads}", "tokens": fmt.human(o.tokens),
                          "loss (nats)": f"{o.loss:.4f}", "vs L*": f"{o.penalty:+.3%}", "MFU": f"{o.mfu:.1%}",
                          "days": f"{o.days:.2f}", "memory (GiB)": f"{o.memory_gib:.1f}", "layout": o.layout}
                         for o in opts])


def sensitivity_table(plan) -> pd.DataFrame:
    """One row per law of ``plan.sensitivity``: its N*, D, tokens/param, loss, and this plan's penalty."""
    return pd.DataFrame([{"law": v.law + (" (this plan's)" if v.law == plan.allocation.law else ""),
                          "N*": fmt.human(v.N), "D": fmt.human(v.D), "tokens/param": f"{v.tokens_per_param:.1f}",
                          "N* / plan's N": f"{v.N / plan.shape.total_params:.2f}x",
                          "loss at its optimum": f"{v.loss:.4f}", "this plan's loss": f"{v.chosen_loss:.4f}",
                          "penalty": f"{v.penalty:+.3%}"} for v in plan.sensitivity])


def layout_table(options) -> pd.DataFrame:
    """One row per searched layout (``plan.layout_options``), the plan's first."""
    return pd.DataFrame([{"layout": layout_label(i, o.layout), "MFU": f"{o.mfu:.1%}", "days": f"{o.days:.2f}",
                          "memory (GiB)": f"{o.memory_gib:.1f}", "full layout": o.layout, "why": o.why}
                         for i, o in enumerate(options)])


def plan_law(plan, law=None):
    """The plan's ScalingLaw: ``law`` as given to the planner (a preset name, a fit.json path or a
    ScalingLaw), else ``plan.allocation.law`` when it names one; None when neither can be loaded."""
    from planner.laws import load_law

    for candidate in (law, plan.allocation.law):
        if candidate is not None:
            try:
                return load_law(candidate)
            except (UserError, OSError):
                continue
    return None


# ------------------------------------------------------------------ inputs
def choice_inputs(gpu_names: list[str]) -> dict:
    """Widgets for the band, the serving cap and the checkpoints; their PlanRequest keywords."""
    from planner.plan.joint_choice import DEFAULT_LOSS_TOLERANCE
    from planner.resilience import DEFAULT_FS_BANDWIDTH, DEFAULT_KEEP, DEFAULT_NODE_MTBF_HOURS
    from planner.serving import DEFAULT_WEIGHT_DTYPE, DTYPE_BYTES

    with st.expander("Near-optimal band and serving"):
        tol = st.number_input("Loss tolerance of the band (% of L*, 0 = off)", min_value=0.0, max_value=5.0,
                              value=100 * DEFAULT_LOSS_TOLERANCE, step=0.05, format="%.2f", key="loss_tolerance",
                              help="model sizes whose loss at this budget is within this of the optimum are "
                                   "weighed against the hardware (planner/plan/joint_choice.py)")
        serve_gpu = st.selectbox("Serve on (N must fit one GPU for inference)", [NO_SERVING_CAP, *gpu_names],
                                 key="serve_gpu", help="weights + KV cache at the sequence length, batch 1")
        dtypes = list(DTYPE_BYTES)
        dtype = st.selectbox("Serving weight dtype", dtypes, index=dtypes.index(DEFAULT_WEIGHT_DTYPE),
                             key="serve_dtype", disabled=serve_gpu == NO_SERVING_CAP)
    with st.expander("Checkpoints and failures"):
        bw = st.number_input("Checkpoint write bandwidth (GB/s)", min_value=0.01, max_value=1e5,
                             value=DEFAULT_FS_BANDWIDTH / 1e9, format="%.2f", key="fs_bandwidth")
        mtbf = st.number_input("Node MTBF (hours)", min_value=1.0, max_value=1e7, value=DEFAULT_NODE_MTBF_HOURS,
                               format="%.0f", key="node_mtbf_hours",
                               help="default: Llama 3's 54-day snapshot (planner/resilience.py)")
        keep = st.number_input("Checkpoints kept", min_value=1, max_value=10_000, value=DEFAULT_KEEP, step=1,
                               key="keep_checkpoints")
        disk = st.number_input("Checkpoint disk (TB, 0 = not checked)", min_value=0.0, value=0.0, format="%.1f",
                               key="disk_tb")
    return {"loss_tolerance": float(tol) / 100.0,
            "serve_on": None if serve_gpu == NO_SERVING_CAP else f"{serve_gpu},{dtype}",
            "fs_bandwidth": float(bw) * 1e9, "node_mtbf_hours": float(mtbf), "keep_checkpoints": int(keep),
            "disk_bytes": float(disk) * 1e12 or None}


# ------------------------------------------------------------------ sections
def show_band(plan, law=None) -> None:
    """The near-optimal band: what it spans, what won and why, the figure and every option."""
    st.subheader("Near-optimal band: why this shape")
    ch = plan.choice
    if ch is None:
        st.caption("No band weighed: the loss tolerance is 0, the shape is pinned or capped for serving, "
                   f"or the allocation ({plan.allocation.mode}) has no iso-FLOP band.")
        return
    win = ch.chosen
    c = st.columns(4)
    c[0].metric("Band (params)", f"{fmt.human(ch.band[0])}–{fmt.human(ch.band[1])}",
                help=f"loss within {ch.tolerance:.2%} of L* at this budget")
    c[1].metric("Options weighed", str(len(ch.options)), help="shape x layout, each through the layout search")
    if ch.objective == "fastest":
        c[2].metric("Days saved", f"{ch.days_saved:.2f}", help="vs the compute-optimal shape, same FLOPs")
    else:
        c[2].metric("Loss gained (nats)", f"{ch.loss_gained:.4f}", help="vs the compute-optimal shape, same GPU time")
    c[3].metric("Chosen vs L*", f"{win.penalty:+.3%}")
    st.info(f"**{ch.objective}** wins: {ch.why}")
    st.plotly_chart(band_figure(plan, plan_law(plan, law)), width="stretch", key="band_chart")
    st.caption("The curve is the law along the budget's iso-FLOP line (D = C / 6N); each marker is an option's loss "
               "at the tokens the budget buys for that shape (C / Megatron FLOPs per token, attention and logits "
               "included), so the markers sit a little above the curve, larger models more.")
    st.dataframe(band_table(ch), hide_index=True)


def show_sensitivity(plan) -> None:
    """Every published law's N* for this budget and the penalty of the plan's (N, D) under it."""
    if not plan.sensitivity:
        return
    st.subheader("Law sensitivity")
    st.caption("Published laws disagree on N* at the same compute. Absolute losses of laws fitted on different "
               "data are not comparable; the penalties (vs each law's own optimum at the same 6ND) and "
               "tokens/param are.")
    st.plotly_chart(sensitivity_figure(plan), width="stretch", key="sensitivity_chart")
    st.dataframe(sensitivity_table(plan), hide_index=True)


def show_layouts(plan) -> None:
    """The searched layouts for the chosen shape against the GPU's memory and the plan's margin."""
    if not plan.layout_options:
        return
    from planner.hardware import get_gpu
    from planner.parallel.memory import DEFAULT_MEMORY_MARGIN

    cap = plan.memory.capacity_gib if plan.memory is not None else get_gpu(plan.placement.gpu).memory_gib
    st.markdown(f"**Layout alternatives** ({len(plan.layout_options)} searched; the plan's is #1)")
    st.plotly_chart(layout_figure(plan.layout_options, cap, DEFAULT_MEMORY_MARGIN, plan.placement.gpu),
                    width="stretch", key="layout_chart")
    st.dataframe(layout_table(plan.layout_options), hide_index=True)


def show_operations(plan) -> None:
    """Eval cadence and predicted loss, then checkpoint size, interval, disk and goodput."""
    o, ck = plan.operations, plan.checkpoints
    if o is None and ck is None:
        return
    st.subheader("Evaluation and checkpoints")
    if o is not None:
        c = st.columns(4)
        c[0].metric("Eval every (steps)", f"{o.eval_interval:,}", help=f"log every {o.log_interval} steps")
        c[1].metric("Eval tokens", fmt.human(o.eval_tokens), help=f"{o.eval_iters} global batches per evaluation")
        c[2].metric("Predicted final loss (nats)", f"{o.predicted_loss:.4f}" if o.predicted_loss else "n/a",
                    help="the plan's law at the chosen N and tokens: what eval should approach")
        c[3].metric("Save every (steps)", f"{o.save_interval:,}", help=o.save_interval_source)
    if ck is not None:
        c = st.columns(4)
        c[0].metric("Checkpoint size", fmt.gb(ck.checkpoint_bytes), help=f"write {ck.write_seconds:,.0f} s at "
                    f"{ck.fs_bandwidth / 1e9:.2f} GB/s")
        c[1].metric("Checkpoint interval", fmt.days(ck.interval_seconds / 86400),
                    help=f"Young/Daly at job MTBF {ck.job_mtbf_hours:,.0f} h ({ck.n_nodes} nodes)")
        c[2].metric("Disk needed", f"{ck.disk_needed_bytes / 1e12:.3g} TB",
                    help=f"keep {ck.keep}, {ck.n_checkpoints} saves")
        c[3].metric("Goodput", f"{ck.goodput:.1%}", help=f"{ck.expected_failures:.2f} failures expected")
        if plan.time_cost is not None:
            st.caption(f"Wall time with expected failures, restarts and checkpoint writes: "
                       f"{fmt.days(plan.time_cost.estimate.days / ck.goodput)}")
        with st.expander("Where the checkpoint numbers come from"):
            st.markdown("\n".join(f"- **{k}**: {v}" for k, v in ck.sources.items()))


def show_serving(plan) -> None:
    """The --serve-on cap: the largest N that serves on the target and what it costs in loss."""
    sv = plan.serving
    if sv is None:
        return
    st.subheader(f"Serving on {sv.target}")
    if sv.binding:
        st.warning(f"Serving caps N at {fmt.human(sv.n_max)} (N* {fmt.human(sv.n_opt)}): predicted loss "
                   f"{sv.loss:.4f} vs {sv.loss_opt:.4f} nats, +{sv.penalty:.2%}")
    else:
        st.success(f"Not binding: up to {fmt.human(sv.n_max)} params serve on {sv.target} "
                   f"(context {sv.context:,}, batch {sv.batch}); N* is {fmt.human(sv.n_opt)}")

