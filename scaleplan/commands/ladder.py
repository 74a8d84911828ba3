"""`scaleplan ladder`: proxy runs across sizes x budgets -> runs.csv, then the held-out check.

No torch at module level: the handler imports :mod:`proxy_train.ladder`.
"""
from __future__ import annotations

import argparse

from planner.limits import MAX_BOOTSTRAP, MAX_BUDGET_MINUTES, MAX_LADDER_SIZES, MIN_BUDGET_MINUTES
from planner.provenance import command_line
from scaleplan.commands import add_workers_argument, emit, guards, positive_float
from scaleplan.commands.ladder_queue import add_queue_arguments
from planner.errors import UserError

LADDER_EPILOG = """\
Sizes: auto = --n-sizes shapes log-spaced over --n-range non-embedding params, by width at the hparams'
base depth (--depth free: search_shapes with the hparams' head size, re-ranked by the trainer's exact
count); or d_model:n_layers pairs (64:2,128:3); or
non-embedding counts (2e4,1e5). Budgets: --tokens-per-param m1,m2 (D = m x N_non-embedding) or --flops
C1,C2 (D = C / (6 N_total)); pairs under one step or over 4 epochs of the data are skipped (listed).
WSD (default): one stable phase per size, a 20% cooldown branched at each budget; cosine: separate runs.
Budget mode: --budget-minutes M (instead of --sizes/--tokens-per-param/--flops) times a few steps per
width on this machine (cached in STUDY/ladder_budget.json), then picks the sizes and tokens/param that
cover the most decades of N and D within M minutes on --workers workers (proxy_train/ladder_budget.py).
Resumable: rerun the same command; runs.csv is rebuilt from the atomically written run.json files.
Then: scaleplan fit STUDY/runs.csv --n-col non_embedding_params --d-col tokens --loss-col final_val_loss
"""


def _range(text: str) -> tuple[float, float]:
    try:
        lo, hi = (float(t) for t in text.split(","))
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected LO,HI like 1.2e4,4e5, got {text!r}") from None
    if not (0 < lo < hi):
        raise argparse.ArgumentTypeError(f"expected 0 < LO < HI, got {text!r}")
    return lo, hi


def register(sub) -> None:
    p = sub.add_parser("ladder", help="proxy runs across model sizes x token budgets -> runs.csv (WSD branches)",
                       description="Train a scaling-law ladder of μP proxies (hyperparameters from hparams.yaml, "
                                   "transferred to each width), write STUDY/runs.csv as results arrive, then fit "
                                   "on all but the highest-compute runs and predict those (holdout.json).",
                       epilog=LADDER_EPILOG, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--study", required=True, type=guards.folder,
                   help="study folder (runs/, runs.csv, study.yaml, holdout.json)")
    p.add_argument("--data", help="data folder from `scaleplan data prepare` (needed unless the ladder is queued)")
    p.add_argument("--hparams", help="hparams.yaml from `scaleplan sweep export` (μP; needed with --data)")
    p.add_argument("--sizes", default=None, help="auto | d_model:n_layers,... | non-embedding counts (auto)")
    p.add_argument("--n-sizes", type=guards.bounded_int(1, MAX_LADDER_SIZES, why="every size costs proxy runs"),
                   default=None, help="number of sizes for --sizes auto (5)")
    p.add_argument("--n-range", type=_range, default=None, metavar="LO,HI",
                   help="non-embedding param range for --sizes auto (default 1.2e4,4e5: 1.5 decades)")
    p.add_argument("--depth", default="base",
                   help="n_layers of auto/count sizes: base (the hparams' base_depth: μP transfers across width, "
                        "not depth; default), free (search_shapes picks depth too) or an integer")
    b = p.add_mutually_exclusive_group()
    b.add_argument("--tokens-per-param", help="budgets as multiples of N_non-embedding (default 5,7,10,14,20)")
    b.add_argument("--flops", help="isoFLOP budgets C1,C2,...: D = C / (6 N_total) per size")
    p.add_argument("--budget-minutes", metavar="M",
                   type=guards.bounded_float(MIN_BUDGET_MINUTES, MAX_BUDGET_MINUTES, lo_open=False, what="minutes",
                                             why="the budget mode plans proxies for one machine"),
                   help="choose sizes and budgets for M minutes of wall time on this machine (excludes --sizes, "
                        "--n-sizes, --n-range, --tokens-per-param, --flops)")
    p.add_argument("--schedule", choices=("wsd", "cosine"), default="wsd", help="wsd branches (default) or cosine")
    p.add_argument("--cooldown-frac", type=positive_float, default=0.2, help="WSD cooldown fraction (0.2)")
    p.add_argument("--batch", type=guards.batch, default=16, help="sequences per step, all runs (16)")
    p.add_argument("--seq-len", type=guards.seq_len, default=128, help="tokens per sequence (128)")
    p.add_argument("--seed", type=guards.seed, default=0, help="model seed of every run (0)")
    add_workers_argument(p, default=2, help="local worker processes, 1 thread each (2)")
    p.add_argument("--holdout-extra", action="store_true",
                   help="also train one larger held-out proxy with >= 4x the largest fitted compute")
    p.add_argument("--holdout-top", type=guards.bounded_int(0, 10**6), default=2, metavar="K",
                   help="highest-compute ladder runs held out of the check's fit (2)")
    p.add_argument("--bootstrap", type=guards.bounded_int(1, MAX_BOOTSTRAP), default=200,
                   help="bootstrap resamples of the check (200)")
    p.add_argument("--evals-per-run", type=guards.bounded_int(1, 1000, why="each evaluation costs eval batches"),
                   default=4, metavar="K", help="validation evaluations over each task's smallest budget (4); "
                   "`scaleplan curve-law` fits whole curves: give it 16 or more")
    p.add_argument("--no-check", action="store_true", help="skip the held-out check after the ladder")
    p.add_argument("--plan-only", action="store_true",
                   help="print the sizes and points, train nothing (with --budget-minutes: calibrates and caches "
                        "the timings in STUDY/ladder_budget.json)")
    p.add_argument("--parquet", action="store_true", help="also write runs.parquet")
    p.add_argument("--json", action="store_true", help="print the summary as JSON")
    add_queue_arguments(p)
    p.set_defaults(func=cmd_ladder)


def cmd_ladder(args) -> int:
    from proxy_train.study import check_study_folder
    from scaleplan.commands.ladder_queue import cmd_queue, is_queue_mode

    check_study_folder(args.study)  # a data or run folder is refused before anything is written
    if args.budget_minutes is not None and is_queue_mode(args):
        raise UserError("--budget-minutes calibrates and plans for local workers on this machine; for a queue give "
                        "--sizes and --tokens-per-param (or --flops), e.g. those a --budget-minutes --plan-only chose")
    if is_queue_mode(args):
        return cmd_queue(args, load_spec=load_ladder_spec, holdout_lines=holdout_lines)
    if not args.data or not args.hparams:
        raise UserError("--data and --hparams are required to plan or train a ladder (a queue worker or "
                        "--status needs neither: see --worker)")
    if args.budget_minutes is not None:
        spec, choice = _budget_spec(args)
        return _cmd_local(args, spec, choice)
    return _cmd_local(args, load_ladder_spec(args))


def load_ladder_spec(args):
    """The LadderSpec of the planning options (UserError on bad input)."""
    from proxy_train import ladder

    if args.holdout_top < 0:
        raise UserError(f"--holdout-top must be >= 0, got {args.holdout_top}")
    if not (0 < args.cooldown_frac < 1):
        raise UserError(f"--cooldown-frac must be in (0, 1), got {args.cooldown_frac}")
    spec = ladder.load_spec(data=args.data, hparams=args.hparams, sizes=args.sizes or "auto",
                            n_sizes=args.n_sizes or 5, n_range=args.n_range or ladder.DEFAULT_N_RANGE,
                            tokens_per_param=args.tokens_per_param,
                            flops=args.flops, schedule=args.schedule, batch=args.batch, seq_len=args.seq_len,
                            cooldown_frac=args.cooldown_frac, seed=args.seed, holdout_extra=args.holdout_extra,
                            depth=args.depth)
    spec.holdout_top = args.holdout_top
    spec.evals_per_run = args.evals_per_run
    return spec


def _budget_spec(args):
    """Budget mode: calibrate (or reuse STUDY/ladder_budget.json), choose, and the spec of the choice."""
    from pathlib import Path

    from proxy_train import ladder_budget
    from proxy_train.ladder_budget_cal import calibration_for, save_cached

    given = [f for f, v in (("--sizes", args.sizes), ("--n-sizes", args.n_sizes), ("--n-range", args.n_range),
                            ("--tokens-per-param", args.tokens_per_param), ("--flops", args.flops)) if v is not None]
    if given:
        raise UserError(f"--budget-minutes chooses the sizes and budgets itself; drop {', '.join(given)} "
                        "(or drop --budget-minutes to give them explicitly)")
    base = load_ladder_spec(args)
    depth = base.depth or (base.hp.base_depth if base.hp is not None else None) or base.sizes[0].n_layers
    study = Path(args.study)
    cal, reused, key = calibration_for(base, study, budget_minutes=args.budget_minutes, workers=args.workers,
                                       depth=depth, progress=not args.json)
    choice = ladder_budget.choose(base, cal, 60.0 * args.budget_minutes, args.workers, depth=depth)
    choice.reused_calibration = reused
    if not reused:
        save_cached(study, key, cal)  # creates the study folder: only once a ladder was chosen
    return ladder_budget.budget_spec(base, choice), choice


def _budget_lines(choice) -> list[str]:
    from proxy_train.ladder_budget import choice_lines

    lines = choice_lines(choice)
    if choice.reused_calibration:
        lines[0] += " [reused from ladder_budget.json]"
    return lines


def _cmd_local(args, spec, budget=None) -> int:
    import sys
    from pathlib import Path

    from proxy_train import ladder

    head = _budget_lines(budget) if budget is not None else []
    if args.plan_only:
        points, skipped = ladder.plan_points(spec)
        payload = {"sizes": [{"name": s.name, "non_embedding_params": s.non_embedding_params,
                              "total_params": s.total_params} for s in spec.sizes],
                   "points": [{"size": p.size.name, "tokens": p.tokens, "steps": p.steps, "role": p.role}
                              for p in points], "skipped": skipped}
        if budget is not None:
            payload["budget"] = budget.to_dict()
        lines = head + [f"{s.name}: N_non-emb {s.non_embedding_params:,}, N_total {s.total_params:,}"
                        for s in spec.sizes]
        lines += [f"  {p.role} {p.size.name}: {p.tokens:,} tokens ({p.steps} steps)" for p in points]
        lines += [f"  skipped {k['size']} {k['tokens']:,} tokens: {k['reason']}" for k in skipped]
        emit(args, payload, "\n".join(lines))
        return 0
    if budget is not None:
        if not args.json:
            print("\n".join(head), file=sys.stderr, flush=True)
        ladder.update_study_yaml(Path(args.study), "ladder_budget", budget.to_dict())
    summary = ladder.run_ladder(spec, args.study, workers=args.workers, parquet=args.parquet,
                                command=command_line(), progress=True)
    if budget is not None:
        rec = {**budget.to_dict(), "measured_minutes": summary["wall_s"] / 60.0}
        ladder.update_study_yaml(Path(args.study), "ladder_budget", rec)
        summary["budget"] = rec
        head.append(f"  measured {summary['wall_s'] / 60:.1f} min of training (this invocation) vs predicted "
                    f"{budget.design.seconds / 60:.1f} min")
    lines = [f"ladder {args.study}: {summary['ok']} ok / {summary['points']} points "
             f"({summary['finished_before']} already done, {summary['diverged']} diverged), sizes "
             f"{', '.join(summary['sizes'])} ({summary['non_embedding_decades']:.2f} decades of N_non-emb), "
             f"schedule {summary['schedule']}",
             f"  compute used {summary['compute_used']:.3g} FLOPs vs {summary['compute_separate_runs']:.3g} as "
             f"separate runs ({summary['compute_used'] / max(summary['compute_separate_runs'], 1):.2f}x); "
             f"wall {summary['wall_s']:.0f} s",
             f"  wrote {summary['runs_table']}"]
    lines = head + lines
    lines += [f"  skipped {k['size']} {k['tokens']:,} tokens: {k['reason']}" for k in summary["skipped_pairs"]]
    if not args.no_check:
        lines += holdout_lines(args, summary)
    emit(args, summary, "\n".join(lines))
    return 0


def holdout_lines(args, summary: dict) -> list[str]:
    """Run the held-out check (planner.holdout) on the finished ladder; its summary lines."""
    from planner.fit import ChinchillaFitter
    from planner.holdout import holdout_check

    try:
        h = holdout_check(args.study, fitter=ChinchillaFitter(bootstrap=args.bootstrap, seed=0, n_jobs=2),
                          top=args.holdout_top)
    except UserError as e:
        summary["holdout"] = {"skipped": str(e)}
        return [f"  held-out check skipped: {e}"]
    summary["holdout"] = {k: v for k, v in h.to_dict().items() if k != "fit"}
    lines = [f"  held-out check: fit on {h.n_fit} runs, {h.n_heldout} held out: max |error| "
             f"{h.max_abs_rel_error:.2%} (goal {h.goal_max_abs_rel_error:.1%}: {'met' if h.goal_met else 'missed'}), "
             f"{h.frac_inside_interval:.0%} inside the 95% interval; wrote {args.study}/holdout.json"]
    for r in h.rows:
        lines.append(f"    {r.run_id}: measured {r.measured:.4f}, predicted {r.predicted:.4f} "
                     f"[{r.lo:.4f}, {r.hi:.4f}], error {r.rel_error:+.2%}, "
                     f"{r.compute_vs_max_fitted:.1f}x the largest fitted compute")
    return lines
