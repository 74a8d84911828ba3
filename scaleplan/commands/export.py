"""`scaleplan export`: plan.yaml -> Megatron-LM / torchtitan / Hugging Face launch files."""
from __future__ import annotations

import argparse

from planner.errors import UserError
from planner.provenance import command_line
from scaleplan.commands import emit, guards


def register(sub) -> None:
    e = sub.add_parser("export", help="plan.yaml -> Megatron-LM / torchtitan / HF launch files",
                       description="Write launch files for a plan. Reads only the plan file.")
    e.add_argument("plan", help="plan.yaml from `scaleplan plan --out`")
    e.add_argument("--trainer", required=True, choices=["megatron", "torchtitan", "hf"])
    e.add_argument("--out", required=True, type=guards.folder, help="output folder")
    e.add_argument("--megatron-mup", choices=["translate", "native"], default=None,
                   help="μP in Megatron: native --use-mup (default; Megatron-LM core_v0.17.0+, exact) or "
                        "translate into SP flags (all releases; refused when a group is off by more than 2x)")
    e.add_argument("--allow-approximate-mup", action="store_true",
                   help="Megatron translate mode: export even when a μP group is off by more than 2x "
                        "(launch.sh lists the per-group ratios)")
    e.add_argument("--allow-approximate-schedule", action="store_true",
                   help="Megatron multi-phase plans: export a phase transition Megatron cannot run exactly "
                        "(the launch file states the LR error); refused otherwise")
    e.add_argument("--flags", help="pretrain_gpt_flags.json to validate the Megatron arguments against")
    e.add_argument("--json", action="store_true", help="print what was written as JSON")
    e.add_argument("--allow-edited-plan", action="store_true",
                   help="export a plan whose content no longer matches its stored plan_hash (the files say so)")
    e.set_defaults(func=_export)


def _export(args: argparse.Namespace) -> int:
    from planner.export import export
    from planner.plan import Plan

    plan = Plan.read(args.plan)
    kw = {}
    if args.trainer == "megatron":
        kw = {"mup_mode": args.megatron_mup or "native", "flags_json_path": args.flags,
              "allow_approximate_mup": args.allow_approximate_mup,
              "allow_approximate_schedule": args.allow_approximate_schedule}
    elif args.trainer == "torchtitan":
        kw = {"allow_approximate_mup": args.allow_approximate_mup}
    if args.trainer != "megatron" and (args.megatron_mup is not None or args.flags or args.allow_approximate_schedule):
        raise UserError("--megatron-mup, --flags and --allow-approximate-schedule apply to --trainer megatron only")
    if args.trainer == "hf" and args.allow_approximate_mup:
        raise UserError("--allow-approximate-mup applies to --trainer megatron only or torchtitan (the HF config "
                        "records μP's multipliers exactly)")
    res = export(plan, args.trainer, args.out, command=command_line(), allow_edited_plan=args.allow_edited_plan, **kw)
    human = f"{args.trainer} export of plan {plan.plan_hash[:12]}:\n" + "\n".join(f"  {f}" for f in res["files"])
    emit(args, res, human)
    return 0
