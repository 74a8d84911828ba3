"""Data mixtures and repetition: epochs per source and the data-constrained law's loss penalty.

A source is a Megatron data prefix (or any name) with a weight in the mixture and, optionally, the
unique tokens it holds (planner/plan/sections.py ``PhaseData``). Over a phase of T tokens a source of
normalised weight w draws ``w T`` tokens; over the run its tokens add up across the phases that use
it (a phase without a mixture of its own uses the previous phase's, as the exports do, else the
plan-level mixture, ``scaleplan plan --mixture``, else the plan's data path, :data:`PLAN_DATA`, counted
as fresh). No section is made when no source gives its unique tokens. ``epochs = tokens / unique_tokens``.

Loss penalty (assumption, stated in the plan): Muennighoff et al. 2023 (arXiv:2305.16264, Sec. 3,
eq. 5; planner/data_constrained.py) give the effective data of D tokens drawn from U unique ones as
``D' = U + U R_D* (1 - exp(-R/R_D*))``, R = D/U - 1. Here it is applied to each source on its own
(repeats of one source lose value independently of the other sources: disjoint sources), and the
run's effective data is the sum, ``D' = sum_i D'_i``; a source without ``unique_tokens`` counts as
fresh (D'_i = D_i). The excess-parameter term (eq. 6) uses the unique tokens seen,
``U = sum_i min(U_i, D_i)``. The loss is the plan's law's ``E + A / N'^alpha + B / D'^beta``
(its E, A, B, alpha, beta with Muennighoff's R_D* = 15.39, R_N* = 5.31). "Second pass or fresh
data?": the same formula with every token fresh (D' = D, U = D) against the repeated mixture; the
difference is ``loss_penalty``. Per source, the penalty of repeating that source alone (the others
fresh). Their abstract's finding: up to ~4 epochs of repetition changes the loss negligibly, so a
source past :data:`NEARLY_FREE_EPOCHS` is warned about.
"""
from __future__ import annotations

import math
from typing import Any

from planner.errors import UserError
from planner.plan.repetition_section import DataRepetition, SourceRepetition
from planner.plan.sections import PLAN_FIX, PhaseData
from planner.schema import check_record

#: Muennighoff et al. 2023, abstract: "training with up to 4 epochs of repeated data yields
#: negligible changes to loss compared to having unique data".
NEARLY_FREE_EPOCHS = 4.0
MIXTURE_FIX = "fix the mixture (a YAML list of {prefix, weight, unique_tokens}; see `scaleplan plan --help`)"
ASSUMPTION = ("Muennighoff et al. 2023 eq. 5 per source: D'_i = U_i + U_i R_D* (1 - exp(-(D_i/U_i - 1)/R_D*)) "
              "(sources disjoint, each repeated independently; no unique_tokens: fresh), D' = sum_i D'_i; eq. 6 "
              "with U = sum_i min(U_i, D_i); loss E + A/N'^alpha + B/D'^beta of the plan's law with R_D* {rd:.4g}, "
              "R_N* {rn:.4g}; fresh = the same tokens all unique")


#: The source a phase without a mixture (and no plan-level one) reads: the plan's data path, counted fresh.
PLAN_DATA = "(plan data path)"


def read_mixture(items: Any, what: str = "mixture") -> list[dict[str, Any]]:
    """A plan-level mixture: a non-empty list (or {sources: [...]}) of {prefix, weight, unique_tokens},
    every source with its unique tokens, each prefix once; UserError otherwise."""
    if isinstance(items, dict) and set(items) == {"sources"}:
        items = items["sources"]
    if not isinstance(items, list) or not items:
        raise UserError(f"{what} must be a non-empty list of sources; {MIXTURE_FIX}")
    out = []
    for i, src in enumerate(items):
        where = f"{what}[{i}]"
        check_record(PhaseData, src, where, fix=MIXTURE_FIX, rules={"weight": "positive", "unique_tokens": "positive"})
        if src.get("unique_tokens") is None:
            raise UserError(f"{where} ({src['prefix']!r}) lacks unique_tokens; give the distinct tokens it holds")
        out.append(dict(src))
    _check_unique_prefixes(out, what)
    return out


def _check_unique_prefixes(sources: list[dict[str, Any]], what: str) -> None:
    seen = set()
    for s in sources:
        if s["prefix"] in seen:
            raise UserError(f"{what} lists {s['prefix']!r} twice; merge its weights")
        seen.add(s["prefix"])


def launch_data(data: dict[str, Any], mixture: list[dict[str, Any]]) -> dict[str, Any]:
    """The plan's ``data`` section with a plan-level ``mixture`` as its Megatron ``data_path`` (weight,
    prefix, ...), so the launch reads what the repetition analysis assumed; a ``data_path`` the user
    gave is kept only when it names the same blend, else UserError (two different data sources)."""
    if not mixture:
        return data
    blend: list[str | float] = []
    for src in read_mixture(list(mixture), "data_sources"):
        blend += [float(src["weight"]), str(src["prefix"])]
    given = data.get("data_path")
    if given and given != blend:
        raise UserError(f"--mixture names the data sources but the plan's data_path is also given ({given!r:.80}); "
                        f"give one of them ({MIXTURE_FIX})")
    return {**data, "data_path": blend}


def phase_draws(phases: list[tuple[str, float, list[dict[str, Any]]]]
                ) -> tuple[dict[str, float], dict[str, dict[str, float]]]:
    """Tokens each source draws over the run, and per phase: ``phases`` is (name, tokens, mixture)
    with weights normalised within each phase."""
    total: dict[str, float] = {}
    by_phase: dict[str, dict[str, float]] = {}
    for name, tokens, mixture in phases:
        wsum = sum(float(s["weight"]) for s in mixture)
        for s in mixture:
            d = tokens * float(s["weight"]) / wsum
            total[s["prefix"]] = total.get(s["prefix"], 0.0) + d
            by_phase.setdefault(s["prefix"], {})[name] = by_phase.get(s["prefix"], {}).get(name, 0.0) + d
    return total, by_phase


def unique_by_source(mixtures: list[list[dict[str, Any]]]) -> dict[str, float]:
    """``prefix -> unique_tokens`` over every mixture; the same prefix with two values is refused."""
    out: dict[str, float] = {}
    for mixture in mixtures:
        for s in mixture:
            u = s.get("unique_tokens")
            if u is None:
                continue
            if s["prefix"] in out and out[s["prefix"]] != float(u):
                raise UserError(f"source {s['prefix']!r} is given unique_tokens {out[s['prefix']]:g} and {float(u):g}; "
                                f"give one value ({PLAN_FIX})")
            out[s["prefix"]] = float(u)
    return out


def repetition(phases: list[tuple[str, float, list[dict[str, Any]]]], params: float, law) -> DataRepetition | None:
    """The ``data_repetition`` section for ``phases`` (name, tokens, mixture) at ``params`` under the
    DataConstrainedLaw ``law`` (module docstring); None when no source gives its unique tokens."""
    unique = unique_by_source([m for _, _, m in phases])
    draws, by_phase = phase_draws(phases)
    if not set(unique) & set(draws):
        return None
    D = sum(draws.values())
    eff = {k: float(law.effective_data(d, unique[k])) if k in unique else d for k, d in draws.items()}
    seen = {k: min(unique[k], d) if k in unique else d for k, d in draws.items()}
    fresh = _loss(law, params, D, D, D)
    repeated = _loss(law, params, D, sum(eff.values()), sum(seen.values()))
    phased = len(phases) > 1
    sources = [SourceRepetition(
        name=k, weight=d / D, tokens=d, unique_tokens=unique.get(k),
        epochs=d / unique[k] if k in unique else None, effective_tokens=eff[k],
        loss_penalty=_loss(law, params, D, D - d + eff[k], D - d + seen[k]) - fresh,
        epochs_by_phase=({p: t / unique[k] for p, t in by_phase[k].items()} if phased and k in unique else {}))
        for k, d in draws.items()]
    return DataRepetition(
        law=law.name or "data-constrained", assumption=ASSUMPTION.format(rd=law.rd_star, rn=law.rn_star),
        params=float(params), tokens=D, effective_tokens=sum(eff.values()), loss_fresh=fresh, loss_repeated=repeated,
        loss_penalty=repeated - fresh, max_epochs=max(s.epochs for s in sources if s.epochs is not None),
        sources=sources)


def _loss(law, N: float, D: float, d_eff: float, u_seen: float) -> float:
    """E + A / N'^alpha + B / D'^beta with N' from eq. 6 at the unique tokens seen ``u_seen``."""
    b = law.base
    n_eff = float(law.effective_params(N, D, u_seen))
    return float(b.E + b.A / n_eff ** b.alpha + b.B / d_eff ** b.beta)


def repetition_warnings(rep: DataRepetition | None) -> list[str]:
    """One warning per source repeated past :data:`NEARLY_FREE_EPOCHS` epochs."""
    if rep is None:
        return []
    return [f"source {s.name} is repeated {s.epochs:.1f} epochs ({s.tokens:.4g} tokens from {s.unique_tokens:.4g} "
            f"unique): past ~{NEARLY_FREE_EPOCHS:g} epochs repeated data stops being nearly as good as fresh "
            f"(Muennighoff et al. 2023); the law predicts +{s.loss_penalty:.4f} nats from it; add unique data or "
            "lower its weight" for s in rep.sources if s.epochs is not None and s.epochs > NEARLY_FREE_EPOCHS]


def plan_repetition(plan, law_spec: Any, mixture: list[dict[str, Any]]) -> DataRepetition | None:
    """The plan's ``data_repetition``: its resolved phases' mixtures (a phase without one takes the
    plan-level ``mixture``), or the plan-level mixture over ``plan.tokens``; the plan's law
    (``law_spec``, as PlanRequest.law) with Muennighoff's decay constants."""
    from planner.data_constrained import data_constrained_law
    from planner.laws import load_law
    from planner.plan.phases import resolve_plan_phases

    mixture = read_mixture(list(mixture), "data_sources") if mixture else []
    specs = [list(s.get("data") or []) for s in plan.phases]
    unique = unique_by_source(specs + [mixture])
    if not unique:  # nothing to count epochs against: no section (plans without it keep their hash)
        return None
    fallback = mixture or [dict(prefix=PLAN_DATA, weight=1.0)]
    resolved = resolve_plan_phases(plan)
    if mixture and resolved and all(p.data for p in resolved):
        raise UserError("every phase has its own data mixture, so the plan-level mixture is not used; put "
                        f"unique_tokens on the phases' data sources instead ({MIXTURE_FIX})")
    if resolved:
        phases = [(p.name, float(p.tokens), [dict(prefix=pre, weight=w, **({"unique_tokens": unique[pre]}
                                                                         if pre in unique else {}))
                                             for w, pre in p.data] or fallback) for p in resolved]
    else:
        phases = [("run", float(plan.tokens), fallback)]
    base = load_law(law_spec)
    dc = data_constrained_law(None if base.name == "muennighoff2023" else base)
    return repetition(phases, plan.shape.total_params, dc)


def describe_repetition(rep: DataRepetition) -> list[str]:
    """Summary lines: the comparison, then one line per source with unique tokens."""
    worst = max((s for s in rep.sources if s.epochs is not None), key=lambda s: s.epochs)
    pct = rep.loss_penalty / rep.loss_fresh if rep.loss_fresh else math.nan
    out = [f"{rep.tokens:.4g} tokens from {len(rep.sources)} sources, up to {rep.max_epochs:.2f} epochs ({worst.name}); "
           f"second pass or fresh data? {rep.law}: {rep.loss_repeated:.4f} nats repeated vs {rep.loss_fresh:.4f} all "
           f"fresh ({rep.loss_penalty:+.4f}, {pct:+.2%}); effective tokens {rep.effective_tokens:.4g}"]
    for s in rep.sources:
        if s.epochs is None:
            continue
        phases = (" [" + ", ".join(f"{p} {e:.2f}" for p, e in s.epochs_by_phase.items()) + "]"
                  if s.epochs_by_phase else "")
        out.append(f"{s.name}: {s.weight:.1%} of tokens, {s.epochs:.2f} epochs of {s.unique_tokens:.4g} unique{phases}, "
                   f"effective {s.effective_tokens:.4g} of {s.tokens:.4g}, {s.loss_penalty:+.5f} nats")
    return out
