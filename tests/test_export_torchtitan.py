"""torchtitan 0.3.0 export: names checked against the real wheel, the config module executed on stubs.

The end-to-end checks (the export parsed by torchtitan's own ConfigManager, the model built from
it) are in tests/test_export_torchtitan_real.py.
"""
from __future__ import annotations

import ast
import math
import os
import subprocess
import sys
import types
import zipfile
from pathlib import Path

import pytest
from conftest import skip_or_fail

from planner.errors import UserError
from planner.export.torchtitan import (CONFIG_NAME, MODULE_NAME, PATTERNS, TORCHTITAN_CLI_FIELDS, TORCHTITAN_NAMES,
                                       export_torchtitan, mup_groups, sections)
from planner.hparams import HParams
from planner.plan import make_plan
from planner.shape import ModelShape

WHEEL = "torchtitan-0.3.0-py3-none-any.whl"
WHEEL_SHA256 = "5563ccf9a295b24e00a36087149e9c2d0686cecbd3972c31e67227029293af42"
# Verified by reading that wheel (sha256 above) on 2026-11-24; used when the wheel is not cached.
VERIFIED_NAMES = {
    "torchtitan.components.checkpoint": {"CheckpointManager"},
    "torchtitan.components.loss": {"ChunkedLossWrapper", "CrossEntropyLoss"},
    "torchtitan.components.metrics": {"MetricsProcessor"},
    "torchtitan.components.optimizer": {"LRSchedulersContainer", "OptimizersContainer", "ParamGroupConfig",
                                        "default_adamw"},
    "torchtitan.config": {"ParallelismConfig", "TrainingConfig", "CompileConfig"},
    "torchtitan.distributed.activation_checkpoint": {"FullAC", "SelectiveAC"},
    "torchtitan.distributed.pipeline_parallel": {"pipeline_llm"},
    "torchtitan.hf_datasets.text_datasets": {"HuggingFaceTextDataLoader", "ChatDataLoader"},
    "torchtitan.models.common": {"ComplexRoPE", "Embedding", "LayerNorm", "Linear", "RMSNorm", "RoPE", "TransformerBlock"},
    "torchtitan.models.common.config_utils": {"get_attention_config", "make_ffn_config", "make_gqa_config",
                                              "decoder_vocab_size"},
    "torchtitan.models.common.param_init": {"skip_param_init", "depth_scaled_std"},
    "torchtitan.models.llama3": {"Llama3Model", "Llama3TransformerBlock", "Llama3StateDictAdapter",
                                 "parallelize_llama"},
    "torchtitan.protocols.model_spec": {"ModelSpec"},
    "torchtitan.trainer": {"Trainer"},
}
#: Where each run.sh override section's dataclass lives in the wheel.
CLI_SOURCES = {"training": "torchtitan/config/configs.py", "parallelism": "torchtitan/config/configs.py",
               "lr_scheduler": "torchtitan/components/optimizer/lr_scheduler.py",
               "checkpoint": "torchtitan/components/checkpointer/base.py"}
MUP_HP = dict(base_width=64, lr=6e-3, init_std=0.05, alpha_in=1.5, alpha_out=2.0, attn_mult=2.0, weight_decay=0.1)
TINY = dict(n_layers=2, d_model=256, d_ffn=512, n_heads=4, head_dim=64, vocab_size=512)


def _wheel() -> Path | None:
    for cand in (os.environ.get("SCALEPLAN_TORCHTITAN_WHEEL"), Path.home() / ".cache" / "scaleplan" / WHEEL):
        if cand and Path(cand).is_file():
            return Path(cand)
    return None


def mup_plan(**kw):
    """A tiny μP plan (m_d = 4; every multiplier != 1)."""
    shape = ModelShape(**{**TINY, **kw.pop("shape", {})}, seq_len=256)
    return make_plan(1e17, shape=shape, hparams=HParams(**MUP_HP), n_gpus=kw.pop("n_gpus", 1), seq_len=256, **kw)


@pytest.fixture(scope="module")
def plan():
    return make_plan(preset="llm-jp-3-1.8b")


def test_imported_names_exist_in_torchtitan_030():
    wheel = _wheel()
    if wheel is None:  # no cached wheel: compare with the list verified from it
        for mod, names in TORCHTITAN_NAMES.items():
            assert set(names) <= VERIFIED_NAMES[mod], mod
        skip_or_fail(f"{WHEEL} not cached (pip download --no-deps torchtitan==0.3.0 -d ~/.cache/scaleplan); "
                     "checked against the verified list only")
    import hashlib

    assert hashlib.sha256(wheel.read_bytes()).hexdigest() == WHEEL_SHA256
    with zipfile.ZipFile(wheel) as z:
        files = set(z.namelist())
        for mod, names in TORCHTITAN_NAMES.items():
            base = mod.replace(".", "/")
            path = f"{base}.py" if f"{base}.py" in files else f"{base}/__init__.py"
            tree = ast.parse(z.read(path).decode())
            defined = set()
            for node in ast.walk(tree):
                if isinstance(node, (ast.FunctionDef, ast.ClassDef)):
                    defined.add(node.name)
                elif isinstance(node, ast.ImportFrom):
                    defined |= {a.asname or a.name for a in node.names}
                elif isinstance(node, ast.Assign):
                    defined |= {t.id for t in node.targets if isinstance(t, ast.Name)}
            missing = set(names) - defined
            assert not missing, f"{mod} lacks {missing}"
        for section, fields in TORCHTITAN_CLI_FIELDS.items():  # run.sh's overrides exist on the dataclasses
            src = z.read(CLI_SOURCES[section]).decode()
            for f in fields:
                assert f"    {f}:" in src, f"{section}.{f}"


def _stub_torchtitan(monkeypatch):
    """Fake torchtitan modules: every class has a .Config recording its kwargs."""

    def config_class(name):
        cls = type(name, (), {})
        cls.Config = lambda **kw: types.SimpleNamespace(_type=name, **kw)
        return cls

    def function(name):
        return lambda *a, **kw: types.SimpleNamespace(_type=name, _args=a, **kw)

    def gqa(**kw):  # make_gqa_config: a separate wq (fuse_qkv=False) the module may re-initialise
        qkv = types.SimpleNamespace(_type="FusedQKVLinear" if kw["fuse_qkv"] else "QKVLinear")
        if not kw["fuse_qkv"]:
            qkv.wq = types.SimpleNamespace(param_init=kw["wqkv_param_init"])
        return types.SimpleNamespace(_type="GQAttention", qkv_linear=qkv, **kw)

    for mod, names in TORCHTITAN_NAMES.items():
        m = types.ModuleType(mod)
        for n in names:
            setattr(m, n, config_class(n) if n[0].isupper() else function(n))
        monkeypatch.setitem(sys.modules, mod, m)
    for mod, name in [("torchtitan.config", "TrainingConfig"), ("torchtitan.config", "ParallelismConfig"),
                      ("torchtitan.protocols.model_spec", "ModelSpec"), ("torchtitan.components.optimizer",
                                                                         "ParamGroupConfig")]:
        setattr(sys.modules[mod], name, function(name))
    sys.modules["torchtitan.models.common.config_utils"].make_gqa_config = gqa
    sys.modules["torchtitan.models.common.config_utils"].decoder_vocab_size = lambda spec: spec.model.vocab_size


def _load(out: Path, monkeypatch):
    pytest.importorskip("torch")  # the module uses torch.nn.init for parameter initialisers
    _stub_torchtitan(monkeypatch)
    monkeypatch.syspath_prepend(str(out))
    monkeypatch.delitem(sys.modules, MODULE_NAME, raising=False)
    import importlib

    return importlib.import_module(MODULE_NAME)


def test_config_module_builds_the_planned_model(plan, tmp_path, monkeypatch):
    export_torchtitan(plan, tmp_path, command="scaleplan export plan.yaml --trainer torchtitan")
    src = (tmp_path / f"{MODULE_NAME}.py").read_text()
    assert plan.plan_hash in src and "_build_llama3_layers" not in src
    cfg = getattr(_load(tmp_path, monkeypatch), CONFIG_NAME)()
    model = cfg.model_spec.model
    assert (model.dim, model.vocab_size, len(model.layers), model.enable_weight_tying) == (2048, 99_584, 24, False)
    att = model.layers[0].attention
    assert (att.n_heads, att.n_kv_heads, att.head_dim, att.dim, att.fuse_qkv) == (16, 16, 128, 2048, True)
    assert att.rope.dim == 128 and model.layers[0].attention_norm.eps == 1e-5
    assert model.layers[0].feed_forward.hidden_dim == 7168
    tr = cfg.training
    assert (tr.local_batch_size, tr.global_batch_size, tr.seq_len, tr.steps) == (4, 512, 4096, 988_240)
    assert (cfg.lr_scheduler.warmup_steps, cfg.lr_scheduler.decay_type) == (2000, "cosine")
    assert cfg.lr_scheduler.min_lr_factor == pytest.approx(0.1)
    norms, rest = cfg.optimizer.param_groups  # Megatron's rule: no weight decay on 1-D norm weights
    assert (norms.pattern, norms.optimizer_kwargs["weight_decay"]) == (PATTERNS["norms"], 0.0)
    assert rest.optimizer_kwargs == {"lr": 3e-4, "weight_decay": 0.1, "betas": (0.9, 0.95), "eps": 1e-8}
    assert cfg.loss.loss_fn.global_vocab_size == 99_584
    assert cfg.activation_checkpoint._type == "SelectiveAC"
    assert (cfg.checkpoint.enable, cfg.checkpoint.interval) == (True, plan.operations.save_interval)
    assert cfg.parallelism.data_parallel_shard_degree == 64 and cfg.parallelism.enable_sequence_parallel is False


@pytest.mark.parametrize("recompute, expected", [("none", None), ("selective", "SelectiveAC"), ("full", "FullAC")])
def test_recompute_maps_to_torchtitan_activation_checkpointing(recompute, expected, tmp_path, monkeypatch):
    export_torchtitan(make_plan(1e21, n_gpus=8, recompute=recompute), tmp_path)
    ac = getattr(_load(tmp_path, monkeypatch), CONFIG_NAME)().activation_checkpoint
    assert (ac if ac is None else ac._type) == expected


def test_run_sh_passes_the_layout(plan, tmp_path):
    export_torchtitan(plan, tmp_path)
    script = tmp_path / "run.sh"
    subprocess.run(["bash", "-n", str(script)], check=True)
    env = {**os.environ, "TORCHRUN": "printf %s\\n"}
    argv = subprocess.run(["bash", str(script)], env=env, capture_output=True, text=True, check=True,
                          timeout=30).stdout.splitlines()
    assert argv[argv.index("--module") + 1] == MODULE_NAME and argv[argv.index("--config") + 1] == CONFIG_NAME
    assert argv[argv.index("--training.steps") + 1] == "988240"
    assert argv[argv.index("--parallelism.data_parallel_shard_degree") + 1] == "64"
    assert argv[argv.index("--checkpoint.interval") + 1] == str(plan.operations.save_interval)
    for flag in [a for a in argv if a.startswith("--") and "." in a]:
        section, field = flag[2:].split(".", 1)
        assert field in TORCHTITAN_CLI_FIELDS[section], flag


def test_wsd_maps_to_decay_ratio(tmp_path):
    p = make_plan(1e21, schedule="wsd", n_gpus=8)
    export_torchtitan(p, tmp_path)
    text = (tmp_path / "run.sh").read_text()
    assert "--lr_scheduler.decay_type linear" in text
    ratio = float(text.split("--lr_scheduler.decay_ratio ")[1].split()[0])
    # lr_scheduler.py LRSchedulersContainer.Config.build: decay_steps = round(total_steps * decay_ratio)
    assert round(p.training.train_iters * ratio) == p.training.wsd_decay_iters


def test_layout_sections_follow_the_plan():
    """Batch split and DP sharding per layout (module docstring); the real parser checks the names."""
    pp = make_plan(preset="llama-2-70b", n_gpus=512, tp=8, pp=4, micro_batch=1)
    lay, sec = pp.layout, sections(pp)
    assert sec["training"]["local_batch_size"] == lay.micro_batch * lay.grad_accum  # one pipeline pass per step
    assert sec["parallelism"]["pipeline_parallel_microbatch_size"] == lay.micro_batch
    assert sec["parallelism"]["pipeline_parallel_layers_per_stage"] * lay.pp * lay.vpp == pp.shape.n_layers
    assert sec["training"]["disable_cuda_graphs"] is True
    ddp = sections(make_plan(1e21, n_gpus=8, sharding="ddp"))["parallelism"]
    assert (ddp["data_parallel_shard_degree"], ddp["data_parallel_replicate_degree"]) == (1, 8)
    fsdp = sections(make_plan(1e21, n_gpus=8, sharding="fsdp"))["parallelism"]
    assert (fsdp["data_parallel_shard_degree"], fsdp["data_parallel_replicate_degree"]) == (8, 1)


def test_mup_plan_is_refused_with_what_would_be_lost(tmp_path):
    p = mup_plan()
    with pytest.raises(UserError) as e:
        export_torchtitan(p, tmp_path / "o")
    msg = str(e.value)
    # m_d = 4: hidden LR 6e-3/4, readout multiplier 2/4, attention 2/64 vs 1/8, hidden init 0.05/2
    for words in ("hidden-matrix LR 0.0015 vs embedding/readout LR 0.006", "ratio 1/m_d = 0.25",
                  "alpha_out/m_d = 0.5", "alpha_in = 1.5", "attn_mult/d_head = 0.03125",
                  "1/sqrt(d_head) = 0.125", "init std hidden 0.025", "readout 0, query 0",
                  "--use-mup", "--allow-approximate-mup", "gradient clipping"):
        assert words in msg, words
    assert not (tmp_path / "o").exists()


@pytest.mark.parametrize("kw, words", [(dict(shape=dict(tied=True)), "tied embeddings"),
                                       (dict(shape=dict(n_layers=4), n_gpus=2, pp=2), "pipeline parallelism")])
def test_mup_is_refused_where_torchtitan_cannot_hold_it_at_all(kw, words, tmp_path):
    with pytest.raises(UserError, match=words):
        export_torchtitan(mup_plan(**kw), tmp_path, allow_approximate_mup=True)


def test_mup_approximation_folds_the_multipliers(tmp_path, monkeypatch):
    p = mup_plan()
    export_torchtitan(p, tmp_path, allow_approximate_mup=True)
    doc = (tmp_path / f"{MODULE_NAME}.py").read_text()
    assert "APPROXIMATE μP" in doc and "gradient clipping" in doc and "APPROXIMATE μP" in (tmp_path / "run.sh").read_text()
    mod = _load(tmp_path, monkeypatch)
    groups = {g.pattern: g.optimizer_kwargs for g in getattr(mod, CONFIG_NAME)().optimizer.param_groups}
    assert list(groups) == list(PATTERNS.values())  # first match wins: the catch-all comes last
    c_q = 2.0 / 64 * math.sqrt(64)  # μP's attention scale over torchtitan's 1/sqrt(d_head)
    expected = {"embedding": (6e-3 * 1.5, 0.1 / 1.5, 1e-8 / 1.5), "readout": (6e-3 * 0.5, 0.1 / 0.5, 1e-8 / 0.5),
                "query": (1.5e-3 * c_q, 0.4 / c_q, 1e-8 / c_q), "norms": (6e-3, 0.0, 1e-8),
                "hidden": (1.5e-3, 0.4, 1e-8)}  # hidden: lr/m_d, MuAdamW's wd*m_d
    for name, (lr, wd, eps) in expected.items():
        kw = groups[PATTERNS[name]]
        assert (kw["lr"], kw["weight_decay"], kw["eps"]) == pytest.approx((lr, wd, eps), rel=1e-12), name
    assert (mod.HIDDEN_STD, mod.QUERY_STD, mod.OUTPUT_STD, mod.DEPTH_SCALED) == (0.025, 0.0, 0.0, False)
    assert mod.EMBEDDING_STD == pytest.approx(0.05 * 1.5)
    assert mup_groups(p)["query"]["multiplier"] == pytest.approx(c_q)


def test_fold_trains_like_mup_under_adamw():
    """V = c W with the folded settings follows c x (W with multiplier c) under torch's AdamW, the
    optimizer torchtitan's ParamGroupConfig builds ('AdamW')."""
    torch = pytest.importorskip("torch")
    torch.manual_seed(0)
    x, y = torch.randn(64, 8, dtype=torch.float64), torch.randn(64, 3, dtype=torch.float64)
    c, lr, wd, eps, std = 0.125, 1e-2, 0.3, 1e-3, 0.5  # eps large enough to matter
    w = (torch.randn(8, 3, dtype=torch.float64) * std).requires_grad_()
    v = (w.detach() * c).requires_grad_()  # init c * std
    fold = {"lr": lr * c, "weight_decay": wd / c, "eps": eps / c}
    opt_w = torch.optim.AdamW([w], lr=lr, weight_decay=wd, eps=eps)
    opt_v = torch.optim.AdamW([v], **fold)
    for _ in range(50):
        for p, opt, out in ((w, opt_w, lambda: x @ w * c), (v, opt_v, lambda: x @ v)):
            opt.zero_grad()
            ((out() - y) ** 2).mean().backward()
            opt.step()
    assert torch.allclose(v, w * c, rtol=1e-10, atol=1e-13)
