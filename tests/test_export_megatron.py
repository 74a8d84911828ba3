"""Megatron-LM export: LLM-jp reference equality, flag validation, μP mapping, phases, shell quoting."""
from __future__ import annotations

import json
import os
import subprocess

import pytest

from planner.errors import UserError
from planner.export.megatron import build_args, export_megatron, render_megatron, validate_args
from planner.hparams import HParams
from planner.plan import Plan, make_plan

# Flags the reference file itself documents as fork-only or inert on upstream Megatron-LM
# (llmjp_v3_1p8b_megatron.json "about"; notes §2): not planning decisions, not compared.
FORK_ONLY = {"--use-mpi", "--use-z-loss"}
INERT = {"--use-mcore-models", "--use-flash-attn", "--sequence-parallel"}  # SP is forced off at TP 1
PATH_PLACEHOLDERS = {"--tokenizer-model", "--load", "--save", "--data-path", "--data-cache-path"}


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
    compared = [f for f in ref if f not in FORK_ONLY | INERT | PATH_PLACEHOLDERS]
    assert len(compared) >= 40
    diffs = {f: (ref[f], got.get(f)) for f in compared if f not in got or not _same(f, ref[f], got[f], flag_types)}
    assert diffs == {}
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


def test_three_phase_linear_schedule_with_rewarmup(flags_json, tmp_path):
    phases = [dict(train_iters=10_000, lr=3e-4, min_lr=3e-5, warmup_iters=2000, decay_style="linear"),
              dict(train_iters=5_000, lr=2e-4, min_lr=2e-5, warmup_iters=500, decay_style="linear"),
              dict(train_iters=2_000, lr=1e-4, min_lr=0.0, warmup_iters=200, decay_style="linear")]
    plan = make_plan(preset="llm-jp-3-1.8b", phases=phases, data={"checkpoint_dir": "/ckpt"})
    res = export_megatron(plan, tmp_path, flags_json_path=flags_json)
    names = sorted(os.path.basename(f) for f in res["files"])
    assert names == ["launch_phase1.sh", "launch_phase2.sh", "launch_phase3.sh", "megatron_args.json",
                     "sbatch_phase1.sh", "sbatch_phase2.sh", "sbatch_phase3.sh"]
    by_phase = json.loads((tmp_path / "megatron_args.json").read_text())["phases"]
    for i, p in enumerate(phases, 1):
        a = by_phase[f"phase{i}"]
        assert validate_args(a, flags_json) == []
        assert a["--lr-decay-style"] == "linear" and int(a["--lr-warmup-iters"]) == p["warmup_iters"]
        assert int(a["--train-iters"]) == int(a["--lr-decay-iters"]) == p["train_iters"]
        assert float(a["--lr"]) == p["lr"] and float(a["--min-lr"]) == p["min_lr"]
        assert a["--save"] == a["--load"] == f"/ckpt/phase{i}"
        # phases after the first start from the previous phase's weights with a fresh step counter
        assert a.get("--pretrained-checkpoint") == (f"/ckpt/phase{i - 1}" if i > 1 else None)
    for i in (1, 2, 3):
        subprocess.run(["bash", "-n", str(tmp_path / f"launch_phase{i}.sh")], check=True)


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
    # Megatron keeps a --mup-output-mult other than 1.0 as is (TransformerConfig.__post_init__), so the
    # flag is alpha_out/m itself; softmax_scale = sqrt(base_head_dim)/kv_channels gives attn_mult/d_head
    assert float(native["--lr"]) == pytest.approx(6e-3) and float(native["--mup-output-mult"]) == pytest.approx(2 / m)
    assert float(native["--mup-base-head-dim"]) == 1.0 and float(native["--mup-attn-scale-power"]) == 1.0
    assert "--decoupled-lr" not in native
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


def test_fsdp_hybrid_plan_exports_torch_fsdp2(flags_json, tmp_path):
    plan = make_plan(preset="llama-2-7b", global_batch=256, micro_batch=2, tp=1, pp=1, n_gpus=64,
                     sharding="fsdp-hybrid")
    args = dict(build_args(plan))
    assert args["--use-torch-fsdp2"] is True and "--use-distributed-optimizer" not in args
    assert args["--untie-embeddings-and-output-weights"] is True and args["--ckpt-format"] == "torch_dist"
    assert validate_args(build_args(plan), flags_json) == []
    export_megatron(plan, tmp_path)
    assert "hybrid shard" in (tmp_path / "launch.sh").read_text()


def test_render_is_what_export_writes(tmp_path):
    plan = make_plan(preset="llm-jp-3-1.8b", phases=[dict(train_iters=1000, lr=3e-4, min_lr=3e-5)])
    files = render_megatron(plan, command="c")
    res = export_megatron(plan, tmp_path, command="c")
    assert sorted(files) == sorted(os.path.basename(f) for f in res["files"])
    for name, text in files.items():
        assert (tmp_path / name).read_text() == text
        assert bool(os.stat(tmp_path / name).st_mode & 0o100) == name.endswith(".sh")
