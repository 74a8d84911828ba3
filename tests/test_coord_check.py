import json

import torch

from proxy_train.coord_check import SLOPE_TOL, coord_check

torch.set_num_threads(1)


def test_mup_passes_and_sp_fails(tmp_path):
    mu = coord_check("mup", (32, 64, 128, 256), steps=4, out=tmp_path / "mup")
    sp = coord_check("sp", (32, 64, 128, 256), steps=4, out=tmp_path / "sp")
    assert mu["passed"], mu["worst"]
    assert not sp["passed"]
    # SP's hidden activations grow with width after updates (TP V Fig. 5: roughly width^1 for Adam)
    assert sp["worst"]["slope"] > 3 * SLOPE_TOL and sp["n_failing"] > 10
    assert abs(mu["worst"]["slope"]) < SLOPE_TOL
    saved = json.loads((tmp_path / "mup" / "coord_check.json").read_text())
    assert saved["passed"] is True and "blocks.0.mlp.down_proj" in saved["slopes"]
    assert (tmp_path / "mup" / "coord_check.html").read_text().count("plotly") > 0
