"""The runs table: load and validate (N, D, C, loss) rows for a scaling-law fit.

Conventions:

* ``N`` is whatever parameter count the user names with ``n_col`` (total or non-embedding: the
  fit does not care, but the plan must use the same one). ``D`` is training tokens, ``C`` FLOPs,
  ``loss`` natural-log cross-entropy per token (nats).
* Give exactly one of ``d_col`` (tokens) or ``flops_col`` (FLOPs). The other one is derived with
  the standard dense-transformer estimate C = 6 N D (Kaplan et al. 2020, Sec. 2.1; Hoffmann et al.
  2022 use the same), i.e. ``D = C / (6 N)`` or ``C = 6 N D``.
* Rows whose ``status`` column exists and is not ``"ok"`` are dropped; how many is reported in
  ``df.attrs["n_dropped_status"]`` (and the dropped row numbers in ``df.attrs["dropped_status_rows"]``).

Every problem is a :class:`~planner.errors.UserError` that names the file, column and rows.
"""
from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import pandas as pd

from planner.errors import UserError

#: Free parameters of the Chinchilla form (E, A, B, alpha, beta) + 2: the fewest rows we accept.
MIN_ROWS_APPROACH3 = 5 + 2


def _read_table(path: Path) -> pd.DataFrame:
    if not path.exists():
        raise UserError(f"runs table not found: {path}; check the path")
    if path.is_dir():
        raise UserError(f"runs table {path} is a folder; pass the runs.csv or runs.parquet inside it")
    ext = path.suffix.lower()
    if ext == ".parquet":
        try:
            return pd.read_parquet(path)
        except Exception as e:  # pyarrow raises several types for a corrupt file
            raise UserError(f"cannot read {path} as Parquet ({type(e).__name__}); pass a valid .parquet file") from None
    if ext not in (".csv", ".tsv", ".txt"):
        raise UserError(f"runs table {path} has extension {ext or '(none)'!r}; pass a .csv or .parquet file")
    if path.stat().st_size == 0:
        raise UserError(f"runs table {path} is empty; it needs a header line and at least one row")
    try:
        return pd.read_csv(path, sep="\t" if ext == ".tsv" else ",")
    except UnicodeDecodeError:
        raise UserError(f"runs table {path} is not UTF-8 text; pass a CSV file") from None
    except pd.errors.EmptyDataError:
        raise UserError(f"runs table {path} is empty; it needs a header line and at least one row") from None
    except pd.errors.ParserError as e:
        msg = str(e).strip().splitlines()[-1]
        raise UserError(f"runs table {path} is not valid CSV ({msg}); fix the file") from None


def _rows(mask: np.ndarray, index: pd.Index, limit: int = 8) -> str:
    """Human row numbers (1-based data rows, as in a spreadsheet without the header)."""
    bad = [int(i) + 1 for i in np.asarray(index)[mask]]
    text = ", ".join(map(str, bad[:limit]))
    return text + (f" and {len(bad) - limit} more" if len(bad) > limit else "")


def _numeric(df: pd.DataFrame, col: str, what: str) -> np.ndarray:
    raw = df[col]
    vals = pd.to_numeric(raw, errors="coerce").to_numpy(dtype=float)
    not_num = np.isnan(vals) & raw.notna().to_numpy()
    if not_num.any():
        raise UserError(f"column {col!r} ({what}) has non-numeric values in rows {_rows(not_num, df.index)}; "
                        "fix or remove those rows")
    nan = ~np.isfinite(vals)
    if nan.any():
        raise UserError(f"column {col!r} ({what}) has missing/NaN/inf values in rows {_rows(nan, df.index)}; "
                        "fix or remove those rows")
    nonpos = vals <= 0
    if nonpos.any():
        raise UserError(f"column {col!r} ({what}) must be > 0 but is not in rows {_rows(nonpos, df.index)}; "
                        "fix or remove those rows")
    return vals


def load_runs(path_or_df: str | os.PathLike | pd.DataFrame, *, n_col: str, loss_col: str,
              d_col: str | None = None, flops_col: str | None = None, status_col: str = "status",
              min_rows: int = MIN_ROWS_APPROACH3) -> pd.DataFrame:
    """Read a runs table (CSV/Parquet by extension, or a DataFrame) into columns N, D, C, loss.

    The original columns are kept (renamed copies are added). Rows with ``status_col`` present and
    not equal to ``"ok"`` are dropped before validation. ``min_rows`` is the fewest rows the fit
    accepts (default 7 = the 5 free parameters of Approach 3 + 2).
    """
    if (d_col is None) == (flops_col is None):
        raise UserError("give exactly one of --d-col (tokens) or --flops-col (FLOPs); "
                        "the other is derived from C = 6 N D")
    if isinstance(path_or_df, pd.DataFrame):
        df, where = path_or_df.copy(), "the runs table"
    else:
        where = str(path_or_df)
        df = _read_table(Path(path_or_df))
    df = df.reset_index(drop=True)
    if len(df.columns) == 0 or len(df) == 0:
        raise UserError(f"{where} has no rows; it needs one row per training run")
    needed = [c for c in (n_col, loss_col, d_col, flops_col) if c is not None]
    missing = [c for c in needed if c not in df.columns]
    if missing:
        raise UserError(f"{where} lacks column(s) {missing}; available columns: {list(map(str, df.columns))}; "
                        "choose them with --n-col/--loss-col/--d-col/--flops-col")

    dropped_rows: list[int] = []
    if status_col and status_col in df.columns:
        ok = df[status_col].astype(str).str.strip().str.lower().eq("ok").to_numpy()
        dropped_rows = [int(i) + 1 for i in np.flatnonzero(~ok)]
        df = df[ok]
        if len(df) == 0:
            raise UserError(f"{where}: no row has {status_col} == 'ok' ({len(dropped_rows)} rows dropped); "
                            "nothing to fit")

    N = _numeric(df, n_col, "parameters N")
    loss = _numeric(df, loss_col, "loss")
    if d_col is not None:
        D = _numeric(df, d_col, "tokens D")
        C = 6.0 * N * D
    else:
        C = _numeric(df, flops_col, "FLOPs C")
        D = C / (6.0 * N)  # C = 6 N D (Kaplan et al. 2020; Hoffmann et al. 2022)
    if len(df) < min_rows:
        raise UserError(f"{where} has {len(df)} usable rows but the fit needs at least {min_rows} "
                        f"(free parameters + 2); add runs")
    out = df.copy()
    out["N"], out["D"], out["C"], out["loss"] = N, D, C, loss
    out = out.reset_index(drop=True)
    out.attrs["n_dropped_status"] = len(dropped_rows)
    out.attrs["dropped_status_rows"] = dropped_rows
    out.attrs["d_derived"] = d_col is None
    return out


__all__ = ["load_runs", "MIN_ROWS_APPROACH3"]
