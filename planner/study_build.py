"""A reference study folder from a published source: runs.csv, fit.json, figures, study.yaml, licence.

``build_study`` is what ``scaleplan study import SOURCE --out DIR`` runs. Layout of DIR:

* ``runs.csv``: the source's runs (:mod:`planner.study_import`: run_id, N, D, C, loss, status,
  source, ...); rows whose status is not ``ok`` are kept and left out of the fit.
* ``fit.json``: the Approach-3 fit of the ``ok`` rows (:class:`planner.fit.ChinchillaFitter`,
  Hoffmann grid, bootstrap intervals) with its backtest (:mod:`planner.backtest`); ``meta.source``
  is ``runs.csv`` (relative to the folder) so the file does not depend on where DIR is.
* ``figures/*.fig.json`` (plotly JSON: runs and law, residuals, backtest) and ``fit.html`` (the
  same figures; plotly.js from its CDN, so the folder stays small).
* ``study.yaml``: source, citation, licence, the source file's SHA-256, the exact command that
  rebuilt the folder and the equivalent ``scaleplan fit`` command, a summary of the fit and goal.
* ``LICENSE`` and ``NOTICE`` for sources whose licence lets the data ship (MIT, Apache-2.0);
  ``README.md`` saying "never commit" for a source without a licence.

Everything is computed before the first file is written, and every file is written atomically
(:func:`planner.io.atomic_write`), so a failure leaves the folder as it was.
"""
from __future__ import annotations

import hashlib
from pathlib import Path
from typing import Any

from planner import __version__
from planner.errors import UserError
from planner.io import atomic_write, check_creatable, read_yaml, to_json, to_yaml
from planner.study_import import file_sha256, import_runs, source

LICENCE_DIR = Path(__file__).resolve().parent / "licences"
STUDY_KEY = "reference"  # study.yaml's top-level key for a study built from published runs
FIGURES = ("runs_and_law", "residuals", "backtest")
#: The commit of each source repository whose licence file planner/licences/<key>.LICENSE.txt is.
LICENCE_COMMITS = {"porian2024": "0dc60d91b8a525858a3067fc9e4a46ff5374cc6f (LICENSE)",
                   "muennighoff2023": "13701315b163f1c54642b94ad237b2699187c3ee (LICENSE.md)"}


def _check_out(out: Path, key: str) -> None:
    """``out`` must be a folder that is absent, empty, or an earlier import of the same source."""
    if out.exists() and not out.is_dir():
        raise UserError(f"--out {out} is a file; give a folder for the study")
    if out.is_dir() and any(out.iterdir()):
        prior = out / "study.yaml"
        old = read_yaml(prior) if prior.is_file() else None
        if not (isinstance(old, dict) and isinstance(old.get(STUDY_KEY), dict) and old[STUDY_KEY].get("source") == key):
            raise UserError(f"--out {out} is a non-empty folder that is not an earlier import of {key}; "
                            "give a new or empty folder")
    check_creatable(out if out.exists() else out.parent, f"the study folder {out}")


def _fit(runs, csv_text: str, src, *, bootstrap: int, seed: int, factors, workers: int, grid: str, command: str,
         progress: bool):
    from planner.fit import ChinchillaFitter, fit_runs
    from planner.runs import load_runs

    df = load_runs(runs, n_col="N", loss_col="loss", d_col="D")
    meta = {"source": "runs.csv", "data_sha256": hashlib.sha256(csv_text.encode()).hexdigest(), "n_col": "N",
            "loss_col": "loss", "d_col": "D", "flops_col": None, "d_derived": False,
            "scaleplan_version": __version__, "command": command}
    fitter = ChinchillaFitter(grid=grid, bootstrap=bootstrap, seed=seed, n_jobs=workers, progress=progress,
                              **src.fit_options)
    result = fit_runs(fitter, df, meta, backtest_factors=factors)
    if result.backtest is not None and not result.backtest.predictions():
        result.backtest = None
    return df[fitter.kept_mask_], result


def _figures(fitted, result) -> dict[str, Any]:
    from planner.fit_plots import fig_backtest, fig_residuals, fig_runs_and_law

    figs = {"runs_and_law": fig_runs_and_law(fitted, result.law, title="Runs and fitted law"),
            "residuals": fig_residuals(fitted, result.law, result.holdout)}
    if result.backtest is not None:
        figs["backtest"] = fig_backtest(result.backtest)
    return figs


def _html(figs: dict[str, Any], title: str, command: str) -> str:
    parts = [f.to_html(full_html=False, include_plotlyjs="cdn" if i == 0 else False)
             for i, f in enumerate(figs.values())]
    return ("<!DOCTYPE html>\n<html><head><meta charset='utf-8'>\n<!-- scaleplan " + __version__ + "; command: "
            + command.replace("--", "- -") + " -->\n<title>" + title + "</title></head><body>\n<h1>" + title
            + "</h1>\n" + "\n".join(parts) + "\n</body></html>\n")


def fit_command(out: str, src) -> str:
    """The ``scaleplan fit`` command that gives the same fit from the folder's runs.csv."""
    opts = "".join(f" --{k.replace('_', '-')} {v}" for k, v in src.fit_options.items())
    return (f"scaleplan fit {out}/runs.csv --n-col N --d-col D --loss-col loss{opts} --bootstrap {{bootstrap}} "
            f"--seed {{seed}} --out {out}/fit.json")


def _record(src, runs, result, *, data_dir, config, command: str, out: str, bootstrap: int, seed: int) -> dict:
    rec: dict[str, Any] = {
        "source": src.key, "label": src.label, "citation": src.citation,
        "url": src.url, "licence": src.licence, "may_commit": src.committed, "data_file": src.file,
        "data_sha256": file_sha256(data_dir, src.key), "n_convention": src.n_convention,
        "loss": "final loss, nats per token", "command": command,
        "fit_command": fit_command(out, src).format(bootstrap=bootstrap, seed=seed),
        "rows": int(len(runs)), "rows_ok": int((runs["status"] == "ok").sum()), "scaleplan": __version__}
    if config is not None:
        rec["config"] = config
    if result is not None:
        law = result.law
        rec["fit"] = {"E": law.E, "A": law.A, "B": law.B, "alpha": law.alpha, "beta": law.beta,
                      "converged": result.converged, "bootstrap": bootstrap, "seed": seed,
                      "settings": dict(src.fit_options)}
        if result.backtest is not None:
            rec["backtest_goal"] = {k: (None if g is None else {"n": g["n"], "max_abs_rel_error": g["max_abs_rel_error"],
                                                                 "frac_inside_interval": g["frac_inside_interval"],
                                                                 "met": g["met"]})
                                    for k, g in result.backtest.goal().items() if k.endswith("x")}
    return {STUDY_KEY: rec}


def _licence_files(src) -> dict[str, str]:
    if not src.committed:
        return {"README.md": f"# {src.key}\n\nBuilt on demand by `scaleplan study import {src.key}` from the "
                             f"workspace copy of `{src.file}` ({src.url}). **No licence is stated for this data: "
                             "never commit this folder** (it is listed in the project's .gitignore).\n"}
    notice = (f"The runs in runs.csv are taken from {src.url}\n({src.citation}),\nfile {src.file} of this project's "
              f"shared data, distributed under the {src.licence} licence; the licence text is in LICENSE, copied from "
              f"that repository at commit {LICENCE_COMMITS[src.key]}.\n"
              "scaleplan added the columns C (= 6 N D where the source gives N and D), status, source and those derived "
              "from the source's own (e.g. epochs = D / U), and the fit, figures and study.yaml.\n")
    return {"LICENSE": (LICENCE_DIR / f"{src.key}.LICENSE.txt").read_text(encoding="utf-8"), "NOTICE": notice}


def build_study(key: str, out: str | Path, *, data_dir: str | Path, config: str | None = None, bootstrap: int = 200,
                seed: int = 0, factors=(3.0, 10.0, 30.0, 100.0), workers: int = 1, grid: str = "hoffmann",
                fit: bool = True, command: str = "scaleplan study import", progress: bool = False) -> dict[str, Any]:
    """Build (or rebuild) the study folder ``out`` from source ``key``; returns study.yaml's record."""
    src = source(key)
    out = Path(out)
    _check_out(out, key)
    runs = import_runs(key, data_dir, config=config)
    csv_text = runs.to_csv(index=False)
    files: dict[str, str] = {"runs.csv": csv_text}
    result = None
    if fit:
        fitted, result = _fit(runs, csv_text, src, bootstrap=bootstrap, seed=seed, factors=factors, workers=workers,
                              grid=grid, command=command, progress=progress)
        files["fit.json"] = to_json(result.to_dict()) + "\n"
        figs = _figures(fitted, result)
        files.update({f"figures/{name}.fig.json": fig.to_json() for name, fig in figs.items()})
        files["fit.html"] = _html(figs, f"{key}: Approach-3 fit of published runs", command)
    record = _record(src, runs, result, data_dir=data_dir, config=config, command=command, out=out.as_posix(),
                     bootstrap=bootstrap, seed=seed)
    files["study.yaml"] = to_yaml(record)
    files.update(_licence_files(src))
    (out / "figures").mkdir(parents=True, exist_ok=True)
    for name, text in files.items():
        atomic_write(out / name, text)
    return record[STUDY_KEY]


__all__ = ["build_study", "fit_command", "STUDY_KEY", "FIGURES"]
