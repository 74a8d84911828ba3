"""Untrusted plan files are data (issue 18): a hostile plan.yaml is refused at load, one that is valid
by design is exported into files that run nothing, YAML/JSON bombs are refused, and an edited plan
is exported only when asked.

Every CLI case runs ``scaleplan export`` in-process and asserts exit 2, one ``error:`` line naming
the plan section and field, no traceback, nothing on stdout and no output folder. The scripts are
executed with the launcher replaced (``TORCHRUN``, read from run.sh/launch.sh: ``exec
${TORCHRUN:-torchrun} ...``) and the torchtitan module is imported with torchtitan stubbed (as in
tests/test_export_torchtitan.py); a marker file proves that nothing in the plan ran.
"""
from __future__ import annotations

import copy
import json
import os
import subprocess
import time
from pathlib import Path

import pytest
import yaml

from conftest import run_cli
from planner.errors import UserError
from planner.hparams import HParams
from planner.io import MAX_YAML_NODES, read_json, read_yaml
from planner.plan import Plan, make_plan
from scaleplan.cli import main
from test_bad_inputs import _check_one_line_error, _run_inprocess

SHELL_INJ = "2176\ntouch {M}\n#"
PY_INJ = "4096 if __import__('os').system('touch {M}') else 4096"
CALL_INJ = "1); import os; os.system('touch {M}'"
TRAINERS = ("megatron", "torchtitan", "hf")


@pytest.fixture(scope="module")
def base_plan() -> dict:
    """A μP plan (every section present: hparams, candidates, memory, time/cost) as plan.yaml's mapping."""
    plan = make_plan(1e21, hparams=HParams(base_width=256, lr=6e-3), n_gpus=8, schedule="wsd",
                     phases=[dict(train_iters=1000, lr=3e-4, min_lr=3e-5), dict(name="rest")],
                     data={"dataset": "c4"})
    return plan.to_dict()


def _set(d: dict, path: str, value) -> dict:
    d = copy.deepcopy(d)
    node, keys = d, path.split(".")
    for k in keys[:-1]:
        node = node[int(k)] if k.isdigit() else node[k]
    node[int(keys[-1]) if keys[-1].isdigit() else keys[-1]] = value
    return d


def _run(argv: list, capsys) -> tuple[int, str, str]:
    return _run_inprocess([str(a) for a in argv], capsys)


def _refused(rc: int, out: str, err: str, *keywords: str) -> str:
    """Exit 2, one ``error:`` line holding every keyword, no traceback, nothing on stdout."""
    for k in keywords:
        _check_one_line_error(rc, out, err, k)
    assert out == ""
    return err.strip()


# (field path, value, words the error must contain); {M} is the marker file
HOSTILE = [
    ("shape.d_model", SHELL_INJ, "shape.d_model must be an integer"),
    ("training.seq_len", PY_INJ, "training.seq_len must be an integer"),
    ("layout.micro_batch", CALL_INJ, "layout.micro_batch must be an integer"),
    ("hparams.d_model", SHELL_INJ, "hparams.d_model must be an integer"),
    ("hparams.base_width", PY_INJ, "hparams.base_width"),
    ("hparams.groups.hidden.lr", CALL_INJ, "hparams.groups.hidden.lr must be a number"),
    ("hparams.attention.rule", "x\ntouch {M}", "hparams.attention.rule must be one line"),
    ("budget.n_gpus", CALL_INJ, "budget.n_gpus must be an integer"),
    ("budget.flops", PY_INJ, "budget.flops must be a number"),
    ("budget.how", SHELL_INJ, "budget.how must be one line"),
    ("allocation.N", PY_INJ, "allocation.N must be a number"),
    ("allocation.law_source", SHELL_INJ, "allocation.law_source must be one line"),
    ("tokens", PY_INJ, "section tokens must be an integer"),
    ("training.global_batch", CALL_INJ, "training.global_batch must be an integer"),
    ("training.train_iters", PY_INJ, "training.train_iters"),
    ("training.lr_decay_iters", CALL_INJ, "training.lr_decay_iters"),
    ("training.wsd_decay_iters", SHELL_INJ, "training.wsd_decay_iters"),
    ("training.lr", CALL_INJ, "training.lr must be a number"),
    ("training.lr_source", SHELL_INJ, "training.lr_source must be one line"),
    ("training.schedule", "cosine; touch {M}", "training.schedule must be one of cosine, wsd"),
    ("training.betas", [0.9, CALL_INJ], "training.betas[1] must be a number"),
    ("layout.gpu", SHELL_INJ, "layout.gpu must be one line"),
    ("layout.n_nodes", PY_INJ, "layout.n_nodes must be an integer"),
    ("layout.gpus_per_node", SHELL_INJ, "layout.gpus_per_node"),
    ("layout.shard_group", CALL_INJ, "layout.shard_group"),
    ("layout.recompute", "full\ntouch {M}", "layout.recompute"),
    ("memory.weights", PY_INJ, "memory.weights must be a number"),
    ("memory.stage", SHELL_INJ, "memory.stage"),
    ("time_cost.n_gpus", CALL_INJ, "time_cost.n_gpus must be an integer"),
    ("time_cost.gpu", SHELL_INJ, "time_cost.gpu must be one line"),
    ("candidates.0.d_model", SHELL_INJ, "candidates[0].d_model must be an integer"),
    ("candidates.0.why", SHELL_INJ, "candidates[0].why must be one line"),
    ("phases.0.train_iters", PY_INJ, "phases[0].train_iters must be an integer"),
    ("phases.0.decay_style", "linear\ntouch {M}", "phases[0].decay_style"),
    ("data.dataset", "c4\ntouch {M}", "data.dataset must be one line"),
    ("data.data_path", ["1", "a\ntouch {M}"], "data.data_path[1] must be one line"),
    ("warnings", ["ok", SHELL_INJ], "warnings[1] must be one line"),
    ("preset", SHELL_INJ, "preset must be one line"),
    ("meta.plan_hash", SHELL_INJ, "meta.plan_hash must be 64 hex digits"),
    # types and ranges that are not injections but nonsense
    ("shape.n_layers", True, "shape.n_layers must be an integer"),
    ("shape.d_model", 4096.0, "shape.d_model must be an integer"),
    ("shape.rope_theta", float("nan"), "shape.rope_theta must be a finite number"),
    ("shape.vocab_size", -5, "shape.vocab_size must be > 0"),
    ("training.lr", float("inf"), "training.lr must be a finite number"),
    ("training.betas", [0.9, 1.0], "training.betas must be strictly between 0 and 1"),
    ("training.betas", 0.9, "training.betas must be a list"),
    ("training.megatron_extra", {"split --evil": "1"}, "megatron_extra key"),
    ("layout.sequence_parallel", "no", "layout.sequence_parallel must be true or false"),
    ("layout.zero_stage", 7, "layout.zero_stage must be one of 0, 1, 2, 3"),
    ("layout.sharding", "zero", "layout.sharding must be one of"),
    ("time_cost.mfu", 1.5, "time_cost.mfu must be in (0, 1]"),
    ("budget.mfu", 0, "budget.mfu must be in (0, 1]"),
    ("shape.evil", 1, "unknown plan section shape fields ['evil']"),
    ("data.evil", "x", "unknown plan section data fields ['evil']"),
    ("memory", [1, 2], "memory must be a mapping"),
    ("hparams.groups", {"hidden": {}}, "hparams.groups must have exactly"),
]


@pytest.mark.parametrize("path, value, words", HOSTILE, ids=[f"{c[0]}-{i}" for i, c in enumerate(HOSTILE)])
def test_hostile_plan_is_refused_at_load(base_plan, tmp_path, capsys, path, value, words):
    marker = tmp_path / "PWNED"
    value = json.loads(json.dumps(value).replace("{M}", str(marker))) if isinstance(value, (str, list, dict)) else value
    (tmp_path / "plan.yaml").write_text(yaml.safe_dump(_set(base_plan, path, value), sort_keys=False))
    for trainer in TRAINERS:
        rc, out, err = _run(["export", tmp_path / "plan.yaml", "--trainer", trainer, "--out", tmp_path / trainer],
                            capsys)
        line = _refused(rc, out, err, words)
        assert "plan section" in line and "scaleplan plan" in line  # names the section and the fix
        assert not (tmp_path / trainer).exists()
    assert not marker.exists()


def test_hostile_plan_is_refused_by_the_real_entry_point(base_plan, tmp_path):
    marker = tmp_path / "PWNED"
    for path, value in [("shape.d_model", SHELL_INJ), ("training.seq_len", PY_INJ), ("layout.micro_batch", CALL_INJ)]:
        (tmp_path / "plan.yaml").write_text(yaml.safe_dump(_set(base_plan, path, value.replace("{M}", str(marker)))))
        res = run_cli("export", tmp_path / "plan.yaml", "--trainer", "torchtitan", "--out", tmp_path / "o",
                      timeout=120)
        _refused(res.returncode, res.stdout, res.stderr, path)
        assert not (tmp_path / "o").exists() and not marker.exists()


def test_valid_plans_load_unchanged(base_plan):
    plan = Plan.from_dict(base_plan)
    assert plan.edited_from is None and plan.to_dict() == base_plan
    llmjp = make_plan(preset="llm-jp-3-1.8b").to_dict()  # megatron_extra, no hparams
    assert Plan.from_dict(yaml.safe_load(yaml.safe_dump(llmjp))).to_dict() == llmjp


# ---------------------------------------------------------------------------------- valid by design
EVIL = "/data/my set/it's \"q\" $(touch {M}) ; touch {M} `touch {M}` ${{HOME}} \\ '''\"\"\""


@pytest.fixture(scope="module")
def evil_exports(tmp_path_factory):
    """A plan whose data paths hold quotes, ``$()``, backticks and ``;``, exported by the CLI."""
    tmp = tmp_path_factory.mktemp("evil")
    marker = tmp / "PWNED"
    evil = EVIL.format(M=marker)
    data = {"data_path": evil, "tokenizer_model": evil + "/tok", "checkpoint_dir": evil + "/ckpt",
            "cache_dir": evil + "/cache", "dataset": evil}
    make_plan(preset="llm-jp-3-1.8b", n_gpus=8, data=data).write(tmp / "plan.yaml")
    for trainer in TRAINERS:
        assert main(["export", str(tmp / "plan.yaml"), "--trainer", trainer, "--out", str(tmp / trainer)]) == 0
    return tmp, marker, evil


def _printed_argv(script: Path, cwd: Path) -> list[str]:
    env = {**os.environ, "TORCHRUN": "printf %s\\n", "MEGATRON_DIR": "/mlm", "HOME": "/nonexistent"}
    res = subprocess.run(["bash", str(script)], cwd=cwd, env=env, capture_output=True, text=True, timeout=60)
    assert res.returncode == 0, res.stderr
    return res.stdout.splitlines()


def test_valid_hostile_strings_are_exported_as_data(evil_exports):
    tmp, marker, evil = evil_exports
    for script in [tmp / "megatron" / "launch.sh", tmp / "megatron" / "sbatch.sh", tmp / "torchtitan" / "run.sh"]:
        subprocess.run(["bash", "-n", str(script)], check=True)
    argv = _printed_argv(tmp / "megatron" / "launch.sh", tmp)
    assert argv[argv.index("--data-path") + 1] == evil
    assert argv[argv.index("--tokenizer-model") + 1] == evil + "/tok"
    assert argv[argv.index("--save") + 1] == evil + "/ckpt"
    argv = _printed_argv(tmp / "torchtitan" / "run.sh", tmp)
    assert argv[argv.index("--training.seq_len") + 1] == "4096"
    assert json.loads((tmp / "hf" / "config.json").read_text())["hidden_size"] == 2048
    assert not marker.exists()


def test_torchtitan_module_imports_without_running_plan_strings(evil_exports, monkeypatch):
    from test_export_torchtitan import _load  # torchtitan stubbed, as the export tests do

    from planner.export.torchtitan import CONFIG_NAME

    tmp, marker, evil = evil_exports
    mod = _load(tmp / "torchtitan", monkeypatch)
    assert (mod.DATASET, mod.HF_ASSETS_PATH, mod.CHECKPOINT_DIR) == (evil, evil + "/tok", evil + "/ckpt")
    assert getattr(mod, CONFIG_NAME)().training.seq_len == 4096
    assert not marker.exists()


def test_command_text_cannot_leave_the_torchtitan_docstring(tmp_path, monkeypatch):
    from test_export_torchtitan import _load

    from planner.export.torchtitan import export_torchtitan

    marker = tmp_path / "PWNED"
    command = f'scaleplan x """\nimport os; os.system("touch {marker}")\n""" \\N \\'
    export_torchtitan(make_plan(preset="llm-jp-3-1.8b"), tmp_path / "o", command=command)
    mod = _load(tmp_path / "o", monkeypatch)
    assert "scaleplan x" in mod.__doc__ and not marker.exists()


# ---------------------------------------------------------------------------------- edited plans
def test_edited_plan_is_refused_unless_allowed(tmp_path, capsys):
    plan = make_plan(preset="llm-jp-3-1.8b", n_gpus=8)
    d = plan.to_dict()
    d["training"]["lr"] = 1e-4  # a valid value, but not what `scaleplan plan` wrote
    (tmp_path / "plan.yaml").write_text(yaml.safe_dump(d, sort_keys=False))
    for trainer in TRAINERS:
        rc, out, err = _run(["export", tmp_path / "plan.yaml", "--trainer", trainer, "--out", tmp_path / trainer],
                            capsys)
        _refused(rc, out, err, "edited after it was made", plan.plan_hash[:12], "--allow-edited-plan")
        assert not (tmp_path / trainer).exists()
        rc, out, err = _run(["export", tmp_path / "plan.yaml", "--trainer", trainer, "--out", tmp_path / trainer,
                             "--allow-edited-plan"], capsys)
        assert rc == 0, err
        for f in (tmp_path / trainer).iterdir():
            assert f"plan edited after it was made (stored plan_hash {plan.plan_hash})" in f.read_text(), f
    # an unedited plan exports without the flag and without the warning
    plan.write(tmp_path / "ok.yaml")
    rc, out, err = _run(["export", tmp_path / "ok.yaml", "--trainer", "torchtitan", "--out", tmp_path / "ok"], capsys)
    assert rc == 0 and "edited" not in (tmp_path / "ok" / "run.sh").read_text()


# ---------------------------------------------------------------------------------- bombs
def _laughs(levels: int = 9, fan: int = 9) -> str:
    lines = ["a0: &a0 [" + ", ".join(["lol"] * fan) + "]"]
    lines += [f"a{i}: &a{i} [" + ", ".join([f"*a{i - 1}"] * fan) + "]" for i in range(1, levels + 1)]
    return "\n".join(lines) + "\n"


def test_yaml_alias_bomb_is_refused_quickly(base_plan, tmp_path, capsys):
    bomb = _laughs()
    assert len(bomb) < 2048 and 9 ** 10 > MAX_YAML_NODES
    # in a plan's meta, as a whole hparams file, and as a self-referencing alias
    text = yaml.safe_dump({k: v for k, v in base_plan.items() if k != "meta"}, sort_keys=False)
    (tmp_path / "plan.yaml").write_text(text + "meta:\n" + "".join("  " + ln + "\n" for ln in bomb.splitlines()))
    (tmp_path / "hparams.yaml").write_text(bomb)
    (tmp_path / "cycle.yaml").write_text("a: &x [1, *x]\n")
    for argv in (["export", tmp_path / "plan.yaml", "--trainer", "hf", "--out", tmp_path / "o"],
                 ["plan", "--flops", "1e21", "--hparams", tmp_path / "hparams.yaml"],
                 ["plan", "--flops", "1e21", "--hparams", tmp_path / "cycle.yaml"]):
        t0 = time.monotonic()
        _refused(*_run(argv, capsys), "refused")
        assert time.monotonic() - t0 < 5
    assert not (tmp_path / "o").exists()
    (tmp_path / "ok.yaml").write_text("a: &x {lr: 1}\nb: *x\n")  # a few aliases are fine
    assert read_yaml(tmp_path / "ok.yaml") == {"a": {"lr": 1}, "b": {"lr": 1}}


@pytest.mark.parametrize("name, text, words", [
    ("deep.yaml", "[" * 100_000 + "]" * 100_000, "nested too deeply"),
    ("deep150.yaml", "[" * 150 + "]" * 150, "nested more than"),
    ("deep.json", "[" * 100_000 + "]" * 100_000, "nested too deeply"),
    ("bigint.json", "1" * 5000, "cannot be read"),
])
def test_deep_or_huge_documents_are_user_errors(tmp_path, name, text, words):
    (tmp_path / name).write_text(text)
    reader = read_yaml if name.endswith(".yaml") else read_json
    with pytest.raises(UserError, match=words):
        reader(tmp_path / name)


def test_oversized_file_is_refused_before_parsing(tmp_path, monkeypatch):
    import planner.io

    monkeypatch.setattr(planner.io, "MAX_READ_BYTES", 1000)
    (tmp_path / "big.json").write_text("[" + "1," * 1000 + "1]")
    with pytest.raises(UserError, match="larger than"):
        planner.io.read_json(tmp_path / "big.json")


def test_json_bombs_through_the_cli(tmp_path, capsys):
    (tmp_path / "deep.json").write_text("[" * 100_000 + "]" * 100_000)
    (tmp_path / "bigint.json").write_text('{"E": ' + "1" * 5000 + "}")
    plan = make_plan(preset="llm-jp-3-1.8b", n_gpus=8)
    plan.write(tmp_path / "plan.yaml")
    for argv, words in [(["optimal", "--law", tmp_path / "deep.json", "--flops", "1e22"], "nested too deeply"),
                        (["plan", "--flops", "1e21", "--law", tmp_path / "bigint.json"], "cannot be read"),
                        (["export", tmp_path / "plan.yaml", "--trainer", "megatron", "--out", tmp_path / "o",
                          "--flags", tmp_path / "deep.json"], "nested too deeply")]:
        _refused(*_run(argv, capsys), words)
    assert not (tmp_path / "o").exists()
