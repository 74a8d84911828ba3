"""Where a proxy trains: ``--device auto|cpu|cuda``, bf16 autocast on CUDA, one GPU per worker, MFU.

Conventions:
* ``auto`` is ``cuda`` when torch sees a CUDA GPU, else ``cpu``. The device is a runtime field of
  ``TrainConfig`` (not in the config hash), so the same run checkpointed on one device resumes on
  another; the training code is the same, only tensors are moved (``Trainer.device``).
* Mixed precision: on CUDA the forward pass runs under ``torch.autocast("cuda", dtype=torch.bfloat16)``
  (weights, optimizer state and the loss stay fp32: the trainer casts logits to fp32 before the
  cross-entropy); on CPU nothing changes (fp32), so CPU results are bit-identical to before.
* Several GPUs on one machine: worker ``i`` of ``n`` sees only GPU ``i mod n_gpus`` through
  ``CUDA_VISIBLE_DEVICES`` (:func:`worker_env`), so each proxy owns one GPU. Under SLURM
  ``--gres=gpu:1`` the scheduler sets ``CUDA_VISIBLE_DEVICES`` itself and it is left alone.
* **tokens/s** = tokens / the timed training steps' wall time (``run.json`` ``tokens_per_s``; evaluations
  excluded). **MFU** = tokens/s x training FLOPs per token / the device's peak dense bf16 FLOP/s
  (Chowdhery et al. 2022, PaLM App. B); FLOPs per token are the PaLM count ``flops_with_attention /
  tokens`` (6 N_matmul + 12 L H Q T). Peak FLOP/s: the table ``PEAK_BF16_FLOPS`` (vendor datasheets,
  dense, SXM parts) or ``$SCALEPLAN_PEAK_FLOPS``; a CPU has no agreed peak, so its MFU is None unless
  that variable is set.
"""
from __future__ import annotations

import contextlib
import os

from planner.errors import UserError

DEVICES = ("auto", "cpu", "cuda")
PEAK_ENV = "SCALEPLAN_PEAK_FLOPS"
# Dense bf16 tensor-core peak FLOP/s (without sparsity), from the vendor datasheets:
# NVIDIA H100 SXM5 / H200 SXM: 989.4 TFLOPS; A100 SXM4: 312 TFLOPS; L40S: 362.05 TFLOPS;
# A10: 125 TFLOPS; L4: 121 TFLOPS; V100 has no bf16 (fp16 tensor core 125 TFLOPS, used here).
PEAK_BF16_FLOPS = {"H200": 989.4e12, "H100": 989.4e12, "A100": 312e12, "L40S": 362.05e12,
                   "A10": 125e12, "L4": 121e12, "V100": 125e12}


def check_device(name: str) -> str:
    if name not in DEVICES:
        raise UserError(f"--device must be auto, cpu or cuda, got {name!r}")
    return name


def resolve(name: str) -> str:
    """``cpu`` or ``cuda`` for ``auto | cpu | cuda``; UserError when cuda is asked and absent."""
    import torch

    check_device(name)
    if name == "cuda" and not torch.cuda.is_available():
        raise UserError("--device cuda but torch sees no CUDA GPU; use --device cpu or auto")
    return "cuda" if name == "cuda" or (name == "auto" and torch.cuda.is_available()) else "cpu"


def autocast(device) -> contextlib.AbstractContextManager:
    """bf16 autocast on a CUDA device, a no-op elsewhere (see the module docstring)."""
    import torch

    if getattr(device, "type", str(device)) == "cuda":
        return torch.autocast("cuda", dtype=torch.bfloat16)
    return contextlib.nullcontext()


def worker_env(index: int, device: str, n_gpus: int | None = None, env: dict | None = None) -> dict:
    """The environment of local worker ``index``: one GPU each (``CUDA_VISIBLE_DEVICES``) when the
    workers train on CUDA and several GPUs are visible; unchanged otherwise."""
    env = dict(os.environ if env is None else env)
    if device == "cpu":
        return env
    if n_gpus is None:
        n_gpus = visible_gpus(env)
    if n_gpus > 1:
        ids = env.get("CUDA_VISIBLE_DEVICES")
        pool = [t for t in ids.split(",") if t.strip()] if ids else [str(i) for i in range(n_gpus)]
        env["CUDA_VISIBLE_DEVICES"] = pool[index % len(pool)]
    return env


def visible_gpus(env: dict | None = None) -> int:
    ids = (env if env is not None else os.environ).get("CUDA_VISIBLE_DEVICES")
    if ids is not None:
        return len([t for t in ids.split(",") if t.strip()])
    try:
        import torch

        return torch.cuda.device_count()
    except Exception:  # pragma: no cover - a broken CUDA install counts as none
        return 0


def peak_flops(device: str, name: str | None = None) -> float | None:
    """Peak dense bf16 FLOP/s of ``device`` (``cuda``: matched on the GPU's name), or None."""
    env = os.environ.get(PEAK_ENV)
    if env:
        try:
            return float(env)
        except ValueError:
            raise UserError(f"${PEAK_ENV} must be a number of FLOP/s like 989e12, got {env!r}") from None
    if not str(device).startswith("cuda"):
        return None
    if name is None:
        import torch

        name = torch.cuda.get_device_name() if torch.cuda.is_available() else ""
    for key in sorted(PEAK_BF16_FLOPS, key=len, reverse=True):  # L40S before L4
        if key in name.upper():
            return PEAK_BF16_FLOPS[key]
    return None


def throughput(run: dict, device_name: str | None = None) -> dict:
    """tokens/s, training FLOPs per token and MFU of a run.json dict (see the module docstring)."""
    tps = run.get("tokens_per_s")
    tokens = run.get("tokens") or 0
    per_token = (run.get("flops_with_attention") or run.get("flops") or 0) / tokens if tokens else None
    peak = peak_flops(run.get("device", "cpu"), device_name)
    mfu = tps * per_token / peak if (tps and per_token and peak) else None
    return {"tokens_per_s": tps, "flops_per_token": per_token, "peak_flops": peak, "mfu": mfu,
            "device": run.get("device"), "device_name": device_name}
