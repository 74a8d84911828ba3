"""What a finished (or running) sweep yields: the trials table, hparams.yaml and the figures.

``scaleplan sweep export`` writes them into the study folder; the dashboard shows the same table
and figures (:mod:`proxy_train.sweep_summary`), and ``transfer-check`` analyses the same table.

Conventions:

* Trials table: one row per trial with ``number, state, value`` (final validation loss, nats/token),
  ``width``, ``param``, ``fail_reason``, ``duration_s`` (seconds), ``retry_of``, ``pruned_at_step``,
  ``run_dir`` and one column per sampled hyperparameter (``lr``, or ``log2_lr`` on the transfer
  grid, ...).
* hparams.yaml (docs/CONTRACTS.md) is a :class:`planner.hparams.HParams` of the best COMPLETE
  trial, written by ``HParams.write``: the sampled values with ``base_width`` = the trial's width
  (every sweep trial runs at m_d = 1), the trainer's defaults for what was not searched, the
  data's vocab and where it came from (study, trial, val loss, tokens, corpus hash), and the
  ``sweep`` record the quality gate reads (planner/hparams_gate.py; :func:`sweep_record`):
  ``sampler``, ``n_finished`` (COMPLETE + PRUNED trials), ``n_complete``, ``widths`` (the study's
  proxy widths) and ``space`` (``{name: {low, high, log}}`` of every float hyperparameter Optuna
  sampled for the best trial, i.e. proxy_train/sweep_space.py's ``SPACE``, plus ``weight_decay``
  with ``--tune-wd``).
* Figures (plotly, HTML): ``lr_vs_loss`` (final loss vs log2 LR per width) and Optuna's history,
  parallel coordinates, slice and parameter importance; one that cannot be drawn is skipped with
  the reason.
"""
from __future__ import annotations

import io
import warnings
from pathlib import Path
from typing import Any

from planner import __version__
from planner.errors import UserError
from planner.hparams import HParams
from planner.io import atomic_write
from proxy_train.study import DEFAULT_HPARAMS, StudyMeta, read_study_meta, train_config
from proxy_train.sweep_storage import load_study, resolve_storage
from proxy_train.trials import BestTrial, fail_reason

TABLE_FORMATS = ("csv", "parquet")


def trials_frame(study):
    """The trials table (see the module docstring), one row per trial in trial order."""
    import pandas as pd

    rows = []
    for t in study.get_trials(deepcopy=False):
        dur = (t.datetime_complete - t.datetime_start).total_seconds() \
            if (t.datetime_complete and t.datetime_start) else None
        row = {"number": t.number, "state": t.state.name, "value": t.value,
               "width": t.user_attrs.get("width", t.params.get("width")),
               "param": t.user_attrs.get("param", t.params.get("param")),
               "fail_reason": fail_reason(t) or None, "duration_s": dur,
               "retry_of": (t.system_attrs.get("retry_history") or [None])[-1],
               "pruned_at_step": t.user_attrs.get("pruned_at_step"),
               "run_dir": t.user_attrs.get("run_dir")}
        for k, v in t.params.items():
            if k not in ("width", "param"):
                row[k] = v
        rows.append(row)
    return pd.DataFrame(rows)


def sweep_record(study, meta: StudyMeta, best_number: int) -> dict[str, Any]:
    """The ``sweep`` mapping of hparams.yaml (planner/hparams.py ``SweepRecord``; module docstring).

    The search ranges are read from the best trial's Optuna distributions (what its values were
    drawn from), not from today's ``SPACE``, so a study made with other ranges is judged by its own.
    """
    from optuna.distributions import FloatDistribution

    trials = study.get_trials(deepcopy=False)
    states = [t.state.name for t in trials]
    n_complete = states.count("COMPLETE")
    best = next(t for t in trials if t.number == best_number)
    space = {name: {"low": float(d.low), "high": float(d.high), "log": bool(d.log)}
             for name, d in sorted(best.distributions.items()) if isinstance(d, FloatDistribution)}
    return {"sampler": str(meta.spec.sampler), "n_finished": n_complete + states.count("PRUNED"),
            "n_complete": n_complete, "widths": sorted(int(w) for w in meta.spec.widths), "space": space}


def best_hparams(study, meta: StudyMeta) -> HParams:
    """hparams.yaml of the best COMPLETE trial, with the ``sweep`` record (see the module docstring)."""
    spec = meta.spec
    best = BestTrial.of(study)
    if best is None:
        raise UserError(f"study {meta.study_name} has no complete trial yet; run `scaleplan sweep` "
                        "with more --trials")
    width = int(best.width or best.params.get("width") or spec.widths[0])
    param = best.param or spec.param
    p = best.params
    cfg = train_config(spec, width=width, param=param, hp={**DEFAULT_HPARAMS, **p})
    return HParams(
        parameterization=param, base_width=width, base_depth=spec.n_layers, base_head_dim=spec.head_dim,
        lr=p["lr"], init_std=p["init_std"], alpha_in=p["alpha_in"], alpha_out=p["alpha_out"],
        attn_mult=cfg.attn_mult, warmup_frac=p["warmup_frac"], weight_decay=p.get("weight_decay", spec.weight_decay),
        wd_rule=cfg.wd_rule, readout_zero_init=cfg.zero_readout, query_zero_init=cfg.zero_query,
        betas=tuple(cfg.betas), vocab_size=spec.vocab_size,
        source={"study": meta.study_name, "trial": best.number, "val_loss": best.value,
                "tokens": best.user_attrs.get("tokens", cfg.total_steps * cfg.tokens_per_step),
                "corpus_sha256": spec.corpus_sha256},
        meta={"scaleplan_version": __version__, "code_version": meta.code_version, "command": meta.command,
              "made_by": "scaleplan sweep export"},
        sweep=sweep_record(study, meta, best.number),
    )


def _log2_lr(df):
    """log2 of the learning rate per row: from ``lr``, or the transfer grid's ``log2_lr``; None if neither."""
    import numpy as np

    if "lr" in df.columns:
        return np.log2(df["lr"])
    return df["log2_lr"] if "log2_lr" in df.columns else None


def can_plot_lr(df) -> bool:
    """Whether a trials table has the width and learning-rate columns :func:`lr_loss_figure` plots."""
    return "width" in df.columns and _log2_lr(df) is not None


def lr_loss_figure(df, title: str = "Final validation loss vs learning rate, per width"):
    """Scatter of final val loss against log2(lr), one colour per width (complete trials)."""
    import plotly.graph_objects as go

    fig = go.Figure()
    ok = df[(df["state"] == "COMPLETE") & df["value"].notna()] if len(df) else df
    for width in sorted(ok["width"].dropna().unique()) if len(ok) else []:
        part = ok[ok["width"] == width]
        fig.add_trace(go.Scatter(x=_log2_lr(part), y=part["value"], mode="markers", name=f"width {int(width)}",
                                 text=[f"trial {n}" for n in part["number"]]))
    fig.update_layout(title=title, xaxis_title="log2 learning rate", yaxis_title="final val loss (nats/token)")
    return fig


def study_figures(study, df) -> tuple[dict[str, Any], dict[str, str]]:
    """The figures of a study (name -> plotly figure) and the ones skipped (name -> why)."""
    import optuna

    figs: dict[str, Any] = {}
    skipped: dict[str, str] = {}
    if len(df) and not can_plot_lr(df):
        skipped["lr_vs_loss"] = "the study has no learning-rate or width parameter"
    else:
        figs["lr_vs_loss"] = lr_loss_figure(df)
    vis = optuna.visualization
    n_done = sum(t.state.name == "COMPLETE" for t in study.get_trials(deepcopy=False))
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        for name, fn in (("history", vis.plot_optimization_history), ("parallel", vis.plot_parallel_coordinate),
                         ("slice", vis.plot_slice), ("importance", vis.plot_param_importances)):
            if n_done < (2 if name == "importance" else 1):
                skipped[name] = "needs more complete trials"
                continue
            try:
                figs[name] = fn(study)
            except Exception as e:  # e.g. importance with a single-valued parameter
                skipped[name] = f"{type(e).__name__}: {str(e).splitlines()[0] if str(e) else ''}"
    return figs, skipped


def kept_transfer(path: Path, hp: HParams) -> dict[str, Any]:
    """The ``transfer`` record of the hparams.yaml at ``path`` that a re-export keeps: a μTransfer
    check (``scaleplan transfer-check --record-into``) tests the parameterization on the corpus, not
    the chosen values, so it stays valid when a longer sweep picks another trial; it is dropped when
    the file is unreadable, the corpus changed, or the check no longer matches the parameterization
    or covers the base width (:func:`proxy_train.transfer_record.record_problems`'s rules)."""
    if not path.is_file():
        return {}
    try:
        old = HParams.read(path)
    except UserError:
        return {}
    widths = old.transfer.get("widths") or [0]
    same = (old.transfer.get("param") == hp.parameterization and min(widths) <= hp.base_width <= max(widths)
            and old.source.get("corpus_sha256") == hp.source.get("corpus_sha256"))
    return dict(old.transfer) if same else {}


def write_table(df, path: Path, fmt: str) -> Path:
    """The trials table as CSV or Parquet, atomically."""
    if fmt == "csv":
        return atomic_write(path, df.to_csv(index=False))
    buf = io.BytesIO()
    df.to_parquet(buf, index=False)
    return atomic_write(path, buf.getvalue())


def export(study_dir: str | Path, *, fmt: str = "csv", storage: str | None = None) -> dict:
    """Write the trials table, hparams.yaml (sweeps) and HTML figures into the study folder."""
    study_dir = Path(study_dir)
    meta = read_study_meta(study_dir)
    if fmt not in TABLE_FORMATS:
        raise UserError(f"unknown --format {fmt!r}; use csv or parquet")
    study = load_study(study_dir, resolve_storage(study_dir, storage, meta=meta), meta)
    df = trials_frame(study)
    table = write_table(df, study_dir / f"trials.{fmt}", fmt)
    written = [str(table)]
    out: dict[str, Any] = {"study": str(study_dir), "trials": int(len(df)), "table": str(table)}
    if meta.spec.kind == "sweep":
        hp = best_hparams(study, meta)
        hp.transfer = kept_transfer(study_dir / "hparams.yaml", hp)
        written.append(str(hp.write(study_dir / "hparams.yaml")))
        out["hparams"] = {k: v for k, v in hp.to_dict().items() if k != "meta"}
    figs, skipped = study_figures(study, df)
    for name, fig in figs.items():
        written.append(str(atomic_write(study_dir / f"{name}.html", fig.to_html(include_plotlyjs="cdn",
                                                                               full_html=True))))
    out["figures"] = sorted(figs)
    out["figures_skipped"] = skipped
    out["written"] = written
    return out
