"""`scaleplan loss`: a law's predicted loss for a model and token count, checked against the papers."""
from __future__ import annotations

import json

import pytest

from planner.laws import load_law
from planner.loss_prediction import predict_loss
from planner.shape import preset_shape
from scaleplan.cli import main


def _json(capsys, *argv) -> dict:
    assert main([*argv, "--json"]) == 0
    return json.loads(capsys.readouterr().out)


def test_chinchilla_point_equals_hoffmann_eq_10(capsys):
    """Hoffmann et al. 2022, eq. (10): L = 1.69 + 406.4/N^0.34 + 410.7/D^0.28 (nats); Chinchilla is
    70B parameters on 1.4T tokens (§4.2)."""
    N, D = 70e9, 1.4e12
    by_hand = 1.69 + 406.4 / N ** 0.34 + 410.7 / D ** 0.28
    out = _json(capsys, "loss", "--params", "70B", "--tokens", "1.4T", "--law", "hoffmann2022")
    assert out["loss"] == pytest.approx(by_hand, rel=1e-12)
    assert out["compute"] == pytest.approx(6 * N * D)
    assert out["params_convention"] == "given" and out["interval"] is None


def test_preset_uses_the_exact_total_count(capsys):
    """Llama 2 7B has 6,738,415,616 parameters (the HF checkpoint's count); the Chinchilla-form
    presets count all parameters, so that is the N used."""
    out = _json(capsys, "loss", "--preset", "llama-2-7b", "--tokens", "2e12")
    assert out["params"] == 6_738_415_616 and out["params_convention"] == "total"
    assert out["tokens_per_param"] == pytest.approx(2e12 / 6_738_415_616)


def test_penalty_is_zero_at_the_optimum_and_positive_elsewhere():
    law = load_law("besiroglu2024")
    best = law.optimal(1e23, interval=None)
    at_opt = predict_loss(law, best.D, params=best.N)
    assert at_opt.penalty == pytest.approx(0.0, abs=1e-9)
    for scale in (0.25, 0.5, 2.0, 4.0):
        off = predict_loss(law, best.D / scale, params=best.N * scale)  # same compute, other split
        assert off.compute == pytest.approx(at_opt.compute)
        assert off.penalty > 0


def test_fitted_law_counts_in_its_own_convention_and_has_an_interval(tmp_path):
    fit = {"E": 1.8, "A": 400.0, "B": 2000.0, "alpha": 0.34, "beta": 0.36, "meta": {"n_col": "non_embedding_params"},
           "bootstrap": {"n": 3, "samples": [[1.79, 390.0, 1990.0, 0.339, 0.359], [1.8, 400.0, 2000.0, 0.34, 0.36],
                                             [1.81, 410.0, 2010.0, 0.341, 0.361]]}}
    path = tmp_path / "fit.json"
    path.write_text(json.dumps(fit))
    shape = preset_shape("llama-2-7b")
    r = predict_loss(load_law(str(path)), 1e12, shape=shape)
    assert r.params == shape.non_embedding_params and r.params_convention == "non-embedding"
    assert r.interval == "parameter" and r.lo <= r.loss <= r.hi


@pytest.mark.parametrize("argv, keyword", [
    (["loss", "--tokens", "1e9"], "give the model"),
    (["loss", "--tokens", "1e9", "--params", "1B", "--preset", "llama-2-7b"], "not both"),
    (["loss", "--tokens", "1e9", "--preset", "no-such-model"], "unknown model preset"),
    (["loss", "--tokens", "1e9", "--params", "1B", "--law", "nope"], "unknown law"),
    (["loss", "--tokens", "-5", "--params", "1B"], "tokens"),
])
def test_bad_input_is_one_line_and_exit_2(capsys, argv, keyword):
    try:
        rc = main(argv)
    except SystemExit as e:  # argparse type errors
        rc = e.code
    err = capsys.readouterr().err.strip()
    assert rc == 2 and len(err.splitlines()) == 1 and keyword in err, err
