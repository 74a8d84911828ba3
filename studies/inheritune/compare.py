"""Collect the Inheritune comparison of this study folder: results.json, results.csv, inheritune.html.

Reads the run.json files the commands in README.md wrote (ref-L6/, inherit-L3-s*/, scratch-L3-s*/)
and compares, per seed, the K-layer proxy initialised from the reference's first K layers with the
same proxy trained from scratch at the same tokens, seed and schedule:
* final validation loss (nats/token) and its difference (inherit - scratch);
* tokens the inherited run needed to reach the scratch run's final loss (linear interpolation
  between evaluation points of its validation curve), and that as a fraction of the budget;
* the inherited model's loss before any training (step 0: the reference's first K layers as is).
The reference's own tokens are reported separately: they are extra cost that Inheritune's claim
(the small model's quality at its own training budget) does not count.

Usage: .venv/bin/python studies/inheritune/compare.py  (from the repository root)
"""
from __future__ import annotations

import csv
import json
from pathlib import Path

HERE = Path(__file__).resolve().parent


def _load(name: str) -> dict:
    return json.loads((HERE / name / "run.json").read_text())


def tokens_to_reach(curve: list[list[float]], target: float) -> float | None:
    """First token count at which the [step, tokens, loss] curve reaches ``target`` (interpolated)."""
    prev = None
    for _, tokens, loss in curve:
        if loss <= target:
            if prev is None:
                return float(tokens)
            t0, l0 = prev
            return float(t0 + (tokens - t0) * (l0 - target) / (l0 - loss))
        prev = (tokens, loss)
    return None


def _layers(rec: dict) -> list[dict]:
    keep = ("layer", "row_max", "frac_rows_concentrated", "first_token_mass", "top_column_mass",
            "effective_rank", "approx_rank")
    return [{k: r[k] for k in keep} for r in rec["attention_diagnostic"]["layers"]]


def compare(seeds: list[int]) -> dict:
    ref = _load("ref-L6")
    rows = []
    for s in seeds:
        inh, scr = _load(f"inherit-L3-s{s}"), _load(f"scratch-L3-s{s}")
        assert inh["tokens"] == scr["tokens"] and inh["seed"] == scr["seed"] == s
        reach = tokens_to_reach(inh["curve"]["val"], scr["final_val_loss"])
        rows.append({"seed": s, "tokens": inh["tokens"], "inherit_final_val_loss": inh["final_val_loss"],
                     "scratch_final_val_loss": scr["final_val_loss"],
                     "delta_inherit_minus_scratch": inh["final_val_loss"] - scr["final_val_loss"],
                     "inherit_step0_val_loss": inh["curve"]["val"][0][2],
                     "scratch_step0_val_loss": scr["curve"]["val"][0][2],
                     "inherit_tokens_to_scratch_final": reach,
                     "inherit_fraction_of_budget": None if reach is None else reach / inh["tokens"],
                     "inherit_wall_time_s": inh["wall_time_s"], "scratch_wall_time_s": scr["wall_time_s"]})
    mean = {k: sum(r[k] for r in rows) / len(rows) for k in ("inherit_final_val_loss", "scratch_final_val_loss",
                                                             "delta_inherit_minus_scratch")}
    return {"reference": {"run_id": ref["run_id"], "n_layers": ref["n_layers"], "tokens": ref["tokens"],
                          "final_val_loss": ref["final_val_loss"], "total_params": ref["total_params"],
                          "wall_time_s": ref["wall_time_s"],
                          "lazy_layers": ref["attention_diagnostic"]["lazy_layers"], "layers": _layers(ref)},
            "small": {"n_layers": 3, "total_params": _load(f"scratch-L3-s{seeds[0]}")["total_params"],
                      "diagnostic": {f"{a}-L3-s{s}": _layers(_load(f"{a}-L3-s{s}"))
                                     for a in ("inherit", "scratch") for s in seeds}},
            "per_seed": rows, "mean": mean, "loss_units": "nats/token",
            "note": "equal training tokens for the two small runs; the reference's tokens are extra cost"}


def figure(seeds: list[int]):
    from plotly.subplots import make_subplots
    import plotly.graph_objects as go

    fig = make_subplots(rows=1, cols=3, subplot_titles=("validation loss (nats/token)", "row max per layer",
                                                        "effective rank per layer"))
    runs = ["ref-L6"] + [f"{a}-L3-s{s}" for s in seeds for a in ("inherit", "scratch")]
    for name in runs:
        rec = _load(name)
        val = rec["curve"]["val"]
        fig.add_trace(go.Scatter(x=[v[1] for v in val], y=[v[2] for v in val], mode="lines", name=name,
                                 legendgroup=name), 1, 1)
        lay = rec["attention_diagnostic"]["layers"]
        for col, m in ((2, "row_max"), (3, "effective_rank")):
            fig.add_trace(go.Scatter(x=[r["layer"] for r in lay], y=[r[m] for r in lay], mode="lines+markers",
                                     name=name, legendgroup=name, showlegend=False), 1, col)
    fig.update_xaxes(title_text="tokens", row=1, col=1)
    fig.update_yaxes(range=[1.2, 3.0], row=1, col=1)
    fig.update_xaxes(title_text="layer", dtick=1, row=1, col=2)
    fig.update_xaxes(title_text="layer", dtick=1, row=1, col=3)
    fig.update_layout(height=420, width=1300, title="Inheritune on the demo data: d_model 64, K = 3 of 6 layers")
    return fig


def main() -> None:
    seeds = sorted(int(p.name.rsplit("-s", 1)[1]) for p in HERE.glob("inherit-L3-s*") if (p / "run.json").exists())
    res = compare(seeds)
    (HERE / "results.json").write_text(json.dumps(res, indent=2) + "\n")
    with open(HERE / "results.csv", "w", newline="") as f:
        w = csv.DictWriter(f, fieldnames=list(res["per_seed"][0]))
        w.writeheader()
        w.writerows(res["per_seed"])
    figure(seeds).write_html(HERE / "inheritune.html", include_plotlyjs="cdn")
    print(json.dumps({"per_seed": res["per_seed"], "mean": res["mean"], "reference": {
        k: v for k, v in res["reference"].items() if k != "layers"}}, indent=1))


if __name__ == "__main__":
    main()
