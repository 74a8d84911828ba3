"""Train proxy runs into run folders: ``train(cfg, out_dir)`` and ``train_wsd_branches(cfg, budgets, out_dir)``.

Conventions:
* A run folder holds ``run.json`` (``proxy_train.run_record``, written atomically) and, while the
  run is unfinished, ``ckpt.pt`` (``proxy_train.checkpoint``); the loop itself is
  ``proxy_train.trainer.Trainer`` (batches, evaluation, divergence rule). With ``keep_weights`` a
  finished run also keeps ``model.pt`` (final weights, ``proxy_train.inherit``); a run that ends
  ``ok`` gets the ``attention_diagnostic`` block (``proxy_train.attention_diagnostic``).
* Statuses: ``ok`` and ``diverged`` are final (a rerun with the same config and data returns the
  record as is); ``stopped`` (an ``on_eval`` callback raised, or Ctrl-C) and ``failed`` (any other
  exception) are written before the exception propagates, and a rerun resumes from the checkpoint.
* Checkpoints hold complete steps only: Ctrl-C is honoured at the next step boundary
  (:mod:`proxy_train.interrupts`) and checkpointed there, as is an ``on_eval`` exception (raised
  after its step); any other exception keeps the last periodic checkpoint, so every resume is exact.
* The config hash (``TrainConfig.config_hash`` with the data's sha256) decides "same run".
* WSD branches: one warmup + stable phase, a cooldown branched from a checkpoint at each budget
  (Hägele et al. 2024, arXiv:2405.18392); compute used is counted by
  ``proxy_train.schedules.wsd_branch_charges``.
"""
from __future__ import annotations

import math
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

import torch

from planner import __version__
from planner.errors import UserError
from planner.io import ensure_dir, read_json, write_json
from proxy_train.config import TrainConfig
from proxy_train.data import TokenData
from proxy_train import attention_diagnostic
from proxy_train.host import usable_cores
from proxy_train.inherit import WEIGHTS_FILE, check_compatible, save_weights
from proxy_train.inherit import apply as apply_inheritance
from proxy_train.limits import check_fits_memory, training_bytes
from proxy_train.interrupts import StopRequested, graceful_sigint
from proxy_train.run_record import run_record, versions
from proxy_train.schedules import cooldown_start, wsd_branch_charges
from proxy_train.trainer import Trainer

FINAL_STATUSES = ("ok", "diverged")
__all__ = ["train", "train_wsd_branches", "check_run_folder", "versions", "FINAL_STATUSES"]


def _open_data(cfg: TrainConfig) -> TokenData:
    cfg.validate()
    data = TokenData(cfg.data)
    data.check_seq_len(cfg.seq_len)
    check_memory(cfg, data.vocab_size)
    if cfg.threads:
        torch.set_num_threads(min(cfg.threads, usable_cores()))
    return data



def check_memory(cfg: TrainConfig, vocab: int) -> None:
    """UserError, before anything is allocated, when the run cannot fit the memory of the device it
    runs on (host memory on CPU, the GPU's total memory on CUDA)."""
    shape = cfg.model_shape(vocab)
    need = training_bytes(shape.counts()["total_params"], batch=cfg.batch, seq_len=cfg.seq_len,
                          d_model=cfg.d_model, n_layers=cfg.n_layers, vocab=vocab)
    what = f"a proxy run of d_model {cfg.d_model} x {cfg.n_layers} layers (batch {cfg.batch} x {cfg.seq_len} tokens)"
    cuda = cfg.device == "cuda" or (cfg.device == "auto" and torch.cuda.is_available())
    if cuda and torch.cuda.is_available():
        total = torch.cuda.get_device_properties(0).total_memory
        if need > total:
            raise UserError(f"{what} needs at least {need / 2**30:,.1f} GiB and the GPU has {total / 2**30:,.1f} GiB; "
                            "choose a smaller model or batch")
        return
    check_fits_memory(what, need, "choose a smaller model or batch")


def _final_extras(tr: Trainer, rec: dict, out_dir: Path, chash: str, keep_weights: bool) -> None:
    """On a run that ended ``ok``: the attention diagnostic into ``rec`` and, with ``keep_weights``,
    the final weights ``model.pt`` (proxy_train.inherit)."""
    if rec["status"] != "ok":
        return
    block = attention_diagnostic.record(tr.model, tr.data, min(tr.cfg.seq_len, attention_diagnostic.MAX_SEQ_LEN))
    if block is not None:
        rec["attention_diagnostic"] = block
    if keep_weights:
        save_weights(tr.model, out_dir / WEIGHTS_FILE, chash, rec["run_id"])


def _finish(tr: Trainer, out_dir: Path, chash: str, run, extra: dict | None = None,
            keep_weights: bool = False) -> dict:
    """Run ``run()``; write run.json whatever happens (ok/diverged, stopped/failed then re-raise)."""
    ckpt = out_dir / "ckpt.pt"
    try:
        status, reason = run()
    except BaseException as e:
        at_boundary = getattr(e, "_scaleplan_on_eval", False) or isinstance(e, StopRequested)
        stopped = at_boundary or isinstance(e, KeyboardInterrupt)
        if at_boundary:  # elsewhere the state may be mid-step: keep the last periodic checkpoint
            try:
                tr.save_ckpt(ckpt, chash)
            except Exception:
                pass
        write_json(out_dir / "run.json", run_record(tr, "stopped" if stopped else "failed",
                                                    f"{type(e).__name__}: {e}", chash, extra))
        raise
    rec = run_record(tr, status, reason, chash, extra)
    _final_extras(tr, rec, out_dir, chash, keep_weights)
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


def check_run_folder(cfg: TrainConfig, out_dir: str | Path) -> None:
    """UserError when ``out_dir`` must not receive this run: it is a data folder, or it holds a
    finished run of another configuration (whose run.json training would replace)."""
    out_dir = Path(out_dir)
    if (out_dir / "meta.json").is_file() and (out_dir / "train.bin").exists():
        raise UserError(f"{out_dir} is a data folder (meta.json, train.bin); give --out a run folder of its own")
    if (out_dir / "study.yaml").is_file():
        raise UserError(f"{out_dir} is a study folder (study.yaml); give --out a run folder of its own")
    path = out_dir / "run.json"
    if not path.is_file():
        return
    rec = read_json(path, "run.json")
    chash = cfg.config_hash(TokenData(cfg.data).meta["sha256"])
    if isinstance(rec, dict) and rec.get("status") in FINAL_STATUSES and rec.get("config_hash") != chash:
        raise UserError(f"{out_dir} holds a finished run of another configuration (status {rec.get('status')}, "
                        f"config hash {rec.get('config_hash')} vs {chash}); choose a new --out, or delete "
                        f"{path} to replace it")


def train(cfg: TrainConfig, out_dir: str | Path, *, on_eval: Callable | None = None,
          keep_weights: bool = False) -> dict:
    """Train one proxy run; writes ``out_dir/run.json`` and returns it (see the module docstring).

    Resumable: a finished run (status ok/diverged, same config and data) is returned as is; an
    unfinished one continues from ``out_dir/ckpt.pt``. ``cfg.extra["inherit"]``
    (``proxy_train.inherit.source_record``): a fresh start copies the source's first K layers first
    (a resumed run keeps its own checkpoint). ``keep_weights``: the final weights go to
    ``out_dir/model.pt`` (the source of a later ``--inherit-from``).
    """
    data = _open_data(cfg)
    out_dir = Path(out_dir)
    chash = cfg.config_hash(data.meta["sha256"])
    done = _finished(out_dir, chash)
    if done is not None:
        return done
    tr = Trainer(cfg, data)  # before the folder is made: a refused run leaves nothing behind
    ckpt = out_dir / "ckpt.pt"
    inherit = cfg.extra.get("inherit")
    if not tr.try_resume(ckpt, chash) and inherit:
        check_compatible(inherit, tr.model.cfg.shape.to_dict(), cfg.parameterization, cfg.n_layers)
        apply_inheritance(tr.model, inherit)
    out_dir = ensure_dir(out_dir, "run folder")
    total = cfg.total_steps
    extra = {"inherit": inherit} if inherit else None
    with graceful_sigint():
        return _finish(tr, out_dir, chash,
                       lambda: tr.run_until(total, total, ckpt=ckpt, config_hash=chash, on_eval=on_eval),
                       extra, keep_weights)


# ---------------------------------------------------------------------------------- WSD branches
def _check_budgets(token_budgets, cooldown_frac: float) -> list[int]:
    budgets = list(token_budgets) if token_budgets is not None else []
    if not budgets:
        raise UserError("no token budgets given; pass one or more positive token counts")
    for b in budgets:
        if isinstance(b, bool) or not isinstance(b, (int, float)) or not math.isfinite(b) or b <= 0:
            raise UserError(f"token budgets must be positive numbers, got {b!r}")
    if not (0.0 < cooldown_frac < 1.0):
        raise UserError(f"cooldown fraction must be in (0, 1), got {cooldown_frac}")
    return sorted({int(b) for b in budgets})


@dataclass
class WsdBranches:
    """The branch points of one WSD stable phase: budget b trains ``steps[b]`` updates, branching
    from the stable phase at ``stable_end(b)`` (warmup = ``warmup_steps``)."""
    base: TrainConfig        # the stable phase's config (schedule wsd, tokens = the largest budget)
    budgets: list[int]
    steps: dict[int, int]
    warmup_steps: int
    cooldown_frac: float
    out_dir: Path

    @classmethod
    def plan(cls, cfg: TrainConfig, budgets: list[int], out_dir: Path, cooldown_frac: float) -> "WsdBranches":
        tps = cfg.tokens_per_step
        steps = {b: max(1, math.ceil(b / tps)) for b in budgets}
        warm = cfg.warmup_steps if cfg.warmup_steps is not None else int(round(cfg.warmup_frac * steps[budgets[0]]))
        base = cfg.replace(schedule="wsd", cooldown_frac=cooldown_frac, warmup_steps=warm, steps=None,
                           tokens=budgets[-1])
        return cls(base, budgets, steps, warm, cooldown_frac, out_dir)

    @property
    def tps(self) -> int:
        return self.base.tokens_per_step

    def branch_cfg(self, b: int) -> TrainConfig:
        return self.base.replace(tokens=self.steps[b] * self.tps)

    def stable_end(self, b: int) -> int:
        return max(self.warmup_steps, cooldown_start(self.steps[b], self.cooldown_frac))

    def branch_dir(self, b: int) -> Path:
        return self.out_dir / f"branch_{self.steps[b] * self.tps}"

    def stable_cfg(self) -> TrainConfig:
        return self.base.replace(tokens=None, steps=self.stable_end(self.budgets[-1]))

    def branch_extra(self, b: int) -> dict:
        return {"branch": {"stable_end_step": self.stable_end(b), "stable_end_tokens": self.stable_end(b) * self.tps,
                           "cooldown_frac": self.cooldown_frac, "warmup_steps": self.warmup_steps,
                           "max_budget": self.budgets[-1], "summary": str(self.out_dir / "summary.json")}}


class _StablePhase:
    """The shared stable phase, built on first use and advanced to each branch point in turn."""

    def __init__(self, wsd: WsdBranches, data: TokenData, sha256: str):
        self.wsd, self.data = wsd, data
        self.ckpt = wsd.out_dir / "stable" / "ckpt.pt"
        self.hash = wsd.stable_cfg().config_hash(sha256)
        self.trainer: Trainer | None = None
        self.status: tuple[str, str | None] = ("ok", None)

    def state_at(self, b: int) -> dict:
        """The stable-phase state at budget b's branch point (status in ``self.status``)."""
        wsd, end = self.wsd, self.wsd.stable_end(b)
        if self.trainer is None:
            self.trainer = Trainer(wsd.base, self.data)
            self.trainer.try_resume(self.ckpt, self.hash)
            if self.trainer.step > end:  # should not happen; rebuild rather than branch late
                self.trainer = Trainer(wsd.base, self.data)
        if self.status[0] == "ok" and self.trainer.step < end:
            try:
                self.status = self.trainer.run_until(end, wsd.steps[wsd.budgets[-1]], ckpt=self.ckpt,
                                                     config_hash=self.hash, desc="stable")
            except StopRequested:  # Ctrl-C between two steps: keep that complete state
                self.trainer.save_ckpt(self.ckpt, self.hash)
                raise
            self.trainer.save_ckpt(self.ckpt, self.hash)
        return self.trainer.state()


def _train_branch(wsd: WsdBranches, b: int, data: TokenData, stable: _StablePhase) -> dict:
    """Budget b's cooldown from the stable phase (or from its own checkpoint); writes its run.json."""
    bcfg, bdir = wsd.branch_cfg(b), wsd.branch_dir(b)
    bhash = bcfg.config_hash(data.meta["sha256"])
    bdir.mkdir(exist_ok=True)
    extra = wsd.branch_extra(b)
    br = Trainer(bcfg, data)
    if not br.try_resume(bdir / "ckpt.pt", bhash):
        br.load_state(stable.state_at(b))
        if stable.status[0] != "ok":
            rec = run_record(br, "diverged", f"stable phase: {stable.status[1]}", bhash, extra)
            write_json(bdir / "run.json", rec)
            return rec
    return _finish(br, bdir, bhash, lambda: br.run_until(
        wsd.steps[b], wsd.steps[b], ckpt=bdir / "ckpt.pt", config_hash=bhash, desc=f"cooldown {b}"), extra)


def _wsd_summary(wsd: WsdBranches, records: list[dict], command: str) -> dict:
    """summary.json: the branches and the compute they used (the stable phase counted once)."""
    charges = wsd_branch_charges([(r["tokens"], r.get("branch", {}).get("stable_end_tokens", r["tokens"]))
                                  for r in records])
    stable_tokens = sum(s for s, _ in charges)
    cooldown_tokens = sum(c for _, c in charges)
    used_tokens = stable_tokens + cooldown_tokens
    separate = sum(r["tokens"] for r in records)
    return {
        "budgets": [r["tokens"] for r in records],
        "branches": [{"tokens": r["tokens"], "status": r["status"], "final_val_loss": r["final_val_loss"],
                      "stable_end_tokens": r.get("branch", {}).get("stable_end_tokens"),
                      "cooldown_tokens": c, "dir": f"branch_{r['tokens']}"} for r, (_, c) in zip(records, charges)],
        "compute_used": {"tokens": used_tokens, "flops_6n": 6.0 * records[0]["total_params"] * used_tokens,
                         "stable_tokens": stable_tokens, "cooldown_tokens": cooldown_tokens,
                         "separate_runs_tokens": separate, "saving_vs_separate_runs": 1.0 - used_tokens / separate},
        "cooldown_frac": wsd.cooldown_frac, "warmup_steps": wsd.warmup_steps,
        "config": wsd.base.to_dict(),
        "meta": {"scaleplan": __version__, "command": command},
    }


def train_wsd_branches(cfg: TrainConfig, token_budgets, out_dir: str | Path, cooldown_frac: float = 0.2) -> list[dict]:
    """One warmup + stable phase; a cooldown branch to each budget (Hägele et al. 2024, arXiv:2405.18392).

    Branch b starts from the stable-phase state at update ``cooldown_start(steps_b, cooldown_frac)``
    (i.e. (1 - cooldown_frac) b tokens) and cools down to b, so it is the same computation as a
    standalone WSD run of b tokens with the same seed and warmup (warmup = ``cfg.warmup_steps``, else
    ``warmup_frac`` x the smallest budget's steps). Writes ``branch_<tokens>/run.json`` per budget
    and ``summary.json`` with the compute actually used (the shared stable phase counted once).
    Resumable: finished branches are skipped; the stable phase is checkpointed at each branch point.
    """
    budgets = _check_budgets(token_budgets, cooldown_frac)
    out_dir = Path(out_dir)
    wsd = WsdBranches.plan(cfg, budgets, out_dir, cooldown_frac)
    data = _open_data(wsd.base)
    out_dir.mkdir(parents=True, exist_ok=True)
    (out_dir / "stable").mkdir(exist_ok=True)
    sha = data.meta["sha256"]
    records = {b: _finished(wsd.branch_dir(b), wsd.branch_cfg(b).config_hash(sha)) for b in budgets}
    stable = _StablePhase(wsd, data, sha)
    with graceful_sigint():
        for b in budgets:
            if records[b] is None:
                records[b] = _train_branch(wsd, b, data, stable)
    out = [records[b] for b in budgets]
    write_json(out_dir / "summary.json",
               _wsd_summary(wsd, out, cfg.extra.get("command", "proxy_train.train.train_wsd_branches")))
    if all(r["status"] in FINAL_STATUSES for r in out):
        stable.ckpt.unlink(missing_ok=True)
    return out
