"""Continual pretraining (planner/plan/continuation.py): a plan that starts from a checkpoint.

Outside facts checked: the law's loss at N and D = seen + new (the law's own ``predict``); the
Megatron-LM launch keeps iteration, optimizer and consumed samples (``--load`` without
``--finetune``/``--pretrained-checkpoint``: checkpointing.py ``load_checkpoint`` at d98e8a64) and
its LR on Megatron's global counter equals the plan's schedule from step 0 (the scheduler formula
``OptimizerParamScheduler.get_lr``, re-stated in tests/test_phases.py ``megatron_lr``); launch.sh
refuses a checkpoint at another iteration; torchtitan 0.3.0 loads a weights-only checkpoint through
``checkpoint.initial_load_path`` and refuses a kept optimizer (components/optimizer/lr_scheduler.py).
"""
from __future__ import annotations

import json
import os
import subprocess

import numpy as np
import pytest
from conftest import run_cli
from test_export_torchtitan_real import _parse, titan  # noqa: F401  (a fixture)
from test_phases import megatron_lr

from planner.errors import UserError
from planner.export.megatron import render_megatron
from planner.export.torchtitan import render_torchtitan
from planner.laws import load_law
from planner.plan import Plan, make_plan

SEEN, ITER, NEW = 2_000_000_000_000, 476_837, 100_000_000_000  # Llama-2-7B's 2T tokens at 1024 x 4096
CKPT = "/ckpt/llama-2-7b"


def _plan(optimizer="kept", **extra):
    cont = {"tokens_seen": SEEN, "iteration": ITER, "optimizer": optimizer, "checkpoint": CKPT}
    return make_plan(preset="llama-2-7b", tokens=NEW, continue_from={**cont, **extra.pop("cont", {})}, **extra)


@pytest.fixture(scope="module")
def kept():
    return _plan()


@pytest.fixture(scope="module")
def scratch():
    return make_plan(preset="llama-2-7b", tokens=NEW)


def _args(plan) -> dict:
    return json.loads(render_megatron(plan)["megatron_args.json"])["args"]


def test_predicted_loss_is_the_law_at_seen_plus_new(kept):
    law = load_law("besiroglu2024")
    N = kept.shape.total_params
    assert kept.operations.predicted_loss == pytest.approx(float(law.predict(N, SEEN + NEW)), rel=1e-12)
    assert kept.operations.predicted_loss < float(law.predict(N, NEW)) - 0.05  # not the new tokens alone
    assert kept.tokens >= NEW and kept.tokens - NEW < kept.training.batch_tokens  # the plan's tokens: the new ones
    warn = [w for w in kept.warnings if w.startswith("continued run")]
    assert warn and "single uninterrupted" in warn[0] and "2e+12 seen" in warn[0]
    assert kept.training.continue_from == {"tokens_seen": SEEN, "iteration": ITER, "global_batch": 1024,
                                           "optimizer": "kept", "checkpoint": CKPT, "law": "besiroglu2024"}


def test_plan_yaml_round_trip_and_unchanged_plans(kept, scratch, tmp_path):
    path = kept.write(tmp_path / "plan.yaml")
    back = Plan.read(path)
    assert back.plan_hash == kept.plan_hash and back.edited_from is None
    assert "continue_from" not in scratch.to_dict()["training"]  # a plan from scratch is written as before
    bad = kept.to_dict()
    bad["training"]["continue_from"]["optimizer"] = "maybe"
    with pytest.raises(UserError, match="continue_from.optimizer"):
        Plan.from_dict(bad)


def test_megatron_keeps_iteration_optimizer_and_data_position(kept, scratch):
    a, s = _args(kept), _args(scratch)
    G, n = kept.training.global_batch, kept.training.train_iters
    assert a["--load"] == CKPT and a["--override-opt_param-scheduler"] is True
    for flag in ("--finetune", "--pretrained-checkpoint", "--no-load-optim", "--no-load-rng",
                 "--use-checkpoint-opt_param-scheduler"):
        assert flag not in a
    assert int(a["--train-iters"]) == ITER + n
    S = ITER * 1024
    assert int(a["--lr-warmup-iters"]) * G == S + 2000 * G
    assert float(a["--lr-warmup-init"]) == pytest.approx(-3e-4 * S / (2000 * G), rel=1e-12)
    # Megatron's LR at the continued counter equals the plan's own schedule from step 0, step for step
    sched = lambda x, init: {"lr": float(x["--lr"]), "min_lr": float(x["--min-lr"]), "init": init,  # noqa: E731
                             "warm": int(x["--lr-warmup-iters"]) * G, "decay": int(x["--lr-decay-iters"]) * G,
                             "style": x["--lr-decay-style"]}
    cont, base = sched(a, float(a["--lr-warmup-init"])), sched(s, 0.0)
    ks = sorted(set(range(0, 2005)) | set(range(0, n, 97)) | {n - 1})
    got = np.array([megatron_lr(cont, S + k * G) for k in ks])
    want = np.array([megatron_lr(base, k * G) for k in ks])
    np.testing.assert_allclose(got, want, rtol=1e-9, atol=1e-15)
    assert got[0] == pytest.approx(0.0, abs=1e-15) and got[ks.index(2000)] == pytest.approx(3e-4, rel=1e-12)


def test_flags_exist_in_megatrons_parser(kept, shared_data):
    """Both launches' flags against a dump of Megatron-LM's own argument parser (shared/data/megatron)."""
    from planner.export.megatron_flags import validate_args

    flags = shared_data / "megatron" / "pretrain_gpt_flags.json"
    for plan in (kept, _plan("fresh")):
        assert validate_args(_args(plan), flags) == []


def test_fresh_optimizer_is_an_explicit_finetune():
    fresh = _plan("fresh")
    a = _args(fresh)
    assert a["--pretrained-checkpoint"] == CKPT and a["--load"] == a["--save"]
    assert int(a["--train-iters"]) == fresh.training.train_iters and "--override-opt_param-scheduler" not in a
    assert "--lr-warmup-init" not in a and int(a["--lr-warmup-iters"]) == 2000
    assert "fresh optimizer" in next(w for w in fresh.warnings if w.startswith("continued run"))
    module = render_torchtitan(fresh)["scaleplan_model.py"]
    assert f"initial_load_path={CKPT!r}, initial_load_model_only=True" in module


def _launch(tmp_path, plan, found: int | None):
    files = render_megatron(plan)
    src = tmp_path / "ck"
    src.mkdir(exist_ok=True)
    if found is not None:
        (src / "latest_checkpointed_iteration.txt").write_text(str(found))
    run = tmp_path / "run"
    run.mkdir(exist_ok=True)
    text = (files["launch.sh"].replace(f"CONTINUE_FROM={CKPT}\n", f"CONTINUE_FROM='{src}'\n")
            .replace("\nCHECKPOINT_DIR=/path/to/checkpoints\n", f"\nCHECKPOINT_DIR='{run}'\n"))
    (tmp_path / "launch.sh").write_text(text)
    env = {**os.environ, "TORCHRUN": "echo", "MEGATRON_DIR": "/mlm"}
    return subprocess.run(["bash", str(tmp_path / "launch.sh")], env=env, capture_output=True, text=True, timeout=60)


def test_launch_loads_the_checkpoint_then_resumes_its_own(kept, tmp_path):
    res = _launch(tmp_path, kept, ITER - 1000)
    assert res.returncode == 1 and f"not {ITER}" in res.stderr
    res = _launch(tmp_path, kept, ITER)
    assert res.returncode == 0 and f"--load {tmp_path / 'ck'} " in res.stdout
    (tmp_path / "run" / "latest_checkpointed_iteration.txt").write_text(str(ITER + 50))  # a relaunch
    res = _launch(tmp_path, kept, ITER)
    assert res.returncode == 0 and f"--load {tmp_path / 'run'} " in res.stdout


def test_refusals(kept):
    with pytest.raises(UserError, match="checkpoint's shape"):
        make_plan(1e21, continue_from={"tokens_seen": SEEN, "iteration": ITER})
    with pytest.raises(UserError, match="has phases"):
        make_plan(preset="crystal-7b", tokens=NEW, continue_from={"tokens_seen": SEEN, "iteration": ITER})
    with pytest.raises(UserError, match="--tokens"):
        make_plan(preset="llama-2-7b", continue_from={"tokens_seen": SEEN, "iteration": ITER})
    with pytest.raises(UserError, match="optimizer"):
        _plan(cont={"optimizer": "maybe"})
    with pytest.raises(UserError, match="smaller than the checkpoint's 2048"):
        render_megatron(_plan(cont={"global_batch": 2048, "iteration": ITER // 2}))
    with pytest.raises(UserError, match="optimizer kept.*--fresh-optimizer"):
        render_torchtitan(kept)


def test_cli(tmp_path):
    cli = ["plan", "--preset", "llama-2-7b", "--tokens", "1e11"]
    res = run_cli(*cli, "--continue-from-tokens", "2e12", timeout=120)
    assert res.returncode == 2 and "--continue-from-iteration" in res.stderr and "Traceback" not in res.stderr
    out = tmp_path / "p.yaml"
    res = run_cli(*cli, "--continue-from-tokens", "2e12", "--continue-from-iteration", str(ITER),
                  "--fresh-optimizer", "--out", str(out), timeout=120)
    assert res.returncode == 0, res.stderr
    assert Plan.read(out).training.continue_from["optimizer"] == "fresh"


def test_torchtitan_reads_the_continued_checkpoint(titan, tmp_path, monkeypatch):
    """The wheel's own ConfigManager builds the config: initial_load_path set, weights only."""
    from planner.export.torchtitan import export_torchtitan

    export_torchtitan(_plan("fresh"), tmp_path)
    cfg = _parse(titan, tmp_path, monkeypatch)
    assert cfg.checkpoint.initial_load_path == CKPT and cfg.checkpoint.initial_load_model_only is True
    assert cfg.checkpoint.enable is True


def test_list_presets_names_each_source():
    from planner.recipes import RECIPES

    res = run_cli("plan", "--list-presets", timeout=120)
    assert res.returncode == 0
    lines = {line.split()[0]: line for line in res.stdout.splitlines()}
    for name, recipe in RECIPES.items():
        assert f"(source: {recipe.source})" in lines[name]
        assert (f", {len(recipe.phases)} phases" in lines[name]) == bool(recipe.phases)
