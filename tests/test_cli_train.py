import json

import pytest
import yaml

from conftest import run_cli
from proxy_data import tiny_data


@pytest.fixture(scope="session")
def data_dir(tmp_path_factory):
    return tiny_data(tmp_path_factory)


def _one_line_error(r):
    assert r.returncode == 2, r.stderr
    lines = r.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error:") and "Traceback" not in r.stderr
    return lines[0]


def test_train_cli_json_and_help(data_dir, tmp_path):
    r = run_cli("train", "--data", data_dir, "--d-model", "32", "--n-layers", "1", "--head-dim", "16",
                "--base-width", "32", "--steps", "10", "--batch", "4", "--seq-len", "32", "--out", tmp_path / "r", "--json")
    assert r.returncode == 0, r.stderr
    out = json.loads(r.stdout)
    assert out["status"] == "ok" and out["tokens"] == 10 * 4 * 32
    assert "scaleplan train" in out["meta"]["command"]
    for cmd in (("train",), ("data", "prepare"), ("coord-check",)):
        h = run_cli(*cmd, "--help")
        assert h.returncode == 0 and "usage" in h.stdout


def test_a_finished_run_or_a_data_folder_is_never_overwritten(data_dir, tmp_path):
    base = ["train", "--data", data_dir, "--d-model", "32", "--n-layers", "1", "--head-dim", "16", "--base-width",
            "32", "--steps", "4", "--batch", "4", "--seq-len", "32", "--out", tmp_path / "r"]
    assert run_cli(*base).returncode == 0
    first = (tmp_path / "r" / "run.json").read_bytes()
    assert run_cli(*base).returncode == 0  # the same run again: the finished record, untouched
    assert (tmp_path / "r" / "run.json").read_bytes() == first
    assert "another configuration" in _one_line_error(run_cli(*base, "--lr", "0.003"))
    assert (tmp_path / "r" / "run.json").read_bytes() == first
    data_files = sorted(p.name for p in data_dir.iterdir())
    assert "data folder" in _one_line_error(run_cli(*base[:-1], data_dir))
    assert sorted(p.name for p in data_dir.iterdir()) == data_files


def test_bad_input_exits_2_with_one_line(data_dir, tmp_path):
    base = ["train", "--d-model", "64", "--n-layers", "1", "--steps", "5", "--out", tmp_path / "r"]
    assert "not found" in _one_line_error(run_cli(*base, "--data", tmp_path / "none"))
    assert "divisible" in _one_line_error(run_cli(*base, "--data", data_dir, "--heads", "3"))
    _one_line_error(run_cli(*base, "--data", data_dir, "--tokens", "-100"))
    hp = tmp_path / "hp.yaml"
    hp.write_text(yaml.safe_dump({"parameterization": "mup", "base_width": 32, "lr": 0.01, "vocab_size": 32000}))
    assert "vocab" in _one_line_error(run_cli(*base, "--data", data_dir, "--hparams", hp))
    assert not (tmp_path / "r" / "run.json").exists()
    r = run_cli("data", "prepare", "--out", tmp_path / "d", "--source", tmp_path / "missing.txt")
    assert "corpus not found" in _one_line_error(r)
    assert not (tmp_path / "d").exists()


def test_data_prepare_cli(tmp_path):
    src = tmp_path / "c"
    src.mkdir()
    for i in range(5):
        (src / f"f{i}.txt").write_text(f"hello world {i} " * 200)
    r = run_cli("data", "prepare", "--out", tmp_path / "d", "--source", src, "--tokenizer", "bytes", "--val-frac", "0.3",
                "--json")
    assert r.returncode == 0, r.stderr
    meta = json.loads(r.stdout)
    assert meta["vocab_size"] == 320 and meta["source"]["documents"] == 5
    assert sorted(p.name for p in (tmp_path / "d").iterdir()) == ["meta.json", "tokenizer.json", "train.bin", "val.bin"]
