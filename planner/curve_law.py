"""Loss-curve law with learning-rate annealing (Tissue et al. 2024, arXiv:2408.11029, Eq. 1).

    L(s) = L0 + A * S1(s)^(-alpha) - C * S2(s)

fitted to whole loss curves, so that one run's curve predicts the loss of the same model under
another schedule or length (the paper's §4-5 use: fit one or two curves, predict any schedule).

Conventions (the paper's definitions, in this module's indexing):

* ``lr`` is the schedule as *factors* of the peak LR, one per optimizer update: ``lr[i]`` is the
  factor used by update i (i = 0, 1, ...; ``proxy_train.schedules.lr_factor``). Using factors
  instead of absolute LRs only rescales A and C (the law is the same).
* ``s`` counts updates applied: the loss "at s" is the loss of the parameters after s updates.
* **Forward area** S1(s) = sum of ``lr[0..s-1]``, warmup included (the area under the LR curve
  as the paper defines it; our warmups are 2-5 % of a run, so including them moves S1 little).
* **Annealing area** S2(s) = sum over k = 1..s of m_k, with the momentum form of the paper's §3:
  m_k = lam * m_(k-1) + (lr[k-2] - lr[k-1]), i.e. each LR drop keeps adding to S2, decaying by
  ``lam`` per step. Drops are counted only from the schedule's peak on (the first update at the
  maximum factor): the warmup's LR *increases* are not annealing, and the paper's law describes
  the loss after warmup. A rise after the peak (re-warming) counts negatively, as in the paper.
* **lam** (the paper's decay factor, 0.999 there for runs of tens of thousands of steps): the
  memory of an LR drop lasts about 1/(1 - lam) steps. Our proxy runs are hundreds to a few
  thousand steps, so the paper's value would spread one cooldown's effect over longer than the
  cooldown itself; :func:`fit_curve_law` therefore chooses lam from ``LAM_GRID`` by the fit's
  own robust cost (profile over a grid, the rest fitted at each lam) unless it is given.
  Caveat, measured (benchmarks/results/curve_law.txt): WSD curves pin the cooldown's gain C*S2
  but hardly lam (robust cost within ~1 % across the grid), while a cosine prediction depends on
  lam (its annealing is spread over the whole run), so WSD -> cosine errors are several percent.
* Points: any mix of per-step train losses and validation losses. Validation losses may sit a
  constant ``val_offset`` (nats) from the train curve (a different split, no dropout noise): the
  offset is a fitted parameter, so the law proper describes the train loss, and
  ``predict(..., val=True)`` adds the offset.
* Fit: robust least squares (``scipy.optimize.least_squares``, Huber loss with ``f_scale`` 1.345,
  the usual 95 %-efficiency constant) on residuals divided by each point's noise scale
  ``sigma``; multi-start over alpha. Raw per-step losses are used, not smoothed (smoothing would
  shift the curve in the fast-changing cooldown); the noise averages out over many steps. With
  both kinds of points, a second pass re-estimates each kind's noise scale from the residuals
  (per-step train losses scatter ~0.18 nats on our proxies, validation points ~0.01).

Loss in nats per token.
"""
from __future__ import annotations

from dataclasses import asdict, dataclass, field

import numpy as np
from scipy.signal import lfilter

from planner.errors import UserError

LAM_GRID = (0.5, 0.8, 0.9, 0.95, 0.97, 0.98, 0.99, 0.995, 0.999)
ALPHA_STARTS = (0.1, 0.3, 0.6, 1.0)
HUBER_SCALE = 1.345
ALPHA_BOUNDS = (1e-3, 3.0)
SIGMA_FLOOR = 1e-3  # nats: no point weighs more than this noise scale allows


def areas(lr, lam: float) -> tuple[np.ndarray, np.ndarray]:
    """(S1, S2) after s = 0..len(lr) updates (arrays of len(lr) + 1; see the module docstring)."""
    f = np.asarray(lr, dtype=float)
    if f.ndim != 1 or not np.isfinite(f).all() or (f < 0).any():
        raise UserError("LR factors must be a 1-D array of finite numbers >= 0")
    if not 0.0 <= lam < 1.0:
        raise UserError(f"lam must be in [0, 1), got {lam}")
    s1 = np.concatenate([[0.0], np.cumsum(f)])
    drops = np.zeros_like(f)
    if len(f) > 1:
        drops[1:] = f[:-1] - f[1:]          # drop seen by update k (paper: eta_(k-1) - eta_k)
        drops[: int(np.argmax(f)) + 1] = 0.0  # warmup and the peak itself: no annealing
    m = lfilter([1.0], [1.0, -lam], drops)  # m_k = lam m_(k-1) + drop_k
    s2 = np.concatenate([[0.0], np.cumsum(m)])
    return s1, s2


@dataclass
class CurveSegment:
    """Observed losses of one run: ``s`` (updates applied, see the module docstring), ``loss``,
    ``lr`` (the run's LR factor per update, at least max(s) long), ``val`` (validation points: the
    offset applies) and ``sigma`` (noise scale of each point, nats; residuals are divided by it)."""
    lr: np.ndarray
    s: np.ndarray
    loss: np.ndarray
    val: bool = False
    sigma: float = 1.0
    label: str = ""

    def __post_init__(self):
        self.lr = np.asarray(self.lr, dtype=float)
        self.s = np.asarray(self.s, dtype=int)
        self.loss = np.asarray(self.loss, dtype=float)
        if self.s.shape != self.loss.shape:
            raise UserError(f"curve {self.label!r}: {len(self.s)} steps but {len(self.loss)} losses")
        if len(self.s) and (self.s.min() < 1 or self.s.max() > len(self.lr)):
            raise UserError(f"curve {self.label!r}: steps must lie in 1..{len(self.lr)} (the LR schedule's length)")
        if not np.isfinite(self.loss).all():
            raise UserError(f"curve {self.label!r}: losses must be finite")
        if not (np.isfinite(self.sigma) and self.sigma > 0):
            raise UserError(f"curve {self.label!r}: sigma must be > 0, got {self.sigma}")


@dataclass
class CurveLaw:
    """L(s) = L0 + A S1^-alpha - C S2 (+ ``val_offset`` for validation loss); Tissue et al. 2024 Eq. 1.

    ``fit`` holds how it was fitted (lam choice, robust cost, residual RMS/median per kind, points).
    """
    L0: float
    A: float
    alpha: float
    C: float
    lam: float
    val_offset: float = 0.0
    fit: dict = field(default_factory=dict)

    def predict(self, lr, s=None, *, val: bool = False) -> np.ndarray:
        """Loss after each s in ``s`` (default: 1..len(lr)) updates of the schedule ``lr``."""
        s1, s2 = areas(lr, self.lam)
        idx = np.arange(1, len(s1)) if s is None else np.asarray(s, dtype=int)
        out = self.L0 + self.A * s1[idx] ** (-self.alpha) - self.C * s2[idx]
        return out + (self.val_offset if val else 0.0)

    def final(self, lr, *, val: bool = True) -> float:
        """The loss at the end of schedule ``lr`` (validation loss by default)."""
        return float(self.predict(lr, [len(lr)], val=val)[0])

    def to_dict(self) -> dict:
        return asdict(self)

    @classmethod
    def from_dict(cls, d: dict) -> "CurveLaw":
        try:
            law = cls(**{k: d[k] for k in ("L0", "A", "alpha", "C", "lam")},
                      val_offset=d.get("val_offset", 0.0), fit=dict(d.get("fit") or {}))
        except (KeyError, TypeError) as e:
            raise UserError(f"curve law record lacks {e}; expected keys L0, A, alpha, C, lam") from None
        vals = [law.L0, law.A, law.alpha, law.C, law.lam, law.val_offset]
        if not all(isinstance(v, (int, float)) and np.isfinite(v) for v in vals) or law.A <= 0 or not 0 <= law.lam < 1:
            raise UserError(f"curve law record has invalid values: {vals} (need finite numbers, A > 0, 0 <= lam < 1)")
        return law


# ------------------------------------------------------------------------------------------ fitting
def _design(segments: list[CurveSegment], lam: float) -> tuple[np.ndarray, ...]:
    """Per point: S1, S2, is-validation, loss, 1/sigma (all segments stacked)."""
    cols = [[], [], [], [], []]
    for seg in segments:
        s1, s2 = areas(seg.lr, lam)
        cols[0].append(s1[seg.s])
        cols[1].append(s2[seg.s])
        cols[2].append(np.full(len(seg.s), float(seg.val)))
        cols[3].append(seg.loss)
        cols[4].append(np.full(len(seg.s), 1.0 / seg.sigma))
    return tuple(np.concatenate(c) for c in cols)


def _linear_start(x1, s2, isval, y, w, alpha: float, has_val: bool) -> np.ndarray:
    """(L0, A, C, offset) by weighted linear least squares at a fixed alpha: the starting point."""
    cols = [np.ones_like(y), x1 ** (-alpha), -s2] + ([isval] if has_val else [])
    X = np.stack(cols, axis=1) * w[:, None]
    coef, *_ = np.linalg.lstsq(X, y * w, rcond=None)
    L0, A, C = coef[0], max(coef[1], 1e-6), max(coef[2], 0.0)
    return np.array([L0, A, C, coef[3] if has_val else 0.0])


def _fit_at_lam(segments: list[CurveSegment], lam: float, has_val: bool, has_anneal: bool, starts=None):
    """Best fit at a fixed lam over the alpha starts (or the given start vectors);
    parameters (L0, log A, alpha[, C][, offset])."""
    from scipy.optimize import least_squares

    x1, s2, isval, y, w = _design(segments, lam)
    logx = np.log(x1)

    def unpack(p):
        i = 3
        C = p[i] if has_anneal else 0.0
        i += has_anneal
        return p[0], np.exp(p[1]), p[2], C, (p[i] if has_val else 0.0)

    def resid(p):
        L0, A, alpha, C, off = unpack(p)
        return (L0 + A * x1 ** (-alpha) - C * s2 + off * isval - y) * w

    def jac(p):
        _, A, alpha, _, _ = unpack(p)
        t = A * x1 ** (-alpha)
        cols = [np.ones_like(x1), t, -t * logx] + [-s2] * has_anneal + [isval] * has_val
        return np.stack(cols, axis=1) * w[:, None]

    lo = [-np.inf, -50.0, ALPHA_BOUNDS[0]] + [0.0] * has_anneal + [-np.inf] * has_val
    hi = [np.inf, 50.0, ALPHA_BOUNDS[1]] + [np.inf] * has_anneal + [np.inf] * has_val
    if starts is None:
        starts = []
        for a0 in ALPHA_STARTS:
            L0, A, C, off = _linear_start(x1, s2, isval, y, w, a0, has_val)
            starts.append(np.array([L0, np.log(A), a0] + [max(C, 1e-9)] * has_anneal + [off] * has_val))
    best = None
    for p0 in starts:
        p0 = np.clip(p0, np.array(lo) + 1e-9, np.array(hi) - 1e-9)
        r = least_squares(resid, p0, jac=jac, bounds=(lo, hi), loss="huber", f_scale=HUBER_SCALE, x_scale="jac")
        if best is None or r.cost < best.cost:
            best = r
    best.params = unpack(best.x)
    return best, (x1, s2, isval, y, w)


def _rescaled(segments: list[CurveSegment], resid: np.ndarray, isval: np.ndarray):
    """Segments with sigma = 1.4826 x MAD of their kind's (train | val) residuals, and those scales."""
    scales = {}
    for kind, mask in (("train", isval == 0), ("val", isval == 1)):
        r = resid[mask]
        scales[kind] = max(SIGMA_FLOOR, 1.4826 * float(np.median(np.abs(r - np.median(r))))) if len(r) > 2 else None
    out = [CurveSegment(s.lr, s.s, s.loss, val=s.val, label=s.label,
                        sigma=scales["val" if s.val else "train"] or s.sigma) for s in segments]
    return out, scales


def fit_curve_law(segments: list[CurveSegment], *, lam: float | None = None,
                  lam_grid=LAM_GRID, reweight: bool = True) -> CurveLaw:
    """Fit Eq. 1 to ``segments`` (see the module docstring); lam from ``lam_grid`` unless given.

    ``reweight``: when both train and validation points are given, refit once with each kind's
    noise scale estimated from the first fit's residuals (robust MAD), so that the few, precise
    validation points and the many, noisy per-step train losses each weigh by their own scatter."""
    segments = [s for s in segments if len(s.s)]
    n = sum(len(s.s) for s in segments)
    if n < 6:
        raise UserError(f"a curve law needs at least 6 loss points to fit 5 parameters, got {n}")
    has_val = any(s.val for s in segments) and any(not s.val for s in segments)
    has_anneal = any(areas(s.lr, 0.9)[1][s.s].max() > 0 for s in segments)
    grid = [lam] if lam is not None else list(lam_grid)
    fits = [(g, *_fit_at_lam(segments, g, has_val, has_anneal)) for g in grid]
    g, r, (x1, s2, isval, y, w) = min(fits, key=lambda t: t[1].cost)
    scales = {}
    if reweight and has_val:  # second pass: each kind's sigma from its own residuals (feasible weighted LS)
        segments, scales = _rescaled(segments, r.fun / w, isval)
        fits = [(t[0], *_fit_at_lam(segments, t[0], has_val, has_anneal, starts=[t[1].x])) for t in fits]
        g, r, (x1, s2, isval, y, w) = min(fits, key=lambda t: t[1].cost)
    L0, A, alpha, C, off = r.params
    raw = (r.fun / w)
    kinds = {"train": isval == 0, "val": isval == 1}
    fit = {
        "lam": g, "lam_rule": "given" if lam is not None else f"best robust cost over {list(lam_grid)}",
        "cost_by_lam": {str(t[0]): float(t[1].cost) for t in fits}, "points": int(n),
        "converged": bool(r.success), "has_annealing": bool(has_anneal),
        "sigma": scales or "as given (per segment)",
        "residuals": {k: {"n": int(m.sum()), "rms": float(np.sqrt(np.mean(raw[m] ** 2))) if m.any() else None,
                          "median_abs": float(np.median(np.abs(raw[m]))) if m.any() else None}
                      for k, m in kinds.items()},
        "method": "scipy least_squares, Huber f_scale 1.345 on residual/sigma, alpha starts "
                  f"{list(ALPHA_STARTS)}; Tissue et al. 2024 Eq. 1",
    }
    return CurveLaw(float(L0), float(A), float(alpha), float(C), float(g), float(off), fit)


def noise_scale(loss) -> float:
    """Robust per-point noise of a loss sequence: MAD of first differences / sqrt(2) x 1.4826
    (differences cancel the slow trend; the factor makes MAD a standard deviation for Gaussians)."""
    d = np.diff(np.asarray(loss, dtype=float))
    if len(d) < 2:
        return 1.0
    sd = 1.4826 * float(np.median(np.abs(d - np.median(d)))) / np.sqrt(2.0)
    return sd if sd > 0 else 1.0
