"""Layer inheritance (proxy_train.inherit, `scaleplan train --inherit-from RUN_DIR --inherit-layers K`):
the new proxy computes exactly what the source's first K layers compute, keeps its own μP base
shapes, resumes without re-inheriting, and bad input is refused before anything is written."""
import hashlib
import json

import pytest
import torch

from conftest import run_cli
from planner.errors import UserError
from proxy_train import inherit as inh
from proxy_train import train as train_mod
from proxy_train.config import TrainConfig
from proxy_train.data import TokenData
from proxy_train.model import width_mult
from proxy_train.trainer import Trainer
from proxy_data import tiny_data

SMALL = dict(d_model=32, head_dim=8, base_width=16, batch=4, seq_len=32, device="cpu", progress=False, eval_batches=2)


@pytest.fixture(scope="module")
def data_dir(tmp_path_factory):
    return tiny_data(tmp_path_factory, "bytes")


@pytest.fixture(scope="module")
def source(data_dir, tmp_path_factory):
    out = tmp_path_factory.mktemp("src") / "ref"
    cfg = TrainConfig(data=str(data_dir), n_layers=3, steps=8, **SMALL)
    rec = train_mod.train(cfg, out, keep_weights=True)
    assert rec["status"] == "ok" and (out / "model.pt").is_file() and not (out / "ckpt.pt").exists()
    return out


def _cfg(data_dir, source, k=2, **kw):
    return TrainConfig(data=str(data_dir), n_layers=k, steps=6, extra={"inherit": inh.source_record(source, k)},
                       **{**SMALL, **kw})


def _truncated_source_state(source, k):
    st = torch.load(source / "model.pt", weights_only=True)["model"]
    return {n: t for n, t in st.items() if not (n.startswith("blocks.") and int(n.split(".")[1]) >= k)}


def test_inherited_model_is_the_sources_first_k_layers(data_dir, source):
    cfg = _cfg(data_dir, source, k=2)
    tr = Trainer(cfg, TokenData(data_dir))
    before = {n: p for n, p in tr.model.named_parameters()}
    opt_params = [p for g in tr.optimizer.param_groups for p in g["params"]]
    n = inh.apply(tr.model, cfg.extra["inherit"])
    assert n == sum(p.numel() for p in tr.model.parameters())  # K = new depth: every tensor comes from the source
    ref = _truncated_source_state(source, 2)
    for name, p in tr.model.named_parameters():
        assert p is before[name] and torch.equal(p, ref[name]), name
    assert all(any(p is q for q in opt_params) for p in tr.model.parameters())  # the optimizer holds these tensors
    assert width_mult(tr.model) == pytest.approx(32 / 16)  # μP base shapes of the new model kept
    assert tr.model.blocks[0].attn.q_proj.weight.infshape.width_mult() == pytest.approx(2.0)
    # the same function as the source model with its later blocks removed (load_state_dict path)
    other = Trainer(cfg.replace(extra={}), TokenData(data_dir))
    other.model.load_state_dict(ref)
    x = torch.randint(0, 200, (2, 32))
    torch.testing.assert_close(tr.model(x), other.model(x))


def test_inherited_run_records_its_source_and_starts_from_it(data_dir, source, tmp_path):
    cfg = _cfg(data_dir, source, k=2)
    rec = train_mod.train(cfg, tmp_path / "inh")
    src = json.loads((source / "run.json").read_text())
    i = rec["inherit"]
    assert (i["run_id"], i["config_hash"], i["layers"], i["source_layers"]) == (src["run_id"], src["config_hash"], 2, 3)
    assert i["sha256"] == hashlib.sha256((source / "model.pt").read_bytes()).hexdigest()
    assert rec["config"]["extra"]["inherit"] == i and rec["n_layers"] == 2
    ev = Trainer(cfg.replace(extra={}), TokenData(data_dir))
    ev.model.load_state_dict(_truncated_source_state(source, 2))
    assert rec["curve"]["val"][0][2] == pytest.approx(ev.evaluate(), rel=1e-6)
    scratch = train_mod.train(cfg.replace(extra={}), tmp_path / "scratch")
    assert scratch["config_hash"] != rec["config_hash"]
    assert scratch["curve"]["val"][0][2] != pytest.approx(rec["curve"]["val"][0][2])
    assert len(rec["attention_diagnostic"]["layers"]) == 2


def test_a_resumed_inherited_run_keeps_its_own_checkpoint(data_dir, source, tmp_path, monkeypatch):
    cfg = _cfg(data_dir, source, k=1, eval_every=2)
    whole = train_mod.train(cfg, tmp_path / "whole")

    def stop_at_4(step, tokens, val):
        if step == 4:
            raise RuntimeError("stop")

    with pytest.raises(RuntimeError):
        train_mod.train(cfg, tmp_path / "part", on_eval=stop_at_4)
    assert (tmp_path / "part" / "ckpt.pt").exists()

    def no_reinherit(*a, **k):
        raise AssertionError("re-inherited over the run's own checkpoint")

    monkeypatch.setattr(train_mod, "apply_inheritance", no_reinherit)
    resumed = train_mod.train(cfg, tmp_path / "part")
    assert resumed["status"] == "ok" and resumed["final_val_loss"] == whole["final_val_loss"]


def test_bad_sources_are_refused(data_dir, source, tmp_path):
    for k in (0, 4):
        with pytest.raises(UserError, match="out of range"):
            inh.source_record(source, k)
    rec = inh.source_record(source, 2)
    shape = TrainConfig(data=str(data_dir), n_layers=2, **{**SMALL, "d_model": 64}).model_shape(TokenData(data_dir).vocab_size)
    with pytest.raises(UserError, match="d_model differs"):
        inh.check_compatible(rec, shape.to_dict(), "mup", 2)
    shape = TrainConfig(data=str(data_dir), n_layers=2, **{**SMALL, "head_dim": 16}).model_shape(TokenData(data_dir).vocab_size)
    with pytest.raises(UserError, match="n_heads differs"):
        inh.check_compatible(rec, shape.to_dict(), "mup", 2)
    with pytest.raises(UserError, match="parameterization differs"):
        inh.check_compatible(rec, {**rec["source_shape"]}, "sp", 2)
    empty = tmp_path / "empty"
    empty.mkdir()
    (empty / "run.json").write_text((source / "run.json").read_text())
    with pytest.raises(UserError, match="no final weights"):
        inh.source_record(empty, 1)
    (empty / "run.json").write_text(json.dumps({"status": "stopped"}))
    with pytest.raises(UserError, match="not 'ok'"):
        inh.source_record(empty, 1)
    cfg = _cfg(data_dir, source, k=1)  # the source file changes after the run was configured
    cfg.extra["inherit"]["sha256"] = "0" * 64
    with pytest.raises(UserError, match="changed"):
        train_mod.train(cfg, tmp_path / "never")
    assert not (tmp_path / "never").exists()


def _refused(capsys, *argv) -> str:
    """`scaleplan ARGV` in process (the same main() as the entry point): exit 2 and one line."""
    from scaleplan.cli import main

    assert main([str(a) for a in argv]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith("error:"), err
    return err[0]


def test_cli_inherits_and_refuses_bad_input(data_dir, source, tmp_path, capsys):
    base = ["train", "--data", data_dir, "--d-model", "32", "--head-dim", "8", "--base-width", "16", "--steps", "3",
            "--batch", "4", "--seq-len", "32", "--device", "cpu"]
    out = tmp_path / "r"
    assert "together" in _refused(capsys, *base, "--inherit-from", source, "--out", out)
    assert "--n-layers 3 differs" in _refused(
        capsys, *base, "--inherit-from", source, "--inherit-layers", "1", "--n-layers", "3", "--out", out)
    assert "n_heads differs" in _refused(
        capsys, *[a if a != "8" else "16" for a in base], "--inherit-from", source, "--inherit-layers", "1", "--out", out)
    assert "no run.json" in _refused(capsys, *base, "--inherit-from", tmp_path, "--inherit-layers", "1", "--out", out)
    assert "out of range" in _refused(capsys, *base, "--inherit-from", source, "--inherit-layers", "4", "--out", out)
    assert not out.exists()
    r = run_cli(*base, "--inherit-from", source, "--inherit-layers", "1", "--out", out)
    assert r.returncode == 0, r.stderr
    assert "inherited 1 of 3 layers" in r.stdout and "attention (row max / effective rank): L0 " in r.stdout
    rec = json.loads((out / "run.json").read_text())
    assert rec["n_layers"] == 1 and rec["inherit"]["layers"] == 1 and (out / "model.pt").is_file()
    assert [r["layer"] for r in rec["attention_diagnostic"]["layers"]] == [0]


def test_attention_command_reproduces_the_recorded_diagnostic(source, tmp_path, capsys):
    """`scaleplan attention --run` rebuilds the model from run.json + model.pt: the same numbers as
    the block train wrote at the end of the run; a folder without weights is one line, exit 2."""
    r = run_cli("attention", "--run", source, "--json")
    assert r.returncode == 0, r.stderr
    got = json.loads(r.stdout)["layers"]
    want = json.loads((source / "run.json").read_text())["attention_diagnostic"]["layers"]
    assert len(got) == len(want) == 3
    for g, w in zip(got, want):
        for m in ("row_max", "first_token_mass", "effective_rank", "approx_rank"):
            assert g[m] == pytest.approx(w[m], rel=1e-5, abs=1e-9), m
    assert "no run.json" in _refused(capsys, "attention", "--run", tmp_path)
