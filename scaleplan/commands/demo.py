"""`scaleplan demo`: the whole pipeline at toy scale into a study folder (:mod:`scaleplan.demo`)."""
from __future__ import annotations

from planner.provenance import command_line
from scaleplan.commands import add_workers_argument, emit, guards


def register(sub) -> None:
    d = sub.add_parser("demo", help="the whole pipeline at toy scale into a study folder (make demo)",
                       description="Data prepare -> coordinate check (μP, SP) -> μP LR sweep on two widths -> "
                                   "hparams.yaml -> WSD ladder with a held-out larger proxy -> fit with bootstrap "
                                   "-> plan for an example budget -> Megatron/torchtitan/HF exports. Resumable: "
                                   "finished stages are skipped. Designed for <= 20 minutes on 2 idle cores.")
    d.add_argument("--study", default="studies/demo", type=guards.folder, help="study folder (default studies/demo)")
    d.add_argument("--fast", action="store_true", help="a smaller ladder and sweep (a few minutes; for tests)")
    add_workers_argument(d, default=2, help="worker processes (2)")
    d.add_argument("--force", action="store_true", help="redo every stage")
    d.add_argument("--json", action="store_true", help="print the stage summary as JSON")
    d.set_defaults(func=cmd_demo)


def cmd_demo(args) -> int:
    from scaleplan import demo

    summary = demo.run_demo(args.study, fast=args.fast, workers=args.workers, force=args.force,
                            command=command_line())
    emit(args, summary, demo.human_summary(summary))
    return 0
