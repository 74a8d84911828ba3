"""`scaleplan optimal`: compute-optimal N*, D* for a FLOPs budget or a target loss.

Options add the inference-aware answer (Sardana et al. 2024: --inference-tokens) and the
data-constrained one (Muennighoff et al. 2023: --unique-tokens). ``--plot`` writes the iso-FLOP
loss profile with the chosen points as a plotly HTML page.
"""
from __future__ import annotations

import argparse
import math

from scaleplan.commands import emit, output_file
from scaleplan.commands.guards import bounded_float
from planner.errors import UserError


#: Plausible ranges (issue 18: guard rails on numbers). The largest reported training runs used
#: ~4e25 FLOPs (Llama 3 405B: 3.8e25, arXiv:2407.21783 §1); 1e35 is ten billion times that. All
#: public human text is estimated at ~3e14 tokens (Villalobos et al. 2024, arXiv:2211.04325), so 1e18
#: unique tokens is beyond any corpus; 1e21 inference tokens is a million tokens per second for 30
#: million years. k in C = k N D is 6 for training (2 forward + 4 backward matmul FLOPs per weight).
FLOPS = bounded_float(0, 1e35, what="FLOPs", why="the largest reported training run used ~4e25")
LOSS = bounded_float(0, 1e3, what="nats", why="a uniform guess over a 10^6-token vocab is 13.8 nats")
UNIQUE_TOKENS = bounded_float(1, 1e18, lo_open=False, what="tokens", why="all public text is ~3e14 tokens")
INFERENCE_TOKENS = bounded_float(0, 1e21, lo_open=False, what="tokens")
K = bounded_float(0, 100, what="FLOPs per token per parameter", why="training is 6, 8 with full recompute")


def check_allocation(alloc, what: str) -> None:
    """UserError when the law's answer is not a model: fewer than one parameter or token, or not finite."""
    vals = {"N": alloc.N, "D": alloc.D, "loss": alloc.loss}
    if not all(math.isfinite(v) for v in vals.values()) or alloc.N < 1 or alloc.D < 1:
        raise UserError(f"{what} gives N = {alloc.N:.3g} params and D = {alloc.D:.3g} tokens under this law: not a "
                        "model; ask for a larger budget (or a loss nearer the law's fitted range)")


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "optimal", help="compute-optimal params/tokens for a FLOPs budget or a target loss",
        description="Compute-optimal allocation under a Chinchilla-form law L(N,D) = E + A/N^alpha + "
                    "B/D^beta (loss in nats, C = 6 N D FLOPs). Give --flops or --target-loss.",
        epilog="examples:\n  scaleplan optimal --flops 1e23\n"
               "  scaleplan optimal --law besiroglu2024 --target-loss 2.1 --json\n"
               "  scaleplan optimal --flops 1e23 --inference-tokens 2e12 --unique-tokens 3e11\n"
               "  scaleplan optimal --list-laws",
        formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--law", default="besiroglu2024",
                   help="preset name or a fit.json from `scaleplan fit` (default: besiroglu2024, see --list-laws)")
    goal = p.add_mutually_exclusive_group()
    goal.add_argument("--flops", type=FLOPS, metavar="C", help="training compute budget in FLOPs")
    goal.add_argument("--target-loss", type=LOSS, metavar="L", help="target loss in nats")
    p.add_argument("--inference-tokens", type=INFERENCE_TOKENS, metavar="T",
                   help="tokens the model will serve: add the inference-aware size (Sardana et al. 2024)")
    p.add_argument("--unique-tokens", type=UNIQUE_TOKENS, metavar="U",
                   help="unique training tokens available: add the data-constrained allocation "
                        "(Muennighoff et al. 2023; needs --flops)")
    p.add_argument("--flops-per-token-per-param", type=K, default=6.0, metavar="K",
                   help="k in C = k N D (default 6)")
    p.add_argument("--plot", type=output_file, metavar="HTML",
                   help="write the iso-FLOP loss profile (plotly) to this .html file")
    p.add_argument("--list-laws", action="store_true", help="list the preset laws with their sources")
    p.add_argument("--json", action="store_true", help="print JSON instead of a table")
    p.set_defaults(func=run)


def _fmt(x: float) -> str:
    return f"{x:.4g}" if abs(x) < 1e4 else f"{x:.3e}"


def _table(rows: list[tuple[str, float, str]]) -> str:
    w = max(len(r[0]) for r in rows)
    return "\n".join(f"  {name:<{w}}  {_fmt(v):>11}  {unit}" for name, v, unit in rows)


def _ci_text(ci: dict) -> str:
    parts = [f"{k} [{_fmt(v[0])}, {_fmt(v[1])}]" for k, v in ci.items() if k != "n_reachable"]
    return "  95% CI (bootstrap): " + "; ".join(parts) if parts else ""


def run(args: argparse.Namespace) -> int:
    from planner.laws import list_presets, load_law

    if args.list_laws:
        presets = list_presets()
        human = "\n".join(f"{p['name']:<16} E={p['E']:.4g} A={p['A']:.4g} B={p['B']:.4g} "
                          f"alpha={p['alpha']:.4g} beta={p['beta']:.4g}\n    {p['source']}" for p in presets)
        emit(args, {"laws": presets}, human)
        return 0
    if args.flops is None and args.target_loss is None:
        raise UserError("give --flops C or --target-loss L (or --list-laws); see `scaleplan optimal --help`")
    if args.unique_tokens is not None and args.flops is None:
        raise UserError("--unique-tokens needs --flops (the data-constrained allocation is for a budget)")

    law = load_law(args.law)
    k = args.flops_per_token_per_param
    alloc = law.optimal(args.flops, k) if args.flops is not None else law.optimal_for_loss(args.target_loss, k)
    check_allocation(alloc, f"--flops {args.flops:g}" if args.flops is not None else
                     f"--target-loss {args.target_loss:g}")
    payload = {"law": law.name, "law_source": law.source, **alloc.to_dict(),
               "units": {"N": "params", "D": "tokens", "C": "FLOPs", "loss": "nats"}}
    lines = [f"compute-optimal allocation ({law.name}; C = {_fmt(k)} N D)",
             _table([("params N", alloc.N, "params"), ("tokens D", alloc.D, "tokens"),
                     ("tokens/param", alloc.tokens_per_param, ""), ("compute C", alloc.C, "FLOPs"),
                     ("loss", alloc.loss, "nats")])]
    if alloc.ci:
        lines.append(_ci_text(alloc.ci))

    if args.inference_tokens is not None:
        from planner.inference_aware import inference_optimal

        inf = inference_optimal(law, alloc.loss, args.inference_tokens, train_flops_per_token_per_param=k)
        payload["inference_aware"] = inf.to_dict()
        lines += [f"inference-aware (same loss, {_fmt(args.inference_tokens)} inference tokens; Sardana et al. 2024)",
                  _table([("params N", inf.N, "params"), ("tokens D", inf.D, "tokens"),
                          ("tokens/param", inf.tokens_per_param, ""),
                          ("train FLOPs", inf.train_flops, "FLOPs"), ("total FLOPs", inf.total_flops, "FLOPs"),
                          ("savings", inf.savings_flops, f"FLOPs ({100 * inf.savings_frac:.1f}% of "
                                                         f"{_fmt(inf.chinchilla_total_flops)})")])]

    dc = None
    if args.unique_tokens is not None:
        from planner.data_constrained import data_constrained_law

        dc = data_constrained_law(law).optimal(args.flops, args.unique_tokens, k)
        payload["data_constrained"] = dc.to_dict()
        lines += [f"data-constrained ({_fmt(args.unique_tokens)} unique tokens; Muennighoff et al. 2023 "
                  "R_D* 15.39, R_N* 5.31)",
                  _table([("params N", dc.N, "params"), ("tokens D", dc.D, "tokens"),
                          ("epochs", dc.epochs, ""), ("loss", dc.loss, "nats"),
                          ("loss penalty", dc.loss_penalty, "nats vs unconstrained")])]

    if args.plot:
        path = _plot(args.plot, law, alloc, dc)
        payload["plot"] = str(path)
        lines.append(f"plot: {path}")
    emit(args, payload, "\n".join(lines))
    return 0


def _plot(path: str, law, alloc, dc):
    """Loss along the iso-FLOP curve C = k N D, the optimum marked (plotly HTML)."""
    import numpy as np
    import plotly.graph_objects as go

    from planner import __version__
    from planner.io import atomic_write
    from planner.provenance import command_line

    C, k = alloc.C, alloc.flops_per_token_per_param
    N = np.logspace(math.log10(alloc.N) - 2, math.log10(alloc.N) + 2, 200)
    fig = go.Figure()
    fig.add_trace(go.Scatter(x=N, y=law.predict(N, C / (k * N)), name=f"{law.name}: L(N, C/({k:g}N))"))
    fig.add_trace(go.Scatter(x=[alloc.N], y=[alloc.loss], mode="markers", marker={"size": 11},
                             name=f"optimum N={alloc.N:.3g}, D={alloc.D:.3g}"))
    if dc is not None:
        from planner.data_constrained import data_constrained_law

        dcl = data_constrained_law(law)
        fig.add_trace(go.Scatter(x=N, y=dcl.predict(N, C / (k * N), dc.U), name=f"data-constrained, U={dc.U:.3g}"))
        fig.add_trace(go.Scatter(x=[dc.N], y=[dc.loss], mode="markers", marker={"size": 11, "symbol": "diamond"},
                                 name=f"constrained optimum, {dc.epochs:.1f} epochs"))
    fig.update_layout(title=f"iso-FLOP profile at C = {C:.3g} FLOPs",
                      xaxis={"title": "parameters N", "type": "log"}, yaxis={"title": "loss (nats)"})
    html = fig.to_html(include_plotlyjs="cdn", full_html=True)
    html = html.replace("<head>", f"<head>\n<!-- scaleplan {__version__}; command: {command_line()} -->", 1)
    return atomic_write(path, html)
