"""ScalingLaw: the Chinchilla loss surface L(N, D) = E + A / N^alpha + B / D^beta and its optima.

This is the only implementation of the law: the fitter (:mod:`planner.fit`) returns one, the
planner, the CLI, the held-out check and every figure call it. ``planner.laws`` adds the
published presets and ``load_law``.

Conventions (docs/CONTRACTS.md):

* L is natural-log cross-entropy per token (nats), N parameters (the count the law was fitted
  on: Hoffmann et al. 2022 use total parameters), D training tokens, C training FLOPs.
* Compute model: C = k * N * D with k FLOPs per token per parameter (k = 6 for forward+backward
  of the matmuls, Kaplan et al. 2020 Sec. 2.1 / Hoffmann et al. 2022 Sec. 3). ``optimal`` also
  accepts k as a function of N (e.g. a shape's exact FLOPs/token divided by its parameter count).
* Intervals are 95 % percentile intervals over the law's bootstrap ``samples`` (refits on
  resampled runs, rows [E, A, B, alpha, beta]); a refit's value counts where it is defined
  (an optimum needs all five parameters positive). Two kinds:
  ``"parameter"``: the spread of the law itself (the bootstrap laws' values);
  ``"prediction"``: where a *measured* loss should fall: each bootstrap law's loss times
  exp(a log residual of the fit drawn with replacement), so it needs the fit's ``residuals``.
  The draws are reproducible: ``predict`` uses ``seed + 1``, ``optimal`` ``seed + 2``.

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
from typing import Any, Callable, Union

import numpy as np
from scipy import optimize

from planner.errors import UserError, positive_number
from planner.schema import check_value

PARAM_NAMES = ("E", "A", "B", "alpha", "beta")
FIT_FIX = "regenerate it with `scaleplan fit`"
INTERVALS = ("parameter", "prediction")
INTERVAL_LEVEL = 95.0
PREDICT_SEED_OFFSET = 1   # residual draws of predict(..., interval="prediction")
OPTIMAL_SEED_OFFSET = 2   # residual draws of optimal(..., interval="prediction")
FlopsRatio = Union[float, Callable[[float], float]]
Params = tuple[float, float, float, float, float]


@dataclass
class Allocation:
    """One point on the compute-optimal frontier.

    ``N`` parameters, ``D`` tokens, ``C`` FLOPs, ``loss`` nats, ``tokens_per_param`` = D / N,
    ``flops_per_token_per_param`` the k used (C = k N D). ``ci`` maps a field name to its 95%
    interval [lo, hi] over the law's bootstrap samples (empty when the law has none or none was
    asked for); ``interval`` says which kind the ``loss`` entry is (see the module docstring).
    """

    N: float
    D: float
    C: float
    loss: float
    tokens_per_param: float
    flops_per_token_per_param: float = 6.0
    law: str = ""
    ci: dict[str, list[float]] = field(default_factory=dict)
    interval: str = "parameter"

    def to_dict(self) -> dict[str, Any]:
        """Fields as a dict; ``ci`` only when present, ``interval`` only when not "parameter"."""
        d = dataclasses.asdict(self)
        if not d["ci"]:
            d.pop("ci")
        if d["interval"] == "parameter":
            d.pop("interval")
        return d


@dataclass(frozen=True)
class Prediction:
    """A predicted loss (nats) with its 95 % interval; arrays broadcast like the inputs N, D."""

    value: Any
    lo: Any
    hi: Any
    interval: str


@dataclass
class ScalingLaw:
    """L(N, D) = E + A / N^alpha + B / D^beta (nats), with optional bootstrap samples.

    ``samples``: an (k, 5) array of bootstrap refits [E, A, B, alpha, beta], kept as fitted (a
    refit may have a non-positive exponent; it has no optimum and is skipped there).
    ``residuals``: log(measured / fitted loss) of the fitted runs (needed by prediction
    intervals; fit.json does not store them, so only a fresh fit has them). ``seed``: the
    fit's seed, for reproducible residual draws.
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
    residuals: np.ndarray | None = None
    seed: int = 0

    def __post_init__(self) -> None:
        for key in PARAM_NAMES:
            v = getattr(self, key)
            try:
                v = float(v)
            except (TypeError, ValueError):
                raise UserError(f"law parameter {key} must be a number, got {v!r}; fix the law file") from None
            if not math.isfinite(v):
                raise UserError(f"law parameter {key} must be a finite number, got {v!r}; "
                                "refit the law or fix the file")
            setattr(self, key, v)
        if self.samples is not None:
            s = np.asarray(self.samples, dtype=float)
            if s.ndim != 2 or s.shape[1] != 5:
                raise UserError(f"bootstrap samples must be a (k, 5) table of [E, A, B, alpha, beta], "
                                f"got shape {s.shape}; regenerate fit.json")
            self.samples = s if len(s) else None
        if self.residuals is not None:
            self.residuals = np.asarray(self.residuals, dtype=float).reshape(-1)

    def require_positive(self) -> "ScalingLaw":
        """Self, or UserError: optima and files need all five parameters > 0 (a fit may end with
        an exponent <= 0 when the runs do not identify it; it still predicts, with a warning)."""
        for key in PARAM_NAMES:
            if getattr(self, key) <= 0:
                raise UserError(f"law parameter {key} must be positive and finite, got {getattr(self, key)!r}; "
                                "refit the law or fix the file")
        return self

    # -- the surface ---------------------------------------------------------------------------
    @property
    def params(self) -> Params:
        return (self.E, self.A, self.B, self.alpha, self.beta)

    def predict(self, N, D, interval: str | None = None):
        """Loss in nats at N parameters and D tokens (numpy broadcasting; scalars give a float).

        With ``interval`` ("parameter" or "prediction") a :class:`Prediction` with the 95 %
        interval over the bootstrap samples (see the module docstring).
        """
        N = np.asarray(N, dtype=float)
        D = np.asarray(D, dtype=float)
        out = _surface(self.params, N, D)
        value = float(out) if out.ndim == 0 else out
        if interval is None:
            return value
        _check_interval(interval)
        per_sample = _surface(self._sample_columns(out.ndim), N, D)  # (k, *shape)
        if interval == "prediction":
            per_sample = per_sample * np.exp(self._residual_draws(PREDICT_SEED_OFFSET, per_sample.shape))
        lo, hi = _percentiles(per_sample)
        if out.ndim == 0:
            lo, hi = float(lo), float(hi)
        return Prediction(value=value, lo=lo, hi=hi, interval=interval)

    @property
    def G(self) -> float:
        """Hoffmann et al.'s G = (alpha A / (beta B))^(1/(alpha+beta))."""
        return _G(self.params)

    @property
    def a(self) -> float:
        """Exponent of N* in C: beta / (alpha + beta)."""
        return self.beta / (self.alpha + self.beta)

    @property
    def b(self) -> float:
        """Exponent of D* in C: alpha / (alpha + beta)."""
        return self.alpha / (self.alpha + self.beta)

    # -- compute-optimal allocation ------------------------------------------------------------
    def optimal(self, C: float, flops_per_token_per_param: FlopsRatio = 6.0,
                interval: str | None = "parameter") -> Allocation:
        """The N, D that minimise L at training compute C = k N D (k constant or k(N)).

        ``interval``: what ``Allocation.ci`` holds when the law has samples: "parameter"
        (default), "prediction" (the loss entry is a prediction interval) or None (no ci).
        """
        C = positive_number(C, "compute budget C (FLOPs)")
        N, D, k = _in_range(self, _solve, self.require_positive().params, C, flops_per_token_per_param,
                            what=f"compute budget C = {C:.3g} FLOPs")
        alloc = Allocation(N=N, D=D, C=C, loss=self.predict(N, D), tokens_per_param=D / N,
                           flops_per_token_per_param=k, law=self.name)
        if interval is not None and self.samples is not None:
            alloc.ci = self._allocation_ci(C, flops_per_token_per_param, _check_interval(interval))
            alloc.interval = interval
        elif interval is not None:
            _check_interval(interval)
        return alloc

    def optimal_frontier(self, C, flops_per_token_per_param: float = 6.0) -> tuple[np.ndarray, np.ndarray]:
        """Closed-form (N*, D*) for an array of budgets C at constant k (figures)."""
        k = positive_number(flops_per_token_per_param, "flops_per_token_per_param")
        return _in_range(self, _closed_form, self.require_positive().params, np.asarray(C, dtype=float), k,
                         what="range of compute budgets")

    def _allocation_ci(self, C: float, ratio: FlopsRatio, interval: str) -> dict[str, list[float]]:
        """N, D, tokens/param, loss at each bootstrap law's own optimum -> 95 % intervals."""
        rows = np.full((len(self.samples), 4), np.nan)
        for i in np.flatnonzero(self._positive_samples()):
            p = tuple(float(v) for v in self.samples[i])
            try:
                n, d, _ = _in_range(self, _solve, p, C, ratio, what="")
            except UserError:
                continue  # this bootstrap law has no allocation in floating-point range: left out
            rows[i] = n, d, d / n, float(_surface(p, np.asarray(n), np.asarray(d)))
        if interval == "prediction":
            rows[:, 3] = rows[:, 3] * np.exp(self._residual_draws(OPTIMAL_SEED_OFFSET, rows[:, 3].shape))
        keys = ("N", "D", "tokens_per_param", "loss")
        return {key: percentile_interval(rows[:, j]) for j, key in enumerate(keys)}

    def optimal_for_loss(self, L: float, flops_per_token_per_param: FlopsRatio = 6.0) -> Allocation:
        """The smallest compute whose optimal allocation reaches loss L (nats); parameter intervals.

        Raises UserError when L <= E: the irreducible loss can never be reached.
        """
        L = self.require_positive().reachable_loss(L)
        if callable(flops_per_token_per_param):
            # L*(C) decreases monotonically in C: bracket and bisect on log C.
            N0, D0 = _in_range(self, _for_loss, self.params, L, what=f"target loss {L:g}")
            c0 = 6.0 * N0 * D0
            f = lambda logc: self.optimal(math.exp(logc), flops_per_token_per_param).loss - L  # noqa: E731
            lo, hi = math.log(c0) - 10.0, math.log(c0) + 10.0
            logc = optimize.brentq(f, lo, hi, xtol=1e-12, rtol=1e-12)
            alloc = self.optimal(math.exp(logc), flops_per_token_per_param)
            alloc.loss = L
            return alloc
        k = positive_number(flops_per_token_per_param, "flops_per_token_per_param")
        N, D = _in_range(self, _for_loss, self.params, L, what=f"target loss {L:g}")
        alloc = Allocation(N=N, D=D, C=k * N * D, loss=L, tokens_per_param=D / N,
                           flops_per_token_per_param=k, law=self.name)
        if self.samples is not None:
            usable = self.samples[self._positive_samples()]
            rows = []
            for p in usable:
                if L <= p[0]:
                    continue  # this bootstrap law can never reach L: it has no finite allocation
                try:
                    n, d = _in_range(self, _for_loss, tuple(float(v) for v in p), L, what="")
                except UserError:
                    continue  # no allocation in floating-point range for this bootstrap law
                rows.append((n, d, d / n, k * n * d))
            if rows:
                rows = np.array(rows)
                keys = ("N", "D", "tokens_per_param", "C")
                alloc.ci = {key: percentile_interval(rows[:, j]) for j, key in enumerate(keys)}
                alloc.ci["n_reachable"] = [len(rows), len(usable)]
        return alloc

    def reachable_loss(self, L: Any) -> float:
        """``L`` as a float, or UserError when it is not a loss above the irreducible E (nats)."""
        try:
            L = float(L)
        except (TypeError, ValueError):
            raise UserError(f"target loss must be a number, got {L!r}") from None
        if not math.isfinite(L) or L <= self.E:
            raise UserError(f"target loss {L:g} nats is unreachable: law {self.name or ''} has irreducible "
                            f"loss E = {self.E:.4g}; ask for a loss above E")
        return L

    # -- bootstrap helpers ---------------------------------------------------------------------
    def _sample_columns(self, ndim: int) -> tuple[np.ndarray, ...]:
        if self.samples is None:
            raise UserError(f"law {self.name or ''} has no bootstrap samples, so no interval; refit with "
                            "`scaleplan fit --bootstrap K` or ask for the point value only")
        return tuple(self.samples[:, i].reshape((-1,) + (1,) * ndim) for i in range(5))

    def _positive_samples(self) -> np.ndarray:
        """Mask of samples that are a Chinchilla law (all five parameters positive and finite)."""
        s = self.samples
        return np.all(np.isfinite(s) & (s > 0), axis=1)

    def _residual_draws(self, offset: int, shape) -> np.ndarray:
        if self.residuals is None or self.residuals.size == 0:
            raise UserError(f"law {self.name or ''} carries no fit residuals, so no prediction interval; "
                            "use interval='parameter', or refit (fit.json does not store residuals)")
        rng = np.random.default_rng(int(self.seed) + offset)
        return rng.choice(self.residuals, size=shape, replace=True)

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
        """Build from a fit.json-style dict; UserError naming what is missing or wrong.

        Types follow planner/schema.py (a parameter is a finite number, never a bool or string);
        a bootstrap sample entry may be null (a NaN written by the fit), read back as NaN.
        """
        if not isinstance(d, dict):
            raise UserError(f"{where} must be a JSON object with keys {', '.join(PARAM_NAMES)}; {FIT_FIX}")
        missing = [k for k in PARAM_NAMES if k not in d]
        if missing:
            raise UserError(f"{where} lacks {', '.join(missing)}; a fit.json needs {', '.join(PARAM_NAMES)} "
                            f"({FIT_FIX})")
        params = [check_value(d[k], float, f"{where}.{k}", FIT_FIX) for k in PARAM_NAMES]
        samples = None
        boot = check_value(d.get("bootstrap"), dict[str, object] | None, f"{where}.bootstrap", FIT_FIX)
        if boot and boot.get("samples"):
            rows = check_value(boot["samples"], list[list[float | None]], f"{where}.bootstrap.samples", FIT_FIX)
            if any(len(r) != 5 for r in rows):
                raise UserError(f"{where}.bootstrap.samples must be a (k, 5) table of [E, A, B, alpha, beta]; "
                                f"{FIT_FIX}")
            samples = np.array([[np.nan if v is None else v for v in r] for r in rows], dtype=float)
        meta = check_value(d.get("meta") or {}, dict[str, object], f"{where}.meta", FIT_FIX)
        warnings = check_value(d.get("warnings") or [], list[str], f"{where}.warnings", FIT_FIX)
        if warnings:  # a fit's own diagnostics travel with it
            meta = {**meta, "warnings": list(warnings)}
        name = check_value(d.get("name") or "", str, f"{where}.name", FIT_FIX)
        source = check_value(d.get("source") or meta.get("source") or "", str, f"{where}.source", FIT_FIX)
        try:
            return cls(*params, name=name, source=source, samples=samples, meta=meta).require_positive()
        except UserError as e:
            raise UserError(f"{where}: {e}") from None


# -- the formulas (one place; params may be floats or (k, 1, ...) columns of samples) -----------
def _surface(p, N, D):
    E, A, B, alpha, beta = p
    return E + A / N ** alpha + B / D ** beta


def _G(p: Params) -> float:
    _, A, B, alpha, beta = p
    return (alpha * A / (beta * B)) ** (1.0 / (alpha + beta))


def _closed_form(p: Params, C, k: float):
    _, _, _, alpha, beta = p
    x = C / k
    G = _G(p)
    return G * x ** (beta / (alpha + beta)), x ** (alpha / (alpha + beta)) / G


def _solve(p: Params, C: float, ratio: FlopsRatio) -> tuple[float, float, float]:
    """(N, D, k) minimising L(N, C / (k(N) N)); closed form when k is a constant."""
    if not callable(ratio):
        k = positive_number(ratio, "flops_per_token_per_param")
        N, D = _closed_form(p, C, k)
        return N, D, k

    # k depends on N (exact FLOPs of a shape family): minimise over log N, bracketed around the
    # k = 6 closed form (any sane k(N) lies within a factor 1e3 of it).
    def k_of(n: float) -> float:
        k = float(ratio(n))
        if not math.isfinite(k) or k <= 0:
            raise UserError(f"FLOPs-per-token-per-parameter function returned {k!r} at N={n:.3g}; "
                            "it must return a positive number")
        return k

    def loss_at(logn: float) -> float:
        n = math.exp(logn)
        return float(_surface(p, np.asarray(n), np.asarray(C / (k_of(n) * n))))

    n0, _ = _closed_form(p, C, 6.0)
    lo, hi = math.log(n0) - math.log(1e3), math.log(n0) + math.log(1e3)
    res = optimize.minimize_scalar(loss_at, bounds=(lo, hi), method="bounded", options={"xatol": 1e-10})
    N = math.exp(res.x)
    k = k_of(N)
    return N, C / (k * N), k


def _for_loss(p: Params, L: float) -> tuple[float, float]:
    """Closed-form (N, D) of the cheapest (constant-k) allocation reaching loss L > E."""
    # At the optimum A/N^alpha = (L - E) beta / (alpha + beta), B/D^beta = (L - E) alpha / (alpha + beta).
    E, A, B, alpha, beta = p
    gap = L - E
    N = (A * (alpha + beta) / (beta * gap)) ** (1.0 / alpha)
    D = (B * (alpha + beta) / (alpha * gap)) ** (1.0 / beta)
    return N, D


# -- small helpers -------------------------------------------------------------------------------
def _in_range(law: "ScalingLaw", fn: Callable, *args, what: str):
    """``fn(*args)`` (an allocation whose first two items are N and D), or a UserError when N or D
    leaves floating-point range: small exponents make G = (alpha A / (beta B))^(1/(alpha+beta))
    and (L - E)^(-1/alpha) overflow or underflow (e.g. alpha = beta = 0.001)."""
    try:
        with np.errstate(over="ignore", under="ignore", divide="ignore", invalid="ignore"):
            out = fn(*args)
        ok = all(np.all(np.isfinite(v) & (np.asarray(v) > 0)) for v in out[:2])
    except (OverflowError, ZeroDivisionError):
        ok = False
    if not ok:
        raise UserError(f"law {law.name or ''} gives no finite allocation at the {what} (alpha = {law.alpha:.3g}, "
                        f"beta = {law.beta:.3g}: N or D leaves floating-point range); check the law's exponents, or ask for a "
                        "budget or loss nearer the fitted range")
    return out


def _check_interval(interval: str) -> str:
    if interval not in INTERVALS:
        raise UserError(f"unknown interval {interval!r}; use one of {', '.join(INTERVALS)} (or None)")
    return interval


def percentile_interval(v, level: float = INTERVAL_LEVEL) -> list[float]:
    """[lo, hi] percentile interval of the finite values of ``v`` (NaN, NaN when there are none)."""
    v = np.asarray(v, dtype=float)
    v = v[np.isfinite(v)]
    if v.size == 0:
        return [float("nan"), float("nan")]
    lo = (100 - level) / 2
    return [float(np.percentile(v, lo)), float(np.percentile(v, 100 - lo))]


def _percentiles(values: np.ndarray, level: float = INTERVAL_LEVEL) -> tuple[np.ndarray, np.ndarray]:
    """Element-wise [lo, hi] over axis 0, ignoring non-finite values (as :func:`percentile_interval`)."""
    v = np.where(np.isfinite(values), values, np.nan)
    lo = (100 - level) / 2
    return np.nanpercentile(v, lo, axis=0), np.nanpercentile(v, 100 - lo, axis=0)


__all__ = ["ScalingLaw", "Allocation", "Prediction", "PARAM_NAMES", "INTERVALS", "positive_number",
           "percentile_interval"]
