"""The scaling-law ladder at toy scale: runs table, fit on it, held-out check, resume after kill, bad input."""
from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pandas as pd
import pytest
import yaml

from conftest import ROOT, run_cli, write_tiny_hparams

CONTRACT_COLUMNS = ["run_id", "total_params", "non_embedding_params", "tokens", "flops", "final_val_loss",
                    "final_train_loss", "schedule", "status", "d_model", "n_layers"]
# toy ladder: 3 widths x 3 budgets + 1 held-out larger proxy, 8 x 32 tokens per step, head size 8
TOY = ["--sizes", "16:1,24:1,32:1", "--tokens-per-param", "2,3,4", "--batch", "8", "--seq-len", "32",
       "--holdout-extra", "--holdout-top", "0", "--bootstrap", "30", "--workers", "2"]


def _hparams(path: Path, **over) -> Path:
    return write_tiny_hparams(path, **over)


@pytest.fixture(scope="module")
def toy(tmp_path_factory):
    root = tmp_path_factory.mktemp("ladder")
    data = root / "data"
    r = run_cli("data", "prepare", "--out", data, "--tokenizer", "bytes", "--max-mb", "0.3")
    assert r.returncode == 0, r.stderr
    return {"root": root, "data": data, "hparams": _hparams(root / "hparams.yaml")}


@pytest.fixture(scope="module")
def ladder_run(toy):
    study = toy["root"] / "study"
    r = run_cli("ladder", "--study", study, "--data", toy["data"], "--hparams", toy["hparams"], *TOY, "--json")
    assert r.returncode == 0, r.stderr[-2000:]
    return study, json.loads(r.stdout)


def test_trainer_counts_match_the_trainer():
    from planner.shape import swiglu_ffn_dim
    from proxy_train.config import TrainConfig
    from proxy_train.ladder import trainer_size
    from proxy_train.model import build_model
    from proxy_train.trainer import model_config_for

    for d, L in [(16, 1), (48, 2), (96, 3), (112, 2)]:
        s = trainer_size(d, L, vocab=320, head_dim=16, seq_len=64)
        cfg = TrainConfig(data="x", d_model=d, n_layers=L, head_dim=16, seq_len=64, parameterization="sp")
        ref = cfg.model_shape(320)
        assert sum(p.numel() for p in build_model(model_config_for(cfg, 320)).parameters()) == s.total_params
        assert s.d_ffn == swiglu_ffn_dim(d)
        assert (s.total_params, s.non_embedding_params) == (ref.total_params, ref.non_embedding_params)


def test_auto_sizes_span_and_budgets():
    from proxy_train.ladder import LadderSpec, parse_sizes, plan_points

    sizes = parse_sizes("auto", vocab=320, head_dim=16, seq_len=64, n_sizes=5, n_range=(3e3, 1e5))
    ns = [s.non_embedding_params for s in sizes]
    assert ns == sorted(ns) and len(sizes) == 5
    assert ns[-1] / ns[0] >= 10 ** 1.4  # about 1.5 decades as asked (shapes are discrete)
    spec = LadderSpec(data="x", hparams="y", sizes=sizes, flops=[1e11, 1e12], batch=8, seq_len=64,
                      data_meta={"vocab_size": 320, "train_tokens": 10 ** 7})
    points, skipped = plan_points(spec)
    for p in points:  # D = C / (6 N_total), rounded to whole 512-token steps
        C = min((c for c in spec.flops), key=lambda c: abs(c / (6 * p.size.total_params) - p.tokens))
        assert abs(p.tokens - C / (6 * p.size.total_params)) <= 256
    assert all("step" in k["reason"] or "epochs" in k["reason"] for k in skipped)


def test_auto_sizes_at_fixed_depth_vary_width_only():
    from proxy_train.ladder import parse_sizes

    sizes = parse_sizes("auto", vocab=320, head_dim=16, seq_len=64, n_sizes=5, n_range=(6e3, 2.2e5), depth=2)
    assert {s.n_layers for s in sizes} == {2} and len({s.d_model for s in sizes}) == 5
    assert all(s.d_model % 16 == 0 for s in sizes)
    ns = [s.non_embedding_params for s in sizes]
    assert ns[-1] / ns[0] >= 10 ** 1.5
    # counts: 12 d^2 per layer for attention + SwiGLU at d_ffn = 8/3 d, plus the norms (Kaplan-style check)
    for s in sizes:
        per_layer = 4 * s.d_model ** 2 + 3 * s.d_model * s.d_ffn + 2 * s.d_model
        assert s.non_embedding_params == 2 * per_layer + s.d_model


def test_ladder_writes_runs_table(ladder_run):
    study, summary = ladder_run
    df = pd.read_csv(study / "runs.csv")
    assert set(CONTRACT_COLUMNS) <= set(df.columns)
    assert len(df) == 10 and (df["status"] == "ok").all() and df["run_id"].is_unique
    assert (df["role"] == "holdout_extra").sum() == 1
    for _, row in df.iterrows():  # counts and tokens are the trainer's own, from run.json
        rec = json.loads((study / row["run_dir"] / "run.json").read_text())
        assert rec["total_params"] == row["total_params"]
        assert rec["non_embedding_params"] == row["non_embedding_params"]
        assert rec["tokens"] == row["tokens"] and rec["final_val_loss"] == pytest.approx(row["final_val_loss"])
    lad = df[df["role"] == "ladder"]
    # WSD accounting: the shared stable phase is charged once, so less than separate runs, but more
    # than the largest budget of each size alone
    for _, g in lad.groupby("size"):
        assert g["flops"].max() < g["compute_used"].sum() < g["flops"].sum()
    # the largest, longest run beats the smallest, shortest one (8x the compute)
    first, last = lad.sort_values("flops").iloc[[0, -1]]["final_val_loss"]
    assert last < first
    st = yaml.safe_load((study / "study.yaml").read_text())["ladder"]
    assert st["batch"]["tokens_per_step"] == 256 and st["schedule"] == "wsd"
    assert summary["ok"] == 10 and summary["compute_used"] < summary["compute_separate_runs"]


def test_fit_reads_the_runs_table(ladder_run):
    study, _ = ladder_run
    for n_col in ("non_embedding_params", "total_params"):
        r = run_cli("fit", study / "runs.csv", "--n-col", n_col, "--d-col", "tokens", "--loss-col",
                    "final_val_loss", "--grid", "small", "--json")
        assert r.returncode == 0, r.stderr[-1000:]
        fit = json.loads(r.stdout)
        assert fit["n_rows"] == 10 and fit["E"] > 0


def test_holdout_check_keys(ladder_run):
    study, summary = ladder_run
    h = json.loads((study / "holdout.json").read_text())
    for key in ("n_fit", "n_heldout", "max_abs_rel_error", "mean_abs_rel_error", "frac_inside_interval",
                "goal", "rows", "max_fitted_flops"):
        assert key in h
    assert h["n_fit"] == 9 and h["n_heldout"] == 1
    row = h["rows"][0]
    assert row["role"] == "holdout_extra" and row["compute_vs_max_fitted"] >= 4.0
    assert row["lo"] <= row["predicted"] <= row["hi"]
    assert row["rel_error"] == pytest.approx((row["predicted"] - row["measured"]) / row["measured"])
    assert (study / "holdout.fig.json").is_file() and (study / "holdout.html").is_file()


def test_resume_after_kill(toy, ladder_run):
    """Kill a ladder mid-way (whole process group), rerun: same table as the uninterrupted run."""
    ref_study, _ = ladder_run
    study = toy["root"] / "killed"
    cmd = [sys.executable, "-m", "scaleplan.cli", "ladder", "--study", str(study), "--data", str(toy["data"]),
           "--hparams", str(toy["hparams"]), *TOY, "--no-check"]
    proc = subprocess.Popen(cmd, cwd=ROOT, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                            start_new_session=True)
    deadline = time.time() + 120
    try:
        while time.time() < deadline:  # wait for the first finished point, then kill everything
            if list(study.glob("runs/*/*/run.json")) and (study / "runs.csv").is_file():
                break
            time.sleep(0.2)
        assert proc.poll() is None, "ladder finished before it could be killed; make the toy ladder longer"
    finally:
        os.killpg(proc.pid, signal.SIGKILL)
        proc.wait()
    partial = pd.read_csv(study / "runs.csv")
    assert len(partial) < 10 and partial["run_id"].is_unique
    r = run_cli("ladder", "--study", study, "--data", toy["data"], "--hparams", toy["hparams"], *TOY,
                "--no-check", "--json")
    assert r.returncode == 0, r.stderr[-2000:]
    assert json.loads(r.stdout)["finished_before"] >= 1
    got = pd.read_csv(study / "runs.csv")
    ref = pd.read_csv(ref_study / "runs.csv")
    assert got["run_id"].is_unique and (got["status"] == "ok").all()
    assert list(got["run_id"]) == list(ref["run_id"])
    for col in ("total_params", "tokens", "flops", "compute_used"):
        assert list(got[col]) == list(ref[col])
    # resumed from checkpoints with the data RNG state: the same computation, the same losses
    assert got["final_val_loss"].to_numpy() == pytest.approx(ref["final_val_loss"].to_numpy(), rel=1e-4)


def test_ctrl_c_stops_the_ladder_within_seconds_and_resumes(toy):
    """SIGINT to the ladder process (cosine: 4 single-run tasks, one worker): it exits 130 within
    seconds, the running point stops at a step boundary with status stopped, the 3 queued tasks
    never start; the rerun resumes that point and finishes the ladder (issue 18)."""
    study = toy["root"] / "sigint"
    args = ["ladder", "--study", str(study), "--data", str(toy["data"]), "--hparams", str(toy["hparams"]),
            "--sizes", "16:1,32:1", "--tokens-per-param", "10,20", "--schedule", "cosine", "--batch", "8",
            "--seq-len", "32", "--workers", "1", "--no-check"]
    proc = subprocess.Popen([sys.executable, "-m", "scaleplan.cli", *args], cwd=ROOT, stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True, start_new_session=True)
    try:
        deadline = time.time() + 120
        while not list(study.glob("runs/*/*/ckpt.pt")):  # the first task has checkpointed once
            assert proc.poll() is None, "ladder finished before the interrupt; make it longer"
            assert time.time() < deadline, "no checkpoint in 120 s"
            time.sleep(0.05)
        t0 = time.time()
        proc.send_signal(signal.SIGINT)  # the parent only: it must pass the stop on to its worker
        _, err = proc.communicate(timeout=60)
        elapsed = time.time() - t0
    finally:
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait()
    assert proc.returncode == 130 and "Traceback" not in err, err[-2000:]
    assert elapsed < 20, f"ladder took {elapsed:.1f} s to stop"
    assert "1 running task(s) stopped" in err and "3 queued task(s) not started" in err, err[-2000:]
    assert "kept: 0 of 4 points" in err, err[-2000:]
    started = list(study.glob("runs/*/*/run.json"))
    assert len(started) == 1  # only the running point has a record, and it is resumable
    assert json.loads(started[0].read_text())["status"] == "stopped"
    r = run_cli(*args, "--json")
    assert r.returncode == 0, r.stderr[-2000:]
    out = json.loads(r.stdout)
    assert out["ok"] == 4 and out["finished_before"] == 0
    assert json.loads(started[0].read_text())["status"] == "ok"


def _pool_workers(parent: int) -> list[int]:
    """The spawned pool workers of process ``parent`` (not multiprocessing's resource tracker)."""
    out = []
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            ppid = int(stat.read_text().rsplit(")", 1)[-1].split()[1])
            cmd = (stat.parent / "cmdline").read_bytes()
        except (OSError, ValueError, IndexError):
            continue
        if ppid == parent and b"spawn_main" in cmd:
            out.append(int(stat.parent.name))
    return out


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="reads /proc (Linux)")
def test_ladder_workers_die_with_a_killed_parent(toy, tmp_path):
    """SIGKILL only the ladder process: its pool workers (prctl PR_SET_PDEATHSIG) are gone within seconds."""
    from test_interrupts import kill_group, kill_parent_then_expect_gone

    study = tmp_path / "orphans"
    proc = subprocess.Popen([sys.executable, "-m", "scaleplan.cli", "ladder", "--study", str(study), "--data",
                             str(toy["data"]), "--hparams", str(toy["hparams"]), *TOY, "--no-check"], cwd=ROOT,
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True)
    try:
        deadline = time.time() + 120
        while not list(study.glob("runs/**/ckpt.pt")):
            assert proc.poll() is None and time.time() < deadline
            time.sleep(0.05)
        workers = _pool_workers(proc.pid)
        assert len(workers) == 2
        kill_parent_then_expect_gone(proc, workers)
    finally:
        kill_group(proc)


def test_diverged_runs_are_rows_not_fitted(toy, tmp_path):
    """LR 8 (under the trainer's plausibility limit, proxy_train/limits.py) blows every run up: the rows
    say so, the compute is what was trained, fit refuses."""
    hp = _hparams(tmp_path / "hp.yaml", lr=8.0)
    study = tmp_path / "study"
    r = run_cli("ladder", "--study", study, "--data", toy["data"], "--hparams", hp, "--sizes", "16:1,24:1",
                "--tokens-per-param", "2,3", "--batch", "8", "--seq-len", "32", "--json")
    assert r.returncode == 0, r.stderr[-1000:]
    out = json.loads(r.stdout)
    assert out["diverged"] == 4 and out["ok"] == 0 and "skipped" in out["holdout"]
    df = pd.read_csv(study / "runs.csv")
    assert (df["status"] == "diverged").all() and len(df) == 4
    assert (df["compute_used"] >= 0).all() and df["compute_used"].sum() <= df["flops"].sum()
    f = run_cli("fit", study / "runs.csv", "--n-col", "non_embedding_params", "--d-col", "tokens",
                "--loss-col", "final_val_loss")
    assert f.returncode == 2 and len(f.stderr.strip().splitlines()) == 1


@pytest.mark.parametrize("case", ["missing_hparams", "vocab", "sp", "base_width", "sizes", "flops", "depth"])
def test_bad_input_exits_2(toy, tmp_path, case):
    hp = toy["hparams"]
    extra = ["--sizes", "16:1,32:1"]
    if case == "missing_hparams":
        hp = tmp_path / "nope.yaml"
    elif case == "vocab":
        hp = _hparams(tmp_path / "hp.yaml", vocab_size=4096)
    elif case == "sp":
        hp = _hparams(tmp_path / "hp.yaml", parameterization="sp")
    elif case == "base_width":
        hp = _hparams(tmp_path / "hp.yaml", base_width=36)
    elif case == "sizes":
        extra = ["--sizes", "64x2,128:3"]
    elif case == "flops":
        extra += ["--flops", "1e3,1e4"]
    elif case == "depth":
        extra = ["--sizes", "auto", "--depth", "deep"]
    study = tmp_path / "study"
    r = run_cli("ladder", "--study", study, "--data", toy["data"], "--hparams", hp, *extra)
    assert r.returncode == 2, (r.stdout, r.stderr)
    lines = r.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: "), r.stderr
    assert "Traceback" not in r.stderr and not (study / "runs.csv").exists()
