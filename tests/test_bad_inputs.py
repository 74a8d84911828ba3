"""Bad input, everywhere: every entry point answers a mistake with one line and exit status 2.

Table-driven. Each CLI row runs ``scaleplan ARGS`` in-process (``planner.cli.main``, fast) in a
shared work folder of prepared bad files and asserts: exit 2; stderr is exactly one line starting
with ``error:`` that names the problem (a keyword); no traceback; nothing on stdout; and no file
or folder appeared anywhere in the work folder (no partial outputs). A handful of rows also run
through the real entry point in a subprocess. Python API rows assert a :class:`UserError` with a
helpful message; dashboard rows call the upload validator (app/upload.py). Last, exported launch
scripts are run with a hostile plan (paths holding quotes, ``$()`` and ``;``) to prove that
nothing in them is executed and the values arrive intact.
"""
from __future__ import annotations

import contextlib
import io
import os
import shutil
import stat
import subprocess
import textwrap
import time
from pathlib import Path

import pytest

from conftest import run_cli
from scaleplan.cli import main
from planner.errors import UserError

RUNS_COLS = ["--n-col", "total_params", "--d-col", "tokens", "--loss-col", "final_val_loss"]
GOOD_RUNS = "run_id,total_params,tokens,final_val_loss,status\n" + "".join(
    f"r{i},{2e7 * (i + 1):.0f},{4e8 * (i + 1):.0f},{3.2 - 0.1 * i:.3f},ok\n" for i in range(9))


# ---------------------------------------------------------------------------------- fixtures
@pytest.fixture(scope="module")
def ws(tmp_path_factory) -> Path:
    """A work folder holding a regular file, bad tables/configs, a tiny data folder, a plan and studies."""
    import torch

    torch.set_num_threads(1)
    w = tmp_path_factory.mktemp("bad")
    (w / "afile").write_text("a regular file, not a folder\n")
    (w / "good.csv").write_text(GOOD_RUNS)
    (w / "empty.csv").write_text("")
    (w / "header_only.csv").write_text("run_id,total_params,tokens,final_val_loss,status\n")
    (w / "nan.csv").write_text(GOOD_RUNS.replace("3.100,", "nan,"))
    (w / "inf.csv").write_text(GOOD_RUNS.replace("3.100,", "inf,"))
    (w / "negative.csv").write_text(GOOD_RUNS.replace("r1,40000000,", "r1,-40000000,"))
    (w / "text.csv").write_text(GOOD_RUNS.replace("3.100,", "three,"))
    (w / "binary.csv").write_bytes(b"\xff\xfe\x00\x81garbage\x80")
    (w / "unterminated.csv").write_text('total_params,tokens,final_val_loss\n1,2,3\n"open,4,5\n')
    (w / "all_failed.csv").write_text(GOOD_RUNS.replace(",ok\n", ",diverged\n"))
    (w / "runs.xlsx").write_text("not a spreadsheet")
    (w / "fit_broken.json").write_text('{"E": 1.7, "A":')
    (w / "fit_list.json").write_text("[1, 2, 3]")
    (w / "fit_partial.json").write_text('{"E": 1.7, "A": 400}')
    (w / "plan_garbage.yaml").write_text("budget: [unclosed\n  - : :\n")
    (w / "plan_list.yaml").write_text("- 1\n- 2\n")
    (w / "plan_partial.yaml").write_text("budget: {flops: 1.0e+20}\n")
    (w / "hparams_garbage.yaml").write_text("lr: [0.01,\n")
    (w / "hparams.yaml").write_text("parameterization: mup\nbase_width: 32\nbase_depth: 1\nbase_head_dim: 16\n"
                                    "lr: 0.0078\ninit_std: 0.02\n")
    (w / "hparams_lr_huge.yaml").write_text("parameterization: mup\nbase_width: 32\nbase_depth: 1\nbase_head_dim: 16\n"
                                            "lr: 1.0e+300\ninit_std: 0.02\n")
    (w / "hparams_negative.yaml").write_text("parameterization: mup\nbase_width: -3\nlr: 0.01\n")
    (w / "hf_broken.json").write_text("{")
    (w / "hf_empty.json").write_text("{}")
    (w / "data_no_meta").mkdir()
    (w / "data_bad_meta").mkdir()
    (w / "data_bad_meta" / "meta.json").write_text("{oops")

    from planner.plan import make_plan
    from proxy_train.data import prepare_data

    prepare_data(w / "data", max_mb=0.05, tokenizer="bytes", val_frac=0.2, progress=False)
    make_plan(1e21).write(w / "plan.yaml")
    # a real one-trial study, then corrupted copies of it
    with contextlib.redirect_stdout(io.StringIO()), contextlib.redirect_stderr(io.StringIO()):
        rc = main(["sweep", "--study", str(w / "study"), "--data", str(w / "data"), "--trials", "1", "--steps", "2",
                   "--widths", "32", "--n-layers", "1", "--batch", "2", "--seq-len", "16", "--head-dim", "16",
                   "--pruner", "none", "--sampler", "random"])
    assert rc == 0
    journal = (w / "study" / "optuna.journal").read_bytes()
    lines = journal.splitlines(keepends=True)
    assert len(lines) >= 3
    for name, content in [("study_truncated", journal[:12]),
                          ("study_bad_record", lines[0] + b'{"op_code": 4, "worker_id": "x", tr\n' + b"".join(lines[1:])),
                          ("study_no_journal", None)]:
        shutil.copytree(w / "study", w / name, ignore=shutil.ignore_patterns("runs", "logs", "*.lock"))
        if content is None:
            (w / name / "optuna.journal").unlink()
        else:
            (w / name / "optuna.journal").write_bytes(content)
    shutil.copytree(w / "study", w / "study_bad_yaml", ignore=shutil.ignore_patterns("runs", "logs", "*.lock"))
    (w / "study_bad_yaml" / "study.yaml").write_text("spec: [\n  ::: garbage\n")
    # issue 18 leftovers: a study.yaml with a wrong type, a data folder whose ids exceed its vocab
    import yaml

    shutil.copytree(w / "study", w / "study_bad_widths", ignore=shutil.ignore_patterns("runs", "logs", "*.lock"))
    meta = yaml.safe_load((w / "study" / "study.yaml").read_text())
    meta["spec"]["widths"] = "abc"
    (w / "study_bad_widths" / "study.yaml").write_text(yaml.safe_dump(meta))
    (w / "deep.jsonl").write_text("[" * 100_000 + "]" * 100_000 + "\n")
    shutil.copytree(w / "data", w / "data_bin_folder")
    (w / "data_bin_folder" / "train.bin").unlink()
    (w / "data_bin_folder" / "train.bin").mkdir()
    shutil.copytree(w / "data", w / "data_bad_ids")
    size = (w / "data_bad_ids" / "train.bin").stat().st_size
    (w / "data_bad_ids" / "train.bin").write_bytes(b"\xff" * size)
    return w


def _tree(root: Path) -> set[str]:
    return {str(p.relative_to(root)) for p in root.rglob("*")}


# ---------------------------------------------------------------------------------- CLI table
# (id, argv with {W} = the work folder, a keyword the one-line error must contain)
CLI_CASES = [
    # fit: malformed / empty / bad values / missing columns / unwritable outputs
    ("fit-empty-csv", ["fit", "{W}/empty.csv", *RUNS_COLS], "empty"),
    ("fit-header-only", ["fit", "{W}/header_only.csv", *RUNS_COLS], "no rows"),
    ("fit-nan-loss", ["fit", "{W}/nan.csv", *RUNS_COLS], "nan"),
    ("fit-inf-loss", ["fit", "{W}/inf.csv", *RUNS_COLS], "inf"),
    ("fit-negative-params", ["fit", "{W}/negative.csv", *RUNS_COLS], "> 0"),
    ("fit-non-numeric", ["fit", "{W}/text.csv", *RUNS_COLS], "non-numeric"),
    ("fit-binary-file", ["fit", "{W}/binary.csv", *RUNS_COLS], "utf-8"),
    ("fit-unterminated-quote", ["fit", "{W}/unterminated.csv", *RUNS_COLS], "not valid csv"),
    ("fit-no-ok-rows", ["fit", "{W}/all_failed.csv", *RUNS_COLS], "status"),
    ("fit-missing-column", ["fit", "{W}/good.csv", "--n-col", "params", "--d-col", "tokens",
                            "--loss-col", "final_val_loss"], "lacks column"),
    ("fit-unknown-extension", ["fit", "{W}/runs.xlsx", *RUNS_COLS], "extension"),
    ("fit-missing-file", ["fit", "{W}/nope.csv", *RUNS_COLS], "not found"),
    ("fit-negative-bootstrap", ["fit", "{W}/good.csv", *RUNS_COLS, "--bootstrap", "-3"], "bootstrap"),
    ("fit-out-under-file", ["fit", "{W}/good.csv", *RUNS_COLS, "--grid", "small", "--out", "{W}/afile/fit.json"],
     "is a file"),
    # optimal
    ("optimal-unknown-law", ["optimal", "--law", "chinchilla-2099", "--flops", "1e22"], "unknown law"),
    ("optimal-broken-fit-json", ["optimal", "--law", "{W}/fit_broken.json", "--flops", "1e22"], "not valid json"),
    ("optimal-fit-json-list", ["optimal", "--law", "{W}/fit_list.json", "--flops", "1e22"], "object"),
    ("optimal-fit-json-partial", ["optimal", "--law", "{W}/fit_partial.json", "--flops", "1e22"], "alpha"),
    ("optimal-nan-flops", ["optimal", "--flops", "nan"], "finite"),
    ("optimal-inf-flops", ["optimal", "--flops", "inf"], "finite"),
    ("optimal-loss-below-E", ["optimal", "--target-loss", "1.0"], "unreachable"),
    ("optimal-plot-under-file", ["optimal", "--flops", "1e22", "--plot", "{W}/afile/p.html"], "is a file"),
    # plan
    ("plan-budget-too-small", ["plan", "--flops", "1e3"], "budget"),
    ("plan-unknown-gpu", ["plan", "--flops", "1e22", "--gpu", "tpu9000"], "unknown gpu"),
    ("plan-unknown-preset", ["plan", "--preset", "llama-99"], "unknown preset"),
    ("plan-impossible-tp", ["plan", "--flops", "1e22", "--tp", "3"], "--tp"),
    ("plan-mfu-above-1", ["plan", "--flops", "1e22", "--mfu", "1.5"], "mfu"),
    ("plan-days-without-gpus", ["plan", "--days", "7"], "--gpus"),
    ("plan-two-budgets", ["plan", "--flops", "1e22", "--target-loss", "2.2"], "exactly one"),
    ("plan-malformed-hparams", ["plan", "--flops", "1e22", "--hparams", "{W}/hparams_garbage.yaml"], "not valid yaml"),
    ("plan-negative-base-width", ["plan", "--flops", "1e22", "--hparams", "{W}/hparams_negative.yaml"], "base_width"),
    ("plan-malformed-law", ["plan", "--flops", "1e22", "--law", "{W}/fit_broken.json"], "not valid json"),
    ("plan-out-under-file", ["plan", "--flops", "1e22", "--out", "{W}/afile/plan.yaml"], "is a file"),
    # export
    ("export-malformed-plan", ["export", "{W}/plan_garbage.yaml", "--trainer", "megatron", "--out", "{W}/e1"],
     "not valid yaml"),
    ("export-plan-is-a-list", ["export", "{W}/plan_list.yaml", "--trainer", "megatron", "--out", "{W}/e2"], "mapping"),
    ("export-plan-missing-sections", ["export", "{W}/plan_partial.yaml", "--trainer", "hf", "--out", "{W}/e3"],
     "lacks"),
    ("export-plan-not-found", ["export", "{W}/none.yaml", "--trainer", "hf", "--out", "{W}/e4"], "not found"),
    ("export-unknown-trainer", ["export", "{W}/plan.yaml", "--trainer", "deepspeed", "--out", "{W}/e5"],
     "invalid choice"),
    ("export-out-under-file", ["export", "{W}/plan.yaml", "--trainer", "megatron", "--out", "{W}/afile/x"],
     "is a file"),
    ("export-malformed-flags", ["export", "{W}/plan.yaml", "--trainer", "megatron", "--out", "{W}/e6",
                                "--flags", "{W}/hparams_garbage.yaml"], "not valid json"),
    # count / shape
    ("count-malformed-hf-config", ["count", "--hf-config", "{W}/hf_broken.json"], "not valid json"),
    ("count-empty-hf-config", ["count", "--hf-config", "{W}/hf_empty.json"], "lacks"),
    ("count-unknown-preset", ["count", "--preset", "gpt-17"], "unknown model preset"),
    ("count-heads-do-not-divide", ["count", "--layers", "2", "--d-model", "100", "--d-ffn", "256", "--heads", "3",
                                   "--vocab", "1000"], "divisible"),
    ("shape-below-embedding", ["shape", "--params", "10"], "embedding"),
    ("shape-not-a-number", ["shape", "--params", "lots"], "parameter count"),
    ("shape-inverted-aspect", ["shape", "--params", "1B", "--aspect", "300,10"], "min <= max"),
    # data prepare
    ("data-missing-corpus", ["data", "prepare", "--out", "{W}/d1", "--source", "{W}/no_corpus.txt"], "not found"),
    ("data-out-under-file", ["data", "prepare", "--out", "{W}/afile/d", "--max-mb", "0.05", "--tokenizer", "bytes"],
     "is a file"),
    ("data-val-frac-too-big", ["data", "prepare", "--out", "{W}/d2", "--val-frac", "0.9"], "val fraction"),
    # train
    ("train-no-data", ["train", "--data", "{W}/nodata", "--d-model", "32", "--n-layers", "1", "--steps", "2",
                       "--out", "{W}/r1"], "not found"),
    ("train-data-without-meta", ["train", "--data", "{W}/data_no_meta", "--d-model", "32", "--n-layers", "1",
                                 "--steps", "2", "--out", "{W}/r2"], "meta.json"),
    ("train-corrupt-meta", ["train", "--data", "{W}/data_bad_meta", "--d-model", "32", "--n-layers", "1",
                            "--steps", "2", "--out", "{W}/r3"], "not valid json"),
    ("train-heads-do-not-divide", ["train", "--data", "{W}/data", "--d-model", "30", "--n-layers", "1", "--heads",
                                   "7", "--steps", "2", "--out", "{W}/r4"], "divisible"),
    ("train-seq-longer-than-data", ["train", "--data", "{W}/data", "--d-model", "32", "--n-layers", "1", "--steps",
                                    "2", "--seq-len", "1000000", "--out", "{W}/r5"], "longer than the data"),
    ("train-malformed-hparams", ["train", "--data", "{W}/data", "--d-model", "32", "--n-layers", "1", "--steps", "2",
                                 "--out", "{W}/r6", "--hparams", "{W}/hparams_garbage.yaml"], "not valid yaml"),
    ("train-out-under-file", ["train", "--data", "{W}/data", "--d-model", "32", "--n-layers", "1", "--steps", "2",
                              "--head-dim", "16", "--out", "{W}/afile/r"], "is a file"),
    # coord-check
    ("coord-check-bad-widths", ["coord-check", "--widths", "0,-5"], "widths, each an integer"),
    ("coord-check-no-data", ["coord-check", "--data", "{W}/nodata", "--widths", "32,64", "--steps", "2"],
     "not found"),
    ("coord-check-out-under-file", ["coord-check", "--widths", "32,64", "--steps", "2", "--out", "{W}/afile/cc"],
     "is a file"),
    # sweep / sweep export
    ("sweep-no-data", ["sweep", "--study", "{W}/s1", "--data", "{W}/nodata", "--trials", "1"], "not found"),
    ("sweep-postgres-unreachable", ["sweep", "--study", "{W}/s2", "--data", "{W}/data", "--storage",
                                    "postgresql://u:secret@127.0.0.1:1/db", "--trials", "1", "--steps", "2"],
     "cannot use storage"),
    ("sweep-unknown-storage", ["sweep", "--study", "{W}/s3", "--data", "{W}/data", "--storage", "foo://bar",
                               "--trials", "1", "--steps", "2"], "unknown storage"),
    ("sweep-study-under-file", ["sweep", "--study", "{W}/afile/s", "--data", "{W}/data", "--trials", "1",
                                "--steps", "2"], "is a file"),
    ("sweep-export-garbage-study-yaml", ["sweep", "export", "--study", "{W}/study_bad_yaml"], "not valid yaml"),
    ("sweep-export-truncated-journal", ["sweep", "export", "--study", "{W}/study_truncated"], "not found in"),
    ("sweep-export-corrupt-journal-record", ["sweep", "export", "--study", "{W}/study_bad_record"], "corrupt"),
    ("sweep-export-missing-journal", ["sweep", "export", "--study", "{W}/study_no_journal"], "not found in"),
    ("sweep-export-not-a-study", ["sweep", "export", "--study", "{W}/data"], "study"),
    # transfer-check
    ("transfer-check-bad-lr-grid", ["transfer-check", "--out", "{W}/tc1", "--lrs", "a:b"], "log2 lr grid"),
    ("transfer-check-one-width", ["transfer-check", "--out", "{W}/tc2", "--widths", "64", "--data", "{W}/data"],
     "two --widths"),
    ("transfer-check-bad-param", ["transfer-check", "--out", "{W}/tc3", "--param", "ntk"], "mup, sp"),
    ("transfer-check-no-data", ["transfer-check", "--out", "{W}/tc4", "--data", "{W}/nodata", "--widths", "32,64"],
     "not found"),
    ("transfer-check-out-under-file", ["transfer-check", "--out", "{W}/afile/tc", "--data", "{W}/data",
                                       "--widths", "32,64", "--steps", "2"], "is a file"),
]
TINY_RUN = ["--d-model", "32", "--n-layers", "1", "--head-dim", "16", "--batch", "2", "--seq-len", "16", "--steps", "2"]
TINY_SWEEP = ["--widths", "32", "--trials", "1", "--steps", "2", "--n-layers", "1", "--batch", "2", "--seq-len", "16",
              "--head-dim", "16", "--pruner", "none", "--sampler", "random"]
# issue 18's hostile pass (tools/hostile_pass.py): each fix of its last failures, as a row
ISSUE18_CASES = [
    ("data-vocab-beyond-limit", ["data", "prepare", "--out", "{W}/d9", "--vocab", "1e9"], "bpe vocab"),
    ("data-out-in-proc", ["data", "prepare", "--out", "/proc/foo", "--tokenizer", "bytes"], "pseudo-filesystem"),
    ("data-max-mb-huge", ["data", "prepare", "--out", "{W}/d8", "--max-mb", "1e300"], "--max-mb"),
    ("train-threads-beyond-cores", ["train", "--data", "{W}/data", *TINY_RUN, "--threads", "100000", "--out",
                                    "{W}/r7"], "usable cpu cores"),
    ("train-lr-huge", ["train", "--data", "{W}/data", *TINY_RUN, "--lr", "1e300", "--out", "{W}/r8"], "--lr"),
    ("train-base-width-huge", ["train", "--data", "{W}/data", *TINY_RUN, "--base-width", "1e30", "--out", "{W}/r9"],
     "--base-width"),
    ("train-steps-huge", ["train", "--data", "{W}/data", *TINY_RUN[:-2], "--steps", "1e300", "--out", "{W}/r10"],
     "--steps"),
    ("train-seed-negative", ["train", "--data", "{W}/data", *TINY_RUN, "--seed", "-1", "--out", "{W}/r11"], "seed"),
    ("train-into-study-folder", ["train", "--data", "{W}/data", *TINY_RUN, "--out", "{W}/study"], "study folder"),
    ("train-beyond-memory", ["train", "--data", "{W}/data", "--d-model", "65536", "--n-layers", "512", "--head-dim",
                             "128", "--batch", "2", "--seq-len", "16", "--steps", "2", "--out", "{W}/r12"], "memory"),
    ("train-ids-above-vocab", ["train", "--data", "{W}/data_bad_ids", *TINY_RUN, "--out", "{W}/r13"], "token id"),
    ("train-hparams-lr-huge", ["train", "--data", "{W}/data", *TINY_RUN, "--out", "{W}/r14", "--hparams",
                               "{W}/hparams_lr_huge.yaml"], "plausible limit"),
    ("coord-check-width-million", ["coord-check", "--widths", "32,1000000", "--steps", "2"], "widths"),
    ("coord-check-odd-head-dim", ["coord-check", "--widths", "30,60", "--head-dim", "15", "--steps", "2"], "even"),
    ("coord-check-beyond-memory", ["coord-check", "--widths", "32,16384", "--n-layers", "64", "--steps", "2",
                                   "--seeds", "1"], "memory"),
    ("sweep-trials-huge", ["sweep", "--study", "{W}/s5", "--data", "{W}/data", *TINY_SWEEP[:2], "--trials", "1e300"],
     "--trials"),
    ("sweep-into-data-folder", ["sweep", "--study", "{W}/data", "--data", "{W}/data", *TINY_SWEEP], "data folder"),
    ("sweep-ids-above-vocab", ["sweep", "--study", "{W}/s6", "--data", "{W}/data_bad_ids", *TINY_SWEEP],
     "token id"),
    ("sweep-objective-not-python", ["sweep", "--study", "{W}/s7", "--data", "{W}/data", *TINY_SWEEP, "--objective",
                                    "/etc/passwd:f"], "objective"),
    ("sweep-export-widths-text", ["sweep", "export", "--study", "{W}/study_bad_widths"], "widths"),
    ("sweep-resume-widths-text", ["sweep", "--study", "{W}/study_bad_widths", "--data", "{W}/data", *TINY_SWEEP],
     "widths"),
    ("optimal-flops-not-a-model", ["optimal", "--flops", "1e-300"], "not a model"),
    ("optimal-flops-beyond-limit", ["optimal", "--flops", "1e300"], "--flops"),
    ("optimal-unique-tokens-below-one", ["optimal", "--flops", "1e21", "--unique-tokens", "1e-300"],
     "--unique-tokens"),
    ("optimal-inference-tokens-huge", ["optimal", "--flops", "1e21", "--inference-tokens", "1e300"],
     "--inference-tokens"),
    ("loss-tokens-below-one", ["loss", "--params", "1e9", "--tokens", "1e-300"], "--tokens"),
    ("count-layers-beyond-limit", ["count", "--layers", "5000", "--d-model", "64", "--d-ffn", "256", "--heads", "4",
                                   "--vocab", "1000"], "--layers"),
    ("shape-vocab-huge", ["shape", "--params", "1e8", "--vocab", "1e300"], "--vocab"),
    ("shape-gqa-ratio-huge", ["shape", "--params", "1e8", "--gqa-ratio", "1e300"], "--gqa-ratio"),
    ("shape-max-error-inf", ["shape", "--params", "1e8", "--max-error", "inf"], "--max-error"),
    ("transfer-check-widths-inf", ["transfer-check", "--out", "{W}/tc5", "--widths", "inf,32"], "--widths"),
    ("data-no-subcommand", ["data"], "subcommand"),
    ("data-source-deep-jsonl", ["data", "prepare", "--out", "{W}/d11", "--tokenizer", "bytes", "--source",
                                "{W}/deep.jsonl"], "nested too deeply"),
    ("data-source-proc-mem", ["data", "prepare", "--out", "{W}/d12", "--tokenizer", "bytes", "--source",
                              "/proc/self/mem"], "cannot read corpus file"),
    ("train-bin-is-a-folder", ["train", "--data", "{W}/data_bin_folder", *TINY_RUN, "--out", "{W}/r15"],
     "not a file"),
]
LADDER_CASES = [
    ("ladder-no-data", ["ladder", "--study", "{W}/l1", "--data", "{W}/nodata", "--hparams", "{W}/hparams.yaml"],
     "meta.json"),
    ("ladder-malformed-hparams", ["ladder", "--study", "{W}/l2", "--data", "{W}/data", "--hparams",
                                  "{W}/hparams_garbage.yaml"], "not valid yaml"),
    ("ladder-bad-sizes", ["ladder", "--study", "{W}/l3", "--data", "{W}/data", "--hparams", "{W}/hparams.yaml",
                          "--sizes", "wide:deep"], "sizes"),
    ("ladder-study-under-file", ["ladder", "--study", "{W}/afile/l", "--data", "{W}/data", "--hparams",
                                 "{W}/hparams.yaml"], "is a file"),
]


def _run_inprocess(argv: list[str], capsys) -> tuple[int, str, str]:
    try:
        rc = main(argv)
    except SystemExit as e:  # argparse usage errors
        rc = e.code
    out, err = capsys.readouterr()
    return rc, out, err


def _check_one_line_error(rc, out, err, keyword):
    assert "Traceback" not in out + err, err
    assert rc == 2, (rc, err)
    lines = [ln for ln in err.splitlines() if ln.strip()]
    assert len(lines) == 1, f"stderr is not one line: {err!r}"
    assert lines[0].startswith("error:"), lines[0]
    assert keyword.lower() in lines[0].lower(), f"{keyword!r} not in {lines[0]!r}"
    assert len(lines[0]) > 30  # says what is wrong and what to do, not just a word


@pytest.mark.parametrize("case_id, argv, keyword", CLI_CASES + LADDER_CASES + ISSUE18_CASES,
                         ids=[c[0] for c in CLI_CASES + LADDER_CASES + ISSUE18_CASES])
def test_cli_bad_input_is_one_line_exit_2(ws, case_id, argv, keyword, capsys, monkeypatch):
    monkeypatch.chdir(ws)
    before = _tree(ws)
    t0 = time.monotonic()
    rc, out, err = _run_inprocess([a.replace("{W}", str(ws)) for a in argv], capsys)
    _check_one_line_error(rc, out, err, keyword)
    assert out == "", "bad input must not print partial results"
    assert _tree(ws) == before, f"left files behind: {sorted(_tree(ws) - before)}"
    assert time.monotonic() - t0 < 20, "a bad input must be refused quickly"


def test_table_is_large_enough():
    assert len(CLI_CASES) >= 45
    entry_points = {c[1][0] if c[1][:2] != ["sweep", "export"] else "sweep export" for c in CLI_CASES}
    assert {"fit", "optimal", "plan", "export", "count", "shape", "data", "train", "coord-check", "sweep",
            "sweep export", "transfer-check"} <= entry_points


def test_password_is_masked_in_storage_error(ws, capsys):
    rc, out, err = _run_inprocess(["sweep", "--study", str(ws / "s9"), "--data", str(ws / "data"), "--storage",
                                   "postgresql://u:secret@127.0.0.1:1/db", "--trials", "1"], capsys)
    assert rc == 2 and "secret" not in err


def test_dotdot_study_makes_no_intermediate_folder(ws, capsys):
    """`sweep --study D/../E` runs in E and creates no D (issue 18 item 9: it used to create D)."""
    rc, out, err = _run_inprocess(["sweep", "--study", str(ws / "D" / ".." / "E_dotdot"), "--data", str(ws / "data"),
                                   *TINY_SWEEP], capsys)
    try:
        assert rc == 0, err
        assert not (ws / "D").exists()
        assert (ws / "E_dotdot" / "study.yaml").is_file()
    finally:
        shutil.rmtree(ws / "E_dotdot", ignore_errors=True)


def test_refused_train_leaves_no_run_folder(ws, capsys):
    """A run refused after its config was read (here: beyond memory at the data's vocab) leaves no folder."""
    from proxy_train.config import TrainConfig
    from proxy_train.train import train

    cfg = TrainConfig(data=str(ws / "data"), d_model=32768, n_layers=1024, head_dim=128, batch=2, seq_len=16, steps=2)
    with pytest.raises(UserError, match="memory"):
        train(cfg, ws / "r_refused")
    assert not (ws / "r_refused").exists()


def test_refused_prepare_removes_the_folders_it_made(tmp_path, monkeypatch):
    """A prepare that fails after it made --out's parent folders (here: while writing tokens) removes them."""
    import proxy_train.data as data

    (tmp_path / "c.txt").write_text("some text\n" * 50)
    (tmp_path / "d.txt").write_text("more text\n" * 50)

    def boom(*a, **k):
        raise UserError("disk full (simulated)")

    monkeypatch.setattr(data, "_write_tokens", boom)
    with pytest.raises(UserError, match="simulated"):
        data.prepare_data(tmp_path / "new" / "deeper" / "d", source=str(tmp_path), tokenizer="bytes", progress=False)
    assert not (tmp_path / "new").exists()


# ------------------------------------------------------------------ the real entry point (subprocess)
SUBPROCESS_CASES = ["fit-empty-csv", "optimal-unknown-law", "plan-out-under-file", "export-malformed-plan",
                    "count-malformed-hf-config", "sweep-postgres-unreachable", "data-out-under-file"]


@pytest.mark.parametrize("case_id", SUBPROCESS_CASES)
def test_cli_bad_input_via_subprocess(ws, case_id):
    _, argv, keyword = next(c for c in CLI_CASES if c[0] == case_id)
    before = _tree(ws)
    res = run_cli(*[a.replace("{W}", str(ws)) for a in argv], cwd=ws, timeout=120)
    _check_one_line_error(res.returncode, res.stdout, res.stderr, keyword)
    assert res.stdout == ""
    assert _tree(ws) == before


# ---------------------------------------------------------------------------------- Python API
def _api_cases(ws: Path):
    import numpy as np
    import pandas as pd

    from planner.export import export
    from planner.fit import ChinchillaFitter
    from planner.hardware import get_gpu
    from planner.hparams import load_hparams
    from planner.laws import load_law
    from planner.plan import Budget, Plan, make_plan
    from planner.runs import load_runs
    from planner.shape import ModelShape
    from proxy_train.data import TokenData
    from proxy_train.config import TrainConfig
    from proxy_train.coord_check import coord_check
    from proxy_train.data import prepare_data
    from proxy_train.study import StudySpec
    from proxy_train.transfer import parse_lr_grid

    good = pd.read_csv(io.StringIO(GOOD_RUNS))
    return [
        ("load_law-unknown", lambda: load_law("kaplan2099"), "unknown law"),
        ("load_law-broken-file", lambda: load_law(str(ws / "fit_broken.json")), "not valid json"),
        ("Budget-negative", lambda: Budget(flops=-1.0), "positive"),
        ("Budget-nan", lambda: Budget(flops=float("nan")), "positive"),
        ("Budget-zero-gpus", lambda: Budget.from_gpu_days(0, 7, "h100"), "gpus"),
        ("make_plan-tiny-budget", lambda: make_plan(1e3), "budget"),
        ("make_plan-nothing", lambda: make_plan(None), "budget"),
        ("get_gpu-unknown", lambda: get_gpu("tpu9000"), "unknown gpu"),
        ("ModelShape-heads", lambda: ModelShape(n_layers=2, d_model=100, d_ffn=256, n_heads=3, vocab_size=1000),
         "divisible"),
        ("fit-nan", lambda: ChinchillaFitter(grid="small").fit([1e7, 2e7], [1e9, np.nan], [3.0, 2.9]), "finite"),
        ("fit-length-mismatch", lambda: ChinchillaFitter(grid="small").fit([1e7, 2e7], [1e9], [3.0, 2.9]),
         "same length"),
        ("load_runs-missing-column", lambda: load_runs(good, n_col="N_total", loss_col="final_val_loss",
                                                       d_col="tokens"), "lacks column"),
        ("load_runs-both-d-and-c", lambda: load_runs(good, n_col="total_params", loss_col="final_val_loss",
                                                     d_col="tokens", flops_col="tokens"), "exactly one"),
        ("load_hparams-garbage", lambda: load_hparams(str(ws / "hparams_garbage.yaml")), "not valid yaml"),
        ("Plan-from-list", lambda: Plan.from_dict([1, 2]), "mapping"),
        ("Plan-read-partial", lambda: Plan.read(ws / "plan_partial.yaml"), "lacks"),
        ("export-unknown-trainer", lambda: export(Plan.read(ws / "plan.yaml"), "deepspeed", ws / "e9"),
         "unknown trainer"),
        ("TokenData-missing", lambda: TokenData(ws / "nodata"), "not found"),
        ("Plan-hostile-int",
         lambda: Plan.from_dict({**Plan.read(ws / "plan.yaml").to_dict(), "tokens": "1 if 0 else 2"}),
         "plan section tokens must be an integer"),
        ("export-edited-plan", lambda: export(Plan.from_dict({**Plan.read(ws / "plan.yaml").to_dict(), "preset": "x"}),
                                              "hf", ws / "e10"), "--allow-edited-plan"),
        ("ModelShape-from-dict-bool", lambda: ModelShape.from_dict({"n_layers": True, "d_model": 64, "d_ffn": 128,
                                                                    "n_heads": 2, "vocab_size": 100}), "integer"),
        ("parse_lr_grid-two-points", lambda: parse_lr_grid("-10,-9"), "at least 3"),
        ("TrainConfig-lr-huge", lambda: TrainConfig(data="d", lr=1e300, steps=2).validate(), "plausible limit"),
        ("TrainConfig-seed-negative", lambda: TrainConfig(data="d", seed=-1, steps=2).validate(), "seed"),
        ("TrainConfig-betas-one", lambda: TrainConfig(data="d", betas=(0.9, 1.0), steps=2).validate(), "betas"),
        ("prepare_data-vocab-huge", lambda: prepare_data(ws / "d10", vocab=10**9), "vocab"),
        ("coord_check-odd-head-dim", lambda: coord_check("mup", [30, 60], 2, head_dim=15), "odd"),
        ("StudySpec-widths-text", lambda: StudySpec.from_dict({**_spec(ws), "widths": "abc"}), "widths"),
        ("StudySpec-fixed-unknown", lambda: StudySpec.from_dict({**_spec(ws), "fixed": {"bogus": 1}}), "bogus"),
    ]


API_IDS = ["load_law-unknown", "load_law-broken-file", "Budget-negative", "Budget-nan", "Budget-zero-gpus",
           "make_plan-tiny-budget", "make_plan-nothing", "get_gpu-unknown", "ModelShape-heads", "fit-nan",
           "fit-length-mismatch", "load_runs-missing-column", "load_runs-both-d-and-c", "load_hparams-garbage",
           "Plan-from-list", "Plan-read-partial", "export-unknown-trainer", "TokenData-missing",
           "Plan-hostile-int", "export-edited-plan", "ModelShape-from-dict-bool",
           "parse_lr_grid-two-points", "TrainConfig-lr-huge", "TrainConfig-seed-negative", "TrainConfig-betas-one",
           "prepare_data-vocab-huge", "coord_check-odd-head-dim", "StudySpec-widths-text", "StudySpec-fixed-unknown"]


def _spec(ws: Path) -> dict:
    import yaml

    return yaml.safe_load((ws / "study" / "study.yaml").read_text())["spec"]


@pytest.mark.parametrize("case_id", API_IDS)
def test_python_api_raises_user_error(ws, case_id):
    _, call, keyword = next(c for c in _api_cases(ws) if c[0] == case_id)
    before = _tree(ws)
    with pytest.raises(UserError) as exc:
        call()
    msg = str(exc.value)
    assert keyword.lower() in msg.lower(), msg
    assert "\n" not in msg and len(msg) > 20
    assert _tree(ws) == before


def test_api_table_matches_ids(ws):
    assert [c[0] for c in _api_cases(ws)] == API_IDS


# ---------------------------------------------------------------------------------- dashboard upload
def _upload_cases():
    from app.upload import MAX_UPLOAD_BYTES

    header = b"run_id,total_params,tokens,final_val_loss,status\n"
    row = b"r0,20000000,400000000,3.2,ok\n"
    huge = header + row * (MAX_UPLOAD_BYTES // len(row) + 1)  # ~700k rows, just over the limit
    return [
        ("over-size-limit", "runs.csv", huge, "limit"),
        ("empty", "runs.csv", b"", "empty"),
        ("whitespace-only", "runs.csv", b"   \n\n", "empty"),
        ("not-utf8", "runs.csv", b"\xff\xfe\x00\x81garbage", "utf-8"),
        ("unsupported-type", "runs.xlsx", b"PK\x03\x04", "unsupported"),
        ("corrupt-parquet", "runs.parquet", b"PAR1 this is not parquet", "could not be parsed"),
        ("no-known-columns", "runs.csv", b"a,b,c\n1,2,3\n", "cannot find the columns"),
        ("nan-loss", "runs.csv", GOOD_RUNS.replace("3.100,", "nan,").encode(), "nan"),
        ("negative-tokens", "runs.csv", GOOD_RUNS.replace(",800000000,", ",-800000000,").encode(), "> 0"),
        ("too-few-rows", "runs.csv", header + row * 3, "at least"),
        ("header-only", "runs.csv", header, "no rows"),
    ]


UPLOAD_IDS = ["over-size-limit", "empty", "whitespace-only", "not-utf8", "unsupported-type", "corrupt-parquet",
              "no-known-columns", "nan-loss", "negative-tokens", "too-few-rows", "header-only"]


@pytest.mark.parametrize("case_id", UPLOAD_IDS)
def test_dashboard_upload_validation(case_id):
    from app.upload import runs_from_upload

    _, name, data, keyword = next(c for c in _upload_cases() if c[0] == case_id)
    t0 = time.monotonic()
    with pytest.raises(UserError) as exc:
        runs_from_upload(name, data)
    assert keyword.lower() in str(exc.value).lower(), str(exc.value)
    assert time.monotonic() - t0 < 5  # the size limit is checked before parsing


def test_upload_table_matches_ids():
    assert [c[0] for c in _upload_cases()] == UPLOAD_IDS


def test_upload_accepts_the_good_table():
    from app.upload import runs_from_upload

    df = runs_from_upload("runs.csv", GOOD_RUNS.encode())
    assert len(df) == 9 and {"N", "D", "C", "loss"} <= set(df.columns)


# ---------------------------------------------------------------------------------- hostile plan
EVIL = "a b'c\"$(touch PWNED);rm -rf x `touch PWNED2` ${HOME}"
SHIM = textwrap.dedent("""\
    #!/usr/bin/env bash
    # records its arguments, one NUL-terminated item each, and runs nothing
    for a in "$@"; do printf '%s\\0' "$a"; done >> "$SHIM_LOG"
    """)


def _shim_dir(tmp: Path) -> Path:
    d = tmp / "shims"
    d.mkdir(parents=True)
    for name in ("torchrun", "python", "python3"):
        (d / name).write_text(SHIM)
        (d / name).chmod(0o755)
    (d / "scontrol").write_text("#!/usr/bin/env bash\necho node-1\n")
    (d / "scontrol").chmod(0o755)
    # srun: drop its own options, then run the job step (bash -c '...' launch.sh) for real
    (d / "srun").write_text('#!/usr/bin/env bash\nwhile [[ "$1" == --* ]]; do shift; done\n'
                            'export SLURM_NODEID=0\nexec "$@"\n')
    (d / "srun").chmod(0o755)
    return d


def _args(log: Path) -> list[str]:
    return log.read_bytes().decode().split("\0")[:-1] if log.exists() else []


@pytest.fixture(scope="module")
def hostile_exports(tmp_path_factory):
    from planner.export import export
    from planner.plan import make_plan

    tmp = tmp_path_factory.mktemp("hostile")
    data = {"data_path": EVIL, "tokenizer_model": EVIL + "/tok", "checkpoint_dir": EVIL + "/ckpt",
            "cache_dir": EVIL + "/cache"}
    plan = make_plan(1e21, data=data, command=f"scaleplan plan --out {EVIL}\ntouch PWNED3")
    out = tmp / "exports dir 'q' $(touch PWNED4);"
    files = {t: export(plan, t, out / t)["files"] for t in ("megatron", "torchtitan")}
    return tmp, out, files


def _assert_not_pwned(*dirs: Path):
    for d in dirs:
        hits = [p for p in d.rglob("PWNED*")] if d.exists() else []
        assert not hits, f"a command in the plan was executed: {hits}"


def test_exported_scripts_parse(hostile_exports):
    _, out, _ = hostile_exports
    for script in [out / "megatron" / "launch.sh", out / "megatron" / "sbatch.sh", out / "torchtitan" / "run.sh"]:
        res = subprocess.run(["bash", "-n", str(script)], capture_output=True, text=True)
        assert res.returncode == 0, res.stderr
        assert os.stat(script).st_mode & stat.S_IXUSR


def test_megatron_launch_runs_nothing_and_passes_values_intact(hostile_exports):
    tmp, out, _ = hostile_exports
    shims, log, cwd = _shim_dir(tmp / "m"), tmp / "m" / "args.bin", tmp / "m" / "cwd"
    cwd.mkdir()
    env = {**os.environ, "PATH": f"{shims}:{os.environ['PATH']}", "SHIM_LOG": str(log), "HOME": "/nonexistent"}
    res = subprocess.run(["bash", str(out / "megatron" / "launch.sh")], cwd=cwd, env=env, capture_output=True,
                         text=True, timeout=60)
    assert res.returncode == 0, res.stderr
    _assert_not_pwned(cwd, tmp, out)
    args = _args(log)
    assert args, "torchrun was not called"
    for flag, value in [("--data-path", EVIL), ("--tokenizer-model", EVIL + "/tok"), ("--save", EVIL + "/ckpt"),
                        ("--load", EVIL + "/ckpt"), ("--data-cache-path", EVIL + "/cache")]:
        assert args[args.index(flag) + 1] == value, flag
    assert args[args.index("--data-path") + 2].startswith("--")  # the path stayed one argument


def test_sbatch_wrapper_runs_nothing_and_reaches_torchrun(hostile_exports):
    tmp, out, _ = hostile_exports
    shims, log, cwd = _shim_dir(tmp / "s"), tmp / "s" / "args.bin", tmp / "s" / "cwd"
    cwd.mkdir()
    env = {**os.environ, "PATH": f"{shims}:{os.environ['PATH']}", "SHIM_LOG": str(log),
           "SLURM_JOB_NODELIST": "node-[1-8]"}
    res = subprocess.run(["bash", str(out / "megatron" / "sbatch.sh")], cwd=cwd, env=env, capture_output=True,
                         text=True, timeout=60)
    assert res.returncode == 0, res.stderr
    _assert_not_pwned(cwd, tmp, out)
    args = _args(log)
    assert args[args.index("--master_addr") + 1] == "node-1"
    assert args[args.index("--data-path") + 1] == EVIL


def test_torchtitan_run_and_module_keep_values_as_data(hostile_exports):
    import ast

    tmp, out, files = hostile_exports
    shims, log, cwd = _shim_dir(tmp / "t"), tmp / "t" / "args.bin", tmp / "t" / "cwd"
    cwd.mkdir()
    env = {**os.environ, "PATH": f"{shims}:{os.environ['PATH']}", "SHIM_LOG": str(log)}
    res = subprocess.run(["bash", str(out / "torchtitan" / "run.sh"), "--extra", EVIL], cwd=cwd, env=env,
                         capture_output=True, text=True, timeout=60)
    assert res.returncode == 0, res.stderr
    _assert_not_pwned(cwd, tmp, out)
    args = _args(log)
    assert args[args.index("-m") + 1] == "torchtitan.train" and args[-2:] == ["--extra", EVIL]
    module = next(Path(f) for f in files["torchtitan"] if f.endswith(".py"))
    tree = ast.parse(module.read_text())  # valid Python: the values are literals, not code
    consts = {t.targets[0].id: ast.literal_eval(t.value) for t in tree.body
              if isinstance(t, ast.Assign) and isinstance(t.targets[0], ast.Name)
              and isinstance(t.value, ast.Constant)}
    assert consts["HF_ASSETS_PATH"] == EVIL + "/tok"
    assert consts["CHECKPOINT_DIR"] == EVIL + "/ckpt"


# ---------------------------------------------------------------------------------- issue 18, last failures
# The hostile pass's last 27 (tools/hostile_pass.py: plan/fit/ladder/transfer-check): each class as a row.
# Limits and their sources: planner/limits.py ({W}: the shared work folder, {F}: this section's files).
HOSTILE_HP = "parameterization: mup\nbase_width: 32\nbase_depth: 1\nbase_head_dim: 16\nlr: 0.0078\ninit_std: 0.02\n"
FORTY_NINES = "9" * 40
FINAL_CASES = [
    ("plan-vocab-1e300", ["plan", "--flops", "1e21", "--vocab", "1e300"], "--vocab"),
    ("plan-vocab-40-digits", ["plan", "--flops", "1e21", "--vocab", FORTY_NINES], "--vocab"),
    ("plan-price-1e308", ["plan", "--flops", "1e21", "--price", "1e308"], "--price"),
    ("plan-price-zero", ["plan", "--flops", "1e21", "--price", "0"], "--price"),
    ("plan-lr-1e300", ["plan", "--flops", "1e21", "--lr", "1e300"], "--lr"),
    ("plan-lr-1e-300", ["plan", "--flops", "1e21", "--lr", "1e-300"], "--lr"),
    ("plan-hparams-lr-huge", ["plan", "--flops", "1e21", "--hparams", "{W}/hparams_lr_huge.yaml"], "lr must be"),
    ("plan-hparams-odd-head-dim", ["plan", "--flops", "1e21", "--hparams", "{F}/hp_odd.yaml"], "even"),
    ("plan-hparams-width-40-digits", ["plan", "--flops", "1e21", "--hparams", "{F}/hp_wide.yaml"], "base_width"),
    ("fit-bootstrap-40-digits", ["fit", "{W}/good.csv", *RUNS_COLS, "--bootstrap", FORTY_NINES], "--bootstrap"),
    ("fit-delta-1e300", ["fit", "{W}/good.csv", *RUNS_COLS, "--delta", "1e300"], "--delta"),
    ("fit-seed-negative", ["fit", "{W}/good.csv", *RUNS_COLS, "--seed", "-1"], "--seed"),
    ("fit-duplicated-loss-column", ["fit", "{F}/dup.csv", *RUNS_COLS], "more than once"),
    ("fit-params-1e300", ["fit", "{F}/huge.csv", *RUNS_COLS], "parameters N"),
    ("ladder-study-empty", ["ladder", "--study", "", "--data", "{W}/data", "--hparams", "{W}/hparams.yaml",
                            "--plan-only"], "folder path"),
    ("ladder-study-in-proc", ["ladder", "--study", "/proc/foo", "--data", "{W}/data", "--hparams",
                              "{W}/hparams.yaml", "--plan-only"], "pseudo-filesystem"),
    ("ladder-study-is-a-file", ["ladder", "--study", "{W}/afile", "--data", "{W}/data", "--hparams",
                                "{W}/hparams.yaml", "--plan-only"], "is a file"),
    ("ladder-into-data-folder", ["ladder", "--study", "{W}/data", "--data", "{W}/data", "--hparams",
                                 "{W}/hparams.yaml", "--plan-only"], "data folder"),
    ("ladder-n-sizes-1e300", ["ladder", "--study", "{W}/l9", "--data", "{W}/data", "--hparams", "{W}/hparams.yaml",
                              "--n-sizes", "1e300", "--plan-only"], "--n-sizes"),
    ("ladder-hparams-lr-huge", ["ladder", "--study", "{W}/l10", "--data", "{W}/data", "--hparams",
                                "{W}/hparams_lr_huge.yaml", "--plan-only"], "lr must be"),
    ("transfer-check-into-data-folder", ["transfer-check", "--out", "{W}/data", "--data", "{W}/data", "--widths",
                                         "32,64", "--steps", "2"], "data folder"),
    ("transfer-check-out-in-proc", ["transfer-check", "--out", "/proc/foo", "--data", "{W}/data"],
     "pseudo-filesystem"),
    ("transfer-check-out-empty", ["transfer-check", "--out", "", "--data", "{W}/data"], "folder path"),
]


@pytest.fixture(scope="module")
def final_files(tmp_path_factory) -> Path:
    f = tmp_path_factory.mktemp("final")
    (f / "hp_odd.yaml").write_text(HOSTILE_HP.replace("base_head_dim: 16", "base_head_dim: 15"))
    (f / "hp_wide.yaml").write_text(HOSTILE_HP.replace("base_width: 32", f"base_width: {FORTY_NINES}"))
    (f / "dup.csv").write_text(GOOD_RUNS.replace("final_val_loss,status", "final_val_loss,final_val_loss")
                               .replace(",ok\n", ",9.9\n"))
    (f / "huge.csv").write_text(GOOD_RUNS.replace("r1,40000000,", "r1,1e300,"))
    return f


@pytest.mark.parametrize("case_id, argv, keyword", FINAL_CASES, ids=[c[0] for c in FINAL_CASES])
def test_hostile_pass_last_failures_are_one_line_exit_2(ws, final_files, case_id, argv, keyword, capsys,
                                                        monkeypatch):
    monkeypatch.chdir(ws)
    before, before_f = _tree(ws), _tree(final_files)
    rc, out, err = _run_inprocess([a.replace("{W}", str(ws)).replace("{F}", str(final_files)) for a in argv], capsys)
    _check_one_line_error(rc, out, err, keyword)
    assert out == ""
    assert _tree(ws) == before and _tree(final_files) == before_f


def test_limits_still_accept_published_values(ws, final_files, capsys, monkeypatch):
    """The bounds refuse nonsense, not real settings: Llama 3 405B's vocab 128,256 and peak LR 8e-5
    (arXiv:2407.21783 Table 3), a price of 2 $/GPU-hour, a fit with seed 2^32 - 1."""
    monkeypatch.chdir(ws)
    rc, out, err = _run_inprocess(["plan", "--flops", "1e21", "--vocab", "128256", "--lr", "8e-5", "--price", "2",
                                   "--json"], capsys)
    assert rc == 0, err
    import json

    plan = json.loads(out)
    assert plan["training"]["lr"] == 8e-5 and plan["time_cost"]["price_per_gpu_hour"] == 2.0
    assert plan["shape"]["vocab_size"] == 128256
    rc, out, err = _run_inprocess(["fit", str(ws / "good.csv"), *RUNS_COLS, "--grid", "small", "--no-backtest",
                                   "--seed", str(2**32 - 1), "--delta", "0.001"], capsys)
    assert rc == 0, err


@pytest.mark.parametrize("case_id, call, keyword", [
    ("HParams-lr-huge", lambda: __import__("planner.hparams").hparams.HParams(lr=1e300), "lr"),
    ("HParams-lr-below-fp32", lambda: __import__("planner.hparams").hparams.HParams(lr=1e-12), "lr"),
    ("HParams-odd-head-dim", lambda: __import__("planner.hparams").hparams.HParams(base_head_dim=15), "even"),
    ("HParams-width-huge", lambda: __import__("planner.hparams").hparams.HParams(base_width=10**40), "base_width"),
    ("HParams-depth-huge", lambda: __import__("planner.hparams").hparams.HParams(base_depth=10**6), "base_depth"),
    ("PlanRequest-price-1e308", lambda: __import__("planner.plan.request").plan.request.PlanRequest(
        budget=1e21, price_per_gpu_hour=1e308), "--price"),
    ("PlanRequest-vocab-1e300", lambda: __import__("planner.plan.request").plan.request.PlanRequest(
        budget=1e21, vocab=10**300), "--vocab"),
    ("PlanRequest-lr-nan", lambda: __import__("planner.plan.request").plan.request.PlanRequest(
        budget=1e21, lr=float("nan")), "--lr"),
])
def test_final_api_bounds_raise_user_error(case_id, call, keyword):
    with pytest.raises(UserError) as exc:
        call()
    assert keyword in str(exc.value) and "\n" not in str(exc.value)
