"""`scaleplan loss`: the loss a law predicts for a given model and token count (:mod:`planner.loss_prediction`)."""
from __future__ import annotations

import argparse

from planner.errors import UserError
from scaleplan.commands import emit
from scaleplan.commands.count import add_shape_arguments, shape_from_args
from scaleplan.commands.shape import param_count

EPILOG = """\
examples:
  scaleplan loss --preset llama-2-7b --tokens 2T
  scaleplan loss --params 1.7B --tokens 20B --law besiroglu2024
  scaleplan loss --hf-config path/to/config.json --tokens 300B --law studies/demo/fit.json --json

N is counted as the law was fitted: total parameters for the published presets, the fit's own
column (e.g. non-embedding) for a fit.json; --params is used as given.
"""


def _line(r) -> str:
    band = f" [{r.lo:.4f}, {r.hi:.4f}] (95% {r.interval} interval)" if r.interval else ""
    return "\n".join([
        f"law {r.law}: N {r.params:.4g} ({r.params_convention}), D {r.tokens:.4g} tokens "
        f"({r.tokens_per_param:.1f} tokens/param), C = 6ND = {r.compute:.3e} FLOPs",
        f"  predicted loss  {r.loss:.4f} nats{band}",
        f"  same compute at the law's optimum: N* {r.optimal_params:.4g}, D* {r.optimal_tokens:.4g}, "
        f"loss {r.optimal_loss:.4f} nats (this model is {r.penalty:+.4f} nats, "
        f"{r.penalty / r.optimal_loss:+.2%}, above it)",
    ])


def cmd_loss(args: argparse.Namespace) -> int:
    from planner.laws import load_law
    from planner.loss_prediction import predict_loss

    law = load_law(args.law)
    shape_given = args.preset or args.hf_config or args.layers is not None
    if args.params is not None and shape_given:
        raise UserError("give the model either as --params N or as a shape (--preset, --hf-config, sizes), not both")
    if args.params is None and not shape_given:
        raise UserError("give the model: --params N (e.g. 1.7B), --preset NAME, --hf-config PATH, or the full "
                        "shape (--layers, --d-model, --d-ffn, --heads, --vocab)")
    shape = None if args.params is not None else shape_from_args(args)
    result = predict_loss(law, args.tokens, shape=shape, params=args.params)
    emit(args, result.to_dict(), _line(result))
    return 0


def register(sub) -> None:
    p = sub.add_parser("loss", help="the loss a scaling law predicts for a model and token count",
                       description="Predicted final loss (nats) of a model trained on D tokens under a law, with "
                                   "its interval when the law has bootstrap samples, and the loss the same "
                                   "compute (6ND) would reach at the law's optimal allocation.",
                       epilog=EPILOG, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--tokens", type=param_count, required=True, help="training tokens: 2e12, 2T, 20B")
    p.add_argument("--params", type=param_count, help="the model as a parameter count (instead of a shape)")
    p.add_argument("--law", default="besiroglu2024", help="law preset or fit.json (default besiroglu2024)")
    add_shape_arguments(p)
    p.add_argument("--json", action="store_true", help="print the prediction as JSON")
    p.set_defaults(func=cmd_loss)
