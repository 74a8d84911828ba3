"""`scaleplan plan` and `scaleplan export` through the real entry point."""
from __future__ import annotations

import json

import pytest

from conftest import run_cli


def test_plan_preset_json_and_export(tmp_path, shared_data):
    out = tmp_path / "plan.yaml"
    r = run_cli("plan", "--preset", "llm-jp-3-1.8b", "--out", out, "--json", "--price", "2.5",
                "--data-path", "/data/llmjp v3")
    assert r.returncode == 0, r.stderr
    d = json.loads(r.stdout)
    assert d["training"]["train_iters"] == 988_240 and d["meta"]["plan_hash"]
    assert d["time_cost"]["price_per_gpu_hour"] == 2.5
    assert "scaleplan plan --preset llm-jp-3-1.8b" in d["meta"]["command"]
    flags = shared_data / "megatron" / "pretrain_gpt_flags.json"
    for trainer, expect in (("megatron", "launch.sh"), ("torchtitan", "run.sh"), ("hf", "config.json")):
        e = run_cli("export", out, "--trainer", trainer, "--out", tmp_path / trainer, "--json",
                    *(("--flags", flags) if trainer == "megatron" else ()))
        assert e.returncode == 0, e.stderr
        res = json.loads(e.stdout)
        assert res["plan_hash"] == d["meta"]["plan_hash"]
        assert (tmp_path / trainer / expect).exists()
    args = json.loads((tmp_path / "megatron" / "megatron_args.json").read_text())["args"]
    assert args["--data-path"] == ["/data/llmjp v3"]


def test_plan_budget_human_summary():
    r = run_cli("plan", "--gpus", "64", "--days", "10", "--gpu", "h100", "--mfu", "0.4")
    assert r.returncode == 0, r.stderr
    for word in ("model", "tokens", "batch", "schedule", "layout", "memory", "time", "warning"):
        assert word in r.stdout
    assert "64 x H100-SXM" in r.stdout


def test_list_presets_and_help():
    r = run_cli("plan", "--list-presets", "--json")
    assert r.returncode == 0
    assert {p["name"] for p in json.loads(r.stdout)} >= {"llm-jp-3-1.8b", "llama-2-7b", "llama-65b"}
    for cmd in ("plan", "export"):
        h = run_cli(cmd, "--help")
        assert h.returncode == 0 and "--json" in h.stdout


@pytest.mark.parametrize("argv, msg", [
    (["plan", "--flops", "1e10"], "no model shape"),
    (["plan", "--flops", "1e21", "--gpu", "tpu9"], "unknown GPU"),
    (["plan", "--preset", "llm-jp-3-1.8b", "--tp", "3", "--gpus", "48"], "TP"),
    (["plan", "--flops", "1e21", "--preset", "llama-2-7b"], "exactly one"),
    (["plan", "--days", "3"], "--gpus"),
    (["plan", "--flops", "-1"], "positive"),
    (["plan", "--flops", "1e21", "--hparams", "/nonexistent/h.yaml"], "not found"),
    (["export", "/nonexistent/plan.yaml", "--trainer", "hf", "--out", "x"], "not found"),
])
def test_bad_input_exits_2_with_one_line(argv, msg, tmp_path):
    r = run_cli(*argv, cwd=tmp_path)
    assert r.returncode == 2
    lines = r.stderr.strip().splitlines()
    assert len(lines) == 1 and msg in lines[0] and "Traceback" not in r.stderr
    assert r.stdout == "" and not (tmp_path / "x").exists()


def test_sp_hparams_for_a_plan_warn(tmp_path):
    hp = tmp_path / "hparams.yaml"
    hp.write_text("parameterization: sp\nbase_width: 128\nlr: 0.001\n")
    r = run_cli("plan", "--flops", "1e21", "--gpus", "8", "--hparams", hp, "--json")
    assert r.returncode == 0, r.stderr
    # a file without sweep evidence fails the quality gate: the plan falls back and says why
    plan = json.loads(r.stdout)
    assert plan["hparams"] is None and any("quality gate" in w for w in plan["warnings"])
    r = run_cli("plan", "--flops", "1e21", "--gpus", "8", "--hparams", hp, "--force-hparams", "--json")
    assert r.returncode == 0, r.stderr
    assert any("no transfer guarantee" in w for w in json.loads(r.stdout)["warnings"])
    bad = tmp_path / "bad.yaml"
    bad.write_text("parameterization: ntk\nbase_width: 128\n")
    r = run_cli("plan", "--flops", "1e21", "--hparams", bad)
    assert r.returncode == 2 and "unknown parameterization" in r.stderr
