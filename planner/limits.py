"""Plausibility limits of numbers a user gives (issue 18: guard rails on numbers): the one source.

A value that is finite and positive can still be nonsense: ``lr 1e300`` overflows fp32, ``steps 1e300``
never ends, a width of 1e6 asks for terabytes, a price of 1e308 $/GPU-hour prints a cost of ``$inf``.
These limits are far beyond any real use. They live here, in the pure-math layer, so that
planner/ (hparams.yaml, plan requests, fits) and proxy_train/ (proxy_train/limits.py re-exports them
for the trainer) and the CLI (scaleplan/commands/guards.py) refuse at the same values.

Sources of the limits:
* widths: the widest published dense models have d_model 16384 (Llama 3 405B, arXiv:2407.21783
  Table 3) and 18432 (PaLM 540B, arXiv:2204.02311 Table 1); :data:`MAX_WIDTH` = 65536 is 4x beyond.
* depth: 126 layers (Llama 3 405B), 118 (PaLM 540B); :data:`MAX_LAYERS` = 1024.
* LR: published peak AdamW LRs are 1e-4..1e-2 and the μP sweep space is 2^-13..2^-4
  (proxy_train/sweep_space.py); :data:`MAX_LR` = 1000 still lets a run diverge on purpose (tests use
  30) and stays far from fp32's overflow (``lr 1e300`` was a RuntimeError). :data:`MIN_LR` = 1e-9: an
  AdamW step has size ~lr, and on a weight of the init scale 0.02 it is lost below the fp32 master
  weight's resolution 0.02 x 2^-24 = 1.2e-9 (IEEE 754 binary32: 24-bit significand); a plan with a
  smaller peak LR trains nothing. Init std: 0.006-0.02 published; :data:`MAX_STD` = 10.
* multipliers (α_in, α_out, attention): the sweep space is 1/8..16; :data:`MAX_MULT` = 1e4.
* training length: Llama 3 trained on ~15.6T tokens; :data:`MAX_TOKENS` = 1e15, :data:`MAX_STEPS` = 1e9.
* parameters: the largest published models have 540B dense (PaLM) and 1.6T sparse parameters (Switch-C,
  arXiv:2101.03961); :data:`MAX_PARAMS` = 1e15 is 600x beyond.
* seeds: numpy's and Optuna's samplers take 0 <= seed < 2^32.
* BPE vocab: the largest published tokenizers have 256,000 (Gemma, arXiv:2403.08295 §2) and 262,144
  entries (Gemma 3); :data:`MAX_VOCAB` = 2^20 is 4x beyond. The HF ``tokenizers`` trainer aborts the
  process (a Rust panic, SIGABRT) on a vocab_size of 1e9, so the limit is checked before it is called.
* price: on-demand H100 prices are about 2-12 US$ per GPU-hour (AWS p5.48xlarge, 8 H100, 98.32 $/h in
  2023 = 12.3 $/GPU-h); :data:`MAX_PRICE` = 1000 $/GPU-h is 80x beyond; :data:`MIN_PRICE` = 0.01 $
  (one cent, the resolution of a printed cost): a price of 0 or 1e-300 makes the cost line say nothing.
* bootstrap: 1,000-2,000 resamples give stable 95% percentile intervals (Efron & Tibshirani 1993,
  "An Introduction to the Bootstrap", ch. 13, percentile intervals); :data:`MAX_BOOTSTRAP` = 100,000 is 50x beyond.
* Huber delta of a loss fit: it is compared with residuals of log-loss (Hoffmann et al. 2022, App.
  D.2: delta 1e-3), which are below 1 for any table (a residual of 1 is a factor e in loss); beyond
  :data:`MAX_HUBER_DELTA` = 10 the fit is least squares whatever the value.
"""
from __future__ import annotations

MAX_WIDTH = 65536
MAX_LAYERS = 1024
MAX_SEQ_LEN = 2**20
MAX_BATCH = 2**20
MAX_STEPS = 10**9
MAX_TOKENS = 10**15
MAX_PARAMS = 10**15
MAX_LR = 1000.0
MIN_LR = 1e-9
MAX_STD = 10.0
MAX_MULT = 1e4
MAX_WD = 100.0
MAX_SEED = 2**32 - 1
MAX_TRIALS = 10**6
MAX_SECONDS = 7 * 86400
MAX_VOCAB = 2**20
#: Corpus cap for ``data prepare`` (MiB): 1 TiB; proxy corpora are megabytes to a few gigabytes.
MAX_MB = 2.0**20
#: Coordinate check: every width is trained on CPU for a few steps; 16384 (2.4 GB of fp32 AdamW state
#: for a 2-layer proxy) is already minutes; μP's check needs only a width ratio of 8-16.
MAX_COORD_WIDTH = 16384
MIN_PRICE = 0.01
MAX_PRICE = 1000.0
MAX_BOOTSTRAP = 100_000
MAX_HUBER_DELTA = 10.0
#: Sizes of one scaling ladder: published ladders have tens of sizes at most (Hoffmann et al. 2022
#: trained over 400 models in all, from 70M to 16B parameters); every size costs proxy runs.
MAX_LADDER_SIZES = 100
#: ``scaleplan ladder --budget-minutes``: 1e5 minutes = 69 days of one machine. The budget mode
#: calibrates this machine and trains proxies on it; runs that long belong on a cluster with explicit
#: ``--flops`` budgets (and the 4-epoch data cap of a proxy corpus binds long before).
MAX_BUDGET_MINUTES = 1e5
#: ... and at least 0.1 minutes: the calibration alone takes 5-7 s on this 2-core machine
#: (studies/demo_budget/ladder_budget.json), so a smaller budget is refused before it runs.
MIN_BUDGET_MINUTES = 0.1
