"""The proxy training loop: ``Trainer`` (one model + optimizer + data stream) and ``run_until(step)``.

Conventions:
* loss = natural-log cross-entropy per token (nats); ``tokens`` = optimizer steps x batch x seq_len.
* Batches: ``batch`` random windows of ``seq_len + 1`` tokens from train.bin, drawn with a torch
  Generator seeded by ``seed`` (its state is checkpointed, so a resumed run sees the same data).
* Evaluation: ``eval_batches`` x ``batch`` fixed, evenly spaced windows of val.bin (identical for
  every run on the same data), at step 0, every ``eval_every`` steps and at the end.
* Divergence rule: a non-finite train/val loss, or a train loss above
  ``running minimum + DIVERGE_NATS`` (3 nats = a 20x rise in perplexity, far beyond batch noise)
  stops the run with status ``diverged`` and a reason.
* Curves: ``[step, tokens, loss]`` rows, train at every step, val at every evaluation.
* Ctrl-C: under ``proxy_train.interrupts.graceful_sigint`` the loop stops only between two complete
  steps (``StopRequested``), so the state then checkpointed resumes exactly.
"""
from __future__ import annotations

import json
import math
import sys
import time
from pathlib import Path
from typing import Callable

import torch
import torch.nn.functional as F

from planner.errors import UserError
from proxy_train.checkpoint import clone_state, load_checkpoint, save_checkpoint
from proxy_train.config import TrainConfig
from proxy_train.data import TokenData
from proxy_train.device import autocast
from proxy_train.interrupts import StopRequested, stop_requested
from proxy_train.model import ModelConfig, branch_multiplier, build_model
from proxy_train.optim import make_optimizer
from proxy_train.schedules import lr_factor

DIVERGE_NATS = 3.0


def resolve_device(name: str) -> torch.device:
    if name == "cuda" or (name == "auto" and torch.cuda.is_available()):
        if not torch.cuda.is_available():
            raise UserError("--device cuda but torch sees no CUDA GPU; use --device cpu or auto")
        torch.backends.cuda.matmul.allow_tf32 = True
        torch.backends.cudnn.allow_tf32 = True
        return torch.device("cuda")
    return torch.device("cpu")


def model_config_for(cfg: TrainConfig, vocab_size: int) -> ModelConfig:
    """The module a TrainConfig trains: its shape (``cfg.model_shape``) and μP/SP multipliers."""
    return ModelConfig(
        shape=cfg.model_shape(vocab_size), parameterization=cfg.parameterization, alpha_in=cfg.alpha_in,
        alpha_out=cfg.alpha_out, attn_mult=cfg.attn_mult, init_std=cfg.init_std,
        readout_zero_init=cfg.zero_readout, query_zero_init=cfg.zero_query,
        branch_mult=branch_multiplier(cfg.depth_scaling, cfg.n_layers, cfg.base_depth or cfg.n_layers))


def _check_base_width(cfg: TrainConfig) -> None:
    if cfg.parameterization != "mup":
        return
    fixed_heads = cfg.n_heads is not None
    unit = cfg.n_heads if fixed_heads else cfg.resolved_head_dim
    if cfg.base_width % unit:
        raise UserError(f"base width {cfg.base_width} is not divisible by the "
                        f"{'head count' if fixed_heads else 'head size'} {unit}; choose another --base-width")


class Trainer:
    """One model + optimizer + data stream; ``run_until(step)`` advances it."""

    def __init__(self, cfg: TrainConfig, data: TokenData, device: torch.device | None = None):
        self.cfg, self.data = cfg, data
        self.device = device or resolve_device(cfg.device)
        torch.manual_seed(cfg.seed)
        _check_base_width(cfg)
        self.model = build_model(model_config_for(cfg, data.vocab_size), base_width=cfg.base_width,
                                 fixed_heads=cfg.n_heads is not None).to(self.device)
        self.optimizer = make_optimizer(self.model, cfg)
        self.forward = torch.compile(self.model) if cfg.compile else self.model
        self.gen = torch.Generator().manual_seed(cfg.seed + 1)
        n_val = cfg.eval_batches * cfg.batch
        self.val_starts = data.val_starts(n_val, cfg.seq_len)
        self.step, self.train_time = 0, 0.0
        self.curve: dict[str, list] = {"train": [], "val": []}
        self.running_min = math.inf
        self.last_train_loss = math.nan

    # ------------------------------------------------------------------ state
    def state(self) -> dict:
        return clone_state({"model": self.model.state_dict(), "optimizer": self.optimizer.state_dict(),
                            "gen": self.gen.get_state(), "torch_rng": torch.get_rng_state(), "step": self.step,
                            "info": json.dumps({"train_time": self.train_time, "curve": self.curve,
                                                "running_min": self.running_min, "last": self.last_train_loss})})

    def load_state(self, st: dict) -> None:
        self.model.load_state_dict(st["model"])
        self.optimizer.load_state_dict(st["optimizer"])
        self.gen.set_state(st["gen"])
        torch.set_rng_state(st["torch_rng"])
        self.step = int(st["step"])
        info = json.loads(st["info"])
        self.train_time, self.curve = info["train_time"], info["curve"]
        self.running_min, self.last_train_loss = info["running_min"], info["last"]
        self.running_min = math.inf if self.running_min is None else self.running_min

    def save_ckpt(self, path: Path, config_hash: str) -> None:
        save_checkpoint(path, self.state(), config_hash)

    def try_resume(self, path: Path, config_hash: str) -> bool:
        st = load_checkpoint(path, config_hash, self.device)
        if st is None:
            return False
        self.load_state(st)
        return True

    # ------------------------------------------------------------------ steps
    def _batch(self, split: str, starts):
        x, y = self.data.windows(split, starts, self.cfg.seq_len)
        return torch.from_numpy(x).to(self.device), torch.from_numpy(y).to(self.device)

    @torch.no_grad()
    def evaluate(self) -> float:
        self.model.eval()
        total, n = 0.0, 0
        b = self.cfg.batch
        for i in range(0, len(self.val_starts), b):
            x, y = self._batch("val", self.val_starts[i:i + b])
            with autocast(self.device):  # bf16 on CUDA, a no-op on CPU (proxy_train.device)
                logits = self.forward(x)
            total += F.cross_entropy(logits.float().view(-1, logits.size(-1)), y.reshape(-1), reduction="sum").item()
            n += y.numel()
        self.model.train()
        return total / n

    def train_step(self, lr_mult: float) -> float:
        cfg = self.cfg
        hi = len(self.data.train) - cfg.seq_len - 1
        starts = torch.randint(0, hi + 1, (cfg.batch,), generator=self.gen).tolist()
        x, y = self._batch("train", starts)
        for g in self.optimizer.param_groups:
            g["lr"] = g["base_lr"] * lr_mult
        with autocast(self.device):  # bf16 on CUDA, a no-op on CPU (proxy_train.device)
            logits = self.forward(x)
        loss = F.cross_entropy(logits.float().view(-1, logits.size(-1)), y.reshape(-1))
        self.optimizer.zero_grad(set_to_none=True)
        loss.backward()
        if cfg.clip > 0:
            torch.nn.utils.clip_grad_norm_(self.model.parameters(), cfg.clip)
        self.optimizer.step()
        self.step += 1
        return loss.item()

    def _timed_step(self, total_steps: int) -> float:
        cfg = self.cfg
        f = lr_factor(self.step, total_steps, schedule=cfg.schedule, warmup_steps=cfg.resolved_warmup_steps,
                      cooldown_frac=cfg.cooldown_frac, min_lr_frac=cfg.min_lr_frac, cooldown_shape=cfg.cooldown_shape)
        t0 = time.perf_counter()
        loss = self.train_step(f)
        if self.device.type == "cuda":
            torch.cuda.synchronize()
        self.train_time += time.perf_counter() - t0
        self.last_train_loss = loss
        self.curve["train"].append([self.step, self.step * cfg.tokens_per_step, loss])
        return loss

    def _divergence(self, loss: float) -> str | None:
        if not math.isfinite(loss):
            return f"non-finite train loss at step {self.step}"
        if loss > self.running_min + DIVERGE_NATS:
            return (f"train loss {loss:.3f} at step {self.step} is more than {DIVERGE_NATS} "
                    f"nats above the running minimum {self.running_min:.3f}")
        self.running_min = min(self.running_min, loss)
        return None

    def run_until(self, end_step: int, total_steps: int, *, ckpt: Path | None = None, config_hash: str = "",
                  on_eval: Callable | None = None, desc: str = "train") -> tuple[str, str | None]:
        """Train to ``end_step`` with the schedule of a ``total_steps`` run; returns (status, reason)."""
        from tqdm import tqdm

        cfg = self.cfg
        eval_every = cfg.eval_every or max(1, total_steps // 10)
        ckpt_every = cfg.ckpt_every or eval_every
        if self.step == 0 and not self.curve["val"]:
            self._eval_point(on_eval)
        bar = tqdm(total=end_step, initial=self.step, desc=desc, unit="step", file=sys.stderr,
                   disable=not cfg.progress, leave=False)
        try:
            while self.step < end_step:
                if stop_requested():  # SIGINT: stop here, between two complete steps
                    raise StopRequested(f"stopped at step {self.step}, checkpointed")
                loss = self._timed_step(total_steps)
                bar.update(1)
                reason = self._divergence(loss)
                if reason:
                    return "diverged", reason
                if self.step % eval_every == 0 or self.step == total_steps:
                    val = self._eval_point(on_eval)
                    if not math.isfinite(val):
                        return "diverged", f"non-finite validation loss at step {self.step}"
                if ckpt is not None and self.step % ckpt_every == 0 and self.step < end_step:
                    self.save_ckpt(ckpt, config_hash)
        finally:
            bar.close()
        if not self.curve["val"] or self.curve["val"][-1][0] != self.step:
            self._eval_point(on_eval)
        return "ok", None

    def _eval_point(self, on_eval) -> float:
        val = self.evaluate()
        tokens = self.step * self.cfg.tokens_per_step
        self.curve["val"].append([self.step, tokens, val])
        if on_eval is not None:
            try:
                on_eval(self.step, tokens, val)
            except BaseException as e:
                e._scaleplan_on_eval = True  # type: ignore[attr-defined]
                raise
        return val
