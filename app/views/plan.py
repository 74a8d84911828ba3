"""Plan page: a compute budget -> a launchable plan, with the evidence behind each number.

Every number comes from :func:`planner.plan.make_plan` (allocation, shape search, the near-optimal
band and its shape x layout options, law sensitivity, μP transfer, layout alternatives, memory,
time, cost, eval cadence, checkpoints and goodput, the serving cap, warnings); this page only
collects inputs, formats and plots results (sections and tables: app/planview.py,
app/trainer_table.py and app/data_view.py, figures: app/figures.py), and offers the exporters' files as downloads. A
plan takes about a second (one layout search per shape in the band), so the page recomputes on
every change (no submit button).
"""
from __future__ import annotations

import dataclasses

import streamlit as st

from app import exports, fmt, loaders, state
from app.data_view import mixture_input, show_repetition
from app.figures import memory_bar
from app.phase_figures import plan_phase_figure
from app.planview import (candidates_table, choice_inputs, hparams_gate, hparams_stated, hparams_table,
                           memory_components, show_band, show_layouts, show_operations, show_sensitivity,
                           show_serving)
from app.trainer_table import show_trainer_table
from planner.errors import UserError
from planner.hardware import get_gpu, list_gpus
from planner.laws import DEFAULT_LAW, PRESETS

st.title("Plan: from a compute budget to a launchable run")
root = st.session_state.get("studies_root")
study = st.session_state.get("study")

# ------------------------------------------------------------------ inputs
law_options: dict[str, object] = {f"{k} (published)": k for k in PRESETS}
for name in state.list_studies(root) if root else []:
    # a fit.json that leads outside its study is left out (and shown as an error on its own study only)
    fit_path = loaders.study_file(state.inside(root, name), *loaders.FIT_FILES,
                                  show=study is not None and name == study.name)
    if fit_path is not None:
        law_options = {f"{name}: fit.json (fitted)": (name, fit_path), **law_options}
law_labels = list(law_options)
# The study's own fit is the default law only when its fit raised no warning (e.g. an unidentified
# loss floor): a toy ladder's law is listed, but a plan should not start from it unasked.
study_fit_label = next((lab for lab in law_labels if study is not None and lab.startswith(f"{study.name}:")), None)
study_fit_warnings: list[str] = []
if study_fit_label:
    try:
        study_fit_warnings = loaders.load_fitted_law(law_options[study_fit_label][1]).meta.get("warnings") or []
    except UserError as e:  # a corrupt fit.json: listed, never the default; choosing it shows the error
        study_fit_warnings = [str(e)]
# A reference study (published runs imported by `scaleplan study import`) describes someone else's
# data and tokenizer at small scale: listed for comparison, never the default law of a plan.
study_is_reference = loaders.load_reference(study) is not None
default_law = law_labels.index(study_fit_label if study_fit_label and not study_fit_warnings
                               and not study_is_reference else f"{DEFAULT_LAW} (published)")
gpu_names = [g.name for g in list_gpus()]

left, right = st.columns([1, 2.2], gap="large")
with left:
    st.subheader("Budget")
    mode = st.radio("Budget as", ["FLOPs", "GPUs × days", "GPU-hours"], horizontal=True, key="budget_mode")
    gpu_name = st.selectbox("GPU type", gpu_names, index=gpu_names.index("H100-SXM"), key="gpu")
    gpu = get_gpu(gpu_name)
    mfu_auto = st.checkbox("MFU estimated per layout", value=True, key="mfu_auto",
                           help="each searched layout's modelled MFU (planner/parallel/throughput.py), as "
                                "`scaleplan plan` does without --mfu; off: one MFU for every layout")
    mfu = st.slider("MFU (model FLOPs utilisation)", 0.10, 0.70, float(gpu.default_mfu), 0.01, key="mfu",
                    disabled=mfu_auto, help="fraction of the GPU's dense BF16 peak the run achieves; also "
                    "converts a GPU-time budget to FLOPs; defaults: planner/cost.py")
    mfu = None if mfu_auto else float(mfu)
    n_gpus = None
    if mode == "FLOPs":
        flops = st.number_input("Compute budget C (FLOPs)", min_value=1e17, max_value=1e28, value=1e22,
                                format="%.3e", key="flops")
        budget_options = {"flops": float(flops)}
        n_gpus = st.number_input("GPUs (0 = pick for ~30 days)", min_value=0, max_value=100_000, value=0, step=8,
                                 key="n_gpus_flops") or None
    elif mode == "GPUs × days":
        n_gpus = st.number_input("GPUs", min_value=1, max_value=100_000, value=256, step=8, key="n_gpus")
        days = st.number_input("Days", min_value=0.01, max_value=3650.0, value=30.0, key="days")
        budget_options = {"gpus": int(n_gpus), "days": float(days)}
    else:
        hours = st.number_input("GPU-hours", min_value=1.0, max_value=1e10, value=1e5, format="%.3e", key="gpu_hours")
        budget_options = {"gpu_hours": float(hours)}
        n_gpus = st.number_input("GPUs (0 = pick for ~30 days)", min_value=0, max_value=100_000, value=0, step=8,
                                 key="n_gpus_hours") or None
    law_label = st.selectbox("Scaling law", law_labels, index=default_law, key="law",
                             help="a published law or a study's fit.json (`scaleplan fit`)")
    if study_fit_warnings and law_label != study_fit_label:
        st.caption(f"{study_fit_label} is not the default: {study_fit_warnings[0]}")
    hp_path = loaders.study_file(study, *loaders.HPARAMS_FILES)
    gate = hparams_gate(hp_path) if hp_path is not None else None
    use_hp = hp_path is not None and st.checkbox(
        f"μP hyperparameters from {study.name}/hparams.yaml", value=gate.passes, key="use_hparams",
        help="preselected only when the file passes the transfer quality gate (planner/hparams_gate.py); "
             "ticked anyway, the plan applies them with a warning (as `scaleplan plan --force-hparams`)")
    if gate is not None:
        st.caption(gate.caption)
    with st.expander("Options"):
        inference = st.number_input("Inference tokens over the model's life (0 = ignore)", min_value=0.0,
                                    value=0.0, format="%.3e", key="inference_tokens")
        unique = st.number_input("Unique tokens available (0 = unlimited)", min_value=0.0, value=0.0,
                                 format="%.3e", key="unique_tokens")
        seq_len = st.selectbox("Sequence length (tokens)", [1024, 2048, 4096, 8192, 16384], index=2, key="seq_len")
        vocab = st.number_input("Vocabulary size", min_value=256, max_value=1_000_000, value=32000, step=1, key="vocab")
        tp_choice = st.selectbox("Tensor parallel (TP)", ["auto", 1, 2, 4, 8], key="tp")
        schedule = st.selectbox("LR schedule", ["cosine", "wsd"], key="schedule")
        price = st.number_input("Price per GPU-hour ($, 0 = placeholder)", min_value=0.0, value=0.0, step=0.1,
                                key="price")
        try:
            mixture, mixture_error = mixture_input(), None
        except UserError as e:  # shown next to the plan; the plan is made without the mixture
            mixture, mixture_error = None, str(e)
    choice_options = choice_inputs(gpu_names)

# ------------------------------------------------------------------ the plan
plan, error = None, None
try:
    law = law_options[law_label]
    if isinstance(law, tuple):  # a study's fit.json, named after the study (cached object: copy)
        law = dataclasses.replace(loaders.load_fitted_law(law[1]), name=f"{law[0]} fit")
    from planner.plan import Budget, PlanRequest, make_plan

    plan = make_plan(PlanRequest(
        budget=Budget.from_options(**budget_options, gpu=gpu.name, mfu=mfu), law=law,
        hparams=str(hp_path) if use_hp else None, gpu=gpu.name, n_gpus=int(n_gpus) if n_gpus else None,
        inference_tokens=float(inference), unique_tokens=float(unique) or None, seq_len=int(seq_len),
        vocab=int(vocab), tp=None if tp_choice == "auto" else int(tp_choice), mfu=mfu,
        price_per_gpu_hour=float(price) or None, schedule=schedule, **choice_options,
        force_hparams=bool(use_hp and not gate.passes),
        data_sources=mixture,
        command="scaleplan app (Plan page)"))
except UserError as e:
    error = str(e)

with right:
    if error:
        st.error(f"Cannot plan this: {error}")
    if mixture_error:
        st.error(f"Data mixture not used: {mixture_error}")
    if plan is not None:
        a, s, t = plan.allocation, plan.shape, plan.training
        ci = a.ci
        st.subheader(f"Compute-optimal allocation ({a.mode}, law {a.law})")
        c = st.columns(4)
        c[0].metric("N* (params)", fmt.human(a.N), help=fmt.interval(*ci["N"]) if "N" in ci else None)
        c[1].metric("D* (tokens)", fmt.human(a.D), help=fmt.interval(*ci["D"]) if "D" in ci else None)
        c[2].metric("Tokens per param", f"{a.tokens_per_param or 0:.1f}")
        c[3].metric("Predicted loss (nats)", f"{a.loss:.3f}" if a.loss is not None else "n/a")
        if ci:
            st.caption("95% bootstrap intervals: " + "; ".join(
                f"{k} {fmt.interval(*v, f=(lambda x: f'{x:.3f}') if k == 'loss' else fmt.human)}"
                for k, v in ci.items() if k in ("N", "D", "tokens_per_param", "loss")))
        st.caption(f"Budget {fmt.flops(plan.budget.flops)} FLOPs ({plan.budget.how}). "
                   f"Law source: {a.law_source or a.source or ''}")

        st.subheader(f"Model: {fmt.human(s.total_params)} params, {fmt.human(plan.tokens)} tokens")
        st.markdown(f"**{s.n_layers} layers**, d_model **{s.d_model}**, ffn {s.d_ffn}, heads {s.n_heads} "
                    f"({s.n_kv_heads} kv, head dim {s.head_dim}), vocab {s.vocab_size:,} → {s.padded_vocab:,} padded, "
                    f"seq {s.seq_len:,}; {fmt.human(s.non_embedding_params)} non-embedding params; "
                    f"{plan.tokens / s.total_params:.1f} tokens/param")
        if plan.candidates:
            st.caption("Chosen shape (first row) and runner-ups; ✓ = divisibility rule met")
            st.dataframe(candidates_table(plan.candidates), hide_index=True)
        show_band(plan, law)
        show_sensitivity(plan)
        show_serving(plan)

        st.subheader("Training recipe")
        st.markdown(
            f"Global batch **{t.global_batch:,}** × {t.seq_len:,} = {fmt.human(t.batch_tokens)} "
            f"tokens/step, **{t.train_iters:,} steps**; {t.schedule} LR {t.lr:.3g} → {t.min_lr:.3g}, "
            f"warmup {t.warmup_iters:,} steps; AdamW β {tuple(t.betas)}, wd {t.weight_decay:g}, "
            f"clip {t.clip_grad:g}. LR from: {t.lr_source}")
        if plan.hparams is not None:
            st.caption(f"μP hyperparameters transferred to width {plan.hparams.d_model} "
                       f"(m_d = {plan.hparams.m_d:.3g}) per parameter group")
            st.dataframe(hparams_table(plan.hparams), hide_index=True)
            if use_hp:
                st.caption(hparams_stated(hp_path, plan.hparams.d_model))
            show_trainer_table(plan)
        if (fig := plan_phase_figure(plan)) is not None:
            st.caption("Learning rate over the whole run, phase by phase (planner/plan/phases.py)")
            st.plotly_chart(fig, width="stretch", key="phase_lr_chart")
        show_repetition(plan)

        place, lay, mem = plan.placement, plan.layout, plan.memory
        st.subheader("Layout, memory, time and cost")
        m1, m2 = st.columns([1.2, 1])
        with m1:
            if mem is not None:
                st.plotly_chart(memory_bar(memory_components(mem), mem.capacity_bytes, place.gpu),
                                width="stretch", key="memory_chart")
        with m2:
            st.markdown(f"**{place.n_gpus} × {place.gpu}**: TP {lay.tp}, PP {lay.pp}, CP {lay.cp}, DP {lay.dp}; "
                        f"micro-batch {lay.micro_batch}, sharding {place.sharding}, recompute {lay.recompute}")
            if plan.time_cost is not None:
                tc = plan.time_cost.estimate
                st.metric("Wall-clock", fmt.days(tc.days))
                st.metric("GPU-hours", fmt.human(tc.gpu_hours))
                st.metric("Cost" + (" (placeholder price)" if plan.time_cost.price_is_placeholder else ""),
                          fmt.money(tc.cost), help=f"${tc.price_per_gpu_hour:.2f} per GPU-hour at MFU {tc.mfu:.0%}")
        show_layouts(plan)
        show_operations(plan)
        for w in plan.warnings:
            st.warning(w)

        st.subheader("Launch files")
        st.caption(f"plan hash {plan.plan_hash[:12]}; every exported file carries it in its header")
        d = st.columns(5)
        d[0].download_button("plan.yaml", plan.to_yaml(), file_name="plan.yaml", mime="text/yaml",
                             key="dl_plan", on_click="ignore")
        for col, trainer in zip(d[1:4], ("megatron", "torchtitan", "hf")):
            def _zip(trainer=trainer, plan=plan):
                return exports.zip_bytes(exports.export_files(plan, trainer), f"{trainer}_{plan.plan_hash[:8]}")

            col.download_button(f"{exports.SHORT[trainer]} (zip)", _zip, file_name=f"{trainer}.zip",
                                mime="application/zip", key=f"dl_{trainer}", on_click="ignore")

        def _launch(plan=plan):
            return exports.export_files(plan, "megatron")[exports.MAIN_FILE["megatron"]]

        d[4].download_button("launch.sh", _launch, file_name="launch.sh", mime="text/x-shellscript",
                             key="dl_megatron_sh", on_click="ignore")
