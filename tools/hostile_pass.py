"""The hostile pass (issue 18): run every case of tools/hostile_cases.py as a real ``scaleplan``
subprocess in a fresh copy of a prepared work folder and classify what happened.

Outcomes (one per case, first that applies):

* ``hang``: still running after the case's timeout (its process group is killed);
* ``signal``: died by a signal (SIGSEGV, SIGABRT, SIGKILL from a memory limit, ...);
* ``traceback``: "Traceback" in stdout or stderr;
* ``accepted``: exit 0 on a case that must be refused (accepted nonsense);
* ``wrongly-written``: refused, but a file or folder in the work folder was created, changed or removed;
* ``bad-exit``: any other exit status than 0 and 2, without a traceback;
* ``not-one-line``: exit 2, but stderr is not exactly one line starting with ``error:``;
* ``clean``: exit 2 with one line and nothing written, or exit 0 on an ``either`` case.

Each process runs with one thread per library (OMP, MKL, Rayon), its own session (a hang kills the
whole group) and an address-space limit (``--memory-gb``, default 6) so that a case that tries to
allocate a huge model fails inside its own process instead of stalling the machine.

Usage::

    .venv/bin/python tools/hostile_pass.py --jobs 2 [--filter REGEX] [--out benchmarks/results/hostile_pass]

writes ``OUT.csv`` and ``OUT.json`` (one row per case) and prints a table of the non-clean cases
and the totals. The template work folder is built once (about a minute) and reused
(``--template``, default ``~/.cache/scaleplan/hostile-template-<version>``).
"""
from __future__ import annotations

import argparse
import contextlib
import csv
import io
import json
import os
import re
import resource
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path[:0] = [str(ROOT), str(ROOT / "tools")]

from hostile_cases import (CASES, GOOD_HPARAMS, RUNS_COLS, TINY_SWEEP, TINY_TRAIN, Case,  # noqa: E402
                           Link)

OUTCOMES = ("clean", "traceback", "signal", "hang", "accepted", "wrongly-written", "bad-exit", "not-one-line")
TEMPLATE_VERSION = "1"
RUNS_CSV = ("run_id,total_params,tokens,final_val_loss,status\n" + "".join(
    f"r{i},{2e7 * (i + 1):.0f},{4e8 * (i + 1):.0f},{3.2 - 0.1 * i:.3f},ok\n" for i in range(9)))


# ---------------------------------------------------------------------------------- template
def _fill(argv, w: Path) -> list[str]:
    return [a.replace("{W}", str(w)) for a in argv]


def build_template(t: Path) -> Path:
    """The prepared work folder every case starts from (hostile_cases.TEMPLATE); built once."""
    if (t / ".ready").exists():
        return t
    import torch

    from planner.plan import make_plan
    from proxy_train.data import prepare_data
    from scaleplan.cli import main

    torch.set_num_threads(1)
    shutil.rmtree(t, ignore_errors=True)
    t.mkdir(parents=True)
    (t / "afile").write_text("a regular file, not a folder\n")
    (t / "adir").mkdir()
    (t / "runs.csv").write_text(RUNS_CSV)
    (t / "hparams.yaml").write_text(GOOD_HPARAMS)
    prepare_data(t / "data", max_mb=0.05, tokenizer="bytes", val_frac=0.2, progress=False)
    make_plan(1e21).write(t / "plan.yaml")
    with contextlib.redirect_stdout(io.StringIO()), contextlib.redirect_stderr(io.StringIO()):
        for argv in (["sweep", *TINY_SWEEP, "--study", "{W}/study"], ["train", *TINY_TRAIN, "--out", "{W}/run"],
                     ["fit", "{W}/runs.csv", *RUNS_COLS, "--grid", "small", "--no-backtest", "--out", "{W}/fit.json"]):
            rc = main(_fill(argv, t))
            if rc != 0:
                raise SystemExit(f"template: `scaleplan {' '.join(argv)}` failed ({rc})")
    for p in t.rglob("*.lock"):
        p.unlink()
    (t / ".ready").write_text(str(t))
    return t


def _relocate(w: Path, t: Path) -> None:
    """Rewrite the template's absolute path into ``w`` in the small text files that record it."""
    old, new = str(t).encode(), str(w).encode()
    for p in w.rglob("*"):
        if p.is_file() and not p.is_symlink() and p.stat().st_size < 2**20 and p.suffix in (".yaml", ".json",
                                                                                             ".journal", ".csv"):
            b = p.read_bytes()
            if old in b:
                p.write_bytes(b.replace(old, new))


# ---------------------------------------------------------------------------------- hostile files
def _apply(w: Path, rel: str, spec) -> None:
    import yaml

    path = w / rel
    path.parent.mkdir(parents=True, exist_ok=True)
    if isinstance(spec, Link):
        if path.exists() or path.is_symlink():
            path.unlink()
        path.symlink_to(spec.target.replace("{W}", str(w)))
    elif isinstance(spec, bytes):
        path.write_bytes(spec)
    elif isinstance(spec, str):
        path.write_text(spec, encoding="utf-8")
    elif spec[0] == "meta-edit":
        d = json.loads(path.read_text())
        d.update(spec[1])
        path.write_text(json.dumps(d))
    elif spec[0] == "truncate":
        with open(path, "r+b") as f:
            f.truncate(spec[1])
    elif spec[0] == "fill":
        path.write_bytes(bytes([spec[1]]) * path.stat().st_size)
    elif spec[0] == "mkdir":
        path.unlink()
        path.mkdir()
    elif spec[0] in ("plan-edit", "yaml-edit"):
        src = w / "plan.yaml" if spec[0] == "plan-edit" else path
        _edit_yaml(path, src.read_text(), spec[1], yaml)
    else:  # pragma: no cover - a mistake in the table
        raise ValueError(f"unknown file spec {spec!r}")


def _edit_yaml(path: Path, text: str, edit: tuple, yaml) -> None:
    kind = edit[0]
    if kind == "append":
        path.write_text(text + edit[1])
        return
    if kind == "replace":
        path.write_bytes(edit[1].encode("latin-1") if edit[1].startswith("\xff") else edit[1].encode())  # bytes 0xff
        return
    d = yaml.safe_load(text)
    if kind in ("section", "set"):
        d[edit[1]] = edit[2]
    elif kind == "field":
        d[edit[1]][edit[2]] = edit[3]
    elif kind == "spec":
        d["spec"][edit[1]] = edit[2]
    path.write_text(yaml.safe_dump(d, sort_keys=False, allow_unicode=True))


# ---------------------------------------------------------------------------------- one case
def snapshot(root: Path) -> dict[str, tuple]:
    """Every path under ``root`` with its kind, size and modification time (symlinks not followed)."""
    out = {}
    for dirpath, dirnames, filenames in os.walk(root):
        for name in dirnames + filenames:
            p = os.path.join(dirpath, name)
            st = os.lstat(p)
            kind = "l" if os.path.islink(p) else "d" if os.path.isdir(p) else "f"
            out[os.path.relpath(p, root)] = (kind, 0 if kind == "d" else st.st_size,
                                            0 if kind == "d" else st.st_mtime_ns)
    return out


def _limits(memory_gb: float):
    def apply():
        lim = int(memory_gb * 2**30)
        resource.setrlimit(resource.RLIMIT_AS, (lim, lim))
        resource.setrlimit(resource.RLIMIT_CORE, (0, 0))
    return apply


def _env() -> dict[str, str]:
    one = {k: "1" for k in ("OMP_NUM_THREADS", "MKL_NUM_THREADS", "OPENBLAS_NUM_THREADS", "RAYON_NUM_THREADS")}
    return {**os.environ, **one, "TOKENIZERS_PARALLELISM": "false", "PYTHONUNBUFFERED": "1",
            "PYTHONPATH": str(ROOT), "COLUMNS": "200"}


def classify(case: Case, rc: int | None, out: str, err: str, changed: list[str], forbidden: list[str] = ()) -> str:
    """The outcome of one case (module docstring); ``forbidden``: the case's ``must_not_create``
    paths that exist afterwards."""
    if rc is None:
        return "hang"
    if rc < 0:
        return "signal"
    if "Traceback" in out or "Traceback" in err:
        return "traceback"
    if forbidden:
        return "wrongly-written"
    if rc == 0:
        return "clean" if case.expect == "either" else "accepted"
    if rc == 2 and changed:
        return "wrongly-written"
    if rc != 2:
        return "bad-exit"
    lines = [ln for ln in err.splitlines() if ln.strip()]
    return "clean" if len(lines) == 1 and lines[0].startswith("error:") else "not-one-line"


def run_case(case: Case, template: Path, scratch: Path, *, memory_gb: float = 6.0, keep: bool = False,
             python: str = sys.executable) -> dict:
    """Run one case in a fresh copy of ``template`` under ``scratch``; returns its result row."""
    w = Path(tempfile.mkdtemp(prefix=re.sub(r"[^A-Za-z0-9_.-]", "_", case.id)[:60] + ".", dir=scratch))
    shutil.rmtree(w)
    shutil.copytree(template, w, symlinks=True)
    (w / ".ready").unlink()
    _relocate(w, template)
    for rel, spec in case.files.items():
        _apply(w, rel, spec)
    before = snapshot(w)
    argv = [python, "-m", "scaleplan.cli", *_fill(case.argv, w)]
    t0 = time.monotonic()
    proc = subprocess.Popen(argv, cwd=w, env=_env(), stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                            errors="replace", start_new_session=True, preexec_fn=_limits(memory_gb))
    try:
        out, err = proc.communicate(timeout=case.timeout)
        rc = proc.returncode
    except subprocess.TimeoutExpired:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(proc.pid, signal.SIGKILL)
        out, err = proc.communicate()
        rc = None
    seconds = time.monotonic() - t0
    after = snapshot(w)
    changed = sorted(k for k in set(before) | set(after) if before.get(k) != after.get(k)
                     and not k.startswith("__pycache__"))
    forbidden = [p for p in case.must_not_create if os.path.lexists(w / p)]
    outcome = classify(case, rc, out, err, changed, forbidden)
    changed = forbidden + changed
    if not keep:
        shutil.rmtree(w, ignore_errors=True)
    tail = (err.strip().splitlines() or [""])[-1][:300]
    return {"id": case.id, "group": case.group, "expect": case.expect, "outcome": outcome,
            "rc": "timeout" if rc is None else rc, "seconds": round(seconds, 2), "stderr_last_line": tail,
            "stderr_lines": len([ln for ln in err.splitlines() if ln.strip()]), "changed": changed[:10],
            "argv": " ".join(case.argv)}


# ---------------------------------------------------------------------------------- the pass
def select(pattern: str | None, fast: bool = False) -> list[Case]:
    rx = re.compile(pattern) if pattern else None
    return [c for c in CASES if (not rx or rx.search(c.id)) and (not fast or c.fast)]


def totals(rows: list[dict]) -> dict[str, int]:
    t = {"cases": len(rows)}
    t.update({o: sum(r["outcome"] == o for r in rows) for o in OUTCOMES})
    return t


def _print(rows: list[dict], tot: dict, console) -> None:
    from rich.table import Table

    bad = [r for r in rows if r["outcome"] != "clean"]
    if bad:
        tab = Table(title=f"{len(bad)} cases not clean", show_lines=False)
        for col in ("case", "outcome", "rc", "s", "last stderr line / files written"):
            tab.add_column(col, overflow="fold")
        for r in sorted(bad, key=lambda r: (r["outcome"], r["id"])):
            what = r["stderr_last_line"] if r["outcome"] != "wrongly-written" else ", ".join(r["changed"])
            tab.add_row(r["id"], r["outcome"], str(r["rc"]), f"{r['seconds']:.1f}", what[:160])
        console.print(tab)
    summary = Table(title="hostile pass totals")
    for k in tot:
        summary.add_column(k)
    summary.add_row(*(str(v) for v in tot.values()))
    console.print(summary)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--jobs", type=int, default=2, help="cases run at once (default 2)")
    ap.add_argument("--filter", help="regular expression on case ids")
    ap.add_argument("--fast", action="store_true", help="only the CI subset (hostile_cases FAST_IDS)")
    ap.add_argument("--out", default=None, help="write OUT.csv and OUT.json (default: none)")
    ap.add_argument("--template", default=str(Path.home() / ".cache" / "scaleplan" /
                                              f"hostile-template-{TEMPLATE_VERSION}"))
    ap.add_argument("--memory-gb", type=float, default=6.0, help="address-space limit per case (6)")
    ap.add_argument("--keep", action="store_true", help="keep the work folders (printed)")
    ap.add_argument("--list", action="store_true", help="list the selected case ids and exit")
    args = ap.parse_args(argv)
    cases = select(args.filter, args.fast)
    if args.list:
        print("\n".join(c.id for c in cases))
        return 0
    from rich.console import Console
    from rich.progress import Progress

    console = Console(stderr=False, width=max(160, shutil.get_terminal_size().columns))
    template = build_template(Path(args.template))
    scratch = Path(tempfile.mkdtemp(prefix="hostile-pass-"))
    rows: list[dict] = []
    t0 = time.monotonic()
    with Progress(console=console, transient=True) as prog, ThreadPoolExecutor(args.jobs) as pool:
        task = prog.add_task("hostile cases", total=len(cases))
        futs = [pool.submit(run_case, c, template, scratch, memory_gb=args.memory_gb, keep=args.keep) for c in cases]
        for f in futs:
            rows.append(f.result())
            prog.advance(task)
    if not args.keep:
        shutil.rmtree(scratch, ignore_errors=True)
    else:
        console.print(f"work folders kept under {scratch}")
    tot = totals(rows)
    _print(rows, tot, console)
    console.print(f"{len(rows)} cases in {time.monotonic() - t0:.0f} s with --jobs {args.jobs}")
    if args.out:
        out = Path(args.out)
        out.parent.mkdir(parents=True, exist_ok=True)
        with open(out.with_suffix(".csv"), "w", newline="") as f:
            wr = csv.DictWriter(f, fieldnames=list(rows[0]))
            wr.writeheader()
            for r in rows:
                wr.writerow({**r, "changed": ";".join(r["changed"])})
        out.with_suffix(".json").write_text(json.dumps({"totals": tot, "cases": rows}, indent=1) + "\n")
    return 0 if tot["clean"] == tot["cases"] else 1


if __name__ == "__main__":
    sys.exit(main())
