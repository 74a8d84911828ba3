"""The ``scaleplan`` command: a thin dispatcher over the library.

Each command group lives in its own module exposing ``register(subparsers)``; a handler takes the
parsed ``args`` and returns an exit code. Command modules must be cheap to import (no torch at
module level) so that ``scaleplan --help`` and the planner commands start fast.
"""
from __future__ import annotations

import argparse
import importlib
import sys

from planner import __version__
from planner.errors import UserError
from scaleplan.commands import check_workers

# Order = the workflow order shown by `scaleplan --help`.
COMMAND_MODULES = [f"scaleplan.commands.{verb}" for verb in (
    "data", "train", "attention", "coord_check",  # 1-2: corpus, one proxy run (+ its attention), μP check
    "sweep", "transfer_check", "horizon",  # 3: Optuna sweep (+ export), μTransfer check, LR vs horizon
    "ladder", "fit", "curve_law", "optimal", "loss",  # 4-6: ladder, scaling law, curve law, allocation, loss
    "plan", "export", "app",              # 7-9: plan.yaml, launch files, dashboard
    "count", "shape", "demo", "study",    # helpers
)]

WORKFLOW = """\
workflow (in order):
  1. scaleplan data prepare      tokenize a corpus (default: Python's stdlib sources)
  2. scaleplan coord-check       verify the muP parameterization (muP passes, SP fails)
  3. scaleplan sweep             tune muP base hyperparameters on small proxies (Optuna)
     scaleplan sweep export      -> hparams.yaml;  scaleplan transfer-check: muP vs SP LR drift
  4. scaleplan ladder            proxy runs across sizes x token budgets -> runs.csv
  5. scaleplan fit               Chinchilla law L(N,D) = E + A/N^alpha + B/D^beta -> fit.json
  6. scaleplan optimal           compute-optimal N*, D* for a budget or a target loss
     scaleplan loss              the loss a law predicts for a given model and token count
  7. scaleplan plan              budget -> shape, hparams, memory, layout, time, cost -> plan.yaml
  8. scaleplan export            plan.yaml -> Megatron-LM / torchtitan / HF launch files
  9. scaleplan app               the dashboard (Streamlit)
  helpers: scaleplan count | shape | demo

Loss is natural-log cross-entropy per token (nats). Every command that prints numbers has --json.
Bad input exits with status 2 and one line saying what to fix.
"""


class _Parser(argparse.ArgumentParser):
    """argparse, but a usage error is one line: what is wrong and where to look."""

    def error(self, message: str):  # noqa: D401 - argparse API
        self.exit(2, f"error: {self.prog}: {message} (see `{self.prog} --help`)\n")


def build_parser() -> argparse.ArgumentParser:
    parser = _Parser(
        prog="scaleplan",
        description="Scaling-law and hyperparameter planning workbench for LLM pretraining.",
        epilog=WORKFLOW,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("--version", action="version", version=f"scaleplan {__version__}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", parser_class=_Parser)
    for name in COMMAND_MODULES:
        importlib.import_module(name).register(sub)
    return parser


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    if not getattr(args, "func", None):
        parser.print_help()
        return 0 if args.command is None else 2
    try:
        check_workers(args)
        rc = args.func(args)
    except UserError as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    except KeyboardInterrupt as e:  # a training loop stops at a step boundary and says where (StopRequested)
        where = f" ({e})" if str(e) else ""
        print(f"interrupted{where}; finished work is kept, rerun the same command to resume", file=sys.stderr)
        return 130
    except BrokenPipeError:
        return 0
    return int(rc or 0)


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
