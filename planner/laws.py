"""ScalingLaw: the Chinchilla loss surface L(N, D) = E + A / N^alpha + B / D^beta and its optima.

Conventions (docs/CONTRACTS.md):

* L is natural-log cross-entropy per token (nats), N parameters (the count the law was fitted
  on: Hoffmann et al. 2022 use total parameters), D training tokens, C training FLOPs.
* Compute model: C = k * N * D with k FLOPs per token per parameter (k = 6 for forward+backward
  of the matmuls, Kaplan et al. 2020 Sec. 2.1 / Hoffmann et al. 2022 Sec. 3). ``optimal`` also
  accepts k as a function of N (e.g. a shape's exact FLOPs/token divided by its parameter count).

Compute-optimal allocation for constant k (Hoffmann et al. 2022, Sec. 3.3, eq. (4)): minimising
L(N, C/(kN)) gives

    G  = (alpha A / (beta B))^(1 / (alpha + beta))
    N* = G       (C/k)^(beta  / (alpha + beta))
    D* = G^(-1)  (C/k)^(alpha / (alpha + beta))

and at the optimum alpha A / N*^alpha = beta B / D*^beta, so the optimal loss is
L*(C) = E + (1 + alpha/beta) A / N*^alpha. ``optimal_for_loss`` inverts this in closed form.
"""
from __future__ import annotations

import dataclasses
import math
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Union

import numpy as np
from scipy import optimize

from planner.errors import UserError
from planner.io import read_json

PARAM_NAMES = ("E", "A", "B", "alpha", "beta")
FlopsRatio = Union[float, Callable[[float], float]]


@dataclass
class Allocation:
    """One point on the compute-optimal frontier.

    ``N`` parameters, ``D`` tokens, ``C`` FLOPs, ``loss`` nats, ``tokens_per_param`` = D / N,
    ``flops_per_token_per_param`` the k used (C = k N D). ``ci`` maps a field name to its 95%
    interval [lo, hi] over the law's bootstrap samples (empty when the law has none).
    """

    N: float
    D: float
    C: float
    loss: float
    tokens_per_param: float
    flops_per_token_per_param: float = 6.0
    law: str = ""
    ci: dict[str, list[float]] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        d = dataclasses.asdict(self)
        if not d["ci"]:
            d.pop("ci")
        return d


@dataclass
class ScalingLaw:
    """L(N, D) = E + A / N^alpha + B / D^beta (nats), with optional bootstrap samples.

    ``samples``: an (k, 5) array of bootstrap refits [E, A, B, alpha, beta]; when present,
    allocations carry 95% percentile intervals in ``Allocation.ci``.
    """

    E: float
    A: float
    B: float
    alpha: float
    beta: float
    name: str = ""
    source: str = ""
    samples: np.ndarray | None = None
    meta: dict[str, Any] = field(default_factory=dict)

    def __post_init__(self) -> None:
        for key in PARAM_NAMES:
            v = getattr(self, key)
            try:
                v = float(v)
            except (TypeError, ValueError):
                raise UserError(f"law parameter {key} must be a number, got {v!r}; fix the law file") from None
            if not math.isfinite(v) or v <= 0:
                raise UserError(f"law parameter {key} must be positive and finite, got {v!r}; "
                                "refit the law or fix the file")
            setattr(self, key, v)
        if self.samples is not None:
            s = np.asarray(self.samples, dtype=float)
            if s.ndim != 2 or s.shape[1] != 5 or len(s) == 0:
                raise UserError(f"bootstrap samples must be a (k, 5) table of [E, A, B, alpha, beta], "
                                f"got shape {s.shape}; regenerate fit.json")
            s = s[np.all(np.isfinite(s) & (s > 0), axis=1)]
            self.samples = s if len(s) else None

    # -- the surface ---------------------------------------------------------------------------
    @property
    def params(self) -> tuple[float, float, float, float, float]:
        return (self.E, self.A, self.B, self.alpha, self.beta)

    def predict(self, N, D):
        """Loss in nats at N parameters and D tokens (numpy broadcasting; scalars give a float)."""
        N = np.asarray(N, dtype=float)
        D = np.asarray(D, dtype=float)
        out = self.E + self.A / N ** self.alpha + self.B / D ** self.beta
        return float(out) if out.ndim == 0 else out

    @property
    def G(self) -> float:
        """Hoffmann et al.'s G = (alpha A / (beta B))^(1/(alpha+beta))."""
        return (self.alpha * self.A / (self.beta * self.B)) ** (1.0 / (self.alpha + self.beta))

    @property
    def a(self) -> float:
        """Exponent of N* in C: beta / (alpha + beta)."""
        return self.beta / (self.alpha + self.beta)

    @property
    def b(self) -> float:
        """Exponent of D* in C: alpha / (alpha + beta)."""
        return self.alpha / (self.alpha + self.beta)

    # -- compute-optimal allocation ------------------------------------------------------------
    def _closed_form(self, C: float, k: float) -> tuple[float, float]:
        x = C / k
        return self.G * x ** self.a, x ** self.b / self.G

    def _solve(self, C: float, ratio: FlopsRatio) -> tuple[float, float, float]:
        """(N, D, k) minimising L(N, C / (k(N) N)); closed form when k is a constant."""
        if not callable(ratio):
            k = _positive(ratio, "flops_per_token_per_param")
            N, D = self._closed_form(C, k)
            return N, D, k
        # k depends on N (exact FLOPs of a shape family): minimise over log N, bracketed around
        # the k = 6 closed form (any sane k(N) lies within a factor 1e3 of it).
        def k_of(n: float) -> float:
            k = float(ratio(n))
            if not math.isfinite(k) or k <= 0:
                raise UserError(f"FLOPs-per-token-per-parameter function returned {k!r} at N={n:.3g}; "
                                "it must return a positive number")
            return k

        def loss_at(logn: float) -> float:
            n = math.exp(logn)
            return self.predict(n, C / (k_of(n) * n))

        n0, _ = self._closed_form(C, 6.0)
        lo, hi = math.log(n0) - math.log(1e3), math.log(n0) + math.log(1e3)
        res = optimize.minimize_scalar(loss_at, bounds=(lo, hi), method="bounded",
                                       options={"xatol": 1e-10})
        N = math.exp(res.x)
        k = k_of(N)
        return N, C / (k * N), k

    def optimal(self, C: float, flops_per_token_per_param: FlopsRatio = 6.0) -> Allocation:
        """The N, D that minimise L at training compute C = k N D (k constant or k(N))."""
        C = _positive(C, "compute budget C (FLOPs)")
        N, D, k = self._solve(C, flops_per_token_per_param)
        alloc = Allocation(N=N, D=D, C=C, loss=self.predict(N, D), tokens_per_param=D / N,
                           flops_per_token_per_param=k, law=self.name)
        if self.samples is not None:
            rows = []
            for p in self.samples:
                law = ScalingLaw(*p)
                n, d, _ = law._solve(C, flops_per_token_per_param)
                rows.append((n, d, d / n, law.predict(n, d)))
            alloc.ci = _percentile_ci(np.array(rows), ("N", "D", "tokens_per_param", "loss"))
        return alloc

    def _for_loss(self, L: float) -> tuple[float, float]:
        """Closed-form (N, D) of the cheapest (constant-k) allocation reaching loss L > E."""
        # At the optimum A/N^alpha = (L - E) beta / (alpha + beta), B/D^beta = (L - E) alpha / (alpha + beta).
        gap = L - self.E
        N = (self.A * (self.alpha + self.beta) / (self.beta * gap)) ** (1.0 / self.alpha)
        D = (self.B * (self.alpha + self.beta) / (self.alpha * gap)) ** (1.0 / self.beta)
        return N, D

    def optimal_for_loss(self, L: float, flops_per_token_per_param: FlopsRatio = 6.0) -> Allocation:
        """The smallest compute whose optimal allocation reaches loss L (nats).

        Raises UserError when L <= E: the irreducible loss can never be reached.
        """
        try:
            L = float(L)
        except (TypeError, ValueError):
            raise UserError(f"target loss must be a number, got {L!r}") from None
        if not math.isfinite(L) or L <= self.E:
            raise UserError(f"target loss {L:g} nats is unreachable: law {self.name or ''} has irreducible "
                            f"loss E = {self.E:.4g}; ask for a loss above E")
        if callable(flops_per_token_per_param):
            # L*(C) decreases monotonically in C: bracket and bisect on log C.
            N0, D0 = self._for_loss(L)
            c0 = 6.0 * N0 * D0
            f = lambda logc: self.optimal(math.exp(logc), flops_per_token_per_param).loss - L  # noqa: E731
            lo, hi = math.log(c0) - 10.0, math.log(c0) + 10.0
            logc = optimize.brentq(f, lo, hi, xtol=1e-12, rtol=1e-12)
            alloc = self.optimal(math.exp(logc), flops_per_token_per_param)
            alloc.loss = L
            return alloc
        k = _positive(flops_per_token_per_param, "flops_per_token_per_param")
        N, D = self._for_loss(L)
        alloc = Allocation(N=N, D=D, C=k * N * D, loss=L, tokens_per_param=D / N,
                           flops_per_token_per_param=k, law=self.name)
        if self.samples is not None:
            rows = []
            for p in self.samples:
                law = ScalingLaw(*p)
                if L <= law.E:
                    continue  # this bootstrap law can never reach L: it has no finite allocation
                n, d = law._for_loss(L)
                rows.append((n, d, d / n, k * n * d))
            if rows:
                alloc.ci = _percentile_ci(np.array(rows), ("N", "D", "tokens_per_param", "C"))
                alloc.ci["n_reachable"] = [len(rows), len(self.samples)]
        return alloc

    # -- serialisation -------------------------------------------------------------------------
    def to_dict(self) -> dict[str, Any]:
        """fit.json-compatible dict (CONTRACTS.md): parameters, name, source, bootstrap, meta."""
        d: dict[str, Any] = {k: getattr(self, k) for k in PARAM_NAMES}
        d["name"] = self.name
        d["source"] = self.source
        if self.samples is not None:
            d["bootstrap"] = {"n": int(len(self.samples)), "samples": self.samples.tolist()}
        if self.meta:
            d["meta"] = self.meta
        return d

    @classmethod
    def from_dict(cls, d: Any, *, where: str = "law") -> "ScalingLaw":
        """Build from a fit.json-style dict; UserError naming what is missing or wrong."""
        if not isinstance(d, dict):
            raise UserError(f"{where} must be a JSON object with keys {', '.join(PARAM_NAMES)}; "
                            "regenerate it with `scaleplan fit`")
        missing = [k for k in PARAM_NAMES if k not in d]
        if missing:
            raise UserError(f"{where} lacks {', '.join(missing)}; a fit.json needs {', '.join(PARAM_NAMES)} "
                            "(regenerate it with `scaleplan fit`)")
        samples = None
        boot = d.get("bootstrap")
        if isinstance(boot, dict) and boot.get("samples"):
            try:
                samples = np.asarray(boot["samples"], dtype=float)
            except (TypeError, ValueError):
                raise UserError(f"{where}: bootstrap.samples is not a numeric table; regenerate it") from None
        elif boot is not None and not isinstance(boot, dict):
            raise UserError(f"{where}: bootstrap must be an object with 'samples'; regenerate it")
        meta = d.get("meta") or {}
        if not isinstance(meta, dict):
            raise UserError(f"{where}: meta must be an object")
        if isinstance(d.get("warnings"), list) and d["warnings"]:  # a fit's own diagnostics travel with it
            meta = {**meta, "warnings": [str(w) for w in d["warnings"]]}
        try:
            return cls(*(d[k] for k in PARAM_NAMES), name=str(d.get("name") or ""),
                       source=str(d.get("source") or meta.get("source") or ""),
                       samples=samples, meta=meta)
        except UserError as e:
            raise UserError(f"{where}: {e}") from None


def _positive(x: Any, what: str) -> float:
    try:
        v = float(x)
    except (TypeError, ValueError):
        raise UserError(f"{what} must be a positive number, got {x!r}") from None
    if not math.isfinite(v) or v <= 0:
        raise UserError(f"{what} must be a positive finite number, got {x!r}; pass a value > 0")
    return v


def _percentile_ci(rows: np.ndarray, keys: tuple[str, ...]) -> dict[str, list[float]]:
    lo, hi = np.percentile(rows, [2.5, 97.5], axis=0)
    return {k: [float(lo[i]), float(hi[i])] for i, k in enumerate(keys)}


def shape_flops_ratio(shape: Any, convention: str = "megatron") -> float:
    """k = FLOPs per token / total parameters of a ``planner.shape.ModelShape`` (C = k N D)."""
    return float(shape.flops_per_token(convention)) / float(shape.total_params)


# -- published laws ----------------------------------------------------------------------------
PRESETS: dict[str, ScalingLaw] = {
    "hoffmann2022": ScalingLaw(
        E=1.69, A=406.4, B=410.7, alpha=0.34, beta=0.28, name="hoffmann2022",
        source="Hoffmann et al. 2022, 'Training Compute-Optimal Large Language Models' "
               "(arXiv:2203.15556), Sec. 3.3 and App. D.2, Approach 3; N = total parameters, MassiveText"),
    "besiroglu2024": ScalingLaw(
        E=1.8172, A=482.01, B=2085.43, alpha=0.3478, beta=0.3658, name="besiroglu2024",
        source="Besiroglu et al. 2024, 'Chinchilla Scaling: A replication attempt' (arXiv:2404.10102), "
               "eq. (4): Approach 3 refit on data extracted from Hoffmann et al. Fig. 4"),
    "sardana2024": ScalingLaw(
        E=1.69, A=406.4, B=410.7, alpha=0.336, beta=0.283, name="sardana2024",
        source="Sardana et al. 2024, 'Beyond Chinchilla-Optimal' (arXiv:2401.00448), Sec. 2: Chinchilla "
               "Approach 3 with the exponents to three digits (alpha 0.336, beta 0.283)"),
    "muennighoff2023": ScalingLaw(
        E=math.exp(0.6254804), A=math.exp(6.255414), B=math.exp(7.3049974),
        alpha=0.3526596, beta=0.3526596, name="muennighoff2023",
        source="Muennighoff et al. 2023, 'Scaling Data-Constrained Language Models' (arXiv:2305.16264): "
               "base Chinchilla-form fit on C4 (GPT-2 tokenizer), huggingface/datablations README "
               "'Parametric Fit' (a=6.255414, b=7.3049974, e=0.6254804, alpha=beta=0.3526596)"),
}


def list_presets() -> list[dict[str, Any]]:
    """Each preset's name, parameters and source (for `scaleplan optimal --list-laws`)."""
    return [{"name": k, **{p: getattr(v, p) for p in PARAM_NAMES}, "source": v.source}
            for k, v in PRESETS.items()]


def load_law(name_or_path: str | Path | ScalingLaw) -> ScalingLaw:
    """A preset by name (``hoffmann2022``, ...) or a fit.json written by ``scaleplan fit``."""
    if isinstance(name_or_path, ScalingLaw):
        return name_or_path
    text = str(name_or_path)
    if text in PRESETS:
        return dataclasses.replace(PRESETS[text])
    path = Path(text)
    if path.suffix.lower() == ".json" or path.exists():
        data = read_json(path, what="law file")
        law = ScalingLaw.from_dict(data, where=f"law file {path}")
        if not law.name:
            law.name = path.stem if path.stem != "fit" else str(path)
        return law
    raise UserError(f"unknown law {text!r}; use a preset ({', '.join(PRESETS)}) or a fit.json path "
                    "(see `scaleplan optimal --list-laws`)")


# -- Kaplan et al. 2020, for comparison only (not a Chinchilla-form law) -----------------------
@dataclass(frozen=True)
class KaplanLaw:
    """Kaplan et al. 2020 ('Scaling Laws for Neural Language Models', arXiv:2001.08361), Table 5
    / eqs. (1.1)-(1.2) and (1.7)/Sec. 6: single-variable power laws in *non-embedding* parameters
    N and tokens D, loss in nats (their WebText2 tokenizer). Not comparable to Chinchilla-form
    laws in absolute terms; kept for the exponents.

    L(N) = (N_c / N)^alpha_N,  L(D) = (D_c / D)^alpha_D;  compute-efficient N_opt ∝ C^0.73.
    """

    alpha_N: float = 0.076
    N_c: float = 8.8e13
    alpha_D: float = 0.095
    D_c: float = 5.4e13
    n_opt_exponent: float = 0.73
    source: str = ("Kaplan et al. 2020, arXiv:2001.08361, eqs. (1.1), (1.2) and Sec. 6.1 (N ∝ C_min^0.73); "
                   "N excludes embeddings")

    def loss_vs_params(self, N):
        return (self.N_c / np.asarray(N, dtype=float)) ** self.alpha_N

    def loss_vs_tokens(self, D):
        return (self.D_c / np.asarray(D, dtype=float)) ** self.alpha_D


KAPLAN2020 = KaplanLaw()
