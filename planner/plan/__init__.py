"""The plan: a compute budget (or a published recipe) turned into a launchable pretraining run.

``make_plan(PlanRequest(...)) -> Plan`` runs named steps, one module each:

=================  =====================================================================
budget.py          ``Budget``: the compute to spend; ``Budget.from_options`` reads it from options
request.py         ``PlanRequest``: every option of `scaleplan plan`
presets.py         registered presets: name -> the PlanRequest of a published run
allocation.py      step 1: the scaling law's N*, D* (compute-optimal, inference-aware, ...)
shape_choice.py    step 2: a divisibility-aware shape near N* (or the pinned one)
training.py        step 3: global batch, steps, LR and schedule, optimizer (DeepSeek or μP)
placement.py       step 4: GPU count, TP/PP/CP/DP layout and sharding, memory per GPU
time_cost.py       step 5: time and cost at an MFU
warnings.py        the checks that add warnings
build.py           ``make_plan``: the steps in order
sections.py        the typed sections of a Plan; plan.py: ``Plan`` (plan.yaml, hash); summary.py
=================  =====================================================================

The μP per-group values at the planned width are ``HParams.at_width`` (planner/width_hparams.py).
The resulting :class:`Plan` is the only input of the exporters (planner/export/).

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
from planner.plan.budget import Budget
from planner.plan.build import make_plan
from planner.plan.plan import Plan
from planner.plan.presets import preset_names, preset_request, register_preset
from planner.plan.request import PlanRequest
from planner.plan.warnings import EXTRAPOLATION_WARN_FACTOR

__all__ = ["Budget", "Plan", "PlanRequest", "make_plan", "register_preset", "preset_request", "preset_names",
           "EXTRAPOLATION_WARN_FACTOR"]
