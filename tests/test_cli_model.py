"""`scaleplan count` and `scaleplan shape`: JSON matches the library; bad input is one line, exit 2."""
from __future__ import annotations

import json

import pytest
from scaleplan.cli import main
from scaleplan.commands.shape import param_count
from planner.shape import ModelShape, preset_shape
from planner.shape_search import search_shapes


def run_main(capsys, *argv):
    """In-process CLI call (fast); returns (exit code, stdout, stderr)."""
    try:
        rc = main(list(argv))
    except SystemExit as e:  # argparse errors
        rc = e.code
    out, err = capsys.readouterr()
    return rc, out, err


def test_count_preset_json_matches_library(capsys):
    rc, out, _ = run_main(capsys, "count", "--preset", "llm-jp-3-1.8b", "--json")
    assert rc == 0
    d = json.loads(out)
    assert d["total_params"] == 1_867_614_208  # llm-jp-3 model card
    assert d["embedding_params"] == 407_896_064
    assert d["non_embedding_params"] == 1_459_718_144
    assert d["padded_vocab"] == 99_584
    assert d["flops_per_token_megatron"] == pytest.approx(1.11894e10, rel=1e-5)  # notes §1d
    assert d["flops_per_token_palm"] == pytest.approx(1.2398e10, rel=1e-4)  # notes §4
    s = preset_shape("llm-jp-3-1.8b")
    assert d == json.loads(json.dumps({**s.to_dict(), **s.counts()}))
    for key in ("n_layers", "d_model", "d_ffn", "n_heads", "flops_per_token_6n"):
        assert key in d


def test_count_explicit_flags_equal_preset(capsys):
    rc, out, _ = run_main(capsys, "count", "--layers", "22", "--d-model", "2048", "--d-ffn", "5632", "--heads", "32",
                          "--kv-heads", "4", "--vocab", "32000", "--json")
    assert rc == 0
    assert json.loads(out)["total_params"] == 1_100_048_384  # TinyLlama-1.1B safetensors total


def test_count_tied_and_tp_padding(capsys):
    rc, out, _ = run_main(capsys, "count", "--preset", "llm-jp-3-1.8b", "--tp", "4", "--json")
    assert rc == 0 and json.loads(out)["padded_vocab"] == 99_840  # LLM-jp 172B at TP 4 (notes §1c)
    rc, out, _ = run_main(capsys, "count", "--preset", "llama-2-7b", "--tied", "--json")
    assert json.loads(out)["total_params"] == 6_738_415_616 - 32000 * 4096


def test_count_human_table(capsys):
    rc, out, _ = run_main(capsys, "count", "--preset", "llama-2-7b")
    assert rc == 0
    assert "6,738,415,616" in out
    assert "Megatron" in out and "PaLM" in out and "6N" in out and "total params" in out


def test_count_hf_config_round_trip(capsys, tmp_path):
    s = preset_shape("llama-3.2-1b")
    (tmp_path / "config.json").write_text(json.dumps(s.to_hf_config()))
    for path in (tmp_path / "config.json", tmp_path):  # the file or its folder
        rc, out, _ = run_main(capsys, "count", "--hf-config", str(path), "--json")
        assert rc == 0
        d = json.loads(out)
        assert d["total_params"] == 1_235_814_400  # HF meta-llama/Llama-3.2-1B
        assert d["non_embedding_params"] == s.non_embedding_params
        assert ModelShape.from_hf_config(tmp_path / "config.json").counts() == {
            k: d[k] for k in s.counts()}


def test_shape_json_matches_library(capsys):
    rc, out, _ = run_main(capsys, "shape", "--params", "1.8B", "--vocab", "99487", "--top", "4", "--json")
    assert rc == 0
    got = json.loads(out)
    lib = search_shapes(1.8e9, vocab_size=99487, top=4)
    assert len(got) == len(lib) == 4
    for g, c in zip(got, lib):
        assert (g["n_layers"], g["d_model"], g["d_ffn"], g["n_heads"]) == (
            c.shape.n_layers, c.shape.d_model, c.shape.d_ffn, c.shape.n_heads)
        assert g["total_params"] == c.shape.total_params == g["params"]
        assert g["rules"] == c.rules and g["why"] == c.why
    assert abs(got[0]["rel_error"]) < 0.03


def test_shape_options(capsys):
    rc, out, _ = run_main(capsys, "shape", "--params", "70B", "--tp", "8", "--gqa-ratio", "8", "--vocab", "128256",
                          "--head-dim", "64,128", "--json")
    assert rc == 0
    for c in json.loads(out):
        assert c["n_heads"] % 8 == 0 and c["n_heads"] == 8 * c["n_kv_heads"] and c["tp"] == 8
    rc, out, _ = run_main(capsys, "shape", "--params", "1e6", "--non-embedding", "--vocab", "4096",
                          "--head-dim", "16", "--ffn-rule", "swiglu8/3", "--aspect", "16,256", "--top", "3")
    assert rc == 0 and "non-embedding" in out and out.count("#") >= 3


@pytest.mark.parametrize("text,value", [("1.8e9", 1.8e9), ("1.8B", 1.8e9), ("350M", 3.5e8), ("100k", 1e5),
                                        ("1T", 1e12), ("7b", 7e9), ("2000000", 2e6)])
def test_param_count_forms(text, value):
    assert param_count(text) == pytest.approx(value)


@pytest.mark.parametrize("argv,fragment", [
    (["count", "--hf-config", "/nonexistent/config.json"], "not found"),
    (["count", "--preset", "gpt-9"], "unknown model preset"),
    (["count", "--layers", "2", "--d-model", "100", "--d-ffn", "64", "--heads", "3", "--vocab", "10"], "divisible"),
    (["count", "--layers", "-2", "--d-model", "128", "--d-ffn", "64", "--heads", "4", "--vocab", "10"], "positive"),
    (["count", "--layers", "2", "--d-model", "128", "--d-ffn", "64", "--heads", "4", "--kv-heads", "3",
      "--vocab", "10"], "do not divide"),
    (["count", "--layers", "2"], "missing"),
    (["shape", "--params", "1.8X"], "parameter count"),
    (["shape", "--params", "1e6", "--vocab", "32000"], "--non-embedding"),
    (["shape", "--params", "1e9", "--aspect", "9,3"], "MIN <= MAX"),
])
def test_bad_input_one_line_exit_2(capsys, argv, fragment):
    rc, out, err = run_main(capsys, *argv)
    assert rc == 2
    assert out == ""
    lines = err.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error:") and fragment in lines[0]


def test_malformed_json_subprocess(tmp_path, cli):
    """The real entry point: malformed config.json -> exit 2, one line, no traceback."""
    bad = tmp_path / "config.json"
    bad.write_text("{\"hidden_size\": 64,")
    r = cli("count", "--hf-config", str(bad), timeout=60)
    assert r.returncode == 2 and r.stdout == ""
    assert len(r.stderr.strip().splitlines()) == 1 and "Traceback" not in r.stderr
    assert "not valid JSON" in r.stderr
    ok = cli("shape", "--params", "350M", "--json", timeout=60)
    assert ok.returncode == 0 and json.loads(ok.stdout)


def test_help(cli):
    for cmd in ("count", "shape"):
        r = cli(cmd, "--help", timeout=60)
        assert r.returncode == 0 and "--json" in r.stdout
