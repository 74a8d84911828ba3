"""HParams: tuned base hyperparameters (hparams.yaml), read and written in one place.

Conventions (docs/CONTRACTS.md "hparams.yaml"): ``base_width`` is the d_model of the proxy the
values were tuned at; ``lr`` is the base AdamW peak LR (the embedding/readout/norm LR under μP),
``init_std`` the base init standard deviation. ``HParams.at_width(d_model)`` gives the per-group
values at a target width as a :class:`planner.width_hparams.WidthHParams`; the μP transfer rules
(Yang et al. 2022, "Tensor Programs V", Table 8) and the weight-decay rule ``wd_rule`` (what
"weight decay" means per group and width, with its sources) live in planner/width_hparams.py.

Every number is checked against a plausible range (:data:`RANGES`, limits and sources in
planner/limits.py: ``lr`` 1e-9..1000, ``base_width`` up to 65536, an even ``base_head_dim``, ...), so an
hparams.yaml with ``lr: 1e300`` is refused when read, not when a trainer overflows.

Two optional mappings record the evidence that the values deserve transfer; planner/hparams_gate.py
reads them, and a file without them fails that gate's checks, saying so:

* ``sweep``: the study that chose the values: ``sampler`` (tpe, gp, ...), ``n_finished`` (trials
  that ran: complete + pruned), ``n_complete``, ``widths`` (proxy widths searched) and ``space``
  (``{name: {low, high, log}}``, the search range of each sampled hyperparameter, named as here).
* ``transfer``: a μTransfer check of the parameterization (``scaleplan transfer-check``,
  proxy_train/transfer.py's transfer.json for one parameterization): ``param``, ``widths``,
  ``drift_octaves`` (max - min of the per-width optimal log2 LR), ``any_edge`` (an optimum at a
  grid edge), and optionally ``corpus_sha256``, ``steps`` and ``hp`` (the values it held fixed).
"""
from __future__ import annotations

import dataclasses
import math
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from planner.errors import UserError
from planner.io import read_yaml, write_yaml
from planner.limits import MAX_LAYERS, MAX_LR, MAX_MULT, MAX_STD, MAX_WD, MAX_WIDTH, MIN_LR
from planner.schema import check_record, show
from planner.width_hparams import WidthHParams, transfer_to_width

PARAMETERIZATIONS = ("mup", "sp")
WD_RULES = ("mup", "unscaled")
HPARAMS_FIX = "fix the hparams file (or regenerate it with `scaleplan sweep export`)"
#: Largest vocabulary accepted: token ids are stored as uint32 (proxy_train/data.py).
MAX_VOCAB = 2**32
#: Ranges not already checked by ``HParams.__post_init__`` (which also serves direct construction).
_RULES: dict[str, Any] = {"base_depth": "positive", "base_head_dim": "positive", "vocab_size": "positive"}
#: Plausible ranges (lo, hi) of the numeric fields, from planner/limits.py (its docstring gives the
#: sources: widest/deepest published models, fp32 resolution and overflow, the μP sweep space).
RANGES: dict[str, tuple[float, float]] = {
    "base_width": (1, MAX_WIDTH), "base_depth": (1, MAX_LAYERS), "base_head_dim": (2, MAX_WIDTH),
    "lr": (MIN_LR, MAX_LR), "init_std": (0, MAX_STD), "alpha_in": (0, MAX_MULT), "alpha_out": (0, MAX_MULT),
    "attn_mult": (0, MAX_MULT), "weight_decay": (0, MAX_WD),
}


@dataclass
class SweepRecord:
    """The ``sweep`` mapping of hparams.yaml (module docstring); only its checks use the type."""

    sampler: str | None = None
    n_finished: int | None = None
    n_complete: int | None = None
    widths: list[int] = field(default_factory=list)
    space: dict[str, dict[str, float | bool]] = field(default_factory=dict)  # name -> {low, high, log}


@dataclass
class TransferRecord:
    """The ``transfer`` mapping of hparams.yaml (module docstring); only its checks use the type."""

    param: str | None = None
    widths: list[int] = field(default_factory=list)
    drift_octaves: float | None = None
    any_edge: bool | None = None
    corpus_sha256: str | None = None
    steps: int | None = None
    hp: dict[str, float] = field(default_factory=dict)


_RECORD_RULES = {"n_finished": "nonneg", "n_complete": "nonneg", "drift_octaves": "nonneg", "steps": "positive"}


@dataclass
class HParams:
    """Base hyperparameters tuned on a proxy of width ``base_width`` (the hparams.yaml contents)."""

    parameterization: str = "mup"
    base_width: int = 128
    base_depth: int | None = None
    base_head_dim: int | None = None
    lr: float = 3e-3
    init_std: float = 0.02
    alpha_in: float = 1.0
    alpha_out: float = 1.0
    attn_mult: float = 1.0
    warmup_frac: float = 0.05
    weight_decay: float = 0.0
    wd_rule: str = "mup"
    readout_zero_init: bool = True
    query_zero_init: bool = True
    betas: tuple[float, float] = (0.9, 0.95)
    eps: float = 1e-8
    vocab_size: int | None = None  # the padded vocab of the proxy data (the trainer checks it)
    source: dict[str, Any] = field(default_factory=dict)  # study, trial, val_loss, tokens, corpus hash
    meta: dict[str, Any] = field(default_factory=dict)  # scaleplan version and the command
    sweep: dict[str, object] = field(default_factory=dict)  # a SweepRecord (module docstring)
    transfer: dict[str, object] = field(default_factory=dict)  # a TransferRecord (module docstring)

    def __post_init__(self) -> None:
        if self.parameterization not in PARAMETERIZATIONS:
            raise UserError(
                f"unknown parameterization {self.parameterization!r} in hparams; use one of {PARAMETERIZATIONS}"
            )
        if self.wd_rule not in WD_RULES:
            raise UserError(f"unknown wd_rule {self.wd_rule!r} in hparams; use one of {WD_RULES}")
        if not isinstance(self.base_width, int) or isinstance(self.base_width, bool) or self.base_width <= 0:
            raise UserError(f"base_width must be a positive integer (the proxy's d_model), got {self.base_width!r}")
        for name in ("lr", "init_std", "alpha_in", "alpha_out", "attn_mult", "eps"):
            v = getattr(self, name)
            if not isinstance(v, (int, float)) or isinstance(v, bool) or not math.isfinite(v) or v <= 0:
                raise UserError(f"hparams {name} must be a positive number, got {v!r}; fix the hparams file")
        for name in ("warmup_frac", "weight_decay"):
            v = getattr(self, name)
            if not isinstance(v, (int, float)) or not math.isfinite(v) or v < 0:
                raise UserError(f"hparams {name} must be a number >= 0, got {v!r}; fix the hparams file")
        _check_ranges(self)
        if self.warmup_frac >= 1:
            raise UserError(f"warmup_frac must be below 1 (a fraction of the run), got {self.warmup_frac}")
        betas = tuple(self.betas) if isinstance(self.betas, (list, tuple)) else ()
        if len(betas) != 2 or not all(isinstance(b, (int, float)) and 0 <= b < 1 for b in betas):
            raise UserError(f"betas must be two numbers in [0, 1), got {self.betas!r}")
        self.betas = (float(betas[0]), float(betas[1]))
        for name, record in (("sweep", SweepRecord), ("transfer", TransferRecord)):
            value = getattr(self, name)
            if value:  # typed like its record: an int is an int, widths a list of ints, ...
                check_record(record, value, f"hparams.{name}", fix=HPARAMS_FIX, rules=_RECORD_RULES)

    # ------------------------------------------------------------------ file format
    def to_dict(self) -> dict[str, Any]:
        """hparams.yaml's mapping; ``eps`` at AdamW's 1e-8, an unknown vocab and empty meta, sweep and
        transfer records are left out (files written before those existed read back unchanged)."""
        d = dataclasses.asdict(self)
        d["betas"] = list(self.betas)
        for key, default in (("eps", 1e-8), ("vocab_size", None), ("meta", {}), ("sweep", {}), ("transfer", {})):
            if d[key] == default:
                del d[key]
        return d

    @classmethod
    def from_dict(cls, d: Any, *, where: str = "hparams") -> "HParams":
        """Read an hparams.yaml mapping: every field checked against its annotation and range
        (planner/schema.py: an int is never a bool or a float, a bool only ``true``/``false``,
        numbers finite); UserError naming the field otherwise."""
        if isinstance(d, dict) and "base_width" not in d:
            raise UserError(f"{where} lacks base_width (the proxy's d_model the values were tuned at); add it")
        kw = check_record(cls, d, where, fix=HPARAMS_FIX, rules=_RULES)
        if kw.get("vocab_size") is not None and kw["vocab_size"] > MAX_VOCAB:
            raise UserError(f"{where}.vocab_size must be at most {MAX_VOCAB} (token ids are stored as uint32), "
                            f"got {kw['vocab_size']}; {HPARAMS_FIX}")
        return cls(**kw)

    @classmethod
    def read(cls, path: str | Path) -> "HParams":
        data = read_yaml(path, "hparams file")
        try:
            return cls.from_dict(data)
        except UserError as e:
            raise UserError(f"{path}: {e}") from None

    def write(self, path: str | Path) -> Path:
        return write_yaml(path, self.to_dict())

    # ------------------------------------------------------------------ transfer
    def width_mult(self, d_model: int) -> float:
        return d_model / self.base_width

    def at_width(self, d_model: int, n_layers: int | None = None, head_dim: int | None = None) -> WidthHParams:
        """Per-group values at width ``d_model`` (μP transfer; SP passes through with a warning).

        ``head_dim`` defaults to ``base_head_dim`` (or 128) for the attention scale. The rules are in
        planner/width_hparams.py.
        """
        return transfer_to_width(self, d_model, n_layers, head_dim)


def _check_ranges(hp: HParams) -> None:
    """UserError when a number lies outside :data:`RANGES` or ``base_head_dim`` is odd (RoPE rotates
    pairs of coordinates, so a head size is even)."""
    for name, (lo, hi) in RANGES.items():
        v = getattr(hp, name)
        if v is None:
            continue
        if not isinstance(v, (int, float)) or isinstance(v, bool) or not lo <= v <= hi:
            raise UserError(f"hparams {name} must be between {lo:g} and {hi:g} (the plausible limits of "
                            f"planner/limits.py), got {show(v)}; "
                            f"{HPARAMS_FIX}")
    for name in ("base_depth", "base_head_dim"):
        v = getattr(hp, name)
        if v is not None and v != int(v):
            raise UserError(f"hparams {name} must be an integer, got {v!r}; {HPARAMS_FIX}")
    if hp.base_head_dim is not None and hp.base_head_dim % 2:
        raise UserError(f"hparams base_head_dim must be even (RoPE rotates pairs of coordinates), got "
                        f"{hp.base_head_dim}; {HPARAMS_FIX}")


def load_hparams(spec: "HParams | str | Path | dict | None") -> HParams | None:
    """Accept an HParams, a dict, a path to hparams.yaml, or None."""
    if spec is None or isinstance(spec, HParams):
        return spec
    if isinstance(spec, dict):
        return HParams.from_dict(spec)
    return HParams.read(spec)
