"""Run every benchmark and record its output with the command and the machine's state.

    .venv/bin/python benchmarks/run_all.py [--only fit,plan] [--out benchmarks/results]

Each benchmark prints ratios measured side by side in one run (these machines are noisy); this
runner only sequences them and writes ``<out>/<name>.txt`` with a header: the exact command, the
date, ``nproc`` and the load average before the run, so a recorded number always has its command.
"""
from __future__ import annotations

import argparse
import datetime as dt
import os
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]

# name -> arguments (defaults of each script unless a smaller, stated setting keeps `make bench` short)
BENCHMARKS = {
    "shape_search": [],
    "plan": [],
    "app": ["--repeats", "5"],
    "fit": [],
    "proxy": ["--repeats", "3", "--steps", "5"],
    "ladder": [],
}


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--only", default="", help="comma-separated subset of: " + ",".join(BENCHMARKS))
    ap.add_argument("--out", default=str(ROOT / "benchmarks" / "results"))
    args = ap.parse_args(argv)
    names = [n for n in args.only.split(",") if n] or list(BENCHMARKS)
    unknown = [n for n in names if n not in BENCHMARKS]
    if unknown:
        print(f"error: unknown benchmarks {unknown}; choose from {list(BENCHMARKS)}", file=sys.stderr)
        return 2
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    failed = []
    for name in names:
        cmd = [sys.executable, str(ROOT / "benchmarks" / f"bench_{name}.py"), *BENCHMARKS[name]]
        shown = " ".join([".venv/bin/python", f"benchmarks/bench_{name}.py", *BENCHMARKS[name]])
        header = (f"# command: {shown}\n# date: {dt.datetime.now(dt.timezone.utc).isoformat(timespec='seconds')}\n"
                  f"# nproc: {os.cpu_count()}  loadavg before: {' '.join(f'{x:.2f}' for x in os.getloadavg())}\n")
        print(f"\n=== {name}: {shown}", flush=True)
        proc = subprocess.run(cmd, cwd=ROOT, capture_output=True, text=True)
        sys.stdout.write(proc.stdout)
        sys.stderr.write(proc.stderr[-4000:] if proc.returncode else "")
        text = header + proc.stdout + (f"\n# exit code {proc.returncode}\n" if proc.returncode else "")
        tmp = out / f".{name}.txt.tmp"
        tmp.write_text(text, encoding="utf-8")
        tmp.replace(out / f"{name}.txt")
        if proc.returncode:
            failed.append(name)
    print(f"\nresults written to {out}/" + (f"; failed: {failed}" if failed else ""))
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
