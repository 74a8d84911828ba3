"""Validate a runs table uploaded in the browser (CSV or Parquet), as data only.

The bytes are parsed by pandas (``read_csv`` / ``read_parquet``): nothing is executed, evaluated
or unpickled. Files over :data:`MAX_UPLOAD_BYTES` are refused before parsing, and so are tables whose
*decoded* size is too large: a Parquet file by its footer metadata (row count, column count, column
types, uncompressed size; a 257 KB file can hold 20M rows), a CSV by its line and header-field
counts (:data:`MAX_UPLOAD_ROWS`, :data:`MAX_UPLOAD_COLUMNS`, :data:`MAX_UPLOAD_CELLS`). The parsed table goes
through :func:`planner.runs.load_runs`, so an uploaded file meets exactly the rules ``scaleplan
fit`` applies. Every problem is a :class:`~planner.errors.UserError` for ``st.error``.
"""
from __future__ import annotations

import io

import pandas as pd

from planner.errors import UserError

MAX_UPLOAD_BYTES = 20 * 1024 * 1024  # 20 MiB: ~200k runs rows, far above any real ladder
MAX_UPLOAD_MB = MAX_UPLOAD_BYTES // (1024 * 1024)
MAX_UPLOAD_ROWS = 200_000  # a ladder has tens to thousands of runs
MAX_UPLOAD_COLUMNS = 256
MAX_UPLOAD_CELLS = 5_000_000  # rows x columns: a few hundred MB decoded at most
MAX_DECODED_BYTES = 256 * 2**20  # Parquet: uncompressed size of the row groups (footer metadata)
_FIX = "upload only the runs table (one row per run, a few columns)"

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
            check_parquet_size(name, data)
            return pd.read_parquet(io.BytesIO(data))
        if not lower.endswith((".csv", ".txt")):
            raise UserError(f"{name}: unsupported file type; upload a .csv or .parquet runs table")
        text = data.decode("utf-8")
        _check_csv_size(name, text)
        return pd.read_csv(io.StringIO(text))
    except UserError:
        raise
    except UnicodeDecodeError:
        raise UserError(f"{name} is not UTF-8 text; upload a CSV (or a .parquet file)") from None
    except Exception as e:  # pandas/pyarrow raise many types on malformed input
        first = str(e).splitlines()[0] if str(e) else type(e).__name__
        raise UserError(f"{name} could not be parsed as a table ({first}); upload a valid CSV/Parquet") from None


def _check_shape(name: str, rows: int, cols: int) -> None:
    if rows > MAX_UPLOAD_ROWS or cols > MAX_UPLOAD_COLUMNS or rows * cols > MAX_UPLOAD_CELLS:
        raise UserError(f"{name} holds {rows} rows x {cols} columns; the limits are {MAX_UPLOAD_ROWS} rows, "
                        f"{MAX_UPLOAD_COLUMNS} columns, {MAX_UPLOAD_CELLS} cells: {_FIX}")


def check_parquet_size(name: str, data: bytes | str) -> None:
    """Refuse a Parquet file (bytes or a path) by its footer, nothing decoded: shape, uncompressed
    size, column types (numbers, booleans, strings only: a runs table has nothing else)."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    meta = pq.ParquetFile(io.BytesIO(data) if isinstance(data, bytes) else data).metadata
    _check_shape(name, meta.num_rows, meta.num_columns)
    decoded = sum(meta.row_group(i).total_byte_size for i in range(meta.num_row_groups))
    if decoded > MAX_DECODED_BYTES:
        raise UserError(f"{name} decodes to {decoded / 2**20:.0f} MiB (limit {MAX_DECODED_BYTES // 2**20} MiB); {_FIX}")
    for f in meta.schema.to_arrow_schema():
        t = pa.types
        if not (t.is_integer(f.type) or t.is_floating(f.type) or t.is_boolean(f.type) or t.is_string(f.type)
                or t.is_large_string(f.type) or t.is_null(f.type)
                or (t.is_dictionary(f.type) and t.is_string(f.type.value_type))):
            raise UserError(f"{name}: column {f.name!r} has type {f.type}; a runs table holds numbers and "
                            "strings only (write dates and nested values as text)")


def _check_csv_size(name: str, text: str) -> None:
    """Refuse a CSV by its line count and header field count before pandas builds anything."""
    header = text.split("\n", 1)[0]
    _check_shape(name, text.count("\n"), header.count(",") + 1)


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
