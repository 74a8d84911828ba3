"""Training time and cost from an exact FLOPs count, and budget conversions back to FLOPs.

The one relation used everywhere (the definition of MFU, Chowdhery et al. 2022, App. B):

    model FLOPs per second achieved = MFU x n_gpus x peak_bf16_flops
    wall-clock seconds              = total_flops / (MFU x n_gpus x peak)
    GPU-hours                       = n_gpus x wall-clock hours
    cost                            = GPU-hours x price per GPU-hour

``total_flops`` must be *model* FLOPs (no recomputation counted); the FLOPs convention (Megatron's
causal count, PaLM's 6N + 12LHQT, plain 6N) is the caller's choice and must match the one the MFU
prior was measured with (see planner/shape.py). Recomputation shows up as a *lower* MFU, not as more
FLOPs (MFU vs HFU, Chowdhery et al. 2022).

Default MFU priors (``GPU.default_mfu``, planner/hardware.py), from reported dense BF16 runs:

* H100/H200: 0.40. Megatron-LM README: 41-48% MFU on H100 for 2B-462B models; Llama 3 paper
  Table 4: 38-43% on 8k-16k H100s; torchtitan Llama-3.1-8B FSDP: 33-39%; MosaicML llm-foundry
  MPT on H100 BF16: 36.7-45.7%. 0.40 is the middle of the 35-45% band.
* A100: 0.45. MosaicML llm-foundry MPT on A100 80GB: 47-60%; we take the lower end because
  A100 clusters often have slower interconnects than the benchmark systems.
* B200/GB200: 0.30. The peak doubled against H100 while HBM bandwidth grew ~2.3x and network
  bandwidth per GPU ~2x, and kernels for the new part are younger; published dense BF16 MFUs
  were not available to us, so we plan conservatively. Override with a measured value.
* H100 PCIe, L40S: 0.35 (PCIe-attached, little or no NVLink: data parallel only, slower reduce).
* MI300X: 0.30 (no published large-scale dense BF16 MFU in our sources; conservative).
"""
from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Any

from planner.errors import UserError, nonneg_number, positive_number
from planner.schema import check_record
from planner.hardware import DEFAULT_PRICE_PER_GPU_HOUR, GPU, get_gpu

SECONDS_PER_HOUR = 3600.0
SECONDS_PER_DAY = 86400.0


def _check_mfu(mfu: float) -> float:
    m = positive_number(mfu, "MFU")
    if m > 1:
        raise UserError(f"MFU must be a fraction in (0, 1], got {mfu!r}; write 40% as 0.40")
    return m


def resolve_mfu(gpu: GPU | str, mfu: float | None) -> float:
    """The given MFU, or the GPU's documented prior when ``mfu`` is None."""
    g = get_gpu(gpu)
    return g.default_mfu if mfu is None else _check_mfu(mfu)


@dataclass(frozen=True)
class TimeEstimate:
    """Wall-clock time and cost of ``total_flops`` on ``n_gpus`` GPUs at utilisation ``mfu``."""

    total_flops: float
    gpu: str
    n_gpus: int
    mfu: float
    price_per_gpu_hour: float
    achieved_flops_per_gpu: float  # mfu x peak, FLOP/s
    seconds: float

    @property
    def hours(self) -> float:
        return self.seconds / SECONDS_PER_HOUR

    @property
    def days(self) -> float:
        return self.seconds / SECONDS_PER_DAY

    @property
    def gpu_hours(self) -> float:
        return self.n_gpus * self.hours

    @property
    def cost(self) -> float:
        return self.gpu_hours * self.price_per_gpu_hour

    def to_dict(self) -> dict[str, Any]:
        d = asdict(self)
        d.update(hours=self.hours, days=self.days, gpu_hours=self.gpu_hours, cost=self.cost, currency="USD")
        return d

    @classmethod
    def from_dict(cls, d: dict[str, Any], where: str = "time/cost", fix: str = "fix the value") -> "TimeEstimate":
        """Inverse of :meth:`to_dict`, every field checked (planner.schema); the derived hours, days,
        GPU-hours, cost and currency are recomputed."""
        rules = {**dict.fromkeys(("total_flops", "n_gpus", "achieved_flops_per_gpu", "seconds"), "positive"),
                 "mfu": "fraction", "price_per_gpu_hour": "nonneg"}
        return cls(**check_record(cls, d, where, fix=fix, rules=rules,
                                  ignored=("hours", "days", "gpu_hours", "cost", "currency")))


def estimate_time(total_flops: float, gpu: GPU | str, n_gpus: int, mfu: float | None = None, *,
                  price_per_gpu_hour: float = DEFAULT_PRICE_PER_GPU_HOUR) -> TimeEstimate:
    """Time and cost to spend ``total_flops`` model FLOPs: seconds = C / (MFU x n_gpus x peak).

    ``mfu`` defaults to the GPU's prior (module docstring); ``price_per_gpu_hour`` defaults to the
    placeholder ``DEFAULT_PRICE_PER_GPU_HOUR`` (pass your own).
    """
    g = get_gpu(gpu)
    c = positive_number(total_flops, "total FLOPs")
    n = _n_gpus(n_gpus)
    m = resolve_mfu(g, mfu)
    price = nonneg_number(price_per_gpu_hour, "price per GPU-hour")
    achieved = m * g.peak_bf16_flops
    return TimeEstimate(total_flops=c, gpu=g.name, n_gpus=n, mfu=m, price_per_gpu_hour=price,
                        achieved_flops_per_gpu=achieved, seconds=c / (achieved * n))


def flops_from_gpu_hours(gpu_hours: float, gpu: GPU | str, mfu: float | None = None) -> float:
    """Model FLOPs a budget of GPU-hours buys: C = GPU-hours x 3600 x peak x MFU."""
    g = get_gpu(gpu)
    return positive_number(gpu_hours, "GPU-hours") * SECONDS_PER_HOUR * g.peak_bf16_flops * resolve_mfu(g, mfu)


def flops_from_gpu_days(n_gpus: int, days: float, gpu: GPU | str, mfu: float | None = None) -> float:
    """Model FLOPs of ``n_gpus`` GPUs for ``days`` days: C = n x days x 86400 x peak x MFU."""
    return flops_from_gpu_hours(_n_gpus(n_gpus) * positive_number(days, "days") * 24.0, gpu, mfu)


def flops_from_cost(dollars: float, gpu: GPU | str, mfu: float | None = None, *,
                    price_per_gpu_hour: float = DEFAULT_PRICE_PER_GPU_HOUR) -> float:
    """Model FLOPs a money budget buys: GPU-hours = dollars / price, then as above."""
    price = positive_number(price_per_gpu_hour, "price per GPU-hour")
    return flops_from_gpu_hours(positive_number(dollars, "budget (US$)") / price, gpu, mfu)


def mfu_from_throughput(tokens_per_second_per_gpu: float, flops_per_token: float, gpu: GPU | str) -> float:
    """MFU of a measured run: tokens/s/GPU x FLOPs/token / peak (torchtitan's and PaLM's definition)."""
    g = get_gpu(gpu)
    tokens_per_second = positive_number(tokens_per_second_per_gpu, "tokens/s/GPU")
    return tokens_per_second * positive_number(flops_per_token, "FLOPs/token") / g.peak_bf16_flops


def _n_gpus(n: int) -> int:
    if isinstance(n, bool) or not isinstance(n, (int,)) or n <= 0:
        try:
            if float(n) == int(n) and int(n) > 0 and not isinstance(n, bool):
                return int(n)
        except (TypeError, ValueError):
            pass
        raise UserError(f"number of GPUs must be a positive integer, got {n!r}")
    return n


__all__ = ["TimeEstimate", "estimate_time", "flops_from_gpu_hours", "flops_from_gpu_days", "flops_from_cost",
           "mfu_from_throughput", "resolve_mfu"]
