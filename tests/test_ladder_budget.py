"""Budget mode of the ladder (``scaleplan ladder --budget-minutes``): the chooser with fixed
calibration numbers (no timing), its time accounting against the ladder's own, and the CLI."""
from __future__ import annotations

import json
import math
from pathlib import Path

import pytest

from conftest import run_cli, tiny_proxy_inputs, write_tiny_hparams
from planner.errors import UserError
from planner.hparams import HParams
from proxy_train.ladder_budget import (MIN_RUNS, MIN_STEPS, CalPoint, Calibration, TimeModel, budget_spec, choose,
                                       makespan, step_flops, task_seconds, task_steps)
from proxy_train.ladder_plan import LadderSpec, plan_points
from proxy_train.ladder_sizes import trainer_size
from proxy_train.ladder_tasks import tasks_for
from proxy_train.schedules import wsd_branch_charges

VOCAB, HEAD, SEQ, BATCH = 320, 16, 64, 8
DEMO_TRAIN_TOKENS = 7_966_100  # studies/demo/data/meta.json


def _spec(train_tokens: int = DEMO_TRAIN_TOKENS, **over) -> LadderSpec:
    sizes = [trainer_size(d, 2, vocab=VOCAB, head_dim=HEAD, seq_len=SEQ) for d in (16, 32)]
    kw = dict(data="unused", hparams="unused", sizes=sizes, tokens_per_param=[4.0], batch=BATCH, seq_len=SEQ,
              depth=2, hp=HParams(base_width=64, base_depth=2, base_head_dim=HEAD, warmup_frac=0.04),
              data_meta={"vocab_size": VOCAB, "train_tokens": train_tokens, "sha256": "x"})
    kw.update(over)
    return LadderSpec(**kw)


def _cal(a=0.008, b=2.5e-11, a_e=0.04, b_e=1.3e-10, seconds=6.0) -> Calibration:
    """Affine timings of the order this machine measured (benchmarks/results/proxy.txt: ~6.5k tokens/s at width
    256 with batch 8 x 128; a ladder at batch 8 x 64 measured 10-140 ms per step from width 16 to 256)."""
    pts = []
    for d in (16, 32, 64, 128, 256):
        F = step_flops(trainer_size(d, 2, vocab=VOCAB, head_dim=HEAD, seq_len=SEQ), BATCH * SEQ)
        pts.append(CalPoint(d, 2, F, a + b * F, a_e + b_e * F))
    return Calibration(pts, BATCH * SEQ, seconds=seconds)


def test_time_model_recovers_the_affine_law():
    m = TimeModel.fit(_cal())
    assert m.a == pytest.approx(0.008, rel=1e-6) and m.b == pytest.approx(2.5e-11, rel=1e-6)
    assert m.a_e == pytest.approx(0.04, rel=1e-6) and m.b_e == pytest.approx(1.3e-10, rel=1e-6)
    assert m.max_width == 256


def test_wsd_task_steps_match_the_ladders_compute_accounting():
    """Trained steps of a WSD task = the stable phase once + every cooldown, as the ladder charges it
    (proxy_train.schedules.wsd_branch_charges); evaluations every smallest-steps // evals_per_run."""
    spec = _spec(tokens_per_param=[4.3, 9.0, 20.0])
    points, _ = plan_points(spec)
    task = next(t for t in tasks_for(spec, points, Path(".")) if t.size.d_model == 32)
    trained, events = task_steps(spec, task)
    tps = spec.tokens_per_step
    steps = [b // tps for b in task.budgets]
    warm = round(0.04 * steps[0])
    ends = [max(warm, n - round(0.2 * n)) * tps for n in steps]
    charged = sum(s + c for s, c in wsd_branch_charges(list(zip(task.budgets, ends))))
    assert trained * tps == charged
    assert events == trained // (steps[0] // spec.evals_per_run) + 2 * len(steps) + 1


def test_makespan_is_largest_first_to_the_least_loaded_worker():
    assert makespan([5.0, 4.0, 3.0, 3.0], 1) == 15.0
    assert makespan([5.0, 4.0, 3.0, 3.0], 2) == 8.0    # 5+3 | 4+3
    assert makespan([9.0, 1.0, 1.0], 4) == 9.0


@pytest.mark.parametrize("minutes", [5, 15, 60])
def test_choice_respects_budget_and_constraints(minutes):
    spec, cal = _spec(), _cal()
    choice = choose(spec, cal, 60.0 * minutes, 1, depth=2)
    d = choice.design
    assert d.seconds <= 60.0 * minutes - cal.seconds
    final = budget_spec(spec, choice)
    points, skipped = plan_points(final)
    ladder = [p for p in points if p.role == "ladder"]
    assert len(ladder) == d.n_points >= MIN_RUNS
    assert len({p.size.name for p in ladder}) >= 3
    assert min(p.steps for p in ladder) >= MIN_STEPS
    assert max(p.tokens for p in ladder) <= 4 * DEMO_TRAIN_TOKENS
    # the prediction is the sum of the tasks' times on one worker, recomputed independently
    model = TimeModel.fit(cal)
    again = sum(task_seconds(final, t, model) for t in tasks_for(final, points, Path(".")))
    assert again == pytest.approx(d.seconds, rel=1e-9)
    assert math.log10(max(p.tokens for p in ladder) / min(p.tokens for p in ladder)) == pytest.approx(d.dec_d)


def test_more_budget_covers_at_least_as_many_decades():
    spec, cal = _spec(), _cal()
    keys = [choose(spec, cal, 60.0 * m, 1, depth=2).design for m in (3, 6, 15, 40, 120)]
    for lo, hi in zip(keys, keys[1:]):
        assert hi.key()[:3] >= lo.key()[:3]
    assert keys[-1].dec_n + keys[-1].dec_d > keys[0].dec_n + keys[0].dec_d + 0.5
    assert keys[-1].dec_m >= 1.0 and keys[-1].dec_n >= 1.0


def test_more_workers_never_cover_fewer_decades():
    spec, cal = _spec(), _cal()
    one = choose(spec, cal, 600.0, 1, depth=2).design
    two = choose(spec, cal, 600.0, 2, depth=2).design
    assert two.key()[:3] >= one.key()[:3]


def test_data_cap_bounds_every_run():
    """4 epochs of a 200k-token split: no run over 800k tokens, however large the budget."""
    spec, cal = _spec(train_tokens=200_000), _cal()
    choice = choose(spec, cal, 60.0 * 600, 1, depth=2)
    points, _ = plan_points(budget_spec(spec, choice))
    assert max(p.tokens for p in points) <= 4 * 200_000
    assert choice.design.seconds < 60.0 * 600 / 10  # the cap, not the budget, binds


def test_too_small_budget_names_the_smallest_that_works():
    spec, cal = _spec(), _cal()
    with pytest.raises(UserError) as e:
        choose(spec, cal, 30.0, 1, depth=2)
    msg = str(e.value)
    assert "too small" in msg and "\n" not in msg
    need = float(msg.split("give --budget-minutes ")[1].split()[0])
    assert choose(spec, cal, 60.0 * need, 1, depth=2).design.seconds <= 60.0 * need - cal.seconds
    with pytest.raises(UserError):
        choose(spec, cal, 60.0 * (need - 1), 1, depth=2)


def test_deterministic_given_the_calibration():
    spec, cal = _spec(), _cal()
    a, b = choose(spec, cal, 900.0, 1, depth=2), choose(spec, cal, 900.0, 1, depth=2)
    assert a.to_dict() == b.to_dict()
    assert json.loads(json.dumps(a.to_dict())) == a.to_dict()  # plain, serialisable record


# ------------------------------------------------------------------------------------------ CLI
@pytest.fixture(scope="module")
def toy(tmp_path_factory):
    data, hp = tiny_proxy_inputs(tmp_path_factory.mktemp("budget"))
    return data, write_tiny_hparams(hp, base_depth=2, base_head_dim=HEAD, warmup_frac=0.04, vocab_size=VOCAB)


def test_cli_plan_only_uses_the_cached_calibration(tmp_path, toy):
    from proxy_train import ladder
    from proxy_train.ladder_budget_cal import calibration_key, save_cached

    data, hp = toy
    study = tmp_path / "study"
    spec = ladder.load_spec(data=str(data), hparams=str(hp), batch=BATCH, seq_len=SEQ)
    save_cached(study, calibration_key(spec, budget_minutes=10, workers=1, depth=2), _cal())
    args = ["ladder", "--study", study, "--data", data, "--hparams", hp, "--batch", BATCH, "--seq-len", SEQ,
            "--workers", "1", "--budget-minutes", "10", "--plan-only"]
    r = run_cli(*args, "--json")
    assert r.returncode == 0, r.stderr[-2000:]
    out = json.loads(r.stdout)
    b = out["budget"]
    assert b["calibration_reused"] is True and b["predicted_minutes"] <= 10 - 6.0 / 60
    assert len([p for p in out["points"] if p["role"] == "ladder"]) == b["runs"] >= MIN_RUNS
    assert not (study / "runs").exists() and not (study / "study.yaml").exists()
    r2 = run_cli(*args)
    assert r2.returncode == 0, r2.stderr[-2000:]
    assert f"sizes {b['sizes']};" in r2.stdout and "[reused from ladder_budget.json]" in r2.stdout


def test_cli_too_small_budget_calibrates_then_refuses_leaving_nothing(tmp_path, toy):
    """The real calibration (a few steps per width on this machine; no timing asserted), then a budget of
    6 seconds (the smallest accepted, planner.limits.MIN_BUDGET_MINUTES): exit 2, one line naming the smallest
    budget that works, no study folder written."""
    data, hp = toy
    study = tmp_path / "study"
    r = run_cli("ladder", "--study", study, "--data", data, "--hparams", hp, "--batch", BATCH, "--seq-len", SEQ,
                "--workers", "1", "--budget-minutes", "0.1", "--plan-only")
    assert r.returncode == 2, r.stderr[-2000:]
    last = r.stderr.strip().splitlines()[-1]
    assert last.startswith("error: --budget-minutes 0.1 is too small") and "give --budget-minutes " in last
    assert "Traceback" not in r.stderr and not study.exists()


@pytest.mark.parametrize("value", ["0", "-3", "nan", "inf", "1e6", "abc", "0.09"])
def test_cli_bad_budget_exits_2_with_one_line(tmp_path, value):
    r = run_cli("ladder", "--study", tmp_path / "s", "--data", tmp_path, "--hparams", tmp_path / "h.yaml",
                "--budget-minutes", value, "--plan-only")
    assert r.returncode == 2 and "--budget-minutes" in r.stderr and "Traceback" not in r.stderr
    assert len(r.stderr.strip().splitlines()) == 1
    assert not (tmp_path / "s").exists()


@pytest.mark.parametrize("extra", [["--sizes", "16:2,32:2"], ["--tokens-per-param", "4,8"], ["--flops", "1e12"],
                                   ["--n-range", "1e4,1e5"], ["--storage", "sqlite:///x.db", "--enqueue"]])
def test_cli_budget_excludes_explicit_sizes_and_queues(tmp_path, toy, extra):
    data, hp = toy
    r = run_cli("ladder", "--study", tmp_path / "s", "--data", data, "--hparams", hp, "--budget-minutes", "5",
                "--plan-only", *extra)
    assert r.returncode == 2 and "--budget-minutes" in r.stderr and "Traceback" not in r.stderr
    assert len(r.stderr.strip().splitlines()) == 1
