import json
import math

import numpy as np
import pytest
import torch

from planner.errors import UserError
from proxy_train.config import TrainConfig
from proxy_train.data import TokenData
from proxy_train.train import train, train_wsd_branches
from proxy_data import tiny_data

torch.set_num_threads(1)

REQUIRED = ("status", "total_params", "non_embedding_params", "tokens", "flops", "flops_6n", "flops_with_attention",
            "final_train_loss", "final_val_loss", "shape", "curve", "hyperparameters", "parameterization", "wd_rule",
            "depth_scaling", "seed", "wall_time_s", "tokens_per_s", "versions", "data", "schedule")


@pytest.fixture(scope="session")
def data_dir(tmp_path_factory):
    return tiny_data(tmp_path_factory)


def _cfg(data_dir, **kw):
    base = dict(data=str(data_dir), d_model=32, n_layers=2, head_dim=16, base_width=32, batch=8, seq_len=32,
                lr=0.02, progress=False)
    base.update(kw)
    return TrainConfig(**base)


def test_loss_falls_well_below_uniform_and_record_is_complete(data_dir, tmp_path):
    rec = train(_cfg(data_dir, steps=200, lr=0.03), tmp_path / "run")
    ln_v = math.log(512)  # tokenizer vocab; zero-init readout starts at ln(padded vocab)
    assert rec["curve"]["val"][0][2] == pytest.approx(math.log(rec["data"]["vocab_size"]), abs=1e-4)
    # baseline from the data itself: the unigram (add-one) cross-entropy of val under train counts
    d = TokenData(data_dir)
    counts = np.bincount(np.asarray(d.train), minlength=d.vocab_size) + 1.0
    unigram = float(-np.log(counts / counts.sum())[np.asarray(d.val)].mean())
    assert rec["status"] == "ok" and rec["final_val_loss"] < min(ln_v - 0.8, unigram)
    for key in REQUIRED:
        assert key in rec, key
    on_disk = json.loads((tmp_path / "run" / "run.json").read_text())
    assert on_disk["final_val_loss"] == pytest.approx(rec["final_val_loss"])
    assert rec["tokens"] == 200 * 8 * 32
    assert rec["flops_6n"] == pytest.approx(6 * rec["total_params"] * rec["tokens"])
    assert rec["flops_with_attention"] > rec["flops_6n"] * 0.5
    assert not (tmp_path / "run" / "ckpt.pt").exists()
    # a finished run with the same config is returned without training
    again = train(_cfg(data_dir, steps=200, lr=0.03, threads=2), tmp_path / "run")
    assert again["wall_time_s"] == rec["wall_time_s"]


def test_huge_lr_diverges_with_reason(data_dir, tmp_path):
    rec = train(_cfg(data_dir, steps=60, lr=30.0, parameterization="sp", warmup_frac=0.0, clip=0.0), tmp_path / "div")
    assert rec["status"] == "diverged"
    assert "loss" in rec["reason"]
    assert rec["steps"] < 60


def test_killed_run_resumes_to_the_same_result(data_dir, tmp_path):
    cfg = _cfg(data_dir, steps=40, eval_every=10)
    ref = train(cfg, tmp_path / "ref")

    class Kill(Exception):
        pass

    def kill_at_20(step, tokens, val):
        if step == 20:
            raise Kill()

    with pytest.raises(Kill):
        train(cfg, tmp_path / "resumed", on_eval=kill_at_20)
    stopped = json.loads((tmp_path / "resumed" / "run.json").read_text())
    assert stopped["status"] == "stopped" and stopped["steps"] == 20
    assert (tmp_path / "resumed" / "ckpt.pt").exists()
    done = train(cfg, tmp_path / "resumed")
    assert done["status"] == "ok" and done["steps"] == 40
    assert done["final_val_loss"] == pytest.approx(ref["final_val_loss"], rel=1e-5)
    assert done["final_train_loss"] == pytest.approx(ref["final_train_loss"], rel=1e-5)


def test_wsd_branches_share_the_stable_phase(data_dir, tmp_path):
    cfg = _cfg(data_dir, d_model=32, n_layers=1)
    tps = 8 * 32
    budgets = [20 * tps, 40 * tps]
    recs = train_wsd_branches(cfg, budgets, tmp_path / "wsd", cooldown_frac=0.25)
    assert [r["tokens"] for r in recs] == budgets
    assert all(r["status"] == "ok" and r["schedule"] == "wsd" for r in recs)
    assert recs[0]["branch"]["stable_end_tokens"] == 15 * tps
    summary = json.loads((tmp_path / "wsd" / "summary.json").read_text())
    assert summary["compute_used"]["tokens"] == 30 * tps + 5 * tps + 10 * tps
    assert summary["compute_used"]["separate_runs_tokens"] == 60 * tps
    # a branch is exactly a standalone WSD run of its budget with the same warmup
    alone = train(cfg.replace(schedule="wsd", cooldown_frac=0.25, warmup_steps=recs[0]["branch"]["warmup_steps"],
                              tokens=budgets[0]), tmp_path / "alone")
    assert alone["final_val_loss"] == pytest.approx(recs[0]["final_val_loss"], rel=1e-5)
    # resumable: finished branches are not retrained
    again = train_wsd_branches(cfg, budgets, tmp_path / "wsd", cooldown_frac=0.25)
    assert [r["wall_time_s"] for r in again] == [r["wall_time_s"] for r in recs]


def test_bad_input(data_dir, tmp_path):
    with pytest.raises(UserError, match="not found"):
        train(_cfg(tmp_path / "nodata", steps=5), tmp_path / "r")
    with pytest.raises(UserError, match="not divisible by heads"):
        train(_cfg(data_dir, steps=5, head_dim=None, n_heads=3), tmp_path / "r")
    with pytest.raises(UserError, match="positive"):
        train_wsd_branches(_cfg(data_dir), [-100, 1000], tmp_path / "w")
    with pytest.raises(UserError, match="positive integer"):
        train(_cfg(data_dir, tokens=-5), tmp_path / "r")
    with pytest.raises(UserError, match="longer than the data"):
        train(_cfg(data_dir, steps=5, seq_len=10**7), tmp_path / "r")
