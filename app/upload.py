"""Validate a runs table uploaded in the browser (CSV or Parquet), as data only.

The bytes are parsed by pandas (``read_csv`` / ``read_parquet``): nothing is executed, evaluated
or unpickled. Files over :data:`MAX_UPLOAD_BYTES` are refused before parsing. The parsed table goes
through :func:`planner.runs.load_runs`, so an uploaded file meets exactly the rules ``scaleplan
fit`` applies. Every problem is a :class:`~planner.errors.UserError` for ``st.error``.
"""
from __future__ import annotations

import io

import pandas as pd

from planner.errors import UserError

MAX_UPLOAD_BYTES = 20 * 1024 * 1024  # 20 MiB: ~200k runs rows, far above any real ladder
MAX_UPLOAD_MB = MAX_UPLOAD_BYTES // (1024 * 1024)

# Column names we recognise, best first (our runs table per docs/CONTRACTS.md, then common ones).
N_COLUMNS = ("total_params", "N", "params", "Model Size", "non_embedding_params")
LOSS_COLUMNS = ("final_val_loss", "loss", "Loss", "val_loss", "final_train_loss")
D_COLUMNS = ("tokens", "D", "Training Tokens")
FLOPS_COLUMNS = ("flops", "C", "Training FLOP", "FLOPs")


def parse_table(name: str, data: bytes) -> pd.DataFrame:
    """Bytes of an uploaded ``.csv`` or ``.parquet`` file -> DataFrame (UserError when unusable)."""
    if len(data) > MAX_UPLOAD_BYTES:
        raise UserError(f"{name} is {len(data) / 2**20:.1f} MiB; the limit is {MAX_UPLOAD_MB} MiB: "
                        "upload only the runs table (one row per run)")
    if not data.strip():
        raise UserError(f"{name} is empty; upload a CSV with one row per training run")
    lower = name.lower()
    try:
        if lower.endswith(".parquet"):
            return pd.read_parquet(io.BytesIO(data))
        if not lower.endswith((".csv", ".txt")):
            raise UserError(f"{name}: unsupported file type; upload a .csv or .parquet runs table")
        text = data.decode("utf-8")
        return pd.read_csv(io.StringIO(text))
    except UserError:
        raise
    except UnicodeDecodeError:
        raise UserError(f"{name} is not UTF-8 text; upload a CSV (or a .parquet file)") from None
    except Exception as e:  # pandas/pyarrow raise many types on malformed input
        first = str(e).splitlines()[0] if str(e) else type(e).__name__
        raise UserError(f"{name} could not be parsed as a table ({first}); upload a valid CSV/Parquet") from None


def guess_column(df: pd.DataFrame, candidates: tuple[str, ...]) -> str | None:
    """The first of ``candidates`` present in ``df`` (exact name), else None."""
    return next((c for c in candidates if c in df.columns), None)


def validate_runs(df: pd.DataFrame, *, n_col: str, loss_col: str, d_col: str | None = None,
                  flops_col: str | None = None) -> pd.DataFrame:
    """Run the library's runs-table validation (columns N, D, C, loss added)."""
    from planner.runs import load_runs

    return load_runs(df, n_col=n_col, loss_col=loss_col, d_col=d_col, flops_col=flops_col)


def runs_from_upload(name: str, data: bytes) -> pd.DataFrame:
    """Parse and validate with guessed columns (tokens preferred over FLOPs when both exist)."""
    df = parse_table(name, data)
    n_col, loss_col = guess_column(df, N_COLUMNS), guess_column(df, LOSS_COLUMNS)
    d_col = guess_column(df, D_COLUMNS)
    flops_col = None if d_col else guess_column(df, FLOPS_COLUMNS)
    if n_col is None or loss_col is None or (d_col is None and flops_col is None):
        raise UserError(
            f"{name}: cannot find the columns for parameters, tokens (or FLOPs) and loss among "
            f"{list(map(str, df.columns))}; name them e.g. total_params, tokens, final_val_loss"
        )
    return validate_runs(df, n_col=n_col, loss_col=loss_col, d_col=d_col, flops_col=flops_col)
