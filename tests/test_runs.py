"""planner.runs: loading and validating the runs table."""
import numpy as np
import pandas as pd
import pytest

from planner.errors import UserError
from planner.runs import load_runs


def _table(n=8):
    N = np.geomspace(1e6, 1e8, n)
    return pd.DataFrame({"params": N, "tokens": 20 * N, "val": 3.0 + 1e3 / N ** 0.3, "status": "ok"})


def test_csv_and_parquet_round_trip(tmp_path):
    df = _table()
    df.to_csv(tmp_path / "r.csv", index=False)
    df.to_parquet(tmp_path / "r.parquet")
    for p in ("r.csv", "r.parquet"):
        out = load_runs(tmp_path / p, n_col="params", loss_col="val", d_col="tokens")
        assert np.allclose(out["C"], 6 * df["params"] * df["tokens"])
        assert list(out.columns[:4]) == ["params", "tokens", "val", "status"]  # originals kept


def test_d_from_flops():
    df = _table().assign(flops=lambda d: 6 * d.params * d.tokens)
    out = load_runs(df, n_col="params", loss_col="val", flops_col="flops")
    assert np.allclose(out["D"], df["tokens"])
    assert out.attrs["d_derived"]


def test_status_rows_dropped_and_reported():
    df = _table(10)
    df.loc[[2, 5], "status"] = "diverged"
    out = load_runs(df, n_col="params", loss_col="val", d_col="tokens")
    assert len(out) == 8 and out.attrs["n_dropped_status"] == 2
    assert out.attrs["dropped_status_rows"] == [3, 6]


@pytest.mark.parametrize("mutate,match", [
    (lambda d: d.assign(val=d.val.where(d.index != 3, np.nan)), r"'val'.*rows 4"),
    (lambda d: d.assign(params=d.params.where(d.index != 0, -1.0)), r"'params'.*> 0.*rows 1"),
    (lambda d: d.assign(tokens=d.tokens.astype(object).where(d.index != 2, "abc")), r"'tokens'.*non-numeric.*rows 3"),
    (lambda d: d.drop(columns="val"), r"lacks column.*'val'"),
    (lambda d: d.iloc[:5], r"5 usable rows.*at least 7"),
    (lambda d: d.iloc[:0], r"no rows"),
    (lambda d: d.assign(val=d.val.where(d.index != 1, np.inf)), r"'val'.*NaN/inf.*rows 2"),
])
def test_bad_tables(mutate, match):
    with pytest.raises(UserError, match=match):
        load_runs(mutate(_table()), n_col="params", loss_col="val", d_col="tokens")


def test_exactly_one_of_d_and_flops():
    with pytest.raises(UserError, match="exactly one"):
        load_runs(_table(), n_col="params", loss_col="val")
    with pytest.raises(UserError, match="exactly one"):
        load_runs(_table(), n_col="params", loss_col="val", d_col="tokens", flops_col="tokens")


def test_bad_files(tmp_path):
    (tmp_path / "empty.csv").write_text("")
    (tmp_path / "x.json").write_text("{}")
    (tmp_path / "bin.parquet").write_bytes(b"not parquet")
    for name, match in [("empty.csv", "empty"), ("x.json", "extension"), ("bin.parquet", "Parquet"),
                        ("missing.csv", "not found")]:
        with pytest.raises(UserError, match=match):
            load_runs(tmp_path / name, n_col="params", loss_col="val", d_col="tokens")
