"""Published scaling-law runs as runs tables: one reader per source, one table format.

Every reader returns a DataFrame with the columns of a study's runs.csv, in this order:

    run_id, N, D, C, loss, status, source, [source-specific columns]

* ``N`` parameters in the count the source reports (named in :class:`Source.n_convention`),
  ``D`` training tokens, ``C`` training FLOPs, ``loss`` the source's final loss in nats
  (natural-log cross-entropy per token). Where a source gives only two of N, D, C the third is
  C = 6 N D (Kaplan et al. 2020, Sec. 2.1; Hoffmann et al. 2022), so ``planner.runs.load_runs``
  with ``d_col="D"`` gives back the same C.
* ``status`` is ``"ok"`` for the rows a Chinchilla fit of L(N, D) should use and names why for
  the others (``planner.runs.load_runs`` drops every row whose status is not ``"ok"``).
* ``source`` is the source key (:data:`SOURCES`), so a row keeps its origin when tables are merged.

The raw files are those of ``../shared/data/external`` (its README.md lists each file's origin and
licence); a reader takes the folder that holds them. Rows keep the source's order; numbers are
read as written (no rounding), so a re-import gives the same table byte for byte.
"""
from __future__ import annotations

import hashlib
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Callable

import numpy as np

from planner.errors import UserError

if TYPE_CHECKING:  # pandas is imported where a table is read: `scaleplan --help` lists the sources without it
    import pandas as pd

#: Porian et al. 2024's configuration whose training matches Chinchilla's (see read_porian2024).
PORIAN_DEFAULT_CONFIG = "rw/base/short/chinchilla/standard/val"
COLUMNS = ("run_id", "N", "D", "C", "loss", "status", "source")


def _read_csv(data_dir: str | Path, name: str, needed: tuple[str, ...]) -> pd.DataFrame:
    import pandas as pd

    path = Path(data_dir) / name
    if not path.is_file():
        raise UserError(f"source file {name} not found in {data_dir}; pass --data DIR with the published CSVs "
                        "(../shared/data/external in this project's workspace)")
    try:
        df = pd.read_csv(path)
    except (pd.errors.ParserError, UnicodeDecodeError, pd.errors.EmptyDataError) as e:
        raise UserError(f"cannot read {path} as CSV ({type(e).__name__}); restore the published file") from None
    missing = [c for c in needed if c not in df.columns]
    if missing:
        raise UserError(f"{path} lacks column(s) {missing}; is it the published file? (columns: {list(df.columns)})")
    return df


def _table(run_id, N, D, C, loss, status, source: str, **extra) -> pd.DataFrame:
    import pandas as pd

    out = pd.DataFrame({"run_id": run_id, "N": np.asarray(N, dtype=float), "D": np.asarray(D, dtype=float),
                        "C": np.asarray(C, dtype=float), "loss": np.asarray(loss, dtype=float), "status": status,
                        "source": source, **extra})
    bad = ~np.isfinite(out[["N", "D", "C", "loss"]].to_numpy()).all(axis=1) | (out[["N", "D", "C", "loss"]] <= 0).any(
        axis=1).to_numpy()
    if bad.any():
        raise UserError(f"{source}: {int(bad.sum())} rows have a non-positive or missing N, D, C or loss; "
                        "restore the published file")
    return out.reset_index(drop=True)


def read_porian2024(data_dir: str | Path, config: str = PORIAN_DEFAULT_CONFIG) -> pd.DataFrame:
    """Porian et al. 2024 isoFLOP runs of one configuration (``porian2024_isoflop_points.csv``).

    Source: T. Porian, M. Wortsman, J. Jitsev, L. Schmidt, Y. Carmon, "Resolving Discrepancies in
    Compute-Optimal Scaling of Language Models", NeurIPS 2024 (arXiv:2406.19146), data from
    github.com/formll/resolving-scaling-law-discrepancies (MIT), the ``summary_df*`` frames' isoFLOP
    points. Columns used: ``config`` (dataset/hparams/warmup/decay/param-count/loss key of their
    configs.py), ``flops`` (the budget C), ``N``, ``D``, ``loss``; the file has C = 6 N D exactly.

    ``config`` picks one setting (their Fig. 1 steps). The default, ``rw/base/short/chinchilla/
    standard/val`` ("Cosine decay" in configs.py), is the one whose training matches Chinchilla's:
    RefinedWeb, short warmup, cosine decay to the run's own length, FLOPs and N counting the output
    layer ("standard"), validation loss; Porian et al. show this step recovers Chinchilla's
    N* ∝ C^0.5. Their final step (``rw/tuned/short/const/...``: tuned AdamW, no decay) agrees on
    the exponent but measures un-annealed, constant-LR losses, which is not the L(N, D) of a
    Chinchilla fit. Every other config can be imported by name.
    """
    df = _read_csv(data_dir, "porian2024_isoflop_points.csv", ("config", "flops", "N", "D", "loss"))
    configs = sorted(df["config"].unique())
    if config not in configs:
        raise UserError(f"porian2024 has no config {config!r}; choose one of: {', '.join(configs)}")
    d = df[df["config"] == config]
    run_id = [f"C{c:.3g}-N{n:.4g}" for c, n in zip(d["flops"], d["N"])]
    return _table(run_id, d["N"], d["D"], d["flops"], d["loss"], "ok", "porian2024", config=config)


def read_muennighoff2023(data_dir: str | Path) -> pd.DataFrame:
    """Muennighoff et al. 2023's runs behind the data-constrained law (``muennighoff2023_datablations_fit182.csv``).

    Source: N. Muennighoff et al., "Scaling Data-Constrained Language Models", NeurIPS 2023
    (arXiv:2305.16264), github.com/huggingface/datablations (Apache-2.0): the 182 runs their
    parametric fit used. Columns: ``name`` (their run name, e.g. 2b855b9b = 2.8B params, 55B
    tokens, 9B unique), ``N`` parameters, ``D`` total training tokens, ``U`` unique tokens,
    ``loss`` final validation loss (nats). C = 6 N D.

    Added: ``epochs`` = D / U. A Chinchilla law L(N, D) assumes fresh data, so ``status`` is
    ``"ok"`` for single-epoch runs (D <= U) and ``"repeated_data"`` for the rest; all rows keep U
    for the data-constrained law (:mod:`planner.data_constrained`).
    """
    df = _read_csv(data_dir, "muennighoff2023_datablations_fit182.csv", ("name", "N", "D", "U", "loss"))
    epochs = df["D"] / df["U"]
    status = np.where(df["D"] <= df["U"] * (1 + 1e-9), "ok", "repeated_data")
    return _table(df["name"].astype(str), df["N"], df["D"], 6.0 * df["N"] * df["D"], df["loss"], status,
                  "muennighoff2023", U=df["U"].astype(float), epochs=epochs)


def read_chinchilla_epoch2024(data_dir: str | Path) -> pd.DataFrame:
    """Chinchilla's runs as Epoch AI read them off Hoffmann et al. 2022, Fig. 4 (``chinchilla_epoch2024_svg_extracted.csv``).

    Source: T. Besiroglu, E. Erdil, M. Barnett, J. You, "Chinchilla Scaling: A replication attempt"
    (arXiv:2404.10102), github.com/epoch-research/analyzing-chinchilla. **No licence is stated**:
    this table is built on demand from the workspace copy and never committed. Columns used:
    ``Model Size`` = N, ``Training FLOP`` = C, ``loss`` (quantised by the figure's colour bar);
    D = C / (6 N). Besiroglu et al.'s replication drops the 5 highest-loss rows (all near 1e19
    FLOPs, under 0.5 tokens per parameter; ../shared/data/README.md): the study's fit does the same
    with ``drop_top_loss=5`` (recorded in fit.json) rather than marking them here.
    """
    df = _read_csv(data_dir, "chinchilla_epoch2024_svg_extracted.csv", ("Model Size", "Training FLOP", "loss"))
    N, C = df["Model Size"].astype(float), df["Training FLOP"].astype(float)
    run_id = [f"row{i + 1}" for i in range(len(df))]
    return _table(run_id, N, C / (6.0 * N), C, df["loss"], "ok", "chinchilla-epoch2024")


@dataclass(frozen=True)
class Source:
    """A published source: its file, reader, licence and how its study is fitted."""

    key: str
    file: str
    reader: Callable[..., pd.DataFrame]
    citation: str
    url: str
    licence: str
    committed: bool  # may its study folder ship inside the project?
    label: str  # the study's name in the dashboard
    n_convention: str
    fit_options: dict = field(default_factory=dict)  # ChinchillaFitter settings of the study's fit
    licence_file: str | None = None  # the licence text shipped with the study (studies/<key>/LICENSE)


SOURCES: dict[str, Source] = {s.key: s for s in (
    Source("porian2024", "porian2024_isoflop_points.csv", read_porian2024,
           "Porian, Wortsman, Jitsev, Schmidt, Carmon 2024, Resolving Discrepancies in Compute-Optimal Scaling of "
           "Language Models (NeurIPS 2024, arXiv:2406.19146)",
           "https://github.com/formll/resolving-scaling-law-discrepancies", "MIT", True,
           "Porian et al. 2024 isoFLOP runs (real scale, 5M-900M params)",
           "N: parameters including the output layer (their 'params' / 'standard' count); C = 6 N D"),
    Source("muennighoff2023", "muennighoff2023_datablations_fit182.csv", read_muennighoff2023,
           "Muennighoff, Rush, Barak, Le Scao, Piktus, Tazi, Pyysalo, Wolf, Raffel 2023, Scaling Data-Constrained "
           "Language Models (NeurIPS 2023, arXiv:2305.16264)",
           "https://github.com/huggingface/datablations", "Apache-2.0", True,
           "Muennighoff et al. 2023 data-constrained runs (real scale, 7M-9B params)",
           "N: parameters as in their run names (e.g. 2b8 = 2.81e9); D: total tokens; U: unique tokens"),
    Source("chinchilla-epoch2024", "chinchilla_epoch2024_svg_extracted.csv", read_chinchilla_epoch2024,
           "Hoffmann et al. 2022, Training Compute-Optimal Large Language Models, Fig. 4, as extracted by Besiroglu, "
           "Erdil, Barnett, You 2024, Chinchilla Scaling: A replication attempt (arXiv:2404.10102)",
           "https://github.com/epoch-research/analyzing-chinchilla",
           "none stated: built on demand from ../shared/data, never committed", False,
           "Chinchilla runs, Hoffmann et al. 2022 via Epoch 2024 (real scale, 57M-16B params)",
           "N: Model Size as read off Hoffmann et al. Fig. 4; D = C / (6 N)", fit_options={"drop_top_loss": 5}),
)}


def source(key: str) -> Source:
    """The :class:`Source` named ``key``; UserError listing the known ones otherwise."""
    if key not in SOURCES:
        raise UserError(f"unknown source {key!r}; choose one of: {', '.join(SOURCES)}")
    return SOURCES[key]


def import_runs(key: str, data_dir: str | Path, *, config: str | None = None) -> pd.DataFrame:
    """The runs table of source ``key`` read from ``data_dir`` (``config``: porian2024 only)."""
    src = source(key)
    if config is not None and key != "porian2024":
        raise UserError(f"--config applies to porian2024 only (its isoFLOP settings); drop it for {key}")
    return src.reader(data_dir, config) if config is not None else src.reader(data_dir)


def file_sha256(data_dir: str | Path, key: str) -> str:
    """SHA-256 of the source file of ``key`` (recorded in study.yaml)."""
    return hashlib.sha256((Path(data_dir) / source(key).file).read_bytes()).hexdigest()


__all__ = ["SOURCES", "Source", "source", "import_runs", "read_porian2024", "read_muennighoff2023",
           "read_chinchilla_epoch2024", "file_sha256", "PORIAN_DEFAULT_CONFIG", "COLUMNS"]
