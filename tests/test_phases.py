"""Multi-phase plans (planner/plan/phases.py) and their Megatron-LM launches (planner/export/megatron_phases.py).

Outside facts: Crystal's schedule is LLM360/crystalcoder-train pretrain/params/phase{1,2,3}/params.yaml
(03efa544): per phase a Linear warmup segment then a Linear decay segment (Cerebras ``Linear``:
initial + (end - initial) * step / steps), stopped at ``max_steps``. Megatron-LM's LR is re-derived
here from the exported flags as NVIDIA/Megatron-LM d98e8a64 computes it: training.py
``get_optimizer_param_scheduler`` (samples = iterations x global batch) and
optimizer_param_scheduler.py ``get_lr`` / ``load_state_dict`` (``--use-checkpoint-opt_param-scheduler``
keeps the stored values; ``--lr-warmup-init`` is not stored; ``--pretrained-checkpoint`` on an empty
``--load`` is a finetune: the counter restarts at 0).
"""
from __future__ import annotations

import copy
import json
import math
import os
import subprocess

import numpy as np
import pytest

from planner.errors import UserError
from planner.export.megatron import render_megatron
from planner.hparams import HParams
from planner.plan import make_plan
from planner.plan.phases import (RunDefaults, describe_phases, lr_at_tokens, phase_rows, resolve_phases,
                                 resolve_plan_phases)
from planner.recipes import CRYSTAL_PHASES

# params.yaml phase k: (max_steps, [(initial_learning_rate, end_learning_rate, steps), ...])
CRYSTAL_PUBLISHED = [(79_721, [(0.0, 0.012, 86), (0.012, 0.00012408, 294_337)]),
                     (214_387, [(0.0, 0.0087825, 86), (0.0087825, 0.00013679, 214_301)]),
                     (27_728, [(0.0, 0.002, 276), (0.002, 0.0002, 27_452)])]
CRYSTAL_BATCH, CRYSTAL_SEQ = 2112, 2048


def cerebras_lr(segments, step: int) -> float:
    """Cerebras' chained Linear schedulers at ``step`` of a phase (params.yaml optimizer.learning_rate)."""
    for a, b, n in segments:
        if step < n:
            return a + (b - a) * step / n
        step -= n
    return segments[-1][1]


def megatron_lr(s: dict, num_steps: int) -> float:
    """OptimizerParamScheduler.get_lr (d98e8a64) for the scheduler values ``s`` (in samples)."""
    hi, lo, init, warm, decay, style = s["lr"], s["min_lr"], s["init"], s["warm"], s["decay"], s["style"]
    if warm > 0 and num_steps <= warm:
        return init + (hi - init) * num_steps / warm
    if style == "constant":
        return hi
    if num_steps > decay:
        return lo
    if style == "inverse-square-root":
        return max(lo, hi * max(warm, 1) ** 0.5 / max(num_steps, 1) ** 0.5)
    ratio = (num_steps - warm) / (decay - warm)
    coeff = 1.0 - ratio if style == "linear" else 0.5 * (math.cos(math.pi * ratio) + 1.0)
    return lo + coeff * (hi - lo)


def megatron_schedules(by_phase: dict) -> list[tuple[dict, int, int, int]]:
    """Per launch: (scheduler values Megatron uses, counter at its first step, its global batch, steps it runs)."""
    out, stored, counter, it = [], None, 0, 0
    for a in by_phase.values():
        G = int(a["--global-batch-size"])
        if "--pretrained-checkpoint" in a:  # finetune: counter, iteration and schedule restart
            counter, it, stored = 0, 0, None
        mine = {"lr": float(a["--lr"]), "min_lr": float(a["--min-lr"]), "warm": int(a["--lr-warmup-iters"]) * G,
                "decay": int(a["--lr-decay-iters"]) * G, "style": a["--lr-decay-style"]}
        if "--use-checkpoint-opt_param-scheduler" in a:
            assert stored is not None
            mine = dict(stored)  # the checkpoint's values win
        elif stored is not None:
            assert "--override-opt_param-scheduler" in a or mine == stored  # else load_state_dict asserts
        mine["init"] = float(a.get("--lr-warmup-init", 0.0))  # never stored
        steps = int(a["--train-iters"]) - it
        out.append((mine, counter, G, steps))
        stored, counter, it = {k: v for k, v in mine.items() if k != "init"}, counter + steps * G, int(a["--train-iters"])
    return out


def check_megatron_equals_phases(plan, by_phase: dict, every: int = 97) -> int:
    """LR of every warmup step, both ends and every ``every``-th step of each phase: Megatron == phases.py."""
    phases = resolve_plan_phases(plan)
    checked = 0
    for p, (sched, counter, G, steps) in zip(phases, megatron_schedules(by_phase), strict=True):
        assert G == p.global_batch and steps == p.train_iters
        warm_steps = p.segment.warmup_samples // G + 2
        ks = sorted(set(range(min(warm_steps, steps))) | set(range(0, steps, every)) | {steps - 1})
        want = lr_at_tokens(phases, [p.start_token + k * G * p.seq_len for k in ks])
        got = np.array([megatron_lr(sched, counter + k * G) for k in ks])
        np.testing.assert_allclose(got, want, rtol=1e-9, atol=1e-12)
        checked += len(ks)
    return checked


@pytest.fixture(scope="module")
def crystal():
    """Crystal's schedule with one LR for every parameter group (``lr`` given: the preset's μP values are
    reported, not applied), so Megatron can re-warm exactly; the preset's own μP plan is ``crystal_mup``."""
    plan = make_plan(preset="crystal-7b", lr=0.012, phases=copy.deepcopy(list(CRYSTAL_PHASES)),
                     data={"checkpoint_dir": "/ckpt"})
    assert not plan.is_mup and any("not applied" in w for w in plan.warnings)
    return plan, json.loads(render_megatron(plan)["megatron_args.json"])["phases"]


@pytest.fixture(scope="module")
def crystal_mup():
    return make_plan(preset="crystal-7b", data={"checkpoint_dir": "/ckpt"})


# ------------------------------------------------------------------------------- the LR function
def test_crystal_lr_equals_the_published_schedule(crystal):
    plan, _ = crystal
    phases = resolve_plan_phases(plan)
    assert [p.train_iters for p in phases] == [n for n, _ in CRYSTAL_PUBLISHED]
    assert [p.mode for p in phases] == ["start", "rewarm", "reset"]
    assert sum(p.tokens for p in phases) == plan.tokens == 321_836 * CRYSTAL_BATCH * CRYSTAL_SEQ
    for p, (max_steps, segments) in zip(phases, CRYSTAL_PUBLISHED):
        warm = segments[0][2]
        steps = [0, 1, warm - 1, warm, warm + 1, max_steps // 2, max_steps - 1]
        got = lr_at_tokens(phases, [p.start_token + s * CRYSTAL_BATCH * CRYSTAL_SEQ for s in steps])
        np.testing.assert_allclose(got, [cerebras_lr(segments, s) for s in steps], rtol=1e-12, atol=0)
        assert float(p.segment.lr_at(p.end_sample)) == pytest.approx(cerebras_lr(segments, max_steps), rel=1e-12)
    # phase 1 stops mid-decay: 27% of its 294,337-step decay done, LR 0.008787 (phase 2 re-warms to 0.0087825)
    assert float(phases[0].segment.lr_at(phases[0].end_sample)) == pytest.approx(
        0.012 - (0.012 - 0.00012408) * (79_721 - 86) / 294_337, rel=1e-12)
    assert lr_at_tokens(phases, phases[1].start_token)[0] == 0.0  # a re-warmup, not a jump
    lines = describe_phases(phases)
    assert lines[1].startswith("phase2 (rewarm): 214,387 steps x 2112") and "8 sources" in lines[1]


def test_crystal_mup_phases_are_the_published_schedule_in_hidden_lr(crystal_mup):
    """Under μP the plan's LR (Megatron's --lr unit) is the hidden-matrix LR: params.yaml's learning_rate x
    decoder_kernel 0.0625; x m_d = 16 it is the published schedule at every boundary and warmup end."""
    plan = crystal_mup
    phases = resolve_plan_phases(plan)
    m = plan.hparams.m_d
    assert m == 16 and plan.is_mup and [p.mode for p in phases] == ["start", "rewarm", "reset"]
    assert [p.train_iters for p in phases] == [n for n, _ in CRYSTAL_PUBLISHED]
    for p, (max_steps, segments) in zip(phases, CRYSTAL_PUBLISHED):
        warm = segments[0][2]
        steps = [0, 1, warm - 1, warm, warm + 1, max_steps // 2, max_steps - 1]
        got = lr_at_tokens(phases, [p.start_token + s * CRYSTAL_BATCH * CRYSTAL_SEQ for s in steps]) * m
        np.testing.assert_allclose(got, [cerebras_lr(segments, s) for s in steps], rtol=1e-12, atol=0)
    # the embedding and tied readout run at m_d x the curve: the published values themselves
    assert plan.training.decoupled_lr == CRYSTAL_PUBLISHED[0][1][1][0] == plan.hparams.embedding.lr


def test_phase_lengths_must_add_up():
    base = RunDefaults(tokens=1000 * 64 * 128, global_batch=64, seq_len=128, lr=1e-3, min_lr=1e-4, warmup_iters=10,
                 style="cosine")
    ok = resolve_phases([dict(train_iters=400), dict(tokens=300 * 64 * 128), dict()], base)
    assert [p.train_iters for p in ok] == [400, 300, 300]  # the last takes the rest
    assert [p.mode for p in ok] == ["start", "continue", "continue"]
    assert ok[0].segment.decay_samples == (1000 - 10) * 64  # one segment decays to the end of its phases
    with pytest.raises(UserError, match=r"add up to 7,372,800 tokens but the plan trains 8,192,000 \(-819,200\)"):
        resolve_phases([dict(train_iters=400), dict(train_iters=500)], base)
    with pytest.raises(UserError, match="phase 1 has no length"):
        resolve_phases([dict(), dict(train_iters=5)], base)
    with pytest.raises(UserError, match="both tokens and train_iters"):
        resolve_phases([dict(train_iters=400, tokens=5), dict()], base)
    with pytest.raises(UserError, match="already train"):
        resolve_phases([dict(train_iters=1000), dict()], base)
    with pytest.raises(UserError, match="first phase starts the run and takes no mode"):
        resolve_phases([dict(train_iters=1000, mode="rewarm")], base)
    with pytest.raises(UserError, match="min_lr 0.01 exceeds lr"):
        resolve_phases([dict(train_iters=500), dict(lr=1e-3, min_lr=1e-2)], base)
    with pytest.raises(UserError, match=r"phases\[1\].mode must be one of continue, rewarm, reset"):
        resolve_phases([dict(train_iters=500), dict(mode="restart")], base)
    with pytest.raises(UserError, match="name must be letters"):
        resolve_phases([dict(train_iters=500, name="a b;rm"), dict()], base)


def test_continue_changes_and_rewarm_default():
    base = RunDefaults(tokens=1000 * 8 * 16, global_batch=8, seq_len=16, lr=1e-3, min_lr=0.0, warmup_iters=0,
                 style="linear")
    ph = resolve_phases([dict(train_iters=500, decay_iters=2000), dict(train_iters=300, min_lr=1e-4),
                         dict(lr=5e-4)], base)
    assert [p.mode for p in ph] == ["start", "continue", "rewarm"]
    assert ph[1].changed == ("min_lr",) and ph[1].segment.start_sample == 0
    # the decay (2000 steps) outlives phase 1; phase 2 keeps its position: at step 600 r = 0.3
    assert lr_at_tokens(ph, 600 * 8 * 16)[0] == pytest.approx(1e-4 + 0.7 * (1e-3 - 1e-4))
    assert lr_at_tokens(ph, 800 * 8 * 16)[0] == pytest.approx(5e-4)  # rewarm without warmup: its peak at once
    rows = phase_rows(ph)
    assert [r["steps"] for r in rows] == [500, 300, 200] and rows[2]["lr_first"] == pytest.approx(5e-4)


# ------------------------------------------------------------------------------- Megatron export
def test_crystal_megatron_launches_equal_the_lr_function(crystal):
    plan, by_phase = crystal
    assert list(by_phase) == ["phase1", "phase2", "phase3"]
    p1, p2, p3 = by_phase.values()
    # phase 1: the published segment on Megatron's counter; the decay outlives the phase
    assert (p1["--train-iters"], p1["--lr-warmup-iters"], p1["--lr-decay-iters"]) == ("79721", "86", "294423")
    # phase 2 re-warms with Adam state, step counter and data position kept: same folder, override
    assert p2["--load"] == p2["--save"] == p1["--load"] == "/ckpt/phase1" and p2["--override-opt_param-scheduler"]
    assert not {"--finetune", "--pretrained-checkpoint", "--no-load-optim"} & set(p2)
    assert (p2["--train-iters"], p2["--lr-warmup-iters"], p2["--lr-decay-iters"]) == ("294108", "79807", "294108")
    assert float(p2["--lr-warmup-init"]) == -0.0087825 * 79_721 / 86
    # phase 3 is the explicit reset (params.yaml is_pretrained_checkpoint: true): a finetune, own folder
    assert p3["--pretrained-checkpoint"] == "/ckpt/phase1" and p3["--load"] == "/ckpt/phase3"
    assert (p3["--train-iters"], p3["--lr-warmup-iters"], p3["--lr-decay-iters"]) == ("27728", "276", "27728")
    assert check_megatron_equals_phases(plan, by_phase) > 3 * 86
    for a, spec in zip(by_phase.values(), CRYSTAL_PHASES):  # each phase's mixture as published
        assert a["--data-path"] == [v for d in spec["data"] for v in (repr(d["weight"]), d["prefix"])]
        assert int(a["--global-batch-size"]) == CRYSTAL_BATCH


def test_continue_modes_on_megatron(tmp_path):
    phases = [dict(train_iters=10_000, lr=3e-4, min_lr=3e-5, warmup_iters=2000, decay_iters=30_000,
                   decay_style="cosine"),
              dict(train_iters=5_000, data=[dict(prefix="/d/code", weight=0.7), dict(prefix="/d/web", weight=0.3)]),
              dict(train_iters=5_000, decay_iters=12_000),
              dict(lr=1e-4, min_lr=1e-5, warmup_iters=500, decay_style="linear", mode="reset")]
    plan = make_plan(preset="llm-jp-3-1.8b", phases=phases, data={"checkpoint_dir": "/ckpt"})
    by_phase = json.loads(render_megatron(plan)["megatron_args.json"])["phases"]
    a1, a2, a3, a4 = by_phase.values()
    assert a2["--use-checkpoint-opt_param-scheduler"] and "--override-opt_param-scheduler" not in a2
    assert a2["--data-path"] == ["0.7", "/d/code", "0.3", "/d/web"] and a3["--data-path"] == a2["--data-path"]
    assert a3["--override-opt_param-scheduler"] and a3["--lr-decay-iters"] == "14000"  # 2000 + 12000 from step 0
    assert "--lr-warmup-init" not in a3  # the segment still starts at the counter's 0
    assert [a["--load"] for a in by_phase.values()] == ["/ckpt/phase1"] * 3 + ["/ckpt/phase4"]
    assert [a["--train-iters"] for a in by_phase.values()] == ["10000", "15000", "20000", str(988_240 - 20_000)]
    check_megatron_equals_phases(plan, by_phase, every=13)


def _launch(script, ckpt, done=None, prev=None):
    if done is not None:
        (ckpt / "phase1").mkdir(parents=True, exist_ok=True)
        (ckpt / "phase1" / "latest_checkpointed_iteration.txt").write_text(str(done))
    env = {**os.environ, "TORCHRUN": "echo", "MEGATRON_DIR": "/mlm", "CHECKPOINT_DIR": str(ckpt)}
    text = script.read_text().replace("\nCHECKPOINT_DIR=/ckpt\n", f"\nCHECKPOINT_DIR='{ckpt}'\n")
    script.with_suffix(".test.sh").write_text(text)
    return subprocess.run(["bash", str(script.with_suffix(".test.sh"))], env=env, capture_output=True, text=True,
                          timeout=60)


def test_launch_refuses_a_phase_out_of_order(crystal, tmp_path):
    plan, _ = crystal
    for name, text in render_megatron(plan).items():
        (tmp_path / name).write_text(text)
    ckpt = tmp_path / "ckpt"
    res = _launch(tmp_path / "launch_phase2.sh", ckpt)
    assert res.returncode == 1 and "starts at iteration 79721 of phase1, which holds 0" in res.stderr
    res = _launch(tmp_path / "launch_phase2.sh", ckpt, done=79_721)
    assert res.returncode == 0 and "--override-opt_param-scheduler" in res.stdout
    res = _launch(tmp_path / "launch_phase2.sh", ckpt, done=294_108)
    assert res.returncode == 0 and "phase2 is done" in res.stderr and "pretrain_gpt.py" not in res.stdout
    res = _launch(tmp_path / "launch_phase3.sh", ckpt, done=200_000)
    assert res.returncode == 1 and "from iteration 294108 in folder phase1" in res.stderr
    assert _launch(tmp_path / "launch_phase3.sh", ckpt, done=294_108).returncode == 0


@pytest.fixture(scope="module")
def mup_plan():
    return make_plan(1e21, hparams=HParams(base_width=256, lr=6e-3), n_gpus=8)


def _with_phases(plan, phases):
    p = copy.copy(plan)
    p.phases = phases
    return p


def test_rewarm_refusals_name_the_reason_and_the_nearest_launch(mup_plan):
    n = mup_plan.training.train_iters
    rewarm = [dict(train_iters=n // 2), dict(mode="rewarm", warmup_iters=100, lr=mup_plan.training.lr)]
    plan = _with_phases(mup_plan, rewarm)
    with pytest.raises(UserError, match=r"erases --use-mup's per-group hidden LR; the nearest launch continues "
                                        r"the previous schedule \(LR off by up to"):
        render_megatron(plan)
    approx = json.loads(render_megatron(plan, allow_approximate_schedule=True)["megatron_args.json"])["phases"]
    assert approx["phase2"]["--use-checkpoint-opt_param-scheduler"]
    with pytest.raises(UserError, match=r"group at [0-9.]+x --lr \(--decoupled-lr or μP\) would start at LR"):
        render_megatron(plan, mup_mode="translate", allow_approximate_mup=True)
    files = render_megatron(plan, mup_mode="translate", allow_approximate_mup=True, allow_approximate_schedule=True)
    a2 = json.loads(files["megatron_args.json"])["phases"]["phase2"]
    assert a2["--override-opt_param-scheduler"] and int(a2["--lr-warmup-iters"]) == n // 2  # warmup dropped
    assert "APPROXIMATE: the 100 warmup steps run at the peak" in files["launch_phase2.sh"]
    assert "APPROXIMATE" in json.loads(files["megatron_args.json"])["meta"]["phase_notes"]["phase2"]
    # no re-warmup: the new decay segment is exact for every group, so no refusal
    render_megatron(_with_phases(mup_plan, [dict(train_iters=n // 2), dict(lr=mup_plan.training.lr / 2,
                                                                            warmup_iters=0)]), mup_mode="translate",
                    allow_approximate_mup=True)


def test_batch_changes_on_megatron():
    base = make_plan(preset="llm-jp-3-1.8b")
    shrink = _with_phases(base, [dict(train_iters=1000, global_batch=1024, warmup_iters=100), dict(global_batch=512)])
    with pytest.raises(UserError, match="lowers the global batch to 512"):
        render_megatron(shrink)
    grow = _with_phases(base, [dict(train_iters=1000, warmup_iters=100), dict(global_batch=1024, lr=2e-4,
                                                                              warmup_iters=10)])
    by_phase = json.loads(render_megatron(grow)["megatron_args.json"])["phases"]
    assert by_phase["phase2"]["--global-batch-size"] == "1024"
    check_megatron_equals_phases(grow, by_phase, every=1009)
    odd = _with_phases(base, [dict(train_iters=1001, warmup_iters=100), dict(global_batch=1024, lr=2e-4,
                                                                             warmup_iters=10)])
    with pytest.raises(UserError, match="not a whole step at its global batch 1024"):
        render_megatron(odd)
    isr = _with_phases(base, [dict(train_iters=1000, warmup_iters=100), dict(lr=2e-4,
                                                                             decay_style="inverse-square-root")])
    with pytest.raises(UserError, match="inverse-square-root segment mid-run"):
        render_megatron(isr)


def test_torchtitan_still_refuses_phases(crystal):
    from planner.export.torchtitan import render_torchtitan

    with pytest.raises(UserError, match="3 schedule phases; torchtitan runs one schedule per job"):
        render_torchtitan(crystal[0])


# ------------------------------------------------------------------------------- CLI and figure
def test_cli_phases_file(tmp_path, capsys):
    from scaleplan.cli import main

    good = tmp_path / "phases.yaml"
    good.write_text("phases:\n  - {name: warm, train_iters: 500000, lr: 3.0e-4, min_lr: 3.0e-5, warmup_iters: 2000}\n"
                    "  - {mode: rewarm, lr: 1.0e-4, warmup_iters: 100, data: [{prefix: /d/a, weight: 1}]}\n")
    assert main(["plan", "--preset", "llm-jp-3-1.8b", "--phases", str(good), "--out", str(tmp_path / "p.yaml")]) == 0
    from planner.plan import Plan

    plan = Plan.read(tmp_path / "p.yaml")
    assert [p.train_iters for p in resolve_plan_phases(plan)] == [500_000, 488_240]
    sized = tmp_path / "sized.json"  # every phase has a length: with a preset they define its tokens
    sized.write_text(json.dumps([dict(train_iters=5000, warmup_iters=100), dict(train_iters=6000, lr=1e-4)]))
    assert main(["plan", "--preset", "llm-jp-3-1.8b", "--phases", str(sized), "--out", str(tmp_path / "s.yaml")]) == 0
    assert Plan.read(tmp_path / "s.yaml").tokens == 11_000 * 512 * 4096
    capsys.readouterr()
    bad = tmp_path / "bad.json"  # a budget plan's tokens come from the budget: the phases must match them
    bad.write_text(json.dumps([dict(train_iters=5), dict(train_iters=6)]))
    assert main(["plan", "--flops", "1e21", "--gpus", "8", "--phases", str(bad), "--out", str(tmp_path / "q.yaml")]) == 2
    assert "phases add up to" in capsys.readouterr().err and not (tmp_path / "q.yaml").exists()
    bomb = tmp_path / "bomb.yaml"
    bomb.write_text("a: &a [x, x, x, x, x, x, x, x, x, x]\n" + "".join(
        f"{c}: &{c} [*{p}, *{p}, *{p}, *{p}, *{p}, *{p}, *{p}, *{p}, *{p}, *{p}]\n" for p, c in zip("abcdef", "bcdefg")))
    assert main(["plan", "--preset", "llm-jp-3-1.8b", "--phases", str(bomb)]) == 2
    assert "refused" in capsys.readouterr().err


def test_lr_figure_has_one_band_per_phase(crystal):
    from app.phase_figures import plan_phase_figure

    fig = plan_phase_figure(crystal[0])
    assert len(fig.layout.shapes) == 3 and "phase2 (rewarm" in fig.layout.annotations[1].text
    y = np.array(fig.data[0].y)
    assert y.max() == pytest.approx(0.012) and y.min() == 0.0
    assert plan_phase_figure(make_plan(preset="llm-jp-3-1.8b")) is None


def test_phase_mixture_prefixes_are_data_not_code(tmp_path):
    marker = tmp_path / "PWNED"
    evil = f"/d/it's \"q\" $(touch {marker}) ; `touch {marker}`"
    plan = make_plan(preset="llm-jp-3-1.8b", data={"checkpoint_dir": str(tmp_path / "ck")},
                     phases=[dict(train_iters=1000, warmup_iters=10), dict(data=[dict(prefix=evil, weight=0.25),
                                                                                 dict(prefix="/d/b", weight=0.75)])])
    script = tmp_path / "launch_phase2.sh"
    script.write_text(render_megatron(plan)["launch_phase2.sh"])
    env = {**os.environ, "TORCHRUN": "printf %s\\n", "MEGATRON_DIR": "/mlm", "PHASE_CHECK": "0"}
    res = subprocess.run(["bash", str(script)], env=env, capture_output=True, text=True, timeout=60)
    argv = res.stdout.splitlines()
    i = argv.index("--data-path")
    assert res.returncode == 0 and argv[i + 1:i + 5] == ["0.25", evil, "0.75", "/d/b"]
    assert not marker.exists()
