"""Hostile or careless artefacts (issue 18): every file other than plan.yaml is read through its
dataclass with a schema (planner/schema.py), and the dashboard degrades per study.

Each case is a file a user could hand us: hparams.yaml (planner.hparams.HParams), fit.json
(planner.fit_result.FitResult / planner.scaling_law.ScalingLaw), a data folder's meta.json and
token files (proxy_train.data.TokenData), a runs upload (app/upload.py), and malformed study files
seen by the dashboard (Streamlit AppTest). Through the CLI: exit 2, one ``error:`` line naming the
field, nothing written; through the API: a UserError; on the dashboard: an error box naming the
file on that study's view only, no exception, the other studies untouched.
"""
from __future__ import annotations

import io
import json
import shutil
import time
from pathlib import Path

import numpy as np
import pytest

from planner.errors import UserError
from scaleplan.cli import main

GOOD_HPARAMS = ("parameterization: mup\nbase_width: 32\nbase_depth: 1\nbase_head_dim: 16\nlr: 0.0078\n"
                "init_std: 0.02\n")
# (id, keys replacing those of GOOD_HPARAMS, the field the error must name)
HPARAMS_CASES = [
    ("head-dim-text", {"base_head_dim": "abc"}, "base_head_dim"),
    ("betas-number", {"betas": 5}, "betas"),
    ("betas-text", {"betas": ["a", 0.95]}, "betas"),
    ("warmup-text", {"warmup_frac": "abc"}, "warmup_frac"),
    ("readout-zero-init-no", {"readout_zero_init": "no"}, "readout_zero_init"),  # 'no' quoted: a string
    ("lr-bool", {"lr": True}, "lr"),
    ("width-float", {"base_width": 32.5}, "base_width"),
    ("vocab-1e12", {"vocab_size": 1e12}, "vocab_size"),
    ("vocab-huge-int", {"vocab_size": 10**13}, "vocab_size"),
    ("depth-negative", {"base_depth": -1}, "base_depth"),
    ("source-nested", {"source": {"study": ["x"]}}, "source"),
]
BASE_FIT = {"E": 1.8172, "A": 482.01, "B": 2085.43, "alpha": 0.3478, "beta": 0.3658}  # Besiroglu et al. 2024 eq. 4
FIT_CASES = [
    ("E-bool", {"E": True}, "E"),
    ("objective-text", {"objective": "abc"}, "objective"),
    ("samples-text", {"bootstrap": {"n": 1, "samples": [["a", 1, 1, 0.3, 0.3]]}}, "samples"),
    ("samples-bool", {"bootstrap": {"n": 1, "samples": [[True, 1, 1, 0.3, 0.3]]}}, "samples"),
    ("samples-ragged", {"bootstrap": {"n": 2, "samples": [[1, 1, 1, 0.3, 0.3], [1, 2]]}}, "(k, 5)"),
    ("n-rows-float", {"n_rows": 2.5}, "n_rows"),
    ("converged-text", {"converged": "yes"}, "converged"),
    ("warnings-text", {"warnings": "oops"}, "warnings"),
    ("ci-text", {"ci": {"E": ["x", 1]}}, "ci"),
    ("at-budget-list", {"at_budget": [1, 2]}, "at_budget"),
    ("name-newline", {"name": "a\nb"}, "name"),
]


def _run(argv: list[str], capsys) -> tuple[int, str, str]:
    try:
        rc = main([str(a) for a in argv])
    except SystemExit as e:
        rc = e.code
    out, err = capsys.readouterr()
    return rc, out, err


def _one_line_exit_2(rc: int, out: str, err: str, keyword: str) -> None:
    assert "Traceback" not in out + err, err
    assert rc == 2, (rc, out, err)
    lines = [ln for ln in err.splitlines() if ln.strip()]
    assert len(lines) == 1 and lines[0].startswith("error:"), err
    assert keyword.lower() in lines[0].lower(), (keyword, lines[0])
    assert out == ""


def _tree(root: Path) -> set[str]:
    return {str(p.relative_to(root)) for p in root.rglob("*")}


@pytest.fixture(scope="module")
def ws(tmp_path_factory) -> Path:
    """A work folder: a tiny byte-level data folder, its broken copies, hparams and fit files."""
    import yaml

    from proxy_train.data import prepare_data

    w = tmp_path_factory.mktemp("hostile")
    prepare_data(w / "data", max_mb=0.05, tokenizer="bytes", val_frac=0.2, progress=False)
    (w / "hparams_ok.yaml").write_text(GOOD_HPARAMS)
    for cid, patch, _ in HPARAMS_CASES:
        (w / f"hp_{cid}.yaml").write_text(yaml.safe_dump({**yaml.safe_load(GOOD_HPARAMS), **patch}))
    for cid, patch, _ in FIT_CASES:
        (w / f"fit_{cid}.json").write_text(json.dumps({**BASE_FIT, **patch}))
    # alpha = beta = 0.001 with A != B: G = (alpha A / (beta B))^(1/(alpha+beta)) = (A/B)^500 overflows
    (w / "fit_tiny_exponents.json").write_text(json.dumps({"E": 1.7, "A": 1000.0, "B": 1.0, "alpha": 0.001,
                                                           "beta": 0.001}))
    meta = json.loads((w / "data" / "meta.json").read_text())

    def bad_data(name: str, meta_patch: dict, train: bytes | None = None) -> None:
        d = w / name
        shutil.copytree(w / "data", d)
        (d / "meta.json").write_text(json.dumps({**meta, **meta_patch}))
        if train is not None:
            (d / "train.bin").write_bytes(train)

    bad_data("data_vocab_text", {"vocab_size": "320"})
    bad_data("data_vocab_1e12", {"vocab_size": 1e12})
    bad_data("data_vocab_huge_int", {"vocab_size": 10**12})
    bad_data("data_negative_count", {"val_tokens": -5})
    bad_data("data_empty_train", {"train_tokens": 0}, train=b"")
    ids = np.fromfile(w / "data" / "train.bin", dtype=meta["dtype"]).copy()
    ids[len(ids) // 2] = meta["vocab_size"] + 7  # one id beyond the model's vocab
    bad_data("data_id_over_vocab", {}, train=ids.tobytes())
    return w


# ------------------------------------------------------------------------------ hparams.yaml
@pytest.mark.parametrize("cid, patch, field", HPARAMS_CASES, ids=[c[0] for c in HPARAMS_CASES])
def test_hparams_wrong_types_are_refused(cid, patch, field):
    import yaml

    from planner.hparams import HParams

    with pytest.raises(UserError, match=field):
        HParams.from_dict({**yaml.safe_load(GOOD_HPARAMS), **patch})


def test_hparams_readout_no_is_not_true(ws):
    """YAML 1.1 reads a bare `no` as false (a bool, accepted); the quoted 'no' is a string: refused,
    where it used to be read as true (a non-empty string)."""
    from planner.hparams import HParams

    assert HParams.from_dict({"base_width": 32, "readout_zero_init": False}).readout_zero_init is False
    with pytest.raises(UserError, match="true or false"):
        HParams.read(ws / "hp_readout-zero-init-no.yaml")


@pytest.mark.parametrize("cid", ["head-dim-text", "betas-number", "warmup-text", "readout-zero-init-no",
                                 "vocab-1e12"])
def test_train_and_ladder_refuse_bad_hparams(ws, cid, capsys, monkeypatch):
    monkeypatch.chdir(ws)
    field = next(c[2] for c in HPARAMS_CASES if c[0] == cid)
    before = _tree(ws)
    rc, out, err = _run(["train", "--data", ws / "data", "--d-model", "32", "--n-layers", "1", "--steps", "2",
                         "--out", ws / f"run_{cid}", "--hparams", ws / f"hp_{cid}.yaml"], capsys)
    _one_line_exit_2(rc, out, err, field)
    rc, out, err = _run(["ladder", "--study", ws / f"ladder_{cid}", "--data", ws / "data",
                         "--hparams", ws / f"hp_{cid}.yaml"], capsys)
    _one_line_exit_2(rc, out, err, field)
    assert _tree(ws) == before


# ------------------------------------------------------------------------------ fit.json
@pytest.mark.parametrize("cid, patch, field", FIT_CASES, ids=[c[0] for c in FIT_CASES])
def test_fit_json_wrong_types_are_refused(cid, patch, field):
    from planner.fit_result import FitResult

    with pytest.raises(UserError) as exc:
        FitResult.from_dict({**BASE_FIT, **patch})
    assert field in str(exc.value), str(exc.value)


def test_fit_json_round_trip_keeps_null_samples():
    """A NaN refit is written as null (planner.io._jsonable) and read back as NaN, not refused."""
    from planner.fit_result import FitResult

    d = {**BASE_FIT, "bootstrap": {"n": 2, "samples": [[1.8, 480, 2000, 0.34, 0.36], [None, 1, 1, 0.3, 0.3]]}}
    law = FitResult.from_dict(d).law
    assert law.samples.shape == (2, 5) and np.isnan(law.samples[1, 0])


@pytest.mark.parametrize("argv, keyword", [
    (["optimal", "--law", "{W}/fit_tiny_exponents.json", "--flops", "1e22"], "floating-point range"),
    (["optimal", "--law", "{W}/fit_tiny_exponents.json", "--target-loss", "2.0"], "floating-point range"),
    (["optimal", "--law", "hoffmann2022", "--target-loss", "1e300"], "--target-loss"),  # beyond the CLI's range
    (["optimal", "--law", "{W}/fit_E-bool.json", "--flops", "1e22"], ".E must be a number"),
    (["optimal", "--law", "{W}/fit_objective-text.json", "--flops", "1e22"], "objective"),
    (["optimal", "--law", "{W}/fit_samples-text.json", "--flops", "1e22"], "samples"),
], ids=["tiny-exponents-flops", "tiny-exponents-loss", "target-loss-1e300", "E-bool", "objective-text",
        "samples-text"])
def test_optimal_refuses_bad_laws(ws, argv, keyword, capsys, monkeypatch):
    monkeypatch.chdir(ws)
    before = _tree(ws)
    rc, out, err = _run([a.replace("{W}", str(ws)) for a in argv], capsys)
    _one_line_exit_2(rc, out, err, keyword)
    assert _tree(ws) == before


def test_overflow_guard_keeps_sane_laws_exact():
    """The guard changes nothing for a usable law: Hoffmann et al. 2022's closed form G (C/6)^a."""
    from planner.laws import load_law

    law = load_law("hoffmann2022")
    a = law.optimal(1e22)
    G = (law.alpha * law.A / (law.beta * law.B)) ** (1 / (law.alpha + law.beta))
    assert a.N == pytest.approx(G * (1e22 / 6) ** (law.beta / (law.alpha + law.beta)), rel=1e-12)


# ------------------------------------------------------------------------------ data folder
DATA_CASES = [("data_vocab_text", "vocab_size"), ("data_vocab_1e12", "vocab_size"),
              ("data_vocab_huge_int", "vocab_size"), ("data_negative_count", "val_tokens"),
              ("data_empty_train", "no tokens"), ("data_id_over_vocab", "token id")]


@pytest.mark.parametrize("folder, keyword", DATA_CASES, ids=[c[0] for c in DATA_CASES])
def test_bad_data_folder_is_refused(ws, folder, keyword, capsys, monkeypatch):
    from proxy_train.data import TokenData

    with pytest.raises(UserError, match=keyword):
        TokenData(ws / folder)
    monkeypatch.chdir(ws)
    before = _tree(ws)
    rc, out, err = _run(["train", "--data", ws / folder, "--d-model", "32", "--n-layers", "1", "--steps", "2",
                         "--out", ws / f"run_{folder}"], capsys)
    _one_line_exit_2(rc, out, err, keyword)
    assert _tree(ws) == before


def test_good_data_folder_opens(ws):
    from proxy_train.data import TokenData

    td = TokenData(ws / "data")
    assert len(td.train) > 0 and int(td.train.max()) < td.vocab_size


def test_sampled_id_check_on_large_files(monkeypatch):
    """Above ID_CHECK_EXACT tokens the max id is taken over evenly spaced chunks (documented as a
    sampled check): an id inside a sampled chunk is found, the first and last chunks are read."""
    from proxy_train import data

    monkeypatch.setattr(data, "ID_CHECK_EXACT", 1000)
    monkeypatch.setattr(data, "ID_CHUNK", 10)
    monkeypatch.setattr(data, "ID_SAMPLE_CHUNKS", 4)
    arr = np.zeros(10_000, dtype=np.uint16)
    arr[-1] = 999
    assert data._max_id(arr) == 999
    arr[5000] = 60000  # between chunks: the sampled check does not see it (as documented)
    assert data._max_id(arr) == 999


# ------------------------------------------------------------------------------ uploads
def _parquet(df) -> bytes:
    b = io.BytesIO()
    df.to_parquet(b, compression="zstd")
    return b.getvalue()


def test_parquet_bomb_is_refused_from_metadata():
    """20M rows of zeros compress to ~170 KB; refused from the footer before anything is decoded."""
    import pandas as pd

    from app.upload import runs_from_upload

    data = _parquet(pd.DataFrame({"total_params": np.zeros(20_000_000), "tokens": np.zeros(20_000_000, "i1"),
                                  "final_val_loss": np.zeros(20_000_000, "i1")}))
    assert len(data) < 300_000
    t0 = time.monotonic()
    with pytest.raises(UserError, match="20000000 rows"):
        runs_from_upload("runs.parquet", data)
    assert time.monotonic() - t0 < 1.0


@pytest.mark.parametrize("name, make, keyword", [
    ("datetime.parquet", lambda pd: _parquet(pd.DataFrame({"total_params": pd.to_datetime(["2020-01-01"] * 9),
                                                           "tokens": [1.0] * 9, "final_val_loss": [3.0] * 9})),
     "timestamp"),
    ("nested.parquet", lambda pd: _parquet(pd.DataFrame({"total_params": [[1, 2]] * 9, "tokens": [1.0] * 9,
                                                         "final_val_loss": [3.0] * 9})), "list"),
    ("wide.csv", lambda pd: ("a," * 100_000 + "a\n" + "1," * 100_000 + "1\n").encode(), "100001 columns"),
    ("tall.csv", lambda pd: b"total_params,tokens,final_val_loss\n" + b"1,2,3\n" * 300_000, "300001 rows"),
], ids=["datetime-column", "nested-column", "wide-csv", "tall-csv"])
def test_upload_shape_and_types_are_bounded(name, make, keyword):
    import pandas as pd

    from app.upload import runs_from_upload

    with pytest.raises(UserError, match=keyword):
        runs_from_upload(name, make(pd))


# ------------------------------------------------------------------------------ dashboard
def test_streamlit_never_shows_error_details():
    from app.server import streamlit_command

    argv = streamlit_command(8501, "127.0.0.1", Path("studies"))
    assert argv[argv.index("--client.showErrorDetails") + 1] == "none"


DASH_CASES = [  # (study, page, text the error box must contain (after the file path))
    ("fit_list", "views/fit.py", "fit.json must be a JSON object"),
    ("objective_text", "views/fit.py", "objective must be a number"),
    ("tiny_exponents", "views/fit.py", "no finite allocation"),
    ("fit_symlink_out", "views/fit.py", "outside the studies folder"),
    ("fit_symlink_out", "views/plan.py", "outside the studies folder"),
    ("coord_list", "views/coord.py", "coord_check.json must be a JSON object"),
    ("transfer_list", "views/sweeps.py", "transfer.json must be a JSON object"),
    ("hparams_bad", "views/sweeps.py", "betas must be a list"),
    ("runs_bomb", "views/fit.py", "20000000 rows"),
]


@pytest.fixture(scope="module")
def hostile_studies(tmp_path_factory) -> Path:
    from app_fixtures import make_study

    tmp = tmp_path_factory.mktemp("dash")
    root = tmp / "studies"
    make_study(root, "demo")

    def fit_patch(patch):
        return lambda s: (s / "fit.json").write_text(json.dumps({**json.loads((s / "fit.json").read_text()),
                                                                 **patch}))

    (tmp / "outside.json").write_text((root / "demo" / "fit.json").read_text())

    def symlink_out(s):
        (s / "fit.json").unlink()
        (s / "fit.json").symlink_to(tmp / "outside.json")

    def runs_bomb(s):  # a study's own runs.parquet meets the upload's decoded-size bounds
        import pandas as pd

        (s / "runs.csv").unlink()
        (s / "runs.parquet").write_bytes(_parquet(pd.DataFrame({"total_params": np.zeros(20_000_000)})))

    breakers = {
        "fit_list": lambda s: (s / "fit.json").write_text("[1, 2]"),
        "objective_text": fit_patch({"objective": "abc"}),
        "tiny_exponents": fit_patch({"A": 1000.0, "B": 1.0, "alpha": 0.001, "beta": 0.001, "bootstrap": {}}),
        "fit_symlink_out": symlink_out,
        "coord_list": lambda s: (s / "coord_mup" / "coord_check.json").write_text("[1]"),
        "transfer_list": lambda s: (s / "transfer.json").write_text("[1]"),
        "hparams_bad": lambda s: (s / "hparams.yaml").write_text("base_width: 128\nbetas: 5\n"),
        "runs_bomb": runs_bomb,
    }
    for name, breaker in breakers.items():
        breaker(make_study(root, name))
    return root


PAGES = ["views/plan.py", "views/fit.py", "views/sweeps.py", "views/coord.py"]


def _visit(study: str) -> dict[str, list[str]]:
    """Error boxes of every page with ``study`` chosen; no page may raise."""
    from streamlit.testing.v1 import AppTest

    from conftest import ROOT

    at = AppTest.from_file(str(ROOT / "app" / "main.py"), default_timeout=120).run()
    at.sidebar.selectbox[0].set_value(study).run()
    errors = {}
    for page in PAGES:
        at.switch_page(page).run()
        assert not at.exception, (study, page, [e.value for e in at.exception])
        errors[page] = [e.value for e in at.error]
    return errors


def test_dashboard_degrades_per_study(hostile_studies, monkeypatch):
    pytest.importorskip("streamlit")
    from streamlit import config

    monkeypatch.setenv("SCALEPLAN_STUDIES", str(hostile_studies))
    demo = _visit("demo")
    assert config.get_option("client.showErrorDetails") == "none"  # set by app/main.py itself
    # the healthy study sees none of its neighbours' broken files (only the SP coord check's FAIL)
    assert all(not errs for page, errs in demo.items() if page != "views/coord.py"), demo
    assert all(e.endswith(": FAIL") for e in demo["views/coord.py"]), demo["views/coord.py"]
    for study in sorted({c[0] for c in DASH_CASES}):
        errors = _visit(study)
        for _, page, text in (c for c in DASH_CASES if c[0] == study):
            hits = [e for e in errors[page] if text in e]
            assert hits, (study, page, errors[page])
            assert all(f"{study}/" in e or f"{study}\\" in e for e in hits), hits  # names the file


# ---------------------------------------------------------------------------------- coord_check.json, study.yaml
@pytest.fixture(scope="module")
def coord_json(tmp_path_factory) -> Path:
    """A real coord_check.json (two widths, two steps, one seed: seconds)."""
    import torch

    from proxy_train.coord_check import coord_check

    torch.set_num_threads(1)
    out = tmp_path_factory.mktemp("cc")
    coord_check("mup", [32, 64], 2, n_layers=1, head_dim=16, seeds=1, out=out)
    return out / "coord_check.json"


def test_coord_check_json_reads_back(coord_json):
    from proxy_train.coord_check import read_result

    r = read_result(coord_json)
    assert r["widths"] == [32, 64] and isinstance(r["passed"], bool) and r["l1"]


@pytest.mark.parametrize("cid, edit, keyword", [
    ("list", lambda d: [d], "mapping"),
    ("passed-text", lambda d: {**d, "passed": "yes"}, "passed"),
    ("slope-nan", lambda d: {**d, "worst": {**d["worst"], "slope": float("nan")}}, "slope"),
    ("widths-negative", lambda d: {**d, "widths": [-32, 64]}, "widths"),
    ("l1-row-text", lambda d: {**d, "l1": [{**d["l1"][0], "l1": "big"}]}, "l1"),
    ("unknown-key", lambda d: {**d, "evil": 1}, "evil"),
    ("param-unknown", lambda d: {**d, "param": "ntk"}, "param"),
])
def test_coord_check_json_wrong_types_are_refused(coord_json, tmp_path, cid, edit, keyword):
    from proxy_train.coord_check import read_result

    d = json.loads(coord_json.read_text())
    bad = tmp_path / "coord_check.json"
    bad.write_text(json.dumps(edit(d)))  # json.dumps writes NaN for nan, as a careless editor might
    with pytest.raises(UserError) as e:
        read_result(bad)
    assert keyword in str(e.value) and "\n" not in str(e.value)


def test_coord_check_json_deep_nesting_is_refused(tmp_path):
    from proxy_train.coord_check import read_result

    (tmp_path / "c.json").write_text("[" * 100_000 + "]" * 100_000)
    with pytest.raises(UserError, match="nested too deeply"):
        read_result(tmp_path / "c.json")


@pytest.mark.parametrize("key, value, keyword", [
    ("widths", "abc", "widths"), ("widths", [10**40], "proxy config"), ("steps", -5, "steps"),
    ("sampler", "evil", "sampler"), ("seed", True, "seed"), ("fixed", {"bogus": 1}, "bogus"),
    ("fixed", [1], "fixed"), ("data", "a\nb", "one line"),
])
def test_study_spec_is_schema_checked(key, value, keyword):
    from proxy_train.study import StudySpec

    good = {"data": "/d", "vocab_size": 320, "widths": [32], "total_steps": 2, "steps": 2, "head_dim": 16,
            "n_layers": 1, "batch": 2, "seq_len": 16}
    assert StudySpec.from_dict(good).widths == [32]
    with pytest.raises(UserError) as e:
        StudySpec.from_dict({**good, key: value})
    assert keyword in str(e.value) and "\n" not in str(e.value)


# ---------------------------------------------------------------------------------- transfer.json (issue 18)
REAL_TRANSFER = Path(__file__).resolve().parents[1] / "studies" / "transfer" / "transfer.json"


def _analysed_transfer() -> dict:
    """transfer.json laid out by the library's own analysis (proxy_train.transfer.analyze), with a meta."""
    from proxy_train.transfer import analyze

    recs = [{"param": p, "width": w, "log2_lr": float(x), "loss": 3 + 0.05 * (x + 7) ** 2 - 0.01 * w / 64}
            for p in ("mup", "sp") for w in (64, 128) for x in range(-10, -4)]
    recs[0]["loss"] = None  # a diverged run
    return {**analyze(recs), "meta": {"scaleplan_version": "0", "corpus_sha256": "ab" * 32,
                                      "setting": {"steps": 2, "tokens": None}}, "n_runs": len(recs), "wall_s": 1.5}


def test_transfer_json_reads_back(tmp_path):
    from proxy_train.transfer import read_result

    assert read_result(REAL_TRANSFER)["params"]["mup"]["widths"] == [64, 128, 256, 512]  # the stored real check
    (tmp_path / "t.json").write_text(json.dumps(_analysed_transfer()))
    r = read_result(tmp_path / "t.json")
    assert r["params"]["sp"]["optima"]["64"]["curve"] and r["n_runs"] == 24


@pytest.mark.parametrize("cid, edit, keyword", [
    ("list", lambda d: [d], "mapping"),
    ("param-unknown", lambda d: {**d, "params": {"ntk": d["params"]["mup"]}}, "ntk"),
    ("drift-text", lambda d: {**d, "params": {"mup": {**d["params"]["mup"], "drift_octaves": "abc"}}},
     "drift_octaves"),
    ("drift-nan", lambda d: {**d, "params": {"mup": {**d["params"]["mup"], "drift_octaves": float("nan")}}},
     "drift_octaves"),
    ("widths-negative", lambda d: {**d, "params": {"mup": {**d["params"]["mup"], "widths": [-64]}}}, "widths"),
    ("optima-key-not-width", lambda d: {**d, "params": {"mup": {**d["params"]["mup"], "optima": {
        "evil": d["params"]["mup"]["optima"]["64"]}}}}, "not a width"),
    ("curve-key-not-lr", lambda d: {**d, "params": {"mup": {**d["params"]["mup"], "optima": {
        "64": {**d["params"]["mup"]["optima"]["64"], "curve": {"x": 1.0}}}}}}, "not a log2 LR"),
    ("goals-missing", lambda d: {k: v for k, v in d.items() if k != "goals"}, "goals"),
    ("mup-ok-text", lambda d: {**d, "goals": {**d["goals"], "mup_ok": "yes"}}, "mup_ok"),
    ("meta-command-multiline", lambda d: {**d, "meta": {**d["meta"], "command": "a\nrm -rf /"}}, "command"),
    ("unknown-key", lambda d: {**d, "evil": 1}, "evil"),
    ("n-runs-bigint-text", lambda d: {**d, "n_runs": "9" * 40}, "n_runs"),
])
def test_transfer_json_wrong_types_are_refused(tmp_path, cid, edit, keyword):
    from proxy_train.transfer import read_result

    bad = tmp_path / "transfer.json"
    bad.write_text(json.dumps(edit(_analysed_transfer())))
    with pytest.raises(UserError) as e:
        read_result(bad)
    assert keyword in str(e.value) and "\n" not in str(e.value) and str(bad) in str(e.value)


def test_transfer_check_reanalysis_of_a_folder_without_a_check(tmp_path, capsys):
    """`transfer-check --out DIR --record-into H` without --data, DIR holding only a (damaged) transfer.json and
    no study: one line, exit 2, nothing written."""
    from scaleplan.cli import main

    (tmp_path / "tc").mkdir()
    (tmp_path / "tc" / "transfer.json").write_text("[1]")
    rc = main(["transfer-check", "--out", str(tmp_path / "tc"), "--record-into", str(tmp_path / "hp.yaml")])
    err = capsys.readouterr().err
    assert rc == 2 and "holds no transfer check" in err and len(err.strip().splitlines()) == 1
    assert sorted(p.name for p in tmp_path.rglob("*")) == ["tc", "transfer.json"]


@pytest.fixture(scope="module")
def field_studies(tmp_path_factory) -> Path:
    """Studies whose coord_check.json or transfer.json is a JSON object with one wrong-typed field."""
    from app_fixtures import make_study

    root = tmp_path_factory.mktemp("dash_fields") / "studies"
    s = make_study(root, "coord_field")
    f = s / "coord_mup" / "coord_check.json"
    f.write_text(json.dumps({**json.loads(f.read_text()), "widths": "abc"}))
    s = make_study(root, "transfer_field")
    d = json.loads((s / "transfer.json").read_text())
    d["params"]["mup"]["drift_octaves"] = "abc"
    (s / "transfer.json").write_text(json.dumps(d))
    return root


@pytest.mark.parametrize("study, page, text", [
    ("coord_field", "views/coord.py", "widths"),
    ("transfer_field", "views/sweeps.py", "drift_octaves"),
])
def test_dashboard_reads_results_through_the_schema(field_studies, monkeypatch, study, page, text):
    """The coordinate-check and μTransfer views read their files with the library's checked readers
    (proxy_train.coord_check.read_result, proxy_train.transfer.read_result): a wrong-typed field is an
    error box naming the file and the field, the rest of the page still renders."""
    pytest.importorskip("streamlit")
    from streamlit.testing.v1 import AppTest

    from conftest import ROOT

    monkeypatch.setenv("SCALEPLAN_STUDIES", str(field_studies))
    at = AppTest.from_file(str(ROOT / "app" / "main.py"), default_timeout=120).run()
    at.sidebar.selectbox[0].set_value(study).run()
    at.switch_page(page).run()
    assert not at.exception, [e.value for e in at.exception]
    hits = [e.value for e in at.error if text in e.value]
    assert hits and all(f"{study}/" in h for h in hits), [e.value for e in at.error]
