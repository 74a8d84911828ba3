"""The proxy training loop: ``train(cfg, out_dir)`` and ``train_wsd_branches(cfg, budgets, out_dir)``.

Conventions:
* loss = natural-log cross-entropy per token (nats); ``tokens`` = optimizer steps x batch x seq_len.
* Batches: ``batch`` random windows of ``seq_len + 1`` tokens from train.bin, drawn with a torch
  Generator seeded by ``seed`` (its state is checkpointed, so a resumed run sees the same data).
* Evaluation: ``eval_batches`` x ``batch`` fixed, evenly spaced windows of val.bin (identical for
  every run on the same data), at step 0, every ``eval_every`` steps and at the end.
* Divergence rule: a non-finite train/val loss, or a train loss above
  ``running minimum + DIVERGE_NATS`` (3 nats = a 20x rise in perplexity, far beyond batch noise)
  stops the run with status ``diverged`` and a ``reason``; no exception.
* FLOPs: ``flops_6n`` = 6 N_total D (Hoffmann et al. 2022); ``flops_with_attention`` uses the
  PaLM count (Chowdhery et al. 2022, App. B: 6 N_matmul + 12 L H Q T per token), both from
  ``planner.shape.ModelShape`` so proxy counts agree with the planner. ``flops`` = ``flops_6n``.
* Checkpoints (``ckpt.pt``): model + optimizer + RNG + step + curves, written atomically with
  ``torch.save`` and read back with ``torch.load(weights_only=True)``; removed once run.json is final.
"""
from __future__ import annotations

import json
import math
import os
import platform
import sys
import time
from pathlib import Path
from typing import Callable

import torch
import torch.nn.functional as F

from planner import __version__
from planner.errors import UserError
from planner.io import ensure_dir, read_json, write_json
from planner.shape import ModelShape
from proxy_train.config import TrainConfig
from proxy_train.data import TokenData
from proxy_train.model import FFN_RULE, Transformer, branch_multiplier, build_model, model_config, width_mult
from proxy_train.schedules import cooldown_start, lr_factor

DIVERGE_NATS = 3.0
FINAL_STATUSES = ("ok", "diverged")
_DEPTH_ALPHA = {"none": None, "depth-mup": 0.5, "completep": 1.0}


class _Diverged(Exception):
    pass


def resolve_device(name: str) -> torch.device:
    if name == "cuda" or (name == "auto" and torch.cuda.is_available()):
        if not torch.cuda.is_available():
            raise UserError("--device cuda but torch sees no CUDA GPU; use --device cpu or auto")
        torch.backends.cuda.matmul.allow_tf32 = True
        torch.backends.cudnn.allow_tf32 = True
        return torch.device("cuda")
    return torch.device("cpu")


def versions() -> dict:
    import mup
    return {"python": platform.python_version(), "torch": torch.__version__,
            "mup": getattr(mup, "__version__", "1.0.0"), "scaleplan": __version__}


def model_shape(cfg: TrainConfig, vocab_size: int) -> ModelShape:
    m = model_config(vocab_size, cfg.d_model, cfg.n_layers, n_heads=cfg.n_heads, head_dim=cfg.head_dim)
    return ModelShape(n_layers=cfg.n_layers, d_model=cfg.d_model, d_ffn=m.d_ffn, n_heads=m.n_heads,
                      head_dim=m.head_dim, vocab_size=vocab_size, seq_len=cfg.seq_len, tied=False)


def make_optimizer(model: Transformer, cfg: TrainConfig) -> torch.optim.Optimizer:
    """AdamW param groups by role; each group remembers ``base_lr`` for relative scheduling.

    μP + wd_rule ``mup``: ``mup.MuAdamW`` divides hidden LR by m_d and multiplies hidden wd by m_d.
    μP + wd_rule ``unscaled``: our own groups, hidden LR / m_d, wd unchanged (nanoGPT-mup rule).
    SP: torch AdamW, the same LR and wd for every group. Norm gains never decay.
    Depth (α = 1/2 depth-μP, α = 1 CompleteP; Dey et al. 2025 Table 1, m_L = L / L_base):
    block hidden and block-norm LR x m_L^(α-1); block AdamW eps x m_L^(-α) / m_d.
    """
    alpha = _DEPTH_ALPHA[cfg.depth_scaling]
    m_L = cfg.n_layers / (cfg.base_depth or cfg.n_layers)
    m_d = width_mult(model)
    groups: dict[str, dict] = {}
    for name, p in model.named_parameters():
        kind = model.param_kind(name)
        in_block = name.startswith("blocks.")
        key = kind if kind != "norm" else ("block_norm" if in_block else "final_norm")
        lr, eps = cfg.lr, cfg.eps
        if alpha is not None and in_block:
            lr *= m_L ** (alpha - 1.0)
            eps *= m_L ** (-alpha) / m_d
        wd = 0.0 if kind == "norm" else cfg.weight_decay
        if cfg.parameterization == "mup" and cfg.wd_rule == "unscaled" and kind == "hidden":
            wm = float(p.infshape.width_mult())
            lr /= wm
            key = f"hidden@{wm:.6g}"
        g = groups.setdefault(key, {"params": [], "kind": key, "lr": lr, "weight_decay": wd, "eps": eps})
        g["params"].append(p)
    param_groups = list(groups.values())
    if cfg.parameterization == "mup" and cfg.wd_rule == "mup":
        from mup import MuAdamW
        opt = MuAdamW(param_groups, lr=cfg.lr, betas=tuple(cfg.betas), eps=cfg.eps, weight_decay=cfg.weight_decay)
    else:
        opt = torch.optim.AdamW(param_groups, lr=cfg.lr, betas=tuple(cfg.betas), eps=cfg.eps, weight_decay=cfg.weight_decay)
    for g in opt.param_groups:
        g["base_lr"] = g["lr"]
        if g["params"] and hasattr(g["params"][0], "infshape"):
            g["width_mult"] = float(g["params"][0].infshape.width_mult()) if g["params"][0].infshape.ninf() == 2 else 1.0
    return opt


def _clone(obj):
    """Deep copy of a state dict made of tensors, containers and scalars (no model deepcopy)."""
    if torch.is_tensor(obj):
        return obj.detach().clone()
    if isinstance(obj, dict):
        return {k: _clone(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return type(obj)(_clone(v) for v in obj)
    return obj


class Trainer:
    """One model + optimizer + data stream; ``run_until(step)`` advances it."""

    def __init__(self, cfg: TrainConfig, data: TokenData, device: torch.device | None = None):
        self.cfg, self.data = cfg, data
        self.device = device or resolve_device(cfg.device)
        torch.manual_seed(cfg.seed)
        fixed_heads = cfg.n_heads is not None
        if cfg.parameterization == "mup":
            unit = cfg.n_heads if fixed_heads else cfg.resolved_head_dim
            if cfg.base_width % unit:
                raise UserError(f"base width {cfg.base_width} is not divisible by the "
                                f"{'head count' if fixed_heads else 'head size'} {unit}; choose another --base-width")
        mcfg = model_config(
            data.vocab_size, cfg.d_model, cfg.n_layers, n_heads=cfg.n_heads, head_dim=cfg.head_dim,
            parameterization=cfg.parameterization, alpha_in=cfg.alpha_in, alpha_out=cfg.alpha_out, attn_mult=cfg.attn_mult,
            init_std=cfg.init_std, readout_zero_init=cfg.zero_readout, query_zero_init=cfg.zero_query,
            branch_mult=branch_multiplier(cfg.depth_scaling, cfg.n_layers, cfg.base_depth or cfg.n_layers),
            max_seq_len=cfg.seq_len)
        self.model = build_model(mcfg, base_width=cfg.base_width, fixed_heads=fixed_heads).to(self.device)
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
        return _clone({"model": self.model.state_dict(), "optimizer": self.optimizer.state_dict(),
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
        st = self.state()
        st["config_hash"] = config_hash
        tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
        torch.save(st, tmp)
        os.replace(tmp, path)

    def try_resume(self, path: Path, config_hash: str) -> bool:
        if not path.exists():
            return False
        try:
            st = torch.load(path, map_location=self.device, weights_only=True)
        except Exception:  # a corrupt checkpoint: start over rather than crash
            return False
        if st.get("config_hash") != config_hash:
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
        logits = self.forward(x)
        loss = F.cross_entropy(logits.float().view(-1, logits.size(-1)), y.reshape(-1))
        self.optimizer.zero_grad(set_to_none=True)
        loss.backward()
        if cfg.clip > 0:
            torch.nn.utils.clip_grad_norm_(self.model.parameters(), cfg.clip)
        self.optimizer.step()
        self.step += 1
        return loss.item()

    def run_until(self, end_step: int, total_steps: int, *, ckpt: Path | None = None, config_hash: str = "",
                  on_eval: Callable | None = None, desc: str = "train") -> tuple[str, str | None]:
        """Train to ``end_step`` with the schedule of a ``total_steps`` run; returns (status, reason)."""
        from tqdm import tqdm

        cfg = self.cfg
        warm = cfg.resolved_warmup_steps
        eval_every = cfg.eval_every or max(1, total_steps // 10)
        ckpt_every = cfg.ckpt_every or eval_every
        tps = cfg.tokens_per_step
        if self.step == 0 and not self.curve["val"]:
            self._eval_point(on_eval)
        bar = tqdm(total=end_step, initial=self.step, desc=desc, unit="step", file=sys.stderr,
                   disable=not cfg.progress, leave=False)
        try:
            while self.step < end_step:
                f = lr_factor(self.step, total_steps, schedule=cfg.schedule, warmup_steps=warm,
                              cooldown_frac=cfg.cooldown_frac, min_lr_frac=cfg.min_lr_frac,
                              cooldown_shape=cfg.cooldown_shape)
                t0 = time.perf_counter()
                loss = self.train_step(f)
                if self.device.type == "cuda":
                    torch.cuda.synchronize()
                self.train_time += time.perf_counter() - t0
                self.last_train_loss = loss
                self.curve["train"].append([self.step, self.step * tps, loss])
                bar.update(1)
                if not math.isfinite(loss):
                    return "diverged", f"non-finite train loss at step {self.step}"
                if loss > self.running_min + DIVERGE_NATS:
                    return "diverged", (f"train loss {loss:.3f} at step {self.step} is more than {DIVERGE_NATS} "
                                        f"nats above the running minimum {self.running_min:.3f}")
                self.running_min = min(self.running_min, loss)
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

    # ------------------------------------------------------------------ record
    def record(self, status: str, reason: str | None, config_hash: str, extra: dict | None = None) -> dict:
        cfg, data = self.cfg, self.data
        shape = model_shape(cfg, data.vocab_size)
        n_model = sum(p.numel() for p in self.model.parameters())
        assert n_model == shape.total_params, (n_model, shape.total_params)
        tokens = self.step * cfg.tokens_per_step
        m_d = width_mult(self.model)
        groups = []
        for g in self.optimizer.param_groups:
            if not g["params"]:
                continue
            kind = g["kind"]
            wm = g.get("width_mult", 1.0)
            if kind.startswith("hidden"):
                init = cfg.init_std / math.sqrt(wm) if cfg.parameterization == "mup" else cfg.init_std
            elif kind == "readout":
                init = 0.0 if cfg.zero_readout else cfg.init_std
            elif kind == "embedding":
                init = cfg.init_std
            else:
                init = None  # norm gains start at 1
            groups.append({"kind": kind, "n_params": sum(p.numel() for p in g["params"]), "width_mult": wm,
                           "lr": g["base_lr"], "weight_decay": g["weight_decay"], "eps": g["eps"], "init_std": init})
        val_last = self.curve["val"][-1][2] if self.curve["val"] else None
        rec = {
            "status": status,
            **({"reason": reason} if reason else {}),
            "config_hash": config_hash,
            "run_id": f"{cfg.parameterization}-d{cfg.d_model}-L{cfg.n_layers}-t{tokens}-s{cfg.seed}",
            "total_params": shape.total_params,
            "non_embedding_params": shape.non_embedding_params,
            "tokens": tokens,
            "steps": self.step,
            "flops": shape.flops_per_token_6n * tokens,
            "flops_6n": shape.flops_per_token_6n * tokens,
            "flops_with_attention": shape.flops_per_token_palm * tokens,
            "flops_with_attention_convention": "palm: 6 N_matmul + 12 L H Q T per token",
            "final_train_loss": self.last_train_loss,
            "final_val_loss": val_last,
            "loss_units": "nats/token",
            "d_model": cfg.d_model, "n_layers": cfg.n_layers,
            "shape": {**shape.to_dict(), "ffn_rule": FFN_RULE},
            "curve": {"train": self.curve["train"], "val": self.curve["val"],
                      "columns": ["step", "tokens", "loss"]},
            "schedule": cfg.schedule,
            "parameterization": cfg.parameterization,
            "wd_rule": cfg.wd_rule,
            "depth_scaling": {"rule": cfg.depth_scaling, "base_depth": cfg.base_depth or cfg.n_layers,
                              "branch_mult": self.model.cfg.branch_mult},
            "seed": cfg.seed,
            "hyperparameters": {
                "base": {"lr": cfg.lr, "init_std": cfg.init_std, "alpha_in": cfg.alpha_in, "alpha_out": cfg.alpha_out,
                         "attn_mult": cfg.attn_mult, "weight_decay": cfg.weight_decay, "betas": list(cfg.betas), "eps": cfg.eps,
                         "base_width": cfg.base_width, "width_mult": m_d,
                         "attention_scale": self.model.blocks[0].attn.scale,
                         "readout_zero_init": cfg.zero_readout, "query_zero_init": cfg.zero_query,
                         "warmup_steps": cfg.resolved_warmup_steps},
                "groups": groups,
            },
            "config": cfg.to_dict(),
            "wall_time_s": self.train_time,
            "tokens_per_s": tokens / self.train_time if self.train_time > 0 else None,
            "device": str(self.device),
            "threads": torch.get_num_threads(),
            "versions": versions(),
            "data": {"path": str(data.path), "sha256": data.meta["sha256"], "vocab_size": data.vocab_size},
            "meta": {"scaleplan": __version__, "command": cfg.extra.get("command", "proxy_train.train.train")},
        }
        if extra:
            rec.update(extra)
        return rec


def _open_data(cfg: TrainConfig) -> TokenData:
    cfg.validate()
    data = TokenData(cfg.data)
    data.check_seq_len(cfg.seq_len)
    if cfg.threads:
        torch.set_num_threads(cfg.threads)
    return data


def _finish(tr: Trainer, out_dir: Path, chash: str, run, extra: dict | None = None) -> dict:
    """Run ``run()``; write run.json whatever happens (ok/diverged, stopped/failed then re-raise)."""
    ckpt = out_dir / "ckpt.pt"
    try:
        status, reason = run()
    except BaseException as e:
        stopped = getattr(e, "_scaleplan_on_eval", False) or isinstance(e, KeyboardInterrupt)
        try:
            tr.save_ckpt(ckpt, chash)
        except Exception:
            pass
        write_json(out_dir / "run.json", tr.record("stopped" if stopped else "failed",
                                                   f"{type(e).__name__}: {e}", chash, extra))
        raise
    rec = tr.record(status, reason, chash, extra)
    write_json(out_dir / "run.json", rec)
    ckpt.unlink(missing_ok=True)
    return rec


def _finished(out_dir: Path, chash: str) -> dict | None:
    path = out_dir / "run.json"
    if path.exists():
        try:
            rec = read_json(path)
        except UserError:
            return None
        if rec.get("config_hash") == chash and rec.get("status") in FINAL_STATUSES:
            return rec
    return None


def train(cfg: TrainConfig, out_dir: str | Path, *, on_eval: Callable | None = None) -> dict:
    """Train one proxy run; writes ``out_dir/run.json`` and returns it (see module docstring).

    Resumable: a finished run (status ok/diverged, same config and data) is returned as is; an
    unfinished one continues from ``out_dir/ckpt.pt``.
    """
    data = _open_data(cfg)
    out_dir = ensure_dir(out_dir, "run folder")
    chash = cfg.config_hash(data.meta["sha256"])
    done = _finished(out_dir, chash)
    if done is not None:
        return done
    tr = Trainer(cfg, data)
    ckpt = out_dir / "ckpt.pt"
    tr.try_resume(ckpt, chash)
    total = cfg.total_steps
    return _finish(tr, out_dir, chash,
                   lambda: tr.run_until(total, total, ckpt=ckpt, config_hash=chash, on_eval=on_eval))


def train_wsd_branches(cfg: TrainConfig, token_budgets, out_dir: str | Path, cooldown_frac: float = 0.2) -> list[dict]:
    """One warmup + stable phase; a cooldown branch to each budget (Hägele et al. 2024, arXiv:2405.18392).

    Branch b starts from the stable-phase state at update ``cooldown_start(steps_b, cooldown_frac)``
    (i.e. (1 - cooldown_frac) b tokens) and cools down to b, so it is the same computation as a
    standalone WSD run of b tokens with the same seed and warmup (warmup = ``cfg.warmup_steps``, else
    ``warmup_frac`` x the smallest budget's steps). Writes ``branch_<tokens>/run.json`` per budget
    and ``summary.json`` with the compute actually used (the shared stable phase counted once).
    Resumable: finished branches are skipped; the stable phase is checkpointed at each branch point.
    """
    budgets = list(token_budgets) if token_budgets is not None else []
    if not budgets:
        raise UserError("no token budgets given; pass one or more positive token counts")
    for b in budgets:
        if isinstance(b, bool) or not isinstance(b, (int, float)) or not math.isfinite(b) or b <= 0:
            raise UserError(f"token budgets must be positive numbers, got {b!r}")
    if not (0.0 < cooldown_frac < 1.0):
        raise UserError(f"cooldown fraction must be in (0, 1), got {cooldown_frac}")
    budgets = sorted({int(b) for b in budgets})
    tps = cfg.tokens_per_step
    steps = {b: max(1, math.ceil(b / tps)) for b in budgets}
    warm = cfg.warmup_steps if cfg.warmup_steps is not None else int(round(cfg.warmup_frac * steps[budgets[0]]))
    base = cfg.replace(schedule="wsd", cooldown_frac=cooldown_frac, warmup_steps=warm, steps=None, tokens=budgets[-1])
    data = _open_data(base)
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)

    def branch_cfg(b):
        return base.replace(tokens=steps[b] * tps)

    def stable_end(b):
        return max(warm, cooldown_start(steps[b], cooldown_frac))

    stable_hash = base.replace(tokens=None, steps=stable_end(budgets[-1])).config_hash(data.meta["sha256"])
    stable_dir = out_dir / "stable"
    stable_dir.mkdir(exist_ok=True)
    stable_ckpt = stable_dir / "ckpt.pt"
    records: dict[int, dict] = {}
    pending = []
    for b in budgets:
        bdir = out_dir / f"branch_{steps[b] * tps}"
        rec = _finished(bdir, branch_cfg(b).config_hash(data.meta["sha256"]))
        if rec is not None:
            records[b] = rec
        else:
            pending.append(b)

    stable = None
    stable_status: tuple[str, str | None] = ("ok", None)
    for b in pending:
        bcfg = branch_cfg(b)
        bhash = bcfg.config_hash(data.meta["sha256"])
        bdir = out_dir / f"branch_{steps[b] * tps}"
        bdir.mkdir(exist_ok=True)
        extra = {"branch": {"stable_end_step": stable_end(b), "stable_end_tokens": stable_end(b) * tps,
                            "cooldown_frac": cooldown_frac, "warmup_steps": warm, "max_budget": budgets[-1],
                            "summary": str(out_dir / "summary.json")}}
        br = Trainer(bcfg, data)
        if not br.try_resume(bdir / "ckpt.pt", bhash):
            if stable is None:
                stable = Trainer(base, data)
                stable.try_resume(stable_ckpt, stable_hash)
                if stable.step > stable_end(b):  # should not happen; rebuild rather than branch late
                    stable = Trainer(base, data)
            if stable_status[0] == "ok" and stable.step < stable_end(b):
                stable_status = stable.run_until(stable_end(b), steps[budgets[-1]], ckpt=stable_ckpt,
                                                 config_hash=stable_hash, desc="stable")
                stable.save_ckpt(stable_ckpt, stable_hash)
            br.load_state(stable.state())
            if stable_status[0] != "ok":
                rec = br.record("diverged", f"stable phase: {stable_status[1]}", bhash, extra)
                write_json(bdir / "run.json", rec)
                records[b] = rec
                continue
        records[b] = _finish(br, bdir, bhash, lambda: br.run_until(
            steps[b], steps[b], ckpt=bdir / "ckpt.pt", config_hash=bhash, desc=f"cooldown {b}"), extra)

    out = [records[b] for b in budgets]
    stable_tokens = stable_end(budgets[-1]) * tps
    cool = {r["tokens"]: r["tokens"] - r["branch"]["stable_end_tokens"] if "branch" in r else 0 for r in out}
    used_tokens = stable_tokens + sum(cool.values())
    n_total = out[0]["total_params"]
    summary = {
        "budgets": [r["tokens"] for r in out],
        "branches": [{"tokens": r["tokens"], "status": r["status"], "final_val_loss": r["final_val_loss"],
                      "stable_end_tokens": r.get("branch", {}).get("stable_end_tokens"),
                      "cooldown_tokens": cool[r["tokens"]], "dir": f"branch_{r['tokens']}"} for r in out],
        "compute_used": {"tokens": used_tokens, "flops_6n": 6.0 * n_total * used_tokens,
                         "stable_tokens": stable_tokens, "cooldown_tokens": sum(cool.values()),
                         "separate_runs_tokens": sum(r["tokens"] for r in out),
                         "saving_vs_separate_runs": 1.0 - used_tokens / sum(r["tokens"] for r in out)},
        "cooldown_frac": cooldown_frac, "warmup_steps": warm,
        "config": base.to_dict(),
        "meta": {"scaleplan": __version__, "command": cfg.extra.get("command", "proxy_train.train.train_wsd_branches")},
    }
    write_json(out_dir / "summary.json", summary)
    if all(r["status"] in FINAL_STATUSES for r in out):
        stable_ckpt.unlink(missing_ok=True)
    return out
