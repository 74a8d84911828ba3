"""Megatron-LM export: LLM-jp reference equality, flag validation, μP mapping, phases, shell quoting."""
from __future__ import annotations

import dataclasses
import json
import os
import subprocess

import numpy as np
import pytest

from planner.errors import UserError
from planner.export.megatron import build_args, export_megatron, render_megatron, validate_args
from planner.export.megatron_flags import launch_env, parse_argv, predicted_loss
from planner.export.megatron_validate import megatron_arg_problems, split_weights
from planner.hparams import HParams
from planner.laws import load_law
from planner.plan import Plan, make_plan
from planner.plan.operations import eval_cadence

# Flags the reference file itself documents as fork-only or inert on upstream Megatron-LM
# (llmjp_v3_1p8b_megatron.json "about"; notes §2): not planning decisions, not compared.
FORK_ONLY = {"--use-mpi", "--use-z-loss"}
INERT = {"--use-mcore-models", "--use-flash-attn", "--sequence-parallel"}  # SP is forced off at TP 1
PATH_PLACEHOLDERS = {"--tokenizer-model", "--load", "--save", "--data-path", "--data-cache-path"}
# The published run never validated (--eval-iters 0, --split 1,0,0); the launch validates on the
# plan's cadence with 0.1% held out, so the plan's loss can be checked mid-run (megatron_flags docstring).
VALIDATES = {"--eval-interval", "--eval-iters", "--split"}


@pytest.fixture(scope="module")
def flags_json(shared_data):
    return shared_data / "megatron" / "pretrain_gpt_flags.json"


@pytest.fixture(scope="module")
def flag_types(flags_json):
    return {o: r["type"] for r in json.loads(flags_json.read_text()) for o in r["opts"]}


def _same(flag, ref, got, types):
    if ref is True or got is True:
        return ref is got
    typ = types.get(flag)
    if typ == "float":
        return float(ref) == pytest.approx(float(got), rel=1e-12)
    if typ == "int":
        return int(ref) == int(got)
    return str(ref) == str(got)


def test_llmjp_export_equals_the_published_arguments(shared_data, flags_json, flag_types, tmp_path):
    ref = json.loads((shared_data / "references" / "llmjp_v3_1p8b_megatron.json").read_text())["args"]
    plan = make_plan(preset="llm-jp-3-1.8b")
    export_megatron(plan, tmp_path, flags_json_path=flags_json)
    got = json.loads((tmp_path / "megatron_args.json").read_text())["args"]
    compared = [f for f in ref if f not in FORK_ONLY | INERT | PATH_PLACEHOLDERS | VALIDATES]
    assert len(compared) >= 40
    diffs = {f: (ref[f], got.get(f)) for f in compared if f not in got or not _same(f, ref[f], got[f], flag_types)}
    assert diffs == {}
    assert (ref["--eval-iters"], ref["--split"]) == ("0", "1,0,0")
    assert (got["--eval-iters"], got["--eval-interval"]) == (str(plan.operations.eval_iters),
                                                             str(plan.operations.eval_interval))
    assert int(got["--eval-iters"]) > 0 and got["--split"] == "999,1,0"
    assert got["--log-interval"] == ref["--log-interval"] == "1"  # the published logging cadence is kept
    # the inert SP switch is correctly absent at TP 1; the paths are placeholders
    assert "--sequence-parallel" not in got
    assert set(PATH_PLACEHOLDERS) <= set(got)
    assert validate_args(got, flags_json) == []


def test_llmjp_schedule_semantics():
    t = make_plan(preset="llm-jp-3-1.8b").training
    # notes §1b: --lr-decay-iters includes warmup; cosine lasts 984,240 steps then 2,000 at min-lr
    assert t.lr_decay_iters - t.warmup_iters == 984_240
    assert t.train_iters - t.lr_decay_iters == 2_000


def test_validator_catches_bad_flags(flags_json):
    good = [("--num-layers", 24), ("--bf16", True), ("--lr-decay-style", "cosine"), ("--data-path", ["1", "a"])]
    assert validate_args(good, flags_json) == []
    bad = {
        "--no-such-flag": "1",
        "--num-layers": "24.5",
        "--lr": "fast",
        "--lr-decay-style": "Cosine",
        "--bf16": "yes",
        "--rampup-batch-size": ["1", "2"],
        "--tokenizer-type": "MyTokenizer",
        "--recompute-granularity": "partial",
    }
    problems = validate_args(bad, flags_json)
    for flag in bad:
        assert any(flag in p for p in problems), flag
    assert validate_args({"--tokenizer-type": "HuggingFaceTokenizer", "--attention-backend": "flash"}, flags_json) == []


@pytest.mark.parametrize("preset", ["llama-2-7b", "llama-2-70b", "llama-65b"])
def test_presets_export_valid_flags(preset, flags_json):
    plan = make_plan(preset=preset, n_gpus=512, tp=8, pp=4 if preset != "llama-2-7b" else 1, micro_batch=1,
                     global_batch=1024 if preset != "llama-65b" else 2048)
    args = dict((f, v) for f, v in build_args(plan))
    assert validate_args(build_args(plan), flags_json) == []
    assert args["--sequence-parallel"] is True and args["--tensor-model-parallel-size"] == 8
    if preset == "llama-2-70b":
        assert args["--group-query-attention"] is True and args["--num-query-groups"] == 8
    else:
        assert "--group-query-attention" not in args
    assert args["--lr-decay-style"] == "cosine" and args["--lr-warmup-iters"] == 2000


def test_llama2_7b_cosine_schedule_flags():
    args = dict(build_args(make_plan(preset="llama-2-7b", n_gpus=64)))
    assert (args["--lr"], args["--min-lr"], args["--lr-warmup-iters"]) == (3e-4, 3e-5, 2000)
    assert args["--lr-decay-iters"] == args["--train-iters"]
    assert (args["--adam-beta1"], args["--adam-beta2"], args["--adam-eps"]) == (0.9, 0.95, 1e-5)


def test_wsd_flags(flags_json):
    plan = make_plan(1e21, schedule="wsd", n_gpus=8)
    args = dict(build_args(plan))
    assert args["--lr-decay-style"] == "WSD" and args["--lr-wsd-decay-style"] == "linear"
    assert args["--lr-wsd-decay-iters"] == plan.training.wsd_decay_iters
    assert validate_args(build_args(plan), flags_json) == []


def test_three_phases_continue_the_way_each_says(flags_json, tmp_path):
    """Each phase --loads the previous one with Adam state, iteration and consumed samples kept (rewarm:
    --override-opt_param-scheduler on Megatron's global counter) unless it asks for a reset; never a silent
    finetune (the old export's --pretrained-checkpoint reset every phase: tests/test_phases.py)."""
    phases = [dict(train_iters=10_000, lr=3e-4, min_lr=3e-5, warmup_iters=2000, decay_style="linear"),
              dict(train_iters=5_000, lr=2e-4, min_lr=2e-5, warmup_iters=500, decay_style="linear"),
              dict(lr=1e-4, min_lr=0.0, warmup_iters=200, decay_style="linear", mode="reset")]
    plan = make_plan(preset="llm-jp-3-1.8b", phases=phases, data={"checkpoint_dir": "/ckpt"})
    res = export_megatron(plan, tmp_path, flags_json_path=flags_json)
    names = sorted(os.path.basename(f) for f in res["files"])
    assert names == ["launch_phase1.sh", "launch_phase2.sh", "launch_phase3.sh", "megatron_args.json",
                     "sbatch_phase1.sh", "sbatch_phase2.sh", "sbatch_phase3.sh"]
    by_phase = json.loads((tmp_path / "megatron_args.json").read_text())["phases"]
    a1, a2, a3 = (by_phase[f"phase{i}"] for i in (1, 2, 3))
    for i, a in enumerate((a1, a2, a3), 1):
        assert validate_args(a, flags_json) == []
        assert megatron_arg_problems(a, plan.placement.n_gpus, env=launch_env(plan)) == []
        assert a["--tensorboard-dir"] == f"/ckpt/tensorboard/phase{i}"  # each phase its own curves
        assert not {"--finetune", "--no-load-optim", "--no-load-rng"} & set(a)
        subprocess.run(["bash", "-n", str(tmp_path / f"launch_phase{i}.sh")], check=True)
    assert (a1["--train-iters"], a1["--lr-warmup-iters"], a1["--lr-decay-iters"]) == ("10000", "2000", "10000")
    # phase 2: same folder, the counter goes on to 15,000; its warmup spans samples 10,000-10,500 x GBS
    assert a2["--load"] == a2["--save"] == a1["--load"] == "/ckpt/phase1" and "--pretrained-checkpoint" not in a2
    assert a2["--override-opt_param-scheduler"] is True and a2["--train-iters"] == "15000"
    assert (a2["--lr-warmup-iters"], a2["--lr-decay-iters"], float(a2["--lr-warmup-init"])) == (
        "10500", "15000", -2e-4 * 10_000 / 500)
    # phase 3 asked for a reset: its own folder, finetune from the previous one, its own counter
    assert a3["--pretrained-checkpoint"] == "/ckpt/phase1" and a3["--load"] == "/ckpt/phase3"
    assert (a3["--train-iters"], a3["--lr-warmup-iters"]) == (str(988_240 - 15_000), "200")


# llm-jp/scripts branch v3-1.7b-2nd-epoch (PR #36, a3bae267) pretrain/scripts/v3-1.7b-exp2-cpt-2epoch-sakura/
# train.sh: the second epoch's flags that differ from exp2's (the rest is byte-identical, notes §2).
LLMJP_CPT_2EPOCH = {"--train-iters": "1980480", "--lr-decay-iters": "988240", "--override-opt_param-scheduler": True,
                    "--lr-warmup-iters": "2000", "--lr": "3e-4", "--min-lr": "3e-5", "--lr-decay-style": "cosine",
                    "--global-batch-size": "512", "--micro-batch-size": "4"}


def test_llmjp_exp2_phases_equal_the_published_launches(shared_data, flags_json, flag_types, tmp_path):
    ref = json.loads((shared_data / "references" / "llmjp_v3_1p8b_megatron.json").read_text())["args"]
    plan = make_plan(preset="llm-jp-3-1.8b-exp2", data={"checkpoint_dir": "/ckpt"})
    assert plan.placement.n_gpus == 32  # the PR #36 sbatch: 4 nodes x 8
    export_megatron(plan, tmp_path, flags_json_path=flags_json)
    out = json.loads((tmp_path / "megatron_args.json").read_text())
    exp2, cpt = out["phases"]["exp2"], out["phases"]["exp2-cpt-2epoch"]
    compared = [f for f in ref if f not in FORK_ONLY | INERT | PATH_PLACEHOLDERS | VALIDATES]
    assert {f: (ref[f], exp2.get(f)) for f in compared if not _same(f, ref[f], exp2.get(f), flag_types)} == {}
    published_cpt = {**{f: ref[f] for f in compared}, **LLMJP_CPT_2EPOCH}
    assert {f: (v, cpt.get(f)) for f, v in published_cpt.items() if not _same(f, v, cpt.get(f), flag_types)} == {}
    # the second epoch --loads exp2's last checkpoint with its optimizer state: no finetune, no fresh optimizer
    assert cpt["--load"] == exp2["--save"] and not {"--finetune", "--pretrained-checkpoint", "--no-load-optim"} & set(cpt)
    # the decay ended at 986,240 < 988,240: the whole second epoch runs at min-lr (Megatron get_lr past decay)
    from planner.plan.phases import lr_at_tokens, resolve_plan_phases
    phases = resolve_plan_phases(plan)
    t = np.linspace(phases[1].start_token, phases[1].end_token - 512 * 4096, 1001)
    assert np.all(lr_at_tokens(phases, t) == 3e-5)
    # the published --use-z-loss (1e-4) has no stock Megatron flag: flagged, not dropped silently
    assert out["meta"]["z_loss"]["coefficient"] == 1e-4 and out["meta"]["z_loss"]["applied"] is False
    assert "z-loss 0.0001" in (tmp_path / "launch_exp2-cpt-2epoch.sh").read_text()


def test_mup_export_modes(flags_json, tmp_path):
    """Both μP modes; the per-group check against Megatron's own rules is tests/test_megatron_mup.py."""
    hp = HParams(base_width=256, lr=6e-3, init_std=0.08, alpha_out=2.0, weight_decay=0.1)
    plan = make_plan(1e21, hparams=hp, n_gpus=8)
    m = plan.model_shape.d_model / 256
    tr = dict(build_args(plan, mup_mode="translate"))
    assert float(tr["--lr"]) == pytest.approx(6e-3 / m)
    # one --decoupled-lr for embedding (μP update lr) and output layer (lr * alpha_out/m): geometric mean
    assert float(tr["--decoupled-lr"]) == pytest.approx((6e-3 * 6e-3 * 2.0 / m) ** 0.5)
    assert float(tr["--init-method-std"]) == pytest.approx(0.08 / m ** 0.5)
    assert float(tr["--embedding-init-method-std"]) == pytest.approx(0.08)
    assert validate_args(build_args(plan, mup_mode="translate"), flags_json) == []
    with pytest.raises(UserError, match="--megatron-mup native"):
        export_megatron(plan, tmp_path / "refused", mup_mode="translate")
    assert not (tmp_path / "refused").exists()
    export_megatron(plan, tmp_path, mup_mode="translate", allow_approximate_mup=True)
    text = (tmp_path / "launch.sh").read_text()
    assert "APPROXIMATE" in text and "attention softmax scale" in text and "readout" in text
    native = dict(build_args(plan))  # native is the default
    assert native["--use-mup"] is True and native["--mup-base-hidden-size"] == 256
    # Megatron keeps a --mup-output-mult other than 1.0 as is (TransformerConfig.__post_init__);
    # softmax_scale = sqrt(base_head_dim)/kv_channels gives attn_mult/d_head. With weight decay under
    # the μP rule, embedding and output layer train at the hidden LR 6e-3/m (--decoupled-lr) so that one
    # --weight-decay decays them per step as the proxy did, and their multipliers carry the rest of the
    # μP update: output alpha_out/m x m = alpha_out, embedding alpha_in x m (megatron_mup.native_mup_flags)
    assert float(native["--lr"]) == pytest.approx(6e-3) and float(native["--decoupled-lr"]) == pytest.approx(6e-3 / m)
    assert float(native["--mup-output-mult"]) == pytest.approx(2.0) and float(native["--mup-embedding-mult"]) == \
        pytest.approx(m)
    assert float(native["--mup-base-head-dim"]) == 1.0 and float(native["--mup-attn-scale-power"]) == 1.0
    no_wd = dict(build_args(make_plan(1e21, hparams=HParams(base_width=256, lr=6e-3, init_std=0.08, alpha_out=2.0),
                                      n_gpus=8)))
    assert "--decoupled-lr" not in no_wd and float(no_wd["--mup-output-mult"]) == pytest.approx(2 / m)
    assert validate_args(build_args(plan), flags_json) == []


def test_header_and_layout_rules(tmp_path):
    plan = make_plan(preset="llm-jp-3-1.8b")
    export_megatron(plan, tmp_path, command="scaleplan plan --preset llm-jp-3-1.8b\nrm -rf /")
    text = (tmp_path / "launch.sh").read_text()
    assert plan.plan_hash in text and "scaleplan 0.1.0" in text
    assert "# command: scaleplan plan --preset llm-jp-3-1.8b rm -rf /" in text  # newline cannot escape the comment
    broken = plan.to_dict()
    broken["layout"]["tp"] = 3
    with pytest.raises(UserError, match="heads 16 not divisible by TP 3"):
        export_megatron(Plan.from_dict(broken), tmp_path / "x")
    assert plan.validate_layout() == []
    assert not (tmp_path / "x").exists()  # no partial output


def test_hostile_paths_are_data_not_code(tmp_path):
    canary = tmp_path / "pwned"
    evil = f"/data/my set/it's \"here\" $(touch {canary}) ; touch {canary} `touch {canary}`"
    plan = make_plan(preset="llm-jp-3-1.8b", n_gpus=8,
                     data={"data_path": evil, "tokenizer_model": f"tok; touch {canary}",
                           "checkpoint_dir": f"$(touch {canary})", "cache_dir": "c d"})
    export_megatron(plan, tmp_path / "out")
    script = tmp_path / "out" / "launch.sh"
    subprocess.run(["bash", "-n", str(script)], check=True)
    env = {**os.environ, "TORCHRUN": "printf %s\\n", "MEGATRON_DIR": "/mlm"}
    out = subprocess.run(["bash", str(script)], env=env, capture_output=True, text=True, timeout=30)
    assert out.returncode == 0, out.stderr
    argv = out.stdout.splitlines()
    assert not canary.exists()
    assert argv[argv.index("--data-path") + 1] == evil
    assert argv[argv.index("--tokenizer-model") + 1] == f"tok; touch {canary}"
    assert argv[argv.index("--save") + 1] == f"$(touch {canary})"
    assert argv[argv.index("--data-cache-path") + 1] == "c d"
    assert "/mlm/pretrain_gpt.py" in argv and argv[argv.index("--num-layers") + 1] == "24"
    subprocess.run(["bash", "-n", str(tmp_path / "out" / "sbatch.sh")], check=True)


def test_fsdp_hybrid_plan_is_refused_with_the_nearest_layouts(tmp_path):
    """Megatron's torch-FSDP2 path shards over every DP rank; a hybrid (shard in node, replicate
    across nodes) plan exported as full sharding would be a silent approximation: refused, and the
    message names the layouts Megatron can run."""
    plan = make_plan(preset="llama-2-7b", global_batch=256, micro_batch=2, tp=1, pp=1, n_gpus=64,
                     sharding="fsdp-hybrid")
    with pytest.raises(UserError, match="cannot express FSDP hybrid sharding") as err:
        export_megatron(plan, tmp_path)
    assert "GiB" in str(err.value) and not (tmp_path / "launch.sh").exists()


def test_render_is_what_export_writes(tmp_path):
    plan = make_plan(preset="llm-jp-3-1.8b", phases=[dict(train_iters=1000, lr=3e-4, min_lr=3e-5, warmup_iters=100),
                                                     dict()])
    files = render_megatron(plan, command="c")
    res = export_megatron(plan, tmp_path, command="c")
    assert sorted(files) == sorted(os.path.basename(f) for f in res["files"])
    for name, text in files.items():
        assert (tmp_path / name).read_text() == text
        assert bool(os.stat(tmp_path / name).st_mode & 0o100) == name.endswith(".sh")


# ---------------------------------------------------------------------------------- launch = plan
#: Plans across budgets, GPU counts, pinned layouts, the virtual pipeline, sharding, schedules and μP.
PLANS = {
    "1e20": dict(budget=1e20),
    "1e21-8gpu": dict(budget=1e21, n_gpus=8),
    "1e22-64gpu": dict(budget=1e22, n_gpus=64),
    "1e23-256gpu": dict(budget=1e23, n_gpus=256),
    "1e18-1gpu": dict(budget=1e18, n_gpus=1),
    "pinned-tp2-pp2": dict(budget=1e22, n_gpus=64, tp=2, pp=2, micro_batch=1),
    "vpp": dict(preset="llama-2-70b", n_gpus=512, tp=8, pp=8),  # the layout search interleaves
    "fsdp-tp2": dict(budget=3e23, n_gpus=1024, sharding="fsdp"),
    "ddp": dict(budget=1e21, n_gpus=8, sharding="ddp"),
    "wsd": dict(budget=1e21, schedule="wsd", n_gpus=8),
    "llm-jp": dict(preset="llm-jp-3-1.8b"),
    "llama-65b": dict(preset="llama-65b", n_gpus=512, tp=8, pp=4, micro_batch=1, global_batch=2048),
    "mup": dict(budget=1e21, n_gpus=8, hparams=HParams(base_width=256, lr=6e-3, init_std=0.08, alpha_out=2.0)),
}
_MADE: dict[str, Plan] = {}


def _plan(name: str) -> Plan:
    if name not in _MADE:
        _MADE[name] = make_plan(**PLANS[name])
    return _MADE[name]


def test_the_plan_range_covers_the_layouts():
    lays = {name: _plan(name).layout for name in PLANS}
    assert lays["vpp"].vpp > 1 and lays["vpp"].pp > 1
    assert lays["1e23-256gpu"].sequence_parallel and lays["1e23-256gpu"].tp > 1
    assert lays["fsdp-tp2"].fsdp and lays["ddp"].zero_stage == 0
    assert lays["1e18-1gpu"].dp == 1 and _plan("mup").is_mup


def _check_plan_values(plan: Plan, a: dict) -> None:
    """Every run-changing plan field in the Megatron arguments ``a`` (values as strings or True)."""
    lay, ops, t = plan.layout, plan.operations, plan.training
    extra = t.megatron_extra or {}
    assert [int(a[f]) for f in ("--tensor-model-parallel-size", "--pipeline-model-parallel-size",
                                "--context-parallel-size")] == [lay.tp, lay.pp, lay.cp]
    assert int(a.get("--num-virtual-stages-per-pipeline-rank", 1)) == lay.vpp
    assert (a.get("--sequence-parallel") is True) == (lay.sequence_parallel and lay.tp > 1)
    reduced = lay.dp * lay.cp > 1  # gradients cross ranks: the time model assumes that is overlapped
    assert (a.get("--use-torch-fsdp2") is True) == lay.fsdp
    assert (a.get("--use-distributed-optimizer") is True) == lay.distributed_optimizer
    assert (a.get("--overlap-grad-reduce") is True) == (reduced and not lay.fsdp)
    assert (a.get("--overlap-param-gather") is True) == (reduced and lay.distributed_optimizer)
    assert (int(a["--micro-batch-size"]), int(a["--global-batch-size"]), int(a["--train-iters"])) == (
        lay.micro_batch, t.global_batch, t.train_iters)
    assert int(a["--eval-interval"]) == ops.eval_interval and int(a["--eval-iters"]) == ops.eval_iters > 0
    assert int(a["--save-interval"]) == extra.get("save_interval", ops.save_interval)
    assert int(a["--log-interval"]) == int(a["--tensorboard-log-interval"]) == extra.get("log_interval",
                                                                                          ops.log_interval)
    assert split_weights(a["--split"])[1] > 0  # a validation set exists
    assert a["--check-for-spiky-loss"] is True and a["--rerun-mode"] == "validate_results"
    assert "--no-check-for-nan-in-loss-and-grad" not in a  # Megatron's NaN/Inf check stays on
    assert a["--log-validation-ppl-to-tensorboard"] is True and a["--log-timers-to-tensorboard"] is True


@pytest.mark.parametrize("name", PLANS)
def test_exported_arguments_pass_megatrons_validation(name, flags_json):
    plan = _plan(name)
    files = render_megatron(plan)  # runs the checker itself: raises when Megatron would reject
    got = json.loads(files["megatron_args.json"])["args"]
    assert megatron_arg_problems(got, plan.placement.n_gpus, env=launch_env(plan)) == []
    assert validate_args(got, flags_json) == []
    _check_plan_values(plan, got)


def _launched(plan: Plan, tmp_path) -> tuple[dict, str, str]:
    """(the argv pretrain_gpt.py gets, parsed; CUDA_DEVICE_MAX_CONNECTIONS as launched; launch.sh's text)."""
    export_megatron(plan, tmp_path / "out")
    shim = tmp_path / "torchrun.sh"
    shim.write_text('printf "%s\\n" "CDMC=${CUDA_DEVICE_MAX_CONNECTIONS-unset}" "$@"\n')
    env = {k: v for k, v in os.environ.items() if k != "CUDA_DEVICE_MAX_CONNECTIONS"}
    env.update(TORCHRUN=f"bash {shim}", MEGATRON_DIR="/mlm")
    out = subprocess.run(["bash", str(tmp_path / "out" / "launch.sh")], env=env, capture_output=True, text=True,
                         timeout=60, check=True).stdout.splitlines()
    argv = out[out.index("/mlm/pretrain_gpt.py") + 1:]
    return parse_argv(argv), out[0].split("=", 1)[1], (tmp_path / "out" / "launch.sh").read_text()


@pytest.mark.parametrize("name", ["vpp", "fsdp-tp2", "1e23-256gpu", "llm-jp", "1e18-1gpu"])
def test_launch_script_runs_the_plan(name, tmp_path):
    plan = _plan(name)
    a, connections, text = _launched(plan, tmp_path)
    _check_plan_values(plan, a)
    assert a["--tensorboard-dir"] == "/path/to/checkpoints/tensorboard"
    assert connections == ("unset" if plan.layout.fsdp else "1")  # torch FSDP2 refuses 1; TP/CP need it
    env = {"CUDA_DEVICE_MAX_CONNECTIONS": None if connections == "unset" else connections}
    assert megatron_arg_problems(a, plan.placement.n_gpus, env=env) == []
    ops = plan.operations
    assert f"validation loss every {ops.eval_interval} steps over {ops.eval_iters} batches" in text
    loss, _ = predicted_loss(plan)
    assert (f"predicted final loss {loss:.4f} nats/token" if loss is not None else "no scaling law") in text


def test_predicted_loss_is_the_laws_at_the_planned_shape():
    plan = _plan("1e21-8gpu")
    loss, what = predicted_loss(plan)
    law = load_law(plan.allocation.law)
    assert loss == pytest.approx(float(law.predict(plan.shape.total_params, plan.tokens)), rel=1e-12)
    assert "planned shape" in what
    # a plan without that number falls back to the law's loss at N*, D*, and says so
    bare = dataclasses.replace(plan, operations=dataclasses.replace(plan.operations, predicted_loss=None))
    loss, what = predicted_loss(bare)
    assert loss == plan.allocation.loss and "N*" in what and "no loss for its chosen shape" in what
    meta = json.loads(render_megatron(plan)["megatron_args.json"])["meta"]["run_checks"]
    assert meta["predicted_final_loss"] == pytest.approx(predicted_loss(plan)[0])
    assert (meta["eval_interval"], meta["eval_iters"]) == (plan.operations.eval_interval, plan.operations.eval_iters)


def test_plan_without_operations_uses_the_old_intervals_but_still_validates():
    plan = dataclasses.replace(_plan("1e21-8gpu"), operations=None)
    t = plan.training
    a = dict(build_args(plan))
    assert (a["--log-interval"], a["--save-interval"]) == (10, min(1000, t.train_iters))
    assert (a["--eval-interval"], a["--eval-iters"]) == eval_cadence(t.global_batch, t.seq_len, t.train_iters)
    assert a["--eval-iters"] > 0
    assert "no operations section" in render_megatron(plan)["launch.sh"]


def test_megatron_would_reject_so_the_export_refuses(tmp_path):
    # warmup as long as the decay: Megatron's scheduler asserts warmup < decay steps
    plan = make_plan(preset="llm-jp-3-1.8b")
    t = plan.training
    bad = dataclasses.replace(plan, training=dataclasses.replace(t, warmup_iters=t.lr_decay_iters))
    with pytest.raises(UserError, match=r"lr-schedule: --lr-warmup-iters 986240 must be below --lr-decay-iters 986240"):
        export_megatron(bad, tmp_path / "x")
    assert not (tmp_path / "x").exists()
    # a phase whose warmup fills its segment is refused before any flag is written (planner/plan/phases.py)
    phases = [dict(train_iters=1000, lr=3e-4, min_lr=3e-5, warmup_iters=1000), dict(mode="rewarm")]
    with pytest.raises(UserError, match=r"phase 1's warmup \(1000 steps\) leaves no decay"):
        export_megatron(make_plan(preset="llm-jp-3-1.8b", phases=phases), tmp_path / "x")
    assert not (tmp_path / "x").exists()
    t = _plan("1e21-8gpu").training
    silent = dataclasses.replace(_plan("1e21-8gpu"), training=dataclasses.replace(t, megatron_extra={"log_interval": 0}))
    with pytest.raises(UserError, match=r"logging: --log-interval must be positive, got 0; .*training_log L3539"):
        render_megatron(silent)


def test_parse_argv_reads_switches_values_and_lists():
    assert parse_argv(["--bf16", "--lr", "3e-4", "--data-path", "1", "a", "2", "b", "--no-x"]) == {
        "--bf16": True, "--lr": "3e-4", "--data-path": ["1", "a", "2", "b"], "--no-x": True}
    with pytest.raises(UserError, match="before any flag"):
        parse_argv(["stray", "--bf16"])


def test_a_malformed_published_setting_is_a_user_error():
    t = _plan("llm-jp").training
    bad = dataclasses.replace(_plan("llm-jp"), training=dataclasses.replace(
        t, megatron_extra={**t.megatron_extra, "log_interval": "often"}))
    with pytest.raises(UserError, match="megatron_extra.log_interval must be an integer"):
        render_megatron(bad)
