"""Budget: the training compute a plan may spend, and the one place that reads it from user options.

Conventions: ``flops`` is authoritative, in model FLOPs as Megatron-LM counts them (see
planner/plan/__init__.py); the other fields record how it was derived. A GPU-time budget converts
with the definition of MFU (Chowdhery et al. 2022, App. B): FLOPs = GPU-hours x 3600 x peak x MFU.
"""
from __future__ import annotations

import math
from dataclasses import asdict, dataclass
from typing import Any

from planner.errors import UserError
from planner.hardware import get_gpu
from planner.plan.sections import PLAN_FIX
from planner.schema import check_record

#: The ways `scaleplan plan` takes a budget (exactly one is given); "gpus_days" is --gpus with --days.
BUDGET_OPTIONS = ("flops", "gpu_hours", "days", "target_loss", "preset")


@dataclass
class Budget:
    """Training compute. ``flops`` is authoritative; the other fields say how it was derived."""

    flops: float
    gpu: str | None = None
    n_gpus: int | None = None
    days: float | None = None
    gpu_hours: float | None = None
    mfu: float | None = None
    how: str = "flops"

    def __post_init__(self) -> None:
        if not isinstance(self.flops, (int, float)) or not math.isfinite(self.flops) or self.flops <= 0:
            raise UserError(f"budget must be a positive number of FLOPs, got {self.flops!r}")
        self.flops = float(self.flops)

    @classmethod
    def from_flops(cls, flops: float) -> "Budget":
        return cls(flops=flops)

    @classmethod
    def from_gpu_hours(cls, gpu_hours: float, gpu: str, mfu: float | None = None) -> "Budget":
        g = get_gpu(gpu)
        mfu = _check_mfu(mfu if mfu is not None else g.default_mfu)
        if not math.isfinite(gpu_hours) or gpu_hours <= 0:
            raise UserError(f"GPU-hours must be positive, got {gpu_hours!r}")
        return cls(flops=gpu_hours * 3600.0 * g.peak_bf16_flops * mfu, gpu=g.name, gpu_hours=float(gpu_hours),
                   mfu=mfu, how="gpu_hours")

    @classmethod
    def from_gpu_days(cls, n_gpus: int, days: float, gpu: str, mfu: float | None = None) -> "Budget":
        if not isinstance(n_gpus, int) or n_gpus <= 0:
            raise UserError(f"number of GPUs must be a positive integer, got {n_gpus!r}")
        if not math.isfinite(days) or days <= 0:
            raise UserError(f"days must be positive, got {days!r}")
        b = cls.from_gpu_hours(n_gpus * days * 24.0, gpu, mfu)
        b.n_gpus, b.days, b.how = n_gpus, float(days), "gpus_days"
        return b

    @classmethod
    def from_options(cls, *, flops: float | None = None, gpu_hours: float | None = None,
                     days: float | None = None, gpus: int | None = None, target_loss: float | None = None,
                     preset: str | None = None, gpu: str = "h100", mfu: float | None = None) -> "Budget | None":
        """The budget of exactly one of: FLOPs, GPU-hours, GPUs x days, a target loss or a preset.

        Returns None for a target loss or a preset (the law's compute, or the published tokens,
        becomes the budget when the plan is made). Raises UserError unless exactly one is given.
        """
        given = {"flops": flops, "gpu_hours": gpu_hours, "days": days, "target_loss": target_loss, "preset": preset}
        modes = [m for m in BUDGET_OPTIONS if given[m] is not None]
        if len(modes) != 1:
            raise UserError("give exactly one of --flops, --gpu-hours, --gpus/--days, --target-loss or --preset "
                            f"(got {', '.join('--' + m.replace('_', '-') for m in modes) or 'none'})")
        if flops is not None:
            return cls.from_flops(flops)
        if gpu_hours is not None:
            return cls.from_gpu_hours(gpu_hours, gpu, mfu)
        if days is not None:
            if gpus is None:
                raise UserError("--days needs --gpus N (and --gpu NAME)")
            return cls.from_gpu_days(gpus, days, gpu, mfu)
        return None

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> "Budget":
        """plan.yaml's ``budget`` section, every field checked (planner.schema)."""
        rules = {**dict.fromkeys(("flops", "n_gpus", "days", "gpu_hours"), "positive"), "mfu": "fraction"}
        return cls(**check_record(cls, d, "plan section budget", fix=PLAN_FIX, rules=rules))


def _check_mfu(mfu: float) -> float:
    if not isinstance(mfu, (int, float)) or not (0 < mfu <= 1):
        raise UserError(f"MFU must be a fraction in (0, 1], got {mfu!r} (e.g. 0.4 for 40%)")
    return float(mfu)
